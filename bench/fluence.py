"""Time the Fluence what-if: 20 seeds x 2 schedulers of tutorial 10's workflow.

Run: python bench/fluence.py [--seeds N]

The cluster and workflow are tutorial 10's (24 nodes of 32 cpu in 3 zones;
3 LAMMPS-, 3 AMG-, 2 QMCPACK-like MPI jobs, 80 pods).  Target (issue 19):
the 2 x 20 runs take under 30 s on this machine.  The floor, measured in the
same run, is the same event loop driving a first-fit placer that does no
scoring and no graph match: what the simulation itself costs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peer import no_counterpart  # noqa: E402

from fluxnb.fluence import FluenceScheduler, KubeScheduler, load_manifests, simulate
from fluxnb.fluence.workflows import demo_cluster, mpi_workflow


class FirstFit:
    """Each pod to the first node with room: the floor (no filter plugins, no scores, no gang)."""

    name = "first-fit"

    def start(self, workload, rng):
        self.nodes = workload.cluster.nodes
        self.free = [[n.cpu, n.memory, n.gpu] for n in self.nodes]
        self.pending = []
        self.where = {}

    def submit(self, pods, now):
        self.pending.extend(pods)

    def finish(self, app, now):
        for p in app.pods:
            f = self.free[self.where.pop(p.name)]
            f[0] += p.cpu
            f[1] += p.memory
            f[2] += p.gpu

    def schedule(self, now):
        out, left = [], []
        for p in self.pending:
            for i, f in enumerate(self.free):
                if f[0] >= p.cpu and f[1] >= p.memory and f[2] >= p.gpu:
                    f[0] -= p.cpu
                    f[1] -= p.memory
                    f[2] -= p.gpu
                    self.where[p.name] = i
                    out.append((p, self.nodes[i]))
                    break
            else:
                left.append(p)
        self.pending = left
        return out


def run(workload, make, seeds):
    t = time.perf_counter()
    results = [simulate(workload, make(), s) for s in seeds]
    return time.perf_counter() - t, results


def main() -> None:
    print(no_counterpart("Fluence what-if simulation time", "a first-fit placer on the same event loop"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    args = ap.parse_args()
    seeds = range(args.seeds)
    w = load_manifests(demo_cluster(zones=3, nodes_per_zone=8), mpi_workflow())
    print(f"{len(w.cluster.nodes)} nodes, {len(w.apps)} MPI jobs, {len(w.pods)} pods, {args.seeds} seeds; "
          f"load average {os.getloadavg()[0]:.2f}")
    floor, _ = run(w, FirstFit, seeds)
    total = 0.0
    print(f"{'scheduler':<16}{'total s':>9}{'per run ms':>12}{'x floor':>9}"
          "   makespan median (runs done, deadlocked)")
    print(f"{'first-fit floor':<16}{floor:9.2f}{floor / args.seeds * 1000:12.1f}{1:9.1f}")
    for make in (KubeScheduler, FluenceScheduler):
        dt, rs = run(w, make, seeds)
        total += dt
        done = [r.makespan for r in rs if r.finished]
        med = f"{statistics.median(done):.0f} s" if done else "-"
        print(f"{make.name:<16}{dt:9.2f}{dt / args.seeds * 1000:12.1f}{dt / floor:9.1f}   {med} "
              f"({len(done)}, {sum(1 for r in rs if r.deadlocked)})")
    verdict = "met" if total < 30 else "NOT met"
    print(f"both schedulers: {total:.2f} s for {2 * args.seeds} runs; target (< 30 s for 20 seeds x 2): {verdict}")


if __name__ == "__main__":
    main()
