"""One event feed per process: a thread that hears ``job-state`` and wakes the widgets.

The job manager publishes a batched ``job-state`` event, ``{"transitions": [[id,
"STATE", t], ...]}``, on every state change. Every widget in the kernel needs it, so
one daemon thread (:class:`EventFeed`) owns one :class:`~fluxnb.Flux` handle per
instance, subscribes once, and calls each registered widget back with the
transitions that arrived since its last call. A widget is called at most once per
``interval`` (a burst of a thousand transitions is one redraw), and the thread
sleeps in ``zmq.Poller.poll`` when nothing happens: no polling loop.

Handles are not thread-safe, so a callback gets the feed's own handle for its
instance and must not use the widget's (the kernel thread's) handle.

Examples
--------
>>> from fluxnb.widgets.events import feed  # doctest: +SKIP
>>> sub = feed().subscribe(uri, lambda h, transitions: print(len(transitions)))  # doctest: +SKIP
>>> sub.close()  # doctest: +SKIP
"""

from __future__ import annotations

import errno
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import zmq

from ..runtime.client import Flux
from ..runtime.message import FluxError

#: a widget callback: (the feed's handle, [[jobid, state, timestamp], ...]) -> None
Callback = Callable[[Flux, list], None]

#: seconds between liveness checks of an instance's socket when nothing else happens
_IDLE = 5.0


@dataclass(eq=False)
class Subscription:
    """A widget's registration with the feed; ``close()`` ends it.

    Parameters
    ----------
    uri : str
        The instance whose events the widget follows.
    callback : Callback
        Called in the feed thread with the feed's handle and the pending transitions.
    interval : float
        Least time between two calls (seconds): bursts coalesce into one call.
    """

    uri: str
    callback: Callback
    interval: float = 0.2
    feed: EventFeed | None = None
    pending: list = field(default_factory=list)
    due: float | None = None       # when the next call is owed, if one is
    last: float = 0.0              # when the last call was made
    calls: int = 0
    closed: bool = False
    error: BaseException | None = None
    on_lost: Callable[[], None] | None = None   # called (feed thread) when the instance goes away

    def poke(self, delay: float = 0.0) -> None:
        """Ask for a call (with no new transitions) after ``delay`` seconds at the latest."""
        if self.feed is not None and not self.closed:
            self.feed._poke(self, delay)

    def close(self) -> None:
        """Stop calling back; the feed drops its handle once no widget uses the instance."""
        if self.feed is not None and not self.closed:
            self.closed = True
            self.feed._remove(self)


class _Conn:
    """The feed's connection to one instance, and the widgets that follow it."""

    def __init__(self, uri: str):
        from ..realflux import connect   # fluxnb's Flux, or RealFlux on a real flux-core
        self.h = connect(uri)
        self.h.event_subscribe("job-state")
        # the instance shrank or grew: a wake-up with no transitions (ResourceBrowser redraws)
        self.h.event_subscribe("resource.")
        self.subs: list[Subscription] = []
        self.path = self.h._path
        self.lost = False

    def alive(self) -> bool:
        return not self.lost and getattr(self.h, "connected", True) and \
            (self.path is None or os.path.exists(self.path))


class EventFeed:
    """The process-wide event thread: started on the first subscription, a daemon."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conns: dict[str, _Conn] = {}
        self._adds: list[Subscription] = []
        self._removes: list[Subscription] = []
        self._subs: list[Subscription] = []
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        os.set_blocking(self._wfd, False)  # a full pipe already means "wake up"
        self._thread: threading.Thread | None = None
        self.wakeups = 0

    # -- the kernel side --------------------------------------------------------------
    def subscribe(self, uri: str, callback: Callback, interval: float = 0.2) -> Subscription:
        """Register ``callback`` for the instance at ``uri``; it is called once soon after.

        The first call comes once the feed has subscribed, so a widget that loaded its
        data before subscribing misses nothing.
        """
        sub = Subscription(uri, callback, interval, feed=self)
        with self._lock:
            self._adds.append(sub)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="fluxnb-widget-events",
                                                daemon=True)
                self._thread.start()
        self._wake()
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            self._removes.append(sub)
        self._wake()

    def _poke(self, sub: Subscription, delay: float) -> None:
        with self._lock:
            due = time.monotonic() + delay
            sub.due = due if sub.due is None else min(sub.due, due)
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wfd, b"x")
        except BlockingIOError:  # the pipe is full: the thread is awake anyway
            pass

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    # -- the feed thread --------------------------------------------------------------
    def _apply_changes(self) -> None:
        with self._lock:
            adds, self._adds = self._adds, []
            removes, self._removes = self._removes, []
        for sub in adds:
            try:
                conn = self._conns.get(sub.uri)
                if conn is None:
                    conn = self._conns[sub.uri] = _Conn(sub.uri)
            except (FluxError, OSError) as exc:
                sub.error = exc
                sub.closed = True
                continue
            conn.subs.append(sub)
            self._subs.append(sub)
            with self._lock:
                sub.due = time.monotonic()   # the first call: catch up on what was missed
        for sub in removes:
            if sub in self._subs:
                self._subs.remove(sub)
            conn = self._conns.get(sub.uri)
            if conn is not None and sub in conn.subs:
                conn.subs.remove(sub)
        for uri, conn in list(self._conns.items()):
            if not conn.subs:
                self._drop(uri)

    def _drop(self, uri: str, lost: bool = False) -> None:
        conn = self._conns.pop(uri, None)
        if conn is None:
            return
        for sub in conn.subs:
            sub.closed = True
            if lost and sub.on_lost is not None:
                try:
                    sub.on_lost()
                except Exception as exc:
                    sub.error = exc
            if sub in self._subs:
                self._subs.remove(sub)
        try:
            conn.h.close()
        except Exception:
            pass

    def _drain(self, conn: _Conn) -> None:
        """Move every queued ``job-state`` event into the pending lists of its widgets."""
        while True:
            try:
                ev = conn.h.event_recv(None, timeout=0)
            except TimeoutError:
                return
            except FluxError as exc:
                if exc.errno == errno.ECONNRESET:   # the instance went away
                    conn.lost = True
                    return
                continue  # a stray error response: nothing a widget can act on
            transitions = (ev.json or {}).get("transitions", []) if ev.topic == "job-state" else []
            now = time.monotonic()
            with self._lock:
                for sub in conn.subs:
                    sub.pending.extend(transitions)
                    due = max(now, sub.last + sub.interval)
                    sub.due = due if sub.due is None else min(sub.due, due)

    def _dispatch(self, now: float) -> None:
        for sub in list(self._subs):
            with self._lock:
                if sub.closed or sub.due is None or sub.due > now:
                    continue
                transitions, sub.pending = sub.pending, []
                sub.due = None
                sub.last = now
            conn = self._conns.get(sub.uri)
            if conn is None:
                continue
            try:
                sub.callback(conn.h, transitions)
            except Exception as exc:  # a widget bug must not stop the feed for the others
                sub.error = exc
            sub.calls += 1
            # a callback's RPCs may have queued events on the handle: pick them up now
            self._drain(conn)

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._rfd, zmq.POLLIN)
        polled: dict[str, Any] = {}
        last_check = time.monotonic()
        while True:
            self._apply_changes()
            for uri in list(polled):
                if uri not in self._conns:
                    poller.unregister(polled.pop(uri))
            for uri, conn in self._conns.items():
                if uri not in polled:
                    polled[uri] = conn.h.sock
                    poller.register(conn.h.sock, zmq.POLLIN)
                self._drain(conn)
            for uri, conn in list(self._conns.items()):
                if conn.lost:      # its events ended: the instance went away
                    self._drop(uri, lost=True)
                    poller.unregister(polled.pop(uri))
            now = time.monotonic()
            self._dispatch(now)
            with self._lock:
                dues = [s.due for s in self._subs if s.due is not None]
            timeout = min([_IDLE] + [max(0.0, d - time.monotonic()) for d in dues])
            events = dict(poller.poll(int(timeout * 1000) + (1 if timeout else 0)))
            self.wakeups += 1
            if self._rfd in events:
                try:
                    while os.read(self._rfd, 4096):
                        pass
                except BlockingIOError:
                    pass
            now = time.monotonic()
            if now - last_check >= _IDLE:
                last_check = now
                for uri, conn in list(self._conns.items()):
                    if not conn.alive():   # the instance stopped: its widgets freeze
                        self._drop(uri, lost=True)

            with self._lock:
                idle = not self._conns and not self._adds
                if idle:
                    self._thread = None
            if idle:
                return


_feed: EventFeed | None = None
_feed_lock = threading.Lock()


def feed() -> EventFeed:
    """The process's event feed (created on first use)."""
    global _feed
    with _feed_lock:
        if _feed is None:
            _feed = EventFeed()
        return _feed
