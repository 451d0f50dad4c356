"""``flux.job.output``: a job's stdout/stderr (its ``guest.output`` eventlog, RFC 24)."""

import errno
from typing import NamedTuple

from flux.job.event import EventLogEvent, JobException, _EventlogStream, event_wait

LOG_QUIET = -1
LOG_FATAL = 0
LOG_ERROR = 3
LOG_WARN = 4
LOG_NOTICE = 5
LOG_DEBUG = 6
LOG_TRACE = 7


class JobOutput(NamedTuple):
    stdout: str
    stderr: str
    log: str


class OutputEvent(EventLogEvent):
    """An output ``data`` event: ``stream``, ``rank``, ``data``, ``eof``."""

    def __init__(self, entry, labelio=False):
        super().__init__(entry)
        ctx = self.context
        self.stream = ctx.get("stream", "stdout")
        self.rank = str(ctx.get("rank", "0"))
        self.data = ctx.get("data", "")
        self.eof = bool(ctx.get("eof", False))
        self.labelio = labelio

    def render(self):
        if self.labelio and self.data:
            lines = self.data.splitlines(keepends=True)
            return "".join(f"{self.rank}: {line}" for line in lines)
        return self.data


def _tasks(tasks):
    if tasks is None or tasks == "all" or tasks == "*":
        return None
    out = set()
    for part in str(tasks).split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def _ranks(rank):
    out = set()
    for part in rank.strip("[]").split(","):
        if part:
            lo, _, hi = part.partition("-")
            out.update(range(int(lo), int(hi or lo) + 1))
    return out


class JobOutputEventWatch(_EventlogStream):
    """``output_event_watch_async()``: ``get_event()`` gives each output event, then None."""

    def __init__(self, flux_handle, jobid, labelio=False, nowait=False, tasks=None,
                 log_stderr_level=LOG_TRACE):
        super().__init__(flux_handle, jobid, "guest.output")
        self.labelio = labelio
        self.tasks = _tasks(tasks)
        self.nowait = nowait

    def _snapshot(self):
        """nowait: the output written so far (FileNotFoundError if the job has not started)."""
        ns = f"job-{int(self.jobid)}"
        for payload in ({"key": "output", "namespace": ns},
                        {"key": f"{self.jobid.kvs}.guest.output"}):
            try:
                val = self.flux_handle.rpc("kvs.lookup", payload, 0).get()["val"]
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTSUP):
                    continue
                raise
            self.buf = b""
            self.events.extend(self._lines(val))
            self._end()
            return
        self._end()
        raise FileNotFoundError(errno.ENOENT, f"job {self.jobid} has no output yet")

    def get_event(self, autoreset=True):
        if self.nowait and not self.ended:
            self.check = None
            self._snapshot()
        while True:
            ev = self.next_event(autoreset)
            if ev is None:
                return None
            if ev.name != "data":
                return ev
            out = OutputEvent(ev, self.labelio)
            if self.tasks is None or self.tasks & _ranks(out.rank):
                return out
            if not autoreset:
                self.reset()


def output_event_watch_async(flux_handle, jobid, labelio=False, nowait=False, tasks=None,
                 log_stderr_level=LOG_TRACE):
    return JobOutputEventWatch(flux_handle, jobid, labelio=labelio, nowait=nowait, tasks=tasks)


def output_event_watch(flux_handle, jobid, labelio=False, nowait=False, tasks=None,
                 log_stderr_level=LOG_TRACE):
    """Yield each output event of the job."""
    watcher = output_event_watch_async(flux_handle, jobid, labelio, nowait, tasks)
    while True:
        ev = watcher.get_event()
        if ev is None:
            return
        yield ev


def output_watch(flux_handle, jobid, labelio=False, nowait=False, tasks=None,
                 log_stderr_level=LOG_TRACE):
    """Yield ``(stream, data)`` for each piece of the job's output."""
    for ev in output_event_watch(flux_handle, jobid, labelio, nowait, tasks):
        if isinstance(ev, OutputEvent) and ev.data:
            yield ev.stream, ev.render()


def output_watch_lines(flux_handle, jobid, labelio=False, nowait=False, tasks=None,
                       keepends=False, log_stderr_level=LOG_TRACE):
    """Yield ``(stream, line)`` for each line of the job's output."""
    for stream, data in output_watch(flux_handle, jobid, labelio, nowait, tasks):
        for line in data.splitlines(keepends=keepends):
            yield stream, line


def job_output(flux_handle, jobid, labelio=False, tasks=None, nowait=False,
               log_stderr_level=LOG_TRACE):
    """All of the job's output once it is done: ``JobOutput(stdout, stderr, log)``."""
    watcher = output_event_watch_async(flux_handle, jobid, labelio, nowait, tasks)
    out = {"stdout": [], "stderr": [], "log": []}
    while True:
        ev = watcher.get_event()
        if ev is None:
            break
        if isinstance(ev, OutputEvent):
            out.setdefault(ev.stream, []).append(ev.render())
    return JobOutput("".join(out["stdout"]), "".join(out["stderr"]), "".join(out["log"]))


class JobOutputWatch(JobOutputEventWatch):
    """``output_watch_async()``: ``get_output()`` gives ``(stream, data)``, ``getline()``
    ``(stream, line)``; ``(None, None)`` once the output has ended."""

    def __init__(self, *args, keepends=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.keepends = keepends
        self._lines_left = []

    def get_output(self):
        while True:
            ev = self.get_event()
            if ev is None:
                return None, None
            if isinstance(ev, OutputEvent) and ev.data:
                return ev.stream, ev.render()

    def getline(self):
        if not self._lines_left:
            stream, data = self.get_output()
            if stream is None:
                return None, None
            self._lines_left = [(stream, line) for line in data.splitlines(keepends=self.keepends)]
        self._epoch += 1  # each line is a fulfillment of its own for then() callbacks
        return self._lines_left.pop(0)

    def _poll(self):
        return bool(self._lines_left) or super()._poll()


def output_watch_async(flux_handle, jobid, labelio=False, nowait=False, tasks=None,
                 log_stderr_level=LOG_TRACE):
    return JobOutputWatch(flux_handle, jobid, labelio=labelio, nowait=nowait, tasks=tasks)


def output_watch_lines_async(flux_handle, jobid, labelio=False, nowait=False, tasks=None,
                             log_stderr_level=LOG_TRACE, keepends=False):
    return JobOutputWatch(flux_handle, jobid, labelio=labelio, nowait=nowait, tasks=tasks,
                          keepends=keepends)


__all__ = ["LOG_QUIET", "LOG_TRACE", "JobOutput", "OutputEvent", "job_output",
           "output_event_watch", "output_event_watch_async", "output_watch",
           "output_watch_async", "output_watch_lines", "output_watch_lines_async",
           "JobOutputEventWatch", "JobOutputWatch", "JobException", "event_wait"]
