"""``flux.abc.journal``: the base of consumers of a journal-style streaming RPC
(``job-manager.events-journal``, ``resource.journal``).

``start()`` sends the request; events then come one by one from ``poll(timeout)``
or, with the reactor running, to the callback given to ``set_callback()``. With
``full``, the history comes first, time-ordered, then (if ``include_sentinel``) an
empty event marking its end, then events as they happen; ``since`` skips events at
or before a timestamp. ``stop()`` cancels the stream; ``poll()`` then gives None.
"""

import errno
import time
from abc import ABC, abstractmethod
from collections import deque

from flux.constants import FLUX_RPC_NORESPONSE, FLUX_RPC_STREAMING
from flux.eventlog import EventLogEvent


class JournalEventBase(EventLogEvent):
    """One journal event: ``name``, ``timestamp``, ``context`` (an empty one, with
    no name, marks the end of the history)."""

    def __init__(self, event):
        if "timestamp" not in event:
            event["timestamp"] = time.time()
        super().__init__(event)

    def is_empty(self):
        return "name" not in self

    def __str__(self):
        if self.is_empty():
            return f"{self.timestamp:<0.5f} End of historical data stream"
        return f"{self.timestamp:<0.5f} {self.name} {self.context_string}"


class JournalConsumerBase(ABC):
    """Consume the journal service ``topic`` (cancelled with ``cancel_topic``, by
    default ``topic + "-cancel"``). Subclasses turn responses into events with
    :meth:`process_response` and :meth:`create_event`."""

    SENTINEL_EVENT = JournalEventBase({})

    def __init__(self, flux_handle, topic, cancel_topic=None, full=True, since=0.0,
                 include_sentinel=False):
        self.handle = flux_handle
        self.topic = topic
        self.cancel_topic = cancel_topic or f"{topic}-cancel"
        self.backlog = deque()
        self.full = full
        self.since = since
        self.rpc = None
        self.cb = None
        self.cb_args = ()
        self.cb_kwargs = {}
        self.processing_inactive = self.full
        self.include_sentinel = include_sentinel

    # -- for subclasses ----------------------------------------------------------------
    @abstractmethod
    def process_response(self, resp):
        """Keyword arguments for :meth:`create_event` from one response."""
        return {}

    @abstractmethod
    def create_event(self, entry, **kwargs):
        """The event object of one entry of a response's ``events``."""
        return JournalEventBase(entry)

    def is_empty_response(self, resp):
        """True for the response that ends the history."""
        return len(resp["events"]) == 0

    @property
    def request_payload(self):
        return {}

    # -- internals ---------------------------------------------------------------------
    def _history_done(self):
        self.processing_inactive = False
        self.backlog = deque(sorted(self.backlog, key=lambda e: e.timestamp))
        if self.include_sentinel:
            self.backlog.append(self.SENTINEL_EVENT)

    def _enqueue(self, resp):
        if resp is None:  # the end of the stream
            self.backlog.append(None)
            return
        kwargs = self.process_response(resp)
        for entry in resp["events"]:
            event = self.create_event(entry, **kwargs)
            if event.timestamp > self.since:
                self.backlog.append(event)

    def _take(self, resp):
        if self.processing_inactive and self.is_empty_response(resp):
            self._history_done()
        else:
            self._enqueue(resp)

    def _set_then(self):
        if self.rpc is not None and self.cb is not None:
            self.rpc.stop()  # a callback set again replaces the one registered
            self.rpc.then(self._on_response)

    def _on_response(self, future):
        try:
            self._take(future.get())
            if not self.processing_inactive:
                while self.backlog:
                    self.cb(self.backlog.popleft(), *self.cb_args, **self.cb_kwargs)
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                # as flux-core: the end is noted for poll(); the callback is not called
                self._enqueue(None)
            else:
                raise
        finally:
            future.reset()

    # -- API ---------------------------------------------------------------------------
    def start(self):
        """Send the request (again: the stream restarts, with the same options)."""
        self.rpc = self.handle.rpc(self.topic, self.request_payload, 0, FLUX_RPC_STREAMING)
        self._set_then()
        return self

    def stop(self):
        """Cancel the stream: after the events already sent, the end (None)."""
        self.handle.rpc(self.cancel_topic, {"matchtag": self.rpc.matchtag}, 0,
                        FLUX_RPC_NORESPONSE)

    def poll(self, timeout=-1.0):
        """The next event (the history first, time-ordered); None once the stream has
        ended; TimeoutError if none comes within ``timeout`` seconds (< 0: no limit)."""
        if self.rpc is None:
            raise RuntimeError("poll() called before start()")
        while self.processing_inactive:
            resp = self.rpc.wait_for(timeout).get()
            self._take(resp)
            self.rpc.reset()
        while not self.backlog:
            try:
                resp = self.rpc.wait_for(timeout).get()
            except OSError as exc:
                if exc.errno != errno.ENODATA:
                    raise
                resp = None
            self._enqueue(resp)
            if resp is None:
                break
            self.rpc.reset()
        return self.backlog.popleft()

    def set_callback(self, event_cb, *args, **kwargs):
        """Have the reactor call ``event_cb(event, *args, **kwargs)`` for each event."""
        self.cb = event_cb
        self.cb_args = args
        self.cb_kwargs = kwargs
        self._set_then()
        return self


__all__ = ["JournalConsumerBase", "JournalEventBase"]
