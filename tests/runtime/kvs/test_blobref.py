"""Blobrefs follow RFC 10: '<hash name>-<hex digest of the blob>'."""

from __future__ import annotations

import hashlib

import pytest

from fluxnb.runtime.kvs.blobref import (
    BlobrefError,
    blobref_hash,
    blobref_parse,
    blobref_validate,
    is_blobref,
)


def test_sha1_of_empty_blob_is_the_well_known_digest():
    assert blobref_hash(b"") == "sha1-da39a3ee5e6b4b0d3255bfef95601890afd80709"


def test_sha256_blobref_is_the_sha256_hex_digest():
    data = b"some content"
    assert blobref_hash(data, "sha256") == "sha256-" + hashlib.sha256(data).hexdigest()


def test_equal_content_has_equal_blobref_and_different_content_differs():
    assert blobref_hash(b"abc") == blobref_hash(bytes(b"abc"))
    assert blobref_hash(b"abc") != blobref_hash(b"abd")


def test_unsupported_hash_name_is_rejected():
    with pytest.raises(BlobrefError, match="unsupported hash name 'md5'"):
        blobref_hash(b"x", "md5")


def test_parse_returns_hash_name_and_binary_digest():
    ref = blobref_hash(b"x")
    name, digest = blobref_parse(ref)
    assert name == "sha1"
    assert digest == hashlib.sha1(b"x").digest()


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "sha1",
        "sha1-",
        "sha1-" + "a" * 39,
        "sha1-" + "a" * 41,
        "sha1-" + "g" * 40,
        "sha1-" + "A" * 40,
        "sha256-" + "a" * 40,
        "md5-" + "a" * 32,
        42,
        None,
    ],
)
def test_malformed_blobrefs_are_invalid(bad):
    assert not is_blobref(bad)
    with pytest.raises(BlobrefError):
        blobref_validate(bad)


def test_valid_blobrefs_validate():
    for ref in (blobref_hash(b"a"), blobref_hash(b"a", "sha256")):
        blobref_validate(ref)
        assert is_blobref(ref)
