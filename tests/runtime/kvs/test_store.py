"""The KVS engine, checked against RFC 11 and flux-core's documented KVS behaviour."""

from __future__ import annotations

import errno
import json

import pytest

from fluxnb.runtime.kvs import treeobj
from fluxnb.runtime.kvs.content import ContentStore, StatedirBusyError
from fluxnb.runtime.kvs.store import (
    FLUX_KVS_APPEND,
    FLUX_KVS_READDIR,
    FLUX_KVS_TREEOBJ,
    KVS,
    VAL_INLINE_MAX,
    KVSCommitError,
    KVSLookupError,
    KVSNamespaceError,
    KVSTxn,
    key_affected,
    normalize_key,
)

P = "primary"


@pytest.fixture
def kvs():
    return KVS()


def errno_of(excinfo):
    return excinfo.value.errno


# --- keys -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "norm"),
    [("a.b.c", "a.b.c"), ("a..b", "a.b"), ("a...b", "a.b"), (".a.b.", "a.b"),
     ("..a..", "a"), (".", "."), ("..", ".")],
)
def test_keys_normalize_like_flux(key, norm):
    assert normalize_key(key) == norm


def test_normalized_keys_address_the_same_entry(kvs):
    kvs.commit(P, KVSTxn().put("a..b.", 1))
    assert kvs.get(P, "a.b") == 1
    assert kvs.get(P, ".a.b") == 1


# --- put / lookup -----------------------------------------------------------


def test_put_stores_the_json_encoding_and_get_decodes_it(kvs):
    value = {"jobs": [1, 2], "name": "ƒ", "ok": True}
    kvs.commit(P, KVSTxn().put("a.b.c", value))
    assert kvs.get(P, "a.b.c") == value
    assert kvs.lookup(P, "a.b.c")["type"] == "val"
    assert kvs.get(P, "a.b.c") == json.loads(kvs.get_raw(P, "a.b.c"))


def test_put_raw_and_non_json_values(kvs):
    kvs.commit(P, KVSTxn().put_raw("raw", b"\xff\x00bin").put_raw("text", b"hello"))
    assert kvs.get_raw(P, "raw") == b"\xff\x00bin"
    assert kvs.get(P, "raw") == b"\xff\x00bin"
    assert kvs.get(P, "text") == "hello"


def test_commit_creates_parent_dirs_and_readdir_lists_them(kvs):
    kvs.commit(P, KVSTxn().put("job.0000.0004.b200.0000.eventlog", "x")
               .put("job.0000.0004.b200.0001.eventlog", "y"))
    assert kvs.listdir(P, "job.0000.0004.b200") == ["0000", "0001"]
    assert kvs.listdir(P) == ["job"]
    d = kvs.lookup(P, "job.0000", flags=FLUX_KVS_READDIR)
    assert d["type"] == "dir" and d["data"]["0004"]["type"] == "dirref"


def test_sequence_increments_and_rootref_changes(kvs):
    root0 = kvs.getroot(P)
    assert root0["rootseq"] == 0
    ref1, seq1 = kvs.commit(P, KVSTxn().put("a", 1))
    ref2, seq2 = kvs.commit(P, KVSTxn().put("a", 2))
    assert (seq1, seq2) == (1, 2)
    assert len({root0["rootref"], ref1, ref2}) == 3
    assert kvs.getroot(P)["rootref"] == ref2
    assert kvs.getroot(P)["rootseq"] == 2


def test_equal_trees_have_equal_rootrefs(kvs):
    ref1, _ = kvs.commit(P, KVSTxn().put("a", 1))
    kvs.commit(P, KVSTxn().put("b", 2))
    ref3, _ = kvs.commit(P, KVSTxn().unlink("b"))
    assert ref3 == ref1  # content addressed


def test_old_rootref_is_a_snapshot(kvs):
    old, _ = kvs.commit(P, KVSTxn().put("a.b", "old").put("a.c", 1))
    kvs.commit(P, KVSTxn().put("a.b", "new").unlink("a.c").put("z", 0))
    assert kvs.get(P, "a.b") == "new"
    assert kvs.get(P, "a.b", rootref=old) == "old"
    assert kvs.get(P, "a.c", rootref=old) == 1
    assert kvs.listdir(P, rootref=old) == ["a"]
    with pytest.raises(KVSLookupError) as e:
        kvs.lookup(P, "a.c")
    assert errno_of(e) == errno.ENOENT


def test_missing_key_is_enoent_naming_the_key(kvs):
    with pytest.raises(KVSLookupError) as e:
        kvs.lookup(P, "job.foo")
    assert errno_of(e) == errno.ENOENT
    assert str(e.value) == "job.foo: No such file or directory"


def test_lookup_through_a_value_is_enotdir_and_dir_without_readdir_is_eisdir(kvs):
    kvs.commit(P, KVSTxn().put("a.b", 1))
    with pytest.raises(KVSLookupError) as e:
        kvs.lookup(P, "a.b.c")
    assert errno_of(e) == errno.ENOTDIR and "a.b.c" in str(e.value)
    with pytest.raises(KVSLookupError) as e:
        kvs.lookup(P, "a")
    assert errno_of(e) == errno.EISDIR
    with pytest.raises(KVSLookupError) as e:
        kvs.lookup(P, "a.b", readdir=True)
    assert errno_of(e) == errno.ENOTDIR
    with pytest.raises(KVSLookupError) as e:
        kvs.lookup(P, ".")
    assert errno_of(e) == errno.EISDIR


def test_treeobj_flag_returns_the_stored_object(kvs):
    ref, _ = kvs.commit(P, KVSTxn().put("d.x", 1))
    assert kvs.lookup(P, ".", treeobj=True) == treeobj.create_dirref(ref)
    assert kvs.lookup(P, "d", treeobj=True)["type"] == "dirref"


def test_invalid_lookup_key(kvs):
    with pytest.raises(KVSLookupError) as e:
        kvs.lookup(P, "")
    assert errno_of(e) == errno.EINVAL


# --- large values and append ------------------------------------------------


def test_large_values_are_stored_as_valrefs(kvs):
    big = b"x" * 1000
    kvs.commit(P, KVSTxn().put_raw("big", big).put_raw("small", b"s"))
    assert kvs.lookup(P, "big", treeobj=True)["type"] == "valref"
    assert kvs.lookup(P, "small", treeobj=True)["type"] == "val"
    assert kvs.get_raw(P, "big") == big
    assert kvs.lookup(P, "big") == treeobj.create_val(big)  # lookup resolves valrefs


def test_append_builds_a_valref_chain(kvs):
    kvs.commit(P, KVSTxn().append("log", b'{"name":"submit"}\n'))
    assert kvs.lookup(P, "log", treeobj=True)["type"] == "val"
    kvs.commit(P, KVSTxn().append("log", b'{"name":"alloc"}\n'))
    kvs.commit(P, KVSTxn().append("log", '{"name":"start"}\n'))
    obj = kvs.lookup(P, "log", treeobj=True)
    assert obj["type"] == "valref" and len(obj["data"]) == 3
    assert kvs.get_raw(P, "log") == b'{"name":"submit"}\n{"name":"alloc"}\n{"name":"start"}\n'


def test_append_adds_one_blobref_per_append(kvs):
    for i in range(50):
        kvs.commit(P, KVSTxn().append("e", f"{i}\n"))
    assert len(kvs.lookup(P, "e", treeobj=True)["data"]) == 50
    assert kvs.get_raw(P, "e") == "".join(f"{i}\n" for i in range(50)).encode()


def test_append_to_a_directory_or_symlink_fails(kvs):
    kvs.commit(P, KVSTxn().mkdir("d").symlink("l", "d"))
    with pytest.raises(KVSCommitError) as e:
        kvs.commit(P, KVSTxn().append("d", b"x"))
    assert errno_of(e) == errno.EISDIR
    with pytest.raises(KVSCommitError) as e:
        kvs.commit(P, KVSTxn().append("l", b"x"))
    assert errno_of(e) == errno.EOPNOTSUPP


# --- atomicity and errors ---------------------------------------------------


def test_failed_op_applies_nothing_and_names_op_and_key(kvs):
    ref, seq = kvs.commit(P, KVSTxn().put("a", 1).mkdir("d"))
    txn = KVSTxn().put("a", 2).put("new.key", 3).append("d", b"x").put("b", 4)
    with pytest.raises(KVSCommitError) as e:
        kvs.commit(P, txn)
    assert e.value.index == 2 and e.value.key == "d"
    assert errno_of(e) == errno.EISDIR
    assert "ops[2]" in str(e.value) and "'d'" in str(e.value) and "append" in str(e.value)
    assert kvs.getroot(P)["rootref"] == ref and kvs.getroot(P)["rootseq"] == seq
    assert kvs.get(P, "a") == 1
    assert not kvs.exists(P, "new") and not kvs.exists(P, "b")


@pytest.mark.parametrize("key", ["", ".", ".."])
def test_empty_or_root_key_is_rejected(kvs, key):
    with pytest.raises(KVSCommitError) as e:
        kvs.commit(P, KVSTxn().put("ok", 1).put(key, 1))
    assert errno_of(e) == errno.EINVAL and e.value.index == 1
    assert not kvs.exists(P, "ok")


def test_malformed_ops_are_rejected(kvs):
    with pytest.raises(KVSCommitError) as e:
        kvs.commit(P, [{"key": "a"}])
    assert errno_of(e) == errno.EPROTO and "ops[0]" in str(e.value)
    with pytest.raises(KVSCommitError) as e:
        kvs.commit(P, [{"key": "a", "flags": 0, "dirent": {"ver": 1, "type": "val", "data": 5}}])
    assert errno_of(e) == errno.EINVAL
    with pytest.raises(KVSCommitError) as e:
        kvs.commit(P, [{"key": "a", "flags": FLUX_KVS_APPEND, "dirent": treeobj.create_dir()}])
    assert errno_of(e) == errno.EPROTO


def test_unlinking_a_missing_key_succeeds(kvs):
    ref, seq = kvs.commit(P, KVSTxn().unlink("no.such.key"))
    assert seq == 1
    assert kvs.listdir(P) == []


def test_unlink_removes_a_whole_directory(kvs):
    kvs.commit(P, KVSTxn().put("d.a", 1).put("d.b.c", 2))
    kvs.commit(P, KVSTxn().unlink("d"))
    assert not kvs.exists(P, "d.b.c") and kvs.listdir(P) == []


def test_put_under_a_value_replaces_it_with_a_directory_as_flux_does(kvs):
    kvs.commit(P, KVSTxn().put("a", 1))
    kvs.commit(P, KVSTxn().put("a.b", 2))
    assert kvs.listdir(P, "a") == ["b"]


def test_mkdir_makes_an_empty_directory(kvs):
    kvs.commit(P, KVSTxn().mkdir("empty"))
    assert kvs.listdir(P, "empty") == []


def test_put_treeobj_dir_is_stored_as_dirrefs(kvs):
    tree = treeobj.create_dir({"x": treeobj.create_val(b"1"),
                               "sub": treeobj.create_dir({"y": treeobj.create_val(b"2")})})
    kvs.commit(P, KVSTxn().put_treeobj("t", tree))
    assert kvs.get(P, "t.sub.y") == 2
    assert kvs.lookup(P, "t.sub", treeobj=True)["type"] == "dirref"


# --- symlinks ---------------------------------------------------------------


def test_symlinks_are_followed_and_readlink_returns_them(kvs):
    kvs.commit(P, KVSTxn().put("a.b.c", 42).symlink("link", "a.b"))
    assert kvs.get(P, "link.c") == 42
    assert kvs.listdir(P, "link") == ["c"]
    assert kvs.lookup(P, "link", readlink=True) == treeobj.create_symlink("a.b")
    with pytest.raises(KVSLookupError) as e:
        kvs.lookup(P, "a.b.c", readlink=True)
    assert errno_of(e) == errno.EINVAL


def test_symlink_loop_is_eloop(kvs):
    kvs.commit(P, KVSTxn().symlink("x", "y").symlink("y", "x").symlink("self", "self"))
    for key in ("x", "self", "x.below"):
        with pytest.raises(KVSLookupError) as e:
            kvs.lookup(P, key)
        assert errno_of(e) == errno.ELOOP


def test_dangling_symlink_is_enoent(kvs):
    kvs.commit(P, KVSTxn().symlink("l", "nowhere"))
    with pytest.raises(KVSLookupError) as e:
        kvs.get(P, "l")
    assert errno_of(e) == errno.ENOENT
    assert kvs.exists(P, "l")


def test_cross_namespace_symlink_is_followed_on_lookup(kvs):
    kvs.namespace_create("job-1", owner=1000)
    kvs.commit("job-1", KVSTxn().put("guest.exec", "hi"))
    kvs.commit(P, KVSTxn().symlink("job.1.guest", "guest", namespace="job-1"))
    assert kvs.get(P, "job.1.guest.exec") == "hi"


def test_commit_through_a_symlinked_parent_writes_the_target(kvs):
    kvs.commit(P, KVSTxn().mkdir("real").symlink("l", "real"))
    result = kvs.commit(P, KVSTxn().put("l.x", 1))
    assert kvs.get(P, "real.x") == 1
    assert "real.x" in result.keys


def test_commit_cannot_cross_namespaces_through_a_symlink(kvs):
    kvs.namespace_create("other")
    kvs.commit(P, KVSTxn().symlink("l", "d", namespace="other"))
    with pytest.raises(KVSCommitError) as e:
        kvs.commit(P, KVSTxn().put("l.x", 1))
    assert errno_of(e) == errno.EINVAL and "'l.x'" in str(e.value)


# --- namespaces -------------------------------------------------------------


def test_namespaces_are_isolated(kvs):
    kvs.namespace_create("job-1", owner=1000)
    kvs.commit("job-1", KVSTxn().put("a", "in job-1"))
    kvs.commit(P, KVSTxn().put("a", "in primary"))
    assert kvs.get("job-1", "a") == "in job-1"
    assert kvs.get(P, "a") == "in primary"
    assert kvs.getroot("job-1")["rootseq"] == 1
    assert kvs.getroot("job-1")["owner"] == 1000


def test_namespace_create_list_remove(kvs):
    info = kvs.namespace_create("ns", owner=5, flags=0)
    assert info["rootseq"] == 0 and kvs.listdir("ns") == []
    assert [n["namespace"] for n in kvs.namespace_list()] == ["ns", "primary"]
    with pytest.raises(KVSNamespaceError) as e:
        kvs.namespace_create("ns")
    assert errno_of(e) == errno.EEXIST
    kvs.namespace_remove("ns")
    with pytest.raises(KVSLookupError) as e:
        kvs.lookup("ns", "a")
    assert errno_of(e) == errno.ENOTSUP
    with pytest.raises(KVSNamespaceError) as e:
        kvs.commit("ns", KVSTxn().put("a", 1))
    assert errno_of(e) == errno.ENOTSUP
    with pytest.raises(KVSNamespaceError) as e:
        kvs.namespace_remove(P)
    assert errno_of(e) == errno.EINVAL


def test_namespace_created_at_a_rootref_sees_that_snapshot(kvs):
    ref, _ = kvs.commit(P, KVSTxn().put("a", 1))
    kvs.namespace_create("copy", rootref=ref)
    assert kvs.get("copy", "a") == 1


# --- watch support ----------------------------------------------------------


def test_commit_reports_changed_keys(kvs):
    result = kvs.commit(P, KVSTxn().put("a..b", 1).unlink("c").append("d.e", b"x"))
    assert result.keys == {"a.b", "c", "d.e"}
    assert key_affected(result.keys, "a.b")
    assert key_affected(result.keys, "a")          # a parent dir changed
    assert key_affected(result.keys, "c.under")    # removed with its parent
    assert not key_affected(result.keys, "a.bc")
    assert not key_affected(result.keys, "z")


# --- persistence ------------------------------------------------------------


def test_restart_restores_every_key_and_namespace(tmp_path):
    kvs = KVS(statedir=tmp_path)
    kvs.namespace_create("job-1", owner=1000)
    kvs.commit("job-1", KVSTxn().put("guest.exec.eventlog", "init"))
    kvs.commit(P, KVSTxn().put("job.0000.0004.b200.0000.eventlog", {"name": "submit"})
               .put_raw("big", b"b" * (VAL_INLINE_MAX * 4)).append("log", b"1\n"))
    kvs.commit(P, KVSTxn().append("log", b"2\n"))
    before = kvs.namespace_list()
    kvs.close()

    kvs = KVS(statedir=tmp_path)
    assert kvs.namespace_list() == before
    assert kvs.get(P, "job.0000.0004.b200.0000.eventlog") == {"name": "submit"}
    assert kvs.get_raw(P, "big") == b"b" * (VAL_INLINE_MAX * 4)
    assert kvs.get_raw(P, "log") == b"1\n2\n"
    assert kvs.get("job-1", "guest.exec.eventlog") == "init"
    _, seq = kvs.commit(P, KVSTxn().put("after", 1))
    assert seq == before[1]["rootseq"] + 1
    kvs.close()


def test_removed_namespace_stays_removed_after_restart(tmp_path):
    with KVS(statedir=tmp_path) as kvs:
        kvs.namespace_create("tmp")
        kvs.namespace_remove("tmp")
    with KVS(statedir=tmp_path) as kvs:
        assert not kvs.namespace_exists("tmp")


def test_without_autoflush_only_flushed_commits_survive(tmp_path):
    kvs = KVS(statedir=tmp_path, autoflush=False)
    kvs.commit(P, KVSTxn().put("a", 1))
    kvs.flush()
    kvs.commit(P, KVSTxn().put("b", 2))
    kvs.content._db.close()  # crash: no flush
    kvs.content._db = None
    kvs.content._release_lock()
    kvs = KVS(statedir=tmp_path)
    assert kvs.get(P, "a") == 1
    assert not kvs.exists(P, "b")
    kvs.close()


def test_second_kvs_on_a_statedir_gets_a_clear_error(tmp_path):
    first = KVS(statedir=tmp_path)
    with pytest.raises(StatedirBusyError, match=f"statedir {tmp_path} is in use"):
        KVS(statedir=tmp_path)
    first.close()


def test_shared_content_store_and_sha256(tmp_path):
    cs = ContentStore(hash_name="sha256")
    kvs = KVS(content=cs)
    ref, _ = kvs.commit(P, KVSTxn().put("a", 1))
    assert ref.startswith("sha256-") and ref in cs


def test_commits_leave_only_current_directories_in_the_cache(kvs):
    # a commit replaces the versions of the dirs it rewrites: those old versions
    # leave the directory cache (they are still in the content store), so the
    # cache holds the current roots' dirs instead of every version ever written
    for i in range(200):
        kvs.commit(P, KVSTxn().put(f"job.0000.{i % 4:04x}.eventlog", i))
        if i == 0:
            first = kvs.getroot(P)["rootref"]
    current = {kvs.getroot(P)["rootref"]}
    job = kvs.lookup(P, "job", flags=FLUX_KVS_TREEOBJ)["data"][0]
    current.add(job)
    current.update(kvs.lookup(P, f"job.0000.{i:04x}", flags=FLUX_KVS_TREEOBJ)["data"][0]
                   for i in range(4))
    current.add(kvs.lookup(P, "job.0000", flags=FLUX_KVS_TREEOBJ)["data"][0])
    assert current <= set(kvs._dirs)
    assert len(kvs._dirs) <= len(current) + 2      # (+ the empty dir, at most)
    # and an old root still reads back, from the content store
    assert kvs.get(P, "job.0000.0000.eventlog") == 196
    assert kvs.get(P, "job.0000.0000.eventlog", rootref=first) == 0


def _reachable(kvs, rootref):
    """Blobrefs of every directory in the tree under ``rootref``."""
    out, todo = set(), [rootref]
    while todo:
        ref = todo.pop()
        out.add(ref)
        todo.extend(e["data"][0] for e in kvs._dir_entries(ref).values()
                    if e["type"] == "dirref")
    return out


def test_unlinking_a_directory_drops_its_cached_tree(kvs):
    # issue 15: a purged job's directory (and any below it) waited in the cache for
    # the trim, pushing current directories out
    kvs.commit(P, KVSTxn().put("job.a.b.eventlog", "x").put("job.a.c.eventlog", "y")
               .put("job.d.eventlog", "z"))
    kvs.get(P, "job.a.b.eventlog")  # the reads cache their directories too
    under_a = _reachable(kvs, kvs.lookup(P, "job.a", treeobj=True)["data"][0])
    assert under_a <= set(kvs._dirs) and len(under_a) == 3
    kvs.commit(P, KVSTxn().unlink("job.a"))
    assert not under_a & set(kvs._dirs)
    assert kvs.get(P, "job.d.eventlog") == "z"
    with pytest.raises(KVSLookupError):
        kvs.get(P, "job.a.b.eventlog")


def test_unlinking_a_directory_the_same_commit_changed_drops_its_cached_tree(kvs):
    # the job manager's purge unlinks a batch of jobs and then the directory above
    # them that it emptied, in one commit: the first unlinks take that directory out
    # of the cache, and the jobs still in it must leave the cache with it (they were
    # left there unreachable, a third of a busy cache, issue 17)
    kvs.commit(P, KVSTxn().put("job.p.a.eventlog", "x").put("job.p.b.eventlog", "y")
               .put("job.p.c.eventlog", "w").put("job.q.eventlog", "z"))
    under_p = _reachable(kvs, kvs.lookup(P, "job.p", treeobj=True)["data"][0])
    assert under_p <= set(kvs._dirs) and len(under_p) == 4
    kvs.commit(P, KVSTxn().unlink("job.p.a").unlink("job.p"))
    assert not under_p & set(kvs._dirs)
    assert kvs.get(P, "job.q.eventlog") == "z"
    with pytest.raises(KVSLookupError):
        kvs.get(P, "job.p.b.eventlog")


def test_a_queue_longer_than_the_dir_cache_keeps_its_oldest_dirs_cached(tmp_path, monkeypatch):
    # jobs' dirs rewritten in the order they were written (a queue: the first job
    # queued runs first) outnumber the dirs the cache holds: it keeps the oldest, so
    # the first rewrites find theirs cached, where dropped oldest first every one of
    # them was read back from the content store's file (issue 17)
    from fluxnb.runtime.kvs import store
    monkeypatch.setattr(store, "DIR_CACHE_LIMIT", 300)
    cs = ContentStore(tmp_path, cache_bytes=1)  # no clean blob kept in memory
    kvs = KVS(content=cs)
    for i in range(600):
        kvs.commit(P, KVSTxn().put(f"job.0000.{i:04x}.eventlog", i))
    reads = []
    select = cs._select
    monkeypatch.setattr(cs, "_select", lambda sql, args: reads.append(args) or select(sql, args))
    for i in range(100):
        kvs.commit(P, KVSTxn().put(f"job.0000.{i:04x}.R", -i))
    assert reads == []
    assert len(kvs._dirs) <= 300
    assert kvs._dirs.get(kvs.getroot(P)["rootref"]) is not None  # the hot paths stay
    assert [kvs.get(P, f"job.0000.{i:04x}.eventlog") for i in range(600)] == list(range(600))
    assert [kvs.get(P, f"job.0000.{i:04x}.R") for i in range(100)] == [-i for i in range(100)]
