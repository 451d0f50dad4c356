"""Grow and shrink a running instance: the scheduler re-plans, jobs on removed nodes fail.

``flux resource shrink TARGETS`` removes nodes (acquirers get RFC 28's ``shrink``);
a job running there gets a ``node-failure`` exception and its other nodes come back;
a pending job the smaller instance could never run is denied; ``grow`` puts the nodes
back and a job needing all of them runs again. Both schedulers (Fluxion, simple).
"""

from __future__ import annotations

import time

import pytest

from fluxnb import Flux, Instance, kvs
from fluxnb.job import JobspecV1, submit
from fluxnb.runtime.job.jobid import JobID, kvs_dir
from fluxnb.runtime.util.rv1 import ResourceSet
from tests.conftest import QM, RES, fluxnb_cmd


def _use(h, sched: str) -> None:
    if sched == "simple":
        h.rpc("module.remove", {"name": QM}, nodeid=0).get()
        h.rpc("module.remove", {"name": RES}, nodeid=0).get()
        h.rpc("module.load", {"name": "sched-simple"}, nodeid=0).get()


def _job(h, nnodes: int, cmd=("sleep", "60")) -> int:
    return submit(h, JobspecV1.from_command(list(cmd), num_nodes=nnodes, num_tasks=nnodes,
                                            exclusive=True))


def _wait_event(env, jobid: int, name: str, timeout: float = 30) -> str:
    r = fluxnb_cmd("job", "wait-event", "-v", "-t", str(timeout), JobID(jobid).f58, name, env=env,
                   timeout=timeout + 30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _ranks(h, jobid: int) -> set[int]:
    return set(ResourceSet(kvs.get(h, kvs_dir(jobid) + ".R")).ranks)


def _state(env, jobid: int) -> str:
    r = fluxnb_cmd("jobs", "-n", "-o", "{state}", JobID(jobid).f58, env=env)
    return r.stdout.strip()


def _nodes(env) -> str:
    r = fluxnb_cmd("resource", "list", "-n", "-s", "all", "-o", "{nnodes} {nodelist}", env=env)
    return r.stdout.strip()


@pytest.mark.parametrize("sched", ["fluxion", "simple"])
def test_shrink_and_grow_under_pending_and_running_jobs(sched):
    with Instance(test_size=4, cores_per_node=2) as inst, Flux(inst.uri) as h:
        env = inst.environ(0)
        _use(h, sched)
        a = _job(h, 2)
        _wait_event(env, a, "start")
        held = _ranks(h, a)
        victim = max(held)
        assert victim != 0
        p4 = _job(h, 4)          # pending: a holds two nodes; never fits once one is gone
        p3 = _job(h, 3)          # pending, and still satisfiable with three nodes
        time.sleep(0.3)
        assert _state(env, p4) == "SCHED" and _state(env, p3) == "SCHED"

        r = fluxnb_cmd("resource", "shrink", str(victim), env=env)
        assert r.returncode == 0, r.stderr
        out = _wait_event(env, a, "exception")
        assert "node-failure" in out and f"rank {victim}) was removed from the instance" in out
        _wait_event(env, a, "clean")
        out = _wait_event(env, p4, "exception")
        assert "alloc" in out and "unsatisfiable" in out
        _wait_event(env, p3, "start")                       # a's other node came back
        assert victim not in _ranks(h, p3) and len(_ranks(h, p3)) == 3
        assert _nodes(env).split()[0] == "3"
        status = fluxnb_cmd("resource", "status", "-s", "avail", "-no", "{state} {nnodes}",
                            env=env).stdout.split()
        assert status == ["avail", "3"]                      # the removed node is gone, not down

        r = fluxnb_cmd("resource", "grow", str(victim), env=env)
        assert r.returncode == 0, r.stderr
        assert _nodes(env).split()[0] == "4"
        h.rpc("job-manager.kill", {"id": p3, "signum": 9}, nodeid=0).get()
        p4b = _job(h, 4, ("true",))
        _wait_event(env, p4b, "clean")
        assert _ranks(h, p4b) == {0, 1, 2, 3}


@pytest.mark.parametrize("sched", ["fluxion", "simple"])
def test_bad_resize_requests_fail_alone(sched):
    with Instance(test_size=3, cores_per_node=2) as inst, Flux(inst.uri) as h:
        env = inst.environ(0)
        _use(h, sched)
        a = _job(h, 1)
        _wait_event(env, a, "start")
        before = (_nodes(env), h.rpc("sched.resource-status", {}, nodeid=0).get())
        for args, msg in [
            (["shrink", "0"], "rank 0 hosts the instance and cannot be removed"),
            (["shrink", "7"], "rank 7 is not in the instance's resources"),
            (["shrink", "node9"], "invalid hosts: node9"),
            (["shrink", "1-"], "targets"),
            (["grow", "1"], "rank 1 (node1) is already in the instance"),
            (["grow", "5"], "rank 5 was never part of this instance"),
        ]:
            r = fluxnb_cmd("resource", *args, env=env)
            assert r.returncode == 1 and msg in r.stderr, (args, r.stderr)
            assert "Traceback" not in r.stderr
        assert (_nodes(env), h.rpc("sched.resource-status", {}, nodeid=0).get()) == before
        fluxnb_cmd("resource", "shrink", "2", env=env)
        r = fluxnb_cmd("resource", "shrink", "2", env=env)
        assert r.returncode == 1 and "rank 2 is not in the instance's resources (it was removed)" in r.stderr
        assert _state(env, a) == "RUN" or 2 in _ranks(h, a)


def test_resource_browser_follows_shrink_and_grow():
    pytest.importorskip("ipywidgets")
    from fluxnb.widgets import ResourceBrowser
    with Instance(test_size=4, cores_per_node=2) as inst, Flux(inst.uri) as h:
        env = inst.environ(0)
        rb = ResourceBrowser(Flux(inst.uri), interval=0.05)
        try:
            def hosts():
                return [host for _rank, host, _node in rb.status.nodes]

            assert hosts() == ["node0", "node1", "node2", "node3"]
            assert rb.counts["core"]["free"] == 8
            fluxnb_cmd("resource", "shrink", "node[2-3]", env=env)
            _until(lambda: hosts() == ["node0", "node1"])
            assert rb.counts["core"] == {"free": 4, "allocated": 0, "down": 0}
            fluxnb_cmd("resource", "grow", "3", env=env)
            _until(lambda: hosts() == ["node0", "node1", "node3"])
        finally:
            rb.close()


def _until(pred, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "the browser did not follow in time"
        time.sleep(0.05)
