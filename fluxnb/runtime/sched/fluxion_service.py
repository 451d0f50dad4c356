"""``sched-fluxion-resource``: the Fluxion resource graph of an instance, matched over RPC.

As flux-sched's resource module, it owns the graph and answers the queue
manager (``sched-fluxion-qmanager``), which owns the queue:

``sched-fluxion-resource.match``       {jobid, jobspec, op} -> {jobid, status, at, R, overhead}
                                       op: allocate | allocate_orelse_reserve |
                                       allocate_with_satisfiability | satisfiability;
                                       status ALLOCATED or RESERVED; errors EBUSY (not now),
                                       ENODEV (unsatisfiable, ever), EINVAL (bad jobspec)
``sched-fluxion-resource.match-multi`` {jobs: [{jobid, jobspec}], op, reservation_depth,
                                       stop_on_busy} -> {results: [{jobid, status, at, R} or
                                       {jobid, status: "BUSY" | "ERROR", errnum, errstr}]}: a
                                       scheduling pass in one message; after ``reservation_depth``
                                       reservations the op falls back to allocate
``sched-fluxion-resource.cancel``      {jobid} or {jobids: [...]}: release allocations/reservations
``sched-fluxion-resource.update``      {jobid, R}: plan a job that already holds R (scheduler reload)
``sched-fluxion-resource.info``        {jobid} -> {jobid, status, at, overhead}
``sched-fluxion-resource.status``      {} -> {all, allocated, down} as R
``sched-fluxion-resource.find``        {criteria, format} -> {R} (rv1_nosched or jgf)
``sched-fluxion-resource.set-status``  {resource_path, status: up|down}
``sched-fluxion-resource.stats-get``   {} -> graph size and match statistics

Module arguments (``flux module load sched-fluxion-resource ARG=VALUE ...``):
``load-file=PATH`` and ``load-format=grug|jgf`` (else the graph is built from the
instance's R), ``load-allowlist=node,socket,core`` (resource types to keep),
``policy=first|high|low|lonode|hinode|variation|locality|...`` (``match-policy``
too), ``match-format=rv1|rv1_nosched``, ``prune-filters=ALL:core,...``,
``sockets-per-node=N`` (split an R node's cores over N sockets).

Times: the planners count whole seconds from the moment the graph was loaded
(``t0``); an answer's ``at`` is an epoch time (``t0`` + planner time).
"""

from __future__ import annotations

import errno
import json
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..message import FLAG_STREAMING, FluxError, Message
from ..service import DEFERRED, Service, payload_field, request_handler
from ..util.idset import IDSet
from ..resource import acquire_change, acquire_update
from ..util.rv1 import ResourceSet
from .fluxion.find import FindError, find
from .fluxion.subset import SubsetError, partial_release
from .fluxion.graph import GraphError, ResourceGraph
from .fluxion.grug import read_grug
from .fluxion.jgf import dumps_jgf, filter_types, read_jgf
from .fluxion.matcher import GRAPH_END, MatchError, Traverser
from .fluxion.policies import PolicyError, make_policy
from .fluxion.prune import PruneSpecError
from .fluxion.request import Request, RequestError, ResourceReq, parse_request
from .fluxion.writers import make_writer
from .fluxion_rv1 import RWriter, graph_from_R, reconstruct

__all__ = ["FluxionResource", "ResourceOptions", "parse_options"]

#: planned duration of a job that gives none (a year): a finite span keeps Fluxion's
#: "far future" satisfiability check after every planned job, as a graph duration does
DEFAULT_DURATION = 365 * 24 * 3600

OPS = ("allocate", "allocate_orelse_reserve", "allocate_with_satisfiability", "satisfiability")


@dataclass
class ResourceOptions:
    load_file: str = ""
    load_format: str = "grug"
    load_allowlist: str = ""
    policy: str = "first"
    match_format: str = "rv1_nosched"
    prune_filters: str = "ALL:core,ALL:node"
    sockets_per_node: int = 0

    def summary(self) -> str:
        src = f"{self.load_format} {self.load_file}" if self.load_file else "R"
        allow = f" allowlist={self.load_allowlist}" if self.load_allowlist else ""
        return f"graph from {src}{allow}, policy={self.policy}, match-format={self.match_format}"


_KEYS = {"load-file": "load_file", "load-format": "load_format", "load-allowlist": "load_allowlist",
         "hwloc-allowlist": "load_allowlist", "policy": "policy", "match-policy": "policy",
         "match-format": "match_format", "prune-filters": "prune_filters",
         "sockets-per-node": "sockets_per_node", "subsystems": None, "match-subsystems": None,
         "reserve-vtx-vec": None, "load-whitelist": "load_allowlist"}


def parse_options(args: list[str]) -> ResourceOptions:
    """Module arguments as options; ValueError naming a bad one.

    >>> parse_options(["load-allowlist=node,socket,core", "policy=low"]).load_allowlist
    'node,socket,core'
    """
    opts = ResourceOptions()
    for arg in args:
        key, sep, val = arg.partition("=")
        if not sep or key not in _KEYS:
            raise ValueError(f"unknown option '{arg}' (known: {', '.join(k + '=' for k in _KEYS)})")
        attr = _KEYS[key]
        if attr is None:
            continue  # accepted for flux-sched compatibility; one subsystem here
        if attr == "sockets_per_node":
            if not val.isdigit():
                raise ValueError(f"sockets-per-node: expected an integer, got '{val}'")
            setattr(opts, attr, int(val))
        else:
            setattr(opts, attr, val)
    if opts.load_format not in ("grug", "jgf"):
        raise ValueError(f"load-format: expected grug or jgf, got '{opts.load_format}'")
    if opts.match_format not in ("rv1", "rv1_nosched"):
        raise ValueError(f"match-format: expected rv1 or rv1_nosched, got '{opts.match_format}'")
    make_policy(opts.policy)  # PolicyError (a ValueError) names the known ones
    return opts


@dataclass
class JobRecord:
    jobid: int
    status: str  # ALLOCATED | RESERVED
    at: int
    duration: int
    overhead: float


def _types(resources: list[ResourceReq], path: str, out: list[tuple[str, str]]) -> None:
    for i, r in enumerate(resources):
        here = f"{path}[{i}]"
        out.append((r.type, here))
        _types(r.with_, here + ".with", out)


class FluxionResource(Service):
    """The resource graph, its traverser and the jobs planned on it."""

    name = "sched-fluxion-resource"

    def start(self) -> None:
        try:
            self.opts = parse_options(self.args)
        except ValueError as exc:
            raise FluxError(errno.EINVAL, f"{self.name}: {exc}") from None
        self.g: ResourceGraph | None = None
        self.trav: Traverser | None = None
        self.t0 = int(time.time())
        self.jobs: dict[int, JobRecord] = {}
        #: R of each allocated job (to rebuild the graph when the instance shrinks or grows)
        self.job_R: dict[int, dict] = {}
        #: jobs whose every rank a shrink removed: a later cancel of them is not an error
        self.vanished: set[int] = set()
        self.R: ResourceSet | None = None
        self.requests: dict[int, Request] = {}
        self.satisfiable: set[int] = set()
        self.down = IDSet()
        self._deferred: list[tuple[Message, Callable[[Message], Any]]] = []
        self._acquire_tag = None
        self.nmatch = 0
        self.match_time = 0.0
        if self.opts.load_file:
            self._build(None)  # a file needs no R: ready at once
        self._acquire_tag = self.broker.rpc("resource.acquire", {}, nodeid=0, flags=FLAG_STREAMING,
                                            callback=self._on_resources)

    def stop(self) -> None:
        if self._acquire_tag is not None:
            self.broker.rpc_cancel(self._acquire_tag)
        for msg, _ in self._deferred:
            self.respond_error(msg, errno.ENOSYS, f"{self.name}: unloaded before its graph was ready")
        self._deferred.clear()

    # -- the graph ----------------------------------------------------------------------------
    def _build(self, R: ResourceSet | None, keep_time: bool = False) -> None:
        o = self.opts
        try:
            if R is None:
                g = read_jgf(o.load_file) if o.load_format == "jgf" else read_grug(o.load_file)
            else:
                g = graph_from_R(R, sockets_per_node=o.sockets_per_node)
            if o.load_allowlist:
                keep = [t.strip() for t in o.load_allowlist.split(",") if t.strip()]
                g = filter_types(g, keep)
            g.finalize()
            self.trav = Traverser(g, make_policy(o.policy), o.prune_filters)
        except (GraphError, PolicyError, PruneSpecError, MatchError, ValueError) as exc:
            raise FluxError(errno.EINVAL, f"{self.name}: cannot load the resource graph: {exc}") from None
        self.g = g
        self.R = R
        self.graph_types = set(g.by_type)
        if not keep_time:
            self.t0 = int(time.time())
        counts = ", ".join(f"{len(vs)} {t}" for t, vs in sorted(g.by_type.items()))
        self.log("info", f"resource graph loaded ({o.summary()}): {len(g)} vertices: {counts}")
        deferred, self._deferred = self._deferred, []
        for msg, fn in deferred:
            self._answer(msg, fn)

    def _answer(self, msg: Message, fn: Callable[[Message], Any]) -> None:
        try:
            self.respond(msg, fn(msg))
        except FluxError as exc:
            self.respond_error(msg, exc.errno, exc.errstr)

    def _when_ready(self, msg: Message, fn: Callable[[Message], Any]) -> Any:
        if self.trav is None:
            self._deferred.append((msg, fn))
            return DEFERRED
        return fn(msg)

    def _on_resources(self, msg: Message) -> None:
        if msg.errnum:
            if msg.errnum not in (errno.ENODATA, errno.ENOSYS):
                self.log("err", f"resource.acquire failed: {msg.errstr}")
            return
        body = msg.json
        if self.R is not None and ("shrink" in body or "grow" in body):
            newR, gone, _added = acquire_change(body, self.R)
            self._regraph(newR, gone)
        R, down = acquire_update(body, self.down)
        if R is not None and self.g is None:
            try:
                self._build(R)
            except FluxError as exc:
                self.log("err", exc.errstr)
                return
        self._set_down(down)

    def _regraph(self, R: ResourceSet, gone: IDSet) -> None:
        """The instance shrank or grew: rebuild the graph from ``R``, keeping time zero, and
        plan again every allocation on what is left of it (reservations are made anew by
        the queue manager's next pass)."""
        old_jobs, old_R = self.jobs, self.job_R
        down = self.down - gone
        self.down = IDSet()
        try:
            self._build(R, keep_time=True)
        except FluxError as exc:
            self.log("err", exc.errstr)
            return
        self.jobs, self.job_R = {}, {}
        self.satisfiable.clear()
        for jobid, rec in old_jobs.items():
            if rec.status != "ALLOCATED" or jobid not in old_R:
                continue
            held = ResourceSet(old_R[jobid])
            keep = held.copy_ranks(held.ranks & R.ranks)
            if not keep.nnodes:
                self.vanished.add(jobid)
                continue
            try:
                reconstruct(self.trav, jobid, keep, rec.at, rec.duration)
            except MatchError as exc:
                self.log("err", f"job {jobid}: cannot plan again after the resize: {exc}")
                continue
            self.jobs[jobid] = rec
            self.job_R[jobid] = keep.to_R()
        self._set_down(down)

    def _set_down(self, down: IDSet) -> None:
        if self.trav is None:
            return
        for rank in set(self.down) ^ set(down):
            for v in self.g.by_rank.get(rank, ()):
                if v.type == "node":
                    self.trav.mark(v.path(), "down" if rank in down else "up")
        self.down = down

    def now(self) -> int:
        """Planner time of this moment."""
        return max(0, int(time.time()) - self.t0)

    # -- matching -------------------------------------------------------------------------------
    def _request(self, jobid: int, jobspec: Any) -> Request:
        req = self.requests.get(jobid)
        if req is not None:
            return req
        try:
            req = parse_request(jobspec)
        except RequestError as exc:
            raise FluxError(errno.EINVAL, str(exc)) from None
        if req.duration <= 0:
            req.duration = DEFAULT_DURATION
            req.unlimited = True  # type: ignore[attr-defined]
        found: list[tuple[str, str]] = []
        _types(req.resources, "resources", found)
        for rtype, path in found:
            if rtype != "slot" and rtype not in self.graph_types:
                raise FluxError(errno.ENODEV,
                                f"unsatisfiable request: jobspec {path}.type: unknown resource type '{rtype}' (the resource "
                                f"graph has {', '.join(sorted(self.graph_types))})")
        self.requests[jobid] = req
        return req

    @request_handler("match")
    def match(self, msg: Message):
        return self._when_ready(msg, self._match)

    def _match(self, msg: Message) -> dict:
        jobid = payload_field(msg, "jobid", int)
        op = payload_field(msg, "op", str, "allocate")
        if op not in OPS:
            raise FluxError(errno.EINVAL, f"{msg.topic}: op '{op}' is not one of {', '.join(OPS)}")
        return self._match_one(jobid, payload_field(msg, "jobspec", dict), op)

    def _match_one(self, jobid: int, jobspec: Any, op: str) -> dict:
        if jobid in self.jobs:
            raise FluxError(errno.EEXIST, f"job {jobid} already holds resources")
        if not isinstance(jobspec, dict):
            raise FluxError(errno.EPROTO, f"job {jobid}: jobspec must be an object")
        req = self._request(jobid, jobspec)
        trav = self.trav
        # a job already proven satisfiable needs no second proof when it does not fit now
        if op == "allocate" and jobid not in self.satisfiable:
            op = "allocate_with_satisfiability"
        writer = RWriter(self.opts.match_format == "rv1")
        at = self.now()
        t = time.perf_counter()
        try:
            meta = trav.run(req, op, jobid, writer, at=at)  # type: ignore[arg-type]
        except MatchError as exc:
            self._count(t)
            if exc.errno == errno.ENODEV and op != "satisfiability" and self.down:
                # the graph could hold it once the down nodes are back: not "never"
                try:
                    trav.run(req, "satisfiability", jobid, writer, at=at)
                    exc = MatchError(errno.EBUSY)
                except MatchError:
                    pass
            if exc.errno == errno.EBUSY:
                self.satisfiable.add(jobid)
                raise FluxError(errno.EBUSY, f"job {jobid}: resources are busy") from None
            self.requests.pop(jobid, None)
            if exc.errno == errno.ENODEV:
                raise FluxError(errno.ENODEV, "unsatisfiable request: " + self._why(req)) from None
            raise FluxError(exc.errno, f"match error: {trav.err_msg.strip() or exc}") from None
        overhead = self._count(t)
        if op == "satisfiability":
            self.requests.pop(jobid, None)
            return {"jobid": jobid, "status": "SATISFIABLE", "overhead": overhead}
        self.requests.pop(jobid, None)
        self.satisfiable.discard(jobid)
        duration = 0 if getattr(req, "unlimited", False) else req.duration
        reserved = meta.at > at
        self.jobs[jobid] = JobRecord(jobid, "RESERVED" if reserved else "ALLOCATED", meta.at,
                                     meta.duration, overhead)
        out = {"jobid": jobid, "status": "RESERVED" if reserved else "ALLOCATED",
               "at": self.t0 + meta.at, "overhead": overhead}
        if reserved:
            writer.items = []
        else:
            start = time.time()
            out["R"] = writer.R(start, start + duration if duration else 0.0)
            self.job_R[jobid] = out["R"]
        return out

    @request_handler("match-multi")
    def match_multi(self, msg: Message):
        return self._when_ready(msg, self._match_multi)

    def _match_multi(self, msg: Message) -> dict:
        jobs = payload_field(msg, "jobs", list)
        op = payload_field(msg, "op", str, "allocate")
        depth = payload_field(msg, "reservation_depth", int, 1 << 30)
        stop = bool(payload_field(msg, "stop_on_busy", bool, False))
        if op not in OPS:
            raise FluxError(errno.EINVAL, f"{msg.topic}: op '{op}' is not one of {', '.join(OPS)}")
        results = []
        reserved = 0
        for item in jobs:
            jobid = int(item["jobid"])
            this_op = op if (op != "allocate_orelse_reserve" or reserved < depth) else "allocate"
            try:
                out = self._match_one(jobid, item.get("jobspec"), this_op)
            except FluxError as exc:
                busy = exc.errno == errno.EBUSY
                results.append({"jobid": jobid, "status": "BUSY" if busy else "ERROR",
                                "errnum": exc.errno, "errstr": exc.errstr})
                if busy and stop:
                    break
                continue
            if out["status"] == "RESERVED":
                reserved += 1
            results.append(out)
        return {"results": results}

    def _count(self, t: float) -> float:
        dt = time.perf_counter() - t
        self.nmatch += 1
        self.match_time += dt
        return dt

    def _why(self, req: Request) -> str:
        """What in the request exceeds the whole graph, in words."""
        need: dict[str, int] = {}

        def walk(rs: list[ResourceReq], mult: int) -> None:
            for r in rs:
                n = mult * r.count_min
                if r.type != "slot":
                    need[r.type] = need.get(r.type, 0) + n
                walk(r.with_, n)

        walk(req.resources, 1)
        g = self.g
        for rtype, n in need.items():
            have = sum(v.size for v in g.by_type.get(rtype, ()))
            if n > have:
                return f"{n} {rtype} requested, the resource graph has {have}"
        return "no placement in the resource graph satisfies it, even with every resource free"

    @request_handler("cancel")
    def cancel(self, msg: Message):
        return self._when_ready(msg, self._cancel)

    def _cancel(self, msg: Message) -> dict:
        body = msg.json or {}
        ids = body.get("jobids")
        if ids is None:
            ids = [payload_field(msg, "jobid", int)]
        missing = []
        for jobid in ids:
            jobid = int(jobid)
            self.requests.pop(jobid, None)
            self.satisfiable.discard(jobid)
            if self.jobs.pop(jobid, None) is None:
                missing.append(jobid)
                continue
            self.job_R.pop(jobid, None)
            self.trav.cancel(jobid)
        missing = [j for j in missing if j not in self.vanished]
        self.vanished.difference_update(int(j) for j in ids)
        if missing and body.get("noent_ok") is not True and "jobids" not in body:
            raise FluxError(errno.ENOENT, f"{msg.topic}: job {missing[0]} holds no resources")
        return {}

    @request_handler("partial-cancel")
    def partial_cancel(self, msg: Message):
        return self._when_ready(msg, self._partial_cancel)

    def _partial_cancel(self, msg: Message) -> dict:
        """Release part of an allocation: ``{jobid, R}`` (an RV1 subset; whole ranks)."""
        jobid = payload_field(msg, "jobid", int)
        R = payload_field(msg, "R", (dict, str))
        rec = self.jobs.get(jobid)
        if rec is None:
            raise FluxError(errno.ENOENT, f"{msg.topic}: job {jobid} holds no resources")
        if rec.status == "RESERVED":
            raise FluxError(errno.EINVAL, f"{msg.topic}: job {jobid}: reservations not currently "
                            "supported by partial cancel")
        try:
            full = partial_release(self.trav, jobid, R, "rv1exec")
        except (SubsetError, MatchError) as exc:
            raise FluxError(errno.EINVAL, f"{msg.topic}: job {jobid}: {exc}") from None
        if full:
            del self.jobs[jobid]
            self.job_R.pop(jobid, None)
        elif jobid in self.job_R:
            held = ResourceSet(self.job_R[jobid])
            self.job_R[jobid] = held.diff(ResourceSet(R)).to_R()
        return {"full-removal": full}

    @request_handler("update")
    def update(self, msg: Message):
        return self._when_ready(msg, self._update)

    def _update(self, msg: Message) -> dict:
        jobid = payload_field(msg, "jobid", int)
        try:
            R = ResourceSet(payload_field(msg, "R", (dict, str)))
        except ValueError as exc:
            raise FluxError(errno.EINVAL, f"{msg.topic}: job {jobid}: bad R: {exc}") from None
        if jobid in self.jobs:
            raise FluxError(errno.EEXIST, f"{msg.topic}: job {jobid} already holds resources")
        at = self.now()
        duration = int(R.expiration - time.time()) + 1 if R.expiration else DEFAULT_DURATION
        duration = max(1, min(duration, GRAPH_END - at))
        try:
            reconstruct(self.trav, jobid, R, at, duration)
        except MatchError as exc:
            raise FluxError(exc.errno, f"{msg.topic}: {exc}") from None
        self.jobs[jobid] = JobRecord(jobid, "ALLOCATED", at, duration, 0.0)
        self.job_R[jobid] = R.to_R()
        return {"jobid": jobid, "status": "ALLOCATED", "at": self.t0 + at}

    @request_handler("info")
    def info(self, msg: Message):
        return self._when_ready(msg, self._info)

    def _info(self, msg: Message) -> dict:
        jobid = payload_field(msg, "jobid", int)
        rec = self.jobs.get(jobid)
        if rec is None:
            raise FluxError(errno.ENOENT, f"{msg.topic}: job {jobid} is not planned on the graph")
        return {"jobid": jobid, "status": rec.status, "at": self.t0 + rec.at, "overhead": rec.overhead}

    # -- views of the graph ------------------------------------------------------------------
    def _find_R(self, criteria: str, fmt: str = "rv1_nosched") -> Any:
        if fmt == "jgf":
            writer = make_writer("jgf")
            find(self.trav, criteria, writer)
            text = writer.emit()
            return None if not text else json.loads(text)
        writer = RWriter(fmt == "rv1")
        find(self.trav, criteria, writer)
        if not writer.items:
            return None
        return writer.R(0.0, 0.0)

    @request_handler("find")
    def find_(self, msg: Message):
        return self._when_ready(msg, self._find)

    def _find(self, msg: Message) -> dict:
        criteria = payload_field(msg, "criteria", str)
        fmt = payload_field(msg, "format", str, "rv1_nosched")
        if fmt not in ("rv1", "rv1_nosched", "jgf"):
            raise FluxError(errno.EINVAL, f"{msg.topic}: format must be rv1, rv1_nosched or jgf")
        try:
            return {"R": self._find_R(criteria, fmt)}
        except FindError as exc:
            raise FluxError(errno.EINVAL, f"{msg.topic}: {exc}") from None

    @request_handler("status")
    def status(self, msg: Message):
        return self._when_ready(msg, self._status)

    def _status(self, msg: Message) -> dict:
        return {"all": self._find_R("status=up or status=down"),
                "allocated": self._find_R("sched-now=allocated"),
                "down": self._find_R("status=down")}

    @request_handler("graph")
    def graph(self, msg: Message):
        """The whole graph as JGF (for drawing it)."""
        return self._when_ready(msg, lambda m: {"jgf": json.loads(dumps_jgf(self.g)),
                                                "jobs": {str(j): {"status": r.status, "at": self.t0 + r.at}
                                                         for j, r in self.jobs.items()}})

    @request_handler("set-status")
    def set_status(self, msg: Message):
        return self._when_ready(msg, self._set_status)

    def _set_status(self, msg: Message) -> dict:
        path = payload_field(msg, "resource_path", str)
        status = payload_field(msg, "status", str)
        if status not in ("up", "down"):
            raise FluxError(errno.EINVAL, f"{msg.topic}: status must be up or down, got '{status}'")
        if path not in self.g.by_path:
            raise FluxError(errno.ENOENT, f"{msg.topic}: no vertex at path '{path}' in the resource graph")
        self.trav.mark(path, status)
        return {}

    @request_handler("stats-get")
    def stats_get(self, msg: Message):
        return self._when_ready(msg, lambda m: {
            "V": len(self.g), "E": sum(len(es) for v in self.g.vertices for es in v.out.values()),
            "by_type": {t: len(vs) for t, vs in sorted(self.g.by_type.items())},
            "load-time": 0.0, "njobs": len(self.jobs), "match": {"count": self.nmatch,
                                                                 "total": self.match_time},
            "options": vars(self.opts)})
