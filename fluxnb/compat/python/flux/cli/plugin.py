"""``flux.cli.plugin``: site plugins for ``flux run/submit/batch/alloc``
(flux-core's CLI plugin interface): a :class:`CLIPlugin` adds prefixed long
options (``--site-foo``) and may modify or validate the jobspec; a
:class:`CLIPluginRegistry` loads the plugins of a command from
``FLUX_CLI_PLUGINPATH`` (prepended to the default path) or only from
``FLUX_CLI_PLUGINPATH_OVERRIDE``, dropping a plugin whose option names
clash with one already loaded."""

from __future__ import annotations

import glob
import importlib.util
import inspect
import os
import sys
from abc import ABC

__all__ = ["CLIPlugin", "CLIPluginOption", "CLIPluginRegistry", "PluginArgsProxy"]


class PluginArgsProxy:
    """The parsed arguments as a plugin sees them: its options under their
    unprefixed names (``args.my_option`` for ``--site-my-option``) too."""

    __slots__ = ("_ns", "_alias")

    def __init__(self, args, alias):
        object.__setattr__(self, "_ns", args)
        object.__setattr__(self, "_alias", alias)

    def __getattr__(self, name):
        return getattr(object.__getattribute__(self, "_ns"),
                       object.__getattribute__(self, "_alias").get(name, name))

    def __setattr__(self, name, value):
        setattr(object.__getattribute__(self, "_ns"),
                object.__getattribute__(self, "_alias").get(name, name), value)


class CLIPluginOption:
    """A plugin's long option, named ``--PREFIX-NAME``; its ``dest`` follows
    the prefixed name unless given."""

    def __init__(self, name, prefix, **kwargs):
        if not name.startswith("--"):
            raise ValueError("Plugins must register only long options.")
        self.name = name.replace("--", f"--{prefix}-", 1) if prefix else name
        if "dest" in kwargs:
            self._unprefixed_dest = None
        else:
            self._unprefixed_dest = name[2:].replace("-", "_")
            kwargs["dest"] = self.name[2:].replace("-", "_")
        self.kwargs = kwargs

    @property
    def dest(self):
        return self.kwargs["dest"]


class CLIPlugin(ABC):  # noqa: B024 - every hook is optional
    """Base class of CLI plugins: override ``preinit``, ``modify_jobspec``
    and/or ``validate``; add options with :meth:`add_option`."""

    def __init__(self, prog, prefix="ex", version=None):
        self.prog = prog[5:] if prog.startswith("flux ") else prog
        self.path = None
        self.prefix = prefix
        self.version = version
        self.options = []

    def help(self, option):
        doc = inspect.getdoc(self)
        if doc is None or doc == inspect.getdoc(CLIPlugin):
            print(f"No extra documentation for option `{option.name}` found.",
                  file=sys.stderr)
            return
        print(f"\nDocumentation for plugin providing option `{option.name}`:\n")
        sys.stdout.write(doc + "\n")

    def add_option(self, name, **kwargs):
        """Add long option ``name`` (prefixed); other arguments go to
        ``ArgumentParser.add_argument``."""
        self.options.append(CLIPluginOption(name, prefix=self.prefix, **kwargs))

    def preinit(self, args):
        """Called after options are parsed, before the jobspec is made."""

    def modify_jobspec(self, args, jobspec):
        """Called with the parsed options and the jobspec, to change it."""

    def validate(self, jobspec):
        """Raise ValueError if the final jobspec is not acceptable."""


def _import_path(path):
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CLIPluginRegistry:
    """The plugins of command ``prog``, loaded from the plugin search path."""

    default_plugins: list = []
    plugin_namespace = "flux.cli.plugins"

    def __init__(self, prog):
        self.prog = prog
        self.plugins = []
        self.plugindirs = self._get_searchpath()
        self._load_plugins(prog)

    @staticmethod
    def _get_searchpath():
        if "FLUX_CLI_PLUGINPATH_OVERRIDE" in os.environ:
            raw = os.environ["FLUX_CLI_PLUGINPATH_OVERRIDE"]
            return [d for d in raw.split(":") if d and not d.isspace()]
        extra = [d for d in os.environ.get("FLUX_CLI_PLUGINPATH", "").split(":")
                 if d and not d.isspace()]
        confdir = os.environ.get("FLUX_CONF_DIR", "/etc/flux")
        return extra + [os.path.join(confdir, "cli", "plugins")]

    def _add_plugins_from_module(self, module, program):
        for attr in dir(module):
            entry = getattr(module, attr)
            if (not attr.startswith("_") and isinstance(entry, type)
                    and issubclass(entry, CLIPlugin) and entry is not CLIPlugin):
                plugin = entry(program)
                plugin.path = getattr(module, "__file__", None)
                self.plugins.append(plugin)

    def _load_plugins(self, program):
        for plugindir in self.plugindirs:
            for path in glob.glob(os.path.join(plugindir, "*.py")):
                self._add_plugins_from_module(_import_path(path), program)
        dests = {}
        for plugin in list(self.plugins):
            if any(opt.dest in dests for opt in plugin.options):
                self.plugins.remove(plugin)  # the first to claim a name keeps it
            else:
                dests.update((opt.dest, opt) for opt in plugin.options)
        self.options = list(dests.values())
        return self

    def print_help(self, name):
        for plugin in self.plugins:
            for option in plugin.options:
                if name in (option.name, option.name.lstrip("-")):
                    plugin.help(option)
                    sys.exit(0)
        raise ValueError(f"--help: no such option {name}")

    def print_plugins(self):
        print("Options provided by plugins:")
        print(f"  Search path: {':'.join(self.plugindirs)}\n")
        for plugin in self.plugins:
            print(f"{type(plugin).__name__} loaded from {plugin.path}")
            for option in plugin.options:
                print(f"  {option.name:<20}  {option.kwargs.get('help', '')}")
            print()

    def _make_alias(self, plugin):
        return {opt._unprefixed_dest: opt.dest for opt in plugin.options
                if opt._unprefixed_dest is not None and opt._unprefixed_dest != opt.dest}

    def add_options(self, parser):
        """Add every plugin option to an argparse parser."""
        for opt in self.options:
            parser.add_argument(opt.name, **opt.kwargs)

    def preinit(self, args):
        for plugin in self.plugins:
            plugin.preinit(PluginArgsProxy(args, self._make_alias(plugin)))

    def modify_jobspec(self, args, jobspec):
        for plugin in self.plugins:
            plugin.modify_jobspec(PluginArgsProxy(args, self._make_alias(plugin)), jobspec)

    def validate(self, jobspec):
        for plugin in self.plugins:
            plugin.validate(jobspec)
