"""The notebook face's latency: ``%flux start`` to a ready instance and ``%flux run true``.

    python bench/notebook.py [--repeat 20] [--profile]

Everything runs in one IPython ``InteractiveShell`` (what a Jupyter kernel executes
cells in), beside the shell's own floor: an empty cell and a trivial line magic.
Targets: ready < 0.5 s; ``%flux run true`` < 50 ms median. ``--profile`` prints where
the time of ``%flux run true`` goes (cProfile, cumulative).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--profile", action="store_true", help="profile %%flux run true")
    args = ap.parse_args(argv)

    os.environ.setdefault("FLUXNB_QUIET", "1")
    from IPython.testing.globalipapp import start_ipython
    ip = start_ipython()
    ip.run_line_magic("load_ext", "fluxnb")

    empty_cell = _median_ms(lambda: ip.run_cell("", store_history=False), args.repeat)
    trivial_magic = _median_ms(lambda: ip.run_line_magic("pwd", ""), args.repeat)

    t = time.perf_counter()
    out = ip.run_line_magic("flux", "start --test-size=4")
    start_s = time.perf_counter() - t
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        return 1
    try:
        ip.run_line_magic("flux", "run true")  # warm: first-use imports
        status = _median_ms(lambda: ip.run_line_magic("flux", "getattr size"), args.repeat)
        run_true = _median_ms(lambda: ip.run_line_magic("flux", "run true"), args.repeat)
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(args.repeat):
                ip.run_line_magic("flux", "run true")
            prof.disable()
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(25)
            print(buf.getvalue())
    finally:
        ip.run_line_magic("flux", "stop")

    def verdict(value, target):
        return "ok" if value < target else "OVER TARGET"

    print(f"kernel floor: empty cell          {empty_cell:8.2f} ms (median of {args.repeat})")
    print(f"kernel floor: %pwd line magic     {trivial_magic:8.2f} ms (median of {args.repeat})")
    print(f"%flux start --test-size=4 → ready {start_s * 1e3:8.1f} ms  target < 500 ms  "
          f"{verdict(start_s, 0.5)}")
    print(f"%flux getattr size                {status:8.2f} ms (median of {args.repeat})")
    print(f"%flux run true                    {run_true:8.2f} ms (median of {args.repeat})  "
          f"target < 50 ms  {verdict(run_true, 50)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
