"""Nested instances: flux batch / alloc / proxy / uri / pstree, and their faults."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fluxnb import Flux, Instance
from fluxnb.job import JobID, event_wait, get_job, result
from tests.conftest import alive, fluxnb_cmd

SLEEP_BATCH = """#!/bin/sh
echo "Starting my batch job"
flux resource list
flux run -N 2 -n 2 sleep 0.5
echo size=$(flux getattr size) level=$(flux getattr instance-level)
"""


@pytest.fixture(scope="module")
def inst():
    with Instance(test_size=4, cores_per_node=2) as i:
        yield i


@pytest.fixture
def env(inst, tmp_path):
    e = inst.environ(0)
    e["TMPDIR"] = str(tmp_path)
    return e


def flux(env, *args, cwd=None, timeout=60):
    return fluxnb_cmd(*args, env=env, cwd=cwd, timeout=timeout)


def free_cores(inst) -> int:
    """Free cores once every job of the instance is inactive."""
    with Flux(inst.uri) as h:
        h.rpc("job-manager.drain", {}, nodeid=0).get(timeout=60)
        st = h.rpc("sched.resource-status", {}, nodeid=0).get()
    from fluxnb.runtime.util.rv1 import ResourceSet
    alloc = ResourceSet(st["allocated"]).ncores if st.get("allocated") else 0
    return ResourceSet(st["all"]).ncores - alloc


def test_batch_runs_script_in_nested_instance_with_exactly_its_resources(env, tmp_path):
    script = tmp_path / "sleep_batch.sh"
    script.write_text(SLEEP_BATCH)
    script.chmod(0o755)
    r = flux(env, "batch", "--nslots=2", "--cores-per-slot=1", "--nodes=2", "./sleep_batch.sh", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    jobid = JobID(r.stdout.strip())
    with Flux(env["FLUX_URI"]) as h:
        info = result(h, jobid)
    assert info["result"] == "COMPLETED", info
    out = (tmp_path / f"flux-{jobid.f58}.out").read_text()  # default output file
    assert out.startswith("Starting my batch job\n")
    # the nested instance owns the job's 2 nodes x 1 core, nothing more
    rows = {l.split()[0]: l.split()[1:] for l in out.splitlines() if l.split() and l.split()[0] in ("free", "allocated", "down")}
    assert rows["free"][:2] == ["2", "2"]
    assert "size=2 level=1" in out


def test_batch_script_exit_code_fails_the_job(env, tmp_path):
    r = flux(env, "batch", "--wrap", "sh", "-c", "exit 5", cwd=tmp_path)
    jobid = JobID(r.stdout.strip())
    with Flux(env["FLUX_URI"]) as h:
        info = result(h, jobid)
    assert (info["result"], info["returncode"]) == ("FAILED", 5)


def test_alloc_runs_command_and_uri_proxy_reach_the_child(env, tmp_path):
    r = flux(env, "alloc", "-N1", "flux", "getattr", "instance-level")
    assert (r.returncode, r.stdout) == (0, "1\n"), r.stderr
    r = flux(env, "alloc", "--bg", "-N1")
    jobid = r.stdout.strip()
    try:
        uri = flux(env, "uri", jobid).stdout.strip()
        assert uri.startswith("local://") and uri != env["FLUX_URI"]
        assert flux(env, "proxy", jobid, "flux", "getattr", "instance-level").stdout == "1\n"
        with Flux(uri) as child:
            # the parent broker the job runs on (any rank of the parent instance)
            parent_rundir = os.path.dirname(env["FLUX_URI"][len("local://"):])
            assert re.fullmatch(rf"local://{re.escape(parent_rundir)}/local(-\d+)?",
                                child.attr_get("parent-uri"))
            assert child.attr_get("size") == "1"
    finally:
        flux(env, "cancel", jobid)


def test_pstree_draws_two_levels(env, tmp_path):
    (tmp_path / "sub_job2.sh").write_text("#!/bin/sh\nflux run -N1 sleep 3\n")
    (tmp_path / "sub_job1.sh").write_text("#!/bin/sh\nflux batch -N1 ./sub_job2.sh\nflux queue drain\n")
    for f in ("sub_job1.sh", "sub_job2.sh"):
        (tmp_path / f).chmod(0o755)
    jobid = flux(env, "batch", "-N1", "./sub_job1.sh", cwd=tmp_path).stdout.strip()
    deadline = time.time() + 30
    tree = ""
    while time.time() < deadline:
        tree = flux(env, "pstree").stdout
        if "sleep" in tree:
            break
        time.sleep(0.2)
    assert tree.splitlines() == [".", "└── ./sub_job1.sh", "    └── ./sub_job2.sh", "        └── sleep"]
    flux(env, "cancel", jobid)


def test_cancel_parent_tears_down_grandchildren(inst, env, tmp_path):
    before = free_cores(inst)
    (tmp_path / "inner.sh").write_text("#!/bin/sh\nflux run sleep 300\n")
    (tmp_path / "outer.sh").write_text("#!/bin/sh\nflux batch -N1 ./inner.sh\nflux queue drain\n")
    for f in ("inner.sh", "outer.sh"):
        (tmp_path / f).chmod(0o755)
    jobid = JobID(flux(env, "batch", "-N1", "./outer.sh", cwd=tmp_path).stdout.strip())
    pids = _wait_for_sleep(tmp_path)
    with Flux(env["FLUX_URI"]) as h:
        flux(env, "cancel", jobid.f58)
        info = result(h, jobid)
    assert info["result"] == "CANCELED"
    deadline = time.time() + 10
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    assert not any(alive(p) for p in pids), "a process of the subtree survived"
    assert free_cores(inst) == before


def test_kill_9_of_child_instance_raises_exception_and_frees(inst, env, tmp_path):
    before = free_cores(inst)
    (tmp_path / "long.sh").write_text("#!/bin/sh\nflux run sleep 300\n")
    (tmp_path / "long.sh").chmod(0o755)
    jobid = JobID(flux(env, "batch", "-N1", "./long.sh", cwd=tmp_path).stdout.strip())
    sleeps = _wait_for_sleep(tmp_path)
    with Flux(env["FLUX_URI"]) as h:
        uri = get_job(h, jobid)["annotations"]["user"]["uri"]
        with Flux(uri) as child:
            broker_pid = int(child.attr_get("broker.pid"))
        os.kill(broker_pid, signal.SIGKILL)
        info = result(h, jobid)
        events = [e for e in __import__("fluxnb").job.eventlog_entries(h, jobid, watch=False)]
    assert info["result"] == "FAILED"
    exc = [e for e in events if e.name == "exception"]
    assert exc and "signal 9" in exc[0].context["note"]
    deadline = time.time() + 10
    while time.time() < deadline and any(alive(p) for p in sleeps):
        time.sleep(0.1)
    assert not any(alive(p) for p in sleeps)
    assert free_cores(inst) == before
    with Flux(env["FLUX_URI"]) as h:  # the parent runs on
        assert h.attr_get("size") == "4"


def _wait_for_sleep(tmp_path, timeout: float = 30) -> list[int]:
    """Pids of `sleep 300` processes started by the test's jobs (found through /proc: the
    ones working in the test's directory, not another test's or another run's)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        pids = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    cmd = (d / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if cmd[:2] == [b"sleep", b"300"]:
                    try:
                        if os.readlink(d / "cwd") != str(tmp_path):
                            continue
                    except OSError:
                        continue
                    pids.append(int(d.name))
        if pids:
            return pids
        time.sleep(0.1)
    raise AssertionError("the grandchild job never started")


def test_uri_of_a_plain_job_is_a_clear_error(env):
    jobid = flux(env, "submit", "sleep", "2").stdout.strip()
    with Flux(env["FLUX_URI"]) as h:
        event_wait(h, JobID(jobid), "start")
    r = flux(env, "uri", jobid)
    assert r.returncode == 1 and "not a Flux instance" in r.stderr
    flux(env, "cancel", jobid)


def test_instance_exit_leaves_no_nested_processes(tmp_path):
    """`fluxnb start CMD` ending while a batch job (two levels deep) still runs."""
    marker = f"sleeper-{time.time_ns()}.sh"
    (tmp_path / marker).write_text("#!/bin/sh\nsleep 300\ntrue\n")  # two commands: sh stays
    (tmp_path / "inner.sh").write_text(f"#!/bin/sh\nflux run ./{marker}\n")
    (tmp_path / "outer.sh").write_text("#!/bin/sh\nflux batch -N1 ./inner.sh\nflux queue drain\n")
    for f in (marker, "inner.sh", "outer.sh"):
        (tmp_path / f).chmod(0o755)
    script = ("flux batch -N1 ./outer.sh >/dev/null; "
              f"for i in $(seq 150); do pgrep -f {marker} >/dev/null && echo found && break; sleep 0.1; done")
    r = fluxnb_cmd("start", "--test-size=2", "sh", "-c", script, cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "found", "the grandchild job never started"
    deadline = time.time() + 10
    left = []
    while time.time() < deadline:
        left = [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit()
                and marker.encode() in _cmdline(d) and alive(int(d.name))]
        if not left:
            break
        time.sleep(0.1)
    assert left == [], "processes of the nested jobs outlived the instance"


def _cmdline(d: Path) -> bytes:
    try:
        return (d / "cmdline").read_bytes()
    except OSError:
        return b""
