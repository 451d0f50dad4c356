"""JobBrowser: a live ``flux jobs -a`` with a state filter, a job's story, and Cancel.

Rows come from the ``job-list.list`` RPC and are redrawn when the job manager's
``job-state`` events say something changed; selecting a row shows the job's
eventlog (as ``flux job eventlog`` prints it), its R and its output.

Examples
--------
>>> import fluxnb.widgets  # doctest: +SKIP
>>> fluxnb.widgets.JobBrowser()  # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
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
    """A live table of the instance's jobs; select one to see its eventlog, R and output.

    Parameters
    ----------
    handle : Flux, optional
        Defaults to ``fluxnb.Flux()``.
    filter : str
        Initial state filter, one of :data:`FILTERS` (``all``, ``pending``, ``running``...).
    max_entries : int
        Most jobs listed (the newest first), as ``flux jobs -n``.

    Attributes
    ----------
    jobs : dict
        ``jobid -> job-list record`` of every job heard of (state and result as bits).
    selected : JobID or None
        The job whose details are shown.
    """

    css_class = "fluxnb-jobbrowser"

    def __init__(self, handle: Flux | None = None, filter: str = "all", max_entries: int = 1000,
                 interval: float = 0.2):
        super().__init__(handle, interval)
        if filter not in FILTERS:
            raise ValueError(f"JobBrowser: unknown filter {filter!r}; expected one of {', '.join(FILTERS)}")
        self.max_entries = max_entries
        self._programmatic = False
        self.jobs: dict[int, dict] = {}
        self.selected: JobID | None = None
        self.details: dict[str, str] = {"eventlog": "", "R": "", "output": ""}
        self.filter = widgets.Dropdown(options=list(FILTERS), value=filter, description="state",
                                       layout=widgets.Layout(width="220px"))
        self.summary = widgets.HTML()
        self.header = widgets.HTML()
        self.table = widgets.Select(options=[], rows=10, layout=widgets.Layout(width="100%"))
        self.table.add_class("fluxnb-jobtable")
        self.cancel_button = widgets.Button(description="Cancel", button_style="danger",
                                            icon="times", disabled=True,
                                            tooltip="cancel the selected job (flux cancel)")
        self.message = widgets.HTML()
        self._panes = {k: widgets.HTML() for k in ("eventlog", "R", "output")}
        self.tabs = widgets.Tab(children=list(self._panes.values()), titles=list(self._panes))
        self.children = [widgets.HTML(STYLE),
                         widgets.HBox([self.filter, self.cancel_button, self.summary]),
                         self.header, self.table, self.message, self.tabs]
        self.filter.observe(lambda change: self._redraw(), names="value")
        self.table.observe(self._on_select, names="value")
        self.cancel_button.on_click(self._on_cancel)
        with self._lock:
            self._load(self.h)
            self._redraw()
        self._follow()

    # -- data ---------------------------------------------------------------------------
    def _load(self, h: Flux) -> None:
        jobs = fjob.job_list(h, max_entries=self.max_entries).get_jobs()
        fresh = {int(j["id"]): j for j in jobs}
        for jobid, old in self.jobs.items():
            new = fresh.get(jobid)
            # an event may have told us of a later state than job-list had when it answered
            if new is not None and old.get("state", 0) > new.get("state", 0):
                fresh[jobid] = {**new, "state": old["state"]}
        self.jobs = fresh

    def _on_events(self, h: Flux, transitions: list) -> None:
        self._load(h)
        lagging = False
        for jobid, state, ts in transitions:
            job = self.jobs.get(int(jobid))
            bit = STATE_BITS.get(state, 0)
            if job is not None and bit > job.get("state", 0):
                job["state"] = bit
                lagging = True
        self._redraw()
        if self.selected is not None and any(int(t[0]) == self.selected for t in transitions):
            self._show(h, self.selected)
        if lagging and self._sub is not None:
            self._sub.poke(0.5)

    def visible(self) -> list[dict]:
        """The jobs the filter lets through, newest first."""
        states, results = FILTERS[self.filter.value]
        sel = [j for j in self.jobs.values()
               if j.get("state", 0) & states and (not results or j.get("result", 0) & results)]
        sel.sort(key=lambda j: (j.get("state", 0) != STATE_BITS["INACTIVE"],
                                j.get("t_inactive") or j.get("t_submit", 0)), reverse=True)
        return sel

    def rows(self) -> list[list[str]]:
        """The table as cells (what the widget and :meth:`to_text` show)."""
        now = time.time()
        return [row(j, now) for j in self.visible()]

    def status(self, jobid: int) -> str:
        """The ST column of ``jobid`` ('' if the widget has not heard of it)."""
        job = self.jobs.get(int(jobid))
        return status_abbrev(job) if job else ""

    # -- view ---------------------------------------------------------------------------
    def _redraw(self) -> None:
        with self._lock:
            jobs = self.visible()
            now = time.time()
            cells = [row(j, now) for j in jobs]
            text = text_table(HEADERS, cells, right=(3, 4, 5)).splitlines()
            self.header.value = f"<pre>{html.escape(text[0])}</pre>"
            options = [(line, int(j["id"])) for line, j in zip(text[1:], jobs)]
            keep = self.selected if self.selected is not None and \
                any(v == self.selected for _, v in options) else None
            if options != list(self.table.options):
                self._programmatic = True   # not a user's selection: do not fetch details
                try:
                    self.table.options = options
                    self.table.value = keep
                finally:
                    self._programmatic = False
            counts = self._counts()
            self.summary.value = (f"<span class='fluxnb-mono'>{len(self.jobs)} jobs: "
                                  + ", ".join(f"{n} {k}" for k, n in counts.items()) + "</span>")
            self._update_cancel()

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
        if change["new"] is None or self._programmatic:
            return
        self.select(change["new"])

    def select(self, jobid: int | str) -> None:
        """Show the eventlog, R and output of ``jobid`` (an int, F58 or any JobID form)."""
        jid = JobID(jobid)
        with self._lock:
            self.selected = jid
            if any(v == int(jid) for _, v in self.table.options) and self.table.value != int(jid):
                self._programmatic = True
                try:
                    self.table.value = int(jid)
                finally:
                    self._programmatic = False
            self._show(self.h, jid)
            self._update_cancel()

    def _show(self, h: Flux, jid: JobID) -> None:
        """Fetch the selected job's eventlog, R and output with ``h`` (whichever thread owns it)."""
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
            d["output"] = output_text(list(fjob.eventlog_entries(h, jid, "output", watch=False)))
            d["output"] = d["output"] or "(no output)"
        except FluxError as exc:
            d["output"] = f"(no output yet: {exc})"
        self.details = d
        for key, pane in self._panes.items():
            pane.value = f"<b class='fluxnb-mono'>{jid.f58}</b><pre>{html.escape(d[key])}</pre>"

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
