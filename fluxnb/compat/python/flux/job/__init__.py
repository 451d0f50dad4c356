"""``flux.job``: flux-core's job API (submit, wait, watch, list, kill...) over fluxnb's."""

from flux.core.inner import ffi  # noqa: F401 - flux-core exports it here
from flux.job._utils import BatchConfig
from flux.job.event import (
    MAIN_EVENTS, EventLogEvent, JobEventWatchFuture, JobException, event_wait, event_watch,
    event_watch_async,
)
from flux.job.info import JobInfo, JobInfoFormat, job_fields_to_attrs
from flux.job.JobID import JobID, id_encode, id_parse
from flux.job.Jobspec import Jobspec, JobspecV1, validate_jobspec
from flux.job.kill import (
    cancel, cancel_async, job_raise, job_raise_async, kill, kill_async, raise_job,
)
from flux.job.kvs import job_kvs, job_kvs_guest
from flux.job.kvslookup import JobKVSLookup, job_info_lookup, job_kvs_lookup
from flux.job.list import JobList, get_job, job_list, job_list_id, job_list_inactive
from flux.job.output import (
    job_output, output_event_watch, output_event_watch_async, output_watch,
    output_watch_async, output_watch_lines, output_watch_lines_async,
)
from flux.job.submit import submit, submit_async, submit_get_id
from flux.job.timeleft import timeleft
from flux.job.wait import result, result_async, wait, wait_async, wait_get_status
from flux.job.executor import FluxExecutor, FluxExecutorFuture
from flux.job.journal import JournalConsumer, JournalEvent

from flux.job.watcher import JobWatcher
