"""fluxnb.kvs mirrors flux.kvs: names, staging in the handle, KVSDir, walk."""

from __future__ import annotations

import errno

import pytest

from fluxnb import FluxError, kvs


def test_put_is_staged_until_commit(h):
    kvs.put(h, "api.staged", 1)
    assert not kvs.exists(h, "api.staged")
    kvs.commit(h)
    assert kvs.get(h, "api.staged") == 1


def test_values_round_trip_as_json(h):
    values = {"s": "text", "i": 3, "f": 1.5, "l": [1, "a"], "d": {"x": None}, "t": True}
    for k, v in values.items():
        kvs.put(h, f"api.json.{k}", v)
    kvs.commit(h)
    assert {k: kvs.get(h, f"api.json.{k}") for k in values} == values


def test_get_of_directory_is_kvsdir_and_isdir(h):
    kvs.put_mkdir(h, "api.dir.sub")
    kvs.put(h, "api.dir.file", "v")
    kvs.commit(h)
    d = kvs.get(h, "api.dir")
    assert isinstance(d, kvs.KVSDir)
    assert sorted(d) == ["file", "sub"] and d.files() == ["file"] and d.directories() == ["sub"]
    assert kvs.isdir(h, "api.dir") and not kvs.isdir(h, "api.dir.file")
    assert "file" in d and "nope" not in d


def test_kvsdir_is_a_mutable_mapping_with_commit(h):
    with kvs.KVSDir(h, "api.kd") as d:
        d["a"] = 1
        d.mkdir("m", {"x": 2})
    d = kvs.KVSDir(h, "api.kd")
    assert d["a"] == 1 and d["m"]["x"] == 2
    del d["a"]
    d.commit()
    with pytest.raises(KeyError):
        d["a"]


def test_unlink_and_symlink(h):
    kvs.put(h, "api.target", "t")
    kvs.put_symlink(h, "api.link", "api.target")
    kvs.commit(h)
    assert kvs.get(h, "api.link") == "t"
    assert kvs.readlink(h, "api.link") == (None, "api.target")
    kvs.put_unlink(h, "api.target")
    kvs.commit(h)
    with pytest.raises(FluxError) as exc:
        kvs.get(h, "api.link")
    assert exc.value.errno == errno.ENOENT


def test_walk_is_like_os_walk(h):
    kvs.put(h, "api.walk.a", 1)
    kvs.put(h, "api.walk.d.b", 2)
    kvs.put(h, "api.walk.d.e.c", 3)
    kvs.commit(h)
    got = {path: (sorted(dirs), sorted(files)) for path, dirs, files in kvs.walk("api.walk", flux_handle=h)}
    assert got == {"api.walk": (["d"], ["a"]), "api.walk.d": (["e"], ["b"]),
                   "api.walk.d.e": ([], ["c"])}
    order = [p for p, _, _ in kvs.walk("api.walk", topdown=True, flux_handle=h)]
    assert order[0] == "api.walk"


def test_txn_context_manager_commits_atomically(h):
    with kvs.KVSTxn(h, "api.txn") as txn:
        txn.put("a", 1)
        txn.put("b", 2)
    assert kvs.get(h, "api.txn.a") == 1 and kvs.get(h, "api.txn.b") == 2


def test_flux_kvs_namespace_env(h, monkeypatch):
    kvs.namespace_create(h, "envns")
    monkeypatch.setenv("FLUX_KVS_NAMESPACE", "envns")
    kvs.put(h, "k", "from env")
    kvs.commit(h)
    assert kvs.get(h, "k") == "from env"
    monkeypatch.delenv("FLUX_KVS_NAMESPACE")
    assert not kvs.exists(h, "k")
