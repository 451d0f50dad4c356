"""RFC 36 submission directives: ``#FLUX: -N2`` lines in a batch script.

A directive line is a prefix of non-alphanumeric characters (``#``, ``--``,
``//``, ...), the tag ``flux:`` or ``FLUX:``, and shell-quoted arguments (``#``
starts a comment). All directives use one sentinel (prefix + tag) and sit in
one block: after a non-blank line that does not start with the prefix, a
further directive is an error. A value may span lines between triple quotes
ending the first and last lines.

>>> directive_args('#!/bin/sh\\n#FLUX: -N2 --job-name="my job"  # two nodes\\n#FLUX: -t 5m\\nhostname\\n')
['-N2', '--job-name=my job', '-t', '5m']
>>> directive_args('#!/bin/sh\\n#FLUX: -N2\\nhostname\\n#FLUX: -n1\\n')
Traceback (most recent call last):
...
ValueError: line 4: orphan 'FLUX:' detected: directives disabled after line 2
"""

from __future__ import annotations

import re
import shlex

__all__ = ["parse_directives", "directive_args"]

_SENTINEL = re.compile(r"^(\W*?)((?:flux|FLUX):)(.*)$")


def _split(value: str, lineno: int) -> list[str]:
    lexer = shlex.shlex(value, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.escapedquotes = "\"'"
    try:
        args = list(lexer)
    except ValueError as exc:
        raise ValueError(f"line {lineno}: {value.strip()}: {exc}") from None
    if args and not args[0].startswith("-"):
        raise ValueError(f"line {lineno}: Unknown directive: {value.strip()}")
    return args


def parse_directives(script: str) -> list[tuple[int, list[str]]]:
    """``(line number, args)`` of each directive in ``script``, in order.

    Raises ValueError naming the line for a changed sentinel, an orphan
    directive, bad quoting or a directive that is not options.
    """
    out: list[tuple[int, list[str]]] = []
    sentinel = prefix = None
    disabled_after = 0
    multi: list[str] | None = None  # lines of an open triple-quoted value
    quote = indent = ""
    start = 0
    for lineno, line in enumerate(script.splitlines(), start=1):
        m = _SENTINEL.match(line)
        if not m:
            if multi is not None:
                raise ValueError(f"line {lineno}: unterminated multi-line quote at line {start}")
            if sentinel is not None and not disabled_after and line.strip() \
                    and not line.startswith(prefix.rstrip()):
                disabled_after = lineno - 1
            continue
        tag, value = m.group(2), m.group(3)
        if sentinel is None:
            sentinel, prefix = m.group(1) + tag, m.group(1)
        elif m.group(1) + tag != sentinel:
            raise ValueError(f"line {lineno}: sentinel changed from '{sentinel}' to "
                             f"'{m.group(1) + tag}': all directives must use the same one")
        if disabled_after:
            raise ValueError(f"line {lineno}: orphan '{tag}' detected: "
                             f"directives disabled after line {disabled_after}")
        stripped = value.rstrip()
        if multi is not None:
            text = stripped[len(indent):] if stripped.startswith(indent) else stripped
            if stripped.endswith(quote):
                multi.append(text[:-3])
                head, body = multi[0], "\n".join(multi[1:])
                out.append((start, _split(head + shlex.quote(body), start)))
                multi = None
            else:
                multi.append(text)
            continue
        if stripped.endswith(('"""', "'''")) and stripped.count(stripped[-3:]) % 2 == 1:
            indent = stripped[:len(stripped) - len(stripped.lstrip())]
            quote, start, multi = stripped[-3:], lineno, [stripped[len(indent):-3]]
            continue
        for q in ('"""', "'''"):
            if q in value:  # single-line triple quotes: a literal
                value = re.sub(re.escape(q) + r"(.*?)" + re.escape(q),
                               lambda mm: shlex.quote(mm.group(1)), value)
        args = _split(value, lineno)
        if args:
            out.append((lineno, args))
    if multi is not None:
        raise ValueError(f"line {start}: unterminated multi-line quote")
    return out


def directive_args(script: str) -> list[str]:
    """All directive arguments of ``script``, in order."""
    return [a for _, args in parse_directives(script) for a in args]
