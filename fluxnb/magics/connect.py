"""``%flux connect``: drive a real flux-core instance from the ``%flux`` magics.

A kernel started inside ``flux start``, ``flux alloc`` or a batch job has
``FLUX_URI`` set to a real Flux; ``%load_ext fluxnb`` notices it (:func:`autodetect`)
and the magics use it without ``%flux start``. ``%flux connect [URI | --jobid ID]``
attaches to another one, ``%flux disconnect`` detaches. On a real engine every
``%flux <command>`` runs flux-core's own ``flux`` command (``$FLUX_PREFIX/bin/flux``,
default /opt/flux) against that URI, its output streamed as it comes;
``%flux jobs`` and ``%flux resource list`` come back as tables and
``%%flux submit|batch`` as job handles, as on fluxnb's embedded instance.

:func:`real_dispatch` is the one hook :class:`~fluxnb.magics.flux.FluxMagics` calls
first; it returns ``NotImplemented`` for whatever the embedded engine handles.
"""

from __future__ import annotations

import argparse
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from ..realflux import engine
from ..runtime.message import FluxError
from .results import CommandOutput, FluxUsageError, JobHandle, Table, _split_columns

#: seconds a ``%flux connect`` may take before it says no instance answered
CONNECT_TIMEOUT = 4.0


@dataclass
class RealEngine:
    """The real Flux instance the magics drive."""

    uri: str
    version: str
    size: int

    def describe(self) -> str:
        return f"flux-core {self.version} at {self.uri}"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise FluxUsageError(f"%flux connect: {message}")


def _connect_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="%flux connect", add_help=False)
    p.add_argument("uri", nargs="?", default=None)
    p.add_argument("--jobid", default=None)
    return p


def attach(uri: str, timeout: float = CONNECT_TIMEOUT) -> RealEngine:
    """Check that a real Flux answers at ``uri``; raise FluxUsageError in one line if not."""
    kind = engine.probe(uri, timeout=min(timeout, 1.5))
    if kind == "none":
        raise FluxUsageError(f"%flux connect: no Flux instance at {uri} (nothing listens there)")
    if kind == "fluxnb":
        raise FluxUsageError(f"%flux connect: {uri} is a fluxnb instance, not a real Flux "
                             "(use it with FLUX_URI, or %flux start for one in this kernel)")
    if kind != "flux-core":
        raise FluxUsageError(f"%flux connect: {uri} does not answer as a Flux instance")
    from ..realflux import RealFlux
    try:
        with RealFlux(uri, timeout=timeout) as h:
            return RealEngine(uri, h.version, int(h.attr_get("size")))
    except (FluxError, ImportError) as exc:
        raise FluxUsageError(f"%flux connect: {exc}") from None


def _use(magics, eng: RealEngine) -> None:
    """Point the kernel (FLUX_URI, PATH) at ``eng``; remember what to restore."""
    saved = getattr(magics, "_real_saved_env", None)
    if saved is None:
        saved = magics._real_saved_env = {k: os.environ.get(k) for k in ("FLUX_URI", "PATH")}
    os.environ["FLUX_URI"] = eng.uri
    bindir = os.path.join(engine.prefix(), "bin")
    path = saved["PATH"] or os.defpath
    os.environ["PATH"] = path if path.split(":")[0] == bindir else f"{bindir}:{path}"
    magics.real = eng


def detach(magics) -> None:
    saved = getattr(magics, "_real_saved_env", None) or {}
    for key, val in saved.items():
        if val is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = val
    magics._real_saved_env = None
    magics.real = None
    engine.release_bindings()  # `import flux` now finds what it found before the connect


def autodetect(magics) -> RealEngine | None:
    """At ``%load_ext``: if ``$FLUX_URI`` is a running flux-core instance, use it."""
    uri = os.environ.get("FLUX_URI")
    if not uri or getattr(magics, "instance", None) is not None:
        return None
    if engine.probe(uri, timeout=1.0) != "flux-core":
        return None
    try:
        eng = attach(uri)
    except FluxUsageError:
        return None
    _use(magics, eng)
    # the kernel's own FLUX_URI is the real one: keep it when detaching
    magics._real_saved_env["FLUX_URI"] = uri
    return eng


# -- the hook ----------------------------------------------------------------------------
def real_dispatch(magics, argv: list[str], cell: str | None):
    """Handle ``argv`` when it concerns a real engine; else return NotImplemented."""
    verb = argv[0]
    real: RealEngine | None = getattr(magics, "real", None)
    if cell is None and verb == "connect":
        return connect(magics, argv[1:])
    if cell is None and verb == "disconnect":
        if real is None:
            raise FluxUsageError("%flux disconnect: not connected to a real Flux")
        detach(magics)
        return CommandOutput(f"disconnected from {real.describe()}\n", "")
    if real is None:
        if cell is None and verb == "status" and magics.instance is not None:
            out = magics.status()
            out.stdout = "engine: fluxnb (embedded in this kernel)\n" + out.stdout
            return out
        return NotImplemented
    if cell is None and verb == "start":
        detach(magics)       # %flux start still hosts fluxnb's own instance
        return NotImplemented
    if cell is None and verb == "stop":
        raise FluxUsageError(f"%flux stop: this kernel drives {real.describe()}, which it did not "
                             "start; %flux disconnect detaches from it")
    if cell is None and verb == "status":
        return status(real)
    if cell is None and verb in ("browse", "trace"):
        return NotImplemented          # the widgets find the real engine by themselves
    if cell is not None:
        return run_cell(real, argv, cell)
    return command(real, argv)


def connect(magics, argv: list[str]):
    if magics.instance is not None:
        raise FluxUsageError(f"%flux connect: this kernel hosts a fluxnb instance "
                             f"({magics.instance.uri}); %flux stop it first")
    args = _connect_parser().parse_args(argv)
    current = getattr(magics, "real", None)
    uri = args.uri
    if args.jobid:
        parent = uri or (current.uri if current else os.environ.get("FLUX_URI"))
        try:
            uri = engine.uri_of_jobid(args.jobid, parent, timeout=CONNECT_TIMEOUT)
        except (LookupError, FileNotFoundError, subprocess.TimeoutExpired) as exc:
            raise FluxUsageError(f"%flux connect --jobid {args.jobid}: {exc}") from None
    if uri is None:
        uri = (getattr(magics, "_real_saved_env", None) or {}).get("FLUX_URI") or os.environ.get("FLUX_URI")
    if not uri:
        raise FluxUsageError("%flux connect: give a URI (local://PATH) or --jobid; FLUX_URI is not set")
    eng = attach(uri)
    _use(magics, eng)
    return CommandOutput(f"connected to {eng.describe()} (size {eng.size})\n", "")


def status(real: RealEngine) -> CommandOutput:
    from ..realflux import RealFlux
    try:
        with RealFlux(real.uri, timeout=CONNECT_TIMEOUT) as h:
            jobs = h.rpc("job-list.list", {"max_entries": 0, "states": 0, "results": 0,
                                           "attrs": ["state"]}, nodeid=0).get()["jobs"]
            res = h.rpc("resource.status", {}, nodeid=0).get()
    except FluxError as exc:
        return CommandOutput(f"engine: {real.describe()}: disconnected ({exc})\n", "", 1)
    active = sum(1 for j in jobs if j.get("state", 0) != 64)
    text = (f"engine: {real.describe()}\n"
            f"size {real.size}, online ranks {res.get('online') or '-'}, "
            f"offline {res.get('offline') or '-'}\n"
            f"jobs: {active} active, {len(jobs) - active} inactive\n")
    return CommandOutput(text, "")


# -- running flux-core's CLI ----------------------------------------------------------------
def _cli(real: RealEngine) -> tuple[str, dict]:
    cli = engine.flux_cli()
    if cli is None:
        raise FluxUsageError(f"%flux: flux-core's flux command is not installed under "
                             f"{engine.prefix()} (set FLUX_PREFIX)")
    env = dict(os.environ, FLUX_URI=real.uri)
    return cli, env


def run(real: RealEngine, argv: list[str], stream: bool = True) -> tuple[int, str, str]:
    """Run ``flux argv`` on the real instance; copy its output here as it comes if ``stream``.

    Ctrl-C (KeyboardInterrupt) is passed on to the command as SIGINT, as a terminal
    does (``flux run`` then cancels its job); a command that ignores it is killed
    after 5 s.
    """
    cli, env = _cli(real)
    proc = subprocess.Popen([cli, *argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    out: list[bytes] = []
    err: list[bytes] = []
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, (out, sys.stdout))
    sel.register(proc.stderr, selectors.EVENT_READ, (err, sys.stderr))
    interrupted = None
    try:
        while sel.get_map():
            try:
                for key, _ in sel.select(timeout=0.5):
                    data = os.read(key.fd, 65536)
                    if not data:
                        sel.unregister(key.fileobj)
                        continue
                    acc, dest = key.data
                    acc.append(data)
                    if stream:
                        dest.write(data.decode("utf-8", "replace"))
                        dest.flush()
            except KeyboardInterrupt:
                if interrupted is None:
                    interrupted = time.monotonic()
                    proc.send_signal(signal.SIGINT)
            if interrupted is not None and time.monotonic() - interrupted > 5:
                proc.kill()
        code = proc.wait()
    finally:
        sel.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, b"".join(out).decode("utf-8", "replace"), b"".join(err).decode("utf-8", "replace")


class StreamedOutput(CommandOutput):
    """Output already shown while the command ran: kept for code, not shown again."""

    def _ipython_display_(self) -> None:
        pass


def command(real: RealEngine, argv: list[str]):
    if argv[0] == "jobs" and not {"--json", "--stats-only", "-h", "--help", "-o", "--format"} & set(argv) \
            and not any(a.startswith(("--format=", "-o")) for a in argv[1:]):
        return _table(real, argv)
    if argv[:2] == ["resource", "list"] and not {"-h", "--help"} & set(argv):
        return _table(real, argv)
    code, out, err = run(real, argv)
    return StreamedOutput(out, err, code)


def _table(real: RealEngine, argv: list[str]):
    code, out, err = run(real, argv, stream=False)
    if code != 0:
        return CommandOutput(out, err, code)
    headers, rows = _split_columns(out) if "-n" not in argv and "--no-header" not in argv else ([], [])
    return Table(headers, rows, out)


_F58 = re.compile(r"^(ƒ|f)[1-9A-HJ-NP-Za-km-z]+$")


def cell_dir() -> str:
    """Where a submitted cell's script waits for its jobs: ``$XDG_CACHE_HOME/fluxnb/cells``
    (``~/.cache/...``), the owner's alone (0700).

    A submitted job runs its script when the scheduler starts it, on whichever node that
    is: not in this machine's /tmp (on a cluster, node-local, and never cleaned of the
    scripts), but under the home directory, shared across a cluster's nodes.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "fluxnb", "cells")
    os.makedirs(path, 0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def cell_script(text: str) -> str:
    """The file of a submitted cell's script, named by its text (a cell run again, or
    submitted for a thousand jobs, is one file, written once)."""
    import hashlib
    name = f"fluxnb-cell-{hashlib.sha1(text.encode()).hexdigest()[:16]}.sh"
    try:
        where = cell_dir()
    except OSError:
        where = tempfile.gettempdir()  # no writable home: as before
    path = os.path.join(where, name)
    if not os.path.exists(path):
        fd, tmp = tempfile.mkstemp(prefix=".cell-", dir=where)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o700)
        os.replace(tmp, path)  # whole or not at all, for a job that starts at once
    return path


def run_cell(real: RealEngine, argv: list[str], body: str):
    verb = argv[0]
    if verb not in ("submit", "batch", "run"):
        raise FluxUsageError(f"%%flux {verb}: only submit, run and batch take a cell")
    text = body if body.startswith("#!") else "#!/bin/sh\n" + body
    if verb == "submit":
        path = cell_script(text)
    else:  # a batch script is copied into the jobspec; a run is over when run() returns
        fd, path = tempfile.mkstemp(prefix="fluxnb-cell-", suffix=".sh")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
    try:
        if verb == "run":
            code, out, err = run(real, [verb, *argv[1:], path])
            return StreamedOutput(out, err, code)
        # streamed, as on the embedded engine: the ids show as they come, the handles in addition
        code, out, err = run(real, [verb, *argv[1:], path])
    finally:
        if verb in ("batch", "run"):
            os.unlink(path)
    if code != 0:
        return CommandOutput(out, err, code)
    ids = [tok for tok in out.split() if _F58.match(tok) or tok.isdigit()]
    if not ids:
        return CommandOutput(out, err, code)
    handles = [JobHandle(i) for i in ids]
    return handles[0] if len(handles) == 1 else handles
