"""DYAD from Python, shaped like pydyad: ``Dyad`` and the ``dyad_open`` context manager.

A producer closes a file under its managed directory and calls
:meth:`Dyad.produce`: the file's key goes into the KVS with this rank as owner. A
consumer calls :meth:`Dyad.consume` (or opens through :func:`dyad_open`): its
rank's ``dyad`` service waits for the key, fetches the file from the owner into
the consumer's managed directory, and only then does the open proceed.

Environment (read by :meth:`Dyad.init_env`)
-------------------------------------------
``DYAD_KVS_NAMESPACE``   KVS namespace of the metadata (required)
``DYAD_PATH_PRODUCER``   producer-managed directory (default: the rank's module DIR)
``DYAD_PATH_CONSUMER``   consumer-managed directory (default: the rank's module DIR)
``DYAD_KEY_DEPTH``       bin levels of a key (3), ``DYAD_KEY_BINS`` bins per level (1024)
``DYAD_SHARED_STORAGE``  synchronize only, move no data (``1``/``true``; ``0`` is off)
``DYAD_DTL_MODE``        data transfer layer; ``FLUX_RPC`` (the only one here)
"""

from __future__ import annotations

import errno
import io
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..runtime.dyad.keys import DEFAULT_BINS, DEFAULT_DEPTH, key as path_key
from ..runtime.message import FluxError

FLUX_KVS_WAITCREATE = 8
_FALSE = {"", "0", "false", "no", "off", "n", "f"}


class DyadError(FluxError):
    """A DYAD operation failed (bad configuration, missing module, failed fetch)."""


def env_flag(value: str | None) -> bool:
    """Parse a DYAD boolean environment value by its value: ``"0"`` and ``"false"`` are off.

    Examples
    --------
    >>> env_flag("0"), env_flag("1"), env_flag("yes"), env_flag(None)
    (False, True, True, False)
    """
    return value is not None and value.strip().lower() not in _FALSE


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise DyadError(errno.EINVAL, f"{name}={raw!r} is not an integer") from None


@dataclass(frozen=True)
class DyadMetadata:
    """What the KVS says about a produced file."""

    fpath: str
    owner_rank: int
    key: str


def _relpath(root: Path | None, fname: str | os.PathLike) -> str | None:
    """``fname`` relative to ``root``, or None if it is not inside it."""
    if root is None:
        return None
    p = Path(fname).expanduser().resolve()
    try:
        rel = p.relative_to(root)
    except ValueError:
        return None
    return None if str(rel) == "." else rel.as_posix()


class Dyad:
    """A DYAD context: which namespace, directories and key scheme to use.

    Examples
    --------
    >>> d = Dyad()                                   # doctest: +SKIP
    >>> d.init_env()
    >>> with open(f"{d.prod_path}/a.txt", "w") as f:
    ...     f.write("hello")
    >>> d.produce(f"{d.prod_path}/a.txt")            # consumer: d.consume(path)
    """

    def __init__(self) -> None:
        self.initialized = False
        self.handle = None
        self._own_handle = False
        self.rank: int | None = None
        self.prod_path: Path | None = None
        self.cons_path: Path | None = None
        self.kvs_namespace: str | None = None
        self.key_depth = DEFAULT_DEPTH
        self.key_bins = DEFAULT_BINS
        self.shared_storage = False
        self.dtl_mode = "FLUX_RPC"
        self.module_path: str | None = None

    # -- set up --------------------------------------------------------------------
    def init(self, debug: bool = False, check: bool = False, shared_storage: bool = False,
             reinit: bool = False, key_depth: int = DEFAULT_DEPTH, key_bins: int = DEFAULT_BINS,
             service_mux: int = 1, kvs_namespace: str | None = None,
             prod_managed_path: str | None = None, cons_managed_path: str | None = None,
             dtl_mode: str = "FLUX_RPC", flux_handle: Any = None, uri: str | None = None) -> None:
        """Initialize explicitly (pydyad's ``Dyad.init``), connecting to this rank's broker.

        ``flux_handle`` (or ``uri``) picks the broker; by default ``$FLUX_URI`` or the
        instance hosted by this kernel. Directories left out default to the directory
        the rank's ``dyad`` module serves.
        """
        if self.initialized and not reinit:
            return
        if self.initialized:
            self.finalize()
        if not kvs_namespace:
            raise DyadError(errno.EINVAL, "DYAD needs a KVS namespace (DYAD_KVS_NAMESPACE)")
        if str(dtl_mode).upper() != "FLUX_RPC":
            raise DyadError(errno.ENOTSUP, f"DYAD_DTL_MODE {dtl_mode}: only FLUX_RPC is available")
        if key_depth < 0 or key_bins < 1:
            raise DyadError(errno.EINVAL, f"DYAD_KEY_DEPTH={key_depth}/DYAD_KEY_BINS={key_bins}: "
                                          "need depth >= 0 and bins >= 1")
        if flux_handle is None:
            from ..runtime.client import Flux
            flux_handle = Flux(uri)
            self._own_handle = True
        self.handle = flux_handle
        self.rank = int(flux_handle.attr_get("rank"))
        self.kvs_namespace = kvs_namespace
        self.key_depth, self.key_bins = int(key_depth), int(key_bins)
        self.shared_storage = bool(shared_storage)
        self.dtl_mode = "FLUX_RPC"
        if prod_managed_path is None or cons_managed_path is None:
            self.module_path = self.stats()["path"]
        self.prod_path = Path(prod_managed_path or self.module_path).expanduser().resolve()
        self.cons_path = Path(cons_managed_path or self.module_path).expanduser().resolve()
        self.initialized = True

    def init_env(self, flux_handle: Any = None, uri: str | None = None) -> None:
        """Initialize from the ``DYAD_*`` environment variables (pydyad's ``init_env``)."""
        self.init(shared_storage=env_flag(os.environ.get("DYAD_SHARED_STORAGE")),
                  key_depth=_env_int("DYAD_KEY_DEPTH", DEFAULT_DEPTH),
                  key_bins=_env_int("DYAD_KEY_BINS", DEFAULT_BINS),
                  kvs_namespace=os.environ.get("DYAD_KVS_NAMESPACE"),
                  prod_managed_path=os.environ.get("DYAD_PATH_PRODUCER") or None,
                  cons_managed_path=os.environ.get("DYAD_PATH_CONSUMER") or None,
                  dtl_mode=os.environ.get("DYAD_DTL_MODE") or "FLUX_RPC",
                  flux_handle=flux_handle, uri=uri)

    def _check(self) -> None:
        if not self.initialized:
            raise DyadError(errno.EINVAL, "DYAD is not initialized: call init() or init_env() first")

    def stats(self, rank: int | None = None) -> dict:
        """The ``dyad`` service's state on ``rank`` (default: this one)."""
        nodeid = self.rank if rank is None else rank
        try:
            return self.handle.rpc("dyad.stats", {}, nodeid=nodeid).get()
        except FluxError as exc:
            raise _module_error(exc, nodeid) from None

    def key(self, fname: str | os.PathLike, managed: Path | None = None) -> str | None:
        """The KVS key of ``fname`` (under the producer directory, else the consumer's)."""
        self._check()
        upath = _relpath(managed or self.prod_path, fname) or _relpath(self.cons_path, fname)
        return None if upath is None else path_key(upath, self.key_depth, self.key_bins)

    # -- producer ------------------------------------------------------------------
    def produce(self, fname: str | os.PathLike) -> str | None:
        """Publish a closed file under the producer directory; return its key.

        A file outside the producer directory is left alone (returns None), as DYAD does.
        """
        self._check()
        upath = _relpath(self.prod_path, fname)
        if upath is None:
            return None
        k = path_key(upath, self.key_depth, self.key_bins)
        from ..kvs import KVSTxn
        txn = KVSTxn(self.handle, namespace=self.kvs_namespace)
        txn.put(k, self.rank)
        try:
            txn.commit()
        except FluxError as exc:
            raise DyadError(exc.errno, f"dyad produce {upath}: KVS namespace "
                                       f"{self.kvs_namespace!r}: {exc}") from None
        return k

    # -- consumer ------------------------------------------------------------------
    def get_metadata(self, fname: str | os.PathLike, should_wait: bool = False,
                     timeout: float | None = None) -> DyadMetadata | None:
        """Who owns ``fname`` (a consumer- or producer-managed path), or None if unpublished."""
        self._check()
        upath = _relpath(self.cons_path, fname) or _relpath(self.prod_path, fname)
        if upath is None:
            return None
        k = path_key(upath, self.key_depth, self.key_bins)
        flags = FLUX_KVS_WAITCREATE if should_wait else 0
        payload = {"key": k, "namespace": self.kvs_namespace, "flags": flags}
        topic = "kvs-watch.lookup" if should_wait else "kvs.lookup"
        rpc = self.handle.rpc(topic, payload, nodeid=0)
        try:
            val = rpc.get(timeout)["val"]
        except FluxError as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise DyadError(exc.errno, f"dyad: {upath}: {_namespace_text(exc, self.kvs_namespace)}") from None
        except TimeoutError:
            self.handle.rpc("kvs-watch.cancel", {"matchtag": rpc.matchtag}, nodeid=0)
            raise
        import base64
        import json
        return DyadMetadata(upath, int(json.loads(base64.b64decode(val["data"]))), k)

    def consume(self, fname: str | os.PathLike, timeout: float | None = None) -> dict | None:
        """Wait until ``fname`` is produced and present in the consumer directory.

        Returns the service's answer ``{key, owner, fetched, size, path}``, or None for
        a path outside the consumer directory. Raises :class:`TimeoutError` after
        ``timeout`` seconds (the wait is canceled), :class:`DyadError` if the fetch
        fails: the file is then absent, never partial.
        """
        self._check()
        upath = _relpath(self.cons_path, fname)
        if upath is None:
            return None
        payload = {"upath": upath, "path": str(self.cons_path), "namespace": self.kvs_namespace,
                   "depth": self.key_depth, "bins": self.key_bins, "shared": self.shared_storage}
        rpc = self.handle.rpc("dyad.consume", payload, nodeid=self.rank)
        try:
            return rpc.get(timeout)
        except TimeoutError:
            self.handle.rpc("dyad.cancel", {"matchtag": rpc.matchtag}, nodeid=self.rank)
            raise TimeoutError(f"dyad consume {upath}: not produced within {timeout}s") from None
        except FluxError as exc:
            raise _module_error(exc, self.rank) from None

    def finalize(self) -> None:
        """Drop the connection (when this context made it)."""
        if self._own_handle and self.handle is not None:
            self.handle.close()
        self.handle = None
        self._own_handle = False
        self.initialized = False

    def __enter__(self) -> "Dyad":
        if not self.initialized:
            self.init_env()
        return self

    def __exit__(self, *exc: object) -> None:
        self.finalize()

    def __repr__(self) -> str:
        if not self.initialized:
            return "<Dyad (not initialized)>"
        return (f"<Dyad rank={self.rank} namespace={self.kvs_namespace} prod={self.prod_path} "
                f"cons={self.cons_path} depth={self.key_depth} bins={self.key_bins}"
                f"{' shared' if self.shared_storage else ''}>")


def _namespace_text(exc: FluxError, ns: str | None) -> str:
    if exc.errno == errno.ENOTSUP:
        return f"KVS namespace {ns!r} does not exist (flux kvs namespace create {ns})"
    return str(exc)


def _module_error(exc: FluxError, rank: int | None) -> DyadError:
    if exc.errno == errno.ENOSYS and "No service matching dyad." in str(exc):
        return DyadError(exc.errno, f"the dyad module is not loaded on rank {rank} "
                                    "(flux exec -r all flux module load dyad)")
    return exc if isinstance(exc, DyadError) else DyadError(exc.errno, str(exc))


_DEFAULT: Dyad | None = None


@contextmanager
def dyad_open(file: str | os.PathLike, mode: str = "r", *args: Any, dyad_ctx: Dyad | None = None,
              register_dyad_ctx: bool = False, **kwargs: Any) -> Iterator[io.IOBase]:
    """``open`` that consumes before reading and produces after writing (pydyad's).

    A read of a consumer-managed path waits for the file first; a write to a
    producer-managed path is published once the file is closed.

    Examples
    --------
    >>> with dyad_open(f"{prod}/x.txt", "w") as f:   # doctest: +SKIP
    ...     f.write("data")
    """
    global _DEFAULT
    ctx = dyad_ctx
    if ctx is None:
        if _DEFAULT is None:
            _DEFAULT = Dyad()
            _DEFAULT.init_env()
        ctx = _DEFAULT
    elif register_dyad_ctx:
        _DEFAULT = ctx
    if "r" in mode and "+" not in mode:
        ctx.consume(file)
    f = open(file, mode, *args, **kwargs)
    try:
        yield f
    finally:
        f.close()
        if any(c in mode for c in "wax+"):
            ctx.produce(file)


def wait_for(path: str | os.PathLike, interval: float = 0.1, timeout: float | None = None) -> float:
    """Poll for ``path`` every ``interval`` seconds (the shared-directory baseline); return when seen."""
    start = time.time()
    while not os.path.exists(path):
        if timeout is not None and time.time() - start > timeout:
            raise TimeoutError(f"{path}: not there after {timeout}s")
        time.sleep(interval)
    return time.time()
