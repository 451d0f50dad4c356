"""Faults as flux-core handles them: lost brokers, a dead rank 0, and no orphans.

flux-core 0.88 (``flux start --test-size=3``, broker rank 2 killed with SIGKILL):
``overlay.err[0]: vm (rank 2) failed``; ``flux overlay status`` shows
``2 vm: lost lost connection``; the node is offline (``avail*``) in
``flux resource status``; a job running there gets
``exception type="exec" severity=0 note="node failure on vm (rank 2)"`` and goes on
to ``finish``, ``release``, ``free``, ``clean``; ``flux ping 2`` fails at once with
``flux-ping: 2!broker.ping: No route to host``; ``flux exec -r 2`` with
``No route to host``.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from fluxnb import Flux, Instance
from fluxnb.job import JobspecV1, eventlog_entries, submit
from fluxnb.runtime.message import FluxError
from tests.conftest import alive, fluxnb_cmd, wait_for


def _pid(h, rank: int) -> int:
    return int(h.rpc("attr.get", {"name": "broker.pid"}, nodeid=rank).get(timeout=5)["value"])


def _events(h, jobid) -> list:
    try:
        return list(eventlog_entries(h, jobid, watch=False))
    except FluxError as exc:  # not written yet
        if exc.errno == errno.ENOENT:
            return []
        raise


def _names(h, jobid) -> list[str]:
    return [ev.name for ev in _events(h, jobid)]


def _started(h, jobid) -> bool:
    return "start" in _names(h, jobid)


def test_a_killed_broker_is_lost_its_job_fails_and_its_rpcs_fail_at_once():
    with Instance(test_size=3, processes=True, cores_per_node=1) as inst:
        with Flux(inst.uri) as h:
            three = submit(h, JobspecV1.from_command(["sleep", "100"], num_tasks=3, num_nodes=3))
            wait_for(lambda: _started(h, three), 15, "the 3-node job to start")
            pid = _pid(h, 2)
            os.kill(pid, signal.SIGKILL)
            t0 = time.monotonic()
            # noticed at once (a closed connection), not after the torpid timeout
            wait_for(lambda: "clean" in _names(h, three), 4, "the job to reach INACTIVE")
            assert time.monotonic() - t0 < 4
            evs = {ev.name: ev for ev in _events(h, three)}
            assert evs["exception"].context == {"type": "exec", "severity": 0, "userid": os.getuid(),
                                                "note": "node failure on node2 (rank 2)"}
            for name in ("finish", "release", "free", "clean"):
                assert name in evs
            # the rank's requests fail with EHOSTUNREACH at once
            t = time.monotonic()
            with pytest.raises(FluxError) as exc:
                h.rpc("broker.ping", {}, nodeid=2).get(timeout=5)
            assert exc.value.errno == errno.EHOSTUNREACH and time.monotonic() - t < 1
            health = h.rpc("overlay.health", {}, nodeid=0).get(timeout=5)
            lost = [c for c in health["children"] if c["rank"] == 2][0]
            assert (lost["status"], lost["error"]) == ("lost", "lost connection")
            status = h.rpc("resource.status", {}).get(timeout=5)
            assert status["offline"] == "2" and status["online"] == "0-1"
            # the other ranks' cores are free again: a 2-node job runs at once
            two = submit(h, JobspecV1.from_command(["true"], num_tasks=2, num_nodes=2))
            wait_for(lambda: "clean" in _names(h, two), 10, "a 2-node job after the loss")
            assert [ev.context["status"] for ev in _events(h, two) if ev.name == "finish"] == [0]
        env = inst.environ(0)
        r = fluxnb_cmd("overlay", "status", env=env, timeout=20)
        assert r.stdout.splitlines() == ["0 node0: degraded", "├─ 1 node1: full",
                                         "└─ 2 node2: lost lost connection"]
        r = fluxnb_cmd("ping", "2", env=env, timeout=20)
        assert r.returncode == 1 and r.stderr.strip() == "fluxnb-ping: 2!broker.ping: No route to host"
        r = fluxnb_cmd("exec", "-r", "2", "true", env=env, timeout=20)
        assert r.returncode != 0 and "No route to host" in r.stderr
        r = fluxnb_cmd("resource", "status", "-s", "offline", "-no", "{nodelist}", env=env, timeout=20)
        assert r.stdout.split() == ["node2"], r.stdout + r.stderr
        assert not alive(pid)


def test_a_silent_broker_is_lost_after_torpid_max_and_exits_when_it_wakes():
    attrs = {"tbon.torpid_min": "0.1s", "tbon.torpid_max": "0.5s"}
    with Instance(test_size=3, processes=True, attrs=attrs) as inst:
        with Flux(inst.uri) as h:
            assert h.rpc("attr.get", {"name": "tbon.torpid_max"}, nodeid=2).get()["value"] == "0.5s"
            pid = _pid(h, 2)
            os.kill(pid, signal.SIGSTOP)
            try:
                t = time.monotonic()
                with pytest.raises(FluxError) as exc:
                    h.rpc("broker.ping", {}, nodeid=2).get(timeout=5)
                # failed by the torpid timeout, well before the RPC's own
                assert exc.value.errno == errno.EHOSTUNREACH and time.monotonic() - t < 2.5
                child = h.rpc("overlay.health", {}, nodeid=0).get()["children"][1]
                assert child["status"] == "lost" and child["error"].startswith("unresponsive for")
            finally:
                os.kill(pid, signal.SIGCONT)
            # lost is final: the broker is told so when it speaks again, and exits
            wait_for(lambda: not alive(pid), 5, "the woken broker to exit")
            assert h.rpc("broker.ping", {}, nodeid=1).get(timeout=5) is not None


def test_default_torpid_attributes():
    with Instance(test_size=1) as inst, Flux(inst.uri) as h:
        assert h.attr_get("tbon.torpid_min") == "1s"
        assert h.attr_get("tbon.torpid_max") == "5s"


def test_a_dead_rank_0_ends_the_instance_and_no_client_waits():
    inst = Instance(test_size=3, processes=True).start()
    try:
        uri = inst.uri
        others = [_pid(Flux(uri), r) for r in (1, 2)]
        h = Flux(uri)
        h.rpc("kvs.lookup", {"key": "resource.R"}).get(timeout=5)
        os.kill(inst._procs[0].pid, signal.SIGKILL)
        # a connected client waiting with no timeout gets ECONNRESET within a second
        t = time.monotonic()
        with pytest.raises(FluxError) as exc:
            h.rpc("kvs.lookup", {"key": "x"}).get()
        assert exc.value.errno == errno.ECONNRESET and time.monotonic() - t < 1.5
        # the other brokers exit: their parent is gone
        wait_for(lambda: not any(alive(p) for p in others), 5, "ranks 1-2 to exit")
        # a new client given the dead instance's URI errors within a couple of seconds
        t = time.monotonic()
        r = fluxnb_cmd("kvs", "get", "x", env=dict(os.environ, FLUX_URI=uri), timeout=20)
        assert r.returncode != 0 and "lost connection" in r.stderr and time.monotonic() - t < 4
    finally:
        inst.stop()
    assert not os.path.exists(inst.rundir)


# -- no orphans ----------------------------------------------------------------------------
SLEEPER = "import sys, time; time.sleep(float(sys.argv[1]))"


def _marked(marker: str) -> list[int]:
    """Processes whose command line carries ``marker``."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if marker.encode() in f.read() and alive(int(name)):
                    out.append(int(name))
        except OSError:
            pass
    return out


def _sleep(secs: int, marker: str) -> str:
    return f"{sys.executable} -c '{SLEEPER}' {secs} {marker}"


@pytest.fixture
def tmpdir_env(tmp_path):
    """An environment whose run directories land in ``tmp_path`` (TMPDIR)."""
    env = dict(os.environ, TMPDIR=str(tmp_path), FLUXNB_QUIET="1")
    return env, tmp_path


def _start(env, marker: str, *opts: str, script: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fluxnb.cli.main", "start", *opts, "sh", "-c", script],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _job_and_wait(marker: str) -> str:
    # a 2-node job whose tasks leave a child behind, and an initial program that waits
    return (f"flux submit -N2 sh -c \"{_sleep(101, marker)} & {_sleep(102, marker)}\" >/dev/null; "
            f"{_sleep(103, marker)}")


def _nothing_left(marker: str, tmp_path) -> None:
    wait_for(lambda: not _marked(marker), 6, f"no process marked {marker}")
    wait_for(lambda: not list(tmp_path.glob("fluxnb-*")), 3, "no run directory")


@pytest.mark.parametrize("how", ["SIGKILL-threads", "SIGKILL-processes", "SIGTERM-processes"])
def test_killing_fluxnb_start_leaves_no_task_and_no_rundir(tmpdir_env, how):
    env, tmp = tmpdir_env
    marker = f"orphan-{how}-{os.getpid()}"
    sig, mode = how.split("-")
    opts = ["--test-size=2"] + (["--processes"] if mode == "processes" else [])
    p = _start(env, marker, *opts, script=_job_and_wait(marker))
    try:
        wait_for(lambda: len(_marked(marker)) >= 5, 20, "the job's tasks and the initial program")
        p.send_signal(getattr(signal, sig))
        p.wait(15)
    finally:
        if p.poll() is None:
            p.kill()
    if sig == "SIGTERM":
        assert p.returncode == 143  # the initial program's SIGTERM, as a shell reports it
    _nothing_left(marker, tmp)


def test_timeout_of_fluxnb_start_leaves_nothing(tmpdir_env):
    env, tmp = tmpdir_env
    marker = f"orphan-timeout-{os.getpid()}"
    r = subprocess.run(["timeout", "3", sys.executable, "-m", "fluxnb.cli.main", "start", "sh", "-c",
                        f"exec {_sleep(101, marker)}"], env=env, timeout=30)
    assert r.returncode == 124
    _nothing_left(marker, tmp)


def test_flux_shutdown_ends_every_task(tmpdir_env):
    env, tmp = tmpdir_env
    marker = f"orphan-shutdown-{os.getpid()}"
    script = (f"flux submit -N2 sh -c \"{_sleep(101, marker)} & {_sleep(102, marker)}\" >/dev/null; "
              "flux job wait-event -t 15 $(flux jobs -no {id} | head -1) start >/dev/null; "
              "flux shutdown; sleep 1")
    r = subprocess.run([sys.executable, "-m", "fluxnb.cli.main", "start", "--test-size=2", "--processes",
                        "sh", "-c", script], env=env, timeout=60, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    _nothing_left(marker, tmp)


def test_a_killed_broker_takes_its_tasks_and_their_children_with_it():
    marker = f"orphan-broker-{os.getpid()}"
    with Instance(test_size=2, processes=True) as inst, Flux(inst.uri) as h:
        script = f"{_sleep(101, marker)} & {_sleep(102, marker)}"
        submit(h, JobspecV1.from_command(["sh", "-c", script], num_tasks=2, num_nodes=2))
        wait_for(lambda: len(_marked(marker)) >= 4, 15, "both tasks and their children")
        os.kill(_pid(h, 1), signal.SIGKILL)
        # rank 1's tasks die with their broker; rank 0's are killed by the node failure
        wait_for(lambda: not _marked(marker), 5, "no task left")


def test_a_client_outside_the_instance_is_not_reaped():
    """Only what the instance started is ended with it, not a shell that set FLUX_URI."""
    marker = f"outside-{os.getpid()}"
    inst = Instance(test_size=1).start()
    outsider = subprocess.Popen([sys.executable, "-c", SLEEPER, "30", marker], env=inst.environ(0))
    try:
        inst.stop()
        assert alive(outsider.pid)
    finally:
        outsider.kill()
        outsider.wait()


def test_an_async_client_of_a_dead_broker_gets_econnreset():
    import asyncio

    from fluxnb.runtime.client import AsyncFlux
    inst = Instance(test_size=1, processes=True).start()
    try:
        async def main():
            async with AsyncFlux(inst.uri) as h:
                assert (await h.attr_get("size")) == "1"
                from fluxnb.runtime.kvs.flags import FLUX_KVS_WAITCREATE
                stream = h.rpc_stream("kvs-watch.lookup", {"key": "never", "flags": FLUX_KVS_WAITCREATE})
                waiter = asyncio.ensure_future(stream.__anext__())
                events = asyncio.ensure_future(h.event_recv())
                await asyncio.sleep(0.1)
                os.kill(inst._procs[0].pid, signal.SIGKILL)
                t = time.monotonic()
                for fut in (waiter, events):
                    with pytest.raises(FluxError) as exc:
                        await asyncio.wait_for(fut, 5)
                    assert exc.value.errno == errno.ECONNRESET
                assert time.monotonic() - t < 1.5
        asyncio.run(main())
    finally:
        inst.stop()
