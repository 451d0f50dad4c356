"""``critical_path``: PerfFlowAspect's Python annotations, as a drop-in.

Porting a PerfFlowAspect program is changing its import::

    from fluxnb.trace import critical_path   # was: from perfflowaspect.aspect import ...

    @critical_path()
    def dock(batch): ...

Options come from ``PERFFLOW_OPTIONS`` (colon-separated ``key=value``, read once,
when the first event is written or :func:`configure` is called), as PerfFlowAspect
reads them: ``name`` (generic), ``log-filename-include`` (hostname,pid; also name,
instance-path), ``log-dir`` (./), ``log-enable`` (True), ``log-event`` (Verbose: B/E
pairs; Compact: one X event), ``log-format`` (Array: ``[...]``; Object:
``{"traceEvents": [...]}``) and ``cpu-mem-usage`` (False).

Unlike PerfFlowAspect, events are buffered and written in batches, and the file is
closed with its ``]`` after every batch (the next batch overwrites the trailer), so a
``perfflow.<host>.<pid>.pfw`` file is valid JSON after each flush and when the
program ends. ``*_async`` pointcuts give each begin its own id and its end the same
id. A disabled tracer (``log-enable=False``) returns the function itself: it runs,
untraced, at no cost.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import inspect
import itertools
import json
import os
import socket
import sys
import threading
import time
from collections import deque
from typing import Any, Callable, Literal
from urllib.parse import urlparse

Pointcut = Literal["around", "before", "after", "around_async", "before_async", "after_async"]
POINTCUTS = ("around", "before", "after", "around_async", "before_async", "after_async")

DEFAULTS = {"name": "generic", "log-filename-include": "hostname,pid", "log-dir": "./",
            "log-enable": "True", "cpu-mem-usage": "False", "log-event": "Verbose",
            "log-format": "Array"}

#: events buffered before a write (a write also happens at exit and on :func:`flush`)
BATCH = 512


def parse_options(text: str | None) -> dict[str, str]:
    """``PERFFLOW_OPTIONS`` text -> options, defaults filled in.

    Examples
    --------
    >>> parse_options("name=dock:log-event=compact")["log-event"]
    'compact'
    >>> parse_options(None)["log-filename-include"]
    'hostname,pid'
    """
    opts: dict[str, str] = {}
    for item in (text or "").split(":"):
        if not item:
            continue
        key, sep, val = item.partition("=")
        if not sep or "=" in val:
            print(f"perfflow: ill-formed option {item!r} in PERFFLOW_OPTIONS (expected key=value)",
                  file=sys.stderr)
            continue
        opts[key] = val
    return {**DEFAULTS, **opts}


def _choice(opts: dict[str, str], key: str, values: tuple[str, str]) -> bool:
    """True for the first of ``values``, False for the second (any case)."""
    val = opts[key].lower()
    if val not in values:
        raise ValueError(f"PERFFLOW_OPTIONS: {key}={opts[key]!r}: expected "
                         f"{'|'.join(v.capitalize() for v in values)}")
    return val == values[0]


def instance_path() -> str:
    """PerfFlowAspect's hierarchical component path (``PERFFLOW_INSTANCE_PATH``)."""
    ident = os.environ.get("FLUX_JOB_ID")
    if not ident:
        uri = os.environ.get("FLUX_URI")
        base = os.path.dirname(urlparse(uri).path) if uri else "1"
        ident = hashlib.sha1(base.encode()).hexdigest()[:8]
    parent = os.environ.get("PERFFLOW_INSTANCE_PATH")
    return f"{parent}.{ident}" if parent else ident


class Tracer:
    """One process's trace file: options, the event buffer and the batched writer."""

    def __init__(self, options: dict[str, str]):
        self.options = options
        self.enabled = _choice(options, "log-enable", ("true", "false"))
        self.compact = _choice(options, "log-event", ("compact", "verbose"))
        self.array = _choice(options, "log-format", ("array", "object"))
        self.cpu_mem = _choice(options, "cpu-mem-usage", ("true", "false"))
        self.inst_path = instance_path()
        self.pid = os.getpid()
        self.buf: list[tuple] = []
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.pending: dict[str, deque] = {}   # before_async scope -> (id, name) awaiting after_async
        self.path: str | None = None
        self._file = None
        self._end = 0                          # file offset where the trailer starts
        self.forward = False                   # closed or forked away: hand events to tracer()

    def filename(self) -> str:
        parts = ["perfflow"]
        for inc in self.options["log-filename-include"].split(","):
            inc = inc.strip()
            if inc == "name":
                parts.append(self.options["name"])
            elif inc == "instance-path":
                parts.append("{" + self.inst_path + "}")
            elif inc == "hostname":
                parts.append(socket.gethostname())
            elif inc == "pid":
                parts.append(str(self.pid))
            elif inc:
                print(f"perfflow: unknown log-filename-include item {inc!r}", file=sys.stderr)
        return os.path.join(self.options["log-dir"] or ".", ".".join(parts) + ".pfw")

    def emit(self, event: tuple) -> None:
        """Queue one event: (ph, head, ts, tid, extra): ``head`` is :func:`head` of name and
        category, ``extra`` None, an X event's ``dur`` (float) or a dict of more fields."""
        buf = self.buf
        buf.append(event)
        if len(buf) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the buffered events; leave the file valid JSON."""
        if self.forward:  # a function decorated before configure() or fork
            events, self.buf = self.buf, []
            current = tracer()
            if current is not self:
                current.buf.extend(events)
                current.flush()
            return
        with self.lock:
            events, self.buf = self.buf, []
            if not events:
                return
            pid = self.pid
            dumps = json.dumps
            lines = []
            for ph, head, ts, tid, extra in events:
                line = f'{{{head},"ph":"{ph}","ts":{ts},"pid":{pid},"tid":{tid}'
                if extra is None:
                    lines.append(line + "}")
                elif type(extra) is float:
                    lines.append(f'{line},"dur":{extra}}}')
                else:
                    lines.append(f"{line},{dumps(extra)[1:]}")
            if self._file is None:
                self.path = self.filename()
                os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
                self._file = open(self.path, "wb")
                self._file.write(b"[\n" if self.array else b'{"traceEvents": [\n')
                sep = ""
            else:
                self._file.seek(self._end)
                sep = ",\n"
            self._file.write((sep + ",\n".join(lines)).encode())
            self._end = self._file.tell()
            self._file.write(b"\n]\n" if self.array else b'\n], "displayTimeUnit": "ms"}\n')
            self._file.truncate()
            self._file.flush()

    def close(self) -> None:
        self.flush()
        with self.lock:
            self.forward = True
            if self._file is not None:
                self._file.close()
                self._file = None


_tracer: Tracer | None = None
_tracer_lock = threading.Lock()
_retired: list[Tracer] = []  # tracers still referenced by decorated functions; they forward


def tracer() -> Tracer:
    """This process's :class:`Tracer`, made from ``PERFFLOW_OPTIONS`` on first use."""
    global _tracer
    if _tracer is None or _tracer.pid != os.getpid():
        with _tracer_lock:
            if _tracer is None or _tracer.pid != os.getpid():
                _tracer = Tracer(parse_options(os.environ.get("PERFFLOW_OPTIONS")))
                os.environ["PERFFLOW_INSTANCE_PATH"] = _tracer.inst_path
    return _tracer


def configure(options: str | dict[str, str] | None = None) -> Tracer:
    """Start a new trace file with these options (text as in ``PERFFLOW_OPTIONS``, or a dict).

    With no argument, re-read ``PERFFLOW_OPTIONS``. The previous file is completed.
    Functions decorated earlier keep the enabled/disabled choice made when decorated.
    """
    global _tracer
    if isinstance(options, dict):
        opts = {**DEFAULTS, **options}
    else:
        opts = parse_options(os.environ.get("PERFFLOW_OPTIONS") if options is None else options)
    with _tracer_lock:
        if _tracer is not None and _tracer.pid == os.getpid():
            _tracer.close()
            _retired.append(_tracer)
        _tracer = Tracer(opts)
    return _tracer


def flush() -> str | None:
    """Write this process's buffered events; return the trace file's path (None if no events)."""
    if _tracer is None or _tracer.pid != os.getpid():
        return None
    _tracer.flush()
    return _tracer.path


def _at_exit() -> None:
    for old in _retired:
        if old.buf:
            old.flush()
    if _tracer is not None and _tracer.pid == os.getpid():
        _tracer.close()


def _after_fork() -> None:
    global _tracer
    old, _tracer = _tracer, None
    if old is not None:  # the child writes its own file (its pid); the parent's events stay there
        old.buf, old._file, old.forward = [], None, True
        old.lock = threading.Lock()
        _retired.append(old)


atexit.register(_at_exit)
os.register_at_fork(after_in_child=_after_fork)

def head(name: str, cat: str) -> str:
    """The JSON of an event's name and category, made once per decorated function."""
    return f'"name":{json.dumps(name)},"cat":{json.dumps(cat)}'


_now = time.time_ns
_tid = threading.get_native_id


def _usage() -> tuple[float, float]:
    """(process CPU seconds, resident memory in kB)."""
    cpu = time.process_time()
    try:
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1000
    except OSError:
        import resource
        rss = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return cpu, rss


def _wrap(func: Callable, pointcut: str, scope: str | None, t: Tracer) -> Callable:
    name, cat = func.__qualname__, func.__module__ or ""
    hd = head(name, cat)
    emit = t.emit
    if inspect.iscoroutinefunction(func):
        return _wrap_coroutine(func, pointcut, scope, t, name, cat)

    if pointcut == "around":
        if t.cpu_mem:
            def trace(*args, **kwargs):
                ts = _now() / 1000
                if not t.compact:
                    emit(("B", hd, ts, _tid(), None))
                cpu0, _ = _usage()
                try:
                    return func(*args, **kwargs)
                finally:
                    te = _now() / 1000
                    cpu1, rss = _usage()
                    tid = _tid()
                    usage = 100.0 * (cpu1 - cpu0) / max((te - ts) / 1e6, 1e-9)
                    emit(("C", hd, ts, tid, {"args": {"cpu_usage": usage, "memory_usage": rss}}))
                    emit(("C", hd, te, tid, {"args": {"cpu_usage": 0, "memory_usage": 0}}))
                    if t.compact:
                        emit(("X", hd, ts, tid, float(te - ts)))
                    else:
                        emit(("E", hd, te, tid, None))
        elif t.compact:
            def trace(*args, **kwargs):
                ts = _now()
                try:
                    return func(*args, **kwargs)
                finally:
                    te = _now()
                    emit(("X", hd, ts / 1000, _tid(), (te - ts) / 1000))
        else:
            # B goes in before the call: file order is nesting order when timestamps tie
            def trace(*args, **kwargs):
                tid = _tid()
                emit(("B", hd, _now() / 1000, tid, None))
                try:
                    return func(*args, **kwargs)
                finally:
                    emit(("E", hd, _now() / 1000, tid, None))
    elif pointcut == "before":
        def trace(*args, **kwargs):
            emit(("B", hd, _now() / 1000, _tid(), None))
            return func(*args, **kwargs)
    elif pointcut == "after":
        def trace(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            finally:
                emit(("E", hd, _now() / 1000, _tid(), None))
    elif pointcut == "around_async":
        ids = t.ids
        extra_scope = {"scope": scope} if scope else {}

        def trace(*args, **kwargs):
            ident = next(ids)
            tid = _tid()
            emit(("b", hd, _now() / 1000, tid, {"id": ident, **extra_scope}))
            try:
                return func(*args, **kwargs)
            finally:
                emit(("e", hd, _now() / 1000, tid, {"id": ident, **extra_scope}))
    elif pointcut == "before_async":
        key = scope or cat
        queue = t.pending.setdefault(key, deque())
        ids = t.ids

        def trace(*args, **kwargs):
            ident = next(ids)
            queue.append((ident, hd))
            emit(("b", hd, _now() / 1000, _tid(), {"id": ident, "scope": key}))
            return func(*args, **kwargs)
    elif pointcut == "after_async":
        key = scope or cat
        queue = t.pending.setdefault(key, deque())
        ids = t.ids

        def trace(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            finally:
                try:
                    ident, begun = queue.popleft()  # the oldest open begin of this scope
                    emit(("e", begun, _now() / 1000, _tid(),
                          {"id": ident, "scope": key, "args": {"func": name}}))
                except IndexError:  # an end with no begin: an instant, so no pair is left open
                    emit(("n", hd, _now() / 1000, _tid(), {"id": next(ids), "scope": key}))
    else:
        raise ValueError(f"critical_path: unknown pointcut {pointcut!r} (one of {', '.join(POINTCUTS)})")
    return functools.wraps(func)(trace)


def _wrap_coroutine(func, pointcut, scope, t: Tracer, name: str, cat: str) -> Callable:
    """A coroutine interleaves with others on its thread: trace it as an async pair."""
    emit, ids, hd = t.emit, t.ids, head(name, cat)
    extra_scope = {"scope": scope} if scope else {}
    begin = pointcut in ("around", "around_async", "before", "before_async")
    end = pointcut in ("around", "around_async", "after", "after_async")

    async def trace(*args, **kwargs):
        ident = next(ids)
        if begin:
            emit(("b" if end else "n", hd, _now() / 1000, _tid(), {"id": ident, **extra_scope}))
        try:
            return await func(*args, **kwargs)
        finally:
            if end:
                emit(("e" if begin else "n", hd, _now() / 1000, _tid(),
                      {"id": ident, **extra_scope}))
    return functools.wraps(func)(trace)


def critical_path(pointcut: Pointcut = "around", scope: str = "") -> Callable[[Callable], Callable]:
    """Trace calls of the decorated function (PerfFlowAspect's ``critical_path``).

    Parameters
    ----------
    pointcut : {"around", "before", "after", "around_async", "before_async", "after_async"}
        ``around``: a B/E pair (X when ``log-event=Compact``) around each call;
        ``before``/``after``: a B at entry / an E at exit, to pair across two functions;
        ``around_async``: a b/e pair with a fresh id per call; ``before_async`` on one
        function and ``after_async`` on another: an end takes the id of the oldest open
        begin of the same ``scope``.
    scope : str
        The async scope (PerfFlowAspect's ``scope``).

    Examples
    --------
    >>> @critical_path(pointcut="around")
    ... def add(a, b):
    ...     return a + b
    >>> add(1, 2)
    3
    """
    if pointcut not in POINTCUTS:
        raise ValueError(f"critical_path: unknown pointcut {pointcut!r} (one of {', '.join(POINTCUTS)})")

    def decorate(func: Callable) -> Callable:
        t = tracer()
        if not t.enabled:
            return func
        return _wrap(func, pointcut, scope or None, t)

    return decorate


def sync_event(pointcut: Literal["before", "after"], name: str, category: str) -> None:
    """A B (``before``) or E (``after``) event not tied to a function."""
    t = tracer()
    if t.enabled:
        ph = {"before": "B", "after": "E"}.get(pointcut)
        if ph is None:
            raise ValueError(f"sync_event: pointcut {pointcut!r}: expected before or after")
        t.emit((ph, head(name, category), _now() / 1000, _tid(), None))


def async_event(pointcut: Literal["before", "instant", "after"], name: str, category: str,
                scope: str | None = None, id: Any = None) -> None:
    """A b/n/e async event not tied to a function; pair a begin and its end by ``id``."""
    t = tracer()
    if t.enabled:
        ph = {"before": "b", "instant": "n", "after": "e"}.get(pointcut)
        if ph is None:
            raise ValueError(f"async_event: pointcut {pointcut!r}: expected before, instant or after")
        extra: dict[str, Any] = {"id": 123 if id is None else id}
        if scope:
            extra["scope"] = scope
        t.emit((ph, head(name, category), _now() / 1000, _tid(), extra))
