"""Job throughput: N jobs from submit until all are inactive, beside a subprocess floor.

Run: python bench/throughput.py [N] [--nodes K]

Prints jobs/s with real processes (``true``) and with test exec (no process), and
the floor measured in the same run: a plain loop of ``subprocess.run(["true"])``.
Targets (issue 3, 2-core machine): real >= 250 jobs/s for 1,000 jobs; test exec >=
1,000 jobs/s. flux-core 0.88 here: 42.7 (real) and 164 (simulated) jobs/s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from fluxnb import Flux, Instance
from fluxnb.job import JobspecV1

FLUX_CORE = {"real": 42.7, "test": 164.0}


def floor_rate(n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        subprocess.run(["true"])
    return n / (time.perf_counter() - t)


def run_jobs(h: Flux, n: int, test_exec: bool) -> float:
    js = JobspecV1.from_command(["true"])
    js.environment = dict(os.environ)
    if test_exec:
        js.setattr("system.exec.test.run_duration", "0s")
    payload = {"jobspec": json.loads(js.dumps()), "urgency": 16, "flags": 0}
    h.event_subscribe("job-state")
    t = time.perf_counter()
    futures = [h.rpc("job-manager.submit", payload, nodeid=0) for _ in range(n)]
    ids = {f.get()["id"] for f in futures}
    done = 0
    while done < n:
        ev = h.event_recv("job-state", timeout=120)
        for jobid, state, _ in ev.json["transitions"]:
            if state == "INACTIVE" and jobid in ids:
                done += 1
    rate = n / (time.perf_counter() - t)
    h.event_unsubscribe("job-state")
    failed = h.rpc("job-list.list", {"states": 64, "results": 2 | 4 | 8, "ids": sorted(ids),
                                     "max_entries": 5, "attrs": ["exception_note"]},
                   nodeid=0).get()["jobs"]
    if failed:  # only this run's jobs count
        print(f"  warning: {len(failed)}+ jobs did not complete, e.g. {failed[0]}", file=sys.stderr)
    return rate


def run_true_latency(inst: Instance, runs: int = 15) -> float:
    env = inst.environ(0)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(["flux", "run", "true"], env=env, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=1000)
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (median reported)")
    ap.add_argument("--latency", action="store_true", help="also time `flux run true` from a shell")
    args = ap.parse_args()
    floor = statistics.median(floor_rate(min(args.n, 1000)) for _ in range(args.repeat))
    print(f"floor  subprocess.run(['true']) loop                       {floor:8.0f} jobs/s "
          f"(median of {args.repeat})")
    # brokers in a thread of this process (as %flux start hosts them), and in a process
    # of their own (as `fluxnb start` from a terminal runs them, with --processes)
    for where, procs in (("brokers in a thread", False), ("broker processes", True)):
        with Instance(test_size=args.nodes, processes=procs) as inst, Flux(inst.uri) as h:
            for label, test in (("real processes (true)", False), ("test exec (no process)", True)):
                runs = [run_jobs(h, args.n, test) for _ in range(args.repeat)]
                rate = statistics.median(runs)
                ref = FLUX_CORE["test" if test else "real"]
                print(f"fluxnb {where:<20} {label:<23} {rate:8.0f} jobs/s "
                      f"(runs {', '.join(f'{r:.0f}' for r in runs)})  {rate / floor:4.2f} of floor  "
                      f"flux-core 0.88: {ref} ({rate / ref:.1f}x)")
            if args.latency and not procs:
                med = run_true_latency(inst)
                print(f"fluxnb `flux run true` from a shell: median {med * 1000:.0f} ms "
                      f"(target <= 250 ms; flux-core 0.88: 250 ms)")


if __name__ == "__main__":
    main()
