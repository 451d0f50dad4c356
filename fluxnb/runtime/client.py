"""Client handles: ``Flux`` (blocking) and ``AsyncFlux`` (asyncio) connections to a broker.

``Flux(uri)`` connects to ``uri``, else to ``$FLUX_URI``, else to the instance this
process hosts (``fluxnb.Instance`` / ``%flux start``). A handle belongs to one
thread at a time, like a flux-core handle.

Examples
--------
>>> from fluxnb import Flux, Instance            # doctest: +SKIP
>>> with Instance(test_size=4) as inst:            # doctest: +SKIP
...     h = Flux(inst.uri)
...     h.rpc("attr.get", {"name": "size"}).get()["value"]
'4'
"""

from __future__ import annotations

import errno
import itertools
import os
import time
from collections import deque

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import asyncio
    from typing import Any, AsyncIterator, Iterator

from .connector import FrameReader, UnixConnection, broker_listening
from .message import (
    CONTROL, EVENT, FLAG_STREAMING, LARGE, NODEID_ANY, RESPONSE, FluxError, Message, ProtocolError,
)

#: the instance hosted by this process, used by ``Flux()`` when FLUX_URI is unset
_hosted: list[Any] = []


def set_hosted_instance(inst: Any) -> None:
    _hosted.append(inst)


def clear_hosted_instance(inst: Any) -> None:
    if inst in _hosted:
        _hosted.remove(inst)


def resolve_uri(uri: str | None) -> tuple[str, str]:
    """Return ``(uri, endpoint)`` for a handle; raise FluxError if there is none.

    The endpoint is ``unix://PATH`` (the broker's framed unix socket, for
    ``local://PATH``), or a zmq endpoint: ``inproc://`` for an instance this process
    hosts, or an ``ipc://``/``tcp://`` URI given as it is.
    """
    if uri is None:
        uri = os.environ.get("FLUX_URI")
    if uri is None and _hosted:
        uri = _hosted[-1].uri
    if uri is None:
        raise FluxError(errno.ENOENT, "no instance to connect to: FLUX_URI is not set and "
                        "this process hosts no instance (start one with `fluxnb start` or %flux start)")
    if uri.startswith("local://"):
        for inst in _hosted:  # an instance in this process: inproc, no syscalls
            topo = getattr(inst, "topo", None)
            if topo is not None and topo.transport == "inproc" and inst.started:
                for rank in range(topo.size):
                    if topo.local_uri(rank) == uri:
                        return uri, topo.local_inproc(rank)
        path = uri[len("local://"):]
        try:
            os.stat(path)
        except PermissionError:
            # the run directory is 0700: only the instance owner may go in
            raise FluxError(errno.EPERM, f"cannot connect to {uri}: permission denied "
                            "(the instance belongs to another user)") from None
        except OSError:
            raise FluxError(errno.ENOENT, f"cannot connect to {uri}: no broker socket there "
                            "(is the instance running?)") from None
        return uri, "unix://" + path
    if uri.startswith(("ipc://", "tcp://")):
        return uri, uri
    raise FluxError(errno.EINVAL, f"unsupported URI {uri!r} (expected local://PATH)")


#: how often a waiting handle checks that its broker still listens (seconds)
LIVENESS_INTERVAL = 0.5

#: whether a blocking handle to an ``ipc://`` endpoint speaks ZMTP itself
#: (:mod:`.zmtp`) instead of through pyzmq, unless ``Flux(native=...)`` says. The CLI
#: sets it: a ``flux`` command is a new process, and importing pyzmq would be the
#: larger part of its start-up. Its ``sock`` is then a :class:`.zmtp.Dealer`.
NATIVE_IPC = False


def _identity(tag: str = "") -> bytes:
    return f"{os.getpid()}.{tag}{os.urandom(5).hex()}".encode()


def _socket_path(endpoint: str) -> str | None:
    for scheme in ("ipc://", "unix://"):
        if endpoint.startswith(scheme):
            return endpoint[len(scheme):]
    return None


class RPC:
    """A request in flight: ``get()`` its response (or the next one of a stream)."""

    def __init__(self, handle: "Flux", matchtag: int, topic: str, streaming: bool):
        self.handle = handle
        self.matchtag = matchtag
        self.topic = topic
        self.streaming = streaming
        self._msg: Message | None = None
        self.done = False

    def _next(self, timeout: float | None) -> Message:
        if self._msg is None:
            self._msg = self.handle._wait_response(self.matchtag, timeout)
            if self._msg.errnum or not self.streaming:
                self.handle._responses.pop(self.matchtag, None)
                self.done = True
        return self._msg

    def get(self, timeout: float | None = None) -> Any:
        """The payload of the (current) response; raise FluxError on an error response."""
        msg = self._next(timeout)
        if msg.errnum:
            raise FluxError(msg.errnum, msg.errstr)
        try:
            return msg.json
        except ProtocolError as exc:
            raise FluxError(errno.EPROTO, str(exc)) from None

    def get_raw(self, timeout: float | None = None) -> bytes:
        msg = self._next(timeout)
        if msg.errnum:
            raise FluxError(msg.errnum, msg.errstr)
        return msg.payload

    def reset(self) -> None:
        """Forget the current response so ``get()`` waits for the next one (streams)."""
        self._msg = None

    def wait_for(self, timeout: float | None = None) -> bool:
        try:
            self._next(timeout)
            return True
        except TimeoutError:
            return False

    def __iter__(self) -> Iterator[Any]:
        """Yield each payload of a streaming RPC until it ends (ENODATA)."""
        while True:
            try:
                payload = self.get()
            except FluxError as exc:
                if exc.errno == errno.ENODATA:
                    return
                raise
            self.reset()
            yield payload


class Flux:
    """A blocking connection to a broker, mirroring ``flux.Flux``.

    Parameters
    ----------
    uri : str, optional
        ``local://PATH``; defaults to ``$FLUX_URI`` or the hosted instance.
    """

    def __init__(self, uri: str | None = None, *, native: bool | None = None):
        self.uri, self.endpoint = resolve_uri(uri)
        self._path = _socket_path(self.endpoint)
        #: over the unix socket (``local://``) a lost broker shows at once: the
        #: connection ends; no pyzmq either (``native`` is for ``ipc://`` endpoints)
        self._unix = self.endpoint.startswith("unix://")
        if native is None:
            native = NATIVE_IPC
        self.native = bool(native and self._path and not self._unix)
        if self._unix:
            self._zmq = None
            self.ctx = None
            self.sock = UnixConnection(self._path, self.uri)
        elif self.native:
            from .zmtp import Dealer
            self._zmq = None
            self.ctx = None
            try:
                self.sock = Dealer(self._path, _identity())
            except OSError as exc:
                # the socket is there (resolve_uri saw it) but no broker listens
                raise FluxError(errno.ECONNRESET, f"lost connection to {self.uri}: "
                                f"{exc.strerror or exc}") from None
        else:
            import zmq
            self._zmq = zmq
            self.ctx = zmq.Context.instance()
            self.sock = self.ctx.socket(zmq.DEALER)
            self.sock.setsockopt(zmq.LINGER, 0)
            self.sock.setsockopt(zmq.IDENTITY, _identity())
            self.sock.setsockopt(zmq.RCVTIMEO, int(LIVENESS_INTERVAL * 1000))
            self.sock.setsockopt(zmq.SNDTIMEO, 500)   # no peer yet: see _check_engine
            self.sock.connect(self.endpoint)
        self._tags = itertools.count(1)
        self._responses: dict[int, deque] = {}
        self._events: deque = deque()
        self._subs: list[str] = []
        self.closed = False
        self.aux: dict[str, Any] = {}
        self._engine_checked = False
        #: when the broker was last heard from (or checked): liveness is checked only
        #: after LIVENESS_INTERVAL of silence, however short the caller's timeouts
        self._heard = time.monotonic()
        #: when a list: the matchtag of every response received is appended to it
        #: (lets a caller waiting on many RPCs learn which completed in O(1) each)
        self.arrivals: list[int] | None = None

    # -- RPC ------------------------------------------------------------------------
    def rpc(self, topic: str, payload: Any = None, nodeid: int = NODEID_ANY,
            flags: int = 0) -> RPC:
        """Send a request; return an :class:`RPC` whose ``get()`` gives the response."""
        if self.closed:
            raise FluxError(errno.EBADF, "handle is closed")
        tag = next(self._tags)
        self._responses[tag] = deque()
        msg = Message.request(topic, payload, nodeid=nodeid, matchtag=tag, flags=flags)
        try:
            frames = msg.frames()
        except RecursionError:
            del self._responses[tag]
            raise FluxError(errno.EINVAL, f"{topic}: payload nested too deeply") from None
        if self._unix:
            try:
                self.sock.send_multipart(frames)
            except BaseException:
                del self._responses[tag]
                raise
            return RPC(self, tag, topic, bool(flags & FLAG_STREAMING))
        if self.native:
            try:
                self.sock.send_multipart(frames)
            except TimeoutError:   # an alarm's (OSError, but not the connection's)
                del self._responses[tag]
                raise
            except OSError as exc:
                del self._responses[tag]
                raise self._native_error(exc) from None
            return RPC(self, tag, topic, bool(flags & FLAG_STREAMING))
        while True:
            try:
                self.sock.send_multipart(frames, copy=len(frames[-1]) <= LARGE)
                break
            except self._zmq.Again:   # no ZeroMQ peer after 0.5 s: gone, or not fluxnb's
                if self._path and not os.path.exists(self._path):
                    raise FluxError(errno.ECONNRESET, f"lost connection to {self.uri}") from None
                self._check_engine()
        return RPC(self, tag, topic, bool(flags & FLAG_STREAMING))

    def _wait_response(self, tag: int, timeout: float | None) -> Message:
        queue = self._responses.get(tag)
        if queue is None:
            raise FluxError(errno.EINVAL, f"no RPC with matchtag {tag} in flight")
        while not queue:
            self._recv_one(timeout)
        return queue.popleft()

    def _recv_one(self, timeout: float | None) -> None:
        """Receive one message into the response queues or the event queue.

        Every ``LIVENESS_INTERVAL`` without a message the broker's socket is checked:
        a broker that went away (even by ``kill -9``) gives ECONNRESET, not a hang, and
        a real flux-core broker behind the socket (which never answers ZeroMQ) is named.
        """
        if self._unix:
            self._recv_unix(timeout)
            return
        if self.native:
            frames = self._recv_native(timeout)
        else:
            frames = self._recv_zmq(timeout)
        self._heard = time.monotonic()
        self._deliver(Message.from_frames(frames))

    def _recv_unix(self, timeout: float | None) -> None:
        # the connection ends when the broker does: no liveness checks needed
        if timeout is not None and not self.sock.poll(int(timeout * 1000) + (timeout > 0)):
            raise TimeoutError(f"no message from {self.uri} within {timeout}s")
        self._deliver(Message.decode(self.sock.recv()))

    def _deliver(self, msg: Message) -> None:
        if msg.type == RESPONSE:
            q = self._responses.get(msg.matchtag)
            if q is not None:
                q.append(msg)
                if self.arrivals is not None:
                    self.arrivals.append(msg.matchtag)
            elif msg.errnum and msg.matchtag == 0:
                raise FluxError(msg.errnum, msg.errstr)
        elif msg.type == EVENT:
            self._events.append(msg)

    def _recv_native(self, timeout: float | None) -> list:
        """Frames of the next message over :mod:`.zmtp`: the end of the connection is
        the broker going away, a server that does not speak ZMTP is flux-core's."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            # wake every LIVENESS_INTERVAL, so that an exception raised in this
            # thread from another (raise_in_thread) is seen
            wait = LIVENESS_INTERVAL if deadline is None else \
                min(LIVENESS_INTERVAL, max(0.0, deadline - time.monotonic()))
            try:
                frames = self.sock.recv_multipart(wait)
            except TimeoutError:   # an alarm's (OSError, but not the connection's)
                raise
            except OSError as exc:
                raise self._native_error(exc) from None
            if frames is not None:
                return frames
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"no message from {self.uri} within {timeout}s")

    def _native_error(self, exc: OSError) -> FluxError:
        from .zmtp import NotZMTP
        if isinstance(exc, NotZMTP):   # flux-core's local connector answered
            from ..realflux.engine import hint
            return FluxError(errno.EPROTO, hint(self.uri))
        return FluxError(errno.ECONNRESET, f"lost connection to {self.uri}")

    def _recv_zmq(self, timeout: float | None) -> list:
        zmq = self._zmq
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if deadline is None:
                try:  # RCVTIMEO is LIVENESS_INTERVAL: one call when a message is there
                    return self.sock.recv_multipart(copy=True)
                except zmq.Again:
                    pass
            elif self.sock.poll(int(1000 * min(LIVENESS_INTERVAL,
                                               max(0.0, deadline - time.monotonic())))):
                return self.sock.recv_multipart(copy=True)
            # liveness only after LIVENESS_INTERVAL of silence, however short the
            # caller's timeouts (a loop of zero-timeout polls must not connect each time)
            now = time.monotonic()
            if now - self._heard >= LIVENESS_INTERVAL:
                if self._path and not broker_listening(self._path):
                    raise FluxError(errno.ECONNRESET, f"lost connection to {self.uri}")
                self._check_engine()
                self._heard = now
            if deadline is not None and now >= deadline:
                raise TimeoutError(f"no message from {self.uri} within {timeout}s")

    def _check_engine(self) -> None:
        """After half a second of silence, once: is a real flux-core broker behind the socket?

        flux-core's local connector is not ZeroMQ, so its broker never answers us;
        say so instead of waiting forever (costs nothing while fluxnb's brokers answer).
        """
        if self._engine_checked or not self._path:
            return
        from ..realflux.engine import hint, probe
        kind = probe(self.uri, timeout=0.5)
        if kind == "flux-core":
            raise FluxError(errno.EPROTO, hint(self.uri))
        self._engine_checked = kind == "fluxnb"   # else ask again at the next silence

    # -- events -----------------------------------------------------------------------
    def event_subscribe(self, topic: str) -> None:
        self.rpc("event.subscribe", {"topic": topic}).get()
        self._subs.append(topic)

    def event_unsubscribe(self, topic: str) -> None:
        self.rpc("event.unsubscribe", {"topic": topic}).get()
        if topic in self._subs:
            self._subs.remove(topic)

    def event_send(self, topic: str, payload: Any = None) -> None:
        """Publish an event instance-wide (waits until rank 0 has sequenced it)."""
        self.rpc("event.pub", {"topic": topic, "payload": payload}).get()

    def event_recv(self, topic: str | None = None, timeout: float | None = None) -> Message:
        """Next event (whose topic starts with ``topic``, if given)."""
        while True:
            for i, ev in enumerate(self._events):
                if topic is None or ev.topic.startswith(topic):
                    del self._events[i]
                    return ev
            self._recv_one(timeout)

    # -- attributes ------------------------------------------------------------------
    def attr_get(self, name: str) -> str:
        return self.rpc("attr.get", {"name": name}).get()["value"]

    def attr_set(self, name: str, value: str) -> None:
        self.rpc("attr.set", {"name": name, "value": value}).get()

    def get_rank(self) -> int:
        return int(self.attr_get("rank"))

    # -- life ------------------------------------------------------------------------
    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.sock is None:
            return
        if self._unix:   # the connection's end tells the broker
            self.sock.close()
            return
        if self.native:
            try:
                if self.sock.handshaken:   # else the broker has nothing of ours to forget
                    self.sock.sock.setblocking(False)
                    self.sock.send_multipart([Message(CONTROL, "disconnect").encode()])
            except OSError:
                pass
            self.sock.close()
            return
        try:
            self.sock.send(Message(CONTROL, "disconnect").encode(), self._zmq.NOBLOCK)
        except self._zmq.ZMQError:
            pass
        self.sock.close(linger=100)

    def __enter__(self) -> "Flux":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            if not self.closed:
                self.close()
        except Exception:
            pass


class AsyncFlux:
    """An asyncio connection to a broker: ``await h.rpc(...)``, ``async for`` streams.

    Examples
    --------
    >>> async def size(uri):                       # doctest: +SKIP
    ...     async with AsyncFlux(uri) as h:
    ...         return (await h.rpc("attr.get", {"name": "size"}))["value"]
    """

    def __init__(self, uri: str | None = None):
        import asyncio  # AsyncFlux only: the blocking handle must not pay for it

        self._aio = asyncio
        self.uri, self.endpoint = resolve_uri(uri)
        self._unix = self.endpoint.startswith("unix://")
        if self._unix:
            self._zmq = None
            self.ctx = None
            self.sock = UnixConnection(_socket_path(self.endpoint), self.uri)
        else:
            import zmq
            import zmq.asyncio
            self._zmq = zmq
            # shadow the process-wide context: inproc endpoints of a hosted instance live there
            self.ctx = zmq.asyncio.Context.shadow(zmq.Context.instance())
            self.sock = self.ctx.socket(zmq.DEALER)
            self.sock.setsockopt(zmq.LINGER, 0)
            self.sock.setsockopt(zmq.IDENTITY, _identity("a"))
            self.sock.connect(self.endpoint)
        self._tags = itertools.count(1)
        self._queues: dict[int, asyncio.Queue] = {}
        self._events: asyncio.Queue = asyncio.Queue()
        self._reader: Any = None
        self._dead: FluxError | None = None

    def _ensure_reader(self) -> None:
        if self._reader is not None:
            return
        loop = self._aio.get_running_loop()
        if self._unix:  # read whatever arrives, when it arrives, on the loop
            self._frames = FrameReader()
            loop.add_reader(self.sock.fileno(), self._on_readable)
            self._reader = loop
        else:
            self._reader = loop.create_task(self._read())

    def _on_readable(self) -> None:
        try:
            data = self.sock.recv_available()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        try:
            bodies = self._frames.feed(data) if data else None
        except FluxError:
            bodies = None
        if bodies is None:
            self._reader.remove_reader(self.sock.fileno())
            self._lost()
            return
        for body in bodies:
            self._dispatch(Message.decode(body))

    def _dispatch(self, msg: Message) -> None:
        if msg.type == RESPONSE and msg.matchtag in self._queues:
            self._queues[msg.matchtag].put_nowait(msg)
        elif msg.type == EVENT:
            self._events.put_nowait(msg)

    async def _read(self) -> None:
        path = _socket_path(self.endpoint)
        while True:
            if not await self.sock.poll(int(LIVENESS_INTERVAL * 1000)):
                if path and not broker_listening(path):
                    self._lost()
                    return
                continue
            self._dispatch(Message.from_frames(await self.sock.recv_multipart()))

    def _lost(self) -> None:
        """The broker went away: every waiter gets ECONNRESET (and later RPCs too)."""
        self._dead = FluxError(errno.ECONNRESET, f"lost connection to {self.uri}")
        for tag, q in self._queues.items():
            q.put_nowait(Message(RESPONSE, "", b"", tag, NODEID_ANY, 0, errno.ECONNRESET,
                                 self._dead.errstr))
        self._events.put_nowait(None)

    def _send(self, topic: str, payload: Any, nodeid: int, flags: int) -> int:
        if self._dead is not None:
            raise self._dead
        self._ensure_reader()
        tag = next(self._tags)
        self._queues[tag] = self._aio.Queue()
        msg = Message.request(topic, payload, nodeid=nodeid, matchtag=tag, flags=flags)
        try:
            self.sock.send_multipart(msg.frames())
        except FluxError as exc:
            self._queues.pop(tag, None)
            self._dead = exc
            raise
        return tag

    async def rpc(self, topic: str, payload: Any = None, nodeid: int = NODEID_ANY) -> Any:
        tag = self._send(topic, payload, nodeid, 0)
        try:
            msg = await self._queues[tag].get()
        finally:
            self._queues.pop(tag, None)
        if msg.errnum:
            raise FluxError(msg.errnum, msg.errstr)
        return msg.json

    async def rpc_stream(self, topic: str, payload: Any = None,
                         nodeid: int = NODEID_ANY) -> AsyncIterator[Any]:
        tag = self._send(topic, payload, nodeid, FLAG_STREAMING)
        try:
            while True:
                msg = await self._queues[tag].get()
                if msg.errnum == errno.ENODATA:
                    return
                if msg.errnum:
                    raise FluxError(msg.errnum, msg.errstr)
                yield msg.json
        finally:
            self._queues.pop(tag, None)

    async def event_subscribe(self, topic: str) -> None:
        await self.rpc("event.subscribe", {"topic": topic})

    async def event_send(self, topic: str, payload: Any = None) -> None:
        await self.rpc("event.pub", {"topic": topic, "payload": payload})

    async def event_recv(self) -> Message:
        if self._dead is not None:
            raise self._dead
        self._ensure_reader()
        ev = await self._events.get()
        if ev is None:
            raise self._dead
        return ev

    async def attr_get(self, name: str) -> str:
        return (await self.rpc("attr.get", {"name": name}))["value"]

    def close(self) -> None:
        if self._unix:
            if self._reader is not None and not self.sock.closed:
                try:
                    self._reader.remove_reader(self.sock.fileno())
                except Exception:
                    pass
            self.sock.close()   # the connection's end tells the broker
            return
        if self._reader is not None:
            self._reader.cancel()
        try:
            self.sock.send(Message(CONTROL, "disconnect").encode(), self._zmq.NOBLOCK)
        except self._zmq.ZMQError:
            pass
        self.sock.close(linger=100)

    async def __aenter__(self) -> "AsyncFlux":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
