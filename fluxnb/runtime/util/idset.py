"""RFC 22 idsets: compact sets of non-negative integer ids.

An idset string lists unique ids in ascending order, separated by commas,
with consecutive runs optionally compressed into ``lo-hi`` ranges and the
whole optionally wrapped in square brackets: ``"0-3,5"``, ``"[0-3,5]"``.
Broker ranks, core ids and gpu ids in R (RFC 20) are all idsets.

:class:`IDSet` stores its ids as a sorted list of disjoint, non-adjacent
``(lo, hi)`` ranges, so ``"0-1048575"`` costs two integers, set algebra is a
linear merge of ranges, and :meth:`IDSet.encode` (which the scheduler calls
often) is a join over ranges rather than over ids.

Examples
--------
>>> ids = IDSet.decode("[0-3,5]")
>>> len(ids), ids.first(), ids.last()
(5, 0, 5)
>>> ids.encode()
'0-3,5'
>>> (ids - IDSet("1-2")).encode(brackets=True)
'[0,3,5]'
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator

__all__ = ["IDSet", "decode", "encode"]

# One idset token: an id without leading zeros, or a lo-hi range of them.
_TOKEN = re.compile(r"(0|[1-9][0-9]*)(?:-(0|[1-9][0-9]*))?")

_Range = tuple[int, int]


def _lo(r: _Range) -> int:
    return r[0]


def _parse(s: str) -> list[_Range]:
    """Parse an RFC 22 string into a canonical range list or raise ValueError."""
    if not isinstance(s, str):
        raise TypeError(f"idset must be decoded from a str, not {type(s).__name__}")
    body = s
    if body.startswith("["):
        if not body.endswith("]") or len(body) < 2:
            raise ValueError(f"invalid idset '{s}': unbalanced '['")
        body = body[1:-1]
    elif body.endswith("]"):
        raise ValueError(f"invalid idset '{s}': unbalanced ']'")
    if not body:
        return []
    ranges: list[_Range] = []
    prev_hi = -1
    for tok in body.split(","):
        m = _TOKEN.fullmatch(tok)
        if m is None:
            if not tok:
                why = "empty element"
            elif tok.lstrip("-").isdigit() and tok.startswith("-"):
                why = f"'{tok}' is negative"
            elif re.fullmatch(r"[0-9]+(-[0-9]+)?", tok):
                why = f"'{tok}' has a leading zero"
            else:
                why = f"'{tok}' is not an id or lo-hi range"
            raise ValueError(f"invalid idset '{s}': {why}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"invalid idset '{s}': range '{tok}' is descending")
        if lo <= prev_hi:
            raise ValueError(
                f"invalid idset '{s}': '{tok}' is not in ascending order "
                "or repeats an id"
            )
        if ranges and lo == prev_hi + 1:
            ranges[-1] = (ranges[-1][0], hi)
        else:
            ranges.append((lo, hi))
        prev_hi = hi
    return ranges


def _from_ints(ids: Iterable[int]) -> list[_Range]:
    """Build canonical ranges from ids in any order, with repeats allowed."""
    vals = []
    for i in ids:
        if not isinstance(i, int) or isinstance(i, bool):
            raise TypeError(f"idset ids must be int, not {type(i).__name__} ({i!r})")
        if i < 0:
            raise ValueError(f"idset ids must be non-negative, got {i}")
        vals.append(i)
    vals.sort()
    ranges: list[_Range] = []
    for i in vals:
        if ranges and i <= ranges[-1][1] + 1:
            if i > ranges[-1][1]:
                ranges[-1] = (ranges[-1][0], i)
        else:
            ranges.append((i, i))
    return ranges


def _merge(a: list[_Range], b: list[_Range]) -> list[_Range]:
    """Union of two canonical range lists."""
    out: list[_Range] = []
    i = j = 0
    while i < len(a) or j < len(b):
        if j >= len(b) or (i < len(a) and a[i][0] <= b[j][0]):
            r = a[i]
            i += 1
        else:
            r = b[j]
            j += 1
        if out and r[0] <= out[-1][1] + 1:
            if r[1] > out[-1][1]:
                out[-1] = (out[-1][0], r[1])
        else:
            out.append(r)
    return out


def _intersect(a: list[_Range], b: list[_Range]) -> list[_Range]:
    out: list[_Range] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _subtract(a: list[_Range], b: list[_Range]) -> list[_Range]:
    out: list[_Range] = []
    j = 0
    for lo, hi in a:
        while j < len(b) and b[j][1] < lo:
            j += 1
        k = j
        while k < len(b) and b[k][0] <= hi:
            if b[k][0] > lo:
                out.append((lo, b[k][0] - 1))
            lo = max(lo, b[k][1] + 1)
            if lo > hi:
                break
            k += 1
        if lo <= hi:
            out.append((lo, hi))
    return out


class IDSet:
    """A mutable, sorted set of non-negative integer ids (RFC 22).

    Parameters
    ----------
    ids : str, IDSet or iterable of int, optional
        An RFC 22 string (decoded strictly, see :meth:`decode`), another
        idset (copied), or ids in any order (repeats are ignored).

    Examples
    --------
    >>> IDSet([5, 0, 1, 2, 3, 1])
    IDSet('0-3,5')
    >>> 2 in IDSet("0-3"), list(IDSet("7-9"))
    (True, [7, 8, 9])
    """

    __slots__ = ("_ranges", "_count", "_str")

    def __init__(self, ids: str | IDSet | Iterable[int] | None = None) -> None:
        if ids is None:
            ranges: list[_Range] = []
        elif isinstance(ids, str):
            ranges = _parse(ids)
        elif isinstance(ids, IDSet):
            ranges = list(ids._ranges)
        else:
            ranges = _from_ints(ids)
        self._set(ranges)

    def _set(self, ranges: list[_Range]) -> None:
        self._ranges = ranges
        self._count = sum(hi - lo + 1 for lo, hi in ranges)
        self._str: str | None = None

    @classmethod
    def _of(cls, ranges: list[_Range]) -> IDSet:
        new = cls.__new__(cls)
        new._set(ranges)
        return new

    # -- codec ------------------------------------------------------------

    @classmethod
    def decode(cls, s: str) -> IDSet:
        """Decode an RFC 22 idset string.

        Ids must be ascending, unique and without leading zeros; ``""`` and
        ``"[]"`` are the empty set.

        Raises
        ------
        ValueError
            Naming the string and what is wrong with it.

        Examples
        --------
        >>> IDSet.decode("1,7-9").encode(ranges=False)
        '1,7,8,9'
        >>> IDSet.decode("3,2")
        Traceback (most recent call last):
        ...
        ValueError: invalid idset '3,2': '2' is not in ascending order or repeats an id
        """
        return cls._of(_parse(s))

    @classmethod
    def from_range(cls, lo: int, hi: int) -> IDSet:
        """The ids ``lo..hi`` inclusive (either order, like ``idset_range_set``).

        >>> IDSet.from_range(0, 3)
        IDSet('0-3')
        """
        lo, hi = (lo, hi) if lo <= hi else (hi, lo)
        if lo < 0:
            raise ValueError(f"idset ids must be non-negative, got {lo}")
        return cls._of([(lo, hi)])

    def encode(self, ranges: bool = True, brackets: bool = False) -> str:
        """Encode as an RFC 22 string, like flux-core's ``idset_encode``.

        Parameters
        ----------
        ranges : bool
            Compress consecutive ids into ``lo-hi`` (``IDSET_FLAG_RANGE``).
        brackets : bool
            Wrap in ``[...]``, but only when there is more than one id
            (``IDSET_FLAG_BRACKETS``).

        Examples
        --------
        >>> ids = IDSet("1,7-9")
        >>> ids.encode(), ids.encode(ranges=False), ids.encode(brackets=True)
        ('1,7-9', '1,7,8,9', '[1,7-9]')
        >>> IDSet("2").encode(brackets=True)
        '2'
        """
        if ranges:
            s = self._str
            if s is None:
                s = self._str = ",".join(
                    str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self._ranges
                )
        else:
            s = ",".join(map(str, self))
        if brackets and self._count > 1:
            return f"[{s}]"
        return s

    def __str__(self) -> str:
        return self.encode()

    def __repr__(self) -> str:
        return f"IDSet('{self.encode()}')"

    # -- queries ----------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    def count(self) -> int:
        """Number of ids in the set (``idset_count``)."""
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __iter__(self) -> Iterator[int]:
        for lo, hi in self._ranges:
            yield from range(lo, hi + 1)

    def __reversed__(self) -> Iterator[int]:
        for lo, hi in reversed(self._ranges):
            yield from range(hi, lo - 1, -1)

    def __contains__(self, id: object) -> bool:
        if not isinstance(id, int):
            return False
        k = bisect_right(self._ranges, id, key=_lo) - 1
        return k >= 0 and id <= self._ranges[k][1]

    def ranges(self) -> list[tuple[int, int]]:
        """The ids as sorted, disjoint, non-adjacent ``(lo, hi)`` pairs.

        >>> IDSet("0-3,5").ranges()
        [(0, 3), (5, 5)]
        """
        return list(self._ranges)

    def first(self) -> int:
        """Smallest id; raises ValueError if the set is empty."""
        if not self._ranges:
            raise ValueError("first() of an empty idset")
        return self._ranges[0][0]

    def last(self) -> int:
        """Largest id; raises ValueError if the set is empty."""
        if not self._ranges:
            raise ValueError("last() of an empty idset")
        return self._ranges[-1][1]

    def next(self, id: int) -> int | None:
        """Smallest id greater than ``id``, or None (``idset_next``)."""
        k = bisect_right(self._ranges, id, key=_lo) - 1
        if k >= 0 and id < self._ranges[k][1]:
            return id + 1
        return self._ranges[k + 1][0] if k + 1 < len(self._ranges) else None

    def nth(self, n: int) -> int:
        """The id at position ``n`` in ascending order (negative counts back).

        >>> IDSet("0-1,8-9").nth(2)
        8
        """
        if n < 0:
            n += self._count
        if not 0 <= n < self._count:
            raise IndexError(f"idset index {n} out of range")
        for lo, hi in self._ranges:
            size = hi - lo + 1
            if n < size:
                return lo + n
            n -= size
        raise AssertionError("unreachable")  # pragma: no cover

    def index(self, id: int) -> int:
        """Position of ``id`` in ascending order; ValueError if absent.

        >>> IDSet("0-1,8-9").index(8)
        2
        """
        pos = 0
        for lo, hi in self._ranges:
            if lo <= id <= hi:
                return pos + id - lo
            if id < lo:
                break
            pos += hi - lo + 1
        raise ValueError(f"{id} is not in idset '{self.encode()}'")

    # -- mutation ---------------------------------------------------------

    def add(self, id: int) -> None:
        """Add one id (``idset_set``)."""
        self.add_range(id, id)

    def add_range(self, lo: int, hi: int) -> None:
        """Add ids ``lo..hi`` inclusive (``idset_range_set``)."""
        self._set(_merge(self._ranges, IDSet.from_range(lo, hi)._ranges))

    def discard(self, id: int) -> None:
        """Remove one id if present (``idset_clear``)."""
        self.discard_range(id, id)

    def discard_range(self, lo: int, hi: int) -> None:
        """Remove ids ``lo..hi`` inclusive where present."""
        self._set(_subtract(self._ranges, IDSet.from_range(lo, hi)._ranges))

    def remove(self, id: int) -> None:
        """Remove one id; KeyError if it is absent."""
        if id not in self:
            raise KeyError(id)
        self.discard(id)

    def update(self, *others: IDSet | Iterable[int] | str) -> None:
        """Add every id of ``others`` in place."""
        for o in others:
            self._set(_merge(self._ranges, _coerce(o)._ranges))

    def difference_update(self, *others: IDSet | Iterable[int] | str) -> None:
        """Remove every id of ``others`` in place."""
        for o in others:
            self._set(_subtract(self._ranges, _coerce(o)._ranges))

    def intersection_update(self, *others: IDSet | Iterable[int] | str) -> None:
        """Keep only ids also in every one of ``others``."""
        for o in others:
            self._set(_intersect(self._ranges, _coerce(o)._ranges))

    def clear(self) -> None:
        """Remove all ids."""
        self._set([])

    def copy(self) -> IDSet:
        return IDSet._of(list(self._ranges))

    # -- set algebra ------------------------------------------------------

    def union(self, *others: IDSet | Iterable[int] | str) -> IDSet:
        new = self.copy()
        new.update(*others)
        return new

    def intersection(self, *others: IDSet | Iterable[int] | str) -> IDSet:
        new = self.copy()
        new.intersection_update(*others)
        return new

    def difference(self, *others: IDSet | Iterable[int] | str) -> IDSet:
        new = self.copy()
        new.difference_update(*others)
        return new

    def symmetric_difference(self, other: IDSet | Iterable[int] | str) -> IDSet:
        o = _coerce(other)
        return IDSet._of(
            _merge(_subtract(self._ranges, o._ranges), _subtract(o._ranges, self._ranges))
        )

    def issubset(self, other: IDSet | Iterable[int] | str) -> bool:
        return not _subtract(self._ranges, _coerce(other)._ranges)

    def issuperset(self, other: IDSet | Iterable[int] | str) -> bool:
        return not _subtract(_coerce(other)._ranges, self._ranges)

    def isdisjoint(self, other: IDSet | Iterable[int] | str) -> bool:
        return not _intersect(self._ranges, _coerce(other)._ranges)

    def __or__(self, other: object) -> IDSet:
        if not isinstance(other, IDSet):
            return NotImplemented
        return IDSet._of(_merge(self._ranges, other._ranges))

    def __and__(self, other: object) -> IDSet:
        if not isinstance(other, IDSet):
            return NotImplemented
        return IDSet._of(_intersect(self._ranges, other._ranges))

    def __sub__(self, other: object) -> IDSet:
        if not isinstance(other, IDSet):
            return NotImplemented
        return IDSet._of(_subtract(self._ranges, other._ranges))

    def __xor__(self, other: object) -> IDSet:
        if not isinstance(other, IDSet):
            return NotImplemented
        return self.symmetric_difference(other)

    def __ior__(self, other: object) -> IDSet:
        if not isinstance(other, IDSet):
            return NotImplemented
        self.update(other)
        return self

    def __iand__(self, other: object) -> IDSet:
        if not isinstance(other, IDSet):
            return NotImplemented
        self.intersection_update(other)
        return self

    def __isub__(self, other: object) -> IDSet:
        if not isinstance(other, IDSet):
            return NotImplemented
        self.difference_update(other)
        return self

    def __le__(self, other: object) -> bool:
        if not isinstance(other, IDSet):
            return NotImplemented
        return self.issubset(other)

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, IDSet):
            return NotImplemented
        return self.issuperset(other)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, IDSet):
            return NotImplemented
        return self.issubset(other) and self._count < other._count

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, IDSet):
            return NotImplemented
        return self.issuperset(other) and self._count > other._count

    def __eq__(self, other: object) -> bool:
        if isinstance(other, IDSet):
            return self._ranges == other._ranges
        if isinstance(other, (set, frozenset)):
            return len(other) == self._count and all(i in other for i in self)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like set


def _coerce(o: IDSet | Iterable[int] | str) -> IDSet:
    return o if isinstance(o, IDSet) else IDSet(o)


def decode(s: str) -> IDSet:
    """Decode an RFC 22 string; same as :meth:`IDSet.decode`.

    >>> decode("[0-2]").count()
    3
    """
    return IDSet.decode(s)


def encode(ids: IDSet | Iterable[int], ranges: bool = True, brackets: bool = False) -> str:
    """Encode ids (an IDSet or any iterable of ints) as an RFC 22 string.

    >>> encode([3, 1, 2, 7])
    '1-3,7'
    """
    return _coerce(ids).encode(ranges=ranges, brackets=brackets)
