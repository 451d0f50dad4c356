"""Two fluxnb checkouts side by side: did a change make job throughput or latency worse?

Run: python bench/compare_trees.py OLD_TREE [N] [--repeat R]

e.g. ``git worktree add /tmp/old 553c7fe && python bench/compare_trees.py /tmp/old``.
Alternating the two trees (old, new, old, ...), each in a fresh ``fluxnb start
--test-size=4``: N jobs through ``flux submit --cc=1-N --quiet --wait`` (real ``true``
processes, and test exec), N jobs through the Python API in the process hosting the
brokers (``job-manager.submit`` RPCs, the first benchmark's method), and ``flux run true``
from a shell. Prints each tree's median [range] and new/old (> 1: the new tree is ahead).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peer import alternate, load_average, spread, tmpfile  # noqa: E402

NEW = Path(__file__).resolve().parent.parent

TIMER = """\
import statistics, subprocess, sys, time
k = int(sys.argv[1]); runs = []
for _ in range(k):
    t = time.perf_counter(); subprocess.run(sys.argv[2:], check=True); runs.append(time.perf_counter() - t)
print(statistics.median(runs))
"""

API = """\
import json, os, sys, time
from fluxnb import Flux, Instance
from fluxnb.job import JobspecV1
n, test = int(sys.argv[1]), sys.argv[2] == "test"
with Instance(test_size=4) as inst, Flux(inst.uri) as h:
    js = JobspecV1.from_command(["true"]); js.environment = dict(os.environ)
    if test:
        js.setattr("system.exec.test.run_duration", "0s")
    payload = {"jobspec": json.loads(js.dumps()), "urgency": 16, "flags": 0}
    h.event_subscribe("job-state")
    t = time.perf_counter()
    ids = {f.get()["id"] for f in [h.rpc("job-manager.submit", payload, nodeid=0) for _ in range(n)]}
    done = 0
    while done < n:
        for jobid, state, _ in h.event_recv("job-state", timeout=120).json["transitions"]:
            done += state == "INACTIVE" and jobid in ids
    print(n / (time.perf_counter() - t))
"""


def run(tree: Path, argv: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUX_")}
    env["PYTHONPATH"] = str(tree)
    p = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True,
                       cwd=tree, timeout=900)
    if p.returncode != 0:
        raise RuntimeError(f"{tree}: {' '.join(argv[:4])}: {p.stderr[-1500:]}")
    return float(p.stdout.split()[-1])


def start(tree: Path, cmd: list[str]) -> list[str]:
    return ["-m", "fluxnb.cli.main", "start", "--test-size=4", *cmd]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("old", type=Path)
    ap.add_argument("n", nargs="?", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    old, n = args.old.resolve(), args.n
    timer, api = tmpfile(TIMER), tmpfile(API)
    print(f"# fluxnb {NEW} (new) against {old} (old), alternating; load average {load_average()}")
    test = "--setattr=system.exec.test.run_duration=0.001s"
    rows = [
        ("flux submit --cc --wait, real (jobs/s)", True,
         lambda t: n / run(t, start(t, [sys.executable, timer, "1", "flux", "submit", f"--cc=1-{n}", "--quiet",
                                        "--wait", "true"]))),
        ("flux submit --cc --wait, test exec (jobs/s)", True,
         lambda t: n / run(t, start(t, [sys.executable, timer, "1", "flux", "submit", f"--cc=1-{n}", "--quiet",
                                        "--wait", test, "true"]))),
        ("Python API job-manager.submit, real (jobs/s)", True, lambda t: run(t, [api, str(n), "real"])),
        ("Python API job-manager.submit, test (jobs/s)", True, lambda t: run(t, [api, str(n), "test"])),
        ("flux run true from a shell (s, median of 10)", False,
         lambda t: run(t, start(t, [sys.executable, timer, "10", "flux", "run", "true"]))),
    ]
    try:
        for what, higher, fn in rows:
            a, b = alternate(lambda: fn(old), lambda: fn(NEW), args.repeat)
            r = statistics.median(b) / statistics.median(a)
            if not higher:
                r = 1 / r
            print(f"{what:<46} old {spread(a)}   new {spread(b)}   new/old {r:.2f}x")
    finally:
        os.unlink(timer)
        os.unlink(api)
    print(f"# load average at end: {load_average()}")


if __name__ == "__main__":
    main()
