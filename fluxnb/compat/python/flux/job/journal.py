"""``flux.job.journal``: ``JournalConsumer``, the job manager's events journal
(``job-manager.events-journal``): the primary events (RFC 21) of every job."""

from flux.abc import JournalConsumerBase, JournalEventBase
from flux.job.JobID import JobID


class JournalEvent(JournalEventBase):
    """A job event of the journal: ``jobid``, ``name``, ``timestamp``, ``context``,
    and ``jobspec`` (redacted) on ``submit``, ``R`` on ``alloc``."""

    def __init__(self, jobid, event, jobspec=None, R=None):
        super().__init__(event)
        self.jobid = JobID(jobid) if jobid is not None and jobid >= 0 else jobid
        self.jobspec = None
        self.R = None
        if self.is_empty():
            return
        if self.name == "submit":
            self.jobspec = jobspec
        elif self.name == "alloc":
            self.R = R

    def is_empty(self):
        return self.jobid == -1

    def __str__(self):
        if self.is_empty():
            return "-1: End of historical data stream"
        parts = [f"{self.jobid.f58}:", f"{self.timestamp:<0.5f}", self.name,
                 self.context_string, self.jobspec and f"jobspec={self.jobspec}",
                 self.R and f"R={self.R}"]
        return " ".join(p for p in parts if p)


#: the event marking the end of the history (with ``include_sentinel=True``)
SENTINEL_EVENT = JournalEvent(-1, {})


class JournalConsumer(JournalConsumerBase):
    """Consume the job manager's events journal (see :class:`flux.abc.JournalConsumerBase`)."""

    SENTINEL_EVENT = SENTINEL_EVENT

    def __init__(self, flux_handle, full=True, since=0.0, include_sentinel=False):
        super().__init__(flux_handle, "job-manager.events-journal", full=full, since=since,
                         include_sentinel=include_sentinel)

    @property
    def request_payload(self):
        return {"full": self.full}

    def process_response(self, resp):
        return {"jobid": resp.get("id"), "jobspec": resp.get("jobspec"), "R": resp.get("R")}

    def create_event(self, entry, jobid=-1, jobspec=None, R=None):
        return JournalEvent(jobid, entry, jobspec=jobspec, R=R)


__all__ = ["JournalEvent", "JournalConsumer", "SENTINEL_EVENT"]
