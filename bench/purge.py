"""Bounded memory: rank 0's RSS after 1,000 and after 10,000 finished jobs.

Run: python bench/purge.py [--first N] [--second N] [--nodes K]

Rank 0 runs in a process of its own (``--processes``), so its resident set size
(``VmRSS`` of ``/proc/<broker.pid>/status``) is the broker's alone. Jobs use test
exec (no process): what is measured is what the instance keeps per finished job.
The instance runs with its default purge limits (``job-manager.inactive-num-limit``
and ``inactive-age-limit``). Target (issue 15): the second figure no more than 1.2x
the first.

Side by side (when real Flux is built, ``FLUX_PREFIX``): the same shell script runs in
an instance of each system (``flux start --test-size=K``, fluxnb with ``--processes``),
submitting the jobs with ``flux submit --cc --wait`` and reading rank 0's RSS from
``/proc/$(flux getattr broker.pid)/status`` once idle, after the first and the second
count (``--peer-second`` caps the second count for both, flux-core being slower).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time

import sys

from fluxnb import Flux, Instance
from fluxnb.job import JobspecV1

sys.path.insert(0, os.path.dirname(__file__))
from _peer import Peer, fluxnb_start, header  # noqa: E402

RSS_SCRIPT = r"""
rss() { awk '/^VmRSS:/ {print $2}' /proc/$(flux getattr broker.pid)/status; }
echo start $(rss)
flux submit --cc=1-$1 --quiet --wait --setattr=system.exec.test.run_duration=0.001s true
sleep 2.5; echo first $(rss)
flux submit --cc=1-$(($2 - $1)) --quiet --wait --setattr=system.exec.test.run_duration=0.001s true
sleep 2.5; echo second $(rss)
"""


def shell_rss(run, first: int, second: int) -> dict[str, int]:
    out = run(["sh", "-c", RSS_SCRIPT, "rss", str(first), str(second)])
    return {k: int(v) for k, v in (line.split() for line in out.splitlines() if line.strip())}


def side_by_side(first: int, second: int, nodes: int) -> None:
    peer = Peer.find()
    print(header(peer, f"rank 0 RSS after {first:,} and {second:,} test-exec jobs "
                       "(flux submit --cc --wait), both systems"))
    rows = [("fluxnb", lambda argv: fluxnb_start(nodes, argv, processes=True, timeout=1800))]
    if peer:
        rows.append(("flux-core", lambda argv: peer.start(nodes, argv, timeout=1800)))
    for who, run in rows:
        r = shell_rss(run, first, second)
        print(f"{who:<10} RSS start {r['start'] / 1024:6.1f} MiB, after {first:,} "
              f"{r['first'] / 1024:6.1f} MiB, after {second:,} {r['second'] / 1024:6.1f} MiB: "
              f"second / first {r['second'] / r['first']:.2f}")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def run_jobs(h: Flux, n: int, window: int = 500) -> float:
    """Submit ``n`` test-exec jobs (at most ``window`` unfinished); wait until all are inactive."""
    js = JobspecV1.from_command(["true"])
    js.environment = dict(os.environ)
    js.setattr("system.exec.test.run_duration", "0s")
    payload = {"jobspec": json.loads(js.dumps()), "urgency": 16, "flags": 0}
    h.event_subscribe("job-state")
    t = time.perf_counter()
    sent = done = 0
    ids: set[int] = set()
    while done < n:
        batch = [h.rpc("job-manager.submit", payload, nodeid=0)
                 for _ in range(min(window - (sent - done), n - sent))]
        sent += len(batch)
        ids.update(f.get()["id"] for f in batch)
        ev = h.event_recv("job-state", timeout=120)
        for jobid, state, _ in ev.json["transitions"]:
            if state == "INACTIVE" and jobid in ids:
                ids.discard(jobid)
                done += 1
    h.event_unsubscribe("job-state")
    return n / (time.perf_counter() - t)


def settle(pid: int) -> int:
    """RSS once the broker is idle (the purge timer has run, the KVS written out)."""
    time.sleep(2.5)
    return rss_kib(pid)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--first", type=int, default=1000)
    ap.add_argument("--second", type=int, default=10000)
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--peer-second", type=int, default=5000,
                    help="second count of the side-by-side run (default 5000)")
    args = ap.parse_args()
    side_by_side(args.first, min(args.second, args.peer_second), args.nodes)
    gc.collect()
    with Instance(test_size=args.nodes, processes=True) as inst, Flux(inst.uri) as h:
        pid = int(h.rpc("attr.get", {"name": "broker.pid"}, nodeid=0).get()["value"])
        limit = h.rpc("job-manager.stats-get", {}, nodeid=0).get()
        start = rss_kib(pid)
        print(f"rank 0 RSS at start                 {start / 1024:7.1f} MiB")
        rate = run_jobs(h, args.first)
        first = settle(pid)
        print(f"rank 0 RSS after {args.first:>6,} jobs         {first / 1024:7.1f} MiB "
              f"({rate:.0f} jobs/s)")
        rate = run_jobs(h, args.second - args.first)
        second = settle(pid)
        stats = h.rpc("job-manager.stats-get", {}, nodeid=0).get()
        print(f"rank 0 RSS after {args.second:>6,} jobs         {second / 1024:7.1f} MiB "
              f"({rate:.0f} jobs/s; {stats['inactive_jobs']} inactive jobs kept, "
              f"limits: num {limit.get('inactive_num_limit')}, age {limit.get('inactive_age_limit')})")
        ratio = second / first
        print(f"second / first = {ratio:.2f} (target <= 1.2): {'met' if ratio <= 1.2 else 'NOT met'}")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
