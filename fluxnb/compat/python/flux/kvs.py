"""``flux.kvs``: flux-core's KVS API over fluxnb's (:mod:`fluxnb.kvs`).

As in flux-core, ``put()`` and friends stage operations in *one* transaction of
the handle, whatever namespace they will go to; ``commit(namespace=X)`` commits
them to ``X`` (or ``$FLUX_KVS_NAMESPACE``, or the primary namespace).
"""

import errno
import json
import os
from collections import abc
from typing import Any, Mapping

import flux.constants
from flux.future import Future
from flux.rpc import RPC

import fluxnb.kvs as _kvs


def _native(h):
    return getattr(h, "_native", h)


def _decode(data):
    """JSON if it decodes, else the text, else the bytes (flux-core's rule)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    try:
        return json.loads(text)
    except ValueError:
        return text


def _key(key):
    if isinstance(key, bytes):
        key = key.decode("utf-8")
    if not isinstance(key, str):
        raise TypeError(f"key must be a str, not {type(key).__name__}")
    if not key:
        raise OSError(errno.EINVAL, "key must not be empty")
    return key


def get_key_direct(flux_handle, key, namespace=None):
    """The value at ``key``; OSError EISDIR for a directory, ENOENT if missing."""
    val = _kvs.lookup(_native(flux_handle), _key(key), namespace)
    if val.get("type") == "dir" or val.get("type") == "dirref":
        raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
    import base64
    data = base64.b64decode(val["data"]) if val.get("data") else b""
    return _decode(data) if data else None


def exists(flux_handle, key, namespace=None):
    try:
        get_key_direct(flux_handle, key, namespace=namespace)
        return True
    except OSError as err:
        if err.errno == errno.ENOENT:
            return False
        if err.errno == errno.EISDIR:
            return True
        raise


def isdir(flux_handle, key, namespace=None):
    try:
        get_key_direct(flux_handle, key, namespace=namespace)
    except OSError as err:
        if err.errno == errno.ENOENT:
            return False
        if err.errno == errno.EISDIR:
            return True
        raise
    return False


def get_dir(flux_handle, key=".", namespace=None, _kvstxn=None):
    return KVSDir(path=key, flux_handle=flux_handle, namespace=namespace, _kvstxn=_kvstxn)


def get(flux_handle, key, namespace=None, _kvstxn=None):
    """The value at ``key`` (JSON-decoded, else str, else bytes), or a KVSDir."""
    try:
        return get_key_direct(flux_handle, key, namespace=namespace)
    except OSError as err:
        if err.errno != errno.EISDIR:
            raise
    return get_dir(flux_handle, key, namespace=namespace, _kvstxn=_kvstxn)


# -- the handle's transaction -------------------------------------------------------
class _Ops(list):
    """Staged operations (RFC 11 txn ops), in the order made."""


def _get_kvstxn(flux_handle, _kvstxn):
    if _kvstxn is None:
        txn = getattr(flux_handle, "aux_txn", None)
        if txn is None:
            txn = _Ops()
            flux_handle.aux_txn = txn
        return txn
    if isinstance(_kvstxn, KVSTxn):
        return _kvstxn.txn
    return _kvstxn


def _stage(txn, op):
    tmp = _kvs.KVSTxn(None)
    getattr(tmp, op[0])(*op[1:])
    txn.extend(tmp.ops)


def put(flux_handle, key, value, _kvstxn=None, raw=False):
    """Stage ``key = value`` (JSON; with ``raw=True`` the bytes/str as they are)."""
    txn = _get_kvstxn(flux_handle, _kvstxn)
    key = _key(key)
    if raw:
        if not isinstance(value, (bytes, bytearray)):
            value = value.encode("utf-8")  # AttributeError for a non-str, as flux-core
        _stage(txn, ("put_raw", key, bytes(value)))
        return
    if isinstance(value, bytes):
        _stage(txn, ("put_raw", key, value))
        return
    try:
        data = json.dumps(value).encode("utf-8")
    except TypeError:
        raise TypeError(f"put: value of type {type(value).__name__} is not JSON serializable") from None
    _stage(txn, ("put_raw", key, data))


def put_mkdir(flux_handle, key, _kvstxn=None):
    _stage(_get_kvstxn(flux_handle, _kvstxn), ("put_mkdir", _key(key)))


def put_unlink(flux_handle, key, _kvstxn=None):
    _stage(_get_kvstxn(flux_handle, _kvstxn), ("put_unlink", _key(key)))


def put_symlink(flux_handle, key, target, _kvstxn=None):
    _stage(_get_kvstxn(flux_handle, _kvstxn), ("put_symlink", _key(key), _key(target)))


def _commit_rpc(flux_handle, ops, flags, namespace):
    payload = {"ops": list(ops), "flags": flags}
    ns = namespace or os.environ.get("FLUX_KVS_NAMESPACE")
    if ns:
        payload["namespace"] = ns
    return flux_handle.rpc("kvs.commit", payload, nodeid=0)


def commit(flux_handle, flags: int = 0, namespace=None, _kvstxn=None):
    """Commit what was staged (the handle's transaction, or ``_kvstxn``) to ``namespace``."""
    if _kvstxn is None:
        txn = getattr(flux_handle, "aux_txn", None)
        if txn is None:
            return
        flux_handle.aux_txn = None
        _commit_rpc(flux_handle, txn, flags, namespace).get()
    else:
        _commit_rpc(flux_handle, _get_kvstxn(flux_handle, _kvstxn), flags, namespace).get()


def commit_async(flux_handle, flags: int = 0, namespace=None, _kvstxn=None):
    """As :func:`commit`, returning a Future fulfilled when the commit is done."""
    if _kvstxn is None:
        txn = getattr(flux_handle, "aux_txn", None) or _Ops()
        flux_handle.aux_txn = None
    else:
        txn = _get_kvstxn(flux_handle, _kvstxn)
    return Future(_commit_rpc(flux_handle, txn, flags, namespace))


def namespace_create(flux_handle, namespace, owner=os.getuid(), flags: int = 0):
    _kvs.namespace_create(_native(flux_handle), namespace, owner, flags)


def namespace_remove(flux_handle, namespace):
    _kvs.namespace_remove(_native(flux_handle), namespace)


def namespace_list(flux_handle):
    return _kvs.namespace_list(_native(flux_handle))


class KVSTxn:
    """A transaction: stage ``put``/``mkdir``/``unlink``/``symlink`` under ``path``,
    then ``commit()`` (on exit, as a context manager)."""

    def __init__(self, flux_handle=None, path=".", namespace=None):
        self.fhdl = flux_handle
        self.path = path
        self._path = "" if not path or path == "." else (path if path[-1] == "." else path + ".")
        self.namespace = namespace
        self.txn = _Ops()

    def commit(self, flags=0):
        if not self.txn:
            return
        try:
            commit(self.fhdl, flags=flags, namespace=self.namespace, _kvstxn=self.txn)
        finally:
            self.clear()

    def commit_async(self, flags=0):
        future = commit_async(self.fhdl, flags=flags, namespace=self.namespace,
                              _kvstxn=_Ops(self.txn))
        self.clear()
        return future

    def put(self, key, value, raw=False):
        put(self.fhdl, self._path + _key(key), value, _kvstxn=self.txn, raw=raw)

    def mkdir(self, key):
        put_mkdir(self.fhdl, self._path + _key(key), _kvstxn=self.txn)

    def unlink(self, key):
        put_unlink(self.fhdl, self._path + _key(key), _kvstxn=self.txn)

    def symlink(self, key, target):
        put_symlink(self.fhdl, self._path + _key(key), target, _kvstxn=self.txn)

    def clear(self):
        del self.txn[:]

    def __enter__(self):
        return self

    def __exit__(self, type_arg, value, tb):
        self.commit()
        return False


class KVSDir(abc.MutableMapping):
    """A KVS directory as a mapping (read when made); writes are staged in a
    transaction shared with its sub-directories, until ``commit()``."""

    def __init__(self, flux_handle=None, path=".", handle=None, namespace=None, _kvstxn=None):
        if flux_handle is None:
            raise ValueError("flux_handle must be a valid Flux object")
        self.fhdl = flux_handle
        self.path = path
        self._path = "" if not path or path == "." else (path if path[-1] == "." else path + ".")
        self.namespace = namespace
        val = _kvs.lookup(_native(flux_handle), _key(path), namespace,
                          flux.constants.FLUX_KVS_READDIR)
        self._entries = dict(val.get("data") or {})
        self.kvstxn = _kvstxn if _kvstxn else KVSTxn(self.fhdl, ".", namespace=self.namespace)

    def commit(self, flags=0):
        try:
            self.kvstxn.commit(flags=flags)
        finally:
            self.kvstxn.clear()

    def commit_async(self, flags=0):
        return self.kvstxn.commit_async(flags=flags)

    def key_at(self, key):
        return self._path + key if self._path else key

    def exists(self, name):
        return exists(self.fhdl, self._path + name, namespace=self.namespace)

    def __getitem__(self, key):
        try:
            return get(self.fhdl, self.key_at(key), namespace=self.namespace, _kvstxn=self.kvstxn)
        except OSError:
            raise KeyError(f"{key} not found under directory {self.key_at('')}") from None

    def __setitem__(self, key, value):
        self.kvstxn.put(self._path + key, value)

    def __delitem__(self, key):
        self.kvstxn.unlink(self._path + key)

    def __iter__(self):
        return iter(list(self._entries))

    def __len__(self):
        return len(self._entries)

    def _isdir(self, name):
        return self._entries.get(name, {}).get("type") in ("dir", "dirref")

    def fill(self, contents: Mapping[str, Any]):
        if contents is None:
            raise ValueError("contents must be non-None")
        try:
            for key, val in contents.items():
                self[key] = val
        finally:
            self.commit()

    def mkdir(self, key: str, contents: Mapping[str, Any] = None):
        self.kvstxn.mkdir(self._path + key)
        self.commit()
        if contents is not None:
            KVSDir(self.fhdl, self.key_at(key), namespace=self.namespace).fill(contents)

    def files(self):
        for k in self:
            if not self._isdir(k):
                yield k

    def directories(self):
        for k in self:
            if self._isdir(k):
                yield k

    def list_all(self):
        files, dirs = [], []
        for k in self:
            (dirs if self._isdir(k) else files).append(k)
        return files, dirs

    def __enter__(self):
        return self

    def __exit__(self, type_arg, value, tb):
        self.commit()
        return False

    def __repr__(self):
        return f"KVSDir({self.path!r})"


def join(*args):
    return ".".join([a for a in args if len(a) > 0])


def _inner_walk(kvsdir, curr_dir, topdown=False, namespace=None):
    if topdown:
        yield (curr_dir, kvsdir.directories(), kvsdir.files())
    for directory in kvsdir.directories():
        path = join(curr_dir, directory)
        key = kvsdir.key_at(directory)
        yield from _inner_walk(get_dir(kvsdir.fhdl, key, namespace=namespace), path, topdown,
                               namespace=namespace)
    if not topdown:
        yield (curr_dir, kvsdir.directories(), kvsdir.files())


def walk(directory, topdown=False, flux_handle=None, namespace=None):
    """Walk a KVS directory like :func:`os.walk`: ``(path, dirs, files)``."""
    if not isinstance(directory, KVSDir):
        if flux_handle is None:
            raise ValueError("If directory is a key, flux_handle must be specified")
        directory = KVSDir(flux_handle, directory, namespace=namespace)
    return _inner_walk(directory, "", topdown, namespace=namespace)


class WatchImplementation(Future):
    """A streaming future of successive values; subclasses give ``watch_get``/``watch_cancel``."""

    def __init__(self, future_handle):
        super().__init__(future_handle)
        self.needs_cancel = True

    def watch_get(self, future):
        raise NotImplementedError

    def watch_cancel(self, future):
        raise NotImplementedError

    def get(self, autoreset=True):
        """The next value, or None once the stream has ended."""
        try:
            self.wait_for()
            ret = self.watch_get(self._root())
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                self.needs_cancel = False
                return None
            raise
        if autoreset is True:
            self.reset()
        return ret

    def cancel(self, stop=False):
        self.watch_cancel(self._root())
        self.needs_cancel = False
        if stop:
            self.stop()


class KVSWatchFuture(WatchImplementation):
    """A future returned from :func:`kvs_watch_async`."""

    def watch_get(self, future):
        import base64
        val = future.get()["val"]
        data = base64.b64decode(val["data"]) if val.get("data") else b""
        return _decode(data) if data else None

    def watch_cancel(self, future):
        h = future.get_flux()
        if not future.done:
            h.rpc("kvs-watch.cancel", {"matchtag": future.matchtag}, nodeid=0,
                  flags=flux.constants.FLUX_RPC_NORESPONSE)


def kvs_watch_async(flux_handle, key, namespace=None, waitcreate=False, uniq=False, full=False):
    """Watch ``key``: a KVSWatchFuture whose ``get()`` gives each new value."""
    flags = flux.constants.FLUX_KVS_WATCH
    if waitcreate:
        flags |= flux.constants.FLUX_KVS_WAITCREATE
    if uniq:
        flags |= flux.constants.FLUX_KVS_WATCH_UNIQ
    if full:
        flags |= flux.constants.FLUX_KVS_WATCH_FULL
    payload = {"key": _key(key), "flags": flags}
    ns = namespace or os.environ.get("FLUX_KVS_NAMESPACE")
    if ns:
        payload["namespace"] = ns
    return KVSWatchFuture(RPC(flux_handle, "kvs-watch.lookup", payload, 0,
                              flux.constants.FLUX_RPC_STREAMING))


def kvs_checkpoint_lookup(flux_handle, cache_bypass=False):
    """The KVS checkpoint(s) of the primary namespace (a list)."""
    topic = "content-backing.checkpoint-get" if cache_bypass else "content.checkpoint-get"
    a = RPC(flux_handle, topic).get()["value"]
    return [a] if isinstance(a, dict) else a


__all__ = ["get_key_direct", "exists", "isdir", "get_dir", "get", "put", "put_mkdir",
           "put_unlink", "put_symlink", "commit", "commit_async", "namespace_create",
           "namespace_remove", "namespace_list", "KVSTxn", "KVSDir", "join", "walk",
           "WatchImplementation", "KVSWatchFuture", "kvs_watch_async", "kvs_checkpoint_lookup"]
