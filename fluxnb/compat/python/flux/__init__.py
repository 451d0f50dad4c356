"""flux-core's Python API (``import flux``), served by fluxnb.

A thin package over fluxnb's API with flux-core's names, signatures, return types
and exceptions, so that code written for real Flux runs unchanged inside a fluxnb
instance.
"""

import flux.core.handle


def Flux(*args, **kwargs):
    return flux.core.handle.Flux(*args, **kwargs)


__all__ = ["core", "kvs", "rpc", "constants", "Flux"]
