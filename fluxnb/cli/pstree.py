"""``flux pstree`` and ``flux top --once``: the tree of jobs and nested instances.

A job that is a running Flux instance (it recorded a ``uri`` memo) is a parent:
its own jobs are listed under it, by connecting to its URI. Identical leaves are
combined as ``N*[label]``, as flux-pstree(1) does.
"""

from __future__ import annotations

import shutil
import sys

from ..job import job_list
from .common import CommandError, command, handle, parser

PENDING, RUNNING, INACTIVE = 2 | 4 | 8, 16 | 32, 64
FILTERS = {"pending": PENDING, "running": RUNNING, "active": 1 | PENDING | RUNNING,
           "inactive": INACTIVE, "all": 0x7F}


def run(name: str, argv: list[str], prog: str) -> int:
    return cmd_pstree(name, argv, prog) if name == "pstree" else cmd_top(name, argv, prog)


class Node:
    def __init__(self, info: dict | None, label: str):
        self.info = info
        self.label = label
        self.children: list[Node] = []


def _label(info: dict, fmt: str, parent_fmt: str | None, is_parent: bool, prefix_id: bool) -> str:
    from .jobinfo_format import JobInfo, JobInfoFormat as OutputFormat
    text = OutputFormat(parent_fmt if (is_parent and parent_fmt) else fmt).format(JobInfo(info))
    if is_parent and prefix_id:
        from ..job import JobID
        text = f"{JobID(info['id']).f58} {text}"
    return text.strip()


def build(h, states: int, fmt: str, parent_fmt: str | None, level: int, maxlevel: int | None,
          count: int, prefix_id: bool) -> list[Node]:
    """The jobs of the instance behind ``h`` (and, recursively, of nested instances)."""
    from ..runtime.client import Flux
    jobs = job_list(h, max_entries=count, states=states).get_jobs()
    nodes = []
    for info in sorted(jobs, key=lambda j: (j.get("t_submit", 0), j["id"])):
        uri = ((info.get("annotations") or {}).get("user") or {}).get("uri")
        is_parent = bool(uri) and info["state"] & RUNNING
        node = Node(info, _label(info, fmt, parent_fmt, is_parent, prefix_id))
        if is_parent and (maxlevel is None or level < maxlevel):
            try:
                with Flux(uri) as child:
                    node.children = build(child, states, fmt, parent_fmt, level + 1, maxlevel,
                                          count, prefix_id)
            except OSError:
                pass  # the instance went away while we looked
        nodes.append(node)
    return nodes


def render(nodes: list[Node], combine: bool = True, ascii: bool = False) -> list[str]:
    """Tree lines with pstree's connectors; identical leaves combined as ``N*[label]``."""
    tee, last, bar, gap = ("|-- ", "`-- ", "|   ", "    ") if ascii else ("├── ", "└── ", "│   ", "    ")
    items: list[tuple[str, Node | None]] = []
    if combine:
        counts: dict[str, int] = {}
        order: list[str] = []
        for n in nodes:
            if n.children:
                items.append((n.label, n))
                continue
            if n.label not in counts:
                order.append(n.label)
                items.append((n.label, None))
            counts[n.label] = counts.get(n.label, 0) + 1
        items = [(f"{counts[l]}*[{l}]" if n is None and counts[l] > 1 else l, n) for l, n in items]
    else:
        items = [(n.label, n) for n in nodes]
    out = []
    for i, (label, node) in enumerate(items):
        end = i == len(items) - 1
        out.append((last if end else tee) + label)
        if node is not None and node.children:
            out.extend((gap if end else bar) + line for line in render(node.children, combine, ascii))
    return out


@command
def cmd_pstree(name, argv, prog):
    p = parser(prog, name, "Show the tree of running jobs and nested instances, by job name.")
    p.add_argument("-a", "--all", action="store_true", help="jobs in all states")
    p.add_argument("-c", "--count", type=int, default=1000, help="at most N jobs per level")
    p.add_argument("-f", "--filter", default=None, help="STATE|RESULT list (pending,running,inactive)")
    p.add_argument("-l", "--long", action="store_true", help="do not truncate long lines")
    p.add_argument("-p", "--parent-ids", action="store_true", help="prefix parents with their job id")
    p.add_argument("-L", "--level", type=int, default=None, help="descend only N levels")
    p.add_argument("-x", "--extended", action="store_true", help="job details before the tree")
    p.add_argument("-X", "--no-combine", action="store_true", help="do not combine identical leaves")
    p.add_argument("-o", "--label", default=None, help="label format (flux jobs fields)")
    p.add_argument("--parent-label", default=None, help="label format for parents")
    p.add_argument("--skip-root", choices=("yes", "no"), default=None)
    p.add_argument("--ascii", action="store_true", help="ascii connectors")
    args = p.parse_args(argv)
    states = RUNNING
    if args.all:
        states = FILTERS["all"]
    if args.filter:
        states = 0
        for word in args.filter.split(","):
            if word not in FILTERS:
                raise CommandError(f"--filter: unknown state {word!r} (one of {', '.join(FILTERS)})")
            states |= FILTERS[word]
    fmt = args.label or ("{name}:{status_abbrev}" if states & ~RUNNING else "{name}")
    with handle() as h:
        nodes = build(h, states, fmt, args.parent_label or "{name}", 0, args.level, args.count,
                      args.parent_ids)
    lines = render(nodes, not args.no_combine, args.ascii)
    skip_root = args.skip_root == "yes" or (args.skip_root is None and args.extended)
    if args.extended:
        lines = _extended(nodes, lines)
    elif not skip_root:
        lines = ["."] + lines
    else:
        lines = [line[4:] for line in lines]
    width = None if args.long or not sys.stdout.isatty() else shutil.get_terminal_size((80, 24)).columns
    for line in lines:
        print(line if width is None else line[:width])
    return 0


def _extended(nodes: list[Node], tree: list[str]) -> list[str]:
    from .jobinfo_format import JobInfo, JobInfoFormat as OutputFormat
    fmt = OutputFormat("{id.f58:>12} {username:<8.8} {status_abbrev:>2} {ntasks:>6} {nnodes:>6h} "
                       "{runtime!F:>8h}")
    flat: list[Node] = []

    def walk(ns):
        for n in ns:
            flat.append(n)
            walk(n.children)

    walk(nodes)
    header = fmt.header()
    rows = [fmt.format(JobInfo(n.info)) for n in flat]
    if len(rows) != len(tree):  # combined leaves: show the tree alone
        return tree
    return [header] + [f"{r} {t}" for r, t in zip(rows, tree)]


@command
def cmd_top(name, argv, prog):
    p = parser(prog, name, "Summary of an instance: resources, job counts, running jobs.")
    p.add_argument("--once", action="store_true", help="print once and exit (the only mode)")
    p.add_argument("target", nargs="?", help="JOBID or URI of a nested instance")
    args = p.parse_args(argv)
    from ..runtime.client import Flux
    from .hier import job_uri
    with handle() as h0:
        uri = job_uri(h0, args.target, timeout=5) if args.target else h0.uri
    with Flux(uri) as h:
        print("\n".join(top_text(h)))
    return 0


def top_text(h) -> list[str]:
    """The lines of ``flux top --once``: a header like flux top's, then running jobs."""
    from ..runtime.util.rv1 import ResourceSet
    from .jobinfo_format import JobInfo, JobInfoFormat as OutputFormat
    info = h.rpc("broker.info", {}, nodeid=0).get()
    level = h.rpc("attr.get", {"name": "instance-level"}, nodeid=0).get()["value"]
    status = h.rpc("sched.resource-status", {}, nodeid=0).get()
    everything = ResourceSet(status["all"])
    alloc = ResourceSet(status["allocated"]) if status.get("allocated") else None
    stats = h.rpc("job-list.stats", {}, nodeid=0).get()
    st = stats["job_states"]
    pending = st["depend"] + st["priority"] + st["sched"] + st["new"]
    running = st["run"] + st["cleanup"]
    ncores, ngpus = everything.ncores, everything.ngpus
    ucores = alloc.ncores if alloc else 0
    ugpus = alloc.ngpus if alloc else 0
    bar = _bar(ucores, ncores)
    lines = [f"{'':2}nodes {everything.nnodes:>3}   cores {ucores}/{ncores} {bar}   "
             f"gpus {ugpus}/{ngpus}   depth {level}   uptime {_hms(info['uptime'])}",
             f"{'':2}{pending} pending, {running} running, {stats['successful']} complete, "
             f"{stats['failed']} failed, {stats['canceled']} canceled, {stats['timeout']} timeout", ""]
    fmt = OutputFormat("{id.f58:>12} {username:<8.8} {status_abbrev:>2} {ntasks:>6} {nnodes:>6h} "
                       "{runtime!F:>8h} {name}")
    jobs = job_list(h, max_entries=100, states=PENDING | RUNNING).get_jobs()
    lines.append(fmt.header())
    lines += [fmt.format(JobInfo(j)) for j in jobs]
    return lines


def _bar(used: int, total: int, width: int = 20) -> str:
    fill = round(width * used / total) if total else 0
    return "[" + "#" * fill + "." * (width - fill) + "]"


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"
