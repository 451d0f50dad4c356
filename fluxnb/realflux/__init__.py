"""fluxnb's notebook face on a real Flux: engine detection and a flux-core handle adapter.

``engine.probe(uri)`` tells fluxnb's brokers from flux-core's; :class:`RealFlux`
gives the widgets and trace collection fluxnb's handle interface over flux-core's
``flux.Flux``; :func:`connect` returns the right handle for a URI. On a real Flux,
``FluxExecutor`` is flux-core's own (``flux.job.FluxExecutor`` from its bindings):
fluxnb adds no second executor.
"""

from __future__ import annotations

import os

from .engine import bindings, flux_cli, prefix, probe
from .handle import RealFlux

__all__ = ["RealFlux", "bindings", "connect", "flux_cli", "is_real", "prefix", "probe", "executor"]


def is_real(uri: str | None = None) -> bool:
    """True if ``uri`` (default ``$FLUX_URI``) is a running flux-core instance."""
    uri = uri or os.environ.get("FLUX_URI")
    return bool(uri) and probe(uri) == "flux-core"


def local_uri(uri: str) -> str:
    """``ssh://HOST/PATH`` (flux-core's job ``uri`` memo) as ``local://PATH`` when PATH is here."""
    if uri.startswith("ssh://"):
        path = "/" + uri[len("ssh://"):].partition("/")[2]
        if os.path.exists(path):
            return "local://" + path
    return uri


def connect(uri: str | None = None):
    """A handle on the instance at ``uri``: :class:`RealFlux` for flux-core, else ``fluxnb.Flux``.

    ``uri`` defaults to ``$FLUX_URI``, else the instance this process hosts. An
    instance hosted here is fluxnb's and is not probed.
    """
    from ..runtime.client import Flux, _hosted
    uri = local_uri(uri) if uri else uri
    target = uri or os.environ.get("FLUX_URI")
    if target and not any(getattr(inst, "uri", None) == target for inst in _hosted) \
            and is_real(target):
        return RealFlux(target)
    return Flux(uri)


def executor(uri: str | None = None, **kwargs):
    """flux-core's own ``FluxExecutor`` on the real instance at ``uri`` (default $FLUX_URI)."""
    flux = bindings()
    from flux.job import FluxExecutor
    if uri:
        kwargs.setdefault("handle_kwargs", {"url": uri})
    return FluxExecutor(**kwargs)
