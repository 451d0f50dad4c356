"""``flux queue``: enable, disable, start, stop, status, drain, idle, list (flux-queue(1))."""

from __future__ import annotations

import argparse
import sys

from .common import CommandError, command, handle, parser

# as flux-core's default: the state marks are colored whether or not stdout is a tty
LIST_FORMAT = ("?:{queuem:<8.8} ?:{parent:<8.8} {color_enabled}{enabled:>2}{color_off} "
               "{color_started}{started:>2}{color_off} {defaults.timelimit!F:>8} "
               "{limits.timelimit!F:>8} {limits.range.effective.nnodes:>10} "
               "{limits.range.effective.ncores:>10} {limits.range.effective.ngpus:>10}")
LIST_HEADINGS = {
    "queue": "QUEUE", "queuem": "QUEUE", "parent": "PARENT", "submission": "SUBMIT",
    "scheduling": "SCHED", "color_enabled": "", "color_started": "", "color_off": "",
    "enabled": "EN", "started": "ST", "defaults.timelimit": "TDEFAULT",
    "limits.timelimit": "TLIMIT", "limits.range.nnodes": "NNODES",
    "limits.range.ncores": "NCORES", "limits.range.ngpus": "NGPUS",
    "limits.range.effective.nnodes": "NNODES", "limits.range.effective.ncores": "NCORES",
    "limits.range.effective.ngpus": "NGPUS", "limits.min.nnodes": "MINNODES",
    "limits.max.nnodes": "MAXNODES", "limits.min.ncores": "MINCORES",
    "limits.max.ncores": "MAXCORES", "limits.min.ngpus": "MINGPUS", "limits.max.ngpus": "MAXGPUS",
}


def run(name: str, argv: list[str], prog: str) -> int:
    return cmd_queue(name, argv, prog)


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = parser(prog, "queue", "Control the job queue.")
    sub = p.add_subparsers(dest="sub", required=True, metavar="COMMAND")
    for cmd, what in (("enable", "allow job submission"), ("disable", "refuse job submission"),
                      ("start", "start scheduling"), ("stop", "stop scheduling"),
                      ("status", "tell whether submission is enabled and scheduling started")):
        s = sub.add_parser(cmd, help=what)
        s.add_argument("-v", "--verbose", action="store_true")
        if cmd != "status":
            s.add_argument("-q", "--quiet", action="store_true", help="print nothing")
            s.add_argument("-a", "--all", action="store_true", help="all queues")
        if cmd in ("disable", "stop"):
            s.add_argument("--nocheckpoint", action="store_true", help=argparse.SUPPRESS)
            s.add_argument("message", nargs="*", help="reason")
        s.add_argument("--queue", dest="queue", default=None, help=argparse.SUPPRESS)
    for cmd, what in (("drain", "wait until no job is active"),
                      ("idle", "wait until no job is running")):
        s = sub.add_parser(cmd, help=what)
        s.add_argument("-t", "--timeout", default=None, metavar="DURATION")
        if cmd == "idle":
            s.add_argument("-q", "--quiet", action="store_true")
    s = sub.add_parser("list", help="list queues, their state and limits")
    s.add_argument("-o", "--format", default=LIST_FORMAT)
    s.add_argument("-n", "--no-header", action="store_true")
    return p


@command
def cmd_queue(name, argv, prog):
    args = build_parser(prog).parse_args(argv)
    with handle() as h:
        return globals()["do_" + args.sub](h, args, prog)


def queue_status(h) -> dict:
    return h.rpc("job-manager.queue-status", {}, nodeid=0).get()


def enable_line(st: dict) -> str:
    if st.get("enabled", True):
        return "Job submission is enabled"
    return f"Job submission is disabled: {st.get('disable_reason', '')}"


def start_line(st: dict) -> str:
    if st.get("started", True):
        return "Scheduling is started"
    reason = st.get("stop_reason")
    return "Scheduling is stopped" + (f": {reason}" if reason else "")


def _alloc_query(h) -> None:
    """The counts ``status -v`` adds (queued, pending to the scheduler, running)."""
    from ..job import job_list
    jobs = job_list(h, max_entries=0, attrs=["state"], userid=0xFFFFFFFF,
                    states=8 | 16 | 32).get_jobs()
    queued = sum(1 for j in jobs if j["state"] == 8)
    print(f"{queued} alloc requests queued")
    print("0 alloc requests pending to scheduler")
    print(f"{sum(1 for j in jobs if j['state'] & 48)} running jobs")


def do_status(h, args, prog):
    st = queue_status(h)
    print(enable_line(st))
    print(start_line(st))
    if args.verbose:
        _alloc_query(h)


def _enable(h, args, enable: bool, reason: str = "") -> None:
    h.rpc("job-manager.queue-enable", {"enable": enable, "reason": reason}, nodeid=0).get()
    if not args.quiet:
        print(enable_line(queue_status(h)))


def do_enable(h, args, prog):
    _enable(h, args, True)


def do_disable(h, args, prog):
    _enable(h, args, False, " ".join(args.message) or "disabled by administrator")


def _start(h, args, start: bool, reason: str = "") -> None:
    h.rpc("job-manager.queue-start", {"start": start, "reason": reason}, nodeid=0).get()
    if not args.quiet:
        print(start_line(queue_status(h)))
        if args.verbose:
            _alloc_query(h)


def do_start(h, args, prog):
    _start(h, args, True)


def do_stop(h, args, prog):
    _start(h, args, False, " ".join(args.message))


def _timeout(spec: str | None) -> float | None:
    if spec is None:
        return None
    from ..runtime.util.fsd import parse_fsd
    try:
        return parse_fsd(spec)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _wait(h, what: str, args) -> dict:
    try:
        return h.rpc(f"job-manager.{what}", {}, nodeid=0).get(_timeout(args.timeout))
    except TimeoutError:
        raise CommandError(f"{what}: timeout") from None


def do_drain(h, args, prog):
    _wait(h, "drain", args)


def do_idle(h, args, prog):
    pending = _wait(h, "idle", args).get("pending", 0)
    if not args.quiet or pending > 0:
        print(f"{pending} jobs")


class _Ns:
    """Dotted attribute access over nested dicts, for queue list fields."""

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, _Ns(**v) if isinstance(v, dict) else v)


def do_list(h, args, prog):
    import math
    from .jobinfo_format import OutputFormat
    from ..runtime.util.rv1 import ResourceSet
    st = queue_status(h)
    every = ResourceSet(h.rpc("sched.resource-status", {}, nodeid=0).get()["all"])

    class _Q:
        queue = queuem = ""
        submission = "enabled" if st.get("enabled", True) else "disabled"
        scheduling = "started" if st.get("started", True) else "stopped"
        parent = ""
        enabled = "✔" if st.get("enabled", True) else "✗"
        started = "✔" if st.get("started", True) else "✗"
        color_enabled = "\033[01;32m" if st.get("enabled", True) else "\033[01;31m"
        color_started = "\033[01;32m" if st.get("started", True) else "\033[01;31m"
        color_off = "\033[0;0m"

    q = _Q()
    q.defaults = _Ns(timelimit=math.inf)
    eff = {k: f"0-{getattr(every, k)}" for k in ("nnodes", "ncores", "ngpus")}
    q.limits = _Ns(timelimit=math.inf,
                   min={"nnodes": 0, "ncores": 0, "ngpus": 0},
                   max={"nnodes": "inf", "ncores": "inf", "ngpus": "inf"},
                   range=dict({"nnodes": "0-inf", "ncores": "0-inf", "ngpus": "0-inf"},
                              effective=eff))
    try:
        fmt = OutputFormat(args.format, LIST_HEADINGS)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    sys.stdout.write(fmt.text([q], no_header=args.no_header))
