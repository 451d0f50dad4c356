"""JobBrowser: a live ``flux jobs -a`` as a data grid, a job's story, and Cancel.

The grid (:class:`~fluxnb.widgets.jobgrid.JobGrid`, an anywidget) sorts by any
column, filters by state and by text, counts jobs by state in its header and
scrolls virtually: the kernel keeps all records and sends the browser only the
rows it shows. Records come from ``job-list.list`` once, then only the jobs the
job manager's ``job-state`` events name are fetched again (``job-list.list-id``).
Selecting a row shows the job's eventlog (as ``flux job eventlog`` prints it),
its R, its jobspec and its output (followed live while the job runs).

Examples
--------
>>> import fluxnb.widgets  # doctest: +SKIP
>>> fluxnb.widgets.JobBrowser()  # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import threading
import time
from typing import Any

import ipywidgets as widgets

from .. import job as fjob
from .. import kvs as fkvs
from ..runtime.client import Flux
from ..runtime.job.jobid import JobID
from ..runtime.job.states import RESULT_ABBREV, STATE_ABBREV, STATE_BITS
from ..runtime.message import FluxError
from ..runtime.util.fsd import format_fsd
from .base import STYLE, LiveWidget, html_table, text_table
from .jobgrid import SORT_KEYS, STATE_CLASSES, JobGrid, cells, search_text, state_class

_NAMES = {bit: name for name, bit in STATE_BITS.items()}
_RESULTS = {1: "COMPLETED", 2: "FAILED", 4: "CANCELED", 8: "TIMEOUT"}
_PENDING = STATE_BITS["DEPEND"] | STATE_BITS["PRIORITY"] | STATE_BITS["SCHED"]
_RUNNING = STATE_BITS["RUN"] | STATE_BITS["CLEANUP"]
_ACTIVE = _PENDING | _RUNNING | STATE_BITS["NEW"]

#: filter name -> (state bits, result bits); as ``flux jobs --filter`` names them
FILTERS: dict[str, tuple[int, int]] = {
    "all": (0x7F, 0), "active": (_ACTIVE, 0), "pending": (_PENDING, 0),
    "running": (_RUNNING, 0), "inactive": (STATE_BITS["INACTIVE"], 0),
    "completed": (STATE_BITS["INACTIVE"], 1), "failed": (STATE_BITS["INACTIVE"], 2),
    "canceled": (STATE_BITS["INACTIVE"], 4), "timeout": (STATE_BITS["INACTIVE"], 8),
}
HEADERS = ["JOBID", "NAME", "ST", "NTASKS", "NNODES", "TIME", "NODELIST"]


def status_abbrev(job: dict) -> str:
    """``flux jobs``' ST column: the state letter while active, the result once inactive.

    >>> status_abbrev({"state": 16}), status_abbrev({"state": 64, "result": 4})
    ('R', 'CA')
    """
    state = _NAMES.get(job.get("state", 0), "")
    if state == "INACTIVE" and job.get("result"):
        return RESULT_ABBREV.get(_RESULTS.get(job["result"], ""), "?")
    return STATE_ABBREV.get(state, "?")


def runtime(job: dict, now: float | None = None) -> float:
    """Seconds the job has run (so far, if it still runs)."""
    t_run = job.get("t_run") or 0.0
    if not t_run:
        return 0.0
    end = job.get("t_cleanup") or job.get("t_inactive") or (now or time.time())
    return max(0.0, end - t_run)


def row(job: dict, now: float | None = None) -> list[str]:
    """The cells of one job's row, in :data:`HEADERS` order."""
    t = runtime(job, now)
    return [JobID(job["id"]).f58, str(job.get("name", ""))[:20], status_abbrev(job),
            str(job.get("ntasks", "")), str(job.get("nnodes", "") or ""),
            format_fsd(round(t, 3)) if t else "-", job.get("nodelist", "") or ""]


def eventlog_text(entries: list, t0: float | None = None) -> str:
    """Eventlog entries as ``flux job eventlog`` prints them (seconds since the first)."""
    lines = []
    for ev in entries:
        ts = ev["timestamp"]
        if t0 is None:
            t0 = ts
        ctx = " ".join(f"{k}={json.dumps(v)}" for k, v in (ev.get("context") or {}).items())
        lines.append(f"{ts - t0:.6f} {ev['name']}" + (f" {ctx}" if ctx else ""))
    return "\n".join(lines) + ("\n" if lines else "")


def output_text(entries: list) -> str:
    """stdout and stderr of an output eventlog, each line prefixed as ``flux job attach -l``."""
    out: list[str] = []
    for ev in entries:
        if ev["name"] != "data":
            continue
        ctx = ev.get("context") or {}
        data = ctx.get("data", "")
        if ctx.get("encoding") == "base64":
            import base64
            data = base64.b64decode(data).decode("utf-8", "replace")
        if data:
            prefix = f"{ctx.get('rank', '')}: " if ctx.get("stream") != "stderr" else f"{ctx.get('rank', '')}! "
            out.extend(prefix + line for line in data.splitlines())
    return "\n".join(out) + ("\n" if out else "")


class JobBrowser(LiveWidget):
    """A live grid of the instance's jobs; select one to see its eventlog, R, jobspec, output.

    Parameters
    ----------
    handle : Flux, optional
        Defaults to ``fluxnb.Flux()``.
    filter : str
        Initial state filter, one of :data:`FILTERS` (``all``, ``pending``, ``running``...).
    max_entries : int
        Most jobs loaded at first (the newest), as ``flux jobs -n``; 0 for all.
    sort_by : str
        Initial sort column (``id``, ``user``, ``name``, ``state``, ``result``,
        ``ntasks``, ``nnodes``, ``runtime``, ``nodelist``, ``queue``); by default
        active jobs first, then the newest, as ``flux jobs`` lists them.

    Attributes
    ----------
    jobs : dict
        ``jobid -> job-list record`` of every job heard of (state and result as bits).
    loaded : bool
        Whether all jobs are loaded (the widget first shows the newest
        :attr:`FIRST_PAGE`, then loads the rest from the event thread).
    selected : JobID or None
        The job whose details are shown.
    table : JobGrid
        The grid (``table.sort_by``, ``table.descending``, ``table.selected``...).
    filter, search : ipywidgets
        The state filter (a Dropdown) and the text filter (matched against id,
        user, name, nodelist, queue, state and result).
    """

    css_class = "fluxnb-jobbrowser"

    #: jobs named by one burst of events beyond which the whole list is reloaded
    RELOAD_OVER = 500
    #: the job-list attributes the grid, the filters and the static face use (half
    #: the time of "all" for 10,000 jobs)
    #: jobs loaded before the widget first shows (the newest); the rest follow at once
    #: from the event thread, so a first render never waits for 10,000 records
    FIRST_PAGE = 300
    ATTRS = ["userid", "name", "queue", "state", "result", "ntasks", "nnodes", "nodelist",
             "t_submit", "t_run", "t_cleanup", "t_inactive", "waitstatus"]

    def __init__(self, handle: Flux | None = None, filter: str = "all", max_entries: int = 10000,
                 interval: float = 0.2, sort_by: str = ""):
        super().__init__(handle, interval)
        if filter not in FILTERS:
            raise ValueError(f"JobBrowser: unknown filter {filter!r}; expected one of {', '.join(FILTERS)}")
        if sort_by and sort_by not in SORT_KEYS:
            raise ValueError(f"JobBrowser: cannot sort by {sort_by!r}; columns are {', '.join(SORT_KEYS)}")
        self.max_entries = max_entries
        self._programmatic = False
        self.jobs: dict[int, dict] = {}
        self._text: dict[int, str] = {}       # jobid -> what the text filter searches
        self._view: list[int] = []            # the filtered, sorted ids the grid shows
        self._missing: set[int] = set()       # named by events, not yet in job-list
        self._stale: set[int] = set()         # job-list's record behind the events
        # the feed's first call reloads all: it catches up on what happened between
        # the first load and the feed's subscription (events missed, never named again)
        self._reload = True
        self.selected: JobID | None = None
        self.details: dict[str, str] = {"eventlog": "", "R": "", "jobspec": "", "output": ""}
        self.filter = widgets.Dropdown(options=list(FILTERS), value=filter, description="state",
                                       layout=widgets.Layout(width="220px"))
        self.search = widgets.Text(placeholder="filter: id, name, user, nodelist, queue...",
                                   continuous_update=True, layout=widgets.Layout(width="280px"))
        self.search.add_class("fluxnb-jobsearch")
        self.summary = widgets.HTML()
        self.table = JobGrid(sort_by=sort_by, descending=not sort_by or sort_by in ("id", "runtime"))
        self.table.add_class("fluxnb-jobtable")
        self.cancel_button = widgets.Button(description="Cancel", button_style="danger",
                                            icon="times", disabled=True,
                                            tooltip="cancel the selected job (flux cancel)")
        self.message = widgets.HTML()
        self._panes = {k: widgets.HTML() for k in ("eventlog", "R", "jobspec", "output")}
        self.tabs = widgets.Tab(children=list(self._panes.values()), titles=list(self._panes))
        self.children = [widgets.HTML(STYLE),
                         widgets.HBox([self.filter, self.search, self.cancel_button, self.summary]),
                         self.table, self.message, self.tabs]
        self.filter.observe(lambda change: self._redraw(), names="value")
        self.search.observe(lambda change: self._redraw(), names="value")
        self.table.observe(lambda change: self._redraw(), names=["sort_by", "descending"])
        self.table.observe(lambda change: self._send_window(), names="offset")
        self.table.observe(self._on_select, names="selected")
        self.cancel_button.on_click(self._on_cancel)
        self._follower: threading.Thread | None = None
        first = self.FIRST_PAGE if not max_entries or max_entries > self.FIRST_PAGE else max_entries
        with self._lock:
            self._load(self.h, first)
            self.loaded = len(self.jobs) < first   # fewer than asked for: that was all of them
            self._redraw()
        self._follow()
        # the rest (if the first page was not all) comes with the feed's first call

    # -- data ---------------------------------------------------------------------------
    def _load(self, h: Flux, max_entries: int | None = None) -> None:
        """All records afresh (on a refresh, after a large burst); at first the newest only."""
        limit = self.max_entries if max_entries is None else max_entries
        jobs = fjob.job_list(h, max_entries=limit, attrs=self.ATTRS).get_jobs()
        if max_entries is None:
            self.loaded = True
        fresh = {int(j["id"]): j for j in jobs}
        for jobid, old in self.jobs.items():
            new = fresh.get(jobid)
            # an event may have told us of a later state than job-list had when it answered
            if new is not None and old.get("state", 0) > new.get("state", 0):
                fresh[jobid] = {**new, "state": old["state"]}
        self.jobs = fresh
        self._text = {}            # built when a text filter is first typed
        self._missing.clear()

    def _fetch(self, h: Flux, ids: set[int]) -> None:
        """The records of ``ids`` only (pipelined ``job-list.list-id``)."""
        rpcs = [(jobid, fjob.job_list_id(h, jobid, attrs=self.ATTRS)) for jobid in ids]
        for jobid, rpc in rpcs:
            try:
                new = rpc.get()["job"]
            except FluxError:      # job-list has not heard of it yet: ask again soon
                self._missing.add(jobid)
                continue
            self._missing.discard(jobid)
            old = self.jobs.get(jobid)
            if old is not None and old.get("state", 0) > new.get("state", 0):
                new = {**new, "state": old["state"]}
            self.jobs[jobid] = new
            if self._text:
                self._text[jobid] = search_text(new)

    def refresh(self) -> None:
        """Reload every record now (in the event thread)."""
        self._reload = True
        super().refresh()

    def _on_events(self, h: Flux, transitions: list) -> None:
        # ids named by these events, and those job-list lagged behind on last time
        ids = {int(t[0]) for t in transitions} | self._missing | self._stale
        if self._reload or not self.loaded or len(ids) > self.RELOAD_OVER:
            self._reload = False
            self._load(h)
        else:
            self._fetch(h, ids)
        self._stale = set()
        for jobid, state, ts in transitions:
            job = self.jobs.get(int(jobid))
            bit = STATE_BITS.get(state, 0)
            if job is not None and bit > job.get("state", 0):
                job["state"] = bit
                self._stale.add(int(jobid))
        lagging = bool(self._missing or self._stale)
        self._redraw()
        if self.selected is not None and any(int(t[0]) == self.selected for t in transitions):
            self._show(h, self.selected)
        if lagging and self._sub is not None:
            self._sub.poke(0.5)

    def visible(self) -> list[dict]:
        """The jobs the state and text filters let through, in the grid's order."""
        return [self.jobs[i] for i in self._compute_view()]

    def _compute_view(self) -> list[int]:
        states, results = FILTERS[self.filter.value]
        query = self.search.value.strip().lower()
        if query and len(self._text) < len(self.jobs):
            text = self._text
            for i, j in self.jobs.items():
                if i not in text:
                    text[i] = search_text(j)
        ids = [i for i, j in self.jobs.items()
               if j.get("state", 0) & states and (not results or j.get("result", 0) & results)
               and (not query or query in self._text.get(i, ""))]
        key = self.table.sort_by
        now = time.time()
        jobs = self.jobs
        if key:
            fn = SORT_KEYS[key]
            ids.sort(key=lambda i: (fn(jobs[i], now), i), reverse=self.table.descending)
        else:  # flux jobs' order: active first, then the most recent
            ids.sort(key=lambda i: (jobs[i].get("state", 0) != STATE_BITS["INACTIVE"],
                                    jobs[i].get("t_inactive") or jobs[i].get("t_submit", 0)),
                     reverse=True)
        return ids

    def rows(self) -> list[list[str]]:
        """The table as cells (what :meth:`to_text` shows)."""
        now = time.time()
        return [row(j, now) for j in self.visible()]

    def status(self, jobid: int) -> str:
        """The ST column of ``jobid`` ('' if the widget has not heard of it)."""
        job = self.jobs.get(int(jobid))
        return status_abbrev(job) if job else ""

    def view_ids(self) -> list[JobID]:
        """The ids the grid lists, in its order (all of them, not only the rows sent)."""
        return [JobID(i) for i in self._view]

    # -- view ---------------------------------------------------------------------------
    def _redraw(self) -> None:
        with self._lock:
            self._view = self._compute_view()
            counts = {k: 0 for k in STATE_CLASSES}
            for j in self.jobs.values():
                counts[state_class(j)] += 1
            if counts != self.table.counts:
                self.table.counts = counts
            self._send_window()
            c = self._counts()
            self.summary.value = (f"<span class='fluxnb-mono'>{len(self._view)} of {len(self.jobs)} jobs"
                                  + ("" if self.loaded else " (loading the rest)") + ": "
                                  + ", ".join(f"{n} {k}" for k, n in c.items()) + "</span>")
            self._update_cancel()

    def _send_window(self) -> None:
        """The rows from the grid's ``offset``: one page, whatever the number of jobs."""
        with self._lock:
            grid = self.table
            total = len(self._view)
            start = max(0, min(grid.offset, total - grid.page_size))
            now = time.time()
            page = [cells(self.jobs[i], now) for i in self._view[start:start + grid.page_size]]
            window = {"offset": start, "total": total, "rows": page}
            if window != grid.window:
                grid.window = window

    def _counts(self) -> dict[str, int]:
        out = {"pending": 0, "running": 0, "inactive": 0}
        for j in self.jobs.values():
            st = j.get("state", 0)
            key = "pending" if st & (_PENDING | 1) else "running" if st & _RUNNING else "inactive"
            out[key] += 1
        return out

    def _update_cancel(self) -> None:
        job = self.jobs.get(int(self.selected)) if self.selected is not None else None
        self.cancel_button.disabled = job is None or not job.get("state", 0) & _ACTIVE

    def _on_select(self, change: dict) -> None:
        if not change["new"] or self._programmatic:
            return
        self.select(change["new"])

    def select(self, jobid: int | str) -> None:
        """Show the eventlog, R, jobspec and output of ``jobid`` (an int, F58 or any JobID form)."""
        jid = JobID(jobid)
        with self._lock:
            self.selected = jid
            if self.table.selected != jid.f58:
                self._programmatic = True
                try:
                    self.table.selected = jid.f58
                finally:
                    self._programmatic = False
            self._show(self.h, jid)
            self._update_cancel()
            job = self.jobs.get(int(jid))
            if job is not None and job.get("state", 0) & _ACTIVE:
                self._follow_output(jid)

    def _show(self, h: Flux, jid: JobID) -> None:
        """Fetch the selected job's eventlog, R, jobspec and output with ``h`` (whichever
        thread owns it)."""
        d: dict[str, str] = {}
        try:
            d["eventlog"] = eventlog_text(list(fjob.eventlog_entries(h, jid, "eventlog", watch=False)))
        except FluxError as exc:
            d["eventlog"] = f"(no eventlog: {exc})"
        try:
            d["R"] = json.dumps(fkvs.get(h, jid.kvs + ".R"), indent=1)
        except (FluxError, KeyError, OSError) as exc:
            d["R"] = f"(no R yet: {exc})"
        try:
            d["jobspec"] = json.dumps(fkvs.get(h, jid.kvs + ".jobspec"), indent=1)
        except (FluxError, KeyError, OSError) as exc:
            d["jobspec"] = f"(no jobspec: {exc})"
        try:
            d["output"] = output_text(list(fjob.eventlog_entries(h, jid, "output", watch=False)))
            d["output"] = d["output"] or "(no output)"
        except FluxError as exc:
            d["output"] = f"(no output yet: {exc})"
        self.details = d
        for key in self._panes:
            self._set_pane(key, jid, d[key])

    def _set_pane(self, key: str, jid: JobID, text: str) -> None:
        self._panes[key].value = f"<b class='fluxnb-mono'>{jid.f58}</b><pre>{html.escape(text)}</pre>"

    def _follow_output(self, jid: JobID) -> None:
        """Show the running job's output as it comes (a thread with its own handle)."""
        def follow():
            from ..runtime.client import Flux as Handle
            entries: list = []
            shown = 0.0
            try:
                with Handle(self.uri) as h:
                    for ev in fjob.eventlog_entries(h, jid, "output", watch=True):
                        if self.selected != jid or self._sub is None:
                            return       # another row was selected, or the widget closed
                        entries.append({"name": ev.name, "context": ev.context})
                        if time.monotonic() - shown >= 0.2 or ev.context.get("eof"):
                            self._live_output(jid, entries)
                            shown = time.monotonic()
                    self._live_output(jid, entries)
            except (FluxError, OSError):
                pass
        self._follower = threading.Thread(target=follow, daemon=True, name="fluxnb-jobbrowser-output")
        self._follower.start()

    def _live_output(self, jid: JobID, entries: list) -> None:
        with self._lock:
            if self.selected != jid:
                return
            text = output_text(entries) or "(no output)"
            self.details = {**self.details, "output": text}
            self._set_pane("output", jid, text)

    def _on_cancel(self, _button: Any = None) -> None:
        self.cancel_selected()

    def cancel_selected(self) -> bool:
        """Cancel the selected job (``flux cancel``); say what happened under the table."""
        if self.selected is None:
            self.message.value = "select a job first"
            return False
        jid = self.selected
        try:
            fjob.cancel(self.h, jid)
        except FluxError as exc:
            self.message.value = f"<span style='color:#b00'>cancel {jid.f58}: {html.escape(str(exc))}</span>"
            return False
        self.message.value = f"<span class='fluxnb-mono'>canceled {jid.f58}</span>"
        return True

    # -- static face ----------------------------------------------------------------------
    def to_text(self) -> str:
        try:
            cells = self.rows()
        except AttributeError:  # not built yet
            return "JobBrowser()"
        text = text_table(HEADERS, cells, right=(3, 4, 5))
        if self.selected is not None:
            text += f"\n{self.selected.f58} eventlog:\n{self.details['eventlog']}"
        return text

    def to_html(self) -> str:
        try:
            cells = self.rows()
        except AttributeError:
            return "<pre>JobBrowser()</pre>"
        counts = ", ".join(f"{n} {k}" for k, n in self._counts().items())
        return html_table(HEADERS, cells, caption=f"{len(self.jobs)} jobs: {counts}")
