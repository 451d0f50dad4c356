"""Which engine is behind a URI: fluxnb's own brokers, or a real flux-core instance.

Both put a framed unix stream socket at ``local://PATH`` and both servers speak
first, with one byte: flux-core's connector-local answers a new connection with its
auth byte (``0x00`` when the peer is allowed, else an errno), fluxnb's broker with
its greeting ``0xFF`` (:mod:`fluxnb.runtime.connector`; no errno is 255). After that
byte their framing differs. :func:`probe` reads the first byte, so telling them
apart takes one connect and never waits longer than its timeout.

Examples
--------
>>> probe("local:///nonexistent/local")  # doctest: +SKIP
'none'
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
from typing import Literal

Engine = Literal["fluxnb", "flux-core", "none", "unknown"]

#: where real Flux is installed unless FLUX_PREFIX says otherwise
DEFAULT_PREFIX = "/opt/flux"


def prefix() -> str:
    """The real Flux installation: ``$FLUX_PREFIX``, else /opt/flux."""
    return os.environ.get("FLUX_PREFIX") or DEFAULT_PREFIX


def flux_cli() -> str | None:
    """Path of flux-core's ``flux`` command, or None if it is not installed."""
    path = os.path.join(prefix(), "bin", "flux")
    return path if os.access(path, os.X_OK) else None


def socket_path(uri: str) -> str | None:
    """The socket path of a ``local://`` URI (None for other schemes)."""
    return uri[len("local://"):] if uri.startswith("local://") else None


def probe(uri: str, timeout: float = 1.0) -> Engine:
    """What answers at ``uri``: ``"fluxnb"``, ``"flux-core"``, ``"none"`` or ``"unknown"``.

    ``"none"`` means nothing listens there (no socket, or connection refused).
    """
    path = socket_path(uri)
    if path is None:
        return "unknown"
    if not os.path.exists(path):
        return "none"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        try:
            s.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            return "none"
        except OSError:
            return "unknown"
        ready, _, _ = select.select([s], [], [], timeout)
        if not ready:
            return "unknown"
        try:
            first = s.recv(1)
        except OSError:
            return "none"
        if not first:
            return "none"
        if first == b"\xff":    # fluxnb's greeting (connector.GREETING)
            return "fluxnb"
        # flux-core's usock server: one byte, 0 = allowed, else the errno of a refusal
        return "flux-core"
    finally:
        s.close()


def bindings_path() -> str | None:
    """The directory holding flux-core's ``flux`` Python package for this Python."""
    libdir = os.path.join(prefix(), "lib", "flux")
    want = os.path.join(libdir, f"python{sys.version_info.major}.{sys.version_info.minor}")
    if os.path.isdir(os.path.join(want, "flux")):
        return want
    return None


def bindings():
    """flux-core's ``flux`` Python package (imported from the installation if need be).

    Raises
    ------
    ImportError
        With what to do, when flux-core's bindings cannot be found for this Python.
    """
    mod = sys.modules.get("flux")
    if mod is not None and _is_flux_core(mod):
        return mod
    global _inserted
    path = bindings_path()
    if path is not None and path not in sys.path:
        sys.path.insert(0, path)
        _inserted = path
    if mod is not None:      # another package named flux (e.g. fluxnb's compat one)
        del sys.modules["flux"]
        for name in [n for n in sys.modules if n.startswith("flux.")]:
            del sys.modules[name]
    import importlib
    try:
        mod = importlib.import_module("flux")
    except ImportError as exc:
        raise ImportError(
            f"flux-core's Python bindings are not importable ({exc}); build flux-core with "
            f"scripts/test-setup.sh or set FLUX_PREFIX to its install prefix (now {prefix()})") from None
    if not _is_flux_core(mod):
        raise ImportError(f"the `flux` package at {getattr(mod, '__file__', '?')} is not flux-core's; "
                          f"set FLUX_PREFIX to flux-core's install prefix (now {prefix()})")
    return mod


#: the ``sys.path`` entry :func:`bindings` added (flux-core's installation), if it did
_inserted: str | None = None


def release_bindings() -> None:
    """Undo what :func:`bindings` did to this process's imports (a kernel that detaches
    from a real Flux): the ``flux`` modules it imported from flux-core's installation
    leave ``sys.modules``, and that installation's path leaves ``sys.path``, so that a
    later ``import flux`` finds what it found before (fluxnb's package, inside a fluxnb
    instance) rather than flux-core's bindings, which cannot reach fluxnb's brokers.
    Objects that hold flux-core's modules keep them. A flux-core that this Python finds
    by itself (its own ``sys.path``) is left alone: a real flux-core package wins."""
    global _inserted
    path, _inserted = _inserted, None
    if path is None:
        return
    here = os.path.join(path, "")
    for name in [n for n in sys.modules if n == "flux" or n.startswith("flux.")]:
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(here):
            del sys.modules[name]
    try:
        sys.path.remove(path)
    except ValueError:
        pass


def _is_flux_core(mod) -> bool:
    """flux-core's package wraps its C library with the ``_flux._core`` cffi module."""
    try:
        from flux.core.inner import raw  # noqa: F401  (only flux-core's has it)
    except Exception:
        return False
    return "_flux._core" in sys.modules or "_flux" in sys.modules


def uri_of_jobid(jobid: str, parent_uri: str | None = None, timeout: float = 10.0) -> str:
    """The URI of the instance run by job ``jobid`` (``flux uri --remote``-free: local)."""
    cli = flux_cli()
    if cli is None:
        raise FileNotFoundError(f"flux-core's flux command is not installed under {prefix()}")
    env = dict(os.environ)
    if parent_uri:
        env["FLUX_URI"] = parent_uri
    proc = subprocess.run([cli, "uri", "--local", jobid], capture_output=True, text=True,
                          env=env, timeout=timeout)
    if proc.returncode != 0:
        raise LookupError((proc.stderr.strip() or f"flux uri {jobid} failed").splitlines()[-1])
    return proc.stdout.strip()


def hint(uri: str) -> str:
    """How to reach the real Flux at ``uri`` (for errors of fluxnb's own client)."""
    cli = flux_cli() or os.path.join(prefix(), "bin", "flux")
    return (f"{uri} is a real Flux (flux-core), not a fluxnb instance: reach it with {cli}, "
            f"flux.Flux() under `{cli} python`, or %flux connect in a notebook")
