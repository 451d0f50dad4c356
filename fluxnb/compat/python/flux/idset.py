"""``flux.idset``: flux-core's ``IDset`` (RFC 22 id sets) over fluxnb's IDSet."""

from __future__ import annotations

import numbers
from collections.abc import Iterable

from fluxnb.runtime.util.idset import IDSet as _IDSet

IDSET_FLAG_AUTOGROW = 1
IDSET_FLAG_BRACKETS = 2
IDSET_FLAG_RANGE = 4
IDSET_INVALID_ID = 2**32 - 2

__all__ = ["IDset", "decode", "IDSET_FLAG_BRACKETS", "IDSET_FLAG_RANGE",
           "IDSET_INVALID_ID"]


def _check(i, name):
    if not isinstance(i, numbers.Integral) or isinstance(i, bool) and False:
        raise TypeError(f"IDset.{name} supports integers, not {type(i)}")
    if i < 0:
        raise ValueError(f"negative index passed to IDset.{name}")


def _wrap(ids: _IDSet, flags: int = IDSET_FLAG_RANGE) -> IDset:
    new = IDset.__new__(IDset)
    new._ids = ids
    new.default_flags = flags
    return new


class IDset:
    """A set of non-negative integers, from an RFC 22 string, an int, an
    iterable of ints or another IDset.

    >>> str(IDset("0-3").add([7, 8]))
    '0-3,7-8'
    """

    __slots__ = ("_ids", "default_flags")

    def __init__(self, arg="", flags=IDSET_FLAG_RANGE, handle=None):
        self.default_flags = flags
        if handle is not None:
            self._ids = _IDSet(handle)
            return
        if isinstance(arg, IDset):
            self._ids = arg._ids.copy()
        elif isinstance(arg, _IDSet):
            self._ids = arg.copy()
        elif isinstance(arg, str):
            try:
                self._ids = _IDSet.decode(arg)
            except ValueError:
                raise ValueError(f"IDset(): Invalid argument: {arg}") from None
        elif isinstance(arg, numbers.Integral) and not isinstance(arg, bool):
            if arg < 0:
                raise ValueError(f"IDset(): Invalid argument: {arg}")
            self._ids = _IDSet([int(arg)])
        elif isinstance(arg, Iterable):
            ids = list(arg)
            for i in ids:
                if not isinstance(i, numbers.Integral):
                    raise TypeError(f"IDset(): expected integers, got {type(i).__name__}")
                if i < 0:
                    raise ValueError(f"IDset(): Invalid argument: {i}")
            self._ids = _IDSet(int(i) for i in ids)
        else:
            raise TypeError("IDset() expected an idset string or iterable, "
                            f"got {type(arg).__name__}")

    # -- encoding ---------------------------------------------------------
    def encode(self, flags=None):
        if flags is None:
            flags = self.default_flags
        return self._ids.encode(ranges=bool(flags & IDSET_FLAG_RANGE),
                                brackets=bool(flags & IDSET_FLAG_BRACKETS))

    def set_flags(self, flags):
        self.default_flags = flags

    def __str__(self):
        return self.encode()

    def __repr__(self):
        return f"IDset('{self.encode(flags=IDSET_FLAG_RANGE)}')"

    # -- queries ----------------------------------------------------------
    def __len__(self):
        return len(self._ids)

    def count(self):
        return len(self._ids)

    def __iter__(self):
        return iter(self._ids)

    def expand(self):
        return list(self._ids)

    def test(self, i):
        _check(i, "test")
        return i in self._ids

    __contains__ = test
    __getitem__ = test

    def __setitem__(self, i, value):
        if value in (0, 1) and not isinstance(value, str):
            value = bool(value)
        if not isinstance(value, bool):
            raise TypeError(f"IDset setitem must be bool or 0,1 not {type(value)}")
        if value:
            self.set(i)
        else:
            self.clear(i)

    def first(self):
        return self._ids.first() if self._ids else IDSET_INVALID_ID

    def last(self):
        return self._ids.last() if self._ids else IDSET_INVALID_ID

    def next(self, i):
        _check(i, "next")
        n = self._ids.next(i)
        return IDSET_INVALID_ID if n is None else n

    def equal(self, idset):
        if not isinstance(idset, IDset):
            raise TypeError(f"IDset.equal() expected an IDset, got {type(idset).__name__}")
        return self._ids == idset._ids

    __eq__ = equal
    __hash__ = None

    def copy(self):
        return _wrap(self._ids.copy(), self.default_flags)

    # -- editing ----------------------------------------------------------
    def _range(self, start, end, name):
        _check(start, name)
        if end is None:
            return start, start
        _check(end, name)
        if end < start:
            raise ValueError(f"can't set range with {start} > {end}")
        return start, end

    def set(self, start, end=None):
        lo, hi = self._range(start, end, "set")
        self._ids.add_range(lo, hi)
        return self

    def clear(self, start, end=None):
        lo, hi = self._range(start, end, "clear")
        self._ids.discard_range(lo, hi)
        return self

    def add(self, arg):
        self._ids.update(_coerce(arg)._ids)
        return self

    def subtract(self, arg):
        self._ids.difference_update(_coerce(arg)._ids)
        return self

    def union(self, *args):
        return _wrap(self._ids.union(*(_coerce(a)._ids for a in args)), self.default_flags)

    def intersect(self, *args):
        return _wrap(self._ids.intersection(*(_coerce(a)._ids for a in args)),
                     self.default_flags)

    def difference(self, *args):
        return _wrap(self._ids.difference(*(_coerce(a)._ids for a in args)),
                     self.default_flags)

    __add__ = __or__ = union
    __sub__ = difference
    __and__ = intersect

    def __iadd__(self, arg):
        return self.add(arg)

    def __isub__(self, arg):
        return self.subtract(arg)


def _coerce(arg) -> IDset:
    return arg if isinstance(arg, IDset) else IDset(arg)


def decode(string):
    """Decode an RFC 22 idset string into an IDset."""
    return IDset(string)
