"""`flux jobs`: flux-jobs(1)'s columns, filters, formats and options."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from fluxnb.cli.jobinfo_format import JobInfo, format_table, format_text, fsd
from tests.conftest import fluxnb_cmd

HEADER = "       JOBID USER     NAME       ST NTASKS NNODES     TIME INFO"


# -- the formatter alone ------------------------------------------------------------------
def rec(**kw):
    base = {"id": 1234, "userid": os.getuid(), "urgency": 16, "priority": 16, "state": 8,
            "name": "app", "ntasks": 1, "t_submit": time.time()}
    base.update(kw)
    return base


def test_fsd_follows_flux_jobs():
    assert [fsd(x) for x in (0, 0.0005, 1.25, 12.5, 90, 5400, 2 * 86400)] == \
        ["0s", "0s", "1.250s", "12.5s", "1.5m", "1.5h", "2d"]


def test_status_abbrev_of_every_state_and_result():
    states = {2: "D", 4: "P", 8: "S", 16: "R", 32: "C"}
    for bit, abbrev in states.items():
        assert JobInfo(rec(state=bit)).status_abbrev == abbrev
    results = {1: "CD", 2: "F", 4: "CA", 8: "TO"}
    for bit, abbrev in results.items():
        assert JobInfo(rec(state=64, result=bit)).status_abbrev == abbrev


def test_contextual_info_for_pending_jobs():
    assert JobInfo(rec(state=8, urgency=0, priority=0)).contextual_info == "held"
    assert JobInfo(rec(state=8, urgency=16, priority=0)).contextual_info == "priority-hold"
    assert JobInfo(rec(state=4)).contextual_info == "priority-wait"
    eta = JobInfo(rec(annotations={"sched": {"t_estimate": time.time() + 120}}))
    assert re.fullmatch(r"eta:(1\.99\dm|2m)", eta.contextual_info)
    dep = JobInfo(rec(state=2, dependencies=["afterok=fABC"]))
    assert dep.contextual_info == "depends:afterok=fABC"
    run = JobInfo(rec(state=16, nodelist="node[0-1]", t_run=time.time() - 1))
    assert run.contextual_info == "node[0-1]"


def test_returncode_and_inactive_reason():
    assert JobInfo(rec(state=64, result=1, waitstatus=0)).returncode == 0
    assert JobInfo(rec(state=64, result=2, waitstatus=3 << 8)).returncode == 3
    assert JobInfo(rec(state=64, result=2, waitstatus=9)).returncode == -9
    canceled = JobInfo(rec(state=64, result=4, exception_occurred=True, exception_type="cancel",
                           exception_severity=0, exception_note="bye"))
    assert canceled.returncode == -128
    assert canceled.inactive_reason == "Canceled: bye"
    assert JobInfo(rec(state=16)).returncode == ""


def test_default_format_widths_and_hyphens():
    text = format_text([rec(name="a-very-long-job-name")])
    header, line = text.splitlines()
    assert header == HEADER
    # name truncated to 10 with '+', empty nnodes and 0s time shown as '-'
    assert "a-very-lo+" in line
    assert line.split()[5:7] == ["-", "-"]


def test_optional_column_appears_only_when_some_job_has_it():
    assert "QUEUE" not in format_text([rec()])
    text = format_text([rec(), rec(id=99, queue="batch")])
    assert text.splitlines()[0].split()[:2] == ["JOBID", "QUEUE"]


def test_format_table_gives_headers_and_cells():
    headers, rows = format_table([rec(state=64, result=1, waitstatus=0)],
                                 "{id.dec} {status} {returncode}")
    assert headers == ["JOBID", "STATUS", "RC"]
    assert rows == [["1234", "COMPLETED", "0"]]


def test_unknown_field_is_an_error():
    with pytest.raises(ValueError, match="Unknown format field: bogus"):
        format_text([rec()], "{bogus}")


# -- the command --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def jobs(instance):
    """A completed, a failed and a canceled job, and their ids."""
    from fluxnb import Flux
    from fluxnb.job import JobspecV1, cancel, result, submit
    with Flux(instance.uri) as h:
        ok = JobspecV1.from_command(["true"])
        ok.setattr("system.exec.test.run_duration", "0.01s")
        ok.setattr("system.job.name", "jobsok")
        bad = JobspecV1.from_command(["sh", "-c", "exit 3"])
        bad.environment = dict(os.environ)
        hold = JobspecV1.from_command(["true"])
        ids = {"completed": submit(h, ok), "failed": submit(h, bad),
               "canceled": submit(h, hold, urgency=0)}
        cancel(h, ids["canceled"])
        for jid in ids.values():
            result(h, jid)
    return ids


def fj(env, *args):
    return fluxnb_cmd("jobs", *args, env=env)


def test_default_lists_only_active_jobs(env, jobs):
    r = fj(env)
    assert r.returncode == 0
    assert r.stdout.splitlines()[0] == HEADER
    for jid in jobs.values():
        assert jid.f58 not in r.stdout


def test_all_shows_results_with_abbreviations(env, jobs):
    r = fj(env, "-a")
    lines = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert lines[jobs["completed"].f58].split()[3] == "CD"
    assert lines[jobs["failed"].f58].split()[3] == "F"
    assert lines[jobs["canceled"].f58].split()[3] == "CA"


@pytest.mark.parametrize("name", ["completed", "failed", "canceled"])
def test_filter_by_result(env, jobs, name):
    r = fj(env, "-n", "-f", name, "-o", "{id.f58}")
    assert r.stdout.split() == [jobs[name].f58]


def test_filter_inactive_and_pending(env, jobs):
    r = fj(env, "-n", "-f", "inactive", "-o", "{id.f58}")
    assert set(jobs[k].f58 for k in jobs) <= set(r.stdout.split())
    assert fj(env, "-n", "-f", "pending").stdout == ""


def test_invalid_filter_fails(env):
    r = fj(env, "-f", "bogus")
    assert r.returncode == 1
    assert "bogus" in r.stderr


def test_suppress_header_count_and_format(env, jobs):
    r = fj(env, "-a", "-n", "-c", "1", "-o", "{id.dec}")
    assert len(r.stdout.splitlines()) == 1
    assert r.stdout.strip().isdigit()
    r = fj(env, "--suppress-header", "-a", "-o", "{id.f58} {returncode}")
    assert f"{jobs['failed'].f58} 3" in r.stdout.splitlines()


def test_named_formats(env, jobs):
    long = fj(env, "-a", "-o", "long").stdout.splitlines()[0].split()
    assert long == ["JOBID", "USER", "NAME", "STATUS", "NTASKS", "NNODES", "T_SUBMIT",
                    "T_REMAINING", "TIME", "INFO"]
    deps = fj(env, "-a", "-o", "deps").stdout.splitlines()[0].split()
    assert deps == ["JOBID", "NAME", "URG", "PRI", "STATE", "DEPENDENCIES"]
    assert "default" in fj(env, "-o", "help").stdout
    r = fj(env, "-o", "nosuchformat")
    assert r.returncode == 1 and "No such format nosuchformat" in r.stderr


def test_bad_field_fails(env):
    r = fj(env, "-o", "{nosuchfield}")
    assert r.returncode == 1
    assert "nosuchfield" in r.stderr


def test_name_filter_and_job_ids(env, jobs):
    r = fj(env, "-a", "-n", "--name", "jobsok", "-o", "{id.f58}")
    assert r.stdout.split() == [jobs["completed"].f58]
    r = fj(env, "-n", "-o", "{id.f58} {status}", jobs["failed"].f58, jobs["completed"].f58)
    assert r.stdout.splitlines() == [f"{jobs['failed'].f58} FAILED",
                                     f"{jobs['completed'].f58} COMPLETED"]


def test_json(env, jobs):
    one = json.loads(fj(env, "--json", str(int(jobs["failed"]))).stdout)
    assert one["id"] == int(jobs["failed"])
    assert one["result"] == "FAILED" and one["returncode"] == 3
    many = json.loads(fj(env, "--json", "-a").stdout)
    assert {int(j) for j in jobs.values()} <= {j["id"] for j in many["jobs"]}


def test_stats(env, jobs):
    r = fj(env, "--stats-only")
    assert re.fullmatch(r"\d+ running, \d+ completed, \d+ failed, \d+ pending\n", r.stdout)
    assert r.returncode == 1  # no active jobs
    r = fj(env, "--stats", "-a")
    first, second = r.stdout.splitlines()[:2]
    assert "completed" in first and second == HEADER


def test_since_implies_all(env, jobs):
    r = fj(env, "-n", "--since=-1h", "-o", "{id.f58}")
    assert jobs["completed"].f58 in r.stdout.split()
    assert fj(env, "--since=+1h").returncode == 1


def test_running_job_shows_nodelist_and_runtime(env, instance):
    from fluxnb import Flux
    from fluxnb.job import JobspecV1, cancel, event_wait, result, submit
    with Flux(instance.uri) as h:
        js = JobspecV1.from_command(["sleep", "30"])
        js.environment = dict(os.environ)
        jid = submit(h, js)
        event_wait(h, jid, "start")
        try:
            line = fj(env, "-n", "-f", "running").stdout.splitlines()
            fields = [ln.split() for ln in line if ln.split()[0] == jid.f58][0]
            assert fields[3] == "R" and fields[5] == "1"
            assert re.fullmatch(r"\d+\.\d{3}s", fields[6])
            assert re.fullmatch(r"node\d+", fields[7])
        finally:
            cancel(h, jid)
            result(h, jid)
