"""RPC round trips/s from a job to its broker, fluxnb beside the real flux-core.

Run: python bench/rpc.py [N]

The same script runs under each system, alternately (fluxnb, flux, fluxnb, ...):
``flux start --test-size=4 python SCRIPT`` where the script does ``import flux`` and
``h.rpc(...).get()`` one at a time (flux-core's own Python under ``flux python``;
fluxnb's ``flux`` package inside a fluxnb instance). Rows: ``attr.get`` and
``kvs.lookup`` answered by rank 0, and ``attr.get`` sent to rank 3 (two TBON hops); for
the first two also the CPU time one round trip costs, the client's and rank 0's broker
process's together (what bounds the rate when the machine's cores are shared; fluxnb's
broker process holds all four ranks as threads, flux-core's rank 0 is a process alone).

Floors in the same run: a raw Python ping-pong over an AF_UNIX socket to another
process (what bounds any Python client and broker pair here), and the raw pyzmq
REQ/REP loop. Last, fluxnb's own handle (``fluxnb.Flux``) with the instance's brokers
in processes, and in a thread of the client's process (as ``%flux start`` hosts it).
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _floor import raw_reqrep_rate, raw_unix_rate  # noqa: E402
from _peer import Peer, alternate, fluxnb_start, header, show, tmpfile  # noqa: E402

SCRIPT = r'''
import json, os, resource, sys, time
import flux

h = flux.Flux()
n = int(sys.argv[1])
broker = int(h.attr_get("broker.pid"))


def cpu():
    # this client's CPU seconds, and rank 0's broker process's
    ru = resource.getrusage(resource.RUSAGE_SELF)
    with open(f"/proc/{broker}/stat") as f:
        st = f.read().rsplit(")", 1)[1].split()
    return ru.ru_utime + ru.ru_stime, (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")


out = {}


def rate(name, fn, n, cpu_too=True):
    for _ in range(min(300, n)):
        fn()
    c0, b0 = cpu()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    out[name + " rt/s"] = n / (time.perf_counter() - t)
    c1, b1 = cpu()
    if cpu_too:
        out[name + " CPU us/rt (client+broker)"] = 1e6 * ((c1 - c0) + (b1 - b0)) / n


rate("attr.get", lambda: h.rpc("attr.get", {"name": "size"}).get(), n)
import flux.kvs
flux.kvs.put(h, "bench.key", 42)
flux.kvs.commit(h)
lookup = {"key": "bench.key", "flags": 0, "namespace": "primary"}
assert "val" in h.rpc("kvs.lookup", lookup).get()
rate("kvs.lookup", lambda: h.rpc("kvs.lookup", lookup).get(), n)
rate("attr.get to rank 3 (2 hops)", lambda: h.rpc("attr.get", {"name": "size"}, nodeid=3).get(),
     n // 2, cpu_too=False)
print(json.dumps(out))
'''


def rpc_rate(h, n: int, nodeid: int | None = None) -> float:
    kw = {} if nodeid is None else {"nodeid": nodeid}
    for _ in range(200):
        h.rpc("attr.get", {"name": "size"}, **kw).get()
    t = time.perf_counter()
    for _ in range(n):
        h.rpc("attr.get", {"name": "size"}, **kw).get()
    return n / (time.perf_counter() - t)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    peer = Peer.find()
    print(header(peer, f"bench/rpc.py: one RPC at a time from a job (`import flux`), N={n}"))
    script = tmpfile(SCRIPT)

    def fluxnb_run() -> dict:
        return json.loads(fluxnb_start(4, [sys.executable, script, str(n)]).strip().splitlines()[-1])

    def peer_run() -> dict:
        return json.loads(peer.start(4, [*peer.python(), script, str(n)]).strip().splitlines()[-1])

    a, b = alternate(fluxnb_run, peer_run if peer else None, repeat=3)
    for op in a[0]:
        cpu = "CPU" in op
        print(show(op, [r[op] for r in a], [r[op] for r in b], higher_is_better=not cpu,
                   target=1 if op in ("attr.get rt/s", "kvs.lookup rt/s") else None))
    os.unlink(script)

    unix = [raw_unix_rate(n * 2) for _ in range(3)]
    print(show("floor: raw Python AF_UNIX ping-pong rt/s", unix, [], higher_is_better=True)
          .replace("fluxnb ", "      ").replace("   (peer absent)", ""))
    floor = raw_reqrep_rate(n * 2)
    print(f"{'floor: raw pyzmq REQ/REP (ipc) rt/s':<44}        {floor:,.0f}")

    from fluxnb import Flux, Instance
    with Instance(test_size=4, processes=True) as inst, Flux(inst.uri) as h:
        r = rpc_rate(h, n)
        print(f"{'fluxnb.Flux attr.get, brokers in processes':<44} fluxnb {r:,.0f} rt/s   "
              f"{r / statistics_median(unix):.2f} of the AF_UNIX floor")
        r3 = rpc_rate(h, n // 2, nodeid=3)
        print(f"{'fluxnb.Flux attr.get to rank 3 (processes)':<44} fluxnb {r3:,.0f} rt/s")
    with Instance(test_size=4) as inst, Flux(inst.uri) as h:
        r = rpc_rate(h, n)
        print(f"{'fluxnb.Flux attr.get, brokers in this process':<44} fluxnb {r:,.0f} rt/s (inproc)")


def statistics_median(v):
    import statistics
    return statistics.median(v)


if __name__ == "__main__":
    main()
