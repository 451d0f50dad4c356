"""``--wait``, ``--watch`` and ``--progress`` of ``flux submit``/``bulksubmit``.

As flux-core's ``JobWatcher``: the exit code is the largest of the jobs' (a job
killed by signal N counts 127+N, one that never started after a fatal exception
counts 1), each fatal exception is printed as ``job.exception: type=T severity=0
NOTE``, ``-v`` logs ``ID: 0.123s: complete: status=0`` per job and ``--watch``
copies every job's output (``ID: `` labels with ``--label-io``).

On a terminal ``--progress`` draws a bar on the last line it writes to; otherwise
only the final state of the bar is printed, once, as a summary.
"""

from __future__ import annotations

import datetime
import os
import shutil
import sys
import time

_BAR_STYLE = " ▏▎▍▌▋▊▉█"


class ProgressBar:
    """A one-line progress bar: ``BEFORE│████▌    │AFTER``, redrawn in place on a tty.

    ``before`` and ``after`` are format strings given ``total``, ``count``,
    ``percent``, ``elapsed`` (a ``datetime.timedelta``), ``jps`` and the counters.

    Examples
    --------
    >>> bar = ProgressBar(4, "Submitting {total} jobs: ", "{percent:5.1f}%", tty=False)
    >>> bar.count = 2
    >>> bar.render(30)
    'Submitting 4 jobs: │██   │ 50.0%'
    """

    def __init__(self, total: int, before: str, after: str, tty: bool | None = None,
                 stream=None, **counts: int):
        self.total = total
        self.count = 0
        self.before = before
        self.after = after
        self.stream = stream or sys.stdout
        # a notebook cell's stream redraws a line on \r too (``redraws``)
        self.tty = (self.stream.isatty() or getattr(self.stream, "redraws", False)) \
            if tty is None else tty
        self.counts = dict(counts)
        self.t0 = time.time()
        self._drawn = 0.0

    @classmethod
    def for_submit(cls, total: int, jps: bool = False) -> ProgressBar:
        after = "{percent:5.1f}% {jps:4.1f} job/s" if jps else "{percent:5.1f}% {elapsed}"
        return cls(total, "Submitting {total} jobs: ", after, fail=0)

    @classmethod
    def for_jobs(cls, total: int, jps: bool = False) -> ProgressBar:
        after = "{percent:5.1f}% {jps:4.1f} job/s" if jps else "{percent:5.1f}% {elapsed}"
        return cls(total, "PD:{pending:<3} R:{running:<3} CD:{complete:<3} F:{failed:<3} ",
                   after, pending=total, running=0, complete=0, failed=0)

    def render(self, width: int | None = None) -> str:
        if width is None:
            width = shutil.get_terminal_size((80, 24)).columns if self.tty else 80
        elapsed = time.time() - self.t0
        fraction = self.count / self.total if self.total else 1.0
        fields = dict(self.counts, total=self.total, count=self.count, percent=100 * fraction,
                      elapsed=datetime.timedelta(seconds=round(elapsed)),
                      jps=self.count / elapsed if elapsed > 0 else 0.0)
        before = self.before.format(**fields)
        after = self.after.format(**fields)
        length = max(width - len(before) - len(after) - 2, 1)
        steps = len(_BAR_STYLE) - 1
        eighths = int(length * steps * fraction)
        full, part = divmod(eighths, steps)
        bar = _BAR_STYLE[-1] * full + (_BAR_STYLE[part] if part else "")
        return f"{before}│{bar.ljust(length)}│{after}"

    def draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.tty or (not force and now - self._drawn < 0.1):
            return
        self._drawn = now
        self.stream.write("\r\033[K" + self.render())
        self.stream.flush()

    def update(self, advance: int = 0, **counts: int) -> None:
        self.count += advance
        self.counts.update(counts)
        self.draw(force=self.count == self.total)

    def println(self, line: str) -> None:
        """Print a line above the bar."""
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(line + "\n")
        self.draw(force=True)

    def finish(self) -> None:
        """Leave the final state of the bar (the summary line when not a tty)."""
        self.stream.write(("\r\033[K" if self.tty else "") + self.render() + "\n")
        self.stream.flush()


def _exitcode(status: int) -> int:
    """flux's JobWatcher: the exit status, or 127+N for a job killed by signal N."""
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return 127 + os.WTERMSIG(status)
    return status


#: what done() reads of a job-list record (all of it would be 3x the bytes, thousands of times)
_DONE_ATTRS = ("state", "result", "waitstatus", "t_submit", "t_run", "t_cleanup", "exception_occurred",
               "exception_type", "exception_severity", "exception_note")


class _Waiter:
    def __init__(self, h, jobids, label_io, progress, jps, verbose):
        self.h = h
        self.jobids = list(jobids)
        self.label_io = label_io
        self.verbose = verbose
        self.exitcode = 0
        self.t0: float | None = None
        self.bar = ProgressBar.for_jobs(len(self.jobids), jps) if progress else None

    def err(self, text: str) -> None:
        sys.stdout.flush()
        if self.bar and self.bar.tty and self.bar.stream is sys.stderr:  # pragma: no cover
            text = "\r\033[K" + text
        print(text, file=sys.stderr, flush=True)

    def done(self, jobid, info: dict) -> None:
        """Account for one inactive job (a job-list record, see ``fluxnb.job.result``)."""
        status = info.get("waitstatus")
        exc = info.get("exception") or {}
        started = bool(info.get("t_run"))
        if exc.get("occurred") and exc.get("severity") == 0:
            note = exc.get("note")
            self.err(f"job.exception: type={exc.get('type')} severity=0" + (f" {note}" if note else ""))
            if not started:
                self.exitcode = max(self.exitcode, 1)
        failed = not started or (status is not None and status != 0) or \
            info.get("result") not in (None, "COMPLETED")
        if status is not None:
            self.exitcode = max(self.exitcode, _exitcode(status))
            if self.verbose:
                t_finish = info.get("t_cleanup") or time.time()
                self.err(f"{jobid.f58}: {t_finish - (self.t0 or t_finish):4.3f}s: "
                         f"{'failed' if failed else 'complete'}: status={status}")
        if self.bar:
            key = "failed" if failed else "complete"
            self.bar.counts[key] += 1
            self.bar.counts["pending"] = max(self.bar.counts["pending"] - 1, 0)
            self.bar.update(advance=1)

    def wait_inactive(self) -> None:
        """Wait for every job to be inactive, in whatever order they finish."""
        from ..job import JobID, result_async
        # the handle notes the matchtag of each response as it arrives, so finding
        # which jobs are done costs O(1) per job, not a scan of all pending ones
        arrivals: list[int] = []
        self.h.arrivals = arrivals
        pending = {}
        for j in self.jobids:
            rpc = result_async(self.h, j, _DONE_ATTRS)
            pending[rpc.matchtag] = (JobID(j), rpc)
        try:
            while pending:
                if not arrivals:
                    tag, (_, first) = next(iter(pending.items()))
                    if not first.wait_for(0.25):
                        if self.bar:
                            self._refresh_states([j for j, _ in pending.values()])
                        continue
                    if not arrivals:  # a handle that does not note arrivals
                        arrivals.append(tag)
                ready = [pending.pop(tag) for tag in arrivals if tag in pending]
                arrivals.clear()
                self._finish(ready)
        finally:
            self.h.arrivals = None

    def _finish(self, ready) -> None:
        from ..job import convert_info
        for jobid, rpc in ready:
            info = convert_info(rpc.get()["job"])
            if self.t0 is None or info.get("t_submit", self.t0) < self.t0:
                self.t0 = info.get("t_submit")
            self.done(jobid, info)

    def _refresh_states(self, active) -> None:
        """Count the still-active jobs as pending or running, for the bar."""
        from ..job import job_list
        try:
            jobs = job_list(self.h, max_entries=0, attrs=["id", "state"]).get_jobs()
        except Exception:  # the bar is a nicety: never fail a wait for it
            return
        states = {j["id"]: j["state"] for j in jobs}
        from ..runtime.job.statebits import STATE_BITS
        run_bits = STATE_BITS["RUN"] | STATE_BITS["CLEANUP"]
        running = sum(1 for j in active if states.get(int(j), 0) & run_bits)
        self.bar.counts.update(running=running, pending=len(active) - running)
        self.bar.draw(force=True)

    def watch(self, wait: str) -> None:
        """Follow each job in turn: its output (``--watch``) and events until ``wait``."""
        from ..job import eventlog_entries, result
        for jobid in self.jobids:
            if wait == "clean":
                for ev in eventlog_entries(self.h, jobid, "output", watch=True):
                    ctx = ev.context
                    data = ctx.get("data") if ev.name == "data" else None
                    if not data:
                        continue
                    out = sys.stdout if ctx.get("stream") == "stdout" else sys.stderr
                    if self.label_io:
                        data = "".join(f"{jobid.f58}: {line}"
                                       for line in data.splitlines(keepends=True))
                    out.write(data)
                    out.flush()
                self.done(jobid, result(self.h, jobid))
                continue
            self.follow_events(jobid, wait)

    def follow_events(self, jobid, wait: str) -> None:
        """Follow one job's eventlog until event ``wait`` (or its end)."""
        from ..job import event_watch
        started = failed = False
        for ev in event_watch(self.h, jobid):
            if ev.name == "start":
                started = True
            elif ev.name == "exception" and ev.context.get("severity") == 0:
                ctx = ev.context
                note = ctx.get("note")
                self.err(f"job.exception: type={ctx.get('type')} severity=0"
                         + (f" {note}" if note else ""))
                failed = True
                if not started:
                    self.exitcode = max(self.exitcode, 1)
            elif ev.name == "finish":
                status = ev.context.get("status", 0)
                failed = failed or status != 0
                self.exitcode = max(self.exitcode, _exitcode(status))
            if ev.name == wait:
                break
        if self.bar:
            self.bar.counts["failed" if failed else "complete"] += 1
            self.bar.counts["pending"] = max(self.bar.counts["pending"] - 1, 0)
            self.bar.update(advance=1)


def wait_jobs(h, jobids, *, wait: str = "clean", watch: bool = False, label_io: bool = False,
              progress: bool = False, jps: bool = False, verbose: int = 0) -> int:
    """Wait for ``jobids`` (until event ``wait``), showing output if ``watch``.

    Returns
    -------
    int
        The largest exit code of the jobs (see the module docstring).
    """
    waiter = _Waiter(h, jobids, label_io, progress, jps, verbose)
    if waiter.bar:
        waiter.bar.draw(force=True)
    if wait == "clean" and not watch:
        waiter.wait_inactive()
    else:
        waiter.watch(wait)
    if waiter.bar:
        waiter.bar.finish()
    return waiter.exitcode
