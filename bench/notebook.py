"""The notebook face's latency: ``%flux start`` to a ready instance, ``%flux run true``,
and the JobBrowser's grid with 10,000 jobs.

    python bench/notebook.py [--repeat 20] [--profile] [--grid-jobs 10000]

Everything runs in one IPython ``InteractiveShell`` (what a Jupyter kernel executes
cells in), beside the shell's own floor: an empty cell and a trivial line magic.
Targets: ready < 0.5 s; ``%flux run true`` < 50 ms median. ``--profile`` prints where
the time of ``%flux run true`` goes (cProfile, cumulative).

The grid figures time what a user does with ``--grid-jobs`` jobs in the instance
(all but 100 inactive, test exec): open a JobBrowser (its first render in the
kernel: the job list, the sorted view and the first page of rows), click a column
header, type in the text filter, scroll, and an event (one job changes state: its
record is fetched and the page re-sent). Targets: first render < 1 s, an update
< 100 ms. Floors from the same run: one ``job-list.list`` of all the jobs (what any
first render must fetch) and one raw pyzmq round trip (``bench/_floor.py``; what any
update that asks the instance must pay). The widget runs without a front end, so
the times are the kernel's; the page sent is measured in bytes, beside the whole table.
"""

from __future__ import annotations

import argparse
import contextlib
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


def grid_figures(njobs: int, repeat: int) -> list[str]:
    """The JobBrowser grid with ``njobs`` jobs: first render, sort, filter, scroll, event."""
    import json

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _floor import raw_reqrep_rate
    from fluxnb import Flux, Instance
    from fluxnb.job import JobspecV1, job_list, job_list_id, submit_async
    from fluxnb.widgets import JobBrowser

    running = min(100, njobs)
    # every job kept (no purge), as a user browsing 10,000 jobs of a campaign would set it
    with Instance(test_size=4, cores_per_node=32,
                  attrs={"job-manager.inactive-num-limit": "-1"}) as inst, Flux(inst.uri) as h:
        def spec(i, duration):
            js = JobspecV1.from_command(["true"])
            js.setattr("system.exec.test.run_duration", duration)
            js.setattr("system.job.name", f"job{i % 97}")
            return js
        t = time.perf_counter()
        futures = [submit_async(h, spec(i, "0s")) for i in range(njobs - running)]
        ids = [f.get_id() for f in futures]
        futures = [submit_async(h, spec(i, "1h")) for i in range(running)]
        ids += [f.get_id() for f in futures]
        while True:  # every short job inactive, the long ones running
            stats = h.rpc("job-list.stats", {}, nodeid=0).get()["job_states"]
            if stats["inactive"] >= njobs - running and stats.get("run", 0) >= running:
                break
            time.sleep(0.2)
        made = time.perf_counter() - t

        def list_all():  # what the grid asks for
            return job_list(h, max_entries=0, attrs=JobBrowser.ATTRS).get_jobs()
        list_floor = _median_ms(list_all, max(3, repeat // 4))
        rtt_floor = 1e3 / raw_reqrep_rate(5000)

        renders, complete = [], []
        for _ in range(max(3, repeat // 4)):
            t = time.perf_counter()
            jb = JobBrowser(handle=h, max_entries=0)
            renders.append((time.perf_counter() - t) * 1e3)
            while not (jb.loaded and jb.table.window["total"] == njobs):
                time.sleep(0.002)
            complete.append((time.perf_counter() - t) * 1e3)
            jb.close()
        first = statistics.median(renders)
        whole = statistics.median(complete)
        jb = JobBrowser(handle=h, max_entries=0)
        try:
            while not (jb.loaded and jb.table.window["total"] == njobs):
                time.sleep(0.01)
            grid = jb.table
            columns = ["name", "runtime", "state", "id", "nnodes", "user"]
            k = iter(range(10 ** 6))
            sort = _median_ms(lambda: setattr(grid, "sort_by", columns[next(k) % len(columns)]), repeat)
            words = ["job1", "job12", "", "RUN", "job4", ""]
            k = iter(range(10 ** 6))
            typed = _median_ms(lambda: setattr(jb.search, "value", words[next(k) % len(words)]), repeat)
            k = iter(range(10 ** 6))
            scroll = _median_ms(lambda: setattr(grid, "offset", (next(k) * 733) % njobs), repeat)
            # an event: a job the instance says changed (the feed thread's call, made here)
            k = iter(range(10 ** 6))
            def event():
                jobid = ids[next(k) % len(ids)]
                jb._feed_callback(h, [[int(jobid), "INACTIVE", time.time()]])
            update = _median_ms(event, repeat)
            page_bytes = len(json.dumps(grid.window))
            table_bytes = len(json.dumps([job_list_id(h, i).get()["job"] for i in ids[:200]])) \
                * njobs // 200
        finally:
            jb.close()

    def verdict(value, target):
        return "ok" if value < target else "OVER TARGET"

    return [
        f"grid: {njobs} jobs made (test exec, {running} running) in {made:.1f}s",
        f"floor: job-list.list of {njobs} jobs   {list_floor:8.1f} ms (median)",
        f"floor: raw pyzmq round trip          {rtt_floor * 1e3:8.1f} us",
        f"grid first render ({njobs} jobs)     {first:8.1f} ms  target < 1000 ms  {verdict(first, 1000)}"
        f"  (the newest {JobBrowser.FIRST_PAGE}, sorted, first page sent)",
        f"grid all {njobs} jobs loaded           {whole:8.1f} ms  "
        f"({whole / list_floor:.2f}x the job-list floor)",
        f"grid sort by a column click          {sort:8.1f} ms  target < 100 ms  {verdict(sort, 100)}",
        f"grid text filter keystroke           {typed:8.1f} ms  target < 100 ms  {verdict(typed, 100)}",
        f"grid scroll to another page          {scroll:8.2f} ms  target < 100 ms  {verdict(scroll, 100)}",
        f"grid update on one job's event       {update:8.1f} ms  target < 100 ms  {verdict(update, 100)}"
        f"  ({update / rtt_floor:.0f}x a raw round trip)",
        f"grid page sent: {page_bytes} bytes ({len(grid.window['rows'])} rows); "
        f"the whole table would be ~{table_bytes // 1000} kB",
    ]


PEER_TIMER = """\
import statistics, subprocess, sys, time
n = int(sys.argv[1]); runs = []
for _ in range(n):
    t = time.perf_counter(); subprocess.run(sys.argv[2:], check=True); runs.append(time.perf_counter() - t)
print(statistics.median(runs))
"""


def peer_figures(repeat: int) -> list[str]:
    """The real Flux's nearest figures: an instance started from a shell, and
    ``flux run true`` from a shell inside one (a notebook user of flux-core pays these)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _peer import Peer, absent_note, tmpfile
    peer = Peer.find()
    if peer is None:
        return ["# " + absent_note()]
    starts = []
    for _ in range(max(3, repeat // 3)):
        t = time.perf_counter()
        peer.start(4, ["true"])
        starts.append(time.perf_counter() - t)
    timer = tmpfile(PEER_TIMER)
    try:
        run = float(peer.start(4, [sys.executable, timer, str(repeat), "flux", "run", "true"]).split()[-1])
    finally:
        os.unlink(timer)
    import statistics
    return [f"# peer: flux-core {peer.version()} from a shell, in the same run:",
            f"flux start --test-size=4 true      {statistics.median(starts) * 1e3:8.1f} ms "
            f"(median of {len(starts)}; includes its shutdown)",
            f"flux run true (shell, in instance) {run * 1e3:8.2f} ms (median of {repeat})"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--profile", action="store_true", help="profile %%flux run true")
    ap.add_argument("--grid-jobs", type=int, default=10000,
                    help="jobs for the JobBrowser grid figures (0: skip them)")
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
        # what the magic prints (the size, as a terminal shows it) is kept out of this report
        with contextlib.redirect_stdout(io.StringIO()) as shown:
            status = _median_ms(lambda: ip.run_line_magic("flux", "getattr size"), args.repeat)
        assert shown.getvalue().split() == ["4"] * args.repeat, shown.getvalue()[:200]
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
        ip.run_line_magic("flux", "-q stop")

    def verdict(value, target):
        return "ok" if value < target else "OVER TARGET"

    print(f"kernel floor: empty cell          {empty_cell:8.2f} ms (median of {args.repeat})")
    print(f"kernel floor: %pwd line magic     {trivial_magic:8.2f} ms (median of {args.repeat})")
    print(f"%flux start --test-size=4 → ready {start_s * 1e3:8.1f} ms  target < 500 ms  "
          f"{verdict(start_s, 0.5)}")
    print(f"%flux getattr size                {status:8.2f} ms (median of {args.repeat})")
    print(f"%flux run true                    {run_true:8.2f} ms (median of {args.repeat})  "
          f"target < 50 ms  {verdict(run_true, 50)}")
    for line in peer_figures(min(args.repeat, 10)):
        print(line)
    if args.grid_jobs:
        for line in grid_figures(args.grid_jobs, args.repeat):
            print(line)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
