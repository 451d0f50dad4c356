"""``flux.job.directives``: RFC 36 submission directives (``#FLUX: -N2``),
as ``flux batch`` reads them, over :mod:`fluxnb.cli.directives`."""

from __future__ import annotations

from fluxnb.cli import directives as _directives

__all__ = ["Directive", "DirectiveParser"]


class Directive:
    """One directive: ``action`` ``SETARGS`` (``args`` to pass to the
    submission command) or ``NOOP`` (empty), from ``lineno``."""

    def __init__(self, value, lineno=-1):
        self.lineno = lineno
        self.args = _directives._split(value, lineno)
        self.action = "SETARGS" if self.args else "NOOP"

    @classmethod
    def _of(cls, lineno, args):
        new = cls.__new__(cls)
        new.lineno, new.args = lineno, list(args)
        new.action = "SETARGS" if args else "NOOP"
        return new

    def __str__(self):
        return f"{self.action}({self.args})"


class DirectiveParser:
    """The directives of a script read from ``inputfile`` (a text stream);
    ``script`` is its whole text. ValueError names the line of a bad one."""

    def __init__(self, inputfile):
        self.script = inputfile.read()
        self.directives = [Directive._of(lineno, args)
                           for lineno, args in _directives.parse_directives(self.script)]
