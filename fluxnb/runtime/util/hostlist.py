"""RFC 29 hostlists: compact, ordered lists of host names.

A hostlist string is a comma separated list of ``prefix[idlist]suffix``
expressions: ``"node[0-3,7],login1"``. The idlist keeps its order and may
repeat ids; leading zeros of a range's first id set the width of every id
in it (``"node[00-03]"`` is ``node00 .. node03``).

:class:`Hostlist` follows flux-core's libhostlist: a hostlist is a list of
*hostranges* (prefix, lo, hi, width), a host appended right after its
neighbour joins its range, and :meth:`Hostlist.encode` gathers adjacent
ranges with the same prefix into one bracket. ``sort`` and ``uniq`` have
the semantics of ``flux hostlist --sort`` / ``--uniq``: sorting keeps
duplicates, uniq drops them.

Examples
--------
>>> hl = Hostlist("node[0-3,7],login1")
>>> len(hl), hl[4], hl[-1]
(6, 'node7', 'login1')
>>> Hostlist("foo1,foo2,foo3,fooi").encode()
'foo[1-3],fooi'
>>> Hostlist("[00-02]").expand()
['00', '01', '02']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import cmp_to_key
from typing import overload

__all__ = ["Hostlist", "decode"]

# A bracketed range larger than this is assumed to be a typing mistake
# (flux-core's MAX_RANGE).
MAX_RANGE = 1 << 20

_SEPARATORS = "\t, "
_DIGITS = re.compile(r"[0-9]+")
_TRAILING_DIGITS = re.compile(r"[0-9]+\Z")


class _HostRange:
    """``prefix`` + ids ``lo..hi`` zero padded to ``width``; or, when
    ``single``, one host named ``prefix`` that has no numeric suffix."""

    __slots__ = ("prefix", "lo", "hi", "width", "single")

    def __init__(self, prefix: str, lo: int = 0, hi: int = 0, width: int = 0,
                 single: bool = False) -> None:
        self.prefix = prefix
        self.lo = lo
        self.hi = hi
        self.width = width
        self.single = single

    def copy(self) -> _HostRange:
        return _HostRange(self.prefix, self.lo, self.hi, self.width, self.single)

    def count(self) -> int:
        return 1 if self.single else self.hi - self.lo + 1

    def host(self, depth: int) -> str:
        if self.single:
            return self.prefix
        return self.prefix + str(self.lo + depth).zfill(self.width)

    def offset(self, host: str) -> int:
        """Position of ``host`` in this range, or -1."""
        if self.single:
            return 0 if host == self.prefix else -1
        if not host.startswith(self.prefix):
            return -1
        digits = host[len(self.prefix):]
        if not _DIGITS.fullmatch(digits):
            return -1
        n = int(digits)
        if self.lo <= n <= self.hi and str(n).zfill(self.width) == digits:
            return n - self.lo
        return -1


def _zero_padded(num: int, width: int) -> int:
    return max(width - len(str(num)), 0)


def _width_combine(h0: _HostRange, h1: _HostRange) -> bool:
    """True if the ranges' widths are compatible; may adopt one width into
    the other (flux-core's ``width_equiv``), so that ``foo9`` then ``foo10``
    join as ``foo[9-10]`` while ``foo9`` and ``foo010`` never do."""
    npad = _zero_padded(h0.lo, h0.width)
    nmpad = _zero_padded(h0.lo, h1.width)
    mpad = _zero_padded(h1.lo, h1.width)
    mnpad = _zero_padded(h1.lo, h0.width)
    if npad != nmpad and mpad != mnpad:
        return False
    if npad != nmpad:
        h1.width = h0.width
    else:
        h0.width = h1.width
    return True


def _prefix_cmp(h1: _HostRange, h2: _HostRange) -> int:
    if h1.prefix != h2.prefix:
        return -1 if h1.prefix < h2.prefix else 1
    # A host without numeric suffix sorts before a range with its prefix.
    return int(h2.single) - int(h1.single)


def _range_cmp(h1: _HostRange, h2: _HostRange) -> int:
    rv = _prefix_cmp(h1, h2)
    if rv == 0:
        rv = h1.lo - h2.lo if _width_combine(h1, h2) else h1.width - h2.width
    return (rv > 0) - (rv < 0)


def _within_range(h1: _HostRange, h2: _HostRange | None) -> bool:
    """True if h1 and h2 print inside the same ``prefix[...]`` bracket."""
    return (h2 is not None and _prefix_cmp(h1, h2) == 0
            and not h1.single and not h2.single)


def _tokens(s: str) -> Iterator[str]:
    """Split at separators outside brackets (flux-core's ``next_tok``)."""
    start = None
    level = 0
    for i, c in enumerate(s):
        if level == 0 and c in _SEPARATORS:
            if start is not None:
                yield s[start:i]
                start = None
            continue
        if start is None:
            start = i
        if c == "[":
            level += 1
        elif c == "]":
            level -= 1
    if start is not None:
        yield s[start:]


def _parse_ranges(s: str, inner: str) -> list[tuple[int, int, int]]:
    """Parse the idlist between brackets into (lo, hi, width) triples."""
    out = []
    for part in inner.split(","):
        lo_s, dash, hi_s = part.partition("-")
        if not _DIGITS.fullmatch(lo_s) or (dash and not _DIGITS.fullmatch(hi_s)):
            what = "empty range" if not part else f"'{part}' is not an id or lo-hi range"
            raise ValueError(f"invalid hostlist '{s}': {what} in '[{inner}]'")
        lo = int(lo_s)
        hi = int(hi_s) if dash else lo
        if lo > hi:
            raise ValueError(f"invalid hostlist '{s}': range '{part}' is descending")
        if hi - lo + 1 > MAX_RANGE:
            raise ValueError(
                f"invalid hostlist '{s}': range '{part}' has more than "
                f"{MAX_RANGE} hosts"
            )
        out.append((lo, hi, len(lo_s)))
    return out


def _expand_token(s: str, tok: str, product: bool = True) -> list[str] | list[_HostRange]:
    """Hostranges (or, with a suffix, plain names) for one expression."""
    p = tok.find("[")
    if p < 0:
        if "]" in tok:
            raise ValueError(f"invalid hostlist '{s}': unmatched ']' in '{tok}'")
        return [tok]
    q = tok.find("]", p + 1)
    prefix = tok[:p]
    if q < 0:
        raise ValueError(f"invalid hostlist '{s}': unmatched '[' in '{tok}'")
    if "]" in prefix:
        raise ValueError(f"invalid hostlist '{s}': unmatched ']' in '{tok}'")
    ranges = _parse_ranges(s, tok[p + 1:q])
    suffix = tok[q + 1:]
    if not suffix:
        return [_HostRange(prefix, lo, hi, width) for lo, hi, width in ranges]
    # With a suffix each host stands alone, as in flux-core. A further
    # bracket in the suffix ("r[1-2]n[1-2]") expands as a product, an
    # extension: flux-core would keep it literally inside the name.
    bracketed = "[" in suffix or "]" in suffix
    suffixes = _expand_suffix(s, suffix) if bracketed and product else [suffix]
    return [
        f"{prefix}{str(n).zfill(width)}{sfx}"
        for lo, hi, width in ranges
        for n in range(lo, hi + 1)
        for sfx in suffixes
    ]


def _expand_suffix(s: str, suffix: str) -> list[str]:
    out = []
    for item in _expand_token(s, suffix):
        if isinstance(item, _HostRange):
            out.extend(item.host(d) for d in range(item.count()))
        else:
            out.append(item)
    return out


def _host_range(name: str) -> _HostRange:
    """Hostrange of one host name: its trailing digits are its id."""
    m = _TRAILING_DIGITS.search(name)
    if m is None:
        return _HostRange(name, single=True)
    n = int(m.group())
    return _HostRange(name[:m.start()], n, n, len(m.group()))


class Hostlist:
    """An ordered list of host names, kept in compressed form (RFC 29).

    Parameters
    ----------
    hosts : str, Hostlist or iterable of str, optional
        A hostlist string, or items each of which is a host name or a
        hostlist string, appended in order.

    Examples
    --------
    >>> hl = Hostlist(["foo12", "foo[4,1-2]"])
    >>> str(hl), len(hl)
    ('foo[12,4,1-2]', 4)
    >>> "foo4" in hl, hl.find("foo2"), hl.find("bar")
    (True, 3, -1)
    """

    __slots__ = ("_ranges", "_nhosts")

    def __init__(self, hosts: str | Hostlist | Iterable[str] | None = None) -> None:
        self._ranges: list[_HostRange] = []
        self._nhosts = 0
        if hosts is not None:
            self.append(hosts)

    # -- codec ------------------------------------------------------------

    @classmethod
    def decode(cls, s: str, product: bool = True) -> Hostlist:
        """Decode an RFC 29 hostlist string.

        A bracket in the suffix (``r[1-2]n[1-2]``) expands as a product; with
        ``product=False`` it stays in the names (``r1n[1-2],r2n[1-2]``), as
        flux-core's ``hostlist_decode`` leaves it.

        Raises
        ------
        ValueError
            Naming the string and what is wrong (unmatched brackets, an
            empty or descending range, a range of more than 2**20 hosts).

        Examples
        --------
        >>> Hostlist.decode("foo[0-4]-eth2").expand()[:2]
        ['foo0-eth2', 'foo1-eth2']
        >>> Hostlist.decode("foo[1,3")
        Traceback (most recent call last):
        ...
        ValueError: invalid hostlist 'foo[1,3': unmatched '[' in 'foo[1,3'
        """
        if not isinstance(s, str):
            raise TypeError(f"hostlist must be decoded from a str, not {type(s).__name__}")
        hl = cls()
        for tok in _tokens(s):
            for item in _expand_token(s, tok, product):
                if isinstance(item, _HostRange):
                    hl._append_range(item)
                elif tok.find("[") >= 0:
                    hl._append_range(_HostRange(item, single=True))
                else:
                    hl._append_range(_host_range(item))
        return hl

    def encode(self) -> str:
        """The canonical compressed string, as flux-core's ``hostlist_encode``.

        >>> Hostlist("fooi,foo1,foo2,foo3,foo5,foo7,foo8").encode()
        'fooi,foo[1-3,5,7-8]'
        """
        out = []
        rs = self._ranges
        i, n = 0, len(rs)
        while i < n:
            first = rs[i]
            bracket = first.count() > 1 or _within_range(first, rs[i + 1] if i + 1 < n else None)
            parts = []
            while True:
                hr = rs[i]
                if not hr.single:
                    lo = str(hr.lo).zfill(hr.width)
                    parts.append(lo if hr.lo == hr.hi else f"{lo}-{str(hr.hi).zfill(hr.width)}")
                i += 1
                if i >= n or not _within_range(rs[i], rs[i - 1]):
                    break
            body = ",".join(parts) if bracket else "".join(parts)
            out.append(f"{first.prefix}[{body}]" if bracket else first.prefix + body)
        return ",".join(out)

    def __str__(self) -> str:
        return self.encode()

    def __repr__(self) -> str:
        return f"Hostlist('{self.encode()}')"

    # -- building ---------------------------------------------------------

    def _append_range(self, hr: _HostRange) -> None:
        tail = self._ranges[-1] if self._ranges else None
        if (tail is not None and _prefix_cmp(tail, hr) == 0
                and tail.hi == hr.lo - 1 and not hr.single
                and _width_combine(tail, hr)):
            tail.hi = hr.hi
        else:
            self._ranges.append(hr.copy())
        self._nhosts += hr.count()

    def append(self, hosts: str | Hostlist | Iterable[str]) -> int:
        """Append hosts at the end; return how many were appended.

        >>> hl = Hostlist("foo[1-2]")
        >>> hl.append("foo3"), str(hl)
        (1, 'foo[1-3]')
        """
        before = self._nhosts
        if isinstance(hosts, str):
            other = Hostlist.decode(hosts)
        elif isinstance(hosts, Hostlist):
            other = hosts
        else:
            for item in hosts:
                self.append(item)
            return self._nhosts - before
        for hr in list(other._ranges):
            self._append_range(hr)
        return self._nhosts - before

    def copy(self) -> Hostlist:
        new = Hostlist()
        new._ranges = [hr.copy() for hr in self._ranges]
        new._nhosts = self._nhosts
        return new

    # -- queries ----------------------------------------------------------

    def __len__(self) -> int:
        return self._nhosts

    def count(self) -> int:
        """Number of hosts, counting repeats (``hostlist_count``)."""
        return self._nhosts

    def __iter__(self) -> Iterator[str]:
        for hr in self._ranges:
            if hr.single:
                yield hr.prefix
            else:
                for n in range(hr.lo, hr.hi + 1):
                    yield hr.prefix + str(n).zfill(hr.width)

    def expand(self) -> list[str]:
        """All host names, in order."""
        return list(self)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Hostlist: ...

    def __getitem__(self, index: int | slice) -> str | Hostlist:
        if isinstance(index, slice):
            return Hostlist(self.expand()[index])
        n = index + self._nhosts if index < 0 else index
        if not 0 <= n < self._nhosts:
            raise IndexError(f"hostlist index {index} out of range")
        for hr in self._ranges:
            c = hr.count()
            if n < c:
                return hr.host(n)
            n -= c
        raise AssertionError("unreachable")  # pragma: no cover

    def _locate(self, host: str) -> tuple[int, int, int]:
        """(index in list, range number, offset in range) or (-1, -1, -1)."""
        pos = 0
        for k, hr in enumerate(self._ranges):
            off = hr.offset(host)
            if off >= 0:
                return pos + off, k, off
            pos += hr.count()
        return -1, -1, -1

    def find(self, host: str) -> int:
        """Index of the first occurrence of ``host``, or -1 (``hostlist_find``).

        >>> Hostlist("i[00-05]").find("i04"), Hostlist("i[0-5]").find("i00")
        (4, -1)
        """
        return self._locate(host)[0]

    def index(self, host: str) -> int:
        """Index of the first occurrence of ``host``; ValueError if absent."""
        i = self.find(host)
        if i < 0:
            raise ValueError(f"'{host}' is not in hostlist '{self.encode()}'")
        return i

    def __contains__(self, host: object) -> bool:
        return isinstance(host, str) and self.find(host) >= 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Hostlist):
            return NotImplemented
        return self._nhosts == other._nhosts and self.expand() == other.expand()

    __hash__ = None  # type: ignore[assignment]  # mutable

    # -- editing ----------------------------------------------------------

    def delete(self, hosts: str | Hostlist | Iterable[str]) -> int:
        """Delete the first occurrence of each host in ``hosts``; return how
        many were deleted (``hostlist_delete``).

        >>> hl = Hostlist("foo[2-5],fooi")
        >>> hl.delete("foo3"), str(hl)
        (1, 'foo[2,4-5],fooi')
        """
        deleted = 0
        for host in Hostlist(hosts):
            _, k, off = self._locate(host)
            if k < 0:
                continue
            hr = self._ranges[k]
            n = hr.lo + off
            if hr.single or hr.lo == hr.hi:
                del self._ranges[k]
            elif n == hr.lo:
                hr.lo += 1
            elif n == hr.hi:
                hr.hi -= 1
            else:
                upper = hr.copy()
                upper.lo = n + 1
                hr.hi = n - 1
                self._ranges.insert(k + 1, upper)
            self._nhosts -= 1
            deleted += 1
        return deleted

    def sort(self) -> Hostlist:
        """Sort in place, keeping duplicates; return self (``hostlist_sort``).

        Hosts sort by prefix, then numerically; overlapping ranges are split
        so each duplicate sits next to its twin.

        >>> str(Hostlist("[0-20],12,15").sort())
        '[0-12,12-15,15-20]'
        """
        if len(self._ranges) > 1:
            self._ranges.sort(key=cmp_to_key(_range_cmp))
            self._coalesce()
        return self

    def _coalesce(self) -> None:
        rs = self._ranges
        i = len(rs) - 1
        while i > 0:
            prev, nxt = rs[i - 1], rs[i]
            dup = self._intersect(prev, nxt)
            if dup is not None:
                lo, hi = dup
                if hi < prev.hi:
                    nxt.hi = prev.hi
                prev.hi = lo
                nxt.lo = hi
                j = i
                for n in range(lo, hi + 1):
                    one = _HostRange(prev.prefix, n, n, prev.width)
                    if n > prev.hi:
                        rs.insert(j, one)
                        j += 1
                    if n < nxt.lo:
                        rs.insert(j, one.copy())
                        j += 1
                i = len(rs)
            i -= 1
        # Join ranges that now abut.
        for i in range(len(rs) - 1, 0, -1):
            prev, nxt = rs[i - 1], rs[i]
            if (_prefix_cmp(prev, nxt) == 0 and not prev.single
                    and prev.hi == nxt.lo - 1 and _width_combine(prev, nxt)):
                prev.hi = nxt.hi
                del rs[i]

    @staticmethod
    def _intersect(h1: _HostRange, h2: _HostRange) -> tuple[int, int] | None:
        if h1.single or h2.single:
            return None
        if _prefix_cmp(h1, h2) == 0 and h1.hi > h2.lo and _width_combine(h1, h2):
            return h2.lo, min(h1.hi, h2.hi)
        return None

    def uniq(self) -> Hostlist:
        """Sort in place and drop duplicates; return self (``hostlist_uniq``).

        >>> str(Hostlist("bar1,bar2,foo1,foo,foo").uniq())
        'bar[1-2],foo,foo1'
        """
        rs = self._ranges
        if len(rs) <= 1:
            return self
        rs.sort(key=cmp_to_key(_range_cmp))
        i = 1
        while i < len(rs):
            h1, h2 = rs[i - 1], rs[i]
            dup = -1
            if _prefix_cmp(h1, h2) == 0 and _width_combine(h1, h2):
                if h1.single and h2.single:
                    dup = 1
                elif h1.hi == h2.lo - 1:
                    h1.hi = h2.hi
                    dup = 0
                elif h1.hi >= h2.lo:
                    if h1.hi < h2.hi:
                        dup = h1.hi - h2.lo + 1
                        h1.hi = h2.hi
                    else:
                        dup = h2.count()
            if dup >= 0:
                del rs[i]
                self._nhosts -= dup
            else:
                i += 1
        return self


def decode(s: str) -> Hostlist:
    """Decode an RFC 29 string; same as :meth:`Hostlist.decode`."""
    return Hostlist.decode(s)
