"""RFC 29 hostlists. Vectors from RFC 29's test vectors and flux-core
src/common/libhostlist/test/hostlist.c (codec, find, delete, sortuniq,
append, nth, invalid decode, iteration)."""

from __future__ import annotations

import pytest

from fluxnb.runtime.util.hostlist import Hostlist, decode

# RFC 29 "Test Vectors": hostlist = expanded list.
RFC29 = [
    ("", ""),
    ("foox,fooy,fooz", "foox,fooy,fooz"),
    ("[1-3,5-6]", "1,2,3,5,6"),
    ("foo[1-5]", "foo1,foo2,foo3,foo4,foo5"),
    ("foo[0-4]-eth2", "foo0-eth2,foo1-eth2,foo2-eth2,foo3-eth2,foo4-eth2"),
    ("foo1,foo1,foo1", "foo1,foo1,foo1"),
    ("[00-02]", "00,01,02"),
    ("[00-2]", "00,01,02"),
    ("foo[1,1,2,1]", "foo1,foo1,foo2,foo1"),
]

# flux-core codec_tests[]: (input, encoded, count).
CODEC = [
    ("foo-1a-2,foo-1a-3", "foo-1a-[2-3]", 2),
    ("foo1,foo2,foo3,fooi", "foo[1-3],fooi", 4),
    ("foo1,fooi,foo2,foo3", "foo1,fooi,foo[2-3]", 4),
    ("fooi,foo1,foo2,foo3", "fooi,foo[1-3]", 4),
    ("fooi,foo1,foo2,foo3,foo5,foo7,foo8", "fooi,foo[1-3,5,7-8]", 7),
    ("1,2,3,4,5,9", "[1-5,9]", 6),
    (",1,2,3,4,5,9", "[1-5,9]", 6),
    (",1,2,3,4,5,9,", "[1-5,9]", 6),
    ("[1-5]", "[1-5]", 5),
    ("foo[1,3]-bar", "foo1-bar,foo3-bar", 2),
    ("[00-03]p", "00p,01p,02p,03p", 4),
    ("p[00-3]p", "p00p,p01p,p02p,p03p", 4),
    ("14636", "14636", 1),
    ("mcr[336-359,488-550,553,556,559,561,567,569-571,573-575,578,581,584,"
     "587-589,592,594,597,600-602,605,608,610,618-622,627,634,636-670,687-696,"
     "699-733,735-742,744-760,762-773]",
     "mcr[336-359,488-550,553,556,559,561,567,569-571,573-575,578,581,584,"
     "587-589,592,594,597,600-602,605,608,610,618-622,627,634,636-670,687-696,"
     "699-733,735-742,744-760,762-773]", 237),
]

# flux-core test_invalid_decode inputs.
INVALID = ["[]", "foo[]", "foo[", "foo[1,3", "foo[[1,3]", "foo]", "foo[x-y]",
           "foo[0-1,2--5]"]

# flux-core find_tests[]: (hostlist, host, index).
FIND = [
    ("tst0", "tst", -1), ("tst0,tst", "tst", 1), ("tst,tst0", "tst", 0),
    ("tst", "tst0", -1), ("foo[1-5]-eth0", "foo3-eth0", 2),
    ("foo[1-5]", "foo3-eth0", -1), ("[0-5]", "3", 3), ("[0-5]i", "0", -1),
    ("i[0-5]", "i00", -1), ("i[00-05]", "i00", 0), ("i[00-05]", "i04", 4),
    ("f00[7-8]", "f007", 0), ("f00[7-8,10]", "f0010", 2),
    ("f0010001[07-08]", "f001000108", 1), ("cornp2", "corn", -1),
    ("cornp2", "corn2", -1), ("corn-p2", "corn2", -1), ("corn1-p2", "corn2", -1),
]

# flux-core delete_tests[]: (hostlist, delete, count, result).
DELETE = [
    ("foo[2-5]", "foo6", 0, "foo[2-5]"),
    ("foo[2-5]", "foo3", 1, "foo[2,4-5]"),
    ("foo[2-5],fooi", "fooi", 1, "foo[2-5]"),
    ("foo[2-5],fooi", "foo3", 1, "foo[2,4-5],fooi"),
    ("foo[2-5],fooi", "foo[1-2]", 1, "foo[3-5],fooi"),
    ("foo[0-7]", "foo[1,0,2-7]", 8, ""),
    ("foo[2-4]-eth2", "foo3-eth2", 1, "foo2-eth2,foo4-eth2"),
]

# flux-core sortuniq_tests[]: (input, sorted, uniq).
SORTUNIQ = [
    ("foo,f,bar,baz", "bar,baz,f,foo", "bar,baz,f,foo"),
    ("[5-6],[3-4],[1-2,0]", "[0-6]", "[0-6]"),
    ("[0-20],12,15", "[0-12,12-15,15-20]", "[0-20]"),
    ("0,1,2,3,4,5,1,5", "[0-1,1-5,5]", "[0-5]"),
    ("[0-20],45,12,15", "[0-12,12-15,15-20,45]", "[0-20,45]"),
    ("[0-20],45,12,015", "[0-12,12-20,45,015]", "[0-20,45,015]"),
    ("bar1,bar2,foo1,foo,foo", "bar[1-2],foo,foo,foo1", "bar[1-2],foo,foo1"),
    ("foo[5-6],foo3,foo4", "foo[3-6]", "foo[3-6]"),
    ("foo[5-6],foo[4-7]", "foo[4-5,5-6,6-7]", "foo[4-7]"),
    ("foo[0-3],foo[0-3]", "foo[0,0-1,1-2,2-3,3]", "foo[0-3]"),
    ("foo[0-2],foo[0-2],foo[0-2]", "foo[0,0,0-1,1,1-2,2,2]", "foo[0-2]"),
]

# flux-core iterator_inputs[]: re-appending every host gives the input back.
ITERATION = [
    "",
    "mcr[774-796,799-814,986,1096-1114,1147-1151]",
    "really-long-hostname-prefix[10101,55,35,2]",
    "[336-359,488-550,553,556,559,561,567,569-571,573-575,578,581,584,587-589]",
    "one,two,three,four,five",
]


@pytest.mark.parametrize("s, expanded", RFC29)
def test_rfc29_vectors(s, expanded):
    assert ",".join(Hostlist(s)) == expanded


@pytest.mark.parametrize("s, encoded, count", CODEC)
def test_codec(s, encoded, count):
    hl = Hostlist.decode(s)
    assert len(hl) == count and hl.count() == count
    assert hl.encode() == encoded
    assert hl.copy().encode() == encoded


@pytest.mark.parametrize("s", INVALID)
def test_invalid_decode(s):
    with pytest.raises(ValueError) as exc:
        Hostlist.decode(s)
    assert f"'{s}'" in str(exc.value)


@pytest.mark.parametrize("s, why", [
    ("foo[", "unmatched '\\['"),
    ("foo]", "unmatched '\\]'"),
    ("foo[]", "empty range"),
    ("foo[3-1]", "descending"),
    ("foo[x-y]", "not an id"),
])
def test_invalid_decode_says_why(s, why):
    with pytest.raises(ValueError, match=why):
        Hostlist.decode(s)


def test_too_large_range():
    with pytest.raises(ValueError, match="more than 1048576 hosts"):
        Hostlist.decode("foo[0-1048576]")


def test_empty():
    hl = Hostlist()
    assert len(hl) == 0 and hl.encode() == "" and list(hl) == []
    assert Hostlist("").encode() == ""
    with pytest.raises(IndexError):
        hl[0]


def test_append():
    hl = Hostlist()
    assert hl.append("") == 0 and len(hl) == 0
    assert hl.append("foo12") == 1
    assert hl.append("foo[4,1-2]") == 3
    assert len(hl) == 4 and hl.encode() == "foo[12,4,1-2]"
    assert hl.append(Hostlist("bar[26-30]")) == 5
    assert len(hl) == 9 and hl.encode() == "foo[12,4,1-2],bar[26-30]"


def test_append_joins_neighbours():
    hl = Hostlist()
    for host in ["node0", "node1", "node2", "node3", "node7", "login1"]:
        hl.append(host)
    assert hl.encode() == "node[0-3,7],login1"
    # foo9 then foo10: widths are compatible
    assert Hostlist("foo9,foo10").encode() == "foo[9-10]"
    # but foo9 then foo010 are not (zero padding differs)
    assert Hostlist("foo9,foo010").encode() == "foo[9,010]"


def test_zero_padded_and_multiple_ranges():
    hl = Hostlist("node[00-03]")
    assert hl.expand() == ["node00", "node01", "node02", "node03"]
    assert hl.encode() == "node[00-03]"
    assert Hostlist("node[0-3,7],login1").expand() == [
        "node0", "node1", "node2", "node3", "node7", "login1"]
    assert Hostlist("a[1-2],b[3-4]").encode() == "a[1-2],b[3-4]"


def test_bracket_in_suffix_expands_as_product():
    assert Hostlist("r[1-2]n[1-2]").expand() == ["r1n1", "r1n2", "r2n1", "r2n2"]


def test_separators():
    assert Hostlist("a1 a2\ta3").encode() == "a[1-3]"


def test_nth():
    hl = Hostlist("foo[1-2,4,5],bar")
    assert len(hl) == 5
    assert (hl[0], hl[4], hl[2], hl[-1]) == ("foo1", "bar", "foo4", "bar")
    with pytest.raises(IndexError):
        hl[5]
    assert hl[1:3].encode() == "foo[2,4]"


@pytest.mark.parametrize("s, host, index", FIND)
def test_find(s, host, index):
    hl = Hostlist(s)
    assert hl.find(host) == index
    assert (host in hl) == (index >= 0)
    if index >= 0:
        assert hl.index(host) == index
    else:
        with pytest.raises(ValueError):
            hl.index(host)


@pytest.mark.parametrize("s, delete, count, result", DELETE)
def test_delete(s, delete, count, result):
    hl = Hostlist(s)
    assert hl.delete(delete) == count
    assert hl.encode() == result
    assert len(hl) == len(Hostlist(s)) - count


@pytest.mark.parametrize("s, sort, uniq", SORTUNIQ)
def test_sort_uniq(s, sort, uniq):
    hl = Hostlist(s)
    assert hl.sort() is hl
    assert hl.encode() == sort
    assert len(hl) == len(Hostlist(s))
    hl2 = Hostlist(s).uniq()
    assert hl2.encode() == uniq
    assert len(hl2) == len(set(Hostlist(s)))


@pytest.mark.parametrize("s", ITERATION)
def test_iteration_roundtrip(s):
    hl = Hostlist(s)
    nl = Hostlist()
    for host in hl:
        nl.append(host)
    assert nl.encode() == s
    if s:
        assert (hl[0], hl[-1]) == (list(hl)[0], list(hl)[-1])


def test_encode_large():
    hl = Hostlist()
    for _ in range(8192):
        hl.append("host")
    assert len(hl) == 8192 and len(hl.encode()) > 0


def test_equality_and_repr():
    assert Hostlist("foo[1-3]") == Hostlist(["foo1", "foo2", "foo3"])
    assert Hostlist("foo[1-3]") != Hostlist("foo[3,1-2]")
    assert repr(Hostlist("foo[1-3]")) == "Hostlist('foo[1-3]')"
    assert decode("a,b").expand() == ["a", "b"]
    with pytest.raises(TypeError):
        Hostlist.decode(None)  # type: ignore[arg-type]
