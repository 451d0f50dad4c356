"""DYAD's KVS keys: MurmurHash3 x64-128 bins in front of a managed-relative path.

DYAD spreads the keys of published files over ``depth`` levels of ``bins`` KVS
directories so that no directory grows huge. Level ``d`` hashes the path, padded
with ``@`` to 128 bytes when shorter (DYAD does so to give short names enough
bytes to mix), with seed ``57 + SEEDS[0] + ... + SEEDS[d]``; it folds the
128-bit hash into 32 bits by XOR of its four 32-bit words and takes it modulo
``bins``; each level is written in lower-case hex. The same path gives the same key in DYAD's C client,
so both can share a namespace.

Examples
--------
>>> key("1/data0.txt")
'263.2ce.2e1.1/data0.txt'
>>> hex(murmur3_x64_128(b"hello", 0)[0])
'0xcbd8a7b341bd9b02'
"""

from __future__ import annotations

_M64 = 0xFFFFFFFFFFFFFFFF
_C1 = 0x87C37B91114253D5
_C2 = 0x4CF5AD432745937F

#: DYAD's per-level seed increments (primes), used cyclically
SEEDS = (104677, 104681, 104683, 104693, 104701, 104707, 104711, 104717, 104723, 104729)
#: DYAD's initial seed
SEED_BASE = 57
#: paths shorter than this are padded with PAD before hashing
PAD_TO = 128
PAD = b"@"
DEFAULT_DEPTH = 3
DEFAULT_BINS = 1024


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def _fmix(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & _M64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & _M64
    return k ^ (k >> 33)


def murmur3_x64_128(data: bytes, seed: int) -> tuple[int, int]:
    """MurmurHash3 x64-128 of ``data``: the two 64-bit halves ``(h1, h2)``.

    ``seed`` is a 32-bit seed, as in Austin Appleby's reference code.
    """
    n = len(data)
    h1 = h2 = seed & 0xFFFFFFFF
    end = n - n % 16
    for i in range(0, end, 16):
        k1 = int.from_bytes(data[i:i + 8], "little")
        k2 = int.from_bytes(data[i + 8:i + 16], "little")
        h1 ^= (_rotl((k1 * _C1) & _M64, 31) * _C2) & _M64
        h1 = (((_rotl(h1, 27) + h2) & _M64) * 5 + 0x52DCE729) & _M64
        h2 ^= (_rotl((k2 * _C2) & _M64, 33) * _C1) & _M64
        h2 = (((_rotl(h2, 31) + h1) & _M64) * 5 + 0x38495AB5) & _M64
    tail = data[end:]
    if len(tail) > 8:
        k2 = int.from_bytes(tail[8:], "little")
        h2 ^= (_rotl((k2 * _C2) & _M64, 33) * _C1) & _M64
    if tail:
        k1 = int.from_bytes(tail[:8], "little")
        h1 ^= (_rotl((k1 * _C1) & _M64, 31) * _C2) & _M64
    h1 ^= n
    h2 ^= n
    h1 = (h1 + h2) & _M64
    h2 = (h2 + h1) & _M64
    h1, h2 = _fmix(h1), _fmix(h2)
    h1 = (h1 + h2) & _M64
    h2 = (h2 + h1) & _M64
    return h1, h2


def bin_of(path: str, level: int, bins: int = DEFAULT_BINS) -> int:
    """The bin of ``path`` at ``level`` (0-based)."""
    seed = SEED_BASE + sum(SEEDS[d % len(SEEDS)] for d in range(level + 1))
    data = path.encode()
    if len(data) < PAD_TO:
        data += PAD * (PAD_TO - len(data))
    h1, h2 = murmur3_x64_128(data, seed & 0xFFFFFFFF)
    folded = (h1 ^ (h1 >> 32) ^ h2 ^ (h2 >> 32)) & 0xFFFFFFFF
    return folded % bins


def key(path: str, depth: int = DEFAULT_DEPTH, bins: int = DEFAULT_BINS) -> str:
    """The KVS key under which DYAD publishes ``path`` (relative to a managed directory).

    Parameters
    ----------
    path : str
        Path relative to the producer's (or consumer's) managed directory.
    depth : int
        Number of bin levels (``DYAD_KEY_DEPTH``).
    bins : int
        Bins per level (``DYAD_KEY_BINS``).

    Examples
    --------
    >>> key("1/data0.txt", depth=3, bins=1024)
    '263.2ce.2e1.1/data0.txt'
    >>> key("a.txt", depth=0)
    'a.txt'
    """
    if depth < 0 or bins < 1:
        raise ValueError(f"DYAD key needs depth >= 0 and bins >= 1 (got depth={depth}, bins={bins})")
    if not path:
        raise ValueError("DYAD key needs a non-empty path")
    levels = [format(bin_of(path, d, bins), "x") for d in range(depth)]
    return ".".join([*levels, path])


__all__ = ["key", "bin_of", "murmur3_x64_128", "SEEDS", "SEED_BASE", "DEFAULT_DEPTH", "DEFAULT_BINS"]
