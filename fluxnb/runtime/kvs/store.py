"""The KVS engine: namespaces of RFC 11 hash trees over a content store.

`KVS` is the synchronous core of the ``kvs`` service: no sockets, no loop. Each
namespace is a root blobref plus a sequence number. `KVS.commit` applies a
transaction atomically, copying only the directories on the paths it touches
(copy-on-write), so every earlier root stays a consistent snapshot that
`KVS.lookup` can read with ``rootref=``.

Transactions use flux-core's wire form, a list of ``{"key", "flags", "dirent"}``
operations where ``dirent`` is an RFC 11 tree object (or null to unlink) and
``flags`` may hold `FLUX_KVS_APPEND`; `KVSTxn` builds them as flux's ``KVSTxn``
does (put, put_raw, mkdir, unlink, symlink, append).

Semantics follow flux-core's kvs module:

- keys are dotted paths, normalized by collapsing repeated dots and dropping a
  leading or trailing one (``"a..b."`` is ``"a.b"``); ``"."`` is the root;
- a commit creates missing parent directories and, as flux-core does, replaces
  a value found where a parent directory is needed; unlinking a missing key
  succeeds; a parent that is a symlink is followed, within the namespace only;
- values whose base64 exceeds 72 characters are stored as ``valref`` blobs, and
  appending adds one blobref, so an eventlog append costs what it appends;
- a failed operation fails the whole commit, naming the op, and leaves the
  namespace as it was;
- lookups follow symlinks (also into other namespaces) up to 10 deep (ELOOP).

Examples
--------
>>> kvs = KVS()
>>> rootref, seq = kvs.commit("primary", KVSTxn().put("a.b", {"x": 1}))
>>> kvs.get("primary", "a.b"), seq
({'x': 1}, 1)
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Callable

from fluxnb.runtime.kvs import treeobj as tree
from fluxnb.runtime.kvs.content import BlobNotFoundError, ContentStore

__all__ = [
    "FLUX_KVS_APPEND",
    "FLUX_KVS_READDIR",
    "FLUX_KVS_READLINK",
    "FLUX_KVS_TREEOBJ",
    "KVS",
    "KVS_PRIMARY_NAMESPACE",
    "CommitResult",
    "KVSCommitError",
    "KVSError",
    "KVSLookupError",
    "KVSNamespaceError",
    "KVSTxn",
    "key_affected",
    "normalize_key",
]

KVS_PRIMARY_NAMESPACE = "primary"
FLUX_KVS_READDIR = 1
FLUX_KVS_READLINK = 2
FLUX_KVS_TREEOBJ = 16
FLUX_KVS_APPEND = 32

#: Symlinks followed by one lookup before ELOOP (flux-core's limit).
SYMLINK_CYCLE_LIMIT = 10
#: A val whose base64 text is longer than this is stored as a valref
#: (flux-core uses BLOBREF_MAX_STRING_SIZE, 72).
VAL_INLINE_MAX = 72
#: Decoded directories kept in memory, by blobref. Every commit adds a version of each
#: directory on its paths; old versions are dropped oldest first past this many.
DIR_CACHE_LIMIT = 3_000

_quote = json.encoder.encode_basestring  # type: ignore[attr-defined]
_HASHERS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}


# --- errors -----------------------------------------------------------------


class KVSError(Exception):
    """A KVS request failed; ``errno`` and the message travel on the wire."""

    def __init__(self, errnum: int, message: str) -> None:
        super().__init__(message)
        self.errno = errnum
        self.strerror = message


class KVSLookupError(KVSError):
    """A lookup failed (ENOENT, ENOTDIR, EISDIR, ELOOP, EINVAL, ENOTSUP)."""


class KVSCommitError(KVSError):
    """A commit failed; nothing in it was applied.

    Attributes
    ----------
    index : int or None
        Index of the failing operation in the transaction.
    key : str or None
        That operation's key.
    """

    def __init__(self, errnum: int, message: str, index: int | None = None,
                 key: str | None = None) -> None:
        super().__init__(errnum, message)
        self.index = index
        self.key = key


class KVSNamespaceError(KVSError):
    """A namespace does not exist (ENOTSUP), already exists (EEXIST), etc."""


def _err(cls: type[KVSError], errnum: int, what: str) -> KVSError:
    return cls(errnum, f"{what}: {os.strerror(errnum)}")


# --- keys -------------------------------------------------------------------


def normalize_key(key: str) -> str:
    """Normalize a dotted key as flux-core does.

    Repeated dots collapse to one; one leading and one trailing dot are
    dropped. ``"."`` (the root) is returned as is.

    Examples
    --------
    >>> normalize_key("..job..0000.eventlog.")
    'job.0000.eventlog'
    >>> normalize_key(".")
    '.'
    """
    if key and key[0] != "." and key[-1] != "." and ".." not in key:
        return key
    while ".." in key:
        key = key.replace("..", ".")
    if len(key) > 1 and key[0] == ".":
        key = key[1:]
    if len(key) > 1 and key[-1] == ".":
        key = key[:-1]
    return key


def key_affected(changed: Iterable[str], key: str) -> bool:
    """Return True if a commit that changed ``changed`` keys may change ``key``.

    True when ``key`` is one of them, lies under one (a replaced directory),
    or is a directory above one. Keys reached through symlinks are not
    tracked: a watcher whose key crosses a symlink should look it up again on
    every commit.
    """
    key = normalize_key(key)
    if key == ".":
        return True
    for c in changed:
        if c == key or key.startswith(c + ".") or c.startswith(key + "."):
            return True
    return False


# --- transactions -----------------------------------------------------------


class KVSTxn:
    """Builder of a KVS transaction, in flux-core's op wire form.

    Each method appends one op and returns the transaction, so calls chain.

    Examples
    --------
    >>> txn = KVSTxn().mkdir("d").put("d.x", 42).unlink("old")
    >>> [op["key"] for op in txn.ops]
    ['d', 'd.x', 'old']
    """

    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []

    def put_treeobj(self, key: str, obj: dict[str, Any], flags: int = 0) -> KVSTxn:
        """Set ``key`` to tree object ``obj``."""
        self.ops.append({"key": key, "flags": flags, "dirent": obj})
        return self

    def put_raw(self, key: str, data: bytes) -> KVSTxn:
        """Set ``key`` to the opaque bytes ``data``."""
        return self.put_treeobj(key, tree.create_val(data))

    def put(self, key: str, value: Any) -> KVSTxn:
        """Set ``key`` to the JSON encoding of ``value`` (like flux.kvs.put)."""
        return self.put_raw(key, json.dumps(value, separators=(",", ":")).encode())

    def mkdir(self, key: str) -> KVSTxn:
        """Make ``key`` an empty directory (replacing what was there)."""
        return self.put_treeobj(key, tree.create_dir())

    def unlink(self, key: str) -> KVSTxn:
        """Remove ``key`` (and everything under it); a missing key is fine."""
        self.ops.append({"key": key, "flags": 0, "dirent": None})
        return self

    def symlink(self, key: str, target: str, namespace: str | None = None) -> KVSTxn:
        """Make ``key`` a symlink to ``target``, optionally in ``namespace``."""
        return self.put_treeobj(key, tree.create_symlink(target, namespace))

    def append(self, key: str, data: bytes | str) -> KVSTxn:
        """Append ``data`` to the value at ``key`` (created if missing)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        return self.put_treeobj(key, tree.create_val(data), FLUX_KVS_APPEND)

    def __len__(self) -> int:
        return len(self.ops)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.ops)


@dataclass(frozen=True, slots=True)
class CommitResult:
    """The outcome of a commit; unpacks as ``rootref, rootseq``.

    Attributes
    ----------
    namespace : str
    rootref : str
        Blobref of the new root directory.
    rootseq : int
        The namespace's new sequence number.
    keys : frozenset of str
        Normalized keys the commit wrote or unlinked (after resolving symlinked
        parents), for driving watchers; see `key_affected`.
    """

    namespace: str
    rootref: str
    rootseq: int
    keys: frozenset[str]

    def __iter__(self) -> Iterator[Any]:
        return iter((self.rootref, self.rootseq))


# --- engine -----------------------------------------------------------------


class _Namespace:
    __slots__ = ("name", "owner", "flags", "rootref", "seq")

    def __init__(self, name: str, owner: int, flags: int, rootref: str, seq: int) -> None:
        self.name, self.owner, self.flags = name, owner, flags
        self.rootref, self.seq = rootref, seq

    def info(self) -> dict[str, Any]:
        return {"namespace": self.name, "owner": self.owner, "flags": self.flags,
                "rootref": self.rootref, "rootseq": self.seq}


class _Dir:
    """A directory being rewritten by a commit (never shared, never cached)."""

    __slots__ = ("entries", "pieces", "kids")

    def __init__(self, entries: dict[str, Any], pieces: dict[str, str]) -> None:
        self.entries = entries  # name -> treeobj dict, or _Dir for kids
        self.pieces = pieces    # name -> encoded '"name":treeobj' (not for kids)
        self.kids: set[str] = set()

    def set(self, name: str, obj: dict[str, Any]) -> None:
        self.entries[name] = obj
        self.pieces[name] = tree.dir_piece(name, obj)
        self.kids.discard(name)

    def set_kid(self, name: str, sub: _Dir) -> None:
        # pieces[name] is left stale: _store_dir rewrites every kid's piece
        self.entries[name] = sub
        self.kids.add(name)

    def delete(self, name: str) -> None:
        if self.entries.pop(name, None) is not None:
            self.pieces.pop(name, None)
            self.kids.discard(name)


class _OpError(Exception):
    def __init__(self, errnum: int, reason: str) -> None:
        super().__init__(reason)
        self.errnum = errnum


class KVS:
    """The KVS engine: namespaces, atomic commits, snapshot lookups.

    Parameters
    ----------
    statedir : str or os.PathLike, optional
        Back the content store with ``<statedir>/content.sqlite`` and restore
        every namespace checkpointed there.
    content : ContentStore, optional
        Use this store instead of opening one (``statedir`` is then ignored).
    hash_name : {"sha1", "sha256"}
        Blobref hash for a store opened here.
    autoflush : bool
        Flush the content store after every commit and namespace change. With
        False the caller batches, calling `flush` itself.
    owner : int, optional
        Owner userid of the primary namespace (default: this process's uid).

    Notes
    -----
    Not thread-safe: drive it from one thread (the broker's loop).
    """

    def __init__(self, statedir: str | os.PathLike[str] | None = None, *,
                 content: ContentStore | None = None, hash_name: str = "sha1",
                 autoflush: bool = True, owner: int | None = None) -> None:
        self._own_content = content is None
        self.content = content if content is not None else ContentStore(
            statedir, hash_name=hash_name)
        self.autoflush = autoflush
        self._hash = _HASHERS[self.content.hash_name]
        self._hash_prefix = self.content.hash_name + "-"
        # blobref -> (entries, pieces or None); tuples, so the GC can untrack them
        self._dirs: dict[str, tuple[dict[str, Any], dict[str, str] | None]] = {}
        self._namespaces: dict[str, _Namespace] = {}
        #: called with a namespace's name whenever its root changes (the root board)
        self.on_change: Callable[[str], None] | None = None
        blobs: dict[str, bytes] = {}
        self.empty_dirref = self._store_dir(_Dir({}, {}), blobs)
        self.content.store_blobs(blobs)
        for cp in self.content.checkpoint_list():
            self._namespaces[cp["namespace"]] = _Namespace(
                cp["namespace"], cp["owner"], cp["flags"], cp["rootref"], cp["sequence"])
        if KVS_PRIMARY_NAMESPACE not in self._namespaces:
            self.namespace_create(KVS_PRIMARY_NAMESPACE,
                                  os.getuid() if owner is None else owner)

    # --- namespaces ---------------------------------------------------------

    def _ns(self, name: str, cls: type[KVSError] = KVSNamespaceError) -> _Namespace:
        ns = self._namespaces.get(name)
        if ns is None:
            raise cls(errno.ENOTSUP, f"namespace {name!r} does not exist")
        return ns

    def namespace_create(self, name: str, owner: int | None = None, flags: int = 0,
                         rootref: str | None = None) -> dict[str, Any]:
        """Create namespace ``name``, empty or rooted at ``rootref``.

        Returns its `getroot` dict. Raises `KVSNamespaceError` (EEXIST) if it
        exists, (EINVAL) if the name is empty or ``rootref`` is not a stored
        directory.
        """
        if not isinstance(name, str) or not name or "/" in name:
            raise KVSNamespaceError(errno.EINVAL, f"invalid namespace name {name!r}")
        if name in self._namespaces:
            raise KVSNamespaceError(errno.EEXIST, f"namespace {name!r} already exists")
        if rootref is None:
            rootref = self.empty_dirref
        else:
            try:
                self._dir_entries(rootref)
            except (KVSError, BlobNotFoundError, ValueError) as exc:
                raise KVSNamespaceError(
                    errno.EINVAL, f"namespace {name!r}: bad rootref: {exc}") from None
        ns = _Namespace(name, os.getuid() if owner is None else int(owner), flags, rootref, 0)
        self._namespaces[name] = ns
        self._checkpoint(ns)
        self._changed(name)
        return ns.info()

    def namespace_remove(self, name: str) -> None:
        """Remove namespace ``name`` (the primary namespace cannot be removed)."""
        if name == KVS_PRIMARY_NAMESPACE:
            raise KVSNamespaceError(errno.EINVAL, "the primary namespace cannot be removed")
        self._ns(name)
        del self._namespaces[name]
        self._changed(name)
        self.content.checkpoint_remove(name)
        if self.autoflush:
            self.content.flush()

    def _changed(self, name: str) -> None:
        if self.on_change is not None:
            self.on_change(name)

    def namespace_list(self) -> list[dict[str, Any]]:
        """Return ``[{"namespace", "owner", "flags", "rootref", "rootseq"}, ...]``."""
        return [self._namespaces[n].info() for n in sorted(self._namespaces)]

    def namespace_exists(self, name: str) -> bool:
        """Return True if namespace ``name`` exists."""
        return name in self._namespaces

    def getroot(self, namespace: str = KVS_PRIMARY_NAMESPACE) -> dict[str, Any]:
        """Return ``{"namespace", "rootref", "rootseq", "owner", "flags"}``."""
        return self._ns(namespace).info()

    def _checkpoint(self, ns: _Namespace) -> None:
        self.content.checkpoint_put(ns.name, ns.rootref, ns.seq, ns.owner, ns.flags)
        if self.autoflush:
            self.content.flush()

    def flush(self) -> int:
        """Write pending blobs and checkpoints to the backing file, if any."""
        return self.content.flush()

    def close(self) -> None:
        """Flush and, if this KVS opened its content store, close it."""
        if self._own_content:
            self.content.close()
        else:
            self.content.flush()

    def __enter__(self) -> KVS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- directory cache ----------------------------------------------------

    def _dir_entries(self, ref: str) -> dict[str, Any]:
        cached = self._dirs.get(ref)
        if cached is not None:
            return cached[0]
        try:
            obj = tree.decode(self.content.load(ref), f"dir {ref}")
        except tree.TreeobjError as exc:
            raise KVSError(errno.EPROTO, str(exc)) from None
        if obj["type"] != "dir":
            raise KVSError(errno.EPROTO, f"{ref} is a {obj['type']}, not a dir")
        if len(self._dirs) >= DIR_CACHE_LIMIT:
            self._trim_dirs()
        entries = {name: _internal(e) for name, e in obj["data"].items()}
        self._dirs[ref] = (entries, None)
        return entries

    def _trim_dirs(self) -> None:
        """Drop a tenth of the cached dirs at once (trimming is amortized): the newest
        of those past the hot newest third (the current roots' paths, running jobs'
        dirs), not the oldest.

        The dirs no commit has rewritten for a while are, under a queue of jobs, those
        of the jobs queued first, which the scheduler starts first. Dropped oldest
        first, a queue longer than the cache had none of its dirs cached when its turn
        came, and was read back from the content store a dir at a time (1.1 reads a
        job with 2,000 jobs queued, 1.4 with 10,000, each waiting for the background
        flush's statement under way). Kept, the oldest are there when they are needed,
        and leave (rewritten, they are the newest) making room.
        """
        dirs = self._dirs
        n = len(dirs) - DIR_CACHE_LIMIT * 9 // 10
        if n <= 0:
            return
        stop = len(dirs) - DIR_CACHE_LIMIT // 3
        for old in list(itertools.islice(dirs, max(0, stop - n), stop)):
            del dirs[old]

    def _dir_take(self, ref: str, cached: tuple | None = None) -> _Dir:
        """A directory to rewrite in a commit, taken out of the cache.

        The commit replaces this version of it with a new one (cached when stored),
        so the old version leaves the cache rather than pushing current ones out:
        the cache then holds mostly the dirs of the current roots, and a commit finds
        the dirs it rewrites there without copying them (a miss decodes the blob).
        ``cached``: its cache entry, when the caller has taken it out already.
        """
        if cached is None:
            cached = self._dirs.pop(ref, None)
        if cached is None:
            self._dir_entries(ref)
            cached = self._dirs.pop(ref)
        entries, pieces = cached
        if pieces is None:
            piece = tree.dir_piece
            pieces = {name: piece(name, e) for name, e in entries.items()}
        return _Dir(entries, pieces)

    def _uncache_tree(self, ref: str) -> None:
        """Drop an unlinked directory, and what of its tree is cached, from the cache.

        No root holds it any more (an old root's lookup finds it in the content
        store), so it would only wait for the trim, pushing current dirs out.
        """
        todo = [ref]
        dirs = self._dirs
        while todo:
            cached = dirs.pop(todo.pop(), None)
            if cached is not None:
                todo.extend(e["data"][0] for e in cached[0].values()
                            if type(e) is dict and e.get("type") == "dirref")

    def _uncache_entry(self, e: Any) -> None:
        """An unlinked entry's directories leave the cache: a dirref's tree
        (:meth:`_uncache_tree`), or, for a directory this commit has taken out of the
        cache already, what of its tree is still cached. (A purge unlinks the directory
        above a batch of jobs after their own, taking it out first; the dirs of the jobs
        still in it were left behind, unreachable, a third of a busy cache.)"""
        if type(e) is _Dir:
            for sub in e.entries.values():
                self._uncache_entry(sub)
        elif type(e) is dict and e.get("type") == "dirref":
            self._uncache_tree(e["data"][0])

    def _store_dir(self, d: _Dir, blobs: dict[str, bytes]) -> str:
        """Encode ``d`` (and its rewritten kids, depth first); return its blobref."""
        entries, pieces = d.entries, d.pieces
        for name in d.kids:
            ref = self._store_dir(entries[name], blobs)
            entries[name] = {"ver": 1, "type": "dirref", "data": (ref,)}
            pieces[name] = _quote(name) + ':{"data":["' + ref + '"],"type":"dirref","ver":1}'
        data = tree.encode_dir_pieces(pieces)
        ref = self._hash_prefix + self._hash(data).hexdigest()
        blobs[ref] = data
        if ref not in self._dirs:
            self._dirs[ref] = (entries, pieces)
        return ref

    def _store_raw(self, data: bytes, blobs: dict[str, bytes]) -> str:
        ref = self._hash_prefix + self._hash(data).hexdigest()
        blobs[ref] = data
        return ref

    # --- commit -------------------------------------------------------------

    def commit(self, namespace: str, ops: KVSTxn | Iterable[dict[str, Any]]) -> CommitResult:
        """Apply ``ops`` to ``namespace`` atomically.

        Parameters
        ----------
        namespace : str
        ops : KVSTxn or iterable of dict
            ``{"key": str, "flags": int, "dirent": treeobj or None}`` ops.

        Returns
        -------
        CommitResult
            Unpacks as ``(rootref, rootseq)``; ``.keys`` lists changed keys.

        Raises
        ------
        KVSCommitError
            If any op is bad; its message names the op index and key, and the
            namespace is left unchanged.
        KVSNamespaceError
            If ``namespace`` does not exist (ENOTSUP).
        """
        ns = self._ns(namespace)
        root = self._dir_take(ns.rootref)
        blobs: dict[str, bytes] = {}
        keys: set[str] = set()
        for i, op in enumerate(ops):
            try:
                key, flags, dirent = op["key"], op.get("flags", 0), op["dirent"]
            except (TypeError, KeyError, AttributeError):
                raise KVSCommitError(
                    errno.EPROTO, f"ops[{i}]: malformed op {op!r}: expected "
                    "{'key': str, 'flags': int, 'dirent': treeobj or null}", i) from None
            try:
                if not isinstance(key, str):
                    raise _OpError(errno.EINVAL, f"key must be a string, not {key!r}")
                nkey = normalize_key(key)
                if nkey == "" or nkey == ".":
                    raise _OpError(errno.EINVAL, "a key must name an entry below the root")
                item = self._import_dirent(dirent, flags, blobs)
                self._link(ns.name, root, nkey, item, flags, blobs, keys, 0)
            except _OpError as exc:
                raise KVSCommitError(
                    exc.errnum, f"ops[{i}] ({_op_name(dirent, flags)} {key!r}): {exc} "
                    f"({os.strerror(exc.errnum)})", i, key) from None
        rootref = self._store_dir(root, blobs)
        self.content.store_blobs(blobs)
        if len(self._dirs) > DIR_CACHE_LIMIT:
            self._trim_dirs()
        old = ns.rootref, ns.seq
        ns.rootref = rootref
        ns.seq += 1
        try:
            self._checkpoint(ns)
        except OSError as exc:  # the backing file could not take it (ENOSPC...)
            ns.rootref, ns.seq = old
            self.content.checkpoint_put(ns.name, ns.rootref, ns.seq, ns.owner, ns.flags)
            raise KVSCommitError(exc.errno or errno.EIO, exc.strerror or str(exc)) from None
        self._changed(ns.name)
        return CommitResult(ns.name, rootref, ns.seq, frozenset(keys))

    def _import_dirent(self, dirent: Any, flags: int, blobs: dict[str, bytes]) -> Any:
        """Validate an op's dirent; return it with large vals as valrefs and
        dirs as `_Dir` trees ready to store."""
        if dirent is None:
            if flags & FLUX_KVS_APPEND:
                raise _OpError(errno.EINVAL, "append needs a val, not null")
            return None
        if type(dirent) is dict and dirent.get("type") == "val" and len(dirent) == 3:
            data = dirent["data"]
            if not isinstance(data, str) or dirent.get("ver") != 1:
                raise _OpError(errno.EINVAL, "malformed val tree object")
            try:
                raw = binascii.a2b_base64(data, strict_mode=True)  # validates, in C
            except (binascii.Error, ValueError):
                raise _OpError(errno.EINVAL, "val data is not valid base64") from None
            if flags & FLUX_KVS_APPEND:
                return raw  # bytes to append; placed by _append
            if len(data) > VAL_INLINE_MAX:
                return {"ver": 1, "type": "valref", "data": (self._store_raw(raw, blobs),)}
            return dirent
        try:
            tree.validate(dirent, "dirent")
        except tree.TreeobjError as exc:
            raise _OpError(errno.EINVAL, str(exc)) from None
        if flags & FLUX_KVS_APPEND:
            raise _OpError(errno.EPROTO, "append needs a val dirent")
        kind = dirent["type"]
        if kind == "val":  # has optional members such as "size"
            return self._import_dirent({k: dirent[k] for k in ("ver", "type", "data")},
                                       0, blobs)
        if kind == "valref" or kind == "dirref":
            return _internal(dirent)
        if kind == "dir":
            d = _Dir({}, {})
            for name, entry in dirent["data"].items():
                sub = self._import_dirent(entry, 0, blobs)
                d.set_kid(name, sub) if isinstance(sub, _Dir) else d.set(name, sub)
            return d
        return dirent

    def _link(self, nsname: str, root: _Dir, key: str, dirent: Any, flags: int,
              blobs: dict[str, bytes], keys: set[str], depth: int) -> None:
        comps = key.split(".")
        d = root
        dirs = self._dirs
        for i in range(len(comps) - 1):
            name = comps[i]
            e = d.entries.get(name)
            if type(e) is _Dir:
                d = e
                continue
            kind = e["type"] if e is not None else None
            if kind == "dirref":
                cached = dirs.pop(e["data"][0], None)
                if cached is not None and cached[1] is not None:  # hot path, inlined
                    sub = _Dir(cached[0], cached[1])
                else:  # not cached, or cached without its pieces
                    sub = self._dir_take(e["data"][0], cached)
            elif kind == "dir":  # inline dir in a root made elsewhere
                sub = self._import_dirent(e, 0, blobs)
            elif kind == "symlink":
                target = e["data"]
                tns = target.get("namespace")
                here = ".".join(comps[: i + 1])
                if tns is not None and tns != nsname:
                    raise _OpError(errno.EINVAL, f"{here} is a symlink into namespace "
                                   f"{tns!r}; a commit cannot cross namespaces")
                if depth >= SYMLINK_CYCLE_LIMIT:
                    raise _OpError(errno.ELOOP, f"too many symlinks at {here}")
                rest = ".".join(comps[i + 1:])
                tkey = normalize_key(target["target"] + "." + rest)
                return self._link(nsname, root, tkey, dirent, flags, blobs, keys, depth + 1)
            elif dirent is None:
                return  # unlinking below a missing key or a value: nothing to do
            else:  # missing, or a value: flux-core makes (or replaces with) a dir
                sub = _Dir({}, {})
            d.set_kid(name, sub)
            d = sub
        name = comps[-1]
        keys.add(key)
        if dirent is None:
            self._uncache_entry(d.entries.get(name))  # a purged job's directory
            d.delete(name)
        elif flags & FLUX_KVS_APPEND:
            self._append(d, name, dirent, blobs)
        elif isinstance(dirent, _Dir):
            d.set_kid(name, dirent)
        else:
            d.set(name, dirent)

    def _append(self, d: _Dir, name: str, data: bytes, blobs: dict[str, bytes]) -> None:
        e = d.entries.get(name)
        if e is None:
            val = tree.create_val(data)
            if len(val["data"]) > VAL_INLINE_MAX:
                val = {"ver": 1, "type": "valref", "data": (self._store_raw(data, blobs),)}
            d.set(name, val)
            return
        kind = "dir" if type(e) is _Dir else e["type"]
        if kind == "valref":
            refs = e["data"] + (self._store_raw(data, blobs),)
        elif kind == "val":
            old = base64.b64decode(e["data"])
            refs = (self._store_raw(old, blobs), self._store_raw(data, blobs))
        elif kind == "symlink":
            raise _OpError(errno.EOPNOTSUPP, "cannot append to a symlink")
        else:
            raise _OpError(errno.EISDIR, "cannot append to a directory")
        d.set(name, {"ver": 1, "type": "valref", "data": refs})

    # --- lookup -------------------------------------------------------------

    def _resolve(self, nsname: str, rootref: str, comps: list[str], key: str,
                 follow_final: bool, depth: int) -> dict[str, Any]:
        entries = self._dir_entries(rootref)
        last = len(comps) - 1
        for i, name in enumerate(comps):
            e = entries.get(name)
            if e is None:
                raise _err(KVSLookupError, errno.ENOENT, key)
            kind = e["type"]
            if kind == "symlink" and (i < last or follow_final):
                if depth >= SYMLINK_CYCLE_LIMIT:
                    raise _err(KVSLookupError, errno.ELOOP, key)
                target = e["data"]
                tns = target.get("namespace", nsname)
                troot = rootref if tns == nsname else self._ns(tns, KVSLookupError).rootref
                tkey = normalize_key(target["target"])
                tcomps = ([] if tkey == "." else tkey.split(".")) + comps[i + 1:]
                if not tcomps:
                    return tree.create_dirref(troot)
                return self._resolve(tns, troot, tcomps, key, follow_final, depth + 1)
            if i == last:
                return e
            if kind == "dirref":
                entries = self._dir_entries(e["data"][0])
            elif kind == "dir":
                entries = e["data"]
            else:
                raise _err(KVSLookupError, errno.ENOTDIR, key)
        raise AssertionError("unreachable")

    def lookup(self, namespace: str, key: str, rootref: str | None = None, *,
               flags: int = 0, readdir: bool = False, readlink: bool = False,
               treeobj: bool = False) -> dict[str, Any]:
        """Look up ``key`` and return a tree object, as ``kvs.lookup`` does.

        Parameters
        ----------
        namespace : str
        key : str
            Dotted key; ``"."`` is the root directory.
        rootref : str, optional
            Read this snapshot root instead of the namespace's current root.
        flags : int
            `FLUX_KVS_READDIR`, `FLUX_KVS_READLINK`, `FLUX_KVS_TREEOBJ`, as
            received on the wire; the keyword booleans add to them.

        Returns
        -------
        dict
            A ``val`` (valrefs are read and joined); with READDIR a ``dir``;
            with READLINK the ``symlink``; with TREEOBJ the entry as stored.

        Raises
        ------
        KVSLookupError
            ENOENT (``job.foo: No such file or directory``), ENOTDIR, EISDIR,
            ELOOP, EINVAL (READLINK on a non-symlink), ENOTSUP (no namespace).
        """
        if readdir:
            flags |= FLUX_KVS_READDIR
        if readlink:
            flags |= FLUX_KVS_READLINK
        if treeobj:
            flags |= FLUX_KVS_TREEOBJ
        root = rootref if rootref is not None else self._ns(namespace, KVSLookupError).rootref
        k = normalize_key(key) if isinstance(key, str) else ""
        if not k:
            raise KVSLookupError(errno.EINVAL, f"invalid key {key!r}")
        try:
            if k == ".":
                e = tree.create_dirref(root)
            else:
                e = self._resolve(namespace, root, k.split("."), k,
                                  not flags & (FLUX_KVS_READLINK | FLUX_KVS_TREEOBJ), 0)
            if flags & FLUX_KVS_TREEOBJ:
                return _export(e)
            kind = e["type"]
            if flags & FLUX_KVS_READLINK:
                if kind != "symlink":
                    raise KVSLookupError(errno.EINVAL, f"{k}: not a symlink")
                return _export(e)
            if kind == "dirref" or kind == "dir":
                if not flags & FLUX_KVS_READDIR:
                    raise _err(KVSLookupError, errno.EISDIR, k)
                data = e["data"] if kind == "dir" else self._dir_entries(e["data"][0])
                return {"ver": 1, "type": "dir",
                        "data": {name: _export(x) for name, x in data.items()}}
            if flags & FLUX_KVS_READDIR:
                raise _err(KVSLookupError, errno.ENOTDIR, k)
            if kind == "valref":
                return tree.create_val(self._read_valref(e))
            return {"ver": 1, "type": "val", "data": e["data"]}
        except BlobNotFoundError as exc:
            raise KVSLookupError(errno.ENOENT, f"{k}: {exc}") from None

    def _read_valref(self, e: dict[str, Any]) -> bytes:
        load = self.content.load
        refs = e["data"]
        return load(refs[0]) if len(refs) == 1 else b"".join([load(r) for r in refs])

    def get_raw(self, namespace: str, key: str, rootref: str | None = None) -> bytes:
        """Return the bytes of the value at ``key`` (symlinks followed)."""
        e = self.lookup(namespace, key, rootref, flags=FLUX_KVS_TREEOBJ)
        if e["type"] == "symlink":
            e = self.lookup(namespace, key, rootref)
        kind = e["type"]
        if kind == "val":
            return base64.b64decode(e["data"])
        if kind == "valref":
            return self._read_valref(e)
        raise _err(KVSLookupError, errno.EISDIR, normalize_key(key))

    def get(self, namespace: str, key: str, rootref: str | None = None) -> Any:
        """Return the value at ``key`` decoded from JSON, as flux.kvs.get does.

        A value that is not JSON comes back as ``str`` (or ``bytes`` if it is
        not UTF-8).
        """
        raw = self.get_raw(namespace, key, rootref)
        try:
            return json.loads(raw)
        except ValueError:
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw

    def listdir(self, namespace: str, key: str = ".", rootref: str | None = None) -> list[str]:
        """Return the sorted entry names of directory ``key``."""
        return sorted(self.lookup(namespace, key, rootref, flags=FLUX_KVS_READDIR)["data"])

    def exists(self, namespace: str, key: str, rootref: str | None = None) -> bool:
        """Return True if ``key`` exists (a dangling symlink counts)."""
        try:
            self.lookup(namespace, key, rootref, flags=FLUX_KVS_TREEOBJ)
        except KVSLookupError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return False
            raise
        return True


# Inside the engine, valref/dirref blobref arrays are tuples: a tree of dicts
# holding only strings and tuples is untracked by Python's cyclic GC, which
# otherwise rescans every cached directory on each full collection.


def _internal(e: dict[str, Any]) -> dict[str, Any]:
    kind = e["type"]
    if kind == "valref" or kind == "dirref":
        return {"ver": 1, "type": kind, "data": tuple(e["data"])}
    if kind == "dir":
        return {"ver": 1, "type": "dir",
                "data": {name: _internal(x) for name, x in e["data"].items()}}
    return e


def _export(e: dict[str, Any]) -> dict[str, Any]:
    """A caller's own JSON-typed copy of an internal tree object."""
    kind = e["type"]
    data = e["data"]
    if kind == "valref" or kind == "dirref":
        return {"ver": 1, "type": kind, "data": list(data)}
    if kind == "symlink":
        return {"ver": 1, "type": kind, "data": dict(data)}
    if kind == "dir":
        return {"ver": 1, "type": kind, "data": {n: _export(x) for n, x in data.items()}}
    return {"ver": 1, "type": kind, "data": data}


def _op_name(dirent: Any, flags: int) -> str:
    if dirent is None:
        return "unlink"
    if flags & FLUX_KVS_APPEND:
        return "append"
    kind = dirent.get("type") if isinstance(dirent, dict) else None
    return {"dir": "mkdir", "symlink": "symlink"}.get(kind, "put")  # type: ignore[arg-type]
