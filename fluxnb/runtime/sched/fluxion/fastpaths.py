"""Exact shortcuts of the depth-first match for large graphs.

Fluxion visits every free vertex of the graph for the ``high``/``low``
family of policies, because the best candidates are only known once all are
scored.  Two shortcuts give the same selection while visiting far less; the
:class:`~.matcher.Traverser` mixes them in (as flux-sched splits its
traverser over several files).

Greedy children (:meth:`FastPaths._explore_greedy`)
    When a vertex chooses, among its own children, a fixed number of
    resources of each requested type, and the policy scores children by id
    (``high``, ``low``, ``hinode``, ...), a child's score is known before it
    is visited: ``constant + id``.  If the ids of the candidates are
    distinct, sorting them by score has one outcome, so visiting them in
    score order and stopping as soon as enough units matched selects the
    same children as visiting all of them and sorting.  (With equal ids the
    order of ties depends on the whole list, see :mod:`.cxxsort`, and the
    full visit is kept.)

Memoized free subtrees (:meth:`FastPaths._memo_visit`)
    The visit of a subtree that holds no job (no span at any time) does not
    depend on the time window, so its outcome (candidate groups handed to the
    parent, edges marked for the update walk, visit counts) is recorded and
    replayed while the subtree stays untouched: an update or cancel walk
    bumps :attr:`~.graph.Vertex.version` on every vertex it passes, and a
    status change clears the records.  Records are kept for one request
    shape at a time: :meth:`~.matcher.Traverser.run` matches every request of
    one shape (:meth:`~.request.Request.key`) through the first such object,
    so a freshly parsed jobspec equal to the last one replays its records.

Failed busy subtrees (``Traverser._fails``, used by ``Traverser._explore``)
    A subtree that holds jobs and failed to match a request level during a
    window (``at``, ``duration``, kind of allocation) fails the same way, with
    the same visit counts, while its version is unchanged: the visit is not
    repeated (allocate-or-reserve on a full cluster would otherwise walk
    every busy node again for each job).

Failed prefixes of a big vertex's children (:class:`FailedPrefix`)
    Under the ``first`` policy a big vertex (a cluster's nodes) is walked in
    its children's order, and on a busy cluster a long run of them fails, each
    replayed from its failed-visit record but still one step each (a 50k-node
    allocate-or-reserve steps over every busy node).  For each request level
    and window, the children known to fail (the leading run of that order) are
    kept with their visit counts; a match adds their counts in a few slices
    and visits only the children that changed since (the update walk logs
    them) and those after the run.  Any other change (cancel, status) drops
    the runs.

Replayed untouched subtrees of one shape (:meth:`FastPaths._shape_visit`)
    For the ``first`` policy a free node is visited once and then taken, so
    records of one vertex are never replayed, and under the policies that
    score every candidate the first match over many free nodes (a ``high``
    match filling a cluster) visits each of them for the first time too
    (:meth:`FastPaths._memo_visit` records such a visit through this one);
    but a subtree that no walk has
    ever changed (``version`` 0: no span ever planned below it, no status
    change) is visited exactly as every other untouched subtree of the same
    shape: the same types, sizes, ids, statuses and child order (edge
    weights, then uniq_ids) at the same child positions
    (:meth:`FastPaths._shape_of`), the ids of each type shifted by one
    constant.  The first such visit is recorded with its selected edges named by
    the child positions that lead to them and replayed for the next subtree of
    that shape.  A score is ``level + id + 1``: the shift of one type's ids
    shifts the scores of its candidates alike, and under a node-centric policy
    a node's factor (from its id) shifts every score below it alike; neither
    changes an order when every candidate group counts one unit (every vertex
    of size 1, else no record is kept), and the subtree root's own score is
    translated by its id.  Candidate groups a visit hands to the parent (no
    choice made inside, e.g. a core for a slot asked at the root) are kept by
    child positions with their scores less their terms (a constant plus, per
    edge, the level and the target's id) and rebuilt with the replayed
    subtree's terms (:meth:`FastPaths._record_merged`).  Under the ``first``
    policy a reservation's visit of a subtree whose jobs all lie outside its
    window, children still in their first order, is that of the untouched
    subtree and replays the same records (:meth:`FastPaths._free_as_untouched`).

Leaves (:meth:`FastPaths._leaf_dfv`, :meth:`FastPaths._slot_of_leaves`)
    Most vertices of a large graph are leaves (cores).  Their visit, and a
    slot made of one leaf, are done without the scoring objects the general
    walk builds for every vertex, with the same scores, tie order, visit
    counts and side effects.
"""

from __future__ import annotations

from bisect import bisect_left
from operator import attrgetter, sub as _sub
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from .cxxsort import cxx_sort
from .graph import X_CHECKER_NJOBS
from .policies import Policy
from .scoring import MATCH_MET, EEdge, EGroup, Scoring

if TYPE_CHECKING:
    from .graph import Edge, ResourceGraph, Vertex
    from .policies import Policy
    from .request import ResourceReq
    from .update import JobMeta

__all__ = ["FastPaths", "FailedPrefix"]

#: Sort keys of the first policy's order (see matcher._weight_key) are tuples of ints.
_BEFORE_ALL = (float("-inf"),)
#: The weight every edge starts with (graph.Edge).
_MAX_WEIGHT = (1 << 64) - 1
#: Entries of a big vertex's change log before the runs are dropped and the log restarts.
_LOG_MAX = 1 << 16


def _first(x: tuple) -> Any:
    return x[0]


def _marks(rec: list) -> Iterator[tuple[Edge, int, bool]]:
    """The ``(edge, needs, exclusive)`` marks of a flat record (see ``_recorded_visit``)."""
    it = iter(rec)
    return zip(it, it, it)


_dst = attrgetter("dst")
_weight = attrgetter("weight")
_type = attrgetter("type")
_size = attrgetter("size")
_id = attrgetter("id")
_status = attrgetter("status")
_pos = attrgetter("pos")
_subplans = attrgetter("subplans")


class FailedPrefix:
    """The leading children of a big vertex, in the ``first`` order, whose visits fail.

    For one request level and window: every child whose sort key is at most
    ``last`` is a member, with the visit counts of its failed visit, unless it
    changed after entry ``log_pos`` of the vertex's change log.
    """

    __slots__ = ("keys", "pre", "post", "members", "last", "log_pos", "pending", "noted", "cut",
                 "low", "at")

    def __init__(self) -> None:
        self.keys: list[tuple] = []  # members' sort keys, ascending
        self.pre: list[int] = []
        self.post: list[int] = []
        self.members: dict[int, tuple] = {}  # child uniq_id -> sort key
        self.last: tuple = _BEFORE_ALL
        self.log_pos = 0
        # state of one walk over the children
        self.pending: Edge | None = None
        self.noted = False
        self.cut: tuple | None = None
        self.low = False
        self.at = 0

    def member(self, e: Edge, key: tuple, pre: int, post: int) -> None:
        """The child just yielded failed, with a record: it joins the run if the run still grows."""
        self.noted = True
        if self.cut is not None:
            return
        if self.low:
            i = bisect_left(self.keys, key)
            self.at = i
        else:
            i = len(self.keys)
            self.last = key
        self.keys.insert(i, key)
        self.pre.insert(i, pre)
        self.post.insert(i, post)
        self.members[e.dst] = key

    def _cut(self, key: tuple) -> None:
        if self.cut is None or key < self.cut:
            self.cut = key

    def finish(self) -> None:
        """After the walk: the run ends before the first child that did not fail with a record."""
        if self.pending is not None and not self.noted:
            self._cut(_weight_key(self.pending))
        self.pending = None
        cut = self.cut
        if cut is not None:
            i = bisect_left(self.keys, cut)
            if i < len(self.keys):
                drop = set(self.keys[i:])
                self.members = {uid: k for uid, k in self.members.items() if k not in drop}
                del self.keys[i:], self.pre[i:], self.post[i:]
            self.last = self.keys[-1] if self.keys else _BEFORE_ALL
            self.cut = None


def _weight_key(e: Edge) -> tuple[int, int]:
    return (-e.weight, -e.dst)


def _neg_dst(e: Edge) -> int:
    return -e.dst


def _plan_key(v: Vertex) -> tuple:
    """A vertex's subtree planners: their types and totals."""
    sp = v.subplans
    return tuple((s, tuple(p.types), tuple(q.total for q in p.planners)) for s, p in sp.items()) if sp else ()


def _types_below(resources: list[ResourceReq]) -> set[str]:
    out: set[str] = set()
    for r in resources:
        out.add(r.type)
        out |= _types_below(r.with_)
    return out


def _greedy_request(resources: list[ResourceReq]) -> bool:
    """True when each requested type asks for a fixed count, no slot, no nesting of a type in itself."""
    below: set[str] = set()
    for r in resources:
        if r.type == "slot" or r.count_min != r.count_max:
            return False
        below |= _types_below(r.with_)
    return not any(r.type in below for r in resources)


class FastPaths:
    """Greedy child order and free-subtree memo of :class:`~.matcher.Traverser` (a mixin)."""

    # set by Traverser.__init__
    g: ResourceGraph
    policy: Policy
    dom: str
    preorder: int
    postorder: int
    err_msg: str

    if TYPE_CHECKING:  # provided by Traverser
        def _dom_dfv(self, meta: JobMeta, u: Vertex, resources: list[ResourceReq], pristine: bool,
                     excl: bool, to_parent: Scoring, memo: bool = True) -> tuple[int, bool]: ...

        def _visited(self, v: Vertex) -> bool: ...

        def _mark(self, e: Edge, needs: int, exclusive: bool) -> None: ...

        def _by_excl(self, meta: JobMeta, u: Vertex, excl: bool, r: ResourceReq) -> int: ...

        _gray: int
    _greedy_cache: dict[tuple[int, str], list[Edge] | None]
    _greedy_ok: dict[tuple[int, int, bool], bool]
    _memo: dict[tuple, tuple] | None
    _memo_req: object
    _fails: dict[tuple, dict[int, tuple[int, bool, int, int]]] | None
    _big: dict[int, bool]
    _shapes: dict[tuple, tuple] | None
    _status_changed: bool
    _prefixes: dict[tuple, FailedPrefix]
    _child_log: dict[int, list[Edge]]
    _shape_ids: dict[int, int | None]
    _shape_cls: dict[tuple, int]
    _rec: list[Any] | None
    _merged: Scoring | None

    # -- greedy children ---------------------------------------------------------------
    def _greedy_applies(self, u: Vertex, resources: list[ResourceReq], at_root: bool) -> bool:
        """Whether :meth:`_explore_greedy` gives the full visit's choice at ``u``.

        ``at_root``: ``u`` is the root passing the request through (the
        choice is then made by ``finish_graph`` among the root's children).
        """
        pol = self.policy
        if pol.kind != "id" or pol.stop_on_k > 0 or not resources:
            return False
        key = (u.uniq_id, id(resources), at_root)
        ok = self._greedy_ok.get(key)  # the graph's shape is fixed: decide once per request
        if ok is None:
            ok = self._greedy_ok[key] = self._greedy_decide(u, resources, at_root)
        return ok

    def _greedy_decide(self, u: Vertex, resources: list[ResourceReq], at_root: bool) -> bool:
        if not _greedy_request(resources):
            return False
        if at_root:
            # every child must be a direct candidate: a pass-through child
            # could bring candidates of the same type from deeper down
            wanted = {r.type for r in resources}
            verts = self.g.vertices
            if any(verts[e.dst].type not in wanted for e in u.children(self.dom)):
                return False
        return all(self._greedy_order(u, r.type) is not None for r in resources)

    def _greedy_order(self, u: Vertex, rtype: str) -> list[Edge] | None:
        """``u``'s children of ``rtype`` by ascending id, or None if two share an id."""
        key = (u.uniq_id, rtype)
        try:
            return self._greedy_cache[key]
        except KeyError:
            pass
        verts = self.g.vertices
        edges = [e for e in u.children(self.dom) if verts[e.dst].type == rtype]
        edges.sort(key=lambda e: verts[e.dst].id)
        ids = [verts[e.dst].id for e in edges]
        order = edges if len(set(ids)) == len(ids) else None
        self._greedy_cache[key] = order
        return order

    def _explore_greedy(self, meta: JobMeta, u: Vertex, resources: list[ResourceReq], pristine: bool,
                        excl: bool, dfu: Scoring) -> int:
        """Visit ``u``'s candidates best score first; stop each type once enough matched."""
        verts = self.g.vertices
        dom = self.dom
        descending = self.policy.child_descending()
        rc2 = -1
        for r in resources:
            order = self._greedy_order(u, r.type)
            need, got = r.count_min, 0
            for e in (reversed(order) if descending else order):  # type: ignore[arg-type]
                tgt = verts[e.dst]
                if self._visited(tgt):
                    continue
                rc, x_out = self._dom_dfv(meta, tgt, resources, pristine, excl, dfu)
                if rc != 0:
                    continue
                count = dfu.avail
                eg = EGroup(dfu.overall_score, count, 0, x_out)
                eg.edges.append(EEdge(count, count, x_out, e))
                dfu.add(dom, tgt.type, eg)
                rc2 = 0
                got += count
                if got >= need:
                    break
        return rc2

    # -- leaves ----------------------------------------------------------------------------
    def _leaf_dfv(self, meta: JobMeta, u: Vertex, resources: list[ResourceReq], excl: bool,
                  to_parent: Scoring) -> tuple[int, bool] | None:
        """:meth:`_dom_dfv` of a leaf that the request names directly, without its machinery.

        Most of a large graph's vertices are leaves (cores), so the plain
        visit's scoring object, empty exploration and generic finish are worth
        skipping.  Returns None (having changed nothing) for any other case:
        no or two matching request entries, a slot, children requested under
        the leaf, a subtree planner, or a node under a node-centric policy.
        """
        t = u.type
        match = None
        for r in resources:
            if r.type == t:
                if match is not None:
                    return None
                match = r
            elif r.type == "slot":
                return None
        pol = self.policy
        if match is None or match.with_ or u.subplans or (pol.node_centric and t == "node"):
            return None
        x_in = excl or match.exclusive is True
        self.preorder += 1
        if meta.alloc_type != "sat" and u.status != "up":
            return -1, excl
        avail = u.avail_during(meta.at, meta.duration)
        if avail == 0 or self._by_excl(meta, u, x_in, match):
            return -1, excl
        u.color = self._gray + 1
        to_parent.avail = avail
        to_parent.overall_score = MATCH_MET + pol.vertex_score(u, None)  # type: ignore[arg-type]
        self._merged = None
        if match.label:
            u.label = match.label
        self.postorder += 1
        return 0, x_in

    def _slot_of_leaves(self, meta: JobMeta, u: Vertex, shape: list[ResourceReq], pristine: bool,
                        label: str, dfu: Scoring) -> int | None:
        """:meth:`_dom_slot` for slots of one leaf each (``slot > core``), without per-leaf groups.

        The plain slot walk scores every leaf into a candidate group, sorts
        the groups and wraps each in a slot group.  Here the leaves' scores
        are sorted directly (with the same tie order) and only the slot groups
        are built.  Returns None (having changed nothing) unless the shape is
        one leaf type asked once, every child of that type is a leaf, and the
        policy explores all children (not ``first``).
        """
        if len(shape) != 1 or pristine:
            return None
        elem = shape[0]
        pol = self.policy
        t = elem.type
        if (elem.with_ or elem.count_min != 1 or elem.count_max != 1 or t == "slot"
                or pol.stop_on_k > 0 or (pol.node_centric and t == "node")):
            return None
        verts = self.g.vertices
        edges = u.children(self.dom)
        for e in edges:
            v = verts[e.dst]
            if v.type == t and (v.out or v.subplans):
                return None
        gray = self._gray
        sat = meta.alloc_type == "sat"
        alloc = meta.alloc_type == "alloc"
        at, duration = meta.at, meta.duration
        cands = []
        # what _by_excl(meta, v, True, elem) and vertex_score do for each leaf, inlined (the
        # first visit of a slot-of-one-core request calls this for every free core)
        by_excl = self._by_excl if elem.exclusive is False else None
        plain_score = (pol.kind not in ("variation", "locality")
                       and type(pol).vertex_score is Policy.vertex_score)
        base = MATCH_MET + pol._level_scores + 1
        label_ = elem.label
        pre = post = 0
        for e in edges:
            v = verts[e.dst]
            if v.color >= gray:
                continue
            pre += 1
            if v.type != t or (not sat and v.status != "up"):
                continue
            p = v._plans
            avail = v.size if p is None or not p._spans else p.avail_during(at, duration)
            if avail == 0:
                continue
            if by_excl is not None:
                if by_excl(meta, v, True, elem):
                    continue
            else:
                if alloc and v.allocations:
                    continue  # EBUSY
                x = v._x_checker
                if x is not None and x._spans and x.avail_during(at, duration) != X_CHECKER_NJOBS:
                    continue  # EBUSY: a job uses v during the window
            v.color = gray + 1
            if label_:
                v.label = label_
            post += 1
            cands.append((base + v.id if plain_score else MATCH_MET + pol.vertex_score(v, None),
                          avail, e))  # type: ignore[arg-type]
        self.preorder += pre
        self.postorder += post
        if not cands:
            return -1
        cxx_sort(cands, _first, True if pol.kind == "variation" else pol.descending)
        slots = dfu.evals(self.dom, "slot")
        for score, avail, e in cands:
            eg = EGroup(MATCH_MET + score, 1, 0, True)
            eg.edges.append(EEdge(avail, avail, True, e))
            eg.task_label = label
            slots.total_count += 1
            if eg.score > slots.cutline:
                slots.qual_count += 1
            slots.groups.append(eg)
        return 0

    # -- memoized free subtrees -----------------------------------------------------------
    def _memo_start(self, req: object) -> None:
        """Keep records only for ``req`` (records name its resource lists by identity)."""
        if self._memo_req is not req:
            if self._memo is not None:
                self._memo.clear()
            self._greedy_ok.clear()
            if self._fails is not None:
                self._fails.clear()
            self._prefix_clear()
            if self._shapes is not None:
                self._shapes.clear()
            self._memo_req = req

    def _memo_clear(self) -> None:
        if self._memo is not None:
            self._memo.clear()
        if self._fails is not None:
            self._fails.clear()
        self._prefix_clear()

    def _prefix_clear(self) -> None:
        self._prefixes.clear()
        for log in self._child_log.values():
            log.clear()

    def _memo_worth(self, u: Vertex) -> bool:
        """A subtree deep enough (grandchildren) for a record to save work.

        Only the first and last children are looked at: this decides where
        records are kept, never what a match selects.
        """
        big = self._big.get(u.uniq_id)
        if big is None:
            verts = self.g.vertices
            kids = u.children(self.dom)
            big = bool(kids) and bool(verts[kids[0].dst].out or verts[kids[-1].dst].out)
            self._big[u.uniq_id] = big
        return big

    def _memo_visit(self, meta: JobMeta, u: Vertex, resources: list[ResourceReq], pristine: bool,
                    excl: bool, to_parent: Scoring) -> tuple[int, bool]:
        """:meth:`_dom_dfv` of a job-free subtree, replayed from a record when there is one."""
        pol = self.policy
        key = (u.uniq_id, id(resources), pristine, excl, pol._level_scores, meta.alloc_type == "sat")
        memo = self._memo
        hit = memo.get(key)  # type: ignore[union-attr]
        if hit is not None and hit[0] == u.version:
            _, rc, x_out, merged, avail, score, marks, npre, npost = hit
            self.preorder += npre
            self.postorder += npost
            if rc == 0:
                mark = self._mark
                for e, n, x in _marks(marks):
                    mark(e, n, x)
                if merged is not None:
                    to_parent.merge(merged)
                to_parent.avail = avail
                to_parent.overall_score = score
            return rc, x_out
        # a subtree no walk has changed yet: its visit may be that of another of its shape
        shaped = self._shapes is not None and u.version == 0 and u is not self.root
        rc, x_out, rec, npre, npost, clean = self._recorded_visit(
            meta, u, resources, pristine, excl, to_parent, shaped)
        if clean:
            memo[key] = (u.version, rc, x_out, self._merged if rc == 0 else None,  # type: ignore[index]
                         to_parent.avail, to_parent.overall_score, rec, npre, npost)
        return rc, x_out

    def _recorded_visit(self, meta, u: Vertex, resources, pristine: bool, excl: bool,
                        to_parent, shaped: bool = False) -> tuple:
        """The visit of ``u``'s subtree, recording the edges it marks.

        The plain visit, or with ``shaped`` that of :meth:`_shape_visit`.
        Returns ``(rc, x_out, record, preorder visits, postorder visits, clean)``;
        ``clean``: it logged no error and left the level score as it was, so it can be
        replayed. An enclosing recording gets the marks too.  A record holds
        them flat, three items an edge (edge, needs, exclusive): a tuple each
        would be as many objects for the cyclic garbage collector to walk,
        and the records of a graph-wide match name every edge.
        """
        pol = self.policy
        outer = self._rec
        rec: list[Any] = []
        self._rec = rec
        pre0, post0 = self.preorder, self.postorder
        err0, lvl0 = len(self.err_msg), pol._level_scores
        try:
            if shaped:
                rc, x_out = self._shape_visit(meta, u, resources, pristine, excl, to_parent)
            else:
                rc, x_out = self._dom_dfv(meta, u, resources, pristine, excl, to_parent, False)
        finally:
            self._rec = outer
        if outer is not None:
            outer.extend(rec)
        clean = len(self.err_msg) == err0 and pol._level_scores == lvl0
        return rc, x_out, rec, self.preorder - pre0, self.postorder - post0, clean

    # -- failed prefixes of big vertices ------------------------------------------------------
    def _prefix_edges(self, u: Vertex, rec: FailedPrefix, order: Any) -> Iterator[Edge]:
        """``u``'s children in ``order``, less the members of ``rec`` (their counts added).

        The changed children at or before the run's end come first, in order,
        each after the counts of the members before it; then the children
        after the run.  The walk notes each yielded child that fails with a
        record (:meth:`FailedPrefix.member`); the first that does not ends the
        run (:meth:`FailedPrefix.finish`).
        """
        log = self._child_log[u.uniq_id]
        keys, pre, post, members = rec.keys, rec.pre, rec.post, rec.members
        last = rec.last
        low = []
        if rec.log_pos < len(log):
            changed = {e.dst: e for e in log[rec.log_pos:]}
            for uid, e in changed.items():
                k = members.pop(uid, None)
                if k is not None:  # a member that changed is visited again
                    i = bisect_left(keys, k)
                    del keys[i], pre[i], post[i]
                k = _weight_key(e)
                if k <= last:
                    low.append((k, e))
            low.sort(key=_first)
        rec.log_pos = len(log)
        pos = 0
        rec.low = True
        for k, e in low:
            j = bisect_left(keys, k)
            if j > pos:
                self.preorder += sum(pre[pos:j])
                self.postorder += sum(post[pos:j])
            rec.pending, rec.noted = e, False
            yield e
            if not rec.noted:
                rec._cut(k)
            rec.pending = None
            pos = rec.at + 1 if rec.noted and rec.cut is None else j
        if pos < len(keys):
            self.preorder += sum(pre[pos:])
            self.postorder += sum(post[pos:])
        rec.low = False
        it: Iterable[Edge] = order if last is _BEFORE_ALL else order.irange_key(min_key=last,
                                                                              inclusive=(False, True))
        for e in it:
            rec.pending, rec.noted = e, False
            yield e
            if not rec.noted:
                rec._cut(_weight_key(e))
            rec.pending = None

    def _log_child(self, u: Vertex, e: Edge) -> None:
        """The update walk changed ``u``'s child through ``e`` (see :class:`FailedPrefix`)."""
        log = self._child_log.get(u.uniq_id)
        if log is not None:
            if len(log) >= _LOG_MAX:
                self._prefix_clear()
            log.append(e)

    # -- untouched subtrees of one shape ----------------------------------------------------
    def _shape_of(self, u: Vertex) -> int | None:
        """A number naming ``u``'s subtree up to its uniq_ids (and ``u``'s own id).

        Two subtrees with the same number have, vertex by vertex at the same
        child positions from their roots, the same type, size, status,
        subtree planner types and totals, and id less the first id of its
        type in the subtree, and every vertex's children in the same uniq_id
        order, all edges at their first weight.  Computed for an untouched
        subtree (``u.version == 0``) and describing it as it was then (see
        :meth:`_free_as_untouched`).  None when a replay could differ from the
        visit: a vertex of size > 1, an edge weight already changed, or, under
        a node-centric policy, unless ``u`` is a node with no node below it
        (the node's factor, from its id and uniq_id, then shifts every score
        below it alike).
        """
        uid = u.uniq_id
        ids = self._shape_ids
        if uid in ids:
            return ids[uid]
        key, uniform, nodes_below = self._shape_key(u, {u.type: u.id})
        if (not uniform or u.version != 0
                or (self.policy.node_centric and not (u.type == "node" and not nodes_below))):
            sid = None
        else:
            if self.g.reverse_edges:
                # the parent's type is one of u's neighbour types (see Traverser._slot_match)
                pe = u.parent_edge.get(self.dom)
                key = (key, self.g.vertices[pe.src].type if pe is not None else None)
            sid = self._shape_cls.get(key)
            if sid is None:
                sid = self._shape_cls[key] = len(self._shape_cls)
        ids[uid] = sid
        return sid

    def _shape_key(self, u: Vertex, first_id: dict[str, int]) -> tuple[tuple, bool, bool]:
        """``u``'s subtree as nested tuples; whether all sizes are 1; whether a node is below.

        Ids are taken relative to the first id of each type met (``first_id``,
        children before grandchildren: any order fixed by the shape will do).
        Built from whole child lists at a time (``map``): this runs once per
        subtree a match meets untouched.
        """
        verts = self.g.vertices
        edges = u.children(self.dom)
        vs = list(map(verts.__getitem__, map(_dst, edges)))
        types = tuple(map(_type, vs))
        sizes = tuple(map(_size, vs))
        ids = tuple(map(_id, vs))
        weights = list(map(_weight, edges))
        # sizes of 1 (see _shape_of) and the weights every edge starts with (never changed)
        uniform = u.size == 1 and sizes.count(1) == len(sizes) and weights.count(_MAX_WEIGHT) == len(weights)
        nodes = "node" in types
        dsts = list(map(_dst, edges))
        kids: list[Any] = [types, sizes, tuple(map(_status, vs)),
                           tuple(map(_sub, ids, map(first_id.setdefault, types, ids))),
                           # the first policy breaks ties of weight by uniq_id
                           True if dsts == sorted(dsts) else tuple(sorted(range(len(dsts)), key=dsts.__getitem__))]
        if any(map(_subplans, vs)):
            kids.append(tuple(map(_plan_key, vs)))
        for i, v in enumerate(vs):
            if v.out:
                k, uni, nb = self._shape_key(v, first_id)
                kids.append((i, k))
                uniform = uniform and uni
                nodes = nodes or nb
        return (u.type, u.size, u.status, _plan_key(u), tuple(kids)), uniform, nodes

    def _free_as_untouched(self, meta: JobMeta, u: Vertex) -> tuple | None:
        """Whether a reservation's (or satisfiability's) visit of ``u`` is that of an untouched one.

        It is when no job of the subtree overlaps the window (``u``'s job
        counter: every job planned below ``u`` has a span there) and no
        status changed since the traverser was made; allocations count
        outside the window too (``_by_excl``), hence not for ``alloc``.  Edge
        weights, which the update walk changes, only order children: returns
        the children's orders that differ from the untouched ones (``()`` if
        none; part of the record's key), or None.
        """
        if meta.alloc_type == "alloc" or self._status_changed or u.njobs_during(meta.at, meta.duration):
            return None
        if self._shape_ids.get(u.uniq_id) is None:
            return None
        verts = self.g.vertices
        dom = self.dom
        stack = [u]
        orders = []
        i = 0
        while stack:
            w = stack.pop()
            edges = w.out[dom]
            weights = list(map(_weight, edges))
            if weights.count(_MAX_WEIGHT) != len(weights):
                # untouched, every weight is the largest: the order is by descending uniq_id
                now = sorted(edges, key=_weight_key)
                if now != sorted(edges, key=_neg_dst):
                    orders.append((i, tuple(map(_pos, now))))
            for e in edges:
                v = verts[e.dst]
                if v.out:
                    stack.append(v)
            i += 1
        return tuple(orders)

    def _shape_visit(self, meta: JobMeta, u: Vertex, resources: list[ResourceReq], pristine: bool,
                     excl: bool, to_parent: Scoring, orders: tuple = ()) -> tuple[int, bool]:
        """:meth:`_dom_dfv` of an untouched subtree, replayed from one of the same shape.

        ``orders``: the children's orders that differ from the untouched ones
        (see :meth:`_free_as_untouched`).
        """
        pol = self.policy
        ctx = (id(resources), pristine, excl, pol._level_scores, meta.alloc_type == "sat")
        shapes = self._shapes
        if ctx in shapes:  # type: ignore[operator]
            # the visits of this request level hand their candidates up: nothing to record
            return self._dom_dfv(meta, u, resources, pristine, excl, to_parent, False)
        sid = self._shape_of(u)
        if sid is None:
            return self._dom_dfv(meta, u, resources, pristine, excl, to_parent, False)
        key = (sid, orders, *ctx)
        hit = shapes.get(key)  # type: ignore[union-attr]
        if hit is not None:
            rc, x_out, avail, score, rid, marks, npre, npost, colored, merged = hit
            self.preorder += npre
            self.postorder += npost
            self._merged = None
            if colored:
                u.color = self._gray + 1
            if rc == 0:
                # Traverser._mark of each recorded edge, a source vertex at a time
                verts = self.g.vertices
                dom = self.dom
                seq = self.seq
                marked = self._marked
                outer = self._rec
                for path, items in marks:
                    v = u
                    for pos in path:
                        v = verts[v.out[dom][pos].dst]
                    out = v.out[dom]
                    es = []
                    for pos, n, x in items:
                        e = out[pos]
                        e.needs, e.exclusive, e.seq = n, x, seq
                        es.append(e)
                    if outer is not None:
                        for e, (_, n, x) in zip(es, items):
                            outer += (e, n, x)
                    m = marked.get(v.uniq_id)
                    if m is None:
                        marked[v.uniq_id] = es
                    else:
                        m.extend(es)
                if merged is not None:
                    self._merged = self._replay_merged(u, merged)
                    to_parent.merge(self._merged)
                to_parent.avail = avail
                to_parent.overall_score = score - rid + u.id
            return rc, x_out
        rc, x_out, rec, npre, npost, clean = self._recorded_visit(
            meta, u, resources, pristine, excl, to_parent)
        if not clean:
            return rc, x_out
        merged = None
        if rc == 0 and self._merged is not None:
            merged = self._record_merged(u, self._merged)
            if merged is None:
                # nor tried again for this request level, where subtrees of any shape are
                # likely to do the same (this decides only where records are kept)
                shapes[ctx] = None  # type: ignore[index]
                return rc, x_out
        by_src: dict[tuple, list[tuple[int, int, bool]]] = {}
        for e, n, x in _marks(rec):
            path = self._path_to(u, e)
            if path is None:
                return rc, x_out  # an edge outside the subtree: not a record of its shape
            # by the path of the edge's source: (positions to it, [(position, needs, exclusive)])
            by_src.setdefault(path[:-1], []).append((path[-1], n, x))
        marks = tuple((src_path, tuple(items)) for src_path, items in by_src.items())
        shapes[key] = (rc, x_out, to_parent.avail, to_parent.overall_score, u.id,  # type: ignore[index]
                       marks, npre, npost,
                       u.color == self._gray + 1, merged)
        return rc, x_out

    def _path_to(self, u: Vertex, e: Edge | None) -> tuple[int, ...] | None:
        """The child positions that lead from ``u`` through edge ``e`` (None: not below ``u``)."""
        if e is None:
            return None
        dom = self.dom
        verts = self.g.vertices
        path = []
        pe = e
        while True:
            src = verts[pe.src]
            if src.out[dom][pe.pos] is not pe:
                return None
            path.append(pe.pos)
            if src is u:
                return tuple(reversed(path))
            pe = src.parent_edge.get(dom)
            if pe is None:
                return None

    def _level_below(self, u: Vertex) -> int:
        """The level score of the vertices below ``u`` during its visit (a node's factor added)."""
        pol = self.policy
        if pol.node_centric and u.type == "node":
            return pol._level_scores + pol.node_factor(u)
        return pol._level_scores

    def _record_merged(self, u: Vertex, merged: Scoring) -> tuple | None:
        """The candidates ``u``'s visit handed up, by child positions, scores less their terms.

        Under the ``id`` policies a candidate's score is a constant plus, for
        each of its edges, the level score and the id of the edge's target
        (``level + id + 1`` per vertex, summed over a slot's members), where
        the level holds the node factor below a node: the constant is kept,
        the terms are those of the subtree replayed (:meth:`_replay_merged`).
        """
        level = self._level_below(u)
        verts = self.g.vertices
        out = []
        for s, tmap in merged.ssys.items():
            for t, ev in tmap.items():
                groups = []
                for g in ev.groups:
                    edges = []
                    c = g.score
                    for ee in g.edges:
                        path = self._path_to(u, ee.edge)  # type: ignore[arg-type]
                        if path is None:
                            return None
                        c -= level + verts[ee.edge.dst].id  # type: ignore[attr-defined]
                        # the path to the edge's source, and the edge's position there
                        edges.append((path[:-1], path[-1], ee.count, ee.needs, ee.exclusive))
                    groups.append((c, g.count, g.needs, g.exclusive, g.root, g.task_label, tuple(edges)))
                out.append((s, t, ev.qual_count, ev.total_count, ev.best_k, ev.best_i, ev.cutline,
                            tuple(groups)))
        return tuple(out)

    def _replay_merged(self, u: Vertex, merged: tuple) -> Scoring:
        """The candidates of :meth:`_record_merged`, rebuilt for ``u``'s subtree."""
        level = self._level_below(u)
        verts = self.g.vertices
        dom = self.dom
        # the child lists of the subtree's vertices, by their paths from u (the candidates
        # of one vertex, e.g. a socket's cores, share one)
        outs: dict[tuple, list] = {(): u.out[dom]}
        sc = Scoring()
        for s, t, qual, total, best_k, best_i, cutline, groups in merged:
            ev = sc.evals(s, t)
            ev.qual_count, ev.total_count, ev.best_k, ev.best_i, ev.cutline = (qual, total, best_k,
                                                                               best_i, cutline)
            append = ev.groups.append
            for c, count, needs, exclusive, root, label, edges in groups:
                score = c
                eedges = []
                for src, pos, ecount, eneeds, ex in edges:
                    out = outs.get(src)
                    if out is None:
                        v = u
                        for p in src:
                            v = verts[v.out[dom][p].dst]
                        out = outs[src] = v.out[dom]
                    e = out[pos]
                    score += level + verts[e.dst].id
                    eedges.append(EEdge(ecount, eneeds, ex, e))
                append(EGroup(score, count, needs, exclusive, root, label, eedges))
        return sc
