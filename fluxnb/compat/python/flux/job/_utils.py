"""``flux.job._utils``: helpers of flux-core's job CLI (signals, durations, ``--conf``)."""

import json
import os
import pathlib
import signal

try:
    import tomllib
except ImportError:  # pragma: no cover - Python < 3.11
    import tomli as tomllib


def decode_signal(val):
    """A signal number from a number, ``SIGUSR1`` or ``USR1``; ValueError if invalid."""
    if isinstance(val, int):
        return val
    try:
        return int(val)
    except ValueError:
        pass
    for name in (val, f"SIG{val}"):
        num = getattr(signal, name, None)
        if isinstance(num, int):
            return int(num)
    raise ValueError(f"signal '{val}' is invalid")


def decode_duration(val):
    """Seconds from a number or an RFC 23 duration (``1.5m``)."""
    if isinstance(val, (float, int)):
        return val
    try:
        return float(val)
    except ValueError:
        pass
    from fluxnb.runtime.util.fsd import parse_fsd
    return parse_fsd(val)


def _merge(dest, src):
    dest = dict(dest or {})
    for key, val in (src or {}).items():
        if isinstance(val, dict) and isinstance(dest.get(key), dict):
            dest[key] = _merge(dest[key], val)
        else:
            dest[key] = val
    return dest


def _set_treedict(d, key, value):
    parts = key.split(".")
    for part in parts[:-1]:
        if not isinstance(d.get(part), dict):
            d[part] = {}
        d = d[part]
    d[parts[-1]] = value


def _get_treedict(d, key, default=None):
    for part in key.split("."):
        if not isinstance(d, dict) or part not in d:
            return default
        d = d[part]
    return d


class BatchConfig:
    """Build a config dict from successive ``--conf`` values (KEY=VAL, JSON/TOML text,
    a .toml/.json file, or a named config in ``$XDG_CONFIG_HOME/flux/config``)."""

    loaders = {".toml": tomllib.load, ".json": json.load}

    def __init__(self):
        self.config = None

    def update_string(self, value):
        try:
            conf = json.loads(value)
        except json.decoder.JSONDecodeError:
            try:
                conf = tomllib.loads(value)
            except tomllib.TOMLDecodeError:
                raise ValueError("--conf: failed to parse multiline as TOML or JSON") from None
        self.config = _merge(self.config, conf)
        return self

    def update_keyval(self, keyval):
        key, _, value = keyval.partition("=")
        try:
            value = json.loads(value)
        except json.decoder.JSONDecodeError:
            value = str(value)
        _set_treedict(self.config, key, value)
        return self

    def update_file(self, path, extension=".toml"):
        loader = self.loaders.get(extension)
        if loader is None:
            raise ValueError(f"--conf: {path} must end in .toml or .json")
        try:
            with open(path, "rb") as fp:
                conf = loader(fp)
        except OSError as exc:
            raise ValueError(f"--conf: {exc}") from None
        except (json.decoder.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"--conf: parse error: {path}: {exc}") from None
        self.config = _merge(self.config, conf)
        return self

    def update_named_config(self, name):
        dirs = [os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")]
        dirs += (os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":")
        for d in dirs:
            for ext in (".toml", ".json"):
                filename = os.path.join(d, "flux", "config", name + ext)
                if os.path.exists(filename):
                    return self.update_file(filename, ext)
        raise ValueError(f"--conf: named config '{name}' not found")

    def update(self, value):
        """Update the config from one ``--conf`` value (see the class doc)."""
        if self.config is None:
            self.config = {}
        if "\n" in value:
            return self.update_string(value)
        if "=" in value:
            return self.update_keyval(value)
        extension = pathlib.Path(value).suffix
        if extension in (".toml", ".json"):
            return self.update_file(value, extension)
        return self.update_named_config(value)

    def get(self, key, default=None):
        return _get_treedict(self.config or {}, key, default=default)


__all__ = ["decode_signal", "decode_duration", "BatchConfig"]
