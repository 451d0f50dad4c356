"""``flux.core.handle.Flux``: flux-core's handle, over fluxnb's client.

The connection is fluxnb's (:class:`fluxnb.runtime.client.Flux`); this class adds
flux-core's methods and a reactor: ``reactor_run()`` delivers responses to the
``then()`` continuations of futures, requests to the services the handle
registered (``service_register`` + ``msg_watcher_create``), events to message
watchers, and runs timer, signal and fd watchers, until ``reactor_stop()`` or
until nothing is left to watch.
"""

import errno
import json
import os
import socket as _socket
import time
from collections import deque

import zmq

import flux.constants as _c
from flux.core.watchers import (
    CheckWatcher, FDWatcher, IdleWatcher, MessageWatcher, PrepareWatcher, SignalWatcher,
    TimerWatcher,
)
from flux.future import Future
from flux.message import Message, encode_payload, encode_topic
from flux.rpc import RPC
from fluxnb.runtime.client import Flux as _FluxnbFlux
from fluxnb.runtime.message import EVENT, FLAG_NORESPONSE, REQUEST, RESPONSE
from fluxnb.runtime.message import Message as _Msg


def _treedict_get(d, key, default=None):
    for part in key.split("."):
        if not isinstance(d, dict) or part not in d:
            return default
        d = d[part]
    return d


class _Native:
    """The same connection handing out fluxnb's own RPC objects (for fluxnb's API)."""

    def __init__(self, h):
        self._h = h

    def rpc(self, topic, payload=None, nodeid=_c.FLUX_NODEID_ANY, flags=0):
        return _FluxnbFlux.rpc(self._h, topic, payload, nodeid=nodeid, flags=flags)

    def __getattr__(self, name):
        return getattr(self._h, name)


class Flux(_FluxnbFlux):
    """A handle to the enclosing instance (``FLUX_URI``), with flux-core's methods.

    ``Flux("loop://")`` is an unconnected handle for encoding messages.
    """

    def __init__(self, url=None, flags=0, handle=None):
        if isinstance(url, bytes):
            url = url.decode()
        if url is not None and not isinstance(url, str):
            raise TypeError("Flux: url must be a str")
        self._loop = url == "loop://"
        if self._loop:
            self.uri, self.endpoint, self._path, self._unix = url, None, None, False
            self.sock, self.closed, self.aux = None, False, {}
            self._responses, self._events, self._subs = {}, deque(), []
            import itertools
            self._tags = itertools.count(1)
        else:
            super().__init__(url)
        self.flags = flags
        self._watchers = set()
        self._thens = []
        self._requests = deque()
        self._orphans = deque()
        self._signals = []
        self._stop = None
        self._cached_config = None
        self.aux_txn = None  # flux.kvs: the handle's implicit transaction
        self._native = _Native(self)

    # -- messages in ----------------------------------------------------------------
    def _store(self, msg):
        if msg.type == RESPONSE:
            q = self._responses.get(msg.matchtag)
            if q is not None:
                q.append(msg)
            else:
                self._orphans.append(msg)
        elif msg.type == EVENT:
            self._events.append(msg)
        elif msg.type == REQUEST:
            self._requests.append(msg)

    def _recv_one(self, timeout):
        if self.sock is None:
            raise OSError(errno.ENOSYS, "loop:// handle has no broker")
        if timeout is None:
            while True:
                try:
                    frames = self.sock.recv_multipart(copy=True)
                    break
                except zmq.Again:
                    if self._path and not os.path.exists(self._path):
                        raise OSError(errno.ECONNRESET, f"lost connection to {self.uri}") from None
        else:
            if not self.sock.poll(int(timeout * 1000)):
                raise TimeoutError(f"no message from {self.uri} within {timeout}s")
            frames = self.sock.recv_multipart(copy=True)
        self._store(_Msg.from_frames(frames))

    def _drain(self):
        while self.sock is not None and self.sock.poll(0):
            self._store(_Msg.from_frames(self.sock.recv_multipart(copy=True)))

    # -- messages out ---------------------------------------------------------------
    def _send_request(self, topic, raw, nodeid, mflags):
        if self.sock is None:
            raise OSError(errno.ENOSYS, "loop:// handle cannot send")
        if self.closed:
            raise OSError(errno.EBADF, "handle is closed")
        tag = next(self._tags)
        if not mflags & FLAG_NORESPONSE:
            self._responses[tag] = deque()
        msg = _Msg.request(topic, raw, nodeid=nodeid, matchtag=tag, flags=mflags)
        self.sock.send_multipart(msg.frames())
        return tag

    def rpc(self, topic, payload=None, nodeid=_c.FLUX_NODEID_ANY, flags=0):
        """Send a request; return its :class:`flux.rpc.RPC` future."""
        return RPC(self, topic, payload, nodeid, flags)

    def send(self, message, flags=0):
        """Send a message made with :class:`flux.message.Message`."""
        if not isinstance(message, Message):
            raise TypeError("send: message must be a flux.message.Message")
        if self.sock is None:
            raise OSError(errno.ENOSYS, "loop:// handle cannot send")
        self.sock.send_multipart(message.handle.frames())
        return 0

    def respond(self, message, payload=None):
        """Respond to a request received by a message watcher."""
        if not isinstance(message, Message):
            raise TypeError("respond: message must be a flux.message.Message")
        if message.handle.flags & FLAG_NORESPONSE:
            return 0
        self.sock.send_multipart(message.handle.response(encode_payload(payload)).frames())
        return 0

    def respond_error(self, message, errnum, errstr=None):
        """Respond to a request received by a message watcher with error ``errnum``."""
        if not isinstance(message, Message):
            raise TypeError("respond_error: message must be a flux.message.Message")
        if not isinstance(errnum, int) or errnum <= 0:
            raise ValueError("respond_error: errnum must be a positive errno")
        if isinstance(errstr, bytes):
            errstr = errstr.decode("utf-8", errors="replace")
        if message.handle.flags & FLAG_NORESPONSE:
            return 0
        self.sock.send_multipart(message.handle.error_response(errnum, errstr).frames())
        return 0

    def request_encode(self, topic, payload=None):
        if topic is None:
            raise OSError(errno.EINVAL, "request_encode: topic must not be None")
        m = Message(_c.FLUX_MSGTYPE_REQUEST)
        m.topic = topic
        if payload is not None:
            m.payload_str = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
        return m

    def recv(self, type_mask=_c.FLUX_MSGTYPE_ANY, match_tag=_c.FLUX_MATCHTAG_NONE,
             topic_glob=None, flags=0):
        """Receive the next message matching ``type_mask``/``topic_glob`` (blocking)."""
        import fnmatch
        glob = topic_glob.decode() if isinstance(topic_glob, bytes) else topic_glob
        while True:
            for q in (self._events, self._requests, self._orphans):
                for i, m in enumerate(q):
                    if m.type & type_mask and (glob is None or fnmatch.fnmatchcase(m.topic, glob)) \
                            and (not match_tag or m.matchtag == match_tag):
                        del q[i]
                        return Message(handle=m)
            self._recv_one(None)

    # -- events ---------------------------------------------------------------------
    def event_create(self, topic, payload=None):
        return Message.from_event_encode(topic, payload)

    def event_subscribe(self, topic):
        super().event_subscribe(encode_topic(topic))
        return 0

    def event_unsubscribe(self, topic):
        super().event_unsubscribe(encode_topic(topic))
        return 0

    def event_send(self, topic, payload=None):
        """Publish an event instance-wide; 0 on success."""
        if isinstance(payload, (bytes, str)):
            text = payload.decode() if isinstance(payload, bytes) else payload
            try:
                payload = json.loads(text)
            except ValueError:
                payload = text
        # as flux-core's send of an event message: it goes out and the caller goes on
        # (rank 0 sequences events of one connection in the order they were sent)
        if self.closed:
            raise OSError(errno.EBADF, "handle is closed")
        req = _FluxnbFlux.rpc(self, "event.pub", {"topic": encode_topic(topic), "payload": payload},
                              flags=FLAG_NORESPONSE)
        self._responses.pop(req.matchtag, None)
        return 0

    def event_recv(self, topic=None):
        return Message(handle=super().event_recv(encode_topic(topic) if topic is not None else None))

    # -- attributes, config, log ------------------------------------------------------
    def get_rank(self):
        return int(self.attr_get("rank"))

    def get_size(self):
        return int(self.attr_get("size"))

    def attr_get(self, attr_name):
        if isinstance(attr_name, bytes):
            attr_name = attr_name.decode()
        if not isinstance(attr_name, str):
            raise ValueError("Attribute name must be a string")
        return super().attr_get(attr_name)

    def attr_set(self, attr, value):
        if not isinstance(attr, str):
            raise ValueError("Attribute name must be a string")
        if not isinstance(value, str):
            raise ValueError("Attribute value must be a string")
        super().attr_set(attr, value)

    def attr_remove(self, attr):
        if not isinstance(attr, str):
            raise ValueError("Attribute name must be a string")
        self.rpc("attr.rm", {"name": attr}).get()

    def conf_get(self, key=None, default=None, update=False):
        """The instance configuration (fetched once, or again with ``update=True``)."""
        if update or self._cached_config is None:
            self._cached_config = self.rpc("config.get").get() or {}
        if key is not None:
            return _treedict_get(self._cached_config, key, default)
        return self._cached_config

    def log(self, level, fstring):
        """Log ``fstring`` at syslog ``level`` to the instance's log (``flux dmesg``)."""
        if isinstance(fstring, bytes):
            fstring = fstring.decode("utf-8", errors="replace")
        if not isinstance(level, int):
            raise TypeError("log: level must be a syslog level (int)")
        entry = {"timestamp": time.time(), "rank": self.get_rank(), "level": level,
                 "name": os.path.basename(os.environ.get("FLUX_LOG_APPNAME", "python")),
                 "hostname": _socket.gethostname(), "message": fstring}
        self.rpc("log.append", entry, flags=_c.FLUX_RPC_NORESPONSE)
        return 0

    # -- services -------------------------------------------------------------------
    def service_register(self, name):
        """Register service ``name``: its requests come to this handle's message watchers."""
        return self.rpc("service.add", {"service": encode_topic(name)})

    def service_unregister(self, name):
        return self.rpc("service.remove", {"service": encode_topic(name)})

    # -- futures --------------------------------------------------------------------
    def future_create(self, init=None, arg=None):
        f = Future()
        f.set_flux(self)
        return f

    def future_get(self, future, result=None):
        future.get()
        return 0

    def _add_then(self, future):
        if future not in self._thens:
            self._thens.append(future)

    def _drop_then(self, future):
        if future in self._thens:
            self._thens.remove(future)

    # -- watchers -------------------------------------------------------------------
    def add_watcher(self, watcher):
        self._watchers.add(watcher)
        return watcher

    def del_watcher(self, watcher):
        self._watchers.discard(watcher)

    def msg_watcher_create(self, callback, type_mask=_c.FLUX_MSGTYPE_ANY, topic_glob="*",
                           args=None, match_tag=_c.FLUX_MATCHTAG_NONE, rolemask=None):
        return MessageWatcher(self, type_mask, callback, topic_glob, match_tag, rolemask, args)

    def timer_watcher_create(self, after, callback, repeat=0.0, args=None):
        return TimerWatcher(self, after, callback, repeat=repeat, args=args)

    def signal_watcher_create(self, signum, callback, args=None):
        return SignalWatcher(self, signum, callback, args)

    def fd_watcher_create(self, fd_int, callback, events=None, args=None):
        if events is None:
            events = _c.FLUX_POLLIN | _c.FLUX_POLLOUT | _c.FLUX_POLLERR
        return FDWatcher(self, fd_int, events, callback, args=args)

    def prepare_watcher_create(self, callback, args=None):
        return PrepareWatcher(self, callback, args=args)

    def check_watcher_create(self, callback, args=None):
        return CheckWatcher(self, callback, args=args)

    def idle_watcher_create(self, callback=None, args=None):
        return IdleWatcher(self, callback, args=args)

    # -- the reactor ----------------------------------------------------------------
    def get_reactor(self):
        return self

    def reactor_run(self, reactor=None, flags=0):
        """Run until ``reactor_stop()`` (the number of active watchers), until nothing is
        left to watch (0), or ``reactor_stop_error()`` (-1)."""
        return self._run(flags=flags)

    def reactor_stop(self, reactor=None):
        self._stop = 0

    def reactor_stop_error(self, reactor=None):
        self._stop = -1

    def fatal_error(self, reason=None):
        raise RuntimeError(f"fatal error: {reason}" if reason else "fatal error")

    def _active_count(self):
        n = sum(1 for w in self._watchers if w.active and w.referenced)
        return n + sum(1 for f in self._thens if f._active())

    def _dispatch(self, stoppable=False):
        """Run every callback that is due; True if any ran. In reactor_run()
        (``stoppable``), reactor_stop() from a callback ends the pass."""
        ran = False
        progress = True
        while progress and not (stoppable and self._stop is not None):
            progress = False
            self._drain()
            while self._signals:
                w = self._signals.pop(0)
                if w.active:
                    progress = True
                    w._fire()
            now = time.monotonic()
            for w in [w for w in self._watchers if isinstance(w, TimerWatcher) and w.active
                      and w.deadline is not None and w.deadline <= now]:
                if w.active:
                    progress = True
                    w._fire()
            mws = [w for w in self._watchers if isinstance(w, MessageWatcher) and w.active]
            while self._requests:
                m = self._requests.popleft()
                w = next((w for w in mws if w.matches(m)), None)
                progress = True
                if w is not None:
                    w._fire(m)
                elif not m.flags & FLAG_NORESPONSE:
                    self.sock.send_multipart(m.error_response(
                        errno.ENOSYS, f"{m.topic}: no handler for this method").frames())
            for q in (self._events, self._orphans):
                for m in list(q):
                    w = next((w for w in mws if w.matches(m)), None)
                    if w is not None:
                        q.remove(m)
                        progress = True
                        w._fire(m)
            self._orphans.clear()
            for f in list(self._thens):
                if f._due():
                    progress = True
                    f._fire()
            ran = ran or progress
        return ran

    def _run(self, until=None, timeout=None, flags=0):
        if self.sock is None:
            raise OSError(errno.ENOSYS, "loop:// handle has no reactor")
        deadline = None if timeout is None else time.monotonic() + timeout
        if until is not None and not (self._watchers or self._thens or self._signals
                                      or self._requests):
            # a future's get() with nothing else to run: just wait for messages
            while not until():
                if self._requests or self._thens or self._watchers:
                    break   # something arrived (or was added) that the reactor must run
                wait = None
                if deadline is not None:
                    wait = deadline - time.monotonic()
                    if wait <= 0:
                        return -1
                try:
                    self._recv_one(wait)
                except TimeoutError:
                    return -1
            else:
                return 0
        once = flags & (_c.FLUX_REACTOR_NOWAIT | _c.FLUX_REACTOR_ONCE)
        if until is None:
            self._stop = None
        while True:
            for w in [w for w in self._watchers if isinstance(w, PrepareWatcher) and w.active]:
                w._fire()
            self._dispatch(stoppable=until is None)
            if until is not None:
                if until():
                    return 0
            else:
                if self._stop is not None:
                    rc, self._stop = self._stop, None
                    return rc if rc < 0 else self._active_count()
                if not self._active_count():
                    return 0
                if once and once != _c.FLUX_REACTOR_ONCE:
                    return self._active_count()
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return -1
            self._wait(now, deadline)
            for w in [w for w in self._watchers if isinstance(w, CheckWatcher) and w.active]:
                w._fire()
            if once and until is None:
                self._dispatch(stoppable=True)
                return self._active_count()

    def _wait(self, now, deadline):
        wait = None if deadline is None else deadline - now
        for w in self._watchers:
            if not w.active:
                continue
            if isinstance(w, TimerWatcher) and w.deadline is not None:
                left = max(0.0, w.deadline - now)
                wait = left if wait is None else min(wait, left)
            elif isinstance(w, (SignalWatcher, IdleWatcher)):
                cap = 0.0 if isinstance(w, IdleWatcher) else 0.05
                wait = cap if wait is None else min(wait, cap)
        if self._signals:
            wait = 0.0
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        fds = {}
        for w in self._watchers:
            if isinstance(w, FDWatcher) and w.active:
                fds[w.fd] = w
                poller.register(w.fd, w.events & (zmq.POLLIN | zmq.POLLOUT | zmq.POLLERR))
        # wake now and then to notice a broker that went away
        ms = 1000 if wait is None else int(min(wait, 1.0) * 1000 + (0.999 if wait > 0 else 0))
        try:
            ready = poller.poll(ms)
        except zmq.ZMQError as exc:
            if exc.errno == errno.EINTR:
                return
            raise
        mine = self.sock if isinstance(self.sock, zmq.Socket) else self.sock.fileno()
        for sock, revents in ready:
            if sock is mine or sock == mine:   # zmq.Poller names a polled object by its fd
                self._drain()
            elif sock in fds and fds[sock].active:
                fds[sock]._fire(revents)
        if not ready and self._path and not os.path.exists(self._path):
            raise OSError(errno.ECONNRESET, f"lost connection to {self.uri}")

    # -- life -----------------------------------------------------------------------
    def close(self):
        if self._loop:
            self.closed = True
            return
        super().close()

    def __del__(self):  # pragma: no cover - best effort
        try:
            if not self._loop and not self.closed:
                _FluxnbFlux.close(self)
        except Exception:
            pass


__all__ = ["Flux"]
