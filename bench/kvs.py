"""KVS put+commit/s and lookups/s from one client, beside a raw pyzmq loop.

Run: python bench/kvs.py [N]

Targets (issue 2, this 2-core machine): >= 2,000 put+commit/s and >= 10,000
lookups/s. For reference, flux-core 0.88's Python bindings measured here:
241 put+commit/s and 4,378 lookups/s.

Rows: ``lookup (one RPC each)`` sends ``kvs.lookup`` itself; ``kvs.get`` goes
through ``fluxnb.kvs``, whose read replica answers from cached blobs while the root
board shows no commit since (strictly consistent); ``root moved`` is its worst case,
a commit by another client before every lookup.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _floor import raw_reqrep_rate  # noqa: E402

from fluxnb import Flux, Instance, kvs  # noqa: E402

FLUX_CORE = {"put+commit": 241, "lookup (one RPC each)": 4378, "kvs.get (replica)": 4378}


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
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    floor = raw_reqrep_rate(n)
    print(f"floor  raw pyzmq REQ/REP round trips (ipc, other process): {floor:,.0f}/s")
    for label, kw in (("broker process, in-memory", {"processes": True}),
                      ("broker process, SQLite statedir", {"processes": True,
                                                           "statedir": tempfile.mkdtemp()}),
                      ("broker thread, in-memory", {})):
        with Instance(test_size=1, **kw) as inst, Flux(inst.uri) as h:
            for op, rate in measure(h, n).items():
                ref = FLUX_CORE.get(op)
                extra = f"   flux-core 0.88: {ref:,}/s ({rate / ref:.1f}x)" if ref else ""
                print(f"{label:<32} {op:<22} {rate:>9,.0f}/s   {rate / floor:.2f} of floor{extra}")


if __name__ == "__main__":
    main()
