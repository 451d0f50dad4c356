"""libstdc++ ``std::sort``, step by step, so that ties break as in Fluxion.

Fluxion sorts candidates with C++ ``std::sort``, which is not stable:
candidates with equal scores come out in an order fixed by libstdc++'s
introsort (median-of-three quicksort down to runs of 16, heap sort past the
depth limit, then a final insertion sort).  To choose the same resources as
Fluxion, :func:`cxx_sort` reproduces that algorithm.

A match only ever reads the first *k* candidates of a sorted list, so
:func:`cxx_sort` takes an optional ``k`` and then stops partitioning any
range that starts at or past *k*: after a partition step every element left
of the cut compares "not greater" than every element right of it, and the
final insertion sort never moves an element across such a cut, so the first
*k* positions come out exactly as a full sort would leave them.  On a
cluster-wide list of hundreds of thousands of tied candidates that makes the
sort linear instead of ``n log n``.

Keys and items travel in two parallel lists, and comparisons are plain
``<`` on keys (negated for a descending sort), which keeps the inner loops
free of Python calls.

Examples
--------
>>> xs = [3, 1, 2, 3, 1]
>>> cxx_sort(xs, lambda x: x, descending=True)
>>> xs
[3, 3, 2, 1, 1]
"""

from __future__ import annotations

from operator import neg
from typing import Callable

__all__ = ["cxx_sort"]

_THRESHOLD = 16


def _insertion_sort(ks: list, ps: list, lo: int, hi: int) -> None:
    for i in range(lo + 1, hi):
        kv, pv = ks[i], ps[i]
        if kv < ks[lo]:
            ks[lo + 1:i + 1] = ks[lo:i]
            ps[lo + 1:i + 1] = ps[lo:i]
            ks[lo], ps[lo] = kv, pv
        else:
            j = i - 1
            while kv < ks[j]:
                ks[j + 1] = ks[j]
                ps[j + 1] = ps[j]
                j -= 1
            ks[j + 1], ps[j + 1] = kv, pv


def _unguarded_insertion_sort(ks: list, ps: list, lo: int, hi: int) -> None:
    for i in range(lo, hi):
        kv = ks[i]
        j = i - 1
        if not kv < ks[j]:
            continue
        pv = ps[i]
        while kv < ks[j]:
            ks[j + 1] = ks[j]
            ps[j + 1] = ps[j]
            j -= 1
        ks[j + 1], ps[j + 1] = kv, pv


def _adjust_heap(ks: list, ps: list, first: int, hole: int, length: int, kv: object, pv: object) -> None:
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if ks[first + child] < ks[first + child - 1]:
            child -= 1
        ks[first + hole], ps[first + hole] = ks[first + child], ps[first + child]
        hole = child
    if (length & 1) == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        ks[first + hole], ps[first + hole] = ks[first + child - 1], ps[first + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2
    while hole > top and ks[first + parent] < kv:  # type: ignore[operator]
        ks[first + hole], ps[first + hole] = ks[first + parent], ps[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    ks[first + hole], ps[first + hole] = kv, pv


def _heap_sort(ks: list, ps: list, lo: int, hi: int) -> None:
    n = hi - lo
    if n >= 2:
        parent = (n - 2) // 2
        while True:
            _adjust_heap(ks, ps, lo, parent, n, ks[lo + parent], ps[lo + parent])
            if parent == 0:
                break
            parent -= 1
    last = hi
    while last - lo > 1:
        last -= 1
        kv, pv = ks[last], ps[last]
        ks[last], ps[last] = ks[lo], ps[lo]
        _adjust_heap(ks, ps, lo, 0, last - lo, kv, pv)


def _move_median_to_first(ks: list, ps: list, result: int, x: int, y: int, z: int) -> None:
    if ks[x] < ks[y]:
        if ks[y] < ks[z]:
            m = y
        elif ks[x] < ks[z]:
            m = z
        else:
            m = x
    elif ks[x] < ks[z]:
        m = x
    elif ks[y] < ks[z]:
        m = z
    else:
        m = y
    ks[result], ks[m] = ks[m], ks[result]
    ps[result], ps[m] = ps[m], ps[result]


def _partition(ks: list, ps: list, first: int, last: int, pivot: int) -> int:
    kp = ks[pivot]
    while True:
        while ks[first] < kp:
            first += 1
        last -= 1
        while kp < ks[last]:
            last -= 1
        if not first < last:
            return first
        ks[first], ks[last] = ks[last], ks[first]
        ps[first], ps[last] = ps[last], ps[first]
        first += 1


def _introsort(ks: list, ps: list, lo: int, hi: int, depth: int, k: int, cuts: list[int]) -> None:
    while hi - lo > _THRESHOLD:
        if depth == 0:
            _heap_sort(ks, ps, lo, hi)
            return
        depth -= 1
        mid = lo + (hi - lo) // 2
        _move_median_to_first(ks, ps, lo, lo + 1, mid, hi - 1)
        cut = _partition(ks, ps, lo + 1, hi, lo)
        if cut < k:
            _introsort(ks, ps, cut, hi, depth, k, cuts)
        elif cut < cuts[0]:
            cuts[0] = cut  # nothing from cut on can reach the first k positions
        hi = cut


def cxx_sort(a: list, key: Callable[[object], int], descending: bool, k: int | None = None) -> None:
    """Sort ``a`` in place as libstdc++ ``std::sort`` would.

    ``descending`` selects the comparator ``key(x) > key(y)`` (Fluxion's
    ``fold::greater``), else ``key(x) < key(y)``.  With ``k``, only the first
    ``k`` positions are guaranteed to be those of the full sort (the rest of
    ``a`` is left in some order).
    """
    n = len(a)
    if n < 2:
        return
    keys = list(map(key, a))
    if len(set(keys)) == n:  # no ties: every correct sort agrees
        a.sort(key=key, reverse=descending)
        return
    ks = list(map(neg, keys)) if descending else keys
    if k is None or k > n:
        k = n
    cuts = [n]
    _introsort(ks, a, 0, n, 2 * (n.bit_length() - 1), k, cuts)
    end = cuts[0]
    if n > _THRESHOLD:
        _insertion_sort(ks, a, 0, min(_THRESHOLD, end))
        _unguarded_insertion_sort(ks, a, _THRESHOLD, end)
    else:
        _insertion_sort(ks, a, 0, n)
