"""DYAD: move files from producer tasks to consumer tasks through node-local storage.

Each rank runs a ``dyad`` service (``flux exec -r all flux module load dyad``).
A producer publishes a closed file as the KVS key ``bin1.bin2.bin3.relpath`` (its
value is the owner rank) in ``DYAD_KVS_NAMESPACE``; a consumer waits for that key
and has its rank's service fetch the file from the owner, by a streaming RPC, into
the consumer's node-local directory, before it opens the file.

Examples
--------
>>> from fluxnb.dyad import key
>>> key("1/data0.txt", depth=3, bins=1024)
'263.2ce.2e1.1/data0.txt'
"""

from __future__ import annotations

from ..runtime.dyad.keys import DEFAULT_BINS, DEFAULT_DEPTH, key, murmur3_x64_128
from .client import Dyad, DyadError, DyadMetadata, dyad_open, env_flag, wait_for

__all__ = ["key", "murmur3_x64_128", "Dyad", "DyadError", "DyadMetadata", "dyad_open", "env_flag",
           "wait_for", "DEFAULT_DEPTH", "DEFAULT_BINS"]
