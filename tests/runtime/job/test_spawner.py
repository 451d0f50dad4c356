"""Tasks of brokers that share one thread are started by the loop's spawner process
(fluxnb/runtime/job/spawnd.py): what a task sees, and what happens when the spawner
or the instance goes, must be what ``subprocess.Popen`` from the broker gave."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from fluxnb import Flux, Instance
from fluxnb.job import JobspecV1, event_wait, eventlog_entries, result, submit
from fluxnb.runtime.job import process
from tests.conftest import alive, wait_for


@pytest.fixture(scope="module")
def inst():
    with Instance(test_size=2, cores_per_node=2) as i:
        yield i


def spec(cmd, **kw):
    js = JobspecV1.from_command(cmd, **kw)
    js.environment = dict(os.environ)
    js.cwd = os.getcwd()
    return js


def wait_event(h, jobid, name: str):
    """The job's event ``name`` (a job that never gets there fails by pytest's timeout)."""
    return event_wait(h, jobid, name, raiseJobException=False)


def stdout(h, jobid) -> str:
    return "".join(ev.context["data"] for ev in eventlog_entries(h, jobid, "output", watch=False)
                   if ev.name == "data" and ev.context.get("stream") == "stdout" and "data" in ev.context)


def my_spawners() -> list[int]:
    """Live spawners that are children of this (test) process: its instances' ones."""
    me = str(os.getpid()).encode()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if any(a.endswith(b"spawnd.py") for a in cmd) and fields[1] == me and fields[0] != b"Z":
            out.append(int(name))
    return out


def test_a_task_is_the_spawners_child_in_its_own_process_group(inst):
    script = 'echo "$$ $(ps -o pgid= -p $$) $PPID"'
    with Flux(inst.uri) as h:
        jobid = submit(h, spec(["sh", "-c", script]))
        assert result(h, jobid)["result"] == "COMPLETED"
        pid, pgid, ppid = (int(x) for x in stdout(h, jobid).split())
    assert pgid == pid  # a group of its own: a kill reaches what it started
    assert ppid in my_spawners()  # not the broker's own process
    assert ppid != os.getpid()


def test_the_spawner_makes_the_jobs_tmpdir_private_and_it_goes_after(inst):
    with Flux(inst.uri) as h:
        jobid = submit(h, spec(["sh", "-c", 'stat -c "%a %U" "$FLUX_JOB_TMPDIR"; echo "$FLUX_JOB_TMPDIR"']))
        assert result(h, jobid)["result"] == "COMPLETED"
        mode_owner, path = stdout(h, jobid).splitlines()
    import pwd
    assert mode_owner == f"700 {pwd.getpwuid(os.getuid()).pw_name}"
    wait_for(lambda: not os.path.exists(path), 5, "the job's tmpdir removed")


def test_signals_ignored_by_python_are_default_again_in_a_task(inst):
    """Python ignores SIGPIPE (and SIGXFSZ); Popen puts them back for the child
    (restore_signals). `yes | head -1` only ends quietly with SIGPIPE at default."""
    with Flux(inst.uri) as h:
        jobid = submit(h, spec(["sh", "-c", "grep -E 'SigIgn|SigBlk' /proc/self/status; yes | head -1"]))
        assert result(h, jobid)["result"] == "COMPLETED"
        out = stdout(h, jobid).split()
        assert out[0] == "SigBlk:" and int(out[1], 16) == 0  # nothing blocked
        ignored = int(out[3], 16)
        assert not ignored & (1 << (signal.SIGPIPE - 1))
        assert not ignored & (1 << (signal.SIGXFSZ - 1))
        assert out[4] == "y"
        errs = [ev for ev in eventlog_entries(h, jobid, "output", watch=False)
                if ev.name == "data" and ev.context.get("stream") == "stderr" and ev.context.get("data")]
        assert errs == []  # no "yes: standard output: Broken pipe"


def test_the_command_is_found_on_the_jobs_path_not_the_brokers(inst, tmp_path):
    tool = tmp_path / "only-here"
    tool.write_text("#!/bin/sh\necho found $0\n")
    tool.chmod(0o755)
    with Flux(inst.uri) as h:
        js = spec(["only-here"])
        js.environment = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
        jobid = submit(h, js)
        assert result(h, jobid)["result"] == "COMPLETED"
        assert stdout(h, jobid).strip() == f"found {tool}"
        # not executable, and a directory of that name first on PATH: as execvp, EACCES
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "noexec").write_text("echo no\n")
        js = spec(["noexec"])
        js.environment = dict(os.environ, PATH=f"{tmp_path / 'sub'}:{os.environ['PATH']}")
        jobid = submit(h, js)
        exc = wait_event(h, jobid, "exception")
        assert exc.context["note"] == "task 0: start failed: noexec: Permission denied"
        jobid = submit(h, spec(["no-such-command-here"]))
        exc = wait_event(h, jobid, "exception")
        assert exc.context["note"] == ("task 0: start failed: no-such-command-here: "
                                       "No such file or directory")


def test_a_job_in_a_missing_cwd_fails_alone(inst, tmp_path):
    with Flux(inst.uri) as h:
        js = spec(["true"])
        js.cwd = str(tmp_path / "gone")
        jobid = submit(h, js)
        exc = wait_event(h, jobid, "exception")
        assert exc.context["note"] == f"task 0: start failed: cwd {tmp_path / 'gone'}: No such file or directory"
        ok = submit(h, spec(["pwd"]))  # the spawner went back to where this one runs
        assert result(h, ok)["result"] == "COMPLETED"
        assert stdout(h, ok).strip() == os.getcwd()


def test_cancel_reaches_the_task_through_the_spawner(inst):
    with Flux(inst.uri) as h:
        jobid = submit(h, spec(["sleep", "30"]))
        wait_event(h, jobid, "start")
        h.rpc("job-manager.kill", {"id": int(jobid), "signum": signal.SIGTERM}).get(timeout=5)
        info = result(h, jobid)
        # as flux's shell: a task killed by signal N makes it exit 128+N
        assert info["waitstatus"] == (128 + signal.SIGTERM) << 8, info
        assert info["returncode"] == 128 + signal.SIGTERM


def test_a_killed_spawner_fails_its_running_job_and_the_next_job_runs(inst):
    with Flux(inst.uri) as h:
        jobid = submit(h, spec(["sleep", "30"]))
        wait_event(h, jobid, "start")
        (pid,) = my_spawners()
        os.kill(pid, signal.SIGKILL)
        info = result(h, jobid)  # no waiting forever on a task nobody watches
        assert info["result"] != "COMPLETED"
        wait_for(lambda: pid not in my_spawners(), 5, "the old spawner reaped")
        nxt = submit(h, spec(["echo", "again"]))
        assert result(h, nxt)["result"] == "COMPLETED"
        assert stdout(h, nxt).strip() == "again"


def test_stopping_the_instance_ends_its_spawner_and_running_tasks(tmp_path):
    marker = tmp_path / "ran"
    others = set(my_spawners())  # the module's instance's
    i = Instance(test_size=1).start()
    with Flux(i.uri) as h:
        jobid = submit(h, spec(["sh", "-c", f"echo $$ > {marker}; exec sleep 60"]))
        wait_event(h, jobid, "start")
        wait_for(lambda: marker.exists() and marker.read_text().strip(), 5, "the task's pid")
        task = int(marker.read_text())
        mine = set(my_spawners()) - others
        assert len(mine) == 1
    i.stop()
    assert not alive(task)
    assert not [p for p in mine if alive(p)]


def test_popen_path_when_the_spawner_is_off(inst, monkeypatch):
    """FLUXNB_SPAWNER=0 (module flag) starts tasks from the broker as before."""
    monkeypatch.setattr(process, "SPAWNER", False)
    with Flux(inst.uri) as h:
        jobid = submit(h, spec(["sh", "-c", "echo $PPID"]))
        assert result(h, jobid)["result"] == "COMPLETED"
        assert int(stdout(h, jobid)) == os.getpid()


def test_spawner_frames_unit():
    """Output of both streams arrives before the exit status, in order, for many tasks
    started in one pass of the loop; a task's wait status is the process's."""
    async def main():
        loop = asyncio.get_running_loop()
        got: dict[int, list] = {}
        tasks = []
        for k in range(20):
            sink = (lambda k: lambda stream, data: got.setdefault(k, []).append((stream, data)))(k)
            tasks.append(process.start_task(loop, [sys.executable, "-c",
                                                   f"import sys; print({k}); print('e{k}', file=sys.stderr);"
                                                   f"sys.exit({k % 3})"],
                                            dict(os.environ), None, sink, mark="unit-test"))
        await asyncio.gather(*(t.started for t in tasks))
        statuses = await asyncio.gather(*(t.done for t in tasks))
        process.close_spawner(loop)
        return got, statuses, tasks
    before = set(my_spawners())
    got, statuses, tasks = asyncio.run(main())
    assert [os.waitstatus_to_exitcode(s) for s in statuses] == [k % 3 for k in range(20)]
    assert [t.returncode for t in tasks] == [k % 3 for k in range(20)]
    for k in range(20):
        streams = {}
        for stream, data in got[k]:
            streams[stream] = streams.get(stream, b"") + data
        assert streams == {"stdout": f"{k}\n".encode(), "stderr": f"e{k}\n".encode()}
    assert set(my_spawners()) <= before  # close_spawner waited for it to exit


def test_a_task_that_ends_during_a_burst_of_spawns_is_told_before_the_burst_ends():
    """The spawner tells a task's exit while it is still starting the rest of a burst
    (each spawn holds it ~0.5 ms until the child has exec'd): the scheduler frees a
    job's cores only once its exit is told, so the first jobs of a burst of eight
    held their cores until the eighth had started."""
    async def main():
        loop = asyncio.get_running_loop()
        order: list[tuple[str, int]] = []
        tasks = []
        env = {"PATH": os.environ.get("PATH", os.defpath)}
        for k in range(60):  # one pass of the loop: one burst of frames
            t = process.start_task(loop, ["true"], env, None, lambda s, d: None, mark="unit-test")
            t.started.add_done_callback(lambda f, k=k: order.append(("started", k)))
            t.done.add_done_callback(lambda f, k=k: order.append(("exit", k)))
            tasks.append(t)
        await asyncio.gather(*(t.done for t in tasks))
        process.close_spawner(loop)
        return order
    order = asyncio.run(main())
    assert sorted(order) == sorted([("started", k) for k in range(60)] + [("exit", k) for k in range(60)])
    assert order.index(("exit", 0)) < order.index(("started", 59))
