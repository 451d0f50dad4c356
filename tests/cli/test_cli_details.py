"""Details real scripts depend on, each against flux-core 0.88's behaviour:
`hostname` in a job names R's node, R's expiration follows -t, `flux module list`'s
columns, `flux lsattr -v`, `flux queue list`'s inf, `flux job killall`'s wording."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import fluxnb_cmd


def flux(env, *args, cwd=None, timeout=90):
    """`flux ARGS` through the instance's shim, as a script inside it runs it."""
    return subprocess.run(["flux", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def nodelist(env, jobid):
    R = json.loads(flux(env, "job", "info", jobid, "R").stdout)
    from fluxnb.runtime.util.hostlist import Hostlist
    return list(Hostlist(",".join(R["execution"]["nodelist"])))


def test_hostname_in_a_job_prints_the_nodes_of_R(env):
    r = flux(env, "run", "-N2", "--label-io", "hostname")
    assert r.returncode == 0, r.stderr
    jobid = flux(env, "job", "last").stdout.strip()
    lines = sorted(r.stdout.splitlines())
    nodes = nodelist(env, jobid)
    assert len(nodes) == 2
    assert lines == [f"0: {nodes[0]}", f"1: {nodes[1]}"]


def test_hostname_options_and_HOSTNAME(env):
    r = flux(env, "run", "-N1", "sh", "-c", 'echo "$HOSTNAME $(hostname -s) $(hostname -f)"')
    jobid = flux(env, "job", "last").stdout.strip()
    (node,) = nodelist(env, jobid)
    assert r.stdout.split() == [node, node, node]
    # what the shim does not answer goes to the system's hostname
    sys_r = subprocess.run(["hostname", "-V"], capture_output=True, text=True)
    r = flux(env, "run", "hostname", "-V")
    assert (r.returncode, r.stdout) == (sys_r.returncode, sys_r.stdout)


def test_flux_exec_hostname_names_the_rank(env):
    r = flux(env, "exec", "-r", "2", "hostname")
    hosts = fluxnb_cmd("getattr", "hostlist", env=env).stdout.strip()
    from fluxnb.runtime.util.hostlist import Hostlist
    assert r.stdout == f"{list(Hostlist(hosts))[2]}\n"


def test_hostname_inside_batch_follows_the_allocation(env, tmp_path):
    script = tmp_path / "b.sh"
    script.write_text("#!/bin/sh\nhostname\nflux run -N2 --label-io hostname | sort\n")
    script.chmod(0o755)
    jobid = flux(env, "batch", "-N2", "--output=out.txt", str(script), cwd=tmp_path).stdout.strip()
    assert flux(env, "job", "wait-event", "-t", "60", jobid, "clean").returncode == 0
    nodes = nodelist(env, jobid)
    assert (tmp_path / "out.txt").read_text().splitlines() == \
        [nodes[0], f"0: {nodes[0]}", f"1: {nodes[1]}"]


def test_R_expiration_is_starttime_plus_time_limit(env):
    jobid = flux(env, "submit", "-t", "5m", "sleep", "60").stdout.strip()
    try:
        assert flux(env, "job", "wait-event", "-t", "30", jobid, "alloc").returncode == 0
        R = json.loads(flux(env, "job", "info", jobid, "R").stdout)["execution"]
        assert R["expiration"] == pytest.approx(R["starttime"] + 300, abs=1e-3)
    finally:
        flux(env, "cancel", jobid)
    jobid = flux(env, "submit", "sleep", "0").stdout.strip()   # no limit: no expiration
    flux(env, "job", "wait-event", "-t", "30", jobid, "clean")
    assert json.loads(flux(env, "job", "info", jobid, "R").stdout)["execution"]["expiration"] == 0


def test_module_list_columns_as_flux_core(env):
    lines = flux(env, "module", "list").stdout.splitlines()
    assert lines[0] == "Module                    Idle  S Sendq Recvq Service"
    kvs = next(line for line in lines if line.startswith("kvs "))
    cols = kvs.split()
    assert cols[0] == "kvs" and cols[2] == "R" and cols[3:5] == ["0", "0"]
    assert "kvs" not in cols[5].split(",")          # the module's own name is not listed
    assert len(kvs) - len(kvs.lstrip()) == 0 and kvs[26:30].strip().isdigit()
    long = flux(env, "module", "list", "-l").stdout.splitlines()
    assert long[0] == "Module                    Idle  S Sendq Recvq Service  Path"
    kvs_l = next(line for line in long if line.startswith("kvs "))
    assert kvs_l[46:54] == "kvs-wat+"            # services cut to 8 columns with '+'
    assert kvs_l[55:].startswith("fluxnb.")


def test_format_lsmod_idle_and_state():
    from fluxnb.cli.broker import format_lsmod
    out = format_lsmod([{"name": "a" * 30, "idle": 100, "status": 2, "services": ["a" * 30]},
                        {"name": "b", "idle": 99, "status": 0, "services": ["x", "y"],
                         "sendqueue": 3, "recvqueue": 12}])
    assert out.splitlines()[1:] == [f"{'a' * 25} idle  R     0     0 ",
                                    f"{'b':<25}   99  I     3    12 x,y"]


def test_lsattr_values_as_flux(env):
    names = flux(env, "lsattr").stdout.splitlines()
    assert names == sorted(names) and "rank" in names
    lines = flux(env, "lsattr", "-v").stdout.splitlines()
    rank = next(line for line in lines if line.startswith("rank "))
    assert rank == f"{'rank':<40}0"
    assert len(lines) == len(names)


def test_queue_list_shows_inf_for_no_limit(env):
    out = flux(env, "queue", "list").stdout.splitlines()
    assert out[0] == " EN ST TDEFAULT   TLIMIT     NNODES     NCORES      NGPUS"
    cols = out[1].split()
    assert cols[-5:-3] == ["inf", "inf"]
    assert flux(env, "queue", "list", "-o", "{limits.max.nnodes} {limits.range.nnodes}",
                "-n").stdout == "inf 0-inf\n"


def test_killall_needs_force_and_says_so(env):
    ids = [flux(env, "submit", "sleep", "60").stdout.strip() for _ in range(2)]
    for jobid in ids:
        flux(env, "job", "wait-event", "-t", "30", jobid, "start")
    r = flux(env, "job", "killall")
    assert (r.returncode, r.stderr) == (0, "flux-job: Command matched 2 jobs (-f to confirm)\n")
    r = flux(env, "job", "killall", "-f")
    assert r.stderr == "flux-job: Terminated 2 jobs (0 errors)\n"     # strsignal(SIGTERM)
    for jobid in ids:
        flux(env, "job", "wait-event", "-t", "30", jobid, "clean")
    assert flux(env, "job", "killall").stderr == "flux-job: Command matched 0 jobs\n"
    r = flux(env, "job", "killall", "-s", "NOSUCH", "-f")
    assert (r.returncode, r.stderr) == (1, "flux-job: killall: Invalid signal NOSUCH\n")


def test_killall_names_the_signal_and_does_not_pluralize(env):
    jobid = flux(env, "submit", "sleep", "60").stdout.strip()
    flux(env, "job", "wait-event", "-t", "30", jobid, "start")
    r = flux(env, "job", "killall", "-s", "HUP", "-f")
    assert r.stderr == "flux-job: Hangup 1 jobs (0 errors)\n"
    flux(env, "job", "wait-event", "-t", "30", jobid, "clean")
