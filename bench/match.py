"""Benchmark fluxnb's Fluxion matcher against flux-sched's resource-query figures.

Graph: cluster > node[N] > socket[2] > core[28] + 1 gpu per socket
(N=1000: 61,001 vertices; N=10000: 610,001).  Prints load time and memory,
then per-match latency (median, p99 and the first match) for 1-node and
1-core jobs under policies ``first`` and ``high``, ``allocate`` on an empty
graph and ``allocate_orelse_reserve`` on a full one, beside the C++
reference figures (flux-sched resource-query, measured on this machine) and
the ratio ours / theirs.

Load time is measured without tracemalloc (which roughly doubles it); memory
is the growth of the process's resident set (RSS) while loading.  Like a
resource-query process, the bench owns its graph for good, so it loads it
under ``ResourceGraph.building(freeze=True)``: the garbage collector's full
collections then skip the graph (without it, loading at N=10000 takes about
1 s more and the first ``high`` 1-core match about 6 s instead of 2-3 s, as
full collections walk the graph; the other figures barely move).

Usage::

    python bench/match.py                      # N=1000 and N=10000
    python bench/match.py --nodes 1000 --samples 50
    python bench/match.py --cpu      # CPU time instead of wall time (busy machine)
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import time

from fluxnb.runtime.sched.fluxion import (MatchError, ResourceGraph, Traverser, make_policy,
                                          make_writer, parse_request)

# flux-sched resource-query on this machine: N -> metric -> value (seconds / bytes)
REFERENCE = {
    1000: {"load_s": 0.35, "mem_b": 146 * 2**20, ("first", "node", "allocate"): 0.29e-3,
           ("first", "core", "allocate"): 0.09e-3, ("first", "node", "reserve"): 0.46e-3,
           ("high", "node", "allocate"): 20e-3, ("high", "core", "allocate"): 75e-3},
    10000: {"load_s": 5.2, "mem_b": 2.0 * 2**30, ("first", "node", "allocate"): 0.48e-3,
            ("first", "core", "allocate"): 0.26e-3, ("first", "node", "reserve"): 4.2e-3,
            ("high", "node", "allocate"): 558e-3, ("high", "core", "allocate"): 1.5},
}

NODE_JOB = {"version": 1, "resources": [{"type": "node", "count": 1, "exclusive": True, "with": [
    {"type": "slot", "count": 1, "label": "task", "with": [
        {"type": "socket", "count": 2, "with": [{"type": "core", "count": 28},
                                                {"type": "gpu", "count": 1}]}]}]}],
    "attributes": {"system": {"duration": 3600}}, "tasks": []}
CORE_JOB = {"version": 1, "resources": [{"type": "slot", "count": 1, "label": "task", "with": [
    {"type": "core", "count": 1}]}], "attributes": {"system": {"duration": 3600}}, "tasks": []}


#: Timer: wall clock (as the reference figures), or CPU time with --cpu.
clock = time.perf_counter


def build_graph(n: int) -> ResourceGraph:
    with ResourceGraph.building():
        g = ResourceGraph()
        root = g.add_vertex("cluster", "cluster", 0)
        for i in range(n):
            node = g.add_vertex("node", "node", i, parent=root, rank=i)
            for s in range(2):
                sock = g.add_vertex("socket", "socket", s, parent=node, rank=i)
                g.add_children(sock, "core", "core", range(s * 28, s * 28 + 28), rank=i)
                g.add_vertex("gpu", "gpu", s, parent=sock, rank=i)
    return g


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def load(n: int, policy: str) -> tuple[Traverser, float, int]:
    gc.collect()
    r0 = rss()
    t0 = clock()
    with ResourceGraph.building(freeze=True):  # a process that owns its graph, as resource-query
        trav = Traverser(build_graph(n), make_policy(policy))
    dt = clock() - t0
    return trav, dt, rss() - r0


def time_matches(trav: Traverser, spec: dict, op: str, samples: int, first_id: int) -> list[float]:
    req = parse_request(spec)
    w = make_writer("simple")
    out = []
    for k in range(samples):
        t0 = clock()
        try:
            trav.run(req, op, first_id + k, w)  # type: ignore[arg-type]
        except MatchError:
            pass
        out.append(clock() - t0)
        w.emit()
    return out


def fill(trav: Traverser, n: int) -> None:
    req = parse_request(NODE_JOB)
    w = make_writer("simple")
    for k in range(n):
        trav.run(req, "allocate", 1_000_000 + k, w)
        w.emit()


def p99(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(0.99 * (len(s) - 1))))]


def row(label: str, ours: float, ref: float | None, unit: str = "ms") -> None:
    scale = 1e3 if unit == "ms" else 1.0
    ratio = f"{ours / ref:8.2f}x" if ref else "      -"
    refs = f"{ref * scale:10.3f}" if ref else "         -"
    print(f"  {label:<44} {ours * scale:10.3f} {refs} {ratio}   ({unit})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--high-samples", type=int, default=5)
    ap.add_argument("--skip-reserve", action="store_true", help="skip filling the graph")
    ap.add_argument("--policies", nargs="+", default=["first", "high"], choices=["first", "high"])
    ap.add_argument("--cpu", action="store_true",
                    help="time with the process's CPU time (steadier on a busy machine)")
    args = ap.parse_args()
    global clock
    if args.cpu:
        clock = time.process_time
    for n in args.nodes:
        ref = REFERENCE.get(n, {})
        print(f"N={n} nodes ({1 + n * 61} vertices)   ours        flux-sched  ratio")
        trav, dt, drss = load(n, "first")
        row("graph load", dt, ref.get("load_s"), "s")
        mref = ref.get("mem_b")
        print(f"  {'memory (RSS growth while loading)':<44} {drss / 2**20:10.1f} "
              + (f"{mref / 2**20:10.1f} {drss / mref:8.2f}x   (MiB)" if mref else "         -       -   (MiB)"))
        for pol, samples in (("first", args.samples), ("high", args.high_samples)):
            if pol not in args.policies:
                continue
            if pol != "first":
                trav = None  # type: ignore[assignment]  # free the last graph before the next
                gc.collect()
                trav, *_ = load(n, pol)
            for j, (kind, spec) in enumerate((("node", NODE_JOB), ("core", CORE_JOB))):
                # distinct job ids: both kinds of job share one traverser
                xs = time_matches(trav, spec, "allocate", samples, 1 + j * 100_000)
                key = (pol, kind, "allocate")
                row(f"{pol} 1-{kind} allocate median", statistics.median(xs), ref.get(key))  # type: ignore[arg-type]
                row(f"{pol} 1-{kind} allocate p99", p99(xs), None)
                # the first match of a request walks the whole free graph; later
                # ones replay the records of untouched subtrees (see fastpaths.py)
                row(f"{pol} 1-{kind} allocate, first match", xs[0], None)
            print(f"  (process RSS after the {pol} matches: {rss() / 2**20:.0f} MiB)")
        if not args.skip_reserve:
            trav = None  # type: ignore[assignment]
            gc.collect()
            trav, *_ = load(n, "first")
            t0 = clock()
            fill(trav, n)
            print(f"  (filled {n} nodes in {clock() - t0:.1f} s)")
            xs = time_matches(trav, NODE_JOB, "allocate_orelse_reserve", args.samples, 1)
            row("first 1-node reserve on full graph median", statistics.median(xs),
                ref.get(("first", "node", "reserve")))  # type: ignore[arg-type]
            row("first 1-node reserve on full graph p99", p99(xs), None)
        del trav
        gc.collect()


if __name__ == "__main__":
    main()
