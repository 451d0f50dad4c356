"""The ``job-manager`` service: jobs from submit to inactive (RFC 21).

Every change to a job is an event appended to its eventlog (``job.<dothex>.eventlog``)
and applied through the transition table of :mod:`.states`. What the job manager
does next follows from the state a job enters:

DEPEND   check dependencies (``afterok`` ...), then post ``depend``
PRIORITY compute the priority from the urgency, post ``priority``
SCHED    ask the scheduler (``sched.alloc``); ``alloc`` on success
RUN      start the job (``job-exec.start``): ``start``, ``finish``, ``release``
CLEANUP  cancel a pending alloc, or wait for exec to release, then ``sched.free``
         -> ``free``, then ``clean``; with ``[job-manager.housekeeping]`` configured,
         the resources pass to :mod:`.housekeeping` (``free`` at once), which gives
         them back to the scheduler node by node
"""

from __future__ import annotations

import errno
import json
import os
import signal
import time
from typing import Callable

from ..kvs.writer import KVSWriter
from ..message import FLAG_NORESPONSE, FLAG_STREAMING, FluxError, Message
from ..service import (
    DEFERRED, Service, event_handler, payload_field, payload_jobid, request_handler,
)
from .jobid import FluidGenerator, JobID, id_parse, kvs_dir
from .jobspec import JobspecError, validate
from .jobspec_validate import MAX_BYTES
from .states import (
    PRIORITY_MAX, URGENCY_DEFAULT, URGENCY_EXPEDITE, URGENCY_HOLD, IllegalTransition, Job,
    apply_event,
)
from . import purge
from .dependencies import DependencyError, parse_dependencies, resolve_dependency
from .journal import EventsJournal
from .housekeeping import Housekeeping, HousekeepingConfigError, kill_request

FLAG_WAITABLE = 0x08


def job_key(jobid: int, *parts: str) -> str:
    return ".".join((kvs_dir(jobid), *parts))


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def event_line(name: str, context: dict | None, timestamp: float) -> str:
    """One RFC 18 eventlog line (the job manager builds events itself; no validation)."""
    ev: dict = {"timestamp": timestamp, "name": name}
    if context:
        ev["context"] = context
    return _dumps(ev) + "\n"


class JobManager(Service):
    name = "job-manager"
    also_serves = ("job-ingest",)

    def start(self) -> None:
        self.jobs: dict[int, Job] = {}
        #: id -> (result, ever started, t_inactive), in the order jobs became inactive
        self.inactive: dict[int, tuple[str, bool, float]] = {}
        #: kept jobs per directory above theirs (purge unlinks the emptied ones)
        self.job_dirs = purge.JobDirs()
        self.writer = KVSWriter(self.broker, self._kvs_error)
        self.fluid = FluidGenerator(gen_id=0, start_timestamp=0)
        self.listeners: list[Callable[[Job, dict], None]] = []
        self.journal = EventsJournal(self)
        self._valid_texts: set = set()   # jobspec texts (or payloads) that passed V1 validation
        self.listeners.append(self.journal)
        self.wait_requests: list[tuple[int | None, Message]] = []
        self.waitable_done: dict[int, Job] = {}
        self.dependents: dict[int, list[tuple[int, str]]] = {}
        self.sched_ready = False
        self.sched_limit: int | None = None
        self.queue = {"enabled": True, "started": True, "disable_reason": "", "stop_reason": ""}
        self.history: list[int] = []
        self.alloc_tags: dict[int, int] = {}
        self.idle_waiters: list[tuple[str, Message]] = []
        self.state_batch: list[list] = []
        self._restored_jobs: list[Job] = []
        from ..config import get as conf_get
        try:
            self.housekeeping = Housekeeping(self, conf_get(self.broker.conf,
                                                            "job-manager.housekeeping"))
        except HousekeepingConfigError as exc:
            self.log("err", f"{exc}; housekeeping disabled")
            self.housekeeping = Housekeeping(self, None)
        self._restore()
        try:
            age_limit, num_limit = purge.parse_limits(self.broker.attrs)
        except ValueError as exc:
            raise FluxError(errno.EINVAL, str(exc)) from None
        self.purger = purge.Purger(self.broker.loop, age_limit, num_limit, self.inactive,
                                   self._purge)

    def stop(self) -> None:
        self.purger.stop()
        self.writer.flush()  # what is queued goes out before the KVS does
        for _, msg in self.wait_requests:
            self.respond_error(msg, errno.ENOSYS, "job-manager unloaded")
        self.wait_requests.clear()

    def _kvs_error(self, ns: str, exc: Exception) -> None:
        if not self.broker.closed and self.broker.services.get("kvs") is not None:
            self.log("err", f"KVS commit to {ns} failed: {exc}")

    # -- restart -----------------------------------------------------------------------
    def _restore(self) -> None:
        """Rebuild jobs from the KVS after a restart on a state directory."""
        kvs = self.broker.services.get("kvs")
        if kvs is None or not self.broker.attrs.get("statedir"):
            return
        store = kvs.kvs
        try:
            floor = store.get("primary", "checkpoint.job-manager.max-jobid")
        except Exception:
            return
        self.fluid.resume(int(floor))
        from ..util.eventlog import decode
        from .states import replay
        restored = 0
        for path in _job_keys(store):
            # counted even if it cannot be restored: its parents stay
            self.job_dirs.add(path)
            try:
                jobid = id_parse(path)
                events = decode(store.get_raw("primary", f"{path}.eventlog").decode())
                job = replay(jobid, events)
                job.jobspec = store.get("primary", f"{path}.jobspec")
                try:
                    job.R = store.get("primary", f"{path}.R")
                except Exception:
                    pass
            except Exception as exc:
                self.log("err", f"restart: cannot restore {path}: {exc}")
                continue
            restored += 1
            _fill_from_jobspec(job)
            self._restored_jobs.append(job)
            self.journal.restored(job, events)
            if job.state == "INACTIVE":
                self.inactive[job.id] = (job.result, job.t_run is not None,
                                         job.t_inactive or job.t_submit)
            else:
                # the instance that held its resources is gone, and them with it
                job.has_resources = job.alloc_pending = job.exec_running = False
                self.jobs[job.id] = job
        for job in sorted((j for j in self._restored_jobs if j.state != "INACTIVE"),
                          key=lambda j: j.id):
            self.broker.loop.call_soon(self._resume, job)
        if restored:
            self.log("info", f"restart: restored {restored} jobs")

    def _resume(self, job: Job) -> None:
        """Take up a restored active job where the killed instance left it.

        As flux-core's job manager restarts: a pending job goes back in the queue
        with its urgency (a SCHED job by ``flux-restart``, back to PRIORITY, so its
        priority is computed again and it is sent to the scheduler in id order); a
        job that had resources gets a ``restart`` exception, as its tasks died with
        the instance.
        """
        if job.state in ("NEW", "DEPEND"):
            try:
                job.pending_deps = parse_dependencies(job.jobspec or {})
            except DependencyError:
                job.pending_deps = ()
            if job.state == "NEW":  # its submit is recorded, its validation not
                self.post(job, "validate")
            else:
                self._check_dependencies(job)
        elif job.state == "PRIORITY":
            self._enter(job)
        elif job.state == "SCHED":
            self.post(job, "flux-restart")
        else:
            self.raise_exception(job, "restart", 0, "instance restarted while the job was running")
            self._cleanup(job)

    def add_listener(self, fn: Callable[[Job, dict], None]) -> None:
        """Called with (job, event) for every event (job-list keeps its view this way)."""
        self.listeners.append(fn)
        for job in self._restored_jobs:
            fn(job, {"name": "restore", "timestamp": job.t_submit, "context": {}})

    # -- events ------------------------------------------------------------------------
    def post(self, job: Job, name: str, context: dict | None = None) -> None:
        """Append an event to the job's eventlog and act on the state it leads to."""
        ev = {"timestamp": time.time(), "name": name, "context": context or {}}
        old = job.state
        try:
            apply_event(job, ev)
        except IllegalTransition as exc:
            self.log("err", str(exc))
            return
        if not job.kvs_dir:
            job.kvs_dir = kvs_dir(job.id)
        self.writer.append(job.kvs_dir + ".eventlog", event_line(name, context, ev["timestamp"]))
        for fn in self.listeners:
            fn(job, ev)
        if job.state != old:
            self._batch_state(job, ev["timestamp"])
            self._enter(job)

    def _batch_state(self, job: Job, ts: float) -> None:
        if not self.state_batch:
            self.broker.loop.call_soon(self._publish_states)
        self.state_batch.append([job.id, job.state, ts])

    def _publish_states(self) -> None:
        batch, self.state_batch = self.state_batch, []
        if batch:
            self.broker.publish("job-state", {"transitions": batch})

    def _enter(self, job: Job) -> None:
        st = job.state
        if st == "DEPEND":
            self._check_dependencies(job)
        elif st == "PRIORITY":
            self.post(job, "priority", {"priority": self._priority(job)})
        elif st == "SCHED":
            self._request_alloc(job)
        elif st == "RUN":
            # tasks (and nested instances) read R from the KVS: start once it is there
            self.writer.after("primary", lambda: self._start_exec(job) if job.state == "RUN" else None)
        elif st == "CLEANUP":
            self._cleanup(job)
        elif st == "INACTIVE":
            self._inactive(job)

    def _priority(self, job: Job) -> int:
        if job.urgency == URGENCY_HOLD:
            return 0
        if job.urgency == URGENCY_EXPEDITE:
            return PRIORITY_MAX
        return job.urgency

    # -- submit ------------------------------------------------------------------------
    @request_handler("submit")
    def submit(self, msg: Message) -> dict:
        body = msg.json
        if not isinstance(body, dict):
            raise FluxError(errno.EPROTO, "job-manager.submit: payload must be a JSON object")
        self._admit(msg)
        raw = msg.raw if type(msg.raw) is bytes else None  # the whole payload says it all
        return self._when_stored(msg, self._submit(body, None, raw))

    def _when_stored(self, msg: Message, result):
        """Answer a submit once the job's jobspec and first events are in the KVS, as
        flux-core's ingest does: whoever has the id can read the job at once."""
        if hasattr(result, "__await__"):
            async def stored():
                answer = await result
                done = self.broker.loop.create_future()
                self.writer.after("primary", lambda: done.done() or done.set_result(None))
                await done
                return answer
            return stored()
        self.writer.after("primary", lambda: self.respond(msg, result))
        return DEFERRED

    def _admit(self, msg: Message) -> None:
        if not self.queue["enabled"]:
            reason = self.queue["disable_reason"]
            raise FluxError(errno.EAGAIN, "job submission is disabled" + (f": {reason}" if reason else ""))
        if len(msg.payload or b"") > MAX_BYTES:
            raise FluxError(errno.EINVAL, f"jobspec: larger than the limit of "
                                          f"{MAX_BYTES // (1024 * 1024)} MiB")

    def _submit(self, body: dict, text: str | None, same: str | bytes | None = None):
        """Validate and accept ``body['jobspec']``; ``text``: the JSON it was decoded
        from, when the submitter sent one (job-ingest's ``J``); ``same``: what is the
        same for requests with the same jobspec (``text``, or the request's payload)."""
        same = text if same is None else same
        jobspec = body.get("jobspec")
        if isinstance(jobspec, str):
            try:
                jobspec = json.loads(jobspec)
            except ValueError as exc:
                raise FluxError(errno.EINVAL, f"jobspec: not valid JSON: {exc}") from None
            except RecursionError:
                raise FluxError(errno.EINVAL, "jobspec: nested too deeply") from None
        try:
            # the copies of a `flux submit --cc` range are one text: validated once
            if same is None or same not in self._valid_texts:
                validate(jobspec, version=1)
                if same is not None:
                    if len(self._valid_texts) >= 64:
                        self._valid_texts.clear()
                    self._valid_texts.add(same)
        except JobspecError as v1_error:
            if v1_error.path == "version" and _v1_but_version(jobspec):
                # a version 1 jobspec in all but its number (version: 99): flux-core's
                # ingest refuses it. Canonical ones (flux-sched's say 9999) go on.
                raise FluxError(errno.EINVAL, str(v1_error)) from None
            bad = _non_integer_count(jobspec) \
                if isinstance(jobspec, dict) and jobspec.get("version") == 1 else None
            if bad is not None:
                # flux-core's validator reads a jobspec that says version 1 as V1,
                # whatever it is configured to accept otherwise: counts are integers
                raise FluxError(errno.EINVAL, f"resource count must be an integer for type "
                                              f"'{bad[0]}' (got '{bad[1]}')")
            # Not V1 (RFC 25). A canonical (RFC 14) jobspec may still be accepted,
            # as flux's validator can be configured to, if the scheduler says it can
            # match one (Fluxion can; sched-simple cannot): ask it.
            try:
                validate(jobspec, version=None)
            except JobspecError as exc:
                raise FluxError(errno.EINVAL, str(exc)) from None
            return self._submit_canonical(body, jobspec, str(v1_error))
        return self._accept(body, jobspec, text)

    @request_handler("submit", topic="job-ingest.submit")
    def ingest_submit(self, msg: Message):
        """flux-core's ``job-ingest.submit``: ``J`` is the (signed) jobspec."""
        body = msg.json
        if not isinstance(body, dict) or "J" not in body:
            raise FluxError(errno.EPROTO, "job-ingest.submit: payload must have J")
        urgency = body.get("urgency", URGENCY_DEFAULT)
        if not isinstance(urgency, int) or not 0 <= urgency <= 31:
            raise FluxError(errno.EINVAL, "urgency range is [0-31]")
        J = body["J"]
        if not isinstance(J, str) or not J:
            raise FluxError(errno.EINVAL, "job-ingest.submit: J must be a non-empty string")
        try:
            jobspec = json.loads(J)
        except ValueError:  # HEADER.PAYLOAD.SIGNATURE, as flux_sign_wrap() makes it
            import base64
            parts = J.split(".")
            try:
                jobspec = json.loads(base64.b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
            except (IndexError, ValueError) as exc:
                raise FluxError(errno.EINVAL, f"job-ingest.submit: cannot decode J: {exc}") from None
            J = None  # the KVS keeps the jobspec, not its signed wrapper
        self._admit(msg)
        return self._when_stored(msg, self._submit({"jobspec": jobspec, "urgency": urgency,
                                                    "flags": body.get("flags", 0)}, J))

    async def _submit_canonical(self, body: dict, jobspec: dict, v1_error: str) -> dict:
        try:
            features = await self.broker.rpc("sched.features", {}, nodeid=0)
        except FluxError:
            features = {}  # no scheduler loaded, or one that predates sched.features
        if not features.get("canonical-jobspec"):
            sched = features.get("name") or "the scheduler"
            raise FluxError(errno.EINVAL, f"{v1_error} ({sched} accepts only version 1 jobspecs, "
                                          "RFC 25: node/slot/core/gpu; load the Fluxion scheduler "
                                          "for other resource types)")
        return self._accept(body, jobspec)

    def _accept(self, body: dict, jobspec: dict, text: str | None = None) -> dict:
        """Give a validated jobspec an id and post its ``submit`` event (``text``: the
        JSON it came as, stored as it is rather than encoded again)."""
        urgency = body.get("urgency", URGENCY_DEFAULT)
        if not isinstance(urgency, int) or not 0 <= urgency <= 31:
            raise FluxError(errno.EINVAL, f"urgency {urgency!r}: must be an integer from 0 to 31")
        flags = body.get("flags", 0)
        if not isinstance(flags, int) or isinstance(flags, bool) or flags < 0:
            raise FluxError(errno.EPROTO, f"job-manager.submit: 'flags' {flags!r} must be a "
                                          "non-negative integer")
        try:
            deps = parse_dependencies(jobspec)
        except DependencyError as exc:
            raise FluxError(errno.EINVAL, str(exc)) from None
        jobid = self.fluid.next()
        job = Job(id=jobid, userid=os.getuid(), urgency=urgency, t_submit=time.time(), flags=flags,
                  jobspec=jobspec, waitable=bool(flags & FLAG_WAITABLE))
        _fill_from_jobspec(job)
        self.jobs[jobid] = job
        job.kvs_dir = kvs_dir(jobid)
        self.job_dirs.add(job.kvs_dir)
        self.history.append(jobid)
        if len(self.history) > 1000:
            del self.history[:500]
        if text is not None:
            self.writer.put_raw(job_key(jobid, "jobspec"), text)
        else:
            self.writer.put(job_key(jobid, "jobspec"), jobspec)
        self.writer.put("checkpoint.job-manager.max-jobid", jobid)
        job.pending_deps = deps
        self.post(job, "submit", {"userid": job.userid, "urgency": urgency, "flags": flags,
                                  "version": 1})
        self.post(job, "validate")
        return {"id": jobid}

    # -- dependencies ---------------------------------------------------------------------
    def _check_dependencies(self, job: Job) -> None:
        for scheme, value in job.pending_deps:
            try:
                target = resolve_dependency(scheme, value)
            except DependencyError as exc:
                self.post(job, "exception", {"type": "dependency", "severity": 0, "userid": job.userid,
                                             "note": str(exc)})
                return
            desc = f"{scheme}={JobID(target).f58}"
            why = self._dependency_state(scheme, target)
            if why is True:
                if desc in job.dependencies:  # met while the instance was down
                    self.post(job, "dependency-remove", {"description": desc})
                continue
            if isinstance(why, str):
                self.post(job, "exception", {"type": "dependency", "severity": 0, "userid": job.userid,
                                             "note": f"dependency {desc}: {why}"})
                return
            if desc not in job.dependencies:  # a restart finds it already added
                self.post(job, "dependency-add", {"description": desc})
            self.dependents.setdefault(target, []).append((job.id, scheme))
        job.pending_deps = ()
        if job.state == "DEPEND" and not job.dependencies:
            self.post(job, "depend")

    def _dependency_state(self, scheme: str, target: int) -> bool | str | None:
        """True if met, a reason string if it never can be, None if not yet."""
        if target in self.jobs:
            t = self.jobs[target]
            if scheme == "afterstart" and t.t_run is not None:
                return True
            return None
        if target not in self.inactive:
            return f"job {JobID(target).f58} not found"
        result, started, _ = self.inactive[target]
        if scheme == "afterany":
            return True
        if scheme == "afterok":
            return True if result == "COMPLETED" else f"job {JobID(target).f58} did not complete successfully"
        if scheme == "afternotok":
            return True if result != "COMPLETED" else f"job {JobID(target).f58} completed successfully"
        if scheme == "afterstart":
            return True if started else f"job {JobID(target).f58} never started"
        return f"unknown dependency scheme {scheme}"

    def _release_dependents(self, target: int) -> None:
        for jobid, scheme in self.dependents.pop(target, []):
            job = self.jobs.get(jobid)
            if job is None or job.state != "DEPEND":
                continue
            desc = f"{scheme}={JobID(target).f58}"
            why = self._dependency_state(scheme, target)
            if why is None:
                self.dependents.setdefault(target, []).append((jobid, scheme))
            elif why is True:
                self.post(job, "dependency-remove", {"description": desc})
                if not job.dependencies:
                    self.post(job, "depend")
            else:
                self.post(job, "exception", {"type": "dependency", "severity": 0, "userid": job.userid,
                                             "note": f"dependency {desc}: {why}"})

    # -- scheduler protocol ------------------------------------------------------------------
    @request_handler("sched-hello")
    def sched_hello(self, msg: Message) -> dict:
        self.sched_ready = False
        for job in self.jobs.values():
            job.alloc_pending = False
        self.alloc_tags.clear()
        return {"alloc": [{"id": j.id, "priority": j.priority, "userid": j.userid, "R": j.R,
                           "jobspec": j.jobspec}
                          for j in self.jobs.values() if j.has_resources and j.R]
                + self.housekeeping.hello()}

    @request_handler("events-journal")
    def events_journal(self, msg: Message):
        if not msg.flags & FLAG_STREAMING:
            raise FluxError(errno.EPROTO, "job-manager.events-journal: needs a streaming RPC")
        body = msg.json if isinstance(msg.json, dict) else {}
        self.journal.request(msg, bool(body.get("full", False)), self.jobs)
        return DEFERRED

    @request_handler("events-journal-cancel")
    def events_journal_cancel(self, msg: Message):
        self.journal.cancel(msg, payload_field(msg, "matchtag", int))
        return DEFERRED if msg.flags & FLAG_NORESPONSE else {}

    @request_handler("resource-status")
    def resource_status(self, msg: Message) -> dict:
        """flux-core's ``job-manager.resource-status``: ``allocated`` is the R of what jobs
        hold (allocated and not yet freed) and of what housekeeping still holds."""
        from ..util.rv1 import ResourceSet
        held = [(j.id, j.R) for j in self.jobs.values() if j.has_resources and j.R]
        held += [(a["id"], a["R"]) for a in self.housekeeping.hello()]
        total = ResourceSet()
        for jobid, R in held:
            try:
                total = total.union(ResourceSet(R))
            except ValueError as exc:
                raise FluxError(errno.EINVAL, f"{JobID(jobid).f58}: {exc}") from None
        return {"allocated": total.to_R()}

    @request_handler("sched-ready")
    def sched_ready_handler(self, msg: Message) -> dict:
        mode = (msg.json or {}).get("mode", "unlimited")
        self.sched_limit = int(mode.split("=", 1)[1]) if mode.startswith("limited=") else None
        self.sched_ready = True
        self.log("info", f"scheduler ready ({mode})")
        self._feed_scheduler()
        return {"count": sum(1 for j in self.jobs.values() if j.state == "SCHED")}

    def _feed_scheduler(self) -> None:
        for job in sorted((j for j in self.jobs.values() if j.state == "SCHED"), key=lambda j: j.id):
            self._request_alloc(job)

    def _request_alloc(self, job: Job) -> None:
        if not (self.sched_ready and self.queue["started"]) or job.alloc_pending:
            return
        if self.sched_limit is not None and len(self.alloc_tags) >= self.sched_limit:
            return
        if job.priority == 0:  # held
            return
        job.alloc_pending = True
        tag = self.broker.rpc("sched.alloc", {"id": job.id, "priority": job.priority,
                                              "userid": job.userid, "t_submit": job.t_submit,
                                              "jobspec": job.jobspec},
                              nodeid=0, flags=FLAG_STREAMING,
                              callback=lambda m, jobid=job.id: self._on_alloc(jobid, m))
        self.alloc_tags[job.id] = tag

    def _on_alloc(self, jobid: int, msg: Message) -> None:
        if self.alloc_tags.get(jobid) != msg.matchtag:
            # an answer to an earlier request of this job (held, then released)
            self.broker.rpc_cancel(msg.matchtag)
            return
        job = self.jobs.get(jobid)
        if msg.errnum:
            self.alloc_tags.pop(jobid, None)
            if msg.errnum == errno.ENOSYS:
                # the scheduler went away: nothing more is sent until the next
                # one says hello and ready (then every SCHED job is re-sent)
                self.sched_ready = False
            if job is not None:
                job.alloc_pending = False
                if job.state == "CLEANUP":
                    self._cleanup(job)
            if msg.errnum != errno.ENOSYS:
                self.log("err", f"sched.alloc {JobID(jobid).f58}: {msg.errstr}")
            return
        body = msg.json
        kind = body.get("type")
        if kind == 1:  # annotate
            if job is not None:
                # the scheduler's view replaces its own keys; user memos stay
                job.annotations = {**{k: v for k, v in job.annotations.items() if k == "user"},
                                   **body.get("annotations", {})}
                for fn in self.listeners:
                    fn(job, {"name": "annotations", "timestamp": time.time(), "context": job.annotations})
            return
        self.broker.rpc_cancel(self.alloc_tags.pop(jobid, None))
        if job is None:
            return
        job.alloc_pending = False
        if kind == 0:
            job.R = body["R"]
            self.writer.put(job_key(jobid, "R"), job.R)
            if job.state != "SCHED":  # canceled meanwhile: give it back
                job.has_resources = True
                self._cleanup(job)
                return
            self.post(job, "alloc", {"annotations": body["annotations"]} if body.get("annotations") else None)
        elif kind == 2:
            self.post(job, "exception", {"type": "alloc", "severity": 0, "userid": job.userid,
                                         "note": body.get("note", "alloc denied")})
        elif kind == 3:
            if job.state == "CLEANUP":
                self._cleanup(job)
        self._feed_more()

    def _feed_more(self) -> None:
        if self.sched_limit is not None:
            self._feed_scheduler()

    # -- exec protocol ----------------------------------------------------------------------
    def _start_exec(self, job: Job) -> None:
        job.exec_running = True
        self.broker.rpc("job-exec.start", {"id": job.id, "R": job.R, "jobspec": job.jobspec,
                                                  "userid": job.userid},
                              nodeid=0, flags=FLAG_STREAMING,
                              callback=lambda m, jobid=job.id: self._on_exec(jobid, m))

    def _on_exec(self, jobid: int, msg: Message) -> None:
        job = self.jobs.get(jobid)
        if job is None:
            return
        if msg.errnum:
            if msg.errnum == errno.ENODATA:
                return
            if job.exec_running:
                job.exec_running = False
                if job.state not in ("CLEANUP", "INACTIVE"):
                    self.post(job, "exception", {"type": "exec", "severity": 0, "userid": job.userid,
                                                 "note": msg.errstr or "exec failed"})
                self.post(job, "release", {"ranks": "all", "final": True})
                self._cleanup(job)
            return
        body = msg.json
        kind, data = body.get("type"), body.get("data") or {}
        if kind == "start":
            self.post(job, "start")
        elif kind == "finish":
            self.post(job, "finish", {"status": int(data.get("status", 0))})
        elif kind == "exception":
            self.raise_exception(job, data.get("type", "exec"), int(data.get("severity", 0)),
                                 data.get("note", ""))
        elif kind == "release":
            self.post(job, "release", {"ranks": data.get("ranks", "all"), "final": bool(data.get("final"))})
            if data.get("final"):
                job.exec_running = False
                self._cleanup(job)

    # -- cleanup --------------------------------------------------------------------------
    def _cleanup(self, job: Job) -> None:
        if job.state != "CLEANUP":
            return
        if job.alloc_pending:
            if not job.cancel_sent:
                job.cancel_sent = True
                self.broker.rpc("sched.cancel", {"id": job.id}, nodeid=0, flags=FLAG_NORESPONSE)
            return
        if job.exec_running:
            return
        if job.has_resources:
            if job.free_sent:
                return
            job.free_sent = True
            if self.housekeeping.enabled and job.R:
                # housekeeping holds the resources now; the job is done with them
                self.housekeeping.start(job.id, job.R, job.userid)
                job.has_resources = False
                self.post(job, "free")
            else:
                fut = self.broker.rpc("sched.free", {"id": job.id, "R": job.R, "final": True},
                                      nodeid=0)
                fut.add_done_callback(lambda f, job=job: self._on_free(job, f))
                return
        self.post(job, "clean")

    def _on_free(self, job: Job, fut) -> None:
        if fut.cancelled():
            return
        if fut.exception() is not None:
            self.log("err", f"sched.free {JobID(job.id).f58}: {fut.exception()}")
        self.post(job, "free")
        self._cleanup(job)

    def _inactive(self, job: Job) -> None:
        self.jobs.pop(job.id, None)
        self.inactive[job.id] = (job.result, job.t_run is not None, job.t_inactive or time.time())
        self._release_dependents(job.id)
        if job.waitable:
            self.waitable_done[job.id] = job
            self._answer_waits()
        self._check_idle()

    @event_handler("resource.shrink")
    def _on_shrink(self, msg: Message) -> None:
        """Nodes left the instance: jobs running there fail as on a lost node (flux-core's
        ``node-failure``); their other nodes are freed as the job cleans up."""
        from ..util.idset import IDSet
        from ..util.rv1 import ResourceSet
        try:
            gone = IDSet((msg.json or {}).get("idset", ""))
        except ValueError:
            return
        for job in list(self.jobs.values()):
            if job.state not in ("RUN", "CLEANUP") or not job.R or not job.has_resources:
                continue
            try:
                rs = ResourceSet(job.R)
            except ValueError:
                continue
            lost = rs.ranks & gone
            if lost and job.state == "RUN":
                hosts = ",".join(rs.host(r) or str(r) for r in lost)
                self.raise_exception(job, "node-failure", 0,
                                     f"node {hosts} (rank {lost.encode()}) was removed from the instance")

    # -- exceptions, cancel, kill, urgency --------------------------------------------------
    def raise_exception(self, job: Job, kind: str, severity: int, note: str) -> None:
        self.post(job, "exception", {"type": kind, "severity": severity, "userid": job.userid, "note": note})
        if severity == 0 and job.exec_running:
            self.broker.rpc("job-exec.kill", {"id": job.id, "signum": signal.SIGTERM, "escalate": True},
                            nodeid=0, flags=FLAG_NORESPONSE)

    def _job(self, msg: Message) -> Job:
        jobid = payload_jobid(msg)
        job = self.jobs.get(jobid)
        if job is None:
            if jobid in self.inactive:
                raise FluxError(errno.EINVAL, f"job {JobID(jobid).f58} is inactive")
            raise FluxError(errno.ENOENT, f"job {JobID(jobid).f58}: unknown job id")
        return job

    @request_handler("raise")
    def raise_(self, msg: Message) -> dict:
        job = self._job(msg)
        kind = payload_field(msg, "type", str, "cancel")
        severity = payload_field(msg, "severity", int, 0)
        if not kind or any(c.isspace() or c == "=" for c in kind):
            raise FluxError(errno.EINVAL, f"exception type {kind!r}: must be a word without spaces or '='")
        if not 0 <= severity <= 7:
            raise FluxError(errno.EINVAL, f"severity {severity}: must be 0..7")
        self.raise_exception(job, kind, severity, payload_field(msg, "note", str, ""))
        return {}

    @request_handler("cancel")
    def cancel(self, msg: Message) -> dict:
        job = self._job(msg)
        self.raise_exception(job, "cancel", 0, payload_field(msg, "reason", str, ""))
        return {}

    @request_handler("kill")
    def kill(self, msg: Message) -> dict:
        job = self._job(msg)
        signum = payload_field(msg, "signum", int, signal.SIGTERM)
        if not 0 < signum < 65:
            raise FluxError(errno.EINVAL, f"signal {signum}: invalid")
        if job.state != "RUN":
            raise FluxError(errno.EINVAL, f"job {JobID(job.id).f58} is not running")
        self.broker.rpc("job-exec.kill", {"id": job.id, "signum": signum}, nodeid=0, flags=FLAG_NORESPONSE)
        return {}

    @request_handler("killall")
    def killall(self, msg: Message) -> dict:
        signum = payload_field(msg, "signum", int, signal.SIGTERM)
        count = 0
        for job in list(self.jobs.values()):
            if job.state == "RUN":
                self.broker.rpc("job-exec.kill", {"id": job.id, "signum": signum}, nodeid=0, flags=FLAG_NORESPONSE)
                count += 1
        return {"count": count}

    @request_handler("cancel-all")
    def cancel_all(self, msg: Message) -> dict:
        states = payload_field(msg, "states", list, ["DEPEND", "PRIORITY", "SCHED", "RUN"])
        dry = payload_field(msg, "dry_run", bool, False)
        victims = [j for j in self.jobs.values() if j.state in states]
        if not dry:
            for job in victims:
                self.raise_exception(job, "cancel", 0, payload_field(msg, "reason", str, ""))
        return {"count": len(victims)}

    @request_handler("memo")
    def memo(self, msg: Message) -> dict:
        """Attach user data to a job (``flux job memo``); a nested instance records its URI."""
        job = self._job(msg)
        memo = payload_field(msg, "memo", dict)
        self.post(job, "memo", memo)
        job.annotations = {**job.annotations, "user": {**job.annotations.get("user", {}), **memo}}
        for fn in self.listeners:
            fn(job, {"name": "annotations", "timestamp": time.time(), "context": job.annotations})
        return {}

    @request_handler("urgency")
    def urgency(self, msg: Message) -> dict:
        job = self._job(msg)
        urgency = payload_field(msg, "urgency", int)
        if not 0 <= urgency <= 31:
            raise FluxError(errno.EINVAL, f"urgency {urgency}: must be 0..31")
        old = job.urgency
        self.post(job, "urgency", {"userid": job.userid, "urgency": urgency})
        if job.state in ("SCHED", "PRIORITY"):
            was_held = job.priority == 0
            self.post(job, "priority", {"priority": self._priority(job)})
            if job.state == "SCHED":
                if job.priority == 0 and job.alloc_pending:
                    self.broker.rpc("sched.cancel", {"id": job.id}, nodeid=0, flags=FLAG_NORESPONSE)
                    job.alloc_pending = False
                elif was_held:
                    self._request_alloc(job)
                elif job.alloc_pending:
                    self.broker.rpc("sched.prioritize", {"jobs": [[job.id, job.priority]]}, nodeid=0, flags=FLAG_NORESPONSE)
        return {"old_urgency": old}

    # -- wait -------------------------------------------------------------------------------
    @request_handler("wait")
    def wait(self, msg: Message):
        jobid = payload_field(msg, "id", int, -1)
        if jobid >= 0:
            job = self.jobs.get(jobid) or self.waitable_done.get(jobid)
            if job is None:
                raise FluxError(errno.ECHILD, f"job {JobID(jobid).f58} is not waitable or was already waited for")
            if not job.waitable:
                raise FluxError(errno.EINVAL, f"job {JobID(jobid).f58} was not submitted with the waitable flag")
        elif not self.waitable_done and not any(j.waitable for j in self.jobs.values()):
            raise FluxError(errno.ECHILD, "there are no waitable jobs")
        self.wait_requests.append((None if jobid < 0 else jobid, msg))
        self._answer_waits()
        return DEFERRED

    def _answer_waits(self) -> None:
        for entry in list(self.wait_requests):
            want, msg = entry
            job = None
            if want is None:
                if self.waitable_done:
                    job = self.waitable_done.pop(next(iter(self.waitable_done)))
            elif want in self.waitable_done:
                job = self.waitable_done.pop(want)
            if job is not None:
                self.wait_requests.remove(entry)
                answer = {"id": job.id, "success": job.success, "errstr": _errstr(job)}
                self.writer.after("primary", lambda m=msg, a=answer: self.respond(m, a))

    def disconnect(self, route) -> None:
        n = len(route)
        self.journal.disconnect(route)
        self.wait_requests = [(j, m) for j, m in self.wait_requests if m.route[:n] != route]

    # -- queue --------------------------------------------------------------------------------
    @request_handler("queue-enable")
    def queue_enable(self, msg: Message) -> dict:
        enable = payload_field(msg, "enable", bool)
        self.queue["enabled"] = enable
        self.queue["disable_reason"] = "" if enable else payload_field(msg, "reason", str, "")
        return {}

    @request_handler("queue-start")
    def queue_start(self, msg: Message) -> dict:
        start = payload_field(msg, "start", bool)
        self.queue["started"] = start
        self.queue["stop_reason"] = "" if start else payload_field(msg, "reason", str, "")
        if start:
            self._feed_scheduler()
        else:
            for job in self.jobs.values():
                if job.alloc_pending:
                    self.broker.rpc("sched.cancel", {"id": job.id}, nodeid=0, flags=FLAG_NORESPONSE)
        return {}

    @request_handler("queue-status")
    def queue_status(self, msg: Message) -> dict:
        # flux-core's keys (enable, start) beside fluxnb's own
        return dict(self.queue, enable=self.queue["enabled"], start=self.queue["started"])

    @request_handler("drain")
    def drain(self, msg: Message):
        self.idle_waiters.append(("drain", msg))
        self._check_idle()
        return DEFERRED

    @request_handler("idle")
    def idle(self, msg: Message):
        self.idle_waiters.append(("idle", msg))
        self._check_idle()
        return DEFERRED

    def _check_idle(self) -> None:
        if not self.idle_waiters:
            return
        active = len(self.jobs)
        running = sum(1 for j in self.jobs.values() if j.state in ("RUN", "CLEANUP"))
        pending = sum(1 for j in self.jobs.values() if j.state in ("DEPEND", "PRIORITY", "SCHED"))
        keep = []
        for kind, msg in self.idle_waiters:
            if (kind == "drain" and active == 0) or (kind == "idle" and running == 0):
                self.respond(msg, {"pending": pending})
            else:
                keep.append((kind, msg))
        self.idle_waiters = keep

    # -- purge (flux job purge) ------------------------------------------------------------
    def _purge(self, ids: list[int]) -> None:
        """Forget inactive jobs: here, in the KVS (their job directories), and in
        job-list (the ``job-purge-inactive`` event), as flux-core's purge does."""
        for jobid in ids:
            del self.inactive[jobid]
            self.journal.forget(jobid)
            self.waitable_done.pop(jobid, None)
            path = kvs_dir(jobid)
            # the emptied directory above the job's goes too (flux-core leaves it)
            self.writer.unlink(self.job_dirs.remove(path) or path)
        self.broker.publish("job-purge-inactive", {"jobs": ids})

    @request_handler("purge")
    def purge_(self, msg: Message):
        age_limit = float(payload_field(msg, "age_limit", (int, float), purge.UNLIMITED))
        num_limit = payload_field(msg, "num_limit", int, purge.UNLIMITED)
        batch = payload_field(msg, "batch", int, 50)
        force = payload_field(msg, "force", bool, False)
        purge.check_request(age_limit, num_limit, batch)
        if not force:  # only say how many would go
            return {"count": len(purge.select(self.inactive, age_limit, num_limit))}
        ids = purge.select(self.inactive, age_limit, num_limit, batch)
        if not ids:
            return {"count": 0}
        self._purge(ids)
        self.writer.after("primary", lambda: self.respond(msg, {"count": len(ids)}))
        return DEFERRED

    @request_handler("purge-id")
    def purge_id(self, msg: Message):
        jobid = payload_field(msg, "id", int)
        force = payload_field(msg, "force", bool, False)
        if jobid not in self.inactive:
            if jobid in self.jobs:
                raise FluxError(errno.EINVAL, "cannot purge active job")
            raise FluxError(errno.ENOENT, "id not found")
        if not force:
            return {"count": 1}
        self._purge([jobid])
        self.writer.after("primary", lambda: self.respond(msg, {"count": 1}))
        return DEFERRED

    @request_handler("stats-get")
    def stats_get(self, msg: Message) -> dict:
        """As flux-core's ``job-manager.stats-get`` (plus the purge limits in force)."""
        return {"journal": {"listeners": len(self.listeners)}, "active_jobs": len(self.jobs),
                "inactive_jobs": len(self.inactive),
                "max_jobid": max(self.history) if self.history else 0,
                "inactive_num_limit": self.purger.num_limit,
                "inactive_age_limit": self.purger.age_limit,
                "housekeeping": self.housekeeping.stats()}

    # -- queries -----------------------------------------------------------------------------
    @request_handler("getinfo")
    def getinfo(self, msg: Message) -> dict:
        return {"max_jobid": max(self.history) if self.history else 0,
                "active": len(self.jobs), "inactive": len(self.inactive)}

    @request_handler("housekeeping-kill")
    def housekeeping_kill(self, msg: Message) -> dict:
        body = msg.json
        if body is not None and not isinstance(body, dict):
            raise FluxError(errno.EPROTO, "housekeeping-kill: payload must be an object")
        return kill_request(self.housekeeping, body or {})

    @request_handler("getattr")
    def getattr_(self, msg: Message) -> dict:
        """flux-core's ``job-manager.getattr``: ENOENT for a job it never had."""
        jobid = payload_field(msg, "id", int)
        job = self.jobs.get(jobid)
        if job is None and jobid not in self.inactive:
            raise FluxError(errno.ENOENT, f"job {JobID(jobid).f58}: unknown job id")
        out: dict = {"id": jobid}
        for attr in payload_field(msg, "attrs", list, []):
            if job is not None and attr in ("state", "urgency", "userid", "t_submit", "flags"):
                out[attr] = getattr(job, attr, None)
        return out

    @request_handler("history")
    def history_(self, msg: Message) -> dict:
        n = payload_field(msg, "max", int, 1)
        return {"jobs": self.history[::-1][:n]}


def _errstr(job: Job) -> str:
    """The reason a waited-for job failed, worded as flux-core's job-manager does."""
    if job.success:
        return ""
    if job.exception:
        return f"Fatal exception type={job.exception.get('type')} {job.exception.get('note', '')}".strip()
    ws = job.waitstatus or 0
    if ws & 0x7F:
        return f"job shell {_strsignal(ws & 0x7F)}"
    code = (ws >> 8) & 0xFF
    if code > 128:
        return f"task(s) {_strsignal(code - 128)}"
    return f"task(s) exited with exit code {code}"


def _strsignal(sig: int) -> str:
    try:
        return signal.strsignal(sig) or f"signal {sig}"
    except ValueError:
        return f"signal {sig}"


def _non_integer_count(jobspec: dict) -> tuple[str, str] | None:
    """``(type, count type)`` of the first resource whose count is not an integer."""
    todo = list(jobspec.get("resources") or [])
    while todo:
        res = todo.pop(0)
        if not isinstance(res, dict):
            continue
        count = res.get("count")
        if not isinstance(count, int) or isinstance(count, bool):
            return str(res.get("type")), type(count).__name__
        todo[:0] = list(res.get("with") or [])
    return None


def _v1_but_version(jobspec: dict) -> bool:
    try:
        validate({**jobspec, "version": 1}, version=1)
    except JobspecError:
        return False
    return True


def _fill_from_jobspec(job: Job) -> None:
    js = job.jobspec or {}
    system = (js.get("attributes") or {}).get("system") or {}
    name = (system.get("job") or {}).get("name")
    if not name:
        tasks = js.get("tasks") or [{}]
        cmd = tasks[0].get("command") or ["?"]
        name = os.path.basename(str(cmd[0])) if cmd else "?"
    job.name = name
    job.queue = system.get("queue")


def _job_keys(store) -> list[str]:
    """All job.<dothex> directories in the primary namespace."""
    out = []
    try:
        top = store.listdir("primary", "job")
    except Exception:
        return out
    for a in top:
        for b in store.listdir("primary", f"job.{a}"):
            for c in store.listdir("primary", f"job.{a}.{b}"):
                for d in store.listdir("primary", f"job.{a}.{b}.{c}"):
                    out.append(f"job.{a}.{b}.{c}.{d}")
    return out
