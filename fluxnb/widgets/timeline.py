"""``TraceTimeline``: jobs by rank, annotated functions and utilization, on one time axis.

A plotly figure widget drawn from a trace (:func:`fluxnb.trace.export`): each job is
a bar from ``alloc`` to ``free`` on every rank it held (one row per instance and rank,
a colour per instance), each PerfFlowAspect-annotated call a bar on its process and
thread, and below them the share of each instance's nodes held by jobs over time.

Examples
--------
>>> from fluxnb.widgets import TraceTimeline          # doctest: +SKIP
>>> TraceTimeline(pfw=["./traces"])                   # doctest: +SKIP
"""

from __future__ import annotations

import argparse
from typing import Any, Iterable

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..runtime.util.idset import IDSet
from ..trace import regions as an

COLORS = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d"]


def _function_spans(events: list[dict]) -> list[tuple[str, str, float, float]]:
    """(row, name, start µs, end µs) of annotated calls: X, B/E per thread, b/e per id."""
    spans = []
    stacks: dict[tuple, list[dict]] = {}
    opened: dict[tuple, list[dict]] = {}
    for ev in sorted((e for e in events if not str(e.get("cat", "")).startswith("job")
                      and e.get("ph") in ("X", "B", "E", "b", "e")), key=lambda e: e["ts"]):
        row = f"pid {ev['pid']} tid {ev['tid']}"
        ph = ev["ph"]
        if ph == "X":
            spans.append((row, ev["name"], ev["ts"], ev["ts"] + ev.get("dur", 0)))
        elif ph == "B":
            stacks.setdefault((ev["pid"], ev["tid"]), []).append(ev)
        elif ph == "E" and stacks.get((ev["pid"], ev["tid"])):
            b = stacks[(ev["pid"], ev["tid"])].pop()
            spans.append((row, b["name"], b["ts"], ev["ts"]))
        elif ph == "b":
            opened.setdefault((ev["pid"], ev.get("cat"), str(ev.get("id"))), []).append(ev)
        elif ph == "e" and opened.get((ev["pid"], ev.get("cat"), str(ev.get("id")))):
            b = opened[(ev["pid"], ev.get("cat"), str(ev.get("id")))].pop()
            spans.append((f"pid {ev['pid']} async", b["name"], b["ts"], ev["ts"]))
    return spans


def timeline_figure(trace: Any, title: str = "trace timeline", figure_class=go.Figure):
    """The timeline as a plotly figure (``figure_class`` go.Figure or go.FigureWidget)."""
    events = an.events_of(trace)
    recs = an.jobs(trace, nested=None)
    fspans = _function_spans(events)
    starts = [r.submit for r in recs] + [s[2] / 1e6 for s in fspans]
    t0 = min(starts) if starts else 0.0
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25],
                        vertical_spacing=0.04, figure=figure_class())
    instances = sorted({r.instance for r in recs}, key=lambda p: (p.count("/"), p))
    rows_order: list[str] = []
    for i, inst in enumerate(instances):
        xs, bases, ys, texts = [], [], [], []
        for r in recs:
            if r.instance != inst or not r.held:
                continue
            a, b = r.held
            for rank in IDSet(r.ranks or ""):
                row = f"{inst or '.'} rank {rank}"
                xs.append(b - a)
                bases.append(a - t0)
                ys.append(row)
                texts.append(f"{r.name} {r.jobid} ({inst or 'root'}) " +
                             " ".join(f"{k} {v:.3f}s" for k, v in r.durations().items()))
        rows_order += sorted(set(ys), key=lambda s: (s.split(" rank ")[0], int(s.split()[-1])))
        fig.add_trace(go.Bar(x=xs, base=bases, y=ys, orientation="h", hovertext=texts,
                             hoverinfo="text", marker_color=COLORS[i % len(COLORS)],
                             name=f"jobs of {inst or 'root'}"), row=1, col=1)
        times, nodes, size = an.utilization(trace, instance=inst, nested=None)
        if size:
            tshift = (min(r.submit for r in recs if r.instance == inst) - t0)
            fig.add_trace(go.Scatter(x=[t + tshift for t in times], y=[n / size for n in nodes],
                                     line_shape="hv", mode="lines",
                                     line_color=COLORS[i % len(COLORS)],
                                     name=f"{inst or 'root'} nodes held ({size})"), row=2, col=1)
    if fspans:
        fig.add_trace(go.Bar(x=[(b - a) / 1e6 for _, _, a, b in fspans],
                             base=[a / 1e6 - t0 for _, _, a, _ in fspans],
                             y=[row for row, _, _, _ in fspans], orientation="h",
                             hovertext=[n for _, n, _, _ in fspans], hoverinfo="text",
                             marker_color="#333333", name="annotated functions"), row=1, col=1)
        rows_order = sorted({s[0] for s in fspans}) + rows_order
    fig.update_yaxes(categoryorder="array", categoryarray=list(reversed(rows_order)), row=1, col=1,
                     showticklabels=len(rows_order) <= 64)
    fig.update_yaxes(title_text="held", range=[0, 1.05], row=2, col=1)
    fig.update_xaxes(title_text="seconds since the first submit", row=2, col=1)
    fig.update_layout(title=title, barmode="overlay", bargap=0.1, height=min(900, 260 + 6 * len(rows_order)),
                      legend=dict(orientation="h", y=-0.15), margin=dict(l=10, r=10, t=40, b=10))
    return fig


class TraceTimeline(go.FigureWidget):
    """A live plotly timeline of a trace, or of an instance's jobs now.

    Parameters
    ----------
    trace : dict, list or str, optional
        A trace (from :func:`fluxnb.trace.export`, a list of events or a file path);
        default: export the instance of ``handle`` now.
    handle : Flux, optional
        The instance to export (default ``Flux()``).
    jobids : iterable, optional
        Only these jobs of the top instance.
    pfw : iterable of str
        PerfFlowAspect ``.pfw`` files or directories to merge.
    title : str
        The figure's title.
    """

    def __init__(self, trace: Any = None, handle=None, jobids: Iterable | None = None,
                 pfw: Iterable[str] = (), title: str = "trace timeline"):
        if trace is None:
            from ..trace import export
            trace = export(handle, jobids, True, pfw)
        super().__init__(timeline_figure(trace, title))
        self._trace = trace  # plotly figures accept only private new attributes

    @property
    def source(self) -> Any:
        """The trace drawn."""
        return self._trace

    def to_figure(self) -> go.Figure:
        """A static copy (renders in saved notebooks and exports)."""
        return go.Figure(self)

    @classmethod
    def from_args(cls, argv: list[str]) -> "TraceTimeline":
        """``%flux trace [JOBIDS] [--pfw PATH]... [-i TRACE.json]``, as the magic parses it."""
        p = argparse.ArgumentParser(prog="%flux trace", add_help=False)
        p.add_argument("jobids", nargs="*")
        p.add_argument("--pfw", action="append", default=[])
        p.add_argument("-i", "--input", default=None, help="a written trace file")
        args = p.parse_args(argv)
        if args.input:
            return cls(args.input)
        from ..job import JobID
        ids = [JobID(j) for j in args.jobids] or None
        return cls(None, None, ids, args.pfw)
