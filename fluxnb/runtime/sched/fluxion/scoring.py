"""Scoring API: candidate edge groups the matcher collects and chooses from.

While it walks a subtree the matcher records, per subsystem and resource
type, *edge groups* (:class:`EGroup`): one candidate child (or one slot made
of several children) with its score and how many units it offers.  A
policy then sorts each type's candidates by score and takes the best *k*
(:meth:`Evals.choose_best_k`).

Fluxion sorts with C++ ``std::sort``, which is not stable: candidates with
equal scores come out in an order fixed by libstdc++'s introsort.  To choose
the same resources as Fluxion, :func:`cxx_sort` reproduces that algorithm
step by step (median-of-three quicksort down to runs of 16, heap sort past
the depth limit, final insertion sort); when all keys differ it simply uses
Python's sort, which gives the same order.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["EEdge", "EGroup", "Evals", "Scoring", "cxx_sort", "MATCH_MET", "MATCH_UNMET"]

MATCH_UNMET = 0
MATCH_MET = 1
_THRESHOLD = 16


class EEdge:
    """One edge inside a group: ``count`` units offered, ``needs`` taken."""

    __slots__ = ("count", "needs", "exclusive", "edge")

    def __init__(self, count: int, needs: int, exclusive: bool, edge: object) -> None:
        self.count = count
        self.needs = needs
        self.exclusive = exclusive
        self.edge = edge


class EGroup:
    """A scored candidate: one or more edges chosen together."""

    __slots__ = ("score", "count", "needs", "exclusive", "root", "task_label", "edges")

    def __init__(self, score: int, count: int, needs: int = 0, exclusive: bool = False,
                 root: bool = False) -> None:
        self.score = score
        self.count = count
        self.needs = needs
        self.exclusive = exclusive
        self.root = root
        self.task_label = ""
        self.edges: list[EEdge] = []


# -- libstdc++ std::sort ---------------------------------------------------------
def _insertion_sort(a: list, lo: int, hi: int, less: Callable) -> None:
    for i in range(lo + 1, hi):
        val = a[i]
        if less(val, a[lo]):
            a[lo + 1:i + 1] = a[lo:i]
            a[lo] = val
        else:
            j = i - 1
            while less(val, a[j]):
                a[j + 1] = a[j]
                j -= 1
            a[j + 1] = val


def _unguarded_insertion_sort(a: list, lo: int, hi: int, less: Callable) -> None:
    for i in range(lo, hi):
        val = a[i]
        j = i - 1
        while less(val, a[j]):
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = val


def _adjust_heap(a: list, first: int, hole: int, length: int, value: object, less: Callable) -> None:
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if less(a[first + child], a[first + child - 1]):
            child -= 1
        a[first + hole] = a[first + child]
        hole = child
    if (length & 1) == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        a[first + hole] = a[first + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2
    while hole > top and less(a[first + parent], value):
        a[first + hole] = a[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    a[first + hole] = value


def _heap_sort(a: list, lo: int, hi: int, less: Callable) -> None:
    n = hi - lo
    if n >= 2:
        parent = (n - 2) // 2
        while True:
            _adjust_heap(a, lo, parent, n, a[lo + parent], less)
            if parent == 0:
                break
            parent -= 1
    last = hi
    while last - lo > 1:
        last -= 1
        value = a[last]
        a[last] = a[lo]
        _adjust_heap(a, lo, 0, last - lo, value, less)


def _move_median_to_first(a: list, result: int, x: int, y: int, z: int, less: Callable) -> None:
    if less(a[x], a[y]):
        if less(a[y], a[z]):
            m = y
        elif less(a[x], a[z]):
            m = z
        else:
            m = x
    elif less(a[x], a[z]):
        m = x
    elif less(a[y], a[z]):
        m = z
    else:
        m = y
    a[result], a[m] = a[m], a[result]


def _partition(a: list, first: int, last: int, pivot: int, less: Callable) -> int:
    pv = a[pivot]
    while True:
        while less(a[first], pv):
            first += 1
        last -= 1
        while less(pv, a[last]):
            last -= 1
        if not first < last:
            return first
        a[first], a[last] = a[last], a[first]
        first += 1


def _introsort(a: list, lo: int, hi: int, depth: int, less: Callable) -> None:
    while hi - lo > _THRESHOLD:
        if depth == 0:
            _heap_sort(a, lo, hi, less)
            return
        depth -= 1
        mid = lo + (hi - lo) // 2
        _move_median_to_first(a, lo, lo + 1, mid, hi - 1, less)
        cut = _partition(a, lo + 1, hi, lo, less)
        _introsort(a, cut, hi, depth, less)
        hi = cut


def cxx_sort(a: list, key: Callable[[object], int], descending: bool) -> None:
    """Sort ``a`` in place exactly as libstdc++ ``std::sort`` would.

    ``descending`` selects the comparator ``key(x) > key(y)`` (Fluxion's
    ``fold::greater``), else ``key(x) < key(y)``.
    """
    n = len(a)
    if n < 2:
        return
    keys = [key(x) for x in a]
    if len(set(keys)) == n:  # no ties: every correct sort agrees
        a.sort(key=key, reverse=descending)
        return
    if descending:
        def less(x: object, y: object) -> bool:
            return key(x) > key(y)
    else:
        def less(x: object, y: object) -> bool:
            return key(x) < key(y)
    _introsort(a, 0, n, 2 * (n.bit_length() - 1), less)
    if n > _THRESHOLD:
        _insertion_sort(a, 0, _THRESHOLD, less)
        _unguarded_insertion_sort(a, _THRESHOLD, n, less)
    else:
        _insertion_sort(a, 0, n, less)


def _score(eg: EGroup) -> int:
    return eg.score


class Evals:
    """Candidates of one resource type."""

    __slots__ = ("groups", "qual_count", "total_count", "best_k", "best_i", "cutline", "_it")

    def __init__(self) -> None:
        self.groups: list[EGroup] = []
        self.qual_count = 0
        self.total_count = 0
        self.best_k = 0
        self.best_i = 0
        self.cutline = 0
        self._it = -1

    def add(self, eg: EGroup) -> None:
        self.total_count += eg.count
        if eg.score > self.cutline:
            self.qual_count += eg.count
        self.groups.append(eg)

    def merge(self, o: "Evals") -> None:
        self.qual_count += o.qual_count
        self.total_count += o.total_count
        self.groups.extend(o.groups)

    def choose_best_k(self, k: int, descending: bool) -> bool:
        """Sort by score and mark the first groups totalling ``k`` units."""
        if k == 0 or k > self.qual_count:
            return False
        cxx_sort(self.groups, _score, descending)
        i, left = 0, k
        while left > 0:
            g = self.groups[i]
            g.needs = left if left <= g.count else g.count
            left -= g.count
            i += 1
        self.best_k = k
        self.best_i = i
        return True

    def iter_reset(self) -> None:
        self._it = -1

    def iter_next(self) -> EGroup | None:
        self._it += 1
        return self.groups[self._it] if self._it < len(self.groups) else None


class Scoring:
    """Per-subsystem, per-type candidate lists of one visit (flux-sched scoring_api_t)."""

    __slots__ = ("ssys", "hier_constrain_now", "overall_score", "avail")

    def __init__(self) -> None:
        self.ssys: dict[str, dict[str, Evals]] = {}
        self.hier_constrain_now = False
        self.overall_score = -1
        self.avail = 0

    def evals(self, s: str, t: str) -> Evals:
        m = self.ssys.get(s)
        if m is None:
            m = self.ssys[s] = {}
        ev = m.get(t)
        if ev is None:
            ev = m[t] = Evals()
        return ev

    def add(self, s: str, t: str, eg: EGroup) -> None:
        self.evals(s, t).add(eg)

    def qualified_count(self, s: str, t: str) -> int:
        ev = self.ssys.get(s, {}).get(t)
        return ev.qual_count if ev else 0

    def total_count(self, s: str, t: str) -> int:
        ev = self.ssys.get(s, {}).get(t)
        return ev.total_count if ev else 0

    def best_k(self, s: str, t: str) -> int:
        ev = self.ssys.get(s, {}).get(t)
        return ev.best_k if ev else 0

    def is_contained(self, s: str, t: str) -> bool:
        return t in self.ssys.get(s, {})

    def types(self, s: str) -> list[str]:
        return sorted(self.ssys.get(s, {}))

    def merge(self, o: "Scoring") -> None:
        for s, tmap in o.ssys.items():
            for t, ev in tmap.items():
                self.evals(s, t).merge(ev)

    def choose_accum_best_k(self, s: str, t: str, k: int, descending: bool) -> None:
        if self.evals(s, t).choose_best_k(k, descending):
            self.hier_constrain_now = True

    def choose_accum_all(self, s: str, t: str, descending: bool) -> None:
        ev = self.evals(s, t)
        if ev.choose_best_k(ev.qual_count, descending):
            self.hier_constrain_now = True
