"""``flux.job.kvs``: a job's KVS directory (and its guest namespace's archive)."""

import flux.kvs
from flux.job.JobID import JobID


def job_kvs(flux_handle, jobid):
    return flux.kvs.get_dir(flux_handle, JobID(jobid).kvs)


def job_kvs_guest(flux_handle, jobid):
    return flux.kvs.get_dir(flux_handle, JobID(jobid).kvs + ".guest")


__all__ = ["job_kvs", "job_kvs_guest"]
