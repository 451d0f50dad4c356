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
is installed). ``--growth`` also runs 10x the jobs with fluxnb, alternating with N jobs, and
prints the cost per job at both sizes (wall time, machine CPU, busiest thread CPU; linear
growth: the same cost per job).

What bounds each rate is measured in the same runs: the CPU the whole machine spent a job
(``/proc/stat``'s busy time over the run, every process of the instance, the ``flux
submit`` client and the tasks together; for Dask its scheduler, workers and tasks), with
how many of the machine's cores that kept busy, and the CPU a job of the rank 0 broker's
busiest thread (fluxnb's brokers are threads of one process, under one GIL; flux-core's
rank 0 is a process of its own). A rate near ``cores / machine CPU a job`` is bound by the
machine's CPU; one near ``1 / busiest thread's CPU a job`` by that thread. For test exec a
third run in each round (fluxnb only) has the jobs run 0.1 ms instead of 1 ms: what the
loop loses waiting out the runs (the jobs on the instance's cores start and end in groups,
and while every core's job sleeps the loop has nothing to do).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _peer import (Peer, alternate, fluxnb_start, header, machine_busy, show, spread,  # noqa: E402
                   tmpfile)

TIMER = """\
import subprocess, sys, time
sys.path.insert(0, %r)
from _peer import machine_busy, thread_cpu

pid = int(subprocess.run(["flux", "getattr", "broker.pid"], capture_output=True, text=True,
                         check=True).stdout)
b0, th0 = machine_busy(), thread_cpu(pid)
t = time.perf_counter()
subprocess.run(sys.argv[1:], check=True)
el = time.perf_counter() - t
b1, th1 = machine_busy(), thread_cpu(pid)
top = max((th1[k] - th0.get(k, 0.0) for k in th1), default=0.0)
print(el, b1 - b0, top)
""" % os.path.dirname(os.path.abspath(__file__))


#: (machine CPU s, busiest broker thread s, jobs) of each run, by label
CPU: dict[str, list[tuple[float, float, int]]] = {}

TEST_EXEC = "--setattr=system.exec.test.run_duration={}"  # 0s: flux-core waits for a cancel
#: the test jobs' run time (flux-core's test exec sleeps it), and a tenth of it for the
#: diagnostic row that shows what waiting out those runs costs the loop
RUN, SHORT_RUN = "0.001s", "0.0001s"


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
        b = machine_busy()
        t = time.perf_counter()
        futures = c.map(_true_task, range(n), pure=False)
        c.gather(futures)
        el = time.perf_counter() - t
        CPU.setdefault("dask", []).append((machine_busy() - b, 0.0, n))
        return n / el


def cli_argv(n: int, test: bool, timer: str, run: str = RUN) -> list[str]:
    opts = [TEST_EXEC.format(run)] if test else []
    return [sys.executable, timer, "flux", "submit", f"--cc=1-{n}", "--quiet", "--wait",
            *opts, "true"]


def _timer_out(out: str) -> tuple[float, float, float]:
    """What TIMER printed: seconds, machine CPU seconds, busiest broker thread's seconds."""
    el, cpu, top = (float(x) for x in out.split()[-3:])
    return el, cpu, top


def _timed(out: str, label: str, n: int) -> float:
    el, cpu, top = _timer_out(out)
    CPU.setdefault(label, []).append((cpu, top, n))
    return n / el


def fluxnb_rate(n: int, test: bool, timer: str, processes: bool, size: int,
                run: str = RUN) -> float:
    out = fluxnb_start(size, cli_argv(n, test, timer, run), processes=processes)
    return _timed(out, f"fluxnb {test} {processes} {run}", n)


def peer_rate(peer: Peer, n: int, test: bool, timer: str, size: int) -> float:
    out = peer.start(size, cli_argv(n, test, timer))
    return _timed(out, f"flux {test}", n)


def cpu_line(label: str, rates: list[float]) -> str:
    """What the runs of ``label`` cost: machine CPU a job (and the cores that kept busy),
    the busiest broker thread's CPU a job (and how busy it was)."""
    runs = CPU.get(label, [])
    if not runs:
        return ""
    cores = os.cpu_count() or 1
    per_job = statistics.median(1e3 * c / k for c, _, k in runs)
    busy = statistics.median(r * c / k for r, (c, _, k) in zip(rates, runs))
    text = f"machine CPU {per_job:.2f} ms/job ({busy:.1f} of {cores} cores busy; " \
           f"at most {1e3 * cores / per_job:,.0f} jobs/s)"
    if any(t for _, t, _ in runs):
        top = statistics.median(1e3 * t / k for _, t, k in runs)
        text += f", busiest broker thread {top:.2f} ms/job ({top * statistics.median(rates) / 10:.0f}% busy)"
    return text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=1000)
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (median reported)")
    ap.add_argument("--processes", action="store_true",
                    help="also fluxnb with a process per broker (fluxnb start --processes)")
    ap.add_argument("--growth", action="store_true",
                    help="also 10x the jobs, alternating with N (--growth-repeat runs each)")
    ap.add_argument("--growth-repeat", type=int, default=3)
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
            print(f"{'':<44} {cpu_line('dask', dk)}")
        else:
            print("Dask: dask.distributed not installed (pip install 'dask[distributed]')")
        modes = [("threads", False)] + ([("processes", True)] if args.processes else [])
        for test, label in ((False, "real processes (true)"), (True, "test exec (no process)")):
            for mode, procs in modes:
                a, b, short = [], [], []
                for _ in range(args.repeat):  # A B (A') A B (A') ...
                    a.append(fluxnb_rate(n, test, timer, procs, args.nodes))
                    if peer:
                        b.append(peer_rate(peer, n, test, timer, args.nodes))
                    if test:
                        short.append(fluxnb_rate(n, test, timer, procs, args.nodes, SHORT_RUN))
                target = 1000 if test else 500
                print(show(f"{label}, fluxnb brokers in {mode}", a, b, higher_is_better=True,
                           unit="jobs/s"), f" fluxnb target >= {target}/s: "
                      f"{'met' if statistics.median(a) >= target else 'NOT met'}")
                print(f"{'':<44} fluxnb {cpu_line(f'fluxnb {test} {procs} {RUN}', a)}")
                if b:
                    print(f"{'':<44} flux   {cpu_line(f'flux {test}', b)}")
                if short:
                    print(f"{'':<44} fluxnb, jobs that run {SHORT_RUN[:-1]} s instead: {spread(short)} "
                          f"jobs/s ({cpu_line(f'fluxnb {test} {procs} {SHORT_RUN}', short)})")
                if not test and any(dk):
                    print(f"{'':<44} fluxnb / Dask {statistics.median(a) / statistics.median(dk):.2f}x"
                          f"   fluxnb / fork floor {statistics.median(a) / statistics.median(fl):.2f}")
        if args.growth:
            big = 10 * n
            for test, label in ((False, "real"), (True, "test exec")):
                # fluxnb's growth only: flux-core's 10x run would take minutes per row.
                # The two sizes alternate (N, 10N, N, 10N...), each run in an instance of
                # its own; the cost a job is the wall time, and the CPU (machine and
                # busiest thread) that the same runs measured
                costs: dict[int, list[tuple[float, float, float]]] = {n: [], big: []}
                for _ in range(args.growth_repeat):
                    for k in (n, big):
                        el, cpu, top = _timer_out(fluxnb_start(args.nodes, cli_argv(k, test, timer)))
                        costs[k].append((1e3 * el / k, 1e3 * cpu / k, 1e3 * top / k))
                med = {k: [statistics.median(c[i] for c in v) for i in range(3)]
                       for k, v in costs.items()}
                parts = []
                for i, what in enumerate(("wall", "machine CPU", "busiest thread CPU")):
                    parts.append(f"{what} {med[n][i]:.2f} -> {med[big][i]:.2f} ms/job "
                                 f"(x{med[big][i] / med[n][i]:.2f})")
                worst = med[big][0] / med[n][0]
                print(f"growth {label:<10} fluxnb {n} -> {big} jobs, medians of {args.growth_repeat}: "
                      + "; ".join(parts)
                      + f": {'no worse than linear' if worst <= 1.1 else 'worse than linear'} (wall)")
    finally:
        os.unlink(timer)


if __name__ == "__main__":
    main()
