"""A client's read replica of the KVS: lookups answered from cached, immutable blobs.

The KVS is a hash tree: a root blobref names a whole snapshot, and a blob never
changes. flux-core exploits that with a content cache in every broker; here each
client handle keeps one too, and walks a namespace's root itself for as long as the
instance's root board (:mod:`.board`) shows that no commit to that namespace has
completed since the root was read. A lookup is then a read of shared memory and a
walk through dicts: no message at all.

Whenever the replica cannot answer alone (the root moved, a blob is not cached yet,
a symlink leads to another namespace, no board), it sends the ordinary
``kvs.lookup`` and, in the same round trip, what would let the next lookup stay
local: ``kvs.getroot`` for a moved root, ``content.load`` for the missing blob.
Answers and errors are the service's own (the walk is the service's code), so a
cached lookup can never differ from the RPC's.

Set ``FLUXNB_KVS_CACHE=0`` to send every lookup to the service.
"""

from __future__ import annotations

import os
from typing import Any

from ..message import FluxError
from .board import BoardReader
from .flags import FLUX_KVS_READDIR, FLUX_KVS_READLINK, FLUX_KVS_TREEOBJ
from .store import KVS, KVSError, KVS_PRIMARY_NAMESPACE

_LOOKUP_FLAGS = FLUX_KVS_READDIR | FLUX_KVS_READLINK | FLUX_KVS_TREEOBJ

#: bytes of blobs a handle keeps (the oldest stored go first)
BLOB_BUDGET = 32 << 20


class _Miss(Exception):
    """The walk needs a blob this replica does not hold."""

    def __init__(self, ref: str):
        super().__init__(ref)
        self.ref = ref


class _Elsewhere(Exception):
    """The walk leads into another namespace: ask the service."""


class _Blobs:
    """The content store of a replica: cached blobs, or :class:`_Miss`.

    Evicts in the order blobs were stored: a lookup re-reads the few blobs of its
    path, so keeping an LRU order on every read would cost more than it saves.
    """

    def __init__(self, budget: int = BLOB_BUDGET):
        self.budget = budget
        self.size = 0
        self.blobs: dict[str, bytes] = {}

    def load(self, ref: str) -> bytes:
        data = self.blobs.get(ref)
        if data is None:
            raise _Miss(ref)
        return data

    def add(self, ref: str, data: bytes) -> None:
        if ref in self.blobs or len(data) > self.budget // 4:
            return
        self.blobs[ref] = data
        self.size += len(data)
        while self.size > self.budget:
            old = self.blobs.pop(next(iter(self.blobs)))
            self.size -= len(old)


class _Walker(KVS):
    """The service's lookup code over a replica's blobs (no namespaces of its own)."""

    def __init__(self, blobs: _Blobs):  # noqa: D107 - deliberately not KVS.__init__
        self.content = blobs
        self._dirs = {}
        self._namespaces = {}

    def _ns(self, name, cls=KVSError):
        raise _Elsewhere(name)


class Replica:
    """The read replica of one handle (see the module docstring)."""

    def __init__(self, handle):
        self.h = handle
        self.blobs = _Blobs()
        self.walker = _Walker(self.blobs)
        self.roots: dict[str, tuple[tuple[int, int], str]] = {}
        self.board: BoardReader | None = None
        self.board_path: str | None = None
        self.stats = {"local": 0, "remote": 0}
        #: lookups in a row that found a namespace's root moved: under steady churn
        #: fetching each new root would double the messages, so it backs off
        self.moved: dict[str, int] = {}

    def _stamp(self, ns: str) -> tuple[int, int] | None:
        if self.board is None:
            return None
        stamp = self.board.stamp(ns)
        if stamp is None:                      # retired: reopen on the next getroot
            self.board.close()
            self.board = None
            self.board_path = None
            self.roots.clear()
        return stamp

    def _adopt_board(self, path: str | None) -> None:
        if not path or path == self.board_path:
            return
        try:
            reader = BoardReader(path)
        except (OSError, ValueError):
            return
        if self.board is not None:
            self.board.close()
        self.board, self.board_path = reader, path
        self.roots.clear()

    def lookup(self, key: str, namespace: str | None, flags: int, rootref: str | None) -> dict:
        """The tree object ``kvs.lookup`` would answer; raises FluxError as it would."""
        ns = namespace or KVS_PRIMARY_NAMESPACE
        stamp = None
        root = rootref
        if root is None:
            stamp = self._stamp(ns)
            known = self.roots.get(ns)
            if known is not None and stamp is not None and known[0] == stamp:
                root = known[1]
                self.moved[ns] = 0
            elif stamp is not None:
                n = self.moved[ns] = self.moved.get(ns, 0) + 1
                if n & (n - 1) and n % 64:             # ask for the root at 1, 2, 4, ... 64, 128
                    stamp = None
        missing = None
        if root is not None and isinstance(key, str) and isinstance(flags, int):
            try:
                val = self.walker.lookup(ns, key, root, flags=flags & _LOOKUP_FLAGS)
                self.stats["local"] += 1
                return val
            except KVSError as exc:
                self.stats["local"] += 1
                raise FluxError(exc.errno, str(exc)) from None
            except _Miss as miss:
                missing = miss.ref
            except _Elsewhere:
                pass
        return self._remote(key, namespace, flags, rootref, ns,
                            stamp if root is None else None, missing)

    def _remote(self, key, namespace, flags, rootref, ns, stamp, missing) -> dict:
        h = self.h
        self.stats["remote"] += 1
        payload: dict[str, Any] = {"key": key, "flags": flags}
        if namespace:
            payload["namespace"] = namespace
        if rootref:
            payload["rootref"] = rootref
        answer = h.rpc("kvs.lookup", payload, nodeid=0)
        # in the same round trip: what makes the next lookup local
        root_rpc = h.rpc("kvs.getroot", {"namespace": ns}, nodeid=0) \
            if rootref is None and (stamp is not None or self.board is None) else None
        blob_rpc = h.rpc("content.load", missing.encode(), nodeid=0) if missing else None
        if root_rpc is not None:
            try:
                root = root_rpc.get()
            except FluxError:
                root = None
            if root is not None:
                if self.board is None:
                    self._adopt_board(root.get("board"))    # trusted from the next getroot on
                elif stamp is not None:
                    self.roots[ns] = (stamp, root["rootref"])
        if blob_rpc is not None:
            try:
                self.blobs.add(missing, bytes(blob_rpc.get_raw()))
            except FluxError:
                pass
        return answer.get()["val"]


def replica(handle) -> Replica | None:
    """The handle's replica, made on first use; None where caching does not apply."""
    aux = getattr(handle, "aux", None)
    if aux is None or os.environ.get("FLUXNB_KVS_CACHE", "1") in ("0", "no", "false"):
        return None
    rep = aux.get("fluxnb.kvs.replica")
    if rep is None:
        rep = aux["fluxnb.kvs.replica"] = Replica(handle)
    return rep


__all__ = ["Replica", "replica", "BLOB_BUDGET"]
