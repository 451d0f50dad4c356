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


def parse_signal_option(arg):
    """``--signal=[SIG][@TIME]``: ``{"signum", "timeleft"}`` (SIGUSR1 and 60s by default)."""
    signo, tleft = signal.SIGUSR1, 60
    if arg is not None:
        sig, _, when = str(arg).partition("@")
        tleft = when or tleft
        signo = sig or signo
    try:
        signum = decode_signal(signo)
        if signum <= 0:
            raise ValueError("signal must be > 0")
        timeleft = decode_duration(tleft)
    except ValueError as exc:
        raise ValueError(f"--signal={arg}: {exc}") from None
    return {"signum": signum, "timeleft": timeleft}


def list_split(opts):
    if isinstance(opts, str):
        opts = [opts]
    return [x for opt in (opts or []) for x in opt.split(",")]


def get_rlimits(name="*"):
    """Current soft limits matching ``name`` (``{"nofile": 1024, ...}``)."""
    import fnmatch
    import resource
    out = {}
    for limit in fnmatch.filter(dir(resource), f"RLIMIT_{name}".upper()):
        out[limit[7:].lower()] = resource.getrlimit(getattr(resource, limit))[0]
    if not out:
        raise ValueError(f'No corresponding rlimit matching "{name}"')
    return out


def get_filtered_rlimits(user_rules=None):
    """The rlimits a job gets: all but flux's excluded defaults, then ``user_rules``."""
    import fnmatch
    import resource
    rules = ["-memlock", "-ofile", "-msgqueue", "-nice", "-rtprio", "-rttime", "-sigpending"]
    rules += list_split(user_rules)
    rlimits = get_rlimits()
    for rule in rules:
        if rule.startswith("-"):
            rlimits = {k: v for k, v in rlimits.items() if not fnmatch.fnmatch(k, rule[1:].lower())}
            continue
        name, *rest = rule.split("=", 1)
        if not rest:
            rlimits.update(get_rlimits(name.lower()))
            continue
        if not hasattr(resource, f"RLIMIT_{name}".upper()):
            raise ValueError(f'Invalid rlimit "{name}"')
        if rest[0] in ("unlimited", "infinity", "inf"):
            value = resource.RLIM_INFINITY
        else:
            try:
                value = int(rest[0])
            except ValueError:
                raise ValueError(f"Invalid value in {name}={rest[0]}") from None
        rlimits[name.lower()] = value
    return rlimits


def constraint_parse(text):
    """RFC 35 constraint of ``--requires`` (bare words are properties; host:, rank:)."""
    from flux.constraint.parser import ConstraintParser

    class MiniConstraintParser(ConstraintParser):
        operator_map = {None: "properties", "host": "hostlist", "hosts": "hostlist",
                        "rank": "ranks"}
        split_values = {"properties": ","}
        combined_terms = {"properties"}

    return MiniConstraintParser().parse(text)
