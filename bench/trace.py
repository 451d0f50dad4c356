"""Per-call cost of a traced function: undecorated, fluxnb.trace, perfflowaspect (PyPI).

Each variant runs in its own process (both tracers read PERFFLOW_OPTIONS when first
used) in a scratch directory, calls a trivial function N times, and reports the time
per call and the overhead over the undecorated call, for B/E (verbose) and X
(compact) events. The cost of writing the trace (at exit for fluxnb's buffer) is
included: each process times its calls *and* its final flush.

Run: python bench/trace.py [N]      (pip install perfflowaspect for the comparison)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peer import no_counterpart  # noqa: E402

CHILD = r"""
import json, os, sys, time
kind, n = sys.argv[1], int(sys.argv[2])
if kind == "fluxnb":
    from fluxnb.trace import critical_path, flush
elif kind == "perfflowaspect":
    from perfflowaspect.aspect import critical_path
    flush = lambda: None
def work(x):
    return x + 1
f = work if kind == "none" else critical_path()(work)
for i in range(min(n, 2000)):   # warm up (and open the trace file)
    f(i)
if kind == "fluxnb":
    flush()
t = time.perf_counter()
for i in range(n):
    f(i)
if kind == "fluxnb":
    flush()
dt = time.perf_counter() - t
print(json.dumps({"ns_per_call": dt / n * 1e9}))
"""


def measure(kind: str, n: int, options: str) -> float | None:
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, PERFFLOW_OPTIONS=options)
        r = subprocess.run([sys.executable, "-c", CHILD, kind, str(n)], cwd=d, env=env,
                           capture_output=True, text=True)
        if r.returncode != 0:
            if kind == "perfflowaspect" and "No module named" in r.stderr:
                return None
            raise RuntimeError(f"{kind}: {r.stderr}")
        return json.loads(r.stdout.splitlines()[-1])["ns_per_call"]


def main() -> None:
    print(no_counterpart("per-call cost of a traced function", "perfflowaspect (PyPI) and the undecorated call"))
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(f"{n} calls of a trivial function, per call (best of 3):")
    print(f"{'variant':<34}{'ns/call':>10}{'overhead ns':>14}{'vs perfflowaspect':>20}")
    base = min(measure("none", n, "") for _ in range(3))
    print(f"{'undecorated':<34}{base:>10.0f}{'':>14}")
    for label, opts in (("verbose (B/E)", "log-event=verbose"), ("compact (X)", "log-event=compact")):
        ours = min(measure("fluxnb", n, opts) for _ in range(3))
        pfa_runs = [measure("perfflowaspect", n, opts) for _ in range(3)]
        pfa = None if None in pfa_runs else min(pfa_runs)
        ratio = f"{(pfa - base) / (ours - base):.1f}x less" if pfa else "not installed"
        print(f"{'fluxnb.trace ' + label:<34}{ours:>10.0f}{ours - base:>14.0f}{ratio:>20}")
        if pfa is not None:
            print(f"{'perfflowaspect ' + label:<34}{pfa:>10.0f}{pfa - base:>14.0f}")
    disabled = min(measure("fluxnb", n, "log-enable=False") for _ in range(3))
    print(f"{'fluxnb.trace log-enable=False':<34}{disabled:>10.0f}{disabled - base:>14.0f}")


if __name__ == "__main__":
    main()
