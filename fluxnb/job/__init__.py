"""fluxnb.job: the job API, named as in flux-core's ``flux.job``.

Examples
--------
>>> from fluxnb.job import JobID, JobspecV1
>>> JobID("fNH") == 1234
True
"""

from __future__ import annotations

from fluxnb.runtime.job.jobid import JobID, id_encode, id_parse
from fluxnb.runtime.job.jobspec import Jobspec, JobspecError, JobspecV1, validate

__all__ = [
    "JobID",
    "Jobspec",
    "JobspecError",
    "JobspecV1",
    "id_encode",
    "id_parse",
    "validate",
]
