"""Housekeeping: a job's nodes come back to the scheduler as each one is clean.

As flux-core's job-manager housekeeping (flux-housekeeping(1), flux-config-job-manager(5)):
when a job that ran leaves CLEANUP, its resources pass to housekeeping instead of
straight back to the scheduler, and the job becomes inactive at once.  The configured
``[job-manager.housekeeping] command`` runs on every rank of the job (through each
broker's ``rexec`` service, with ``FLUX_JOB_ID``, ``FLUX_JOB_USERID``,
``FLUX_JOB_RANKS`` and ``FLUX_URI`` set); the scheduler still counts those nodes as
allocated.  ``release-after`` says when they go back (RFC 27 ``sched.free`` with a
subset of R and ``final``):

- unset: all together, once every rank has finished;
- ``"0"``: each rank as soon as it finishes;
- an FSD: a timer starts when the first rank finishes; when it fires, every finished
  rank is released, and after that each rank as it finishes.

So one slow node no longer holds the job's other nodes.  A failing command is logged
at LOG_ERR (flux-core leaves draining to its systemd unit); ``job-manager.stats-get``
reports ``{"housekeeping": {"running": {F58: {pending, allocated, t_start}}}}`` and
``job-manager.housekeeping-kill`` signals the commands (``flux housekeeping``).
"""

from __future__ import annotations

import base64
import errno
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..message import FLAG_STREAMING, FluxError, Message
from ..util.fsd import parse_fsd
from ..util.idset import IDSet
from ..util.rv1 import ResourceSet
from .jobid import JobID

if TYPE_CHECKING:  # pragma: no cover
    from .manager import JobManager

__all__ = ["Housekeeping", "HousekeepingConfigError"]


class HousekeepingConfigError(ValueError):
    """A bad ``[job-manager.housekeeping]`` table."""


@dataclass
class _Task:
    id: int
    userid: int
    R: ResourceSet
    t_start: float
    pending: set[int]
    allocated: set[int]
    done: set[int] = field(default_factory=set)
    pids: dict[int, int] = field(default_factory=dict)
    tags: dict[int, int] = field(default_factory=dict)
    timer: Any = None
    timer_fired: bool = False


class Housekeeping:
    """The job manager's housekeeping service (one per instance, on rank 0)."""

    def __init__(self, jm: "JobManager", table: dict[str, Any] | None) -> None:
        self.jm = jm
        self.broker = jm.broker
        self.tasks: dict[int, _Task] = {}
        self.command: list[str] | None = None
        self.release_after: float | None = None
        if table is None:
            return
        if not isinstance(table, dict):
            raise HousekeepingConfigError("job-manager.housekeeping: must be a table")
        cmd = table.get("command")
        if cmd is None:
            raise HousekeepingConfigError(
                "job-manager.housekeeping: command is required (flux-core's default, "
                "'imp run housekeeping', needs the IMP, which fluxnb has not)")
        if not isinstance(cmd, list) or not cmd or not all(isinstance(a, str) for a in cmd):
            raise HousekeepingConfigError("job-manager.housekeeping.command: must be a non-empty "
                                          "array of strings")
        self.command = list(cmd)
        ra = table.get("release-after")
        if ra is not None:
            try:
                self.release_after = parse_fsd(ra)
            except ValueError as exc:
                raise HousekeepingConfigError(
                    f"job-manager.housekeeping.release-after: {exc}") from None

    @property
    def enabled(self) -> bool:
        return self.command is not None

    # -- a job's resources arrive ------------------------------------------------------
    def start(self, jobid: int, R: dict | str, userid: int) -> None:
        """Take over a job's resources: run the command on each of its ranks."""
        rs = ResourceSet(R)
        ranks = set(rs.ranks)
        task = _Task(jobid, userid, rs, time.time(), set(ranks), set(ranks))
        self.tasks[jobid] = task
        env = {"FLUX_JOB_ID": str(jobid), "FLUX_JOB_USERID": str(userid),
               "FLUX_JOB_RANKS": IDSet(ranks).encode()}
        for rank in sorted(ranks):
            task.tags[rank] = self.broker.rpc(
                "rexec.exec", {"cmd": self.command, "env": self._env(env)}, nodeid=rank,
                flags=FLAG_STREAMING, callback=lambda m, t=task, r=rank: self._on_exec(t, r, m))

    @staticmethod
    def _env(extra: dict[str, str]) -> dict[str, str]:
        import os

        env = dict(os.environ)
        env.update(extra)
        return env

    def _on_exec(self, task: _Task, rank: int, msg: Message) -> None:
        if rank not in task.pending:
            return
        name = f"housekeeping {JobID(task.id).f58} rank {rank}"
        if msg.errnum:
            if msg.errnum != errno.ENODATA:
                self.jm.log("err", f"{name}: {msg.errstr or 'failed to start'}")
                self._finished(task, rank)
            return
        body = msg.json or {}
        if "pid" in body:
            task.pids[rank] = int(body["pid"])
        elif "stream" in body:
            text = base64.b64decode(body.get("data", "")).decode(errors="replace").rstrip("\n")
            for line in text.splitlines():
                self.jm.log("err" if body["stream"] == "stderr" else "info", f"{name}: {line}")
        elif "status" in body:
            status = int(body["status"])
            if status < 0:
                self.jm.log("err", f"{name}: killed by signal {-status}")
            elif status:
                self.jm.log("err", f"{name}: nonzero exit code ({status})")
            self._finished(task, rank)

    def _finished(self, task: _Task, rank: int) -> None:
        task.pending.discard(rank)
        task.pids.pop(rank, None)
        task.tags.pop(rank, None)
        task.done.add(rank)
        if not task.pending:
            self._release(task, set(task.done))
            return
        ra = self.release_after
        if ra is None:
            return
        if ra == 0 or task.timer_fired:
            self._release(task, set(task.done))
        elif task.timer is None:
            task.timer = self.broker.loop.call_later(ra, self._timer, task)

    def _timer(self, task: _Task) -> None:
        task.timer_fired = True
        if self.tasks.get(task.id) is task and task.done:
            self._release(task, set(task.done))

    def _release(self, task: _Task, ranks: set[int]) -> None:
        ranks &= task.allocated
        if not ranks:
            return
        task.allocated -= ranks
        task.done -= ranks
        final = not task.allocated
        part = task.R.copy_ranks(IDSet(ranks))
        if final:
            self.tasks.pop(task.id, None)
            if task.timer is not None:
                task.timer.cancel()
        fut = self.broker.rpc("sched.free", {"id": task.id, "R": part.to_R(), "final": final},
                              nodeid=0)
        fut.add_done_callback(lambda f, t=task: self._on_free(t, f))

    def _on_free(self, task: _Task, fut) -> None:
        if fut.cancelled():
            return
        if fut.exception() is not None:
            self.jm.log("err", f"housekeeping {JobID(task.id).f58}: sched.free: {fut.exception()}")

    # -- what the job manager reports -----------------------------------------------------
    def busy_ranks(self) -> set[int]:
        out: set[int] = set()
        for t in self.tasks.values():
            out |= t.allocated
        return out

    def stats(self) -> dict[str, Any]:
        return {"running": {JobID(t.id).f58: {"pending": IDSet(t.pending).encode(),
                                               "allocated": IDSet(t.allocated).encode(),
                                               "t_start": t.t_start}
                            for t in self.tasks.values()}}

    def hello(self) -> list[dict[str, Any]]:
        """Allocations held by housekeeping, for the scheduler's hello."""
        return [{"id": t.id, "R": t.R.copy_ranks(IDSet(t.allocated)).to_R()}
                for t in self.tasks.values() if t.allocated]

    def kill(self, jobid: int | None, ranks: IDSet | None, signum: int) -> int:
        """Signal the commands of ``jobid`` (or every job) on ``ranks`` (or all); return how many."""
        n = 0
        for t in list(self.tasks.values()):
            if jobid is not None and t.id != jobid:
                continue
            for rank, pid in list(t.pids.items()):
                if ranks is not None and rank not in ranks:
                    continue
                self.broker.rpc("rexec.kill", {"pid": pid, "signum": signum}, nodeid=rank)
                n += 1
        return n


def kill_request(hk: Housekeeping, body: dict) -> dict:
    """``job-manager.housekeeping-kill {signum, jobid?, ranks?}`` (validated here)."""
    signum = body.get("signum", 15)
    if not isinstance(signum, int) or isinstance(signum, bool) or not 0 < signum < 65:
        raise FluxError(errno.EPROTO, "housekeeping-kill: signum must be an integer 1-64")
    jobid = body.get("jobid")
    if jobid is not None:
        try:
            jobid = int(JobID(jobid))
        except (TypeError, ValueError):
            raise FluxError(errno.EPROTO, f"housekeeping-kill: invalid jobid {jobid!r}") from None
    ranks = body.get("ranks")
    if ranks is not None:
        try:
            ranks = IDSet(ranks)
        except (TypeError, ValueError):
            raise FluxError(errno.EPROTO, f"housekeeping-kill: invalid ranks {ranks!r}") from None
    hk.kill(jobid, ranks, signum)
    return {}
