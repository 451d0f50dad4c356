"""The content store: blobs addressed by blobref (RFC 10).

`ContentStore` keeps blobs in a dict. Given a state directory it also backs them
with SQLite (``<statedir>/content.sqlite``, WAL journal, ``synchronous=NORMAL``),
much as flux-core's ``content-sqlite`` module backs its content cache:

- `ContentStore.store` only touches memory; new blobs are *dirty* until the next
  `ContentStore.flush`, which writes all of them, and any changed namespace
  checkpoints, in one SQLite transaction. The KVS flushes after each commit (or
  each batch), so a restart sees every committed root and nothing half-written.
- Blobs live in ``objects`` keyed by their binary digest (unique index; sha1
  and sha256 digests differ in length), appended in rowid order, which SQLite
  writes markedly faster than a table clustered on random hashes.
- A small ``checkpoint`` table keeps, per KVS namespace, the root blobref,
  sequence number, owner and flags, from which a restarted KVS restores every
  namespace (flux-core keeps only the primary namespace's, in ``checkpt``).
- An exclusive ``fcntl.flock`` on ``<statedir>/content.lock`` keeps a second
  instance from opening the same state directory.
- Jobspecs in the store carry their submitter's environment, so the state
  directory is the owner's alone (0700, files 0600, as flux-core's): one found
  looser is tightened with a warning, and neither the lock nor the database is
  opened through a symlink someone else planted there (``O_NOFOLLOW``).

A `ContentStore` is not thread-safe: use it from one thread at a time (the
broker's loop thread). The one exception is its own: a scratch store
(``durable=False``) can write its dirty blobs from a worker thread
(`ContentStore.flush_background`) while the loop thread goes on; the SQLite
connection is then used under a lock, and the blobs in flight stay in memory until
they are written.

Examples
--------
>>> cs = ContentStore()
>>> ref = cs.store(b"hello")
>>> cs.load(ref)
b'hello'
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import sqlite3
import stat
import threading
import time
from pathlib import Path
from typing import Any

from fluxnb.runtime.kvs.blobref import HASH_NAMES, blobref_hash, blobref_validate

__all__ = ["BlobNotFoundError", "ContentStore", "StatedirBusyError", "StatedirError",
           "prepare_statedir"]

#: Blobs kept in memory (beyond dirty ones) when a SQLite file backs the store.
DEFAULT_CACHE_LIMIT = 100_000
#: ... and their bytes, at all times (flux-core's content cache aims at 16 MiB:
#: ``content.purge-target-size``). A broker's hot blobs are the dirty ones and the
#: KVS caches the decoded dirs it walks, so 3 MiB costs no throughput; 6 MiB added
#: a tenth to a busy rank 0's resident size (issue 15)
DEFAULT_CACHE_BYTES = 3 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    id INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    object BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS objects_hash ON objects (hash);
CREATE TABLE IF NOT EXISTS checkpoint (
    namespace TEXT PRIMARY KEY,
    rootref TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    owner INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    timestamp REAL NOT NULL
);
"""


class BlobNotFoundError(KeyError):
    """A blobref is in neither the cache nor the backing store (ENOENT)."""

    errno = errno.ENOENT

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "blob not found"


class StatedirError(RuntimeError):
    """The state directory cannot be used: not a directory, or unsafe."""

    errno = errno.EINVAL


class StatedirBusyError(StatedirError):
    """Another instance holds the state directory's lock."""

    errno = errno.EBUSY


def prepare_statedir(statedir: str | os.PathLike[str]) -> str | None:
    """Create ``statedir`` mode 0700, or tighten an existing looser one.

    Returns a one-line warning if an existing directory was tightened, else None.

    Raises
    ------
    StatedirError
        If ``statedir`` exists and is not a directory, or cannot be created.
    """
    path = os.fspath(statedir)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except FileExistsError:
        raise StatedirError(f"statedir {path}: exists and is not a directory") from None
    except NotADirectoryError:
        raise StatedirError(f"statedir {path}: a parent is not a directory") from None
    except OSError as exc:
        raise StatedirError(f"statedir {path}: cannot create: {exc.strerror}") from None
    st = os.stat(path)
    if st.st_uid != os.getuid():
        raise StatedirError(f"statedir {path}: owned by uid {st.st_uid}, not by you "
                            f"(uid {os.getuid()})")
    mode = st.st_mode & 0o777
    if mode & 0o077:
        os.chmod(path, mode & 0o700)
        return (f"statedir {path} was mode {mode:04o} (others could read the jobs "
                f"in it): now {mode & 0o700:04o}")
    return None


def _open_private(path: Path, what: str, flags: int = os.O_RDWR) -> int:
    """Open (creating it 0600) a file of the state directory, never through a symlink."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StatedirError(f"{what} {path} is a symlink: refusing to follow it "
                                "(remove it if you did not make it)") from None
        raise StatedirError(f"{what} {path}: {exc.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise StatedirError(f"{what} {path} is not a regular file")
    if st.st_mode & 0o077:
        os.fchmod(fd, st.st_mode & 0o600)
    return fd


class ContentStore:
    """Blobs by blobref, in memory with optional SQLite backing.

    Parameters
    ----------
    statedir : str or os.PathLike, optional
        Directory for ``content.sqlite`` and ``content.lock`` (created if
        missing). Without it, the store lives only in memory.
    hash_name : {"sha1", "sha256"}
        Hash used for new blobrefs. Loading accepts either.
    cache_limit : int, optional
        With a backing file, the number of clean blobs kept in memory.

    Raises
    ------
    StatedirBusyError
        If another instance (this process or another) has ``statedir`` open.
    """

    def __init__(
        self,
        statedir: str | os.PathLike[str] | None = None,
        *,
        hash_name: str = "sha1",
        cache_limit: int = DEFAULT_CACHE_LIMIT,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        durable: bool = True,
    ) -> None:
        if hash_name not in HASH_NAMES:
            raise ValueError(f"unsupported hash name {hash_name!r}")
        self.hash_name = hash_name
        self.statedir: Path | None = Path(statedir) if statedir is not None else None
        self.cache_limit = cache_limit
        self.cache_bytes = cache_bytes
        self._cache: dict[str, bytes] = {}
        self._cache_size = 0  # bytes in _cache (counted only with a backing file)
        self._dirty: dict[str, bytes] = {}
        self._dirty_bytes = 0
        self._checkpoints: dict[str, dict[str, Any]] = {}
        self._checkpoints_dirty: dict[str, dict[str, Any] | None] = {}
        self._db: sqlite3.Connection | None = None
        self._lockfd: int | None = None
        # durable=False: a scratch backing (the run directory) that need not
        # survive a crash, so no fsync; it only keeps memory bounded
        self.durable = durable
        self._dblock = threading.Lock()     # the worker of flush_background and loads
        self._inflight: threading.Thread | None = None
        self._inflight_blobs: dict[str, bytes] = {}
        self._inflight_bytes = 0
        self._inflight_error: BaseException | None = None
        self._inflight_checkpoints: dict[str, dict[str, Any] | None] = {}
        if self.statedir is not None:
            self._open_backing(self.statedir)

    # --- backing file --------------------------------------------------------

    def _open_backing(self, statedir: Path) -> None:
        prepare_statedir(statedir)
        fd = _open_private(statedir / "content.lock", "lock file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StatedirBusyError(
                f"statedir {statedir} is in use by another instance (pid {holder})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lockfd = fd
        dbpath = statedir / "content.sqlite"
        try:
            # the database and its journals (which SQLite creates with the
            # database's mode) are the owner's; a planted symlink is refused
            for suffix in ("", "-wal", "-shm"):
                p = dbpath.with_name(dbpath.name + suffix)
                if suffix and not os.path.lexists(p):
                    continue
                os.close(_open_private(p, "content store"))
        except StatedirError:
            self._release_lock()
            raise
        try:
            # check_same_thread=False: the store may be built on one thread and
            # driven from the broker's loop thread; it is never used concurrently.
            db = sqlite3.connect(dbpath, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL" if self.durable else "PRAGMA synchronous=OFF")
            db.executescript(_SCHEMA)
            for row in db.execute(
                "SELECT namespace, rootref, sequence, owner, flags, timestamp FROM checkpoint"
            ):
                self._checkpoints[row[0]] = _checkpoint_dict(*row)
        except sqlite3.Error as exc:
            self._release_lock()
            raise StatedirError(f"cannot open content store {dbpath}: {exc}") from None
        self._db = db

    def _select(self, sql: str, args: tuple):
        """One row of a read, on the one connection: during a background flush it
        waits for the INSERT under way at most (see `_write`). A second connection for
        reads would not wait (WAL), but it held rank 0's resident size 15-20 MiB higher
        after 10,000 jobs (issue 15)."""
        with self._dblock:
            return self._db.execute(sql, args).fetchone()

    def _release_lock(self) -> None:
        if self._lockfd is not None:
            os.close(self._lockfd)  # closing the descriptor drops the flock
            self._lockfd = None

    @property
    def backed(self) -> bool:
        """True if a SQLite file backs this store."""
        return self._db is not None

    # --- blobs ---------------------------------------------------------------

    def store(self, data: bytes) -> str:
        """Store ``data`` and return its blobref (storing it twice is a no-op)."""
        ref = blobref_hash(data, self.hash_name)
        if ref not in self._cache:
            self._cache[ref] = data
            if self._db is not None:
                self._dirty[ref] = data
                self._dirty_bytes += len(data)
                self._cache_size += len(data)
                self._maybe_evict()
        return ref

    def store_blobs(self, blobs: dict[str, bytes]) -> None:
        """Store blobs whose blobrefs the caller has already computed.

        The KVS hashes while it encodes; this saves hashing twice. The caller
        vouches that each key is the blobref of its value.
        """
        cache = self._cache
        if self._db is None:
            cache.update(blobs)
            return
        dirty = self._dirty
        for ref, data in blobs.items():
            if ref not in cache:
                cache[ref] = data
                dirty[ref] = data
                self._dirty_bytes += len(data)
                self._cache_size += len(data)
        self._maybe_evict()

    def load(self, blobref: str) -> bytes:
        """Return the blob named by ``blobref``.

        Raises
        ------
        BlobNotFoundError
            If no such blob was ever stored.
        """
        data = self._cache.get(blobref)
        if data is not None:
            return data
        if self._db is not None:
            row = self._select("SELECT object FROM objects WHERE hash = ?", (_digest(blobref),))
            if row is not None:
                data = bytes(row[0])
                self._cache[blobref] = data
                self._cache_size += len(data)
                self._maybe_evict()
                return data
        blobref_validate(blobref)
        raise BlobNotFoundError(f"content store has no blob {blobref}")

    def __contains__(self, blobref: object) -> bool:
        if blobref in self._cache:
            return True
        if self._db is None or not isinstance(blobref, str):
            return False
        return self._select("SELECT 1 FROM objects WHERE hash = ?", (_digest(blobref),)) is not None

    @property
    def dirty_count(self) -> int:
        """Blobs stored since the last `flush` and not yet in SQLite."""
        return len(self._dirty)

    # --- checkpoints ---------------------------------------------------------

    def checkpoint_put(
        self, namespace: str, rootref: str, sequence: int, owner: int, flags: int = 0
    ) -> None:
        """Record ``namespace``'s root; written to SQLite at the next `flush`."""
        cp = _checkpoint_dict(namespace, rootref, sequence, owner, flags, time.time())
        self._checkpoints[namespace] = cp
        if self._db is not None:
            self._checkpoints_dirty[namespace] = cp

    def checkpoint_remove(self, namespace: str) -> None:
        """Forget ``namespace``'s checkpoint (at the next `flush`)."""
        self._checkpoints.pop(namespace, None)
        if self._db is not None:
            self._checkpoints_dirty[namespace] = None

    def checkpoint_get(self, namespace: str) -> dict[str, Any] | None:
        """Return ``namespace``'s checkpoint dict, or None."""
        cp = self._checkpoints.get(namespace)
        return dict(cp) if cp is not None else None

    def checkpoint_list(self) -> list[dict[str, Any]]:
        """Return every namespace checkpoint, sorted by namespace name."""
        return [dict(self._checkpoints[ns]) for ns in sorted(self._checkpoints)]

    # --- flush / close -------------------------------------------------------

    @property
    def dirty_bytes(self) -> int:
        """Bytes of blobs stored since the last flush (held in memory until then)."""
        return self._dirty_bytes

    def flush(self) -> int:
        """Write dirty blobs and checkpoints to SQLite in one transaction.

        Waits for a background flush in flight first (and raises its error, its
        blobs then being dirty again).

        Returns
        -------
        int
            The number of blobs written (0 without a backing file).
        """
        self._join_background()
        db = self._db
        if db is None or not (self._dirty or self._checkpoints_dirty):
            return 0
        count = len(self._dirty)
        self._write(self._dirty, self._checkpoints_dirty)
        self._dirty = {}
        self._dirty_bytes = 0
        self._checkpoints_dirty = {}
        self._maybe_evict()
        return count

    def flush_background(self) -> bool:
        """Start writing the dirty blobs from a worker thread; return at once.

        For a scratch store (``durable=False``) only, whose writes need not be done
        before a commit is answered: SQLite works without the GIL for much of a
        transaction, so the loop thread goes on meanwhile. One flush at a time: a
        call while one is in flight does nothing and returns False. The flushed
        blobs stay in memory until it ends; a later call (or `flush`) collects it,
        evicting clean blobs and raising its error (the blobs become dirty again).
        """
        if self.durable:
            raise ValueError("flush_background: only for a scratch (durable=False) store")
        self._collect_background()
        if self._db is None or self._inflight is not None or not (
                self._dirty or self._checkpoints_dirty):
            return False
        blobs, checkpoints = self._dirty, self._checkpoints_dirty
        self._inflight_bytes = self._dirty_bytes
        self._dirty, self._dirty_bytes, self._checkpoints_dirty = {}, 0, {}
        self._inflight_blobs = blobs

        def work() -> None:
            try:
                self._write(blobs, checkpoints)
            except BaseException as exc:  # handed to the loop thread at collection
                self._inflight_error = exc
                self._inflight_checkpoints = checkpoints

        self._inflight = threading.Thread(target=work, name="content-flush", daemon=True)
        self._inflight.start()
        return True

    def poll_background(self) -> None:
        """Collect a background flush that has ended (see `flush_background`)."""
        self._collect_background()

    def _collect_background(self, wait: bool = False) -> None:
        t = self._inflight
        if t is None or (t.is_alive() and not wait):
            return
        t.join()
        self._inflight = None
        blobs, self._inflight_blobs = self._inflight_blobs, {}
        self._inflight_bytes = 0
        exc, self._inflight_error = self._inflight_error, None
        if exc is not None:
            # not written: dirty again, under what was stored since (newer checkpoints win)
            for ref, data in blobs.items():
                if ref not in self._dirty:
                    self._dirty[ref] = data
                    self._dirty_bytes += len(data)
            for ns, cp in self._inflight_checkpoints.items():
                self._checkpoints_dirty.setdefault(ns, cp)
            raise exc
        self._maybe_evict()

    def _join_background(self) -> None:
        if self._inflight is not None:
            self._collect_background(wait=True)

    def _write(self, blobs: dict[str, bytes], checkpoints: dict[str, dict[str, Any] | None]) -> None:
        db = self._db
        removed = [(ns,) for ns, cp in checkpoints.items() if cp is None]
        upserts = [
            (cp["namespace"], cp["rootref"], cp["sequence"], cp["owner"], cp["flags"],
             cp["timestamp"])
            for cp in checkpoints.values() if cp is not None
        ]
        flat = []
        for ref, data in blobs.items():
            flat.append(bytes.fromhex(ref[ref.index("-") + 1:]))
            flat.append(data)
        lock = self._dblock
        # The lock is held a statement at a time, not for the transaction: a read of
        # the loop thread (a dir the KVS cache no longer holds) goes between two of
        # them, on the same connection, rather than wait for the whole flush (it
        # waited 0.1-0.7 ms a read, 35-150 us a job, with 1,000-5,000 jobs queued).
        with lock:
            db.execute("BEGIN")
        try:
            # many rows per statement: SQLite runs each statement without the GIL,
            # where executemany took it back for every row (from a worker thread,
            # each time after the loop thread's switch interval)
            rows = 2 * _ROWS_PER_INSERT
            for i in range(0, len(flat), rows):
                self._insert(flat[i:i + rows])
            with lock:
                if removed:
                    db.executemany("DELETE FROM checkpoint WHERE namespace = ?", removed)
                if upserts:
                    db.executemany(
                        "INSERT OR REPLACE INTO checkpoint "
                        "(namespace, rootref, sequence, owner, flags, timestamp) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        upserts,
                    )
                db.execute("COMMIT")
        except BaseException as exc:
            with lock:
                # SQLite has already rolled back after some errors (a full disk):
                # a second ROLLBACK would hide the real error behind its own
                if db.in_transaction:
                    db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _os_error(exc, self.statedir) from None
            raise

    def _insert(self, chunk: list) -> None:
        """One INSERT of a flush's transaction (hash, blob, hash, blob...)."""
        with self._dblock:
            self._db.execute(_insert_sql(len(chunk) // 2), chunk)

    @property
    def clean_bytes(self) -> int:
        """Bytes of the blobs in memory that SQLite holds too (the cache proper)."""
        return self._cache_size - self._dirty_bytes - self._inflight_bytes

    def _maybe_evict(self) -> None:
        # The limits bound the clean blobs at all times, not only after a flush:
        # between flushes a busy KVS loads and writes megabytes, and a cache that
        # overshoots its limit sets the broker's high-water mark (issue 15). Dirty
        # blobs, and those a background flush is writing, stay.
        if self._db is None:
            return
        unwritten = len(self._dirty) + len(self._inflight_blobs)
        if (len(self._cache) - unwritten > self.cache_limit
                or self.clean_bytes > self.cache_bytes):
            self._evict()

    def _evict(self) -> None:
        # Drop the oldest clean blobs down to half the limits at once, so that
        # eviction is amortized rather than per blob. Unwritten blobs are the
        # newest: the first ones met are nearly all clean.
        keep_n, keep_bytes = self.cache_limit // 2, self.cache_bytes // 2
        cache, dirty, inflight = self._cache, self._dirty, self._inflight_blobs
        clean_n = len(cache) - len(dirty) - len(inflight)
        clean_bytes = self.clean_bytes
        gone = []
        for ref, data in cache.items():
            if clean_n <= keep_n and clean_bytes <= keep_bytes:
                break
            if ref in dirty or ref in inflight:
                continue
            gone.append(ref)
            clean_n -= 1
            clean_bytes -= len(data)
        for ref in gone:
            self._cache_size -= len(cache.pop(ref))

    def close(self) -> None:
        """Flush, close the SQLite file and release the state directory."""
        if self._db is not None:
            try:
                try:
                    self._join_background()
                finally:
                    self.flush()
            finally:
                self._db.close()
                self._db = None
                self._release_lock()

    def __enter__(self) -> ContentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        """Number of blobs in memory (the whole store when not backed)."""
        return len(self._cache)

    def __repr__(self) -> str:
        where = str(self.statedir) if self.statedir else "memory"
        return f"<ContentStore {where} blobs={len(self._cache)} dirty={len(self._dirty)}>"


#: rows of one INSERT of blobs (two parameters each, well under SQLite's 32766)
_ROWS_PER_INSERT = 100


@functools.lru_cache(maxsize=8)
def _insert_sql(n: int) -> str:
    return "INSERT OR IGNORE INTO objects (hash, object) VALUES " + ",".join(["(?,?)"] * n)


def _os_error(exc: sqlite3.Error, statedir: Path | None) -> OSError:
    """The OSError a failed SQLite write means (ENOSPC for a full disk, else EIO).

    What was not written stays dirty in memory, so a later flush, once there is
    room, writes it.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    full = code == getattr(sqlite3, "SQLITE_FULL", 13) or "full" in str(exc)
    num = errno.ENOSPC if full else errno.EIO
    return OSError(num, f"content store {statedir}/content.sqlite: {os.strerror(num)} ({exc})")


def _digest(blobref: str) -> bytes:
    """Binary digest of a blobref: the SQLite key (hash names differ in length)."""
    _, _, hexdigest = blobref.partition("-")
    try:
        return bytes.fromhex(hexdigest)
    except ValueError:
        blobref_validate(blobref)
        raise


def _checkpoint_dict(
    namespace: str, rootref: str, sequence: int, owner: int, flags: int, timestamp: float
) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "rootref": rootref,
        "sequence": sequence,
        "owner": owner,
        "flags": flags,
        "timestamp": timestamp,
    }
