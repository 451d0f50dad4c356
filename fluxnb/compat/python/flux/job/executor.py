"""``flux.job.executor``: ``FluxExecutor`` (concurrent.futures) — fluxnb's executor.

fluxnb's executor thread is its own design (``fluxnb.job.executor``); flux-core's
private ``_FluxExecutorThread`` internals are not reproduced: the name exists so that
code importing it fails where it uses it, not at import.
"""

import collections

from fluxnb.job.executor import FluxExecutor, FluxExecutorFuture
from fluxnb.job.executor import _ExecutorThread as _FluxExecutorThread  # noqa: F401

_SubmitPackage = collections.namedtuple("_SubmitPackage", ["submit_args", "submit_kwargs", "future"])
_AttachPackage = collections.namedtuple("_AttachPackage", ["jobid", "future"])

__all__ = ["FluxExecutor", "FluxExecutorFuture"]
