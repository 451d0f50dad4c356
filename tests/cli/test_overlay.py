"""`flux overlay` against flux-overlay(1): the tree's layout, subtree states, lookups."""

from __future__ import annotations

import os
import re
import signal

import pytest

from fluxnb import Flux, Instance
from fluxnb.cli.overlay import _walk, subtree_status
from tests.conftest import fluxnb_cmd


@pytest.fixture(scope="module")
def seven():
    with Instance(test_size=7, fanout=2) as inst:
        yield inst


def overlay(inst, *args):
    return fluxnb_cmd("overlay", *args, env=inst.environ(0))


def test_status_draws_the_tree_as_flux_overlay_does(seven):
    r = overlay(seven, "status")
    assert r.returncode == 0, r.stderr
    # fan-out 2: 0 -> 1, 2; 1 -> 3, 4; 2 -> 5, 6 (RFC 3's k-ary tree)
    assert r.stdout.splitlines() == [
        "0 node0: full",
        "├─ 1 node1: full",
        "│  ├─ 3 node3: full",
        "│  └─ 4 node4: full",
        "└─ 2 node2: full",
        "   ├─ 5 node5: full",
        "   └─ 6 node6: full",
    ]


def test_status_options(seven):
    lines = overlay(seven, "status", "-vv").stdout.splitlines()
    assert len(lines) == 7
    for line in lines:
        assert re.search(r": full for [0-9.]+[smhd] \([0-9]+\.[0-9]{3} ms\)$", line), line
    assert overlay(seven, "status", "--summary").stdout == "0 node0: full\n"
    assert overlay(seven, "status", "-r", "2", "--no-pretty").stdout.splitlines() == \
        ["2 node2: full", "5 node5: full", "6 node6: full"]
    assert overlay(seven, "status", "--down").stdout == "0 node0: full\n"
    r = overlay(seven, "status", "-r", "9")
    assert r.returncode == 1 and "9 is not a rank" in r.stderr
    assert overlay(seven, "status", "-w", "full", "--summary").stdout == "0 node0: full\n"


def test_lookup_parentof_and_errors(seven):
    assert overlay(seven, "lookup", "2-3").stdout == "node[2-3]\n"
    assert overlay(seven, "lookup", "node[4,6]").stdout == "4,6\n"
    assert overlay(seven, "parentof", "5").stdout == "2\n"
    assert overlay(seven, "parentof", "4").stdout == "1\n"
    r = overlay(seven, "parentof", "0")
    assert r.returncode == 1 and "no parent" in r.stderr
    r = overlay(seven, "lookup", "nodeX")
    assert r.returncode == 1 and "nodeX: no such host" in r.stderr
    assert overlay(seven, "errors").stdout == ""


def test_subtree_status_rules():
    """flux-overlay(1), SUBTREE STATUS."""
    assert subtree_status(True, []) == "full"
    assert subtree_status(True, ["full", "full"]) == "full"
    assert subtree_status(True, ["full", "offline"]) == "partial"
    assert subtree_status(True, ["partial"]) == "partial"
    assert subtree_status(True, ["partial", "degraded"]) == "degraded"
    assert subtree_status(True, ["lost", "full"]) == "degraded"
    assert subtree_status(False, ["full"]) == "offline"


class _OneOffline:
    """A handle whose rank 1 has not heard from its child 3 (it never joined)."""

    def rpc(self, topic, payload, nodeid):
        views = {0: [(1, "online"), (2, "online")], 1: [(3, "offline"), (4, "online")],
                 2: [], 3: [], 4: []}
        children = [{"rank": r, "status": s, "duration": 1.0} for r, s in views[nodeid]]
        body = {"rank": nodeid, "duration": 2.0, "children": children}
        return type("R", (), {"get": lambda self, timeout=None: body})()


def test_a_child_never_heard_from_is_offline_and_its_parent_partial():
    hosts = [f"n{r}" for r in range(5)]
    tree = _walk(_OneOffline(), 0, hosts, lambda r: [c for c in (2 * r + 1, 2 * r + 2) if c < 5], 0.5)
    assert tree.status == "partial"
    one, two = tree.children
    assert (one.status, two.status) == ("partial", "full")
    assert [(c.rank, c.status) for c in one.children] == [(3, "offline"), (4, "full")]


def test_a_broker_that_stops_answering_is_lost_and_its_subtree_behind_it():
    with Instance(test_size=7, fanout=2, processes=True, attrs={"tbon.torpid_max": "60s"}) as inst:
        with Flux(inst.uri) as h:
            pid = int(h.rpc("attr.get", {"name": "broker.pid"}, nodeid=2).get()["value"])
        os.kill(pid, signal.SIGSTOP)
        try:
            r = overlay(inst, "status", "-t", "0.3s")
            assert r.stdout.splitlines() == [
                "0 node0: degraded",
                "├─ 1 node1: full",
                "│  ├─ 3 node3: full",
                "│  └─ 4 node4: full",
                "└─ 2 node2: lost",
                "   ├─ 5 node5: lost",
                "   └─ 6 node6: lost",
            ]
            assert overlay(inst, "errors", "-t", "0.3s").stdout == \
                "node2: lost connection\nnode[5-6]: lost parent\n"
            assert overlay(inst, "status", "--down", "--no-ghost", "-t", "0.3s").stdout == \
                "0 node0: degraded\n└─ 2 node2: lost\n"
        finally:
            os.kill(pid, signal.SIGCONT)
        # back: the tree heals once the broker answers again
        assert overlay(inst, "status", "-w", "full", "--summary").stdout == "0 node0: full\n"
