"""DYAD's key scheme: MurmurHash3 x64-128 bins, as DYAD computes them."""

from __future__ import annotations

import pytest

from fluxnb.dyad import env_flag, key, murmur3_x64_128


def test_key_matches_dyad():
    # the key DYAD itself logs for this path
    assert key("1/data0.txt", depth=3, bins=1024) == "263.2ce.2e1.1/data0.txt"


def test_murmur3_reference_vectors():
    assert murmur3_x64_128(b"", 0) == (0, 0)
    assert hex(murmur3_x64_128(b"hello", 0)[0]) == "0xcbd8a7b341bd9b02"
    # blocks of 16 bytes and every tail length go through the same code
    assert len({murmur3_x64_128(b"x" * n, 1) for n in range(40)}) == 40


def test_depth_and_bins():
    assert key("a/b.txt", depth=0) == "a/b.txt"
    k = key("a/b.txt", depth=5, bins=16)
    levels = k.split(".")[:5]
    assert all(0 <= int(b, 16) < 16 for b in levels)
    assert key("a/b.txt", depth=2, bins=16) == ".".join(levels[:2]) + ".a/b.txt"
    long = "d/" + "x" * 200             # paths of 128 bytes and more are hashed unpadded
    assert key(long).endswith(long)
    with pytest.raises(ValueError):
        key("a", bins=0)


def test_env_flag_reads_the_value():
    assert not env_flag("0") and not env_flag("false") and not env_flag(None)
    assert env_flag("1") and env_flag("yes")
