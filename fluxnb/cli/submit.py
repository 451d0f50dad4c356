"""``flux run``, ``flux submit`` and ``flux bulksubmit``.

As in flux-core: ``submit`` prints each new job's id (F58) on its own line;
``run`` submits one job and attaches to it (see :mod:`fluxnb.cli.attach`);
``bulksubmit`` submits one job per input (stdin lines, or ``:::`` lists whose
cartesian product is taken, like GNU parallel), formatting ``{}``, ``{0}``,
``{seq}``... into the command and options. ``--cc``/``--bcc`` submit copies,
``--wait``/``--watch`` wait for the jobs (and show their output) and exit with
the largest exit code.
"""

from __future__ import annotations

import argparse
import itertools
import sys

from .common import CommandError, command, handle, parser
from .jobspec_args import (add_submit_options, build_jobspec, cc_list, parse_flags,
                           parse_urgency, substitute, substitute_args)

DESCRIPTIONS = {
    "run": "Submit a job and attach to it: print its output, forward stdin, and exit "
           "with its exit code.",
    "submit": "Enqueue a job and print its id.",
    "bulksubmit": "Submit a job for each input (stdin lines or ::: lists), substituting "
                  "{} in the command and options, as GNU parallel does.",
}


def run(name: str, argv: list[str], prog: str) -> int:
    """Entry point for ``flux run|submit|bulksubmit`` (see ``fluxnb.cli.main``)."""
    if name == "run":
        return cmd_run(name, argv, prog)
    if name == "bulksubmit":
        return cmd_bulksubmit(name, argv, prog)
    return cmd_submit(name, argv, prog)


def build_parser(prog: str, name: str) -> argparse.ArgumentParser:
    p = parser(prog, name, DESCRIPTIONS[name])
    p.usage = f"{prog} {name} [OPTIONS...] COMMAND [ARGS...]"
    add_submit_options(p, bulk=name != "run")
    if name == "run":
        p.add_argument("--wait-event", metavar="NAME",
                       help="Pass --wait-event=NAME to flux-job attach")
    if name == "bulksubmit":
        p.add_argument("--shuffle", action="store_true",
                       help="Shuffle list of commands before submission")
        p.add_argument("--sep", metavar="STRING", default="\n",
                       help="Set the input argument separator. To split on whitespace, "
                            "use --sep=none. The default is newline.")
    p.add_argument("command", nargs=argparse.REMAINDER, help="Job command and arguments")
    return p


# -- flux run ----------------------------------------------------------------------------
@command
def cmd_run(name: str, argv: list[str], prog: str) -> int:
    from ..job import submit
    from .attach import attach
    args = build_parser(prog, name).parse_args(argv)
    jobspec = build_jobspec(args, args.command)
    if args.dry_run:
        print(jobspec.dumps())
        return 0
    flags = parse_flags(args.flags)
    urgency = parse_urgency(args.urgency)
    if args.input is None:
        # only an attached submitter has a stdin to give: ask the shell to read it
        jobspec.setattr_shell_option("stdin", "forward")
    with handle() as h:
        jobid = submit(h, jobspec, urgency=urgency, **flags)
        if args.verbose > 0:
            print("jobid:", jobid.f58, file=sys.stderr, flush=True)
        return attach(h, jobid, label_io=args.label_io, stdin=args.input is None,
                      show_events=args.verbose > 1, show_exec=args.verbose > 2,
                      wait_event=args.wait_event or "finish", prog=prog)


# -- flux submit ---------------------------------------------------------------------------
@command
def cmd_submit(name: str, argv: list[str], prog: str) -> int:
    args = build_parser(prog, name).parse_args(argv)
    if not args.command:
        raise CommandError("job command and arguments are missing")
    return Submitter(args, prog, name).run([(args, [])])


# -- flux bulksubmit ---------------------------------------------------------------------
def split_inputs(command: list[str], delim: str = ":::") -> tuple[list[str], list, list]:
    """Split ``CMD ::: A B ::: C`` into the command template, the input lists and the
    linked lists (``:::+``); ``:::: FILE`` reads a list from FILE (``-`` for stdin).

    >>> split_inputs(["echo", "{}", ":::", "a", "b", ":::+", "x"])
    (['echo', '{}'], [['a', 'b']], [(1, ['x'])])
    """
    groups: list[list[str]] = [[]]
    for arg in command:
        if arg.startswith(delim) and arg in (delim, delim + ":", delim + "+", delim + ":+"):
            groups.append([arg])
        else:
            groups[-1].append(arg)
    template, lists, links = groups[0], [], []
    for i, (sep, *items) in enumerate(groups[1:]):
        if sep in (delim + ":", delim + ":+"):
            if len(items) != 1:
                raise CommandError("Multiple args not allowed after ::::")
            items = _read_inputs(items[0], "\n")
        if sep.endswith("+"):
            links.append((i, items))
        else:
            lists.append(items)
    return template, lists, links


def _read_inputs(path: str, sep: str | None) -> list[str]:
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path) as f:
                text = f.read()
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror}") from None
    return [x for x in text.split(sep) if x]


def bulk_commands(args: argparse.Namespace) -> list[tuple[argparse.Namespace, list[str]]]:
    """One (arguments, changed-option text) pair per combination of inputs."""
    sep = args.sep.encode().decode("unicode_escape")
    sep = None if sep.lower() == "none" else sep
    template, lists, links = split_inputs(args.command)
    if not lists and not links:
        lists = [_read_inputs("-", sep)]
    combos = [list(c) for c in itertools.product(*lists)]
    for index, items in links:
        cycle = itertools.cycle(items)
        for combo in combos:
            combo.insert(index, next(cycle))
    base = argparse.Namespace(**vars(args))
    base.command = template or ["{}"]
    return [substitute_args(base, combo, seq=i, seq1=i + 1, cc="{cc}")
            for i, combo in enumerate(combos)]


@command
def cmd_bulksubmit(name: str, argv: list[str], prog: str) -> int:
    args = build_parser(prog, name).parse_args(argv)
    commands = bulk_commands(args)
    if args.shuffle:
        import random
        random.shuffle(commands)
    total = sum(len(cc_list(xargs)) for xargs, _ in commands)
    if total == 0:
        raise CommandError("no jobs provided for bulk submission")
    if args.dry_run:
        if args.progress:
            print(f"bulksubmit: submitting a total of {total} jobs")
        for xargs, shown in commands:
            print("bulksubmit: submit " + " ".join([*shown, *xargs.command]))
        return 0
    if args.verbose:
        for xargs, shown in commands:
            print("bulksubmit: submit " + " ".join([*shown, *xargs.command]))
    return Submitter(args, prog, name).run(commands)


# -- submission of many jobs ------------------------------------------------------------
class Submitter:
    """Submit jobs (and their ``--cc`` copies) pipelined, print their ids, then wait
    for or watch them if asked; return the exit code."""

    #: submit requests in flight at once
    WINDOW = 256

    def __init__(self, args: argparse.Namespace, prog: str, name: str):
        self.args = args
        self.prog = prog
        self.name = name
        self.exitcode = 0
        self.progress = None

    def jobspecs(self, commands):
        """Yield ``(label, jobspec)`` for every job to submit."""
        for xargs, _ in commands:
            copies = cc_list(xargs)
            for cc in copies:
                if cc is None:
                    yield "", build_jobspec(xargs, xargs.command)
                    continue
                yargs, _ = substitute_args(xargs, [], cc=cc)
                jobspec = build_jobspec(yargs, yargs.command)
                if xargs.cc:
                    jobspec.environment["FLUX_JOB_CC"] = str(cc)
                yield f"cc={cc}: ", jobspec

    def run(self, commands) -> int:
        from ..job import submit_async
        from ..runtime.util import gctune
        gctune.tune()  # thousands of jobs in flight (--cc) are thousands of live objects
        from ..runtime.message import FluxError
        args = self.args
        flags = parse_flags(args.flags)
        urgency = parse_urgency(args.urgency)
        # jobspecs are made as they are submitted: the first of a large --cc
        # range goes out at once, and memory does not grow with the range
        specs = self.jobspecs(commands)
        if args.dry_run:
            for _, jobspec in specs:
                print(jobspec.dumps())
            return 0
        wait = "clean" if args.watch else args.wait
        if args.progress and not wait:
            from .submit_wait import ProgressBar
            total = sum(len(cc_list(xargs)) for xargs, _ in commands)
            self.progress = ProgressBar.for_submit(total, jps=args.jps)
        jobids = []
        with handle() as h:
            inflight: list = []

            def collect(label_future):
                label, future = label_future
                try:
                    jobid = future.get_id()
                except (FluxError, OSError) as exc:
                    self.fail(f"{label}{exc}")
                    if self.progress:
                        self.progress.update(advance=1, fail=self.progress.counts["fail"] + 1)
                    return
                jobids.append(jobid)
                if not args.quiet:
                    self.out(jobid.f58)
                if self.progress:
                    self.progress.update(advance=1)

            for label, jobspec in specs:
                inflight.append((label, submit_async(h, jobspec, urgency=urgency, **flags)))
                if len(inflight) >= self.WINDOW:
                    collect(inflight.pop(0))
            for item in inflight:
                collect(item)
            if self.progress:
                self.progress.finish()
            if wait and jobids:
                from .submit_wait import wait_jobs
                code = wait_jobs(h, jobids, wait=wait, watch=args.watch, label_io=args.label_io,
                                 progress=args.progress, jps=args.jps, verbose=args.verbose)
                self.exitcode = max(self.exitcode, code)
        return self.exitcode

    def out(self, line: str) -> None:
        if self.progress:
            self.progress.println(line)
        else:
            print(line, flush=True)

    def fail(self, message: str) -> None:
        print(f"{self.prog}-{self.name}: {message}", file=sys.stderr, flush=True)
        self.exitcode = 1


__all__ = ["run", "cmd_run", "cmd_submit", "cmd_bulksubmit", "split_inputs", "substitute"]
