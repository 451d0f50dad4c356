"""``%flux`` output as it comes, from any line of a cell; interrupts; ``-e`` and ``-q``.

The cell's streams are replaced by one recorder that notes when each piece of
text arrives and on which stream, so the tests can say what a notebook user sees
and when: while the command still runs, in the order the lines ran, once.
"""

from __future__ import annotations

import _thread
import os
import re
import sys
import threading
import time

import pytest

pytest.importorskip("IPython")

from fluxnb.magics.results import CommandOutput, FluxCommandFailed, JobHandle  # noqa: E402

F58 = r"ƒ[1-9A-HJ-NP-Za-km-z]+"


class Recorder:
    """Both streams of a cell, in arrival order: (seconds since start, stream, text)."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.pieces: list[tuple[float, str, str]] = []
        self.lock = threading.Lock()
        self.stdout = _Stream(self, "stdout")
        self.stderr = _Stream(self, "stderr")
        self.peeked: str | None = None

    def text(self, name: str | None = None) -> str:
        """What was written (the terminal shell's ``Out[N]:`` prompt left out: a
        kernel sends none for a result with nothing to show)."""
        with self.lock:
            text = "".join(t for _, n, t in self.pieces if name in (None, n))
        return re.sub(r"Out\[\d+\]: \n?", "", text)

    def first(self, needle: str) -> float | None:
        """When the text seen so far first contained ``needle``."""
        seen = ""
        with self.lock:
            for when, _, text in self.pieces:
                seen += text
                if needle in seen:
                    return when
        return None


class _Stream:
    def __init__(self, rec: Recorder, name: str):
        self.rec, self.name = rec, name

    def write(self, text: str) -> int:
        with self.rec.lock:
            self.rec.pieces.append((time.monotonic() - self.rec.t0, self.name, text))
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


@pytest.fixture(scope="module")
def ip():
    from IPython import get_ipython
    from IPython.testing.globalipapp import start_ipython
    shell = start_ipython() or get_ipython()  # one shell per process, shared by test modules
    shell.run_line_magic("load_ext", "fluxnb")
    saved = {k: os.environ.get(k) for k in ("FLUX_URI", "PATH")}
    magics = shell.magics_manager.registry["FluxMagics"]
    if magics.instance is None:
        shell.run_line_magic("flux", "-q start --test-size=2")
    yield shell
    if magics.instance is not None:
        shell.run_line_magic("flux", "-q stop")
    for key, val in saved.items():
        if val is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = val


@pytest.fixture
def cell(ip, monkeypatch):
    """Run a cell with its output recorded; returns (recorder, ExecutionResult, seconds)."""
    def run(source: str, peek_at: float | None = None):
        rec = Recorder()
        if peek_at is not None:  # what the cell shows at that moment, for the test to read
            def peek():
                time.sleep(peek_at)
                rec.peeked = rec.text()
            threading.Thread(target=peek, daemon=True).start()
        monkeypatch.setattr(sys, "stdout", rec.stdout)
        monkeypatch.setattr(sys, "stderr", rec.stderr)
        t = time.monotonic()
        try:
            result = ip.run_cell(source)
        finally:
            monkeypatch.undo()
        return rec, result, time.monotonic() - t
    return run


def test_two_runs_in_one_cell_both_show_in_order(cell):
    rec, result, _ = cell("%flux run echo first job\n%flux run echo second job\n")
    assert result.success
    assert rec.text("stdout") == "first job\nsecond job\n"


def test_last_line_is_shown_once(cell):
    rec, result, _ = cell("%flux run echo only once")
    assert isinstance(result.result, CommandOutput) and result.result.returncode == 0
    assert rec.text("stdout") == "only once\n"


def test_failing_command_mid_cell_shows_its_error_where_it_ran(cell):
    rec, result, _ = cell("%flux run sh -c 'echo before; exit 3'\n"
                          "%flux getattr no-such-attribute\n"
                          "%flux run echo after\n")
    assert result.success  # without -e the cell goes on
    text = rec.text()
    assert rec.text("stdout") == "before\nafter\n"
    err = rec.text("stderr")
    assert "task(s) exited with exit code 3" in err and "no-such-attribute" in err
    # each error comes where its line ran, before the next line's output
    assert text.index("before") < text.index("exit code 3") < text.index("no-such-attribute") \
        < text.index("after")


def test_first_line_visible_while_the_job_runs(cell):
    """Read the cell's output while the job still runs (from a second thread)."""
    rec, result, took = cell("%flux run sh -c 'echo started; sleep 3; echo done'", peek_at=1.5)
    assert result.success and took >= 3
    assert "started" in rec.peeked and "done" not in rec.peeked
    assert rec.first("started") < 1.5 < 3 <= rec.first("done")


def test_interrupt_cancels_the_job_and_returns_at_once(ip, cell):
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    rec, result, took = cell("%flux run sleep 60")
    timer.join()
    assert result.success  # the interrupt was the magic's, not the cell's
    assert took < 1.0 + 2.0
    err = rec.text("stderr")
    jobid = re.search(rf"({F58}): interrupted: canceling the job", err).group(1)
    assert "job.exception type=cancel severity=0 interrupted by ctrl-C" in err
    record = JobHandle(jobid).wait()
    assert record["result"] == "CANCELED"
    # and the instance keeps serving
    assert ip.run_line_magic("flux", "-q getattr size").stdout == "2\n"


def test_second_interrupt_detaches(ip, cell):
    """A job that ignores SIGTERM outlives its cancel: the second interrupt detaches."""
    timers = [threading.Timer(t, _thread.interrupt_main) for t in (1.0, 1.4)]
    for t in timers:
        t.start()
    rec, result, took = cell("%flux run sh -c 'trap \"\" TERM; sleep 20 & wait; sleep 20'")
    for t in timers:
        t.join()
    assert result.success and took < 1.4 + 2.0
    err = rec.text("stderr")
    assert "interrupted: canceling the job" in err and "detaching (the job goes on)" in err
    assert isinstance(result.result, CommandOutput) and result.result.returncode == 130
    jobid = re.search(rf"({F58}): detaching", err).group(1)
    assert ip.run_line_magic("flux", "-q getattr size").stdout == "2\n"
    ip.run_line_magic("flux", f"-q cancel {jobid}")


def test_interrupt_during_job_attach_cancels(ip, cell):
    jobid = ip.run_line_magic("flux", "-q submit sleep 60").stdout.strip()
    ip.run_line_magic("flux", f"-q job wait-event -t 10 {jobid} start")
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    rec, result, took = cell(f"%flux job attach {jobid}")
    timer.join()
    assert took < 3.0
    assert f"{jobid}: interrupted: canceling the job" in rec.text("stderr")
    assert JobHandle(jobid).wait()["result"] == "CANCELED"


def test_wait_event_timeout_works_off_the_main_thread(ip, cell):
    """The command runs in a worker thread, where SIGALRM cannot reach: -t still ends it."""
    jobid = ip.run_line_magic("flux", "-q submit sleep 30").stdout.strip()
    try:
        rec, result, took = cell(f"%flux job wait-event -t 0.5 {jobid} clean")
        assert took < 2.5
        assert "wait-event timeout on event 'clean'" in rec.text("stderr")
        assert result.result.returncode == 1
    finally:
        ip.run_line_magic("flux", f"-q cancel {jobid}")


def test_cell_run_streams_and_interrupts_too(cell):
    rec, result, _ = cell("%%flux run\necho from the cell body\n")
    assert rec.text("stdout") == "from the cell body\n"
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    rec, result, took = cell("%%flux run\nsleep 60\n")
    timer.join()
    assert took < 3.0 and "interrupted: canceling the job" in rec.text("stderr")


def test_strict_raises_and_stops_the_cell(cell):
    rec, result, _ = cell("%flux -e run sh -c 'echo out; echo oops >&2; exit 4'\nprint('not reached')")
    assert not result.success
    assert isinstance(result.error_in_exec, FluxCommandFailed)
    assert result.error_in_exec.returncode == 4 and result.error_in_exec.output.stdout == "out\n"
    assert "not reached" not in rec.text()
    err = rec.text("stderr")
    assert "oops" in err and "exit code 4" in err and "Traceback" not in err


def test_strict_passes_a_success_through(cell):
    rec, result, _ = cell("x = %flux -e run echo fine\nx.returncode")
    assert result.success and result.result == 0 and rec.text("stdout").startswith("fine\n")


def test_quiet_keeps_the_output_on_the_result(cell):
    rec, result, _ = cell("x = %flux -q run echo kept\nassert x.stdout == 'kept\\n'\nx")
    assert result.success
    assert rec.text("stdout") == "kept\n"  # once: as the cell's result, not while it ran


def test_a_comment_ends_the_line_as_in_a_shell(cell):
    rec, result, _ = cell("x = %flux -q run echo '#kept' # not an argument\nx.stdout")
    assert result.success and result.result == "#kept\n"


def test_progress_redraws_in_place(cell):
    rec, result, _ = cell("%flux submit --cc=1-8 --wait --progress true")
    out = rec.text("stdout")
    assert result.success
    assert "\033[K" not in out  # the terminal's erase-line: no meaning in a cell
    bars = [b for b in out.split("\r") if "│" in b]
    assert len(bars) >= 2 and bars[-1].rstrip("\n").endswith(tuple("0123456789"))
    assert "CD:8" in bars[-1] and "100.0%" in bars[-1]


def test_submit_cell_prints_the_id_and_returns_a_handle(cell):
    rec, result, _ = cell("%%flux submit\necho handled\n")
    handle = result.result
    assert isinstance(handle, JobHandle)
    assert rec.text("stdout").startswith(f"{handle}\n")  # the id, then the handle's repr
    assert handle.wait()["result"] == "COMPLETED"
