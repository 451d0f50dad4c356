"""Hierarchy, side by side with the real Flux: nested instances from a shell inside one.

Run: python bench/hierarchy.py [N] [--repeat R] [--runs K] [--size S] [--test-exec]

As bench/latency.py does, each system starts one S-broker instance (fluxnb of this
checkout and flux-core, through bench/_peer.py) and every workload runs as a shell
inside it would run it, alternately fluxnb, flux-core, fluxnb, ...:

* ``flux alloc -N1 true``: start a nested instance, run ``true`` in it, tear it down
  (issue 5's target for fluxnb: <= 1 s median).
* ``flux job attach $(flux batch -N1 --wrap true)``: the same through a batch job.
* N jobs of ``true`` through the instance itself
  (``flux submit --cc=1-N --quiet --wait true``) and through 2 nested instances of
  S/2 nodes each, side by side (``flux alloc -N S/2 flux submit --cc=1-N/2 ...`` twice
  in the background, then ``wait``), nested instances' start-up included (issue 5's
  target: 2 nested >= 1.5x one instance, with real processes).

Medians [min-max] and the ratio (> 1: fluxnb ahead); for the throughput rows also each
system's own nested/single ratio. ``--test-exec`` runs the jobs with test exec
(``--setattr=system.exec.test.run_duration=0s``: no process) instead of ``true``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peer import Peer, fluxnb_start, header, show  # noqa: E402
from latency import Running, spawn_time  # noqa: E402


def alternate_runs(argv: list[str], env_a: dict, env_b: dict | None, runs: int
                   ) -> tuple[list[float], list[float]]:
    a, b = [], []
    for _ in range(runs):
        a.append(spawn_time(argv, env_a)[0])
        if env_b is not None:
            b.append(spawn_time(argv, env_b)[0])
    return a, b


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=200, help="jobs per throughput run")
    ap.add_argument("--repeat", type=int, default=3, help="throughput runs per system")
    ap.add_argument("--runs", type=int, default=5, help="alloc/batch runs per system")
    ap.add_argument("--size", type=int, default=4, help="brokers in the top instance")
    ap.add_argument("--test-exec", action="store_true",
                    help="jobs run with test exec (no process) instead of `true`")
    args = ap.parse_args()
    half_nodes = max(1, args.size // 2)
    half_jobs = args.n // 2
    peer = Peer.find()
    print(header(peer, f"nested instances from a shell inside a {args.size}-broker instance"))
    mine = Running("fluxnb", fluxnb_start, args.size)
    theirs = Running("flux", peer.start, args.size) if peer else None
    try:
        env_a = mine.env()
        env_b = theirs.env() if theirs else None
        spawn_time(["flux", "run", "true"], env_a)   # warm up both
        if env_b:
            spawn_time(["flux", "run", "true"], env_b)

        a, b = alternate_runs(["flux", "alloc", "-N1", "true"], env_a, env_b, args.runs)
        print(show("flux alloc -N1 true", a, b, higher_is_better=False, unit="s")
              + f"   (fluxnb target <= 1 s: {'met' if statistics.median(a) <= 1 else 'NOT met'})",
              flush=True)
        batch = ["sh", "-c", "flux job attach $(flux batch -N1 --output=/dev/null --wrap true)"]
        a, b = alternate_runs(batch, env_a, env_b, args.runs)
        print(show("flux job attach $(flux batch -N1 --wrap true)", a, b,
                   higher_is_better=False, unit="s"), flush=True)

        job = (["--setattr=system.exec.test.run_duration=0s"] if args.test_exec else [])
        submit = ["flux", "submit", "--quiet", "--wait", *job]
        single = [*submit, f"--cc=1-{args.n}", "true"]
        inner = " ".join([*submit, f"--cc=1-{half_jobs}", "true"])
        nested = ["sh", "-c", f"flux alloc -N{half_nodes} {inner} & "
                              f"flux alloc -N{half_nodes} {inner} & wait"]
        rates: dict[str, tuple[list[float], list[float]]] = {}
        for label, argv, njobs in (("one instance", single, args.n),
                                   ("2 nested instances", nested, 2 * half_jobs)):
            ta, tb = alternate_runs(argv, env_a, env_b, args.repeat)
            ra = [njobs / t for t in ta]
            rb = [njobs / t for t in tb]
            rates[label] = (ra, rb)
            what = f"{njobs} x {'test exec' if args.test_exec else 'true'}: {label}"
            print(show(what, ra, rb, higher_is_better=True, unit="jobs/s"), flush=True)
        (sa, sb), (na, nb) = rates["one instance"], rates["2 nested instances"]
        line = (f"{'nested / one instance':<44} fluxnb "
                f"{statistics.median(na) / statistics.median(sa):.2f}x")
        if sb:
            line += f"   flux {statistics.median(nb) / statistics.median(sb):.2f}x"
        if not args.test_exec:
            line += "   (fluxnb target >= 1.5x)"
        print(line)
    finally:
        mine.stop()
        if theirs:
            theirs.stop()
    print(f"# load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
