"""Job records and output formats of ``flux jobs`` (flux-core's ``JobInfo`` /
``JobInfoFormat``), shared by the CLI and the notebook layer.

A format is a Python format string over job fields (``{id.f58:>12}``), with
flux's extensions:

- conversions ``!F`` (Flux Standard Duration), ``!H`` (H:MM:SS), ``!d``
  (datetime; ``{t_submit!d:%b%d %R::>12}`` puts the width after ``::``),
  ``!D`` (ISO 8601) and ``!P`` (percentage);
- spec suffixes ``h`` (empty, ``0s``, ``0.0``, ``0:00:00`` or epoch print as
  ``-``) and ``+`` (mark truncation with ``+``);
- field prefixes ``?:`` (drop the column when empty for every job), ``+:``
  (widen the column to its widest value) and ``?+:`` (both).

Examples
--------
>>> job = JobInfo({"id": 1234, "userid": 0, "state": 64, "result": 1, "name": "sleep",
...                "ntasks": 1, "nnodes": 1, "nodelist": "node0", "t_run": 10.0,
...                "t_cleanup": 12.5, "waitstatus": 0})
>>> job.status_abbrev, job.returncode, fsd(job.runtime)
('CD', 0, '2.500s')
>>> headers, rows = format_table([job], "{id.dec} {status_abbrev:>2} {contextual_time!F:>8h}")
>>> headers, rows
(['JOBID', 'ST', 'TIME'], [['1234', 'CD', '2.500s']])
"""

from __future__ import annotations

import json
import math
import os
import re
import string
import time
from datetime import datetime, timedelta

TYPE_CHECKING = False  # not typing's: a `flux` command would import typing for it
if TYPE_CHECKING:
    from typing import Any, Iterable

from ..runtime.job.jobid import JobID

__all__ = ["JobInfo", "OutputFormat", "JobInfoFormat", "NAMED_FORMATS", "HEADINGS", "fsd",
           "format_table", "format_text", "resolve_format"]

STATE_BITS = {"NEW": 1, "DEPEND": 2, "PRIORITY": 4, "SCHED": 8, "RUN": 16, "CLEANUP": 32,
              "INACTIVE": 64}
RESULT_BITS = {"COMPLETED": 1, "FAILED": 2, "CANCELED": 4, "TIMEOUT": 8}
_STATE_NAME = {v: k for k, v in STATE_BITS.items()}
_RESULT_NAME = {v: k for k, v in RESULT_BITS.items()}
_STATE_SINGLE = {"NEW": "N", "DEPEND": "D", "PRIORITY": "P", "SCHED": "S", "RUN": "R",
                 "CLEANUP": "C", "INACTIVE": "I"}
_RESULT_ABBREV = {"COMPLETED": "CD", "FAILED": "F", "CANCELED": "CA", "TIMEOUT": "TO"}
PENDING_BITS = STATE_BITS["DEPEND"] | STATE_BITS["PRIORITY"] | STATE_BITS["SCHED"]
RUNNING_BITS = STATE_BITS["RUN"] | STATE_BITS["CLEANUP"]

#: flux-jobs' named formats
NAMED_FORMATS = {
    "default": ("{id.f58:>12} ?:{queue:<8.8} {username:<8.8} {name:<10.10+} "
                "{status_abbrev:>2.2} {ntasks:>6} {nnodes:>6h} "
                "{contextual_time!F:>8h} {contextual_info}"),
    "long": ("{id.f58:>12} ?:{queue:<8.8} {username:<8.8} {name:<10.10+} "
             "{status:>9.9} {ntasks:>6} {nnodes:>6h} "
             "{t_submit!d:%b%d %R::>12} {t_remaining!F:>12h} "
             "{contextual_time!F:>8h} {contextual_info}"),
    "deps": ("{id.f58:>12} ?:{queue:<8.8} {name:<10.10+} {urgency:<3} "
             "{priority:<12} {state:<8.8} {dependencies}"),
}
FORMAT_DESCRIPTIONS = {
    "default": "Default flux-jobs format string",
    "long": "Extended flux-jobs format string",
    "deps": "Show job urgency, priority, and dependencies",
}

#: field name -> column heading (flux-core's JobInfoFormat.headings)
HEADINGS = {
    "id": "JOBID", "id.dec": "JOBID", "id.hex": "JOBID", "id.f58": "JOBID",
    "id.f58plain": "JOBID", "id.kvs": "JOBID", "id.words": "JOBID", "id.dothex": "JOBID",
    "userid": "UID", "username": "USER", "urgency": "URG", "priority": "PRI",
    "state": "STATE", "state_single": "S", "name": "NAME", "cwd": "CWD", "queue": "QUEUE",
    "ntasks": "NTASKS", "ncores": "NCORES", "duration": "DURATION", "nnodes": "NNODES",
    "expiration": "EXPIRATION", "t_remaining": "T_REMAINING", "ranks": "RANKS",
    "nodelist": "NODELIST", "success": "SUCCESS", "result": "RESULT", "result_abbrev": "RS",
    "t_submit": "T_SUBMIT", "t_depend": "T_DEPEND", "t_run": "T_RUN", "t_cleanup": "T_CLEANUP",
    "t_inactive": "T_INACTIVE", "runtime": "RUNTIME", "status": "STATUS",
    "status_abbrev": "ST", "waitstatus": "WSTATUS", "returncode": "RC",
    "exception.occurred": "EXCEPTION-OCCURRED", "exception.severity": "EXCEPTION-SEVERITY",
    "exception.type": "EXCEPTION-TYPE", "exception.note": "EXCEPTION-NOTE",
    "annotations": "ANNOTATIONS", "dependencies": "DEPENDENCIES", "contextual_info": "INFO",
    "contextual_time": "TIME", "inactive_reason": "INACTIVE-REASON",
    "annotations.sched.t_estimate": "T_ESTIMATE", "annotations.sched.reason_pending": "REASON",
    "annotations.sched.resource_summary": "RESOURCES", "sched": "SCHED",
    "sched.t_estimate": "T_ESTIMATE", "sched.reason_pending": "REASON",
    "sched.resource_summary": "RESOURCES", "user": "USER",
}


def fsd(secs: float) -> str:
    """A duration as ``flux jobs`` shows it: 3 decimals under 10s, else 4 digits.

    >>> fsd(0.0004), fsd(2.5), fsd(42.25), fsd(90), fsd(7200), fsd(math.inf)
    ('0s', '2.500s', '42.25s', '1.5m', '2h', 'inf')
    """
    if math.isinf(secs):
        return "inf"
    if secs < 1.0e-3:
        return "0s"
    if secs < 10.0:
        return f"{secs:.3f}s"
    for limit, div, unit in ((60.0, 1.0, "s"), (3600.0, 60.0, "m"), (86400.0, 3600.0, "h")):
        if secs < limit:
            return f"{secs / div:.4g}{unit}"
    return f"{secs / 86400.0:.4g}d"


def _empty_outputs() -> tuple[str, ...]:
    epoch = datetime.fromtimestamp(0.0).strftime("%FT%T")
    return ("", "0s", "0.0", "0:00:00", "1970-01-01T00:00:00", epoch)


class _Empty:
    """What a missing annotation formats as: nothing, at any depth."""

    def __getattr__(self, attr: str) -> "_Empty":
        return _Empty()

    def __str__(self) -> str:
        return ""

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return "".__format__(spec.rstrip("bcdoxXeEfFgGn%"))


class _Annotations:
    """Dotted access into annotations (``annotations.sched.t_estimate``)."""

    def __init__(self, data: dict):
        self._data = data or {}

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        val = self._data.get(attr, _Empty())
        return _Annotations(val) if isinstance(val, dict) else val

    def __str__(self) -> str:
        return json.dumps(self._data) if self._data else ""

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return str(self).__format__(spec)


class _Exception:
    def __init__(self, info: dict):
        self.occurred = info.get("exception_occurred", "")
        self.severity = info.get("exception_severity", "")
        self.type = info.get("exception_type", "")
        self.note = info.get("exception_note", "")


class _InfoList(list):
    def __str__(self) -> str:
        return ",".join(self)

    def __format__(self, spec: str) -> str:
        return str(self).__format__(spec)


def _username(uid: int) -> str:
    import pwd
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, TypeError):
        return str(uid)


class JobInfo:
    """One ``job-list`` record with flux's derived fields (status, runtime, ...).

    Unset attributes read as flux's defaults (``0.0`` for times, ``""`` for
    the rest), so a format prints an empty cell rather than failing.
    """

    defaults = {"t_depend": 0.0, "t_run": 0.0, "t_cleanup": 0.0, "t_inactive": 0.0,
                "duration": 0.0, "expiration": 0.0, "name": "", "cwd": "", "queue": "",
                "project": "", "bank": "", "ntasks": "", "ncores": "", "nnodes": "",
                "priority": "", "ranks": "", "nodelist": "", "success": "", "waitstatus": "",
                "urgency": "", "userid": "", "t_submit": 0.0}

    def __init__(self, info: dict):
        self._info = dict(info)
        data = dict(self.defaults)
        data.update({k: v for k, v in info.items() if v is not None})
        self.id = JobID(data.pop("id"))
        self.state_id = data.pop("state", 0)
        self.result_id = data.pop("result", "")
        self.exception = _Exception(data)
        self.annotations = _Annotations(data.pop("annotations", {}) or {})
        self.sched = self.annotations.sched
        self.user = self.annotations.user
        self.dependencies = _InfoList(data.pop("dependencies", []) or [])
        self._data = data

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        try:
            return self._data[attr]
        except KeyError:
            raise AttributeError(f"invalid JobInfo attribute '{attr}'") from None

    # -- state, result, status ----------------------------------------------------------
    @property
    def state(self) -> str:
        return _STATE_NAME.get(self.state_id, "")

    @property
    def state_single(self) -> str:
        return _STATE_SINGLE.get(self.state, "")

    @property
    def result(self) -> str:
        return _RESULT_NAME.get(self.result_id, "") if self.result_id != "" else ""

    @property
    def result_abbrev(self) -> str:
        return _RESULT_ABBREV.get(self.result, "")

    @property
    def status(self) -> str:
        return self.state if self.state_id & (PENDING_BITS | RUNNING_BITS | 1) else self.result

    @property
    def status_abbrev(self) -> str:
        return self.state_single if self.state_id & (PENDING_BITS | RUNNING_BITS | 1) \
            else self.result_abbrev

    @property
    def username(self) -> str:
        return _username(self.userid) if self.userid != "" else ""

    # -- times ----------------------------------------------------------------------------
    @property
    def runtime(self) -> float:
        if self.t_cleanup > 0 and self.t_run > 0:
            return self.t_cleanup - self.t_run
        if self.t_run > 0:
            return time.time() - self.t_run
        return 0.0

    @property
    def t_remaining(self) -> float:
        if self.state not in ("RUN",) or not self.expiration:
            return 0.0
        return max(0.0, self.expiration - time.time())

    @property
    def contextual_time(self) -> float:
        """Requested duration while pending, run time after."""
        if self.state in ("PRIORITY", "DEPEND", "SCHED", "NEW"):
            return self.duration
        return self.runtime

    @property
    def contextual_info(self) -> str:
        """Why a pending job waits (or its ETA); the nodelist once it ran."""
        state = self.state
        if state == "PRIORITY":
            return "priority-wait"
        if state == "DEPEND":
            return f"depends:{self.dependencies}"
        if state == "SCHED":
            est = self.sched.t_estimate
            if isinstance(est, (int, float)):
                eta = est - time.time()
                return "eta:now" if eta < 0 else f"eta:{fsd(eta)}"
            if self.urgency == 0:
                return "held"
            if self.priority == 0:
                return "priority-hold"
            return ""
        return self.nodelist

    # -- how it ended -----------------------------------------------------------------------
    @property
    def returncode(self) -> int | str:
        """Exit code; ``-signal`` if killed; -128 if canceled before it ran; "" if active."""
        status = self.waitstatus
        if not isinstance(status, int) or isinstance(status, bool):
            if self.result == "CANCELED":
                return -128
            if self.result in ("FAILED", "TIMEOUT"):
                return 1
            return ""
        if os.WIFSIGNALED(status):
            return -os.WTERMSIG(status)
        return os.WEXITSTATUS(status)

    @property
    def inactive_reason(self) -> str:
        if self.state != "INACTIVE":
            return ""
        result, exc = self.result, self.exception
        if result == "CANCELED":
            return f"Canceled: {exc.note}" if exc.occurred and exc.type == "cancel" and exc.note \
                else "Canceled"
        if result == "TIMEOUT":
            return "Timeout"
        if result == "FAILED":
            if exc.occurred and exc.type != "exec" and exc.severity == 0:
                return f"Exception: type={exc.type}" + (f" note={exc.note}" if exc.note else "")
            rc = self.returncode
            if isinstance(rc, int) and rc < 0:
                import signal
                try:
                    return signal.strsignal(-rc) or f"Signaled {-rc}"
                except ValueError:
                    return f"Signaled {-rc}"
            if rc == 126:
                return "Command invoked cannot execute"
            if rc == 127:
                return "command not found"
        return f"Exit {self.returncode}"

    def to_dict(self) -> dict:
        """What ``flux jobs --json`` prints: set attributes only."""
        out: dict[str, Any] = {"id": int(self.id)}
        for key in ("userid", "urgency", "priority", "t_submit", "t_depend", "t_run",
                    "t_cleanup", "t_inactive", "state", "name", "cwd", "queue", "ntasks",
                    "ncores", "duration", "nnodes", "ranks", "nodelist", "expiration",
                    "waitstatus", "success", "result", "username", "runtime", "status",
                    "returncode", "t_remaining"):
            try:
                val = getattr(self, key)
            except AttributeError:
                continue
            if val == "" or ((key.startswith("t_") or key in ("runtime", "expiration"))
                             and val == 0):
                continue
            out[key] = val
        out["dependencies"] = list(self.dependencies)
        out["annotations"] = self.annotations._data
        exc = self.exception
        out["exception"] = ({"occurred": True, "severity": exc.severity, "type": exc.type,
                             "note": exc.note} if exc.occurred else {"occurred": False})
        return out


# -- the format machinery --------------------------------------------------------------------
class _Datetime(datetime):
    """A datetime whose format spec may carry a width after ``::``."""

    def __format__(self, fmt: str) -> str:
        timefmt, _, spec = fmt.partition("::")
        text = "" if self.timestamp() == 0 else self.strftime(timefmt or "%FT%T")
        if spec.endswith("h"):
            text = text or "-"
            spec = spec[:-1] + "s"
        return format(text, spec) if spec else text


class _Formatter(string.Formatter):
    def convert_field(self, value: Any, conv: str | None) -> Any:
        if conv in ("d", "D", "F", "H", "P") and (value == "" or isinstance(value, _Empty)):
            return _Datetime.fromtimestamp(0.0) if conv == "d" else ""
        if conv == "d":
            return _Datetime.fromtimestamp(value)
        if conv == "D":
            return datetime.fromtimestamp(value).strftime("%FT%T") if value else ""
        if conv == "F":
            return fsd(value)
        if conv == "H":
            value = 1 if 0 < value < 1 else value
            return str(timedelta(seconds=round(value)))
        if conv == "P":
            pct = value * 100
            return f"{pct:.2f}%" if 0 < pct < 1 else f"{pct:.3g}%"
        return super().convert_field(value, conv)

    def format_field(self, value: Any, spec: str) -> str:
        mark = spec.endswith("+")
        if mark:
            spec = spec[:-1]
        if spec.endswith("h") and not isinstance(value, _Datetime):
            value = "-" if str(value) in _empty_outputs() else str(value)
            spec = spec[:-1] + "s"
        out = super().format_field(value, spec)
        if mark and len(out) < len(str(value)):
            out = out[:-1] + "+"
        return out


class _HeaderFormatter(_Formatter):
    def get_field(self, field_name: str, args, kwargs):
        if field_name in kwargs:
            return kwargs[field_name], None
        return super().get_field(field_name, args, kwargs)


_SPEC_RE = re.compile(r"(?:(?P<fill>.)?(?P<align>[<>=^]))?(?P<sign>[-+ ])?z?#?0?"
                      r"(?P<width>\d+)?[_,]?(?:\.(?P<precision>\d+))?"
                      r"(?P<type>[bcdeEfFgGnosxX%])?h?\+?")
_SENTINELS = ("?+:", "?:", "+:")


def _align_width(spec: str) -> tuple[str, str, str]:
    """(align, width, precision) of a spec, after a ``::`` datetime prefix."""
    if "::" in spec:
        spec = spec.split("::", 1)[1]
    m = _SPEC_RE.fullmatch(spec)
    if not m:
        return "", "", ""
    return m.group("align") or "", m.group("width") or "", m.group("precision") or ""


class OutputFormat:
    """A parsed flux output format over items with attributes (flux.util.OutputFormat).

    Parameters
    ----------
    fmt : str
        Python format string of field names, with flux's extensions.
    headings : dict
        Field name -> heading; a field not in it is an error.
    """

    headings: dict[str, str] = {}

    def __init__(self, fmt: str, headings: dict | None = None):
        if headings is not None:
            self.headings = headings
        self.fmt = fmt
        try:
            self.items = [[t or "", f or "", s or "", c or ""]
                          for t, f, s, c in string.Formatter().parse(fmt)]
        except ValueError as exc:
            raise ValueError(f"Error in user format: {exc}") from None
        for _, field, _, _ in self.items:
            if field and field not in self.headings:
                raise ValueError(f"Unknown format field: {field}")

    @property
    def fields(self) -> list[str]:
        return [f for _, f, _, _ in self.items if f]

    @staticmethod
    def _tuple(text: str, field: str, spec: str, conv: str, prefix: str = "0.") -> str:
        if not field:
            return text.replace("{", "{{").replace("}", "}}")
        return (text.replace("{", "{{").replace("}", "}}") + "{" + prefix + field
                + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}")

    def _format_string(self) -> str:
        return "".join(self._tuple(*i) for i in self.items)

    def format(self, item: Any) -> str:
        """One output line for ``item``."""
        return _Formatter().format(self._format_string(), item)

    def cell(self, item: Any, index: int) -> str:
        """The formatted value of field number ``index`` alone (no padding)."""
        fields = [i for i in self.items if i[1]]
        _, field, spec, conv = fields[index]
        return _Formatter().format(self._tuple("", field, spec, conv), item).strip()

    def header(self) -> str:
        parts = []
        for text, field, spec, _ in self.items:
            align, width, _ = _align_width(spec)
            parts.append(self._tuple(text, field, f"{align}{width}", "", prefix=""))
        return _HeaderFormatter().format("".join(parts), **self.headings)

    def filter(self, items: list, no_header: bool = False) -> "OutputFormat":
        """A copy with ``?:`` columns dropped where empty and ``+:`` widened."""
        empty = _empty_outputs()
        out = []
        for text, field, spec, conv in self.items:
            sentinel = next((s for s in _SENTINELS if text.endswith(s)), None)
            if not field or sentinel is None:
                out.append([text, field, spec, conv])
                continue
            text = text[: -len(sentinel)]
            bare = self._tuple("", field, "", conv)
            widths = [0 if (r := _Formatter().format(bare, i)) in empty else len(r)
                      for i in items]
            width = max(widths, default=0)
            if "?" in sentinel and width == 0:
                if text.strip():
                    out.append([text, "", "", ""])
                continue
            if "+" in sentinel:
                align, old, prec = _align_width(spec)
                width = max(width, int(old or 0), 0 if no_header else len(self.headings.get(field, "")))
                # A precision equal to the width truncates strings: it grows
                # with it; any other precision (e.g. ".2f") is kept.
                if prec and old and int(prec) == int(old):
                    prec = str(width)
                m = _SPEC_RE.fullmatch(spec.split("::", 1)[-1])
                ftype = (m.group("type") or "") if m else ""
                spec = f"{align}{width}" + (f".{prec}" if prec else "") + ftype
            out.append([text, field, spec, conv])
        new = self.__class__.__new__(self.__class__)
        new.headings, new.fmt, new.items = self.headings, self.fmt, out
        return new

    def table(self, items: Iterable) -> tuple[list[str], list[list[str]]]:
        """Headings and cell values (as strings) of each item, for HTML tables."""
        items = list(items)
        f = self.filter(items)
        headers = [f.headings[field] for field in f.fields]
        return headers, [[f.cell(i, n) for n in range(len(headers))] for i in items]

    def text(self, items: Iterable, no_header: bool = False) -> str:
        """The whole listing as flux prints it (a trailing newline per line)."""
        items = list(items)
        f = self.filter(items, no_header)
        lines = [] if no_header else [f.header()]
        for item in items:
            line = f.format(item)
            if line and not line.isspace():
                lines.append(line)
        return "".join(line + "\n" for line in lines)


class JobInfoFormat(OutputFormat):
    """OutputFormat over JobInfo; ``annotations.*``, ``sched.*`` and ``user.*`` are free."""

    def __init__(self, fmt: str):
        headings = dict(HEADINGS)
        try:
            parsed = list(string.Formatter().parse(fmt))
        except ValueError as exc:
            raise ValueError(f"Error in user format: {exc}") from None
        for _, field, _, _ in parsed:
            if field and field not in headings:
                if field.startswith("annotations."):
                    headings[field] = field[len("annotations."):].upper()
                elif field.startswith(("sched.", "user.")):
                    headings[field] = field.upper()
        super().__init__(fmt, headings)


def resolve_format(name_or_fmt: str) -> str:
    """A named format's string, or the argument itself if it holds a ``{``."""
    if "{" in name_or_fmt:
        return name_or_fmt
    try:
        return NAMED_FORMATS[name_or_fmt]
    except KeyError:
        raise ValueError(f"--format: No such format {name_or_fmt}") from None


def _jobs(jobs: Iterable) -> list[JobInfo]:
    return [j if isinstance(j, JobInfo) else JobInfo(j) for j in jobs]


def format_table(jobs: Iterable, fmt: str = "default") -> tuple[list[str], list[list[str]]]:
    """Headings and rows (lists of strings) of ``jobs`` (job-list dicts or JobInfo)."""
    return JobInfoFormat(resolve_format(fmt)).table(_jobs(jobs))


def format_text(jobs: Iterable, fmt: str = "default", no_header: bool = False) -> str:
    """The ``flux jobs`` listing of ``jobs`` as text."""
    return JobInfoFormat(resolve_format(fmt)).text(_jobs(jobs), no_header)
