"""``flux.job.executor``: ``FluxExecutor`` and ``FluxExecutorFuture`` (concurrent.futures).

flux-core's design, over this package's handle: each executor thread owns a
``flux.Flux`` handle and a queue of packages (a jobspec to submit, or a job id to
attach to); a repeating timer brings it out of the reactor every ``poll_interval``
to take new packages. A submitted job's future gets its job id when the submission
answers, every event of ``EVENTS`` from the job's eventlog, and its result at
``finish`` (the exit code, or ``-signal``) or a ``JobException`` at a fatal exception.
flux-core's tests reach into the thread (``_FluxExecutorThread__run`` and the like),
so the private names are flux-core's.
"""

import collections
import concurrent.futures
import itertools
import logging
import os
import threading
import time
import weakref

import flux
from flux.job.event import MAIN_EVENTS, JobException, event_watch_async
from flux.job.submit import submit_async, submit_get_id

_SubmitPackage = collections.namedtuple("_SubmitPackage",
                                        ["submit_args", "submit_kwargs", "future"])


class _AttachPackage:  # pylint: disable=too-few-public-methods
    """A job id to watch and its future (which gets the job id at once)."""

    __slots__ = ("jobid", "future")

    def __init__(self, jobid, fut):
        self.jobid = jobid
        self.future = fut
        fut._set_jobid(jobid)


def _exit_code(status):
    """A wait status as a future's result: the exit code, or -signal."""
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    raise ValueError(status)


class _FluxExecutorThread(threading.Thread):
    """Submits the packages of its queue and completes their futures from job events.

    ``broken_event`` is set if the thread fails (every future it holds then gets the
    exception); ``exit_event`` says the executor shut down (the thread ends once its
    queue is empty and its futures are done).
    """

    def __init__(self, broken_event, exit_event, packages_to_handle, poll_interval,
                 handle_args, handle_kwargs, **kwargs):
        super().__init__(**kwargs)
        self.__broken_event = broken_event
        self.__exit_event = exit_event
        self.__packages_to_handle = packages_to_handle
        self.__poll_interval = poll_interval
        self.__flux_handle = flux.Flux(*handle_args, **handle_kwargs)
        self.__running_user_futures = set()

    def run(self):
        try:
            self.__run()
        except Exception as exc:
            self.__broken_event.set()
            for fut in self.__running_user_futures:
                if not fut.done():
                    fut.set_exception(exc)
            # fail whatever is still queued, or is queued before the executor notices
            while self.__packages_to_handle or not self.__exit_event.is_set():
                try:
                    package = self.__packages_to_handle.popleft()
                except IndexError:
                    time.sleep(0.01)
                else:
                    package.future.set_exception(exc)
            raise

    def __run(self):
        self.__flux_handle.timer_watcher_create(
            self.__poll_interval, self.__submit_new_jobs, repeat=self.__poll_interval).start()
        while self.__work_remains():
            self.__submit_new_jobs(reactor_run=False)
            if self.__flux_handle.reactor_run() < 0:
                raise RuntimeError("reactor start failed")

    def __work_remains(self):
        """False once it is safe to end: shut down, nothing queued, nothing running."""
        return (not self.__exit_event.is_set() or bool(self.__packages_to_handle)
                or bool(self.__running_user_futures))

    def __submit_new_jobs(self, *_, reactor_run=True):
        """Take the queued packages (on the timer, or between reactor runs)."""
        if reactor_run and not self.__work_remains():
            self.__flux_handle.reactor_stop()
        if not self.__running_user_futures and not self.__packages_to_handle:
            time.sleep(self.__poll_interval)  # idle: don't spin
        while self.__packages_to_handle:
            try:
                package = self.__packages_to_handle.popleft()
            except IndexError:
                continue
            if not package.future.set_running_or_notify_cancel():
                continue  # cancelled while queued
            if isinstance(package, _SubmitPackage):
                self.__handle_submit(package)
            else:
                self.__handle_attach(package)

    def __handle_submit(self, package):
        try:
            submit_async(self.__flux_handle, *package.submit_args,
                         **package.submit_kwargs).then(self.__submission_callback,
                                                       package.future)
        except Exception as exc:  # pylint: disable=broad-except
            package.future.set_exception(exc)
        else:
            self.__running_user_futures.add(package.future)

    def __handle_attach(self, package):
        try:
            event_watch_async(self.__flux_handle, package.jobid).then(
                self.__event_update, package.future)
        except Exception as exc:  # pylint: disable=broad-except
            package.future.set_exception(exc)
        else:
            self.__running_user_futures.add(package.future)

    def __submission_callback(self, submission_future, user_future):
        try:
            jobid = submit_get_id(submission_future)
        except Exception as exc:  # pylint: disable=broad-except
            user_future.set_exception(exc)
            self.__running_user_futures.discard(user_future)
            return
        user_future._set_jobid(jobid)
        event_watch_async(self.__flux_handle, jobid).then(self.__event_update, user_future)

    def __event_update(self, event_future, user_future):
        event = None
        try:
            event = event_future.get_event()
        except FileNotFoundError:
            user_future.set_exception(ValueError("job ID does not match any job"))
        except Exception as exc:  # pylint: disable=broad-except
            user_future.set_exception(exc)
        if event is None:  # the eventlog ended (or failed)
            self.__running_user_futures.discard(user_future)
            return
        if event.name in user_future.EVENTS:
            user_future._set_event(event)
        if user_future.done():
            return
        if event.name == "finish":
            try:
                user_future.set_result(_exit_code(event.context["status"]))
            except ValueError as exc:
                user_future.set_exception(exc)
        elif event.name == "exception" and event.context.get("severity") == 0:
            user_future.set_exception(JobException(event))


class FluxExecutorFuture(concurrent.futures.Future):
    """A ``concurrent.futures.Future`` for one Flux job, with ``jobid()``,
    ``add_jobid_callback()`` and ``add_event_callback()`` (events of ``EVENTS``).

    ``owning_thread_id`` is the ident of the thread that completes it: waiting on the
    future from that thread (a callback) raises RuntimeError instead of deadlocking.
    """

    EVENTS = MAIN_EVENTS

    def __init__(self, owning_thread_id, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.__owner = owning_thread_id
        self.__jobid_cond = threading.Condition()
        self.__jobid = None
        self.__jobid_set = False
        self.__jobid_exc = None
        self.__jobid_callbacks = []
        self.__event_lock = threading.RLock()
        self.__events = {name: collections.deque() for name in self.EVENTS}
        self.__event_callbacks = {name: collections.deque() for name in self.EVENTS}

    # -- job id -----------------------------------------------------------------------
    def _set_jobid(self, jobid, exc=None):
        """Set the job id (or, with ``exc``, what ``jobid()`` raises); once only."""
        if self.__jobid_set:
            raise RuntimeError("invalid state: jobid already set")
        with self.__jobid_cond:
            self.__jobid = jobid
            self.__jobid_set = True
            self.__jobid_exc = exc
            self.__jobid_cond.notify_all()
        for callback in self.__jobid_callbacks:
            self._invoke_flux_callback(callback)

    def jobid(self, timeout=None):
        """The job's id, waiting up to ``timeout`` seconds (None: forever).

        Raises concurrent.futures.TimeoutError if it is not there in time,
        CancelledError if the future was cancelled first, RuntimeError if the job
        could not be submitted."""
        with self.__jobid_cond:
            if not self.__jobid_set:
                self.__jobid_cond.wait_for(lambda: self.__jobid_set, timeout)
            if not self.__jobid_set:
                raise concurrent.futures.TimeoutError()
        return self._get_jobid()

    def _get_jobid(self):
        if self.__jobid_exc is not None:
            raise self.__jobid_exc
        return self.__jobid

    def add_jobid_callback(self, callback):
        """Call ``callback(future)`` once the job id is set (at once if it is)."""
        with self.__jobid_cond:
            if not self.__jobid_set:
                self.__jobid_callbacks.append(callback)
                return self
        self._invoke_flux_callback(callback)
        return self

    def _invoke_flux_callback(self, callback, *args):
        try:
            callback(self, *args)
        except Exception:  # pylint: disable=broad-except
            logging.getLogger(__name__).exception("exception calling callback for %r", self)

    # -- concurrent.futures -----------------------------------------------------------
    def add_done_callback(self, *args, **kwargs):  # pylint: disable=arguments-differ
        super().add_done_callback(*args, **kwargs)
        return self

    def _check_owner(self):
        if not self.done() and threading.get_ident() == self.__owner:
            raise RuntimeError("Cannot wait for future from inside callback")

    def exception(self, *args, **kwargs):  # pylint: disable=arguments-differ
        self._check_owner()
        return super().exception(*args, **kwargs)

    def result(self, *args, **kwargs):  # pylint: disable=arguments-differ
        self._check_owner()
        return super().result(*args, **kwargs)

    def set_exception(self, exception):
        """Also give the job id an error if it was never set (the job was not submitted)."""
        if not self.__jobid_set:
            try:
                self._set_jobid(None, RuntimeError(
                    f"job could not be submitted due to {exception!r}"))
            except RuntimeError:
                pass  # set meanwhile
        return super().set_exception(exception)

    def cancel(self, *args, **kwargs):  # pylint: disable=arguments-differ
        """Cancel; a thread waiting for the job id then gets CancelledError."""
        if self.cancelled():
            return True
        cancelled = super().cancel(*args, **kwargs)
        if cancelled and not self.__jobid_set:
            try:
                self._set_jobid(None, concurrent.futures.CancelledError())
            except RuntimeError:
                pass
        return cancelled

    # -- events -----------------------------------------------------------------------
    def add_event_callback(self, event, callback):
        """Call ``callback(future, event)`` at each ``event`` of the job (at once for
        those that already happened)."""
        if event not in self.EVENTS:
            raise ValueError(event)
        with self.__event_lock:
            self.__event_callbacks[event].append(callback)
            for entry in list(self.__events[event]):
                self._invoke_flux_callback(callback, entry)
        return self

    def _set_event(self, log_entry):
        """Record an ``EventLogEvent`` and call its callbacks."""
        name = log_entry.name
        if name not in self.EVENTS:
            raise ValueError(name)
        with self.__event_lock:
            self.__events[name].append(log_entry)
            for callback in list(self.__event_callbacks[name]):
                self._invoke_flux_callback(callback, log_entry)


class FluxExecutor:
    """Submit jobspecs (``submit()``) or watch existing jobs (``attach()``) and get a
    ``FluxExecutorFuture`` for each, completed by ``threads`` background threads.

    A future's result is the job's highest exit code, or ``-signum``; a fatal job
    exception sets a ``JobException``; an invalid jobspec an ``OSError``.
    """

    _counter = itertools.count().__next__
    EVENTS = MAIN_EVENTS

    def __init__(self, threads=1, thread_name_prefix="", poll_interval=0.1, handle_args=(),
                 handle_kwargs=None):
        if threads < 0:
            raise ValueError("the number of threads must be > 0")
        handle_kwargs = dict(handle_kwargs or {})
        self._submission_queues = [collections.deque() for _ in range(threads)]
        self._next_thread = 0
        self._shutdown_lock = threading.Lock()
        self._broken_event = threading.Event()
        self._shutdown_event = threading.Event()
        prefix = thread_name_prefix or f"{type(self).__name__}-{self._counter()}"
        self._executor_threads = [
            _FluxExecutorThread(self._broken_event, self._shutdown_event, queue, poll_interval,
                                handle_args, handle_kwargs, name=f"{prefix}-{i}", daemon=True)
            for i, queue in enumerate(self._submission_queues)
        ]
        for thread in self._executor_threads:
            thread.start()
        self._finalizer = weakref.finalize(self, self._shutdown_threads, self._shutdown_event,
                                           self._executor_threads)

    def shutdown(self, wait=True, *, cancel_futures=False):
        """No new futures; with ``cancel_futures`` cancel the queued ones; with ``wait``
        return once every future is done. Safe to call more than once."""
        with self._shutdown_lock:
            self._shutdown_event.set()
        if cancel_futures:
            for queue in self._submission_queues:
                while queue:
                    try:
                        package = queue.popleft()
                    except IndexError:
                        break
                    package.future.cancel()
                    package.future.set_running_or_notify_cancel()
        if wait:
            for thread in self._executor_threads:
                thread.join()

    def submit(self, *args, **kwargs):
        """``flux.job.submit``'s arguments without the handle; a FluxExecutorFuture."""
        return self._create_future(_SubmitPackage, args, kwargs)

    def attach(self, jobid):
        """A FluxExecutorFuture for the existing job ``jobid``."""
        return self._create_future(_AttachPackage, jobid)

    def _create_future(self, factory, *factory_args):
        if self._broken_event.is_set():
            raise RuntimeError("Executor is broken, new futures cannot be scheduled")
        with self._shutdown_lock:
            if self._shutdown_event.is_set():
                raise RuntimeError("cannot schedule new futures after shutdown")
            thread = self._executor_threads[self._next_thread]
            fut = FluxExecutorFuture(thread.ident)
            self._submission_queues[self._next_thread].append(factory(*factory_args, fut))
            self._next_thread = (self._next_thread + 1) % len(self._submission_queues)
            return fut

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.shutdown(wait=True)
        return False

    @staticmethod
    def _shutdown_threads(event, threads):
        event.set()
        for thread in threads:
            thread.join()


__all__ = ["FluxExecutor", "FluxExecutorFuture"]
