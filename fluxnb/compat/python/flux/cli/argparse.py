"""``flux.cli.argparse.FluxArgumentParser``: argparse as flux commands use it.

- abbreviated long options are refused (``allow_abbrev=False``);
- help shows ``-n, --ntasks=N`` with a wide option column (``argwidth``);
- ``add_argument(..., hidden_aliases=("--state",))`` accepts extra option
  names that ``--help`` does not show;
- ``posix=True`` stops option processing at the first non-option (the
  command), so ``flux run cmd --ntasks=8`` passes ``--ntasks=8`` to ``cmd``.
"""

from __future__ import annotations

import argparse
import re

__all__ = ["FluxArgumentParser", "FluxHelpFormatter"]

_NEGATIVE = re.compile(r"^-\d+$|^-\d*\.\d+$")


class FluxHelpFormatter(argparse.HelpFormatter):
    """Help with ``-o, --option=METAVAR`` invocations."""

    def __init__(self, prog, indent_increment=2, max_help_position=40, width=None):
        super().__init__(prog, indent_increment, max_help_position, width)

    def _format_action_invocation(self, action):
        if not action.option_strings:
            return super()._format_action_invocation(action)
        text = ", ".join(action.option_strings)
        if action.nargs != 0:
            text += "=" + self._format_args(action,
                                            self._get_default_metavar_for_optional(action))
        # long-only options line up with the long forms after "-x, "
        return text if action.option_strings[0][1] != "-" else "    " + text


class FluxRawDescriptionHelpFormatter(FluxHelpFormatter):
    def _fill_text(self, text, width, indent):
        return "".join(indent + line for line in text.splitlines(keepends=True))


def _add_with_aliases(container, add, args, kwargs):
    aliases = kwargs.pop("hidden_aliases", None) or ()
    if isinstance(aliases, str) or not all(isinstance(a, str) for a in aliases):
        raise TypeError("hidden_aliases must be a tuple or list of option strings, "
                        "not a str")
    action = add(*args, **kwargs)
    for alias in aliases:
        if not alias.startswith("-"):
            raise ValueError(f"hidden alias '{alias}' must start with '-'")
        container._option_string_actions[alias] = action
    return action


class _Group(argparse._ArgumentGroup):
    def add_argument(self, *args, **kwargs):
        return _add_with_aliases(self, super().add_argument, args, kwargs)


class _MutexGroup(argparse._MutuallyExclusiveGroup):
    def add_argument(self, *args, **kwargs):
        return _add_with_aliases(self, super().add_argument, args, kwargs)


class FluxArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser with flux-core's conventions (see the module doc)."""

    def __init__(self, *args, posix=False, raw_description=False, argwidth=40, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        if "formatter_class" not in kwargs:
            base = FluxRawDescriptionHelpFormatter if raw_description else FluxHelpFormatter

            def formatter(prog):
                return base(prog, max_help_position=argwidth)

            kwargs["formatter_class"] = formatter
        self.posix = posix
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):
        return _add_with_aliases(self, super().add_argument, args, kwargs)

    def add_argument_group(self, *args, **kwargs):
        group = _Group(self, *args, **kwargs)
        self._action_groups.append(group)
        return group

    def add_mutually_exclusive_group(self, **kwargs):
        group = _MutexGroup(self, **kwargs)
        self._mutually_exclusive_groups.append(group)
        return group

    def add_subparsers(self, **kwargs):
        kwargs.setdefault("parser_class", type(self))
        return super().add_subparsers(**kwargs)

    # -- posix mode --------------------------------------------------------
    def _is_option(self, arg):
        if not arg or arg == "-" or not arg.startswith("-"):
            return False
        return not (_NEGATIVE.match(arg) and not self._has_negative_number_optionals)

    def _nargs_after(self, args, i):
        """How many tokens after option ``args[i]`` are its values."""
        arg = args[i]
        if arg.startswith("--"):
            if "=" in arg:
                return 0
            action = self._option_string_actions.get(arg)
        else:
            action = self._option_string_actions.get(arg)
            if action is None:
                return 0  # -n4 style, or unknown: value embedded / none
        if action is None:
            return 0
        nargs = action.nargs
        rest = args[i + 1:]
        if nargs is None:
            return 1 if rest else 0
        if isinstance(nargs, int):
            return min(nargs, len(rest))
        if nargs == "?":
            return 1 if rest and not self._is_option(rest[0]) else 0
        if nargs in ("*", "+"):
            n = 0
            while n < len(rest) and not self._is_option(rest[n]) and rest[n] != "--":
                n += 1
            return n
        return 0

    def _split_posix(self, args):
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--" or not self._is_option(arg):
                return args[:i], args[i:]
            i += 1 + self._nargs_after(args, i)
        return args, []

    def parse_known_args(self, args=None, namespace=None):
        if not self.posix:
            return super().parse_known_args(args, namespace)
        import sys

        args = list(sys.argv[1:] if args is None else args)
        remainder = [a for a in self._actions if a.nargs == argparse.REMAINDER]
        head, tail = self._split_posix(args)
        if not remainder:
            return super().parse_known_args(head + tail, namespace)
        ns, extra = super().parse_known_args(head, namespace)
        setattr(ns, remainder[0].dest, list(tail))
        return ns, extra
