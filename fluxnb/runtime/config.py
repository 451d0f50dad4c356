"""An instance's configuration (flux-config(5)): TOML files, as ``flux start -c`` reads them.

``load(path)`` reads one ``.toml`` file, or every ``*.toml`` file of a directory in
name order, merging their tables; a key set twice is an error naming both files,
as flux-core's broker reports it.  The result is what ``config.get`` returns and
what services read (``[job-manager.housekeeping]``, ``[resource]``, ...).

Examples
--------
>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> with open(os.path.join(d, "hk.toml"), "w") as f:
...     _ = f.write('[job-manager.housekeeping]\\ncommand = ["true"]\\nrelease-after = "0"\\n')
>>> load(d)["job-manager"]["housekeeping"]["release-after"]
'0'
"""

from __future__ import annotations

import os
import tomllib
from typing import Any

__all__ = ["ConfigError", "load", "get"]


class ConfigError(ValueError):
    """A configuration file that cannot be read or merged."""


def _merge(into: dict[str, Any], new: dict[str, Any], where: str, origin: dict[str, str],
           prefix: str = "") -> None:
    for key, val in new.items():
        full = f"{prefix}{key}"
        if isinstance(val, dict) and isinstance(into.get(key), dict):
            _merge(into[key], val, where, origin, full + ".")
        elif key in into:
            raise ConfigError(f"{where}: '{full}' is already set in {origin.get(full, 'another file')}")
        else:
            into[key] = val
            origin[full] = where


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The merged configuration of a TOML file or of a directory of them."""
    path = os.fspath(path)
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".toml"))
    elif os.path.exists(path):
        files = [path]
    else:
        raise ConfigError(f"{path}: no such file or directory")
    conf: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for fn in files:
        try:
            with open(fn, "rb") as f:
                data = tomllib.load(f)
        except OSError as exc:
            raise ConfigError(f"{fn}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{fn}: {exc}") from None
        _merge(conf, data, fn, origin)
    return conf


def get(conf: dict[str, Any] | None, dotted: str, default: Any = None) -> Any:
    """``conf["a"]["b"]`` for ``"a.b"``, or ``default`` where a table is missing."""
    cur: Any = conf or {}
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return default
        cur = cur[part]
    return cur
