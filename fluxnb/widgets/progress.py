"""SubmitProgress: follow a bulk submission to completion, counted by state, with jobs/s.

Examples
--------
>>> from fluxnb.job import JobspecV1, submit  # doctest: +SKIP
>>> ids = [submit(h, JobspecV1.from_command(["true"])) for _ in range(100)]  # doctest: +SKIP
>>> fluxnb.widgets.SubmitProgress(ids, handle=h)  # doctest: +SKIP
"""

from __future__ import annotations

import html
import threading
import time
from typing import Iterable

import ipywidgets as widgets

from ..job import job_list
from ..runtime.client import Flux
from ..runtime.job.jobid import JobID
from ..runtime.job.states import STATE_BITS
from .base import STYLE, LiveWidget

_PENDING = STATE_BITS["NEW"] | STATE_BITS["DEPEND"] | STATE_BITS["PRIORITY"] | STATE_BITS["SCHED"]
_RUNNING = STATE_BITS["RUN"] | STATE_BITS["CLEANUP"]
_INACTIVE = STATE_BITS["INACTIVE"]


class SubmitProgress(LiveWidget):
    """A progress bar over ``jobids``: submitted, pending, running, complete and jobs/s.

    Parameters
    ----------
    jobids : iterable of int, optional
        The jobs to follow; :meth:`add` more while a bulk submission goes on.
    handle : Flux, optional
        Defaults to ``fluxnb.Flux()``.

    Attributes
    ----------
    states : dict
        ``jobid -> state bit`` of every job followed.
    """

    css_class = "fluxnb-submitprogress"

    def __init__(self, jobids: Iterable[int] = (), handle: Flux | None = None, interval: float = 0.2,
                 description: str = "jobs"):
        super().__init__(handle, interval)
        self.states: dict[int, int] = {}
        self.failed = 0               # inactive with a result other than COMPLETED
        self.t_start = time.time()
        self.t_done: float | None = None
        self._done = threading.Event()
        self._reload = True
        self.bar = widgets.IntProgress(value=0, min=0, max=1, description=description,
                                       bar_style="info", layout=widgets.Layout(width="60%"))
        self.label = widgets.HTML()
        self.children = [widgets.HTML(STYLE), widgets.HBox([self.bar, self.label])]
        self.add(*jobids)
        self._follow()

    def add(self, *jobids: int) -> None:
        """Follow more jobs; their states are looked up soon, once per burst of ``add``."""
        with self._lock:
            for jobid in jobids:
                self.states.setdefault(int(JobID(jobid)), STATE_BITS["NEW"])
            if jobids:
                self._done.clear()
                self.t_done = None
                # events of these jobs may have passed before they were added: look them up
                # (in the feed thread, coalesced, so adding 10k jobs one by one stays cheap)
                self._reload = True
                if self._sub is not None:
                    self._sub.poke(self._interval)
            self._redraw()

    # -- data ---------------------------------------------------------------------------
    def _load(self, h: Flux) -> None:
        if not self.states or all(s == _INACTIVE for s in self.states.values()):
            return
        failed = 0
        for job in job_list(h, max_entries=0, attrs=["state", "result"]).get_jobs():
            jobid = int(job["id"])
            if jobid in self.states:
                self.states[jobid] = max(self.states[jobid], int(job.get("state", 0)))
                failed += job.get("state") == _INACTIVE and job.get("result", 1) != 1
        self.failed = failed

    def _count_failed(self, h: Flux) -> None:
        jobs = job_list(h, max_entries=0, attrs=["result"], states=_INACTIVE).get_jobs()
        self.failed = sum(1 for j in jobs
                          if int(j["id"]) in self.states and j.get("result", 1) != 1)

    def _on_events(self, h: Flux, transitions: list) -> None:
        if self._reload or not transitions:   # first call, new jobs, or a refresh
            self._reload = False
            self._load(h)
        ended = False
        for jobid, state, _ts in transitions:
            jobid = int(jobid)
            if jobid in self.states:
                bit = STATE_BITS.get(state, 0)
                if bit > self.states[jobid]:
                    self.states[jobid] = bit
                    ended = ended or bit == _INACTIVE
        if ended:
            self._count_failed(h)
        self._redraw()

    def counts(self) -> dict[str, int]:
        """``{"submitted", "pending", "running", "complete"}`` (complete: inactive, any result)."""
        c = {"submitted": len(self.states), "pending": 0, "running": 0, "complete": 0}
        for st in self.states.values():
            c["pending" if st & _PENDING else "running" if st & _RUNNING else "complete"] += 1
        return c

    def rate(self) -> float:
        """Jobs completed per second since the widget was made."""
        c = self.counts()["complete"]
        end = self.t_done or time.time()
        return c / max(end - self.t_start, 1e-6)

    @property
    def done(self) -> bool:
        return bool(self.states) and all(s == _INACTIVE for s in self.states.values())

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every job followed is inactive; False on timeout."""
        return self._done.wait(timeout)

    # -- view -----------------------------------------------------------------------------
    def _redraw(self) -> None:
        with self._lock:
            c = self.counts()
            if self.done and self.t_done is None:
                self.t_done = time.time()
            self.bar.max = max(1, c["submitted"])
            self.bar.value = c["complete"]
            self.bar.bar_style = ("danger" if self.failed else "success") if self.done else "info"
            self.label.value = f"<span class='fluxnb-mono'>{html.escape(self.to_text().strip())}</span>"
            if self.done:
                self._done.set()

    def to_text(self) -> str:
        try:
            c = self.counts()
        except AttributeError:
            return "SubmitProgress()"
        text = (f"{c['complete']}/{c['submitted']} complete: {c['pending']} pending, "
                f"{c['running']} running, {self.rate():.1f} jobs/s")
        if self.failed:
            text += f", {self.failed} failed"
        return text + "\n"

    def to_html(self) -> str:
        c = self.counts()
        pct = 100.0 * c["complete"] / max(1, c["submitted"])
        bar = (f"<div style='width:300px;border:1px solid #999;height:12px'>"
               f"<div style='width:{pct:.0f}%;background:#4caf50;height:12px'></div></div>")
        return bar + f"<pre>{html.escape(self.to_text())}</pre>"
