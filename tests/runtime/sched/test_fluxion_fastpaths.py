"""Tests of the Fluxion matcher's speed-ups: each must select what the plain walk selects.

The fast paths (greedy child order, memoized free subtrees, top-k sort,
root aggregate check, sorted ``first``-policy children) are checked against
the same traverser with them switched off, on workloads that mix allocate,
reserve, satisfiability and cancel, including graphs whose ids repeat.
"""

from __future__ import annotations

import random

import pytest

from fluxnb.runtime.sched.fluxion import (MatchError, Planner, ResourceGraph, Traverser, make_policy,
                                          make_writer, parse_request)
from fluxnb.runtime.sched.fluxion.cxxsort import cxx_sort
from fluxnb.runtime.sched.fluxion.graph import EMPTY


def build(nodes: int, *, repeat_ids: bool = False, racks: int = 0) -> ResourceGraph:
    """cluster > [rack >] node > socket[2] > core[4] + gpu; optionally with repeated ids."""
    with ResourceGraph.building():
        g = ResourceGraph()
        root = g.add_vertex("cluster", "cluster", 0)
        parents = [g.add_vertex("rack", "rack", r, parent=root) for r in range(racks)] or [root]
        for i in range(nodes):
            node = g.add_vertex("node", "node", i % 3 if repeat_ids else i,
                                parent=parents[i % len(parents)], rank=i)
            for s in range(2):
                sock = g.add_vertex("socket", "socket", s, parent=node, rank=i)
                ids = [c % 2 for c in range(4)] if repeat_ids else range(s * 4, s * 4 + 4)
                g.add_children(sock, "core", "core", ids, rank=i)
                g.add_vertex("gpu", "gpu", s, parent=sock, rank=i)
    return g


def _spec(kind: str, count: int, duration: int) -> dict:
    attrs = {"system": {"duration": duration}}
    if kind == "node":
        res = [{"type": "node", "count": count, "exclusive": True, "with": [
            {"type": "slot", "count": 1, "label": "task", "with": [
                {"type": "socket", "count": 2, "with": [{"type": "core", "count": 4},
                                                        {"type": "gpu", "count": 1}]}]}]}]
    elif kind == "slotcore":
        res = [{"type": "slot", "count": count, "label": "task", "with": [{"type": "core", "count": 1}]}]
    elif kind == "nodecore":
        res = [{"type": "node", "count": count, "with": [
            {"type": "socket", "count": 1, "with": [{"type": "core", "count": 2}]}]}]
    else:
        res = [{"type": "core", "count": count}]
    return {"version": 1, "resources": res, "attributes": attrs, "tasks": []}


def _workload(trav: Traverser, seed: int) -> list:
    rng = random.Random(seed)
    w = make_writer("simple")
    reqs: dict = {}
    live: list[int] = []
    out = []
    for step in range(50):
        if live and rng.random() < 0.25:
            jobid = rng.choice(live)
            live.remove(jobid)
            trav.cancel(jobid)
            continue
        if rng.random() < 0.08:
            node = rng.choice(trav.g.by_type["node"])
            trav.mark(node.paths["containment"], rng.choice(["down", "up", "up"]))
            continue
        key = (rng.choice(["node", "slotcore", "nodecore", "core"]), rng.choice([1, 1, 2, 3]))
        if key not in reqs or rng.random() < 0.3:
            reqs[key] = parse_request(_spec(*key, rng.choice([50, 100, 3600])))
        op = rng.choice(["allocate", "allocate_orelse_reserve", "allocate_with_satisfiability"])
        try:
            meta = trav.run(reqs[key], op, step + 1, w)
        except MatchError as exc:
            w.emit()
            out.append(("error", exc.errno))
            continue
        out.append(("ok", meta.at, w.emit()))
        live.append(step + 1)
    return out


def _plain(trav: Traverser) -> Traverser:
    """Switch the fast paths of ``trav`` off (the reference walk)."""
    trav._memo = None
    trav._fails = None
    trav._shapes = None
    trav._greedy_applies = lambda *a: False  # type: ignore[method-assign]
    trav._root_cannot_fit = lambda *a: False  # type: ignore[method-assign]
    trav._slot_of_leaves = lambda *a: None  # type: ignore[method-assign]
    return trav


def build_pools(nodes: int, pools: int = 1) -> ResourceGraph:
    """cluster > node > socket[2] > core[2] + memory[pools] (pool leaves of 4 units)."""
    with ResourceGraph.building():
        g = ResourceGraph()
        root = g.add_vertex("cluster", "cluster", 0)
        for i in range(nodes):
            node = g.add_vertex("node", "node", i, parent=root, rank=i)
            for s in range(2):
                sock = g.add_vertex("socket", "socket", s, parent=node, rank=i)
                g.add_children(sock, "core", "core", range(s * 2, s * 2 + 2), rank=i)
                for m in range(pools):
                    g.add_vertex("memory", "memory", s * pools + m, parent=sock, rank=i, size=4)
    return g


@pytest.mark.parametrize("policy", ["high", "low", "locality", "variation"])
def test_slots_of_one_pool_leaf_select_what_the_full_walk_selects(policy: str) -> None:
    """A slot of one leaf (_slot_of_leaves) on pool leaves that jobs use in part: a slot is
    exclusive, so a pool another job uses is busy for it though units are free."""
    def spec(kind: str, n: int, duration: int) -> dict:
        return {"version": 1, "resources": [{"type": "slot", "count": 1, "label": "task",
                                             "with": [{"type": kind, "count": n}]}],
                "attributes": {"system": {"duration": duration}}, "tasks": []}

    def workload(trav: Traverser, seed: int) -> list:
        rng = random.Random(seed)
        w = make_writer("simple")
        live: list[int] = []
        out = []
        for step in range(60):
            if live and rng.random() < 0.2:
                jobid = rng.choice(live)
                live.remove(jobid)
                trav.cancel(jobid)
                continue
            kind = rng.choice(["slotmem", "slotcore", "partmem"])
            dur = rng.choice([50, 100])
            js = (spec("memory", 1, dur) if kind == "slotmem" else spec("core", 1, dur)
                  if kind == "slotcore" else spec("memory", 2, dur))
            op = rng.choice(["allocate", "allocate_orelse_reserve", "allocate_with_satisfiability"])
            try:
                meta = trav.run(parse_request(js), op, step + 1, w)
            except MatchError as exc:
                w.emit()
                out.append(("error", exc.errno))  # (the root's aggregates may answer EBUSY unwalked)
                continue
            out.append(("ok", meta.at, w.emit(), trav.total_preorder, trav.total_postorder))
            live.append(step + 1)
        return out

    def selections(out: list) -> list:
        return [r[:3] for r in out]

    for seed in range(3):
        fast = Traverser(build_pools(3), make_policy(policy))
        got = workload(fast, seed)
        assert any(r[0] == "ok" and "memory" in r[2] for r in got)
        # the slot-of-leaves shortcut alone: the same selections and visit counts
        no_slot = Traverser(build_pools(3), make_policy(policy))
        no_slot._slot_of_leaves = lambda *a: None  # type: ignore[method-assign]
        assert got == workload(no_slot, seed)
        # every fast path: the same selections (the counts of a reservation's replayed
        # visits of pool leaves can differ by one, as before this shortcut's checks)
        assert selections(got) == selections(workload(_plain(Traverser(build_pools(3),
                                                                       make_policy(policy))), seed))


@pytest.mark.parametrize("fast", [True, False])
def test_a_reserved_slot_skips_a_pool_a_job_still_uses(fast: bool) -> None:
    """At a reservation's time a pool with free units that a job still uses is busy to a
    slot (exclusive): the slot takes the other pool, whose job has ended."""
    trav = Traverser(build_pools(1, pools=2), make_policy("high"))
    if not fast:
        _plain(trav)
    w = make_writer("simple")

    def slotmem(duration: int) -> object:
        return parse_request({"version": 1, "resources": [
            {"type": "slot", "count": 1, "label": "task", "with": [{"type": "memory", "count": 1}]}],
            "attributes": {"system": {"duration": duration}}, "tasks": []})

    for jobid in (1, 2, 3):
        trav.run(slotmem(100), "allocate", jobid, w)
    trav.run(slotmem(50), "allocate", 4, w)  # the last pool: every pool holds a job now
    w.emit()
    taken = [next(m for m in trav.g.by_type["memory"] if j in m.allocations) for j in (1, 2, 3, 4)]
    assert len({m.uniq_id for m in taken}) == 4
    meta = trav.run(slotmem(100), "allocate_orelse_reserve", 5, w)
    out = w.emit()
    assert meta.at == 50 and f"{taken[3].name}[1:x]" in out and out.count("memory") == 1


@pytest.mark.parametrize("policy", ["high", "low", "hinode", "lonodex", "first", "locality"])
@pytest.mark.parametrize("shape", ["plain", "repeat_ids", "racks"])
def test_fast_paths_select_what_the_full_walk_selects(policy: str, shape: str) -> None:
    kw = {"repeat_ids": shape == "repeat_ids", "racks": 2 if shape == "racks" else 0}
    for seed in range(3):
        fast = Traverser(build(12, **kw), make_policy(policy))  # type: ignore[arg-type]
        slow = _plain(Traverser(build(12, **kw), make_policy(policy)))  # type: ignore[arg-type]
        assert _workload(fast, seed) == _workload(slow, seed)


def test_high_policy_takes_highest_free_node_without_visiting_all() -> None:
    trav = Traverser(build(200), make_policy("high"))
    w = make_writer("simple")
    trav.run(parse_request(_spec("node", 1, 100)), "allocate", 1, w)
    assert "node199[" in w.emit()
    assert trav.total_preorder < 100  # the greedy walk stops at the first fitting node


def test_repeated_free_subtrees_are_replayed() -> None:
    trav = Traverser(build(50), make_policy("high"))
    req = parse_request(_spec("slotcore", 1, 100))
    w = make_writer("simple")
    trav.run(req, "allocate", 1, w)
    first = w.emit()
    trav.run(req, "allocate", 2, w)
    second = w.emit()
    assert first != second and trav._memo  # records kept for the 49 untouched nodes


def test_records_are_kept_by_request_shape_not_object() -> None:
    trav = Traverser(build(50), make_policy("high"))
    w = make_writer("simple")
    req = parse_request(_spec("slotcore", 1, 100))
    trav.run(req, "allocate", 1, w)
    # a fresh jobspec of the same shape (as each resource-query "match" parses) uses the records
    trav.run(parse_request(_spec("slotcore", 1, 100)), "allocate", 2, w)
    assert trav._memo_req is req and trav._memo
    # another duration is another request: the records of the first are dropped
    other = parse_request(_spec("slotcore", 1, 50))
    trav.run(other, "allocate", 3, w)
    assert trav._memo_req is other
    assert req.key() != other.key() and req.key() == parse_request(_spec("slotcore", 1, 100)).key()


def _step(trav: Traverser, w, out: list, request, op: str, jobid: int) -> bool:
    """Match ``request`` (``op``) as job ``jobid``; append the result and the visit counts
    so far to ``out`` (what fast and plain walks must agree on). True if it matched."""
    try:
        meta = trav.run(request, op, jobid, w)  # type: ignore[arg-type]
        out.append((meta.at, w.emit()))
        ok = True
    except MatchError as exc:
        w.emit()
        out.append(("error", exc.errno))
        ok = False
    out.append((trav.total_preorder, trav.total_postorder))
    return ok


def _play(trav: Traverser, steps: list) -> list:
    """Run ``steps`` (``(kind, op)`` matches as job ``i``, ``("cancel", jobid)``,
    ``("down", node)``); the results and visit counts :func:`_step` records."""
    w = make_writer("simple")
    out: list = []
    for jobid, (kind, op) in enumerate(steps, 1):
        if kind == "cancel":
            trav.cancel(op)
        elif kind == "down":
            trav.mark(f"/cluster0/node{op}", "down")
        else:
            _step(trav, w, out, parse_request(_spec(kind, 1, 100)), op, jobid)
    return out


def _count_calls(trav: Traverser, name: str) -> list[int]:
    """Count the calls of ``trav``'s method ``name`` from now on (in the returned cell)."""
    calls = [0]
    method = getattr(trav, name)

    def counted(*a, **kw):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return method(*a, **kw)
    setattr(trav, name, counted)
    return calls


@pytest.mark.parametrize("policy", ["first", "high", "low"])
def test_failed_busy_subtrees_replay_the_same_visit(policy: str) -> None:
    """Records of failed visits of busy nodes change neither the selection nor the visit counts."""
    steps = [("slotcore", "allocate")] * 3 + [("node", "allocate")] * 12 + \
        [("node", "allocate_orelse_reserve")] * 6 + [("cancel", 5), ("node", "allocate")] + \
        [("nodecore", "allocate_orelse_reserve")] * 3 + [("node", "allocate_with_satisfiability")]
    fast = Traverser(build(12), make_policy(policy))
    slow = Traverser(build(12), make_policy(policy))
    slow._fails = None
    assert _play(fast, steps) == _play(slow, steps)
    assert fast._fails  # some busy nodes were recorded


@pytest.mark.parametrize("policy", ["first", "high", "low", "lonodex"])
@pytest.mark.parametrize("records", [True, False])
def test_busy_children_counted_without_a_visit_select_and_count_as_the_visit(policy: str,
                                                                             records: bool) -> None:
    """A child in use for the whole window is counted and pruned without its visit: the same
    selections, errors and visit counts as visiting it, through a full cluster, reservations,
    a node marked down, a cancel and satisfiability (with and without failed-visit records)."""
    steps = ([("slotcore", "allocate")] * 5 + [("node", "allocate")] * 40
             + [("node", "allocate_orelse_reserve")] * 4 + [("down", 7), ("cancel", 9)]
             + [("nodecore", "allocate_orelse_reserve")] * 2 + [("core", "allocate")] * 2
             + [("node", "allocate_with_satisfiability"), ("node", "allocate_orelse_reserve")])

    def run(trav: Traverser) -> tuple[list, int]:
        calls = _count_calls(trav, "_dom_dfv")
        if not records:
            trav._fails = None
        return _play(trav, steps), calls[0]

    fast = Traverser(build(40), make_policy(policy))
    slow = Traverser(build(40), make_policy(policy))
    slow._skip_busy = False
    (a, fast_calls), (b, slow_calls) = run(fast), run(slow)
    assert a == b
    assert any(r[0] == "error" for r in a[::2]) and any(r[0] != "error" and r[0] > 0 for r in a[::2])
    assert fast_calls < slow_calls  # busy nodes were passed over


def _mixed_nodes() -> ResourceGraph:
    """Nodes of several shapes: 4 or 3 cores a socket, global or repeated core ids, a memory pool."""
    with ResourceGraph.building():
        g = ResourceGraph()
        root = g.add_vertex("cluster", "cluster", 0)
        for i in range(16):
            node = g.add_vertex("node", "node", i, parent=root, rank=i)
            ncores = 3 if i % 5 == 4 else 4
            for s in range(2):
                sock = g.add_vertex("socket", "socket", 2 * i + s, parent=node, rank=i)
                ids = range(s * 4, s * 4 + ncores) if i % 3 else range(8 * i + 4 * s, 8 * i + 4 * s + ncores)
                g.add_children(sock, "core", "core", list(ids)[::-1] if i % 7 == 6 else ids, rank=i)
                g.add_vertex("gpu", "gpu", 2 * i + s, parent=sock, rank=i)
            if i % 4 == 3:
                g.add_vertex("memory", "memory", i, parent=node, rank=i, size=16)
    return g


@pytest.mark.parametrize("policy", ["first", "firstnodex", "high", "low", "hinode", "lonodex"])
def test_untouched_subtrees_replay_a_visit_of_the_same_shape(policy: str) -> None:
    """Records of one untouched node's visit, replayed for others, select and count as the walk."""
    def run(trav: Traverser) -> list:
        w = make_writer("simple")
        out = []
        rng = random.Random(3)
        for jobid in range(1, 54):
            if jobid % 9 == 0:
                trav.cancel(jobid - rng.randrange(1, 8))
                continue
            if jobid == 20:
                trav.mark("/cluster0/node9", "down")
            # blocks of one request shape (the records are kept for one shape at a time)
            kind, count = [("node", 1), ("slotcore", 1), ("node", 2), ("nodecore", 1)][jobid // 5 % 4]
            op = rng.choice(["allocate", "allocate_orelse_reserve"])
            _step(trav, w, out, parse_request(_spec(kind, count, 100)), op, jobid)
        return out

    fast = Traverser(_mixed_nodes(), make_policy(policy))
    slow = Traverser(_mixed_nodes(), make_policy(policy))
    slow._shapes = None
    fast_calls, slow_calls = _count_calls(fast, "_explore"), _count_calls(slow, "_explore")
    assert run(fast) == run(slow)
    assert fast_calls[0] < slow_calls[0]  # some visits were replayed
    assert len(set(fast._shape_ids.values()) - {None}) > 1  # several shapes met
    assert None in fast._shape_ids.values()  # the nodes with a memory pool (size 16) are walked


# -- building blocks -------------------------------------------------------------------
def test_planner_removes_a_span_whose_start_point_was_merged() -> None:
    p = Planner(10)
    p.add_span(0, 100, 1)
    p.add_span(0, 50, 1)
    b = p.add_span(50, 50, 1)
    c = p.add_span(0, 50, 1)
    p.remove_span(c)  # [0,50) and [50,100) now both hold 2: their points merge
    p.remove_span(b)  # b's start is no longer a point, yet b must go
    assert [p.used_at(t) for t in (0, 49, 50, 99, 100)] == [2, 2, 1, 1, 0]


def test_planner_matches_a_brute_force_step_function() -> None:
    rng = random.Random(7)
    for _ in range(100):
        p, spans, ref = Planner(10), {}, [0] * 60
        for _ in range(30):
            if spans and rng.random() < 0.4:
                sid = rng.choice(list(spans))
                start, end, n = spans.pop(sid)
                p.remove_span(sid)
                for t in range(start, end):
                    ref[t] -= n
                continue
            start, dur, n = rng.randrange(40), rng.randrange(1, 15), rng.randrange(4)
            if all(ref[t] + n <= 10 for t in range(start, start + dur)):
                spans[p.add_span(start, dur, n)] = (start, start + dur, n)
                for t in range(start, start + dur):
                    ref[t] += n
        assert [p.used_at(t) for t in range(60)] == ref
        assert all(p.avail_during(t, d) == 10 - max(ref[t:t + d])
                   for t in range(0, 50, 3) for d in (1, 5))


@pytest.mark.parametrize("n", [2, 16, 17, 100, 3000])
def test_cxx_sort_first_k_are_those_of_the_full_sort(n: int) -> None:
    rng = random.Random(n)
    for distinct in (2, 5, n):
        items = [(rng.randrange(distinct), i) for i in range(n)]
        for descending in (True, False):
            full = list(items)
            cxx_sort(full, lambda x: x[0], descending)
            assert [x[0] for x in full] == sorted((x[0] for x in items), reverse=descending)
            for k in (1, 3, 17, n):
                part = list(items)
                cxx_sort(part, lambda x: x[0], descending, k)
                assert part[:k] == full[:k]


def test_add_children_matches_add_vertex() -> None:
    a, b = ResourceGraph(), ResourceGraph()
    ra, rb = a.add_vertex("cluster", "c", 0), b.add_vertex("cluster", "c", 0)
    for i in range(3):
        a.add_vertex("core", "core", i, parent=ra, rank=5)
    b.add_children(rb, "core", "core", range(3), rank=5)
    assert [(v.name, v.paths, v.rank, v.parent_edge["containment"].pos) for v in a.vertices[1:]] == \
        [(v.name, v.paths, v.rank, v.parent_edge["containment"].pos) for v in b.vertices[1:]]
    assert sorted(a.by_path) == sorted(b.by_path)


def test_untouched_vertices_share_empty_containers() -> None:
    trav = Traverser(build(4), make_policy("first"))
    trav.run(parse_request(_spec("slotcore", 1, 100)), "allocate", 1, make_writer("simple"))
    idle = trav.g.by_path["/cluster0/node0/socket0/core0"]
    assert idle.tags is EMPTY and idle.allocations is EMPTY and idle.out is EMPTY
    busy = [v for v in trav.g.vertices if v.tags]
    assert busy and all(type(v.tags) is dict for v in busy)


def test_leaves_of_one_job_share_a_planner_until_one_changes() -> None:
    trav = Traverser(build(2), make_policy("first"))
    w = make_writer("simple")
    for jobid in (1, 2):
        trav.run(parse_request(_spec("node", 1, 100)), "allocate", jobid, w)
    cores = [v for v in trav.g.by_type["core"] if v.rank == 0]  # one job's cores
    assert all(v._plans is cores[0]._plans for v in cores) and cores[0]._plans.shared
    # a reservation on one core after job 1 ends: that core alone gets another planner
    meta = trav.run(parse_request(_spec("slotcore", 1, 50)), "allocate_orelse_reserve", 3, w)
    assert meta.at == 100
    taken = [v for v in trav.g.by_type["core"] if 3 in v.reservations]
    others = [v for v in trav.g.by_type["core"] if v is not taken[0]]
    assert len(taken) == 1 and all(v._plans is not taken[0]._plans for v in others)
    assert all(v.avail_during(100, 50) == 1 for v in others)
    assert taken[0].avail_during(100, 50) == 0 and taken[0].avail_during(0, 100) == 0
    # releasing job 1 empties its node's cores, not those of job 2 nor the reservation
    node = next(v for v in trav.g.by_type["node"] if v.rank == taken[0].rank)
    trav.cancel(next(iter(node.allocations)))
    assert all(v.avail_during(0, 100) == 1 for v in trav.g.by_type["core"] if v.rank == taken[0].rank
               and v is not taken[0])
    assert all(v.avail_during(0, 100) == 0 for v in trav.g.by_type["core"] if v.rank != taken[0].rank)
    assert taken[0].avail_during(100, 50) == 0


def test_a_kept_planner_is_shared_only_when_a_second_vertex_takes_it() -> None:
    """The update walk's kept results (_shared_span): the first taker owns its planner and
    may change it in place; an equal later request gets it shared only while unchanged."""
    trav = Traverser(build(1), make_policy("first"))
    q, sid = trav._shared_span(None, 4, "core", 0, 100, 1)
    assert not q.shared and q.avail_during(0, 100) == 3
    q2, sid2 = trav._shared_span(None, 4, "core", 0, 100, 1)
    assert q2 is q and sid2 == sid and q.shared  # two holders now: copy before a change
    r, _ = trav._shared_span(None, 4, "core", 0, 200, 1)
    assert not r.shared
    r.add_span(0, 100, 2)  # what its one holder does with its next job
    r2, _ = trav._shared_span(None, 4, "core", 0, 200, 1)
    assert r2 is not r and r2.avail_during(0, 100) == 3 and r.avail_during(0, 100) == 1
    s_, _ = trav._shared_span(None, 4, "core", 0, 300, 1)
    s_.remove_span(1)  # a cancel, in place
    s2, _ = trav._shared_span(None, 4, "core", 0, 300, 1)
    assert s2 is not s_ and s2.avail_during(0, 100) == 3


def test_vertices_count_their_jobs_after_in_place_changes_and_cancels() -> None:
    trav = Traverser(build(2), make_policy("first"))
    w = make_writer("simple")
    trav.run(parse_request(_spec("node", 1, 100)), "allocate", 1, w)
    root = trav.root
    req = parse_request(_spec("slotcore", 1, 100))
    trav.run(req, "allocate", 2, w)
    assert not root._x_checker.shared  # a copy of job 1's planner, with job 2: its own
    for jobid in range(3, 8):
        trav.run(req, "allocate", jobid, w)
    trav.cancel(1)
    trav.cancel(4)
    trav.run(parse_request(_spec("slotcore", 2, 100)), "allocate", 8, w)
    trav.run(req, "allocate_orelse_reserve", 9, w)
    for v in trav.g.vertices:
        assert v.njobs_during(0, 100) == len(v.tags), v.name
    cores = [v for v in trav.g.by_type["core"] if v.tags]
    assert all(c.avail_during(0, 100) == 0 for c in cores) and len(cores) == 8
    assert root.njobs_during(0, 100) == 7


@pytest.mark.parametrize("seed", [1, 2])
def test_failed_runs_of_a_big_vertex_are_skipped_with_the_walks_counts(seed: int) -> None:
    """A cluster of 70 nodes (a big vertex): skipping its run of failing nodes selects and counts
    as visiting each, through reservations, core jobs, cancels and status changes."""
    def run(trav: Traverser) -> list:
        w = make_writer("simple")
        rng = random.Random(seed)
        out = []
        live: list[int] = []
        for jobid in range(1, 160):
            r = rng.random()
            if live and r < 0.1:
                trav.cancel(live.pop(rng.randrange(len(live))))
                continue
            if r < 0.13:
                trav.mark(f"/cluster0/node{rng.randrange(70)}", rng.choice(["down", "up"]))
                continue
            kind = "node" if jobid % 40 < 30 else "slotcore"
            op = "allocate_orelse_reserve" if jobid > 60 or r < 0.5 else "allocate"
            if _step(trav, w, out, parse_request(_spec(kind, 1, rng.choice([100, 100, 300]))), op, jobid):
                live.append(jobid)
            longest[0] = max([longest[0], *(len(p.keys) for p in trav._prefixes.values())])
        return out

    longest = [0]
    fast = Traverser(build(70), make_policy("first"))
    slow = Traverser(build(70), make_policy("first"))
    slow._child_log = {}
    assert fast._child_log and run(fast) == run(slow)
    assert longest[0] > 20  # long runs were skipped


def test_a_failed_run_whose_nodes_get_busier_selects_and_counts_as_the_walk() -> None:
    """Reservations, then core jobs on a node of the run, then reservations again."""
    def run(trav: Traverser) -> list:
        w = make_writer("simple")
        steps = ([("node", "allocate")] * 69 + [("slotcore", "allocate")]
                 + [("node", "allocate_orelse_reserve")] * 2 + [("slotcore", "allocate")] * 4
                 + [("node", "allocate_orelse_reserve")] * 2)
        out = []
        for jobid, (kind, op) in enumerate(steps, 1):
            meta = trav.run(parse_request(_spec(kind, 1, 100)), op, jobid, w)  # type: ignore[arg-type]
            out.append((meta.at, w.emit(), trav.total_preorder, trav.total_postorder))
        return out

    fast = Traverser(build(70), make_policy("first"))
    slow = Traverser(build(70), make_policy("first"))
    slow._child_log = {}
    a, b = run(fast), run(slow)
    assert a == b
    assert a[-1][2] != a[71][2]  # the last reservation's walk differs from the earlier ones'


@pytest.mark.parametrize("policy", ["first", "firstnodex"])
def test_reservations_replay_subtrees_whose_jobs_end_before_the_window(policy: str) -> None:
    """A node busy only before a reservation's window is visited as an untouched one (in the
    children's current order): same selection and visit counts as the walk."""
    def run(trav: Traverser) -> list:
        w = make_writer("simple")
        steps = ([("slotcore", "allocate", 50)] * 5 + [("node", "allocate", 100)] * 11
                 + [("node", "allocate_orelse_reserve", 100)] * 20 + [("slotcore", "allocate_orelse_reserve", 30)] * 6
                 + [("node", "allocate_orelse_reserve", 60)] * 12)
        out = []
        for jobid, (kind, op, dur) in enumerate(steps, 1):
            _step(trav, w, out, parse_request(_spec(kind, 1, dur)), op, jobid)  # type: ignore[arg-type]
        return out

    fast = Traverser(build(16), make_policy(policy))
    slow = Traverser(build(16), make_policy(policy))
    slow._shapes = None
    free = []
    check = fast._free_as_untouched

    def counted(meta, u):  # type: ignore[no-untyped-def]
        orders = check(meta, u)
        free.append(orders)
        return orders
    fast._free_as_untouched = counted  # type: ignore[method-assign]
    assert run(fast) == run(slow)
    assert any(o == () for o in free)  # in their first order
    if policy == "first":  # (firstnodex gives the core jobs whole nodes)
        assert any(o for o in free)  # and in another (a socket's core taken)


def test_leaves_with_one_history_share_the_planner_of_their_next_span() -> None:
    trav = Traverser(build(2), make_policy("first"))
    w = make_writer("simple")
    for jobid in (1, 2):
        trav.run(parse_request(_spec("node", 1, 100)), "allocate", jobid, w)
    meta = trav.run(parse_request(_spec("node", 1, 50)), "allocate_orelse_reserve", 3, w)
    assert meta.at == 100
    by_rank = {r: [v for v in trav.g.by_type["core"] if v.rank == r] for r in (0, 1)}
    held = next(r for r in (0, 1) if 3 in by_rank[r][0].reservations)
    other = 1 - held
    assert len({id(v._plans) for v in by_rank[held]}) == 1  # the reserved node's cores: one planner
    assert by_rank[held][0]._plans is not by_rank[other][0]._plans
    assert all(v.avail_during(100, 50) == 0 for v in by_rank[held])
    assert all(v.avail_during(100, 50) == 1 for v in by_rank[other])
    trav.cancel(3)
    assert all(v.avail_during(100, 50) == 1 and v.avail_during(0, 100) == 0 for v in trav.g.by_type["core"])


def test_handed_up_candidates_are_rebuilt_with_the_replayed_subtrees_scores() -> None:
    """The candidates one node's visit hands up, recorded, rebuilt for another node of the
    same shape, are those of that node's own visit (scores, counts, edges)."""
    from fluxnb.runtime.sched.fluxion.scoring import Scoring
    from fluxnb.runtime.sched.fluxion.update import JobMeta

    trav = Traverser(build(4), make_policy("first"))
    req = parse_request(_spec("slotcore", 3, 100))
    trav._prime_jobspec(req.resources, {})
    meta = JobMeta(1, 0, 100)

    def visit(node):  # type: ignore[no-untyped-def]
        trav._tick()
        rc, _ = trav._dom_dfv(meta, node, req.resources, True, False, Scoring(), False)
        assert rc == 0 and trav._merged is not None
        return trav._merged

    def flat(sc):  # type: ignore[no-untyped-def]
        return [(s, t, ev.qual_count, ev.total_count,
                 [(g.score, g.count, g.needs, [(ee.edge, ee.count, ee.needs) for ee in g.edges])
                  for g in ev.groups]) for s, tm in sc.ssys.items() for t, ev in tm.items()]

    a, b = trav.g.by_path["/cluster0/node1"], trav.g.by_path["/cluster0/node3"]
    assert trav._shape_of(a) == trav._shape_of(b) is not None
    rec = trav._record_merged(a, visit(a))
    real = flat(visit(b))
    assert real and flat(trav._replay_merged(b, rec)) == real
    assert real != flat(visit(a))  # (the two nodes' candidates differ)


@pytest.mark.parametrize("policy", ["first", "high"])
@pytest.mark.parametrize("fmt", ["simple", "rv1"])
def test_a_graph_wide_match_leaves_few_objects_for_the_cyclic_collector(policy: str, fmt: str) -> None:
    """A job over every node tags every vertex and emits every vertex: what it leaves for
    the cyclic collector (resource-query collects the youngest generation inside a match's
    ELAPSE) must not grow with the leaves (as a set of tags and an entry tuple each did)."""
    import gc

    with ResourceGraph.building():
        g = ResourceGraph()
        root = g.add_vertex("cluster", "cluster", 0)
        for i in range(10):
            node = g.add_vertex("node", "node", i, parent=root, rank=i)
            for k in range(2):
                sock = g.add_vertex("socket", "socket", k, parent=node, rank=i)
                g.add_children(sock, "core", "core", range(k * 64, k * 64 + 64), rank=i)
    trav = Traverser(g, make_policy(policy))
    w = make_writer(fmt)
    whole = {"version": 1, "attributes": {"system": {"duration": 100}}, "tasks": [], "resources": [
        {"type": "node", "count": {"min": 1, "max": 10, "operator": "+", "operand": 1}, "exclusive": True,
         "with": [{"type": "slot", "count": 1, "label": "task", "with": [
             {"type": "socket", "count": 2, "with": [{"type": "core", "count": 64}]}]}]}]}
    req = parse_request(whole)
    nverts = len(trav.g.vertices)
    was = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        before = len(gc.get_objects(generation=0))
        trav.run(req, "allocate", 1, w)
        left = len(gc.get_objects(generation=0)) - before
        assert all(v.tags and 1 in v.tags for v in trav.g.vertices)  # every vertex holds the job
        assert left < nverts // 2, (left, nverts)
    finally:
        if was:
            gc.enable()
    out = w.emit()
    assert out.count("core") >= 1280 and "node9" in out


@pytest.mark.parametrize("policy", ["first", "high", "locality"])
def test_what_a_first_match_needs_of_a_big_vertex_is_there_with_the_traverser(policy: str) -> None:
    """The neighbour types of a cluster's thousands of nodes and the count of nodes up are
    found with the traverser, not by the first match that asks (a slot at the root asks
    for the types of all the root's children); both stay right after a status change."""
    trav = Traverser(build(70), make_policy(policy))
    root = trav.root
    assert root.kid_types == frozenset({"node"})
    assert trav.g._nodes_up == 70
    trav.mark("/cluster0/node3", "down")
    assert trav.g.nodes_up == 69
    w = make_writer("simple")
    trav.run(parse_request(_spec("slotcore", 1, 100)), "allocate", 1, w)
    assert "core" in w.emit()
