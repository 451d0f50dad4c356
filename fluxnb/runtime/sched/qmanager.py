"""``sched-fluxion-qmanager``: Fluxion's queue manager, over ``sched-fluxion-resource``.

It speaks the scheduler protocol to the job manager (``sched.alloc`` ...,
see :mod:`.base`) and asks the resource module for matches over RPC, as
flux-sched's qmanager does.  Queue policies (``queue-policy=``):

``fcfs``          jobs in priority order; the pass stops at the first job that does not fit
``easy``          EASY backfill: the first job that does not fit gets a reservation (its
                  earliest start); later jobs run now only if they do not delay it
``hybrid``        as easy, with ``policy-params=reservation-depth=N`` reservations (default 64)
``conservative``  every blocked job gets a reservation: no job delays any job ahead of it

Each scheduling pass considers at most ``queue-params=queue-depth=N`` pending
jobs (default 32).  Backfill passes first drop the reservations of the last
pass, as Fluxion does, so that every pass plans from the present.  A reserved
job is annotated ``{"sched": {"queue": "default", "t_estimate": T}}`` (``eta:``
in ``flux jobs``).  A job the graph could never satisfy is denied at once.

Example::

    flux module load sched-fluxion-qmanager queue-policy=easy queue-params=queue-depth=4
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any

from ..message import FLAG_NORESPONSE, FluxError, Message
from ..service import request_handler
from ..util.rv1 import ResourceSet
from .base import ALLOC_SUCCESS, PendingJob, SchedulerBase

__all__ = ["FluxionQmanager", "QueueOptions", "parse_queue_options", "QUEUE_POLICIES"]

QUEUE_POLICIES = ("fcfs", "easy", "hybrid", "conservative")
DEFAULT_QUEUE_DEPTH = 32
MAX_QUEUE_DEPTH = 1000000
HYBRID_RESERVATION_DEPTH = 64
MAX_RESERVATION_DEPTH = 100000
RESOURCE = "sched-fluxion-resource"


@dataclass
class QueueOptions:
    policy: str = "fcfs"
    queue_depth: int = DEFAULT_QUEUE_DEPTH
    reservation_depth: int = 0
    queue_params: str = ""
    policy_params: str = ""


def _params(text: str, what: str, known: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, val = item.partition("=")
        if not sep or key not in known:
            raise ValueError(f"{what}: unknown parameter '{item}' (known: {', '.join(known)})")
        if not val.isdigit() or int(val) < 1:
            raise ValueError(f"{what}: {key} must be an integer >= 1, got '{val}'")
        out[key] = int(val)
    return out


def parse_queue_options(args: list[str]) -> QueueOptions:
    """Module arguments as queue options; ValueError naming what is wrong.

    >>> o = parse_queue_options(["queue-policy=hybrid", "policy-params=reservation-depth=2"])
    >>> o.policy, o.reservation_depth, o.queue_depth
    ('hybrid', 2, 32)
    >>> parse_queue_options(["queue-params=queue-depth=4"]).queue_depth
    4
    """
    o = QueueOptions()
    for arg in args:
        key, sep, val = arg.partition("=")
        if key == "queue-policy" and sep:
            if val not in QUEUE_POLICIES:
                raise ValueError(f"queue-policy: unknown policy '{val}' (known: {', '.join(QUEUE_POLICIES)})")
            o.policy = val
        elif key == "queue-params" and sep:
            o.queue_params = val
        elif key == "policy-params" and sep:
            o.policy_params = val
        else:
            raise ValueError(f"unknown option '{arg}' (known: queue-policy=, queue-params=, policy-params=)")
    qp = _params(o.queue_params, "queue-params", ("queue-depth", "max-queue-depth"))
    o.queue_depth = min(qp.get("queue-depth", DEFAULT_QUEUE_DEPTH), qp.get("max-queue-depth", MAX_QUEUE_DEPTH))
    pp = _params(o.policy_params, "policy-params", ("reservation-depth", "max-reservation-depth"))
    o.reservation_depth = {"fcfs": 0, "easy": 1, "conservative": MAX_RESERVATION_DEPTH,
                           "hybrid": min(pp.get("reservation-depth", HYBRID_RESERVATION_DEPTH),
                                         pp.get("max-reservation-depth", MAX_RESERVATION_DEPTH))}[o.policy]
    return o


class FluxionQmanager(SchedulerBase):
    """The queue: pending jobs in priority order, scheduled in passes of ``queue-depth`` jobs."""

    name = "sched-fluxion-qmanager"
    #: the resource module matches any resource type its graph has (storage, ...)
    canonical_jobspec = True

    def start(self) -> None:
        try:
            self.qopts = parse_queue_options(self.args)
        except ValueError as exc:
            raise FluxError(errno.EINVAL, f"{self.name}: {exc}") from None
        o = self.qopts
        # flux-sched logs these three at debug; info here, so plain `flux dmesg` shows them
        self.log("info", f"enforced policy (queue=default): {o.policy}")
        self.log("info", f"effective queue params (queue=default): {o.queue_params or 'default'}")
        self.log("info", f"effective policy params (queue=default): {o.policy_params or 'default'}")
        self.reserved: dict[int, int] = {}      # jobid -> reserved start (epoch s)
        self.alloc_R: dict[int, dict] = {}
        self._handshaken = False
        self._early: list[Message] = []
        self._inflight = False
        self._batch_size = 0
        self._annotated: set[int] = set()
        self._again = False
        #: key of the job an fcfs pass stopped at: later arrivals cannot pass it
        self._blocked: tuple | None = None
        self._arrival: int | None = None
        super().start()
        fut = self.broker.rpc(f"{RESOURCE}.stats-get", {}, nodeid=0)
        fut.add_done_callback(self._on_handshake)

    # -- start-up: the resource module first --------------------------------------------------
    def _on_handshake(self, fut) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            self.log("err", f"cannot reach {RESOURCE} ({exc}): load it before {self.name}")
            return
        self._handshaken = True
        self.log("debug", f"handshaking with {RESOURCE} completed")
        early, self._early = self._early, []
        for msg in early:
            super()._on_resources(msg)

    def _on_resources(self, msg: Message) -> None:
        if not self._handshaken:
            self._early.append(msg)
            return
        super()._on_resources(msg)

    def describe(self) -> str:
        o = self.qopts
        return f"{self.name}: queue-policy={o.policy} queue-depth={o.queue_depth}"

    # -- SchedulerBase hooks --------------------------------------------------------------------
    def parse(self, jobspec: dict) -> Any:
        if not isinstance(jobspec, dict) or not isinstance(jobspec.get("resources"), list):
            raise ValueError("jobspec: 'resources' must be a list")
        return jobspec

    def unsatisfiable(self, request: Any) -> str | None:
        return None  # the resource module says so at the job's first match (ENODEV)

    def claim(self, jobid: int, rs: ResourceSet, jobspec: dict | None) -> None:
        fut = self.broker.rpc(f"{RESOURCE}.update", {"jobid": jobid, "R": rs.to_R()}, nodeid=0)
        fut.add_done_callback(lambda f, j=jobid: self._log_failure(f, f"re-claim of job {j}"))

    def release(self, jobid: int, rs: ResourceSet | None) -> None:
        self.alloc_R.pop(jobid, None)
        fut = self.broker.rpc(f"{RESOURCE}.cancel", {"jobid": jobid}, nodeid=0)
        fut.add_done_callback(lambda f, j=jobid: self._log_failure(f, f"cancel of job {j}"))

    def resources_shrunk(self, gone) -> None:
        """Ask the resource module, for every pending job, whether the smaller graph can
        still hold it; deny the ones it never could (ENODEV)."""
        for job in list(self.pending):
            fut = self.broker.rpc(f"{RESOURCE}.match", {"jobid": job.id, "jobspec": job.jobspec,
                                                        "op": "satisfiability"}, nodeid=0)
            fut.add_done_callback(lambda f, j=job: self._on_satisfiability(j, f))

    def _on_satisfiability(self, job: PendingJob, fut) -> None:
        if fut.cancelled() or self.by_id.get(job.id) is not job:
            return
        exc = fut.exception()
        if isinstance(exc, FluxError) and exc.errno == errno.ENODEV:
            self.deny(job, exc.errstr)

    def forget(self, job: PendingJob) -> None:
        if self.reserved.pop(job.id, None) is not None:
            self.broker.rpc(f"{RESOURCE}.cancel", {"jobids": [job.id]}, nodeid=0, flags=FLAG_NORESPONSE)

    def _log_failure(self, fut, what: str) -> None:
        if not fut.cancelled() and fut.exception() is not None:
            self.log("err", f"{RESOURCE}: {what} failed: {fut.exception()}")

    # allocated R kept as sent (a dict), not parsed: a ResourceSet only when asked for
    @request_handler("free", topic="sched.free")
    def free(self, msg: Message) -> dict:
        body = msg.json if isinstance(msg.json, dict) else {}
        jobid = body.get("id", -1)
        if body.get("final", True) is True and (jobid in self.alloc_R or jobid in self.allocated):
            # the last (usually the only) free of a job: all it holds, no R to parse
            self.allocated.pop(jobid, None)
            self.release(jobid, None)
            self.kick()
            return {"id": jobid}
        if jobid in self.alloc_R and jobid not in self.allocated:
            self.allocated[jobid] = ResourceSet(self.alloc_R[jobid])
        return super().free(msg)

    def release_part(self, jobid: int, part: ResourceSet, rest: ResourceSet) -> None:
        self.alloc_R[jobid] = rest.to_R()
        fut = self.broker.rpc(f"{RESOURCE}.partial-cancel", {"jobid": jobid, "R": part.to_R()},
                              nodeid=0)
        fut.add_done_callback(lambda f, j=jobid: self._log_failure(f, f"partial release of job {j}"))

    @request_handler("resource-status", topic="sched.resource-status")
    def resource_status(self, msg: Message) -> dict:
        for jobid, R in list(self.alloc_R.items()):
            if jobid not in self.allocated:
                self.allocated[jobid] = ResourceSet(R)
        return super().resource_status(msg)

    # -- the scheduling loop --------------------------------------------------------------------
    @request_handler("alloc", topic="sched.alloc")
    def alloc(self, msg: Message):
        self._arrival = (msg.json or {}).get("id")
        old = self.by_id.get(self._arrival) if isinstance(self._arrival, int) else None
        if old is not None:
            # the job manager forgot an alloc it sent before our hello and asks again:
            # the new request replaces the old one (whose answer nobody awaits)
            self.pending.discard(old)
            del self.by_id[old.id]
        try:
            return super().alloc(msg)
        finally:
            self._arrival = None

    def kick(self) -> None:
        if self._arrival is not None and self._blocked is not None:
            job = self.by_id.get(self._arrival)
            if job is not None and job.key > self._blocked:
                return  # queued behind the job that blocks fcfs: nothing to do
        elif self._arrival is None:
            self._blocked = None  # resources, priorities or the queue head changed
        super().kick()

    def schedule(self) -> None:
        if self._inflight:
            self._again = True  # run another pass when this one is answered
            return
        self._start_pass()

    def _start_pass(self) -> None:
        """Send one pass over the head of the queue to the resource module (one message)."""
        o = self.qopts
        self._again = False
        if self.reserved:
            ids = list(self.reserved)
            self.reserved.clear()
            self.broker.rpc(f"{RESOURCE}.cancel", {"jobids": ids}, nodeid=0, flags=FLAG_NORESPONSE)
        batch = [job for job in self.pending.islice(0, o.queue_depth) if job.id in self.by_id]
        if not batch:
            return
        self._inflight = True
        self._batch_size = len(batch)
        # a callback, not a task: the answer is handled as soon as it arrives
        self.broker.rpc(f"{RESOURCE}.match-multi",
                        {"jobs": [{"jobid": j.id, "jobspec": j.jobspec} for j in batch],
                         "op": "allocate_orelse_reserve" if o.reservation_depth else "allocate",
                         "reservation_depth": o.reservation_depth, "stop_on_busy": o.policy == "fcfs"},
                        nodeid=0, callback=self._on_pass)

    def _on_pass(self, msg: Message) -> None:
        self._inflight = False
        if msg.errnum:
            self.log("err", f"{RESOURCE}.match-multi failed: {msg.errstr}"
                     + (f" (load {RESOURCE} before {self.name})" if msg.errnum == errno.ENOSYS else ""))
            return
        try:
            more = self._apply(msg.json["results"])
        except Exception as exc:  # keep the scheduler alive; say what broke
            self.log("err", f"scheduling pass failed: {exc!r}")
            return
        if self._again or (more and self.pending):
            self._again = False
            self.kick()

    def _apply(self, results: list[dict]) -> bool:
        """Act on a pass's matches; True if it stopped at the queue depth only."""
        o = self.qopts
        was_reserved = self._annotated
        self._annotated = set()
        granted = 0
        for res in results:
            jobid = res["jobid"]
            job = self.by_id.get(jobid)
            status = res["status"]
            if job is None:  # canceled while it was being matched
                if status in ("ALLOCATED", "RESERVED"):
                    self.broker.rpc(f"{RESOURCE}.cancel", {"jobids": [jobid]}, nodeid=0,
                                    flags=FLAG_NORESPONSE)
                continue
            if status == "BUSY":
                if o.policy == "fcfs":
                    self._blocked = job.key
                continue  # backfill: down resources, or no reservation in sight: skip it
            if status == "ERROR":
                self.deny(job, res["errstr"])
            elif status == "RESERVED":
                self.reserved[jobid] = res["at"]
                self._annotated.add(jobid)
                self.annotate(job, {"sched": {"queue": "default", "t_estimate": res["at"]}})
            else:
                self._grant(job, res["R"])
                granted += 1
        for jobid in was_reserved - self._annotated:
            job = self.by_id.get(jobid)
            if job is not None:
                self.annotate(job, {})  # no longer reserved: no estimate
        return self._batch_size >= o.queue_depth and granted == self._batch_size

    def _grant(self, job: PendingJob, R: dict) -> None:
        self.pending.discard(job)
        del self.by_id[job.id]
        self.alloc_R[job.id] = R
        payload: dict[str, Any] = {"id": job.id, "type": ALLOC_SUCCESS, "R": R}
        if job.annotations:
            payload["annotations"] = {"sched": {"queue": "default"}}
        self.respond(job.msg, payload)
