"""``flux overlay``: status, errors, lookup and parentof of the tree of brokers (flux-overlay(1)).

``status`` walks the tree from a rank down: it asks each broker it can reach for
its view of its children (``overlay.health``), times the answer (``-vv``), and
computes each subtree's status as flux-overlay(1) defines them:

full      online, and no child is partial, offline, degraded or lost;
partial   online, some children partial or offline, none degraded or lost;
degraded  online, some children degraded or lost;
lost      online once (its parent heard from it), but does not answer now;
offline   never joined (its parent has not heard from it), and everything below it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..runtime.message import FluxError
from ..runtime.topology import kary_children
from ..runtime.util.fsd import format_fsd, parse_fsd
from .common import CommandError, command, handle, parser

STATES = ("full", "partial", "degraded", "lost", "offline")


@dataclass
class Node:
    rank: int
    host: str
    status: str = "offline"
    duration: float | None = None
    rtt: float | None = None
    error: str = ""
    children: list["Node"] = field(default_factory=list)


def subtree_status(online: bool, children: list[str]) -> str:
    """A reachable broker's subtree status from its children's (flux-overlay(1)).

    >>> subtree_status(True, ["full", "offline"]), subtree_status(True, ["partial", "lost"])
    ('partial', 'degraded')
    """
    if not online:
        return "offline"
    if any(c in ("degraded", "lost") for c in children):
        return "degraded"
    if any(c in ("partial", "offline") for c in children):
        return "partial"
    return "full"


def _walk(h, rank: int, hosts: list[str], children_of, timeout: float) -> Node:
    node = Node(rank, hosts[rank])
    t0 = time.perf_counter()
    try:
        info = h.rpc("overlay.health", {}, nodeid=rank).get(timeout=timeout or None)
    except (TimeoutError, FluxError):
        node.status = "lost"
        node.children = [_ghost(c, hosts, children_of, "lost") for c in children_of(rank)]
        return node
    node.rtt = time.perf_counter() - t0
    node.duration = info.get("duration")
    for child in info.get("children", []):
        if child["status"] == "online":
            sub = _walk(h, child["rank"], hosts, children_of, timeout)
        else:
            status = "lost" if child["status"] == "lost" else "offline"
            sub = _ghost(child["rank"], hosts, children_of, status)
            sub.duration = child.get("duration")
            sub.error = child.get("error", "")
        node.children.append(sub)
    node.status = subtree_status(True, [c.status for c in node.children])
    return node


def _ghost(rank: int, hosts, children_of, status: str) -> Node:
    """A broker behind an offline or lost one: presumed to share its state."""
    return Node(rank, hosts[rank], status,
                children=[_ghost(c, hosts, children_of, status) for c in children_of(rank)])


def _lines(node: Node, args, prefix: str = "", last: bool = True, top: bool = True) -> list[str]:
    text = f"{node.rank} {node.host}: {node.status}"
    if node.error:
        text += f" {node.error}"
    if args.verbose >= 1 and node.duration is not None:
        text += f" for {format_fsd(round(node.duration, 5))}"
    if args.verbose >= 2 and node.rtt is not None:
        text += f" ({node.rtt * 1e3:.3f} ms)"
    line = text if top or not args.pretty else prefix + ("└─ " if last else "├─ ") + text
    out = [] if args.down and node.status == "full" and not top else [line]
    if args.summary:
        return out
    child_prefix = "" if top else prefix + ("   " if last else "│  ")
    for i, child in enumerate(node.children):
        out += _lines(child, args, child_prefix, i == len(node.children) - 1, False)
    return out


def build_parser(prog: str):
    p = parser(prog, "overlay", "Show the status of the tree-based overlay network.")
    sub = p.add_subparsers(dest="sub", required=True, metavar="COMMAND")
    s = sub.add_parser("status", help="status of the overlay network, as a tree")
    s.add_argument("-r", "--rank", type=int, default=0, help="subtree rooted at RANK (default 0)")
    s.add_argument("-v", "--verbose", action="count", default=0,
                   help="time in the current state; twice: RPC round trip times")
    s.add_argument("-t", "--timeout", default="0.5s", metavar="FSD",
                   help="RPC timeout, 0 = none (default 0.5s)")
    s.add_argument("--summary", action="store_true", help="only the root subtree's status")
    s.add_argument("--down", action="store_true", help="only subtrees not full")
    s.add_argument("--no-pretty", dest="pretty", action="store_false",
                   help="no indentation and no line drawing")
    s.add_argument("--no-ghost", dest="ghost", action="store_false",
                   help="do not show brokers behind offline or lost ones")
    s.add_argument("-w", "--wait", choices=STATES, metavar="STATE",
                   help="wait until the subtree is in STATE (full, partial, degraded, lost, offline)")
    e = sub.add_parser("errors", help="one line per error of lost or offline brokers")
    e.add_argument("-t", "--timeout", default="0.5s", metavar="FSD")
    lk = sub.add_parser("lookup", help="hostlist -> ranks, or ranks -> hostlist")
    lk.add_argument("target")
    po = sub.add_parser("parentof", help="the parent rank of RANK")
    po.add_argument("rank", type=int)
    return p


@command
def cmd_overlay(name, argv, prog):
    args = build_parser(prog).parse_args(argv)
    with handle() as h:
        size = int(h.attr_get("size"))
        hosts = _hosts(h, size)
        return globals()["do_" + args.sub.replace("-", "_")](h, args, size, hosts)


def _hosts(h, size: int) -> list[str]:
    from ..runtime.util.hostlist import Hostlist
    try:
        names = list(Hostlist(h.attr_get("hostlist")))
    except (FluxError, ValueError):
        names = []
    return names if len(names) == size else [str(r) for r in range(size)]


def _children_of(h, size: int):
    fanout = int(h.attr_get("tbon.fanout"))
    return lambda r: kary_children(r, size, fanout)


def _timeout(text: str) -> float:
    try:
        return parse_fsd(text)
    except ValueError as exc:
        raise CommandError(f"--timeout: {exc}") from None


def _status_tree(h, rank: int, timeout: str, size: int, hosts: list[str]) -> Node:
    if not 0 <= rank < size:
        raise CommandError(f"--rank: {rank} is not a rank of this instance (size {size})")
    return _walk(h, rank, hosts, _children_of(h, size), _timeout(timeout))


def do_status(h, args, size, hosts):
    tree = _status_tree(h, args.rank, args.timeout, size, hosts)
    if args.wait:
        while tree.status != args.wait:
            time.sleep(0.1)
            tree = _status_tree(h, args.rank, args.timeout, size, hosts)
    if not args.ghost:
        _prune_ghosts(tree)
    print("\n".join(_lines(tree, args)))
    return 0


def _prune_ghosts(node: Node) -> None:
    if node.status in ("offline", "lost"):
        node.children = []
    for child in node.children:
        _prune_ghosts(child)


def do_errors(h, args, size, hosts):
    from ..runtime.util.hostlist import Hostlist
    tree = _status_tree(h, 0, args.timeout, size, hosts)
    lost: list[str] = []
    behind: list[str] = []

    def visit(node: Node, parent_down: bool) -> None:
        if node.status == "lost" and not parent_down:
            lost.append(node.host)
        elif node.status == "lost":
            behind.append(node.host)
        for child in node.children:
            visit(child, parent_down or node.status == "lost")

    visit(tree, False)
    if lost:
        print(f"{Hostlist(lost).encode()}: lost connection")
    if behind:
        print(f"{Hostlist(behind).encode()}: lost parent")
    return 0


def do_lookup(h, args, size, hosts):
    from ..runtime.util.hostlist import Hostlist
    from ..runtime.util.idset import IDSet
    target = args.target
    try:
        ranks = IDSet(target)
    except ValueError:
        ranks = None
    if ranks is not None:
        bad = [r for r in ranks if r >= size]
        if bad:
            raise CommandError(f"rank {bad[0]} is not in this instance (size {size})")
        print(Hostlist([hosts[r] for r in ranks]).encode())
        return 0
    try:
        wanted = list(Hostlist(target))
    except ValueError as exc:
        raise CommandError(f"{target}: not an idset or a hostlist: {exc}") from None
    missing = [n for n in wanted if n not in hosts]
    if missing:
        raise CommandError(f"{missing[0]}: no such host in this instance ({Hostlist(hosts).encode()})")
    print(IDSet(sorted(hosts.index(n) for n in wanted)).encode())
    return 0


def do_parentof(h, args, size, hosts):
    if not 0 <= args.rank < size:
        raise CommandError(f"rank {args.rank} is not in this instance (size {size})")
    if args.rank == 0:
        raise CommandError("rank 0 has no parent: it is the root of the overlay")
    print(h.rpc("overlay.health", {}, nodeid=args.rank).get()["parent"])
    return 0


def run(name: str, argv: list[str], prog: str) -> int:
    return cmd_overlay(name, argv, prog)
