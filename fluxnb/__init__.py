"""fluxnb: the Flux framework in Python, hosted in a terminal or a Jupyter kernel.

>>> import fluxnb                                          # doctest: +SKIP
>>> with fluxnb.Instance(test_size=4) as inst:             # doctest: +SKIP
...     print(fluxnb.Flux(inst.uri).attr_get("size"))
4
"""

from __future__ import annotations

from .runtime.client import AsyncFlux, Flux
from .runtime.instance import Instance, InstanceError
from .runtime.message import FluxError

__all__ = ["Flux", "AsyncFlux", "Instance", "InstanceError", "FluxError", "kvs", "job"]


def __getattr__(name: str):
    # submodules on first use, so `import fluxnb` stays light for the CLI
    if name in ("kvs", "job"):
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'fluxnb' has no attribute {name!r}")


def load_ipython_extension(ipython) -> None:
    """``%load_ext fluxnb``: register the ``%flux`` magics."""
    from .magics import load_ipython_extension as load
    load(ipython)


def unload_ipython_extension(ipython) -> None:
    from .magics import unload_ipython_extension as unload
    unload(ipython)
