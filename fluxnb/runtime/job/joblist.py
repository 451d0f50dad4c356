"""``job-list``: the listing view of jobs (``flux jobs``), fed by the job manager's events.

Attributes and their encodings follow flux-core's job-list: ``state`` and
``result`` are the numeric bits of flux_job_state_t / flux_job_result_t, times are
floats, and attributes a job does not have yet are absent.
"""

from __future__ import annotations

import errno
import os

from ..message import FluxError, Message
from ..service import DEFERRED, Service, event_handler, payload_field, payload_jobid, request_handler
from ..util.rv1 import ResourceSet, shape_key
from .states import RESULT_BITS, STATE_BITS, Job

PENDING_BITS = STATE_BITS["DEPEND"] | STATE_BITS["PRIORITY"] | STATE_BITS["SCHED"]
RUNNING_BITS = STATE_BITS["RUN"] | STATE_BITS["CLEANUP"]


def _jobspec_attrs(job: Job) -> dict:
    js = job.jobspec or {}
    system = (js.get("attributes") or {}).get("system") or {}
    info: dict = {"name": job.name, "cwd": system.get("cwd", ""),
                  "duration": float(system.get("duration", 0) or 0)}
    if job.queue:
        info["queue"] = job.queue
    # counts from the request (refined from R once allocated)
    ntasks, ncores, nnodes = _counts(js)
    info["ntasks"] = ntasks
    info["ncores"] = ncores
    if nnodes:
        info["nnodes"] = nnodes
    if (system.get("exec") or {}).get("test"):
        info["test_exec"] = True
    return info


def _counts(js: dict) -> tuple[int, int, int | None]:
    res = js.get("resources") or []
    nnodes = None
    mult = 1
    slots = 1
    cores = 1
    for top in res[:1]:
        if top.get("type") == "node":
            nnodes = _c(top)
            mult = nnodes
            kids = top.get("with") or [{}]
            top = kids[0]
        if top.get("type") == "slot":
            slots = _c(top) * mult
            cores = sum(_c(k) for k in top.get("with") or [] if k.get("type") == "core") or 1
    tasks = (js.get("tasks") or [{}])[0].get("count") or {"per_slot": 1}
    ntasks = int(tasks["total"]) if "total" in tasks else slots * int(tasks.get("per_slot", 1))
    return ntasks, slots * cores, nnodes


def _c(v: dict) -> int:
    c = v.get("count", 1)
    return c.get("min", 1) if isinstance(c, dict) else int(c)


class JobList(Service):
    name = "job-list"

    def start(self) -> None:
        self.info: dict[int, dict] = {}
        self._R_info: dict[tuple, dict] = {}
        self.waiters: dict[int, list[tuple[int, Message, list]]] = {}
        jm = self.broker.services.get("job-manager")
        if jm is None:
            raise FluxError(errno.ENOSYS, "job-list needs the job-manager module loaded first")
        jm.add_listener(self._on_event)

    def stop(self) -> None:
        jm = self.broker.services.get("job-manager")
        if jm is not None and self._on_event in jm.listeners:
            jm.listeners.remove(self._on_event)

    @event_handler("job-purge-inactive")
    def _on_purge(self, ev: Message) -> None:
        """The job manager purged these inactive jobs: they leave the listing too."""
        for jobid in (ev.json or {}).get("jobs", []):
            self.info.pop(jobid, None)

    # -- keeping the view --------------------------------------------------------------
    def _on_event(self, job: Job, ev: dict) -> None:
        info = self.info.get(job.id)
        name = ev["name"]
        if info is None:
            info = {"id": job.id, "userid": job.userid, "urgency": job.urgency,
                    "t_submit": job.t_submit, "state": STATE_BITS[job.state], "waitstatus": None}
            info.update(_jobspec_attrs(job))
            self.info[job.id] = info
            if name == "restore":
                self._refresh(job, info)
                return
        self._refresh(job, info)
        if name == "exception":
            ctx = ev["context"]
            if not info.get("exception_occurred") or ctx.get("severity", 0) < info["exception_severity"]:
                info.update({"exception_occurred": True, "exception_type": ctx.get("type"),
                             "exception_severity": ctx.get("severity", 0),
                             "exception_note": ctx.get("note", "")})
        self._wake(job.id, info)

    def _add_R(self, R: dict, info: dict) -> None:
        """ranks, nodelist, nnodes, ncores, ngpus and expiration of a job's R. All but
        the expiration come from R_lite and the nodelist: a burst of like jobs on the
        same cores parses those once."""
        key = shape_key(R)
        known = self._R_info.get(key)
        if known is None:
            try:
                rs = ResourceSet(R)
            except ValueError:
                return
            known = {"ranks": rs.ranks.encode(), "nodelist": rs.nodelist.encode(),
                     "nnodes": rs.nnodes, "ncores": rs.ncores}
            if rs.ngpus:
                known["ngpus"] = rs.ngpus
            if len(self._R_info) >= 512:
                self._R_info.clear()
            self._R_info[key] = known
        info.update(known)
        expiration = R["execution"].get("expiration")  # (R parsed: execution is a mapping)
        if isinstance(expiration, (int, float)) and expiration:
            info["expiration"] = float(expiration)

    def _refresh(self, job: Job, info: dict) -> None:
        info["state"] = STATE_BITS[job.state]
        info["urgency"] = job.urgency
        if job.priority is not None:
            info["priority"] = job.priority
        for stamp in ("t_depend", "t_priority", "t_sched", "t_run", "t_cleanup", "t_inactive"):
            val = getattr(job, stamp)
            if val is not None:
                info[stamp] = val
        if job.R and "ranks" not in info:
            self._add_R(job.R, info)
        if job.waitstatus is not None:
            info["waitstatus"] = job.waitstatus
        if job.annotations:
            info["annotations"] = job.annotations
        else:
            info.pop("annotations", None)
        info["dependencies"] = sorted(job.dependencies)
        if job.state == "INACTIVE":
            info["result"] = RESULT_BITS[job.result]
            info["success"] = job.success
            rc = job.returncode
            if rc is not None:
                info["returncode"] = rc
            if job.exception and "exception_occurred" not in info:
                info.update({"exception_occurred": True, "exception_type": job.exception.get("type"),
                             "exception_severity": job.exception.get("severity", 0),
                             "exception_note": job.exception.get("note", "")})
        if "exception_occurred" not in info and job.state == "INACTIVE":
            info["exception_occurred"] = False

    def _wake(self, jobid: int, info: dict) -> None:
        waiting = self.waiters.get(jobid)
        if not waiting:
            return
        ready = [(m, a) for states, m, a in waiting if info["state"] & states]
        if not ready:
            return
        keep = [(states, m, a) for states, m, a in waiting if not info["state"] & states]
        if keep:
            self.waiters[jobid] = keep
        else:
            del self.waiters[jobid]
        snapshot = dict(info)
        # answer once the events that led here are in the KVS, so a reader of the
        # eventlog after this answer sees them all
        jm = self.broker.services.get("job-manager")
        answer = lambda: [self.respond(m, {"job": self._select(snapshot, a)}) for m, a in ready]
        if jm is not None:
            jm.writer.after("primary", answer)
        else:
            answer()

    # -- queries -----------------------------------------------------------------------
    @staticmethod
    def _select(info: dict, attrs: list) -> dict:
        if not attrs or "all" in attrs:
            return {k: v for k, v in info.items() if v is not None}
        out = {"id": info["id"]}
        for a in attrs:
            if a in info and info[a] is not None:
                out[a] = info[a]
        return out

    @request_handler("list")
    def list(self, msg: Message) -> dict:
        body = msg.json
        if body is None:
            body = {}

        def field(key, kind, default):
            value = payload_field(msg, key, kind, default, body=body)
            return default if value is None else value
        max_entries = field("max_entries", int, 1000)
        if max_entries < 0:
            raise FluxError(errno.EPROTO, f"{msg.topic}: 'max_entries' must be >= 0")
        attrs = field("attrs", list, None) or ["all"]
        userid = field("userid", int, os.getuid())
        explicit_states = field("states", int, 0)
        results = field("results", int, 0)
        since = field("since", float, 0.0)
        name = field("name", str, None)
        queue = field("queue", str, None)
        ids = field("ids", list, None)
        constraint = field("constraint", dict, None)
        pool = (self.info[i] for i in ids if i in self.info) if ids else self.info.values()
        sel = []
        for info in pool:
            # result filters apply to inactive jobs; active jobs pass on their state
            if info["state"] == STATE_BITS["INACTIVE"]:
                if results:
                    if not info.get("result", 0) & results:
                        continue
                elif explicit_states and not explicit_states & info["state"]:
                    continue
            elif explicit_states:
                if not explicit_states & info["state"]:
                    continue
            elif results:
                continue
            if userid not in (-1, 0xFFFFFFFF) and info["userid"] != userid:
                continue
            if since and info.get("t_inactive", since + 1) <= since:
                continue
            if name and info.get("name") != name:
                continue
            if queue and info.get("queue") != queue:
                continue
            if constraint and not _matches(constraint, info):
                continue
            sel.append(info)
        sel.sort(key=_order)
        if max_entries:
            sel = sel[:max_entries]
        return {"jobs": [self._select(i, attrs) for i in sel]}

    @request_handler("list-id")
    def list_id(self, msg: Message):
        jobid = payload_jobid(msg)
        attrs = payload_field(msg, "attrs", list, ["all"])
        states = payload_field(msg, "state", int, 0)
        info = self.info.get(jobid)
        if info is None:
            from .jobid import JobID
            raise FluxError(errno.ENOENT, f"job {JobID(jobid).f58}: unknown job id")
        if states and not info["state"] & states:
            self.waiters.setdefault(jobid, []).append((states, msg, attrs))
            return DEFERRED
        jm = self.broker.services.get("job-manager")
        if states and jm is not None:
            snapshot = dict(info)
            jm.writer.after("primary", lambda: self.respond(msg, {"job": self._select(snapshot, attrs)}))
            return DEFERRED
        return {"job": self._select(info, attrs)}

    @request_handler("list-attrs")
    def list_attrs(self, msg: Message) -> dict:
        return {"attrs": ["userid", "urgency", "priority", "t_submit", "t_depend", "t_priority",
                          "t_sched", "t_run", "t_cleanup", "t_inactive", "state", "name", "cwd",
                          "queue", "project", "bank", "ntasks", "ncores", "duration", "nnodes",
                          "ranks", "nodelist", "success", "exception_occurred", "exception_type",
                          "exception_severity", "exception_note", "result", "expiration",
                          "annotations", "waitstatus", "dependencies", "all"]}

    @request_handler("job-stats")  # flux-core's name
    @request_handler("stats")
    def stats(self, msg: Message) -> dict:
        counts = {s: 0 for s in STATE_BITS}
        results = {r: 0 for r in RESULT_BITS}
        names = {v: k for k, v in STATE_BITS.items()}
        rnames = {v: k for k, v in RESULT_BITS.items()}
        for info in self.info.values():
            counts[names[info["state"]]] += 1
            if "result" in info:
                results[rnames[info["result"]]] += 1
        return {"job_states": {k.lower(): v for k, v in counts.items()},
                "successful": results["COMPLETED"], "failed": results["FAILED"],
                "canceled": results["CANCELED"], "timeout": results["TIMEOUT"],
                "inactive_purged": 0}

    def disconnect(self, route) -> None:
        n = len(route)
        for jobid in list(self.waiters):
            self.waiters[jobid] = [w for w in self.waiters[jobid] if w[1].route[:n] != route]
            if not self.waiters[jobid]:
                del self.waiters[jobid]


def _matches(constraint: dict, info: dict) -> bool:
    """RFC 43 job-list constraint (and/or/not, userid, name, queue, states, results)."""
    for op, args in constraint.items():
        if not isinstance(args, list):
            raise FluxError(errno.EPROTO, f"job-list: constraint {op!r}: arguments must be a list")
        if op == "and":
            ok = all(_matches(c, info) for c in args)
        elif op == "or":
            ok = any(_matches(c, info) for c in args)
        elif op == "not":
            ok = not any(_matches(c, info) for c in args)
        elif op in ("name", "queue"):
            ok = info.get(op) in args
        elif op == "userid":
            ok = info.get("userid") in args or any(a in (-1, 0xFFFFFFFF) for a in args)
        elif op in ("states", "results"):
            key = "state" if op == "states" else "result"
            names = STATE_BITS if op == "states" else RESULT_BITS
            mask = 0
            for a in args:
                mask |= a if isinstance(a, int) else names.get(str(a).upper(), 0)
            ok = bool(info.get(key, 0) & mask)
        else:
            raise FluxError(errno.EINVAL, f"job-list: unknown constraint operator {op!r}")
        if not ok:
            return False
    return True


def _order(info: dict) -> tuple:
    st = info["state"]
    if st & PENDING_BITS or st == 1:
        return (0, -info.get("priority", info.get("urgency", 16)), info["t_submit"], info["id"])
    if st & RUNNING_BITS:
        return (1, -info.get("t_run", info["t_submit"]), info["id"])
    return (2, -info.get("t_inactive", 0.0), -info["id"])
