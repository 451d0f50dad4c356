"""RPC round trips/s through a fluxnb broker, beside a raw pyzmq REQ/REP loop.

Run: python bench/rpc.py [N]

Both loops talk over ipc to a server in another process (the instance runs with
``processes=True``), so the ratio is broker overhead, not placement. The same is
also measured with the instance in a thread of this process, as ``%flux start``
hosts it, and to a rank two hops down the tree.
"""

from __future__ import annotations

import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__file__))
from _floor import raw_reqrep_rate  # noqa: E402

from fluxnb import Flux, Instance  # noqa: E402


def rpc_rate(h: Flux, n: int, nodeid: int | None = None) -> float:
    kw = {} if nodeid is None else {"nodeid": nodeid}
    for _ in range(200):
        h.rpc("attr.get", {"name": "size"}, **kw).get()
    t = time.perf_counter()
    for _ in range(n):
        h.rpc("attr.get", {"name": "size"}, **kw).get()
    return n / (time.perf_counter() - t)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    floor = raw_reqrep_rate(n)
    print(f"floor  raw pyzmq REQ/REP (ipc, other process)   {floor:>9,.0f} rt/s")
    with Instance(test_size=4, processes=True) as inst, Flux(inst.uri) as h:
        r = rpc_rate(h, n)
        print(f"fluxnb attr.get, broker in its own process       {r:>9,.0f} rt/s   "
              f"ratio floor/fluxnb {floor / r:.2f}x (target <= 3x)")
        r3 = rpc_rate(h, n // 2, nodeid=3)
        print(f"fluxnb attr.get to rank 3 (2 TBON hops, 3 procs) {r3:>9,.0f} rt/s   "
              f"ratio {floor / r3:.2f}x")
    with Instance(test_size=4) as inst, Flux(inst.uri) as h:
        r = rpc_rate(h, n)
        print(f"fluxnb attr.get, brokers in a thread of this one {r:>9,.0f} rt/s   "
              f"ratio {floor / r:.2f}x")


if __name__ == "__main__":
    main()
