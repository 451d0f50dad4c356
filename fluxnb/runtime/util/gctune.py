"""The cycle collector's thresholds for processes that move many messages or jobs.

Routing, the KVS and a ``flux submit --cc`` of thousands of jobs allocate many
short-lived containers per message. With Python's default thresholds (collect the
youngest generation every 700 allocations) a busy broker spent about a tenth of its
time in the collector (0.10 vs 0.04 ms per test-exec job), and, as more jobs were
queued, each collection walked more live objects: the cost per job grew with the
queue (x1.38 from 1,000 to 10,000 queued jobs; x1.03 with a threshold of 7,000).
Reference counting frees nearly all of it anyway; only cycles wait a little longer.
At 7,000 a youngest-generation collection still came every few jobs, and every tenth
walked the middle one: 41 us a job through the CLI with 10,000 jobs queued, 24 us at
50,000 (none of the middle generation); a collection then takes ~20 ms, and rank 0's
size after 10,000 jobs stayed within 1.2x its size after 1,000 (bench/purge.py).
"""

from __future__ import annotations

import gc

#: (generation 0, 1, 2) thresholds
THRESHOLD = (50000, 10, 10)
_DEFAULT = (700, 10, 10)


def tune(force: bool = False) -> bool:
    """Set `THRESHOLD`; unless ``force``, only over Python's defaults (a process whose
    owner chose other thresholds, a notebook's kernel say, keeps them). True if set."""
    if not force and gc.get_threshold() != _DEFAULT:
        return False
    gc.set_threshold(*THRESHOLD)
    return True
