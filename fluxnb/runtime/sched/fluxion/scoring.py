"""Scoring API: candidate edge groups the matcher collects and chooses from.

While it walks a subtree the matcher records, per subsystem and resource
type, *edge groups* (:class:`EGroup`): one candidate child (or one slot made
of several children) with its score and how many units it offers.  A
policy then sorts each type's candidates by score and takes the best *k*
(:meth:`Evals.choose_best_k`).

Fluxion sorts with C++ ``std::sort``, which is not stable: candidates with
equal scores come out in an order fixed by libstdc++'s introsort, which
:func:`~.cxxsort.cxx_sort` reproduces (only as far as the best *k* reach).
"""

from __future__ import annotations

from operator import attrgetter

from .cxxsort import cxx_sort

__all__ = ["EEdge", "EGroup", "Evals", "Scoring", "cxx_sort", "MATCH_MET", "MATCH_UNMET"]

MATCH_UNMET = 0
MATCH_MET = 1


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
                 root: bool = False, task_label: str = "", edges: list[EEdge] | None = None) -> None:
        self.score = score
        self.count = count
        self.needs = needs
        self.exclusive = exclusive
        self.root = root
        self.task_label = task_label
        self.edges: list[EEdge] = [] if edges is None else edges


_score = attrgetter("score")


class Evals:
    """Candidates of one resource type."""

    __slots__ = ("groups", "qual_count", "total_count", "best_k", "best_i", "cutline")

    def __init__(self) -> None:
        self.groups: list[EGroup] = []
        self.qual_count = 0
        self.total_count = 0
        self.best_k = 0
        self.best_i = 0
        self.cutline = 0

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
        cxx_sort(self.groups, _score, descending, k)  # every group offers >= 1 unit
        i, left = 0, k
        while left > 0:
            g = self.groups[i]
            g.needs = left if left <= g.count else g.count
            left -= g.count
            i += 1
        self.best_k = k
        self.best_i = i
        return True


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
