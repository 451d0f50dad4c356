"""``flux.core.handle.Flux``: flux-core's handle, over fluxnb's client."""

from fluxnb.runtime.client import Flux as _FluxnbFlux


class Flux(_FluxnbFlux):
    """A handle to the enclosing instance (``FLUX_URI``), with flux-core's methods."""
