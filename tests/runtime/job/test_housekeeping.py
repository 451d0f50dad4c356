"""Housekeeping and partial release (flux-housekeeping(1), RFC 27 ``sched.free`` with ``final``).

A job's nodes go to housekeeping when it ends; the job is inactive at once, and with
``release-after = "0"`` each node returns to the scheduler when its own housekeeping
ends, so a slow node does not hold the others (flux-config-job-manager(5)).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from fluxnb import Flux, Instance
from fluxnb.job import JobspecV1, submit
from fluxnb.runtime.message import FluxError
from tests.conftest import fluxnb_cmd

#: housekeeping that holds rank 1 until the test creates the gate file
HOLD_RANK1 = ("import os, sys, time\n"
              "uri = os.environ['FLUX_URI']\n"
              "if uri.endswith('/local-1'):\n"
              "    while not os.path.exists(sys.argv[1]):\n"
              "        time.sleep(0.05)\n")


def _conf(gate: Path, release_after: str | None = "0") -> dict:
    hk = {"command": [sys.executable, "-c", HOLD_RANK1, str(gate)]}
    if release_after is not None:
        hk["release-after"] = release_after
    return {"job-manager": {"housekeeping": hk}}


def _ranks_of(h, jobid: int) -> list[int]:
    from fluxnb.runtime.util.rv1 import ResourceSet
    from fluxnb.runtime.job.jobid import kvs_dir
    from fluxnb import kvs
    return sorted(ResourceSet(kvs.get(h, kvs_dir(jobid) + ".R")).ranks)


def _node_job(h, nnodes: int) -> int:
    js = JobspecV1.from_command(["true"], num_nodes=nnodes, num_tasks=nnodes, exclusive=True)
    return submit(h, js)


def event_wait(h, jobid: int, name: str, timeout: float) -> None:
    """Wait for a job event, as ``flux job wait-event -t TIMEOUT`` (TimeoutError if it does not come)."""
    from fluxnb.runtime.job.jobid import JobID
    uri = h.uri if hasattr(h, "uri") else None
    env = dict(__import__("os").environ, FLUX_URI=uri) if uri else None
    r = fluxnb_cmd("job", "wait-event", "-t", str(timeout), JobID(jobid).f58, name, env=env,
                   timeout=timeout + 30)
    if r.returncode != 0:
        if "timeout" in r.stderr:
            raise TimeoutError(r.stderr)
        raise AssertionError(r.stderr)


def _wait_until(pred, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def _hk_running(h) -> dict:
    return h.rpc("job-manager.stats-get", {}, nodeid=0).get()["housekeeping"]["running"]


def _layout_check(inst) -> None:
    # the test's command tells rank 1 by its socket path: make sure that holds
    assert inst.environ(1)["FLUX_URI"].endswith("/local-1"), inst.environ(1)["FLUX_URI"]


def test_first_node_reallocated_while_second_still_cleans_up(tmp_path):
    gate = tmp_path / "gate"
    with Instance(test_size=2, cores_per_node=2, conf=_conf(gate, "0")) as inst, Flux(inst.uri) as h:
        _layout_check(inst)
        a = _node_job(h, 2)
        event_wait(h, a, "clean", timeout=30)  # inactive at once: housekeeping holds the nodes
        _wait_until(lambda: _hk_running(h).get(_f58(a), {}).get("allocated") == "1")
        b = _node_job(h, 1)
        event_wait(h, b, "alloc", timeout=30)
        assert _ranks_of(h, b) == [0]          # rank 0 came back alone and went to b
        running = _hk_running(h)[_f58(a)]
        assert running["pending"] == "1" and running["allocated"] == "1"
        # b ends at once and rank 0 runs its (quick) housekeeping: let that pass, so
        # that the listing shows a's alone
        event_wait(h, b, "clean", timeout=30)
        _wait_until(lambda: _f58(b) not in _hk_running(h))
        env = inst.environ(0)
        out = fluxnb_cmd("housekeeping", "list", "-n", "-o", "{id.f58} {nnodes} {pending.nnodes} "
                         "{ranks} {nodelist}", env=env).stdout.split()
        assert out == [_f58(a), "1", "1", "1", "node1"]
        status = fluxnb_cmd("resource", "status", "-s", "housekeeping", "-no", "{state} {nodelist}",
                            env=env).stdout.split()
        assert status == ["housekeeping", "node1"]
        c = _node_job(h, 2)                     # needs rank 1 too: waits for housekeeping
        time.sleep(0.5)
        assert h.rpc("job-list.list-id", {"id": c, "attrs": ["state"]}, nodeid=0).get()[
            "job"]["state"] & 0x08  # SCHED
        gate.touch()
        event_wait(h, c, "clean", timeout=30)
        assert _ranks_of(h, c) == [0, 1]
        _wait_until(lambda: not _hk_running(h) or _f58(a) not in _hk_running(h))


def test_without_release_after_nodes_return_together(tmp_path):
    gate = tmp_path / "gate"
    with Instance(test_size=2, cores_per_node=2, conf=_conf(gate, None)) as inst, Flux(inst.uri) as h:
        _layout_check(inst)
        a = _node_job(h, 2)
        event_wait(h, a, "clean", timeout=30)
        _wait_until(lambda: _hk_running(h).get(_f58(a), {}).get("pending") == "1")
        b = _node_job(h, 1)
        time.sleep(0.5)  # rank 0 is done, but held until rank 1 is (release-after unset)
        assert _hk_running(h)[_f58(a)]["allocated"] == "0-1"
        with pytest.raises(TimeoutError):
            event_wait(h, b, "alloc", timeout=0.5)
        gate.touch()
        event_wait(h, b, "alloc", timeout=30)


def test_housekeeping_kill_ends_a_stuck_task(tmp_path):
    gate = tmp_path / "never"
    with Instance(test_size=2, cores_per_node=2, conf=_conf(gate, "0")) as inst, Flux(inst.uri) as h:
        a = _node_job(h, 2)
        event_wait(h, a, "clean", timeout=30)
        _wait_until(lambda: _hk_running(h).get(_f58(a), {}).get("allocated") == "1")
        env = inst.environ(0)
        r = fluxnb_cmd("housekeeping", "kill", env=env)
        assert r.returncode == 1 and "specify at least one of --targets, --jobid, or --all" in r.stderr
        r = fluxnb_cmd("housekeeping", "kill", "--all", "-j", _f58(a), env=env)
        assert r.returncode == 1 and "do not specify --jobid with --all" in r.stderr
        r = fluxnb_cmd("housekeeping", "kill", "-t", "node1", env=env)
        assert r.returncode == 0, r.stderr
        _wait_until(lambda: _f58(a) not in _hk_running(h))
        b = _node_job(h, 2)
        event_wait(h, b, "alloc", timeout=30)


def test_bad_housekeeping_config_is_reported_and_disabled():
    conf = {"job-manager": {"housekeeping": {"command": "true"}}}
    with Instance(test_size=1, conf=conf) as inst, Flux(inst.uri) as h:
        log = "\n".join(e if isinstance(e, str) else json.dumps(e)
                        for e in h.rpc("log.dmesg", {}, nodeid=0).get().get("entries", []))
        assert "job-manager.housekeeping.command: must be a non-empty array of strings" in log
        a = _node_job(h, 1)                      # jobs still run, resources freed as before
        event_wait(h, a, "clean", timeout=30)
        b = _node_job(h, 1)
        event_wait(h, b, "clean", timeout=30)


def _f58(jobid: int) -> str:
    from fluxnb.runtime.job.jobid import JobID
    return JobID(jobid).f58


# -- sched.free with part of R: checked before anything changes ---------------------------
def _free(h, payload):
    return h.rpc("sched.free", payload, nodeid=0).get()


@pytest.mark.parametrize("sched", ["fluxion", "simple"])
def test_partial_free_errors_leave_the_allocation_alone(sched):
    from fluxnb.runtime.util.rv1 import ResourceSet
    with Instance(test_size=2, cores_per_node=2) as inst, Flux(inst.uri) as h:
        if sched == "simple":
            from tests.conftest import QM, RES
            h.rpc("module.remove", {"name": QM}, nodeid=0).get()
            h.rpc("module.remove", {"name": RES}, nodeid=0).get()
            h.rpc("module.load", {"name": "sched-simple"}, nodeid=0).get()
        js = JobspecV1.from_command(["sleep", "30"], num_nodes=2, num_tasks=2, exclusive=True)
        a = submit(h, js)
        event_wait(h, a, "start", timeout=30)
        from fluxnb import kvs
        R = ResourceSet(kvs.get(h, _kvs(a) + ".R"))
        before = h.rpc("sched.resource-status", {}, nodeid=0).get()
        other = ResourceSet.from_ranks({5: {"core": "0"}}, hostnames={5: "node5"})
        with pytest.raises(FluxError, match=r"does not hold node5 \(ranks 5\)"):
            _free(h, {"id": a, "R": other.to_R(), "final": False})
        with pytest.raises(FluxError, match="malformed R"):
            _free(h, {"id": a, "R": {"version": 99}, "final": False})
        with pytest.raises(FluxError, match="holds no resources"):
            _free(h, {"id": a + 12345, "R": R.copy_ranks([1]).to_R(), "final": False})
        with pytest.raises(FluxError, match="final must be a boolean"):
            _free(h, {"id": a, "R": R.copy_ranks([1]).to_R(), "final": "yes"})
        assert h.rpc("sched.resource-status", {}, nodeid=0).get() == before
        h.rpc("job-manager.kill", {"id": a, "signum": 9}, nodeid=0).get()
        event_wait(h, a, "clean", timeout=30)


def _kvs(jobid: int) -> str:
    from fluxnb.runtime.job.jobid import kvs_dir
    return kvs_dir(jobid)
