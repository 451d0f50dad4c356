"""RFC 11 tree objects: construction, validation, canonical encoding."""

from __future__ import annotations

import base64
import json

import pytest

from fluxnb.runtime.kvs import treeobj
from fluxnb.runtime.kvs.blobref import blobref_hash

REF = blobref_hash(b"x")
REF2 = blobref_hash(b"y")


def test_val_holds_base64_data():
    obj = treeobj.create_val(b"\x00\x01hello")
    assert obj == {"ver": 1, "type": "val", "data": base64.b64encode(b"\x00\x01hello").decode()}
    assert treeobj.decode_val(obj) == b"\x00\x01hello"


def test_constructors_make_the_rfc11_shapes():
    assert treeobj.create_valref([REF, REF2]) == {"ver": 1, "type": "valref", "data": [REF, REF2]}
    assert treeobj.create_valref(REF)["data"] == [REF]
    assert treeobj.create_dirref(REF) == {"ver": 1, "type": "dirref", "data": [REF]}
    assert treeobj.create_dir() == {"ver": 1, "type": "dir", "data": {}}
    assert treeobj.create_symlink("a.b") == {"ver": 1, "type": "symlink", "data": {"target": "a.b"}}
    assert treeobj.create_symlink("b.b", "ns")["data"] == {"namespace": "ns", "target": "b.b"}


@pytest.mark.parametrize(
    "obj",
    [
        treeobj.create_val(b""),
        treeobj.create_valref([REF, REF2]),
        treeobj.create_dirref(REF),
        treeobj.create_symlink("a.b", "other"),
        treeobj.create_dir({"a": treeobj.create_val(b"1"),
                            "d": treeobj.create_dir({"x": treeobj.create_dirref(REF)})}),
    ],
)
def test_valid_objects_validate_and_roundtrip(obj):
    treeobj.validate(obj)
    assert treeobj.decode(treeobj.encode(obj)) == obj


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ([], "a tree object is a JSON object"),
        ({"ver": 2, "type": "val", "data": ""}, r"treeobj\.ver"),
        ({"ver": True, "type": "val", "data": ""}, r"treeobj\.ver"),
        ({"ver": 1, "type": "hdir", "data": {}}, "unknown type 'hdir'"),
        ({"ver": 1, "type": "val"}, "missing 'data'"),
        ({"ver": 1, "type": "val", "data": 42}, "base64 string"),
        ({"ver": 1, "type": "val", "data": "not base64!"}, "invalid base64"),
        ({"ver": 1, "type": "valref", "data": []}, "non-empty list"),
        ({"ver": 1, "type": "valref", "data": ["sha1-xyz"]}, r"data\[0\]"),
        ({"ver": 1, "type": "dirref", "data": [REF, REF2]}, "exactly one blobref"),
        ({"ver": 1, "type": "symlink", "data": {}}, "string 'target'"),
        ({"ver": 1, "type": "symlink", "data": {"target": "a", "namespace": ""}}, "namespace"),
        ({"ver": 1, "type": "dir", "data": {"a": {"ver": 1, "type": "val", "data": 1}}},
         r"treeobj\.data\['a'\]\.data"),
        ({"ver": 1, "type": "dir", "data": {"a.b": treeobj.create_val(b"")}}, "entry name"),
    ],
)
def test_invalid_objects_are_rejected_with_the_offending_member(obj, match):
    with pytest.raises(treeobj.TreeobjError, match=match):
        treeobj.validate(obj)


def test_decode_rejects_non_json():
    with pytest.raises(treeobj.TreeobjError, match="not valid JSON"):
        treeobj.decode(b"{nope")


def test_encoding_is_canonical_sorted_and_compact():
    a = {"ver": 1, "type": "dir", "data": {"b": treeobj.create_val(b"2"),
                                             "a": treeobj.create_val(b"1")}}
    b = {"data": {"a": treeobj.create_val(b"1"), "b": treeobj.create_val(b"2")},
         "type": "dir", "ver": 1}
    assert treeobj.encode(a) == treeobj.encode(b)
    text = treeobj.encode(a).decode()
    assert " " not in text
    assert text == json.dumps(a, sort_keys=True, separators=(",", ":"))


def test_fast_entry_and_dir_encoders_match_the_canonical_encoding():
    entries = {
        "z": treeobj.create_dirref(REF),
        "a": treeobj.create_valref([REF, REF2]),
        "m": treeobj.create_val(b"hello"),
        "é": treeobj.create_symlink("x.y", "ns"),
        'q"uote': {"ver": 1, "type": "val", "data": "", "size": 0},
    }
    for e in entries.values():
        assert treeobj.dumps_entry(e) == treeobj.dumps(e)
    pieces = {name: treeobj.dir_piece(name, e) for name, e in entries.items()}
    assert treeobj.encode_dir_pieces(pieces) == treeobj.encode(treeobj.create_dir(entries))
