"""Plotly figures of Fluence / kube-scheduler runs and of the Fluxion graph (notebook face).

plotly is imported when a figure is drawn, so :mod:`fluxnb.fluence` itself needs
only PyYAML and fluxnb.

Examples
--------
>>> from fluxnb.fluence import load_manifests, build_graph
>>> from fluxnb.fluence.workflows import demo_cluster
>>> d = graph_sunburst_data(build_graph(load_manifests(demo_cluster(1, 1)).cluster))
>>> d["labels"][:4], d["values"][:4]
(['cluster0', 'zone0', 'node0', 'core ×32'], [64, 64, 64, 32])
"""

from __future__ import annotations

from typing import Any, Sequence

from ..runtime.sched.fluxion import ResourceGraph
from .sim import RunResult

__all__ = ["makespan_figure", "spread_figure", "deadlock_figure", "graph_sunburst", "graph_sunburst_data",
           "timeline_figure", "COLORS"]

COLORS = {"kube-scheduler": "#4c78a8", "fluence": "#f58518"}
_TYPE_COLORS = {"cluster": "#ffffff", "zone": "#e3f2fd", "node": "#bbdefb", "core": "#4caf50",
                "gpu": "#9c27b0", "memory": "#ff9800"}


def _go() -> Any:
    import plotly.graph_objects as go
    return go


def _by_scheduler(results: Sequence[RunResult]) -> dict[str, list[RunResult]]:
    out: dict[str, list[RunResult]] = {}
    for r in results:
        out.setdefault(r.scheduler, []).append(r)
    return out


def makespan_figure(results: Sequence[RunResult], height: int = 380) -> Any:
    """Makespan of every run that finished, one box (with its points) per scheduler.

    Runs that got stuck have no makespan: the axis label counts them.
    """
    go = _go()
    fig = go.Figure()
    for name, rs in _by_scheduler(results).items():
        done = [r.makespan for r in rs if r.finished]
        stuck = len(rs) - len(done)
        fig.add_box(y=done, name=f"{name}<br>({stuck} of {len(rs)} stuck)" if stuck else name,
                    boxpoints="all", jitter=0.4, pointpos=0, marker_color=COLORS.get(name),
                    hovertext=[f"seed {r.seed}" for r in rs if r.finished])
    fig.update_layout(title="Workflow makespan over seeds", yaxis_title="makespan (s)", showlegend=False,
                      height=height, margin=dict(t=50, l=60, r=20, b=60))
    return fig


def spread_figure(results: Sequence[RunResult], height: int = 380) -> Any:
    """Nodes and zones each application's pods ran on (every finished application of every run)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("nodes per application", "zones per application"))
    for name, rs in _by_scheduler(results).items():
        apps = [a for r in rs for a in r.apps if a.state == "done"]
        for col, vals in ((1, [a.nodes for a in apps]), (2, [a.zones for a in apps])):
            fig.add_histogram(x=vals, name=name, marker_color=COLORS.get(name), row=1, col=col,
                              showlegend=col == 1, opacity=0.8)
    fig.update_layout(barmode="group", height=height, margin=dict(t=50, l=50, r=20, b=40),
                      yaxis_title="applications")
    fig.update_xaxes(dtick=1)
    return fig


def deadlock_figure(results: Sequence[RunResult], height: int = 320) -> Any:
    """Deadlocked groups (applications holding part of their pods when the run got stuck) per seed."""
    go = _go()
    fig = go.Figure()
    for name, rs in _by_scheduler(results).items():
        fig.add_bar(x=[r.seed for r in rs], y=[len(r.deadlocked) for r in rs], name=name,
                    marker_color=COLORS.get(name))
    fig.update_layout(title="Deadlocked groups per run", xaxis_title="seed", yaxis_title="groups",
                      barmode="group", height=height, margin=dict(t=50, l=50, r=20, b=40))
    fig.update_xaxes(dtick=1)
    return fig


def timeline_figure(run: RunResult, height: int = 320) -> Any:
    """One run: each application waiting (grey: some pods bound, no work yet) then running."""
    go = _go()
    fig = go.Figure()
    end = run.end
    for a in reversed(run.apps):
        started = a.started if a.started is not None else end
        fig.add_bar(y=[a.name], x=[started - a.created], base=[a.created], orientation="h",
                    marker_color="#bdbdbd", name="waiting", showlegend=False,
                    hovertext=f"{a.name}: created {a.created:.1f} s, {a.state}")
        if a.started is not None:
            fig.add_bar(y=[a.name], x=[(a.finished or end) - a.started], base=[a.started], orientation="h",
                        marker_color=COLORS.get(run.scheduler, "#4c78a8"), name="running", showlegend=False,
                        hovertext=f"{a.name}: {a.nodes} nodes, {a.zones} zones, {a.run_time:.0f} s")
    if run.finished:
        title = f"{run.scheduler}, seed {run.seed}: makespan {run.makespan:.0f} s"
    else:
        title = f"{run.scheduler}, seed {run.seed}: stuck at {end:.0f} s, {len(run.deadlocked)} groups deadlocked"
    fig.update_layout(title=title, barmode="overlay", xaxis_title="time (s)", height=height,
                      margin=dict(t=50, l=90, r=20, b=40))
    return fig


def graph_sunburst_data(graph: ResourceGraph) -> dict[str, list]:
    """ids, labels, parents, values and colours of a cluster > zone > node > resource sunburst.

    A node's cores, gpus and memory are one sector each (``core ×32``,
    ``memory 128 GB``); a sector's value is its vertex count.
    """
    d: dict[str, list] = {k: [] for k in ("ids", "labels", "parents", "values", "colors", "text")}
    verts = graph.vertices

    def walk(v: Any, parent: str) -> int:
        vid = v.path()
        kids = [verts[e.dst] for e in v.children()]
        leaves: dict[str, list] = {}
        inner = []
        for k in kids:
            (inner if k.out else leaves.setdefault(k.type, [])).append(k)
        i = len(d["ids"])
        for key, val in zip(d, (vid, v.name, parent, 0, _TYPE_COLORS.get(v.type, "#eeeeee"),
                                _vertex_text(v))):
            d[key].append(val)
        total = 0
        for t, vs in leaves.items():
            n = len(vs)
            size = sum(x.size for x in vs)
            label = f"{t} {size} GB" if t == "memory" else f"{t} ×{n}"
            for key, val in zip(d, (f"{vid}/{t}", label, vid, n, _TYPE_COLORS.get(t, "#eeeeee"),
                                    f"{n} {t} vertices" + (f" of {vs[0].size} GB" if t == "memory" else ""))):
                d[key].append(val)
            total += n
        for k in inner:
            total += walk(k, vid)
        d["values"][i] = total
        return total

    walk(graph.roots["containment"], "")
    return d


def _vertex_text(v: Any) -> str:
    props = ", ".join(f"{k}={val}" for k, val in v.properties.items()) if v.has_properties else ""
    return f"{v.type} {v.name}" + (f" ({props})" if props else "")


def graph_sunburst(graph: ResourceGraph, height: int = 460, maxdepth: int = 4) -> Any:
    """The Fluxion resource graph as a plotly sunburst (click a zone or node to zoom)."""
    go = _go()
    d = graph_sunburst_data(graph)
    fig = go.Figure(go.Sunburst(ids=d["ids"], labels=d["labels"], parents=d["parents"], values=d["values"],
                                branchvalues="total", marker=dict(colors=d["colors"]), hovertext=d["text"],
                                hoverinfo="label+text", maxdepth=maxdepth))
    fig.update_layout(margin=dict(t=10, l=10, r=10, b=10), height=height)
    return fig
