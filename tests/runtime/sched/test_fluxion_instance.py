"""The Fluxion pair as the instance's scheduler: gpus, storage, variation, errors, module swaps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fluxnb import Flux, Instance
from fluxnb.job import JobspecV1, job_list_id, submit
from fluxnb.runtime.message import FluxError
from tests.conftest import QM, RES, fluxnb_cmd, reload_sched

DATA = Path(__file__).parent / "data"


def test_gpu_job_gets_a_gpu():
    with Instance(test_size=2, gpus_per_node=2) as inst:
        r = fluxnb_cmd("run", "-g", "1", "sh", "-c", "echo $CUDA_VISIBLE_DEVICES; true",
                       env=inst.environ(0))
        assert r.returncode == 0, r.stderr
        r = fluxnb_cmd("submit", "-g", "1", "true", env=inst.environ(0))
        jobid = r.stdout.strip()
        fluxnb_cmd("job", "wait-event", jobid, "clean", env=inst.environ(0))
        R = json.loads(fluxnb_cmd("job", "info", jobid, "R", env=inst.environ(0)).stdout)
        assert any("gpu" in e["children"] for e in R["execution"]["R_lite"])


def test_unsatisfiable_requests_end_at_once():
    with Instance(test_size=4) as inst:
        env = inst.environ(0)
        r = fluxnb_cmd("run", "-N", "100", "true", env=env, timeout=30)
        assert r.returncode != 0
        assert "unsatisfiable request: 100 node requested, the resource graph has 4" in r.stderr
        r = fluxnb_cmd("run", "-g", "1", "true", env=env, timeout=30)
        assert r.returncode != 0
        assert "unsatisfiable request" in r.stderr and "'gpu'" in r.stderr


def test_unknown_resource_type_is_a_clear_error():
    with Instance(test_size=2) as inst, Flux(inst.uri) as h:
        js = {  # as flux-sched's basics/bad_res_type.yaml
            "version": 9999, "attributes": {"system": {"duration": 60}}, "tasks": [],
            "resources": [{"type": "node", "count": 1, "with": [
                {"type": "slot", "count": 1, "label": "task",
                 "with": [{"type": "invalid_res_type", "count": 1}]}]}]}
        with pytest.raises(FluxError, match=r"unknown resource type 'invalid_res_type'.*has cluster, core, node"):
            h.rpc(f"{RES}.match", {"jobid": 1, "jobspec": js, "op": "allocate"}, nodeid=0).get()


@pytest.mark.parametrize("args,msg", [
    (["load-file=/nonexistent.json", "load-format=jgf"], "cannot read JGF file"),
    ([f"load-file={DATA / 'tiered-storage.yaml'}", "load-format=jgf"], "invalid JSON"),
    ([f"load-file={DATA / 'tiered-storage.json'}", "load-format=grug"], "cannot load the resource graph"),
    (["policy=fastest"], "unknown match policy 'fastest'"),
    (["color=blue"], "unknown option 'color=blue'"),
])
def test_bad_module_arguments_fail_the_load(args, msg):
    with Instance(test_size=1) as inst, Flux(inst.uri) as h:
        h.rpc("module.remove", {"name": QM}, nodeid=0).get()
        h.rpc("module.remove", {"name": RES}, nodeid=0).get()
        with pytest.raises(FluxError, match=msg):
            h.rpc("module.load", {"name": RES, "args": args}, nodeid=0).get()


def test_tiered_storage_allocates_without_storage_code():
    spec = yaml.safe_load((DATA / "tiered-storage.yaml").read_text())
    with Instance(test_size=4, cores_per_node=2) as inst, Flux(inst.uri) as h:
        reload_sched(h, [f"load-file={DATA / 'tiered-storage.json'}", "load-format=jgf", "match-format=rv1"])
        first = h.rpc(f"{RES}.match", {"jobid": 1, "jobspec": spec, "op": "allocate"}, nodeid=0).get()
        assert first["status"] == "ALLOCATED"
        picked = {(n["metadata"]["type"], n["metadata"]["size"])
                  for n in first["R"]["scheduling"]["graph"]["nodes"]}
        assert ("pfs", 4096) in picked and ("node", 1) in picked
        assert sum(1 for n in first["R"]["scheduling"]["graph"]["nodes"] if n["metadata"]["type"] == "ssd") == 2
        # the 8 TB pool is held exclusively by job 1 for its hour: job 2 is reserved after it
        second = h.rpc(f"{RES}.match", {"jobid": 2, "jobspec": spec, "op": "allocate_orelse_reserve"},
                       nodeid=0).get()
        assert second["status"] == "RESERVED" and second["at"] - first["R"]["execution"]["starttime"] >= 3598
        spec["resources"][0]["with"][0]["count"] = 9000  # more than the pool holds
        with pytest.raises(FluxError, match="unsatisfiable request: 9000 pfs requested, the resource graph has 8192"):
            h.rpc(f"{RES}.match", {"jobid": 3, "jobspec": spec, "op": "allocate"}, nodeid=0).get()


def _nodes_of(h, jobid):
    from fluxnb.runtime.job.jobid import JobID
    import time
    for _ in range(200):
        got = job_list_id(h, jobid, ["state", "nodelist"]).get()["job"]
        if got.get("nodelist"):
            return got["nodelist"]
        time.sleep(0.05)
    raise AssertionError(f"job {JobID(jobid).f58} got no nodes")


@pytest.mark.parametrize("policy,expected", [
    # variation: lowest performance classes first, so a job spans as few classes as it can:
    # nodes 1 and 3 are class 1, node 2 class 2, node 0 class 3
    ("variation", ["node[1,3]", "node[0,2]"]),
    # first (Fluxion's default): highest ids first, whatever the class
    ("first", ["node[2-3]", "node[0-1]"]),
])
def test_variation_aware_placement(policy, expected):
    with Instance(test_size=4, cores_per_node=2) as inst, Flux(inst.uri) as h:
        reload_sched(h, [f"load-file={DATA / 'perf-classes.json'}", "load-format=jgf", f"policy={policy}"])
        got = []
        for _ in range(2):
            js = JobspecV1.from_command(["true"], num_nodes=2, num_tasks=4, duration=100)
            js.setattr("system.exec.test.run_duration", "100s")
            got.append(_nodes_of(h, submit(h, js)))
        assert got == expected


def test_module_swap_and_queue_depth_in_dmesg():
    script = ("set -e; flux module unload sched-fluxion-qmanager; "
              "flux module unload sched-fluxion-resource; flux module load sched-simple; "
              "flux run -N1 true; flux module unload sched-simple; "
              "flux module load sched-fluxion-resource load-allowlist=node,socket,core; "
              "flux module load sched-fluxion-qmanager queue-params=queue-depth=4; "
              "flux run -N2 true; flux dmesg | grep sched-fluxion-qmanager")
    r = fluxnb_cmd("start", "--test-size=4", "sh", "-c", script, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "effective queue params (queue=default): queue-depth=4" in r.stdout


def test_running_job_survives_a_scheduler_swap():
    with Instance(test_size=2, cores_per_node=1) as inst, Flux(inst.uri) as h:
        js = JobspecV1.from_command(["true"], num_nodes=1, num_tasks=1, duration=100)
        js.setattr("system.exec.test.run_duration", "100s")
        held = submit(h, js)
        node = _nodes_of(h, held)
        h.rpc("module.remove", {"name": QM}, nodeid=0).get()
        h.rpc("module.remove", {"name": RES}, nodeid=0).get()
        h.rpc("module.load", {"name": "sched-simple"}, nodeid=0).get()
        h.rpc("module.remove", {"name": "sched-simple"}, nodeid=0).get()
        h.rpc("module.load", {"name": RES}, nodeid=0).get()
        h.rpc("module.load", {"name": QM}, nodeid=0).get()
        other = submit(h, js)
        assert _nodes_of(h, other) != node  # the held node was re-claimed from R
        got = h.rpc(f"{RES}.info", {"jobid": held}, nodeid=0).get()
        assert got["status"] == "ALLOCATED"
