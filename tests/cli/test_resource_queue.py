"""`flux resource` and `flux queue` with flux-resource(1) and flux-queue(1)'s output."""

from __future__ import annotations

import os
import re

import pytest

from tests.conftest import fluxnb_cmd


def res(env, *args):
    return fluxnb_cmd("resource", *args, env=env)


def queue(env, *args):
    return fluxnb_cmd("queue", *args, env=env)


def test_resource_list_columns_and_states(env):
    r = res(env, "list")
    lines = r.stdout.splitlines()
    assert lines[0] == "     STATE NNODES   NCORES    NGPUS NODELIST"
    assert [ln.split()[0] for ln in lines[1:]] == ["free", "allocated", "down"]
    nnodes = sum(int(ln.split()[1]) for ln in lines[1:])
    assert nnodes == 4


def test_resource_list_all_and_format(env):
    r = res(env, "list", "-s", "all", "-n")
    fields = r.stdout.split()
    assert fields[0] == "all" and fields[1] == "4" and fields[-1] == "node[0-3]"
    assert res(env, "list", "-s", "all", "-n", "-o", "{nnodes}").stdout == "4\n"
    r = res(env, "list", "-s", "bogus")
    assert r.returncode == 1 and "bogus" in r.stderr


def test_resource_info_one_line(env):
    r = res(env, "info")
    assert re.fullmatch(r"4 Nodes, \d+ Cores, 0 GPUs\n", r.stdout)


def test_resource_status(env):
    r = res(env, "status")
    lines = r.stdout.splitlines()
    assert lines[0] == "     STATE UP NNODES NODELIST"
    assert lines[1].split() == ["avail", "✔", "4", "node[0-3]"]


def test_drain_undrain(env):
    assert res(env, "drain", "3", "bad", "disk").returncode == 0
    r = res(env, "drain")
    head, line = r.stdout.splitlines()
    assert head.split() == ["TIME", "STATE", "REASON", "NODELIST"]
    assert "drained" in line and "bad disk" in line and line.endswith("node3")
    status = res(env, "status").stdout.splitlines()
    assert status[1].split() == ["avail", "✔", "3", "node[0-2]"]
    assert status[2].split() == ["drained", "✔", "1", "node3"]
    long = res(env, "status", "-o", "long").stdout.splitlines()
    assert long[0].split() == ["STATE", "UP", "NNODES", "REASON", "NODELIST"]
    assert res(env, "undrain", "node3").returncode == 0
    assert res(env, "drain", "-n").stdout == ""
    r = res(env, "undrain", "2")
    assert r.returncode == 1


def _drain_row(env, rank):
    """(timestamp, reason) of ``rank`` in ``flux resource status``'s drain data."""
    r = res(env, "drain", "-n", "-o", "{ranks} {timestamp!d:%s.%f} {reason}")
    for line in r.stdout.splitlines():
        ranks, stamp, *reason = line.split(" ")
        if ranks == str(rank):
            return float(stamp), " ".join(reason)
    return None


def test_drain_already_drained_fails_unless_force_or_update(env):
    """flux-resource(1): drain fails on targets already drained; -f overwrites the
    reason, -ff the timestamp too; -u leaves both; undrain -f forgives undrained."""
    assert res(env, "drain", "1", "first").returncode == 0
    first = _drain_row(env, 1)
    assert first is not None and first[1] == "first"
    r = res(env, "drain", "1-2", "again")
    assert r.returncode == 1 and "1 already drained" in r.stderr
    assert _drain_row(env, 2) is None, "a refused drain drains nothing"
    assert res(env, "drain", "-u", "1-2", "update").returncode == 0
    assert _drain_row(env, 1) == first
    assert _drain_row(env, 2)[1] == "update"
    assert res(env, "drain", "-f", "1", "forced").returncode == 0
    assert _drain_row(env, 1) == (first[0], "forced")
    assert res(env, "drain", "-ff", "1", "forced twice").returncode == 0
    stamp, reason = _drain_row(env, 1)
    assert reason == "forced twice" and stamp > first[0]
    r = res(env, "drain", "-f", "-u", "1")
    assert r.returncode == 1 and "Only one of --force and --update" in r.stderr
    r = res(env, "undrain", "0-2")
    assert r.returncode == 1 and "0 are not drained" in r.stderr
    assert _drain_row(env, 1) is not None, "a refused undrain undrains nothing"
    assert res(env, "undrain", "-f", "0-2").returncode == 0
    assert res(env, "drain", "-n").stdout == ""


def test_drain_and_undrain_are_posted_to_resource_eventlog(env):
    assert res(env, "drain", "node3", "fan", "failure").returncode == 0
    assert res(env, "undrain", "3").returncode == 0
    r = fluxnb_cmd("kvs", "eventlog", "get", "resource.eventlog", env=env)
    names = [ln.split()[1] for ln in r.stdout.splitlines()]
    assert names[0] == "resource-define"
    assert names[-2:] == ["drain", "undrain"]
    drain, undrain = r.stdout.splitlines()[-2:]
    assert drain.split(" ", 1)[1] == \
        'drain idset="3" nodelist="node3" reason="fan failure" overwrite=0'
    assert undrain.split(" ", 1)[1] == 'undrain idset="3" nodelist="node3"'


def test_queue_status_stop_start(env):
    r = queue(env, "status")
    assert r.stdout == "Job submission is enabled\nScheduling is started\n"
    assert queue(env, "stop", "maintenance", "window").stdout == \
        "Scheduling is stopped: maintenance window\n"
    assert queue(env, "status").stdout.splitlines()[1] == \
        "Scheduling is stopped: maintenance window"
    assert queue(env, "start").stdout == "Scheduling is started\n"
    assert queue(env, "stop", "-q").stdout == ""
    assert queue(env, "start", "-q").stdout == ""


def test_queue_disable_refuses_submission(env, h):
    from fluxnb.job import JobspecV1, submit
    assert queue(env, "disable", "closed").stdout == "Job submission is disabled: closed\n"
    try:
        with pytest.raises(OSError, match="disabled"):
            submit(h, JobspecV1.from_command(["true"]))
    finally:
        assert queue(env, "enable").stdout == "Job submission is enabled\n"


def test_queue_drain_and_idle(env, h):
    from fluxnb.job import JobspecV1, cancel, event_wait, result, submit
    assert queue(env, "drain", "-t", "10").returncode == 0
    assert queue(env, "idle").stdout == "0 jobs\n"
    js = JobspecV1.from_command(["sleep", "30"])
    js.environment = dict(os.environ)
    jid = submit(h, js)
    event_wait(h, jid, "start")
    try:
        r = queue(env, "idle", "-t", "0.2")
        assert r.returncode == 1 and "timeout" in r.stderr
        r = queue(env, "drain", "--timeout=0.2")
        assert r.returncode == 1 and "timeout" in r.stderr
    finally:
        cancel(h, jid)
        result(h, jid)


def test_queue_list(env):
    r = queue(env, "list")
    head, line = r.stdout.splitlines()
    line = re.sub(r"\x1b\[[0-9;]*m", "", line)  # flux colors the marks (green/red)
    assert head.split() == ["EN", "ST", "TDEFAULT", "TLIMIT", "NNODES", "NCORES", "NGPUS"]
    assert line.split()[:2] == ["✔", "✔"]
    assert line.split()[4] == "0-4"
