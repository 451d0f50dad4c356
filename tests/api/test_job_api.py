"""fluxnb.job against a real instance: what flux-core's ``flux.job`` documents.

The first tests are the Python "Submission API" cells of the Flux ECP 2023 tutorial
with only the import changed (``import fluxnb as flux``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest

import fluxnb
import fluxnb as flux
from fluxnb.job import (
    JobException, JobID, JobspecV1, cancel, event_wait, event_watch, get_job, job_list, kill,
    result, set_urgency, submit, wait,
)
from fluxnb.runtime.job.states import RESULT_BITS, STATE_BITS

MAIN_SEQUENCE = ["submit", "depend", "priority", "alloc", "start", "finish", "release", "free",
                 "clean"]


@pytest.fixture(scope="module")
def instance():
    # 4 cores per node whatever the host has, so the tutorial's 2-node x 4-task x 2-core
    # job fits the way it does on the tutorial's cluster
    with fluxnb.Instance(test_size=4, cores_per_node=4) as inst:
        yield inst


def jobspec(command, **kwargs) -> JobspecV1:
    """A jobspec with the caller's environment, as flux's CLI builds it."""
    js = JobspecV1.from_command(command, **kwargs)
    js.environment = dict(os.environ)
    return js


def names(jobid, h) -> list[str]:
    return [ev.name for ev in event_watch(h, jobid)]


def is_subsequence(small: list, big: list) -> bool:
    it = iter(big)
    return all(x in it for x in small)


# -- the ECP 2023 tutorial's Submission API cells -----------------------------------------
def test_tutorial_submission_api(instance, tmp_path, monkeypatch):
    monkeypatch.setenv("FLUX_URI", instance.uri)
    (tmp_path / "compute.py").write_text(
        f"#!{sys.executable}\nimport sys, time\ntime.sleep(float(sys.argv[1]) / 1000)\n")
    (tmp_path / "compute.py").chmod(0o755)
    (tmp_path / "io-forwarding.py").write_text(f"#!{sys.executable}\nprint('io')\n")
    (tmp_path / "io-forwarding.py").chmod(0o755)

    f = flux.Flux()  # connect to the running Flux instance
    compute_jobreq = JobspecV1.from_command(
        command=["./compute.py", "120"], num_tasks=1, num_nodes=1, cores_per_task=1
    )  # construct a jobspec
    compute_jobreq.cwd = str(tmp_path)  # set the CWD
    compute_jobreq.environment = dict(os.environ)
    f58 = JobID(flux.job.submit(f, compute_jobreq)).f58
    assert f58.startswith("ƒ")
    assert result(f, JobID(f58))["result"] == "COMPLETED"

    # "we can dump the raw JSON jobspec that is submitted"
    dumped = json.loads(compute_jobreq.dumps(indent=2))
    assert dumped["tasks"][0]["command"] == ["./compute.py", "120"]
    assert dumped["version"] == 1

    # multiple heterogeneous jobs, co-scheduled
    compute_jobreq = JobspecV1.from_command(
        command=["./compute.py", "120"], num_tasks=4, num_nodes=2, cores_per_task=2
    )
    compute_jobreq.cwd = str(tmp_path)
    compute_jobreq.environment = dict(os.environ)
    compute_id = JobID(flux.job.submit(f, compute_jobreq))
    io_jobreq = JobspecV1.from_command(
        command=["./io-forwarding.py", "120"], num_tasks=1, num_nodes=1, cores_per_task=1
    )
    io_jobreq.cwd = str(tmp_path)
    io_jobreq.environment = dict(os.environ)
    io_id = JobID(flux.job.submit(f, io_jobreq))
    compute, io = result(f, compute_id), result(f, io_id)
    assert (compute["result"], io["result"]) == ("COMPLETED", "COMPLETED")
    assert (compute["nnodes"], compute["ntasks"]) == (2, 4)
    f.close()


# -- submit, wait, result, get_job ------------------------------------------------------------
def test_submit_wait_success(h):
    jobid = submit(h, jobspec(["true"]), waitable=True)
    assert isinstance(jobid, JobID) and jobid > 0
    status = wait(h, jobid)
    assert status.jobid == jobid and status.success is True and status.errstr == ""


def test_submit_wait_failure_names_exit_code(h):
    jobid = submit(h, jobspec(["sh", "-c", "exit 3"]), waitable=True)
    status = wait(h, jobid)
    assert status.success is False
    assert "3" in status.errstr


def test_wait_on_job_not_waitable_is_an_error(h):
    jobid = submit(h, jobspec(["true"]))
    with pytest.raises(OSError):
        wait(h, jobid)


def test_result_and_get_job_fields(h):
    jobid = submit(h, jobspec(["true"]))
    info = result(h, jobid)
    assert info["id"] == jobid
    assert info["state"] == "INACTIVE"
    assert info["result"] == "COMPLETED"
    assert info["returncode"] == 0
    assert 0 < info["t_submit"] <= info["t_run"] <= info["t_inactive"]
    assert get_job(h, jobid)["result"] == "COMPLETED"
    assert get_job(h, jobid)["name"] == "true"


def test_result_of_failed_job(h):
    info = result(h, submit(h, jobspec(["sh", "-c", "exit 3"])))
    assert (info["state"], info["result"], info["returncode"]) == ("INACTIVE", "FAILED", 3)


def test_get_job_of_unknown_id_is_none(h):
    assert get_job(h, JobID("ƒ1")) is None


# -- eventlogs -------------------------------------------------------------------------
def test_event_watch_order_and_end(h):
    jobid = submit(h, jobspec(["true"]))
    events = list(event_watch(h, jobid))  # returns: the watch ends at "clean"
    seen = [ev.name for ev in events]
    assert seen[0] == "submit" and seen[-1] == "clean"
    assert is_subsequence(MAIN_SEQUENCE, seen)
    stamps = [ev.timestamp for ev in events]
    assert stamps == sorted(stamps)
    finish = next(ev for ev in events if ev.name == "finish")
    assert finish.context["status"] == 0


def test_event_wait_returns_the_event(h):
    jobid = submit(h, jobspec(["true"]))
    ev = event_wait(h, jobid, "start")
    assert ev.name == "start" and ev.timestamp > 0


def test_event_wait_raises_job_exception_on_cancel(h):
    jobid = submit(h, jobspec(["true"]), urgency=0)
    cancel(h, jobid, "not today")
    with pytest.raises(JobException) as err:
        event_wait(h, jobid, "start")
    assert err.value.type == "cancel" and err.value.severity == 0
    assert result(h, jobid)["result"] == "CANCELED"


def test_event_wait_raises_job_exception_for_missing_command(h):
    jobid = submit(h, jobspec(["/no/such/command-xyz"]))
    with pytest.raises(JobException) as err:
        event_wait(h, jobid, "clean")
    assert "/no/such/command-xyz" in str(err.value)
    info = result(h, jobid)
    assert info["result"] == "FAILED"


# -- job_list ------------------------------------------------------------------------------
def test_job_list_filters_by_state_and_result(h):
    ok = submit(h, jobspec(["true"]))
    bad = submit(h, jobspec(["false"]))
    held = submit(h, jobspec(["true"]), urgency=0)
    result(h, ok), result(h, bad)
    inactive_failed = {j["id"] for j in job_list(h, states=STATE_BITS["INACTIVE"],
                                                 results=RESULT_BITS["FAILED"]).get_jobs()}
    assert bad in inactive_failed and ok not in inactive_failed
    completed = {j["id"] for j in job_list(h, results=RESULT_BITS["COMPLETED"]).get_jobs()}
    assert ok in completed and bad not in completed
    pending = STATE_BITS["DEPEND"] | STATE_BITS["PRIORITY"] | STATE_BITS["SCHED"]
    listed = {j["id"]: j for j in job_list(h, states=pending).get_jobs()}
    assert held in listed and ok not in listed
    assert listed[held]["state"] == STATE_BITS["SCHED"]  # a held job waits in SCHED, priority 0
    cancel(h, held)
    assert result(h, held)["result"] == "CANCELED"


# -- kill, urgency --------------------------------------------------------------------------
def test_kill_with_signal_reports_128_plus_signal(h):
    jobid = submit(h, jobspec(["sleep", "30"]))
    event_wait(h, jobid, "start")
    kill(h, jobid, signal.SIGUSR1)
    info = result(h, jobid)
    assert info["result"] == "FAILED"
    # the flux shell exits 128+N when a task dies from signal N
    assert info["returncode"] == 128 + signal.SIGUSR1
    assert info["waitstatus"] >> 8 == 128 + signal.SIGUSR1


def test_urgency_hold_keeps_job_pending_until_raised(h):
    jobid = submit(h, jobspec(["true"]), urgency=0)
    time.sleep(0.5)
    info = get_job(h, jobid)
    assert info["state"] == "SCHED" and info["t_run"] == 0
    assert set_urgency(h, jobid, 16) == 0
    info = result(h, jobid)
    assert info["result"] == "COMPLETED"
    assert "urgency" in names(jobid, h)


# -- dependencies (RFC 26) ----------------------------------------------------------------------
def with_dependency(command, scheme, target):
    js = jobspec(command)
    js.setattr("system.dependencies", [{"scheme": scheme, "value": JobID(target).f58}])
    return js


def test_afterok_waits_for_success(h):
    target = submit(h, jobspec(["sleep", "0.5"]))
    dep = submit(h, with_dependency(["true"], "afterok", target))
    info = result(h, dep)
    assert info["result"] == "COMPLETED"
    assert info["t_run"] >= result(h, target)["t_inactive"]
    seen = names(dep, h)
    assert "dependency-add" in seen and "dependency-remove" in seen


def test_afterok_on_failed_job_is_a_dependency_exception(h):
    target = submit(h, jobspec(["false"]))
    dep = submit(h, with_dependency(["true"], "afterok", target))
    with pytest.raises(JobException) as err:
        event_wait(h, dep, "start")
    assert err.value.type == "dependency"
    info = result(h, dep)
    assert info["state"] == "INACTIVE" and info["t_run"] == 0


def test_afterany_runs_after_failure(h):
    target = submit(h, jobspec(["false"]))
    dep = submit(h, with_dependency(["true"], "afterany", target))
    assert result(h, dep)["result"] == "COMPLETED"


def test_afternotok(h):
    failed = submit(h, jobspec(["false"]))
    assert result(h, submit(h, with_dependency(["true"], "afternotok", failed)))["result"] == "COMPLETED"
    ok = submit(h, jobspec(["true"]))
    dep = submit(h, with_dependency(["true"], "afternotok", ok))
    with pytest.raises(JobException) as err:
        event_wait(h, dep, "start")
    assert err.value.type == "dependency"


def test_afterstart(h):
    target = submit(h, jobspec(["sleep", "1"]))
    dep = submit(h, with_dependency(["true"], "afterstart", target))
    info = result(h, dep)
    assert info["result"] == "COMPLETED"
    assert info["t_run"] >= get_job(h, target)["t_run"] > 0


def test_dependency_on_unknown_job_names_the_cause(h):
    missing = JobID(12345)
    dep = submit(h, with_dependency(["true"], "afterok", missing))
    info = result(h, dep)
    assert info["state"] == "INACTIVE" and info["result"] != "COMPLETED"
    exc = [ev for ev in event_watch(h, dep) if ev.name == "exception"]
    assert exc and exc[0].context["type"] == "dependency"
    assert missing.f58 in exc[0].context["note"]


# -- time limit, cwd, isolation ------------------------------------------------------------------
def test_time_limit_ends_timeout_and_kills_tasks(h):
    js = jobspec(["sleep", "60"])
    js.duration = 1
    t0 = time.time()
    jobid = submit(h, js)
    info = result(h, jobid)
    assert info["result"] == "TIMEOUT"
    assert time.time() - t0 < 15  # the task was killed, not waited for
    exc = [ev for ev in event_watch(h, jobid) if ev.name == "exception"]
    assert exc[0].context["type"] == "timeout"


def test_missing_cwd_is_an_exception_naming_it(h, tmp_path):
    js = jobspec(["true"])
    js.cwd = str(tmp_path / "no-such-dir")
    jobid = submit(h, js)
    with pytest.raises(JobException) as err:
        event_wait(h, jobid, "clean")
    assert str(tmp_path / "no-such-dir") in str(err.value)
    assert result(h, jobid)["result"] == "FAILED"


def test_failing_job_leaves_others_untouched(h):
    good = [submit(h, jobspec(["true"])) for _ in range(3)]
    bad = submit(h, jobspec(["/no/such/command-xyz"]))
    more = [submit(h, jobspec(["sh", "-c", "exit 0"])) for _ in range(3)]
    assert result(h, bad)["result"] == "FAILED"
    for jobid in good + more:
        info = result(h, jobid)
        assert (info["result"], info["returncode"]) == ("COMPLETED", 0)
        assert "exception" not in names(jobid, h)


def test_cancel_running_job(h):
    jobid = submit(h, jobspec(["sleep", "30"]))
    event_wait(h, jobid, "start")
    cancel(h, jobid)
    info = result(h, jobid)
    assert info["result"] == "CANCELED"
    assert info["t_inactive"] - info["t_run"] < 15


def test_eventlog_is_complete_once_result_returns(h):
    from fluxnb.job import eventlog_entries
    incomplete = 0
    for _ in range(30):
        js = JobspecV1.from_command(["true"])
        js.setattr("system.exec.test.run_duration", "0s")
        jobid = submit(h, js)
        result(h, jobid)
        if [ev.name for ev in eventlog_entries(h, jobid, watch=False)][-1] != "clean":
            incomplete += 1
    assert incomplete == 0
