"""The broker: one per rank, joined to the others in a tree (TBON) over pyzmq.

Each broker owns up to three zmq sockets, all driven by one asyncio loop through
the sockets' file descriptors (no per-message futures):

* ``local``  ROUTER bound to ``ipc://<rundir>/local[-rank]``: clients (``Flux()``);
* ``child``  ROUTER bound to the TBON endpoint: this rank's children connect here;
* ``parent`` DEALER (identity = rank) connected to the parent's ``child`` socket.

A request names a destination ``nodeid``. The broker answers it from a local
service, or forwards it down the tree towards the rank whose subtree holds the
target, or up to its parent. Each hop pushes where the request came from onto its
``route``; the response pops the route back. Events are sequenced by rank 0 and
flow down the whole tree; each broker hands them to its subscribers.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import os
import sys
import time
import traceback
from collections import deque
from typing import Any, Callable

import zmq

from .message import (
    CONTROL, EVENT, FLAG_NORESPONSE, NODEID_ANY, NODEID_UPSTREAM, REQUEST, RESPONSE,
    LARGE, FluxError, Message, ProtocolError,
)
from .service import DEFERRED, Service
from .topology import Topology

LOG_LEVELS = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]
_SELF = "s"
_PARENT = "p"


def log_level(level: int | str) -> int:
    """Map a syslog level name or number to its number (``"info"`` -> 6)."""
    if isinstance(level, int):
        return level
    try:
        return LOG_LEVELS.index(level)
    except ValueError:
        raise ValueError(f"unknown log level {level!r} (one of {', '.join(LOG_LEVELS)})") from None


def _recv_frames(sock: zmq.Socket) -> list:
    """One multipart message; a large payload frame arrives uncopied (a memoryview).

    The frame after a header ending in NUL is the payload of a large message
    (:meth:`Message.frames`); zmq hands it over without a copy, which is what lets
    DYAD move file chunks between in-process brokers at memory speed.
    """
    frames = [sock.recv(zmq.NOBLOCK)]
    while sock.rcvmore:
        if frames[-1][-1:] == b"\0":
            frame = sock.recv(copy=False)
            frames.append(frame.buffer if len(frame) > LARGE else frame.bytes)
        else:
            frames.append(sock.recv())
    return frames


class _Stream:
    """An RPC issued by the broker itself (from one of its services)."""

    __slots__ = ("future", "callback")

    def __init__(self, future: asyncio.Future | None, callback: Callable | None):
        self.future = future
        self.callback = callback


class Broker:
    """One rank of an instance.

    Parameters
    ----------
    rank, size : int
        This broker's rank and the instance size.
    topology : Topology
        Tree shape and endpoints of every rank.
    ctx : zmq.Context
        Context shared by the brokers of one process (inproc needs that).
    attrs : dict
        Initial broker attributes (``rundir``, ``instance-level``, ...).
    """

    def __init__(self, rank: int, size: int, topology: Topology, ctx: zmq.Context,
                 attrs: dict[str, str], config: dict[str, Any] | None = None):
        self.rank = rank
        self.size = size
        self.topo = topology
        self.ctx = ctx
        self.config = dict(config or {})
        self.loop: asyncio.AbstractEventLoop | None = None
        self.started_at = time.time()
        self.services: dict[str, Service] = {}
        self.topics: dict[str, tuple[Service, Callable]] = {}
        self.service_names: dict[str, Service] = {}
        self.event_subs: list[tuple[str, Callable[[Message], None]]] = []
        self.client_subs: dict[str, list[str]] = {}
        #: services registered by clients (``service.add``): name -> the client's route hop
        self.client_services: dict[str, str] = {}
        #: the instance configuration as ``config.get`` answers it (``config.load`` replaces it)
        self.conf: dict[str, Any] = {}
        self.event_seq = 0
        self._tag = 0
        self._pending: dict[int, _Stream] = {}
        self._online: set[int] = {rank}
        #: child identity (its rank, as bytes) -> when first heard from on the child socket
        self.children_seen: dict[bytes, float] = {}
        self.online_waiters: list[asyncio.Future] = []
        self.online_listeners: list[Callable[[int], None]] = []
        self.dmesg_listeners: list[Callable[[dict], None]] = []
        self.shutdown_requested: asyncio.Event | None = None
        self.exit_code = 0
        self.attrs = attrs
        self.dmesg: deque = deque(maxlen=int(attrs.get("log-ring-size", "1024")))
        self._sockets: list[zmq.Socket] = []
        self.local = self.child = self.parent = None
        self.closed = False

    # -- start/stop -------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind and connect this broker's sockets and start reading them."""
        self.loop = loop
        self.shutdown_requested = asyncio.Event()
        self.local = self._socket(zmq.ROUTER, self.topo.local_endpoint(self.rank), bind=True)
        if self.topo.transport == "inproc":
            # clients in this process skip the ipc socket (and the kernel) altogether
            self.local.bind(self.topo.local_inproc(self.rank))
        if self.topo.children(self.rank):
            self.child = self._socket(zmq.ROUTER, self.topo.tbon_endpoint(self.rank), bind=True)
        if self.rank > 0:
            self.parent = self._socket(zmq.DEALER, self.topo.tbon_endpoint(self.topo.parent(self.rank)),
                                       bind=False, identity=str(self.rank).encode())
        for sock, fn in ((self.local, self._on_local), (self.child, self._on_child),
                         (self.parent, self._on_parent)):
            if sock is not None:
                loop.add_reader(sock.getsockopt(zmq.FD), self._drain, sock, fn)
                loop.call_soon(self._drain, sock, fn)
        self.log("info", f"broker rank {self.rank} of {self.size} online")
        if self.rank > 0:
            self.rpc("broker.online", {"rank": self.rank}, nodeid=0, flags=FLAG_NORESPONSE)

    def _socket(self, kind: int, endpoint: str, *, bind: bool, identity: bytes | None = None):
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        if kind == zmq.ROUTER:
            sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        if identity:
            sock.setsockopt(zmq.IDENTITY, identity)
        if bind:
            sock.bind(endpoint)
        else:
            sock.connect(endpoint)
        self._sockets.append(sock)
        return sock

    def close(self) -> None:
        """Stop all services and close the sockets (called on the broker's loop)."""
        if self.closed:
            return
        self.closed = True
        for name in list(self.services)[::-1]:
            try:
                self.unload(name)
            except Exception:  # a failing stop must not keep the others alive
                traceback.print_exc()
        for fut in self.online_waiters:
            if not fut.done():
                fut.cancel()
        for stream in self._pending.values():
            if stream.future is not None and not stream.future.done():
                stream.future.cancel()
        self._pending.clear()
        for sock in self._sockets:
            try:
                self.loop.remove_reader(sock.getsockopt(zmq.FD))
            except Exception:
                pass
            sock.close(0)
        self._sockets.clear()

    # -- services ---------------------------------------------------------------
    def load(self, service_cls: type[Service], args: list[str] | None = None) -> Service:
        """Instantiate and register a service; its topics become routable here."""
        if not service_cls.name:
            raise ValueError(f"{service_cls.__name__} has no service name")
        if service_cls.name in self.services:
            raise FluxError(errno.EEXIST, f"module {service_cls.name} is already loaded")
        svc = service_cls(self, args)
        for name in svc.services:
            if name in self.service_names:
                raise FluxError(errno.EEXIST, f"service {name} is already registered")
        self.services[svc.name] = svc
        for name in svc.services:
            self.service_names[name] = svc
        for topic, attr in service_cls.declared_topics().items():
            self.topics[topic] = (svc, getattr(svc, attr))
        for prefix, attr in service_cls.declared_events().items():
            self.event_subs.append((prefix, getattr(svc, attr)))
        try:
            svc.start()
        except Exception:
            self._unregister(svc)
            raise
        return svc

    def unload(self, name: str) -> None:
        svc = self.services.get(name)
        if svc is None:
            raise FluxError(errno.ENOENT, f"module {name} is not loaded")
        try:
            svc.stop()
        finally:
            self._unregister(svc)

    def _unregister(self, svc: Service) -> None:
        self.services.pop(svc.name, None)
        for name in svc.services:
            if self.service_names.get(name) is svc:
                del self.service_names[name]
        for topic in [t for t, (s, _) in self.topics.items() if s is svc]:
            del self.topics[topic]
        self.event_subs = [(p, cb) for p, cb in self.event_subs
                           if getattr(cb, "__self__", None) is not svc]

    # -- reading sockets -----------------------------------------------------------
    def _drain(self, sock: zmq.Socket, handler: Callable) -> None:
        # zmq's FD is edge-triggered: read until the socket says nothing is left.
        if self.closed:
            return
        try:
            while sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                handler(_recv_frames(sock))
        except zmq.Again:
            pass
        except zmq.ZMQError:
            if not self.closed:
                raise

    def _kick(self, sock: zmq.Socket | None) -> None:
        # A send can consume the FD's edge: if input is waiting, read it soon.
        try:
            if not sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                return
        except zmq.ZMQError:
            return
        if sock is self.local:
            self.loop.call_soon(self._drain, sock, self._on_local)
        elif sock is self.child:
            self.loop.call_soon(self._drain, sock, self._on_child)
        elif sock is self.parent:
            self.loop.call_soon(self._drain, sock, self._on_parent)

    def _on_local(self, frames: list[bytes]) -> None:
        ident = frames[0]
        try:
            msg = Message.from_frames(frames[1:])
        except ProtocolError as exc:
            self.log("err", f"dropped malformed message from client: {exc}")
            self._send(self.local, [ident, Message(RESPONSE, "", b"", 0, NODEID_ANY, 0, errno.EPROTO,
                                                   f"malformed message: {exc}").encode()])
            return
        sender = "c:" + ident.decode("latin-1")
        if msg.type == REQUEST:
            msg.route.append(sender)
            self.route_request(msg)
        elif msg.type == RESPONSE:  # from a client that registered a service
            self.route_response(msg)
        elif msg.type == CONTROL:
            if msg.topic == "disconnect":
                self._disconnect(sender)
        elif msg.type == EVENT:
            self.rpc("event.pub", {"topic": msg.topic, "payload": msg.json}, nodeid=0,
                     flags=FLAG_NORESPONSE)

    def _on_child(self, frames: list[bytes]) -> None:
        ident = frames[0]
        if ident not in self.children_seen:
            self.children_seen[ident] = time.time()
        try:
            msg = Message.from_frames(frames[1:])
        except ProtocolError as exc:
            self.log("err", f"dropped malformed message from rank {ident!r}: {exc}")
            return
        if msg.type == REQUEST:
            msg.route.append("r:" + ident.decode())
            self.route_request(msg)
        elif msg.type == RESPONSE:
            self.route_response(msg)

    def _on_parent(self, frames: list[bytes]) -> None:
        try:
            msg = Message.from_frames(frames)
        except ProtocolError as exc:
            self.log("err", f"dropped malformed message from parent: {exc}")
            return
        if msg.type == REQUEST:
            msg.route.append(_PARENT)
            self.route_request(msg)
        elif msg.type == RESPONSE:
            self.route_response(msg)
        elif msg.type == EVENT:
            self._distribute_event(msg)

    def _send(self, sock: zmq.Socket, frames: list[bytes]) -> None:
        try:
            # a large payload frame is handed to zmq without a copy
            sock.send_multipart(frames, zmq.NOBLOCK, copy=len(frames[-1]) <= LARGE)
        except zmq.ZMQError as exc:  # peer gone: nothing to deliver to
            self.log("debug", f"send failed: {exc}")
        self._kick(sock)

    # -- routing ----------------------------------------------------------------
    def route_request(self, msg: Message) -> None:
        """Deliver a request to a local handler, or forward it along the tree."""
        target = msg.nodeid
        if target == self.rank or (target == NODEID_ANY and (
                msg.topic.split(".", 1)[0] in self.service_names or self.rank == 0
                or msg.topic.split(".", 1)[0] in self.client_services)):
            self._dispatch(msg)
        elif target == NODEID_UPSTREAM or target == NODEID_ANY:
            if self.parent is None:
                self.respond_error(msg, errno.EHOSTUNREACH, f"{msg.topic}: rank 0 has no upstream")
            else:
                if target == NODEID_UPSTREAM:
                    msg.nodeid = NODEID_ANY
                self._send(self.parent, msg.frames())
        elif 0 <= target < self.size:
            child = self.topo.child_toward(self.rank, target)
            if child is not None:
                self._send(self.child, [str(child).encode(), *msg.frames()])
            else:
                self._send(self.parent, msg.frames())
        else:
            self.respond_error(msg, errno.EHOSTUNREACH,
                               f"{msg.topic}: no rank {target} in an instance of size {self.size}")

    def rank_path(self, route: list[str]) -> list[int]:
        """Ranks a request passed through to reach this broker, first to last."""
        path = [self.rank]
        for hop in reversed(route):
            if hop == _PARENT:
                path.append(self.topo.parent(path[-1]))
            elif hop.startswith("r:"):
                path.append(int(hop[2:]))
            else:
                break
        return path[::-1]

    def route_response(self, msg: Message) -> None:
        if not msg.route:
            return
        hop = msg.route[-1]
        msg.route = msg.route[:-1]
        if hop == _SELF:
            self._complete(msg)
        elif hop == _PARENT:
            self._send(self.parent, msg.frames())
        elif hop.startswith("c:"):
            self._send(self.local, [hop[2:].encode("latin-1"), *msg.frames()])
        elif hop.startswith("r:"):
            self._send(self.child, [hop[2:].encode(), *msg.frames()])

    def _dispatch(self, msg: Message) -> None:
        entry = self.topics.get(msg.topic)
        if entry is None:
            svc = msg.topic.split(".", 1)[0]
            client = self.client_services.get(svc)
            if client is not None:  # a service a client registered: it answers
                self._send(self.local, [client[2:].encode("latin-1"), *msg.frames()])
                return
            if svc in self.service_names:
                text = f"{msg.topic}: unknown method of service '{svc}'"
            else:
                text = f"{msg.topic}: no service '{svc}' on rank {self.rank}"
            self.respond_error(msg, errno.ENOSYS, text)
            return
        svc, handler = entry
        try:
            result = handler(msg)
        except FluxError as exc:
            self.respond_error(msg, exc.errno, exc.errstr)
            return
        except ProtocolError as exc:
            self.respond_error(msg, errno.EPROTO, str(exc))
            return
        except Exception as exc:
            self._internal_error(msg, exc)
            return
        if inspect.isawaitable(result):
            task = self.loop.create_task(result)
            task.add_done_callback(lambda t, m=msg: self._finish_async(m, t))
        elif result is not DEFERRED:
            self.respond(msg, result)

    def _finish_async(self, msg: Message, task: asyncio.Task) -> None:
        if task.cancelled():
            self.respond_error(msg, errno.ECANCELED, f"{msg.topic}: canceled")
            return
        exc = task.exception()
        if exc is None:
            if task.result() is not DEFERRED:
                self.respond(msg, task.result())
        elif isinstance(exc, FluxError):
            self.respond_error(msg, exc.errno, exc.errstr)
        elif isinstance(exc, ProtocolError):
            self.respond_error(msg, errno.EPROTO, str(exc))
        else:
            self._internal_error(msg, exc)

    def _internal_error(self, msg: Message, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.log("err", f"{msg.topic}: internal error: {text}")
        self.respond_error(msg, errno.EIO, f"{msg.topic}: internal error: {exc!r}")

    def respond(self, msg: Message, payload: Any = None) -> None:
        if msg.flags & FLAG_NORESPONSE:
            return
        self.route_response(msg.response(payload))

    def respond_error(self, msg: Message, errnum: int, errstr: str | None = None) -> None:
        if msg.flags & FLAG_NORESPONSE:
            return
        self.route_response(msg.error_response(errnum, errstr))

    # -- RPCs from inside the broker ----------------------------------------------
    def rpc(self, topic: str, payload: Any = None, *, nodeid: int = NODEID_ANY, flags: int = 0,
            callback: Callable[[Message], None] | None = None) -> Any:
        """Send a request from this broker.

        Returns a future of the first response's payload, or, with ``callback``,
        calls it with every response message (streams) and returns the matchtag
        (pass it to :meth:`rpc_cancel` to stop listening).
        """
        self._tag += 1
        tag = self._tag
        msg = Message.request(topic, payload, nodeid=nodeid, matchtag=tag, flags=flags)
        msg.route.append(_SELF)
        fut = None
        if not flags & FLAG_NORESPONSE:
            if callback is None:
                fut = self.loop.create_future()
            self._pending[tag] = _Stream(fut, callback)
        self.loop.call_soon(self.route_request, msg)
        return fut if callback is None else tag

    def rpc_cancel(self, future_or_tag: Any) -> None:
        """Stop listening for responses to an RPC (by matchtag, or its future)."""
        if future_or_tag is None:
            return
        if isinstance(future_or_tag, int):
            self._pending.pop(future_or_tag, None)
            return
        for tag, stream in list(self._pending.items()):
            if stream.future is future_or_tag:
                del self._pending[tag]

    def _complete(self, msg: Message) -> None:
        stream = self._pending.get(msg.matchtag)
        if stream is None:
            return
        if stream.callback is not None:
            if msg.errnum or not msg.streaming:
                self._pending.pop(msg.matchtag, None)
            stream.callback(msg)
            return
        self._pending.pop(msg.matchtag, None)
        if stream.future.done():
            return
        if msg.errnum:
            stream.future.set_exception(FluxError(msg.errnum, msg.errstr))
        else:
            try:
                stream.future.set_result(msg.json)
            except ProtocolError as exc:
                stream.future.set_exception(FluxError(errno.EPROTO, str(exc)))

    # -- events -------------------------------------------------------------------
    def publish(self, topic: str, payload: Any = None) -> None:
        """Publish an event instance-wide (sequenced by rank 0)."""
        if self.rank == 0:
            self.event_seq += 1
            self._distribute_event(Message.event(topic, payload, self.event_seq))
        else:
            self.rpc("event.pub", {"topic": topic, "payload": payload}, nodeid=0,
                     flags=FLAG_NORESPONSE)

    def _distribute_event(self, ev: Message) -> None:
        if self.child is not None:
            frames = ev.frames()
            for child in self.topo.children(self.rank):
                self._send(self.child, [str(child).encode(), *frames])
        else:
            frames = None
        for sender, prefixes in self.client_subs.items():
            if any(ev.topic.startswith(p) for p in prefixes):
                frames = frames or ev.frames()
                self._send(self.local, [sender[2:].encode("latin-1"), *frames])
        for prefix, callback in list(self.event_subs):
            if ev.topic.startswith(prefix):
                try:
                    callback(ev)
                except Exception as exc:
                    self.log("err", f"event {ev.topic}: subscriber failed: {exc!r}")

    def subscribe(self, prefix: str, callback: Callable[[Message], None]) -> None:
        self.event_subs.append((prefix, callback))

    def client_subscribe(self, sender: str, prefix: str) -> None:
        self.client_subs.setdefault(sender, []).append(prefix)

    def client_unsubscribe(self, sender: str, prefix: str) -> None:
        subs = self.client_subs.get(sender, [])
        if prefix in subs:
            subs.remove(prefix)

    def _disconnect(self, sender: str) -> None:
        self.client_subs.pop(sender, None)
        for name in [n for n, s in self.client_services.items() if s == sender]:
            del self.client_services[name]
        self.disconnect_route([sender])

    def disconnect_route(self, route: list[str]) -> None:
        """A client whose requests came along ``route`` went away: tell every
        service here, then the brokers upstream (which saw longer routes)."""
        for svc in list(self.services.values()):
            try:
                svc.disconnect(list(route))
            except Exception as exc:
                self.log("err", f"{svc.name}: disconnect failed: {exc!r}")
        if self.parent is not None:
            msg = Message.request("broker.disconnect", {}, nodeid=NODEID_ANY,
                                  flags=FLAG_NORESPONSE)
            msg.route = list(route)
            self._send(self.parent, msg.frames())

    # -- online / shutdown -----------------------------------------------------------
    def mark_online(self, rank: int) -> None:
        new = rank not in self._online
        self._online.add(rank)
        if new:
            for fn in list(self.online_listeners):
                fn(rank)
        if len(self._online) == self.size:
            for fut in self.online_waiters:
                if not fut.done():
                    fut.set_result(True)
            self.online_waiters.clear()

    @property
    def all_online(self) -> bool:
        return len(self._online) == self.size

    @property
    def online_ranks(self) -> set[int]:
        return set(self._online)

    def request_shutdown(self, exit_code: int = 0) -> None:
        self.exit_code = exit_code
        if self.shutdown_requested is not None:
            self.shutdown_requested.set()

    # -- logging ----------------------------------------------------------------
    def append_dmesg(self, entry: dict) -> None:
        """Add an entry to the ring buffer and hand it to ``dmesg -f`` followers."""
        self.dmesg.append(entry)
        for fn in list(self.dmesg_listeners):
            fn(entry)

    def log(self, level: int | str, text: str, *, name: str = "broker") -> None:
        """Append to this rank's dmesg ring; forward to rank 0 at or above forward level."""
        lvl = log_level(level)
        entry = {"timestamp": time.time(), "rank": self.rank, "level": lvl, "name": name,
                 "message": text}
        if lvl <= int(self.attrs.get("log-level", "7")):
            self.append_dmesg(entry)
        if self.rank > 0 and self.loop is not None and not self.closed \
                and lvl <= int(self.attrs.get("log-forward-level", "7")):
            self.rpc("log.append", entry, nodeid=0, flags=FLAG_NORESPONSE)
        stderr_level = int(self.attrs.get("log-stderr-level", "3"))
        if lvl <= stderr_level and self.rank == 0 and os.environ.get("FLUXNB_QUIET") is None:
            print(f"{name}.{LOG_LEVELS[lvl]}[{self.rank}]: {text}", file=sys.stderr)


__all__ = ["Broker", "LOG_LEVELS", "log_level"]
