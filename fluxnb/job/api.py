"""The job API of flux-core's ``flux.job``: submit, wait, cancel, kill, watch, list.

One verb, three tiers, as in flux-core: ``submit_async(h, js)`` returns a future,
``future.get_id()`` waits for it, ``submit(h, js)`` does both.

Examples
--------
>>> import fluxnb                                                  # doctest: +SKIP
>>> from fluxnb.job import JobspecV1, submit, wait
>>> h = fluxnb.Flux()
>>> jobid = submit(h, JobspecV1.from_command(["hostname"]), waitable=True)
>>> wait(h, jobid).success
True
"""

from __future__ import annotations

import base64
import errno
import json
import os
import signal as _signal
import time

TYPE_CHECKING = False  # not typing's: a `flux` command would import typing for it
if TYPE_CHECKING:
    from typing import Any, Iterator

from ..runtime.job.jobid import JobID
from ..runtime.kvs.flags import FLUX_KVS_WAITCREATE, FLUX_KVS_WATCH_APPEND
from ..runtime.job.jobspec import Jobspec
from ..runtime.job.statebits import RESULT_BITS, STATE_BITS
from ..runtime.message import FLAG_STREAMING, FluxError

FLUX_JOBID_ANY = -1
FLUX_JOB_WAITABLE = 0x08
FLUX_JOB_DEBUG = 0x02
FLUX_JOB_NOVALIDATE = 0x04

STATE_NAMES = {v: k for k, v in STATE_BITS.items()}
RESULT_NAMES = {v: k for k, v in RESULT_BITS.items()}


def _jobspec_payload(jobspec: Any) -> dict:
    if isinstance(jobspec, Jobspec):
        return json.loads(jobspec.dumps())
    if isinstance(jobspec, (str, bytes)):
        from ..runtime.job.jobspec_validate import load_yaml
        try:
            return json.loads(jobspec)
        except (ValueError, RecursionError):
            return load_yaml(jobspec)  # YAML, or a ValueError naming what is wrong
    if isinstance(jobspec, dict):
        return jobspec
    raise TypeError(f"jobspec must be a Jobspec, a dict or JSON/YAML text, not {type(jobspec).__name__}")


# -- submit ----------------------------------------------------------------------------
class SubmitFuture:
    """The future of a submission: ``get_id()`` is the new job's JobID."""

    def __init__(self, rpc):
        self.rpc = rpc

    def get_id(self, timeout: float | None = None) -> JobID:
        return JobID(self.rpc.get(timeout)["id"])

    get = get_id

    def then(self, callback, *args):  # pragma: no cover - flux API shape
        callback(self, *args)
        return self


def submit_async(flux_handle, jobspec, urgency: int = 16, waitable: bool = False,
                 debug: bool = False, pre_signed: bool = False,
                 novalidate: bool = False) -> SubmitFuture:
    flags = (FLUX_JOB_WAITABLE if waitable else 0) | (FLUX_JOB_DEBUG if debug else 0) | \
            (FLUX_JOB_NOVALIDATE if novalidate else 0)
    payload = {"jobspec": _jobspec_payload(jobspec), "urgency": urgency, "flags": flags}
    return SubmitFuture(flux_handle.rpc("job-manager.submit", payload, nodeid=0))


def submit(flux_handle, jobspec, urgency: int = 16, waitable: bool = False, debug: bool = False,
           pre_signed: bool = False, novalidate: bool = False) -> JobID:
    """Submit a job and return its JobID."""
    return submit_async(flux_handle, jobspec, urgency, waitable, debug, pre_signed,
                        novalidate).get_id()


# -- wait -----------------------------------------------------------------------------
class JobWaitResult:
    """What ``wait`` tells of a job: its id, whether it succeeded, and why not.

    (A plain class, as a dataclass would import dataclasses into every ``flux``
    command.)
    """

    __slots__ = ("jobid", "success", "errstr")

    def __init__(self, jobid: JobID, success: bool, errstr: str):
        self.jobid = jobid
        self.success = success
        self.errstr = errstr

    def __eq__(self, other: object):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.jobid, self.success, self.errstr) == (other.jobid, other.success,
                                                           other.errstr)

    __hash__ = None

    def __repr__(self) -> str:
        return (f"JobWaitResult(jobid={self.jobid!r}, success={self.success!r}, "
                f"errstr={self.errstr!r})")


class JobWaitFuture:
    def __init__(self, rpc):
        self.rpc = rpc

    def get_status(self, timeout: float | None = None) -> JobWaitResult:
        body = self.rpc.get(timeout)
        return JobWaitResult(JobID(body["id"]), body["success"], body.get("errstr", ""))

    get = get_status


def wait_async(flux_handle, jobid: int = FLUX_JOBID_ANY) -> JobWaitFuture:
    return JobWaitFuture(flux_handle.rpc("job-manager.wait", {"id": int(jobid)}, nodeid=0))


def wait(flux_handle, jobid: int = FLUX_JOBID_ANY) -> JobWaitResult:
    """Wait for a waitable job (any, if no id) to become inactive."""
    return wait_async(flux_handle, jobid).get_status()


# -- cancel, kill, raise, urgency --------------------------------------------------------
def cancel_async(flux_handle, jobid: int, reason: str | None = None):
    return flux_handle.rpc("job-manager.raise", {"id": int(jobid), "type": "cancel", "severity": 0,
                                                 "note": reason or ""}, nodeid=0)


def cancel(flux_handle, jobid: int, reason: str | None = None) -> None:
    cancel_async(flux_handle, jobid, reason).get()


def kill_async(flux_handle, jobid: int, signum: int | None = None):
    return flux_handle.rpc("job-manager.kill", {"id": int(jobid),
                                                "signum": int(signum or _signal.SIGTERM)}, nodeid=0)


def kill(flux_handle, jobid: int, signum: int | None = None) -> None:
    kill_async(flux_handle, jobid, signum).get()


def raise_job(flux_handle, jobid: int, type: str, severity: int = 0, note: str = "") -> None:
    flux_handle.rpc("job-manager.raise", {"id": int(jobid), "type": type, "severity": severity,
                                          "note": note}, nodeid=0).get()


def set_urgency(flux_handle, jobid: int, urgency: int) -> int:
    return flux_handle.rpc("job-manager.urgency", {"id": int(jobid), "urgency": urgency},
                           nodeid=0).get()["old_urgency"]


# -- eventlogs ------------------------------------------------------------------------
class EventLogEvent(dict):
    """One eventlog entry: ``.name``, ``.timestamp``, ``.context``."""

    @property
    def name(self) -> str:
        return self["name"]

    @property
    def timestamp(self) -> float:
        return self["timestamp"]

    @property
    def context(self) -> dict:
        return self.get("context") or {}

    @property
    def context_string(self) -> str:
        return " ".join(f"{k}={json.dumps(v)}" for k, v in self.context.items())

    def __str__(self) -> str:
        ctx = self.context_string
        return f"{self.timestamp:.6f} {self.name}" + (f" {ctx}" if ctx else "")


class JobException(Exception):
    """A job got a fatal exception (raised by event_wait unless told not to)."""

    def __init__(self, event: EventLogEvent):
        self.severity = event.context.get("severity")
        self.type = event.context.get("type")
        self.note = event.context.get("note", "")
        super().__init__(f"job.exception type={self.type} severity={self.severity} {self.note}".strip())


def _lines(flux_handle, key: str, namespace: str | None, watch: bool,
           waitcreate: bool = True) -> Iterator[tuple[bytes, bool]]:
    flags = (FLUX_KVS_WATCH_APPEND | (FLUX_KVS_WAITCREATE if waitcreate else 0)) if watch else 0
    payload = {"key": key, "flags": flags}
    if namespace:
        payload["namespace"] = namespace
    if not watch:
        val = flux_handle.rpc("kvs.lookup", payload, nodeid=0).get()["val"]
        yield base64.b64decode(val["data"]) if val.get("data") else b"", True
        return
    rpc = flux_handle.rpc("kvs-watch.lookup", payload, nodeid=0, flags=FLAG_STREAMING)
    try:
        while True:
            try:
                resp = rpc.get()
            except FluxError as exc:
                if exc.errno in (errno.ENODATA, errno.ENOTSUP):
                    return
                raise
            rpc.reset()
            val = resp["val"]
            yield base64.b64decode(val["data"]) if val.get("data") else b"", False
    finally:
        if not rpc.done:
            flux_handle.rpc("kvs-watch.cancel", {"matchtag": rpc.matchtag}, nodeid=0)


def _primary_lines(flux_handle, jid: JobID) -> Iterator[tuple[bytes, bool]]:
    """Watch a job's main eventlog; ENOENT at once for a job the instance never had.

    The eventlog may not be in the KVS yet right after the submit (the job manager
    commits in batches): then the job is known to job-list, and the watch waits
    for the eventlog to be created. An id no one submitted ends the watch with
    ENOENT instead of waiting forever, as flux-core's job-info does.
    """
    key = f"{jid.kvs}.eventlog"
    got = False
    try:
        for item in _lines(flux_handle, key, None, True, waitcreate=False):
            got = True
            yield item
        return
    except FluxError as exc:
        if got or exc.errno != errno.ENOENT:
            raise
    try:
        flux_handle.rpc("job-list.list-id", {"id": int(jid), "attrs": []}, nodeid=0).get()
    except FluxError as exc:
        if exc.errno == errno.ENOENT:
            raise FluxError(errno.ENOENT, f"job {jid.f58} not found") from None
        if exc.errno != errno.ENOSYS:  # no job-list: wait as before
            raise
    yield from _lines(flux_handle, key, None, True)


def _entries(chunks: Iterator[tuple[bytes, bool]], seen: set | None = None) -> Iterator[EventLogEvent]:
    """Events from eventlog text chunks; with ``seen``, each distinct line once.

    Every line carries its own timestamp, so a line read again (from the guest
    namespace and then from its archive) is the same event, never a new one.
    """
    buf = b""
    for chunk, _ in chunks:
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if not line:
                continue
            if seen is not None:
                if line in seen:
                    continue
                seen.add(line)
            yield EventLogEvent(json.loads(line))


def eventlog_entries(flux_handle, jobid: int, eventlog: str = "eventlog",
                     watch: bool = True) -> Iterator[EventLogEvent]:
    """Entries of a job eventlog: ``eventlog`` (primary), or ``exec``/``output``/``input``
    (the guest namespace while the job runs, its archive afterwards)."""
    jid = JobID(jobid)
    if eventlog == "eventlog":
        lines = _primary_lines(flux_handle, jid) if watch else \
            _lines(flux_handle, f"{jid.kvs}.eventlog", None, False)
        for ev in _entries(lines):
            yield ev
            if watch and ev.name == "clean":
                return
        return
    key = "exec.eventlog" if eventlog in ("exec", "exec.eventlog") else eventlog.removeprefix("guest.")
    seen: set = set()
    if watch:
        # the guest namespace lives from just before "start" until just before "clean"
        for ev in eventlog_entries(flux_handle, jobid, "eventlog", True):
            if ev.name in ("start", "clean"):
                break
        try:
            yield from _entries(_lines(flux_handle, key, f"job-{int(jid)}", True), seen)
        except FluxError as exc:
            if exc.errno not in (errno.ENOTSUP, errno.ENOENT):
                raise
        for ev in eventlog_entries(flux_handle, jobid, "eventlog", True):
            if ev.name == "clean":
                break
    else:
        try:
            yield from _entries(_lines(flux_handle, key, f"job-{int(jid)}", False), seen)
            return
        except FluxError as exc:
            if exc.errno not in (errno.ENOTSUP, errno.ENOENT):
                raise
    try:
        yield from _entries(_lines(flux_handle, f"{jid.kvs}.guest.{key}", None, False), seen)
    except FluxError as exc:
        if exc.errno != errno.ENOENT:
            raise
        if not watch:  # no such eventlog yet is fine; no such job is not
            try:
                flux_handle.rpc("kvs.lookup", {"key": f"{jid.kvs}.eventlog", "flags": 0},
                                nodeid=0).get()
            except FluxError as exc2:
                if exc2.errno == errno.ENOENT:
                    raise FluxError(errno.ENOENT, f"job {jid.f58} not found") from None
                raise


def event_watch(flux_handle, jobid: int, eventlog: str = "eventlog") -> Iterator[EventLogEvent]:
    """Yield each event of a job eventlog as it happens, until the job is clean."""
    yield from eventlog_entries(flux_handle, jobid, eventlog, watch=True)


def event_wait(flux_handle, jobid: int, name: str, eventlog: str = "eventlog",
               raiseJobException: bool = True) -> EventLogEvent:
    """Wait for the event ``name``; a fatal job exception first raises JobException."""
    for ev in event_watch(flux_handle, jobid, eventlog):
        if ev.name == name:
            return ev
        if raiseJobException and ev.name == "exception" and ev.context.get("severity") == 0:
            raise JobException(ev)
    raise OSError(errno.ENODATA, f"eventlog ended without event {name}")


class JobEventWatchFuture:
    """``event_watch_async``: ``get_event()`` returns the next event, or None at the end."""

    def __init__(self, flux_handle, jobid: int, eventlog: str = "eventlog"):
        self._it = event_watch(flux_handle, jobid, eventlog)

    def get_event(self, autoreset: bool = True) -> EventLogEvent | None:
        return next(self._it, None)

    def cancel(self, stop: bool = False) -> None:
        self._it.close()


def event_watch_async(flux_handle, jobid: int, eventlog: str = "eventlog") -> JobEventWatchFuture:
    return JobEventWatchFuture(flux_handle, jobid, eventlog)


# -- listing ---------------------------------------------------------------------------
class JobListFuture:
    def __init__(self, rpc):
        self.rpc = rpc

    def get(self, timeout: float | None = None) -> dict:
        return self.rpc.get(timeout)

    def get_jobs(self) -> list[dict]:
        return self.get()["jobs"]


def job_list(flux_handle, max_entries: int = 1000, attrs: list | None = None, userid: int | None = None,
             states: int = 0, results: int = 0, since: float = 0.0, name: str | None = None,
             queue: str | None = None) -> JobListFuture:
    payload = {"max_entries": max_entries, "attrs": list(attrs or ["all"]),
               "userid": os.getuid() if userid is None else userid, "states": states,
               "results": results, "since": since}
    if name:
        payload["name"] = name
    if queue:
        payload["queue"] = queue
    return JobListFuture(flux_handle.rpc("job-list.list", payload, nodeid=0))


def job_list_inactive(flux_handle, since: float = 0.0, max_entries: int = 1000, attrs=None,
                      name: str | None = None, queue: str | None = None) -> JobListFuture:
    return job_list(flux_handle, max_entries, attrs, states=STATE_BITS["INACTIVE"], since=since,
                    name=name, queue=queue)


def job_list_id(flux_handle, jobid: int, attrs: list | None = None):
    return flux_handle.rpc("job-list.list-id", {"id": int(jobid), "attrs": list(attrs or ["all"])},
                           nodeid=0)


def convert_info(info: dict) -> dict:
    """A job-list record with names for state and result, as flux's ``get_job`` gives."""
    out = dict(info)
    out["id"] = JobID(info["id"])
    out["state"] = STATE_NAMES.get(info["state"], str(info["state"]))
    if "result" in info:
        out["result"] = RESULT_NAMES.get(info["result"], str(info["result"]))
    for key in ("t_submit", "t_depend", "t_run", "t_cleanup", "t_inactive"):
        out.setdefault(key, 0.0)
    if "exception_occurred" in info:
        out["exception"] = {"occurred": info["exception_occurred"],
                            "type": info.get("exception_type", ""),
                            "severity": info.get("exception_severity", -1),
                            "note": info.get("exception_note", "")}
    if out.get("t_run") and out.get("t_cleanup"):
        out["runtime"] = out["t_cleanup"] - out["t_run"]
    elif out.get("t_run"):
        out["runtime"] = time.time() - out["t_run"]
    else:
        out["runtime"] = 0.0
    return out


def get_job(flux_handle, jobid: int) -> dict | None:
    """Everything job-list knows of a job, with state/result names; None if unknown."""
    try:
        info = job_list_id(flux_handle, jobid).get()["job"]
    except FluxError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    return convert_info(info)


def result_async(flux_handle, jobid: int, attrs=None):
    """job-list's record of the job once it is inactive (``attrs``: only these, and id)."""
    return flux_handle.rpc("job-list.list-id", {"id": int(jobid), "attrs": list(attrs) if attrs else ["all"],
                                                "state": STATE_BITS["INACTIVE"]}, nodeid=0)


def result(flux_handle, jobid: int, attrs=None) -> dict:
    """Wait until the job is inactive and return its record (``result``, ``returncode``...)."""
    return convert_info(result_async(flux_handle, jobid).get()["job"])
