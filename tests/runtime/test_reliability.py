"""Nothing lost, nobody let in: the state directory, other users, and a SIGKILLed instance.

flux-core keeps its state directory the owner's alone, serves only the instance
owner on its local socket (another uid is refused unless multi-user support is
configured), and after a crash puts pending jobs back in the queue (``flux-restart``)
while running ones end with a ``restart`` exception.
"""

from __future__ import annotations

import errno
import json
import os
import pwd
import re
import signal
import stat
import subprocess
import sys
import time

import pytest

from fluxnb.runtime.kvs.content import ContentStore, StatedirError, prepare_statedir
from tests.conftest import fluxnb_cmd, wait_for

GUEST = "fluxnb-guest"


# -- the state directory ----------------------------------------------------------------
def test_statedir_and_files_are_private(tmp_path):
    sd = tmp_path / "state"
    with ContentStore(sd) as cs:
        cs.store(b"secret environment")
        cs.flush()
    assert stat.S_IMODE(sd.stat().st_mode) == 0o700
    for name in os.listdir(sd):
        assert stat.S_IMODE((sd / name).stat().st_mode) == 0o600, name


def test_loose_statedir_is_tightened_with_a_warning(tmp_path):
    sd = tmp_path / "state"
    sd.mkdir(mode=0o755)
    os.chmod(sd, 0o755)
    (sd / "content.sqlite").touch(mode=0o644)
    os.chmod(sd / "content.sqlite", 0o644)
    warning = prepare_statedir(sd)
    assert warning is not None and "0755" in warning and "0700" in warning
    assert stat.S_IMODE(sd.stat().st_mode) == 0o700
    assert prepare_statedir(sd) is None  # nothing to say the second time
    ContentStore(sd).close()
    assert stat.S_IMODE((sd / "content.sqlite").stat().st_mode) == 0o600


def test_cli_warns_once_about_a_loose_statedir(tmp_path):
    sd = tmp_path / "state"
    sd.mkdir()
    os.chmod(sd, 0o755)
    r = fluxnb_cmd("start", "--statedir", str(sd), "true", timeout=60)
    assert r.returncode == 0, r.stderr
    warnings = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "now 0700" in warnings[0], r.stderr
    assert stat.S_IMODE(sd.stat().st_mode) == 0o700


def test_statedir_that_is_a_file_is_one_clear_error(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(StatedirError, match="exists and is not a directory"):
        prepare_statedir(f)
    r = fluxnb_cmd("start", "--statedir", str(f), "true", timeout=60)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "not a directory" in r.stderr, r.stderr


@pytest.mark.parametrize("name", ["content.lock", "content.sqlite"])
def test_planted_symlink_is_refused_and_its_target_untouched(tmp_path, name):
    sd = tmp_path / "state"
    sd.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.symlink(victim, sd / name)
    with pytest.raises(StatedirError, match="is a symlink: refusing to follow it"):
        ContentStore(sd)
    assert victim.read_text() == "precious\n"
    # the lock is released: once the link is gone the store opens
    os.unlink(sd / name)
    ContentStore(sd).close()


# -- another uid ---------------------------------------------------------------------------
def _guest():
    if os.getuid() != 0:
        pytest.fail("the other-uid tests need root (to setuid); run scripts/test-setup.sh as root")
    try:
        return pwd.getpwnam(GUEST)
    except KeyError:
        pytest.fail(f"no user {GUEST}: scripts/test-setup.sh creates it")


def _as_guest(uri: str, topic: str, payload: dict) -> list:
    """Send one RPC as the guest uid from a forked child; return [errno, message] or [0, payload]."""
    pw = _guest()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        out = [255, "child failed"]
        try:
            os.close(r)
            import fluxnb.runtime.client as client
            client._hosted.clear()  # the parent's instance is not this process's
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
            from fluxnb.runtime.message import FluxError
            try:
                with client.Flux(uri) as h:
                    out = [0, h.rpc(topic, payload).get(timeout=10)]
            except FluxError as exc:
                out = [exc.errno, exc.errstr]
            except TimeoutError as exc:
                out = [errno.ETIMEDOUT, str(exc)]
        except BaseException as exc:
            out = [255, repr(exc)]
        finally:
            os.write(w, json.dumps(out).encode())
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


@pytest.fixture(scope="module")
def proc_instance():
    """An instance whose brokers are processes (no broker thread in a process we fork)."""
    from fluxnb import Instance
    with Instance(test_size=1, processes=True) as inst:
        yield inst


def _submit_touch(marker) -> dict:
    from fluxnb.job import JobspecV1
    js = JobspecV1.from_command(["touch", str(marker)])
    return {"jobspec": json.loads(js.dumps()), "urgency": 16, "flags": 0}


def test_other_uid_cannot_enter_the_run_directory(proc_instance, tmp_path):
    assert stat.S_IMODE(os.stat(proc_instance.rundir).st_mode) == 0o700
    err, text = _as_guest(proc_instance.uri, "attr.get", {"name": "size"})
    assert err == errno.EPERM, text
    assert "permission denied" in text and "another user" in text


def test_other_uid_is_refused_by_the_broker_and_nothing_runs(proc_instance, tmp_path):
    from fluxnb import Flux
    _guest()
    marker = tmp_path / "ran"
    os.chmod(tmp_path, 0o777)
    rundir = proc_instance.rundir
    # open the run directory and the socket as a careless admin might: the broker's
    # own check (the peer's uid, from SO_PEERCRED) must still keep the guest out
    os.chmod(rundir, 0o755)
    os.chmod(os.path.join(rundir, "local"), 0o777)
    try:
        err, text = _as_guest(proc_instance.uri, "job-manager.submit", _submit_touch(marker))
        assert err == errno.EPERM, text
        assert re.search(r"permission denied: uid \d+ is not the instance owner", text), text
        err, text = _as_guest(proc_instance.uri, "attr.get", {"name": "size"})
        assert err == errno.EPERM, text
    finally:
        os.chmod(rundir, 0o700)
    time.sleep(0.3)
    assert not marker.exists()
    with Flux(proc_instance.uri) as h:
        jobs = h.rpc("job-list.list", {"max_entries": 0, "attrs": ["id"]}).get(timeout=10)["jobs"]
        assert jobs == []
        # the owner is still served, and the broker noted whom it refused
        assert h.rpc("attr.get", {"name": "size"}).get(timeout=10)["value"] == "1"


# -- SIGKILL and restart ----------------------------------------------------------------------
def _start_bg(statedir, *extra):
    """`fluxnb start --statedir` in its own session; return (proc, uri)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fluxnb.cli.main", "start", "-v", "--statedir", str(statedir),
         "--cores-per-node", "2", *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        m = re.search(r" at (local://\S+)", line)
        if m:
            return proc, m.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    pytest.fail(f"instance did not start: {proc.stderr.read()}")


def _flux(uri, *args, **kw):
    env = dict(os.environ, FLUX_URI=uri)
    return fluxnb_cmd(*args, env=env, **kw)


def _jobs(uri) -> dict:
    from fluxnb import Flux
    with Flux(uri) as h:
        r = h.rpc("job-list.list", {"max_entries": 0,
                                     "attrs": ["state", "urgency", "priority", "result"]}).get(timeout=10)
    return {j["id"]: j for j in r["jobs"]}


def _eventlog(uri, jobid) -> list[str]:
    r = _flux(uri, "job", "eventlog", str(jobid))
    assert r.returncode == 0, r.stderr
    return [ln.split()[1] for ln in r.stdout.splitlines()]


def test_sigkill_restart_requeues_pending_jobs_in_order(tmp_path):
    from fluxnb.runtime.job.jobid import id_parse
    sd = tmp_path / "state"
    pidfile = tmp_path / "pid"
    proc, uri = _start_bg(sd)
    sleeper = None
    try:
        def submit(*args):
            r = _flux(uri, "submit", "-n2", *args)
            assert r.returncode == 0, r.stderr
            return id_parse(r.stdout.strip())
        from fluxnb.runtime.job.jobid import JobID
        running = submit("sh", "-c", f"echo $$ > {pidfile}; exec sleep 300")
        wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="job to run")
        sleeper = int(pidfile.read_text())
        b = submit("sleep", "300")
        c = submit("sleep", "300")
        d = submit("--urgency=20", "sleep", "300")
        held = submit("--urgency=0", "true")
        after_ok = submit(f"--dependency=afterok:{JobID(running).f58}", "true")
        after_b = submit(f"--dependency=afterany:{JobID(b).f58}", "true")
        assert _flux(uri, "kvs", "put", "reliab.a=1", "reliab.b.c=two").returncode == 0
        states = _jobs(uri)
        assert states[running]["state"] == 16 and states[d]["state"] == 8  # RUN, SCHED
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    if sleeper:  # the killed instance's task (ending it is another matter)
        try:
            os.kill(sleeper, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc, uri = _start_bg(sd)
    try:
        # all that was committed before the kill is there
        r = _flux(uri, "kvs", "get", "reliab.a", "reliab.b.c")
        assert r.stdout.split() == ["1", "two"], r.stderr
        # the running job ended with a restart exception
        wait_for(lambda: _jobs(uri)[running]["state"] == 64, what="running job to end")
        assert _jobs(uri)[running]["result"] == 2  # FAILED
        assert "exception" in _eventlog(uri, running)
        r = _flux(uri, "job", "eventlog", str(running))
        assert "type=\"restart\"" in r.stdout or "type=restart" in r.stdout, r.stdout
        # the pending ones are queued again: the most urgent runs first, the held one waits
        wait_for(lambda: _jobs(uri)[d]["state"] == 16, what="the urgent job to run")
        jobs = _jobs(uri)
        assert [jobs[j]["state"] for j in (b, c, held)] == [8, 8, 8]
        assert [jobs[j]["urgency"] for j in (b, c, d, held)] == [16, 16, 20, 0]
        assert jobs[held]["priority"] == 0
        assert "flux-restart" in _eventlog(uri, b)
        # dependencies are checked again: one can no longer be met, one still waits
        wait_for(lambda: _jobs(uri)[after_ok]["state"] == 64, what="the afterok job to end")
        r = _flux(uri, "job", "eventlog", str(after_ok))
        assert "type=\"dependency\"" in r.stdout, r.stdout
        assert _jobs(uri)[after_b]["state"] == 2  # DEPEND
        assert _eventlog(uri, after_b).count("dependency-add") == 1
        # and in their order: b before c
        assert _flux(uri, "cancel", str(d)).returncode == 0
        wait_for(lambda: _jobs(uri)[b]["state"] == 16, what="the next job to run")
        assert _jobs(uri)[c]["state"] == 8
        _flux(uri, "cancel", "--all")
    finally:
        _flux(uri, "shutdown", timeout=30)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
