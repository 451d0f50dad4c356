"""Job throughput: N jobs through the CLI, fluxnb beside the real Flux, Dask and a fork floor.

Run: python bench/throughput.py [N] [--repeat R] [--processes] [--growth]

What the user runs, timed end to end inside an instance of each system started the same
way (``flux start --test-size=4``): ``flux submit --cc=1-N --quiet --wait true`` (real
processes) and the same with ``--setattr=system.exec.test.run_duration=0.001s`` (flux-core's
test exec: the job runs no process). The clock starts before the CLI is started and
stops when it exits, i.e. when every job is inactive. Instances of the two systems are
started alternately (fluxnb, flux, fluxnb, ...), a fresh one for every run.

Beside them, in the same run: the fork/exec floor (``subprocess.run(["true"])`` in a
loop) and Dask's LocalCluster running the same ``true`` processes (when dask.distributed
is installed). ``--growth`` also runs 10x the jobs once with fluxnb and prints the cost per job at
both sizes (linear growth: the same cost per job).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _peer import Peer, alternate, fluxnb_start, header, show, spread, tmpfile  # noqa: E402

TIMER = """\
import subprocess, sys, time
t = time.perf_counter()
subprocess.run(sys.argv[1:], check=True)
print(time.perf_counter() - t)
"""

TEST_EXEC = "--setattr=system.exec.test.run_duration=0.001s"  # 0s: flux-core waits for a cancel


def floor_rate(n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        subprocess.run(["true"])
    return n / (time.perf_counter() - t)


def _true_task(_: int) -> int:
    return subprocess.run(["true"]).returncode


def dask_rate(n: int) -> float | None:
    """N ``true`` processes run as Dask tasks on a LocalCluster (cluster start not timed)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        return None
    import logging
    logging.getLogger("distributed").setLevel(logging.ERROR)
    with LocalCluster(processes=True, dashboard_address=None) as cluster, Client(cluster) as c:
        c.submit(_true_task, -1).result()  # workers warmed up, as the instances are
        t = time.perf_counter()
        futures = c.map(_true_task, range(n), pure=False)
        c.gather(futures)
        return n / (time.perf_counter() - t)


def cli_argv(n: int, test: bool, timer: str) -> list[str]:
    opts = [TEST_EXEC] if test else []
    return [sys.executable, timer, "flux", "submit", f"--cc=1-{n}", "--quiet", "--wait",
            *opts, "true"]


def fluxnb_rate(n: int, test: bool, timer: str, processes: bool, size: int) -> float:
    out = fluxnb_start(size, cli_argv(n, test, timer), processes=processes)
    return n / float(out.split()[-1])


def peer_rate(peer: Peer, n: int, test: bool, timer: str, size: int) -> float:
    out = peer.start(size, cli_argv(n, test, timer))
    return n / float(out.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=1000)
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (median reported)")
    ap.add_argument("--processes", action="store_true",
                    help="also fluxnb with a process per broker (fluxnb start --processes)")
    ap.add_argument("--growth", action="store_true", help="also 10x the jobs, once each")
    args = ap.parse_args()
    peer = Peer.find()
    print(header(peer, f"job throughput, {args.n} jobs through `flux submit --cc --wait`, "
                       f"--test-size={args.nodes}"))
    timer = tmpfile(TIMER)
    n = args.n
    try:
        fl, dk = alternate(lambda: floor_rate(n), lambda: dask_rate(n) or 0.0, args.repeat)
        print(f"{'floor: subprocess.run([true]) loop':<44} {spread(fl)} jobs/s")
        if any(dk):
            print(f"{'Dask LocalCluster, the same true processes':<44} {spread(dk)} jobs/s")
        else:
            print("Dask: dask.distributed not installed (pip install 'dask[distributed]')")
        modes = [("threads", False)] + ([("processes", True)] if args.processes else [])
        for test, label in ((False, "real processes (true)"), (True, "test exec (no process)")):
            for mode, procs in modes:
                a, b = alternate(
                    lambda: fluxnb_rate(n, test, timer, procs, args.nodes),
                    (lambda: peer_rate(peer, n, test, timer, args.nodes)) if peer else None,
                    args.repeat)
                target = 1000 if test else 500
                print(show(f"{label}, fluxnb brokers in {mode}", a, b, higher_is_better=True,
                           unit="jobs/s"), f" fluxnb target >= {target}/s: "
                      f"{'met' if statistics.median(a) >= target else 'NOT met'}")
                if not test and any(dk):
                    print(f"{'':<44} fluxnb / Dask {statistics.median(a) / statistics.median(dk):.2f}x"
                          f"   fluxnb / fork floor {statistics.median(a) / statistics.median(fl):.2f}")
        if args.growth:
            big = 10 * n
            for test, label in ((False, "real"), (True, "test exec")):
                # fluxnb's growth only: flux-core's 10x run would take minutes per row
                rows = [("fluxnb", lambda k: fluxnb_rate(k, test, timer, False, args.nodes))]
                for who, fn in rows:
                    small, large = fn(n), fn(big)
                    print(f"growth {label:<10} {who:<7} {1e3 / small:.2f} ms/job at {n}, "
                          f"{1e3 / large:.2f} ms/job at {big}: cost per job x{small / large:.2f} "
                          f"({'no worse than linear' if small / large <= 1.1 else 'worse than linear'})")
    finally:
        os.unlink(timer)


if __name__ == "__main__":
    main()
