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
from typing import TYPE_CHECKING, Literal

from .graph import Edge, Vertex

if TYPE_CHECKING:
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
            for e in edges:
                if e.seq != seq and not mod:
                    continue
                tgt = verts[e.dst]
                n_sub = self._upd_dfv(tgt, tgt.size if mod else e.needs, e.exclusive or mod, meta, dfu, mod)
                if n_sub > 0:
                    if upd_weights:
                        self._upd_by_outedges(meta, e)
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
                u.own("tags").add(jobid)
                u.own("x_spans")[jobid] = u.x_checker.add_span(meta.at, meta.duration, 1)
                sp = u.subplans.get(self.dom)
                if sp is not None and dfu:
                    u.own("job2span")[jobid] = sp.add_span(meta.at, meta.duration, sp.counts_for(dfu))
                accum = self.filters.accum
                accum(u.type, u.size if excl else u.size - needs, to_parent)
                for t, k in dfu.items():
                    accum(t, k, to_parent)
        if n > 0 and self._writer is not None:
            self._writer.emit_vtx(self._level, u, needs, excl)
        self._level -= 1
        return n

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
        """Release every span of ``jobid`` (allocation or reservation)."""
        root = self.root
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
        if jobid not in u.tags:
            return
        u.version += 1
        u.tags.discard(jobid)  # type: ignore[union-attr]  # a real set: jobid was in it
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
            child = verts[e.dst]
            if jobid in child.tags:
                self._rem_dfv(child, jobid)

