"""KVS put+commit/s and lookups/s from a job, fluxnb beside the real flux-core.

Run: python bench/kvs.py [N]

The same script runs under each system, alternately (fluxnb, flux, fluxnb, ...):
``flux start --test-size=1 python SCRIPT`` where the script does ``import flux`` and,
one at a time: ``flux.kvs.put`` + ``flux.kvs.commit`` (N/4 of them), a ``kvs.lookup``
RPC of one of those keys (N), and ``flux.kvs.get`` (N). Medians of 3 with ranges, and
the ratio (> 1: fluxnb ahead).

Then fluxnb's own API alone (``fluxnb.kvs``, brokers in processes), beside the raw
AF_UNIX and pyzmq floors: ``kvs.get`` goes through the read replica, which answers
from cached blobs while the root board shows no commit since (strictly consistent);
``root moved`` is its worst case, a commit by another client before every lookup.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _floor import raw_reqrep_rate, raw_unix_rate  # noqa: E402
from _peer import Peer, alternate, fluxnb_start, header, show, tmpfile  # noqa: E402

from fluxnb import Flux, Instance, kvs  # noqa: E402

SCRIPT = r'''
import json, sys, time
import flux
import flux.kvs

h = flux.Flux()
n = int(sys.argv[1])
m = max(1, n // 4)
out = {}
t = time.perf_counter()
for i in range(m):
    flux.kvs.put(h, f"bench.d{i % 64}.k{i}", i)
    flux.kvs.commit(h)
out["put+commit/s"] = m / (time.perf_counter() - t)
keys = [f"bench.d{i % 64}.k{i}" for i in range(m)]
assert flux.kvs.get(h, keys[-1]) == m - 1
t = time.perf_counter()
for i in range(n):
    h.rpc("kvs.lookup", {"key": keys[i % m], "flags": 0, "namespace": "primary"}).get()
out["kvs.lookup RPC, one at a time/s"] = n / (time.perf_counter() - t)
t = time.perf_counter()
for i in range(n):
    flux.kvs.get(h, keys[i % m])
out["flux.kvs.get/s"] = n / (time.perf_counter() - t)
print(json.dumps(out))
'''


def pipelined(n: int, send, window: int = 64) -> float:
    """Requests/s of ``send(i)`` for i < n, keeping up to ``window`` futures in flight."""
    t = time.perf_counter()
    inflight = []
    for i in range(n):
        inflight.append(send(i))
        if len(inflight) == window:
            for f in inflight:
                f.get()
            inflight = []
    for f in inflight:
        f.get()
    return n / (time.perf_counter() - t)


def measure(h: Flux, n: int) -> dict[str, float]:
    out = {}
    t = time.perf_counter()
    for i in range(n):
        kvs.put(h, f"bench.d{i % 64}.k{i}", i)
        kvs.commit(h)
    out["put+commit"] = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(n):
        h.rpc("kvs.lookup", {"key": f"bench.d{i % 64}.k{i}"}, nodeid=0).get()
    out["lookup (one RPC each)"] = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(n):
        kvs.get(h, f"bench.d{i % 64}.k{i}")
    out["kvs.get (replica)"] = n / (time.perf_counter() - t)
    # the replica's worst case: another client commits before every lookup, so the
    # root has always moved (timed: the lookups alone)
    m = max(1, n // 5)
    with Flux(h.uri) as other:
        for label, cache in (("kvs.get, root moved", "1"), ("  same, replica off", "0")):
            os.environ["FLUXNB_KVS_CACHE"] = cache
            spent = 0.0
            for i in range(m):
                kvs.put(other, f"bench.w.k{i}", i)
                kvs.commit(other)
                t = time.perf_counter()
                kvs.get(h, f"bench.d{i % 64}.k{i}")
                spent += time.perf_counter() - t
            out[label] = m / spent
        os.environ.pop("FLUXNB_KVS_CACHE")
    # many requests in flight at once, as flux futures allow (window of 64)
    out["lookup pipelined"] = pipelined(
        n, lambda i: h.rpc("kvs.lookup", {"key": f"bench.d{i % 64}.k{i}"}, nodeid=0))

    def put_commit(i):
        kvs.put(h, f"bench.p{i % 64}.k{i}", i)
        return kvs._txn(h, None).commit_async()

    out["put+commit pipelined"] = pipelined(n, put_commit)
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    peer = Peer.find()
    print(header(peer, f"bench/kvs.py: KVS from a job (`import flux`), N={n}"))
    script = tmpfile(SCRIPT)

    def fluxnb_run() -> dict:
        return json.loads(fluxnb_start(1, [sys.executable, script, str(n)]).strip().splitlines()[-1])

    def peer_run() -> dict:
        return json.loads(peer.start(1, [*peer.python(), script, str(n)]).strip().splitlines()[-1])

    a, b = alternate(fluxnb_run, peer_run if peer else None, repeat=3)
    for op in a[0]:
        print(show(op, [r[op] for r in a], [r[op] for r in b], higher_is_better=True, target=1))
    os.unlink(script)

    unix = raw_unix_rate(n * 2)
    floor = raw_reqrep_rate(n * 2)
    print(f"floor: raw Python AF_UNIX ping-pong {unix:,.0f} rt/s; raw pyzmq REQ/REP (ipc) {floor:,.0f} rt/s")
    print("# fluxnb's own API (fluxnb.Flux, fluxnb.kvs), brokers in processes")
    for label, kw in (("in-memory", {"processes": True}),
                      ("SQLite statedir", {"processes": True, "statedir": tempfile.mkdtemp()})):
        with Instance(test_size=1, **kw) as inst, Flux(inst.uri) as h:
            for op, rate in measure(h, n).items():
                print(f"  {label:<16} {op:<22} {rate:>9,.0f}/s   {rate / unix:.2f} of the AF_UNIX floor")


if __name__ == "__main__":
    main()
