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


class FluxCommandFailed(Exception):
    """``%flux -e CMD`` exited nonzero: the cell stops here (its output is already shown).

    ``output`` is the command's :class:`CommandOutput` and ``returncode`` its exit code.
    """

    def __init__(self, command: str, output: "CommandOutput"):
        super().__init__(f"%flux {command}: exit code {output.returncode}")
        self.output = output
        self.returncode = output.returncode

    def _render_traceback_(self):
        return [str(self)]


def _execution_count() -> int | None:
    """The number of the cell running now (None outside IPython)."""
    from IPython import get_ipython
    shell = get_ipython()
    return getattr(shell, "execution_count", None) if shell is not None else None


class CommandOutput:
    """The stdout/stderr of a command run in-process, shown as a terminal would.

    ``%flux`` writes the text into the cell as the command runs; the object then
    keeps it (``stdout``, ``stderr``) with the exit status (``returncode``) and is
    not shown a second time as the same cell's result (a later cell shows it).
    """

    def __init__(self, stdout: str, stderr: str, returncode: int = 0):
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = returncode
        self._shown_in: int | None = None
        self.shown = False

    def mark_shown(self) -> None:
        """The text is in the cell already (streamed or written at once)."""
        self.shown = True
        self._shown_in = _execution_count()

    def _ipython_display_(self) -> None:
        if self.shown and self._shown_in == _execution_count():
            return
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


def rich_result(argv: list[str], stream: bool = True):
    """``%flux jobs`` and ``%flux resource list`` as tables; None for other commands.

    The table is the command's stdout; its stderr goes into the cell as it comes
    (``stream``). A failed command is its :class:`CommandOutput`, shown already.
    """
    from .flux import run_cli
    if argv[0] == "jobs" and not {"--json", "--stats-only", "-h", "--help"} & set(argv):
        plain = "-n" in argv or "--suppress-header" in argv
    elif argv[:2] == ["resource", "list"] and not {"-h", "--help"} & set(argv):
        plain = False
    else:
        return None
    code, out, err = run_cli(argv, stream=stream, stdout=False)
    if code != 0:
        return _failed(CommandOutput(out, err, code), stream)
    headers, rows = ([], []) if plain else _split_columns(out)
    return Table(headers, rows, out)


def _failed(result: CommandOutput, stream: bool) -> CommandOutput:
    """A failed rich command: its stderr was streamed, its stdout (if any) is shown now."""
    if stream:
        if result.stdout:
            sys.stdout.write(result.stdout)
            sys.stdout.flush()
        result.mark_shown()
    return result


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
