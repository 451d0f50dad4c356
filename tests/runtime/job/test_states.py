"""The RFC 21 state machine as a table: legal paths, illegal events, results."""

import pytest

from fluxnb.runtime.job.states import IllegalTransition, Job, apply_event, replay


def ev(name, ts=1.0, **ctx):
    return {"timestamp": ts, "name": name, "context": ctx}


def run(*names_and_ctx):
    job = Job(id=7, userid=0, urgency=16, t_submit=0.0)
    for item in names_and_ctx:
        name, ctx = (item, {}) if isinstance(item, str) else item
        apply_event(job, ev(name, **ctx))
    return job


HAPPY = ["submit", "validate", "depend", ("priority", {"priority": 16}), "alloc", "start",
         ("finish", {"status": 0}), ("release", {"ranks": "all", "final": True}), "free", "clean"]


def test_happy_path_walks_every_state_in_order():
    job = Job(id=1, userid=0, urgency=16, t_submit=0.0)
    states = []
    for item in HAPPY:
        name, ctx = (item, {}) if isinstance(item, str) else item
        apply_event(job, ev(name, **ctx))
        states.append(job.state)
    assert states == ["NEW", "DEPEND", "PRIORITY", "SCHED", "RUN", "RUN", "CLEANUP", "CLEANUP",
                      "CLEANUP", "INACTIVE"]
    assert job.result == "COMPLETED" and job.returncode == 0 and job.success


@pytest.mark.parametrize("status,rc", [(1 << 8, 1), (3 << 8, 3), (9, -9), (15, -15)])
def test_nonzero_status_fails_with_flux_returncode(status, rc):
    job = run(*HAPPY[:6], ("finish", {"status": status}), "release", "free", "clean")
    assert job.result == "FAILED" and job.returncode == rc


@pytest.mark.parametrize("kind,result", [("cancel", "CANCELED"), ("timeout", "TIMEOUT"),
                                         ("exec", "FAILED"), ("dependency", "FAILED")])
def test_fatal_exception_decides_the_result(kind, result):
    job = run(*HAPPY[:4], ("exception", {"type": kind, "severity": 0}))
    assert job.state == "CLEANUP"
    apply_event(job, ev("clean"))
    assert job.result == result and job.exception["type"] == kind


def test_canceled_before_running_has_returncode_minus_128():
    job = run(*HAPPY[:4], ("exception", {"type": "cancel", "severity": 0}), "clean")
    assert job.returncode == -128


def test_nonfatal_exception_changes_nothing():
    job = run(*HAPPY[:4], ("exception", {"type": "test", "severity": 1}))
    assert job.state == "SCHED" and job.exception is None


def test_exception_while_running_then_finish_in_cleanup():
    job = run(*HAPPY[:6], ("exception", {"type": "cancel", "severity": 0}))
    assert job.state == "CLEANUP"
    apply_event(job, ev("finish", status=15))
    assert job.waitstatus == 15 and job.state == "CLEANUP"


@pytest.mark.parametrize("prefix,bad", [
    (["submit"], "alloc"),
    (["submit", "validate"], "alloc"),
    (HAPPY[:4], "validate"),
    (HAPPY[:5], "depend"),
    (HAPPY, "start"),
    (HAPPY, "exception"),
    (["submit"], "no-such-event"),
])
def test_illegal_transitions_raise(prefix, bad):
    job = run(*prefix)
    with pytest.raises(IllegalTransition):
        apply_event(job, ev(bad, type="x", severity=0))


def test_hold_and_expedite_are_urgency_events():
    job = run(*HAPPY[:4], ("urgency", {"urgency": 0}))
    assert job.urgency == 0 and job.state == "SCHED"


def test_replay_rebuilds_the_same_job():
    events = [ev(n if isinstance(n, str) else n[0], ts=i, **({} if isinstance(n, str) else n[1]))
              for i, n in enumerate(HAPPY)]
    events[0]["context"] = {"userid": 5, "urgency": 20, "flags": 0}
    job = replay(42, events)
    assert (job.id, job.userid, job.urgency, job.state, job.result) == (42, 5, 20, "INACTIVE", "COMPLETED")
    assert job.t_run == 4 and job.t_inactive == 9


def test_replay_needs_submit_first():
    with pytest.raises(IllegalTransition):
        replay(1, [ev("validate")])
