"""fluxnb.job: the job API, named as in flux-core's ``flux.job``.

Names load on first use (module ``__getattr__``), so that ``flux run`` -- a new
process each time -- does not pay for the executor (``concurrent.futures``,
``logging``) or anything else it does not call.

Examples
--------
>>> from fluxnb.job import JobID, JobspecV1
>>> JobID("fNH") == 1234
True
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: importing typing costs a `flux` command
if TYPE_CHECKING:  # pragma: no cover
    from fluxnb.runtime.job.jobid import JobID, id_encode, id_parse
    from fluxnb.runtime.job.jobspec import Jobspec, JobspecError, JobspecV1, validate

    from .api import (
        FLUX_JOBID_ANY, EventLogEvent, JobException, JobWaitResult, SubmitFuture, cancel,
        cancel_async, convert_info, event_wait, event_watch, event_watch_async,
        eventlog_entries, get_job, job_list, job_list_id, job_list_inactive, kill, kill_async,
        raise_job, result, result_async, set_urgency, submit, submit_async, wait, wait_async,
    )
    from .executor import FluxExecutor, FluxExecutorFuture

#: public name -> the module that defines it
_WHERE: dict[str, str] = {
    **dict.fromkeys(["JobID", "id_encode", "id_parse"], "fluxnb.runtime.job.jobid"),
    **dict.fromkeys(["Jobspec", "JobspecError", "JobspecV1", "validate"],
                    "fluxnb.runtime.job.jobspec"),
    **dict.fromkeys([
        "FLUX_JOBID_ANY", "EventLogEvent", "JobException", "JobWaitResult", "SubmitFuture",
        "cancel", "cancel_async", "convert_info", "event_wait", "event_watch",
        "event_watch_async", "eventlog_entries", "get_job", "job_list", "job_list_id",
        "job_list_inactive", "kill", "kill_async", "raise_job", "result", "result_async",
        "set_urgency", "submit", "submit_async", "wait", "wait_async"], "fluxnb.job.api"),
    **dict.fromkeys(["FluxExecutor", "FluxExecutorFuture"], "fluxnb.job.executor"),
}

__all__ = list(_WHERE)


def __getattr__(name: str):
    if name in ("api", "executor"):  # the submodules, as attributes of the package
        return importlib.import_module(f"{__name__}.{name}")
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'fluxnb.job' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain global
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
