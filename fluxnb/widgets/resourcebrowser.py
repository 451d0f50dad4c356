"""ResourceBrowser: the instance's resources as a sunburst (or treemap), free / allocated / down.

The picture is cluster > node > core | gpu, one leaf per core or gpu, coloured by
what the scheduler says of it (``sched.resource-status``); it is redrawn when jobs
change state (the ``job-state`` event), which is when resources are allocated or freed.

Examples
--------
>>> import fluxnb.widgets  # doctest: +SKIP
>>> fluxnb.widgets.ResourceBrowser(kind="treemap")  # doctest: +SKIP
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Literal

import ipywidgets as widgets
import plotly.graph_objects as go

from ..runtime.client import Flux
from ..runtime.util.idset import IDSet
from ..runtime.util.rv1 import ResourceSet
from .base import STYLE, LiveWidget, html_table, text_table

Kind = Literal["sunburst", "treemap"]
COLORS = {"free": "#4caf50", "allocated": "#ff9800", "down": "#9e9e9e"}
_NODE_COLOR = "#e3f2fd"
_CLUSTER_COLOR = "#ffffff"


@dataclass
class ResourceStatus:
    """The scheduler's view of the resources, resolved to one status per core and gpu.

    Attributes
    ----------
    nodes : list of (rank, host, {"core": {id: status}, "gpu": {id: status}})
    counts : {"core": {"free": n, "allocated": n, "down": n}, "gpu": {...}}
    """

    nodes: list[tuple[int, str, dict[str, dict[int, str]]]] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def from_rpc(cls, status: dict) -> ResourceStatus:
        """Build from a ``sched.resource-status`` response ``{"all", "allocated", "down"}``."""
        all_ = ResourceSet(status["all"])
        alloc = ResourceSet(status["allocated"]).by_rank() if status.get("allocated") else {}
        down = IDSet.decode(status.get("down") or "")
        out = cls(counts={kind: {"free": 0, "allocated": 0, "down": 0} for kind in ("core", "gpu")})
        for rank, children in sorted(all_.by_rank().items()):
            node: dict[str, dict[int, str]] = {}
            for kind, ids in children.items():
                used = alloc.get(rank, {}).get(kind, IDSet())
                for i in ids:
                    st = "down" if rank in down else "allocated" if i in used else "free"
                    node.setdefault(kind, {})[i] = st
                    out.counts.setdefault(kind, {"free": 0, "allocated": 0, "down": 0})[st] += 1
            out.nodes.append((rank, all_.host(rank) or f"rank{rank}", node))
        return out

    def trace_data(self, cluster: str = "cluster") -> dict[str, list[Any]]:
        """ids, labels, parents, values, colors and hover text for a sunburst or treemap."""
        d: dict[str, list[Any]] = {k: [] for k in ("ids", "labels", "parents", "values", "colors", "text")}

        def add(id_: str, label: str, parent: str, value: int, color: str, text: str) -> None:
            for key, v in zip(d, (id_, label, parent, value, color, text)):
                d[key].append(v)

        total = sum(len(ids) for _, _, node in self.nodes for ids in node.values())
        add(cluster, cluster, "", total, _CLUSTER_COLOR, self.summary())
        for rank, host, node in self.nodes:
            sts = [st for ids in node.values() for st in ids.values()]
            color = COLORS["down"] if sts and all(s == "down" for s in sts) else _NODE_COLOR
            busy = sum(s == "allocated" for s in sts)
            add(host, host, cluster, len(sts), color, f"rank {rank}: {busy}/{len(sts)} allocated")
            for kind, ids in node.items():
                for i, st in ids.items():
                    add(f"{host}/{kind}{i}", f"{kind}{i}", host, 1, COLORS[st], st)
        return d

    def summary(self) -> str:
        """One line per resource kind, e.g. ``core: 12 free, 4 allocated, 0 down``."""
        return "; ".join(f"{kind}: " + ", ".join(f"{n} {st}" for st, n in c.items())
                         for kind, c in self.counts.items() if sum(c.values()))


class ResourceBrowser(LiveWidget):
    """The instance's resource graph, coloured free / allocated / down, redrawn on job events.

    Parameters
    ----------
    handle : Flux, optional
        Defaults to ``fluxnb.Flux()``.
    kind : {"sunburst", "treemap"}
        How to draw the graph (a toggle on the widget switches it).

    Attributes
    ----------
    status : ResourceStatus
        The last resource status heard (``status.counts["core"]["allocated"]``...).
    figure : plotly.graph_objects.FigureWidget
        The live figure (a static ``go.Figure`` in an Output widget without anywidget).
    """

    css_class = "fluxnb-resourcebrowser"

    def __init__(self, handle: Flux | None = None, kind: Kind = "sunburst", interval: float = 0.2,
                 height: int = 420):
        super().__init__(handle, interval)
        if kind not in ("sunburst", "treemap"):
            raise ValueError(f"ResourceBrowser: kind must be 'sunburst' or 'treemap', not {kind!r}")
        self.status = ResourceStatus()
        self.kind = widgets.ToggleButtons(options=["sunburst", "treemap"], value=kind,
                                          style={"button_width": "90px"})
        self.summary = widgets.HTML()
        legend = " ".join(f"<span style='color:{c}'>&#9632;</span> {k}" for k, c in COLORS.items())
        self.legend = widgets.HTML(f"<span class='fluxnb-mono'>{legend}</span>")
        self._height = height
        try:
            self.figure = go.FigureWidget()
            self._output = None
        except ImportError:  # plotly >= 6 needs anywidget for FigureWidget: draw statically
            self.figure = go.Figure()
            self._output = widgets.Output()
        self._layout_figure()
        view = self._output if self._output is not None else self.figure
        self.children = [widgets.HTML(STYLE), widgets.HBox([self.kind, self.legend]), self.summary, view]
        self.kind.observe(lambda change: self._redraw(), names="value")
        with self._lock:
            self._load(self.h)
            self._redraw()
        self._follow()

    def _layout_figure(self) -> None:
        self.figure.update_layout(margin=dict(t=10, l=10, r=10, b=10), height=self._height,
                                  uirevision="fluxnb")

    # -- data -------------------------------------------------------------------------
    def _load(self, h: Flux) -> None:
        self.status = ResourceStatus.from_rpc(h.rpc("sched.resource-status", {}, nodeid=0).get())

    def _on_events(self, h: Flux, transitions: list) -> None:
        self._load(h)
        self._redraw()

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        """``{"core": {"free": n, "allocated": n, "down": n}, "gpu": {...}}``."""
        return self.status.counts

    # -- view -------------------------------------------------------------------------
    def _trace(self) -> go.Sunburst | go.Treemap:
        d = self.status.trace_data()
        common = dict(ids=d["ids"], labels=d["labels"], parents=d["parents"], values=d["values"],
                      branchvalues="total", marker=dict(colors=d["colors"]), hovertext=d["text"],
                      hoverinfo="label+text")
        if self.kind.value == "treemap":
            return go.Treemap(**common, maxdepth=3)
        return go.Sunburst(**common, maxdepth=3, insidetextorientation="radial")

    def _redraw(self) -> None:
        with self._lock:
            self.summary.value = f"<span class='fluxnb-mono'>{html.escape(self.status.summary())}</span>"
            trace = self._trace()
            fig = self.figure
            if fig.data and fig.data[0].type == trace.type:
                with fig.batch_update():
                    fig.data[0].update(ids=trace.ids, labels=trace.labels, parents=trace.parents,
                                       values=trace.values, marker=trace.marker, hovertext=trace.hovertext)
            else:
                with fig.batch_update():
                    fig.data = []
                    fig.add_trace(trace)
            if self._output is not None:
                from IPython.display import display
                self._output.clear_output(wait=True)
                with self._output:
                    display(fig)

    # -- static face ------------------------------------------------------------------------
    def rows(self) -> list[list[Any]]:
        """One row per node: host, rank, then free/allocated/down cores and gpus."""
        out = []
        for rank, host, node in self.status.nodes:
            cells: list[Any] = [host, rank]
            for kind in ("core", "gpu"):
                sts = list(node.get(kind, {}).values())
                cells.append(f"{sts.count('free')}/{sts.count('allocated')}/{sts.count('down')}")
            out.append(cells)
        return out

    def to_text(self) -> str:
        try:
            status = self.status
        except AttributeError:
            return "ResourceBrowser()"
        headers = ["HOST", "RANK", "CORES free/alloc/down", "GPUS free/alloc/down"]
        return status.summary() + "\n" + text_table(headers, self.rows(), right=(1,))

    def to_html(self) -> str:
        try:
            status = self.status
        except AttributeError:
            return "<pre>ResourceBrowser()</pre>"
        headers = ["HOST", "RANK", "CORES free/alloc/down", "GPUS free/alloc/down"]
        table = html_table(headers, self.rows(), caption=status.summary())
        fig = go.Figure(data=[self._trace()], layout=dict(margin=dict(t=10, l=10, r=10, b=10),
                                                          height=self._height))
        return fig.to_html(include_plotlyjs="cdn", full_html=False) + table
