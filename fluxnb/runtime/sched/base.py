"""The scheduler protocol (after flux RFC 27), shared by every scheduler module.

The job manager and a scheduler talk only through these messages:

``sched.alloc``      job-manager -> sched, streaming: {id, priority, userid, t_submit, jobspec}
                     answered with {id, type, ...}: type 0 success {R}, 1 annotate
                     {annotations}, 2 deny {note}, 3 canceled. 0, 2 and 3 are final.
``sched.free``       job-manager -> sched: {id, R, final}: R (all or, with housekeeping, part
                     of the job's resources) is free again; ``final`` when nothing is left
``sched.cancel``     job-manager -> sched: {id}: withdraw a pending alloc (answered type 3)
``sched.prioritize`` job-manager -> sched: {jobs: [[id, priority], ...]}
``sched.features``   any -> sched: {} -> {name, canonical-jobspec}: what the loaded scheduler
                     accepts (the job manager asks before taking a jobspec that is not V1)
``job-manager.sched-hello``  sched -> job-manager: which jobs hold resources now
``job-manager.sched-ready``  sched -> job-manager: start sending alloc requests

A subclass implements the matching (:meth:`match`, :meth:`release`,
:meth:`unsatisfiable`) and, optionally, the queue policy (:meth:`schedule`).
"""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass, field
from typing import Any

from sortedcontainers import SortedList

from ..message import FLAG_NORESPONSE, FLAG_STREAMING, FluxError, Message
from ..service import DEFERRED, Service, payload_field, payload_jobid, request_handler
from ..util.idset import IDSet
from ..resource import acquire_change, acquire_update
from ..util.rv1 import ResourceSet

ALLOC_SUCCESS, ALLOC_ANNOTATE, ALLOC_DENY, ALLOC_CANCEL = 0, 1, 2, 3


@dataclass
class PendingJob:
    id: int
    priority: int
    userid: int
    t_submit: float
    jobspec: dict
    msg: Message
    request: Any = None
    annotations: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple:
        return (-self.priority, self.t_submit, self.id)


class SchedulerBase(Service):
    """Protocol plumbing: resources, hello/ready, the pending queue, alloc/free/cancel."""

    also_serves = ("sched",)
    #: the alloc requests the job manager may have outstanding ("unlimited" or "limited=N")
    mode = "unlimited"
    #: True if :meth:`parse` takes any canonical (RFC 14) jobspec, not only V1 (RFC 25)
    canonical_jobspec = False

    def start(self) -> None:
        self.pending = SortedList(key=lambda j: j.key)
        self.by_id: dict[int, PendingJob] = {}
        self.allocated: dict[int, ResourceSet] = {}
        self.R: ResourceSet | None = None
        self.down = IDSet()
        self.ready = False
        self._scheduling = False
        self.broker.rpc("resource.acquire", {}, nodeid=0, flags=FLAG_STREAMING,
                        callback=self._on_resources)

    def stop(self) -> None:
        for job in list(self.by_id.values()):
            self.respond_error(job.msg, errno.ENOSYS, f"{self.name}: scheduler unloaded")
        self.by_id.clear()
        self.pending.clear()

    # -- start-up: resources, hello, ready ---------------------------------------------
    def _on_resources(self, msg: Message) -> None:
        if msg.errnum:
            if msg.errnum not in (errno.ENODATA, errno.ENOSYS):
                self.log("err", f"resource.acquire failed: {msg.errstr}")
            return
        body = msg.json
        if self.R is not None and ("shrink" in body or "grow" in body):
            self.R, gone, added = acquire_change(body, self.R)
            if gone:
                self.resources_shrunk(gone)
            if added is not None:
                self.resources_grown(added)
        R, self.down = acquire_update(body, self.down)
        if R is not None:
            self.R = R
            self.resources_acquired()
            self.broker.rpc("job-manager.sched-hello", {}, nodeid=0).add_done_callback(self._on_hello)
            return
        self.resources_changed()
        if "shrink" in body:
            self._deny_unsatisfiable()
        self.kick()

    def _deny_unsatisfiable(self) -> None:
        """After a shrink: deny pending jobs the smaller instance could never run."""
        for job in list(self.pending):
            try:
                why = self.unsatisfiable(job.request)
            except ValueError as exc:
                why = str(exc)
            if why:
                self.deny(job, why)

    def _on_hello(self, fut) -> None:
        if fut.cancelled():
            return
        if fut.exception() is not None:
            self.log("err", f"job-manager.sched-hello failed: {fut.exception()}")
            return
        for job in fut.result().get("alloc", []):
            rs = ResourceSet(job["R"])
            try:
                self.claim(job["id"], rs, job.get("jobspec"))
            except Exception as exc:  # keep going: one bad job must not stop the scheduler
                self.log("err", f"hello: cannot re-claim resources of job {job['id']}: {exc}")
                continue
            self.allocated[job["id"]] = rs
        self.ready = True
        self.log("info", f"ready: {self.describe()}")
        self.broker.rpc("job-manager.sched-ready", {"mode": self.mode}, nodeid=0, flags=FLAG_NORESPONSE)

    # -- requests from the job manager -------------------------------------------------
    @request_handler("alloc", topic="sched.alloc")
    def alloc(self, msg: Message):
        body = msg.json
        try:
            job = PendingJob(int(body["id"]), int(body.get("priority", 16)), int(body.get("userid", 0)),
                             float(body.get("t_submit", time.time())), body["jobspec"], msg)
        except (KeyError, TypeError, ValueError) as exc:
            raise FluxError(errno.EPROTO, f"sched.alloc: malformed request: {exc}") from None
        old = self.by_id.pop(job.id, None)
        if old is not None:
            # the job manager asks again after a scheduler (re)load handshake: the newer
            # request replaces the older one, which gets no further answer
            self.pending.discard(old)
        try:
            job.request = self.parse(job.jobspec)
            why = self.unsatisfiable(job.request)
        except ValueError as exc:
            why = str(exc)
        if why:
            self.respond(msg, {"id": job.id, "type": ALLOC_DENY, "note": why})
            return DEFERRED
        self.by_id[job.id] = job
        self.pending.add(job)
        self.kick()
        return DEFERRED

    @request_handler("free", topic="sched.free")
    def free(self, msg: Message) -> dict:
        jobid = payload_jobid(msg)
        body = msg.json or {}
        final = body.get("final", True)
        if not isinstance(final, bool):
            raise FluxError(errno.EPROTO, "sched.free: final must be a boolean")
        held = self.allocated.get(jobid)
        if held is None:
            body_R = body.get("R")
            if body_R is None or not final:
                raise FluxError(errno.ENOENT, f"sched.free: job {jobid} holds no resources")
            held = self._free_R(jobid, body_R)
        part = held if "R" not in body else self._free_R(jobid, body["R"])
        self._free_part(jobid, held, part, final)
        self.kick()
        return {"id": jobid}

    @staticmethod
    def _free_R(jobid: int, R: Any) -> ResourceSet:
        try:
            return ResourceSet(R)
        except (TypeError, ValueError) as exc:
            raise FluxError(errno.EPROTO, f"sched.free: job {jobid}: malformed R: {exc}") from None

    def _free_part(self, jobid: int, held: ResourceSet, part: ResourceSet, final: bool) -> None:
        """Check that ``part`` is held by the job, then release it (and the rest if final)."""
        extra = part.diff(held)
        if extra.nnodes:
            raise FluxError(errno.EINVAL, f"sched.free: job {jobid} does not hold "
                            f"{extra.nodelist} (ranks {extra.ranks.encode()}) of that R")
        rest = held.diff(part)
        if final or not rest.nnodes:
            self.allocated.pop(jobid, None)
            self.release(jobid, held)
        else:
            self.allocated[jobid] = rest
            self.release_part(jobid, part, rest)

    @request_handler("cancel", topic="sched.cancel")
    def cancel(self, msg: Message) -> dict:
        jobid = payload_jobid(msg)
        job = self.by_id.pop(jobid, None)
        if job is not None:
            self.pending.discard(job)
            self.forget(job)
            self.respond(job.msg, {"id": jobid, "type": ALLOC_CANCEL})
            self.kick()
        return {}

    @request_handler("prioritize", topic="sched.prioritize")
    def prioritize(self, msg: Message) -> dict:
        for jobid, priority in payload_field(msg, "jobs", list):
            job = self.by_id.get(int(jobid))
            if job is not None:
                self.pending.discard(job)
                job.priority = int(priority)
                self.pending.add(job)
        self.kick()
        return {}

    @request_handler("features", topic="sched.features")
    def features(self, msg: Message) -> dict:
        return {"name": self.name, "canonical-jobspec": self.canonical_jobspec}

    @request_handler("resource-status", topic="sched.resource-status")
    def resource_status(self, msg: Message) -> dict:
        if self.R is None:
            raise FluxError(errno.EAGAIN, "scheduler has not acquired resources yet")
        alloc = ResourceSet()
        for rs in self.allocated.values():
            alloc = alloc | rs
        return {"all": self.R.to_R(), "allocated": alloc.to_R() if alloc.nnodes else None,
                "down": self.down.encode()}

    # -- the scheduling loop -------------------------------------------------------------
    def kick(self) -> None:
        """Run the queue policy soon (once per loop iteration, however many kicks)."""
        if self.ready and not self._scheduling:
            self._scheduling = True
            self.broker.loop.call_soon(self._run_schedule)

    def _run_schedule(self) -> None:
        self._scheduling = False
        if self.R is None or not self.ready:
            return
        self.schedule()

    def schedule(self) -> None:
        """First-come first-served: place jobs in priority order until one does not fit."""
        while self.pending:
            job = self.pending[0]
            rs = self.match(job.request, job)
            if rs is None:
                return
            self.grant(job, rs)

    def grant(self, job: PendingJob, rs: ResourceSet, annotations: dict | None = None) -> None:
        self.pending.discard(job)
        del self.by_id[job.id]
        self.allocated[job.id] = rs
        payload = {"id": job.id, "type": ALLOC_SUCCESS, "R": rs.to_R()}
        if annotations:
            payload["annotations"] = annotations
        self.respond(job.msg, payload)

    def annotate(self, job: PendingJob, annotations: dict) -> None:
        if annotations != job.annotations:
            job.annotations = annotations
            self.respond(job.msg, {"id": job.id, "type": ALLOC_ANNOTATE, "annotations": annotations})

    def deny(self, job: PendingJob, note: str) -> None:
        self.pending.discard(job)
        self.by_id.pop(job.id, None)
        self.forget(job)
        self.respond(job.msg, {"id": job.id, "type": ALLOC_DENY, "note": note})

    def disconnect(self, route) -> None:
        pass

    # -- to implement ----------------------------------------------------------------------
    def describe(self) -> str:
        return self.name

    def resources_acquired(self) -> None:
        """``self.R`` and ``self.down`` are set for the first time."""

    def resources_changed(self) -> None:
        """``self.down`` changed."""

    def resources_shrunk(self, gone: IDSet) -> None:
        """Ranks ``gone`` left the instance (``self.R`` no longer has them)."""

    def resources_grown(self, added: ResourceSet) -> None:
        """Resources ``added`` joined the instance (``self.R`` has them now)."""

    def parse(self, jobspec: dict) -> Any:
        """Turn a jobspec into this scheduler's request; ValueError if it cannot."""
        raise NotImplementedError

    def unsatisfiable(self, request: Any) -> str | None:
        """Why the request could never be met by these resources, or None."""
        raise NotImplementedError

    def match(self, request: Any, job: PendingJob) -> ResourceSet | None:
        """Resources for the request now (and take them), or None if it must wait."""
        raise NotImplementedError

    def claim(self, jobid: int, rs: ResourceSet, jobspec: dict | None) -> None:
        """Mark resources already held by a job (after a scheduler reload)."""
        raise NotImplementedError

    def release(self, jobid: int, rs: ResourceSet) -> None:
        """Return a job's resources."""
        raise NotImplementedError

    def release_part(self, jobid: int, part: ResourceSet, rest: ResourceSet) -> None:
        """Return ``part`` of a job's resources; it keeps ``rest`` (a partial ``sched.free``).

        The default suits schedulers that track resources per rank (``release`` of a subset).
        """
        self.release(jobid, part)

    def forget(self, job: PendingJob) -> None:
        """A pending job left the queue without resources (cancel or deny)."""
