"""fluxnb.compat: flux-core's ``flux`` Python package, served by fluxnb.

``PATH`` is the directory that holds the top-level ``flux`` package. Processes of an
instance get it on ``PYTHONPATH`` (as they get the ``flux`` CLI shim on ``PATH``), and
the kernel gets it on ``sys.path`` after ``%flux start``, unless a real flux-core
``flux`` package is importable: the real one always wins, and fluxnb says once how
to reach its own (:func:`use`).

Examples
--------
>>> env = add_to_environ({"PYTHONPATH": "/a"})         # doctest: +SKIP
>>> env["PYTHONPATH"] == PATH + ":/a"                  # doctest: +SKIP
True
"""

from __future__ import annotations

import os
import sys

#: the directory holding fluxnb's top-level ``flux`` package
PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "python")

NOTE = ("fluxnb: a real flux-core `flux` Python package is importable ({where}); it wins over "
        "fluxnb's. To use fluxnb's instead: `import fluxnb.compat; fluxnb.compat.use()`\n")

_noted: list[str] = []


def _is_flux_package(entry: str) -> bool:
    d = os.path.join(entry or ".", "flux")
    return os.path.isfile(os.path.join(d, "__init__.py")) or os.path.isdir(os.path.join(d, "core"))


_real_flux_seen: dict[tuple, str | None] = {}


def real_flux(pythonpath: str | None = None) -> str | None:
    """Where a flux package other than fluxnb's is importable (``sys.path`` and the
    entries of ``pythonpath``), or None.

    The answer is kept per (``pythonpath``, ``sys.path``): every job of an instance asks
    it with the same environment, and scanning the path costs a stat per entry."""
    key = (pythonpath, tuple(sys.path))
    try:
        return _real_flux_seen[key]
    except KeyError:
        pass
    where = _real_flux_scan(pythonpath)
    if len(_real_flux_seen) > 64:
        _real_flux_seen.clear()
    _real_flux_seen[key] = where
    return where


def _real_flux_scan(pythonpath: str | None) -> str | None:
    entries = (pythonpath.split(os.pathsep) if pythonpath else []) + list(sys.path)
    for entry in entries:
        if entry and os.path.abspath(entry) != PATH and _is_flux_package(entry):
            return os.path.join(entry, "flux")
    return None


def _note(where: str) -> None:
    if where not in _noted:
        _noted.append(where)
        sys.stderr.write(NOTE.format(where=where))


def add_to_environ(env: dict) -> dict:
    """Put :data:`PATH` on ``env["PYTHONPATH"]`` (once) unless a real flux shadows it."""
    pp = env.get("PYTHONPATH", "")
    parts = pp.split(os.pathsep) if pp else []
    if PATH in parts:
        return env
    where = real_flux(pp)
    if where is not None:
        _note(where)
        return env
    env["PYTHONPATH"] = os.pathsep.join([PATH] + parts)
    return env


def add_to_sys_path() -> bool:
    """Make ``import flux`` give fluxnb's package in this process (the kernel after
    ``%flux start``), unless a real flux is importable; True if it was added."""
    if PATH in sys.path:
        return True
    where = real_flux()
    if where is not None:
        _note(where)
        return False
    sys.path.append(PATH)
    return True


def use() -> None:
    """Make ``import flux`` give fluxnb's package even where a real flux-core is
    importable (drops any ``flux`` modules already imported)."""
    if PATH in sys.path:
        sys.path.remove(PATH)
    sys.path.insert(0, PATH)
    for name in [m for m in sys.modules if m == "flux" or m.startswith("flux.")]:
        mod = sys.modules[name]
        if not (getattr(mod, "__file__", None) or "").startswith(PATH):
            del sys.modules[name]
