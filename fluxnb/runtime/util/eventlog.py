"""RFC 18 eventlogs: one compact JSON object per line, each ``\\n`` terminated.

Each entry has a ``timestamp`` (seconds since the epoch, > 0), a ``name``
and an optional ``context`` object. Job eventlogs (RFC 21) live in the KVS
and are only ever appended to.

This module encodes and strictly decodes eventlogs, and formats entries the
way ``flux job eventlog`` does (flux-core's libeventlog ``formatter.c``).

Examples
--------
>>> line = encode_event("submit", {"userid": 1000, "urgency": 16}, timestamp=1696453645.123456)
>>> line
'{"timestamp":1696453645.123456,"name":"submit","context":{"userid":1000,"urgency":16}}\\n'
>>> format_event(decode(line)[0])
'1696453645.123456 submit userid=1000 urgency=16'
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
TYPE_CHECKING = False  # not typing's: a `flux` command would import typing for it
if TYPE_CHECKING:
    from datetime import datetime, tzinfo
    from typing import Any, Literal

__all__ = [
    "EventlogFormatter",
    "create_entry",
    "decode",
    "decode_entry",
    "encode",
    "encode_entry",
    "encode_event",
    "format_event",
    "format_eventlog",
    "validate_entry",
]

if TYPE_CHECKING:  # aliases for annotations only (which are strings at run time)
    Entry = dict[str, Any]
    EntryFormat = Literal["text", "json"]
    TimeFormat = Literal["raw", "iso", "offset", "human"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# ANSI colors of flux-core's formatter (src/common/libutil/ansi_color.h).
_RESET = "\x1b[0m"
_COLOR_NAME = "\x1b[33m"                 # yellow
_COLOR_TIME = "\x1b[32m"                 # green
_COLOR_TIMEBREAK = "\x1b[1m\x1b[32m"     # bold green
_COLOR_KEY = "\x1b[34m"                  # blue
_COLOR_VALUE = "\x1b[35m"                # magenta
_COLOR_VALUE_NUM = "\x1b[37m"            # gray
_COLOR_EXCEPTION = "\x1b[1m\x1b[31m"     # bold red


def _dumps(value: Any) -> str:
    # Compact and UTF-8 as-is, like jansson's JSON_COMPACT.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _entry_problem(entry: Any) -> str | None:
    """What makes ``entry`` an invalid RFC 18 entry, or None."""
    if not isinstance(entry, dict):
        return f"entry is a JSON {type(entry).__name__}, not an object"
    if "timestamp" not in entry:
        return "missing 'timestamp'"
    ts = entry["timestamp"]
    if not _is_number(ts):
        return f"'timestamp' must be a number, not {ts!r}"
    if not math.isfinite(ts) or ts <= 0:
        return f"'timestamp' must be greater than zero, not {ts!r}"
    if "name" not in entry:
        return "missing 'name'"
    name = entry["name"]
    if not isinstance(name, str):
        return f"'name' must be a string, not {name!r}"
    if not name:
        return "'name' is empty"
    if "context" in entry and not isinstance(entry["context"], dict):
        return f"'context' must be an object, not {entry['context']!r}"
    return None


def validate_entry(entry: Any) -> None:
    """Raise ValueError naming the problem if ``entry`` is not RFC 18.

    >>> validate_entry({"timestamp": 1.0, "name": "x", "context": []})
    Traceback (most recent call last):
    ...
    ValueError: invalid eventlog entry: 'context' must be an object, not []
    """
    problem = _entry_problem(entry)
    if problem:
        raise ValueError(f"invalid eventlog entry: {problem}")


def create_entry(name: str, context: Mapping[str, Any] | None = None,
                 timestamp: float | None = None) -> Entry:
    """A new entry dict; ``timestamp`` defaults to now.

    >>> create_entry("clean", timestamp=42.0)
    {'timestamp': 42.0, 'name': 'clean'}
    """
    if timestamp is None:
        timestamp = time.time()
    entry: Entry = {"timestamp": timestamp, "name": name}
    if context is not None:
        if not isinstance(context, Mapping):
            raise ValueError(
                f"invalid eventlog entry: 'context' must be a mapping, not {context!r}"
            )
        entry["context"] = dict(context)
    validate_entry(entry)
    return entry


def encode_entry(entry: Mapping[str, Any]) -> str:
    """One entry as a compact JSON line ending in ``\\n``."""
    validate_entry(dict(entry))
    try:
        return _dumps(dict(entry)) + "\n"
    except (TypeError, ValueError) as e:
        raise ValueError(f"invalid eventlog entry '{entry.get('name')}': {e}") from None


def encode_event(name: str, context: Mapping[str, Any] | None = None,
                 timestamp: float | None = None) -> str:
    """Create an entry and encode it as one eventlog line (``\\n`` terminated).

    Parameters
    ----------
    name : str
        Event name (RFC 21 names for job eventlogs: ``submit``, ``alloc``...).
    context : mapping, optional
        JSON-serializable event data.
    timestamp : float, optional
        Seconds since the epoch; now if omitted.

    Examples
    --------
    >>> encode_event("finish", {"status": 0}, timestamp=1552593348.090927)
    '{"timestamp":1552593348.090927,"name":"finish","context":{"status":0}}\\n'
    """
    return encode_entry(create_entry(name, context, timestamp))


def encode(entries: Iterable[Mapping[str, Any]]) -> str:
    """A whole eventlog: each entry encoded and concatenated."""
    return "".join(encode_entry(e) for e in entries)


def _decode_line(line: str, where: str) -> Entry:
    try:
        entry = json.loads(line)
    except ValueError as e:
        raise ValueError(f"{where}: not valid JSON: {e}") from None
    problem = _entry_problem(entry)
    if problem:
        raise ValueError(f"{where}: {problem}")
    return entry


def decode_entry(line: str) -> Entry:
    """Decode one entry; a single trailing ``\\n`` is allowed.

    >>> decode_entry('{"timestamp":42.0,"name":"foo"}\\n')
    {'timestamp': 42.0, 'name': 'foo'}
    """
    body = line[:-1] if line.endswith("\n") else line
    if "\n" in body:
        raise ValueError("eventlog entry: contains an embedded newline")
    if not body:
        raise ValueError("eventlog entry: empty")
    return _decode_line(body, "eventlog entry")


def decode(text: str) -> list[Entry]:
    """Decode a whole eventlog into a list of entries.

    ``""`` is an empty eventlog. Every line must be one valid entry and end
    in ``\\n``.

    Raises
    ------
    ValueError
        Naming the (1-based) line and its problem.

    Examples
    --------
    >>> decode('{"timestamp":42.0,"name":"foo"}\\n{"timestamp":43.5,"name":"bar"}\\n')[1]
    {'timestamp': 43.5, 'name': 'bar'}
    >>> decode('{"timestamp":42.0}\\n')
    Traceback (most recent call last):
    ...
    ValueError: eventlog line 1: missing 'name'
    """
    if not isinstance(text, str):
        raise TypeError(f"eventlog must be a str, not {type(text).__name__}")
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1]:
        raise ValueError(f"eventlog line {len(lines)}: not terminated by a newline")
    entries = []
    for i, line in enumerate(lines[:-1], start=1):
        if not line:
            raise ValueError(f"eventlog line {i}: empty line")
        entries.append(_decode_line(line, f"eventlog line {i}"))
    return entries


class EventlogFormatter:
    """Render entries as ``flux job eventlog`` does.

    The formatter keeps state across a sequence of entries, as flux-core's
    does: ``offset`` times count from the first entry seen (or ``t0``), and
    ``human`` times print a ``[Mon DD HH:MM]`` break at each new minute and
    ``[  +S.SSSSSS]`` seconds since that break otherwise.

    Parameters
    ----------
    format : {"text", "json"}
        ``json`` prints each entry as its compact RFC 18 JSON.
    time_format : {"raw", "iso", "offset", "human"}
        ``reltime`` is accepted as a synonym of ``human``.
    color : bool
        ANSI colors, as ``--color=always``.
    tz : tzinfo, optional
        Time zone for ``iso`` and ``human``; the local zone if None, as in
        flux-core. UTC prints as ``Z``.
    t0 : float, optional
        Origin of ``offset`` times.

    Examples
    --------
    >>> evf = EventlogFormatter(time_format="offset")
    >>> evf.format({"timestamp": 10.5, "name": "submit"})
    '0.000000 submit'
    >>> evf.format({"timestamp": 11.0, "name": "start"})
    '0.500000 start'
    """

    def __init__(self, format: EntryFormat = "text", time_format: str = "raw",
                 color: bool = False, tz: tzinfo | None = None,
                 t0: float | None = None) -> None:
        fmt = format.lower()
        if fmt not in ("text", "json"):
            raise ValueError(f"invalid eventlog format '{format}': use 'text' or 'json'")
        tf = time_format.lower()
        if tf == "reltime":
            tf = "human"
        if tf not in ("raw", "iso", "offset", "human"):
            raise ValueError(
                f"invalid timestamp format '{time_format}': "
                "use 'raw', 'iso', 'offset' or 'human'"
            )
        self.format_name = fmt
        self.time_format = tf
        self.color = color
        self.tz = tz
        self.t0 = t0
        self._last_minute: tuple[int, int, int, int, int] | None = None
        self._last_ts = 0.0

    def reset(self) -> None:
        """Forget ``t0`` and the last minute break, to start a new eventlog."""
        self.t0 = None
        self._last_minute = None
        self._last_ts = 0.0

    def _c(self, color: str) -> str:
        return color if self.color else ""

    def _localtime(self, sec: int) -> datetime:
        from datetime import datetime   # only the human formats need it
        if self.tz is None:
            return datetime.fromtimestamp(sec).astimezone()
        return datetime.fromtimestamp(sec, self.tz)

    def _human(self, ts: float) -> str:
        try:
            dt = self._localtime(int(ts)) if ts >= 0 else None
        except (OverflowError, OSError, ValueError):
            dt = None
        if dt is None:
            return f"{self._c(_COLOR_TIME)}[{ts:+11.6f}]{self._c(_RESET)}"
        minute = (dt.year, dt.month, dt.day, dt.hour, dt.minute)
        if minute == self._last_minute:
            return f"{self._c(_COLOR_TIME)}[{ts - self._last_ts:+11.6f}]{self._c(_RESET)}"
        self._last_minute = minute
        self._last_ts = ts
        return (f"{self._c(_COLOR_TIMEBREAK)}[{_MONTHS[dt.month - 1]}{dt.day:02d} "
                f"{dt.hour:02d}:{dt.minute:02d}]{self._c(_RESET)}")

    def _iso(self, ts: float) -> str:
        sec = int(ts)
        usec = int((ts - sec) * 1e6)  # truncated, as flux-core does
        dt = self._localtime(sec)
        from datetime import timedelta
        off = dt.utcoffset() or timedelta(0)
        if off == timedelta(0):
            tz = "Z"
        else:
            sign = "-" if off < timedelta(0) else "+"
            mins = abs(int(off.total_seconds())) // 60
            tz = f"{sign}{mins // 60:02d}:{mins % 60:02d}"
        return f"{dt:%Y-%m-%dT%H:%M:%S}.{usec:06d}{tz}"

    def timestamp(self, ts: float) -> str:
        """Render one timestamp in this formatter's time format."""
        tf = self.time_format
        if tf == "human":
            return self._human(ts)
        if tf == "iso":
            text = self._iso(ts)
        elif tf == "offset":
            if self.t0 is None:
                self.t0 = ts
            text = f"{ts - self.t0:f}"
        else:
            text = f"{ts:f}"
        return f"{self._c(_COLOR_TIME)}{text}{self._c(_RESET)}"

    def format(self, entry: Mapping[str, Any]) -> str:
        """One entry as a line of text, without the trailing newline.

        Context values print as compact JSON, so strings are quoted:
        ``1552593348.092830 release ranks="all" final=true``.
        """
        problem = _entry_problem(dict(entry) if isinstance(entry, Mapping) else entry)
        if problem:
            raise ValueError(f"invalid eventlog entry: {problem}")
        if self.format_name == "json":
            return _dumps(dict(entry))
        name = entry["name"]
        name_color = _COLOR_EXCEPTION if name == "exception" else _COLOR_NAME
        parts = [self.timestamp(entry["timestamp"]),
                 f"{self._c(name_color)}{name}{self._c(_RESET)}"]
        for key, value in (entry.get("context") or {}).items():
            vcolor = _COLOR_VALUE_NUM if _is_number(value) else _COLOR_VALUE
            parts.append(f"{self._c(_COLOR_KEY)}{key}{self._c(_RESET)}="
                         f"{self._c(vcolor)}{_dumps(value)}{self._c(_RESET)}")
        return " ".join(parts)


def format_event(entry: Mapping[str, Any], format: EntryFormat = "text",
                 time_format: str = "raw", t0: float | None = None,
                 *, color: bool = False, tz: tzinfo | None = None) -> str:
    """Format one entry as ``flux job eventlog`` prints it (no newline).

    ``offset`` counts from ``t0`` (the entry's own time if None). Being
    stateless, ``human`` always prints the minute break; use
    :class:`EventlogFormatter` or :func:`format_eventlog` for a sequence.

    Examples
    --------
    >>> e = {"timestamp": 1696453645.123456, "name": "submit",
    ...      "context": {"userid": 1000, "urgency": 16, "flags": 0, "version": 1}}
    >>> format_event(e)
    '1696453645.123456 submit userid=1000 urgency=16 flags=0 version=1'
    >>> from datetime import timezone
    >>> format_event(e, time_format="iso", tz=timezone.utc)
    '2023-10-04T21:07:25.123456Z submit userid=1000 urgency=16 flags=0 version=1'
    >>> format_event(e, time_format="offset")
    '0.000000 submit userid=1000 urgency=16 flags=0 version=1'
    """
    return EventlogFormatter(format, time_format, color=color, tz=tz, t0=t0).format(entry)


def format_eventlog(entries: Iterable[Mapping[str, Any]], format: EntryFormat = "text",
                    time_format: str = "raw", *, color: bool = False,
                    tz: tzinfo | None = None) -> str:
    """Format a sequence of entries, one ``\\n``-terminated line each.

    >>> log = [{"timestamp": 100.0, "name": "submit"}, {"timestamp": 100.25, "name": "alloc"}]
    >>> print(format_eventlog(log, time_format="offset"), end="")
    0.000000 submit
    0.250000 alloc
    """
    evf = EventlogFormatter(format, time_format, color=color, tz=tz)
    return "".join(evf.format(e) + "\n" for e in entries)
