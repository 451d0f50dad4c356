"""The broker: one per rank, joined to the others in a tree (TBON) over pyzmq.

Each broker serves its clients on a unix socket and owns up to three zmq sockets,
all driven by one asyncio loop through their file descriptors (no per-message futures):

* ``<rundir>/local[-rank]``, the ``local://`` URI: a framed unix stream socket
  (:mod:`fluxnb.runtime.connector`), as flux-core's connector-local serves; clients
  in other processes connect here;
* ``local``  ROUTER bound to ``inproc://``: clients in the broker's own process;
* ``child``  ROUTER bound to the TBON endpoint: this rank's children connect here;
* ``parent`` DEALER (identity = rank) connected to the parent's ``child`` socket.

Only the instance owner is served, as flux-core's connector-local does without
multi-user support. The socket lives in the run directory, mode 0700, so other
uids cannot even connect; should they reach it anyway (a loosened directory), the
broker reads the peer's credentials (``SO_PEERCRED``) when it accepts the
connection, and answers every request from another uid with EPERM; it goes no
further. A client that goes away (closes, or dies) ends its connection, and the
broker drops its subscriptions, services and streams at once.

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

from .connector import GREETING, ServerConnection, bind_listener
from .message import (
    CONTROL, EVENT, FLAG_NORESPONSE, FLAG_STREAMING, NODEID_ANY, NODEID_UPSTREAM, REQUEST, RESPONSE,
    LARGE, FluxError, Message, ProtocolError,
)
from .service import DEFERRED, Service
from .topology import Topology

LOG_LEVELS = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]
_SELF = "s"
#: what a handler raises when a request's payload lacks a field or has the wrong type
_MALFORMED = (KeyError, TypeError, ValueError, IndexError, AttributeError)
_PARENT = "p"


def log_level(level: int | str) -> int:
    """Map a syslog level name or number to its number (``"info"`` -> 6)."""
    if isinstance(level, int):
        return level
    try:
        return LOG_LEVELS.index(level)
    except ValueError:
        raise ValueError(f"unknown log level {level!r} (one of {', '.join(LOG_LEVELS)})") from None


def _handover(msg: Message) -> Message:
    """What a linked broker receives for ``msg``: the same header and a route of its
    own. The payload goes as it is, bytes or object: payload objects are read only to
    their receivers (see `Message`), in one broker or another of the same process, and
    one made here is encoded only if a socket needs it (a job's jobspec went through
    json both ways on its way to a job shell of another rank)."""
    return Message(msg.type, msg.topic, msg.raw, msg.matchtag, msg.nodeid, msg.flags,
                   msg.errnum, msg.errstr, list(msg.route), msg.seq, msg.obj)


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


def _peer_uid(frame: zmq.Frame) -> int | None:
    """The uid of the process that sent ``frame`` over ipc, or None (inproc).

    For an ipc connection libzmq reads the peer's credentials (SO_PEERCRED) when
    it accepts it and reports them in the message property ``Peer-Address`` as
    ``host:uid:gid:pid``; inproc messages (clients in the broker's own process)
    have no such property. A value that cannot be parsed counts as a stranger.
    """
    try:
        addr = frame.get("Peer-Address")
    except zmq.ZMQError:
        return None
    try:
        return int(addr.rsplit(":", 3)[1])
    except (ValueError, IndexError):
        return -1


def _recv_client_frames(sock: zmq.Socket) -> tuple[list, int | None]:
    """:func:`_recv_frames` for the clients' socket, with the sender's uid."""
    first = sock.recv(zmq.NOBLOCK, copy=False)
    uid = _peer_uid(first)
    frames = [first.bytes]
    while sock.rcvmore:
        if frames[-1][-1:] == b"\0":
            frame = sock.recv(copy=False)
            frames.append(frame.buffer if len(frame) > LARGE else frame.bytes)
        else:
            frames.append(sock.recv())
    return frames, uid




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
        #: the instance configuration as ``config.get`` answers it (``config.load`` replaces it);
        #: it starts as the instance was given it (``Instance(conf=)``, ``fluxnb start -c``)
        self.conf: dict[str, Any] = dict(self.config.get("conf") or {})
        self.event_seq = 0
        self._tag = 0
        self._pending: dict[int, _Stream] = {}
        self._online: set[int] = {rank}
        #: child identity (its rank, as bytes) -> when first heard from on the child socket
        self.children_seen: dict[bytes, float] = {}
        #: child rank -> when last heard from (monotonic), for the torpid timeout
        self.child_lastseen: dict[int, float] = {}
        #: ranks known lost (a child, or anything behind it) -> (time, reason)
        self.lost: dict[int, tuple[float, str]] = {}
        self.lost_listeners: list[Callable[[list[int], str], None]] = []
        #: child rank -> requests forwarded to it awaiting a final response, so that
        #: they fail with EHOSTUNREACH if it is lost (flux-core's rpc tracking)
        self._tracked: dict[int, dict[tuple, Message]] = {}
        self._parent_sent = 0.0
        self._monitors: list[zmq.Socket] = []
        self.online_waiters: list[asyncio.Future] = []
        self.online_listeners: list[Callable[[int], None]] = []
        self.dmesg_listeners: list[Callable[[dict], None]] = []
        self.shutdown_requested: asyncio.Event | None = None
        self.exit_code = 0
        self.attrs = attrs
        self.dmesg: deque = deque(maxlen=int(attrs.get("log-ring-size", "1024")))
        self._sockets: list[zmq.Socket] = []
        self.local = self.child = self.parent = None
        #: brokers of this instance on this very loop (``link_direct``): messages to
        #: them are handed over as objects instead of through zmq
        self._direct_parent: Broker | None = None
        self._direct_children: dict[int, Broker] = {}
        self.closed = False
        #: the instance owner: the only uid whose requests are served (flux-core
        #: gives other uids the guest role only with multi-user support)
        self.owner = os.getuid()
        self._strangers: set[int] = set()
        #: the ``local://`` listener and its connections, by route hop (``c:#RANK.PID.TAG.N``)
        self._listener = None
        self._listener_ino = 0
        self._uconns: dict[str, ServerConnection] = {}
        self._uconn_batch: list[ServerConnection] | None = None  # see _on_uconn
        self._uconn_seq = 0
        self._uconn_tag = f"{rank}.{os.getpid()}.{os.urandom(3).hex()}"

    # -- start/stop -------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind and connect this broker's sockets and start reading them."""
        self.loop = loop
        self.shutdown_requested = asyncio.Event()
        # clients in this process skip the unix socket (and the kernel) altogether
        self.local = self._socket(zmq.ROUTER, self.topo.local_inproc(self.rank), bind=True)
        path = self.topo.local_path(self.rank)
        self._listener = bind_listener(path)
        self._listener_ino = os.stat(path).st_ino
        loop.add_reader(self._listener.fileno(), self._accept)
        if self.topo.children(self.rank):
            self.child = self._socket(zmq.ROUTER, self.topo.tbon_endpoint(self.rank), bind=True)
            # a send to a child that went away fails (EHOSTUNREACH) instead of vanishing
            self.child.setsockopt(zmq.ROUTER_MANDATORY, 1)
        if self.rank > 0:
            self.parent = self._socket(zmq.DEALER, self.topo.tbon_endpoint(self.topo.parent(self.rank)),
                                       bind=False, identity=str(self.rank).encode())
        for sock, fn in ((self.local, self._on_local), (self.child, self._on_child),
                         (self.parent, self._on_parent)):
            if sock is not None:
                loop.add_reader(sock.getsockopt(zmq.FD), self._drain, sock, fn)
                loop.call_soon(self._drain, sock, fn)
        self._start_liveness()
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
        if getattr(self, "_tick_handle", None) is not None:
            self._tick_handle.cancel()
        self._close_listener()
        for socks in (self._monitors, self._sockets):
            for sock in socks:
                try:
                    self.loop.remove_reader(sock.getsockopt(zmq.FD))
                except Exception:
                    pass
                sock.close(0)
            socks.clear()

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
            if sock is self.local:
                while sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    frames, uid = _recv_client_frames(sock)
                    if uid is None or uid == self.owner:
                        handler(frames)
                    else:
                        self._refuse("c:" + frames[0].decode("latin-1"), frames[1:], uid)
            else:
                while sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    handler(_recv_frames(sock))
        except zmq.Again:
            pass
        except zmq.ZMQError:
            if not self.closed:
                raise

    # -- the local:// connector -------------------------------------------------------
    def _accept(self) -> None:
        while not self.closed:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of fds: say so, keep serving the others
                self.log("err", f"accepting a client connection failed: {exc}")
                return
            sock.setblocking(False)
            self._uconn_seq += 1
            # hops are compared by prefix all along the tree: unique instance-wide, and
            # past a restart of this rank (as zmq's identities of its clients were)
            conn = ServerConnection(sock, f"c:#{self._uconn_tag}.{self._uconn_seq}",
                                    self._want_write, self._uconn_queued)
            if not conn.send_raw(GREETING):
                conn.close()
                continue
            self._uconns[conn.hop] = conn
            self.loop.add_reader(conn.fd, self._on_uconn, conn)

    def _want_write(self, conn: ServerConnection, on: bool) -> None:
        if on:
            self.loop.add_writer(conn.fd, self._flush_uconn, conn)
        else:
            self.loop.remove_writer(conn.fd)

    def _uconn_queued(self, conn: ServerConnection) -> None:
        batch = self._uconn_batch
        if batch is not None:
            batch.append(conn)  # written when the client's input is handled (_on_uconn)
        else:
            self.loop.call_soon(self._flush_uconn, conn)

    def _flush_uconn(self, conn: ServerConnection) -> None:
        if conn.closed:  # (its fd may be another connection's by now)
            return
        if not conn.flush():
            self._drop_uconn(conn)

    def _on_uconn(self, conn: ServerConnection) -> None:
        try:
            data = conn.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop_uconn(conn)
            return
        try:
            bodies = conn.reader.feed(data)
        except FluxError as exc:
            self.log("err", f"dropped a client connection: {exc}")
            self._drop_uconn(conn)
            return
        uid = conn.uid
        conn.spoke = True
        # what the handlers answer at once goes out before this callback returns, not a
        # pass of the loop later: one poll less a round trip (and still one write for all
        # the answers to one read)
        batch = self._uconn_batch = []
        try:
            for body in bodies:
                if uid == self.owner:
                    self._on_client(conn.hop, [body])
                else:
                    self._refuse(conn.hop, [body], uid)
                if conn.closed or self.closed:
                    break
        finally:
            self._uconn_batch = None
            for queued in batch:
                self._flush_uconn(queued)

    def _drop_uconn(self, conn: ServerConnection) -> None:
        """A client's connection ended: forget what it subscribed to, registered or streams."""
        if self._uconns.pop(conn.hop, None) is None:
            return
        self._unwatch(conn)
        if conn.spoke and not conn.said_goodbye and not self.closed:
            self._disconnect(conn.hop)

    def _unwatch(self, conn: ServerConnection) -> None:
        """Stop polling a client connection and close it."""
        try:
            self.loop.remove_reader(conn.fd)
            self.loop.remove_writer(conn.fd)
        except Exception:
            pass
        conn.close()

    def _close_listener(self) -> None:
        for conn in list(self._uconns.values()):
            if conn.pending:  # last answers (to `flux shutdown`...) go out if they can
                conn.flush()
            self._unwatch(conn)
        self._uconns.clear()
        if self._listener is not None:
            try:
                self.loop.remove_reader(self._listener.fileno())
            except Exception:
                pass
            self._listener.close()
            self._listener = None
            path = self.topo.local_path(self.rank)
            try:  # only our own socket file (a new broker may have bound the path since)
                if os.stat(path).st_ino == self._listener_ino:
                    os.unlink(path)
            except OSError:
                pass

    def _send_client(self, hop: str, frames: list) -> bool:
        """Send to the client behind route hop ``hop`` (``c:...``)."""
        conn = self._uconns.get(hop)
        if conn is not None:
            if conn.send(frames):
                return True
            self.loop.call_soon(self._drop_uconn, conn)
            return False
        if hop.startswith("c:#"):
            return False   # a unix client that went away
        return self._send(self.local, [hop[2:].encode("latin-1"), *frames])

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
        self._on_client("c:" + frames[0].decode("latin-1"), frames[1:])

    def _on_client(self, sender: str, frames: list) -> None:
        """A message from the client behind route hop ``sender``."""
        try:
            msg = Message.from_frames(frames)
        except ProtocolError as exc:
            self.log("err", f"dropped malformed message from client: {exc}")
            self._send_client(sender, [Message(RESPONSE, "", b"", 0, NODEID_ANY, 0, errno.EPROTO,
                                               f"malformed message: {exc}").encode()])
            return
        if msg.type == REQUEST:
            msg.route.append(sender)
            self.route_request(msg)
        elif msg.type == RESPONSE:  # from a client that registered a service
            self.route_response(msg)
        elif msg.type == CONTROL:
            if msg.topic == "disconnect":
                conn = self._uconns.get(sender)
                if conn is not None:
                    if conn.said_goodbye:
                        return
                    conn.said_goodbye = True
                self._disconnect(sender)
        elif msg.type == EVENT:
            self.rpc("event.pub", {"topic": msg.topic, "payload": msg.json}, nodeid=0,
                     flags=FLAG_NORESPONSE)

    def _refuse(self, sender: str, frames: list, uid: int) -> None:
        """Answer a request from another uid with EPERM; run nothing for it."""
        if uid not in self._strangers and len(self._strangers) < 64:
            self._strangers.add(uid)
            self.log("warning", f"refused a connection from uid {uid} (instance owner is "
                                f"uid {self.owner})")
        try:
            msg = Message.from_frames(frames)
        except ProtocolError:
            return
        if msg.type == REQUEST and not msg.flags & FLAG_NORESPONSE:
            err = msg.error_response(errno.EPERM, (
                f"{msg.topic}: permission denied: uid {uid} is not the instance owner "
                f"(uid {self.owner}) and this instance allows no guests"))
            err.route = []
            self._send_client(sender, err.frames())

    def _on_child(self, frames: list[bytes]) -> None:
        ident = frames[0]
        try:
            child = int(ident)
        except ValueError:
            return
        if child in self.lost:
            # declared lost: it must not come back half-way (its jobs are gone)
            self._send_child(child, Message(CONTROL, "overlay.lost"))
            return
        try:
            msg = Message.from_frames(frames[1:])
        except ProtocolError as exc:
            self.log("err", f"dropped malformed message from rank {ident!r}: {exc}")
            return
        self._from_child(child, msg, ident)

    def _from_child(self, child: int, msg: Message, ident: bytes | None = None) -> None:
        """A message from child ``child`` (from its socket, or handed over directly)."""
        if self.closed:
            return
        if ident is None and child in self.lost:  # (checked before decoding on a socket)
            self._send_child(child, Message(CONTROL, "overlay.lost"))
            return
        if ident is None:
            ident = str(child).encode()
        if ident not in self.children_seen:
            self.children_seen[ident] = time.time()
        self.child_lastseen[child] = time.monotonic()
        if msg.type == REQUEST:
            msg.route.append("r:" + ident.decode())
            self.route_request(msg)
        elif msg.type == RESPONSE:
            if msg.errnum or not msg.flags & FLAG_STREAMING:
                tracked = self._tracked.get(child)
                if tracked:
                    tracked.pop((tuple(msg.route), msg.matchtag), None)
            self.route_response(msg)

    def _on_parent(self, frames: list[bytes]) -> None:
        try:
            msg = Message.from_frames(frames)
        except ProtocolError as exc:
            self.log("err", f"dropped malformed message from parent: {exc}")
            return
        self._from_parent(msg)

    def _from_parent(self, msg: Message) -> None:
        """A message from the parent (from its socket, or handed over directly)."""
        if self.closed:
            return
        if msg.type == REQUEST:
            msg.route.append(_PARENT)
            self.route_request(msg)
        elif msg.type == RESPONSE:
            self.route_response(msg)
        elif msg.type == EVENT:
            self._distribute_event(msg)
        elif msg.type == CONTROL and msg.topic == "overlay.lost":
            self.log("err", "parent declared this broker lost: exiting")
            self.request_shutdown(1)

    def link_direct(self, brokers: dict[int, "Broker"]) -> None:
        """Hand messages to the brokers of ``brokers`` that are this one's parent or
        children as objects, on the loop they share, instead of through zmq.

        Only the payload's bytes travel (decoded again by whoever reads them), so
        neither side sees the other's objects; header encoding, zmq and the reads
        of its sockets are saved. All traffic between two linked brokers goes this
        way, so their messages stay in order.
        """
        if self.rank > 0:
            self._direct_parent = brokers.get(self.topo.parent(self.rank))
        self._direct_children = {c: brokers[c] for c in self.topo.children(self.rank)
                                 if c in brokers}

    def _send_parent(self, msg: Message) -> bool:
        peer = self._direct_parent
        if peer is not None:
            if peer.closed:
                return False
            self.loop.call_soon(peer._from_child, self.rank, _handover(msg))
            return True
        return self._send(self.parent, msg.frames())

    def _send(self, sock: zmq.Socket, frames: list[bytes]) -> bool:
        try:
            # a large payload frame is handed to zmq without a copy
            sock.send_multipart(frames, zmq.NOBLOCK, copy=len(frames[-1]) <= LARGE)
            ok = True
        except zmq.ZMQError as exc:  # peer gone: nothing to deliver to
            self.log("debug", f"send failed: {exc}")
            ok = False
        if sock is self.parent:
            self._parent_sent = time.monotonic()
        self._kick(sock)
        return ok

    def _send_child(self, child: int, msg: Message, frames: list | None = None) -> bool:
        """Send to a child; a child once heard from that cannot be reached is lost.

        ``frames``: ``msg``'s, when the caller has them already (an event to many).
        """
        peer = self._direct_children.get(child)
        if peer is not None:
            if peer.closed:
                return False
            self.loop.call_soon(peer._from_parent, _handover(msg))
            return True
        if self._send(self.child, [str(child).encode(), *(frames or msg.frames())]):
            return True
        if child in self.child_lastseen and child not in self.lost:
            self.lose_child(child, "lost connection")
        return False

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
                self._send_parent(msg)
        elif 0 <= target < self.size:
            child = self.topo.child_toward(self.rank, target)
            if child is None:
                self._send_parent(msg)
            elif child in self.lost or target in self.lost:
                self.respond_error(msg, errno.EHOSTUNREACH)
            else:
                track = not msg.flags & FLAG_NORESPONSE
                if track:
                    key = (tuple(msg.route), msg.matchtag)
                    self._tracked.setdefault(child, {})[key] = msg
                if not self._send_child(child, msg):
                    if track and self._tracked.get(child, {}).pop(key, None) is not None:
                        self.respond_error(msg, errno.EHOSTUNREACH)
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
            self._send_parent(msg)
        elif hop.startswith("c:"):
            self._send_client(hop, msg.frames())
        elif hop.startswith("r:"):
            self._send_child(int(hop[2:]), msg)

    def _dispatch(self, msg: Message) -> None:
        entry = self.topics.get(msg.topic)
        if entry is None:
            svc = msg.topic.split(".", 1)[0]
            client = self.client_services.get(svc)
            if client is not None:  # a service a client registered: it answers
                self._send_client(client, msg.frames())
                return
            if svc in self.service_names:
                text = f"{msg.topic}: unknown method of service '{svc}'"
            else:
                text = f"No service matching {msg.topic} is registered"  # flux-core's words
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
        except _MALFORMED as exc:
            self._malformed(msg, exc)
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
        elif isinstance(exc, _MALFORMED):
            self._malformed(msg, exc)
        else:
            self._internal_error(msg, exc)

    def _malformed(self, msg: Message, exc: BaseException) -> None:
        # A handler that indexes or converts a payload field it was not given
        # (or given as the wrong type) ends up here: the request was malformed.
        # The traceback stays in dmesg (flux dmesg) in case it was the handler's fault.
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.log("warning", f"{msg.topic}: malformed request: {text}")
        what = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        self.respond_error(msg, errno.EPROTO, f"{msg.topic}: malformed request payload: {what}")

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
        frames = None
        if self.child is not None:
            for child in self.topo.children(self.rank):
                if child not in self.lost and str(child).encode() in self.children_seen:
                    if child not in self._direct_children:
                        frames = frames or ev.frames()
                    self._send_child(child, ev, frames)
        for sender, prefixes in self.client_subs.items():
            if any(ev.topic.startswith(p) for p in prefixes):
                frames = frames or ev.frames()
                self._send_client(sender, frames)
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
            self._send_parent(msg)

    # -- liveness: heartbeats, the torpid timeout, lost ranks ----------------------------
    def _fsd_attr(self, name: str, default: str) -> float:
        from .util.fsd import parse_fsd
        try:
            return parse_fsd(self.attrs.get(name, default))
        except ValueError:
            self.log("err", f"{name}={self.attrs.get(name)!r}: not a duration, using {default}")
            return parse_fsd(default)

    def _start_liveness(self) -> None:
        """Heartbeats to the parent, the torpid check on children, and (over ipc)
        zmq's disconnect events, so that a dead peer is noticed at once."""
        self.torpid_min = self._fsd_attr("tbon.torpid_min", "1s")
        self.torpid_max = self._fsd_attr("tbon.torpid_max", "5s")
        self.subscribe("overlay.lost", self._on_lost_event)
        self._tick_handle = None
        if self.topo.transport == "inproc":
            return  # brokers sharing one loop are never silent one by one
        if self.parent is not None or self.child is not None:
            self._tick_interval = max(0.05, min(self.torpid_min, 1.0) / 2)
            self._tick_handle = self.loop.call_later(self._tick_interval, self._tick)
        for sock, fn in ((self.child, self._probe_children), (self.parent, self._parent_gone)):
            if sock is None:
                continue
            mon = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            self._monitors.append(mon)
            self.loop.add_reader(mon.getsockopt(zmq.FD), self._on_monitor, mon, fn)
            self.loop.call_soon(self._on_monitor, mon, fn)  # arm zmq's edge-triggered FD

    def _on_monitor(self, mon: zmq.Socket, fn: Callable[[], None]) -> None:
        got = False
        try:
            while mon.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                mon.recv_multipart(zmq.NOBLOCK)
                got = True
        except zmq.ZMQError:
            return
        if got and not self.closed:
            fn()

    def _probe_children(self, again: int = 3) -> None:
        """A connection below went away: the child we can no longer send to is lost."""
        if self.closed:
            return
        ping = Message(CONTROL, "overlay.ping")
        for child in self.topo.children(self.rank):
            if child in self.child_lastseen and child not in self.lost:
                self._send_child(child, ping)
        if again:  # zmq may drop the peer's pipe a moment after the event
            self.loop.call_later(0.05, self._probe_children, again - 1)

    def _parent_gone(self) -> None:
        if not self.closed and not self.shutdown_requested.is_set():
            self.log("err", f"lost connection to parent (rank {self.topo.parent(self.rank)}): exiting")
            self.request_shutdown(1)

    def _tick(self) -> None:
        if self.closed:
            return
        now = time.monotonic()
        if self.parent is not None and now - self._parent_sent >= self.torpid_min:
            self._send_parent(Message(CONTROL, "overlay.heartbeat"))
        if self.child is not None and self.torpid_max > 0:
            late = [c for c, t in self.child_lastseen.items()
                    if c not in self.lost and now - t >= self.torpid_max]
            if late:
                self._drain(self.child, self._on_child)  # what waits in the socket counts
                for c in late:
                    silent = time.monotonic() - self.child_lastseen[c]
                    if c not in self.lost and silent >= self.torpid_max:
                        from .util.fsd import format_fsd
                        self.lose_child(c, f"unresponsive for {format_fsd(round(silent, 1))}")
        self._tick_handle = self.loop.call_later(self._tick_interval, self._tick)

    def subtree(self, rank: int) -> list[int]:
        """``rank`` and every rank below it in the tree."""
        out, todo = [], [rank]
        while todo:
            r = todo.pop()
            out.append(r)
            todo.extend(self.topo.children(r))
        return sorted(out)

    def lose_child(self, child: int, why: str) -> None:
        """Declare ``child`` (and its subtree) lost: fail what was sent its way, tell rank 0."""
        ranks = self.subtree(child)
        now = time.time()
        for r in ranks:
            self.lost.setdefault(r, (now, why))
        if self.shutdown_requested.is_set():  # brokers leaving at shutdown are not lost
            for msg in list(self._tracked.pop(child, {}).values()):
                self.respond_error(msg, errno.EHOSTUNREACH)
            return
        others = len(ranks) - 1
        self.log("err", f"{self.hostname(child)} (rank {child}) {why}"
                        + (f" and severed contact with {others} other nodes" if others else ""))
        for msg in list(self._tracked.pop(child, {}).values()):
            self.respond_error(msg, errno.EHOSTUNREACH)
        from .util.idset import IDSet
        self.publish("overlay.lost", {"ranks": IDSet(ranks).encode(), "reason": why})

    def _on_lost_event(self, ev: Message) -> None:
        from .util.idset import IDSet
        body = ev.json or {}
        ranks = [r for r in IDSet(body.get("ranks", "")) if r != self.rank]
        why = body.get("reason", "lost connection")
        now = time.time()
        for r in ranks:
            self.lost.setdefault(r, (now, why))
            self._online.discard(r)
        if self.rank == 0 and ranks and self.topo.transport != "inproc":
            # one host: what the lost brokers started (their tasks' children too) is
            # ours to end, as a lost node's processes end with the node
            from .reaper import reap
            reap(self.topo.rundir, uris=[self.topo.local_uri(r) for r in ranks])
        for fn in list(self.lost_listeners):
            try:
                fn(ranks, why)
            except Exception as exc:
                self.log("err", f"lost ranks listener failed: {exc!r}")

    def hostname(self, rank: int) -> str:
        hosts = self.config.get("hosts") or []
        return hosts[rank] if rank < len(hosts) else f"rank{rank}"

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
