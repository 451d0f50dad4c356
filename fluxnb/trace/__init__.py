"""fluxnb.trace: PerfFlowAspect-compatible annotations and traces of an instance's jobs.

- :func:`critical_path` (and :func:`sync_event`, :func:`async_event`): the
  PerfFlowAspect decorator, writing ``perfflow.<host>.<pid>.pfw`` Chrome traces
  (:mod:`fluxnb.trace.aspect`).
- :func:`export` / :func:`write`: the jobs of an instance and of its nested
  instances, as one Chrome trace, merged with ``.pfw`` files (:mod:`fluxnb.trace.collect`).
- :func:`analyze`, :func:`critical_path_of`, :func:`utilization`: regions of each
  job, the critical path of a set of jobs, idle resources (:mod:`fluxnb.trace.regions`).
- :func:`load`, :func:`validate`: read and check Trace Event Format files
  (:mod:`fluxnb.trace.format`).

Examples
--------
>>> from fluxnb.trace import critical_path
>>> @critical_path()
... def work():
...     return 42
>>> work()
42
"""

from __future__ import annotations

import importlib

from .aspect import async_event, configure, critical_path, flush, sync_event

__all__ = ["critical_path", "sync_event", "async_event", "configure", "flush",
           "export", "write", "save_to_parent", "load", "validate", "jobs", "analyze",
           "critical_path_of", "utilization", "summary", "Table"]

# the rest loads on first use, so that decorating a function imports nothing heavy
_LAZY = {"export": ".collect", "write": ".collect", "save_to_parent": ".collect",
         "load": ".format", "validate": ".format",
         "jobs": ".regions", "analyze": ".regions", "critical_path_of": ".regions",
         "utilization": ".regions", "summary": ".regions", "Table": ".regions"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'fluxnb.trace' has no attribute {name!r}")
