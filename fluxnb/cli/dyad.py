"""``flux dyad``: DYAD for shell tasks (produce, consume, run a wrapped command, status)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from .common import CommandError, command, parser

_HELP = """actions:
  produce PATH...          publish closed files under DYAD_PATH_PRODUCER
  consume PATH...          wait for files under DYAD_PATH_CONSUMER, fetch them here
  run [--consume P] CMD    run CMD, publishing what it writes under DYAD_PATH_PRODUCER
  key PATH                 print the KVS key of a managed-relative path
  status [-r RANK]         the dyad service of a rank: directory, waiting consumers
"""


def _dyad():
    from ..dyad import Dyad, DyadError
    d = Dyad()
    try:
        d.init_env()
    except DyadError as exc:
        raise CommandError(str(exc)) from None
    return d


def _on_term(signum, frame):
    # closing the handle on the way out tells the broker this client is gone,
    # so the dyad service stops waiting on its behalf (flux cancel sends SIGTERM)
    raise KeyboardInterrupt


@command
def run(name: str, argv: list[str], prog: str) -> int:
    p = parser(prog, name, "DYAD producer/consumer file streaming.")
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = _HELP
    sub = p.add_subparsers(dest="action", required=True)
    pr = sub.add_parser("produce", help="publish closed files")
    pr.add_argument("paths", nargs="+")
    co = sub.add_parser("consume", help="wait for and fetch files")
    co.add_argument("-t", "--timeout", type=float, default=None, help="give up after this many seconds")
    co.add_argument("-v", "--verbose", action="store_true", help="say what is waited for and fetched")
    co.add_argument("paths", nargs="+")
    ru = sub.add_parser("run", help="run a command, publishing what it writes")
    ru.add_argument("--consume", action="append", default=[], metavar="PATH",
                    help="fetch this input before the command starts (repeatable)")
    ru.add_argument("cmd", nargs=argparse.REMAINDER)
    ke = sub.add_parser("key", help="print the KVS key of a path")
    ke.add_argument("--depth", type=int, default=None)
    ke.add_argument("--bins", type=int, default=None)
    ke.add_argument("path")
    st = sub.add_parser("status", help="show a rank's dyad service")
    st.add_argument("-r", "--rank", type=int, default=None)
    args = p.parse_args(argv)

    if args.action == "key":
        from ..dyad import key
        depth = args.depth if args.depth is not None else int(os.environ.get("DYAD_KEY_DEPTH") or 3)
        bins = args.bins if args.bins is not None else int(os.environ.get("DYAD_KEY_BINS") or 1024)
        print(key(args.path, depth, bins))
        return 0
    if args.action == "status":
        from ..dyad.client import _module_error
        from ..runtime.client import Flux
        from ..runtime.message import FluxError
        with Flux() as h:
            rank = int(h.attr_get("rank")) if args.rank is None else args.rank
            try:
                print(json.dumps(h.rpc("dyad.stats", {}, nodeid=rank).get(), indent=2))
            except FluxError as exc:
                raise _module_error(exc, rank) from None
        return 0

    signal.signal(signal.SIGTERM, _on_term)
    d = _dyad()
    try:
        if args.action == "produce":
            for path in args.paths:
                if d.produce(path) is None:
                    print(f"{prog}-{name}: {path} is not under DYAD_PATH_PRODUCER ({d.prod_path}); "
                          "not published", file=sys.stderr)
            return 0
        if args.action == "consume":
            for path in args.paths:
                if args.verbose:
                    print(f"dyad: waiting for {path} (key {d.key(path, d.cons_path)} in "
                          f"{d.kvs_namespace})", file=sys.stderr, flush=True)
                try:
                    answer = d.consume(path, timeout=args.timeout)
                except TimeoutError as exc:
                    raise CommandError(str(exc)) from None
                if answer is None:
                    raise CommandError(f"{path} is not under DYAD_PATH_CONSUMER ({d.cons_path})")
                if args.verbose:
                    how = "fetched" if answer["fetched"] else "present"
                    print(f"dyad: {path}: {how} (owner rank {answer['owner']})", file=sys.stderr)
            return 0
        # run
        from pathlib import Path

        from ..dyad.wrapper import run_and_publish
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if not cmd:
            raise CommandError("run: no command given")
        for path in args.consume:
            if d.consume(path) is None:
                raise CommandError(f"{path} is not under DYAD_PATH_CONSUMER ({d.cons_path})")
        return run_and_publish(cmd, Path(d.prod_path), d.produce)
    except KeyboardInterrupt:
        print(f"{prog}-{name}: interrupted", file=sys.stderr)
        return 143
    finally:
        d.finalize()
