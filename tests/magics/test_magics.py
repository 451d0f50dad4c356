"""``%flux`` / ``%%flux`` in a real IPython shell: output paths and error paths.

Each test drives the magics as a notebook user would (``run_line_magic`` /
``run_cell_magic`` and ``run_cell`` for ``!flux``) and checks documented behaviour:
what the command prints in a terminal, what object the magic returns, and that
mistakes come back as one message rather than a traceback.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

pytest.importorskip("IPython")

from fluxnb.magics.results import CommandOutput, JobHandle, Table  # noqa: E402

F58 = re.compile(r"^ƒ[1-9A-HJ-NP-Za-km-z]+$")


@pytest.fixture(scope="module")
def ip():
    from IPython import get_ipython
    from IPython.testing.globalipapp import start_ipython
    shell = start_ipython() or get_ipython()  # one shell per process, shared by test modules
    shell.run_line_magic("load_ext", "fluxnb")
    yield shell


@pytest.fixture(scope="module")
def started(ip):
    """The shell with an instance of 4 brokers started by ``%flux start``."""
    saved = {k: os.environ.get(k) for k in ("FLUX_URI", "PATH")}
    out = ip.run_line_magic("flux", "start --test-size=4")
    assert isinstance(out, CommandOutput) and out.returncode == 0, repr(out)
    yield ip
    if _magics(ip).instance is not None:
        ip.run_line_magic("flux", "stop")
    for key, val in saved.items():
        if val is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = val


def _magics(ip):
    return ip.magics_manager.registry["FluxMagics"]


def _one_message(out) -> str:
    """An error result: non-zero, and exactly one line on stderr, no traceback."""
    assert isinstance(out, CommandOutput)
    assert out.returncode != 0
    assert not out, "a failed command is falsy"
    text = out.stderr.strip()
    assert text and "\n" not in text, repr(out.stderr)
    assert "Traceback" not in out.stdout + out.stderr
    return text


# -- before any instance ------------------------------------------------------------

def test_status_without_instance_says_so(ip):
    if _magics(ip).instance is not None:
        pytest.skip("an instance is already running in this shell")
    out = ip.run_line_magic("flux", "status")
    assert out.returncode == 0 and "no fluxnb instance" in out.stdout


def test_command_without_instance_is_one_message(ip, monkeypatch):
    monkeypatch.delenv("FLUX_URI", raising=False)
    if _magics(ip).instance is not None:
        pytest.skip("an instance is already running in this shell")
    text = _one_message(ip.run_line_magic("flux", "jobs"))
    assert "%flux start" in text


def test_empty_line_and_unparsable_line(ip):
    assert "%flux start" in _one_message(ip.run_line_magic("flux", ""))
    assert "cannot parse" in _one_message(ip.run_line_magic("flux", "run echo 'unterminated"))


@pytest.mark.parametrize("line, word", [
    ("start --nodes=two", "--nodes"),
    ("start --no-such-option", "--no-such-option"),
    ("start -o nokeyvalue", "key=value"),
])
def test_bad_start_options_are_one_message_and_start_nothing(ip, line, word):
    if _magics(ip).instance is not None:
        pytest.skip("an instance is already running in this shell")
    text = _one_message(ip.run_line_magic("flux", line))
    assert text.startswith("%flux start:") and word in text
    assert _magics(ip).instance is None


def test_stop_without_instance_is_one_message(ip):
    if _magics(ip).instance is not None:
        pytest.skip("an instance is already running in this shell")
    assert "no instance" in _one_message(ip.run_line_magic("flux", "stop"))


# -- with an instance ---------------------------------------------------------------

def test_start_reports_size_and_uri_and_sets_environment(started):
    inst = _magics(started).instance
    assert inst is not None and inst.size == 4
    assert os.environ["FLUX_URI"] == inst.uri
    flux = shutil.which("flux", path=os.environ["PATH"])
    assert flux is not None and flux.startswith(os.path.dirname(inst.uri.removeprefix("local://")))


def test_import_flux_after_start_gives_fluxnbs_package_on_the_instance(started):
    import fluxnb.compat
    started.run_cell("import flux\n_h = flux.Flux()\n_size = _h.attr_get('size')\n_h.close()")
    assert started.user_ns["flux"].__file__.startswith(fluxnb.compat.PATH)
    assert started.user_ns["_size"] == "4"


def test_start_twice_is_a_clear_error_and_keeps_the_instance(started):
    inst = _magics(started).instance
    text = _one_message(started.run_line_magic("flux", "start --test-size=2"))
    assert "already running" in text and "%flux stop" in text
    assert _magics(started).instance is inst


def test_bang_flux_talks_to_the_instance(started):
    """``!flux`` in the kernel runs the shim on PATH against FLUX_URI, as in a terminal."""
    proc = subprocess.run(["flux", "getattr", "size"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "4\n"
    lines = started.run_cell("_out = !flux getattr size").success and started.user_ns["_out"]
    assert list(lines) == ["4"]


def test_status_describes_the_instance(started):
    out = started.run_line_magic("flux", "status")
    assert out.returncode == 0
    assert "size 4" in out.stdout and _magics(started).instance.uri in out.stdout
    assert re.search(r"jobs: \d+ active, \d+ inactive", out.stdout)


def test_command_stdout_as_a_terminal(started):
    out = started.run_line_magic("flux", "getattr size")
    assert (out.returncode, out.stdout, out.stderr) == (0, "4\n", "")
    assert str(out) == "4\n" and bool(out)


def test_command_stderr_and_nonzero_exit(started):
    text = _one_message(started.run_line_magic("flux", "getattr no-such-attribute"))
    assert "no-such-attribute" in text


def test_job_failure_is_one_message(started):
    out = started.run_line_magic("flux", "run false")
    text = _one_message(out)
    assert "exit code 1" in text and out.returncode == 1


def test_run_prints_job_output(started):
    out = started.run_line_magic("flux", "run -n2 --label-io echo hi")
    assert out.returncode == 0
    assert sorted(out.stdout.splitlines()) == ["0: hi", "1: hi"]


def test_unknown_subcommand_is_one_message(started):
    text = _one_message(started.run_line_magic("flux", "no-such-command"))
    assert "no-such-command" in text


def test_command_output_displays_as_a_terminal(started, capsys):
    """Shown as the command runs, not again in the same cell; a later cell shows it."""
    out = started.run_line_magic("flux", "getattr size")
    assert capsys.readouterr().out == "4\n"
    out._ipython_display_()
    assert capsys.readouterr().out == ""
    err = started.run_line_magic("flux", "getattr no-such-attribute")
    captured = capsys.readouterr()
    assert captured.out == "" and "no-such-attribute" in captured.err
    started.execution_count += 1  # the next cell
    try:
        out._ipython_display_()
        err._ipython_display_()
    finally:
        started.execution_count -= 1
    captured = capsys.readouterr()
    assert captured.out == "4\n" and "no-such-attribute" in captured.err


def test_jobs_is_a_table_with_flux_headers(started):
    jobid = started.run_line_magic("flux", "submit --job-name=tablejob true").stdout.strip()
    started.run_line_magic("flux", f"job wait-event {jobid} clean")
    table = started.run_line_magic("flux", "jobs -a")
    assert isinstance(table, Table)
    assert table.headers == ["JOBID", "USER", "NAME", "ST", "NTASKS", "NNODES", "TIME", "INFO"]
    assert any(row[0] == jobid and row[2] == "tablejob" for row in table.rows)
    page = table._repr_html_()
    assert "<table" in page and "<th" in page and "tablejob" in page and "NTASKS" in page
    assert repr(table).splitlines()[0].split() == table.headers


def test_jobs_with_bad_option_is_not_a_table(started):
    out = started.run_line_magic("flux", "jobs --no-such-option")
    assert not isinstance(out, Table)
    assert out.returncode != 0 and "--no-such-option" in out.stderr


def test_resource_list_is_a_table_with_flux_headers(started):
    table = started.run_line_magic("flux", "resource list")
    assert isinstance(table, Table)
    assert table.headers == ["STATE", "NNODES", "NCORES", "NGPUS", "NODELIST"]
    states = {row[0]: row for row in table.rows}
    assert set(states) == {"free", "allocated", "down"}
    assert int(states["free"][1]) + int(states["allocated"][1]) + int(states["down"][1]) >= 4
    assert "<table" in table._repr_html_() and "NCORES" in table._repr_html_()


def test_cell_submit_returns_a_job_handle(started):
    handle = started.run_cell_magic("flux", "submit -n1", "echo from the cell\necho line two\n")
    assert isinstance(handle, JobHandle)
    assert F58.match(str(handle)) and repr(handle) == f"<fluxnb job {handle}>"
    record = handle.wait()
    assert record["result"] == "COMPLETED" and record["returncode"] == 0
    assert handle.output() == "from the cell\nline two\n"
    assert handle.state == "INACTIVE"


def test_cell_submit_with_cc_returns_one_handle_per_job(started):
    handles = started.run_cell_magic("flux", "submit --cc=1-3", "echo copy\n")
    assert isinstance(handles, list) and len(handles) == 3
    assert all(isinstance(h, JobHandle) for h in handles)
    assert [h.wait()["result"] for h in handles] == ["COMPLETED"] * 3


def test_cell_script_keeps_its_own_interpreter(started):
    handle = started.run_cell_magic("flux", "submit", "#!/usr/bin/env python3\nprint(6 * 7)\n")
    handle.wait()
    assert handle.output() == "42\n"


def test_cell_run_prints_output(started):
    out = started.run_cell_magic("flux", "run -n1", "echo ran in a job\n")
    assert isinstance(out, CommandOutput)
    assert (out.returncode, out.stdout) == (0, "ran in a job\n")


def test_cell_run_failure_is_one_message(started):
    text = _one_message(started.run_cell_magic("flux", "run", "exit 3\n"))
    assert "3" in text


def test_cell_submit_dry_run_prints_the_jobspec(started):
    # as `flux submit --dry-run`: the jobspec is printed, nothing is submitted
    out = started.run_cell_magic("flux", "submit --dry-run -n2", "echo never\n")
    assert isinstance(out, CommandOutput) and out.returncode == 0, repr(out)
    js = __import__("json").loads(out.stdout)
    assert js["version"] == 1 and js["tasks"][0]["command"][0].endswith(".sh")
    assert js["tasks"][0]["count"] == {"per_slot": 1} and js["resources"][0]["count"] == 2


def test_cell_submit_watch_shows_what_the_job_prints(started):
    out = started.run_cell_magic("flux", "submit --watch", "echo watched output\n")
    assert isinstance(out, CommandOutput) and out.returncode == 0, repr(out)
    assert "watched output" in out.stdout and "Traceback" not in out.stdout + out.stderr


def test_cell_with_other_command_is_one_message(started):
    text = _one_message(started.run_cell_magic("flux", "jobs", "echo x\n"))
    assert "submit" in text and "batch" in text


def test_cell_submit_with_bad_option_is_not_a_handle(started):
    out = started.run_cell_magic("flux", "submit --no-such-option", "true\n")
    assert isinstance(out, CommandOutput) and out.returncode != 0
    assert "--no-such-option" in out.stderr


def test_browse_unknown_is_one_message(started):
    assert "jobs or resources" in _one_message(started.run_line_magic("flux", "browse nothing"))


def test_errors_show_without_traceback_in_a_cell(started, capsys):
    result = started.run_cell("%flux start --test-size=2")
    assert result.success and result.error_in_exec is None
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err


def test_stop_restores_environment_and_bang_flux(started):
    inst = _magics(started).instance
    out = started.run_line_magic("flux", "stop")
    assert out.returncode == 0 and "stopped" in out.stdout
    assert _magics(started).instance is None
    assert os.environ.get("FLUX_URI") != inst.uri
    assert inst.uri.removeprefix("local://").rsplit("/", 1)[0] not in os.environ.get("PATH", "")
    assert "no fluxnb instance" in started.run_line_magic("flux", "status").stdout
    # and a second stop is an error, not a crash
    assert "no instance" in _one_message(started.run_line_magic("flux", "stop"))

