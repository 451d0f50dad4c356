"""fluxnb.widgets: live views of an instance for Jupyter, driven by its events.

``JobBrowser`` (a live ``flux jobs``), ``ResourceBrowser`` (the resource graph,
free / allocated / down) and ``SubmitProgress`` (a bulk submission followed to
completion). All share one event thread per process (:mod:`fluxnb.widgets.events`)
and show as text and static HTML where no kernel runs them.

Examples
--------
>>> import fluxnb.widgets  # doctest: +SKIP
>>> fluxnb.widgets.JobBrowser()  # doctest: +SKIP
"""

from __future__ import annotations

from .jobbrowser import JobBrowser
from .progress import SubmitProgress
from .resourcebrowser import ResourceBrowser

__all__ = ["JobBrowser", "ResourceBrowser", "SubmitProgress"]

__all__ += ["TraceTimeline"]


def __getattr__(name: str):
    # the trace timeline lives with the tracing code (fluxnb/widgets/timeline.py)
    if name == "TraceTimeline":
        from .timeline import TraceTimeline
        return TraceTimeline
    raise AttributeError(f"module 'fluxnb.widgets' has no attribute {name!r}")
