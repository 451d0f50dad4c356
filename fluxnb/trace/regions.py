"""Critical-path analysis of job traces: regions, the critical path, idle resources.

A job's life is cut into five regions by its events (after the AHA MoleS paper's
e1 -> e9 breakdown of a job's critical path)::

    e1 submit -> (e2 validate, e3 depend) -> e4 priority   queueing
    e4 priority -> e5 alloc                                  scheduling
    e5 alloc -> e6 start of the tasks (exec shell.start)     launch
    e6 start -> e7 finish                                    run
    e7 finish -> (e8 release, free) -> e9 clean              completion

Everything here reads a trace (a dict from :func:`fluxnb.trace.collect`, its list of
events, or the path of a written trace), so a trace saved yesterday is analyzed as
well as a live instance.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Iterable

from .collect import REGION_EVENTS, regions as _regions

REGIONS = tuple(name for name, _, _ in REGION_EVENTS)
#: a job whose alloc came later than this after its priority event waited for resources
SCHED_WAIT = 0.005


class Table:
    """Rows with named columns, shown as text or HTML; ``meta`` holds totals.

    Examples
    --------
    >>> t = Table(["job", "run"], [("a", 1.0)])
    >>> t.column("run")
    [1.0]
    """

    def __init__(self, columns: list[str], rows: list[tuple], meta: dict | None = None,
                 title: str = ""):
        self.columns = list(columns)
        self.rows = [tuple(r) for r in rows]
        self.meta = dict(meta or {})
        self.title = title

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return (dict(zip(self.columns, r)) for r in self.rows)

    def column(self, name: str) -> list:
        i = self.columns.index(name)
        return [r[i] for r in self.rows]

    def to_dicts(self) -> list[dict]:
        return list(self)

    @staticmethod
    def _cell(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    def __str__(self) -> str:
        cells = [self.columns] + [[self._cell(v) for v in r] for r in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                           enumerate(zip(r, widths))).rstrip() for r in cells]
        extra = [f"{k}: {self._cell(v)}" for k, v in self.meta.items() if not isinstance(v, dict)]
        return "\n".join(([self.title] if self.title else []) + lines + extra)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(self._cell(v))}</td>" for v in r)
                       + "</tr>" for r in self.rows)
        cap = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        extra = "".join(f"<br>{html.escape(k)}: {html.escape(self._cell(v))}"
                        for k, v in self.meta.items() if not isinstance(v, dict))
        return (f"<table class='fluxnb-table'>{cap}<thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>{extra}")


@dataclass
class JobRecord:
    """One job as its trace tells it (times in seconds since the epoch)."""

    instance: str
    jobid: str
    id: int
    name: str
    ranks: str
    nnodes: int
    ntasks: int
    nested: bool
    events: dict[str, float] = field(default_factory=dict)
    exec: dict[str, float] = field(default_factory=dict)

    @property
    def submit(self) -> float:
        return self.events.get("submit", min(self.events.values(), default=0.0))

    @property
    def end(self) -> float:
        return self.events.get("clean", max([*self.events.values(), *self.exec.values()], default=0.0))

    @property
    def held(self) -> tuple[float, float] | None:
        """(alloc, free) when it held resources."""
        if "alloc" not in self.events:
            return None
        return self.events["alloc"], self.events.get("free", self.end)

    def regions(self) -> list[tuple[str, float, float]]:
        return _regions(self.events, self.exec)

    def durations(self) -> dict[str, float]:
        out = dict.fromkeys(REGIONS, 0.0)
        for name, a, b in self.regions():
            out[name] = b - a
        return out


def events_of(trace: Any) -> list[dict]:
    """The event list of a trace given as a dict, a list, or file paths."""
    if isinstance(trace, dict):
        return trace.get("traceEvents", [])
    if isinstance(trace, str):
        from .format import load
        return load(trace)
    if isinstance(trace, (list, tuple)) and trace and isinstance(trace[0], str):
        from .format import load
        return load(*trace)
    return list(trace)


def jobs(trace: Any, jobids: Iterable[str] | None = None, instance: str | None = None,
         nested: bool | None = False) -> list[JobRecord]:
    """The jobs in a trace, by submit time.

    Parameters
    ----------
    jobids : iterable of str, optional
        Only these (F58 ids, or ``instance/f58`` paths).
    instance : str, optional
        Only jobs of this instance (``""`` is the root).
    nested : bool or None
        False: leave out jobs that are nested instances (a workflow's work is in their
        jobs); True: only those; None: all.
    """
    by_id: dict[str, JobRecord] = {}
    for ev in events_of(trace):
        cat, ident = ev.get("cat"), ev.get("id")
        if cat == "job" and ev.get("ph") == "b" and isinstance(ev.get("args"), dict) \
                and "instance" in ev["args"] and ident not in by_id:
            a = ev["args"]
            by_id[ident] = JobRecord(a["instance"], a["jobid"], a["id"], a.get("name", ""),
                                     a.get("ranks", ""), a.get("nnodes", 0), a.get("ntasks", 0),
                                     bool(a.get("nested")))
    for ev in events_of(trace):
        rec = by_id.get(ev.get("id")) if ev.get("ph") == "n" else None
        if rec is not None:
            table = rec.events if ev["cat"] == "job.event" else rec.exec
            table.setdefault(ev["name"], ev["ts"] / 1e6)
    wanted = None if jobids is None else {str(j) for j in jobids}
    out = []
    for ident, rec in by_id.items():
        if wanted is not None and rec.jobid not in wanted and ident.lstrip("/") not in wanted:
            continue
        if instance is not None and rec.instance != instance:
            continue
        if nested is not None and rec.nested != nested:
            continue
        out.append(rec)
    return sorted(out, key=lambda r: (r.submit, r.id))


def analyze(trace: Any, jobids: Iterable[str] | None = None, instance: str | None = None,
            nested: bool | None = False) -> Table:
    """Time each job spent in each region (seconds), with the means in ``meta``."""
    recs = jobs(trace, jobids, instance, nested)
    rows, sums = [], dict.fromkeys(REGIONS, 0.0)
    for r in recs:
        d = r.durations()
        for k in REGIONS:
            sums[k] += d[k]
        rows.append((r.instance or ".", r.jobid, r.name, r.nnodes, *(d[k] for k in REGIONS),
                     r.end - r.submit))
    n = max(len(recs), 1)
    meta = {f"mean {k}": sums[k] / n for k in REGIONS}
    return Table(["instance", "jobid", "name", "nnodes", *REGIONS, "total"], rows, meta,
                 title=f"regions of {len(recs)} jobs (seconds)")


def critical_path_of(trace: Any, jobids: Iterable[str] | None = None,
                     instance: str | None = None, nested: bool | None = False) -> Table:
    """The critical path of a set of jobs: the chain of regions that set the makespan.

    From the job that ended last, walk back: a job that waited for resources
    (``alloc`` more than :data:`SCHED_WAIT` after ``priority``) was held up by the job
    of its instance that freed resources last before its ``alloc``; a job that did not
    was held up by its submission, so by the job that ended last before its ``submit``
    (the workflow waited for it; the gap is ``client`` time: the workflow's own code).

    Returns
    -------
    Table
        One row per region on the path, in time order (``start`` in seconds from the
        first submit); ``meta`` has the makespan and the time on the path by region.
    """
    recs = jobs(trace, jobids, instance, nested)
    if not recs:
        return Table(["jobid", "region", "start", "duration", "held up by"], [],
                     {"makespan": 0.0}, "critical path (no jobs)")
    t0 = min(r.submit for r in recs)
    cur = max(recs, key=lambda r: r.end)
    chain: list[tuple[JobRecord, str]] = []
    seen = set()
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        ev = cur.events
        pred, why = None, "start"
        if "alloc" in ev and ev["alloc"] - ev.get("priority", ev["alloc"]) > SCHED_WAIT:
            freed = [r for r in recs if r is not cur and r.instance == cur.instance and r.held
                     and r.held[1] <= ev["alloc"] + 1e-6]
            if freed:
                pred, why = max(freed, key=lambda r: r.held[1]), "resources"
        if pred is None:
            done = [r for r in recs if r is not cur and r.end <= cur.submit + 1e-6]
            if done:
                pred, why = max(done, key=lambda r: r.end), "submission"
        chain.append((cur, why))
        cur = pred
    chain.reverse()
    rows, totals = [], dict.fromkeys((*REGIONS, "client"), 0.0)
    prev_end = t0
    for rec, why in chain:
        # the stretch between the blocker and this job: what waited on what
        limit = rec.events.get("alloc", rec.submit) if why == "resources" else rec.submit
        if why == "submission" and rec.submit > prev_end:
            rows.append(("-", "client", prev_end - t0, rec.submit - prev_end, "workflow"))
            totals["client"] += rec.submit - prev_end
        for name, a, b in rec.regions():
            if why == "resources" and b <= prev_end:
                continue  # waited alongside the blocker: not on the path
            a = max(a, prev_end) if why == "resources" else a
            rows.append((rec.jobid, name, a - t0, b - a, why if a <= limit else ""))
            totals[name] += b - a
        prev_end = rec.end
    makespan = max(r.end for r in recs) - t0
    meta = {"makespan": makespan, "jobs on path": len(chain),
            **{f"path {k}": v for k, v in totals.items()}, "by region": totals}
    return Table(["jobid", "region", "start", "duration", "held up by"], rows, meta,
                 title=f"critical path of {len(recs)} jobs (seconds)")


def utilization(trace: Any, instance: str = "", size: int | None = None,
                nested: bool | None = None) -> tuple[list[float], list[int], int]:
    """Nodes held by jobs of ``instance`` over time: (times from first submit, nodes, size).

    A step function: ``nodes[i]`` holds from ``times[i]`` to ``times[i+1]``. ``size``
    defaults to the instance's size recorded in the trace.
    """
    recs = jobs(trace, instance=instance, nested=nested)
    if size is None:
        size = instance_size(trace, instance) or max((r.nnodes for r in recs), default=0)
    if not recs:
        return [0.0], [0], size
    t0 = min(r.submit for r in recs)
    deltas: dict[float, int] = {}
    for r in recs:
        if r.held:
            deltas[r.held[0] - t0] = deltas.get(r.held[0] - t0, 0) + r.nnodes
            deltas[r.held[1] - t0] = deltas.get(r.held[1] - t0, 0) - r.nnodes
    times, nodes, busy = [0.0], [0], 0
    for t in sorted(deltas):
        busy += deltas[t]
        times.append(t)
        nodes.append(busy)
    return times, nodes, size


def instance_size(trace: Any, instance: str = "") -> int | None:
    if isinstance(trace, dict):
        for inst in (trace.get("otherData") or {}).get("instances", []):
            if inst.get("path") == instance:
                return inst.get("size")
    return None


def summary(trace: Any, instance: str | None = None, jobids: Iterable[str] | None = None) -> dict:
    """Makespan, per-region means, critical-path totals and idle node-seconds.

    ``idle node-seconds`` is size x span of ``instance`` less the node-seconds its jobs
    held (only when ``instance`` is given: a tree's instances differ in size).
    """
    recs = jobs(trace, jobids, instance)
    out: dict[str, Any] = {"jobs": len(recs)}
    if not recs:
        return out
    t0, t1 = min(r.submit for r in recs), max(r.end for r in recs)
    out["makespan"] = t1 - t0
    table = analyze(trace, jobids, instance)
    out.update({k: v for k, v in table.meta.items()})
    cp = critical_path_of(trace, jobids, instance)
    out["critical path"] = cp.meta["by region"]
    if instance is not None:
        times, nodes, size = utilization(trace, instance)
        held = sum((times[i + 1] - times[i]) * nodes[i] for i in range(len(times) - 1))
        out["size"] = size
        out["idle node-seconds"] = max(0.0, size * (t1 - t0) - held)
        out["utilization"] = held / (size * (t1 - t0)) if size and t1 > t0 else 0.0
    return out
