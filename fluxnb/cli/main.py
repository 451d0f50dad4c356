"""The ``fluxnb`` command (and the ``flux`` shim inside instances).

Subcommands are looked up lazily so that ``flux getattr size`` imports only what
it needs. ``flux mini X`` is accepted as ``flux X``, as the 2023 tutorial uses it.
"""

from __future__ import annotations

import importlib
import os
import sys

#: command name -> (module, summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "start": ("fluxnb.cli.start", "start a fluxnb instance (and run a command in it)"),
    "shutdown": ("fluxnb.cli.broker", "shut down the instance"),
    "getattr": ("fluxnb.cli.broker", "get a broker attribute"),
    "setattr": ("fluxnb.cli.broker", "set a broker attribute"),
    "lsattr": ("fluxnb.cli.broker", "list broker attributes"),
    "uptime": ("fluxnb.cli.broker", "tell how long the instance has been running"),
    "version": ("fluxnb.cli.broker", "display version information (as flux version)"),
    "module": ("fluxnb.cli.broker", "list, load and unload broker modules"),
    "dmesg": ("fluxnb.cli.broker", "print or clear the broker log ring buffer"),
    "ping": ("fluxnb.cli.broker", "send echo requests to a service"),
    "overlay": ("fluxnb.cli.overlay", "show the status of the overlay network (the tree of brokers)"),
    "exec": ("fluxnb.cli.exec", "run a command on ranks of the instance"),
    "kvs": ("fluxnb.cli.kvs", "access the key-value store"),
    "run": ("fluxnb.cli.submit", "run a job interactively"),
    "submit": ("fluxnb.cli.submit", "submit a job to the queue"),
    "bulksubmit": ("fluxnb.cli.submit", "submit jobs for each input, as GNU parallel does"),
    "jobs": ("fluxnb.cli.jobs", "list jobs"),
    "job": ("fluxnb.cli.job", "job utilities: attach, info, eventlog, wait-event, status, ..."),
    "cancel": ("fluxnb.cli.job", "cancel one or more jobs"),
    "watch": ("fluxnb.cli.job", "watch jobs until they are done"),
    "resource": ("fluxnb.cli.resource", "list and manage resources"),
    "queue": ("fluxnb.cli.queue", "control the job queue"),
    "housekeeping": ("fluxnb.cli.housekeeping", "list and kill housekeeping tasks"),
    "broker": ("fluxnb.cli.nest", "run a nested instance as a job's program (batch, alloc)"),
    "batch": ("fluxnb.cli.hier", "submit a batch script to run in a nested instance"),
    "alloc": ("fluxnb.cli.hier", "run a command or shell in a nested instance"),
    "proxy": ("fluxnb.cli.hier", "run a command against a job's nested instance"),
    "uri": ("fluxnb.cli.hier", "print the URI of an instance (a job's, or the parent's)"),
    "pstree": ("fluxnb.cli.pstree", "show the tree of jobs and nested instances"),
    "top": ("fluxnb.cli.pstree", "summary of an instance and its jobs"),
    "resource-query": ("fluxnb.cli.resource_query", "Fluxion resource-query drop-in"),
    "dyad": ("fluxnb.cli.dyad", "DYAD producer/consumer file streaming"),
    "trace": ("fluxnb.cli.trace", "export and analyze job traces (PerfFlowAspect format)"),
    "archive": ("fluxnb.cli.archive", "store files in the KVS and extract them anywhere (flux archive)"),
    "tree": ("fluxnb.cli.tree", "lay out a hierarchy of nested instances and run jobs in it"),
}


def available() -> dict[str, tuple[str, str]]:
    """The commands whose implementing module is installed."""
    from importlib.util import find_spec
    return {name: entry for name, entry in COMMANDS.items() if find_spec(entry[0]) is not None}


def prog_name() -> str:
    """``flux`` inside an instance (the shim), else ``fluxnb``."""
    base = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "fluxnb"
    return "flux" if base == "flux" else "fluxnb"


def usage() -> str:
    prog = prog_name()
    commands = available()
    width = max(map(len, commands))
    lines = [f"Usage: {prog} [OPTIONS] COMMAND ARGS", "",
             "fluxnb: the Flux framework in Python. Commands:"]
    for name, (_, summary) in commands.items():
        lines.append(f"   {name:<{width}}  {summary}")
    lines += ["", f"See '{prog} COMMAND --help' for the options of a command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run one command; ``argv`` defaults to ``sys.argv[1:]``.

    Without ``argv`` this is a process's entry point (the ``flux`` shim, ``fluxnb``,
    ``python -m fluxnb.cli.main``): its handles then speak ZMTP themselves instead of
    importing pyzmq (:data:`fluxnb.runtime.client.NATIVE_IPC`), a process-wide choice.
    A host calling ``main(argv)`` (the notebook's ``%flux``, in the kernel) keeps its
    own handles as they are.
    """
    if argv is None:
        from ..runtime import client
        client.NATIVE_IPC = True
    try:
        return _main(argv)
    except BrokenPipeError:  # `flux help | head`: the reader went away, as it may
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0


def _main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    prog = prog_name()
    if not args or args[0] in ("-h", "--help", "help"):
        if len(args) > 1 and args[0] == "help":
            return _main([args[1], "--help"])
        print(usage())
        return 0 if args else 1
    if args[0] == "--version":
        from ..runtime.instance import _version
        print(f"fluxnb {_version()}")
        return 0
    if args[0] == "mini" and len(args) > 1:
        args = args[1:]
    name = args[0]
    entry = COMMANDS.get(name)
    if entry is not None:
        from importlib.util import find_spec
        if find_spec(entry[0]) is None:
            entry = None
    if entry is None:
        print(f"{prog}: '{name}' is not a {prog} command. See '{prog} --help'", file=sys.stderr)
        return 1
    module = importlib.import_module(entry[0])
    if name == "resource-query":
        return module.main(args[1:])
    try:
        return module.run(name, args[1:], prog) or 0
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
