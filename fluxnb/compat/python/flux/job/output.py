"""``flux.job.output``: a job's stdout/stderr (its ``guest.output`` eventlog, RFC 24)."""

import base64
import errno
from typing import NamedTuple

from flux.idset import IDset
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


class Taskset:
    """A set of task ranks, or all of them (``"all"``/``"*"``); ``ids`` is the IDset."""

    def __init__(self, tasks):
        self.all = False
        self.ids = None
        if isinstance(tasks, Taskset):
            self.all = tasks.all
            self.ids = None if tasks.ids is None else tasks.ids.copy()
        elif isinstance(tasks, IDset):
            self.ids = tasks.copy()
        elif tasks in ("all", "*"):
            self.all = True
        else:
            self.ids = IDset(str(tasks))

    def intersect(self, tasks):
        if not isinstance(tasks, Taskset):
            tasks = Taskset(tasks)
        if self.all:
            return Taskset(tasks)
        if tasks.all:
            return Taskset(self)
        return Taskset(self.ids.intersect(tasks.ids))

    def __bool__(self):
        return self.all or len(self.ids) > 0

    def __str__(self):
        return "all" if self.all else str(self.ids)


class OutputEvent(EventLogEvent):
    """An RFC 24 ``data`` event: ``stream``, ``rank`` (Taskset), ``data`` (None if the
    event carries none, e.g. EOF), ``eof``."""

    def __init__(self, entry, labelio=False):
        super().__init__(entry)
        if self.name != "data":
            raise ValueError(f"event {self.name} is not a data event")
        ctx = self.context
        self.rank = Taskset(ctx.get("rank", "0"))
        self.stream = ctx.get("stream", "stdout")
        self.eof = bool(ctx.get("eof", False))
        self.data = None
        if "data" in ctx:
            data = ctx["data"]
            if ctx.get("encoding") == "base64":
                data = base64.b64decode(data).decode("utf-8", errors="surrogateescape")
            if "repeat" in ctx:
                data *= ctx["repeat"]
            if labelio:
                data = "".join(f"{self.rank}: {line}\n" for line in data.splitlines())
            self.data = data

    def render(self):
        return self.data


class LogEvent(EventLogEvent):
    """An RFC 24 ``log`` event (a message of the job shell)."""

    log_level_string = ["FATAL", "FATAL", "FATAL", "ERROR", " WARN", "", "DEBUG", "TRACE"]

    def __init__(self, entry):
        super().__init__(entry)
        if self.name != "log":
            raise ValueError(f"event {self.name} is not a log event")
        ctx = self.context
        self.level = ctx["level"]
        self.rank = Taskset(ctx["rank"])
        self.message = ctx["message"]
        self.component = ctx.get("component")
        self.file = ctx.get("file")
        self.line = ctx.get("line", -1)

    @property
    def levelstr(self):
        return self.log_level_string[self.level]

    def render(self, include_file_and_line=False):
        prefix = f"flux-shell[{self.rank}]: "
        if self.levelstr:
            prefix += f"{self.levelstr}: "
        if self.component:
            prefix += f"{self.component}: "
        if include_file_and_line and self.file:
            prefix += f"{self.file}:{self.line}: "
        return prefix + self.message


class OutputHeaderEvent(EventLogEvent):
    """The RFC 24 ``header`` event."""

    def __init__(self, entry):
        super().__init__(entry)
        if self.name != "header":
            raise ValueError(f"event {self.name} is not a header event")
        ctx = self.context
        self.version = ctx["version"]
        self.stdout_count = ctx["count"]["stdout"]
        self.stderr_count = ctx["count"]["stderr"]
        self.stdout_encoding = ctx["encoding"]["stdout"]
        self.stderr_encoding = ctx["encoding"]["stderr"]


class RedirectEvent(EventLogEvent):
    """The RFC 24 ``redirect`` event: a stream goes to a file."""

    def __init__(self, entry):
        super().__init__(entry)
        if self.name != "redirect":
            raise ValueError(f"event {self.name} is not a redirect event")
        self.stream = self.context["stream"]
        self.rank = Taskset(self.context["rank"])
        self.path = self.context["path"]

    def render(self):
        return f"{self.rank}: {self.stream} redirected to {self.path}"


class JobExceptionEvent(EventLogEvent):
    """A job exception (from the primary eventlog) reported among the output."""

    def __init__(self, entry):
        super().__init__(entry)
        if self.name != "exception":
            raise ValueError(f"event {self.name} is not an exception event")
        self.severity = self.context["severity"]
        self.exc_type = self.context["type"]
        self.note = self.context.get("note", "")

    def render(self):
        text = f"job.exception: type={self.exc_type} severity={self.severity}"
        return f"{text} {self.note}" if self.note else text


_KINDS = {"data": OutputEvent, "log": LogEvent, "header": OutputHeaderEvent,
          "redirect": RedirectEvent, "exception": JobExceptionEvent}


def _parse_output_eventlog_entry(entry, labelio=False):
    if entry is None:
        return None
    event = entry if isinstance(entry, EventLogEvent) else EventLogEvent(entry)
    kind = _KINDS.get(event.name)
    if kind is None:
        raise ValueError(f"event {event.name} is not a supported output event type")
    return kind(event, labelio) if kind is OutputEvent else kind(event)


def _stream_of(event, tasks, log_stderr_level):
    """Where ``job_output()`` puts an event's text (None: nowhere)."""
    if event.name == "data":
        return event.stream if event.rank.intersect(tasks) else None
    if event.name == "log":
        return "stderr" if event.level <= log_stderr_level else "log"
    return None


class JobOutputEventWatch(_EventlogStream):
    """``output_event_watch_async()``: ``get_event()`` gives each output event (OutputEvent,
    LogEvent, OutputHeaderEvent, RedirectEvent, or JobExceptionEvent for an exception
    raised before the job started), then None. A job that never started ends the watch
    with OSError EIO "job ID never started"."""

    def __init__(self, flux_handle, jobid, labelio=False, nowait=False, tasks=None,
                 log_stderr_level=LOG_TRACE):
        super().__init__(flux_handle, jobid, "guest.output")
        self.labelio = labelio
        self.tasks = Taskset("*" if tasks is None else tasks)
        self.nowait = nowait
        #: job_output(nowait=True): only the output written so far (a snapshot)
        self.snapshot = False
        self._exc_seen = set()
        if nowait:
            # the output eventlog is assumed to exist: watch it at once, without
            # waiting for the job to start (then its archive, if the job is gone)
            self.phase = "guest"

    def _on_primary(self, ev, phase):
        if phase != "wait-start":
            return
        if ev.name == "exception":
            key = (ev.timestamp, ev.context.get("type"), ev.context.get("note"))
            if key not in self._exc_seen:
                self._exc_seen.add(key)
                self.events.append(ev)
        elif ev.name == "clean":
            # it ended before it started: there is no output, say why
            self.err = (errno.EIO, f"job {self.jobid} never started")

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
        raise FileNotFoundError(errno.ENOENT, f"job {self.jobid} does not exist "
                                "or output not ready")

    def get_event(self, autoreset=True):
        if self.snapshot and not self.ended:
            self.check = None
            self._snapshot()
        while True:
            ev = self.next_event(autoreset)
            if ev is None:
                return None
            out = _parse_output_eventlog_entry(ev, self.labelio)
            if out.name != "data" or self.tasks.intersect(out.rank):
                return out
            if not autoreset:
                self.reset()


def output_event_watch_async(flux_handle, jobid, labelio=False, nowait=False, tasks=None):
    return JobOutputEventWatch(flux_handle, jobid, labelio=labelio, nowait=nowait, tasks=tasks)


def output_event_watch(flux_handle, jobid, labelio=False, nowait=False, tasks=None):
    """Yield each output event of the job."""
    watcher = output_event_watch_async(flux_handle, jobid, labelio, nowait, tasks)
    while True:
        ev = watcher.get_event()
        if ev is None:
            return
        yield ev


def output_watch(flux_handle, jobid, labelio=False, log_stderr_level=LOG_TRACE, nowait=False):
    """Yield ``(stream, data)`` for each piece of the job's output (shell log messages,
    redirections and exceptions as lines on stderr, or on "log" above ``log_stderr_level``)."""
    watcher = output_watch_async(flux_handle, jobid, labelio=labelio,
                                 log_stderr_level=log_stderr_level, nowait=nowait)
    while True:
        stream, data = watcher.get_output()
        if data is None:
            return
        yield stream, data


def output_watch_lines(flux_handle, jobid, labelio=False, log_stderr_level=LOG_TRACE,
                       nowait=False, keepends=False):
    """Yield ``(stream, line)`` for each line of the job's output."""
    for stream, data in output_watch(flux_handle, jobid, labelio, log_stderr_level, nowait):
        for line in data.splitlines(keepends=keepends):
            yield stream, line


def job_output(flux_handle, jobid, tasks="*", labelio=False, nowait=False,
               log_stderr_level=LOG_TRACE):
    """All of the job's output once it is done: ``JobOutput(stdout, stderr, log)``.

    Shell log messages go to stderr (to ``log`` above ``log_stderr_level``); a job that
    never starts raises its fatal exception as JobException."""
    watcher = output_event_watch_async(flux_handle, jobid, labelio, nowait)
    watcher.snapshot = nowait
    tasks = Taskset(tasks)
    out = {"stdout": [], "stderr": [], "log": []}
    fatal = None
    while True:
        try:
            ev = watcher.get_event()
        except OSError as exc:
            if fatal is not None and exc.errno == errno.EIO:
                raise JobException(fatal) from None
            raise
        if ev is None:
            break
        if ev.name == "exception":
            if ev.severity == 0 and fatal is None:
                fatal = ev
            continue
        stream = _stream_of(ev, tasks, log_stderr_level)
        text = ev.render() if stream else None
        if text:
            out[stream].append(text + ("\n" if ev.name == "log" else ""))
    return JobOutput("".join(out["stdout"]), "".join(out["stderr"]), "".join(out["log"]))


class JobOutputWatch(JobOutputEventWatch):
    """``output_watch_async()``: ``get_output()`` gives ``(stream, data)``, ``getline()``
    ``(stream, line)``; ``(None, None)`` once the output has ended. Shell log messages,
    redirections and job exceptions come as lines on stderr (log messages above
    ``log_stderr_level`` on "log")."""

    def __init__(self, flux_handle, jobid, labelio=False, log_stderr_level=LOG_TRACE,
                 nowait=False, keepends=False, tasks=None):
        super().__init__(flux_handle, jobid, labelio=labelio, nowait=nowait, tasks=tasks)
        self.log_stderr_level = log_stderr_level
        self.keepends = keepends
        self._lines_left = []

    def get_output(self):
        while True:
            ev = self.get_event()
            if ev is None:
                return None, None
            if ev.name == "data":
                if ev.data is not None:
                    return ev.stream, ev.render()
            elif ev.name in ("log", "redirect", "exception"):
                stream = "stderr"
                if ev.name == "log" and ev.level > self.log_stderr_level:
                    stream = "log"
                return stream, ev.render() + "\n"

    def getline(self):
        if not self._lines_left:
            stream, data = self.get_output()
            if stream is None:
                return None, None
            self._lines_left = [(stream, line) for line in data.splitlines(keepends=self.keepends)]
            if not self._lines_left:  # an empty piece of data is one empty line
                self._lines_left = [(stream, data)]
        self._epoch += 1  # each line is a fulfillment of its own for then() callbacks
        return self._lines_left.pop(0)

    def _poll(self):
        return bool(self._lines_left) or super()._poll()


def output_watch_async(flux_handle, jobid, labelio=False, log_stderr_level=LOG_TRACE,
                       nowait=False):
    return JobOutputWatch(flux_handle, jobid, labelio=labelio,
                          log_stderr_level=log_stderr_level, nowait=nowait)


def output_watch_lines_async(flux_handle, jobid, labelio=False, log_stderr_level=LOG_TRACE,
                             nowait=False, keepends=False):
    return JobOutputWatch(flux_handle, jobid, labelio=labelio,
                          log_stderr_level=log_stderr_level, nowait=nowait, keepends=keepends)


__all__ = ["LOG_QUIET", "LOG_FATAL", "LOG_ERROR", "LOG_WARN", "LOG_NOTICE", "LOG_DEBUG",
           "LOG_TRACE", "JobOutput", "Taskset", "OutputEvent", "LogEvent",
           "OutputHeaderEvent", "RedirectEvent", "JobExceptionEvent", "job_output",
           "output_event_watch", "output_event_watch_async", "output_watch",
           "output_watch_async", "output_watch_lines", "output_watch_lines_async",
           "JobOutputEventWatch", "JobOutputWatch", "JobException", "event_wait"]
