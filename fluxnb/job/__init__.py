"""fluxnb.job: the job API, named as in flux-core's ``flux.job``.

Examples
--------
>>> from fluxnb.job import JobID, JobspecV1
>>> JobID("fNH") == 1234
True
"""

from __future__ import annotations

from fluxnb.runtime.job.jobid import JobID, id_encode, id_parse
from fluxnb.runtime.job.jobspec import Jobspec, JobspecError, JobspecV1, validate

__all__ = [
    "JobID",
    "Jobspec",
    "JobspecError",
    "JobspecV1",
    "id_encode",
    "id_parse",
    "validate",
]

from .api import (  # noqa: E402
    FLUX_JOBID_ANY, EventLogEvent, JobException, JobWaitResult, SubmitFuture, cancel,
    cancel_async, convert_info, event_wait, event_watch, event_watch_async, eventlog_entries,
    get_job, job_list, job_list_id, job_list_inactive, kill, kill_async, raise_job, result,
    result_async, set_urgency, submit, submit_async, wait, wait_async,
)

__all__ += [
    "FLUX_JOBID_ANY", "EventLogEvent", "JobException", "JobWaitResult", "SubmitFuture", "cancel",
    "cancel_async", "convert_info", "event_wait", "event_watch", "event_watch_async",
    "eventlog_entries", "get_job", "job_list", "job_list_id", "job_list_inactive", "kill",
    "kill_async", "raise_job", "result", "result_async", "set_urgency", "submit", "submit_async",
    "wait", "wait_async",
]

from .executor import FluxExecutor, FluxExecutorFuture  # noqa: E402
__all__ += ["FluxExecutor", "FluxExecutorFuture"]
