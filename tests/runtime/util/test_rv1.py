"""RFC 20 R version 1. Vectors from RFC 20 (data/spec_20/example1.json) and
flux-core src/common/librlist/test/rlist.c (dumps, append, diff, union,
intersect, copy_ranks, remove_ranks, timelimits, by_rank_hostnames)."""

from __future__ import annotations

import json

import pytest

from fluxnb.runtime.util.hostlist import Hostlist
from fluxnb.runtime.util.idset import IDSet
from fluxnb.runtime.util.rv1 import (
    InvalidR,
    ResourceSet,
    ResourceSummary,
    encode_R_lite,
    expand_R_lite,
    resource_list,
    validate_R,
)

# RFC 20's example R.
RFC20_EXAMPLE = {
    "version": 1,
    "execution": {
        "R_lite": [{"rank": "19-22", "children": {"core": "0-47", "gpu": "0-7"}}],
        "nodelist": ["node[186-189]"],
        "nslots": 32,
        "starttime": 1676560542,
        "expiration": 1676562342,
    },
}


def R_create(ranks, cores, gpus=None, hosts=None):
    """Like flux-core's R_create() test helper."""
    children = {"core": cores or ""}
    if gpus is not None:
        children["gpu"] = gpus
    execution = {"R_lite": [{"rank": ranks, "children": children}]}
    if hosts is not None:
        execution["nodelist"] = [hosts]
    return ResourceSet({"version": 1, "execution": execution})


def test_rfc20_example():
    rs = ResourceSet(RFC20_EXAMPLE)
    assert rs.ranks.encode() == "19-22"
    assert (rs.nnodes, rs.ncores, rs.ngpus) == (4, 192, 32)
    assert rs.nodelist.encode() == "node[186-189]"
    assert rs.host(19) == "node186" and rs.host(22) == "node189"
    assert (rs.starttime, rs.expiration, rs.nslots) == (1676560542.0, 1676562342.0, 32)
    R = rs.to_R()
    assert R["execution"]["R_lite"] == RFC20_EXAMPLE["execution"]["R_lite"]
    assert ResourceSet(rs.encode()) == rs


def test_to_R_layout_matches_rlist_to_R():
    rs = R_create("0-1", "0-3", hosts="foo[0-1]")
    assert rs.to_R() == {
        "version": 1,
        "execution": {
            "R_lite": [{"rank": "0-1", "children": {"core": "0-3"}}],
            "starttime": 0.0,
            "expiration": 0.0,
            "nodelist": ["foo[0-1]"],
        },
    }
    assert list(rs.to_R()["execution"]) == ["R_lite", "starttime", "expiration", "nodelist"]


def test_dumps():
    assert ResourceSet().dumps() == ""
    rs = ResourceSet.from_ranks({0: {"core": "0-3"}})
    assert rs.dumps() == "rank0/core[0-3]"
    rs = ResourceSet.from_ranks({0: {"core": "0-3"}, 1: {"core": "0-7"},
                                 1234567: {"core": "0-12345"}, 1234568: {"core": "0-12346"}})
    assert rs.dumps() == ("rank0/core[0-3] rank1/core[0-7] "
                          "rank1234567/core[0-12345] rank1234568/core[0-12346]")


def test_dumps_groups_identical_ranks():
    # from test_1024n_4c: non-adjacent ranks with equal children share a group
    by_rank = {r: {"core": "0-1"} for r in list(range(512)) + list(range(522, 650))}
    by_rank.update({r: {"core": "0"} for r in range(512, 522)})
    assert ResourceSet.from_ranks(by_rank).dumps() == \
        "rank[0-511,522-649]/core[0-1] rank[512-521]/core0"


def test_R_lite_compresses_identical_children():
    R_lite = encode_R_lite({0: {"core": "0-3"}, 1: {"core": "0-1"}, 2: {"core": "0-1"}})
    assert R_lite == [{"rank": "0", "children": {"core": "0-3"}},
                      {"rank": "1-2", "children": {"core": "0-1"}}]
    assert encode_R_lite({5: {"gpu": [1], "core": IDSet("0-1")}, 6: {"core": ""}}) == \
        [{"rank": "5", "children": {"core": "0-1", "gpu": "1"}}]


def test_expand_R_lite_merges_repeated_ranks():
    # like test_append's "0","0-3" + "0","4-7"
    by_rank = expand_R_lite([{"rank": "0", "children": {"core": "0-3"}},
                             {"rank": "0", "children": {"core": "4-7"}}])
    assert by_rank == {0: {"core": IDSet("0-7")}}


@pytest.mark.parametrize("a, b, nodelist, ncores, nnodes", [
    (("1", "0-3", "foo15"), ("0", "0-3", "foo16"), "foo[16,15]", 8, 2),
    (("0,2-3", "0-3", "foo[0,2-3]"), ("1", "0-3", "foo1"), "foo[0-3]", 16, 4),
    (("0", "0-3", "foo0"), ("0", "4-7", "foo0"), "foo0", 8, 1),
])
def test_append(a, b, nodelist, ncores, nnodes):
    ra, rb = R_create(a[0], a[1], hosts=a[2]), R_create(b[0], b[1], hosts=b[2])
    u = ra | rb
    assert (u.ncores, u.nnodes, u.nodelist.encode()) == (ncores, nnodes, nodelist)


@pytest.mark.parametrize("a, b, result", [
    (("0", "0-3", None, "foo15"), ("0", "0-3", None, "foo15"), ""),
    (("0", "0-3", "0-1", "foo15"), ("0", "0-3", "0-1", "foo15"), ""),
    (("0", "0-3", None, "foo15"), ("0", "0-1", None, "foo15"), "rank0/core[2-3]"),
    (("0", "0-3", "0", "foo15"), ("0", "0-3", None, "foo15"), "rank0/gpu0"),
])
def test_diff(a, b, result):
    assert (R_create(*a) - R_create(*b)).dumps() == result


@pytest.mark.parametrize("a, b, result", [
    (("0", "0-3", None, "foo15"), ("0", "0-3", None, "foo15"), "rank0/core[0-3]"),
    (("0", "0-3", "0-1", "foo15"), ("1", "0-3", "0-1", "foo16"), "rank[0-1]/core[0-3],gpu[0-1]"),
    (("0", "0-3", None, "foo15"), ("0", None, "0", "foo15"), "rank0/core[0-3],gpu0"),
])
def test_union(a, b, result):
    assert (R_create(*a) | R_create(*b)).dumps() == result


@pytest.mark.parametrize("a, b, result", [
    (("0-10", "0-3", None, "foo[0-10]"), ("9-15", "1", None, "foo[9-15]"), "rank[9-10]/core1"),
    (("0", "0-3", "0-1", "foo15"), ("1", "0-3", "0-1", "foo16"), ""),
])
def test_intersect(a, b, result):
    assert (R_create(*a) & R_create(*b)).dumps() == result


def test_union_host_conflict():
    with pytest.raises(ValueError, match="rank 0 is host 'foo15'"):
        R_create("0", "0-3", hosts="foo15") | R_create("0", "4-7", hosts="foo16")


def test_free_cycle():
    """alloc, then free in two shards: the job manager's use."""
    total = R_create("0-3", "0-3", hosts="host[0-3]")
    alloc = ResourceSet.from_ranks({0: {"core": "0-3"}, 1: {"core": "0-1"}},
                                   hostnames={0: "host0", 1: "host1"})
    avail = total - alloc
    assert avail.dumps() == "rank1/core[2-3] rank[2-3]/core[0-3]"
    shard = alloc.copy_ranks("1")
    avail = avail | shard
    alloc = alloc - shard
    assert alloc.dumps() == "rank0/core[0-3]"
    avail = avail | alloc
    assert avail == total and avail.nodelist.encode() == "host[0-3]"


def test_copy_and_remove_ranks():
    rs = R_create("0-5", "0-3", "0", "foo[0-5]")
    cp = rs.copy_ranks(IDSet("1,3,5"))
    assert (cp.nnodes, cp.ncores, cp.dumps()) == (3, 12, "rank[1,3,5]/core[0-3],gpu0")
    assert cp.nodelist.encode() == "foo[1,3,5]"
    assert rs.copy_ranks("5-9").dumps() == "rank5/core[0-3],gpu0"
    assert rs.copy_ranks("9,20").dumps() == "" and rs.copy_ranks("9,20").nnodes == 0
    assert rs.remove_ranks("1,3,5").dumps() == "rank[0,2,4]/core[0-3],gpu0"
    assert rs.remove_ranks("5-9").dumps() == "rank[0-4]/core[0-3],gpu0"
    assert rs.remove_ranks("9,20").dumps() == "rank[0-5]/core[0-3],gpu0"


def test_timelimits_roundtrip():
    rs = R_create("0-1", "0-3", hosts="foo[0-1]")
    rs.starttime, rs.expiration = 1234.0, 2345.0
    again = ResourceSet(rs.to_R())
    assert (again.starttime, again.expiration) == (1234.0, 2345.0)


def test_by_rank_hostnames_nodelist():
    rs = ResourceSet.from_ranks({0: {"core": "0-3"}, 1: {"core": "0-1"}},
                                hostnames={0: "foo", 1: "bar"})
    assert rs.dumps() == "rank0/core[0-3] rank1/core[0-1]"
    assert rs.to_R()["execution"]["nodelist"] == ["foo,bar"]


def test_by_rank_and_counts():
    rs = R_create("0-1", "0-3", "0", "n[0-1]")
    assert rs.by_rank() == {0: {"core": IDSet("0-3"), "gpu": IDSet("0")},
                            1: {"core": IDSet("0-3"), "gpu": IDSet("0")}}
    assert rs.count("core") == 8 and rs.count("memory") == 0
    assert isinstance(rs.nodelist, Hostlist)
    assert rs.host_ranks("n1") == IDSet("1")
    with pytest.raises(ValueError, match="invalid hosts: n7"):
        rs.host_ranks("n[1,7]")


def test_properties():
    R = json.loads(json.dumps(RFC20_EXAMPLE))
    R["execution"]["properties"] = {"pdebug": "19-20", "amd-mi50@gpu": "22"}
    rs = ResourceSet(R)
    assert rs.properties == {"amd-mi50@gpu": IDSet("22"), "pdebug": IDSet("19-20")}
    assert rs.to_R()["execution"]["properties"] == {"amd-mi50@gpu": "22", "pdebug": "19-20"}
    assert rs.copy_ranks("20-21").properties == {"pdebug": IDSet("20")}


@pytest.mark.parametrize("mutate, path, rule", [
    (lambda R: R.pop("version"), "version", "missing"),
    (lambda R: R.update(version=2), "version", "must be 1"),
    (lambda R: R.pop("execution"), "execution", "missing"),
    (lambda R: R["execution"].pop("R_lite"), "execution.R_lite", "missing"),
    (lambda R: R["execution"].update(R_lite={}), "execution.R_lite", "must be an array"),
    (lambda R: R["execution"]["R_lite"][0].pop("rank"), "execution.R_lite[0].rank", "missing"),
    (lambda R: R["execution"]["R_lite"][0].update(rank="22-19"),
     "execution.R_lite[0].rank", "descending"),
    (lambda R: R["execution"]["R_lite"][0].update(rank=19), "execution.R_lite[0].rank",
     "idset string"),
    (lambda R: R["execution"]["R_lite"][0].pop("children"),
     "execution.R_lite[0].children", "missing"),
    (lambda R: R["execution"]["R_lite"][0]["children"].update(gpu="0,0"),
     "execution.R_lite[0].children.gpu", "ascending"),
    (lambda R: R["execution"].update(nodelist=["node[186-188]"]),
     "execution.nodelist", "3 hosts for 4 ranks"),
    (lambda R: R["execution"].update(nodelist=["node[186-"]),
     "execution.nodelist[0]", "unmatched"),
    (lambda R: R["execution"].update(nodelist="node[186-189]"),
     "execution.nodelist", "array"),
    (lambda R: R["execution"].update(expiration=5), "execution.expiration",
     "greater than starttime"),
    (lambda R: R["execution"].update(starttime="now"), "execution.starttime", "number"),
    (lambda R: R["execution"].update(properties={"a|b": "19"}),
     "execution.properties.a|b", "illegal character"),
    (lambda R: R["execution"].update(properties={"x": "0"}),
     "execution.properties.x", "ranks 0 are not in R_lite"),
    (lambda R: R["execution"].update(nslots=-1), "execution.nslots", "non-negative"),
])
def test_validation_errors_name_path_and_rule(mutate, path, rule):
    R = json.loads(json.dumps(RFC20_EXAMPLE))
    mutate(R)
    with pytest.raises(InvalidR) as exc:
        validate_R(R)
    assert exc.value.path == path
    assert rule in exc.value.rule
    assert str(exc.value).startswith(f"invalid R: {path}: ")


def test_validate_text_and_non_object():
    validate_R(json.dumps(RFC20_EXAMPLE))
    with pytest.raises(InvalidR, match="not valid JSON"):
        validate_R("{")
    with pytest.raises(InvalidR, match="must be an object"):
        validate_R("[]")


def test_resource_list_summary():
    R = R_create("0-3", "0-3", "0", "n[0-3]")
    alloc = ResourceSet.from_ranks({0: {"core": "0-3", "gpu": "0"}, 1: {"core": "0-1"}})
    rows = resource_list(R, alloc, down="3")
    assert rows == [
        ResourceSummary("free", 2, 6, 2, "1-2", "n[1-2]"),
        ResourceSummary("allocated", 2, 6, 1, "0-1", "n[0-1]"),
        ResourceSummary("down", 1, 4, 1, "3", "n3"),
    ]
    rows = resource_list(R.to_R())
    assert [(r.state, r.nnodes, r.ncores) for r in rows] == [
        ("free", 4, 16), ("allocated", 0, 0), ("down", 0, 0)]
