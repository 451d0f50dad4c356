"""fluxnb: the Flux framework in Python, hosted in a terminal or a Jupyter kernel.

>>> import fluxnb                                          # doctest: +SKIP
>>> with fluxnb.Instance(test_size=4) as inst:             # doctest: +SKIP
...     print(fluxnb.Flux(inst.uri).attr_get("size"))
4
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: importing typing costs a `flux` command
if TYPE_CHECKING:  # pragma: no cover
    from .runtime.client import AsyncFlux, Flux
    from .runtime.instance import Instance, InstanceError
    from .runtime.message import FluxError

__all__ = ["Flux", "AsyncFlux", "Instance", "InstanceError", "FluxError", "kvs", "job", "widgets"]

# names load on first use, so that `flux run` (a new process each time) imports
# only what it needs: no broker, no asyncio, no YAML
_LAZY = {"Flux": ".runtime.client", "AsyncFlux": ".runtime.client",
         "Instance": ".runtime.instance", "InstanceError": ".runtime.instance",
         "FluxError": ".runtime.message"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    if name in ("kvs", "job", "widgets", "magics", "dyad", "trace"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'fluxnb' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython) -> None:
    """``%load_ext fluxnb``: register the ``%flux`` magics."""
    from .magics import load_ipython_extension as load
    load(ipython)


def unload_ipython_extension(ipython) -> None:
    from .magics import unload_ipython_extension as unload
    unload(ipython)
