"""The local connector: clients reach their broker over a framed unix socket, as
flux-core's clients reach theirs through connector-local.

What must hold: a message of any size crosses whole; many clients at once each
get their own responses; a client that dies has its streams and subscriptions
dropped by the broker; a broker that dies gives its clients an error at once (never
a hang); another uid is refused; the first byte a new connection reads tells
fluxnb's broker from flux-core's.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest

from fluxnb import AsyncFlux, Flux, Instance, kvs
from fluxnb.realflux.engine import probe
from fluxnb.runtime.connector import GREETING, FrameReader, ServerConnection, UnixConnection, pack
from fluxnb.runtime.message import FLAG_STREAMING, FluxError, Message
from tests.conftest import alive, wait_for
from tests.runtime.test_reliability import _as_guest, _guest, proc_instance  # noqa: F401


@pytest.fixture(scope="module")
def pinst():
    """Brokers in processes of their own: this process's handles use the unix socket."""
    with Instance(test_size=2, processes=True) as inst:
        yield inst


# -- framing -------------------------------------------------------------------------------
def test_frames_split_anywhere_are_rebuilt_whole():
    msgs = [Message.request("a.b", {"k": "v" * n}, matchtag=n) for n in (0, 10, 70000, 3)]
    wire = b"".join(b"".join(bytes(x) for x in pack(m.frames())) for m in msgs)
    r = FrameReader()
    got = []
    for i in range(0, len(wire), 4097):   # chunks that cut headers and bodies alike
        got += r.feed(wire[i:i + 4097])
    assert [Message.decode(b).matchtag for b in got] == [0, 10, 70000, 3]
    assert Message.decode(got[2]).json == {"k": "v" * 70000}
    assert r.feed(b"") == [] and not r.buf


def test_client_reads_one_message_at_a_time_from_a_stream():
    a, b = socket.socketpair()
    try:
        b.sendall(GREETING)
        c = UnixConnection.from_socket(a, "local://pair")
        big = Message.request("x.y", b"z" * 300000, matchtag=1)
        wire = [buf for m in (big, Message.request("x.y", {"n": 2}, matchtag=2))
                for buf in pack(m.frames())]
        sender = threading.Thread(target=lambda: [b.sendall(buf) for buf in wire])
        sender.start()   # more than the socket holds: the reader must take it as it comes
        first = Message.decode(c.recv())
        assert first.matchtag == 1 and bytes(first.payload) == b"z" * 300000
        sender.join(30)
        assert c.poll(0)   # the second one is still in the socket: it polls readable
        assert Message.decode(c.recv()).json == {"n": 2}
        assert not c.poll(0)
        b.close()
        with pytest.raises(FluxError) as exc:
            c.recv()
        assert exc.value.errno == errno.ECONNRESET
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("size", [65537, 3 * 1024 * 1024])
def test_large_values_cross_the_socket_whole(pinst, size):
    value = os.urandom(size // 2).hex()
    with Flux(pinst.uri) as h:
        assert h.endpoint.startswith("unix://")
        kvs.put(h, f"big.v{size}", value)
        kvs.commit(h)
        with Flux(pinst.uri) as other:
            assert kvs.get(other, f"big.v{size}") == value
            # a large request payload, answered by another rank through the tree
            r = other.rpc("attr.get", {"name": "rank", "pad": "p" * size}, nodeid=1).get()
            assert r["value"] == "1"


# -- many clients --------------------------------------------------------------------------
def test_many_concurrent_clients_each_get_their_own_answers(pinst):
    errors: list[str] = []

    def client(i: int) -> None:
        try:
            with Flux(pinst.uri) as h:
                rpcs = [(j, h.rpc("kvs.lookup", {"key": f"many.c{i}"})) for j in range(20)]
                kvs.put(h, f"many.c{i}", i)
                kvs.commit(h)
                for j, rpc in rpcs:   # answered in any order, each to its own matchtag
                    try:
                        rpc.get()
                    except FluxError as exc:
                        if exc.errno != errno.ENOENT:
                            raise
                for _ in range(20):
                    assert kvs.get(h, f"many.c{i}") == i
        except Exception as exc:  # reported below, with the client's number
            errors.append(f"client {i}: {exc!r}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)


def test_a_client_that_stops_reading_blocks_nobody_and_loses_nothing(pinst):
    # the broker writes what the client's socket cannot take later: meanwhile it
    # answers others, and the slow client, reading again, gets every event in order
    blob = "x" * 60_000
    with Flux(pinst.uri) as slow, Flux(pinst.uri) as other:
        slow.event_subscribe("slow-test.")
        for i in range(200):            # ~12 MB: far more than a socket buffer holds
            other.rpc("event.pub", {"topic": "slow-test.ev", "payload": {"i": i, "b": blob}}).get()
        assert other.attr_get("size") == "2"      # the broker was not stuck writing
        got = [slow.event_recv("slow-test.", timeout=30).json["i"] for _ in range(200)]
        assert got == list(range(200))


def test_the_broker_watches_a_client_for_writability_only_while_answers_wait():
    # what a client's socket cannot take waits, and the broker's loop is asked (once)
    # to say when the socket is writable; once it is all written, told (once) to stop:
    # never a watch left on with nothing to write (a loop spinning on a writable fd)
    a, b = socket.socketpair()
    a.setblocking(False)
    calls = []
    conn = ServerConnection(a, "c:#test", lambda c, on: calls.append(on), lambda c: None)
    try:
        assert conn.flush() and calls == []          # nothing waits: nothing asked
        big = [Message.request("x.y", b"z" * 100_000, matchtag=i).encode() for i in range(40)]
        for frame in big:
            conn.send([frame])
        assert conn.flush() and conn.pending          # more than the socket holds
        assert calls == [True]
        conn.send([big[0]])
        assert conn.flush() and calls == [True]       # still watched, not asked again
        got, reader = [], FrameReader()
        while len(got) < 41:
            if conn.pending:
                conn.flush()
            try:
                got += reader.feed(b.recv(1 << 20))
            except BlockingIOError:
                pass
        assert not conn.pending and calls == [True, False]
        assert [Message.decode(f).matchtag for f in got] == list(range(40)) + [0]
        conn.send([big[1]])
        assert conn.flush() and calls == [True, False]  # written at once: no watch
    finally:
        conn.close()
        b.close()


# -- a client that dies ------------------------------------------------------------------------
CLIENT = r"""
import sys
from fluxnb import Flux
from fluxnb.runtime.message import FLAG_STREAMING
h = Flux()
assert h.endpoint.startswith("unix://"), h.endpoint
h.event_subscribe("conn-test.")
h.rpc("log.dmesg", {"follow": True}, flags=FLAG_STREAMING)
h.rpc("service.add", {"service": "conntest"}).get()
print("ready", flush=True)
sys.stdin.read()
"""


def test_a_killed_client_has_its_streams_and_subscriptions_dropped():
    with Instance(test_size=1) as inst:
        broker = inst._set.brokers[0]
        log = broker.services["log"]
        env = dict(os.environ, FLUX_URI=inst.uri)
        proc = subprocess.Popen([sys.executable, "-c", CLIENT], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            hops = [hop for hop in broker.client_subs if hop.startswith("c:#")]
            assert len(hops) == 1
            assert any(m.route == hops for m in log.followers)
            assert broker.client_services.get("conntest") == hops[0]
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            wait_for(lambda: hops[0] not in broker.client_subs
                     and not any(m.route == hops for m in log.followers)
                     and "conntest" not in broker.client_services,
                     30, "the broker to drop the dead client's streams")
            # the events it subscribed to go nowhere now, and the broker still serves
            with Flux(inst.uri) as h:
                h.event_send("conn-test.after")
                assert h.attr_get("size") == "1"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_a_client_leaving_one_rank_leaves_streams_from_other_ranks_alone(pinst):
    # route hops are compared by prefix on every broker: a client that goes away on
    # rank 1 must not match a stream that came from a client of rank 0
    with Flux(pinst.uri) as h0:
        stream = h0.rpc("log.dmesg", {"follow": True}, nodeid=1, flags=FLAG_STREAMING)
        stream.get(timeout=10)
        for _ in range(3):
            with Flux(pinst.rank_uri(1)) as h1:
                assert h1.attr_get("rank") == "1"
        h0.rpc("log.append", {"message": "after the others left", "level": 6}, nodeid=1).get(10)
        while True:
            stream.reset()
            if stream.get(timeout=10)["message"] == "after the others left":
                break


# -- a broker that dies ----------------------------------------------------------------------
def test_a_dead_broker_fails_waiting_streams_events_and_async_clients():
    inst = Instance(test_size=1, processes=True).start()
    try:
        h = Flux(inst.uri)
        ev = Flux(inst.uri)
        ev.event_subscribe("never.")
        stream = h.rpc("log.dmesg", {"follow": True}, flags=FLAG_STREAMING)
        stream.get(timeout=10)   # the ring's first entry: the stream runs

        import asyncio
        streaming = threading.Event()

        async def async_wait():
            async with AsyncFlux(inst.uri) as a:
                async for _ in a.rpc_stream("log.dmesg", {"follow": True}):
                    streaming.set()

        pid = int(h.attr_get("broker.pid"))
        errors: dict[str, int] = {}

        def in_thread():
            try:
                asyncio.run(async_wait())
            except FluxError as exc:
                errors["async"] = exc.errno

        t = threading.Thread(target=in_thread)
        t.start()
        assert streaming.wait(30)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not alive(pid), 10, "the broker to die")
        with pytest.raises(FluxError) as exc:
            while True:   # what the log had queued, then the end of the connection
                stream.reset()
                stream.get()
        assert exc.value.errno == errno.ECONNRESET
        with pytest.raises(FluxError) as exc:
            ev.event_recv()
        assert exc.value.errno == errno.ECONNRESET
        with pytest.raises(FluxError) as exc:
            h.rpc("attr.get", {"name": "size"}).get()
        assert exc.value.errno == errno.ECONNRESET
        t.join(30)
        assert not t.is_alive() and errors.get("async") == errno.ECONNRESET, errors
    finally:
        inst.stop()


# -- who is there -----------------------------------------------------------------------------
def test_probe_tells_fluxnb_from_a_flux_core_server(pinst, tmp_path):
    assert probe(pinst.uri) == "fluxnb"
    path = str(tmp_path / "fake")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)

    def serve():   # as flux-core's usock server does: one auth byte, 0 = allowed
        for _ in range(2):
            c, _ = srv.accept()
            c.sendall(b"\0")
            c.recv(1)   # keep it open until the client gives up
            c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        assert probe(f"local://{path}") == "flux-core"
        with pytest.raises(FluxError) as exc:
            with Flux(f"local://{path}") as h:   # connecting does not wait on the server
                h.rpc("attr.get", {"name": "size"}).get(timeout=10)
        assert exc.value.errno == errno.EPROTO and "real Flux (flux-core)" in str(exc.value)
    finally:
        t.join(10)
        srv.close()


def test_another_uid_is_greeted_but_every_request_refused(proc_instance):  # noqa: F811
    _guest()
    rundir = proc_instance.rundir
    os.chmod(rundir, 0o755)
    os.chmod(os.path.join(rundir, "local"), 0o777)
    try:
        for topic, payload in (("event.subscribe", {"topic": "x"}),
                               ("log.dmesg", {"follow": False}),
                               ("service.add", {"service": "intruder"})):
            err, text = _as_guest(proc_instance.uri, topic, payload)
            assert err == errno.EPERM, (topic, text)
            assert "is not the instance owner" in text
    finally:
        os.chmod(rundir, 0o700)
    with Flux(proc_instance.uri) as h:
        # nothing of the guest's stuck: its service name is free
        h.rpc("service.add", {"service": "intruder"}).get(timeout=10)
        h.rpc("service.remove", {"service": "intruder"}).get(timeout=10)


def test_socket_and_run_directory_are_the_owners_alone(pinst):
    import stat
    path = pinst.uri[len("local://"):]
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
