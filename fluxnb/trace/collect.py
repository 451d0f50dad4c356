"""The instance traces itself: jobs' eventlogs as one Chrome trace, for a tree of instances.

Each job becomes, in its instance's process (a synthetic ``pid`` named after the
instance):

- a nestable async slice (``b``/``e``, ``cat`` ``job``, ``id`` ``<instance>/<jobid>``)
  from ``submit`` to ``clean``, with nested slices for its regions (queueing,
  scheduling, launch, run, completion; see :mod:`fluxnb.trace.regions`);
- an instant (``n``) for each event of its eventlog (``cat`` ``job.event``: submit,
  validate, depend, priority, alloc, start, finish, release, free, clean, exception,
  memo, ...) and of its exec eventlog (``cat`` ``job.exec``: init, starting,
  shell.start when the tasks started, complete when they exited, done);
- a complete (``X``) slice from ``alloc`` to ``free`` on each rank it held, on that
  rank's thread (``tid`` ``1 + 1000*rank + lane``: jobs sharing a node take lanes, so
  slices on a thread never overlap).

Nested instances (jobs with a ``uri`` memo) are followed while they run; an instance
that ran :func:`save_to_parent` before it ended (``flux trace save`` as the last line
of a batch script) left its trace in the parent's KVS, and is merged from there.
``.pfw`` files of PerfFlowAspect annotations are merged as they are: both use wall
clock microseconds, so everything shares one timeline.
"""

from __future__ import annotations

import json
import time
from typing import Iterable

from ..runtime.job.jobid import JobID
from ..runtime.util.idset import IDSet

#: pid of the first instance; OS pids (of .pfw files) stay below 2**22
PID_BASE = 10_000_000
#: KVS key (in the parent) under which a nested instance saves its trace
SAVED_KEY = "trace.{id}"
RUNNING = 16 | 32
REGION_EVENTS = (("queueing", "submit", "priority"), ("scheduling", "priority", "alloc"),
                 ("launch", "alloc", "@run"), ("run", "@run", "finish"),
                 ("completion", "finish", "clean"))


def _us(t: float) -> float:
    return round(t * 1e6, 3)


def run_start(events: dict[str, float], exec_events: dict[str, float]) -> float | None:
    """When the tasks started: exec ``shell.start``, else (test exec) the job's ``start``."""
    return exec_events.get("shell.start", events.get("start"))


def regions(events: dict[str, float], exec_events: dict[str, float]) -> list[tuple[str, float, float]]:
    """(region, begin, end) in seconds for the regions a job went through."""
    marks = dict(events)
    marks["@run"] = run_start(events, exec_events)
    out = []
    for name, a, b in REGION_EVENTS:
        ta, tb = marks.get(a), marks.get(b)
        if ta is not None and tb is not None and tb >= ta:
            out.append((name, ta, tb))
    return out


def _job_events(h, info: dict, path: str, now: float) -> tuple[list[dict], dict]:
    """The trace events of one job (pid left as the instance path) and its summary."""
    from ..job import eventlog_entries
    jid = JobID(info["id"])
    log = list(eventlog_entries(h, jid, "eventlog", watch=False))
    try:
        xlog = list(eventlog_entries(h, jid, "exec", watch=False))
    except Exception:  # noqa: BLE001 - a job that never started has no exec eventlog
        xlog = []
    first: dict[str, float] = {}
    for ev in log:
        first.setdefault(ev.name, ev.timestamp)
    xfirst: dict[str, float] = {}
    for ev in xlog:
        xfirst.setdefault(ev.name, ev.timestamp)
    ident = f"{path}/{jid.f58}"
    name = info.get("name") or "job"
    label = f"{name} {jid.f58}"
    uri = ((info.get("annotations") or {}).get("user") or {}).get("uri")
    args = {"jobid": jid.f58, "id": int(jid), "instance": path, "name": name,
            "ranks": info.get("ranks", ""), "nnodes": info.get("nnodes", 0),
            "ntasks": info.get("ntasks", 0), "ncores": info.get("ncores", 0),
            "result": info.get("result"), "nested": bool(uri)}
    out: list[dict] = []
    for ev, cat in [(e, "job.event") for e in log] + [(e, "job.exec") for e in xlog]:
        out.append({"name": ev.name, "cat": cat, "ph": "n", "ts": _us(ev.timestamp), "pid": path,
                    "tid": 0, "id": ident, "args": {"jobid": jid.f58, **(ev.context or {})}})
    t0 = first.get("submit", log[0].timestamp if log else now)
    t1 = first.get("clean", now)
    t1 = max([t1] + [ev.timestamp for ev in log + xlog])
    # written in nesting order (job b, each region's b and e, job e): equal timestamps
    # keep file order in viewers, so a region never ends its successor
    def span(ph: str, sname: str, t: float, sargs: dict | None = None) -> None:
        ev = {"name": sname, "cat": "job", "ph": ph, "ts": _us(t), "pid": path, "tid": 0, "id": ident}
        if sargs is not None:
            ev["args"] = sargs
        out.append(ev)

    span("b", label, t0, {**args, "active": "clean" not in first})
    for rname, a, b in regions(first, xfirst):
        span("b", rname, a, {"jobid": jid.f58})
        span("e", rname, b)
    span("e", label, t1)
    held = (first.get("alloc"), first.get("free", first.get("clean", now if "alloc" in first else None)))
    summary = {**args, "label": label, "events": first, "exec": xfirst, "held": held}
    return out, summary


def _lanes(jobs: list[dict], path: str) -> tuple[list[dict], set[tuple[int, int]]]:
    """X slices per rank, each job on the first lane of the rank free at its alloc."""
    out: list[dict] = []
    used: set[tuple[int, int]] = set()
    lane_end: dict[int, list[float]] = {}
    for job in sorted((j for j in jobs if j["held"][0] is not None), key=lambda j: j["held"][0]):
        a, b = job["held"]
        b = a if b is None else b
        for rank in IDSet(job["ranks"] or ""):
            ends = lane_end.setdefault(rank, [])
            lane = next((i for i, e in enumerate(ends) if e <= a), len(ends))
            if lane == len(ends):
                ends.append(b)
            else:
                ends[lane] = b
            used.add((rank, lane))
            out.append({"name": job["label"], "cat": "job.rank", "ph": "X", "ts": _us(a),
                        "dur": max(0.0, _us(b) - _us(a)), "pid": path, "tid": 1 + 1000 * rank + lane,
                        "args": {"jobid": job["jobid"], "rank": rank}})
    return out, used


def _instance(h, path: str, jobids: set[int] | None, recursive: bool, depth: int,
              now: float) -> list[dict]:
    """Instance records (path, size, hosts, events, children) of ``h`` and below."""
    from ..realflux import connect as Flux   # fluxnb's Flux, or RealFlux for a real flux-core
    size = int(h.attr_get("size"))
    from ..job import job_list
    jobs = job_list(h, max_entries=0).get_jobs()
    jobs.sort(key=lambda j: (j.get("t_submit", 0), j["id"]))
    if jobids is not None:
        jobs = [j for j in jobs if j["id"] in jobids]
    events: list[dict] = []
    summaries = []
    records = []
    for info in jobs:
        evs, summary = _job_events(h, info, path, now)
        events += evs
        summaries.append(summary)
        uri = ((info.get("annotations") or {}).get("user") or {}).get("uri")
        if not (uri and recursive):
            continue
        child_path = f"{path}/{JobID(info['id']).f58}" if path else JobID(info["id"]).f58
        child: list[dict] | None = None
        if info["state"] & RUNNING:
            try:
                with Flux(uri) as ch:
                    child = _instance(ch, child_path, None, recursive, depth + 1, now)
            except (OSError, TimeoutError):
                child = None  # it ended while we looked: perhaps it saved its trace
        if child is None:
            child = _saved(h, info["id"], child_path)
        for rec in child or []:
            rec.setdefault("parent_job", {"instance": path, "jobid": JobID(info["id"]).f58,
                                          "ranks": info.get("ranks", "")})
        records += child or []
    lanes, used = _lanes(summaries, path)
    events += lanes
    me = {"path": path, "size": size, "depth": depth, "events": events,
          "threads": sorted(used)}
    return [me] + records


def _saved(h, jobid: int, path: str) -> list[dict] | None:
    """A nested instance's trace saved in this instance's KVS, re-rooted at ``path``."""
    from .. import kvs
    try:
        saved = kvs.get(h, SAVED_KEY.format(id=int(jobid)))
    except Exception:  # noqa: BLE001 - nothing saved
        return None
    return [_reroot(rec, path) for rec in saved.get("instances", [])]


def _reroot(rec: dict, prefix: str) -> dict:
    def move(p: str) -> str:
        return prefix if not p else f"{prefix}/{p}"

    out = dict(rec, path=move(rec["path"]), depth=rec["depth"] + prefix.count("/") + 1)
    if "parent_job" in rec:
        out["parent_job"] = dict(rec["parent_job"], instance=move(rec["parent_job"]["instance"]))
    out["events"] = []
    for ev in rec["events"]:
        ev = dict(ev, pid=move(ev["pid"]))
        if str(ev.get("cat", "")).startswith("job") and isinstance(ev.get("id"), str):
            inst, _, job = ev["id"].rpartition("/")
            ev["id"] = f"{move(inst)}/{job}"
        if isinstance(ev.get("args"), dict) and "instance" in ev["args"]:
            ev["args"] = dict(ev["args"], instance=move(ev["args"]["instance"]))
        out["events"].append(ev)
    return out


def collect(h=None, jobids: Iterable[int] | None = None, recursive: bool = True) -> list[dict]:
    """Instance records for the instance behind ``h`` (default: ``Flux()``) and its children.

    Paths are relative: the root instance is ``""``, a child ``ƒxyz``, a grandchild
    ``ƒxyz/ƒabc``; job events carry their instance path as ``pid`` until :func:`export`
    numbers the instances.
    """
    from ..realflux import connect as Flux   # fluxnb's Flux, or RealFlux for a real flux-core
    ids = None if jobids is None else {int(JobID(j)) for j in jobids}
    if h is None:
        with Flux() as h:
            return _instance(h, "", ids, recursive, 0, time.time())
    return _instance(h, "", ids, recursive, 0, time.time())


def _finish(records: list[dict], pfw: Iterable[str] = (), extra: Iterable[dict] = ()) -> dict:
    """Number the instances, add names for processes and threads, merge .pfw events."""
    from .aspect import flush
    from .format import load
    pids = {rec["path"]: PID_BASE + i for i, rec in enumerate(records)}
    events: list[dict] = []
    instances = []
    for rec in records:
        pid = pids[rec["path"]]
        label = "fluxnb instance" + (f" {rec['path']}" if rec["path"] else " (root)")
        events.append({"name": "process_name", "ph": "M", "ts": 0, "pid": pid, "tid": 0,
                       "args": {"name": label}})
        events.append({"name": "process_sort_index", "ph": "M", "ts": 0, "pid": pid, "tid": 0,
                       "args": {"sort_index": pids[rec["path"]] - PID_BASE}})
        events.append({"name": "thread_name", "ph": "M", "ts": 0, "pid": pid, "tid": 0,
                       "args": {"name": "jobs"}})
        for rank, lane in rec["threads"]:
            events.append({"name": "thread_name", "ph": "M", "ts": 0, "pid": pid,
                           "tid": 1 + 1000 * rank + lane,
                           "args": {"name": f"rank {rank}" + (f" #{lane + 1}" if lane else "")}})
        for ev in rec["events"]:
            events.append(dict(ev, pid=pid))
        info = {k: rec[k] for k in ("path", "size", "depth")}
        info["pid"] = pid
        if "parent_job" in rec:
            info["parent_job"] = rec["parent_job"]
        instances.append(info)
    flush()  # this process's own annotations
    paths = list(pfw)
    if paths:
        events += load(*paths)
    events += list(extra)
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"generator": "fluxnb.trace", "instances": instances}}


def export(h=None, jobids: Iterable[int] | None = None, recursive: bool = True,
           pfw: Iterable[str] = ()) -> dict:
    """A Chrome trace (object form) of the jobs of an instance, its children and ``.pfw`` files.

    Parameters
    ----------
    h : Flux, optional
        A handle to the instance (default: ``Flux()``, the instance of ``$FLUX_URI``).
    jobids : iterable of job ids, optional
        Only these jobs of the top instance (all the jobs of nested instances under them).
    recursive : bool
        Follow nested instances (running ones live, ended ones from their saved trace).
    pfw : iterable of str
        PerfFlowAspect trace files or directories of ``*.pfw`` files to merge.

    Returns
    -------
    dict
        ``{"traceEvents": [...], "otherData": {"instances": [...]}}``: write it with
        :func:`write`, open it in Perfetto, analyze it with :mod:`fluxnb.trace.regions`.
    """
    return _finish(collect(h, jobids, recursive), pfw)


def write(trace: dict, path: str) -> str:
    """Write a trace as JSON; return the path."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(trace, f, separators=(",", ":"))
        f.write("\n")
    return path


def save_to_parent(h=None) -> str:
    """Save this nested instance's trace in its parent's KVS (``trace.<id>``); return the key.

    Run it last in a batch script (``flux trace save``), so the parent's
    :func:`export` has the child's jobs after the child has gone.
    """
    from .. import kvs
    from ..runtime.client import Flux
    own = h is None
    h = Flux() if own else h
    try:
        try:
            parent_uri, jobid = h.attr_get("parent-uri"), h.attr_get("jobid")
        except Exception:  # noqa: BLE001 - the attributes exist only in nested instances
            parent_uri = jobid = None
        if not parent_uri or not jobid:
            raise ValueError("this instance is not a job of another (no parent-uri or jobid "
                             "attribute): run it in a batch script or a flux alloc shell")
        records = _instance(h, "", None, True, 0, time.time())
    finally:
        if own:
            h.close()
    key = SAVED_KEY.format(id=int(JobID(jobid)))
    with Flux(parent_uri) as parent:
        kvs.put(parent, key, {"instances": records})
        kvs.commit(parent)
    return key
