"""sched-fluxion-qmanager: queue policies, reservations and backfill, in a real instance.

Expected start times come from the policies' definitions, not from our output:
a 2-node instance (one core per node), jobs submitted in this order, each with
a duration (``-t``) and a test-exec run time as long:

    A  1 node  100 s    runs at once (t = A's start)
    B  2 nodes 100 s    cannot run before A ends: earliest start t + 100
    C  1 node  200 s    fits the free node now, but would hold it past t + 100
    D  1 node   50 s    fits the free node now and ends by t + 50 < t + 100

fcfs          B blocks the queue: C and D wait, nobody is annotated.
easy          B is reserved at t + 100 (eta); C would delay B: waits, unreserved;
              D backfills at once.
conservative  B reserved at t + 100; C reserved after B: t + 200; D backfills.
hybrid        with reservation-depth=2: as conservative for these four jobs.
"""

from __future__ import annotations

import time

import pytest

from fluxnb import Flux, Instance
from fluxnb.job import JobspecV1, job_list_id, submit
from fluxnb.runtime.sched.qmanager import parse_queue_options

from tests.conftest import reload_sched


def job(h, nodes, seconds):
    js = JobspecV1.from_command(["true"], num_nodes=nodes, num_tasks=nodes, duration=seconds)
    js.setattr("system.exec.test.run_duration", f"{seconds}s")
    return submit(h, js)


def info(h, jobid):
    return job_list_id(h, jobid, ["state", "annotations", "t_run"]).get()["job"]


def t_estimate(h, jobid, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        est = (info(h, jobid).get("annotations") or {}).get("sched", {}).get("t_estimate")
        if est is not None:
            return est
        time.sleep(0.05)
    return None


def allocated(h, jobid, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if info(h, jobid)["state"] >= 16:  # RUN or later
            return True
        time.sleep(0.05)
    return False


def R_start(h, jobid):
    return job_list_id(h, jobid, ["t_run"]).get()["job"]["t_run"]


@pytest.fixture
def inst():
    with Instance(test_size=2, cores_per_node=1) as instance, Flux(instance.uri) as h:
        yield h


def scenario(h, policy_args):
    reload_sched(h, qmanager_args=policy_args)
    a = job(h, 1, 100)
    assert allocated(h, a, 10)
    b, c, d = job(h, 2, 100), job(h, 1, 200), job(h, 1, 50)
    return a, b, c, d


def test_fcfs_head_blocks_everyone(inst):
    h = inst
    a, b, c, d = scenario(h, ["queue-policy=fcfs"])
    assert not allocated(h, d, 1.5)
    for j in (b, c, d):
        got = info(h, j)
        assert got["state"] == 8  # SCHED
        assert "t_estimate" not in (got.get("annotations") or {}).get("sched", {})


@pytest.mark.parametrize("args,c_reserved", [
    (["queue-policy=easy"], False),
    (["queue-policy=conservative"], True),
    (["queue-policy=hybrid", "policy-params=reservation-depth=2"], True),
])
def test_backfill_reservations(inst, args, c_reserved):
    h = inst
    a, b, c, d = scenario(h, args)
    start = R_start(h, a)
    assert allocated(h, d, 10), "D ends before B's reserved start: it must backfill"
    assert abs(t_estimate(h, b) - (start + 100)) <= 2
    assert info(h, c)["state"] == 8
    if c_reserved:
        assert abs(t_estimate(h, c) - (start + 200)) <= 2
    else:
        assert t_estimate(h, c, timeout=0.5) is None
    for j in (a, b, c, d):
        h.rpc("job-manager.cancel", {"id": j}, nodeid=0).get()


def test_easy_does_not_backfill_a_job_that_would_delay_the_reservation(inst):
    h = inst
    a, b, c, d = scenario(h, ["queue-policy=easy"])
    assert allocated(h, d, 10)
    assert not allocated(h, c, 1.0)


def test_flux_jobs_shows_eta():
    from tests.conftest import fluxnb_cmd
    with Instance(test_size=2, cores_per_node=1) as instance, Flux(instance.uri) as h:
        a, b, c, d = scenario(h, ["queue-policy=easy"])
        assert t_estimate(h, b) is not None
        out = fluxnb_cmd("jobs", "-o", "{id.f58} {contextual_info}", env=instance.environ(0)).stdout
        assert "eta:" in out


def test_queue_options_parse_and_reject():
    o = parse_queue_options(["queue-policy=easy", "queue-params=queue-depth=4"])
    assert (o.policy, o.queue_depth, o.reservation_depth) == ("easy", 4, 1)
    assert parse_queue_options([]).policy == "fcfs"
    assert parse_queue_options(["queue-policy=conservative"]).reservation_depth >= 100000
    with pytest.raises(ValueError, match="unknown policy 'lifo'"):
        parse_queue_options(["queue-policy=lifo"])
    with pytest.raises(ValueError, match="queue-depth must be an integer"):
        parse_queue_options(["queue-params=queue-depth=zero"])
    with pytest.raises(ValueError, match="unknown option"):
        parse_queue_options(["depth=3"])
