"""Planners: resource availability over time, as Fluxion keeps it per vertex.

A :class:`Planner` tracks one resource quantity (a vertex's ``size``, or the
number of jobs sharing a vertex) as a step function of time.  It stores only
the *scheduled points* where usage changes (sorted ``time -> usage from that
time on``), so "how much is free during
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

from bisect import bisect_left, bisect_right

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

    Notes
    -----
    The scheduled points are two parallel sorted lists searched with
    :mod:`bisect` (``_times[i]``: a time where usage changes, ``_used[i]``:
    usage from then on).  A vertex planner holds a handful of points, where
    list insertion beats a balanced container by far; even a root planner
    with thousands of points only pays a C ``memmove`` per insertion.  While
    nothing is planned both lists are ``None``, so the many never-used
    planners of a large graph cost almost nothing.
    """

    __slots__ = ("total", "base_time", "duration", "resource_type", "_times", "_used", "_spans",
                 "_next_id", "shared", "_mut")

    def __init__(self, total: int, base_time: int = 0, duration: int = INT64_MAX,
                 resource_type: str = "") -> None:
        if total < 0:
            raise PlannerError(f"planner total must be >= 0, got {total}")
        self.total = total
        self.base_time = base_time
        self.duration = duration
        self.resource_type = resource_type
        self._times: list[int] | None = None
        self._used: list[int] | None = None
        self._spans: dict[int, tuple[int, int, int]] = {}
        self._next_id = 1
        #: True for a planner several owners hold (see :meth:`copy`): never changed in place.
        self.shared = False
        #: Changes so far (spans added or removed): tells a kept result it is still what it was.
        self._mut = 0

    def copy(self) -> "Planner":
        """A private planner equal to this one.

        The update walk gives every leaf of one job that holds nothing else the
        same one-span planner (marked ``shared``); an owner that changes it
        first takes a copy (:attr:`~.graph.Vertex.plans`).
        """
        p = Planner.__new__(Planner)
        p.total = self.total
        p.base_time = self.base_time
        p.duration = self.duration
        p.resource_type = self.resource_type
        p._times = None if self._times is None else list(self._times)
        p._used = None if self._used is None else list(self._used)
        p._spans = dict(self._spans)
        p._next_id = self._next_id
        p.shared = False
        p._mut = 0
        return p

    @classmethod
    def with_first_span(cls, total: int, resource_type: str, start: int, duration: int,
                        amount: int) -> "Planner":
        """``Planner(total, 0, INT64_MAX, resource_type)`` holding span 1 of ``amount`` at ``start``.

        What ``p = Planner(...); p.add_span(start, duration, amount)`` gives,
        without the checks and calls: the update walk creates a vertex's
        planners this way on its first job.
        """
        if duration < 1 or start < 0 or not 0 <= amount <= total:
            p = cls(total, 0, INT64_MAX, resource_type)
            p.add_span(start, duration, amount)  # raises as usual
            return p
        p = cls.__new__(cls)
        p.total = total
        p.base_time = 0
        p.duration = INT64_MAX
        p.resource_type = resource_type
        end = start + duration
        if end > INT64_MAX:
            end = INT64_MAX
        if start == 0:
            p._times, p._used = [0, end], [amount, 0]
        else:
            p._times, p._used = [0, start, end], [0, amount, 0]
        p._spans = {1: (start, end, amount)}
        p._next_id = 2
        p.shared = False
        p._mut = 0
        return p

    # -- spans ---------------------------------------------------------------
    @property
    def span_count(self) -> int:
        """Number of spans currently planned."""
        return len(self._spans)

    def spans(self) -> Iterator[tuple[int, int, int, int]]:
        """Yield ``(span_id, start, end, amount)`` for every planned span."""
        for sid, (start, end, amount) in self._spans.items():
            yield sid, start, end, amount

    def _split(self, t: int) -> int:
        """Make ``t`` a scheduled point; return its index."""
        times = self._times
        i = bisect_left(times, t)  # type: ignore[arg-type]
        if i == len(times) or times[i] != t:  # type: ignore[arg-type,index]
            times.insert(i, t)  # type: ignore[union-attr]
            self._used.insert(i, self._used[i - 1] if i > 0 else 0)  # type: ignore[union-attr,index]
        return i

    def _plan(self, start: int, end: int, amount: int) -> None:
        self._mut += 1
        if self._times is None:
            self._times, self._used = [self.base_time], [0]
        i0 = self._split(start)
        i1 = self._split(end)
        used = self._used
        for k in range(i0, i1):
            used[k] += amount  # type: ignore[index]

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
        if self._times is None and 0 <= amount <= self.total:
            # first span of an idle planner: the common case of an update walk
            if start == self.base_time:
                self._times, self._used = [start, end], [amount, 0]
            else:
                self._times, self._used = [self.base_time, start, end], [0, amount, 0]
            sid = self._next_id
            self._next_id = sid + 1
            self._spans[sid] = (start, end, amount)
            self._mut += 1
            return sid
        if amount < 0 or amount > self.avail_during(start, end - start):
            raise PlannerError(
                f"span of {amount} {self.resource_type or 'units'} at {start} exceeds availability")
        self._plan(start, end, amount)
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
        self._mut += 1
        if not self._spans:
            self._times = self._used = None
            return
        # A point may have been merged away since the span was added: split
        # again so the whole window loses the span's amount.
        i0 = self._split(start)
        i1 = self._split(end)
        used = self._used
        for k in range(i0, i1):
            used[k] -= amount  # type: ignore[index]
        # coalesce the end point first so that the start index stays valid
        self._coalesce(i1)
        self._coalesce(i0)

    def reduce_span(self, span_id: int, amount: int) -> bool:
        """Release ``amount`` units of a span; return True if the span is now empty."""
        start, end, planned = self._spans[span_id]
        if amount < 0 or amount > planned:
            raise PlannerError(f"cannot reduce span {span_id} of {planned} by {amount}")
        self.remove_span(span_id)
        if planned - amount == 0:
            return True
        self._plan(start, end, planned - amount)
        self._spans[span_id] = (start, end, planned - amount)
        return False

    def _coalesce(self, i: int) -> None:
        times, used = self._times, self._used
        if 0 < i < len(times) and used[i - 1] == used[i]:  # type: ignore[arg-type,index]
            del times[i]  # type: ignore[union-attr]
            del used[i]  # type: ignore[union-attr]

    # -- queries -------------------------------------------------------------
    def used_at(self, t: int) -> int:
        """Amount in use at time ``t``."""
        times = self._times
        if times is None:
            return 0
        i = bisect_right(times, t) - 1
        return self._used[i] if i >= 0 else 0  # type: ignore[index]

    def avail_at(self, t: int) -> int:
        """Amount free at time ``t``."""
        return self.total - self.used_at(t)

    def avail_during(self, at: int, duration: int) -> int:
        """Least amount free at any time in ``[at, at+duration)``."""
        times = self._times
        if times is None:
            return self.total
        i = bisect_right(times, at) - 1
        j = bisect_left(times, at + duration, i + 1 if i >= 0 else 0)
        used = self._used
        if i < 0:
            return self.total - max(used[0:j], default=0)  # type: ignore[index]
        if j == i + 1:
            return self.total - used[i]  # type: ignore[index]
        return self.total - max(used[i:j])  # type: ignore[index]

    def points_after(self, at: int) -> list[int]:
        """Scheduled points strictly after ``at``, in time order."""
        times = self._times
        if times is None:
            return []
        return times[bisect_right(times, at):]

    def candidate_times(self, at: int) -> Iterator[int]:
        """Yield ``at`` then every scheduled point after it, in time order."""
        yield at
        yield from self.points_after(at)

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
        """The scheduled points at or after ``at``, in time order.

        As flux-sched's ``avail_at``, only scheduled points are candidates
        (the horizon's start and the ends of spans): ``at`` itself is one only
        if it is a point.  (Trying a time inside an unchanged stretch would
        repeat, for a reservation, the walk that just failed at its start.)
        """
        times: set[int] = set()
        for p in self.planners:
            if p.base_time >= at:
                times.add(p.base_time)
            pts = p._times
            if pts:
                times.update(pts[bisect_left(pts, at):])
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
