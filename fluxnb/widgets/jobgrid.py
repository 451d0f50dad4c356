"""JobGrid: a sortable, filterable, virtually scrolled table of job records (an anywidget).

The kernel side holds every record and the sorted, filtered view (a list of ids);
the browser is sent only the window of rows it shows (``window``: offset, total,
rows) and asks for another by setting ``offset`` as the user scrolls. An update
re-sorts in the kernel and sends one window, so 10,000 jobs cost what 60 do on
the wire. The JavaScript is ``jobgrid.js`` beside this file.
"""

from __future__ import annotations

import pathlib
import pwd
from typing import Callable

import anywidget
import traitlets

from ..runtime.job.jobid import JobID
from ..runtime.job.states import RESULT_ABBREV, STATE_BITS
from ..runtime.util.fsd import format_fsd

_HERE = pathlib.Path(__file__).parent
_NAMES = {bit: name for name, bit in STATE_BITS.items()}
_RESULTS = {1: "COMPLETED", 2: "FAILED", 4: "CANCELED", 8: "TIMEOUT"}
_INACTIVE = STATE_BITS["INACTIVE"]
_RUNNING = STATE_BITS["RUN"] | STATE_BITS["CLEANUP"]

#: (key, header) of the grid's columns
COLUMNS: list[tuple[str, str]] = [
    ("id", "JOBID"), ("user", "USER"), ("name", "NAME"), ("state", "STATE"),
    ("result", "RESULT"), ("ntasks", "NTASKS"), ("nnodes", "NNODES"),
    ("runtime", "RUNTIME"), ("nodelist", "NODELIST"), ("queue", "QUEUE")]
#: the colour classes, as the counts header lists them
STATE_CLASSES = ["PD", "R", "CD", "F", "CA", "TO"]

_users: dict[int, str] = {}


def username(userid: int | None) -> str:
    """The login name of ``userid`` (its number if it has none)."""
    if userid is None:
        return ""
    name = _users.get(userid)
    if name is None:
        try:
            name = pwd.getpwuid(userid).pw_name
        except (KeyError, OverflowError):
            name = str(userid)
        _users[userid] = name
    return name


def state_class(job: dict) -> str:
    """PD (pending), R (running, cleaning up) or, once inactive, CD / F / CA / TO."""
    st = job.get("state", 0)
    if st & _INACTIVE:
        return RESULT_ABBREV.get(_RESULTS.get(job.get("result", 0), ""), "F")
    return "R" if st & _RUNNING else "PD"


def _runtime(job: dict, now: float) -> float:
    t_run = job.get("t_run") or 0.0
    if not t_run:
        return 0.0
    end = job.get("t_cleanup") or job.get("t_inactive") or now
    return max(0.0, end - t_run)


#: column key -> sort key of a job record (``now`` for the runtime of running jobs)
SORT_KEYS: dict[str, Callable[[dict, float], object]] = {
    "id": lambda j, now: j["id"],
    "user": lambda j, now: username(j.get("userid")),
    "name": lambda j, now: str(j.get("name", "")),
    "state": lambda j, now: j.get("state", 0),
    "result": lambda j, now: (j.get("state", 0) & _INACTIVE, j.get("result", 0)),
    "ntasks": lambda j, now: j.get("ntasks") or 0,
    "nnodes": lambda j, now: j.get("nnodes") or 0,
    "runtime": _runtime,
    "nodelist": lambda j, now: j.get("nodelist") or "",
    "queue": lambda j, now: j.get("queue") or "",
}


def cells(job: dict, now: float) -> list[str]:
    """One job's row: its F58 id, a cell per column of :data:`COLUMNS`, its colour class."""
    t = _runtime(job, now)
    inactive = job.get("state", 0) & _INACTIVE
    f58 = JobID(job["id"]).f58
    return [f58, f58, username(job.get("userid")), str(job.get("name", "")),
            _NAMES.get(job.get("state", 0), ""),
            _RESULTS.get(job.get("result", 0), "") if inactive else "",
            str(job.get("ntasks", "") or ""), str(job.get("nnodes", "") or ""),
            format_fsd(round(t, 3)) if t else "-", job.get("nodelist") or "",
            job.get("queue") or "", state_class(job)]


def search_text(job: dict) -> str:
    """What the text filter matches a job against (lower case)."""
    return " ".join((JobID(job["id"]).f58, str(job["id"]), username(job.get("userid")),
                     str(job.get("name", "")), job.get("nodelist") or "",
                     job.get("queue") or "", _NAMES.get(job.get("state", 0), ""),
                     _RESULTS.get(job.get("result", 0), ""))).lower()


class JobGrid(anywidget.AnyWidget):
    """The grid's front end and the window of rows it shows.

    Set ``sort_by`` / ``descending`` (a click on a header does), ``offset`` (the
    first row shown; scrolling does) and ``selected`` (the F58 id of a clicked
    row). The owner (:class:`~fluxnb.widgets.JobBrowser`) fills ``window`` and
    ``counts``.
    """

    _esm = _HERE / "jobgrid.js"
    _css = _HERE / "jobgrid.css"

    columns = traitlets.List(traitlets.List(), default_value=[list(c) for c in COLUMNS]).tag(sync=True)
    window = traitlets.Dict().tag(sync=True)
    counts = traitlets.Dict().tag(sync=True)
    sort_by = traitlets.Unicode("").tag(sync=True)
    descending = traitlets.Bool(True).tag(sync=True)
    offset = traitlets.Int(0).tag(sync=True)
    page_size = traitlets.Int(60).tag(sync=True)
    height = traitlets.Int(330).tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)

    @traitlets.validate("sort_by")
    def _valid_sort(self, proposal):
        key = proposal["value"]
        if key and key not in SORT_KEYS:
            raise traitlets.TraitError(f"JobGrid: cannot sort by {key!r}; columns are "
                                       + ", ".join(SORT_KEYS))
        return key
