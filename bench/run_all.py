"""Run every benchmark in bench/ one after another and write their raw output as Markdown.

Run: python bench/run_all.py [OUT.md] [--only NAME ...] [--quick]

Each section is headed by the exact command and the load average before it started,
so bench/RESULTS.md's raw output can be regenerated from one run on a quiet machine.
Every script measures its peer (real Flux when built, or its floor) in the same run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (name, arguments, arguments with --quick)
RUNS = [
    ("rpc", [], ["5000"]),
    ("kvs", [], ["2000"]),
    ("events", [], ["2000"]),
    ("throughput", ["1000", "--growth"], ["300", "--repeat", "1"]),
    ("latency", [], []),
    ("hierarchy", [], []),
    ("match", [], []),
    ("purge", [], ["--first", "300", "--second", "1000", "--peer-second", "1000"]),
    ("notebook", ["--repeat", "20"], ["--repeat", "5", "--grid-jobs", "1000"]),
    ("dyad", [], ["--quick"]),
    ("trace", [], ["20000"]),
    ("fluence", [], ["--seeds", "4"]),
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default="-")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    out = sys.stdout if args.out == "-" else open(args.out, "w")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE.parent), env.get("PYTHONPATH")) if p)
    failed = 0
    for name, full, quick in RUNS:
        if args.only and name not in args.only:
            continue
        script = HERE / f"{name}.py"
        if not script.exists():
            continue
        argv = quick if args.quick else full
        cmd = f"python bench/{name}.py {' '.join(argv)}".strip()
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        t = time.perf_counter()
        p = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True,
                           env=env, cwd=HERE.parent)
        took = time.perf_counter() - t
        text = p.stdout.rstrip()
        if p.returncode != 0:
            failed += 1
            text += f"\n(exit {p.returncode})\n" + p.stderr[-3000:]
        out.write(f"### `{cmd}`\n\nload average before: {load}; took {took:.0f} s\n\n"
                  f"```\n{text}\n```\n\n")
        out.flush()
    if out is not sys.stdout:
        out.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
