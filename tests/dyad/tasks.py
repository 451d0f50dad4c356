"""Producer and consumer tasks run as jobs by the DYAD tests (``python tasks.py ROLE N OUT``)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time

KIB, MIB = 1 << 10, 1 << 20


def size_of(i: int) -> int:
    """Sizes spread from 1 KiB to 10 MiB, volume kept modest (about 100 MB for 1,000 files):
    every 200th file is 10 MiB, every 50th 1-4 MiB, the rest 1-64 KiB."""
    if i % 200 == 199:
        return 10 * MIB
    if i % 50 == 49:
        return MIB * (1 + (i // 50) % 4)
    return KIB << (i % 7)


def content(i: int) -> bytes:
    return random.Random(i).randbytes(size_of(i))


def relpath(i: int) -> str:
    return f"{i % 10}/data{i}.bin"


def producer(n: int, out: str) -> None:
    from fluxnb import Flux, kvs
    from fluxnb.dyad import Dyad
    d = Dyad()
    d.init_env()
    ns = os.environ["DYAD_KVS_NAMESPACE"]
    # the consumer started first: wait until it says it is consuming
    next(kvs.watch(d.handle, "consumer-ready", namespace=ns, flags=kvs.FLUX_KVS_WAITCREATE))
    closed = {}
    for i in range(n):
        path = d.prod_path / relpath(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content(i)
        with open(path, "wb") as f:
            for off in range(0, len(data), MIB):   # written in pieces: never whole until closed
                f.write(data[off:off + MIB])
                f.flush()
        closed[i] = time.time()
        d.produce(path)
    json.dump({"rank": d.rank, "closed": closed}, open(out, "w"))
    d.finalize()


def consumer(n: int, out: str) -> None:
    from fluxnb import kvs
    from fluxnb.dyad import Dyad
    d = Dyad()
    d.init_env()
    kvs.put(d.handle, "consumer-ready", d.rank, namespace=d.kvs_namespace)
    kvs.commit(d.handle, namespace=d.kvs_namespace)
    bad, fetched, opened = [], 0, {}
    for i in range(n):
        path = d.cons_path / relpath(i)
        answer = d.consume(path)
        fetched += bool(answer["fetched"])
        with open(path, "rb") as f:
            opened[i] = time.time()
            data = f.read()
        want = content(i)
        if len(data) != len(want) or hashlib.sha256(data).digest() != hashlib.sha256(want).digest():
            bad.append({"i": i, "size": len(data), "want": len(want)})
    leftovers = [p for p, _, files in os.walk(d.cons_path) for f in files if f.endswith(".part")]
    json.dump({"rank": d.rank, "bad": bad, "fetched": fetched, "opened": opened,
               "leftovers": leftovers}, open(out, "w"))
    d.finalize()


if __name__ == "__main__":
    role, count, outfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    {"producer": producer, "consumer": consumer}[role](count, outfile)
