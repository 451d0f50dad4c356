"""Event fan-out: events/s delivered to subscribers on every rank, beside raw PUB/SUB.

Run: python bench/events.py [N]
"""

from __future__ import annotations

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from _floor import raw_pubsub_rate  # noqa: E402

from fluxnb import Flux, Instance  # noqa: E402


def fanout(inst: Instance, n: int) -> float:
    subs = [Flux(inst.rank_uri(r)) for r in range(inst.size)]
    for s in subs:
        s.event_subscribe("bench.")
    done = []

    def drain(s):
        for _ in range(n):
            s.event_recv()
        done.append(time.perf_counter())

    threads = [threading.Thread(target=drain, args=(s,)) for s in subs]
    for t in threads:
        t.start()
    with Flux(inst.uri) as pub:
        t0 = time.perf_counter()
        rpcs = [pub.rpc("event.pub", {"topic": "bench.ev", "payload": {"i": i}}) for i in range(n)]
        for r in rpcs:
            r.get()
    for t in threads:
        t.join()
    for s in subs:
        s.close()
    return n * inst.size / (max(done) - t0)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    floor = raw_pubsub_rate(n, 4)
    print(f"floor  raw pyzmq PUB -> 4 SUB (ipc):             {floor:>9,.0f} deliveries/s")
    with Instance(test_size=4, processes=True) as inst:
        r = fanout(inst, n)
        print(f"fluxnb event.pub -> subscribers on 4 ranks (procs) {r:>9,.0f} deliveries/s  "
              f"{floor / r:.2f}x below floor")
    with Instance(test_size=4) as inst:
        r = fanout(inst, n)
        print(f"fluxnb event.pub -> subscribers on 4 ranks (thread){r:>9,.0f} deliveries/s  "
              f"{floor / r:.2f}x below floor")


if __name__ == "__main__":
    main()
