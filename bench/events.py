"""Event fan-out: events/s delivered to subscribers, beside the real Flux and raw PUB/SUB.

Run: python bench/events.py [N]

Side by side (when real Flux is built, ``FLUX_PREFIX``): the same ``import flux`` script
runs in an instance of each system (``flux start --test-size=1``), alternately: four
subscriber handles (threads) each receive N events that a fifth handle sends with
``event_send``; deliveries/s from the first send to the last receipt. Then fluxnb alone:
``event.pub`` to subscribers on every rank of a 4-broker instance, beside raw pyzmq
PUB -> 4 SUB.
"""

from __future__ import annotations

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from _floor import raw_pubsub_rate  # noqa: E402
from _peer import Peer, alternate, fluxnb_start, header, show, tmpfile  # noqa: E402

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


SCRIPT = """\
import sys, threading, time
import flux
n, nsub = int(sys.argv[1]), int(sys.argv[2])
subs = [flux.Flux() for _ in range(nsub)]
for s in subs:
    s.event_subscribe("bench.")
got = []
def drain(s):
    for _ in range(n):
        s.event_recv()
    got.append(time.perf_counter())
threads = [threading.Thread(target=drain, args=(s,)) for s in subs]
for t in threads:
    t.start()
pub = flux.Flux()
t0 = time.perf_counter()
for i in range(n):
    pub.event_send("bench.ev", {"i": i})
for t in threads:
    t.join()
print(n * nsub / (max(got) - t0))
"""


def side_by_side(n: int, repeat: int = 3) -> None:
    peer = Peer.find()
    print(header(peer, f"events: {n} events to 4 subscribers through `import flux`"))
    script = tmpfile(SCRIPT)
    try:
        argv = [script, str(n), "4"]
        a, b = alternate(
            lambda: float(fluxnb_start(1, [sys.executable, *argv]).split()[-1]),
            (lambda: float(peer.start(1, [peer.flux, "python", *argv]).split()[-1]))
            if peer else None, repeat)
        print(show("event_send -> 4 subscribers", a, b, higher_is_better=True,
                   unit="deliveries/s"))
    finally:
        os.unlink(script)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    side_by_side(n)
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
