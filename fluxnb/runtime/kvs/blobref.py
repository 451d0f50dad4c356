"""Blobrefs: content addresses of blobs (RFC 10).

A blobref names a blob by the hash of its bytes, as ``<hash-name>-<hex digest>``,
for example ``sha1-da39a3ee5e6b4b0d3255bfef95601890afd80709``. fluxnb supports the
two hash names flux-core supports, ``sha1`` (the default) and ``sha256``.

Examples
--------
>>> blobref_hash(b"")
'sha1-da39a3ee5e6b4b0d3255bfef95601890afd80709'
>>> blobref_parse("sha1-da39a3ee5e6b4b0d3255bfef95601890afd80709")[0]
'sha1'
"""

from __future__ import annotations

import hashlib

__all__ = [
    "HASH_NAMES",
    "BlobrefError",
    "blobref_hash",
    "blobref_parse",
    "blobref_validate",
    "is_blobref",
]

#: Supported hash names and the length of their hex digests.
HASH_NAMES: dict[str, int] = {"sha1": 40, "sha256": 64}

_HEXDIGITS = frozenset("0123456789abcdef")
_CONSTRUCTORS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}


class BlobrefError(ValueError):
    """A string is not a valid blobref, or a hash name is not supported."""


def blobref_hash(data: bytes, hash_name: str = "sha1") -> str:
    """Return the blobref of ``data``.

    Parameters
    ----------
    data : bytes
        The blob.
    hash_name : {"sha1", "sha256"}
        The hash function.

    Returns
    -------
    str
        ``"<hash_name>-<hex digest>"``.

    Raises
    ------
    BlobrefError
        If ``hash_name`` is not supported.

    Examples
    --------
    >>> blobref_hash(b"abc", "sha256")[:15]
    'sha256-ba7816bf'
    """
    try:
        constructor = _CONSTRUCTORS[hash_name]
    except KeyError:
        raise BlobrefError(
            f"unsupported hash name {hash_name!r}: use one of "
            f"{', '.join(HASH_NAMES)}"
        ) from None
    return f"{hash_name}-{constructor(data).hexdigest()}"


def blobref_parse(blobref: str) -> tuple[str, bytes]:
    """Split a blobref into its hash name and binary digest.

    Parameters
    ----------
    blobref : str
        For example ``"sha1-<40 hex digits>"``.

    Returns
    -------
    tuple of (str, bytes)
        The hash name and the digest.

    Raises
    ------
    BlobrefError
        If ``blobref`` is malformed.
    """
    blobref_validate(blobref)
    hash_name, _, digest = blobref.partition("-")
    return hash_name, bytes.fromhex(digest)


def blobref_validate(blobref: object) -> None:
    """Raise `BlobrefError` saying what is wrong unless ``blobref`` is valid.

    A valid blobref is a supported hash name, a dash, and exactly as many
    lower-case hex digits as that hash's digest has.
    """
    if not isinstance(blobref, str):
        raise BlobrefError(f"blobref must be a string, not {type(blobref).__name__}")
    hash_name, dash, digest = blobref.partition("-")
    if not dash:
        raise BlobrefError(f"{blobref!r} is not a blobref: expected '<hash>-<hex>'")
    size = HASH_NAMES.get(hash_name)
    if size is None:
        raise BlobrefError(
            f"{blobref!r}: unsupported hash name {hash_name!r} "
            f"(expected one of {', '.join(HASH_NAMES)})"
        )
    if len(digest) != size or not _HEXDIGITS.issuperset(digest):
        raise BlobrefError(
            f"{blobref!r}: a {hash_name} digest is {size} lower-case hex digits"
        )


def is_blobref(blobref: object) -> bool:
    """Return True if ``blobref`` is a valid blobref string."""
    try:
        blobref_validate(blobref)
    except BlobrefError:
        return False
    return True
