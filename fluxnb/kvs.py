"""The KVS from Python, with flux-core's ``flux.kvs`` names and signatures.

Values are stored JSON-encoded by :func:`put`; :func:`get` decodes JSON and falls
back to the raw string (as flux-core does for values written by ``flux kvs put``).
:func:`put` and friends stage operations in the handle's implicit transaction,
which :func:`commit` sends as one atomic commit.

Examples
--------
>>> import fluxnb                                    # doctest: +SKIP
>>> h = fluxnb.Flux()
>>> fluxnb.kvs.put(h, "a.b", {"x": 1}); fluxnb.kvs.commit(h)
>>> fluxnb.kvs.get(h, "a.b")
{'x': 1}
"""

from __future__ import annotations

import base64
import errno
import json
import os
from collections.abc import MutableMapping
TYPE_CHECKING = False  # not typing's: a `flux` command would import typing for it
if TYPE_CHECKING:
    from typing import Any, Iterator

from .runtime.kvs.flags import (  # noqa: F401 - re-exported
    FLUX_KVS_APPEND, FLUX_KVS_READDIR, FLUX_KVS_READLINK, FLUX_KVS_TREEOBJ, FLUX_KVS_WAITCREATE,
    FLUX_KVS_WATCH, FLUX_KVS_WATCH_APPEND, FLUX_KVS_WATCH_FULL, FLUX_KVS_WATCH_UNIQ,
)
from .runtime.message import FLAG_STREAMING, FluxError

_TXN_AUX = "fluxnb.kvs.txn"


def _namespace(namespace: str | None) -> str | None:
    return namespace or os.environ.get("FLUX_KVS_NAMESPACE") or None


def _val(data: bytes) -> dict:
    return {"ver": 1, "type": "val", "data": base64.b64encode(data).decode()}


def decode_value(data: bytes) -> Any:
    """JSON-decode a stored value, or return it as a str (or bytes if not UTF-8)."""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return data
    try:
        return json.loads(text)
    except ValueError:
        return text


def _encode_value(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return json.dumps(value).encode()


# -- lookups -----------------------------------------------------------------------
def lookup(flux_handle, key: str, namespace: str | None = None, flags: int = 0,
           rootref: str | None = None) -> dict:
    """Raw ``kvs.lookup``: the RFC 11 tree object found at ``key``.

    Answered by the handle's read replica when it can (no message; strictly
    consistent, see :mod:`fluxnb.runtime.kvs.replica`), else by the service.
    """
    ns = _namespace(namespace)
    from .runtime.kvs.replica import replica   # lazy: CLI commands start faster
    rep = replica(flux_handle)
    if rep is not None:
        return rep.lookup(key, ns, flags, rootref)
    payload: dict[str, Any] = {"key": key, "flags": flags}
    if ns:
        payload["namespace"] = ns
    if rootref:
        payload["rootref"] = rootref
    return flux_handle.rpc("kvs.lookup", payload, nodeid=0).get()["val"]


def get_raw(flux_handle, key: str, namespace: str | None = None) -> bytes:
    val = lookup(flux_handle, key, namespace)
    return base64.b64decode(val["data"]) if val["data"] else b""


def get_key_direct(flux_handle, key: str, namespace: str | None = None) -> Any:
    """The decoded value at ``key`` (raises FluxError EISDIR for a directory)."""
    return decode_value(get_raw(flux_handle, key, namespace))


def _found(flux_handle, key: str, namespace: str | None, flags: int) -> bool:
    """True if a lookup with ``flags`` succeeds; False for a missing key or non-directory."""
    try:
        lookup(flux_handle, key, namespace, flags)
        return True
    except FluxError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return False
        raise


def exists(flux_handle, key: str, namespace: str | None = None) -> bool:
    return _found(flux_handle, key, namespace, FLUX_KVS_TREEOBJ)


def isdir(flux_handle, key: str, namespace: str | None = None) -> bool:
    return _found(flux_handle, key, namespace, FLUX_KVS_READDIR)


def listdir(flux_handle, key: str = ".", namespace: str | None = None) -> dict[str, dict]:
    """Entries of the directory at ``key``: name -> tree object."""
    return lookup(flux_handle, key, namespace, FLUX_KVS_READDIR)["data"]


def get_dir(flux_handle, key: str = ".", namespace: str | None = None) -> "KVSDir":
    return KVSDir(flux_handle, key, namespace)


def get(flux_handle, key: str, namespace: str | None = None) -> Any:
    """The value at ``key``, or a :class:`KVSDir` if it is a directory."""
    try:
        return get_key_direct(flux_handle, key, namespace)
    except FluxError as exc:
        if exc.errno == errno.EISDIR:
            return get_dir(flux_handle, key, namespace)
        raise


def readlink(flux_handle, key: str, namespace: str | None = None) -> tuple[str | None, str]:
    """``(namespace or None, target)`` of the symlink at ``key``."""
    obj = lookup(flux_handle, key, namespace, FLUX_KVS_READLINK)
    return obj["data"].get("namespace"), obj["data"]["target"]


# -- transactions ------------------------------------------------------------------
class KVSTxn:
    """A transaction: stage operations, then :meth:`commit` them atomically.

    As a context manager it commits on a clean exit.
    """

    def __init__(self, flux_handle, path: str = "", namespace: str | None = None):
        self.handle = flux_handle
        self.path = path.strip(".")
        self.namespace = namespace
        self.ops: list[dict] = []

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def put(self, key: str, value: Any) -> None:
        self.ops.append({"key": self._key(key), "flags": 0, "dirent": _val(_encode_value(value))})

    def put_raw(self, key: str, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        self.ops.append({"key": self._key(key), "flags": 0, "dirent": _val(raw)})

    def append(self, key: str, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        self.ops.append({"key": self._key(key), "flags": FLUX_KVS_APPEND, "dirent": _val(raw)})

    def put_treeobj(self, key: str, treeobj: dict) -> None:
        self.ops.append({"key": self._key(key), "flags": 0, "dirent": treeobj})

    def put_mkdir(self, key: str) -> None:
        self.ops.append({"key": self._key(key), "flags": 0,
                         "dirent": {"ver": 1, "type": "dir", "data": {}}})

    def put_unlink(self, key: str) -> None:
        self.ops.append({"key": self._key(key), "flags": 0, "dirent": None})

    def put_symlink(self, key: str, target: str, target_namespace: str | None = None) -> None:
        data = {"target": target}
        if target_namespace:
            data["namespace"] = target_namespace
        self.ops.append({"key": self._key(key), "flags": 0,
                         "dirent": {"ver": 1, "type": "symlink", "data": data}})

    def commit_async(self, flags: int = 0):
        payload: dict[str, Any] = {"ops": self.ops, "flags": flags}
        ns = _namespace(self.namespace)
        if ns:
            payload["namespace"] = ns
        self.ops = []
        return self.handle.rpc("kvs.commit", payload, nodeid=0)

    def commit(self, flags: int = 0) -> dict:
        """Commit the staged operations; returns ``{"rootref", "rootseq"}``."""
        if not self.ops:
            return {}
        return self.commit_async(flags).get()

    def __enter__(self) -> "KVSTxn":
        return self

    def __exit__(self, exc_type, *exc: object) -> None:
        if exc_type is None:
            self.commit()


def _txn(flux_handle, namespace: str | None) -> KVSTxn:
    txns = flux_handle.aux.setdefault(_TXN_AUX, {})
    ns = _namespace(namespace)
    if ns not in txns:
        txns[ns] = KVSTxn(flux_handle, "", ns)
    return txns[ns]


def put(flux_handle, key: str, value: Any, namespace: str | None = None) -> None:
    """Stage ``key = value`` (JSON-encoded) in the handle's transaction."""
    _txn(flux_handle, namespace).put(key, value)


def put_mkdir(flux_handle, key: str, namespace: str | None = None) -> None:
    _txn(flux_handle, namespace).put_mkdir(key)


def put_unlink(flux_handle, key: str, namespace: str | None = None) -> None:
    _txn(flux_handle, namespace).put_unlink(key)


def put_symlink(flux_handle, key: str, target: str, namespace: str | None = None) -> None:
    _txn(flux_handle, namespace).put_symlink(key, target)


def commit(flux_handle, flags: int = 0, namespace: str | None = None) -> None:
    """Commit what :func:`put` and friends staged on this handle."""
    txn = _txn(flux_handle, namespace)
    txn.commit(flags)


def dropcache(flux_handle) -> None:
    """Nothing is cached outside rank 0's KVS; kept for flux.kvs compatibility."""


# -- namespaces --------------------------------------------------------------------
def namespace_create(flux_handle, namespace: str, owner: int | None = None, flags: int = 0) -> None:
    flux_handle.rpc("kvs.namespace-create", {"namespace": namespace,
                                             "owner": os.getuid() if owner is None else owner,
                                             "flags": flags}, nodeid=0).get()


def namespace_remove(flux_handle, namespace: str) -> None:
    flux_handle.rpc("kvs.namespace-remove", {"namespace": namespace}, nodeid=0).get()


def namespace_list(flux_handle) -> list[str]:
    return [ns["namespace"] for ns in
            flux_handle.rpc("kvs.namespace-list", {}, nodeid=0).get()["namespaces"]]


def getroot(flux_handle, namespace: str | None = None) -> dict:
    payload = {"namespace": _namespace(namespace)} if _namespace(namespace) else {}
    return flux_handle.rpc("kvs.getroot", payload, nodeid=0).get()


# -- watching ----------------------------------------------------------------------
def watch(flux_handle, key: str, namespace: str | None = None, flags: int = FLUX_KVS_WATCH):
    """Yield the tree object at ``key`` now and after each change (a streaming RPC)."""
    payload: dict[str, Any] = {"key": key, "flags": flags}
    ns = _namespace(namespace)
    if ns:
        payload["namespace"] = ns
    stream_flags = FLAG_STREAMING if flags & (FLUX_KVS_WATCH | FLUX_KVS_WATCH_APPEND) else 0
    rpc = flux_handle.rpc("kvs-watch.lookup", payload, nodeid=0, flags=stream_flags)
    if not stream_flags:
        yield rpc.get()["val"]
        return
    try:
        for resp in rpc:
            yield resp["val"]
    finally:
        if not rpc.done:
            flux_handle.rpc("kvs-watch.cancel", {"matchtag": rpc.matchtag}, nodeid=0)


# -- directories -------------------------------------------------------------------
class KVSDir(MutableMapping):
    """A KVS directory as a mutable mapping; writes are staged until :meth:`commit`."""

    def __init__(self, flux_handle=None, path: str = ".", namespace: str | None = None):
        if flux_handle is None:
            from .runtime.client import Flux
            flux_handle = Flux()
        self.fhdl = flux_handle
        self.path = "." if path in ("", ".") else path.strip(".")
        self.namespace = namespace
        self.pending = KVSTxn(flux_handle, "" if self.path == "." else self.path, namespace)

    def key_at(self, key: str) -> str:
        return key if self.path == "." else f"{self.path}.{key}"

    def _entries(self) -> dict:
        return listdir(self.fhdl, self.path, self.namespace)

    def __getitem__(self, key: str) -> Any:
        try:
            return get(self.fhdl, self.key_at(key), self.namespace)
        except FluxError as exc:
            if exc.errno == errno.ENOENT:
                raise KeyError(key) from None
            raise

    def __setitem__(self, key: str, value: Any) -> None:
        self.pending.put(key, value)

    def __delitem__(self, key: str) -> None:
        self.pending.put_unlink(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries())

    def __len__(self) -> int:
        return len(self._entries())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and exists(self.fhdl, self.key_at(key), self.namespace)

    def mkdir(self, key: str, contents: dict | None = None) -> None:
        self.pending.put_mkdir(key)
        for k, v in (contents or {}).items():
            self.pending.put(f"{key}.{k}", v)

    def commit(self) -> None:
        self.pending.commit()

    def files(self) -> list[str]:
        return [k for k, v in self._entries().items() if v["type"] not in ("dir", "dirref")]

    def directories(self) -> list[str]:
        return [k for k, v in self._entries().items() if v["type"] in ("dir", "dirref")]

    def list_all(self, topdown: bool = False):
        return self.files(), self.directories()

    def __enter__(self) -> "KVSDir":
        return self

    def __exit__(self, exc_type, *exc: object) -> None:
        if exc_type is None:
            self.commit()

    def __repr__(self) -> str:
        return f"KVSDir({self.path!r})"


def walk(directory: str | KVSDir, topdown: bool = False, flux_handle=None,
         namespace: str | None = None):
    """Walk a KVS directory tree like :func:`os.walk`: yield ``(path, dirs, files)``."""
    if isinstance(directory, KVSDir):
        flux_handle, path, namespace = directory.fhdl, directory.path, directory.namespace
    else:
        if flux_handle is None:
            raise ValueError("walk: flux_handle is required when directory is a path")
        path = directory
    d = KVSDir(flux_handle, path, namespace)
    dirs, files = d.directories(), d.files()
    if topdown:
        yield d.path, dirs, files
    for name in dirs:
        yield from walk(KVSDir(flux_handle, d.key_at(name), namespace), topdown)
    if not topdown:
        yield d.path, dirs, files
