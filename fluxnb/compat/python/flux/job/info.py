"""``flux.job.info``: ``JobInfo``, a job-list record with flux's derived fields."""

import flux.constants as _c
from flux.job.JobID import JobID

from fluxnb.cli.jobinfo_format import JobInfo as _JobInfo
from fluxnb.cli.jobinfo_format import JobInfoFormat  # noqa: F401

_RESULT_NAMES = {_c.FLUX_JOB_RESULT_COMPLETED: "COMPLETED", _c.FLUX_JOB_RESULT_FAILED: "FAILED",
                 _c.FLUX_JOB_RESULT_CANCELED: "CANCELED", _c.FLUX_JOB_RESULT_TIMEOUT: "TIMEOUT"}


class JobInfo(_JobInfo):
    """One job as job-list describes it: ``id``, ``state``, ``result``, ``returncode``,
    ``runtime``, ``exception.{occurred,type,severity,note}``, ``to_dict()``..."""

    def __init__(self, info_resp):
        super().__init__(info_resp)
        self.id = JobID(self.id)

    def to_dict(self, filtered=True):
        out = super().to_dict()
        out["id"] = self.id
        out["jobid"] = self.id.f58
        if not filtered:
            for key, default in self.defaults.items():
                out.setdefault(key, getattr(self, key, default))
            for key in ("returncode", "runtime", "result", "waitstatus", "nodelist"):
                out.setdefault(key, getattr(self, key, ""))
        return out


def job_fields_to_attrs(fields):
    """The job-list attributes needed to show ``fields``."""
    attrs = set()
    for field in fields:
        name = field.split(".")[0]
        attrs.add({"returncode": "waitstatus", "status": "state", "runtime": "t_run",
                   "username": "userid"}.get(name, name))
    return attrs


__all__ = ["JobInfo", "JobInfoFormat", "job_fields_to_attrs"]
