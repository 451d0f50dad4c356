"""``flux.job.watcher``: follow jobs to the end, copying their output (``flux submit --watch``)."""

import sys
from collections import Counter

from flux.job.event import event_watch_async
from flux.job.info import JobInfo
from flux.job.JobID import JobID
from flux.job.output import OutputEvent, output_event_watch_async


class JobStatus:
    """A job's simplified status (``pending``, ``running``, ``complete``, ``failed``),
    its ``exitcode`` and the events seen."""

    def __init__(self, job):
        if not isinstance(job, JobInfo):
            raise ValueError("JobStatus requires an object of type JobInfo")
        self.id = job.id
        self.status, self.exitcode = self._status(job)
        self._events = Counter()

    @staticmethod
    def _status(job):
        status = job.status
        if status in ("DEPEND", "PRIORITY", "SCHED", "NEW"):
            return "pending", 0
        if status in ("RUN", "CLEANUP"):
            return "running", 0
        if status == "COMPLETED":
            return "complete", 0
        if status in ("FAILED", "CANCELED", "TIMEOUT"):
            rc = job.returncode
            return "failed", rc if isinstance(rc, int) else 1
        raise ValueError(f"unknown job status {status}")

    @property
    def active(self):
        return self.status in ("running", "pending")

    def add_event(self, name):
        self._events[name] += 1

    def event_count(self, name):
        return self._events[name]

    def has_event(self, name):
        return name in self._events


class JobWatcher:
    """Watch jobs (``add_jobid()``) in the handle's reactor: their output goes to
    ``output_callback(jobid, stream, data)``, else to ``stdout``/``stderr``; ``exitcode``
    is the largest exit code once all are done."""

    def __init__(self, flux_handle, jobs=None, progress=False, jps=False, log_events=False,
                 log_status=False, labelio=False, wait=True, watch=True, stdout=sys.stdout,
                 stderr=sys.stderr, output_callback=None):
        self.flux_handle = flux_handle
        self.labelio, self.watch = labelio, watch
        self.log_events = log_events
        self.stdout, self.stderr = stdout, stderr
        self.output_callback = output_callback
        self.exitcode = 0
        self.jobs = {}
        self._started = False
        self._pending = list(jobs or [])

    def start(self):
        self._started = True
        for jobid in self._pending:
            self.add_jobid(jobid)
        self._pending = []
        return self

    def add_jobid(self, jobid, *args):
        jobid = JobID(jobid)
        if not self._started:
            self._pending.append(jobid)
            return
        self.jobs[jobid] = None
        event_watch_async(self.flux_handle, jobid).then(self._event_cb, jobid)
        if self.watch:
            output_event_watch_async(self.flux_handle, jobid, labelio=self.labelio).then(
                self._output_cb, jobid)

    def _event_cb(self, future, jobid):
        event = future.get_event()
        if event is None:
            return
        if self.log_events and self.output_callback is None:
            self.stderr.write(f"{jobid}: {event.name}\n")
        if event.name == "finish":
            status = event.context.get("status", 0)
            code = status >> 8 if status & 0xFF == 0 else 128 + (status & 0x7F)
            self.exitcode = max(self.exitcode, code)
        elif event.name == "exception" and event.context.get("severity") == 0:
            self.exitcode = max(self.exitcode, 1)

    def _output_cb(self, future, jobid):
        event = future.get_event()
        if event is None or not isinstance(event, OutputEvent) or not event.data:
            return
        data = event.render()
        if self.output_callback is not None:
            self.output_callback(jobid, event.stream, data)
        else:
            (self.stderr if event.stream == "stderr" else self.stdout).write(data)

    def stop(self):
        pass


__all__ = ["JobStatus", "JobWatcher"]
