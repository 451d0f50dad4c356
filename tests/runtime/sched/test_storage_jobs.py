"""Canonical (RFC 14) jobspecs end to end: a tiered-storage job submitted, matched and run.

The job manager takes a jobspec that is not V1 only when the loaded scheduler
says it can match one (``sched.features``): Fluxion can, sched-simple cannot.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import yaml

from fluxnb import Flux, Instance
from fluxnb.job import Jobspec, JobspecV1, eventlog_entries, result, submit
from fluxnb.runtime.message import FluxError
from tests.conftest import fluxnb_cmd

DATA = Path(__file__).parent / "data"
QM, RES = "sched-fluxion-qmanager", "sched-fluxion-resource"
STORAGE_GRAPH = [f"load-file={DATA / 'tiered-storage.json'}", "load-format=jgf", "match-format=rv1"]


def load_sched(h, *modules):
    """Swap the scheduler for ``modules``: (name, args) pairs, loaded in order."""
    for name in (QM, RES):
        h.rpc("module.remove", {"name": name}, nodeid=0).get()
    for name, args in modules:
        h.rpc("module.load", {"name": name, "args": list(args)}, nodeid=0).get()


def tiered_jobspec(command: list[str]) -> dict:
    spec = yaml.safe_load((DATA / "tiered-storage.yaml").read_text())
    spec["tasks"][0]["command"] = command
    return spec


def scheduled_types(R: dict) -> dict[str, list[int]]:
    """type -> sizes of the vertices in R's scheduling JGF."""
    out: dict[str, list[int]] = {}
    for n in R["scheduling"]["graph"]["nodes"]:
        out.setdefault(n["metadata"]["type"], []).append(n["metadata"]["size"])
    return out


@pytest.fixture(scope="module")
def storage_instance():
    with Instance(test_size=4, cores_per_node=2) as inst, Flux(inst.uri) as h:
        load_sched(h, (RES, STORAGE_GRAPH), (QM, ()))
        yield inst


def test_fluxion_says_it_takes_canonical_jobspecs(storage_instance):
    with Flux(storage_instance.uri) as h:
        got = h.rpc("sched.features", {}, nodeid=0).get()
    assert got == {"name": QM, "canonical-jobspec": True}


def test_tiered_storage_job_runs_to_completion(storage_instance, tmp_path):
    spec = tiered_jobspec(["sh", "-c", "echo task $FLUX_TASK_RANK of $FLUX_JOB_SIZE"])
    path = tmp_path / "tiered.yaml"
    path.write_text(yaml.safe_dump(spec))
    with Flux(storage_instance.uri) as h:
        jobid = submit(h, Jobspec.from_yaml_file(path))
        info = result(h, jobid)
        assert info["result"] == "COMPLETED", info
        R = json.loads(fluxnb_cmd("job", "info", jobid.f58, "R", env=storage_instance.environ(0)).stdout)
        out = sorted(ev.context["data"] for ev in eventlog_entries(h, jobid, "output")
                     if ev.name == "data" and "data" in ev.context)
    # two nodes of two cores each run one task per slot; the storage rides in scheduling
    assert R["execution"]["R_lite"] == [{"rank": "2-3", "children": {"core": "0-1"}}]
    assert out == ["task 0 of 2\n", "task 1 of 2\n"]
    sizes = scheduled_types(R)
    assert sizes["pfs"] == [4096]              # its share of the 8 TB pool
    assert sizes["ssd"] == [1600, 1600]        # in a slot: each node's whole ssd, exclusively
    assert len(sizes["node"]) == 2


def test_flux_job_submit_reads_a_file_or_stdin(storage_instance, tmp_path):
    env = storage_instance.environ(0)
    path = tmp_path / "tiered.json"
    path.write_text(json.dumps(tiered_jobspec(["true"])))
    r = fluxnb_cmd("job", "submit", "--urgency", "20", str(path), env=env)
    assert r.returncode == 0, r.stderr
    first = r.stdout.strip()
    assert first.startswith("ƒ")
    r = fluxnb_cmd("job", "submit", "--flags=waitable", env=env,
                   input=yaml.safe_dump(tiered_jobspec(["true"])))
    assert r.returncode == 0, r.stderr
    r = fluxnb_cmd("job", "wait", r.stdout.strip(), env=env)
    assert r.returncode == 0, r.stderr
    r = fluxnb_cmd("job", "status", first, env=env)
    assert r.returncode == 0, r.stderr
    r = fluxnb_cmd("job", "submit", "--flags=signed", str(path), env=env)
    assert r.returncode == 1 and "unknown flag 'signed'" in r.stderr


def test_invalid_canonical_jobspec_names_the_path(storage_instance):
    spec = tiered_jobspec(["true"])
    spec["resources"][0]["with"][1]["with"][0]["with"][0]["count"] = 0
    with Flux(storage_instance.uri) as h, pytest.raises(FluxError) as err:
        submit(h, spec)
    assert err.value.errno == errno.EINVAL
    assert "resources[0].with[1].with[0].with[0].count: must be >= 1" in str(err.value)


def test_storage_job_needs_storage_in_the_graph():
    # Fluxion from the instance's R: the job is taken, then denied as unsatisfiable
    with Instance(test_size=2) as inst, Flux(inst.uri) as h:
        jobid = submit(h, tiered_jobspec(["true"]))
        info = result(h, jobid)
    assert (info["result"], info["exception_type"]) == ("FAILED", "alloc"), info
    assert "unknown resource type 'pfs'" in info["exception_note"], info


def test_sched_simple_rejects_canonical_jobspecs_with_the_v1_rule():
    with Instance(test_size=2) as inst, Flux(inst.uri) as h:
        load_sched(h, ("sched-simple", ()))
        assert h.rpc("sched.features", {}, nodeid=0).get()["canonical-jobspec"] is False
        with pytest.raises(FluxError) as err:
            submit(h, tiered_jobspec(["true"]))
        assert err.value.errno == errno.EINVAL
        msg = str(err.value)
        assert msg.startswith("version: must be 1")
        assert "sched-simple accepts only version 1 jobspecs" in msg
        # a V1 jobspec still runs
        assert result(h, submit(h, JobspecV1.from_command(["true"])))["result"] == "COMPLETED"
        r = fluxnb_cmd("job", "submit", env=inst.environ(0), input=json.dumps(tiered_jobspec(["true"])))
    assert r.returncode == 1
    assert "version: must be 1 (sched-simple accepts only version 1 jobspecs" in r.stderr


def test_exclusive_gpu_job_runs_one_task_and_sees_its_gpu():
    # -N1 gives the job its node whole: R holds both cores, the jobspec one slot,
    # so one task runs (tasks come from the jobspec), told its gpu by id
    with Instance(test_size=2, cores_per_node=2, gpus_per_node=1) as inst:
        r = fluxnb_cmd("run", "-N1", "-g", "1", "sh", "-c", "echo gpu=$CUDA_VISIBLE_DEVICES",
                       env=inst.environ(0))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["gpu=0"]
