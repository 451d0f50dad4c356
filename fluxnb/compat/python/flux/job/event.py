"""``flux.job.event``: watch a job's eventlogs (primary, or ``guest.*`` of its shell).

fluxnb keeps eventlogs in the KVS as flux-core does; a watch follows
``job.<id>.eventlog`` (appends), and for a guest eventlog the job's own namespace
``job-<id>`` while it runs, then the copy archived under ``job.<id>.guest``.
"""

import base64
import errno
import json
import os
from collections import deque

import flux.constants as _c
from flux.future import Future
from flux.job.JobID import JobID
from flux.rpc import RPC

try:  # flux.eventlog is fluxnb's too; fall back while it is absent
    from flux.eventlog import EventLogEvent
except ImportError:  # pragma: no cover
    class EventLogEvent(dict):
        """One eventlog entry: ``name``, ``timestamp``, ``context``."""

        def __init__(self, event):
            if isinstance(event, str):
                event = json.loads(event)
            super().__init__(event)
            if "context" not in self:
                self["context"] = {}

        def __str__(self):
            return "{0.timestamp:<0.5f}: {0.name} {0.context}".format(self)

        name = property(lambda self: self["name"])
        timestamp = property(lambda self: self["timestamp"])
        context = property(lambda self: self["context"])

        @property
        def context_string(self):
            if not self.context:
                return ""
            return json.dumps(self.context, ensure_ascii=False, separators=(",", ":"),
                              sort_keys=True)

MAIN_EVENTS = frozenset({"submit", "depend", "priority", "flux-restart", "urgency", "alloc",
                         "free", "start", "release", "finish", "clean", "debug", "exception"})

_WATCH = _c.FLUX_KVS_WATCH | _c.FLUX_KVS_WATCH_APPEND


class JobException(Exception):
    """A fatal job exception seen while waiting for an event."""

    def __init__(self, event):
        self.timestamp = event.timestamp
        self.type = event.context.get("type")
        self.note = event.context.get("note", "no explanation given")
        self.severity = event.context.get("severity")
        super().__init__(f"job.exception: type={self.type}: {self.note}")


def _check_handle(flux_handle):
    if flux_handle is None:
        raise OSError(errno.EINVAL, "flux handle must not be None")


class _EventlogStream(Future):
    """The entries of one job eventlog as they are appended, ending with None.

    A small state machine over streaming ``kvs-watch.lookup`` RPCs, advanced
    whenever someone asks whether it is ready (by the reactor or a blocking wait).
    """

    def __init__(self, flux_handle, jobid, path="eventlog", waitcreate=False):
        super().__init__()
        _check_handle(flux_handle)
        self.flux_handle = flux_handle
        if isinstance(jobid, int) and not 0 <= jobid < 2**64:
            raise OverflowError(f"job id {jobid} is out of range (an unsigned 64-bit integer)")
        self.jobid = JobID(jobid)
        if not isinstance(path, str):
            raise TypeError("eventlog path must be a str")
        self.guest = path.startswith("guest.")
        self.key = path[len("guest."):] if self.guest else (path or "eventlog")
        self.events = deque()
        self.ended = False
        self.err = None
        self.seen = set()
        self.buf = b""
        self.rpc = None
        self.waitcreate = waitcreate
        self.phase = "wait-start" if self.guest else "primary"
        # the eventlog may not be in the KVS yet: ask the job manager whether the job exists
        # and wait for its eventlog to be created
        self.check = RPC(flux_handle, "job-manager.getattr", {"id": int(self.jobid), "attrs": []}, 0)
        self._cancelled = False

    # -- RPCs ----------------------------------------------------------------------
    def _watch(self, key, namespace=None, waitcreate=False):
        flags = _WATCH | (_c.FLUX_KVS_WAITCREATE if waitcreate else 0)
        payload = {"key": key, "flags": flags}
        if namespace:
            payload["namespace"] = namespace
        self.buf = b""
        self.rpc = RPC(self.flux_handle, "kvs-watch.lookup", payload, 0, _c.FLUX_RPC_STREAMING)

    def _cancel_rpc(self):
        rpc, self.rpc = self.rpc, None
        if rpc is not None and not rpc.done:
            self.flux_handle.rpc("kvs-watch.cancel", {"matchtag": rpc.matchtag}, 0,
                                 _c.FLUX_RPC_NORESPONSE)
            rpc.flux_handle._responses.pop(rpc.matchtag, None)

    def _lines(self, val, seen=None):
        data = base64.b64decode(val["data"]) if val.get("data") else b""
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        out = []
        seen = self.seen if seen is None else seen
        for line in lines:
            if line and line not in seen:
                seen.add(line)
                out.append(EventLogEvent(json.loads(line)))
        return out

    def _end(self, err=None):
        self._cancel_rpc()
        self.phase = "end"
        self.ended = True
        if err is not None and self.err is None:
            self.err = err

    # -- the state machine ---------------------------------------------------------
    def _advance(self):
        """One step; False if waiting for a message."""
        primary = f"{self.jobid.kvs}.eventlog"
        if self.phase == "end":
            return False
        if self.check is not None:
            if not self.check.is_ready():
                return False
            try:
                self.check.get()
                self.waitcreate = True
            except OSError as exc:
                self.check = None
                self._end((exc.errno, exc.strerror))
                return True
            self.check = None
        if self.rpc is None:
            if self.phase == "archive":
                self.buf = b""
                self.rpc = RPC(self.flux_handle, "kvs.lookup",
                               {"key": f"{self.jobid.kvs}.guest.{self.key}"}, 0)
                return True
            if self.phase == "guest":
                self._watch(self.key, f"job-{int(self.jobid)}", waitcreate=True)
            elif self.phase == "primary" and self.key != "eventlog":
                self._watch(f"{self.jobid.kvs}.{self.key}", waitcreate=self.waitcreate)
            else:
                self._watch(primary, waitcreate=self.waitcreate)
        if not self.rpc.is_ready():
            return False
        if self.phase == "archive":
            try:
                self.events.extend(self._lines(self.rpc.get()["val"]))
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    self._end((exc.errno, exc.strerror))
                    return True
            self.rpc = None
            self._end()
            return True
        try:
            resp = self.rpc.get()
            self.rpc.reset()
        except OSError as exc:
            self.rpc = None
            if self.phase == "guest" and exc.errno in (errno.ENOTSUP, errno.ENOENT, errno.ENODATA):
                self.phase = "wait-clean"
            elif exc.errno == errno.ENODATA:
                self._end()
            else:
                self._end((exc.errno, exc.strerror))
            return True
        new = self._lines(resp["val"], set() if self.phase.startswith("wait-") else None)
        if self.phase == "primary":
            for ev in new:
                self.events.append(ev)
                if ev.name == "clean" and self.key == "eventlog":
                    self._end()
                    break
        elif self.phase in ("wait-start", "wait-clean"):
            for ev in new:
                self._on_primary(ev, self.phase)
                if ev.name == "start" and self.phase == "wait-start":
                    self._cancel_rpc()
                    self.phase = "guest"
                    break
                if ev.name == "clean":
                    self._cancel_rpc()
                    self.phase = "archive"
                    break
        else:  # guest
            self.events.extend(new)
        return True

    def _on_primary(self, ev, phase):
        """A primary eventlog event seen while waiting to watch a guest eventlog."""

    def _poll(self):
        if getattr(self, "_polling", False):  # a callback reached us from inside _advance
            return bool(self.events) or self.ended
        self._polling = True
        try:
            while not self.events and not self.ended:
                if not self._advance():
                    break
        finally:
            self._polling = False
        return bool(self.events) or self.ended

    def _multi(self):
        return not self.ended or bool(self.events)

    # -- API -------------------------------------------------------------------------
    def reset(self):
        if self.events:
            self.events.popleft()
            self._epoch += 1
        elif not self.ended:
            self._epoch += 1
        # an ended stream is fulfilled once with its end; resetting it brings no new result

    def next_event(self, autoreset=True):
        self.wait_for()
        if self.events:
            ev = self.events[0]
            if autoreset:
                self.reset()
            return ev
        if self.err is not None:
            errnum, errstr = self.err
            raise OSError(errnum, errstr or os.strerror(errnum))
        return None

    def cancel(self, stop=False):
        """Stop watching: the events already here are still given, then None."""
        if not self._cancelled:
            self._cancelled = True
            self._end()
        if stop:
            self.stop()


class JobEventWatchFuture(_EventlogStream):
    """``event_watch_async()``: ``get_event()`` gives the next event, None at the end."""

    def get_event(self, autoreset=True):
        return self.next_event(autoreset)


def event_watch_async(flux_handle, jobid, eventlog="eventlog"):
    return JobEventWatchFuture(flux_handle, jobid, eventlog)


def event_watch(flux_handle, jobid, eventlog="eventlog"):
    """Yield each event of a job eventlog (until the job is clean)."""
    watcher = event_watch_async(flux_handle, jobid, eventlog)
    try:
        while True:
            event = watcher.get_event()
            if event is None:
                return
            yield event
    finally:
        watcher.cancel()


def event_wait(flux_handle, jobid, name, eventlog="eventlog", raiseJobException=True):
    """Wait for event ``name``; JobException on a fatal exception first (unless told not to);
    OSError ENODATA if the eventlog ends without it."""
    _check_handle(flux_handle)
    for event in event_watch(flux_handle, jobid, eventlog):
        if event.name == name:
            return event
        if raiseJobException and event.name == "exception" and event.context.get("severity") == 0:
            raise JobException(event)
    raise OSError(errno.ENODATA, f"eventlog ended without event {name}")


__all__ = ["EventLogEvent", "JobException", "JobEventWatchFuture", "MAIN_EVENTS",
           "event_watch_async", "event_watch", "event_wait"]
