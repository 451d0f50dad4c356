"""ContentStore: blobs by blobref (RFC 10), SQLite backing, statedir lock."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading

import pytest

from fluxnb.runtime.kvs.blobref import blobref_hash
from fluxnb.runtime.kvs.content import BlobNotFoundError, ContentStore, StatedirBusyError


def test_store_returns_the_blobref_and_load_returns_the_blob():
    cs = ContentStore()
    ref = cs.store(b"hello")
    assert ref == blobref_hash(b"hello")
    assert cs.load(ref) == b"hello"
    assert ref in cs
    assert cs.store(b"hello") == ref  # idempotent
    assert len(cs) == 1


def test_sha256_store():
    cs = ContentStore(hash_name="sha256")
    assert cs.store(b"x") == blobref_hash(b"x", "sha256")


def test_loading_a_missing_blob_names_it():
    cs = ContentStore()
    missing = blobref_hash(b"never stored")
    with pytest.raises(BlobNotFoundError, match=missing):
        cs.load(missing)
    assert missing not in cs


def test_blobs_survive_a_restart_only_after_flush(tmp_path):
    cs = ContentStore(tmp_path)
    kept = cs.store(b"flushed")
    assert cs.dirty_count == 1
    assert cs.flush() == 1
    assert cs.dirty_count == 0
    lost = cs.store(b"not flushed")
    # simulate a crash: drop the connection without flushing
    cs._db.close()
    cs._db = None
    cs._release_lock()
    cs2 = ContentStore(tmp_path)
    assert cs2.load(kept) == b"flushed"
    with pytest.raises(BlobNotFoundError):
        cs2.load(lost)
    cs2.close()


def test_close_flushes(tmp_path):
    with ContentStore(tmp_path) as cs:
        ref = cs.store(b"data")
    with ContentStore(tmp_path) as cs:
        assert cs.load(ref) == b"data"
        assert ref in cs


def test_sqlite_file_uses_wal(tmp_path):
    ContentStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / "content.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_checkpoints_persist_per_namespace(tmp_path):
    with ContentStore(tmp_path) as cs:
        ref = cs.store(b"root")
        cs.checkpoint_put("primary", ref, 7, 1000, 0)
        cs.checkpoint_put("job-1", ref, 2, 42, 0)
        cs.checkpoint_put("gone", ref, 1, 42, 0)
        cs.flush()
        cs.checkpoint_remove("gone")
    with ContentStore(tmp_path) as cs:
        cps = {cp["namespace"]: cp for cp in cs.checkpoint_list()}
        assert set(cps) == {"primary", "job-1"}
        assert cps["primary"]["rootref"] == ref
        assert cps["primary"]["sequence"] == 7
        assert cps["job-1"]["owner"] == 42
        assert cs.checkpoint_get("gone") is None


def test_second_opener_of_a_statedir_gets_a_clear_error(tmp_path):
    first = ContentStore(tmp_path)
    with pytest.raises(StatedirBusyError) as info:
        ContentStore(tmp_path)
    assert str(info.value) == (
        f"statedir {tmp_path} is in use by another instance (pid {os.getpid()})"
    )
    first.close()
    ContentStore(tmp_path).close()  # released on close


def _hold_lock(path, ready, release):
    cs = ContentStore(path)
    ready.set()
    release.wait(30)
    cs.close()


def test_another_process_holding_the_statedir_is_detected(tmp_path):
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(tmp_path, ready, release))
    proc.start()
    try:
        assert ready.wait(30)
        with pytest.raises(StatedirBusyError, match=f"in use by another instance \\(pid {proc.pid}\\)"):
            ContentStore(tmp_path)
    finally:
        release.set()
        proc.join(30)
    ContentStore(tmp_path).close()


def test_cache_eviction_keeps_blobs_loadable(tmp_path):
    with ContentStore(tmp_path, cache_limit=10) as cs:
        refs = [cs.store(str(i).encode()) for i in range(50)]
        cs.flush()
        assert len(cs) <= 10
        assert [cs.load(r) for r in refs] == [str(i).encode() for i in range(50)]


def test_background_flush_writes_blobs_a_fresh_store_can_load(tmp_path):
    cs = ContentStore(tmp_path, durable=False, cache_limit=4)
    refs = [cs.store(f"blob {i}".encode()) for i in range(50)]
    assert cs.flush_background() is True
    assert cs.dirty_count == 0 and cs.dirty_bytes == 0   # handed to the worker
    # what the worker is writing stays readable meanwhile
    assert all(cs.load(r) == f"blob {i}".encode() for i, r in enumerate(refs))
    cs.close()
    with ContentStore(tmp_path) as again:
        assert [again.load(r) for r in refs] == [f"blob {i}".encode() for i in range(50)]


def test_a_load_goes_between_the_statements_of_a_background_flush(tmp_path, monkeypatch):
    """A blob only SQLite holds is read while a flush's transaction is open: the loop
    waits one INSERT at most, not the whole flush."""
    import fluxnb.runtime.kvs.content as content
    monkeypatch.setattr(content, "_ROWS_PER_INSERT", 1)
    cs = ContentStore(tmp_path, durable=False, cache_limit=2)
    old = [cs.store(f"old {i}".encode()) for i in range(10)]
    cs.flush()
    assert old[0] not in cs._cache  # evicted: a load must read SQLite
    new = [cs.store(f"new {i}".encode()) for i in range(3)]
    paused, release = threading.Event(), threading.Event()
    insert = cs._insert

    def slow_insert(chunk):
        insert(chunk)
        paused.set()
        release.wait(10)

    monkeypatch.setattr(cs, "_insert", slow_insert)
    try:
        assert cs.flush_background()
        assert paused.wait(10)  # the flush is inside its transaction, between INSERTs
        got = []
        reader = threading.Thread(target=lambda: got.append(cs.load(old[0])))
        reader.start()
        reader.join(5)
        assert got == [b"old 0"]  # not blocked behind the flush
    finally:
        release.set()
    cs._join_background()
    cs.close()
    with ContentStore(tmp_path) as again:
        assert [again.load(r) for r in new] == [b"new 0", b"new 1", b"new 2"]


def test_background_flush_is_for_scratch_stores_only(tmp_path):
    with ContentStore(tmp_path) as cs:
        cs.store(b"x")
        with pytest.raises(ValueError, match="scratch"):
            cs.flush_background()


def test_blobs_stored_during_a_background_flush_are_not_evicted(tmp_path):
    cs = ContentStore(tmp_path, durable=False, cache_limit=4)
    for i in range(40):
        cs.store(f"old {i}".encode())
    cs.flush_background()
    late = [cs.store(f"late {i}".encode()) for i in range(20)]  # dirty, not in the flush
    cs._join_background()                  # the flush ends: eviction of clean blobs
    assert cs.dirty_count == 20
    assert all(r in cs._cache for r in late)
    assert len(cs) < 60                    # old, clean blobs did leave memory
    cs.close()
    with ContentStore(tmp_path) as again:
        assert again.load(late[-1]) == b"late 19"


def test_a_failed_background_flush_keeps_its_blobs_dirty_and_reports(tmp_path, monkeypatch):
    cs = ContentStore(tmp_path, durable=False)
    ref = cs.store(b"precious")
    real_write = cs._write

    def full_disk(blobs, checkpoints):
        raise OSError(28, "content store: No space left on device")

    monkeypatch.setattr(cs, "_write", full_disk)
    cs.flush_background()
    cs._inflight.join()
    with pytest.raises(OSError, match="No space left"):
        cs.poll_background()
    assert cs.dirty_count == 1 and cs.load(ref) == b"precious"
    monkeypatch.setattr(cs, "_write", real_write)     # room again: the next flush writes it
    assert cs.flush() == 1
    cs.close()
    with ContentStore(tmp_path) as again:
        assert again.load(ref) == b"precious"


def test_clean_blobs_stay_within_the_byte_limit_between_flushes(tmp_path):
    # issue 15: the limit held only right after a flush, so a busy KVS's loads and
    # flushed blobs overshot it between flushes
    with ContentStore(tmp_path, cache_bytes=10_000) as cs:
        refs = [cs.store(bytes([i]) * 1000) for i in range(40)]
        assert cs.clean_bytes == 0 and cs.dirty_bytes == 40_000  # dirty ones all stay
        cs.flush()
        assert cs.clean_bytes <= 10_000 and cs.dirty_bytes == 0
        for r in refs:  # loading every blob back from SQLite
            cs.load(r)
            assert cs.clean_bytes <= 10_000
        more = [cs.store(bytes([i]) * 1000 + b"x") for i in range(20)]
        assert cs.clean_bytes <= 10_000 and cs.dirty_bytes == 20_020
        assert [cs.load(r) for r in refs + more][:2] == [b"\0" * 1000, b"\1" * 1000]


def test_eviction_never_drops_an_unwritten_blob(tmp_path):
    with ContentStore(tmp_path, cache_bytes=3000, durable=False) as cs:
        old = [cs.store(bytes([i]) * 1000) for i in range(6)]
        cs.flush()
        inflight = [cs.store(bytes([i]) * 998) for i in range(6)]
        release = threading.Event()
        write = cs._write
        cs._write = lambda *a: (release.wait(10), write(*a))
        assert cs.flush_background()
        new = [cs.store(bytes([i]) * 999) for i in range(6)]
        for r in old:
            cs.load(r)  # each load may evict: only clean blobs go
        assert all(r in cs._cache for r in inflight + new)
        release.set()
    with ContentStore(tmp_path) as cs:  # and they were all written
        assert [cs.load(r) for r in (inflight[5], new[5])] == [b"\5" * 998, b"\5" * 999]

