"""``flux.conf_builtin``: the configuration compiled into Flux (``conf_builtin_get``).

fluxnb is not compiled: its "built-in" values are where this package and its
configuration live. The installed and in-tree values are the same (fluxnb runs from
where it is). Only the names fluxnb has a value for are known; any other name is a
ValueError, as in flux-core for a name libflux does not have.
"""

import os

_PYTHON_PATH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _values():
    return {
        # where flux-core's tools look for configuration (e.g. cli/plugins)
        "confdir": os.environ.get("FLUX_CONF_DIR", "/etc/flux"),
        # where `import flux` finds this package
        "python_path": _PYTHON_PATH,
    }


def conf_builtin_get(name, which="auto"):
    """The built-in configuration value ``name``; ``which`` is "installed", "intree"
    or "auto" (the one that applies to this package)."""
    if which not in ("auto", "installed", "intree"):
        raise ValueError("which must be one of auto, installed, or intree")
    try:
        return _values()[name]
    except (KeyError, TypeError):
        raise ValueError(f"No builtin config value for '{name}'") from None


__all__ = ["conf_builtin_get"]
