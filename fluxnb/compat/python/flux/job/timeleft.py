"""``flux.job.timeleft``: seconds left before the enclosing job's time limit."""

import errno
import math
import os
import time

import flux
import flux.kvs


def timeleft(flux_handle=None):
    """Seconds until the job this process runs in expires (``inf`` if unlimited);
    OSError if not in a job."""
    jobid = os.environ.get("FLUX_JOB_ID")
    if jobid is None:
        try:  # an instance that is itself a job: its R has the expiration
            h = flux_handle or flux.Flux()
            R = flux.kvs.get(h, "resource.R")
        except OSError:
            raise OSError(errno.EPERM, "not running in a Flux job") from None
        exp = (R.get("execution") or {}).get("expiration", 0) if isinstance(R, dict) else 0
    else:
        from flux.job.list import job_list_id
        h = flux_handle or flux.Flux()
        try:
            exp = job_list_id(h, jobid, ["expiration"]).get_job().get("expiration", 0)
        except OSError as exc:
            raise OSError(exc.errno, f"timeleft: {exc.strerror}") from None
    if not exp:
        return math.inf
    return max(0.0, exp - time.time())


__all__ = ["timeleft"]
