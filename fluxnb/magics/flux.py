"""``%flux`` and ``%%flux``: host an instance in the kernel and drive it like a terminal.

The magic parses its line and makes one call into the library; nothing here
schedules. ``%flux start`` hosts the brokers in a background thread (the kernel's
own loop is never blocked) and points the kernel's ``FLUX_URI`` and ``PATH`` at the
instance so that ``!flux ...`` works too.
"""

from __future__ import annotations

import argparse
import io
import os
import shlex
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout

from IPython.core.magic import Magics, line_cell_magic, magics_class

from ..runtime.instance import Instance, InstanceError
from ..runtime.message import FluxError
from .results import CommandOutput, FluxUsageError, JobHandle, rich_result


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


@magics_class
class FluxMagics(Magics):
    """The ``%flux`` line magic and ``%%flux`` cell magic."""

    def __init__(self, shell):
        super().__init__(shell)
        self.instance: Instance | None = None
        self._saved_env: dict[str, str | None] = {}

    # -- entry point ---------------------------------------------------------------
    @line_cell_magic
    def flux(self, line: str, cell: str | None = None):
        """``%flux start|stop|status|<any flux command>``; ``%%flux submit|batch [opts]``."""
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            return _error(f"%flux: cannot parse the line: {exc}")
        if not argv:
            return _error("%flux: give a command, e.g. %flux start --test-size=4 or %flux jobs -a")
        try:
            from .connect import real_dispatch   # a real flux-core engine (fluxnb/magics/connect.py)
            out = real_dispatch(self, argv, cell)
            if out is not NotImplemented:
                return out
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
        except FluxUsageError as exc:
            return _error(str(exc))

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
        rich = rich_result(argv)
        if rich is not None:
            return rich
        code, out, err = run_cli(argv)
        return CommandOutput(out, err, code)

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
        try:
            code, out, err = run_cli([verb, *argv[1:], path])
        finally:
            if verb in ("batch", "run"):
                os.unlink(path)
        if code != 0 or verb == "run":
            return CommandOutput(out, err, code)
        from ..job import JobID
        ids = [JobID(tok) for tok in out.split()]
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


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """Run the fluxnb CLI in this process; return (exit code, stdout, stderr)."""
    from ..cli.main import main
    out, err = _Capture(), _Capture()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except FluxError as exc:
            print(f"flux-{argv[0]}: {exc}", file=sys.stderr)
            code = 1
    return code or 0, out.getvalue(), err.getvalue()


class _Capture(io.StringIO):
    """A text stream with a ``buffer``, so commands that write bytes work in-process."""

    def __init__(self):
        super().__init__()
        self.buffer = _BytesToText(self)

    def isatty(self) -> bool:
        return False


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
