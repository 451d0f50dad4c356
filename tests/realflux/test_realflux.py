"""fluxnb's notebook face on a real flux-core instance (``flux start --test-size=4``).

Needs flux-core built under ``$FLUX_PREFIX`` (default /opt/flux): ``scripts/test-setup.sh``
runs ``../shared/vendor/build-flux.sh`` for that. A missing build fails these tests
(it is not a reason to skip them).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, wait_for

PREFIX = os.environ.get("FLUX_PREFIX") or "/opt/flux"
FLUX = os.path.join(PREFIX, "bin", "flux")
SETUP_HINT = "build flux-core with scripts/test-setup.sh (it runs ../shared/vendor/build-flux.sh)"


def require_flux() -> None:
    if not os.access(FLUX, os.X_OK):
        pytest.fail(f"no real Flux at {FLUX}: {SETUP_HINT}")


class RealInstance:
    """``flux start --test-size=N`` in the background; its initial program waits for ``stop()``."""

    def __init__(self, size: int = 4):
        require_flux()
        self.dir = tempfile.mkdtemp(prefix="fluxnb-realflux-test-")
        self.urifile = os.path.join(self.dir, "uri")
        self.stopfile = os.path.join(self.dir, "stop")
        script = (f'echo "$FLUX_URI" > {self.urifile}.tmp && mv {self.urifile}.tmp {self.urifile}; '
                  f'while [ ! -e {self.stopfile} ]; do sleep 0.2; done')
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLUX_")}
        self.proc = subprocess.Popen([FLUX, "start", f"--test-size={size}", "sh", "-c", script],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while not os.path.exists(self.urifile):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"flux start --test-size={size} did not come up")
            time.sleep(0.05)
        self.uri = Path(self.urifile).read_text().strip()

    def flux(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        env = dict(os.environ, FLUX_URI=self.uri)
        return subprocess.run([FLUX, *args], capture_output=True, text=True, env=env, timeout=timeout)

    def stop(self, timeout: float = 30) -> None:
        Path(self.stopfile).touch()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.kill()  # what a clean stop leaves (nothing, normally), and the directory

    def kill(self) -> None:
        """SIGKILL the instance: its brokers and, in process groups of their own, its
        initial program (a flux-core broker killed so cannot end that itself)."""
        from fluxnb.runtime.job.process import kill_session
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(10)
        kill_session(self.proc.pid)  # start_new_session: the session is the instance
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def real():
    inst = RealInstance(4)
    yield inst
    inst.stop()


@pytest.fixture(scope="module", autouse=True)
def _release_flux_core_bindings():
    """What this module's tests imported of flux-core's package (RealFlux, the widgets)
    leaves the test process with them: later modules' `import flux` is fluxnb's."""
    yield
    from fluxnb.realflux import engine
    engine.release_bindings()


@pytest.fixture
def shell(real, monkeypatch):
    """An IPython shell with ``%load_ext fluxnb`` and its kernel's FLUX_URI at the real instance."""
    from IPython import get_ipython
    from IPython.testing.globalipapp import start_ipython
    monkeypatch.setenv("FLUX_URI", real.uri)
    ip = start_ipython() or get_ipython()  # one shell per process, shared by test modules
    # the shell is shared by the test modules of a run: load fluxnb afresh, as a new
    # kernel does, so that it looks for the real instance now
    if "fluxnb" in ip.extension_manager.loaded:
        ip.run_line_magic("unload_ext", "fluxnb")
    # flux-core's own package was imported for the real engine: later modules of the run
    # import flux afresh (fluxnb's inside a fluxnb instance)
    for name in [n for n in sys.modules if n == "flux" or n.startswith("flux.")]:
        del sys.modules[name]
    ip.run_line_magic("load_ext", "fluxnb")
    yield ip
    magics = ip.magics_manager.registry["FluxMagics"]
    if getattr(magics, "real", None) is not None:
        from fluxnb.magics.connect import detach
        detach(magics)
    ip.run_line_magic("unload_ext", "fluxnb")


# -- engine detection --------------------------------------------------------------------
def test_probe_tells_flux_core_from_fluxnb_and_from_nothing(real, instance, tmp_path):
    from fluxnb.realflux import is_real, probe
    assert probe(real.uri) == "flux-core"
    assert probe(instance.uri) == "fluxnb"
    assert probe(f"local://{tmp_path}/local") == "none"
    assert is_real(real.uri) and not is_real(instance.uri)


def test_fluxnb_client_on_a_real_flux_says_so_within_2s(real):
    import fluxnb
    t = time.monotonic()
    with pytest.raises(fluxnb.FluxError) as exc:
        fluxnb.Flux(real.uri).attr_get("size")
    assert time.monotonic() - t < 2.0
    assert exc.value.errno == errno.EPROTO
    assert "real Flux (flux-core)" in str(exc.value) and FLUX in str(exc.value)


def test_fluxnb_cli_on_a_real_flux_exits_with_one_line(real):
    env = dict(os.environ, FLUX_URI=real.uri, PYTHONPATH=str(ROOT))
    t = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "fluxnb.cli.main", "jobs", "-a"], capture_output=True,
                          text=True, env=env, timeout=30)
    took = time.monotonic() - t
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "is a real Flux (flux-core)" in lines[0], proc.stderr
    assert took < 10, took   # python start-up included; the wait itself is 0.5 s


# -- the magics ---------------------------------------------------------------------------
def test_load_ext_inside_a_real_flux_uses_it(shell, real):
    out = shell.run_line_magic("flux", "status")
    assert out.returncode == 0
    version = real.flux("version").stdout.split()[1]     # "commands:    0.88.0-59"
    assert out.stdout.startswith(f"engine: flux-core {version} at {real.uri}\n")
    assert "size 4, online ranks 0-3" in out.stdout


def test_connect_to_no_instance_says_so_in_one_line_within_5s(shell, tmp_path):
    import socket
    stale = tmp_path / "local"                 # a socket file nobody listens on any more
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(stale))
    s.close()
    for uri in (f"local://{tmp_path}/nothing-here", f"local://{stale}"):
        t = time.monotonic()
        out = shell.run_line_magic("flux", f"connect {uri}")
        assert time.monotonic() - t < 5
        assert out.returncode == 1
        assert out.stderr == f"%flux connect: no Flux instance at {uri} (nothing listens there)\n"


def test_connect_by_uri_and_jobid(shell, real):
    magics = shell.magics_manager.registry["FluxMagics"]
    out = shell.run_line_magic("flux", f"connect {real.uri}")
    assert out.stdout == f"connected to flux-core {magics.real.version} at {real.uri} (size 4)\n"
    assert os.environ["FLUX_URI"] == real.uri
    assert os.environ["PATH"].split(":")[0] == os.path.join(PREFIX, "bin")
    jobid = real.flux("batch", "-N1", "--output=/dev/null", "--wrap", "sleep", "30").stdout.strip()
    try:
        wait_for(lambda: real.flux("jobs", "-no", "{user.uri}", jobid).stdout.strip(), 30,
                 "the batch job's instance uri")
        out = shell.run_line_magic("flux", f"connect --jobid {jobid}")
        assert out.returncode == 0, out.stderr
        assert "(size 1)" in out.stdout and magics.real.uri != real.uri
        assert shell.run_line_magic("flux", "getattr jobid").stdout.strip() == jobid
    finally:
        real.flux("cancel", jobid)
        real.flux("job", "wait-event", "-t", "30", jobid, "clean")
        shell.run_line_magic("flux", f"connect {real.uri}")


def test_run_streams_both_lines_and_jobs_is_a_table(shell, capsys):
    out = shell.run_line_magic("flux", "run -n2 --label-io hostname")
    assert out.returncode == 0
    shown = capsys.readouterr().out
    host = os.uname().nodename
    assert sorted(shown.splitlines()) == [f"0: {host}", f"1: {host}"]   # streamed, not returned
    assert sorted(out.stdout.splitlines()) == [f"0: {host}", f"1: {host}"]
    table = shell.run_line_magic("flux", "jobs -a")
    assert table.headers[:4] == ["JOBID", "USER", "NAME", "ST"]
    row = next(r for r in table.rows if r[2] == "hostname")
    assert row[3] == "CD" and row[4] == "2"
    assert "<table" in table._repr_html_() and "hostname" in table._repr_html_()
    res = shell.run_line_magic("flux", "resource list")
    assert res.headers[0] == "STATE" and res.rows[0][:3] == ["free", "4", "8"]


def test_cell_submit_returns_a_job_handle(shell, real):
    from fluxnb.magics.results import JobHandle
    job = shell.run_cell_magic("flux", "submit -n1 --job-name=cellrun", "echo hi from a cell\n")
    assert isinstance(job, JobHandle)
    rec = job.wait()
    assert rec["result"] == "COMPLETED" and rec["name"] == "cellrun"
    assert job.output() == "hi from a cell\n"
    assert real.flux("jobs", "-no", "{status}", str(job)).stdout.strip() == "COMPLETED"


def test_a_submitted_cell_script_lives_in_the_owners_cache_not_in_tmp(shell, real, tmp_path,
                                                                      monkeypatch):
    # a submitted job reads its script when it starts, on whatever node: the script goes
    # under the home directory (shared on a cluster, unlike a node's /tmp, where these
    # files piled up), the owner's alone, one file per cell text however often it is run
    import glob
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    in_tmp = set(glob.glob(os.path.join(tempfile.gettempdir(), "fluxnb-cell-*")))
    jobs = [shell.run_cell_magic("flux", "submit -n1", "echo same cell\n") for _ in range(2)]
    for job in jobs:
        assert job.wait()["result"] == "COMPLETED" and job.output() == "same cell\n"
    cells = tmp_path / "cache" / "fluxnb" / "cells"
    scripts = list(cells.iterdir())
    assert len(scripts) == 1 and scripts[0].read_text() == "#!/bin/sh\necho same cell\n"
    assert stat.S_IMODE(cells.stat().st_mode) == 0o700
    assert stat.S_IMODE(scripts[0].stat().st_mode) == 0o700
    names = {real.flux("jobs", "-no", "{name}", str(j)).stdout.strip() for j in jobs}
    assert names == {scripts[0].name}
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "fluxnb-cell-*"))) == in_tmp


def test_after_disconnect_import_flux_is_fluxnbs_again_on_a_hosted_instance(shell, real):
    # driving the real Flux imported flux-core's bindings into the kernel; once detached,
    # a fluxnb instance started in the same kernel must get fluxnb's package from
    # `import flux`, not flux-core's (which cannot reach fluxnb's brokers: "Unknown
    # error 255"), and sys.path loses the installation's directory it gained
    import fluxnb.compat
    from fluxnb.realflux import engine
    assert sys.modules["flux"].__file__.startswith(engine.prefix())  # the real engine's
    added = engine.bindings_path()
    shell.run_line_magic("flux", "disconnect")
    assert added not in sys.path
    out = shell.run_line_magic("flux", "start --test-size=2")
    try:
        assert out.returncode == 0, out.stderr
        assert shell.run_cell("import flux\n_h = flux.Flux()\n_size = _h.attr_get('size')\n"
                              "_h.close()").success
        assert shell.user_ns["flux"].__file__.startswith(fluxnb.compat.PATH)
        assert shell.user_ns["_size"] == "2"
    finally:
        shell.run_line_magic("flux", "stop")


def test_stop_does_not_stop_a_real_instance(shell, real):
    out = shell.run_line_magic("flux", "stop")
    assert out.returncode == 1 and "%flux disconnect" in out.stderr
    assert real.flux("getattr", "size").stdout.strip() == "4"


# -- widgets, from real events -----------------------------------------------------------------
def test_widgets_follow_a_real_job_to_cd_and_cores_back_to_free(real):
    from fluxnb.job import JobID
    from fluxnb.realflux import RealFlux
    from fluxnb.widgets import JobBrowser, ResourceBrowser, SubmitProgress
    h = RealFlux(real.uri)
    jb, rb = JobBrowser(h), ResourceBrowser(RealFlux(real.uri))
    try:
        assert rb.counts["core"] == {"free": 8, "allocated": 0, "down": 0}
        jobid = JobID(real.flux("submit", "-n4", "--job-name=widgets", "sleep", "1.5").stdout.strip())
        sp = SubmitProgress([jobid], handle=RealFlux(real.uri))
        wait_for(lambda: jb.status(jobid) == "R" and rb.counts["core"]["allocated"] == 4, 15,
                 "the job running with 4 cores allocated")
        wait_for(lambda: jb.status(jobid) == "CD", 15, "the job row reaching CD")
        wait_for(lambda: rb.counts["core"] == {"free": 8, "allocated": 0, "down": 0}, 10,
                 "the cores free again")
        wait_for(lambda: "1/1 complete" in sp.to_text(), 10, "SubmitProgress complete")
        # driven by the job manager's journal: several calls, no error in the feed
        assert jb.subscription.calls >= 2 and jb.subscription.error is None
        assert rb.subscription.error is None
        row = next(r for r in jb.rows() if r[0] == jobid.f58)
        assert row[1:5] == ["widgets", "CD", "4", "2"]
        jb.select(jobid)
        assert "submit" in jb.details["eventlog"] and "clean" in jb.details["eventlog"]
        assert '"R_lite"' in jb.details["R"]
    finally:
        for w in (jb, rb):
            w.close()
        sp.close()


def test_jobbrowser_cancel_on_a_real_instance(real):
    from fluxnb.job import JobID
    from fluxnb.realflux import RealFlux
    from fluxnb.widgets import JobBrowser
    jb = JobBrowser(RealFlux(real.uri))
    try:
        jobid = JobID(real.flux("submit", "sleep", "60").stdout.strip())
        wait_for(lambda: jb.status(jobid) == "R", 15, "the job running")
        jb.select(jobid)
        assert jb.cancel_selected()
        wait_for(lambda: jb.status(jobid) == "CA", 15, "the canceled job shown CA")
    finally:
        jb.close()


def test_widget_shows_disconnected_when_the_instance_goes_away():
    from fluxnb.realflux import RealFlux
    from fluxnb.widgets import JobBrowser
    other = RealInstance(1)
    try:
        jb = JobBrowser(RealFlux(other.uri))
        wait_for(lambda: jb.subscription.calls >= 1, 10, "the first feed call")
        other.kill()
        wait_for(lambda: jb.disconnected, 10, "the widget noticing its instance is gone")
        assert "disconnected" in jb.children[0].value
        assert jb._repr_mimebundle_()["text/plain"].startswith("disconnected\n")
        from fluxnb import FluxError
        t = time.monotonic()
        with pytest.raises(FluxError):     # the kernel's own handle errors, it does not hang
            jb.h.rpc("job-list.list", {"max_entries": 1, "attrs": []}, nodeid=0).get(timeout=5)
        assert time.monotonic() - t < 5
        jb.select(jb.jobs and next(iter(jb.jobs)) or 1)
        assert jb.details["eventlog"].startswith("(no eventlog:")
    finally:
        other.kill()


# -- tracing and the executor -----------------------------------------------------------------
def test_trace_collected_from_a_real_instance(real):
    from fluxnb.job import JobID
    from fluxnb.realflux import RealFlux
    from fluxnb.trace import export
    from fluxnb.trace.regions import critical_path_of
    from fluxnb.widgets import TraceTimeline
    jobid = JobID(real.flux("submit", "--wait", "--job-name=traced", "-n2", "true").stdout.strip())
    with RealFlux(real.uri) as h:
        trace = export(h, [jobid])
    evs = [e for e in trace["traceEvents"] if e.get("args", {}).get("jobid") == jobid.f58]
    names = {e["name"] for e in evs if e.get("cat") == "job.event"}
    assert {"submit", "alloc", "start", "finish", "release", "free", "clean"} <= names
    regions = [e["name"] for e in evs if e.get("cat") == "job" and e["ph"] == "b"]
    assert regions[0] == f"traced {jobid.f58}"
    assert {"queueing", "scheduling", "run", "completion"} <= set(regions)
    ranks = [e for e in evs if e.get("cat") == "job.rank"]
    assert len(ranks) == 1 and ranks[0]["dur"] > 0     # 2 tasks on one node of 2 cores
    path = critical_path_of(trace)
    assert path.rows and path.rows[-1][0] == jobid.f58
    fig = TraceTimeline(trace)
    assert len(fig.data) >= 1


def test_executor_is_flux_cores_own(real):
    from fluxnb.realflux import bindings, executor
    flux = bindings()
    from flux.job import FluxExecutor, JobspecV1
    with executor(real.uri) as ex:
        assert type(ex) is FluxExecutor
        fut = ex.submit(JobspecV1.from_command(["true"]))
        assert fut.result(timeout=30) == 0
    assert flux.__file__.startswith(PREFIX)


# -- a Jupyter kernel started inside flux start -------------------------------------------------
def test_kernel_inside_flux_start_finds_its_instance(tmp_path):
    """``flux start jupyter ...``: the kernel inherits FLUX_URI and %load_ext uses it."""
    require_flux()
    script = tmp_path / "kernel.py"
    script.write_text(
        "import os, jupyter_client\n"
        "km, kc = jupyter_client.manager.start_new_kernel(kernel_name='python3',\n"
        "    env=dict(os.environ, PYTHONPATH=%r))\n"
        "out = []\n"
        "def hook(msg):\n"
        "    c = msg['content']\n"
        "    out.append(c.get('text', '') + str(c.get('data', {}).get('text/plain', '')))\n"
        "for code in ['%%load_ext fluxnb', '%%flux status', '%%flux run -n2 --label-io true',\n"
        "             '%%flux jobs -a']:\n"
        "    kc.execute_interactive(code, output_hook=hook, timeout=60)\n"
        "kc.stop_channels(); km.shutdown_kernel(now=True)\n"
        "print('\\n'.join(out))\n" % str(ROOT))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUX_")}
    proc = subprocess.run([FLUX, "start", "--test-size=4", sys.executable, str(script)],
                          capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "engine: flux-core" in proc.stdout and "size 4, online ranks 0-3" in proc.stdout
    assert "JOBID" in proc.stdout and " CD " in proc.stdout


# -- the tutorial, under nbval, on the real engine -----------------------------------------------
def test_tutorial_09_runs_on_a_real_flux_under_nbval():
    """``flux start --test-size=4 pytest --nbval tutorials/09-real-flux.ipynb``: the stored
    outputs hold on flux-core too, and the jobs it ran are in the real instance afterwards."""
    require_flux()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUX_")}
    env["PYTHONPATH"] = str(ROOT)
    script = (f"{sys.executable} -m pytest -q -p no:cacheprovider tutorials/09-real-flux.ipynb "
              f"&& {FLUX} jobs -a -no '{{name}}:{{status}}'")
    proc = subprocess.run([FLUX, "start", "--test-size=4", "sh", "-c", script], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout
    ran = set(proc.stdout.split())
    assert {"cell:COMPLETED", "echo:COMPLETED"} <= ran, proc.stdout[-1000:]
