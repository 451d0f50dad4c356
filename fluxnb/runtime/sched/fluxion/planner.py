"""Planners: resource availability over time, as Fluxion keeps it per vertex.

A :class:`Planner` tracks one resource quantity (a vertex's ``size``, or the
number of jobs sharing a vertex) as a step function of time.  It stores only
the *scheduled points* where usage changes, in a :class:`sortedcontainers.SortedDict`
mapping ``time -> usage from that time on``, so "how much is free during
[at, at+d)" is a range query over the points inside the window and "when is
the earliest time this fits" walks the points after ``at`` in order.

:class:`MultiPlanner` keeps one :class:`Planner` per resource type under a
vertex (the subtree aggregates used by the pruning filters) and answers the
same questions for a vector of requests.

Examples
--------
>>> p = Planner(total=4)
>>> span = p.add_span(0, 100, 3)
>>> p.avail_during(0, 10), p.avail_during(100, 10)
(1, 4)
>>> p.avail_time_first(0, 50, 2)
100
>>> p.remove_span(span)
>>> p.avail_during(0, 10)
4
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sortedcontainers import SortedDict

__all__ = ["INT64_MAX", "Planner", "MultiPlanner", "PlannerError"]

#: Planners span [0, INT64_MAX) like flux-sched's resource-query planners.
INT64_MAX = (1 << 63) - 1


class PlannerError(ValueError):
    """A span or query does not fit the planner (bad time, amount or id)."""


class Planner:
    """Availability of one resource quantity over time.

    Parameters
    ----------
    total : int
        Amount available at any time when nothing is planned.
    base_time : int, optional
        First schedulable time (default 0).
    duration : int, optional
        Length of the planning horizon (default ``INT64_MAX``).
    resource_type : str, optional
        Name of the planned resource, for messages and multi planners.
    """

    __slots__ = ("total", "base_time", "duration", "resource_type", "_points", "_spans", "_next_id")

    def __init__(self, total: int, base_time: int = 0, duration: int = INT64_MAX,
                 resource_type: str = "") -> None:
        if total < 0:
            raise PlannerError(f"planner total must be >= 0, got {total}")
        self.total = total
        self.base_time = base_time
        self.duration = duration
        self.resource_type = resource_type
        # time -> amount in use from that time until the next point; None while
        # nothing is planned, so the many never-used planners of a large graph
        # cost no sorted container.
        self._points: SortedDict | None = None
        self._spans: dict[int, tuple[int, int, int]] = {}
        self._next_id = 1

    # -- spans ---------------------------------------------------------------
    @property
    def span_count(self) -> int:
        """Number of spans currently planned."""
        return len(self._spans)

    def spans(self) -> Iterator[tuple[int, int, int, int]]:
        """Yield ``(span_id, start, end, amount)`` for every planned span."""
        for sid, (start, end, amount) in self._spans.items():
            yield sid, start, end, amount

    def _split(self, t: int) -> None:
        pts = self._points
        if t not in pts:
            idx = pts.bisect_right(t) - 1
            pts[t] = pts.peekitem(idx)[1] if idx >= 0 else 0

    def add_span(self, start: int, duration: int, amount: int) -> int:
        """Plan ``amount`` units during ``[start, start+duration)``; return the span id.

        Raises
        ------
        PlannerError
            If the window is outside the horizon or ``amount`` exceeds what is free.
        """
        if duration < 1 or start < self.base_time:
            raise PlannerError(f"invalid span [{start}, +{duration}) for {self.resource_type or 'planner'}")
        end = min(start + duration, self.base_time + self.duration)
        if amount < 0 or amount > self.avail_during(start, end - start):
            raise PlannerError(
                f"span of {amount} {self.resource_type or 'units'} at {start} exceeds availability")
        if self._points is None:
            self._points = SortedDict({self.base_time: 0})
        self._split(start)
        self._split(end)
        pts = self._points
        for t in pts.irange(start, end, inclusive=(True, False)):
            pts[t] += amount
        sid = self._next_id
        self._next_id += 1
        self._spans[sid] = (start, end, amount)
        return sid

    def remove_span(self, span_id: int) -> None:
        """Remove a span added by :meth:`add_span`."""
        try:
            start, end, amount = self._spans.pop(span_id)
        except KeyError:
            raise PlannerError(f"no span {span_id} in {self.resource_type or 'planner'}") from None
        if not self._spans:
            self._points = None
            return
        pts = self._points
        for t in list(pts.irange(start, end, inclusive=(True, False))):
            pts[t] -= amount
        self._coalesce(start)
        self._coalesce(end)

    def reduce_span(self, span_id: int, amount: int) -> bool:
        """Release ``amount`` units of a span; return True if the span is now empty."""
        start, end, planned = self._spans[span_id]
        if amount < 0 or amount > planned:
            raise PlannerError(f"cannot reduce span {span_id} of {planned} by {amount}")
        self.remove_span(span_id)
        if planned - amount == 0:
            return True
        if self._points is None:
            self._points = SortedDict({self.base_time: 0})
        self._split(start)
        self._split(end)
        for t in self._points.irange(start, end, inclusive=(True, False)):
            self._points[t] += planned - amount
        self._spans[span_id] = (start, end, planned - amount)
        return False

    def _coalesce(self, t: int) -> None:
        pts = self._points
        if t == self.base_time or t not in pts:
            return
        idx = pts.index(t)
        if idx > 0 and pts.peekitem(idx - 1)[1] == pts[t]:
            del pts[t]

    # -- queries -------------------------------------------------------------
    def used_at(self, t: int) -> int:
        """Amount in use at time ``t``."""
        pts = self._points
        if pts is None:
            return 0
        idx = pts.bisect_right(t) - 1
        return pts.peekitem(idx)[1] if idx >= 0 else 0

    def avail_at(self, t: int) -> int:
        """Amount free at time ``t``."""
        return self.total - self.used_at(t)

    def avail_during(self, at: int, duration: int) -> int:
        """Least amount free at any time in ``[at, at+duration)``."""
        if not self._spans:
            return self.total
        used = self.used_at(at)
        end = at + duration
        for t in self._points.irange(at, end, inclusive=(False, False)):
            u = self._points[t]
            if u > used:
                used = u
        return self.total - used

    def candidate_times(self, at: int) -> Iterator[int]:
        """Yield ``at`` then every scheduled point after it, in time order."""
        yield at
        if self._points is not None:
            yield from self._points.irange(at, None, inclusive=(False, True))

    def avail_time_first(self, at: int, duration: int, request: int) -> int:
        """Earliest time ``>= at`` at which ``request`` units are free for ``duration``.

        Returns -1 when the request exceeds the total or no such time exists.
        """
        if request > self.total:
            return -1
        limit = self.base_time + self.duration
        for t in self.candidate_times(at):
            if t + duration > limit:
                break
            if self.avail_during(t, duration) >= request:
                return t
        return -1


class MultiPlanner:
    """A vector of :class:`Planner` objects, one per resource type.

    Parameters
    ----------
    totals : Sequence[int]
        Total amount of each resource type.
    types : Sequence[str]
        Resource type names, in the order the totals are given.
    """

    __slots__ = ("types", "planners", "_index", "_spans", "_next_id", "_iter")

    def __init__(self, totals: Sequence[int], types: Sequence[str], base_time: int = 0,
                 duration: int = INT64_MAX) -> None:
        if len(totals) != len(types):
            raise PlannerError("multi planner needs one total per resource type")
        self.types = list(types)
        self.planners = [Planner(n, base_time, duration, t) for n, t in zip(totals, types)]
        self._index = {t: i for i, t in enumerate(self.types)}
        self._spans: dict[int, list[int]] = {}
        self._next_id = 1
        self._iter: tuple[Iterator[int], int, list[int]] | None = None

    @property
    def base_time(self) -> int:
        return self.planners[0].base_time if self.planners else 0

    @property
    def duration(self) -> int:
        return self.planners[0].duration if self.planners else INT64_MAX

    def index(self, rtype: str) -> int | None:
        """Position of ``rtype`` in this planner, or None."""
        return self._index.get(rtype)

    def total(self, rtype: str) -> int:
        i = self._index.get(rtype)
        return 0 if i is None else self.planners[i].total

    def span_count(self) -> int:
        return len(self._spans)

    def counts_for(self, wanted: dict[str, int]) -> list[int]:
        """Vector of requested amounts in this planner's type order (0 if absent)."""
        return [wanted.get(t, 0) for t in self.types]

    def add_span(self, start: int, duration: int, amounts: Sequence[int]) -> int:
        """Plan a vector of amounts; zero amounts are not recorded."""
        ids = []
        for p, n in zip(self.planners, amounts):
            ids.append(p.add_span(start, duration, n) if n > 0 else 0)
        sid = self._next_id
        self._next_id += 1
        self._spans[sid] = ids
        return sid

    def remove_span(self, span_id: int) -> None:
        for p, sid in zip(self.planners, self._spans.pop(span_id)):
            if sid:
                p.remove_span(sid)

    def span_planned(self, span_id: int, rtype: str) -> int:
        """Amount of ``rtype`` planned by a span."""
        i = self._index[rtype]
        sid = self._spans[span_id][i]
        return 0 if not sid else self.planners[i]._spans[sid][2]

    def reduce_span(self, span_id: int, amounts: Sequence[int]) -> bool:
        """Release amounts from a span; True when nothing remains of it."""
        ids = self._spans[span_id]
        for i, (p, n) in enumerate(zip(self.planners, amounts)):
            if ids[i] and n:
                if p.reduce_span(ids[i], n):
                    ids[i] = 0
        if not any(ids):
            del self._spans[span_id]
            return True
        return False

    def avail_at(self, t: int, rtype: str) -> int:
        i = self._index.get(rtype)
        return 0 if i is None else self.planners[i].avail_at(t)

    def avail_during(self, at: int, duration: int, amounts: Sequence[int]) -> bool:
        """True when every requested amount is free during ``[at, at+duration)``."""
        for p, n in zip(self.planners, amounts):
            if n and p.avail_during(at, duration) < n:
                return False
        return True

    def exceeds_total(self, amounts: Sequence[int]) -> bool:
        return any(n > p.total for p, n in zip(self.planners, amounts))

    def _candidates(self, at: int) -> Iterator[int]:
        times = {at}
        for p in self.planners:
            if p._points is not None:
                times.update(p._points.irange(at, None, inclusive=(False, True)))
        return iter(sorted(times))

    def avail_time_first(self, at: int, duration: int, amounts: Sequence[int]) -> int:
        """Earliest time ``>= at`` when all amounts fit; -1 if none.

        Subsequent fitting times come from :meth:`avail_time_next`.
        """
        if self.exceeds_total(amounts):
            self._iter = None
            return -1
        self._iter = (self._candidates(at), duration, list(amounts))
        return self.avail_time_next()

    def avail_time_next(self) -> int:
        """Next fitting time after the one last returned; -1 when exhausted."""
        if self._iter is None:
            return -1
        it, duration, amounts = self._iter
        limit = self.base_time + self.duration
        for t in it:
            if t + duration > limit:
                break
            if self.avail_during(t, duration, amounts):
                return t
        self._iter = None
        return -1
