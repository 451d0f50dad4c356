"""``flux.job.kill``: signal, cancel, or raise an exception on a job."""

import signal as _signal

from flux.job.JobID import JobID
from flux.rpc import RPC


def kill_async(flux_handle, jobid, signum=None):
    return RPC(flux_handle, "job-manager.kill",
               {"id": int(JobID(jobid)), "signum": int(signum or _signal.SIGTERM)}, 0)


def kill(flux_handle, jobid, signum=None):
    return kill_async(flux_handle, jobid, signum).get()


def job_raise_async(flux_handle, jobid, type, severity, note=None):
    return RPC(flux_handle, "job-manager.raise", {"id": int(JobID(jobid)), "type": type,
                                                  "severity": severity, "note": note or ""}, 0)


def job_raise(flux_handle, jobid, type, severity, note=None):
    job_raise_async(flux_handle, jobid, type, severity, note).get()


def cancel_async(flux_handle, jobid, reason=None):
    return job_raise_async(flux_handle, jobid, "cancel", 0, reason)


def cancel(flux_handle, jobid, reason=None):
    cancel_async(flux_handle, jobid, reason).get()


def raise_job(flux_handle, jobid, type, severity=0, note=""):
    """fluxnb's name for :func:`job_raise`."""
    job_raise(flux_handle, jobid, type, severity, note)


__all__ = ["kill_async", "kill", "cancel_async", "cancel", "job_raise_async", "job_raise",
           "raise_job"]
