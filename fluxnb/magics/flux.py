"""``%flux`` and ``%%flux``: host an instance in the kernel and drive it like a terminal.

The magic parses its line and makes one call into the library; nothing here
schedules. ``%flux start`` hosts the brokers in a background thread (the kernel's
own loop is never blocked) and points the kernel's ``FLUX_URI`` and ``PATH`` at the
instance so that ``!flux ...`` works too.

A command's stdout and stderr go into the cell as they are produced, from any
line of the cell (the command runs in a worker thread; each line is written to
the cell's own streams, taken when the magic is called). The returned object
keeps the text and the exit status and is not shown a second time as the
cell's result. Options before the command:

``-e``
    raise :class:`~fluxnb.magics.results.FluxCommandFailed` on a nonzero exit,
    so a cell (or a script run with ``%run``) stops there, as ``set -e`` does;
``-q``
    show nothing while the command runs: keep its output on the returned object
    (``tree = %flux -q pstree``; shown if it is the cell's last line).

Interrupting the kernel during ``%flux run``, ``%%flux run`` or ``%flux job
attach`` cancels the job and says so; a second interrupt detaches at once.
Other commands stop at the first interrupt.
"""

from __future__ import annotations

import argparse
import contextvars
import io
import os
import shlex
import sys
import tempfile
import threading
import time
from contextlib import redirect_stderr, redirect_stdout

from IPython.core.magic import Magics, line_cell_magic, magics_class

from ..runtime.instance import Instance, InstanceError
from ..runtime.message import FluxError
from .results import CommandOutput, FluxCommandFailed, FluxUsageError, JobHandle, rich_result


class _StartParser(argparse.ArgumentParser):
    def error(self, message):
        raise FluxUsageError(f"%flux start: {message}")


def _start_parser() -> argparse.ArgumentParser:
    p = _StartParser(prog="%flux start", add_help=False)
    p.add_argument("-s", "--test-size", type=int, default=None)
    p.add_argument("-N", "--nodes", type=int, default=None)
    p.add_argument("--cores-per-node", type=int, default=None)
    p.add_argument("--gpus-per-node", type=int, default=0)
    p.add_argument("--statedir", default=None)
    p.add_argument("--test-hosts", default=None)
    p.add_argument("--test-fanout", type=int, default=2)
    p.add_argument("--processes", action="store_true")
    p.add_argument("-o", "--broker-opts", action="append", default=[])
    return p


#: submit/batch options after which the output is more than the new jobs' ids
_PRINTS_MORE_THAN_IDS = {"--watch", "--wait", "--wait-event", "-v", "--verbose", "--progress"}


@magics_class
class FluxMagics(Magics):
    """The ``%flux`` line magic and ``%%flux`` cell magic."""

    def __init__(self, shell):
        super().__init__(shell)
        self.instance: Instance | None = None
        self._saved_env: dict[str, str | None] = {}
        self.quiet = False  # %flux -q: this call shows nothing while it runs

    # -- entry point ---------------------------------------------------------------
    @line_cell_magic
    def flux(self, line: str, cell: str | None = None):
        """``%flux [-e] [-q] start|stop|status|<any flux command>``; ``%%flux submit|run|batch``.

        ``-e`` raises :class:`FluxCommandFailed` on a nonzero exit; ``-q`` shows
        nothing while the command runs (see the module docstring).
        """
        try:
            argv = shlex.split(line, comments=True)  # "# ..." ends the line, as in a shell
        except ValueError as exc:
            return _show(_error(f"%flux: cannot parse the line: {exc}"), False)
        strict = quiet = False
        while argv[:1] and argv[0] in ("-e", "-q", "-eq", "-qe"):
            strict = strict or "e" in argv[0]
            quiet = quiet or "q" in argv[0]
            argv = argv[1:]
        if not argv:
            return _show(_error("%flux: give a command, e.g. %flux start --test-size=4 or %flux jobs -a"),
                         quiet)
        self.quiet = quiet
        try:
            from .connect import real_dispatch   # a real flux-core engine (fluxnb/magics/connect.py)
            out = real_dispatch(self, argv, cell)
            if out is not NotImplemented:
                return out
            result = self._dispatch(argv, cell)
        except FluxUsageError as exc:
            result = _error(str(exc))
        finally:
            self.quiet = False
        if not isinstance(result, CommandOutput):
            return result
        _show(result, quiet)
        if strict and result.returncode != 0:
            raise FluxCommandFailed(shlex.join(argv), result)
        return result

    def _dispatch(self, argv: list[str], cell: str | None):
        if cell is not None:
            return self.cell(argv, cell)
        verb = argv[0]
        if verb == "start":
            return self.start(argv[1:])
        if verb == "stop":
            return self.stop()
        if verb == "status":
            return self.status()
        if verb == "browse":
            return self.browse(argv[1:])
        if verb == "trace" and argv[1:2] not in (["export"], ["analyze"], ["save"], ["validate"]):
            self._require()
            from ..widgets import TraceTimeline
            return TraceTimeline.from_args(argv[1:])
        return self.command(argv)

    # -- instance life ---------------------------------------------------------------
    def start(self, argv: list[str]):
        if self.instance is not None:
            raise FluxUsageError(f"%flux start: an instance is already running ({self.instance.uri}); "
                                 "%flux stop it first")
        args = _start_parser().parse_args(argv)
        attrs = {}
        for item in args.broker_opts:
            key, sep, val = item.partition("=")
            if not sep:
                raise FluxUsageError(f"%flux start: -o {item!r}: expected key=value")
            attrs[key] = val
        t = time.perf_counter()
        try:
            inst = Instance(args.test_size, nodes=args.nodes, cores_per_node=args.cores_per_node,
                            gpus_per_node=args.gpus_per_node, statedir=args.statedir,
                            test_hosts=args.test_hosts, fanout=args.test_fanout,
                            processes=args.processes, attrs={"log-stderr-level": "2", **attrs})
            inst.start()
        except (InstanceError, ValueError, RuntimeError, OSError) as exc:
            raise FluxUsageError(f"%flux start: {exc}") from None
        self.instance = inst
        env = inst.environ(0)
        for key in ("FLUX_URI", "PATH"):
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = env[key]
        from ..compat import add_to_sys_path
        add_to_sys_path()  # `import flux` in the kernel gives fluxnb's package
        took = time.perf_counter() - t
        return CommandOutput(f"fluxnb instance of size {inst.size} started in {took:.2f}s: {inst.uri}\n", "")

    def stop(self):
        if self.instance is None:
            raise FluxUsageError("%flux stop: no instance is running (start one with %flux start)")
        self.instance.stop()
        self.instance = None
        for key, val in self._saved_env.items():
            if val is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = val
        self._saved_env.clear()
        return CommandOutput("fluxnb instance stopped\n", "")

    def status(self):
        if self.instance is None:
            return CommandOutput("no fluxnb instance is running in this kernel\n", "")
        from ..runtime.client import Flux
        with Flux(self.instance.uri) as h:
            info = h.rpc("broker.info", {}, nodeid=0).get()
            stats = h.rpc("job-list.stats", {}, nodeid=0).get()
        states = stats["job_states"]
        active = sum(v for k, v in states.items() if k != "inactive")
        text = (f"fluxnb instance: size {info['size']}, {info['state']}, up {info['uptime']:.1f}s\n"
                f"uri: {self.instance.uri}\n"
                f"jobs: {active} active, {states['inactive']} inactive "
                f"({stats['successful']} completed, {stats['failed']} failed, "
                f"{stats['canceled']} canceled, {stats['timeout']} timeout)\n")
        return CommandOutput(text, "")

    # -- commands ------------------------------------------------------------------------
    def _require(self) -> None:
        if self.instance is None and not os.environ.get("FLUX_URI"):
            raise FluxUsageError("no instance: run %flux start --test-size=4 first")

    def command(self, argv: list[str]):
        """Run a fluxnb command in-process and show what a terminal would."""
        if not ({"help", "-h", "--help", "--version"} & set(argv[:1] + argv[-1:])):
            self._require()
        rich = rich_result(argv, stream=not self.quiet)
        if rich is not None:
            return rich
        return run_cli_output(argv, stream=not self.quiet)

    def cell(self, argv: list[str], body: str):
        """``%%flux submit [options]`` / ``%%flux batch [options]``: the cell is the script."""
        self._require()
        verb = argv[0]
        if verb not in ("submit", "batch", "run"):
            raise FluxUsageError(f"%%flux {verb}: only submit, run and batch take a cell")
        # the script lives in the hosted instance's run directory (gone with it); a
        # batch script is copied into the jobspec and a run is over when run_cli
        # returns, so those go at once
        where = getattr(self.instance, "rundir", None) or os.environ.get("TMPDIR") \
            or tempfile.gettempdir()
        fd, path = tempfile.mkstemp(prefix="fluxnb-cell-", suffix=".sh", dir=where)
        with os.fdopen(fd, "w") as f:
            f.write(body if body.startswith("#!") else "#!/bin/sh\n" + body)
        os.chmod(path, 0o755)
        # --dry-run prints the jobspec (nothing runs the script); --watch and --wait
        # print what the jobs print: show what a terminal would, not job handles
        dry = "--dry-run" in argv
        shown = dry or any(a.split("=", 1)[0] in _PRINTS_MORE_THAN_IDS for a in argv[1:])
        try:
            result = run_cli_output([verb, *argv[1:], path], stream=not self.quiet)
        finally:
            if verb in ("batch", "run") or dry:
                os.unlink(path)
        if result.returncode != 0 or verb == "run" or shown:
            return result
        # the ids were printed as the command ran; the handles come in addition
        from ..job import JobID
        try:
            ids = [JobID(tok) for tok in result.stdout.split()]
        except ValueError:
            return result
        if not ids:
            return result
        return JobHandle(ids[0]) if len(ids) == 1 else [JobHandle(i) for i in ids]

    def browse(self, argv: list[str]):
        self._require()
        from .. import widgets
        what = argv[0] if argv else "jobs"
        if what == "jobs":
            return widgets.JobBrowser()
        if what == "resources":
            return widgets.ResourceBrowser()
        raise FluxUsageError(f"%flux browse {what}: expected jobs or resources")


def run_cli(argv: list[str], stream: bool = False, stdout: bool = True) -> tuple[int, str, str]:
    """Run the fluxnb CLI in this process; return (exit code, stdout, stderr).

    With ``stream``, what the command writes goes on to this cell's
    ``sys.stdout`` / ``sys.stderr`` (taken now) line by line as it is written
    (``stdout=False``: its stderr only). The command runs in a worker thread
    while this one waits, so a ``KeyboardInterrupt`` lands here, never inside
    the command: see :func:`_wait`.
    """
    out = _CellStream(sys.stdout if stream and stdout else None)
    err = _CellStream(sys.stderr if stream else None)
    result: dict = {"done": threading.Event()}
    worker = threading.Thread(target=contextvars.copy_context().run, args=(_run_main, argv, result),
                              daemon=True, name=f"fluxnb-{argv[0] if argv else 'command'}")
    with redirect_stdout(out), redirect_stderr(err):
        worker.start()
        detached = _wait(worker, result["done"], err)
    out.flush()
    err.flush()
    if detached:
        out.detach()
        err.detach()
        return 130, out.getvalue(), err.getvalue()
    if "exc" in result:
        raise result["exc"]
    return result.get("code", 1), out.getvalue(), err.getvalue()


def run_cli_output(argv: list[str], stream: bool = True) -> CommandOutput:
    """:func:`run_cli` as a :class:`CommandOutput` (marked shown when streamed)."""
    code, out, err = run_cli(argv, stream=stream)
    result = CommandOutput(out, err, code)
    if stream:
        result.mark_shown()
    return result


def _run_main(argv: list[str], result: dict) -> None:
    from ..cli.main import main
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except FluxError as exc:
        print(f"flux-{argv[0]}: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:  # the interrupt _wait raised here: the command stops
        code = 130
    except BaseException as exc:  # a bug: re-raised in the caller's thread
        result["exc"] = exc
        code = 1
    result["code"] = code or 0
    result["done"].set()


def _wait(worker: threading.Thread, done: threading.Event, err: "_CellStream") -> bool:
    """Wait for the command's thread; handle the kernel's interrupts. True if detached.

    In an attach (``flux run``, ``flux job attach``) the first interrupt cancels
    the job and keeps following it to its end, the second detaches; any other
    command is stopped by the first.
    """
    from ..cli.attach import running
    from ..cli.common import raise_in_thread
    interrupts = 0
    # an Event, not worker.join(): a join cut short by KeyboardInterrupt may
    # leave the thread looking stopped while it runs on
    while not done.is_set():
        try:
            done.wait(0.05)
            continue
        except KeyboardInterrupt:
            interrupts += 1
        state = running(worker.ident)
        if state is not None and interrupts == 1:
            threading.Thread(target=state.interrupt, daemon=True).start()
            continue
        if state is not None:
            err.write(f"flux-job: {state.jobid.f58}: detaching (the job goes on)\n")
        raise_in_thread(worker.ident, KeyboardInterrupt)
        done.wait(1.5)  # a blocked receive wakes within a second
        return not done.is_set() or state is not None
    return False


class _CellStream(io.TextIOBase):
    """What a command writes: kept, and passed on line by line to a cell's stream.

    A line ends at ``\n`` or ``\r``, so a progress bar redrawn with ``\r`` redraws
    in the cell (Jupyter's frontends overwrite the line on ``\r``); the terminal's
    erase-line escape is dropped. ``buffer`` takes bytes, for commands that write them.
    """

    redraws = True  # read by fluxnb.cli.submit_wait.ProgressBar

    def __init__(self, target=None):
        super().__init__()
        self.target = target
        self.parts: list[str] = []
        self.pending = ""
        self.lock = threading.Lock()
        self.buffer = _BytesToText(self)
        if target is None:
            self.redraws = False

    def write(self, text: str) -> int:
        with self.lock:
            self.parts.append(text)
            if self.target is not None:
                self.pending += text
                cut = max(self.pending.rfind("\n"), self.pending.rfind("\r"))
                if cut >= 0:
                    self._send(self.pending[:cut + 1])
                    self.pending = self.pending[cut + 1:]
        return len(text)

    def flush(self) -> None:
        with self.lock:
            if self.pending:
                self._send(self.pending)
                self.pending = ""
            target = self.target
        if target is not None:
            try:
                target.flush()
            except (ValueError, OSError):
                pass

    def _send(self, text: str) -> None:
        try:
            self.target.write(text.replace("\033[K", ""))
        except (ValueError, OSError):  # the cell's stream is gone: keep the text only
            self.target = None

    def detach(self) -> None:
        """Stop passing text on (a detached command may still write for a moment)."""
        with self.lock:
            self.target = None

    def getvalue(self) -> str:
        with self.lock:
            return "".join(self.parts)

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


class _BytesToText:
    def __init__(self, text: io.StringIO):
        self.text = text

    def write(self, data: bytes) -> int:
        self.text.write(data.decode("utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        pass


def _error(message: str) -> CommandOutput:
    return CommandOutput("", message + "\n", 1)


def _show(result: CommandOutput, quiet: bool) -> CommandOutput:
    """Show a result not streamed yet (start, status, a usage error) from any line."""
    if not quiet and not result.shown:
        result._ipython_display_()
        result.mark_shown()
    return result
