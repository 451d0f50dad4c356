"""``flux.job.Jobspec``: jobspecs (RFC 14) and V1 jobspecs (RFC 25)."""

import json

from fluxnb.runtime.job.jobspec import Jobspec, JobspecV1, validate as _validate


def validate_jobspec(jobspec, require_version=None):
    """Validate jobspec text (JSON or YAML) or a dict; ValueError if invalid."""
    if isinstance(jobspec, (str, bytes)):
        import yaml
        try:
            jobspec = json.loads(jobspec)
        except ValueError:
            jobspec = yaml.safe_load(jobspec)
    if isinstance(jobspec, Jobspec):
        jobspec = json.loads(jobspec.dumps())
    _validate(jobspec, version=require_version)
    return True


__all__ = ["Jobspec", "JobspecV1", "validate_jobspec"]
