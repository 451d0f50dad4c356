"""The root board: a page of shared memory that says when a namespace's root moved.

The ``kvs`` service bumps a counter here, in the same loop step as it installs a new
root and before it answers anyone, whenever a namespace changes (commit, create,
remove). A client that cached a namespace's root together with the counter it read
*before* asking for that root may keep walking that root's (immutable,
content-addressed) tree on its own as long as the counter has not moved: no commit
has completed since. That is strict consistency, not the eventual consistency of
flux-core's per-broker caches, at the price of reading 16 bytes of memory.

Layout (little endian): ``MAGIC`` (8 bytes), epoch (u64), then ``SLOTS`` u64
counters; namespace ``ns`` owns slot ``crc32(ns) % SLOTS`` (namespaces sharing a
slot only invalidate each other more often). A board going away (module unload,
instance shutdown) sets its epoch to 0 first, so readers still mapping it know to
stop trusting it; a new board gets a fresh random epoch.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib

MAGIC = b"FNBKVSB1"
SLOTS = 1024
_HEAD = struct.Struct("<8sQ")
_U64 = struct.Struct("<Q")
SIZE = _HEAD.size + 8 * SLOTS


def slot_offset(namespace: str) -> int:
    """Byte offset of the counter of ``namespace``."""
    return _HEAD.size + 8 * (zlib.crc32(namespace.encode()) % SLOTS)


class RootBoard:
    """The writer's side (the ``kvs`` service): create, bump, retire."""

    def __init__(self, path: str):
        self.path = path
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, SIZE)
            self._mm = mmap.mmap(fd, SIZE)
        finally:
            os.close(fd)
        self.epoch = int.from_bytes(os.urandom(8), "little") >> 1 | 1
        _HEAD.pack_into(self._mm, 0, MAGIC, self.epoch)
        os.replace(tmp, path)

    def bump(self, namespace: str) -> None:
        off = slot_offset(namespace)
        _U64.pack_into(self._mm, off, _U64.unpack_from(self._mm, off)[0] + 1)

    def close(self) -> None:
        """Tell every reader this board no longer speaks for the KVS, then drop it."""
        if self._mm.closed:
            return
        _HEAD.pack_into(self._mm, 0, MAGIC, 0)
        self._mm.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


class BoardReader:
    """A client's read-only view of a board.

    Raises OSError or ValueError when ``path`` is not a board.
    """

    def __init__(self, path: str):
        self.path = path
        fd = os.open(path, os.O_RDONLY)
        try:
            self._mm = mmap.mmap(fd, SIZE, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        magic, _ = _HEAD.unpack_from(self._mm, 0)
        if magic != MAGIC:
            self._mm.close()
            raise ValueError(f"{path}: not a KVS root board")
        self._offsets: dict[str, int] = {}

    def stamp(self, namespace: str) -> tuple[int, int] | None:
        """``(epoch, counter)`` of ``namespace`` now; None once the board is retired."""
        off = self._offsets.get(namespace)
        if off is None:
            off = self._offsets[namespace] = slot_offset(namespace)
        epoch = _HEAD.unpack_from(self._mm, 0)[1]
        if not epoch:
            return None
        return epoch, _U64.unpack_from(self._mm, off)[0]

    def close(self) -> None:
        self._mm.close()
