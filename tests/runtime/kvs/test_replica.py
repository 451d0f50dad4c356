"""A handle's read replica of the KVS: strictly consistent, and silent when it can be.

flux-core's KVS promises that once a commit has completed, a lookup on the rank
that holds the namespace sees it; ``fluxnb.kvs`` answers lookups from blobs cached
in the client, so these tests check that it never answers anything the service
would not answer at the same moment.
"""

from __future__ import annotations

import errno
import os
import signal
import time

import pytest

from fluxnb import Flux, FluxError, kvs
from fluxnb.runtime.kvs.replica import replica


def _service(h, key, flags=0, namespace=None):
    """The service's own answer, bypassing the replica."""
    payload = {"key": key, "flags": flags}
    if namespace:
        payload["namespace"] = namespace
    return h.rpc("kvs.lookup", payload, nodeid=0).get()["val"]


def _warm(h, key):
    for _ in range(6):      # board, root, then one blob per level: a few lookups
        kvs.get(h, key)
    return replica(h)


def test_another_clients_commit_is_seen_at_once(any_instance):
    with Flux(any_instance.uri) as a, Flux(any_instance.rank_uri(3)) as b:
        kvs.put(a, "rep.x.v", 1)
        kvs.commit(a)
        rep = _warm(a, "rep.x.v")
        before = rep.stats["local"]
        assert kvs.get(a, "rep.x.v") == 1
        assert rep.stats["local"] == before + 1          # answered without a message
        for i in range(2, 40):
            kvs.put(b, "rep.x.v", i)
            kvs.commit(b)                                # completed: a must see it now
            assert kvs.get(a, "rep.x.v") == i
        # and its own writes, read back at once
        kvs.put(a, "rep.x.w", "mine")
        kvs.commit(a)
        assert kvs.get(a, "rep.x.w") == "mine"


def test_answers_and_errors_are_the_services(any_instance):
    with Flux(any_instance.uri) as h:
        txn = kvs.KVSTxn(h, "rep.e")
        txn.put("val", {"a": [1, 2]})
        txn.put("big", "x" * 5000)                       # stored as a valref
        txn.put_symlink("link", "rep.e.val")
        txn.put_mkdir("emptydir")
        txn.commit()
        _warm(h, "rep.e.val")
        _warm(h, "rep.e.big")
        cases = [("rep.e.val", 0), ("rep.e.big", 0), ("rep.e.link", 0),
                 ("rep.e.link", kvs.FLUX_KVS_READLINK), ("rep.e", kvs.FLUX_KVS_READDIR),
                 ("rep.e.val", kvs.FLUX_KVS_TREEOBJ),
                 ("rep.e.nothere", 0), ("rep.e.val.below", 0), ("rep.e", 0),
                 ("rep.e.val", kvs.FLUX_KVS_READDIR), ("rep.e.val", kvs.FLUX_KVS_READLINK),
                 ("rep..e.val", 0)]
        for key, flags in cases:
            for _ in range(3):
                try:
                    got = ("ok", kvs.lookup(h, key, flags=flags))
                except FluxError as exc:
                    got = ("error", exc.errno, str(exc))
            try:
                want = ("ok", _service(h, key, flags))
            except FluxError as exc:
                want = ("error", exc.errno, str(exc))
            assert got == want, (key, flags)
        # flux-core's errnos (RFC 11 lookups)
        with pytest.raises(FluxError) as e:
            kvs.get(h, "rep.e.nothere")
        assert e.value.errno == errno.ENOENT
        with pytest.raises(FluxError) as e:
            kvs.lookup(h, "rep.e.val.below")
        assert e.value.errno == errno.ENOTDIR
        assert kvs.get(h, "rep.e.big") == "x" * 5000
        assert kvs.get(h, "rep.e.link") == {"a": [1, 2]}


def test_symlink_into_another_namespace(any_instance):
    with Flux(any_instance.uri) as h:
        kvs.namespace_create(h, "rep-other")
        try:
            kvs.put(h, "t.v", 42, namespace="rep-other")
            kvs.commit(h, namespace="rep-other")
            kvs.put_symlink(h, "rep.s.link", "t.v")
            txn = kvs.KVSTxn(h)
            txn.put_symlink("rep.s.link", "t.v", target_namespace="rep-other")
            txn.commit()
            for _ in range(5):
                assert kvs.get(h, "rep.s.link") == 42
            kvs.put(h, "t.v", 43, namespace="rep-other")
            kvs.commit(h, namespace="rep-other")
            assert kvs.get(h, "rep.s.link") == 43
        finally:
            kvs.namespace_remove(h, "rep-other")


def test_removed_namespace_is_not_served_from_cache(any_instance):
    with Flux(any_instance.uri) as h:
        kvs.namespace_create(h, "rep-gone")
        kvs.put(h, "k", "v", namespace="rep-gone")
        kvs.commit(h, namespace="rep-gone")
        for _ in range(5):
            assert kvs.get(h, "k", namespace="rep-gone") == "v"
        kvs.namespace_remove(h, "rep-gone")
        with pytest.raises(FluxError) as e:
            kvs.get(h, "k", namespace="rep-gone")
        assert e.value.errno == errno.ENOTSUP


def test_snapshot_lookups_read_the_old_root(any_instance):
    with Flux(any_instance.uri) as h:
        kvs.put(h, "rep.snap", "old")
        kvs.commit(h)
        root = kvs.getroot(h)["rootref"]
        kvs.put(h, "rep.snap", "new")
        kvs.commit(h)
        for _ in range(4):
            assert kvs.lookup(h, "rep.snap", rootref=root)["data"] == _service_b64("old")
        assert kvs.get(h, "rep.snap") == "new"


def _service_b64(value):
    import base64
    import json
    return base64.b64encode(json.dumps(value).encode()).decode()


def test_reloaded_kvs_module_is_never_answered_from_the_old_cache():
    # a reloaded kvs keeps its data (its content store is backed) but starts a new
    # root board: a replica watching the old board must notice, or it would serve
    # values from before the reload forever
    from fluxnb import Instance
    with Instance(test_size=1) as inst, Flux(inst.uri) as h, Flux(inst.uri) as other:
        kvs.put(h, "rep.r", 1)
        kvs.commit(h)
        _warm(h, "rep.r")
        h.rpc("module.remove", {"name": "kvs"}, nodeid=0).get()
        h.rpc("module.load", {"name": "kvs"}, nodeid=0).get()
        assert kvs.get(h, "rep.r") == 1
        kvs.put(other, "rep.r", 2)
        kvs.commit(other)
        for _ in range(5):
            assert kvs.get(h, "rep.r") == 2
        kvs.put(other, "rep.r", 3)
        kvs.commit(other)
        assert kvs.get(h, "rep.r") == 3


def test_warm_lookups_need_no_broker():
    # stop the broker process outright: a cached lookup still answers, because it
    # sends nothing; an uncached one waits for the broker, as it must
    from fluxnb import Instance
    with Instance(test_size=1, processes=True) as inst, Flux(inst.uri) as h:
        kvs.put(h, "rep.q.a", "A")
        kvs.put(h, "rep.q.b", "B")
        kvs.commit(h)
        _warm(h, "rep.q.a")
        pid = inst._procs[0].pid
        os.kill(pid, signal.SIGSTOP)
        try:
            t0 = time.perf_counter()
            assert [kvs.get(h, "rep.q.a") for _ in range(1000)] == ["A"] * 1000
            assert kvs.get(h, "rep.q.b") == "B"          # same directory blob: cached too
            assert time.perf_counter() - t0 < 5
        finally:
            os.kill(pid, signal.SIGCONT)


def test_cache_can_be_turned_off(any_instance, monkeypatch):
    monkeypatch.setenv("FLUXNB_KVS_CACHE", "0")
    with Flux(any_instance.uri) as h:
        kvs.put(h, "rep.off", 5)
        kvs.commit(h)
        assert kvs.get(h, "rep.off") == 5
        assert replica(h) is None
