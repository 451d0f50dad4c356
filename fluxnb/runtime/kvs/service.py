"""The ``kvs`` service: RFC 11 KVS behind flux-core's topics.

Topics (payloads as flux-core's ``kvs`` and ``kvs-watch`` modules use them):

``kvs.lookup``            {key, flags, namespace?, rootref?} -> {key, val}
``kvs.commit``            {ops, flags, namespace?} -> {rootref, rootseq}
``kvs.getroot``           {namespace?} -> {rootref, rootseq, owner, flags, board?}
``content.load``          raw blobref -> the blob's raw bytes (content is immutable)
``kvs.wait-version``      {namespace?, rootseq} -> {} once that version exists
``kvs.namespace-create``  {namespace, owner, flags}
``kvs.namespace-remove``  {namespace}
``kvs.namespace-list``    -> {namespaces: [...]}
``kvs-watch.lookup``      streaming with FLUX_KVS_WATCH / WAITCREATE / WATCH_APPEND ...
``kvs-watch.cancel``      {matchtag}: end the sender's watch (it answers ENODATA)
"""

from __future__ import annotations

import base64
import errno
import os

from ..message import FLAG_STREAMING, FluxError, Message
from ..service import DEFERRED, Service, payload_field, request_handler
from .board import RootBoard
from .content import BlobNotFoundError, ContentStore
from .store import (
    KVS, KVS_PRIMARY_NAMESPACE, KVSError, KVSLookupError, key_affected, normalize_key,
)

from .flags import (  # noqa: F401
    FLUX_KVS_APPEND, FLUX_KVS_READDIR, FLUX_KVS_READLINK, FLUX_KVS_TREEOBJ, FLUX_KVS_WAITCREATE,
    FLUX_KVS_WATCH, FLUX_KVS_WATCH_APPEND, FLUX_KVS_WATCH_FULL, FLUX_KVS_WATCH_UNIQ,
)

_LOOKUP_FLAGS = FLUX_KVS_READDIR | FLUX_KVS_READLINK | FLUX_KVS_TREEOBJ
#: how often a scratch content store (no state directory) checks its memory, and
#: how many bytes of new blobs it keeps before writing them out: small sessions
#: never write (flushing every half second cost 6-7% of job throughput), and no
#: single flush grows large enough to stall the loop for long; what waits to be
#: written is part of a busy broker's high-water mark (issue 15: 2 MiB was a tenth)
FLUSH_INTERVAL = 0.5
SCRATCH_DIRTY_LIMIT = 1 << 20


def _touches(changed: frozenset, key: str) -> bool:
    """A commit of ``changed`` keys changes ``key`` itself, or something under it."""
    key = normalize_key(key)
    return key_affected([c for c in changed if not key.startswith(c + ".")], key)


class _Watch:
    __slots__ = ("msg", "key", "namespace", "flags", "last", "offset", "created", "done")

    def __init__(self, msg: Message, key: str, namespace: str, flags: int):
        self.msg = msg
        self.key = key
        self.namespace = namespace
        self.flags = flags
        self.last: dict | None = None
        self.offset = 0
        self.created = False
        self.done = False  # ended with an error response


def _kvs_error(exc: KVSError) -> FluxError:
    return FluxError(exc.errno, str(exc))


class KVSService(Service):
    """The key-value store of an instance (rank 0)."""

    name = "kvs"
    also_serves = ("kvs-watch", "content", "content-backing")

    def start(self) -> None:
        # Like flux-core's content-sqlite, the content store is always backed: by
        # the state directory if there is one (kept), else by the run directory
        # (removed with it). Blobs of old roots then leave memory instead of growing it.
        statedir = self.broker.attrs.get("statedir") or None
        self._flush_timer = None
        self._scratch: ContentStore | None = None      # ours to close (KVS does not own it)
        try:
            if statedir is None and self.broker.attrs.get("rundir"):
                scratch = os.path.join(self.broker.attrs["rundir"], "content")
                self._scratch = ContentStore(scratch, durable=False)
                self.kvs = KVS(content=self._scratch, autoflush=False)
                self._flush_timer = self.broker.loop.call_later(FLUSH_INTERVAL, self._flush)
            else:
                self.kvs = KVS(statedir)
        except KVSError as exc:
            raise _kvs_error(exc) from None
        self.watches: dict[str, list[_Watch]] = {}
        self.version_waiters: dict[str, list[tuple[int, Message]]] = {}
        # the root board lets clients of this host walk a root they cached for as
        # long as no commit has completed since (see board.py and kvs replica)
        self.board = None
        rundir = self.broker.attrs.get("rundir")
        if rundir:
            try:
                self.board = RootBoard(os.path.join(rundir, "kvs-board"))
                self.kvs.on_change = self.board.bump
            except OSError as exc:
                self.log("warning", f"kvs: no root board ({exc}); clients will not cache")

    def _flush(self) -> None:
        """Move blobs of a scratch store to its SQLite file once there are many."""
        try:
            # a scratch store's writes need not be done before commits are answered:
            # a worker thread writes them while this loop goes on
            content = self.kvs.content
            if content.dirty_bytes >= SCRATCH_DIRTY_LIMIT:
                content.flush_background()
            else:
                content.poll_background()  # one that ended: its blobs can leave memory
        except Exception as exc:  # never let a full disk stop the service loop
            self.log("err", f"content flush failed: {exc}")
        self._flush_timer = self.broker.loop.call_later(FLUSH_INTERVAL, self._flush)

    def stop(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        for watches in self.watches.values():
            for w in watches:
                self.respond_error(w.msg, errno.ENOSYS, "kvs: module unloaded")
        self.watches.clear()
        if self.board is not None:
            self.kvs.on_change = None
            self.board.close()
        self.kvs.close()
        if self._scratch is not None:
            self._scratch.close()

    # -- plain requests --------------------------------------------------------------
    def _namespace(self, msg: Message) -> str:
        ns = (msg.json or {}).get("namespace") or KVS_PRIMARY_NAMESPACE
        if not isinstance(ns, str):
            raise FluxError(errno.EPROTO, f"{msg.topic}: 'namespace' must be a string")
        return ns

    @request_handler("lookup")
    def lookup(self, msg: Message) -> dict:
        key = payload_field(msg, "key", str)
        flags = payload_field(msg, "flags", int, 0)
        rootref = (msg.json or {}).get("rootref")
        try:
            val = self.kvs.lookup(self._namespace(msg), key, rootref, flags=flags & _LOOKUP_FLAGS)
        except KVSError as exc:
            raise _kvs_error(exc) from None
        return {"key": key, "val": val}

    @request_handler("commit")
    def commit(self, msg: Message) -> dict:
        ops = payload_field(msg, "ops", list)
        ns = self._namespace(msg)
        try:
            result = self.kvs.commit(ns, ops)
        except KVSError as exc:
            raise _kvs_error(exc) from None
        self._notify(ns, result.keys, result.rootseq)
        return {"rootref": result.rootref, "rootseq": result.rootseq}

    @request_handler("getroot")
    def getroot(self, msg: Message) -> dict:
        try:
            root = self.kvs.getroot(self._namespace(msg))
        except KVSError as exc:
            raise _kvs_error(exc) from None
        if self.board is not None:
            root["board"] = self.board.path
        return root

    @request_handler("load", topic="content.load")
    def content_load(self, msg: Message) -> bytes:
        """A blob by its blobref (the payload, raw), as flux-core's content service."""
        ref = bytes(msg.payload).rstrip(b"\0").decode("ascii", "replace")
        try:
            return self.kvs.content.load(ref)
        except BlobNotFoundError as exc:
            raise FluxError(errno.ENOENT, f"content.load: {exc}") from None
        except ValueError as exc:
            raise FluxError(errno.EINVAL, f"content.load: {ref!r}: {exc}") from None

    @request_handler("store", topic="content.store")
    def content_store(self, msg: Message) -> bytes:
        """Store a blob (the payload, raw); answer its hash digest (raw), as flux-core's
        content service does (``flux archive`` stores large files' chunks so)."""
        from .blobref import blobref_parse
        return blobref_parse(self.kvs.content.store(bytes(msg.payload)))[1]

    @request_handler("checkpoint-get", topic="content.checkpoint-get")
    def checkpoint_get(self, msg: Message) -> dict:
        """The primary namespace's last checkpoint, as flux-core's content service gives it."""
        cp = self.kvs.content.checkpoint_get(KVS_PRIMARY_NAMESPACE)
        if cp is None:
            raise FluxError(errno.ENOENT, f"{msg.topic}: no checkpoint")
        return {"value": [{"version": 1, "rootref": cp["rootref"], "sequence": cp["sequence"],
                           "timestamp": cp["timestamp"]}]}

    @request_handler("checkpoint-get", topic="content-backing.checkpoint-get")
    def backing_checkpoint_get(self, msg: Message) -> dict:
        return self.checkpoint_get(msg)

    @request_handler("wait-version")
    def wait_version(self, msg: Message):
        ns = self._namespace(msg)
        seq = payload_field(msg, "rootseq", int)
        try:
            current = self.kvs.getroot(ns)["rootseq"]
        except KVSError as exc:
            raise _kvs_error(exc) from None
        if current >= seq:
            return {}
        self.version_waiters.setdefault(ns, []).append((seq, msg))
        return DEFERRED

    @request_handler("namespace-create")
    def namespace_create(self, msg: Message) -> dict:
        name = payload_field(msg, "namespace", str)
        owner = payload_field(msg, "owner", int, os.getuid())
        try:
            self.kvs.namespace_create(name, owner, payload_field(msg, "flags", int, 0))
        except KVSError as exc:
            raise _kvs_error(exc) from None
        self._notify(name, frozenset({"."}), 0)
        return {}

    @request_handler("namespace-remove")
    def namespace_remove(self, msg: Message) -> dict:
        name = payload_field(msg, "namespace", str)
        try:
            self.kvs.namespace_remove(name)
        except KVSError as exc:
            raise _kvs_error(exc) from None
        for w in self.watches.pop(name, []):
            self.respond_error(w.msg, errno.ENOTSUP, f"namespace {name} removed")
        return {}

    @request_handler("namespace-list")
    def namespace_list(self, msg: Message) -> dict:
        return {"namespaces": self.kvs.namespace_list()}

    # -- watches ---------------------------------------------------------------
    @request_handler("lookup", topic="kvs-watch.lookup")
    def watch_lookup(self, msg: Message):
        key = payload_field(msg, "key", str)
        flags = payload_field(msg, "flags", int, 0)
        ns = self._namespace(msg)
        if not normalize_key(key):
            raise FluxError(errno.EINVAL, f"invalid key {key!r}")
        if flags & (FLUX_KVS_WATCH | FLUX_KVS_WATCH_APPEND) and not msg.flags & FLAG_STREAMING:
            raise FluxError(errno.EPROTO, "kvs-watch.lookup: FLUX_KVS_WATCH needs a streaming RPC")
        if not self.kvs.namespace_exists(ns):
            # WAITCREATE waits for a key, not for a namespace (guest namespaces of
            # jobs are created once and removed for good)
            raise FluxError(errno.ENOTSUP, f"namespace {ns}: Operation not supported")
        w = _Watch(msg, key, ns, flags)
        answered = self._check(w)
        if not w.done and (not answered or flags & (FLUX_KVS_WATCH | FLUX_KVS_WATCH_APPEND)):
            self.watches.setdefault(ns, []).append(w)
        return DEFERRED

    @request_handler("cancel", topic="kvs-watch.cancel")
    def watch_cancel(self, msg: Message) -> dict:
        tag = payload_field(msg, "matchtag", int)
        for watches in self.watches.values():
            for w in list(watches):
                if w.msg.matchtag == tag and w.msg.route == msg.route:
                    watches.remove(w)
                    self.respond_error(w.msg, errno.ENODATA)
        return {}

    def disconnect(self, route: list[str]) -> None:
        n = len(route)
        for ns, watches in self.watches.items():
            watches[:] = [w for w in watches if w.msg.route[:n] != route]
        for ns, waiters in self.version_waiters.items():
            waiters[:] = [(s, m) for s, m in waiters if m.route[:n] != route]

    def _notify(self, ns: str, keys: frozenset, rootseq: int) -> None:
        for w in list(self.watches.get(ns, ())):
            # as flux-core's kvs-watch: without FULL, a watch of a key that exists looks
            # again when a commit changes that key or a directory it holds, not when one
            # of its parents is replaced (FULL looks again at every commit)
            if not w.created or w.flags & FLUX_KVS_WATCH_FULL or _touches(keys, w.key):
                if self._check(w) and not w.flags & (FLUX_KVS_WATCH | FLUX_KVS_WATCH_APPEND):
                    self._drop(w)  # a one-shot wait is answered (_check may have dropped it)
        waiters = self.version_waiters.get(ns)
        if waiters:
            ready = [m for s, m in waiters if s <= rootseq]
            waiters[:] = [(s, m) for s, m in waiters if s > rootseq]
            for m in ready:
                self.respond(m, {})

    def _check(self, w: _Watch) -> bool:
        """Respond to a watch if its key has a (new) value; True if it responded."""
        try:
            val = self.kvs.lookup(w.namespace, w.key, flags=w.flags & _LOOKUP_FLAGS)
        except KVSLookupError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTSUP) and (
                    w.flags & FLUX_KVS_WAITCREATE and not w.created):
                return False
            if exc.errno == errno.ENOENT and w.created and w.flags & FLUX_KVS_WATCH:
                # a watched key that is removed ends the watch, as flux-core does
                self.respond_error(w.msg, errno.ENOENT, str(exc))
                self._drop(w)
                return True
            self.respond_error(w.msg, exc.errno, str(exc))
            self._drop(w)
            return True
        except KVSError as exc:
            self.respond_error(w.msg, exc.errno, str(exc))
            self._drop(w)
            return True
        w.created = True
        if w.flags & FLUX_KVS_WATCH_APPEND and val.get("type") == "val":
            data = base64.b64decode(val["data"]) if val["data"] else b""
            if len(data) < w.offset:
                self.respond_error(w.msg, errno.EINVAL, f"{w.key}: value shrank while watched for appends")
                self._drop(w)
                return True
            if len(data) == w.offset and w.last is not None:
                return True
            new = data[w.offset:]
            w.offset = len(data)
            w.last = val
            self.respond(w.msg, {"key": w.key, "val": {"ver": 1, "type": "val",
                                                       "data": base64.b64encode(new).decode()}})
            return True
        if w.flags & FLUX_KVS_WATCH_UNIQ and w.last == val:
            return True
        w.last = val
        self.respond(w.msg, {"key": w.key, "val": val})
        return True

    def _drop(self, w: _Watch) -> None:
        w.done = True
        watches = self.watches.get(w.namespace)
        if watches and w in watches:
            watches.remove(w)
