"""KVS tree objects, version 1 (RFC 11).

A tree object is a JSON object ``{"ver": 1, "type": T, "data": D}``:

========  ==================================================================
type      data
========  ==================================================================
val       base64 string of the value's bytes
valref    array of blobrefs; the value is their blobs concatenated
dir       object mapping names to tree objects
dirref    array of one blobref naming a stored ``dir``
symlink   ``{"target": key}`` or ``{"namespace": ns, "target": key}``
========  ==================================================================

(``hdir`` is reserved by RFC 11 and, as in flux-core, not implemented.)

Tree objects are plain ``dict`` values here. Objects stored in the content store
are encoded canonically (sorted keys, compact separators, UTF-8), so equal objects
always hash to the same blobref.

Examples
--------
>>> dumps(create_val(b"42"))
'{"data":"NDI=","type":"val","ver":1}'
>>> decode_val(create_val(b"42"))
b'42'
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Literal

from fluxnb.runtime.kvs.blobref import BlobrefError, blobref_validate

__all__ = [
    "TREEOBJ_VERSION",
    "TreeobjError",
    "TreeobjType",
    "create_dir",
    "create_dirref",
    "create_symlink",
    "create_val",
    "create_valref",
    "decode",
    "decode_val",
    "dumps",
    "dir_piece",
    "dumps_entry",
    "encode_dir_pieces",
    "encode",
    "validate",
]

TREEOBJ_VERSION = 1
TreeobjType = Literal["val", "valref", "dir", "dirref", "symlink"]
TYPES: frozenset[str] = frozenset(("val", "valref", "dir", "dirref", "symlink"))

_dumps = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False
).encode
_quote = json.encoder.encode_basestring  # type: ignore[attr-defined]


class TreeobjError(ValueError):
    """A tree object does not follow RFC 11."""


# --- construction -----------------------------------------------------------


def create_val(data: bytes) -> dict[str, Any]:
    """Return a ``val`` holding ``data`` (base64-encoded)."""
    return {"ver": 1, "type": "val", "data": base64.b64encode(data).decode("ascii")}


def create_valref(blobrefs: str | list[str]) -> dict[str, Any]:
    """Return a ``valref`` over one blobref or a list of them."""
    refs = [blobrefs] if isinstance(blobrefs, str) else list(blobrefs)
    return {"ver": 1, "type": "valref", "data": refs}


def create_dir(entries: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Return a ``dir``, empty unless ``entries`` (name -> tree object) is given."""
    return {"ver": 1, "type": "dir", "data": dict(entries or {})}


def create_dirref(blobref: str) -> dict[str, Any]:
    """Return a ``dirref`` naming the stored ``dir`` at ``blobref``."""
    return {"ver": 1, "type": "dirref", "data": [blobref]}


def create_symlink(target: str, namespace: str | None = None) -> dict[str, Any]:
    """Return a ``symlink`` to key ``target``, optionally in another namespace."""
    data = {"target": target}
    if namespace is not None:
        data["namespace"] = namespace
    return {"ver": 1, "type": "symlink", "data": data}


# --- validation -------------------------------------------------------------


def validate(obj: Any, where: str = "treeobj") -> None:
    """Raise `TreeobjError` naming the first RFC 11 violation in ``obj``.

    Directories are checked recursively. ``where`` prefixes messages, so a caller
    can say which object was bad (``ops[2].dirent``).

    Examples
    --------
    >>> validate({"ver": 1, "type": "val", "data": 42})
    Traceback (most recent call last):
    ...
    fluxnb.runtime.kvs.treeobj.TreeobjError: treeobj.data: a val's data is a base64 string
    """
    if not isinstance(obj, dict):
        raise TreeobjError(f"{where}: a tree object is a JSON object")
    if obj.get("ver") != TREEOBJ_VERSION or type(obj.get("ver")) is not int:
        raise TreeobjError(f"{where}.ver: expected {TREEOBJ_VERSION}, got {obj.get('ver')!r}")
    kind = obj.get("type")
    if kind not in TYPES:
        raise TreeobjError(
            f"{where}.type: unknown type {kind!r} (expected one of {', '.join(sorted(TYPES))})"
        )
    if "data" not in obj:
        raise TreeobjError(f"{where}: missing 'data'")
    data = obj["data"]
    if kind == "val":
        if not isinstance(data, str):
            raise TreeobjError(f"{where}.data: a val's data is a base64 string")
        try:
            binascii.a2b_base64(data, strict_mode=True)
        except (binascii.Error, ValueError):
            raise TreeobjError(f"{where}.data: invalid base64") from None
    elif kind in ("valref", "dirref"):
        if not isinstance(data, list) or not data:
            raise TreeobjError(f"{where}.data: a {kind}'s data is a non-empty list of blobrefs")
        if kind == "dirref" and len(data) != 1:
            raise TreeobjError(f"{where}.data: a dirref holds exactly one blobref")
        for i, ref in enumerate(data):
            try:
                blobref_validate(ref)
            except BlobrefError as exc:
                raise TreeobjError(f"{where}.data[{i}]: {exc}") from None
    elif kind == "dir":
        if not isinstance(data, dict):
            raise TreeobjError(f"{where}.data: a dir's data is an object of entries")
        for name, entry in data.items():
            if not name or "." in name:
                raise TreeobjError(f"{where}.data: invalid entry name {name!r}")
            validate(entry, f"{where}.data[{name!r}]")
    else:  # symlink
        if not isinstance(data, dict) or not isinstance(data.get("target"), str):
            raise TreeobjError(f"{where}.data: a symlink's data has a string 'target'")
        if not data["target"]:
            raise TreeobjError(f"{where}.data.target: empty symlink target")
        ns = data.get("namespace")
        if "namespace" in data and (not isinstance(ns, str) or not ns):
            raise TreeobjError(f"{where}.data.namespace: a non-empty string")
        extra = set(data) - {"target", "namespace"}
        if extra:
            raise TreeobjError(f"{where}.data: unexpected {sorted(extra)}")


# --- encoding ---------------------------------------------------------------


def dumps(obj: Any) -> str:
    """Return the canonical JSON text of ``obj`` (sorted keys, compact)."""
    return _dumps(obj)


def dumps_entry(obj: dict[str, Any]) -> str:
    """Return `dumps` of one tree object, fast for the common types.

    Directory encoding is the KVS's hot path; dirrefs, valrefs and vals are
    formatted directly rather than through the generic JSON encoder. The result
    is identical to ``dumps(obj)`` for well-formed objects.
    """
    kind = obj["type"]
    if len(obj) == 3 and obj["ver"] == 1:
        data = obj["data"]
        if kind == "dirref" or kind == "valref":
            return '{"data":["' + '","'.join(data) + '"],"type":"' + kind + '","ver":1}'
        if kind == "val":
            return '{"data":"' + data + '","type":"val","ver":1}'
    return _dumps(obj)


def encode(obj: Any) -> bytes:
    """Return the canonical UTF-8 encoding of tree object ``obj``."""
    return _dumps(obj).encode("utf-8")


def encode_dir_pieces(pieces: dict[str, str]) -> bytes:
    """Encode a ``dir`` from pre-encoded ``'"name":<entry json>'`` pieces.

    Parameters
    ----------
    pieces : dict
        Entry name -> ``quote(name) + ":" + dumps_entry(entry)``.

    Returns
    -------
    bytes
        Exactly ``encode(create_dir(entries))``.
    """
    return (
        '{"data":{' + ",".join([pieces[k] for k in sorted(pieces)]) + '},"type":"dir","ver":1}'
    ).encode("utf-8")


def dir_piece(name: str, entry: dict[str, Any]) -> str:
    """Return the encoded ``"name":entry`` member used by `encode_dir_pieces`."""
    return _quote(name) + ":" + dumps_entry(entry)


def decode(data: bytes | str, where: str = "treeobj") -> dict[str, Any]:
    """Parse and validate a tree object from JSON text.

    Raises
    ------
    TreeobjError
        If the text is not JSON or not a valid RFC 11 object.
    """
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TreeobjError(f"{where}: not valid JSON ({exc})") from None
    validate(obj, where)
    return obj


def decode_val(obj: dict[str, Any]) -> bytes:
    """Return the bytes held by a ``val`` tree object."""
    if obj.get("type") != "val":
        raise TreeobjError(f"expected a val, got {obj.get('type')!r}")
    return base64.b64decode(obj["data"])
