"""`fluxnb start`: the initial program, exit codes, the flux shim, and cleaning up."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from tests.conftest import alive, fluxnb_cmd


def test_getattr_size_in_a_test_instance():
    r = fluxnb_cmd("start", "--test-size=4", "flux", "getattr", "size")
    assert (r.returncode, r.stdout) == (0, "4\n"), r.stderr


def test_exec_on_one_rank_runs_with_that_ranks_environment():
    r = fluxnb_cmd("start", "--test-size=4", "flux", "exec", "-r", "2", "flux", "getattr", "rank")
    assert (r.returncode, r.stdout) == (0, "2\n"), r.stderr


def test_exec_on_all_ranks_prints_one_line_per_rank():
    r = fluxnb_cmd("start", "--test-size=4", "flux", "exec", "flux", "getattr", "rank")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "1", "2", "3"]


def test_exec_exclude_and_label():
    r = fluxnb_cmd("start", "--test-size=4", "flux", "exec", "-x", "0,2", "--label-io",
                   "flux", "getattr", "rank")
    assert r.stdout.splitlines() == ["1: 1", "3: 3"]


def test_exit_status_of_initial_program_is_returned():
    r = fluxnb_cmd("start", "--test-size=2", "sh", "-c", "exit 7")
    assert r.returncode == 7


def test_missing_initial_program_is_127_with_a_message():
    r = fluxnb_cmd("start", "no-such-program-xyz")
    assert r.returncode == 127 and "no-such-program-xyz" in r.stderr


def test_flux_mini_is_accepted():
    r = fluxnb_cmd("start", "flux", "mini", "getattr", "size")
    assert r.stdout == "1\n"


def test_no_stray_processes_sockets_or_directories(tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path))
    r = fluxnb_cmd("start", "--test-size=3", "sh", "-c",
                   "sleep 60 & echo $!; flux getattr rundir", env=env)
    pid, rundir = r.stdout.split()
    assert rundir.startswith(str(tmp_path))
    assert not os.path.exists(rundir)
    assert list(tmp_path.iterdir()) == []
    # what the initial program left running ended with the instance
    assert not alive(int(pid))


def test_rundir_is_private():
    r = fluxnb_cmd("start", "sh", "-c", "stat -c %a $(flux getattr rundir)")
    assert r.stdout.strip() == "700"


def test_flux_is_on_path_only_inside_an_instance():
    r = fluxnb_cmd("start", "sh", "-c", "command -v flux")
    inner = r.stdout.strip()
    assert inner.endswith("/bin/flux") and "fluxnb-" in inner
    outer = subprocess.run(["sh", "-c", "command -v flux || true"], capture_output=True, text=True)
    assert outer.stdout.strip() != inner


def test_without_command_serves_until_shutdown(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "fluxnb.cli.main", "start", "--test-size=2",
                             "-o", "user.marker=yes", "--test-hosts", "h[1-2]"],
                            env=dict(os.environ, TMPDIR=str(tmp_path)))
    try:
        deadline = time.time() + 20
        local = None
        while time.time() < deadline and local is None:
            for d in tmp_path.iterdir():
                if (d / "local").exists():
                    local = d / "local"
            time.sleep(0.05)
        assert local is not None
        env = dict(os.environ, FLUX_URI=f"local://{local}")
        assert fluxnb_cmd("getattr", "user.marker", env=env).stdout == "yes\n"
        assert fluxnb_cmd("getattr", "hostlist", env=env).stdout == "h[1-2]\n"
        assert fluxnb_cmd("shutdown", env=env).returncode == 0
        assert proc.wait(20) == 0
    finally:
        proc.kill()
    assert list(tmp_path.iterdir()) == []


def test_processes_mode_gives_the_same_answers():
    r = fluxnb_cmd("start", "--test-size=4", "--processes", "flux", "exec", "flux", "getattr", "rank")
    assert r.stdout.split() == ["0", "1", "2", "3"], r.stderr


@pytest.mark.parametrize("args,code,text", [
    (["start", "--test-size=0", "true"], 1, "--test-size must be >= 1"),
    (["start", "--bogus-option"], 2, "unrecognized arguments: --bogus-option"),
    (["start", "-o", "novalue", "true"], 1, "expected key=value"),
    (["start", "--test-size=2", "--test-hosts", "a[1-3]", "true"], 1, "3 hosts for 2 brokers"),
])
def test_start_bad_input(args, code, text):
    r = fluxnb_cmd(*args)
    assert r.returncode == code and text in r.stderr
