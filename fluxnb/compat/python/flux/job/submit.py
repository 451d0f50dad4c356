"""``flux.job.submit``: submit a jobspec; the future of its job id."""

import errno

from flux.future import Future
from flux.job.JobID import JobID
from flux.job.Jobspec import Jobspec
from flux.rpc import RPC

import fluxnb.job.api as _api


class SubmitFuture(Future):
    """The future of a submission: ``get_id()`` is the new job's JobID."""

    def get_id(self):
        return submit_get_id(self)


def submit_async(flux_handle, jobspec, urgency=16, waitable=False, debug=False,
                 pre_signed=False, novalidate=False):
    """Submit ``jobspec`` (a Jobspec, or JSON/YAML text); a SubmitFuture."""
    if flux_handle is None:
        raise OSError(errno.EINVAL, "flux handle must not be None")
    if jobspec is None:
        raise OSError(errno.EINVAL, "jobspec must not be None")
    if isinstance(jobspec, bytes):
        jobspec = jobspec.decode("utf-8")
    if not isinstance(jobspec, (str, Jobspec, dict)):
        raise TypeError("jobspec must be a Jobspec, str or bytes, not "
                        f"{type(jobspec).__name__}")
    if not isinstance(urgency, int):
        raise TypeError("urgency must be an integer")
    flags = (_api.FLUX_JOB_WAITABLE if waitable else 0) | (_api.FLUX_JOB_DEBUG if debug else 0) \
        | (_api.FLUX_JOB_NOVALIDATE if novalidate else 0)
    try:
        payload = {"jobspec": _api._jobspec_payload(jobspec), "urgency": urgency, "flags": flags}
    except ValueError as exc:
        raise OSError(errno.EINVAL, f"jobspec: {exc}") from None
    return SubmitFuture(RPC(flux_handle, "job-manager.submit", payload, 0))


def submit_get_id(future):
    """The JobID a submission future resolved to."""
    if future is None:
        raise OSError(errno.EINVAL, "future must not be None")
    root = future._root()
    return JobID(root.get()["id"])


def submit(flux_handle, jobspec, urgency=16, waitable=False, debug=False, pre_signed=False,
           novalidate=False):
    """Submit ``jobspec`` and return the new job's JobID."""
    return submit_async(flux_handle, jobspec, urgency, waitable, debug, pre_signed,
                        novalidate).get_id()


__all__ = ["SubmitFuture", "submit_async", "submit_get_id", "submit"]
