"""The instance traces itself: export (live and nested), analysis, the flux trace command."""

from __future__ import annotations

import json
import os

import pytest

from fluxnb import trace
from fluxnb.trace.regions import REGIONS, Table, critical_path_of, jobs, summary, utilization
from fluxnb.trace.format import load, validate
from tests.conftest import fluxnb_cmd

JOB_EVENTS = ["submit", "validate", "depend", "priority", "alloc", "start", "finish", "release",
              "free", "clean"]


@pytest.fixture(scope="module")
def inst():
    from fluxnb import Instance
    with Instance(test_size=8, cores_per_node=2) as instance:
        yield instance


@pytest.fixture(scope="module")
def ran(inst):
    """Test-exec jobs, one real job, and a batch job whose nested instance saved its trace."""
    from fluxnb import Flux
    import fluxnb.job as job
    ids = []
    with Flux(inst.uri) as h:
        js = job.JobspecV1.from_command(["true"], num_tasks=2, num_nodes=1, cores_per_task=1)
        js.setattr("system.exec.test.run_duration", "0.05s")
        ids += [job.submit(h, js) for _ in range(12)]
        ids.append(job.submit(h, job.JobspecV1.from_command(["sleep", "0.05"], num_tasks=2)))
        for i in ids:
            job.result(h, i)
    return ids


@pytest.fixture(scope="module")
def batch(inst, tmp_path_factory):
    d = tmp_path_factory.mktemp("batch")
    script = d / "script.sh"
    script.write_text("#!/bin/sh\n"
                      "flux submit --cc 1-4 -N1 -n1 --setattr exec.test.run_duration=0.05s true\n"
                      "flux run -n1 true\n"
                      "flux trace save\n")
    script.chmod(0o755)
    env = dict(os.environ, **inst.environ(0))
    r = fluxnb_cmd("batch", "-N2", f"--output={d}/out", str(script), env=env)
    assert r.returncode == 0, r.stderr
    from fluxnb import Flux
    import fluxnb.job as job
    with Flux(inst.uri) as h:
        res = job.result(h, job.JobID(r.stdout.strip()))
    assert res["success"], (res, (d / "out").read_text())
    return job.JobID(r.stdout.strip())


def test_job_events_become_trace_events(inst, ran):
    from fluxnb import Flux
    with Flux(inst.uri) as h:
        tr = trace.export(h, ran)
    events = tr["traceEvents"]
    assert validate(events) == []
    recs = jobs(tr)
    assert len(recs) == len(ran)
    for rec in recs:
        assert [e for e in JOB_EVENTS if e in rec.events] == JOB_EVENTS
        assert {"init", "starting", "complete", "done"} <= set(rec.exec)
        assert all(d >= 0 for d in rec.durations().values())
    real = [r for r in recs if r.name == "sleep"][0]
    assert "shell.start" in real.exec and real.durations()["run"] >= 0.04
    # one X slice per job per rank, never overlapping on a thread
    xs = [e for e in events if e["ph"] == "X"]
    assert len(xs) == len(ran)
    by_tid: dict = {}
    for e in sorted(xs, key=lambda e: e["ts"]):
        last = by_tid.get((e["pid"], e["tid"]))
        assert last is None or last <= e["ts"] + 1e-3
        by_tid[(e["pid"], e["tid"])] = e["ts"] + e["dur"]
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert names == {"fluxnb instance (root)"}


def test_nested_instance_saved_and_merged(inst, ran, batch):
    from fluxnb import Flux
    with Flux(inst.uri) as h:
        tr = trace.export(h)
    assert validate(tr["traceEvents"]) == []
    paths = [i["path"] for i in tr["otherData"]["instances"]]
    assert paths == ["", batch.f58]
    child = jobs(tr, instance=batch.f58)
    assert len(child) == 5 and all("clean" in r.events for r in child)
    parent = jobs(tr, instance="", nested=True)
    assert [r.jobid for r in parent] == [batch.f58]
    # the child's jobs ran inside the batch job's run region
    run = dict((n, (a, b)) for n, a, b in parent[0].regions())["run"]
    assert all(run[0] <= r.submit and r.end <= run[1] for r in child)


def test_analysis_tables(inst, ran):
    from fluxnb import Flux
    with Flux(inst.uri) as h:
        tr = trace.export(h, ran)
    table = trace.analyze(tr)
    assert isinstance(table, Table) and table.columns[4:9] == list(REGIONS)
    assert len(table) == len(ran) and "<table" in table._repr_html_()
    cp = critical_path_of(tr)
    total = sum(cp.column("duration"))
    assert cp.meta["makespan"] >= total - 1e-6 > 0
    assert cp.rows[-1][1] == "completion"
    times, nodes, size = utilization(tr, instance="")
    assert size == 8 and max(nodes) <= 8 and nodes[-1] == 0
    s = summary(tr, instance="")
    assert 0 < s["utilization"] <= 1 and s["idle node-seconds"] >= 0


def test_cli_export_analyze_validate(inst, ran, batch, tmp_path):
    env = dict(os.environ, **inst.environ(0))
    out = tmp_path / "trace.json"
    r = fluxnb_cmd("trace", "export", "-o", str(out), env=env)
    assert r.returncode == 0, r.stderr
    assert "2 instance(s)" in r.stderr
    assert validate(load(str(out))) == []
    r = fluxnb_cmd("trace", "export", ran[0].f58, env=env)
    assert r.returncode == 0 and len(jobs(json.loads(r.stdout))) == 1
    r = fluxnb_cmd("trace", "analyze", str(out), "--critical-path", env=env)
    assert r.returncode == 0 and "makespan" in r.stdout
    r = fluxnb_cmd("trace", "analyze", "--json", "-i", batch.f58, env=env)
    assert r.returncode == 0 and len(json.loads(r.stdout)["rows"]) == 5
    r = fluxnb_cmd("trace", "validate", str(out), env=env)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok")
    r = fluxnb_cmd("trace", "save", env=env)
    assert r.returncode == 1 and "not a job of another" in r.stderr
    r = fluxnb_cmd("trace", "frobnicate", env=env)
    assert r.returncode == 1 and "unknown subcommand" in r.stderr


def test_pfw_files_merge_on_one_timeline(inst, ran, tmp_path):
    from fluxnb import Flux
    code = ("from fluxnb.trace import critical_path\n"
            "@critical_path()\ndef step():\n    pass\nstep()\n")
    import subprocess
    import sys
    env = dict(os.environ, PERFFLOW_OPTIONS=f"log-dir={tmp_path}")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    with Flux(inst.uri) as h:
        tr = trace.export(h, ran[:2], pfw=[str(tmp_path)])
    assert validate(tr["traceEvents"]) == []
    steps = [e for e in tr["traceEvents"] if e["name"] == "step"]
    first_job = min(r.submit for r in jobs(tr)) * 1e6
    assert len(steps) == 2 and steps[0]["ts"] > first_job  # wall-clock microseconds, both
