"""What ``%flux`` returns: command output, job handles and rich tables.

Each object shows as plain text (what a terminal would print) and, where a table
says more, as HTML (``_repr_html_``) for Jupyter.
"""

from __future__ import annotations

import html
import sys


class FluxUsageError(Exception):
    """A mistake in a magic's line, shown as one message, not a traceback."""

    def _render_traceback_(self):  # IPython shows this instead of a traceback
        return [str(self)]


class CommandOutput:
    """The stdout/stderr of a command run in-process, shown as a terminal would."""

    def __init__(self, stdout: str, stderr: str, returncode: int = 0):
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = returncode

    def _ipython_display_(self) -> None:
        if self.stdout:
            sys.stdout.write(self.stdout)
            sys.stdout.flush()
        if self.stderr:
            sys.stderr.write(self.stderr)
            sys.stderr.flush()

    def __repr__(self) -> str:
        return (self.stdout + self.stderr).rstrip("\n")

    def __str__(self) -> str:
        return self.stdout

    def __bool__(self) -> bool:
        return self.returncode == 0


class Table:
    """A text table that renders as an HTML table in a notebook."""

    def __init__(self, headers: list[str], rows: list[list[str]], text: str, caption: str = ""):
        self.headers = headers
        self.rows = rows
        self.text = text
        self.caption = caption

    def __repr__(self) -> str:
        return self.text.rstrip("\n")

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(str(c))}</td>"
                                        for c in row) + "</tr>" for row in self.rows)
        cap = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return f"<table class='fluxnb-table'>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __len__(self) -> int:
        return len(self.rows)


def _split_columns(text: str) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of a flux column listing (columns split on runs of spaces)."""
    lines = [l for l in text.splitlines() if l.strip()]
    if not lines:
        return [], []
    headers = lines[0].split()
    rows = []
    for line in lines[1:]:
        parts = line.split(None, len(headers) - 1)
        rows.append(parts + [""] * (len(headers) - len(parts)))
    return headers, rows


def rich_result(argv: list[str]):
    """``%flux jobs`` and ``%flux resource list`` as tables; None for other commands."""
    from .flux import run_cli
    if argv[0] == "jobs" and not {"--json", "--stats-only", "-h", "--help"} & set(argv):
        code, out, err = run_cli(argv)
        if code != 0:
            return CommandOutput(out, err, code)
        headers, rows = _split_columns(out) if "-n" not in argv and "--suppress-header" not in argv \
            else ([], [])
        return Table(headers, rows, out)
    if argv[:2] == ["resource", "list"] and not {"-h", "--help"} & set(argv):
        code, out, err = run_cli(argv)
        if code != 0:
            return CommandOutput(out, err, code)
        headers, rows = _split_columns(out)
        return Table(headers, rows, out)
    return None


class JobHandle:
    """A submitted job: its id, state and output, shown as a one-line summary."""

    def __init__(self, jobid):
        from ..job import JobID
        self.id = JobID(jobid)

    def _handle(self):
        from ..realflux import connect
        return connect()

    @property
    def info(self) -> dict:
        from ..job import get_job
        with self._handle() as h:
            return get_job(h, self.id) or {}

    @property
    def state(self) -> str:
        return self.info.get("state", "UNKNOWN")

    def wait(self) -> dict:
        """Block until the job is inactive; return its record (result, returncode...)."""
        from ..job import result
        with self._handle() as h:
            return result(h, self.id)

    def output(self) -> str:
        """The job's standard output so far (or all of it once it has finished)."""
        from ..job import eventlog_entries
        with self._handle() as h:
            return "".join(ev.context.get("data", "") for ev in eventlog_entries(h, self.id, "output", watch=False)
                           if ev.name == "data" and ev.context.get("stream") == "stdout")

    def cancel(self) -> None:
        from ..job import cancel
        with self._handle() as h:
            cancel(h, self.id)

    def __int__(self) -> int:
        return int(self.id)

    def __str__(self) -> str:
        return self.id.f58

    def __repr__(self) -> str:
        return f"<fluxnb job {self.id.f58}>"
