"""DYAD against polling a shared directory: latency from producer close to consumer open.

Two ranks; a producer on rank 0 writes files, a consumer on rank 1 reads them.

* DYAD: the producer closes a file in its node-local directory and publishes it;
  the consumer (already waiting) has its rank's service fetch the file, then opens it.
* polling: the producer writes into a shared directory (temporary name, then
  ``rename``, so no partial file is seen); the consumer checks every 0.1 s.

Per size it prints median and p90 latency (close -> open), end-to-end MB/s
(size / median latency) and, for DYAD, the transfer bandwidth (size / time the
service took to move the bytes), next to a plain local copy (``shutil.copyfile``)
of as many files of the same size, kept until the last is made, as DYAD's are.

Run: ``python bench/dyad.py [--quick] [--processes]``. Producer and consumer are
threads of this process, each with its own connection; the brokers run in their
usual thread (``%flux start``'s default), or with ``--processes`` each in its own
process, where every chunk crosses a socket.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peer import no_counterpart  # noqa: E402

os.environ.setdefault("FLUXNB_QUIET", "1")

SIZES = [(1 << 10, "1 KiB"), (64 << 10, "64 KiB"), (1 << 20, "1 MiB"), (10 << 20, "10 MiB")]
POLL = 0.1


def _pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def run_dyad(inst, ns, size, n, rng):
    from fluxnb.dyad import Dyad
    prod, cons = Dyad(), Dyad()
    prod.init(kvs_namespace=ns, uri=inst.rank_uri(0))
    cons.init(kvs_namespace=ns, uri=inst.rank_uri(1))
    data = os.urandom(size)
    closed, opened, transfer = {}, {}, []

    def consumer():
        for i in range(n):
            path = cons.cons_path / f"{size}" / f"f{i}"
            answer = cons.consume(path)
            with open(path, "rb") as f:
                opened[i] = time.time()
                assert len(f.read()) == size
            if answer.get("transfer"):
                transfer.append(answer["transfer"])

    t = threading.Thread(target=consumer)
    t.start()
    for i in range(n):
        time.sleep(rng.uniform(0, POLL))
        path = prod.prod_path / f"{size}" / f"f{i}"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        closed[i] = time.time()
        prod.produce(path)
    t.join()
    prod.finalize()
    cons.finalize()
    return [opened[i] - closed[i] for i in range(n)], transfer


def run_poll(shared, size, n, rng):
    data = os.urandom(size)
    closed, opened = {}, {}

    def consumer():
        for i in range(n):
            path = os.path.join(shared, f"{size}-f{i}")
            while not os.path.exists(path):
                time.sleep(POLL)
            with open(path, "rb") as f:
                opened[i] = time.time()
                assert len(f.read()) == size

    t = threading.Thread(target=consumer)
    t.start()
    for i in range(n):
        time.sleep(rng.uniform(0, POLL))
        tmp = os.path.join(shared, f".{size}-f{i}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(shared, f"{size}-f{i}"))
        closed[i] = time.time()
    t.join()
    return [opened[i] - closed[i] for i in range(n)]


def local_copy(src_dir, size, n):
    """Copy ``n`` files of ``size`` bytes; like DYAD's fetched files, the copies stay
    until the last one is made (the disk sees the same amount of new data)."""
    data = os.urandom(size)
    times, made = [], []
    for i in range(n):
        src, dst = os.path.join(src_dir, f"c{i}"), os.path.join(src_dir, f"c{i}.copy")
        with open(src, "wb") as f:
            f.write(data)
        t0 = time.perf_counter()
        shutil.copyfile(src, dst)
        times.append(time.perf_counter() - t0)
        made += [src, dst]
    for path in made:
        os.unlink(path)
    return times


def main(argv=None) -> int:
    print(no_counterpart("DYAD producer -> consumer latency and bandwidth", "polling a shared directory and a local copy"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer files per size")
    ap.add_argument("--processes", action="store_true", help="one process per broker")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    from fluxnb import Flux, Instance, kvs
    counts = {1 << 10: 40, 64 << 10: 40, 1 << 20: 20, 10 << 20: 15}
    if args.quick:
        counts = {k: max(5, v // 4) for k, v in counts.items()}
    rng = random.Random(args.seed)
    rows = []
    with Instance(test_size=2, processes=args.processes) as inst, tempfile.TemporaryDirectory(prefix="dyad-bench-") as scratch:
        with Flux(inst.uri) as h:
            kvs.namespace_create(h, "dyad-bench")
            for r in range(2):
                h.rpc("module.load", {"name": "dyad", "args": ["--mode", "FLUX_RPC"]}, nodeid=r).get()
            shared = os.path.join(scratch, "shared")
            os.makedirs(shared)
            for size, label in SIZES:
                n = counts[size]
                lat_d, transfer = run_dyad(inst, "dyad-bench", size, n, rng)
                lat_p = run_poll(shared, size, n, rng)
                copy = local_copy(scratch, size, max(5, n))
                rows.append((label, size, n, lat_d, transfer, lat_p, copy))
            kvs.namespace_remove(h, "dyad-bench")
    mb = 1e6
    print(f"{'size':>7} {'n':>3} | {'DYAD median':>11} {'p90':>8} {'MB/s':>8} {'xfer MB/s':>9} | "
          f"{'poll median':>11} {'p90':>8} {'MB/s':>8} | {'copy MB/s':>9} | {'xfer/copy':>9}")
    ok = True
    for label, size, n, lat_d, transfer, lat_p, copy in rows:
        md, mp, mc = statistics.median(lat_d), statistics.median(lat_p), statistics.median(copy)
        xfer = size / statistics.median(transfer) / mb if transfer else float("nan")
        ratio = xfer / (size / mc / mb) if transfer else float("nan")
        print(f"{label:>7} {n:>3} | {md * 1e3:9.2f}ms {_pct(lat_d, .9) * 1e3:6.2f}ms {size / md / mb:8.1f} "
              f"{xfer:9.1f} | {mp * 1e3:9.2f}ms {_pct(lat_p, .9) * 1e3:6.2f}ms {size / mp / mb:8.1f} | "
              f"{size / mc / mb:9.1f} | {ratio:9.2f}")
        ok &= md < mp
        if size == 10 << 20:
            ok &= ratio >= 0.5
    print(f"targets (DYAD faster than polling at every size; 10 MiB transfer >= 50% of a copy): "
          f"{'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
