"""Purge of inactive jobs, as flux-core's job-manager does it (``purge.c``).

Inactive jobs are kept in the order they became inactive. A job is eligible for
purging when it has been inactive longer than the age limit, or when more inactive
jobs than the number limit are kept (the oldest go first). Purging a job removes
it from the job-manager, its ``job.<dothex>`` directory from the KVS, and (through
the ``job-purge-inactive`` event) from job-list.

Limits come from the broker attributes ``job-manager.inactive-num-limit`` and
``job-manager.inactive-age-limit`` (flux-core's ``[job-manager]`` configuration
keys of the same names; set them with ``fluxnb start -S``). flux-core keeps every
inactive job unless configured; fluxnb keeps the newest
:data:`DEFAULT_NUM_LIMIT` by default, so a long-lived notebook instance stays
bounded in memory (``-S job-manager.inactive-num-limit=-1`` keeps them all).
"""

from __future__ import annotations

import errno
import time
from typing import Callable

from ..message import FluxError
from ..util.fsd import parse_fsd

#: no limit (flux-core's INACTIVE_NUM_UNLIMITED / INACTIVE_AGE_UNLIMITED)
UNLIMITED = -1
#: inactive jobs kept by default (flux-core: unlimited)
DEFAULT_NUM_LIMIT = 1000
#: most KVS unlinks per request (flux-core's purge_batch_max)
BATCH_MAX = 100
#: seconds between automatic purges (flux-core purges on each heartbeat): at a
#: thousand jobs a second, a one-second period kept hundreds past the limit
PERIOD = 0.25


def parse_limits(attrs: dict[str, str]) -> tuple[float, int]:
    """``(age_limit, num_limit)`` from broker attributes; UNLIMITED where unset.

    >>> parse_limits({"job-manager.inactive-age-limit": "7d"})
    (604800.0, 1000)
    >>> parse_limits({"job-manager.inactive-num-limit": "-1"})
    (-1.0, -1)
    """
    age, num = float(UNLIMITED), DEFAULT_NUM_LIMIT
    text = attrs.get("job-manager.inactive-age-limit")
    if text not in (None, "", "-1"):
        try:
            age = parse_fsd(text)
        except ValueError:
            raise ValueError("job-manager.inactive-age-limit: invalid FSD") from None
    text = attrs.get("job-manager.inactive-num-limit")
    if text not in (None, ""):
        try:
            num = int(text)
        except ValueError:
            raise ValueError("job-manager.inactive-num-limit: must be an integer") from None
        if num < UNLIMITED:
            raise ValueError("job-manager.inactive-num-limit: must be >= 0")
    return age, num


def eligible(age: float, age_limit: float, num: int, num_limit: int) -> bool:
    """A job ``age`` seconds inactive, with ``num`` inactive jobs kept, may go."""
    if age_limit != UNLIMITED and age > age_limit:
        return True
    return num_limit != UNLIMITED and num > num_limit


def select(inactive: dict[int, tuple], age_limit: float, num_limit: int,
           most: int | None = None, now: float | None = None) -> list[int]:
    """The ids to purge, oldest first: ``inactive`` maps id -> (..., t_inactive),
    in the order the jobs became inactive.

    >>> jobs = {1: ("", True, 10.0), 2: ("", True, 20.0), 3: ("", True, 30.0)}
    >>> select(jobs, UNLIMITED, 1), select(jobs, 15.0, UNLIMITED, now=40.0)
    ([1, 2], [1, 2])
    """
    now = time.time() if now is None else now
    out: list[int] = []
    left = len(inactive)
    for jobid, entry in inactive.items():
        if most is not None and len(out) >= most:
            break
        if not eligible(now - entry[-1], age_limit, left, num_limit):
            break
        out.append(jobid)
        left -= 1
    return out


def check_request(age_limit: float, num_limit: int, batch: int) -> None:
    """Validate a ``job-manager.purge`` request as flux-core does."""
    if age_limit != UNLIMITED and age_limit < 0:
        raise FluxError(errno.EINVAL, "if set, age limit must be >= 0")
    if num_limit != UNLIMITED and num_limit < 0:
        raise FluxError(errno.EINVAL, "if set, num limit must be >= 0")
    if batch < 1 or batch > BATCH_MAX:
        raise FluxError(errno.EINVAL, f"batch must be >= 1 and <= {BATCH_MAX}")


class JobDirs:
    """How many kept jobs live under each ``job.*`` directory above theirs.

    A job's directory is ``job.xxxx.xxxx.xxxx.xxxx``; purging it leaves the
    directories above it in the KVS. Ids grow with time, so those fill with empty
    directories, one per millisecond or so of submissions, without end (the
    KVS's job directories, their blobs, and the KVS's cache of them grow with
    every job ever run). :meth:`remove` names the highest directory that no
    kept job needs any more, for the purge to unlink with the job's own. A job
    submitted under it later makes it again (a commit creates missing parents).

    >>> dirs = JobDirs()
    >>> dirs.add("job.0000.0001.0002.0003"); dirs.add("job.0000.0001.0004.0005")
    >>> dirs.remove("job.0000.0001.0002.0003")
    'job.0000.0001.0002'
    >>> dirs.remove("job.0000.0001.0004.0005")
    'job.0000'
    >>> len(dirs)
    0
    """

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count: dict[str, int] = {}

    @staticmethod
    def _parents(jobdir: str) -> tuple[str, str, str]:
        # "job.0000.0001.0002.0003" -> job.0000.0001.0002, job.0000.0001, job.0000
        return jobdir[:-5], jobdir[:-10], jobdir[:-15]

    def add(self, jobdir: str) -> None:
        count = self.count
        for p in self._parents(jobdir):
            count[p] = count.get(p, 0) + 1

    def remove(self, jobdir: str) -> str | None:
        """Forget a purged job; the directory above it to unlink too, if any."""
        count = self.count
        top = None
        for p in self._parents(jobdir):
            n = count.get(p, 0) - 1
            if n > 0:
                count[p] = n
            else:
                count.pop(p, None)
                top = p
        return top

    def __len__(self) -> int:
        return len(self.count)


#: at most this often, during a steady stream of purges, freed memory goes back to the
#: system (glibc's malloc_trim: 7-18 ms a call here); and once after each burst
TRIM_PERIOD = 10.0


def _malloc_trim() -> None:
    """Give the C heap's free pages back to the system (glibc; elsewhere nothing).

    A burst of jobs leaves megabytes of freed C memory (SQLite's, json's, zmq's) in
    the heap: rank 0's resident size after 10,000 jobs was 1.25x that after 1,000,
    1.1x once trimmed (issue 15's target: 1.2x).
    """
    global _trim
    if _trim is None:
        try:
            import ctypes
            _trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _trim = False
    if _trim:
        _trim(0)


_trim = None


class Purger:
    """Runs the automatic purge every :data:`PERIOD` seconds while limits are set.

    ``purge(ids)`` is the job-manager's: it forgets the jobs, unlinks their KVS
    directories, and announces them.
    """

    def __init__(self, loop, age_limit: float, num_limit: int,
                 inactive: dict[int, tuple], purge: Callable[[list[int]], None]):
        self.loop = loop
        self.age_limit = age_limit
        self.num_limit = num_limit
        self.inactive = inactive
        self._purge = purge
        self._timer = None
        self._untrimmed = 0          # jobs purged since the heap was last trimmed
        self._trimmed_at = time.monotonic()
        if age_limit != UNLIMITED or num_limit != UNLIMITED:
            self._timer = loop.call_later(PERIOD, self._tick)

    def _tick(self) -> None:
        # all that is due goes now, in batches of BATCH_MAX unlinks: a burst of
        # jobs must not outrun the purge
        purged = 0
        while True:
            ids = select(self.inactive, self.age_limit, self.num_limit, BATCH_MAX)
            if not ids:
                break
            self._purge(ids)
            purged += len(ids)
        self._untrimmed += purged
        now = time.monotonic()
        if self._untrimmed and (not purged or now - self._trimmed_at >= TRIM_PERIOD):
            _malloc_trim()           # a burst ended (or a long one goes on)
            self._untrimmed, self._trimmed_at = 0, time.monotonic()
        self._timer = self.loop.call_later(PERIOD, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
