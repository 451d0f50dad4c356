"""FluxExecutor: flux-core's ``flux.job.FluxExecutor`` behaviour on a real instance.

Includes the ECP 2023 tutorial's ``bulksubmit_executor`` example with only the
import changed: 200 jobs through one executor.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import threading
import time

import pytest

from fluxnb.job import (
    FluxExecutor, FluxExecutorFuture, JobException, JobID, JobspecV1, event_wait, event_watch,
    get_job, kill, result, set_urgency, submit,
)

pytestmark = pytest.mark.timeout(120)


def jobspec(command, **kwargs) -> JobspecV1:
    js = JobspecV1.from_command(command, **kwargs)
    js.environment = dict(os.environ)
    return js


def test_exec(duration: str = "0.01s") -> JobspecV1:
    js = JobspecV1.from_command(["true"])
    js.setattr("system.exec.test.run_duration", duration)
    return js


test_exec.__test__ = False  # a helper, not a test


@pytest.fixture
def executor(instance):
    with FluxExecutor(handle_args=(instance.uri,)) as ex:
        yield ex


def wait_for_event(fut: FluxExecutorFuture, name: str, timeout: float = 30) -> None:
    seen = threading.Event()
    fut.add_event_callback(name, lambda f, ev: seen.set())
    assert seen.wait(timeout), f"no {name} event within {timeout}s"


# -- the ECP 2023 tutorial: bulksubmit_executor -------------------------------------------
def test_tutorial_bulksubmit_executor(instance, monkeypatch):
    monkeypatch.setenv("FLUX_URI", instance.uri)
    command, njobs = ["/bin/sleep", "0"], 200  # bulksubmit_executor.py -n200 /bin/sleep 0
    t0 = time.perf_counter()
    with FluxExecutor() as executor:
        compute_jobspec = JobspecV1.from_command(command)
        compute_jobspec.environment = dict(os.environ)
        futures = [executor.submit(compute_jobspec) for _ in range(njobs)]
        # wait for the jobid for each job, as a proxy for the job being submitted
        for fut in futures:
            fut.jobid()
        submitted = time.perf_counter() - t0
        done, not_done = concurrent.futures.wait(futures, timeout=90)
    elapsed = time.perf_counter() - t0
    assert not not_done
    assert [fut.result() for fut in futures] == [0] * njobs
    assert len({fut.jobid() for fut in futures}) == njobs
    # no thread per job: the executor keeps one thread whatever the load
    print(f"\n200 real jobs via FluxExecutor: submitted in {submitted:.2f}s, done in {elapsed:.2f}s")


#: the instance's own service threads (one each, whatever the load) may start meanwhile
_SERVICE_THREADS = ("content-flush", "fluxnb-jobtmp")


def _threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name not in _SERVICE_THREADS)


def test_executor_200_test_exec_jobs(executor):
    before = _threads()
    t0 = time.perf_counter()
    futures = [executor.submit(test_exec()) for _ in range(200)]
    assert _threads() == before  # no thread per job
    assert [fut.result(timeout=60) for fut in futures] == [0] * 200
    print(f"\n200 test-exec jobs via FluxExecutor: {time.perf_counter() - t0:.2f}s")


# -- results and exceptions --------------------------------------------------------------
def test_result_is_exit_code(executor):
    ok = executor.submit(jobspec(["true"]))
    three = executor.submit(jobspec(["sh", "-c", "exit 3"]))
    assert ok.result() == 0
    assert three.result() == 3
    assert isinstance(ok, FluxExecutorFuture) and isinstance(ok, concurrent.futures.Future)
    assert ok.done() and not ok.cancelled()


def test_result_of_signaled_task_is_128_plus_signum(executor, h):
    # a task killed by signal N makes the flux shell exit 128+N; flux-core's executor
    # gives -signum only when the finish status itself is a signal (the shell died)
    fut = executor.submit(jobspec(["sleep", "30"]))
    wait_for_event(fut, "start")
    kill(h, fut.jobid(), signal.SIGUSR1)
    assert fut.result() == 128 + signal.SIGUSR1


def test_missing_command_raises_job_exception(executor):
    fut = executor.submit(jobspec(["/no/such/command-xyz"]))
    with pytest.raises(JobException) as err:
        fut.result()
    assert err.value.severity == 0
    assert "/no/such/command-xyz" in str(err.value)
    assert isinstance(fut.exception(), JobException)


def test_invalid_jobspec_sets_oserror(executor):
    fut = executor.submit({"version": 1, "resources": [], "tasks": []})
    with pytest.raises(OSError):
        fut.result()
    with pytest.raises(RuntimeError, match="could not be submitted"):
        fut.jobid()


def test_cancel_running_job_raises_cancel_exception(executor):
    fut = executor.submit(jobspec(["sleep", "30"]))
    wait_for_event(fut, "start")
    assert fut.cancel() is False  # running futures cannot be cancelled, their jobs can
    with pytest.raises(JobException) as err:
        fut.result(timeout=30)
    assert err.value.type == "cancel"


def test_cancel_pending_job_via_flux(executor, h):
    fut = executor.submit(jobspec(["true"]), urgency=0)
    jobid = fut.jobid()
    fut.cancel()
    with pytest.raises(JobException) as err:
        fut.result(timeout=30)
    assert err.value.type == "cancel"
    assert result(h, jobid)["result"] == "CANCELED"


def test_external_cancel_sets_job_exception(executor, h):
    from fluxnb.job import cancel
    fut = executor.submit(jobspec(["true"]), urgency=0)
    cancel(h, fut.jobid())
    with pytest.raises(JobException):
        fut.result(timeout=30)


# -- jobid and events -----------------------------------------------------------------------
def test_jobid_is_the_flux_job(executor, h):
    fut = executor.submit(jobspec(["true"]))
    jobid = fut.jobid(timeout=30)
    assert isinstance(jobid, JobID)
    assert fut.result() == 0
    # the future completes at the finish event (as flux-core's); the job is
    # inactive, with its result, a moment later
    assert result(h, jobid)["result"] == "COMPLETED"
    assert get_job(h, jobid)["result"] == "COMPLETED"
    got = []
    fut.add_jobid_callback(lambda f: got.append(f.jobid()))
    assert got == [jobid]


def test_jobid_timeout(instance):
    fut = FluxExecutorFuture()
    with pytest.raises(concurrent.futures.TimeoutError):
        fut.jobid(timeout=0.05)


def test_event_callbacks_see_every_event_once_in_order(executor, h):
    fut = executor.submit(jobspec(["true"]), urgency=0)  # held: only the first events happen
    wait_for_event(fut, "priority")
    seen: list[str] = []
    clean = threading.Event()
    order = ["submit", "validate", "depend", "priority", "urgency", "alloc", "start", "finish",
             "release", "free", "clean", "exception"]
    for name in order:
        fut.add_event_callback(name, lambda f, ev: seen.append(ev.name))
    fut.add_event_callback("clean", lambda f, ev: clean.set())
    assert seen == ["submit", "validate", "depend", "priority"]  # replayed at once
    set_urgency(h, fut.jobid(), 16)
    assert fut.result() == 0
    assert clean.wait(30)
    eventlog = [ev.name for ev in event_watch(h, fut.jobid()) if ev.name in order]
    assert seen == eventlog
    assert seen[0] == "submit" and seen[-1] == "clean"
    assert seen.count("priority") == 2 and seen.count("clean") == 1


def test_event_callback_for_unknown_event_is_valueerror(executor):
    fut = executor.submit(test_exec())
    with pytest.raises(ValueError):
        fut.add_event_callback("no-such-event", lambda f, ev: None)
    fut.result()


def test_exception_event_callback_and_context(executor):
    fut = executor.submit(jobspec(["/no/such/command-xyz"]))
    events = []
    fut.add_event_callback("exception", lambda f, ev: events.append(ev))
    with pytest.raises(JobException):
        fut.result()
    wait_for_event(fut, "clean")
    assert events and events[0].context["severity"] == 0 and events[0].context["type"] == "exec"


def test_result_inside_callback_is_refused(executor, h):
    errors = []

    def callback(fut, ev):  # runs in the executor thread: waiting there would deadlock
        try:
            fut.result()
        except RuntimeError as exc:
            errors.append(exc)

    fut = executor.submit(jobspec(["true"]), urgency=0)
    fut.add_event_callback("alloc", callback)
    set_urgency(h, fut.jobid(), 16)
    assert fut.result() == 0
    assert errors and "callback" in str(errors[0])


# -- attach -------------------------------------------------------------------------------------
def test_attach_follows_existing_job(executor, h):
    jobid = submit(h, jobspec(["sh", "-c", "exit 5"]))
    fut = executor.attach(jobid)
    assert fut.jobid() == jobid
    assert fut.result() == 5
    wait_for_event(fut, "submit")  # past events are replayed to late callbacks


def test_attach_finished_job(executor, h):
    jobid = submit(h, jobspec(["true"]))
    event_wait(h, jobid, "clean")
    assert executor.attach(jobid).result(timeout=30) == 0


def test_attach_unknown_job_is_valueerror(executor):
    fut = executor.attach(JobID(123456789))
    with pytest.raises(ValueError):
        fut.result(timeout=30)


# -- shutdown ---------------------------------------------------------------------------------
def test_shutdown_waits_for_pending_futures(instance):
    ex = FluxExecutor(handle_args=(instance.uri,))
    futures = [ex.submit(test_exec("0.2s")) for _ in range(10)]
    ex.shutdown(wait=True)
    assert all(fut.done() for fut in futures)
    assert [fut.result() for fut in futures] == [0] * 10
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(test_exec())
    ex.shutdown()  # again: harmless


def test_shutdown_cancel_futures(instance):
    ex = FluxExecutor(handle_args=(instance.uri,), poll_interval=0.5)
    futures = [ex.submit(test_exec()) for _ in range(50)]
    ex.shutdown(wait=True, cancel_futures=True)
    assert all(fut.done() for fut in futures)
    for fut in futures:
        if fut.cancelled():
            with pytest.raises(concurrent.futures.CancelledError):
                fut.jobid()
        else:
            assert fut.result() == 0


def test_shutdown_without_wait_still_completes(instance):
    ex = FluxExecutor(handle_args=(instance.uri,))
    futures = [ex.submit(test_exec()) for _ in range(5)]
    ex.shutdown(wait=False)
    done, not_done = concurrent.futures.wait(futures, timeout=30)
    assert not not_done and [f.result() for f in futures] == [0] * 5


def test_several_threads(instance):
    with FluxExecutor(threads=3, thread_name_prefix="tx", handle_args=(instance.uri,)) as ex:
        futures = [ex.submit(test_exec()) for _ in range(30)]
        assert [f.result() for f in futures] == [0] * 30
        names = {t.name for t in threading.enumerate()}
        assert {"tx-0", "tx-1", "tx-2"} <= names
    assert not {"tx-0", "tx-1", "tx-2"} & {t.name for t in threading.enumerate()}


def test_map_is_not_supported(executor):
    with pytest.raises(NotImplementedError):
        executor.map(print, [1])
