"""RFC 22 idsets. Vectors from flux-core src/common/libidset/test/idset.c
(test_inputs, test_iter, test_clear, test_range_clear) and RFC 22."""

from __future__ import annotations

import pytest

from fluxnb.runtime.util.idset import IDSet, decode, encode

# (input, ranges, brackets, expected) from flux-core's test_inputs[].
CODEC = [
    ("2", False, False, "2"),
    ("7-9", False, False, "7,8,9"),
    ("1,7-9", False, False, "1,7,8,9"),
    ("1,7-9,16", False, False, "1,7,8,9,16"),
    ("1,7-9,14,16", False, False, "1,7,8,9,14,16"),
    ("1-3,7-9,14,16", False, False, "1,2,3,7,8,9,14,16"),
    ("2,3,4,5", False, False, "2,3,4,5"),
    ("", False, False, ""),
    ("1048576", False, False, "1048576"),
    ("[2]", False, False, "2"),
    ("[7-9]", False, False, "7,8,9"),
    ("[2,3,4,5]", False, False, "2,3,4,5"),
    ("[0]", False, False, "0"),
    ("[]", False, False, ""),
    ("2", True, False, "2"),
    ("7-9", True, False, "7-9"),
    ("1,7-9", True, False, "1,7-9"),
    ("1,7-9,16", True, False, "1,7-9,16"),
    ("1,7-9,14,16", True, False, "1,7-9,14,16"),
    ("1-3,7-9,14,16", True, False, "1-3,7-9,14,16"),
    ("2,3,4,5", True, False, "2-5"),
    ("", True, False, ""),
    ("2", True, True, "2"),
    ("7-9", True, True, "[7-9]"),
    ("1,7-9", True, True, "[1,7-9]"),
    ("1,7-9,16", True, True, "[1,7-9,16]"),
    ("1,7-9,14,16", True, True, "[1,7-9,14,16]"),
    ("1-3,7-9,14,16", True, True, "[1-3,7-9,14,16]"),
    ("2,3,4,5", True, True, "[2-5]"),
    ("", True, True, ""),
]

# flux-core's "expected failures" in test_inputs[].
BAD = ["4.2", "x", "1-2x", "01,2", "00", "3,2", "3-0", "2,2,2,2", "[0", "0]",
       "[[0]]", "[[0,2]", "[0,2]]", "0,[2", "0]2", "0-", "[0-]", "-5", "[-5]"]


@pytest.mark.parametrize("s, ranges, brackets, expected", CODEC)
def test_codec(s, ranges, brackets, expected):
    assert IDSet.decode(s).encode(ranges=ranges, brackets=brackets) == expected


@pytest.mark.parametrize("s", BAD)
def test_decode_rejects(s):
    with pytest.raises(ValueError) as exc:
        IDSet.decode(s)
    assert f"'{s}'" in str(exc.value)


@pytest.mark.parametrize("s, why", [
    ("3,2", "ascending"),
    ("2,2", "ascending"),
    ("01,2", "leading zero"),
    ("3-0", "descending"),
    ("-5", "negative"),
    ("1,,2", "empty"),
    ("[0", "unbalanced"),
])
def test_decode_error_says_why(s, why):
    with pytest.raises(ValueError, match=why):
        IDSet.decode(s)


def test_rfc22_examples():
    assert list(IDSet("1,2,3,5,6,42")) == [1, 2, 3, 5, 6, 42]
    assert IDSet("1-3,5-6,42") == IDSet("1,2,3,5,6,42")
    assert IDSet("[1-3,5-6,42]").encode() == "1-3,5-6,42"


def test_decode_type_error():
    with pytest.raises(TypeError):
        IDSet.decode(5)  # type: ignore[arg-type]


def test_codec_large():
    ids = IDSet("0-5000")
    assert ids.encode(ranges=False).split(",") == [str(i) for i in range(5001)]
    assert len(ids) == 5001


def test_huge_range_is_cheap():
    ids = IDSet("0-4294967294")
    assert len(ids) == 4294967295
    assert ids.encode() == "0-4294967294"
    assert 123456789 in ids


def test_iter_first_last_next():
    ids = IDSet("7-9")
    assert (ids.first(), ids.last()) == (7, 9)
    assert [ids.next(7), ids.next(8), ids.next(9), ids.next(10)] == [8, 9, None, None]
    assert list(reversed(ids)) == [9, 8, 7]
    empty = IDSet()
    assert not empty and len(empty) == 0 and empty.count() == 0
    with pytest.raises(ValueError):
        empty.first()
    with pytest.raises(ValueError):
        empty.last()


def test_set_and_range_set():
    ids = IDSet()
    ids.add(0)
    ids.add(0)
    assert ids.count() == 1
    ids.add(3)
    ids.add(99)
    assert list(ids) == [0, 3, 99]
    ids = IDSet()
    ids.add_range(0, 2)
    ids.add_range(80, 79)  # reversed, like idset_range_set
    assert ids.encode() == "0-2,79-80" and ids.count() == 5


def test_clear():
    ids = IDSet("1-10")
    for i in range(1, 8):
        assert i in ids
        ids.discard(i)
        assert i not in ids
    assert ids.count() == 3
    ids.discard(100)
    assert ids.encode() == "8-10"
    ids = IDSet("1-10")
    ids.discard_range(2, 5)
    ids.discard_range(9, 6)
    assert list(ids) == [1, 10]
    with pytest.raises(KeyError):
        ids.remove(5)
    ids.clear()
    assert ids.encode() == ""


def test_copy_is_independent():
    ids = IDSet("1-5000")
    cpy = ids.copy()
    cpy.discard(100)
    assert (len(cpy), len(ids)) == (4999, 5000)
    assert IDSet(ids) == ids and IDSet(ids) is not ids


def test_from_ints_any_order():
    assert IDSet([5, 3, 2, 4, 3]).encode() == "2-5"
    with pytest.raises(ValueError, match="non-negative"):
        IDSet([1, -1])
    with pytest.raises(TypeError):
        IDSet([1, "2"])  # type: ignore[list-item]


def test_set_algebra():
    a, b = IDSet("0-9"), IDSet("5-14,20")
    assert (a | b).encode() == "0-14,20"
    assert (a & b).encode() == "5-9"
    assert (a - b).encode() == "0-4"
    assert (b - a).encode() == "10-14,20"
    assert (a ^ b).encode() == "0-4,10-14,20"
    assert a.union("20-21", [30]).encode() == "0-9,20-21,30"
    assert a.intersection([1, 2, 50]).encode() == "1-2"
    assert a.difference("0,2,4,6,8").encode() == "1,3,5,7,9"
    assert IDSet("1-2") <= a and IDSet("1-2") < a and not a < a
    assert a >= IDSet("3") and a > IDSet("3")
    assert a.isdisjoint("10-20") and not a.isdisjoint("9")
    assert IDSet("0-3") == {0, 1, 2, 3}


def test_subtract_splits_ranges():
    assert (IDSet("0-20") - IDSet("3,5-6,20")).encode() == "0-2,4,7-19"
    assert (IDSet("0-3,10-13") - IDSet("2-11")).encode() == "0-1,12-13"


def test_inplace_ops():
    a = IDSet("0-3")
    a |= IDSet("5")
    a -= IDSet("1")
    a &= IDSet("0-4")
    assert a.encode() == "0,2-3"


def test_nth_and_index():
    ids = IDSet("0-1,8-9")
    assert [ids.nth(i) for i in range(4)] == [0, 1, 8, 9]
    assert ids.nth(-1) == 9
    assert [ids.index(i) for i in ids] == [0, 1, 2, 3]
    with pytest.raises(IndexError):
        ids.nth(4)
    with pytest.raises(ValueError):
        ids.index(5)


def test_ranges_and_repr():
    ids = IDSet("0-3,5")
    assert ids.ranges() == [(0, 3), (5, 5)]
    assert repr(ids) == "IDSet('0-3,5')" and str(ids) == "0-3,5"


def test_encode_cache_invalidated():
    ids = IDSet("0-3")
    assert ids.encode() == "0-3"
    ids.add(4)
    assert ids.encode() == "0-4"


def test_not_hashable():
    with pytest.raises(TypeError):
        hash(IDSet("1"))


def test_module_functions():
    assert decode("[0-2]").count() == 3
    assert encode([3, 1, 2, 7]) == "1-3,7"
    assert encode(IDSet("1-3"), brackets=True) == "[1-3]"
