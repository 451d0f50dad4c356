"""``flux job attach``: follow a job's output, forward stdin, exit with its exit code.

``flux run`` submits and then attaches, as flux-core's does (it execs
``flux-job attach``). The messages are flux-job's: a fatal exception prints
``0.012s: job.exception type=exec severity=0 NOTE``, a failed job
``flux-job: task(s) exited with exit code 1``, and the exit code is the job's
(128+N for a signal N; 1 after a fatal exception).

Three things happen at once, each on its own handle (a handle belongs to one
thread): the main thread prints the output eventlog, one thread follows the job
eventlog (exceptions, ``finish``), and one forwards stdin once the job starts.
"""

from __future__ import annotations

import codecs
import json
import os
import signal
import sys
import threading
import time

from .common import CommandError, command, parser

__all__ = ["attach", "cmd_attach", "running", "waitstatus_to_exitcode"]

#: thread ident -> the attach it runs, for a host that catches interrupts itself
#: (the notebook's %flux runs commands in a worker thread; see ``_Attach.interrupt``)
_RUNNING: dict[int, "_Attach"] = {}


def running(thread_ident: int) -> "_Attach | None":
    """The attach that thread ``thread_ident`` is running, if any."""
    return _RUNNING.get(thread_ident)


def waitstatus_to_exitcode(status: int) -> tuple[int, str]:
    """A job's exit code and flux's explanation of it, from its wait status.

    As flux-core's ``flux_job_waitstatus_to_exitcode()``: a signaled job shell
    gives 128+N; an exit code over 128 means tasks were killed by signal code-128.

    Examples
    --------
    >>> waitstatus_to_exitcode(256)
    (1, 'task(s) exited with exit code 1')
    >>> waitstatus_to_exitcode((128 + 15) << 8)
    (143, 'task(s) Terminated')
    >>> waitstatus_to_exitcode(9)
    (137, 'job shell Killed')
    >>> waitstatus_to_exitcode(0)
    (0, '')
    """
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return 128 + sig, f"job shell {_strsignal(sig)}"
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        if code > 128:
            return code, f"task(s) {_strsignal(code - 128)}"
        if code > 0:
            return code, f"task(s) exited with exit code {code}"
        return 0, ""
    return 1, f"unexpected wait(2) status {status}"


def _strsignal(sig: int) -> str:
    try:
        return signal.strsignal(sig) or f"Signal {sig}"
    except ValueError:
        return f"Unknown signal {sig}"


class _Attach:
    """The state of one attach: what the eventlog thread learned, for the main thread."""

    def __init__(self, h, jobid, label_io: bool, show_events: bool, show_exec: bool,
                 wait_event: str, prog: str, quiet: bool):
        from ..job import JobID
        self.h = h
        self.uri = h.uri
        self.jobid = JobID(jobid)
        self.label_io = label_io
        self.show_events = show_events
        self.show_exec = show_exec
        self.wait_event = wait_event
        self.prog = prog
        self.quiet = quiet
        self.t0: float | None = None
        self.status: int | None = None
        self.fatal = False
        self.lock = threading.RLock()  # the ctrl-C handler may print while we hold it
        self.t_sigint = 0.0
        self.at_line_start: dict[tuple[str, str], bool] = {}
        self.threads: list[threading.Thread] = []

    # -- helpers ------------------------------------------------------------------------
    def err(self, text: str) -> None:
        with self.lock:
            sys.stdout.flush()
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def log(self, text: str) -> None:
        self.err(f"{self.prog}-job: {text}")

    def _entry(self, prefix: str, ev) -> None:
        ctx = ev.get("context")
        text = f"{ev.timestamp - (self.t0 or ev.timestamp):.3f}s: {prefix}.{ev.name}"
        if ctx is not None:
            text += " " + json.dumps(ctx, separators=(",", ":"), ensure_ascii=False)
        self.err(text)

    def _thread(self, target) -> None:
        t = threading.Thread(target=target, daemon=True, name=f"attach-{target.__name__}")
        t.start()
        self.threads.append(t)

    # -- the job eventlog -----------------------------------------------------------------
    def watch_events(self) -> None:
        from .. import Flux
        from ..job import event_watch
        from ..runtime.message import FluxError
        try:
            with Flux(self.uri) as h:
                for ev in event_watch(h, self.jobid):
                    if self.t0 is None:
                        self.t0 = ev.timestamp
                    ctx = ev.context
                    if ev.name == "exception":
                        self.err(f"{ev.timestamp - self.t0:.3f}s: job.exception "
                                 f"type={ctx.get('type')} severity={ctx.get('severity')} "
                                 f"{ctx.get('note', '')}")
                        self.fatal = self.fatal or ctx.get("severity") == 0
                    elif ev.name == "submit" and self.show_exec:
                        self._thread(self.watch_exec)
                    elif ev.name == "finish":
                        self.status = ctx.get("status", 0)
                    if self.show_events and ev.name != "exception":
                        self._entry("job", ev)
                    if ev.name == self.wait_event:
                        break
        except (FluxError, OSError) as exc:
            self.log(f"{self.jobid.f58}: {exc}")

    def watch_exec(self) -> None:
        from .. import Flux
        from ..job import event_watch
        from ..runtime.message import FluxError
        try:
            with Flux(self.uri) as h:
                for ev in event_watch(h, self.jobid, "exec"):
                    self._entry("exec", ev)
        except (FluxError, OSError):
            pass

    # -- stdin -----------------------------------------------------------------------------
    def forward_stdin(self) -> None:
        """Once the job starts, append stdin to its guest ``input`` eventlog (RFC 24)."""
        from .. import Flux
        from ..job import JobException, event_wait
        from ..kvs import KVSTxn
        from ..runtime.message import FluxError
        from ..runtime.util.eventlog import encode_event
        try:
            fd = sys.stdin.fileno()
        except (AttributeError, ValueError, OSError):
            fd = None
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        try:
            with Flux(self.uri) as h:
                event_wait(h, self.jobid, "start")
                ns = f"job-{int(self.jobid)}"
                while True:
                    try:
                        data = os.read(fd, 65536) if fd is not None else b""
                    except OSError:
                        data = b""
                    txn = KVSTxn(h, namespace=ns)
                    if data:
                        text = decoder.decode(data)
                        if not text:
                            continue
                        ctx = {"stream": "stdin", "rank": "all", "data": text}
                    else:
                        ctx = {"stream": "stdin", "rank": "all", "eof": True}
                    txn.append("input", encode_event("data", ctx))
                    txn.commit()
                    if not data:
                        return
        except (FluxError, OSError, JobException, ValueError):
            return  # the job ended (or never started): nobody reads stdin any more

    # -- output ------------------------------------------------------------------------------
    def write_output(self, ctx: dict) -> None:
        data = ctx.get("data")
        if not data:
            return
        stream = ctx.get("stream", "stdout")
        out = sys.stdout if stream == "stdout" else sys.stderr
        if self.label_io:
            rank = str(ctx.get("rank", ""))
            key = (stream, rank)
            pieces = []
            for line in data.splitlines(keepends=True):
                if self.at_line_start.get(key, True):
                    pieces.append(f"{rank}: ")
                pieces.append(line)
                self.at_line_start[key] = line.endswith("\n")
            data = "".join(pieces)
        with self.lock:
            out.write(data)
            out.flush()

    def on_sigint(self, signum, frame) -> None:
        now = time.monotonic()
        if now - self.t_sigint > 2.0:
            self.t_sigint = now
            self.log("one more ctrl-C within 2s to cancel or ctrl-Z to detach")
            return
        from .. import Flux
        from ..job import cancel
        try:
            with Flux(self.uri) as h:
                cancel(h, self.jobid, "interrupted by ctrl-C")
        except Exception as exc:  # the job may be gone already
            self.log(f"cancel: {exc}")

    def interrupt(self) -> None:
        """A host's interrupt (a notebook kernel's): cancel the job at once and say so.

        A terminal's ctrl-C asks for a second one within 2s (``on_sigint``); a
        kernel has no ctrl-Z, so there the first interrupt cancels and the host
        detaches on the second.
        """
        from .. import Flux
        from ..job import cancel
        self.log(f"{self.jobid.f58}: interrupted: canceling the job (interrupt again to detach)")
        try:
            with Flux(self.uri) as h:
                cancel(h, self.jobid, "interrupted by ctrl-C")
        except Exception as exc:  # the job may be gone already
            self.log(f"cancel: {exc}")

    def run(self, stdin: bool, read_only: bool) -> int:
        _RUNNING[threading.get_ident()] = self
        try:
            return self._run(stdin, read_only)
        finally:
            _RUNNING.pop(threading.get_ident(), None)

    def _run(self, stdin: bool, read_only: bool) -> int:
        from ..job import eventlog_entries
        self._thread(self.watch_events)
        if stdin and not read_only:
            self._thread(self.forward_stdin)
        previous = None
        if not read_only and threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, self.on_sigint)
        try:
            for ev in eventlog_entries(self.h, self.jobid, "output", watch=True):
                ctx = ev.context
                if ev.name == "data":
                    self.write_output(ctx)
                elif ev.name == "log" and not self.quiet:
                    self._shell_log(ev)
                elif ev.name == "redirect" and not self.quiet:
                    path = ctx.get("path")
                    self.err(f"{ctx.get('rank')}: {ctx.get('stream')} redirected"
                             + (f" to {path}" if path else ""))
            for t in self.threads:
                if t.name != "attach-forward_stdin":
                    t.join()
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        code = 1  # as flux-job: no finish event (e.g. canceled while pending) is a failure
        if self.status is not None:
            code, why = waitstatus_to_exitcode(self.status)
            if code:
                self.log(why)
        if self.fatal and code == 0:
            code = 1
        return code

    def _shell_log(self, ev) -> None:
        ctx = ev.context
        levels = ["FATAL", "FATAL", "FATAL", "ERROR", " WARN", None, "DEBUG", "TRACE"]
        level = ctx.get("level", 5)
        label = levels[level] if 0 <= level < len(levels) else None
        text = f"{ev.timestamp - (self.t0 or ev.timestamp):.3f}s: flux-shell"
        if ctx.get("rank", -1) >= 0:
            text += f"[{ctx['rank']}]"
        for part in (label, ctx.get("component")):
            if part:
                text += f": {part}"
        self.err(f"{text}: {ctx.get('message', '')}")


def attach(h, jobid, *, label_io: bool = False, stdin: bool = True, show_exec: bool = False,
           show_events: bool = False, wait_event: str = "finish", read_only: bool = False,
           quiet: bool = False, prog: str = "flux") -> int:
    """Attach to a job as ``flux job attach`` does, and return its exit code.

    Parameters
    ----------
    h : Flux
        A handle, used from this thread only (helpers open their own).
    jobid : JobID or int
        The job, which must exist.
    label_io : bool
        Prefix each line of output with ``RANK: ``.
    stdin : bool
        Forward this process's stdin to the job once it starts (the job shell
        reads it only if the job was submitted with ``stdin`` ``forward``).
    show_exec, show_events : bool
        Print exec / job eventlog events on stderr.
    wait_event : str
        Stop following the job eventlog at this event (default ``finish``).
    read_only : bool
        Neither forward stdin nor catch ctrl-C.
    prog : str
        ``flux`` or ``fluxnb``, for messages (``flux-job: ...``).

    Returns
    -------
    int
        0 on success, the tasks' exit code, 128+N for signal N, or 1 after a
        fatal job exception.
    """
    state = _Attach(h, jobid, label_io, show_events, show_exec, wait_event, prog, quiet)
    return state.run(stdin, read_only)


def build_parser(prog: str):
    p = parser(prog, "job attach", "Interactively attach to a job: print its output, "
                                   "forward stdin, exit with its exit code.")
    p.add_argument("-E", "--show-events", action="store_true", help="Show job events on stderr")
    p.add_argument("-X", "--show-exec", action="store_true", help="Show exec events on stderr")
    p.add_argument("--show-status", action="store_true",
                   help="Show job status line while pending")
    p.add_argument("-w", "--wait-event", metavar="NAME", default="finish",
                   help="Wait for event NAME before detaching from eventlog (default=finish)")
    p.add_argument("-l", "--label-io", action="store_true", help="Label output by rank")
    p.add_argument("-v", "--verbose", action="count", default=0, help="Increase verbosity")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="Suppress warnings written to stderr from flux-job")
    p.add_argument("-r", "--read-only", action="store_true",
                   help="Disable reading stdin and capturing signals")
    p.add_argument("-u", "--unbuffered", action="store_true", help="Disable buffering of stdin")
    p.add_argument("id", help="job id")
    return p


@command
def cmd_attach(name: str, argv: list[str], prog: str) -> int:
    """``flux job attach [OPTIONS] ID``."""
    from ..job import JobID, get_job
    from .common import handle
    args = build_parser(prog).parse_args(argv)
    try:
        jobid = JobID(args.id)
    except (ValueError, TypeError):
        raise CommandError(f'error parsing jobid: "{args.id}"') from None
    with handle() as h:
        if get_job(h, jobid) is None:
            raise CommandError(f"Failed to attach to {args.id}: No such job")
        return attach(h, jobid, label_io=args.label_io, show_events=args.show_events,
                      show_exec=args.show_exec, wait_event=args.wait_event,
                      read_only=args.read_only, quiet=args.quiet, prog=prog)
