"""The kvs service in a running instance: concurrency, atomicity, watch, restart."""

from __future__ import annotations

import base64
import errno
import threading

import pytest

import fluxnb
from fluxnb import Flux, FluxError, Instance
from fluxnb import kvs


def test_many_clients_committing_at_once_lose_nothing(instance):
    nclients, nkeys = 8, 60
    errors = []

    def client(c):
        try:
            with Flux(instance.rank_uri(c % 4)) as h:
                for i in range(nkeys):
                    kvs.put(h, f"conc.c{c}.k{i}", i)
                    kvs.commit(h)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(nclients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Flux(instance.uri) as h:
        for c in range(nclients):
            d = kvs.get_dir(h, f"conc.c{c}")
            assert {k: d[k] for k in d} == {f"k{i}": i for i in range(nkeys)}
        # every commit made a new root: one sequence number per commit at least
        assert kvs.getroot(h)["rootseq"] >= nclients * nkeys


def test_a_reader_never_sees_half_a_transaction(instance):
    stop = threading.Event()
    bad = []

    def writer():
        with Flux(instance.uri) as h:
            for i in range(300):
                with kvs.KVSTxn(h) as txn:
                    txn.put("pair.x", i)
                    txn.put("pair.y", i)
        stop.set()

    def reader():
        with Flux(instance.uri) as h:
            while not stop.is_set():
                try:
                    d = kvs.listdir(h, "pair")
                except FluxError:
                    continue
                x = base64.b64decode(d["x"]["data"]) if "x" in d else None
                y = base64.b64decode(d["y"]["data"]) if "y" in d else None
                if x != y:
                    bad.append((x, y))

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bad == []


def test_watch_delivers_every_change_in_order(instance):
    with Flux(instance.uri) as h, Flux(instance.rank_uri(2)) as w:
        kvs.put(h, "watched", 0)
        kvs.commit(h)
        stream = kvs.watch(w, "watched")
        first = next(stream)
        assert base64.b64decode(first["data"]) == b"0"
        for i in range(1, 101):
            kvs.put(h, "watched", i)
            kvs.put(h, "unrelated", i)  # commits that touch other keys send nothing
            kvs.commit(h)
            kvs.put(h, "unrelated", -i)
            kvs.commit(h)
        seen = [int(base64.b64decode(next(stream)["data"])) for _ in range(100)]
        assert seen == list(range(1, 101))
        stream.close()


def test_waitcreate_waits_for_the_key(instance):
    with Flux(instance.uri) as h, Flux(instance.uri) as w:
        rpc = w.rpc("kvs-watch.lookup", {"key": "later.key", "flags": kvs.FLUX_KVS_WAITCREATE}, nodeid=0)
        with pytest.raises(TimeoutError):
            rpc.get(timeout=0.2)
        kvs.put(h, "later.key", "here")
        kvs.commit(h)
        assert base64.b64decode(rpc.get(timeout=5)["val"]["data"]) == b'"here"'


def test_append_watch_streams_only_new_data(instance):
    with Flux(instance.uri) as h, Flux(instance.uri) as w:
        txn = kvs.KVSTxn(h)
        txn.append("log.ev", "a\n")
        txn.commit()
        stream = kvs.watch(w, "log.ev", flags=kvs.FLUX_KVS_WATCH_APPEND)
        assert base64.b64decode(next(stream)["data"]) == b"a\n"
        for line in ("b\n", "c\n"):
            txn.append("log.ev", line)
            txn.commit()
        assert base64.b64decode(next(stream)["data"]) == b"b\n"
        assert base64.b64decode(next(stream)["data"]) == b"c\n"
        stream.close()


def test_missing_key_and_bad_key_errors_name_the_key(instance):
    with Flux(instance.uri) as h:
        with pytest.raises(FluxError) as exc:
            kvs.get(h, "no.such.key")
        assert exc.value.errno == errno.ENOENT and "no.such.key" in str(exc.value)
        with pytest.raises(FluxError) as exc:
            kvs.get(h, "")
        assert exc.value.errno == errno.EINVAL
        with pytest.raises(FluxError) as exc:
            h.rpc("kvs.commit", {"ops": [{"key": "ok", "flags": 0, "dirent": {"ver": 1, "type": "val", "data": "MQ=="}},
                                          {"key": "bad", "flags": 0, "dirent": {"type": "bogus"}}]}, nodeid=0).get()
        assert "ops[1]" in str(exc.value)
        assert not kvs.exists(h, "ok")  # the whole transaction failed


def test_namespaces_are_isolated(instance):
    with Flux(instance.uri) as h:
        kvs.namespace_create(h, "nsA")
        kvs.put(h, "k", "in A", namespace="nsA")
        kvs.commit(h, namespace="nsA")
        assert kvs.get(h, "k", namespace="nsA") == "in A"
        assert not kvs.exists(h, "k")
        assert "nsA" in kvs.namespace_list(h)
        with pytest.raises(FluxError) as exc:
            kvs.namespace_create(h, "nsA")
        assert exc.value.errno == errno.EEXIST
        kvs.namespace_remove(h, "nsA")
        assert "nsA" not in kvs.namespace_list(h)


def test_restart_on_statedir_restores_every_key_and_namespace(tmp_path):
    statedir = tmp_path / "state"
    with Instance(test_size=2, statedir=str(statedir)) as inst:
        with Flux(inst.uri) as h:
            for i in range(50):
                kvs.put(h, f"persist.k{i}", {"i": i})
            kvs.commit(h)
            kvs.namespace_create(h, "kept")
            kvs.put(h, "inside", [1, 2, 3], namespace="kept")
            kvs.commit(h, namespace="kept")
            kvs.put_symlink(h, "lnk", "persist.k7")
            kvs.commit(h)
            seq = kvs.getroot(h)["rootseq"]
    with Instance(test_size=2, statedir=str(statedir)) as inst:
        with Flux(inst.uri) as h:
            assert [kvs.get(h, f"persist.k{i}") for i in range(50)] == [{"i": i} for i in range(50)]
            assert kvs.get(h, "inside", namespace="kept") == [1, 2, 3]
            assert kvs.get(h, "lnk") == {"i": 7}
            assert kvs.getroot(h)["rootseq"] >= seq  # never goes backwards


def test_second_instance_on_same_statedir_is_refused_and_first_keeps_serving(tmp_path):
    statedir = str(tmp_path / "busy")
    with Instance(test_size=1, statedir=statedir) as first:
        with pytest.raises(fluxnb.InstanceError, match="in use"):
            Instance(test_size=1, statedir=statedir).start()
        with Flux(first.uri) as h:
            kvs.put(h, "still", "ok")
            kvs.commit(h)
            assert kvs.get(h, "still") == "ok"


def test_a_waiter_ended_by_an_error_does_not_fail_the_commit(instance):
    """A waitcreate on "wk" ends with EISDIR when "wk" appears as a directory; the commit
    that made it still succeeds (the waiter's error is the waiter's alone)."""
    with Flux(instance.uri) as h, Flux(instance.uri) as w:
        rpc = w.rpc("kvs-watch.lookup", {"key": "wk", "flags": kvs.FLUX_KVS_WAITCREATE}, nodeid=0)
        with pytest.raises(TimeoutError):
            rpc.get(timeout=0.2)
        kvs.put(h, "wk.x", 1)
        kvs.commit(h)  # raised EIO before the fix
        with pytest.raises(FluxError) as exc:
            rpc.get(timeout=5)
        assert exc.value.errno == errno.EISDIR
        kvs.put(h, "wk.y", 2)
        kvs.commit(h)
        assert kvs.get(h, "wk.y") == 2
