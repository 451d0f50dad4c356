"""Floors measured in the same run as the benchmarks: raw pyzmq and raw unix-socket loops."""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import time

import zmq


def _rep_server(addr: str, ready) -> None:
    ctx = zmq.Context()
    s = ctx.socket(zmq.REP)
    s.bind(addr)
    ready.set()
    while True:
        m = s.recv()
        s.send(m)
        if m == b"quit":
            return


def raw_reqrep_rate(n: int = 20000, payload: bytes = b'{"name":"size"}') -> float:
    """Round trips/s of a REQ/REP loop over ipc to a server in another process."""
    addr = f"ipc://{tempfile.mkdtemp(prefix='floor-')}/rep"
    ready = mp.Event()
    proc = mp.Process(target=_rep_server, args=(addr, ready), daemon=True)
    proc.start()
    ready.wait()
    ctx = zmq.Context()
    c = ctx.socket(zmq.REQ)
    c.connect(addr)
    for _ in range(200):
        c.send(payload)
        c.recv()
    t = time.perf_counter()
    for _ in range(n):
        c.send(payload)
        c.recv()
    rate = n / (time.perf_counter() - t)
    c.send(b"quit")
    c.recv()
    proc.join()
    c.close(0)
    return rate


def _echo_server(path: str, ready) -> None:
    import socket
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    ready.set()
    c, _ = srv.accept()
    while True:
        m = c.recv(65536)
        if not m:
            return
        c.sendall(m)


def raw_unix_rate(n: int = 20000, payload: bytes = b'{"name":"size"}') -> float:
    """Round trips/s of a Python ping-pong over an AF_UNIX stream socket to another
    process: the floor of any Python client/broker pair on this machine."""
    import socket
    path = os.path.join(tempfile.mkdtemp(prefix="floor-"), "echo")
    ready = mp.Event()
    proc = mp.Process(target=_echo_server, args=(path, ready), daemon=True)
    proc.start()
    ready.wait()
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(path)
    for _ in range(200):
        c.sendall(payload)
        c.recv(65536)
    t = time.perf_counter()
    for _ in range(n):
        c.sendall(payload)
        c.recv(65536)
    rate = n / (time.perf_counter() - t)
    c.close()
    proc.join()
    return rate


def _pub_server(addr: str, n: int, nsubs: int, ready, go) -> None:
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUB)
    s.setsockopt(zmq.SNDHWM, 0)
    s.bind(addr)
    ready.set()
    go.wait()
    time.sleep(0.2)
    for i in range(n):
        s.send(b"bench.ev " + str(i).encode())
    s.send(b"bench.ev end")
    time.sleep(1)


def raw_pubsub_rate(n: int, nsubs: int) -> float:
    """Events/s delivered to each of nsubs SUB sockets from a PUB in another process."""
    addr = f"ipc://{tempfile.mkdtemp(prefix='floor-')}/pub"
    ready, go = mp.Event(), mp.Event()
    proc = mp.Process(target=_pub_server, args=(addr, n, nsubs, ready, go), daemon=True)
    proc.start()
    ready.wait()
    ctx = zmq.Context()
    subs = []
    for _ in range(nsubs):
        s = ctx.socket(zmq.SUB)
        s.setsockopt(zmq.RCVHWM, 0)
        s.setsockopt(zmq.SUBSCRIBE, b"bench.")
        s.connect(addr)
        subs.append(s)
    go.set()
    first = subs[0].recv()
    t = time.perf_counter()
    got = 1
    for s in subs:
        while True:
            m = first if (s is subs[0] and got == 1 and first) else s.recv()
            first = None
            if m.endswith(b"end"):
                break
            got += 1
    dt = time.perf_counter() - t
    proc.join()
    return got / dt


if __name__ == "__main__":
    print(f"raw REQ/REP: {raw_reqrep_rate():,.0f}/s")
    print(f"raw AF_UNIX ping-pong: {raw_unix_rate():,.0f}/s")
