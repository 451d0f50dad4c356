"""Reading and checking Chrome Trace Event Format files (``.pfw``, ``.json``).

:func:`load` reads the array form (``[...]``) and the object form
(``{"traceEvents": [...]}``), and, as Perfetto and chrome://tracing do, a file cut
short by a process that never reached its exit (no closing ``]``, a trailing comma).
:func:`validate` checks what the format asks of each event, and returns the problems.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from typing import Any, Iterable

REQUIRED = ("name", "ph", "ts", "pid", "tid")
PHASES = set("BEXIbnesftPCMODNR") | {"(", ")"}


def parse(text: str) -> list[dict]:
    """The events of a trace's text (array or object form, possibly unterminated)."""
    text = text.strip()
    if not text:
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # a writer killed before its trailer: close the array (and object) ourselves
        body = text.rstrip().rstrip(",")
        tail = "]" if body.lstrip().startswith("[") else "]}"
        data = json.loads(body + tail)
    if isinstance(data, dict):
        data = data.get("traceEvents", [])
    if not isinstance(data, list):
        raise ValueError("a trace is a JSON array of events or an object with traceEvents")
    return data


def load(*paths: str) -> list[dict]:
    """The events of one or more trace files; directories are searched for ``*.pfw``."""
    events: list[dict] = []
    for path in paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if name.endswith(".pfw"):
                    events.extend(load(os.path.join(path, name)))
            continue
        with open(path, encoding="utf-8") as f:
            try:
                events.extend(parse(f.read()))
            except (ValueError, json.JSONDecodeError) as exc:
                raise ValueError(f"{path}: not a Chrome trace: {exc}") from None
    return events


def validate(events: Iterable[dict[str, Any]]) -> list[str]:
    """What in ``events`` breaks the Trace Event Format (an empty list: nothing).

    Checks that every event has name, ph, ts, pid and tid; that B/E events nest per
    thread (an E ends the innermost open B; Chrome takes the name from the B); that X
    events have a non-negative ``dur``; and that async events (b/e) pair by
    (cat, id, scope), an ``e`` closing an open ``b``.

    Examples
    --------
    >>> validate([{"name": "f", "ph": "X", "ts": 0, "pid": 1, "tid": 1, "dur": 2}])
    []
    >>> validate([{"name": "f", "ph": "B", "ts": 0, "pid": 1, "tid": 1}])
    ['pid 1 tid 1: B f at 0 has no E']
    """
    problems: list[str] = []
    stacks: dict[tuple, list[dict]] = defaultdict(list)
    open_async: dict[tuple, list[dict]] = defaultdict(list)
    evs = list(events)
    for i, ev in enumerate(evs):
        missing = [k for k in REQUIRED if k not in ev]
        if missing:
            problems.append(f"event {i} ({ev.get('name', '?')}): missing {', '.join(missing)}")
            continue
        if ev["ph"] not in PHASES:
            problems.append(f"event {i} ({ev['name']}): unknown phase {ev['ph']!r}")
        if not isinstance(ev["ts"], (int, float)):
            problems.append(f"event {i} ({ev['name']}): ts is not a number")
        if ev["ph"] == "X" and not (isinstance(ev.get("dur"), (int, float)) and ev["dur"] >= 0):
            problems.append(f"event {i} ({ev['name']}): X event without a non-negative dur")
        if ev["ph"] in "be" and "id" not in ev and "id2" not in ev:
            problems.append(f"event {i} ({ev['name']}): async {ev['ph']} event without an id")
    # nesting is a question of time order within a thread (files may interleave threads)
    # (a stable sort: events with equal timestamps keep their file order, as viewers do)
    order = sorted((ev for ev in evs if all(k in ev for k in REQUIRED)), key=lambda e: e["ts"])
    for ev in order:
        ph = ev["ph"]
        if ph in ("B", "E"):
            stack = stacks[(ev["pid"], ev["tid"])]
            if ph == "B":
                stack.append(ev)
            elif not stack:
                problems.append(f"pid {ev['pid']} tid {ev['tid']}: E {ev['name']} at {ev['ts']} "
                                f"with no open B")
            else:
                top = stack.pop()  # an E closes the innermost B, whatever its name
                if ev["ts"] < top["ts"]:
                    problems.append(f"pid {ev['pid']} tid {ev['tid']}: E {ev['name']} at {ev['ts']} "
                                    f"before its B {top['name']} (not nested)")
        elif ph in ("b", "e"):
            key = (ev["pid"], ev.get("cat"), str(ev.get("id", ev.get("id2"))), ev.get("scope"))
            if ph == "b":
                open_async[key].append(ev)
            elif not open_async[key]:
                problems.append(f"async e {ev['name']} id {key[2]} at {ev['ts']} with no open b")
            else:
                open_async[key].pop()
    for (pid, tid), stack in stacks.items():
        for ev in stack:
            problems.append(f"pid {pid} tid {tid}: B {ev['name']} at {ev['ts']} has no E")
    for key, stack in open_async.items():
        for ev in stack:
            problems.append(f"async b {ev['name']} id {key[2]} at {ev['ts']} has no e")
    return problems
