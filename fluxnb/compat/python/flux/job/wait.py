"""``flux.job.wait``: wait for waitable jobs; the result of any job."""

import errno
from collections import namedtuple

import flux.constants as _c
from flux.future import Future
from flux.job.info import JobInfo
from flux.job.JobID import JobID
from flux.rpc import RPC

JobWaitResult = namedtuple("JobWaitResult", ["jobid", "success", "errstr"])


def _jobid(jobid):
    return -1 if int(jobid) in (_c.FLUX_JOBID_ANY, -1) else int(JobID(jobid))


class JobWaitFuture(Future):
    def get_status(self):
        return wait_get_status(self)


def wait_async(flux_handle, jobid=_c.FLUX_JOBID_ANY):
    """Wait for a waitable job (any, by default) to become inactive; a JobWaitFuture."""
    if flux_handle is None:
        raise OSError(errno.EINVAL, "flux handle must not be None")
    return JobWaitFuture(RPC(flux_handle, "job-manager.wait", {"id": _jobid(jobid)}, 0))


def wait_get_status(future):
    """``(jobid, success, errstr)`` of a finished wait."""
    if future is None:
        raise OSError(errno.EINVAL, "future must not be None")
    body = future._root().get()
    return JobWaitResult(JobID(body["id"]), bool(body["success"]), body.get("errstr", ""))


def wait(flux_handle, jobid=_c.FLUX_JOBID_ANY):
    """Wait for a waitable job to become inactive: ``JobWaitResult(jobid, success, errstr)``."""
    return wait_async(flux_handle, jobid).get_status()


class JobResultFuture(Future):
    """``result_async()``: the job's record once it is inactive."""

    def get_dict(self):
        return self.get_info().to_dict()

    def get_info(self):
        return JobInfo(self._root().get()["job"])


def result_async(flux_handle, jobid, flags=0):
    payload = {"id": int(JobID(jobid)), "attrs": ["all"], "state": _c.FLUX_JOB_STATE_INACTIVE}
    return JobResultFuture(RPC(flux_handle, "job-list.list-id", payload, 0))


def result(flux_handle, jobid, flags=0):
    """Wait until the job is inactive; its JobInfo (``result``, ``returncode``...)."""
    return result_async(flux_handle, jobid, flags).get_info()


__all__ = ["JobWaitResult", "JobWaitFuture", "wait_async", "wait_get_status", "wait",
           "JobResultFuture", "result_async", "result"]
