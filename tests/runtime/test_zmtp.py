"""The CLI's handles without pyzmq: ``Flux(native=True)`` on a ``local://`` URI.

A broker's ``local://`` socket is the framed unix socket of fluxnb/runtime/connector.py
(no ZMTP; fluxnb/runtime/zmtp.py serves ``ipc://`` zmq endpoints only), so every
handle on it, native or not, speaks that: the same replies, and a one-line error
(never a hang) when the peer is not a fluxnb broker or goes away."""

from __future__ import annotations

import errno
import os
import socket
import threading

import pytest

from fluxnb import Flux, FluxError, Instance
from fluxnb.runtime.kvs.flags import FLUX_KVS_WAITCREATE


@pytest.fixture(scope="module")
def instance():
    """Brokers in processes of their own: this process reaches them over ipc only (a
    hosted instance's handles would take the inproc shortcut, with pyzmq)."""
    with Instance(test_size=2, processes=True) as inst:
        yield inst


def test_native_handle_gets_what_pyzmq_gets(instance):
    with Flux(instance.uri, native=True) as a, Flux(instance.uri, native=False) as b:
        # local:// is the framed unix socket, whatever native says (neither is ZMTP)
        assert a.endpoint == b.endpoint and a.endpoint.startswith("unix://")
        assert a.attr_get("size") == b.attr_get("size") == "2"
        big = "y" * 200_000   # a long frame out and back
        import fluxnb.kvs as kvs
        kvs.put(a, "zmtp.big", big)
        kvs.commit(a)
        assert kvs.get(a, "zmtp.big") == kvs.get(b, "zmtp.big") == big
        with pytest.raises(FluxError) as e:
            a.rpc("nosuch.method", {}).get()
        assert e.value.errno == errno.ENOSYS


def test_native_handle_events_and_streams(instance):
    with Flux(instance.uri, native=True) as h:
        h.event_subscribe("zmtp-test")
        h.event_send("zmtp-test.hello", {"n": 1})
        ev = h.event_recv("zmtp-test", timeout=10)
        assert ev.topic == "zmtp-test.hello" and ev.json == {"n": 1}


def test_native_handle_times_out(instance):
    with Flux(instance.uri, native=True) as h:
        rpc = h.rpc("kvs-watch.lookup", {"key": "zmtp.never", "namespace": "primary",
                                         "flags": FLUX_KVS_WAITCREATE}, nodeid=0)
        with pytest.raises(TimeoutError):
            rpc.get(timeout=0.3)
        assert h.attr_get("size") == "2"   # still usable


def _server(path: str, first: bytes | None) -> threading.Thread:
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        if first is not None:
            conn.sendall(first)
            conn.recv(4096)
        conn.close()
        srv.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t


def test_a_flux_core_socket_is_named(tmp_path):
    # flux-core's local connector answers a connection with one auth byte, not ZMTP
    path = str(tmp_path / "local")
    t = _server(path, b"\x00")
    with Flux(f"local://{path}", native=True) as h:
        with pytest.raises(FluxError) as e:
            h.rpc("attr.get", {"name": "size"}).get(timeout=10)
    assert e.value.errno == errno.EPROTO and "flux-core" in str(e.value)
    t.join(5)


def test_a_peer_that_hangs_up_is_a_lost_connection(tmp_path):
    path = str(tmp_path / "local")
    t = _server(path, None)
    with pytest.raises(FluxError) as e:   # at connect (EPIPE) or at the first reply (EOF)
        with Flux(f"local://{path}", native=True) as h:
            h.rpc("attr.get", {"name": "size"}).get(timeout=10)
    assert e.value.errno == errno.ECONNRESET
    t.join(5)


def test_nothing_listening(tmp_path):
    path = str(tmp_path / "local")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)   # a socket file nobody listens on (a dead broker's)
    s.close()
    with pytest.raises(FluxError) as e:
        Flux(f"local://{path}", native=True)
    assert e.value.errno == errno.ECONNRESET and os.path.basename(path) in str(e.value)


def test_closing_an_unused_handle_does_not_wait_for_a_silent_server(tmp_path):
    # a server that accepts and never speaks: closing a handle that sent nothing is at once
    path = str(tmp_path / "local")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    try:
        h = Flux(f"local://{path}", native=True)
        done = threading.Event()
        threading.Thread(target=lambda: (h.close(), done.set()), daemon=True).start()
        assert done.wait(5)
    finally:
        srv.close()
