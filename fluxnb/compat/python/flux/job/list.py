"""``flux.job.list``: list jobs (job-list), one job, or a filtered set with ``JobList``."""

import errno
import os
import pwd

import flux.constants as _c
from flux.future import WaitAllFuture
from flux.job.info import JobInfo
from flux.job.JobID import JobID
from flux.rpc import RPC


class JobListRPC(RPC):
    def __init__(self, *args, **kwargs):
        kwargs["flags"] = kwargs.get("flags", 0) | _c.FLUX_RPC_STREAMING
        super().__init__(*args, **kwargs)

    def get_jobs(self):
        """Every job of the listing (a list of dicts)."""
        jobs, first = [], True
        while True:
            try:
                resp = self.get()
            except OSError as exc:
                if exc.errno == errno.ENODATA:
                    break
                raise
            jobs.extend(resp["jobs"])
            if first and resp.get("version", 0) == 0:
                break
            first = False
            self.reset()
        return jobs

    def get_jobinfos(self):
        for job in self.get_jobs():
            yield JobInfo(job)


def job_list(flux_handle, max_entries=1000, attrs=["all"], userid=os.getuid(), states=0,
             results=0, since=0.0, name=None, queue=None, constraint=None):
    payload = {"max_entries": int(max_entries), "attrs": list(attrs), "userid": int(userid),
               "states": states, "results": results, "since": since}
    if name:
        payload["name"] = name
    if queue:
        payload["queue"] = queue
    if constraint:
        payload["constraint"] = constraint
    return JobListRPC(flux_handle, "job-list.list", payload, nodeid=0)


def job_list_inactive(flux_handle, since=0.0, max_entries=1000, attrs=["all"], name=None,
                      queue=None, constraint=None):
    return job_list(flux_handle, max_entries=max_entries, attrs=attrs,
                    states=_c.FLUX_JOB_STATE_INACTIVE, since=since, name=name, queue=queue,
                    constraint=constraint)


class JobListIdRPC(RPC):
    def get_job(self):
        return self.get()["job"]

    def get_jobinfo(self):
        return JobInfo(self.get_job())


def job_list_id(flux_handle, jobid, attrs=["all"]):
    rpc = JobListIdRPC(flux_handle, "job-list.list-id", {"id": int(JobID(jobid)),
                                                        "attrs": list(attrs)}, 0)
    rpc.jobid = JobID(jobid)
    return rpc


def get_job(flux_handle, jobid):
    """A dict of what job-list knows of the job, or None if there is no such job."""
    try:
        info = job_list_id(flux_handle, jobid).get_jobinfo()
    except FileNotFoundError:
        return None
    return info.to_dict(filtered=False)


class JobListIdsFuture(WaitAllFuture):
    def __init__(self):
        super().__init__()
        self.errors = []

    def get_jobs(self):
        jobs = []
        self.wait_for()
        for child in self.children.values():
            try:
                jobs.append(child.get_job())
            except OSError as err:
                self.errors.append(f"JobID {child.jobid.orig} unknown" if err.errno == errno.ENOENT
                                   else f"rpc: {err.strerror}")
        return jobs

    def get_jobinfos(self):
        return [JobInfo(job) for job in self.get_jobs()]


class JobList:
    """Query jobs: ``filters`` of states/results, ``ids``, ``user``, ``since``, ``name``..."""

    STATES = {"depend": _c.FLUX_JOB_STATE_DEPEND, "priority": _c.FLUX_JOB_STATE_PRIORITY,
              "sched": _c.FLUX_JOB_STATE_SCHED, "run": _c.FLUX_JOB_STATE_RUN,
              "cleanup": _c.FLUX_JOB_STATE_CLEANUP, "inactive": _c.FLUX_JOB_STATE_INACTIVE,
              "pending": _c.FLUX_JOB_STATE_PENDING, "running": _c.FLUX_JOB_STATE_RUNNING,
              "active": _c.FLUX_JOB_STATE_ACTIVE}
    RESULTS = {"completed": _c.FLUX_JOB_RESULT_COMPLETED, "failed": _c.FLUX_JOB_RESULT_FAILED,
               "canceled": _c.FLUX_JOB_RESULT_CANCELED, "timeout": _c.FLUX_JOB_RESULT_TIMEOUT}

    def __init__(self, flux_handle, attrs=["all"], filters=[], ids=[], user=None,
                 max_entries=1000, since=0.0, name=None, queue=None, constraint=None):
        self.handle = flux_handle
        self.attrs = list(attrs)
        self.states = self.results = 0
        self.max_entries, self.since, self.name, self.queue = max_entries, since, name, queue
        self.ids = list(map(JobID, ids)) if ids else None
        self.errors = []
        for fname in filters:
            for x in fname.split(","):
                self.add_filter(x)
        self.set_user(user)
        self.constraint = constraint

    def set_user(self, user):
        if user is None:
            self.userid = os.getuid()
        elif user == "all":
            self.userid = _c.FLUX_USERID_UNKNOWN
        else:
            try:
                self.userid = pwd.getpwnam(user).pw_uid
            except KeyError:
                try:
                    self.userid = int(user)
                except ValueError:
                    raise ValueError(f"Invalid user {user} specified") from None

    def add_filter(self, fname):
        fname = fname.lower()
        if fname in self.STATES:
            self.states |= self.STATES[fname]
        elif fname in self.RESULTS:
            self.results |= self.RESULTS[fname]
        else:
            raise ValueError(f"Invalid filter specified: {fname}")

    def fetch_jobs(self):
        if self.ids:
            listids = JobListIdsFuture()
            for jobid in self.ids:
                listids.push(job_list_id(self.handle, jobid, self.attrs))
            return listids
        return job_list(self.handle, max_entries=self.max_entries, attrs=self.attrs,
                        userid=self.userid, states=self.states, results=self.results,
                        since=self.since, name=self.name, queue=self.queue,
                        constraint=self.constraint)

    def jobs(self):
        rpc = self.fetch_jobs()
        jobs = rpc.get_jobs()
        if hasattr(rpc, "errors"):
            self.errors = rpc.errors
        return [JobInfo(job) for job in jobs]


__all__ = ["JobListRPC", "job_list", "job_list_inactive", "JobListIdRPC", "job_list_id",
           "get_job", "JobListIdsFuture", "JobList"]
