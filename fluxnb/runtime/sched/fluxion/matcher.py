"""Depth-first-and-up (DFU) matcher: select resources for a jobspec.

The traverser walks the dominant subsystem from the root.  At each vertex it
tests the vertex against the jobspec level it is looking for (a resource of
the same type, a ``slot`` whose contents the vertex's children can hold, or
nothing yet while the request starts lower in the tree), prunes the subtree
when the vertex is down, busy, held exclusively by another job, or its
subtree aggregates are too small, explores the children, and on the way back
up lets the :class:`~.policies.Policy` keep the best candidates of each
requested type.  The root then chooses the top-level resources, and an
*update* walk follows only the chosen edges, planning spans on the chosen
vertices, updating the subtree aggregates, and emitting the match to a writer.

Operations: ``allocate``, ``allocate_orelse_reserve`` (earliest start time
found by walking the root's aggregate planner), ``allocate_with_satisfiability``,
``satisfiability`` and ``without_allocating``; :meth:`Traverser.cancel`
releases a job; :meth:`Traverser.mark` sets a subtree up or down.

Large graphs: the ``first`` policy keeps a big vertex's children sorted by
weight (no per-match sort of a cluster's nodes); an allocation that the
root's aggregates already rule out answers EBUSY without a walk; the update
walk follows only the edges the match selected; and :mod:`.fastpaths` (greedy
children, replayed free subtrees, a leaf shortcut) and :mod:`.cxxsort` (only
the best *k* sorted) keep the ``high``/``low`` family from paying for every
free vertex, while for ``first`` an untouched node replays the visit of one of
its shape and a cluster's run of failing nodes is skipped with its counts, all
with the selection (and visit counts) of the plain walk.
"""

from __future__ import annotations

import errno as _errno
from typing import Any, Iterable, Literal

from sortedcontainers import SortedKeyList

from .fastpaths import FailedPrefix, FastPaths
from .graph import CONTAINMENT, Edge, ResourceGraph, Vertex
from .planner import INT64_MAX, Planner
from .policies import Policy
from .prune import PruneFilters, prime_pruning_filters
from .request import Request, ResourceReq, calc_count, calc_effective_max
from .scoring import MATCH_MET, MATCH_UNMET, EEdge, EGroup, Evals, Scoring
from .update import JobMeta, MatchError, UpdateWalk
from .writers import MatchWriter

__all__ = ["Traverser", "JobMeta", "MatchOp", "MatchError", "MATCH_OPS"]

MatchOp = Literal["allocate", "allocate_orelse_reserve", "allocate_with_satisfiability",
                  "satisfiability", "without_allocating"]
MATCH_OPS = ("allocate", "allocate_orelse_reserve", "allocate_with_satisfiability",
             "satisfiability", "without_allocating")
GRAPH_END = INT64_MAX

_NONE, _PRISTINE_NONE, _RESOURCE, _SLOT = range(4)
#: Vertices with at least this many children keep them sorted for ``first``.
_ORDER_MIN = 64
#: Request shapes remembered by one traverser (see :meth:`Traverser._canonical`).
_CANON_MAX = 256
#: Windows of failed-visit records kept (see ``Traverser._fails``).
_FAILS_MAX = 64


def _weight_key(e: Edge) -> tuple[int, int]:
    return (-e.weight, -e.dst)


def _has_nonexclusive(resources: list[ResourceReq]) -> bool:
    return any(r.exclusive is False or _has_nonexclusive(r.with_) for r in resources)


class Traverser(UpdateWalk, FastPaths):
    """Match jobspecs against a :class:`ResourceGraph` under a :class:`Policy`.

    Parameters
    ----------
    graph : ResourceGraph
    policy : Policy
    prune_filters : str
        Pruning filter spec (``HL:LL,...``).
    subsystems : list[str]
        Subsystems to match; the first is dominant.

    Notes
    -----
    The traverser caches facts about the graph's shape (children by id or
    weight, child types, subtree depth), as it primes the pruning filters
    once: vertices and edges are not to be added after it is created.
    """

    def __init__(self, graph: ResourceGraph, policy: Policy,
                 prune_filters: str = "ALL:core,ALL:node",
                 subsystems: list[str] | None = None) -> None:
        self.g = graph
        self.policy = policy
        self.subsystems = subsystems or [CONTAINMENT]
        self.dom = self.subsystems[0]
        if self.dom not in graph.roots:
            raise MatchError(_errno.ENOTSUP, f"graph has no root in subsystem '{self.dom}'")
        self.filters = PruneFilters(prune_filters, self.dom)
        with ResourceGraph.building():
            prime_pruning_filters(graph, self.filters)
        self.seq = 0
        self.preorder = 0
        self.postorder = 0
        self.total_preorder = 0
        self.total_postorder = 0
        self.err_msg = ""
        self._gray = 0
        self._task_labels: list[str] = []
        self._root_needs = (1, False)
        self._level = 0
        self._writer: MatchWriter | None = None
        self._order: dict[int, SortedKeyList] = {}
        #: The same order of a vertex with few children, as a list (see :meth:`_ordered_children`).
        self._small_order: dict[int, list[Edge]] = {}
        #: Edges selected by the current match, by source vertex (see :meth:`_mark`).
        self._marked: dict[int, list[Edge]] = {}
        #: count a child busy for the whole window as visited and pruned without visiting it
        self._skip_busy = True
        # fast paths (see fastpaths.py): greedy child order, free-subtree records
        self._greedy_cache: dict[tuple[int, str], list[Edge] | None] = {}
        self._greedy_ok: dict[tuple[int, int, bool], bool] = {}
        self._memo: dict[tuple, tuple] | None = {} if policy.stop_on_k == 0 else None
        self._memo_req: object = None
        #: Records of untouched subtrees by shape (the id policies, see fastpaths.py).
        self._shapes: dict[tuple, tuple] | None = {} if policy.kind == "id" else None
        self._shape_ids: dict[int, int | None] = {}
        #: A status changed since the traverser was made (see FastPaths._free_as_untouched).
        self._status_changed = False
        self._shape_cls: dict[tuple, int] = {}
        self._shared_spans: dict[tuple[int, int, str, int, int, int],
                                 tuple[Planner | None, Planner, int, int]] = {}
        #: Failed runs of big vertices' children, by (vertex, request level and window), and
        #: the children the update walk changed since, by vertex (see fastpaths.FailedPrefix).
        self._prefixes: dict[tuple, FailedPrefix] = {}
        self._child_log: dict[int, list[Edge]] = {}
        #: Failed visits of subtrees that hold jobs: (request level, pristine, excl, level
        #: score, alloc type, at, duration) -> child uniq_id -> (child's version, x_out,
        #: preorder and postorder visits).  A busy subtree that has not changed since
        #: (its version) fails again the same way for the same request and window, so
        #: e.g. each allocate-or-reserve on a full cluster does not revisit every busy node.
        self._fails: dict[tuple, dict[int, tuple[int, bool, int, int]]] | None = {}
        #: One request object per request shape (see :meth:`_canonical`).
        self._canon: dict[tuple, Request] = {}
        #: The last request primed: (request, pruning counts, exclusive types it adds,
        #: whether it marks something non-exclusive).
        self._primed: tuple[Request, dict[str, int], frozenset[str], bool] | None = None
        self._big: dict[int, bool] = {}
        #: The marks of a recorded visit, flat (edge, needs, exclusive, edge, ...: see fastpaths).
        self._rec: list[Any] | None = None
        self._merged: Scoring | None = None
        # built with the graph's indexes, not by the first match: the neighbour types and
        # the first policy's sorted children of big vertices (a cluster's nodes), and the
        # shapes a match replays an untouched node's visit by
        dom = self.dom
        root = self.root
        shapes = self._shapes is not None
        ordered = policy.stop_on_k > 0
        verts = graph.vertices
        for v in verts:
            out = v.out
            if not out:
                continue
            kids = out.get(dom, ())
            if len(kids) >= _ORDER_MIN:
                types = {verts[e.dst].type for e in kids}
                self._kid_types(v, types)
                if ordered:
                    self._ordered_children(v)
                    if len(types) == 1:
                        self._child_log[v.uniq_id] = []
            if shapes and v is not root and self._memo_worth(v):
                self._shape_of(v)
        graph.nodes_up  # (cached by the graph until a status changes)

    @property
    def root(self) -> Vertex:
        return self.g.roots[self.dom]

    # -- helpers -------------------------------------------------------------------
    def _tick(self) -> None:
        self.seq += 1
        self._gray = self.seq * 2
        self._marked = {}

    def _mark(self, e: Edge, needs: int, exclusive: bool) -> None:
        """Select ``e`` for the update walk of this match (flux-sched's trav token)."""
        e.needs, e.exclusive, e.seq = needs, exclusive, self.seq
        if self._rec is not None:
            self._rec += (e, needs, exclusive)
        m = self._marked.get(e.src)
        if m is None:
            self._marked[e.src] = [e]
        else:
            m.append(e)

    def _visited(self, v: Vertex) -> bool:
        return v.color >= self._gray

    @staticmethod
    def _exclusivity(resources: list[ResourceReq], u: Vertex) -> bool:
        t = u.type
        for r in resources:
            if r.exclusive is True and r.type == t:
                return True
        return False

    def _prime_jobspec(self, resources: list[ResourceReq], to_parent: dict[str, int]) -> None:
        for r in resources:
            if r.exclusive is True:
                self.policy.exclusive_types.add(r.type)
            self.filters.accum(r.type, r.count_min, to_parent)
            r.user_data = {}
            self._prime_jobspec(r.with_, r.user_data)
            for t, n in r.user_data.items():
                self.filters.accum(t, r.count_min * n, to_parent)

    # -- pruning ---------------------------------------------------------------------
    def _by_excl(self, meta: JobMeta, u: Vertex, excl: bool, r: ResourceReq) -> int:
        if excl and r.exclusive is False:
            self.err_msg += f"by_excl: exclusivity conflicts at jobspec={r.label} : vertex={u.name}"
            return _errno.EINVAL
        if excl or r.exclusive is True:
            if meta.alloc_type == "alloc" and u.allocations:
                return _errno.EBUSY
            if u.njobs_during(meta.at, meta.duration) > 0:
                return _errno.EBUSY
        return 0

    def _prune(self, meta: JobMeta, excl: bool, u: Vertex, resources: list[ResourceReq]) -> int:
        if meta.alloc_type != "sat" and u.status != "up":
            return _errno.EBUSY
        if u.avail_during(meta.at, meta.duration) == 0:
            return _errno.EBUSY
        for r in resources:
            if u.type != r.type and r.type != "slot":
                continue
            if r.type != "slot":
                rc = self._by_excl(meta, u, excl, r)
                if rc:
                    return rc
            sp = u.subplans.get(self.dom)
            if sp is not None and r.user_data:
                if not sp.avail_during(meta.at, meta.duration, sp.counts_for(r.user_data)):
                    return _errno.EBUSY
        return 0

    def _slot_match(self, u: Vertex, slot: ResourceReq | None) -> bool:
        if slot is None:
            return False
        kid_types = u.kid_types
        if kid_types is None:
            kid_types = self._kid_types(u)
        return all(c.type in kid_types for c in slot.with_)

    def _kid_types(self, u: Vertex, kids: set[str] | None = None) -> frozenset[str]:
        """The types of ``u``'s neighbours in the dominant subsystem, kept on ``u``.

        ``kids``: the types of its children, when known."""
        verts = self.g.vertices
        if kids is None:
            kids = {verts[e.dst].type for e in u.children(self.dom)}
        else:
            kids = set(kids)
        if self.g.reverse_edges and self.dom in u.parent_edge:
            kids.add(verts[u.parent_edge[self.dom].src].type)
        u.kid_types = frozenset(kids)
        return u.kid_types

    def _ordered_children(self, u: Vertex) -> Iterable[Edge]:
        """``u``'s children by descending (weight, uniq_id), the ``first`` policy's order.

        A vertex with many children keeps them in a sorted list that
        :meth:`_set_weight` maintains, so a match does not sort a cluster's
        thousands of nodes again.
        """
        edges = u.children(self.dom)
        if len(edges) < _ORDER_MIN:
            order = self._small_order.get(u.uniq_id)
            if order is None:  # until a weight below u changes (_set_weight)
                order = self._small_order[u.uniq_id] = sorted(edges, key=_weight_key)
            return order
        order = self._order.get(u.uniq_id)
        if order is None:
            order = self._order[u.uniq_id] = SortedKeyList(edges, key=_weight_key)
        return order

    def _set_weight(self, e: Edge, weight: int) -> None:
        if e.weight == weight:
            return
        order = self._order.get(e.src)
        if order is None:
            e.weight = weight
            self._small_order.pop(e.src, None)
        else:
            order.remove(e)
            e.weight = weight
            order.add(e)

    def _test(self, u: Vertex, resources: list[ResourceReq], pristine: bool):
        matched = False
        slot_res: ResourceReq | None = None
        match_res: ResourceReq | None = None
        nslots = 0
        for r in resources:
            if u.type == r.type:
                if matched:
                    self.err_msg += f"test: siblings in jobspec request same resource type : {u.type}.\n"
                    return resources, _NONE, 0, "", pristine
                match_res = r
                for c in r.with_:
                    if c.type == "slot":
                        slot_res, nslots = c, calc_effective_max(c)
                matched = True
            elif r.type == "slot":
                if matched:
                    self.err_msg += f"test: siblings in jobspec request same resource type : {u.type}.\n"
                    return resources, _NONE, 0, "", pristine
                slot_res, nslots = r, calc_effective_max(r)
                matched = True
        if self._slot_match(u, slot_res):
            return slot_res.with_, _SLOT, nslots, slot_res.label, False  # type: ignore[union-attr]
        if match_res is not None:
            return match_res.with_, _RESOURCE, nslots, "", False
        return resources, (_PRISTINE_NONE if pristine else _NONE), nslots, "", pristine

    # -- the depth-first visit ----------------------------------------------------------
    def _explore(self, meta: JobMeta, u: Vertex, resources: list[ResourceReq], pristine: bool,
                 excl: bool, dfu: Scoring, multiplier: int = 1) -> int:
        verts = self.g.vertices
        dom = self.dom
        edges = u.children(dom)
        dynamic = self.policy.stop_on_k > 0
        if dynamic:
            edges = self._ordered_children(u)
            per_share = {r.type: calc_effective_max(r) for r in resources}
            tallies = {t: [0, 0, 0] for t in per_share}  # shares, acc, prev_total
            sat_types: set[str] = set()
        rc2 = -1
        gray = self._gray
        by_type: dict[str, Evals] = {}  # dfu's candidate lists, looked up once per type
        leaf_dfv = self._leaf_dfv
        pol = self.policy
        # failed visits of busy children, for this request level and window (see _fails)
        ctx = (id(resources), pristine, excl, pol._level_scores, meta.alloc_type, meta.at, meta.duration)
        all_fails = self._fails
        fails = None
        if all_fails is not None:
            fails = all_fails.get(ctx)
            if fails is None:
                if len(all_fails) >= _FAILS_MAX:
                    all_fails.clear()
                    self._prefixes.clear()
                fails = all_fails[ctx] = {}
        fails_get = fails.get if fails is not None else {}.get
        replayed_pre = replayed_post = 0
        one_req = self._skip_busy and len(resources) == 1
        at, dur = meta.at, meta.duration
        pfx = None
        if dynamic and fails is not None and len(per_share) == 1 and u.uniq_id in self._child_log:
            # one requested type, children of one type: the run of failing children is skipped
            pkey = (u.uniq_id, ctx)
            pfx = self._prefixes.get(pkey)
            if pfx is None:
                pfx = self._prefixes[pkey] = FailedPrefix()
            edges = self._prefix_edges(u, pfx, edges)
        for e in edges:
            tgt = verts[e.dst]
            if tgt.color >= gray:  # visited in this match
                continue
            f = fails_get(e.dst)
            if f is not None and f[0] == tgt.version and not (dynamic and tgt.type in sat_types):
                replayed_pre += f[2]  # the same failed visit as last time
                replayed_post += f[3]
                if pfx is not None:
                    pfx.member(e, _weight_key(e), f[2], f[3])
                continue
            ttype = tgt.type
            if dynamic and ttype in sat_types:
                continue
            leaf = not tgt.out
            if leaf:
                # a leaf's visit, tried directly (what _dom_dfv would do first)
                done = leaf_dfv(meta, tgt, resources, excl, dfu)
                rc, x_out = done if done is not None else self._dom_dfv(meta, tgt, resources, pristine,
                                                                         excl, dfu)
            else:
                pre0, post0, err0 = self.preorder, self.postorder, len(self.err_msg)
                p = tgt._plans  # (Vertex.avail_during, inlined: this runs once per busy child)
                if (one_req and tgt.tags and tgt.version and p is not None and p._spans
                        and not p.avail_during(at, dur)):
                    # what _dom_dfv comes to for a vertex in use for the whole window (a
                    # busy node of a full cluster): the visit is counted, then pruned.
                    # One request here, so its test cannot report siblings of one type.
                    self.preorder += 1
                    rc, x_out = -1, excl
                else:
                    rc, x_out = self._dom_dfv(meta, tgt, resources, pristine, excl, dfu)
                if rc != 0:
                    if (fails is not None and tgt.tags and len(self.err_msg) == err0
                            and pol._level_scores == ctx[3]):
                        fails[tgt.uniq_id] = (tgt.version, x_out, self.preorder - pre0,
                                              self.postorder - post0)
                        if pfx is not None:
                            pfx.member(e, _weight_key(e), self.preorder - pre0, self.postorder - post0)
                    continue
            if rc != 0:
                continue
            count = dfu.avail
            eg = EGroup(dfu.overall_score, count, 0, x_out)
            eg.edges.append(EEdge(count, count, x_out, e))
            ev = by_type.get(ttype)
            if ev is None:
                ev = by_type[ttype] = dfu.evals(dom, ttype)
            ev.total_count += count  # Evals.add, inlined: this runs once per candidate
            if eg.score > ev.cutline:
                ev.qual_count += count
            ev.groups.append(eg)
            rc2 = 0
            if dynamic:
                if leaf:
                    # a leaf merges nothing into dfu: only its own type's total moved
                    tl = tallies.get(ttype)
                    if tl is not None:
                        total = ev.total_count
                        if total > tl[2]:
                            tl[1] += total - tl[2]
                            tl[2] = total
                            if tl[1] >= per_share[ttype]:
                                tl[0] += 1
                                tl[1] = 0
                                if tl[0] >= multiplier:
                                    sat_types.add(ttype)
                    if len(sat_types) == len(tallies):
                        break
                    continue
                for t, tl in tallies.items():
                    total = dfu.total_count(dom, t)
                    if total <= tl[2]:
                        continue
                    tl[1] += total - tl[2]
                    tl[2] = total
                    if tl[1] >= per_share[t]:
                        tl[0] += 1
                        tl[1] = 0
                enough = True
                for t, tl in tallies.items():
                    if tl[0] >= multiplier:
                        sat_types.add(t)
                    else:
                        enough = False
                if enough:
                    break
        if pfx is not None:
            pfx.finish()
        self.preorder += replayed_pre
        self.postorder += replayed_post
        return rc2

    def _cnt_slot(self, shape: list[ResourceReq], dfu_slot: Scoring) -> int:
        qual = 1 << 32
        for elem in shape:
            count = calc_count(elem, dfu_slot.qualified_count(self.dom, elem.type))
            shares = acc = 0
            if count:
                for g in dfu_slot.evals(self.dom, elem.type).groups:
                    acc += g.edges[0].count
                    if acc >= count:
                        shares += 1
                        acc = 0
            qual = min(qual, shares if count else 0)
        return qual

    def _dom_slot(self, meta: JobMeta, u: Vertex, shape: list[ResourceReq], nslots: int,
                  pristine: bool, label: str, dfu: Scoring) -> int:
        done = self._slot_of_leaves(meta, u, shape, pristine, label, dfu)
        if done is not None:
            return done
        dom = self.dom
        dfu_slot = Scoring()
        if self._explore(meta, u, shape, pristine, True, dfu_slot, nslots) != 0:
            return -1
        self.policy.finish_slot(dom, dfu_slot)
        qual = self._cnt_slot(shape, dfu_slot)
        groups = []
        # each shape element takes its next candidates in the sorted lists
        plan = []
        for elem in shape:
            ev = dfu_slot.evals(dom, elem.type)
            plan.append((id(ev), ev.groups, calc_count(elem, ev.qual_count)))
        pos = {key: 0 for key, _, _ in plan}
        for _ in range(qual):
            eg = EGroup(MATCH_MET, 1, 0, True)
            eg_edges = eg.edges
            score = MATCH_MET
            for key, cands, count in plan:
                i, j = pos[key], 0
                while j < count:
                    if i >= len(cands):
                        self.err_msg += "dom_slot: not enough slots.\n"
                        return -1
                    g = cands[i]
                    i += 1
                    ee = g.edges[0]
                    c = ee.count
                    if ee.needs != c or ee.exclusive is not True:
                        ee = EEdge(c, c, True, ee.edge)
                    eg_edges.append(ee)  # nothing writes to an EEdge: share an equal one
                    score += g.score
                    j += c
                pos[key] = i
            eg.score = score
            eg.task_label = label
            groups.append(eg)
        slots = dfu.evals(dom, "slot")
        for eg in groups:
            slots.total_count += 1  # Evals.add, inlined (a slot group counts one)
            if eg.score > slots.cutline:
                slots.qual_count += 1
        slots.groups.extend(groups)
        return 0 if qual else -1

    def _dom_dfv(self, meta: JobMeta, u: Vertex, resources: list[ResourceReq], pristine: bool,
                 excl: bool, to_parent: Scoring, memo: bool = True) -> tuple[int, bool]:
        if not u.out:
            done = self._leaf_dfv(meta, u, resources, excl, to_parent)
            if done is not None:
                return done
        elif memo and self._memo is not None and not u.tags and self._memo_worth(u):
            return self._memo_visit(meta, u, resources, pristine, excl, to_parent)
        elif (memo and self._shapes is not None and self._memo is None and u is not self.root
              and self._memo_worth(u)):
            # (with a memo, the policies that score every candidate, _memo_visit records
            # through the shape visit)
            if u.version == 0:
                return self._shape_visit(meta, u, resources, pristine, excl, to_parent)
            orders = self._free_as_untouched(meta, u)
            if orders is not None:
                return self._shape_visit(meta, u, resources, pristine, excl, to_parent, orders)
        x_in = excl or self._exclusivity(resources, u)
        nxt, kind, nslots, label, check_pres = self._test(u, resources, pristine)
        self.preorder += 1
        if kind == _NONE:
            return -1, excl
        if self._prune(meta, x_in, u, resources):
            return -1, excl
        self.policy.discover(u)
        u.color = self._gray
        dfu = Scoring()
        if kind == _SLOT:
            self._dom_slot(meta, u, nxt, nslots, check_pres, label, dfu)
        elif not u.out:
            pass  # a leaf: nothing to explore
        elif ((kind == _RESOURCE or u is self.root)
              and self._greedy_applies(u, nxt, kind != _RESOURCE)):
            self._explore_greedy(meta, u, nxt, check_pres, x_in, dfu)
        else:
            self._explore(meta, u, nxt, check_pres, x_in, dfu)
        u.color = self._gray + 1
        avail = u.avail_during(meta.at, meta.duration)
        if avail == 0:
            return -1, x_in
        if not self.policy.finish_vtx(u, self.dom, resources, dfu):
            return -1, x_in
        if self._resolve(dfu, to_parent) != 0:
            return -1, x_in
        to_parent.avail = avail
        to_parent.overall_score = dfu.overall_score
        for r in resources:
            if r.type == u.type and r.label:
                u.label = r.label
        self.postorder += 1
        return 0, x_in

    def _resolve(self, dfu: Scoring, to_parent: Scoring) -> int:
        self._merged = None
        if dfu.overall_score > MATCH_UNMET:
            if dfu.hier_constrain_now:
                self._enforce(dfu)
            else:
                to_parent.merge(dfu)
                self._merged = dfu
        return 0

    def _enforce(self, dfu: Scoring, unconstrained: bool = False) -> None:
        verts = self.g.vertices
        dom, seq = self.dom, self.seq
        for t in dfu.types(dom):
            ev = dfu.ssys[dom][t]
            if not ev.best_k:
                continue
            for i in range(ev.best_i):
                eg = ev.groups[i]
                if eg.root:
                    continue
                # a pool vertex (size > 1) gives a group only what the request needs of it
                single = len(eg.edges) == 1 and 0 < eg.needs < eg.edges[0].needs
                for ee in eg.edges:
                    e: Edge = ee.edge  # type: ignore[assignment]
                    self._mark(e, eg.needs if single else ee.needs, bool(ee.exclusive))
                    if not unconstrained:
                        continue
                    parent_v = verts[e.src]
                    while (pe := parent_v.parent_edge.get(dom)) is not None:
                        if pe.seq == seq:
                            break
                        parent_v = verts[pe.src]
                        tgt = verts[pe.dst]
                        if dfu.is_contained(dom, tgt.type) and not dfu.best_k(dom, tgt.type):
                            self._mark(pe, tgt.size, False)

    def _select(self, resources: list[ResourceReq], meta: JobMeta, excl: bool) -> int:
        """One match attempt at ``meta.at``; return 0 or an errno."""
        self._tick()
        self.preorder = self.postorder = 0
        root = self.root
        dfu = Scoring()
        rc, x_in = self._dom_dfv(meta, root, resources, True, excl, dfu)
        self.total_preorder += self.preorder
        self.total_postorder += self.postorder
        if rc != 0:
            return _errno.EINVAL if "exclusivity conflicts" in self.err_msg else _errno.EBUSY
        eg = EGroup(dfu.overall_score, dfu.avail, 0, excl, True)
        eg.edges.append(EEdge(dfu.avail, dfu.avail, excl, None))
        dfu.add(self.dom, root.type, eg)
        needs = 0
        ok = self.policy.finish_graph(self.dom, resources, dfu)
        if ok:
            needs = 1
            for r in resources:
                if r.type == root.type:
                    needs = calc_count(r, dfu.avail)
                    if needs == 0:
                        ok = False
        if ok and any(dfu.qualified_count(self.dom, t) == 0 for t in dfu.types(self.dom)):
            ok = False
        if ok:
            self._enforce(dfu, True)
        self._root_needs = (needs, x_in)
        return 0 if ok else _errno.ENODEV

    def _root_cannot_fit(self, resources: list[ResourceReq], meta: JobMeta, dfv: dict[str, int]) -> bool:
        """True when the root's subtree aggregates show the request cannot fit at ``meta.at``.

        Every match needs at least the request's minimum count of each
        pruning type free for the whole window, so a full graph answers "not
        now" without a visit of every node (what makes allocate-or-reserve
        on a busy cluster cheap).  Requests that mark something
        ``exclusive: false`` still take the walk, which reports exclusivity
        conflicts (EINVAL) rather than EBUSY.
        """
        sp = self.root.subplans.get(self.dom)
        if sp is None or not dfv or meta.alloc_type not in ("alloc", "reserve"):
            return False
        primed = self._primed
        if (primed[3] if primed is not None and primed[0].resources is resources
                else _has_nonexclusive(resources)):
            return False
        return not sp.avail_during(meta.at, meta.duration, sp.counts_for(dfv))

    # -- scheduling --------------------------------------------------------------------
    def _far_future(self, meta: JobMeta) -> int:
        sp = self.root.subplans.get(self.dom)
        base, dur = (sp.base_time, sp.duration) if sp else (0, INT64_MAX)
        return base + dur - meta.duration - 1

    def _schedule(self, req: Request, meta: JobMeta, x: bool, op: MatchOp, dfv: dict[str, int]) -> int:
        target = dfv.get("node", 0)
        if target > self.g.nodes_up:
            # Like Fluxion, only the satisfiability ops call this "never":
            # allocate/reserve report "not now" (flux-sched's test suite
            # expects that even when the graph has fewer nodes in total).
            if op in ("allocate_with_satisfiability", "satisfiability"):
                return _errno.ENODEV
            return _errno.EBUSY
        self._task_labels = req.task_slots
        if self._root_cannot_fit(req.resources, meta, dfv):
            rc = _errno.EBUSY
        else:
            rc = self._select(req.resources, meta, x)
        if rc == 0:
            return 0
        if op == "allocate_with_satisfiability":
            meta.alloc_type = "sat"
            meta.at = self._far_future(meta)
            rc2 = self._select(req.resources, meta, x)
            if rc2 in (_errno.EBUSY, _errno.ENODEV):
                return _errno.ENODEV
            return rc2 or _errno.EBUSY
        if op == "allocate_orelse_reserve":
            meta.alloc_type = "reserve"
            sp = self.root.subplans.get(self.dom)
            if sp is not None:
                agg = sp.counts_for(dfv)
                t = sp.avail_time_first(meta.at + 1, meta.duration, agg)
                while t != -1:
                    meta.at = t
                    rc = self._select(req.resources, meta, x)
                    if rc == 0:
                        return 0
                    t = sp.avail_time_next()
            meta.alloc_type = "sat"
            meta.at = self._far_future(meta)
            rc2 = self._select(req.resources, meta, x)
            return _errno.ENODEV if rc2 in (_errno.EBUSY, _errno.ENODEV) else _errno.EBUSY
        return rc if rc == _errno.EINVAL else _errno.EBUSY

    def _canonical(self, req: Request) -> Request:
        """The request this traverser first saw with ``req``'s shape (:meth:`Request.key`).

        Per-request records (free-subtree replays, greedy decisions, see
        :mod:`.fastpaths`) name the request's resource lists by identity;
        matching every request of one shape through one object lets a new
        jobspec object (each ``match allocate FILE`` of resource-query, each
        job of the scheduler) replay the records of an earlier equal one.
        """
        key = req.key()
        canon = self._canon.get(key)
        if canon is not req and (canon is None or canon.key() != key):  # (its owner changed it)
            if len(self._canon) >= _CANON_MAX:
                self._canon.clear()  # the current records keep their own request alive
            self._canon[key] = canon = req
        return canon

    def run(self, req: Request, op: MatchOp, jobid: int, writer: MatchWriter, at: int = 0) -> JobMeta:
        """Match ``req``; on success plan it (unless satisfiability) and emit it.

        Returns the job's :class:`JobMeta` (``at`` is the start time).

        Raises
        ------
        MatchError
            ``errno`` EBUSY (not now), ENODEV (unsatisfiable) or EINVAL.
        """
        if op not in MATCH_OPS:
            raise MatchError(_errno.EINVAL, f"invalid match op '{op}'")
        self.err_msg = ""
        req = self._canonical(req)
        self._memo_start(req)
        self.total_preorder = self.total_postorder = 0
        root = self.root
        x = self._exclusivity(req.resources, root)
        saved_x_types = set(self.policy.exclusive_types)
        dfv: dict[str, int] = {}
        try:
            primed = self._primed
            if primed is not None and primed[0] is req:
                # the request's shape is unchanged (_canonical): so is what priming gives
                dfv.update(primed[1])
                self.policy.exclusive_types |= primed[2]
            else:
                self._prime_jobspec(req.resources, dfv)
                self._primed = (req, dict(dfv), frozenset(self.policy.exclusive_types - saved_x_types),
                                _has_nonexclusive(req.resources))
            duration = req.duration if req.duration > 0 else GRAPH_END - at
            meta = JobMeta(jobid, at, duration, "noalloc" if op == "without_allocating" else "alloc", at)
            if op == "satisfiability":
                meta.alloc_type = "sat"
                meta.at = self._far_future(meta)
                rc = self._select(req.resources, meta, x)
                if rc:
                    raise MatchError(_errno.ENODEV if rc in (_errno.EBUSY, _errno.ENODEV) else rc)
                return meta
            rc = self._schedule(req, meta, x, op, dfv)
            if rc:
                raise MatchError(rc)
            if meta.at >= GRAPH_END:
                raise MatchError(_errno.EBUSY)
            if meta.at + meta.duration > GRAPH_END:
                meta.duration = GRAPH_END - meta.at
            self._update(meta, writer)
            return meta
        finally:
            self.policy.exclusive_types = saved_x_types
            # freed by the match that made them (a graph-wide job marks every edge)
            self._marked = {}

    def mark(self, path: str, status: str) -> None:
        """Set a vertex and its subtree ``up`` or ``down``."""
        if status not in ("up", "down"):
            raise MatchError(_errno.EINVAL, f"unrecognized status '{status}'")
        self.g.mark(path, status)  # type: ignore[arg-type]
        self._status_changed = True
        self._memo_clear()


