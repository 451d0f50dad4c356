"""Broker commands: getattr, setattr, lsattr, uptime, module, dmesg, ping, shutdown, version."""

from __future__ import annotations

import argparse
import errno
import os
import pwd
import sys
import time

from ..runtime.message import FLAG_STREAMING, NODEID_ANY, FluxError
from .common import CommandError, command, handle, parser


def run(name: str, argv: list[str], prog: str) -> int:
    return globals()[f"cmd_{name}"](name, argv, prog)


@command
def cmd_getattr(name, argv, prog):
    p = parser(prog, name, "Print the value of a broker attribute.")
    p.add_argument("attr")
    args = p.parse_args(argv)
    with handle() as h:
        try:
            print(h.attr_get(args.attr))
        except FluxError as exc:
            if exc.errno == errno.ENOENT:
                raise CommandError(f"{args.attr}: No such file or directory") from None
            raise


@command
def cmd_setattr(name, argv, prog):
    p = parser(prog, name, "Set a broker attribute (or remove it with -e).")
    p.add_argument("-e", "--expunge", action="store_true", help="remove the attribute")
    p.add_argument("attr")
    p.add_argument("value", nargs="?")
    args = p.parse_args(argv)
    if args.value is None and not args.expunge:
        p.error("VALUE is required unless --expunge is given")
    with handle() as h:
        h.rpc("attr.set", {"name": args.attr, "value": None if args.expunge else args.value}).get()


@command
def cmd_lsattr(name, argv, prog):
    p = parser(prog, name, "List broker attributes.")
    p.add_argument("-v", "--values", action="store_true", help="show values too")
    args = p.parse_args(argv)
    with handle() as h:
        names = h.rpc("attr.list", {}).get()["names"]
        if not args.values:
            print("\n".join(names))
            return
        for n in names:
            try:
                value = h.attr_get(n)
            except FluxError:
                value = "-"
            print(f"{n:<40}{value if value is not None else '-'}")  # as flux's "%-40s%s"


@command
def cmd_version(name, argv, prog):
    p = parser(prog, name, "Display flux version information.")
    p.parse_args(argv)
    from ..runtime.instance import _version
    version = _version()
    print(f"commands:    \t\t{version}")
    print(f"libflux-core:\t\t{version}")
    uri = os.environ.get("FLUX_URI")
    if uri:  # inside an instance, as flux prints its broker's version
        try:
            with handle() as h:
                print(f"broker:  \t\t{h.attr_get('version')}")
            print(f"FLUX_URI:\t\t{uri}")
        except (FluxError, OSError) as exc:
            raise CommandError(f"flux_open {uri} failed: {exc}") from None
    import platform
    print(f"build-options:\t\t+fluxnb+python=={platform.python_version()}")


def _fsd_short(seconds: float) -> str:
    """Duration the way ``flux uptime`` shows it: 12s, 4.2m, 5.3h, 2.1d."""
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.1f}s"  # pragma: no cover


@command
def cmd_uptime(name, argv, prog):
    p = parser(prog, name, "Tell how long the instance has been running.")
    p.parse_args(argv)
    with handle() as h:
        info = h.rpc("broker.info", {}, nodeid=0).get()
        level = h.rpc("attr.get", {"name": "instance-level"}, nodeid=0).get()["value"]
        try:
            owner = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            owner = str(os.getuid())
        now = time.strftime("%H:%M:%S")
        state = info["state"]
        print(f" {now} {state} {_fsd_short(info['uptime'])},  owner {owner},  "
              f"depth {level},  size {info['size']}")


@command
def cmd_shutdown(name, argv, prog):
    p = parser(prog, name, "Shut down the instance.")
    p.add_argument("--quiet", action="store_true")
    p.parse_args(argv)
    with handle() as h:
        h.rpc("broker.shutdown", {}, nodeid=0).get()


@command
def cmd_module(name, argv, prog):
    p = parser(prog, name, "List, load and unload broker modules.")
    sub = p.add_subparsers(dest="action", required=True)
    ls = sub.add_parser("list", help="list loaded modules")
    ls.add_argument("-r", "--rank", type=int, default=None)
    ls.add_argument("-l", "--long", action="store_true",
                    help="Include full DSO path for each module")
    ld = sub.add_parser("load", help="load a module")
    ld.add_argument("-r", "--rank", default=None)
    ld.add_argument("module")
    ld.add_argument("args", nargs=argparse.REMAINDER)
    for verb in ("unload", "remove"):
        ul = sub.add_parser(verb, help="unload a module")
        ul.add_argument("-r", "--rank", default=None)
        ul.add_argument("-f", "--force", action="store_true")
        ul.add_argument("module")
    args = p.parse_args(argv)
    with handle() as h:
        if args.action == "list":
            nodeid = NODEID_ANY if args.rank is None else args.rank
            mods = h.rpc("module.list", {}, nodeid=nodeid).get()["mods"]
            print(format_lsmod(mods, args.long), end="")
            return
        ranks = _ranks(h, args.rank)
        for r in ranks:
            if args.action == "load":
                h.rpc("module.load", {"name": args.module, "args": args.args}, nodeid=r).get()
            else:
                try:
                    h.rpc("module.remove", {"name": args.module}, nodeid=r).get()
                except FluxError as exc:
                    if not (args.force and exc.errno == errno.ENOENT):
                        raise


#: flux_modstate_t -> the State column's letter (flux-module(1))
_MODSTATE = {0: "I", 1: "I", 2: "R", 3: "F", 4: "X"}


def format_lsmod(mods: list[dict], long: bool = False) -> str:
    """``flux module list`` as flux-core 0.88 prints it: Module, Idle (``idle`` past
    99 s), S, Sendq, Recvq, Service (the module's other services), and Path with -l."""
    def services(m: dict, maxcol: int) -> str:
        text = ",".join(s for s in m.get("services") or [] if s != m["name"])
        if maxcol and len(text) > maxcol:
            text = text[:maxcol - 1] + "+"
        return text

    if long:
        lines = [f"{'Module':<25.25} {'Idle':>4}  S Sendq Recvq {'Service':<8} Path"]
    else:
        lines = [f"{'Module':<25} {'Idle':>4}  S Sendq Recvq Service"]
    for m in sorted(mods, key=lambda m: m["name"]):
        idle = str(m["idle"]) if m["idle"] <= 99 else "idle"
        state = m.get("status", "?")
        state = _MODSTATE.get(state, "?") if isinstance(state, int) else str(state)[:1]
        row = (f"{m['name']:<25.25} {idle:>4}  {state} {m.get('sendqueue', 0):5d} "
               f"{m.get('recvqueue', 0):5d} ")
        if long:
            row += f"{services(m, 8):<8} {m.get('path', '')}"
        else:
            row += services(m, 0)
        lines.append(row)
    return "\n".join(lines) + "\n"


def _ranks(h, spec):
    if spec is None:
        return [int(h.attr_get("rank"))]
    from .common import parse_ranks
    return parse_ranks(spec, int(h.attr_get("size")))


def format_dmesg(entry: dict, human: bool = False, t0: float | None = None) -> str:
    from ..runtime.broker import LOG_LEVELS
    ts = entry.get("timestamp", 0.0)
    level = LOG_LEVELS[entry.get("level", 6)] if 0 <= entry.get("level", 6) < 8 else "info"
    who = f"{entry.get('name', 'broker')}.{level}[{entry.get('rank', 0)}]"
    if human:
        stamp = f"[{ts - (t0 if t0 is not None else ts):+12.6f}]"
    else:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"
    return f"{stamp} {who}: {entry.get('message', '')}"


@command
def cmd_dmesg(name, argv, prog):
    p = parser(prog, name, "Print or clear the broker's log ring buffer.")
    p.add_argument("-C", "--clear", action="store_true", help="clear the buffer")
    p.add_argument("-c", "--read-clear", action="store_true", help="print, then clear")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new entries")
    p.add_argument("-H", "--human", action="store_true", help="relative times")
    args = p.parse_args(argv)
    with handle() as h:
        if not args.clear:
            t0 = None
            rpc = h.rpc("log.dmesg", {"follow": args.follow}, nodeid=0, flags=FLAG_STREAMING)
            for entry in rpc:
                t0 = entry["timestamp"] if t0 is None else t0
                print(format_dmesg(entry, args.human, t0), flush=args.follow)
        if args.clear or args.read_clear:
            h.rpc("log.clear", {}, nodeid=0).get()


@command
def cmd_ping(name, argv, prog):
    p = parser(prog, name, "Send echo requests to a service and time the responses.")
    p.add_argument("-r", "--rank", default=None, help="rank to ping")
    p.add_argument("-p", "--pad", type=int, default=0, help="pad bytes")
    p.add_argument("-i", "--interval", type=float, default=1.0, help="seconds between pings")
    p.add_argument("-c", "--count", type=int, default=None, help="number of pings")
    p.add_argument("target", help="service name, or RANK!SERVICE")
    args = p.parse_args(argv)
    target, rank = args.target, args.rank
    if "!" in target:
        rank, target = target.split("!", 1)
    if target.isdigit():
        rank, target = target, "broker"
    nodeid = NODEID_ANY if rank in (None, "any") else int(rank)
    prefix = "" if nodeid == NODEID_ANY else f"{nodeid}!"
    count = args.count if args.count is not None else (1 if not sys.stdout.isatty() else 10**9)
    with handle() as h:
        for seq in range(count):
            t = time.perf_counter()
            try:
                resp = h.rpc(f"{target}.ping", {"seq": seq, "pad": "x" * args.pad}, nodeid=nodeid).get()
            except FluxError as exc:  # as flux-core: "flux-ping: 2!broker.ping: No route to host"
                raise CommandError(f"{prefix}{target}.ping: {exc.errstr}") from None
            ms = (time.perf_counter() - t) * 1000
            print(f"{prefix}{target}.ping pad={args.pad} seq={seq} time={ms:0.3f} ms ({resp.get('route', '')})",
                  flush=True)
            if seq + 1 < count:
                time.sleep(args.interval)
