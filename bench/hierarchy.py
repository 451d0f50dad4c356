"""Hierarchical throughput: N short jobs through one instance vs K nested instances.

Run: python bench/hierarchy.py [N] [--nested K] [--repeat R]

Each nested instance is its own process (a ``flux alloc --bg``-style job), so K of
them schedule and launch in parallel where one instance's broker is one Python
thread. Prints each throughput and the ratio, with real processes (``true``) and
with test exec, and the median time to start a nested instance
(``flux alloc -N1 true``). Targets (issue 5, 2-core machine): 2 nested instances
>= 1.5x the single-level throughput with real processes; ``flux alloc -N1 true``
<= 1 s median (flux-core 0.88 here: 2.15 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from throughput import run_jobs  # noqa: E402

from fluxnb import Flux, Instance  # noqa: E402
from fluxnb.job import JobspecV1, cancel, get_job, submit  # noqa: E402


def start_children(h: Flux, k: int, nodes_each: int, cores_each: int) -> list[tuple[int, str]]:
    children = []
    for _ in range(k):
        js = JobspecV1.from_nest_command(["sleep", "inf"], num_nodes=nodes_each,
                                         num_slots=nodes_each, cores_per_slot=cores_each,
                                         exclusive=True)
        js.environment = dict(os.environ)
        children.append(submit(h, js))
    out = []
    for jobid in children:
        deadline = time.time() + 60
        while True:
            info = get_job(h, jobid)
            uri = ((info.get("annotations") or {}).get("user") or {}).get("uri")
            if uri:
                out.append((jobid, uri))
                break
            if time.time() > deadline:
                raise RuntimeError(f"nested instance {jobid} did not start")
            time.sleep(0.02)
    return out


def nested_rate(h: Flux, n: int, k: int, test_exec: bool, nodes: int, cores: int) -> float:
    children = start_children(h, k, nodes // k, cores)
    rates = [0.0] * k
    barrier = threading.Barrier(k + 1)

    def drive(i, uri):
        with Flux(uri) as ch:
            barrier.wait()
            rates[i] = run_jobs(ch, n // k, test_exec)

    threads = [threading.Thread(target=drive, args=(i, uri)) for i, (_, uri) in enumerate(children)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    for jobid, _ in children:
        cancel(h, jobid)
    return (n // k) * k / elapsed


def alloc_latency(inst: Instance, runs: int = 7) -> float:
    env = inst.environ(0)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(["flux", "alloc", "-N1", "true"], env=env, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=1000)
    ap.add_argument("--nested", type=int, default=2)
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3,
                    help="pairs of runs per figure, alternating (medians reported)")
    args = ap.parse_args()
    with Instance(test_size=args.nodes, cores_per_node=args.cores) as inst, Flux(inst.uri) as h:
        for label, test in (("real processes (true)", False), ("test exec", True)):
            singles, nesteds = [], []
            for _ in range(args.repeat):      # alternate, so a slow spell hits both
                singles.append(run_jobs(h, args.n, test))
                h.rpc("job-manager.drain", {}, nodeid=0).get()
                nesteds.append(nested_rate(h, args.n, args.nested, test, args.nodes, args.cores))
                h.rpc("job-manager.drain", {}, nodeid=0).get()
            single, nested = statistics.median(singles), statistics.median(nesteds)
            ratios = ", ".join(f"{b / a:.2f}" for a, b in zip(singles, nesteds))
            print(f"{label:<22} {args.n} jobs: one instance {single:7.0f} jobs/s   "
                  f"{args.nested} nested instances {nested:7.0f} jobs/s   ratio of medians "
                  f"{nested / single:.2f}x (pairs: {ratios})"
                  f"{'  (target >= 1.5x)' if not test else ''}")
        med = alloc_latency(inst)
        print(f"`flux alloc -N1 true` median {med:.2f} s (target <= 1 s; flux-core 0.88: 2.15 s)")


if __name__ == "__main__":
    main()
