"""What every live widget shares: its handle, its event subscription, its static face.

A live widget is an ipywidgets box that (1) loads its data with the kernel's handle
when it is made, (2) registers with the process's event feed
(:mod:`fluxnb.widgets.events`), which calls :meth:`LiveWidget._on_events` from the
feed thread with the feed's own handle, and (3) shows as plain text and static HTML
wherever no kernel runs the widget (a saved notebook, nbconvert, GitHub).
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

import ipywidgets as widgets

from ..runtime.client import Flux
from .events import Subscription, feed

#: CSS for all fluxnb widgets, sent once per widget (a <style> in an HTML widget)
STYLE = """
<style>
.fluxnb-widget select, .fluxnb-widget pre, .fluxnb-mono {
  font-family: var(--jp-code-font-family, monospace); font-size: 12px; }
.fluxnb-widget pre { margin: 0; white-space: pre-wrap; }
.fluxnb-table { border-collapse: collapse; font-family: monospace; font-size: 12px; }
.fluxnb-table td, .fluxnb-table th { padding: 1px 8px; text-align: left; }
</style>
"""


def html_table(headers: list[str], rows: list[list[Any]], caption: str = "") -> str:
    """An HTML table of ``rows`` (each a list of cells), escaped."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table class='fluxnb-table'>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def text_table(headers: list[str], rows: list[list[Any]], right: tuple[int, ...] = ()) -> str:
    """A fixed-width text table, columns separated by two spaces; ``right`` aligns right."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for r in cells:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines) + "\n"


class LiveWidget(widgets.VBox):
    """Base of the live widgets: a VBox following an instance's ``job-state`` events.

    Parameters
    ----------
    handle : Flux, optional
        The kernel-side handle (for loading and for user actions such as cancel);
        defaults to ``fluxnb.Flux()``, the instance of ``$FLUX_URI`` or of this kernel.
    interval : float
        Least time between two redraws driven by events (seconds).
    """

    #: the widget's CSS class, for styling and for finding it in a page
    css_class = "fluxnb-widget"

    def __init__(self, handle: Flux | None = None, interval: float = 0.2, **kwargs: Any):
        super().__init__(**kwargs)
        if handle is None:
            from ..realflux import connect   # a real flux-core instance gets the adapter
            handle = connect()
        self.h = handle
        self.disconnected = False
        self.uri = self.h.uri
        self._lock = threading.RLock()
        self.updated = 0.0          # time.time() of the last refresh
        self.add_class("fluxnb-widget")
        if self.css_class != "fluxnb-widget":
            self.add_class(self.css_class)
        self._interval = interval
        self._sub: Subscription | None = None

    def _follow(self) -> None:
        """Start hearing events (call at the end of a subclass's ``__init__``)."""
        self._sub = feed().subscribe(self.uri, self._feed_callback, self._interval)
        self._sub.on_lost = self._on_lost

    def _on_lost(self) -> None:
        """The instance went away (feed thread): say so on the widget, keep the last view."""
        import ipywidgets
        banner = ipywidgets.HTML(f"<b style='color:#b00' class='fluxnb-disconnected'>disconnected: "
                                 f"the instance at {html.escape(self.uri)} is gone</b>")
        with self._lock:
            self.children = (banner, *self.children)
            # set last: whoever sees the flag (a test, the text face) also sees the banner
            self.disconnected = True

    def _feed_callback(self, h: Flux, transitions: list) -> None:
        with self._lock:
            self._on_events(h, transitions)
            self.updated = time.time()

    def _on_events(self, h: Flux, transitions: list) -> None:
        """Update from ``transitions`` (``[[jobid, state, t], ...]``) using ``h`` (feed thread)."""
        raise NotImplementedError

    @property
    def subscription(self) -> Subscription | None:
        return self._sub

    def refresh(self) -> None:
        """Reload everything now (in the feed thread, like an event would)."""
        if self._sub is not None:
            self._sub.poke(0.0)

    def close(self) -> None:
        """Stop following events and close the widget's views."""
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        super().close()

    # -- the static face -----------------------------------------------------------------
    def to_text(self) -> str:
        """What the widget shows, as plain text."""
        raise NotImplementedError

    def to_html(self) -> str:
        """What the widget shows, as static HTML (no kernel, no JavaScript needed)."""
        return f"<pre>{html.escape(self.to_text())}</pre>"

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        data = super()._repr_mimebundle_(**kwargs) or {}
        data = dict(data)
        data["text/plain"] = ("disconnected\n" if getattr(self, "disconnected", False) else "") \
            + self.to_text()
        data["text/html"] = self.to_html()
        return data

    def __repr__(self) -> str:
        return self.to_text().rstrip("\n")
