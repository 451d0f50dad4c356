"""``flux trace``: export, analyze, save and check job traces (Chrome Trace Event Format).

::

    flux trace export [JOBIDS] [-o trace.json] [--pfw DIR|FILE]... [--no-recursive]
    flux trace analyze [TRACE.json] [-j JOBIDS] [--instance PATH] [--critical-path] [--json]
    flux trace save          (last line of a batch script: keep this instance's trace)
    flux trace validate FILE...
"""

from __future__ import annotations

import json
import sys

from .common import CommandError, command, handle, parser

USAGE = "usage: {prog} trace export|analyze|save|validate [OPTIONS]"


def run(name: str, argv: list[str], prog: str) -> int:
    return trace_cmd(name, argv, prog)


@command
def trace_cmd(name: str, argv: list[str], prog: str) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE.format(prog=prog) + "\n\n" + (__doc__ or "").split("::", 1)[1].strip("\n"))
        return 0 if argv else 1
    sub, rest = argv[0], argv[1:]
    verbs = {"export": _export, "analyze": _analyze, "save": _save, "validate": _validate}
    if sub not in verbs:
        raise CommandError(f"unknown subcommand {sub!r} (one of {', '.join(verbs)})")
    return verbs[sub](f"{name} {sub}", rest, prog)


def _jobids(ids: list[str]) -> list[int]:
    from ..job import JobID
    out = []
    for text in ids:
        try:
            out.append(int(JobID(text)))
        except (ValueError, TypeError):
            raise CommandError(f"{text!r} is not a job id") from None
    return out


def _export(name: str, argv: list[str], prog: str) -> int:
    from ..trace.collect import export, write
    p = parser(prog, name, "Write the jobs of this instance (and of its nested instances) as "
                           "a Chrome trace that Perfetto opens.")
    p.add_argument("jobids", nargs="*", help="only these jobs of this instance")
    p.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    p.add_argument("--pfw", action="append", default=[], metavar="PATH",
                   help="merge PerfFlowAspect .pfw files (a file or a directory); repeatable")
    p.add_argument("--no-recursive", action="store_true", help="do not follow nested instances")
    args = p.parse_args(argv)
    ids = _jobids(args.jobids) if args.jobids else None
    with handle() as h:
        try:
            trace = export(h, ids, not args.no_recursive, args.pfw)
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
    if args.output == "-":
        json.dump(trace, sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
    else:
        write(trace, args.output)
        njobs = sum(1 for ev in trace["traceEvents"] if ev.get("cat") == "job" and ev.get("ph") == "b"
                    and "instance" in (ev.get("args") or {}))
        print(f"{args.output}: {njobs} jobs in {len(trace['otherData']['instances'])} instance(s), "
              f"{len(trace['traceEvents'])} events", file=sys.stderr)
    return 0


def _analyze(name: str, argv: list[str], prog: str) -> int:
    from ..trace import regions as an
    p = parser(prog, name, "Time in each region (queueing, scheduling, launch, run, completion) "
                           "per job, and the critical path of the jobs.")
    p.add_argument("trace", nargs="*", help="trace files (default: export this instance now)")
    p.add_argument("-j", "--jobids", default=None, help="comma-separated job ids to analyze")
    p.add_argument("-i", "--instance", default=None,
                   help="only jobs of this instance (its path, e.g. ƒ2Xy; '.' for the top)")
    p.add_argument("-a", "--all", action="store_true", help="include jobs that are instances")
    p.add_argument("-c", "--critical-path", action="store_true", help="show the critical path")
    p.add_argument("--json", action="store_true", help="print JSON")
    args = p.parse_args(argv)
    if args.trace:
        try:
            trace: object = an.events_of(args.trace)
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
    else:
        from ..trace.collect import export
        with handle() as h:
            trace = export(h)
    jobids = args.jobids.split(",") if args.jobids else None
    instance = "" if args.instance == "." else args.instance
    nested = None if args.all else False
    table = (an.critical_path_of if args.critical_path else an.analyze)(trace, jobids, instance, nested)
    if args.json:
        meta = {k: v for k, v in table.meta.items()}
        print(json.dumps({"columns": table.columns, "rows": table.rows, "meta": meta}))
    else:
        print(table)
    return 0


def _save(name: str, argv: list[str], prog: str) -> int:
    from ..trace.collect import save_to_parent
    p = parser(prog, name, "Save this nested instance's trace in its parent's KVS, so that the "
                           "parent's 'trace export' has its jobs after it ends.")
    p.parse_args(argv)
    with handle() as h:
        try:
            key = save_to_parent(h)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    print(key)
    return 0


def _validate(name: str, argv: list[str], prog: str) -> int:
    from ..trace.format import load, validate
    p = parser(prog, name, "Check files against the Trace Event Format.")
    p.add_argument("files", nargs="+")
    args = p.parse_args(argv)
    bad = 0
    for path in args.files:
        try:
            problems = validate(load(path))
        except (OSError, ValueError) as exc:
            problems = [str(exc)]
        for text in problems[:20]:
            print(f"{path}: {text}")
        bad += bool(problems)
        if not problems:
            print(f"{path}: ok")
    return 1 if bad else 0
