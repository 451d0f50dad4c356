"""The update walk: plan a selected match on the graph, and release it again.

After the depth-first match has chosen resources (marking the chosen edges,
see :meth:`~.matcher.Traverser._mark`), :meth:`UpdateWalk._update` follows
only those edges from the root, adding a span to each chosen vertex's
planner, tagging every vertex on the way with the job, updating the subtree
aggregates (pruning filters) and the ``first`` policy's edge weights, and
emitting each vertex to the match writer.  :meth:`UpdateWalk.cancel` undoes
all of that for one job.  As flux-sched's ``dfu_impl_update.cpp``, this is
one half of the traverser class (:class:`~.matcher.Traverser` mixes it in).
"""

from __future__ import annotations

import errno as _errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Literal

from .graph import EMPTY, X_CHECKER_NJOBS, Edge, Vertex
from .planner import Planner

from .writers import MatchWriter

__all__ = ["JobMeta", "MatchError", "UpdateWalk", "AllocType"]

AllocType = Literal["alloc", "reserve", "sat", "noalloc"]


class MatchError(Exception):
    """A match failed; ``errno`` says why (EBUSY: not now, ENODEV: never)."""

    def __init__(self, err: int, message: str = "") -> None:
        super().__init__(message or _errno.errorcode.get(err, str(err)))
        self.errno = err

    @property
    def unsatisfiable(self) -> bool:
        return self.errno == _errno.ENODEV


@dataclass
class JobMeta:
    """One job's match: id, start time, duration and kind of allocation."""

    jobid: int
    at: int
    duration: int
    alloc_type: AllocType = "alloc"
    now: int = 0


def _edge_pos(e: Edge) -> int:
    return e.pos


def _pop(v: Vertex, attr: str, key: int) -> int | None:
    """``getattr(v, attr).pop(key, None)`` that leaves a shared empty map alone."""
    m = getattr(v, attr)
    return m.pop(key, None) if m else None


class UpdateWalk:
    """Update and cancel walks of :class:`~.matcher.Traverser` (a mixin)."""

    _shared_spans: dict[tuple[int, int, str, int, int, int], tuple[Planner | None, Planner, int, int]]
    _child_log: dict[int, list[Edge]]

    if TYPE_CHECKING:  # provided by FastPaths
        def _log_child(self, u: Vertex, e: Edge) -> None: ...

        def _prefix_clear(self) -> None: ...

    # -- update walk ---------------------------------------------------------------------
    def _update(self, meta: JobMeta, writer: MatchWriter) -> None:
        self._writer = writer
        self._level = 0
        needs, x = self._root_needs
        n = self._upd_dfv(self.root, needs, x, meta, {}, False)
        if n <= 0:
            # Fluxion's update fails the same way: the chosen edges did not
            # connect to the root (e.g. a slot not directly below its parent).
            raise MatchError(_errno.EINVAL, "update: selected resources are not reachable from the root")
        writer.emit_tm(meta.at, meta.at + meta.duration)

    def _upd_dfv(self, u: Vertex, needs: int, excl: bool, meta: JobMeta, to_parent: dict[str, int],
                 emit_shadow: bool) -> int:
        mod = emit_shadow or u.type in self.policy.exclusive_types
        excl = excl or mod
        self._level += 1
        n = 0
        dfu: dict[str, int] = {}
        if mod:
            edges = u.out.get(self.dom, ())
        else:
            # only the edges this match selected, in the parent's child order
            # (not a scan of all of a cluster's children)
            edges = self._marked.get(u.uniq_id, ())
            if len(edges) > 1:
                edges = sorted({id(e): e for e in edges}.values(), key=_edge_pos)
        if edges:
            verts, seq = self.g.vertices, self.seq
            upd_weights = self.policy.stop_on_k > 0
            leaf_ctx = None
            log = self._child_log.get(u.uniq_id)  # a big vertex's changed children (FailedPrefix)
            for e in edges:
                if e.seq != seq and not mod:
                    continue
                tgt = verts[e.dst]
                if tgt.out is EMPTY and not tgt.subplans:  # a leaf: most of what a walk visits
                    # the same effects as the general case below, in fewer steps (a socket's
                    # cores are dozens of leaves per match): no children to walk, no subtree
                    # span, no edge weight below
                    if not (mod or e.exclusive or tgt.type in self.policy.exclusive_types):
                        continue  # nothing planned there, nothing emitted
                    if leaf_ctx is None:
                        w = self._writer
                        if w is None:
                            emit = None
                        elif type(w).emit_vtx is MatchWriter.emit_vtx:
                            emit = w.items.extend  # what emit_vtx does, without the call
                        else:
                            emit = lambda item, _e=w.emit_vtx: _e(*item)  # noqa: E731
                        # the last shared planners given (the leaves of one socket share them)
                        leaf_ctx = [meta.alloc_type, meta.jobid, meta.at, meta.duration,
                                    self.filters._total, emit, self._level + 1, None, None, None, None]
                    alloc_type, jobid, at, dur, totals, emit, lvl = leaf_ctx[:7]
                    lneeds = tgt.size if mod else e.needs
                    if alloc_type != "noalloc":
                        p = tgt._plans
                        if p is None or p.shared:
                            # planners shared by the leaves of a job that have the same history
                            last = leaf_ctx[7]
                            if last is not None and last[0] is p and last[1] == (tgt.size, tgt.type, lneeds):
                                tgt._plans, span = last[2], last[3]
                                last[2].shared = True  # (held by two leaves now)
                            else:
                                q, span = self._shared_span(p, tgt.size, tgt.type, at, dur, lneeds)
                                tgt._plans = q
                                leaf_ctx[7] = (p, (tgt.size, tgt.type, lneeds), q, span)
                        else:
                            span = p.add_span(at, dur, lneeds)
                        if alloc_type == "alloc":
                            m = tgt.allocations
                            if m is EMPTY:
                                tgt.allocations = {jobid: span}
                            else:
                                m[jobid] = span
                        elif alloc_type == "reserve":
                            m = tgt.reservations
                            if m is EMPTY:
                                tgt.reservations = {jobid: span}
                            else:
                                m[jobid] = span
                        tgt.version += 1
                        tags = tgt.tags
                        if tags is EMPTY:
                            tgt.tags = {jobid: None}
                        else:
                            tags[jobid] = None
                        x = tgt._x_checker
                        if x is None or x.shared:
                            last = leaf_ctx[8]
                            if last is not None and last[0] is x:
                                tgt._x_checker, xs = last[1], last[2]
                                last[1].shared = True
                            else:
                                q, xs = self._shared_span(x, X_CHECKER_NJOBS, "jobs", at, dur, 1)
                                tgt._x_checker = q
                                leaf_ctx[8] = (x, q, xs)
                        else:
                            xs = x.add_span(at, dur, 1)
                        xm = tgt.x_spans
                        if xm is EMPTY:
                            tgt.x_spans = {jobid: xs}
                        else:
                            xm[jobid] = xs
                        t = tgt.type
                        if t in totals:  # PruneFilters.accum, inlined
                            dfu[t] = dfu.get(t, 0) + tgt.size
                    if emit is not None:
                        emit((lvl, tgt, lneeds, True))
                    if log is not None and alloc_type != "noalloc":
                        self._log_child(u, e)
                    n += 1
                    continue
                n_sub = self._upd_dfv(tgt, tgt.size if mod else e.needs, e.exclusive or mod, meta, dfu, mod)
                if n_sub > 0:
                    if upd_weights:
                        self._upd_by_outedges(meta, e)
                    if log is not None:
                        self._log_child(u, e)
                    n += n_sub
        alloc_type = meta.alloc_type
        if alloc_type == "noalloc":
            if excl:
                n += 1
        else:
            jobid = meta.jobid
            if excl:
                n += 1
                span = u.plans.add_span(meta.at, meta.duration, needs)
                if alloc_type == "alloc":
                    u.own("allocations")[jobid] = span
                elif alloc_type == "reserve":
                    u.own("reservations")[jobid] = span
            if n > 0:
                u.version += 1
                tags = u.tags
                if tags is EMPTY:
                    u.tags = {jobid: None}
                else:
                    tags[jobid] = None
                x = u._x_checker
                if x is None or x.shared:  # as a leaf's (a node's or socket's first job)
                    u._x_checker, xs = self._shared_span(x, X_CHECKER_NJOBS, "jobs", meta.at,
                                                         meta.duration, 1)
                else:
                    xs = x.add_span(meta.at, meta.duration, 1)
                xm = u.x_spans
                if xm is EMPTY:
                    u.x_spans = {jobid: xs}
                else:
                    xm[jobid] = xs
                sp = u.subplans.get(self.dom)
                if sp is not None and dfu:
                    span = sp.add_span(meta.at, meta.duration, sp.counts_for(dfu))
                    jm = u.job2span
                    if jm is EMPTY:
                        u.job2span = {jobid: span}
                    else:
                        jm[jobid] = span
                totals = self.filters._total  # PruneFilters.accum, inlined
                t = u.type
                if t in totals:
                    to_parent[t] = to_parent.get(t, 0) + (u.size if excl else u.size - needs)
                for t, k in dfu.items():
                    if t in totals:
                        to_parent[t] = to_parent.get(t, 0) + k
        if n > 0 and self._writer is not None:
            self._writer.emit_vtx(self._level, u, needs, excl)
        self._level -= 1
        return n

    def _shared_span(self, p: Planner | None, total: int, rtype: str, at: int, duration: int,
                     amount: int) -> tuple[Planner, int]:
        """A leaf's shared planner ``p`` (None: a new one) with one more span; the span's id.

        Leaves with equal planners, given the same span, have equal planners
        again: the leaves of one job that hold nothing else (or only the same
        earlier jobs, e.g. the job that filled the cluster) share one planner
        (``Planner.shared``; an owner copies it before any other change, see
        :attr:`~.graph.Vertex.plans`), so a whole-node job does not build two
        planners per core.  The last few results are kept.

        A result is marked shared only when a second vertex takes it: the
        one vertex a result went to (a 1-core job's socket, node and root)
        owns it, and its next job adds a span in place instead of copying
        every span it holds again.
        """
        key = (id(p), total, rtype, at, duration, amount)
        cache = self._shared_spans
        hit = cache.get(key)
        if hit is not None:
            q = hit[1]
            if q._mut == hit[3]:  # unchanged since (its one owner may have changed it since)
                q.shared = True
                return q, hit[2]
        if len(cache) >= 64:
            cache.clear()
        if p is None:
            q = Planner.with_first_span(total, rtype, at, duration, amount)
            sid = 1
        else:
            q = p.copy()
            sid = q.add_span(at, duration, amount)
        cache[key] = (p, q, sid, q._mut)  # (p kept alive: its id stays its own)
        return q, sid

    def _upd_by_outedges(self, meta: JobMeta, e: Edge) -> None:
        sp = self.g.vertices[e.dst].subplans.get(self.dom)
        if sp is None or not sp.types:
            return
        avail = sp.avail_at(meta.now, sp.types[-1])
        if avail == 0 and sp.span_count() == 0:
            return
        self._set_weight(e, max(avail, 0))

    # -- cancel / status ---------------------------------------------------------------------
    def cancel(self, jobid: int) -> None:
        """Release every span of ``jobid`` (allocation or reservation).

        As flux-sched's cancel walk (``mod_dfv``), the visit counts are those of
        this walk: every vertex looked at is a preorder visit, every one that held
        the job a postorder visit (an exhaustive release of a job not tagged at
        the root counts none).
        """
        root = self.root
        self.total_preorder = self.total_postorder = 0
        self._prefix_clear()  # the walk below changes children it does not log
        if jobid in root.tags:
            self._rem_dfv(root, jobid)
        else:
            self._memo_clear()  # spans change below vertices no walk passes
            for v in self.g.vertices:
                span = v.allocations.get(jobid)
                if span is not None:
                    del v.allocations[jobid]
                else:
                    span = v.reservations.get(jobid)
                    if span is not None:
                        del v.reservations[jobid]
                if span is not None:
                    v.version += 1
                    v.plans.remove_span(span)

    def _rem_dfv(self, u: Vertex, jobid: int) -> None:
        self.total_preorder += 1
        if jobid not in u.tags:
            return
        u.version += 1
        del u.tags[jobid]  # a real dict: jobid was in it
        span = _pop(u, "x_spans", jobid)
        if span is not None:
            u.x_checker.remove_span(span)
        span = _pop(u, "job2span", jobid)
        sp = u.subplans.get(self.dom)
        if span is not None and sp is not None:
            sp.remove_span(span)
        span = _pop(u, "allocations", jobid)
        if span is None:
            span = _pop(u, "reservations", jobid)
        if span is not None:
            u.plans.remove_span(span)
        # Unlike the update walk, flux-sched's cancel walk (mod_dfv) leaves the
        # ``first`` policy's edge weights alone: they keep the availability
        # seen by the last allocation through each edge until the next one.
        verts = self.g.vertices
        for e in u.children(self.dom):
            self._rem_dfv(verts[e.dst], jobid)
        self.total_postorder += 1

    # -- partial cancel -----------------------------------------------------------------
    def partial_cancel(self, jobid: int, *, ranks: Iterable[int] | None = None,
                       vertices: Iterable[Vertex] | None = None) -> bool:
        """Release part of allocation ``jobid``; return True if nothing of it is left.

        Either whole ``ranks`` (an R subset: every vertex of each rank that holds
        the job) or exactly the ``vertices`` of a JGF subset are released, as
        flux-sched's ``dfu_impl_t::remove(R_to_cancel)``: each released vertex
        loses the job's tag, exclusivity span, subtree span and own span; the
        counts freed per rank then shrink the subtree spans of the vertices above
        that rank's highest vertex, which drop the job once their span is empty.
        The request is checked in full first: on :class:`MatchError` (EINVAL:
        unknown rank, a vertex that does not hold the job; ENOENT: the job holds
        nothing) the graph is unchanged.
        """
        root = self.root
        if jobid not in root.tags:
            raise MatchError(_errno.ENOENT, f"job {jobid} holds no resources")
        dom = self.dom
        chosen: list[Vertex] = []
        if vertices is not None:
            for v in vertices:
                if jobid not in v.allocations:
                    raise MatchError(_errno.EINVAL, f"can't find allocation span for job {jobid} "
                                     f"in {v.name}")
                chosen.append(v)
        else:
            for rank in ranks or ():
                vs = self.g.by_rank.get(rank)
                if vs is None or rank < 0:
                    raise MatchError(_errno.EINVAL, f"{rank} not found in by_rank map")
                chosen.extend(v for v in vs if jobid in v.tags)
        if not chosen:
            raise MatchError(_errno.EINVAL, "rank_to_root is empty")
        # release each vertex, counting what it held per rank and type
        counts: dict[int, dict[str, int]] = {}
        tops: dict[int, Vertex] = {}
        for v in chosen:
            if jobid not in v.tags and vertices is None:
                continue
            v.version += 1
            if v.tags:
                v.tags.pop(jobid, None)  # type: ignore[attr-defined]
            span = _pop(v, "x_spans", jobid)
            if span is not None:
                v.x_checker.remove_span(span)
            span = _pop(v, "job2span", jobid)
            sp = v.subplans.get(dom)
            if span is not None and sp is not None:
                sp.remove_span(span)
            span = _pop(v, "allocations", jobid)
            if span is not None:
                held = v.plans._spans[span][2]
                v.plans.remove_span(span)
                per = counts.setdefault(v.rank, {})
                per[v.type] = per.get(v.type, 0) + held
            top = tops.get(v.rank)
            if top is None or len(v.path(dom)) < len(top.path(dom)):
                tops[v.rank] = v
        # shrink the subtree spans above each rank's top vertex
        above: dict[int, tuple[Vertex, dict[str, int]]] = {}
        verts = self.g.vertices
        for rank, top in tops.items():
            per = counts.get(rank, {})
            u = top
            while True:
                pe = u.parent_edge.get(dom) if u.parent_edge else None
                if pe is None:
                    break
                u = verts[pe.src]
                _v, acc = above.setdefault(u.uniq_id, (u, {}))
                for t, k in per.items():
                    acc[t] = acc.get(t, 0) + k
        for u, acc in above.values():
            if jobid not in u.tags:
                continue
            span = u.job2span.get(jobid) if u.job2span else None
            sp = u.subplans.get(dom)
            if span is None or sp is None:
                continue  # flux-sched's mod_agfilter stops there: no subtree span to shrink
            u.version += 1
            amounts = [min(acc.get(t, 0), sp.span_planned(span, t)) for t in sp.types]
            if sp.reduce_span(span, amounts):
                del u.job2span[jobid]
                u.tags.pop(jobid, None)  # type: ignore[attr-defined]
            span = _pop(u, "x_spans", jobid)
            if span is not None:
                u.x_checker.remove_span(span)
        self._memo_clear()
        return jobid not in root.tags
