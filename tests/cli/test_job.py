"""`flux job` subcommands, `flux cancel` and `flux watch` as flux-job(1) and friends document."""

from __future__ import annotations

import json
import os
import re

import pytest

from fluxnb.job import JobID
from tests.conftest import fluxnb_cmd


def real(*cmd, **attrs):
    from fluxnb.job import JobspecV1
    js = JobspecV1.from_command(list(cmd))
    js.environment = dict(os.environ)
    return js


def fake(duration="0.01s"):
    from fluxnb.job import JobspecV1
    js = JobspecV1.from_command(["true"])
    js.setattr("system.exec.test.run_duration", duration)
    return js


@pytest.fixture(scope="module")
def done(h):
    """A finished job that wrote to stdout and stderr and exited 3."""
    from fluxnb.job import result, submit
    jid = submit(h, real("sh", "-c", "echo out; echo err >&2; exit 3"), waitable=True)
    result(h, jid)
    return jid


def fjob(env, *args, **kw):
    return fluxnb_cmd("job", *args, env=env, **kw)


def test_id_conversions(env):
    # an F58 pair from the conformance data; the other forms by RFC 19's definitions
    import json
    from tests.conftest import SHARED
    value, f58 = max(json.loads((SHARED / "jobid_f58.json").read_text())["pairs"])
    words16 = [(value >> s) & 0xFFFF for s in (48, 32, 16, 0)]
    dothex = ".".join(f"{w:04x}" for w in words16)
    expected = {"dec": str(value), "hex": f"0x{value:x}", "dothex": dothex,
                "kvs": f"job.{dothex}", "f58": f58}
    for to, want in expected.items():
        r = fjob(env, "id", f"--to={to}", f58)
        assert r.stdout.strip() == want, to
    assert fjob(env, "id", f"0x{value:x}").stdout.strip() == str(value)
    r = fjob(env, "id", "notanid")
    assert r.returncode == 1 and "malformed input" in r.stderr


def test_info_prints_kvs_values(env, h, done):
    spec = json.loads(fjob(env, "info", done.f58, "jobspec").stdout)
    assert spec["tasks"][0]["command"] == ["sh", "-c", "echo out; echo err >&2; exit 3"]
    R = fjob(env, "info", done.f58, "R").stdout
    assert json.loads(R)["version"] == 1 and ": " not in R  # compact JSON
    log = fjob(env, "info", done.f58, "eventlog").stdout.splitlines()
    assert json.loads(log[0])["name"] == "submit"
    r = fjob(env, "info", done.f58, "nosuchkey")
    assert r.returncode == 1


def test_eventlog_formats(env, done):
    lines = fjob(env, "eventlog", done.f58).stdout.splitlines()
    assert re.fullmatch(r"\d+\.\d{6} submit .*userid=\d+ urgency=16.*", lines[0])
    assert lines[-1].split()[1] == "clean"
    assert any(ln.split()[1:3] == ["finish", "status=768"] for ln in lines)
    js = [json.loads(ln) for ln in fjob(env, "eventlog", "-f", "json", done.f58).stdout.splitlines()]
    assert js[0]["name"] == "submit" and "timestamp" in js[0]
    off = fjob(env, "eventlog", "-T", "offset", done.f58).stdout.splitlines()
    assert off[0].startswith("0.000000 submit")
    out = fjob(env, "eventlog", "-p", "output", done.f58).stdout
    assert 'data="out\\n"' in out and 'stream="stderr"' in out


def test_wait_event(env, h):
    from fluxnb.job import cancel, result, submit
    jid = submit(h, real("sleep", "30"))
    try:
        r = fjob(env, "wait-event", jid.f58, "start")
        assert r.returncode == 0 and r.stdout.split()[1] == "start"
        r = fjob(env, "wait-event", "-t", "0.3", jid.f58, "clean")
        assert r.returncode == 1 and "wait-event timeout on event 'clean'" in r.stderr
        r = fjob(env, "wait-event", "-q", "-m", "priority=16", jid.f58, "priority")
        assert r.returncode == 0 and r.stdout == ""
    finally:
        cancel(h, jid)
        result(h, jid)


def test_status_exits_with_job_exit_code(env, h, done):
    from fluxnb.job import result, submit
    r = fjob(env, "status", "-v", done.f58)
    assert r.returncode == 3
    assert f"{done.f58}: exited with exit code 3" in r.stderr
    ok = submit(h, fake())
    result(h, ok)
    assert fjob(env, "status", ok.f58).returncode == 0
    assert fjob(env, "status", ok.f58, done.f58).returncode == 3


def test_last(env, h):
    from fluxnb.job import result, submit
    a = submit(h, fake())
    b = submit(h, fake())
    result(h, b)
    assert fjob(env, "last").stdout.split() == [b.f58]
    assert fjob(env, "last", "2").stdout.split() == [b.f58, a.f58]
    assert fjob(env, "last", "[:2]").stdout.split() == [b.f58, a.f58]


def test_kill_signals_the_job(env, h):
    from fluxnb.job import event_wait, result, submit
    jid = submit(h, real("sleep", "30"))
    event_wait(h, jid, "start")
    assert fjob(env, "kill", "-s", "SIGKILL", jid.f58).returncode == 0
    info = result(h, jid)
    assert info["result"] == "FAILED"
    assert fjob(env, "status", jid.f58).returncode == 128 + 9


def test_kill_inactive_job_fails(env, done):
    r = fjob(env, "kill", done.f58)
    assert r.returncode == 1 and done.f58 in r.stderr


def test_cancel_raise_and_urgency(env, h):
    from fluxnb.job import get_job, result, submit
    held = submit(h, fake(), urgency=0)
    r = fluxnb_cmd("jobs", "-n", "-o", "{id.f58} {contextual_info}", held.f58, env=env)
    assert r.stdout.split() == [held.f58, "held"]
    assert fjob(env, "urgency", held.f58, "default").returncode == 0
    assert result(h, held)["result"] == "COMPLETED"

    a = submit(h, fake(), urgency=0)
    assert fjob(env, "cancel", a.f58).returncode == 0
    assert result(h, a)["result"] == "CANCELED"

    b = submit(h, fake(), urgency=0)
    assert fjob(env, "raise", "-t", "test", b.f58, "some", "note").returncode == 0
    info = result(h, b)
    assert info["exception"]["type"] == "test" and info["exception"]["note"] == "some note"
    assert get_job(h, b)["result"] == "FAILED"


def test_wait_for_waitable_job(env, h):
    from fluxnb.job import submit
    ok = submit(h, fake(), waitable=True)
    assert fjob(env, "wait", ok.f58).returncode == 0
    bad = submit(h, real("false"), waitable=True)
    r = fjob(env, "wait", bad.f58)
    assert r.returncode == 1 and r.stderr.startswith("fluxnb-job: ")


def test_cancelall_needs_force(env, h):
    from fluxnb.job import result, submit
    ids = [submit(h, fake(), urgency=0) for _ in range(2)]
    r = fjob(env, "cancelall")
    assert "Command matched 2 jobs (-f to confirm)" in r.stderr
    r = fjob(env, "cancelall", "-f")
    assert "Canceled 2 jobs (0 errors)" in r.stderr
    assert all(result(h, i)["result"] == "CANCELED" for i in ids)


def test_flux_cancel(env, h):
    from fluxnb.job import result, submit
    c = lambda *a: fluxnb_cmd("cancel", *a, env=env)  # noqa: E731
    r = c()
    assert r.returncode == 1 and "No target jobs were provided" in r.stderr
    ids = [submit(h, fake(), urgency=0) for _ in range(3)]
    r = c("--all", "--dry-run")
    assert "Would cancel 3 jobs" in r.stderr
    r = c("--all", "-m", "cleanup")
    assert r.stderr.strip().endswith("Canceled 3 jobs (0 errors)")
    infos = [result(h, i) for i in ids]
    assert {i["result"] for i in infos} == {"CANCELED"}
    assert infos[0]["exception"]["note"] == "cleanup"
    assert "Matched 0 jobs" in c("--all").stderr
    assert c("--all", "-q").stderr == ""
    one = submit(h, fake(), urgency=0)
    assert c(one.f58).returncode == 0
    assert result(h, one)["result"] == "CANCELED"
    r = c(one.f58)
    assert r.returncode == 1 and one.f58 in r.stderr


def test_watch_copies_output_and_exit_code(env, h, done):
    r = fluxnb_cmd("watch", done.f58, env=env)
    assert r.returncode == 3
    assert r.stdout == "out\n" and r.stderr == "err\n"
    r = fluxnb_cmd("watch", env=env)
    assert r.returncode == 1 and "At least one job selection option is required" in r.stderr


def test_watch_active_waits_for_jobs(env, h):
    from fluxnb.job import submit
    # long enough to be still active when a loaded machine has started the CLI
    submit(h, real("sh", "-c", "sleep 3; echo late"))
    r = fluxnb_cmd("watch", "--active", env=env)
    assert r.returncode == 0
    assert r.stdout == "late\n"
