"""``flux resource``: list, status, info, drain, undrain (flux-resource(1))."""

from __future__ import annotations

import argparse
import sys

from .common import CommandError, command, handle, parser

LIST_FORMATS = {
    "default": "{state:>10} ?:{properties:<10.10+} {nnodes:>6} {ncores:>8} {ngpus:>8} {nodelist}",
    "rlist": "{state:>10} ?:{properties:<10.10+} {nnodes:>6} {ncores:>8} {ngpus:>8} {rlist}",
}
LIST_HEADINGS = {"state": "STATE", "properties": "PROPERTIES", "nnodes": "NNODES",
                 "ncores": "NCORES", "ngpus": "NGPUS", "ranks": "RANKS", "nodelist": "NODELIST",
                 "rlist": "LIST"}
STATUS_FORMATS = {
    "default": "{state:>10} {color_up}{up:>2}{color_off} {nnodes:>6} {nodelist}",
    "long": "{state:>10} {color_up}{up:>2}{color_off} {nnodes:>6} {reason:<30.30+} {nodelist}",
}
DRAIN_FORMATS = {
    "default": "{timestamp!d:%b%d %R::<12} {state:<8.8} {reason:<30.30+} {nodelist}",
    "long": ("{timestamp!d:%FT%T::<20} {state:<8.8} {ranks:<8.8+} {reason:<30.30+} "
             "{nodelist}"),
}
STATUS_HEADINGS = {"state": "STATE", "statex": "STATE", "nnodes": "NNODES", "ranks": "RANKS",
                   "nodelist": "NODELIST", "reason": "REASON", "timestamp": "TIME",
                   "status": "STATUS", "up": "UP", "up.ascii": "UP", "color_up": "",
                   "color_off": ""}
LIST_STATES = ("up", "down", "allocated", "free", "all")
STATUS_STATES = ("all", "online", "avail", "offline", "exclude", "drain", "draining", "drained",
                 "torpid", "allocated", "housekeeping")


def run(name: str, argv: list[str], prog: str) -> int:
    return cmd_resource(name, argv, prog)


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = parser(prog, "resource", "List and manage the instance's resources.")
    sub = p.add_subparsers(dest="sub", required=True, metavar="COMMAND")
    s = sub.add_parser("list", help="resources by scheduler state (free, allocated, down)")
    s.add_argument("-o", "--format", default="default")
    s.add_argument("-s", "--states", default="free,allocated,down", metavar="STATE,...")
    s.add_argument("-n", "--no-header", action="store_true")
    s = sub.add_parser("info", help="one line: nodes, cores and GPUs")
    s.add_argument("-s", "--states", default="all", metavar="STATE,...")
    s = sub.add_parser("status", help="resources by administrative state (avail, drained...)")
    s.add_argument("-o", "--format", default="default")
    s.add_argument("-s", "--states", default=None, metavar="STATE,...")
    s.add_argument("-n", "--no-header", action="store_true")
    s.add_argument("-L", "--color", nargs="?", const="always", default="auto",
                   choices=["never", "always", "auto"])
    s.add_argument("--skip-empty", action="store_true")
    s = sub.add_parser("drain", help="drain targets (no targets: list drained resources)")
    s.add_argument("-f", "--force", action="count", default=0,
                   help="targets already drained: overwrite the reason (twice: the time too)")
    s.add_argument("-u", "--update", action="store_true",
                   help="targets already drained: keep their reason and time")
    s.add_argument("-o", "--format", default="default")
    s.add_argument("-n", "--no-header", action="store_true")
    s.add_argument("-L", "--color", nargs="?", const="always", default="auto",
                   choices=["never", "always", "auto"])
    s.add_argument("targets", nargs="?", help="IDSET or HOSTLIST")
    s.add_argument("reason", nargs=argparse.REMAINDER)
    s = sub.add_parser("undrain", help="return drained targets to service")
    s.add_argument("-f", "--force", action="store_true", help="targets not drained are no error")
    s.add_argument("targets", help="IDSET or HOSTLIST")
    s = sub.add_parser("shrink", help="remove nodes from the running instance (fluxnb)")
    s.add_argument("targets", help="IDSET or HOSTLIST")
    s = sub.add_parser("grow", help="add back nodes a shrink removed (fluxnb)")
    s.add_argument("targets", help="IDSET or HOSTLIST")
    return p


@command
def cmd_resource(name, argv, prog):
    args = build_parser(prog).parse_args(argv)
    with handle() as h:
        return globals()["do_" + args.sub](h, args)


# -- list, info --------------------------------------------------------------------------------
class _Row:
    """One line of ``flux resource list``: a resource set in one state."""

    def __init__(self, state: str, rs):
        self.state = state
        self.rs = rs
        self.nnodes, self.ncores, self.ngpus = rs.nnodes, rs.ncores, rs.ngpus
        self.ranks = rs.ranks.encode()
        self.nodelist = rs.nodelist.encode()
        self.rlist = rs.dumps() if rs.nnodes else ""
        self.properties = ",".join(sorted(rs.properties)) if rs.nnodes else ""


def resource_rows(h, states) -> list[_Row]:
    """Rows of the scheduler's view (``sched.resource-status``) for the given states."""
    from ..runtime.util.idset import IDSet
    from ..runtime.util.rv1 import ResourceSet
    st = h.rpc("sched.resource-status", {}, nodeid=0).get()
    every = ResourceSet(st["all"])
    down = IDSet(st.get("down") or "")
    up = every.remove_ranks(down)
    alloc = up.intersect(ResourceSet(st["allocated"])) if st.get("allocated") else \
        up.copy_ranks(IDSet())
    sets = {"all": every, "up": up, "down": every.copy_ranks(down), "allocated": alloc,
            "free": up.diff(alloc)}
    return [_Row(s, sets[s]) for s in states]


def _states(spec: str, valid) -> list[str]:
    states = [s for s in spec.split(",") if s]
    for s in states:
        if s not in valid:
            raise CommandError(f"Invalid resource state {s} specified")
    return states


def _fmt(spec: str, named: dict, headings: dict):
    from .jobinfo_format import OutputFormat
    fmt = named.get(spec, spec)
    if "{" not in fmt:
        raise CommandError(f"--format: No such format {spec}")
    try:
        return OutputFormat(fmt, headings)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def do_list(h, args):
    fmt = _fmt(args.format, LIST_FORMATS, LIST_HEADINGS)
    rows = resource_rows(h, _states(args.states, LIST_STATES))
    sys.stdout.write(fmt.text(rows, no_header=args.no_header))


def do_info(h, args):
    from .jobinfo_format import OutputFormat
    rows = resource_rows(h, _states(args.states, LIST_STATES))
    fmt = OutputFormat("{nnodes} Nodes, {ncores} Cores, {ngpus} GPUs", LIST_HEADINGS)
    total = _Row.__new__(_Row)
    total.nnodes = sum(r.nnodes for r in rows)
    total.ncores = sum(r.ncores for r in rows)
    total.ngpus = sum(r.ngpus for r in rows)
    print(fmt.format(total))


# -- status, drain -----------------------------------------------------------------------------
class _StatusLine:
    """One line of ``flux resource status``: ranks in one state, up or not, for one reason."""

    def __init__(self, state: str, online: bool, ranks, hosts, reason: str = "",
                 timestamp: float | str = ""):
        from ..runtime.util.hostlist import Hostlist
        from ..runtime.util.idset import IDSet
        self.statex = state
        self.online = online
        self._ranks = IDSet(ranks)
        self.hostlist = Hostlist(hosts)
        self.reason = reason
        self.timestamp = timestamp

    def merge(self, other: "_StatusLine") -> None:
        self._ranks = self._ranks | other._ranks
        self.hostlist.append(other.hostlist)
        self.hostlist = self.hostlist.sort()

    @property
    def state(self) -> str:
        return self.statex if self.online else self.statex + "*"

    @property
    def status(self) -> str:
        return "online" if self.online else "offline"

    @property
    def up(self):
        return _Alt("✔", "y") if self.online else _Alt("✗", "n")

    @property
    def color_up(self) -> str:
        return "\033[01;32m" if self.online else "\033[01;31m"

    color_off = "\033[0;0m"

    @property
    def nodelist(self) -> str:
        return self.hostlist.encode()

    @property
    def ranks(self) -> str:
        return self._ranks.encode()

    @property
    def nnodes(self) -> int:
        return len(self._ranks)


class _Alt:
    def __init__(self, default: str, ascii: str):
        self.default, self.ascii = default, ascii

    def __str__(self) -> str:
        return self.default

    def __format__(self, spec: str) -> str:
        return format(self.default, spec)


def status_lines(h, states, include_online=True, include_offline=True) -> list[_StatusLine]:
    """Lines of ``flux resource status`` (before skipping empty ones)."""
    from ..runtime.util.idset import IDSet
    from ..runtime.util.rv1 import ResourceSet
    st = h.rpc("resource.status", {}, nodeid=0).get()
    every = ResourceSet(st["R"])
    online = IDSet(st.get("online") or "")
    drain = {int(r): d for r, d in (st.get("drain") or {}).items()}
    allocated = IDSet()
    try:
        sched = h.rpc("sched.resource-status", {}, nodeid=0).get()
        if sched.get("allocated"):
            allocated = ResourceSet(sched["allocated"]).ranks
    except OSError:
        pass
    housekeeping = IDSet()
    try:
        stats = h.rpc("job-manager.stats-get", {}, nodeid=0).get()
        for info in (stats.get("housekeeping") or {}).get("running", {}).values():
            housekeeping = housekeeping | IDSet(info["allocated"])
    except OSError:
        pass
    exclude = IDSet()
    torpid = IDSet(st.get("torpid") or "")
    ranks = {"avail": every.ranks - IDSet(drain) - exclude, "exclude": exclude,
             "allocated": allocated, "torpid": torpid, "housekeeping": housekeeping,
             "draining": IDSet(r for r in drain if r in allocated),
             "drained": IDSet(r for r in drain if r not in allocated)}

    def hosts(ids):
        return [every.host(r) or str(r) for r in ids]

    lines: dict[tuple, _StatusLine] = {}

    def add(line: _StatusLine) -> None:
        key = (line.statex, line.online, line.reason,
               str(line.timestamp) if line.nnodes and line.timestamp != "" else "")
        if key in lines:
            lines[key].merge(line)
        else:
            lines[key] = line

    want = set(states)
    for state in ("avail", "exclude", "allocated", "torpid", "housekeeping"):
        if not want & {state, "all"}:
            continue
        for up in (True, False):
            if (up and not include_online) or (not up and not include_offline):
                continue
            sel = ranks[state] & online if up else ranks[state] - online
            add(_StatusLine(state, up, sel, hosts(sel)))
    for state in ("draining", "drained"):
        if not want & {state, "all", "drain"}:
            continue
        if not ranks[state] and include_online:
            add(_StatusLine(state, True, [], []))
        for r in ranks[state]:
            up = r in online
            if (up and not include_online) or (not up and not include_offline):
                continue
            info = drain[r]
            add(_StatusLine(state, up, [r], hosts([r]), info.get("reason", ""),
                            info.get("timestamp", "")))
    return list(lines.values())


def _status_print(h, args, states, named, skip_empty) -> None:
    fmt = _fmt(args.format, named, STATUS_HEADINGS)
    if args.color == "never" or (args.color == "auto" and not sys.stdout.isatty()):
        from .jobinfo_format import OutputFormat
        # drop the color fields but keep the text before them (the column gap)
        text = "".join(OutputFormat._tuple(t, "" if f in ("color_up", "color_off") else f, s, c,
                                           prefix="") for t, f, s, c in fmt.items)
        fmt = OutputFormat(text, STATUS_HEADINGS)
    include_online = "online" in states or "offline" not in states
    include_offline = "offline" in states or "online" not in states
    skip_offline = "offline" not in states
    lines = [ln for ln in status_lines(h, states, include_online, include_offline)
             if ln.nnodes or not (skip_empty or (not ln.online and skip_offline))]
    sys.stdout.write(fmt.text(lines, no_header=args.no_header))


def do_status(h, args):
    default = "avail,exclude,draining,drained,torpid,housekeeping"
    states = _states(args.states or default, STATUS_STATES)
    if not [s for s in states if s not in ("online", "offline")]:
        states += default.split(",")
    _status_print(h, args, states, STATUS_FORMATS, args.skip_empty or not args.states)


def _targets(h, spec: str) -> str:
    """An idset of ranks from ``TARGETS`` (an idset, a hostlist, or ``all``)."""
    from ..runtime.util.idset import IDSet
    if spec == "all":
        return spec
    try:
        return IDSet(spec).encode()
    except ValueError:
        pass
    from ..runtime.util.rv1 import ResourceSet
    every = ResourceSet(h.rpc("resource.status", {}, nodeid=0).get()["R"])
    try:
        return every.host_ranks(spec).encode()
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def do_drain(h, args):
    if args.targets is None:
        args.states, args.skip_empty = "drain", True
        _status_print(h, args, ["drain"], DRAIN_FORMATS, True)
        return 0
    if args.update and args.force:
        raise CommandError("Only one of --force and --update may be specified")
    payload = {"targets": _targets(h, args.targets), "reason": " ".join(args.reason)}
    if args.force or args.update:
        payload["mode"] = "update" if args.update else (
            "overwrite" if args.force == 1 else "force-overwrite")
    h.rpc("resource.drain", payload, nodeid=0).get()


def do_undrain(h, args):
    payload = {"targets": _targets(h, args.targets)}
    if args.force:
        payload["mode"] = "force"
    h.rpc("resource.undrain", payload, nodeid=0).get()


def do_shrink(h, args):
    h.rpc("resource.shrink", {"targets": args.targets}, nodeid=0).get()


def do_grow(h, args):
    h.rpc("resource.grow", {"targets": args.targets}, nodeid=0).get()
