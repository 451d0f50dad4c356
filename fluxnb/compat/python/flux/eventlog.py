"""``flux.eventlog``: eventlog entries (RFC 18) and flux-core's formatter,
over :mod:`fluxnb.runtime.util.eventlog`."""

from __future__ import annotations

import json
import sys

from fluxnb.runtime.util import eventlog as _ev

__all__ = ["EventLogEvent", "EventLogFormatter"]


class EventLogEvent(dict):
    """One eventlog entry (a dict) from a dict or its JSON line; ``context``
    is always present. Prints as ``ts: name {context}``.

    >>> print(EventLogEvent('{"timestamp": 1.5, "name": "memo", "context": {"x": "Ω"}}'))
    1.50000: memo {'x': 'Ω'}
    """

    def __init__(self, event):
        if isinstance(event, (str, bytes)):
            event = json.loads(event)
        super().__init__(event)
        self.setdefault("context", {})

    def __str__(self):
        return f"{self.timestamp:<0.5f}: {self.name} {self.context}"

    @property
    def name(self):
        return self["name"]

    @property
    def timestamp(self):
        return self["timestamp"]

    @property
    def context(self):
        return self["context"]

    @property
    def context_string(self):
        if not self.context:
            return ""
        return json.dumps(self.context, ensure_ascii=False, separators=(",", ":"),
                          sort_keys=True)


class _Formatter(_ev.EventlogFormatter):
    """fluxnb's formatter with flux-core's Python column widths: raw times
    right-aligned in 11 columns, offsets in 15."""

    def timestamp(self, ts):
        if self.time_format not in ("raw", "offset"):
            return super().timestamp(ts)
        if self.t0 is None:
            self.t0 = ts
        text = f"{ts:11.6f}" if self.time_format == "raw" else f"{ts - self.t0:15.6f}"
        return f"{self._c(_ev._COLOR_TIME)}{text}{self._c(_ev._RESET)}"


class EventLogFormatter:
    """Formats entries as ``flux job eventlog`` prints them.

    ``format`` is ``text`` or ``json``; ``timestamp_format`` ``raw``, ``iso``,
    ``offset``, ``human`` (or ``reltime``); ``color`` ``auto``, ``always`` or
    ``never``. Bad values raise ValueError.
    """

    def __init__(self, format="text", timestamp_format="raw", color="auto"):
        if format not in ("text", "json"):
            raise ValueError(f"Invalid entry_fmt: {format}")
        if timestamp_format not in ("raw", "human", "reltime", "iso", "offset"):
            raise ValueError(f"Invalid timestamp_fmt: {timestamp_format}")
        if color not in ("always", "never", "auto"):
            raise ValueError(f"Invalid color: {color}")
        use_color = color == "always" or (color == "auto" and sys.stdout.isatty())
        self.entry_format = format
        self.timestamp_format = "human" if timestamp_format == "reltime" else timestamp_format
        self.color = use_color
        self._impl = _Formatter(format, self.timestamp_format, color=use_color)

    def format(self, entry):
        """One entry (dict or EventLogEvent) as one line of text (no newline);
        ``json`` leaves out an empty context."""
        entry = dict(EventLogEvent(entry))
        if self.entry_format == "json":
            if not entry.get("context"):
                entry.pop("context", None)
            return json.dumps(entry, separators=(",", ":"), ensure_ascii=False)
        return self._impl.format(entry)
