"""``RealFlux``: the interface fluxnb's widgets and tracing use, over a flux-core handle.

fluxnb's notebook face talks to an instance only through ``h.rpc(topic, payload,
nodeid).get()``, ``h.event_subscribe`` / ``h.event_recv`` and a pollable ``h.sock``.
:class:`RealFlux` gives exactly that over flux-core's own ``flux.Flux``:

- RPCs go straight to flux-core (same topics, same payloads); errors come back as
  :class:`fluxnb.FluxError` with flux-core's errno and message.
- flux-core 0.88 publishes no ``job-state`` event: its job manager streams every
  job's eventlog entries to ``job-manager.events-journal`` subscribers instead.
  Subscribing to ``job-state`` starts a :class:`Journal` (a thread with its own
  flux-core handle and reactor) that turns journal entries into fluxnb's batched
  ``job-state`` events, ``{"transitions": [[id, "STATE", t], ...]}``, and makes
  ``sock`` (a pipe) readable when one is queued: the widgets' event thread sleeps in
  ``poll`` as it does on fluxnb's own sockets.
- When the instance goes away the journal ends, ``connected`` turns False and
  ``event_recv`` raises ``FluxError(ECONNRESET)``: widgets show "disconnected".

Examples
--------
>>> from fluxnb.realflux import RealFlux           # doctest: +SKIP
>>> h = RealFlux()                                 # inside `flux start`: $FLUX_URI
>>> h.rpc("job-list.list", {"max_entries": 5, "attrs": ["state"]}).get()  # doctest: +SKIP
{'jobs': []}
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from collections import deque
from typing import Any

from ..runtime.message import FLAG_NORESPONSE, FLAG_STREAMING, NODEID_ANY, FluxError
from . import engine

#: an eventlog entry name -> the job state it moves the job to (flux-core's job manager)
EVENT_STATE = {"validate": "DEPEND", "depend": "PRIORITY", "priority": "SCHED",
               "alloc": "RUN", "finish": "CLEANUP", "clean": "INACTIVE", "invalidate": "INACTIVE"}

_RPC_STREAMING = 2      # flux-core's FLUX_RPC_STREAMING
_RPC_NORESPONSE = 1     # FLUX_RPC_NORESPONSE


def _flux_error(exc: BaseException) -> FluxError:
    num = getattr(exc, "errno", None) or errno.EPROTO
    msg = getattr(exc, "strerror", None) or str(exc) or os.strerror(num)
    return FluxError(num, msg)


def _request(topic: str, payload: Any) -> Any:
    """fluxnb's payload as flux-core wants it (where the two differ)."""
    if topic in ("kvs.lookup", "kvs-watch.lookup") and isinstance(payload, dict) \
            and "namespace" not in payload and "rootdir" not in payload:
        # fluxnb defaults to the primary namespace; flux-core wants it named
        payload = {**payload, "namespace": "primary"}
        payload.pop("rootref", None)
    return payload


def _ranks_of(R: Any) -> str:
    """The ranks of an R (or idset string) as an idset string: flux-core gives ``down`` as R."""
    if not R:
        return ""
    if isinstance(R, str):
        return R
    from ..runtime.util.idset import IDSet
    ids = IDSet()
    for entry in (R.get("execution") or {}).get("R_lite", []):
        ids = ids | IDSet.decode(entry["rank"])
    return str(ids)


def _resource_status(resp: dict) -> dict:
    """``sched.resource-status`` as fluxnb's widgets read it: ``down`` an idset of ranks."""
    out = dict(resp)
    out["down"] = _ranks_of(resp.get("down"))
    empty = not (resp.get("allocated") or {}).get("execution", {}).get("R_lite") \
        if isinstance(resp.get("allocated"), dict) else not resp.get("allocated")
    if empty:
        out["allocated"] = None
    return out


#: topic -> response translation (flux-core's payload -> what fluxnb's callers read)
_RESPONSES = {"sched.resource-status": _resource_status}


class Event:
    """An event as fluxnb's handle gives it: ``topic`` and decoded ``json``."""

    __slots__ = ("topic", "json")

    def __init__(self, topic: str, payload: Any):
        self.topic = topic
        self.json = payload


class RPC:
    """A flux-core future with fluxnb's RPC interface (``get(timeout)``, ``reset``, iteration)."""

    def __init__(self, future: Any, topic: str, streaming: bool, translate: Any = None):
        self.future = future
        self._translate = translate
        self.topic = topic
        self.streaming = streaming
        self.done = False

    def wait_for(self, timeout: float | None = None) -> bool:
        try:
            self.future.wait_for(-1.0 if timeout is None else timeout)
            return True
        except TimeoutError:
            return False
        except OSError as exc:
            if exc.errno == errno.ETIMEDOUT:
                return False
            raise _flux_error(exc) from None

    def get(self, timeout: float | None = None) -> Any:
        if timeout is not None and not self.wait_for(timeout):
            raise TimeoutError(f"no response to {self.topic} within {timeout}s")
        try:
            payload = self.future.get()
        except OSError as exc:
            self.done = True
            raise _flux_error(exc) from None
        if not self.streaming:
            self.done = True
        if isinstance(payload, (str, bytes)):
            try:
                payload = json.loads(payload)
            except ValueError:
                return payload
        return self._translate(payload) if self._translate else payload

    def reset(self) -> None:
        self.future.reset()

    @property
    def matchtag(self) -> int:
        return int(self.future.get_matchtag()) if hasattr(self.future, "get_matchtag") else 0

    # each payload of a streaming RPC until ENODATA: the same loop as fluxnb's own RPC
    from ..runtime.client import RPC as _RPC
    __iter__ = _RPC.__iter__
    del _RPC


class Journal(threading.Thread):
    """Follows ``job-manager.events-journal`` with its own handle; queues ``job-state`` events."""

    def __init__(self, uri: str, wake_fd: int):
        super().__init__(name="fluxnb-realflux-journal", daemon=True)
        self.uri = uri
        self._wake_fd = wake_fd
        self.events: deque = deque()
        self.error: FluxError | None = None
        self.caught_up = threading.Event()
        self.finished = threading.Event()
        self._stop_r, self._stop_w = os.pipe()
        self._ready = threading.Event()

    def run(self) -> None:
        flux = engine.bindings()
        try:
            h = flux.Flux(self.uri)
            fut = h.rpc("job-manager.events-journal", {"full": False}, nodeid=0, flags=_RPC_STREAMING)
            fut.then(self._on_response)
            stop = h.fd_watcher_create(self._stop_r, lambda *a: h.reactor_stop())
            stop.start()
            self._ready.set()
            h.reactor_run()
        except OSError as exc:
            self.error = _flux_error(exc)
        except Exception as exc:   # never let the thread die silently
            self.error = FluxError(errno.EPROTO, f"journal: {exc}")
        finally:
            self._ready.set()
            if self.error is None:
                self.error = FluxError(errno.ECONNRESET, f"lost connection to {self.uri}")
            self.finished.set()
            self._wake()

    def _on_response(self, fut: Any) -> None:
        try:
            resp = fut.get()
        except OSError as exc:
            self.error = _flux_error(exc)
            fut.get_flux().reactor_stop()
            return
        fut.reset()
        jobid, entries = resp.get("id"), resp.get("events", [])
        if jobid == -1 or jobid == 0xFFFFFFFFFFFFFFFF:   # the sentinel: backlog done
            self.caught_up.set()
            return
        transitions = []
        for ev in entries:
            state = EVENT_STATE.get(ev.get("name"))
            if ev.get("name") == "exception" and (ev.get("context") or {}).get("severity") == 0:
                state = "CLEANUP"
            if state is not None:
                transitions.append([jobid, state, ev.get("timestamp", time.time())])
        if transitions and self.caught_up.is_set():
            self.events.append(Event("job-state", {"transitions": transitions}))
            self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_fd, b"x")
        except (BlockingIOError, OSError):
            pass

    def stop(self, timeout: float = 2.0) -> None:
        try:
            os.write(self._stop_w, b"x")
        except OSError:
            pass
        self.join(timeout)
        for fd in (self._stop_r, self._stop_w):
            try:
                os.close(fd)
            except OSError:
                pass


class RealFlux:
    """A handle on a real flux-core instance with the interface of :class:`fluxnb.Flux`.

    Parameters
    ----------
    uri : str, optional
        The instance (default ``$FLUX_URI``).
    timeout : float
        Seconds to wait for the instance to answer its first RPC.

    Raises
    ------
    FluxError
        ENOENT/ECONNREFUSED if nothing answers at ``uri`` (within ``timeout``).
    """

    engine = "flux-core"
    aux = None    # no fluxnb KVS replica: every lookup goes to flux-core's kvs

    def __init__(self, uri: str | None = None, timeout: float = 5.0):
        uri = uri or os.environ.get("FLUX_URI")
        if not uri:
            raise FluxError(errno.ENOENT, "no real Flux to connect to: FLUX_URI is not set")
        self.uri = uri
        self._path = engine.socket_path(uri)
        kind = engine.probe(uri, timeout=min(timeout, 2.0))
        if kind == "none":
            raise FluxError(errno.ECONNREFUSED, f"no Flux instance at {uri}")
        if kind == "fluxnb":
            raise FluxError(errno.EPROTO, f"{uri} is a fluxnb instance, not a real Flux: use fluxnb.Flux")
        flux = engine.bindings()
        try:
            self._h = flux.Flux(uri)
            fut = RPC(self._h.rpc("attr.get", {"name": "version"}, nodeid=0), "attr.get", False)
            self.version = fut.get(timeout=timeout)["value"]
        except TimeoutError:
            raise FluxError(errno.ETIMEDOUT, f"the Flux instance at {uri} did not answer "
                            f"within {timeout}s") from None
        except OSError as exc:
            raise FluxError(exc.errno or errno.ECONNREFUSED, f"no Flux instance at {uri}: {exc}") from None
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        os.set_blocking(self._wfd, False)
        self._journal: Journal | None = None
        self._subs: list[str] = []
        self.closed = False

    # -- RPC -------------------------------------------------------------------------
    def rpc(self, topic: str, payload: Any = None, nodeid: int = NODEID_ANY, flags: int = 0) -> RPC:
        """Send a request to flux-core; flags are fluxnb's message flags (streaming...)."""
        if self.closed:
            raise FluxError(errno.EBADF, "handle is closed")
        payload = _request(topic, payload)
        cflags = (_RPC_STREAMING if flags & FLAG_STREAMING else 0) | \
            (_RPC_NORESPONSE if flags & FLAG_NORESPONSE else 0)
        try:
            fut = self._h.rpc(topic, payload, nodeid=nodeid, flags=cflags)
        except OSError as exc:
            raise _flux_error(exc) from None
        return RPC(fut, topic, bool(cflags & _RPC_STREAMING), _RESPONSES.get(topic))

    def attr_get(self, name: str) -> str:
        return self.rpc("attr.get", {"name": name}, nodeid=0).get()["value"]

    def get_rank(self) -> int:
        return int(self.attr_get("rank"))

    # -- events ----------------------------------------------------------------------
    @property
    def sock(self) -> int:
        """A file descriptor readable when an event may be queued (for ``poll``)."""
        return self._rfd

    @property
    def connected(self) -> bool:
        """False once the journal has ended (the instance went away)."""
        return not (self._journal is not None and self._journal.finished.is_set()) and \
            (self._path is None or os.path.exists(self._path))

    def event_subscribe(self, topic: str, timeout: float = 5.0) -> None:
        """Subscribe; ``job-state`` is made from the job manager's journal."""
        if topic == "job-state":
            if self._journal is None:
                self._journal = Journal(self.uri, self._wfd)
                self._journal.start()
                if not self._journal.caught_up.wait(timeout) and self._journal.error is not None:
                    raise self._journal.error
        else:
            try:
                self._h.event_subscribe(topic)
            except OSError as exc:
                raise _flux_error(exc) from None
        self._subs.append(topic)

    def event_recv(self, topic: str | None = None, timeout: float | None = None) -> Event:
        """Next queued ``job-state`` event (``timeout=0``: raise TimeoutError if none)."""
        try:
            while os.read(self._rfd, 4096):
                pass
        except BlockingIOError:
            pass
        j = self._journal
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if j is not None and j.events:
                return j.events.popleft()
            if j is not None and j.finished.is_set():
                raise j.error or FluxError(errno.ECONNRESET, f"lost connection to {self.uri}")
            if j is None and topic not in (None, "job-state"):
                try:
                    msg = self._h.event_recv(topic)
                except OSError as exc:
                    raise _flux_error(exc) from None
                return Event(msg.topic, msg.payload)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"no event from {self.uri} within {timeout}s")
            import select
            select.select([self._rfd], [], [], 0.5 if left is None else min(left, 0.5))
            try:
                while os.read(self._rfd, 4096):
                    pass
            except BlockingIOError:
                pass

    # -- life ------------------------------------------------------------------------
    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._journal is not None:
            self._journal.stop()
        for fd in (self._rfd, self._wfd):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self._h.close()
        except Exception:
            pass

    def __enter__(self) -> "RealFlux":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RealFlux({self.uri!r}, flux-core {self.version})"
