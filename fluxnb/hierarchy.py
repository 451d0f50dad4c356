"""Build hierarchies of nested instances from Python (what ``flux tree`` does).

Examples
--------
>>> import fluxnb                                                   # doctest: +SKIP
>>> from fluxnb.hierarchy import tree
>>> with fluxnb.Instance(test_size=4) as inst:
...     report = tree(fluxnb.Flux(inst.uri), "2x2", njobs=100, test_exec="0.01s")
>>> [r["path"] for r in report]
['/0/0', '/0/1', '/0', '/1/0', '/1/1', '/1', '/']
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from .runtime.util.rv1 import ResourceSet


def split(total: int, parts: int) -> list[int]:
    """Share ``total`` jobs (or nodes) among ``parts`` as evenly as possible."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _child_jobspec(nodes: int, cores: int, slots_on_node: int | None, argv: list[str]):
    from .job import JobspecV1
    if slots_on_node is None:  # whole nodes
        js = JobspecV1.from_nest_command(argv, num_nodes=nodes, num_slots=nodes,
                                         cores_per_slot=cores, exclusive=True)
    else:  # a share of one node's cores
        js = JobspecV1.from_nest_command(argv, num_slots=1, cores_per_slot=slots_on_node)
    js.environment = dict(os.environ)
    js.cwd = os.getcwd()
    return js


def run_tree_level(h, fanouts: list[int], njobs: int, command: list[str],
                   test_exec: str | None = None, path: str = "/") -> list[dict[str, Any]]:
    """Run this instance's part of a tree: start children, or run leaf jobs here.

    Returns one record per instance below and including this one:
    ``{"path", "njobs", "elapsed", "size"}``.
    """
    from .job import JobspecV1, result, submit
    t0 = time.time()
    size = int(h.attr_get("size"))
    if not fanouts:
        js = JobspecV1.from_command(command)
        js.environment = dict(os.environ)
        js.cwd = os.getcwd()
        if test_exec:
            js.setattr("system.exec.test.run_duration", test_exec)
        futures = []
        from .job import submit_async
        for _ in range(njobs):
            futures.append(submit_async(h, js))
        ids = [f.get_id() for f in futures]
        for jobid in ids:
            result(h, jobid)
        return [{"path": path, "njobs": njobs, "elapsed": time.time() - t0, "size": size}]
    k, rest = fanouts[0], fanouts[1:]
    R = ResourceSet(h.rpc("sched.resource-status", {}, nodeid=0).get()["all"])
    cores = min(len(c.get("core", ())) for c in R.by_rank().values())
    if R.nnodes >= k:
        shares = [(n, None) for n in split(R.nnodes, k)]
    elif cores >= k:
        shares = [(1, c) for c in split(cores, k)]
    else:
        raise ValueError(f"{path}: {R.nnodes} nodes x {cores} cores cannot hold {k} instances")
    children = []
    for i, (jobs, (nodes, slot)) in enumerate(zip(split(njobs, k), shares)):
        child_path = f"{path.rstrip('/')}/{i}"
        argv = ["flux", "tree", "-T", "x".join(map(str, rest)), "-J", str(jobs), "--json",
                "--path", child_path]
        if test_exec:
            argv += ["--test-exec", test_exec]
        argv += ["--", *command]
        js = _child_jobspec(nodes, cores, slot, argv)
        js.setattr("system.job.name", f"tree{child_path}")
        children.append((child_path, submit(h, js)))
    records: list[dict[str, Any]] = []
    from .job import eventlog_entries
    for child_path, jobid in children:
        info = result(h, jobid)
        if info["result"] != "COMPLETED":
            raise RuntimeError(f"{child_path}: nested instance {jobid} ended {info['result']}: "
                               f"{info.get('exception_note', '')}")
        for ev in eventlog_entries(h, jobid, "output", watch=False):
            if ev.name == "data" and ev.context.get("stream") == "stdout":
                for line in ev.context.get("data", "").splitlines():
                    if line.startswith("{"):
                        records.append(json.loads(line))
    records.append({"path": path, "njobs": njobs, "elapsed": time.time() - t0, "size": size})
    return records


def tree(h, topology: str, njobs: int, command: list[str] | None = None,
         test_exec: str | None = None) -> list[dict[str, Any]]:
    """Lay out a hierarchy (``"2x2"``: two instances of two) and share ``njobs`` among
    its leaves; return a record per instance (path, jobs, elapsed seconds, size)."""
    fanouts = [int(x) for x in topology.lower().split("x")] if topology else []
    return run_tree_level(h, fanouts, njobs, command or ["true"], test_exec, "/")
