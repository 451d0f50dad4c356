"""Unit tests of the Fluxion core: planner, policies, reservations, bad input.

Expectations come from the policy definitions, not from captured output.
"""

from __future__ import annotations

import io
import sys
import textwrap
from pathlib import Path

import pytest

from fluxnb.cli import resource_query
from fluxnb.runtime.sched.fluxion import (
    GrugError, JGFError, MatchError, MultiPlanner, Planner, PlannerError, PolicyError,
    RequestError, ResourceGraph, Traverser, make_policy, make_writer, parse_jgf, parse_request,
)
from fluxnb.runtime.sched.fluxion.grug import parse_grug
from fluxnb.runtime.sched.fluxion.jgf import dumps_jgf
from fluxnb.runtime.sched.fluxion.scoring import cxx_sort


def build(nodes: int = 4, sockets: int = 2, cores: int = 4) -> ResourceGraph:
    g = ResourceGraph()
    root = g.add_vertex("cluster", "c", 0)
    cid = 0
    for n in range(nodes):
        nv = g.add_vertex("node", "node", n, parent=root, rank=n)
        for s in range(sockets):
            sv = g.add_vertex("socket", "socket", s, parent=nv, rank=n)
            for c in range(cores):
                g.add_vertex("core", "core", s * cores + c, parent=sv, rank=n)
                cid += 1
    g.finalize()
    return g


def jobspec(resources: list, duration: int = 100) -> dict:
    return {"version": 1, "resources": resources, "attributes": {"system": {"duration": duration}},
            "tasks": [{"command": ["x"], "slot": "task", "count": {"per_slot": 1}}]}


def node_job(n: int = 1, duration: int = 100, exclusive: bool = False) -> dict:
    return jobspec([{"type": "node", "count": n, "exclusive": exclusive, "with": [
        {"type": "slot", "count": 1, "label": "task", "with": [
            {"type": "socket", "count": 1, "with": [{"type": "core", "count": 1}]}]}]}],
        duration)


def nodes_of(writer_text: str) -> list[str]:
    return [line.strip("- ").split("[")[0] for line in writer_text.splitlines() if "node" in line]


# -- planner ---------------------------------------------------------------------
def test_planner_spans_and_earliest_time() -> None:
    p = Planner(10)
    a = p.add_span(0, 100, 6)
    b = p.add_span(50, 100, 4)
    assert p.avail_during(0, 50) == 4
    assert p.avail_during(0, 51) == 0
    assert p.avail_at(120) == 6
    assert p.avail_time_first(0, 10, 5) == 100
    assert p.avail_time_first(0, 10, 11) == -1
    p.remove_span(a)
    assert p.avail_during(0, 200) == 6
    assert p.reduce_span(b, 4) is True
    assert p.avail_during(0, 1000) == 10
    with pytest.raises(PlannerError):
        p.add_span(0, 10, 11)


def test_multi_planner_time_iteration() -> None:
    mp = MultiPlanner([4, 2], ["core", "node"])
    mp.add_span(0, 10, [4, 1])
    mp.add_span(10, 10, [2, 2])
    assert mp.avail_time_first(0, 5, [3, 1]) == 20
    assert mp.avail_time_next() == -1
    assert mp.avail_time_first(0, 5, [1, 1]) == 20
    assert mp.avail_time_first(0, 5, [5, 0]) == -1


def test_multi_planner_candidates_are_scheduled_points_only() -> None:
    # as flux-sched's avail_at: a time inside an unchanged stretch is not a
    # candidate, even when the amounts fit there (the stretch's start is the one)
    mp = MultiPlanner([4, 2], ["core", "node"])
    mp.add_span(0, 100, [1, 1])
    assert mp.avail_time_first(0, 5, [2, 1]) == 0
    assert mp.avail_time_first(1, 5, [2, 1]) == 100
    assert mp.avail_time_next() == -1


def test_cxx_sort_matches_descending_order_and_is_deterministic() -> None:
    class Item:
        def __init__(self, s: int, i: int) -> None:
            self.score, self.i = s, i
    items = [Item(i % 3, i) for i in range(40)]
    cxx_sort(items, lambda x: x.score, True)
    assert [x.score for x in items] == sorted((i % 3 for i in range(40)), reverse=True)
    again = [Item(i % 3, i) for i in range(40)]
    cxx_sort(again, lambda x: x.score, True)
    assert [x.i for x in items] == [x.i for x in again]


# -- policies ---------------------------------------------------------------------
@pytest.mark.parametrize("policy,first_node", [("high", "node3"), ("low", "node0"),
                                               ("hinode", "node3"), ("lonode", "node0"),
                                               ("first", "node3")])
def test_policy_picks_node_by_id(policy: str, first_node: str) -> None:
    g = build()
    t = Traverser(g, make_policy(policy))
    w = make_writer("simple")
    t.run(parse_request(node_job()), "allocate", 1, w)
    assert nodes_of(w.emit()) == [first_node]


def test_node_exclusive_policy_takes_whole_node() -> None:
    g = build()
    t = Traverser(g, make_policy("lonodex"))
    w = make_writer("simple")
    t.run(parse_request(node_job()), "allocate", 1, w)
    text = w.emit()
    assert text.count("core") == 8 and "node0[1:x]" in text
    # a second job cannot share node0
    t.run(parse_request(node_job()), "allocate", 2, w)
    assert nodes_of(w.emit()) == ["node1"]


def test_unknown_policy_is_rejected() -> None:
    with pytest.raises(PolicyError, match="unknown match policy 'fastest'"):
        make_policy("fastest")


def test_variation_policy_prefers_fewest_and_best_perf_classes() -> None:
    g = build(nodes=6)
    classes = {0: "3", 1: "1", 2: "2", 3: "1", 4: "2", 5: "2"}
    for n, c in classes.items():
        g.by_path[f"/c0/node{n}"].properties["perf_class"] = c
    t = Traverser(g, make_policy("variation"))
    w = make_writer("simple")
    # two nodes: both class-1 nodes
    t.run(parse_request(node_job(2, exclusive=True)), "allocate", 1, w)
    assert sorted(nodes_of(w.emit())) == ["node1", "node3"]
    # three nodes: the three class-2 nodes, not mixing in class 3
    t.run(parse_request(node_job(3, exclusive=True)), "allocate", 2, w)
    assert sorted(nodes_of(w.emit())) == ["node2", "node4", "node5"]


# -- reservations (backfill start times) -------------------------------------------------
def test_reservation_starts_when_resources_free() -> None:
    g = build(nodes=2)
    t = Traverser(g, make_policy("low"))
    w = make_writer("simple")
    whole = jobspec([{"type": "node", "count": 2, "exclusive": True, "with": [
        {"type": "slot", "count": 1, "label": "task", "with": [
            {"type": "socket", "count": 2, "with": [{"type": "core", "count": 4}]}]}]}],
        duration=300)
    m1 = t.run(parse_request(whole), "allocate", 1, w)
    assert m1.at == 0
    w.emit()
    # a 1-node job must wait for job 1 to end at t=300
    m2 = t.run(parse_request(node_job(1, 50)), "allocate_orelse_reserve", 2, w)
    assert m2.at == 300 and m2.alloc_type == "reserve"
    w.emit()
    with pytest.raises(MatchError) as ei:
        t.run(parse_request(node_job(1, 50)), "allocate", 3, w)
    assert ei.value.errno != 0 and not ei.value.unsatisfiable
    # cancelling job 1 frees the graph now
    t.cancel(1)
    assert t.run(parse_request(node_job(1, 50)), "allocate", 4, w).at == 0


def test_unsatisfiable_request_fails_immediately() -> None:
    g = build(nodes=2)
    t = Traverser(g, make_policy("first"))
    w = make_writer("simple")
    with pytest.raises(MatchError) as ei:
        t.run(parse_request(node_job(3)), "allocate_with_satisfiability", 1, w)
    assert ei.value.unsatisfiable
    too_many_cores = jobspec([{"type": "node", "count": 1, "with": [
        {"type": "slot", "count": 1, "label": "task", "with": [
            {"type": "socket", "count": 1, "with": [{"type": "core", "count": 99}]}]}]}])
    with pytest.raises(MatchError) as ei:
        t.run(parse_request(too_many_cores), "allocate_orelse_reserve", 2, w)
    assert ei.value.unsatisfiable


def test_down_node_is_skipped_and_up_again() -> None:
    g = build(nodes=2)
    t = Traverser(g, make_policy("high"))
    w = make_writer("simple")
    t.mark("/c0/node1", "down")
    t.run(parse_request(node_job()), "allocate", 1, w)
    assert nodes_of(w.emit()) == ["node0"]
    t.mark("/c0/node1", "up")
    t.run(parse_request(node_job()), "allocate", 2, w)
    assert nodes_of(w.emit()) == ["node1"]


# -- bad input -----------------------------------------------------------------------
def test_unknown_resource_type_never_matches() -> None:
    g = build(nodes=1)
    t = Traverser(g, make_policy("first"))
    req = parse_request(jobspec([{"type": "node", "count": 1, "with": [
        {"type": "slot", "count": 1, "label": "task", "with": [{"type": "quantum", "count": 1}]}]}]))
    with pytest.raises(MatchError):
        t.run(req, "allocate_with_satisfiability", 1, make_writer("simple"))


def test_malformed_jobspec_names_the_path() -> None:
    with pytest.raises(RequestError, match=r"resources\[0\].with\[0\].count"):
        parse_request(jobspec([{"type": "node", "count": 1, "with": [{"type": "core"}]}]))
    with pytest.raises(RequestError, match="invalid YAML"):
        parse_request("resources: [\n  - type: node\n`count: 1")


def test_malformed_grug_names_file_and_element() -> None:
    with pytest.raises(GrugError, match="x.graphml: not well-formed"):
        parse_grug("<graphml><graph>", where="x.graphml")
    bad = textwrap.dedent("""\
        <graphml xmlns="http://graphml.graphdrawing.org/xmlns">
          <key id="type" for="node" attr.name="type" attr.type="string"/>
          <key id="root" for="node" attr.name="root" attr.type="int"/>
          <graph id="g" edgedefault="directed">
            <node id="a"><data key="type">cluster</data><data key="root">1</data></node>
            <edge id="e" source="a" target="missing"/>
          </graph>
        </graphml>""")
    with pytest.raises(GrugError, match="edge 'e' refers to unknown node 'missing'"):
        parse_grug(bad, where="y.graphml")


def test_jgf_round_trip_and_errors() -> None:
    g = build(nodes=2)
    g2 = parse_jgf(dumps_jgf(g))
    assert len(g2) == len(g) and "/c0/node1/socket0/core3" in g2.by_path
    with pytest.raises(JGFError, match=r"graph.nodes\[0\]: missing 'metadata'"):
        parse_jgf('{"graph": {"nodes": [{"id": "0"}], "edges": []}}')
    with pytest.raises(JGFError, match="invalid JSON"):
        parse_jgf("{")


def test_cli_reports_unsatisfiable_and_bad_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    grug = Path(__file__).resolve().parents[3].parent / "shared/conformance/fluxion/data/resource/grugs/tiny.graphml"
    if not grug.exists():
        pytest.skip("shared conformance data not present")
    spec = tmp_path / "big.yaml"
    spec.write_text("version: 1\nresources:\n  - type: node\n    count: 1\n    with:\n"
                    "      - type: slot\n        count: 1\n        label: t\n        with:\n"
                    "          - type: socket\n            count: 1\n            with:\n"
                    "              - type: core\n                count: 40\n"
                    "attributes:\n  system:\n    duration: 10\ntasks: []\n")
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"match allocate_orelse_reserve {spec}\nquit\n"))
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert resource_query.main(["-L", str(grug), "-d", "-t", str(out)]) == 0
    assert "INFO: Unsatisfiable request" in out.read_text()
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert resource_query.main(["-L", str(grug), "-P", "nope"]) == 1
    assert "unknown match policy 'nope'" in err.getvalue()
