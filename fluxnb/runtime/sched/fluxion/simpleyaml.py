"""The plain block YAML most jobspecs are written in, read without PyYAML.

PyYAML's safe loader, even over libyaml's C parser, builds a jobspec of
twenty lines in about 0.1 ms (0.3 ms the first time in a process): most of
a first match of ``resource-query``, which flux-sched's yaml-cpp parses in
microseconds.  :func:`load` reads the common subset directly:

- block mappings (``key: value``, ``key:`` then a nested block) and block
  sequences (``- item``, also ``- key: value`` starting a mapping), by
  indentation, with whole-line ``#`` comments;
- flow sequences of scalars (``[ "app", 1 ]``);
- scalars: decimal integers (no leading zero: YAML 1.1 reads ``010`` as
  octal), decimals (``1.5``), ``true``/``false`` (any of their three
  spellings), quoted strings without escapes, and plain strings of letters,
  digits and ``_ . / -`` that start with a letter, ``_`` or ``/`` and are none
  of YAML 1.1's other booleans or nulls (``yes``, ``on``, ``null``, ...).

Anything else (anchors, tags, flow mappings, block scalars, escapes, inline
comments, tabs, non-ASCII text, duplicate keys, empty values, several
documents...) returns
``None``: the caller then loads the text with PyYAML, so the result is always
what ``yaml.safe_load`` gives (the tests compare both on every jobspec of the
conformance corpus).

Examples
--------
>>> load("version: 1\\nresources:\\n  - type: core\\n    count: 2\\ntasks:\\n- command: [ \\"app\\" ]\\n")
{'version': 1, 'resources': [{'type': 'core', 'count': 2}], 'tasks': [{'command': ['app']}]}
>>> load("count: 010") is None   # (octal to YAML 1.1: left to PyYAML)
True
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["load"]

#: What the subset leaves to PyYAML wherever it appears: any character but newline and
#: printable ASCII (tabs, CR, YAML's other line breaks, a BOM), and the indicators of anchors,
#: aliases, tags, flow mappings, block scalars, directives, reserved ones and escapes (one
#: character class: a scan in C).  Document markers and complex keys are seen per line.
_REJECT = re.compile("[^\n" + "".join(re.escape(chr(c)) for c in range(32, 127)
                                       if chr(c) not in "&*!|>{}%@`\\") + "]")
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./-]*\Z")
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]+\Z")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
#: Plain words YAML 1.1 resolves to something other than a string (any case).
_SPECIAL = {"yes", "no", "on", "off", "y", "n", "null", "true", "false"}


class _Fallback(Exception):
    pass


#: Scalars and keys read before (immutable results only), by their text.
_SEEN: dict[str, Any] = {}
_KEYS: dict[str, str] = {}
_SEEN_MAX = 4096


def _scalar(s: str) -> Any:
    v = _SEEN.get(s, _SEEN)
    if v is not _SEEN:
        return v
    c = s[0]
    if c == "[":
        if s[-1] != "]":
            raise _Fallback
        inner = s[1:-1].strip()
        if not inner:
            return []
        out = []
        for part in inner.split(","):
            part = part.strip()
            if not part or part[0] == "[":
                raise _Fallback
            out.append(_scalar(part))
        return out  # (a new list each time: not kept)
    if c == '"' or c == "'":
        if len(s) < 2 or s[-1] != c or c in s[1:-1]:
            raise _Fallback
        v = s[1:-1]
    elif s in _BOOL:
        v = _BOOL[s]
    elif _INT.match(s):
        v = int(s)
    elif _FLOAT.match(s):
        v = float(s)
    elif _PLAIN.match(s) and s.lower() not in _SPECIAL:
        v = s
    else:
        raise _Fallback
    if len(_SEEN) >= _SEEN_MAX:
        _SEEN.clear()
    _SEEN[s] = v
    return v


def _key(s: str) -> str:
    k = _KEYS.get(s)
    if k is None:
        if not _PLAIN.match(s) or s.lower() in _SPECIAL:
            raise _Fallback
        if len(_KEYS) >= _SEEN_MAX:
            _KEYS.clear()
        k = _KEYS[s] = s
    return k


def _tokens(text: str) -> list[tuple[int, str | None]]:
    """``(column, None)`` for each ``-`` item marker, ``(column, text)`` for the rest of a
    line; ``(-1, None)`` last."""
    toks: list[tuple[int, str | None]] = []
    for line in text.split("\n"):
        body = line.rstrip(" ")
        content = body.lstrip(" ")
        if not content:
            continue
        c = content[0]
        if c == "#":
            continue
        if "#" in content:
            raise _Fallback  # an inline comment (or a '#' in a string): PyYAML's call
        if c in "?:" or content.startswith(("---", "...")):
            raise _Fallback  # a complex key, a document marker
        col = len(body) - len(content)
        while c == "-" and (len(content) == 1 or content[1] == " "):
            toks.append((col, None))
            rest = content[1:].lstrip(" ")
            if not rest:
                break
            col += len(content) - len(rest)
            content = rest
            c = rest[0]
        else:
            toks.append((col, content))
    toks.append((-1, None))
    return toks


def _node(toks: list[tuple[int, str | None]], i: int, min_col: int) -> tuple[Any, int]:
    col, text = toks[i]
    if col < min_col:
        raise _Fallback  # an empty value (null)
    if text is None:
        return _seq(toks, i, col)
    if ": " in text or text[-1] == ":":
        return _map(toks, i, col)
    if toks[i + 1][0] > col:
        raise _Fallback  # a plain scalar continued on the next line
    return _scalar(text), i + 1


def _seq(toks: list[tuple[int, str | None]], i: int, col: int) -> tuple[list[Any], int]:
    out = []
    while True:
        c, text = toks[i]
        if c != col or text is not None:
            return out, i
        v, i = _node(toks, i + 1, col + 1)
        out.append(v)


def _map(toks: list[tuple[int, str | None]], i: int, col: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    while True:
        c, text = toks[i]
        if c != col or text is None:
            return out, i
        if text[-1] == ":":
            k, v = text[:-1], ""
        else:
            k, sep, v = text.partition(": ")
            if not sep:
                raise _Fallback
        k = _key(k.rstrip(" "))
        if k in out:
            raise _Fallback
        i += 1
        nc, ntext = toks[i]
        v = v.strip(" ")
        if v:
            if nc > col:
                raise _Fallback
            out[k] = _scalar(v)
        elif nc > col:
            out[k], i = _node(toks, i, col + 1)
        elif nc == col and ntext is None:
            out[k], i = _seq(toks, i, col)  # "key:" then "- item" at the key's own column
        else:
            raise _Fallback


def load(text: str) -> Any:
    """``yaml.safe_load(text)`` for the plain subset above, else ``None``."""
    if _REJECT.search(text):
        return None
    try:
        toks = _tokens(text)
        if len(toks) == 1:
            return None
        doc, i = _node(toks, 0, 0)
        return doc if i == len(toks) - 1 else None
    except _Fallback:
        return None
