"""IPython magics: ``%load_ext fluxnb`` registers ``%flux`` / ``%%flux``."""

from __future__ import annotations


def load_ipython_extension(ipython) -> None:
    from .connect import autodetect
    from .flux import FluxMagics
    ipython.register_magics(FluxMagics)
    autodetect(ipython.magics_manager.registry["FluxMagics"])  # inside a real Flux: use it


def unload_ipython_extension(ipython) -> None:
    magics = ipython.magics_manager.registry.get("FluxMagics")
    if magics is not None and magics.instance is not None:
        magics.stop()
