"""Command latency from a shell inside an instance, side by side with the real Flux.

Run: python bench/latency.py [--runs N] [--size K]

Each system starts one instance (``fluxnb start --test-size=K`` of this checkout,
and flux-core's ``flux start --test-size=K``, through bench/_peer.py) whose initial
program is a small waiter: it writes down its environment (FLUX_URI, PATH with the
system's ``flux``, PYTHONPATH) and sleeps on a FIFO. With both instances up, each
command runs as a shell in the instance would run it (fork/exec of ``flux`` with
that environment, output to /dev/null), alternately: fluxnb, flux-core, fluxnb, ...
Rows: ``flux run true``, ``flux submit true``, ``flux jobs -a``, ``flux getattr size``,
then ``flux start --test-size=K true`` (a whole instance, started from here), and
the floors of the same run: ``python3 -c pass`` and ``python3 -S -c pass`` (the
fluxnb shim runs ``python3 -S``).

Medians [min-max] of wall time, the ratio (> 1: fluxnb faster; issue 17's target for
``flux run true``: fluxnb <= 0.5x flux-core, i.e. ratio >= 2), and the CPU time of
the command's own process tree (user+sys of the ``flux`` process and its children,
not the brokers'), which is what start-up costs.

Python byte code: this checkout's fluxnb is compiled first (``compileall``), as
``pip install`` does and as flux-core's installed ``.pyc`` files are; without it an
environment with PYTHONDONTWRITEBYTECODE recompiles fluxnb at every command.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peer import ROOT, Peer, fluxnb_env, fluxnb_start, header, show  # noqa: E402

WAITER = r"""
import json, os, sys
envfile, fifo = sys.argv[1], sys.argv[2]
with open(envfile + ".tmp", "w") as f:
    json.dump(dict(os.environ), f)
os.replace(envfile + ".tmp", envfile)
with open(fifo) as f:      # until the benchmark opens and closes it
    f.read()
"""


class Running:
    """An instance of one system, up in a thread, with the environment of a shell in it."""

    def __init__(self, name: str, start, size: int):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"fluxnb-latency-{name}-")
        self.envfile = os.path.join(self.dir, "env.json")
        self.fifo = os.path.join(self.dir, "stop")
        os.mkfifo(self.fifo)
        script = os.path.join(self.dir, "waiter.py")
        Path(script).write_text(WAITER)
        self.error: BaseException | None = None
        argv = [sys.executable, "-S", script, self.envfile, self.fifo]

        def run():
            try:
                start(size, argv)
            except BaseException as exc:  # reported by env()
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True, name=f"instance-{name}")
        self.thread.start()

    def env(self, timeout: float = 120) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.envfile):
            if self.error is not None or not self.thread.is_alive():
                raise RuntimeError(f"{self.name} instance did not start: {self.error}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} instance did not start in {timeout}s")
            time.sleep(0.02)
        with open(self.envfile) as f:
            return json.load(f)

    def stop(self) -> None:
        if self.thread.is_alive():
            fd = os.open(self.fifo, os.O_WRONLY)   # the waiter reads EOF and exits
            os.close(fd)
            self.thread.join(120)
        shutil.rmtree(self.dir, ignore_errors=True)


def spawn_time(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process tree) of one run of ``argv``."""
    exe = argv[0] if os.sep in argv[0] else shutil.which(argv[0], path=env.get("PATH"))
    if exe is None:
        raise RuntimeError(f"{argv[0]}: not on PATH {env.get('PATH')}")
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        t = time.perf_counter()
        pid = os.posix_spawn(exe, argv, env, file_actions=[
            (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
        _, status, ru = os.wait4(pid, 0)
        wall = time.perf_counter() - t
    finally:
        os.close(devnull)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {os.waitstatus_to_exitcode(status)}")
    return wall, ru.ru_utime + ru.ru_stime


def compare(what: str, argv: list[str], env_a: dict, env_b: dict | None, runs: int,
            warmup: int = 2, target: float | None = None) -> tuple[list, list, list, list]:
    for _ in range(warmup):
        spawn_time(argv, env_a)
        if env_b is not None:
            spawn_time(argv, env_b)
    wa, ca, wb, cb = [], [], [], []
    for _ in range(runs):   # A B A B ...
        w, c = spawn_time(argv, env_a)
        wa.append(w * 1000)
        ca.append(c * 1000)
        if env_b is not None:
            w, c = spawn_time(argv, env_b)
            wb.append(w * 1000)
            cb.append(c * 1000)
    print(show(what, wa, wb, higher_is_better=False, unit="ms", target=target), flush=True)
    cpu = f"{'':<44} cpu    fluxnb {statistics.median(ca):.1f} ms"
    if cb:
        cpu += f"   flux {statistics.median(cb):.1f} ms"
    print(cpu, flush=True)
    return wa, ca, wb, cb


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20, help="runs of each command per system")
    ap.add_argument("--size", type=int, default=4, help="brokers per instance")
    ap.add_argument("--start-runs", type=int, default=5, help="runs of `flux start ... true`")
    args = ap.parse_args()
    compileall.compile_dir(str(ROOT / "fluxnb"), quiet=1)
    peer = Peer.find()
    print(header(peer, f"latency of commands from a shell inside a {args.size}-broker instance"
                       f" ({args.runs} runs each, alternating)"))
    mine = Running("fluxnb", fluxnb_start, args.size)
    theirs = Running("flux", peer.start, args.size) if peer else None
    try:
        env_a = mine.env()
        env_b = theirs.env() if theirs else None
        for what, argv, target in (
                ("flux run true", ["flux", "run", "true"], 2.0),
                ("flux submit true", ["flux", "submit", "true"], None),
                ("flux jobs -a", ["flux", "jobs", "-a"], None),
                ("flux getattr size", ["flux", "getattr", "size"], None)):
            compare(what, argv, env_a, env_b, args.runs, target=target)
        # floors, measured with the fluxnb shell's environment
        for what, argv in (("floor: python3 -c pass", [sys.executable, "-c", "pass"]),
                           ("floor: python3 -S -c pass", [sys.executable, "-S", "-c", "pass"])):
            w, c = [], []
            for _ in range(args.runs):
                a, b = spawn_time(argv, env_a)
                w.append(a * 1000)
                c.append(b * 1000)
            print(show(what, w, [], higher_is_better=False, unit="ms").replace(
                "   (peer absent)", f"   cpu {statistics.median(c):.1f} ms"), flush=True)
    finally:
        mine.stop()
        if theirs:
            theirs.stop()
    # a whole instance: start, run `true`, shut down
    fa, fb = [], []
    for _ in range(args.start_runs):
        fa.append(timed(lambda: fluxnb_start(args.size, ["true"])))
        if peer:
            fb.append(timed(lambda: peer.start(args.size, ["true"])))
    print(show(f"flux start --test-size={args.size} true", fa, fb, higher_is_better=False,
               unit="ms"))
    print(f"# load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
