"""Partial release on the planner: what is free, where and when, after releasing part of a job.

Expectations follow from the definitions (flux-sched's ``remove(R_to_cancel)``): the
released ranks' vertices are free at once; the job keeps the others until its end;
the subtree counts above (pruning filters, of each kind) shrink by exactly what was
released; the job is gone once nothing is left. A reservation cannot be released in
part, and a bad request changes nothing.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import yaml

from fluxnb.cli import resource_query

from fluxnb.runtime.sched.fluxion import MatchError, ResourceGraph, Traverser, make_policy, make_writer
from fluxnb.runtime.sched.fluxion import parse_request
from fluxnb.runtime.sched.fluxion.find import FindError, find
from fluxnb.runtime.sched.fluxion.subset import SubsetError, parse_subset, partial_release

NODES, SOCKETS, CORES = 4, 2, 4
DURATION = 100


def build() -> ResourceGraph:
    g = ResourceGraph()
    root = g.add_vertex("cluster", "c", 0)
    for n in range(NODES):
        nv = g.add_vertex("node", "node", n, parent=root, rank=n)
        for s in range(SOCKETS):
            sv = g.add_vertex("socket", "socket", s, parent=nv, rank=n)
            for c in range(CORES):
                g.add_vertex("core", "core", s * CORES + c, parent=sv, rank=n)
    g.finalize()
    return g


def nodes_job(n: int) -> dict:
    return {"version": 1, "attributes": {"system": {"duration": DURATION}},
            "tasks": [{"command": ["x"], "slot": "task", "count": {"per_slot": 1}}],
            "resources": [{"type": "node", "count": n, "exclusive": True, "with": [
                {"type": "slot", "count": 1, "label": "task", "with": [
                    {"type": "socket", "count": SOCKETS, "with": [
                        {"type": "core", "count": CORES}]}]}]}]}


def R_of(ranks) -> dict:
    return {"version": 1, "execution": {"R_lite": [
        {"rank": ",".join(map(str, ranks)), "children": {"core": f"0-{SOCKETS * CORES - 1}"}}]}}


def free_cores(trav: Traverser, rank: int, t: int) -> int:
    return sum(v.plans.avail_at(t) for v in trav.g.by_rank[rank] if v.type == "core")


def node_free(trav: Traverser, rank: int, t: int) -> bool:
    v = next(v for v in trav.g.by_rank[rank] if v.type == "node")
    return v.plans.avail_at(t) == 1


def snapshot(trav: Traverser) -> list:
    """Every planner's spans, every per-job map: the whole scheduling state."""
    out = []
    for v in trav.g.vertices:
        sp = {k: [(p.resource_type, sorted(p._spans.values())) for p in m.planners]
              for k, m in v.subplans.items()}
        out.append((v.uniq_id, sorted(v.plans._spans.values()), sorted(v.tags), dict(v.allocations),
                    dict(v.reservations), dict(v.job2span), dict(v.x_spans), sp))
    return out


@pytest.fixture(params=["ALL:core", "ALL:core,ALL:node", "ALL:socket,ALL:node",
                        "ALL:core,ALL:socket,ALL:node", "cluster:node,node:core"])
def trav(request) -> Traverser:
    return Traverser(build(), make_policy("low"), request.param)


def alloc(trav: Traverser, jobid: int, n: int, at: int = 0):
    return trav.run(parse_request(nodes_job(n)), "allocate_orelse_reserve", jobid,
                    make_writer("simple"), at=at)


def cluster_avail(trav: Traverser, rtype: str, t: int) -> int | None:
    sp = trav.root.subplans.get(trav.dom)
    if sp is None or sp.index(rtype) is None:
        return None
    return sp.avail_at(t, rtype)


def test_releasing_one_rank_frees_it_now_and_keeps_the_rest(trav):
    meta = alloc(trav, 1, 3)
    assert meta.at == 0
    held = sorted(r for r in range(NODES) if 1 in trav.g.by_rank[r][0].tags)
    assert held == [0, 1, 2]                 # policy low: the lowest nodes
    ncore_before = cluster_avail(trav, "core", 0)
    full = partial_release(trav, 1, R_of([1]), "rv1exec")
    assert full is False
    assert free_cores(trav, 1, 0) == SOCKETS * CORES and node_free(trav, 1, 0)
    for r in (0, 2):                         # still the job's, until it ends
        assert free_cores(trav, r, 0) == 0 and not node_free(trav, r, 0)
        assert free_cores(trav, r, DURATION) == SOCKETS * CORES
    if ncore_before is not None:             # the filter above shrank by 8 cores exactly
        assert cluster_avail(trav, "core", 0) == ncore_before + SOCKETS * CORES
    if cluster_avail(trav, "node", 0) is not None:
        assert cluster_avail(trav, "node", 0) == 2   # nodes 1 and 3
    assert 1 in trav.root.tags
    # the freed node is matched by the next job, now
    meta2 = alloc(trav, 2, 2)
    assert meta2.at == 0
    assert sorted(r for r in range(NODES) if 2 in trav.g.by_rank[r][0].tags) == [1, 3]


def test_releasing_every_rank_in_parts_ends_the_job(trav):
    alloc(trav, 1, 2)
    assert partial_release(trav, 1, R_of([0]), "rv1exec") is False
    assert partial_release(trav, 1, R_of([1]), "rv1exec") is True
    assert all(1 not in v.tags and 1 not in v.allocations and 1 not in v.job2span
               for v in trav.g.vertices)
    for r in range(NODES):
        assert free_cores(trav, r, 0) == SOCKETS * CORES
    if cluster_avail(trav, "core", 0) is not None:
        assert cluster_avail(trav, "core", 0) == NODES * SOCKETS * CORES


def test_errors_leave_the_planner_unchanged(trav):
    alloc(trav, 1, 2)                       # nodes 0-1
    before = snapshot(trav)
    for subset, reader, err in [
        (R_of([7]), "rv1exec", "7 not found in by_rank map"),
        (R_of([3]), "rv1exec", "rank_to_root is empty"),        # a rank the job does not hold
        ({"version": 1, "execution": {"R_lite": [{"rank": "-1", "children": {}}]}}, "rv1exec",
         "invalid idset"),
        ({"version": 2}, "rv1exec", "version must be 1"),
        ("{not json", "rv1exec", "not JSON"),
        ({"graph": {"nodes": [{"id": "9", "metadata": {"type": "node", "name": "node0",
                                                      "basename": "node", "id": 0, "rank": 5,
                                                      "paths": {"containment": "/c0/node0"}}}]}},
         "jgf", "nonexistent path"),
        ({"graph": {"nodes": [{"id": "9", "metadata": {"type": "core", "name": "core0",
                                                      "basename": "core", "id": 0, "rank": 3,
                                                      "paths": {"containment": "/c0/node3/socket0/core0"}}}]}},
         "jgf", "can't find allocation span"),
        ({"graph": {}}, "jgf", "graph.nodes must be an array"),
    ]:
        with pytest.raises((MatchError, SubsetError), match=err):
            partial_release(trav, 1, subset, reader)
        assert snapshot(trav) == before, (subset, err)
    with pytest.raises(MatchError, match="holds no resources"):
        partial_release(trav, 99, R_of([0]), "rv1exec")
    assert snapshot(trav) == before


def test_jgf_subset_releases_exactly_those_vertices():
    trav = Traverser(build(), make_policy("low"), "ALL:core,ALL:node")
    alloc(trav, 1, 2)
    g = trav.g
    node1 = [v for v in g.by_rank[1] if 1 in v.allocations]
    doc = {"graph": {"nodes": [
        {"id": str(v.uniq_id), "metadata": {"type": v.type, "basename": v.basename, "name": v.name,
                                             "id": v.id, "rank": v.rank, "size": v.size,
                                             "paths": {"containment": v.path()}}} for v in node1]}}
    assert parse_subset(g, doc, "jgf")["vertices"] == node1
    assert partial_release(trav, 1, doc, "jgf") is False
    assert free_cores(trav, 1, 0) == SOCKETS * CORES and free_cores(trav, 0, 0) == 0


def test_a_reservation_is_refused_by_resource_query(tmp_path, monkeypatch):
    js = tmp_path / "job.yaml"
    spec = nodes_job(NODES)  # the rv1exec graph has no sockets: cores sit under the node
    spec["resources"][0]["with"][0]["with"] = [{"type": "core", "count": SOCKETS * CORES}]
    js.write_text(yaml.safe_dump(spec))
    r = tmp_path / "R.json"
    r.write_text(json.dumps(R_of([0])))
    grug = tmp_path / "R0.json"
    grug.write_text(json.dumps({"version": 1, "execution": {"R_lite": [
        {"rank": f"0-{NODES - 1}", "children": {"core": "0-7"}}], "nodelist": [f"node[0-{NODES - 1}]"],
        "starttime": 0, "expiration": 0}}))
    cmds = f"match allocate_orelse_reserve {js}\nmatch allocate_orelse_reserve {js}\n" \
           f"partial-cancel 2 rv1exec {r}\nfind sched-future=reserved\nquit\n"
    err = io.StringIO()
    monkeypatch.setattr(sys, "stdin", io.StringIO(cmds))
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.setattr(sys, "stderr", err)
    out = tmp_path / "out"
    assert resource_query.main(["-f", "rv1exec", "-L", str(grug), "-P", "low", "-d", "-t", str(out)]) == 0
    assert "ERROR: reservations not currently supported by partial cancel" in err.getvalue()
    text = Path(out).read_text()
    assert "INFO: JOBID=2\nINFO: RESOURCES=RESERVED" in text
    # the reservation is intact: all four nodes still reserved for job 2
    assert text.count("node") >= NODES and 'EXPRESSION="sched-future=reserved"' in text


@pytest.mark.parametrize("expr,want", [
    # flux-sched evaluates left to right, no precedence: (free or up) and allocated
    # (with 'and' binding tighter it would be every node)
    ("sched-now=free or status=up and sched-now=allocated", {"node0", "node1"}),
    ("status=up sched-now=allocated", {"node0", "node1"}),          # side by side: and
    ("STATUS=up", None),                                             # keys are case-sensitive
    ("status=UP and sched-now=FREE", {"node2", "node3"}),            # values are not
    ("(sched-now=allocated or sched-now=free) and names=node[1-2]", {"node1", "node2"}),
    ("jobid-tag=1 and names=node0,node3", {"node0"}),
])
def test_find_as_flux_sched_evaluates(expr, want):
    trav = Traverser(build(), make_policy("low"), "ALL:core,ALL:node")
    alloc(trav, 1, 2)
    w = make_writer("simple")
    if want is None:
        with pytest.raises(FindError, match="unknown predicate 'STATUS'"):
            find(trav, expr, w)
        return
    find(trav, expr, w)
    got = {line.strip("- ").split("[")[0] for line in w.emit().splitlines() if "node" in line}
    assert got == want


def test_rv1exec_reads_the_scheduling_key_unless_forced(tmp_path):
    """An RV1 R written with its matched graph (-F rv1) loads from that graph (sockets
    included); rv1exec_force builds cluster > node > core from R_lite alone."""
    from fluxnb.runtime.sched.fluxion.subset import read_rv1exec
    trav = Traverser(build(), make_policy("low"), "ALL:core,ALL:node")
    w = make_writer("rv1")
    trav.run(parse_request(nodes_job(2)), "allocate", 1, w)
    R = json.loads(w.emit().strip().splitlines()[0])
    assert "scheduling" in R and R["execution"]["R_lite"]
    g = read_rv1exec(text=R)
    assert sorted(g.by_type) == ["cluster", "core", "node", "socket"]
    assert len(g.by_type["node"]) == 2 and len(g.by_type["core"]) == 2 * SOCKETS * CORES
    g2 = read_rv1exec(text=R, force=True)
    assert sorted(g2.by_type) == ["cluster", "core", "node"]
    assert len(g2.by_type["core"]) == 2 * SOCKETS * CORES
    with pytest.raises(SubsetError, match="R: not JSON"):
        read_rv1exec(text="{")
    with pytest.raises(SubsetError, match="No such file"):
        read_rv1exec(tmp_path / "missing.json")
