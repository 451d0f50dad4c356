"""flux tree / fluxnb.hierarchy.tree lay out nested instances; flux jobs -R walks them."""

from __future__ import annotations

import time

import pytest

from fluxnb import Flux, Instance
from fluxnb.cli.tree import parse_topology, split
from fluxnb.hierarchy import tree
from tests.conftest import fluxnb_cmd


def test_topology_and_split():
    assert parse_topology("2x2") == [2, 2] and parse_topology("") == []
    assert split(10, 4) == [3, 3, 2, 2] and sum(split(7, 3)) == 7


@pytest.mark.parametrize("bad", ["2xa", "0x2", "x"])
def test_bad_topology_is_refused(bad):
    with pytest.raises(Exception, match="-T"):
        parse_topology(bad)


def test_two_levels_of_two_share_the_jobs():
    with Instance(test_size=4, cores_per_node=2) as inst, Flux(inst.uri) as h:
        report = tree(h, "2x2", njobs=40, test_exec="0.01s")
        by_path = {r["path"]: r for r in report}
        assert set(by_path) == {"/0/0", "/0/1", "/0", "/1/0", "/1/1", "/1", "/"}
        assert [by_path[p]["njobs"] for p in ("/0/0", "/0/1", "/1/0", "/1/1")] == [10, 10, 10, 10]
        assert by_path["/0"]["size"] == 2 and by_path["/0/0"]["size"] == 1
        # the parent ran only the 2 instances; the leaves ran the jobs
        jobs = h.rpc("job-list.list", {"states": 64, "attrs": ["name", "result"]}, nodeid=0).get()["jobs"]
        assert sorted(j["name"] for j in jobs) == ["tree/0", "tree/1"]
        assert all(j["result"] == 1 for j in jobs)


def test_jobs_recursive_lists_child_jobs_under_their_path(tmp_path):
    with Instance(test_size=2, cores_per_node=2) as inst:
        env = inst.environ(0)
        jobid = fluxnb_cmd("alloc", "--bg", "-N1", env=env).stdout.strip()
        fluxnb_cmd("proxy", jobid, "flux", "submit", "--job-name=inner", "sleep", "30", env=env)
        deadline = time.time() + 20
        out = ""
        while time.time() < deadline:
            out = fluxnb_cmd("jobs", "-R", env=env).stdout
            if " inner " in out:
                break
            time.sleep(0.1)
        lines = out.splitlines()
        assert f"{jobid}:" in lines
        after = lines[lines.index(f"{jobid}:") + 1:]
        assert after[0].split()[:1] == ["JOBID"] and "inner" in after[1]
        fluxnb_cmd("cancel", jobid, env=env)
