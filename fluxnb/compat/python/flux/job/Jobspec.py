"""``flux.job.Jobspec``: jobspecs (RFC 14) and V1 jobspecs (RFC 25), with flux-core's
``apply_options()`` (the options of ``flux submit`` as keyword arguments)."""

import json
import os

from fluxnb.runtime.job.jobspec import Jobspec
from fluxnb.runtime.job.jobspec import JobspecV1 as _JobspecV1
from fluxnb.runtime.job.jobspec import validate as _validate

_OPTIONS = ("env", "rlimit", "signal", "taskmap", "dependency", "requires", "shell_options",
            "time_limit", "attributes", "add_file", "setopt", "setattr")


def validate_jobspec(jobspec, require_version=None):
    """Validate jobspec text (JSON or YAML) or a dict; ValueError if invalid."""
    if isinstance(jobspec, (str, bytes)):
        import yaml
        try:
            jobspec = json.loads(jobspec)
        except ValueError:
            jobspec = yaml.safe_load(jobspec)
    if isinstance(jobspec, Jobspec):
        jobspec = json.loads(jobspec.dumps())
    _validate(jobspec, version=require_version)
    return True


def _as_list(value):
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _attr_key(key):
    """``--setattr`` keys: bare means ``system.``; a leading ``.`` is ``attributes.``."""
    if key.startswith("."):
        return "attributes" + key
    if not key.startswith(("user.", "system.", "attributes.")):
        key = "system." + key
    return key if key.startswith("attributes.") else "attributes." + key


class JobspecV1(_JobspecV1):
    """A V1 jobspec (RFC 25): ``from_command()``, ``from_batch_command()``... and
    ``apply_options()``."""

    def apply_options(self, args=None, *, prog=None, _preinit=True, **kwargs):
        """Apply ``flux submit`` options (from ``args``, overridden by keyword arguments);
        returns self. ``env``/``rlimit`` apply only when given or when ``args`` is.

        With ``prog`` (``"submit"``, ``"run"``, ``"batch"``, ``"alloc"``) the CLI plugins
        of that command are loaded: their options are keyword arguments too (by their
        prefixed dest), and their ``preinit()`` (unless ``_preinit`` is false; it seeds
        their options' defaults first) and ``modify_jobspec()`` run last."""
        registry = None
        if prog:
            from flux.cli.plugin import CLIPluginRegistry
            registry = CLIPluginRegistry(prog)
        plugin_dests = {opt.dest for opt in registry.options} if registry else set()
        unknown = (set(kwargs) - set(_OPTIONS) - plugin_dests) \
            | ({"setopt", "setattr"} & set(kwargs))
        if unknown:
            raise TypeError(f"apply_options() got unexpected keyword argument(s): "
                            f"{', '.join(sorted(unknown))}")
        opts = {}
        for name in _OPTIONS:
            if args is not None and hasattr(args, name):
                opts[name] = getattr(args, name)
        opts.update((k, v) for k, v in kwargs.items() if k not in plugin_dests)
        from fluxnb.cli.common import CommandError
        try:
            self._apply(opts, args is not None)
        except CommandError as exc:
            raise ValueError(str(exc)) from None
        if registry is not None and registry.plugins:
            from types import SimpleNamespace
            merged = SimpleNamespace(**{k: None for k in _OPTIONS})
            if args is not None:
                merged.__dict__.update(vars(args) if hasattr(args, "__dict__") else {})
            merged.__dict__.update((k, v) for k, v in kwargs.items() if v is not None)
            if _preinit:
                for opt in registry.options:
                    if opt.dest not in merged.__dict__:
                        merged.__dict__[opt.dest] = opt.kwargs.get("default")
                registry.preinit(merged)
            registry.modify_jobspec(merged, self)
        return self

    def _apply(self, o, cli):
        from flux.job import _utils
        from fluxnb.cli.jobspec_args import environment_rules, parse_keyval, parse_time_limit

        if cli or "env" in o:
            rules = _as_list(o.get("env")) or []
            env = environment_rules([r for r in rules])
            expand = {k: v for k, v in env.items() if "{{" in v}
            for k in expand:
                del env[k]
            self.environment = env
            if expand:
                self.setattr_shell_option("env-expand", expand)
        if cli or "rlimit" in o:
            rlimits = _utils.get_filtered_rlimits(_as_list(o.get("rlimit")))
            if rlimits:
                self.setattr_shell_option("rlimit", rlimits)
        if o.get("time_limit") is not None:
            tl = o["time_limit"]
            self.duration = float(tl) if isinstance(tl, (int, float)) else parse_time_limit(tl)
        if o.get("signal") is not None:
            self.setattr_shell_option("signal", _utils.parse_signal_option(o["signal"]))
        if o.get("taskmap") is not None:
            scheme, _, value = str(o["taskmap"]).partition(":")
            self.setattr_shell_option("taskmap", {"scheme": scheme, "value": value})
        deps = _as_list(o.get("dependency"))
        if deps:
            from fluxnb.runtime.job.dependencies import DependencyError, parse_dependency_uri
            try:
                self.setattr("system.dependencies", [parse_dependency_uri(d) for d in deps])
            except DependencyError as exc:
                raise ValueError(str(exc)) from None
        requires = _as_list(o.get("requires"))
        if requires:
            self.setattr("system.constraints", _utils.constraint_parse(" ".join(requires)))
        for keyval in _as_list(o.get("setopt")) or []:
            key, val = parse_keyval("--setopt", keyval)
            self.setattr_shell_option(key, val)
        for key, val in (o.get("shell_options") or {}).items():
            self.setattr_shell_option(key, val)
        for keyval in _as_list(o.get("setattr")) or []:
            key, val = parse_keyval("--setattr", keyval)
            self.setattr(_attr_key(key), val)
        for key, val in (o.get("attributes") or {}).items():
            self.setattr(_attr_key(key), val)
        for arg in _as_list(o.get("add_file")) or []:
            self._add_file_arg(arg)

    # -- flux-core's builders of run/submit, alloc and batch jobspecs ------------------
    @classmethod
    def from_submit(cls, command, *, ntasks=None, nodes=None, cores_per_task=1,
                    gpus_per_task=None, exclusive=False, name=None, cwd=None, **options):
        """The jobspec ``flux submit COMMAND`` makes, with ``apply_options()`` options."""
        if ntasks is None and nodes:
            ntasks, exclusive = nodes, True
        js = cls.from_command(list(command), num_tasks=ntasks or 1, cores_per_task=cores_per_task,
                              gpus_per_task=gpus_per_task, num_nodes=nodes, exclusive=exclusive)
        js.cwd = cwd if cwd is not None else os.getcwd()
        if name is not None:
            js.setattr("system.job.name", name)
        options.setdefault("env", [])
        options.setdefault("rlimit", [])
        return js.apply_options(prog="submit", **options)

    @staticmethod
    def _conf(conf):
        from flux.job._utils import BatchConfig
        if conf is None or isinstance(conf, dict):
            return conf
        if isinstance(conf, BatchConfig):
            return conf.config
        return BatchConfig().update(str(conf)).config

    @classmethod
    def from_alloc(cls, command=None, *, nslots=None, nodes=None, cores_per_slot=1,
                   gpus_per_slot=None, exclusive=False, broker_opts=None, conf=None, bg=False,
                   name=None, cwd=None, **options):
        """The jobspec ``flux alloc`` makes (a nested instance; ``bg`` runs no initial program)."""
        if nslots is None:
            if not nodes:
                raise ValueError("from_alloc: nslots or nodes is required")
            nslots, exclusive = nodes, True
        bopts = list(broker_opts or [])
        if bg:
            bopts.append("-Sbroker.rc2_none=1")
        js = cls.from_nest_command(list(command or []), num_slots=nslots,
                                   cores_per_slot=cores_per_slot, gpus_per_slot=gpus_per_slot,
                                   num_nodes=nodes, broker_opts=bopts, exclusive=exclusive,
                                   conf=cls._conf(conf))
        if bg:
            js.setattr_shell_option("pty.capture", 1)
        js.cwd = cwd if cwd is not None else os.getcwd()
        if name is not None:
            js.setattr("system.job.name", name)
        options.setdefault("env", [])
        options.setdefault("rlimit", [])
        return js.apply_options(prog="alloc", **options)

    @classmethod
    def from_batch(cls, script=None, *, content=None, wrap=False, args=None, nslots=None,
                   nodes=None, cores_per_slot=1, gpus_per_slot=None, exclusive=False,
                   broker_opts=None, conf=None, name=None, cwd=None, output=None, **options):
        """The jobspec ``flux batch`` makes from a script file or its ``content``."""
        if (script is None) == (content is None):
            raise TypeError("from_batch: give exactly one of script or content")
        if script is not None:
            with open(os.fspath(script)) as f:
                content = f.read()
            jobname = os.path.basename(os.fspath(script))
        else:
            jobname = "batch"
        if wrap:
            content = "#!/bin/sh\n" + content
        if nslots is None:
            nslots = nodes or 1
            exclusive = exclusive or bool(nodes)
        js = cls.from_batch_command(content, jobname, args=args, num_slots=nslots,
                                    cores_per_slot=cores_per_slot, gpus_per_slot=gpus_per_slot,
                                    num_nodes=nodes, broker_opts=list(broker_opts or []),
                                    exclusive=exclusive, conf=cls._conf(conf))
        js.setattr("system.job.name", name or jobname)
        js.cwd = cwd if cwd is not None else os.getcwd()
        js.stdout = output or "flux-{{id}}.out"
        options.setdefault("env", [])
        options.setdefault("rlimit", [])
        return js.apply_options(prog="batch", **options)

    def _add_file_arg(self, arg):
        name, sep, data = arg.partition("=")
        if not sep:
            if "\n" in arg:
                raise ValueError("--add-file: file name missing for inline data")
            name, data = os.path.basename(arg), arg
        perms = None
        if ":" in name:
            name, _, mode = name.partition(":")
            perms = int(mode, 8)
        if "\n" in data:
            self.add_file(name, data, perms=perms)
            return
        try:
            with open(data) as f:
                content = f.read()
        except OSError as exc:
            raise ValueError(f"--add-file={arg}: {exc.strerror}") from None
        self.add_file(name, content, perms=perms or (os.stat(data).st_mode & 0o777))


__all__ = ["Jobspec", "JobspecV1", "validate_jobspec"]
