"""``job-manager.events-journal``: every job's primary events as one stream (flux-core's).

A consumer sends a streaming request ``{"full": bool}``. It first gets the backlog:
one response per job, ``{"id", "events": [...], "jobspec"?, "R"?}`` with all the
events posted so far (the inactive jobs too when ``full``), then the sentinel
``{"id": -1, "events": []}``; then one response per event as it is posted, with the
(redacted) jobspec on ``submit`` and R on ``alloc``. ``events-journal-cancel``
``{"matchtag"}`` ends a stream with ENODATA, as does the consumer going away.

The manager keeps each job's events for this (as flux-core's job manager keeps each
job's eventlog), until the job is purged. An inactive job's record is final, so it is
kept as one JSON string (decoded again for a backlog): a thousand kept jobs' events as
dicts took 7 MiB, and scattered across the heap they pinned more (issue 15).
"""

from __future__ import annotations

import errno
import json
from typing import TYPE_CHECKING, Any

from ..message import Message

if TYPE_CHECKING:  # pragma: no cover
    from .states import Job


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _redacted(jobspec: dict | None) -> dict | None:
    """The jobspec without its environment (flux-core's redacted jobspec)."""
    if not isinstance(jobspec, dict):
        return None
    system = (jobspec.get("attributes") or {}).get("system")
    if not isinstance(system, dict) or "environment" not in system:
        return jobspec
    out = dict(jobspec)
    out["attributes"] = dict(jobspec["attributes"])
    out["attributes"]["system"] = {k: v for k, v in system.items() if k != "environment"}
    return out


class EventsJournal:
    def __init__(self, service) -> None:
        self.service = service  # the job manager (responds)
        #: job id -> {"events": its primary events so far, "jobspec", "R"}; for an
        #: inactive job, that dict JSON-encoded
        self.jobs: dict[int, dict[str, Any] | str] = {}
        self.listeners: list[Message] = []

    # -- recording (a job-manager listener) ---------------------------------------------
    def __call__(self, job: "Job", ev: dict) -> None:
        if ev.get("name") == "restore":  # a restored job: see restored()
            return
        entry = self.jobs.setdefault(job.id, {"events": [], "jobspec": None, "R": None})
        if type(entry) is str:  # an inactive job's (none are posted today)
            entry = self.jobs[job.id] = json.loads(entry)
        entry["events"].append(ev)
        resp: dict[str, Any] = {"id": job.id, "events": [ev]}
        if ev["name"] == "submit":
            entry["jobspec"] = resp["jobspec"] = _redacted(job.jobspec)
        elif ev["name"] == "alloc" and job.R:
            entry["R"] = resp["R"] = job.R
        for msg in self.listeners:
            self.service.respond(msg, resp)
        if job.state == "INACTIVE":
            self.jobs[job.id] = _dumps(entry)

    def restored(self, job: "Job", events: list[dict[str, Any]]) -> None:
        """A job rebuilt from its eventlog after a restart."""
        entry = {"events": list(events), "jobspec": _redacted(job.jobspec), "R": job.R}
        self.jobs[job.id] = _dumps(entry) if job.state == "INACTIVE" else entry

    def forget(self, jobid: int) -> None:
        self.jobs.pop(jobid, None)

    # -- the RPCs ------------------------------------------------------------------------
    def request(self, msg: Message, full: bool, active) -> None:
        """The backlog (of every job if ``full``, else of the ``active`` ids), the
        sentinel, then the events as they come."""
        active = set(active)
        for jobid, entry in list(self.jobs.items()):
            if not full and jobid not in active:
                continue
            if type(entry) is str:
                entry = json.loads(entry)
            resp: dict[str, Any] = {"id": jobid, "events": list(entry["events"])}
            if entry["jobspec"] is not None:
                resp["jobspec"] = entry["jobspec"]
            if entry["R"]:
                resp["R"] = entry["R"]
            self.service.respond(msg, resp)
        self.service.respond(msg, {"id": -1, "events": []})
        self.listeners.append(msg)

    def cancel(self, msg: Message, matchtag: int) -> None:
        for m in list(self.listeners):
            if m.matchtag == matchtag and m.route == msg.route:
                self.listeners.remove(m)
                self.service.respond_error(m, errno.ENODATA)

    def disconnect(self, route: list) -> None:
        n = len(route)
        self.listeners = [m for m in self.listeners if m.route[:n] != route]
