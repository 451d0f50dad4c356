"""``flux housekeeping``: list and kill housekeeping tasks (flux-housekeeping(1))."""

from __future__ import annotations

import argparse
import sys
import time

from .common import CommandError, command, handle, parser

FORMATS = {
    "default": "{id.f58:>12} {nnodes:>6} {pending.nnodes:>7} {runtime!F:>8} {nodelist}",
    "pending": "{id.f58:>12} {pending.nnodes:>7} {runtime!F:>8} {pending.nodelist}",
}
HEADINGS = {
    "id": "JOBID", "id.dec": "JOBID", "id.hex": "JOBID", "id.f58": "JOBID",
    "id.f58plain": "JOBID", "id.emoji": "JOBID", "id.kvs": "JOBID", "id.words": "JOBID",
    "id.dothex": "JOBID", "t_start": "T_START", "runtime": "RUNTIME", "ranks": "RANKS",
    "nodelist": "NODELIST", "nnodes": "NNODES", "allocated.ranks": "RANKS",
    "allocated.nodelist": "NODELIST", "allocated.nnodes": "NNODES",
    "pending.ranks": "ACTIVE_RANKS", "pending.nodelist": "ACTIVE_NODES",
    "pending.nnodes": "#ACTIVE",
}


class _Set:
    """Ranks of a housekeeping task, with their count and host names."""

    def __init__(self, ranks, hosts) -> None:
        self.ranks = ranks
        self._hosts = hosts

    @property
    def nnodes(self) -> int:
        return len(self.ranks)

    @property
    def nodelist(self) -> str:
        from ..runtime.util.hostlist import Hostlist
        return Hostlist([self._hosts[r] for r in self.ranks if r < len(self._hosts)]).encode()


class _Task:
    def __init__(self, jobid: str, info: dict, hosts) -> None:
        from ..runtime.job.jobid import JobID
        from ..runtime.util.idset import IDSet
        self.id = JobID(jobid)
        self.t_start = info["t_start"]
        self.runtime = time.time() - self.t_start
        self.pending = _Set(IDSet(info["pending"]), hosts)
        self.allocated = _Set(IDSet(info["allocated"]), hosts)

    def restrict(self, ranks) -> None:
        self.pending.ranks = self.pending.ranks & ranks
        self.allocated.ranks = self.allocated.ranks & ranks

    ranks = property(lambda self: self.allocated.ranks)
    nnodes = property(lambda self: self.allocated.nnodes)
    nodelist = property(lambda self: self.allocated.nodelist)


def run(name: str, argv: list[str], prog: str) -> int:
    return cmd_housekeeping(name, argv, prog)


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = parser(prog, "housekeeping", "List and kill housekeeping tasks.")
    sub = p.add_subparsers(dest="sub", required=True, metavar="COMMAND")
    s = sub.add_parser("list", help="list active housekeeping tasks by jobid")
    s.add_argument("-i", "--include", default=None, metavar="TARGETS",
                   help="only these ranks (an idset) or hosts (a hostlist)")
    s.add_argument("-o", "--format", default="default", help="output format, or a named one")
    s.add_argument("-n", "--no-header", action="store_true", help="suppress the header")
    s = sub.add_parser("kill", help="signal active housekeeping tasks")
    s.add_argument("-s", "--signal", type=int, default=15, metavar="SIGNUM")
    s.add_argument("-t", "--targets", default=None, metavar="RANKS|HOSTS")
    s.add_argument("-j", "--jobid", default=None, metavar="JOBID")
    s.add_argument("--all", action="store_true", help="all housekeeping tasks of all jobs")
    return p


def _hosts(h) -> list[str]:
    from ..runtime.util.hostlist import Hostlist
    return list(Hostlist(h.rpc("attr.get", {"name": "hostlist"}, nodeid=0).get()["value"]))


def _ranks(spec: str, hosts: list[str], what: str):
    from ..runtime.util.hostlist import Hostlist
    from ..runtime.util.idset import IDSet
    try:
        return IDSet(spec)
    except ValueError:
        pass
    try:
        names = list(Hostlist(spec))
    except ValueError:
        raise CommandError(f"{what} must be a valid Idset or Hostlist") from None
    ranks = []
    for name in names:
        if name not in hosts:
            raise CommandError(f"didn't find {name} in instance hostlist")
        ranks.append(hosts.index(name))
    return IDSet(ranks)


def do_list(h, args) -> int:
    from .jobinfo_format import OutputFormat
    fmt = FORMATS.get(args.format, args.format)
    try:
        formatter = OutputFormat(fmt, HEADINGS)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    hosts = _hosts(h)
    include = _ranks(args.include, hosts, "--include") if args.include else None
    stats = h.rpc("job-manager.stats-get", {}, nodeid=0).get()
    tasks = []
    for jobid, info in (stats.get("housekeeping") or {}).get("running", {}).items():
        task = _Task(jobid, info, hosts)
        if include is not None:
            task.restrict(include)
        if task.nnodes:
            tasks.append(task)
    sys.stdout.write(formatter.text(tasks, no_header=args.no_header))
    return 0


def do_kill(h, args) -> int:
    if args.jobid is None and args.targets is None and not args.all:
        raise CommandError("specify at least one of --targets, --jobid, or --all")
    if args.all and args.jobid is not None:
        raise CommandError("do not specify --jobid with --all")
    payload: dict = {"signum": args.signal}
    if args.jobid:
        from ..runtime.job.jobid import id_parse
        try:
            payload["jobid"] = id_parse(args.jobid)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    if args.targets:
        payload["ranks"] = _ranks(args.targets, _hosts(h), "--targets").encode()
    h.rpc("job-manager.housekeeping-kill", payload, nodeid=0).get()
    return 0


@command
def cmd_housekeeping(name, argv, prog):
    args = build_parser(prog).parse_args(argv)
    with handle() as h:
        return globals()["do_" + args.sub](h, args)
