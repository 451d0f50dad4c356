"""``FluxExecutor``: Flux jobs behind the ``concurrent.futures`` interface, as in flux-core.

``executor.submit(jobspec)`` returns a :class:`FluxExecutorFuture` whose ``jobid()``
is the job's id once it is submitted and whose ``result()`` is the job's exit code,
or which raises :class:`~fluxnb.job.api.JobException` if the job gets a fatal
exception (canceled, a command that does not exist, a time limit...).

Each executor thread owns one ``Flux`` handle (handles are not thread-safe) and
multiplexes everything on it: submit RPCs, and one ``kvs-watch`` stream per active
job on that job's eventlog (``job.<dothex>.eventlog``, RFC 18). The thread sleeps in
``zmq.Poller`` on the handle's socket and a wake-up pipe, so 200 jobs cost 200
watch streams on one socket, not 200 threads or polling loops. A kvs-watch with
``FLUX_KVS_WATCH_APPEND`` delivers each appended chunk once and in order, so event
callbacks see every event exactly once, in eventlog order.

Examples
--------
>>> from fluxnb.job import FluxExecutor, JobspecV1                # doctest: +SKIP
>>> with FluxExecutor() as executor:
...     futures = [executor.submit(JobspecV1.from_command(["true"])) for _ in range(3)]
...     [fut.result() for fut in futures]
[0, 0, 0]
"""

from __future__ import annotations

import base64
import collections
import concurrent.futures
import errno
import itertools
import json
import logging
import os
import threading
import weakref
from typing import Any, Callable

import zmq

from ..runtime.client import Flux
from ..runtime.job.jobid import JobID
from ..runtime.message import FLAG_STREAMING, FluxError
from .api import (
    FLUX_KVS_WAITCREATE, FLUX_KVS_WATCH_APPEND, EventLogEvent, JobException, cancel_async,
    submit_async,
)

__all__ = ["FluxExecutor", "FluxExecutorFuture"]

LOGGER = logging.getLogger(__name__)

#: events a job's main eventlog may hold (RFC 21); callbacks may be added for these
MAIN_EVENTS = frozenset({
    "submit", "validate", "invalidate", "depend", "dependency-add", "dependency-remove",
    "priority", "flux-restart", "urgency", "alloc", "free", "start", "release", "finish",
    "clean", "debug", "exception", "memo",
})


def _exit_code(status: int) -> int:
    """The result of a job from its ``finish`` wait status, as flux-core's executor gives it:
    the exit code (128+N when a task died from signal N, as the shell reports it), or
    ``-signum`` if the finish status itself is a signal."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class FluxExecutorFuture(concurrent.futures.Future):
    """A ``concurrent.futures.Future`` for one Flux job.

    Besides the ``Future`` interface: :meth:`jobid` (with :meth:`add_jobid_callback`),
    :meth:`add_event_callback` for the job's eventlog events, and a :meth:`cancel` that
    cancels the Flux job once it is submitted.

    Parameters
    ----------
    owner : _ExecutorThread or None
        The executor thread that completes this future (None for a bare future).
    """

    #: names of the events :meth:`add_event_callback` accepts
    EVENTS = MAIN_EVENTS

    def __init__(self, owner: "_ExecutorThread | None" = None):
        super().__init__()
        self._owner = owner
        self._jobid_cond = threading.Condition()
        self._jobid: JobID | None = None
        self._jobid_set = False
        self._jobid_exc: BaseException | None = None
        self._jobid_callbacks: list[Callable] = []
        self._event_lock = threading.RLock()
        self._events_seen: dict[str, list[EventLogEvent]] = collections.defaultdict(list)
        self._event_callbacks: dict[str, list[Callable]] = collections.defaultdict(list)
        self._cancel_job = False  # cancel the Flux job once its id is known

    # -- jobid ----------------------------------------------------------------------
    def _set_jobid(self, jobid: int | None, exc: BaseException | None = None) -> None:
        with self._jobid_cond:
            if self._jobid_set:
                raise RuntimeError("invalid state: jobid already set")
            self._jobid = JobID(jobid) if jobid is not None else None
            self._jobid_exc = exc
            self._jobid_set = True
            self._jobid_cond.notify_all()
            callbacks, self._jobid_callbacks = self._jobid_callbacks, []
        for callback in callbacks:
            self._invoke(callback)

    def jobid(self, timeout: float | None = None) -> JobID:
        """The id of the job, waiting up to ``timeout`` seconds for the submission.

        Raises
        ------
        concurrent.futures.TimeoutError
            If the job is not submitted within ``timeout``.
        concurrent.futures.CancelledError
            If the future was cancelled before its job was submitted.
        RuntimeError
            If the job could not be submitted (an invalid jobspec, say).
        """
        with self._jobid_cond:
            if not self._jobid_cond.wait_for(lambda: self._jobid_set, timeout):
                raise concurrent.futures.TimeoutError()
        if self._jobid_exc is not None:
            raise self._jobid_exc
        return self._jobid

    def add_jobid_callback(self, callback: Callable[["FluxExecutorFuture"], Any]) -> "FluxExecutorFuture":
        """Call ``callback(future)`` once the jobid is known (now, if it already is)."""
        with self._jobid_cond:
            if not self._jobid_set:
                self._jobid_callbacks.append(callback)
                return self
        self._invoke(callback)
        return self

    # -- events ---------------------------------------------------------------------
    def add_event_callback(self, event: str,
                           callback: Callable[["FluxExecutorFuture", EventLogEvent], Any]
                           ) -> "FluxExecutorFuture":
        """Call ``callback(future, event)`` for each eventlog event named ``event``.

        Events that already happened are delivered at once, in order; later ones as
        they happen (possibly in an executor thread). Each callback sees each event
        exactly once. Exceptions a callback raises are logged and ignored.

        Raises
        ------
        ValueError
            If ``event`` is not an event of a job's main eventlog (see ``EVENTS``).
        """
        if event not in self.EVENTS:
            raise ValueError(f"{event!r} is not a job eventlog event (one of {sorted(self.EVENTS)})")
        with self._event_lock:
            self._event_callbacks[event].append(callback)
            for entry in list(self._events_seen[event]):
                self._invoke(callback, entry)
        return self

    def _set_event(self, entry: EventLogEvent) -> None:
        with self._event_lock:
            self._events_seen[entry.name].append(entry)
            for callback in list(self._event_callbacks.get(entry.name, ())):
                self._invoke(callback, entry)

    def _invoke(self, callback: Callable, *args: Any) -> None:
        try:
            callback(self, *args)
        except Exception:  # a user callback must not break the executor thread
            LOGGER.exception("exception calling callback for %r", self)

    # -- Future overrides -------------------------------------------------------------
    def _in_owner_thread(self) -> bool:
        return self._owner is not None and threading.get_ident() == self._owner.ident

    def result(self, timeout: float | None = None) -> int:
        """The job's exit code (``-signum`` if killed by a signal); raise
        :class:`JobException` if the job got a fatal exception."""
        if not self.done() and self._in_owner_thread():
            raise RuntimeError("cannot wait for a FluxExecutorFuture inside its own callback")
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if not self.done() and self._in_owner_thread():
            raise RuntimeError("cannot wait for a FluxExecutorFuture inside its own callback")
        return super().exception(timeout)

    def set_exception(self, exception: BaseException | None) -> None:
        with self._jobid_cond:
            unset = not self._jobid_set
        if unset:
            self._set_jobid(None, RuntimeError(f"job could not be submitted due to {exception}"))
        super().set_exception(exception)

    def cancel(self) -> bool:
        """Cancel the future, or the job it stands for.

        A future not yet picked up by its executor thread is cancelled and no job is
        ever submitted: True. Once the job is (being) submitted, the future is
        running and, as ``concurrent.futures`` requires, cannot be cancelled: this
        returns False but asks Flux to cancel the job, so ``result()`` then raises
        :class:`JobException` (type ``cancel``) unless the job had already finished.
        """
        if self.cancelled():
            return True
        if super().cancel():
            with self._jobid_cond:
                unset = not self._jobid_set
            if unset:
                self._set_jobid(None, concurrent.futures.CancelledError())
            return True
        if not self.done() and self._owner is not None:
            self._owner.request_cancel(self)
        return False

    def add_done_callback(self, fn: Callable[[concurrent.futures.Future], Any]) -> "FluxExecutorFuture":
        super().add_done_callback(fn)
        return self


class _Watch:
    """One job's eventlog stream: the kvs-watch RPC and the bytes not yet a whole line."""

    __slots__ = ("future", "rpc", "buf")

    def __init__(self, future: FluxExecutorFuture, rpc):
        self.future = future
        self.rpc = rpc
        self.buf = b""


class _ExecutorThread(threading.Thread):
    """Submits jobs and follows their eventlogs on one handle; completes their futures."""

    def __init__(self, broken: threading.Event, shutdown: threading.Event, poll_interval: float,
                 handle_args: tuple, handle_kwargs: dict, **kwargs: Any):
        super().__init__(**kwargs)
        self.packages: collections.deque = collections.deque()
        self._broken = broken
        self._shutdown = shutdown
        self._poll_interval = poll_interval
        self._h = Flux(*handle_args, **handle_kwargs)
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        os.set_blocking(self._wfd, False)
        # the write end lives as long as this object: a wake() racing with the end of
        # the thread then meets a closed pipe (EPIPE), never a reused descriptor
        weakref.finalize(self, os.close, self._wfd)
        self._cancels: collections.deque = collections.deque()
        self._submits: list[tuple[Any, FluxExecutorFuture]] = []   # submit RPCs in flight
        self._attaches: list[tuple[Any, FluxExecutorFuture]] = []  # job-list checks in flight
        self._watches: list[_Watch] = []
        self._discard: list[Any] = []  # RPCs whose answers only need consuming
        self._running: set[FluxExecutorFuture] = set()

    # -- called from other threads --------------------------------------------------
    def wake(self) -> None:
        try:
            os.write(self._wfd, b"x")
        except (BlockingIOError, OSError):
            pass  # the pipe is full (a wake-up is pending) or closed (the thread ended)

    def request_cancel(self, future: FluxExecutorFuture) -> None:
        self._cancels.append(future)
        self.wake()

    # -- the thread -------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            self._broken.set()
            for fut in list(self._running):
                if not fut.done():
                    fut.set_exception(exc)
            while self.packages:
                _, fut, _ = self.packages.popleft()
                if fut.set_running_or_notify_cancel():
                    fut.set_exception(exc)
            raise
        finally:
            self._h.close()
            os.close(self._rfd)

    def _work_remains(self) -> bool:
        return bool(not self._shutdown.is_set() or self.packages or self._running)

    def _loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self._h.sock, zmq.POLLIN)
        poller.register(self._rfd, zmq.POLLIN)
        while self._work_remains():
            self._take_packages()
            self._take_cancels()
            while self._drain():
                pass
            if not self._work_remains():
                break
            # a message that another RPC's wait_for pulled off the socket during the last
            # drain pass is picked up within poll_interval at worst
            ready = dict(poller.poll(int(self._poll_interval * 1000)))
            if self._rfd in ready:
                try:
                    while os.read(self._rfd, 4096):
                        pass
                except BlockingIOError:
                    pass

    def _take_packages(self) -> None:
        while self.packages:
            kind, fut, args = self.packages.popleft()
            if not fut.set_running_or_notify_cancel():
                continue
            self._running.add(fut)
            try:
                if kind == "submit":
                    jobspec, kwargs = args
                    self._submits.append((submit_async(self._h, jobspec, **kwargs).rpc, fut))
                else:
                    rpc = self._h.rpc("job-list.list-id", {"id": int(fut.jobid()), "attrs": ["state"]},
                                      nodeid=0)
                    self._attaches.append((rpc, fut))
            except Exception as exc:  # a jobspec that cannot be encoded, a closed handle...
                self._finish(fut, exc=exc)

    def _take_cancels(self) -> None:
        while self._cancels:
            fut = self._cancels.popleft()
            fut._cancel_job = True
            if fut._jobid_set and fut._jobid is not None and not fut.done():
                self._discard.append(cancel_async(self._h, fut._jobid))

    def _drain(self) -> bool:
        """Handle every response that has arrived; True if there was any."""
        progress = False
        for rpc, fut in list(self._submits):
            if rpc.wait_for(0):
                progress = True
                self._submits.remove((rpc, fut))
                self._on_submitted(rpc, fut)
        for rpc, fut in list(self._attaches):
            if rpc.wait_for(0):
                progress = True
                self._attaches.remove((rpc, fut))
                self._on_attach_checked(rpc, fut)
        for watch in list(self._watches):
            while watch.rpc.wait_for(0):
                progress = True
                if not self._on_chunk(watch):
                    break
        for rpc in list(self._discard):
            while not rpc.done and rpc.wait_for(0):
                progress = True
                if not rpc.streaming:
                    break
                rpc.reset()
            if rpc.done:
                self._discard.remove(rpc)
        return progress

    def _on_submitted(self, rpc, fut: FluxExecutorFuture) -> None:
        try:
            jobid = rpc.get()["id"]
        except Exception as exc:
            self._finish(fut, exc=exc)
            return
        fut._set_jobid(jobid)
        self._watch(fut, FLUX_KVS_WATCH_APPEND | FLUX_KVS_WAITCREATE)
        if fut._cancel_job:
            self._discard.append(cancel_async(self._h, jobid))

    def _on_attach_checked(self, rpc, fut: FluxExecutorFuture) -> None:
        try:
            rpc.get()
        except FluxError as exc:
            if exc.errno == errno.ENOENT:
                exc = ValueError(f"job ID {fut.jobid()} does not match any job")
            self._finish(fut, exc=exc)
            return
        self._watch(fut, FLUX_KVS_WATCH_APPEND | FLUX_KVS_WAITCREATE)

    def _watch(self, fut: FluxExecutorFuture, flags: int) -> None:
        rpc = self._h.rpc("kvs-watch.lookup", {"key": f"{fut.jobid().kvs}.eventlog", "flags": flags},
                          nodeid=0, flags=FLAG_STREAMING)
        self._watches.append(_Watch(fut, rpc))

    def _on_chunk(self, watch: _Watch) -> bool:
        """Deliver the events of one eventlog chunk; False once the watch is over."""
        fut = watch.future
        try:
            resp = watch.rpc.get()
        except FluxError as exc:
            self._watches.remove(watch)
            self._finish(fut, exc=exc if exc.errno != errno.ENODATA else
                         RuntimeError(f"eventlog of job {fut.jobid().f58} ended before clean"))
            return False
        watch.rpc.reset()
        data = resp["val"].get("data")
        watch.buf += base64.b64decode(data) if data else b""
        *lines, watch.buf = watch.buf.split(b"\n")
        for line in lines:
            if not line:
                continue
            event = EventLogEvent(json.loads(line))
            event.setdefault("context", {})
            if event.name in fut.EVENTS:
                fut._set_event(event)
            if not fut.done():
                if event.name == "finish":
                    fut.set_result(_exit_code(int(event.context.get("status", 0))))
                elif event.name == "exception" and event.context.get("severity") == 0:
                    fut.set_exception(JobException(event))
            if event.name == "clean":
                self._watches.remove(watch)
                self._discard.append(self._h.rpc("kvs-watch.cancel", {"matchtag": watch.rpc.matchtag},
                                                 nodeid=0))
                self._discard.append(watch.rpc)  # consume its closing ENODATA
                self._finish(fut, exc=RuntimeError(f"job {fut.jobid().f58} ended without a result"))
                return False
        return True

    def _finish(self, fut: FluxExecutorFuture, exc: BaseException | None = None) -> None:
        """The executor is done with ``fut``; fail it with ``exc`` if it has no outcome yet."""
        self._running.discard(fut)
        if not fut.done() and exc is not None:
            fut.set_exception(exc)


class FluxExecutor(concurrent.futures.Executor):
    """Submit Flux jobs and follow them through ``concurrent.futures`` futures.

    Parameters
    ----------
    threads : int
        Executor threads; each owns one handle and takes every ``threads``-th job.
    thread_name_prefix : str
        Names the threads ``<prefix>-<i>`` (for debugging).
    poll_interval : float
        Longest time (seconds) a thread sleeps without checking its queue.
    handle_args, handle_kwargs
        Arguments of each thread's ``fluxnb.Flux`` handle (e.g. ``(uri,)``).

    Notes
    -----
    As in flux-core, ``map`` is not supported (the executor runs jobspecs, not
    callables); the result of a future is the job's highest task exit code, or
    ``-signum`` for a task killed by a signal; an invalid jobspec sets an ``OSError``.

    Examples
    --------
    >>> with FluxExecutor() as executor:                           # doctest: +SKIP
    ...     fut = executor.submit(JobspecV1.from_command(["sh", "-c", "exit 3"]))
    ...     fut.result()
    3
    """

    _counter = itertools.count().__next__
    EVENTS = MAIN_EVENTS

    def __init__(self, threads: int = 1, thread_name_prefix: str = "", poll_interval: float = 0.1,
                 handle_args: tuple = (), handle_kwargs: dict | None = None):
        if threads < 1:
            raise ValueError("the number of threads must be > 0")
        self._shutdown_lock = threading.Lock()
        self._shutdown_event = threading.Event()
        self._broken_event = threading.Event()
        prefix = thread_name_prefix or f"{type(self).__name__}-{self._counter()}"
        self._threads = [
            _ExecutorThread(self._broken_event, self._shutdown_event, poll_interval,
                            tuple(handle_args), dict(handle_kwargs or {}),
                            name=f"{prefix}-{i}", daemon=True)
            for i in range(threads)
        ]
        self._next = 0
        for thread in self._threads:
            thread.start()
        self._finalizer = weakref.finalize(self, _stop_threads, self._shutdown_event, self._threads)

    def submit(self, jobspec: Any, **submit_kwargs: Any) -> FluxExecutorFuture:
        """Submit ``jobspec`` (as :func:`fluxnb.job.submit` takes it, with its keyword
        arguments ``urgency``, ``waitable``...) and return its future.

        Raises
        ------
        RuntimeError
            After :meth:`shutdown`, or if an executor thread failed.
        """
        return self._enqueue("submit", None, (jobspec, submit_kwargs))

    def attach(self, jobid: int) -> FluxExecutorFuture:
        """A future following the existing job ``jobid``, as :meth:`submit` would return.
        An unknown id sets a ``ValueError`` on the future."""
        return self._enqueue("attach", JobID(jobid), None)

    def _enqueue(self, kind: str, jobid: JobID | None, args: Any) -> FluxExecutorFuture:
        if self._broken_event.is_set():
            raise RuntimeError("executor is broken: new futures cannot be scheduled")
        with self._shutdown_lock:
            if self._shutdown_event.is_set():
                raise RuntimeError("cannot schedule new futures after shutdown")
            thread = self._threads[self._next]
            self._next = (self._next + 1) % len(self._threads)
            fut = FluxExecutorFuture(thread)
            if jobid is not None:
                fut._set_jobid(jobid)
            thread.packages.append((kind, fut, args))
        thread.wake()
        return fut

    def map(self, *args: Any, **kwargs: Any):
        raise NotImplementedError("FluxExecutor runs jobspecs, not callables: use submit")

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking jobs; with ``wait``, return once every submitted job is clean.

        ``cancel_futures`` cancels the futures no thread has picked up yet (their jobs
        are never submitted); jobs already submitted run to the end either way.
        Calling it again is harmless.
        """
        with self._shutdown_lock:
            self._shutdown_event.set()
        if cancel_futures:
            for thread in self._threads:
                while thread.packages:
                    try:
                        _, fut, _ = thread.packages.popleft()
                    except IndexError:
                        break
                    fut.cancel()
                    fut.set_running_or_notify_cancel()
        for thread in self._threads:
            thread.wake()
        if wait:
            for thread in self._threads:
                thread.join()

    def __enter__(self) -> "FluxExecutor":
        return self

    def __exit__(self, *exc: object) -> bool:
        self.shutdown(wait=True)
        return False


def _stop_threads(event: threading.Event, threads: list[_ExecutorThread]) -> None:
    """Finalizer: tell the threads to finish (a module function, so it holds no executor)."""
    event.set()
    for thread in threads:
        thread.wake()
