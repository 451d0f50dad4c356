"""``flux exec``: run a command once on each chosen rank, with that rank's environment."""

from __future__ import annotations

import argparse
import base64
import os
import sys

from ..runtime.message import FLAG_STREAMING, FluxError
from .common import command, handle, parse_ranks, parser


def run(name: str, argv: list[str], prog: str) -> int:
    return cmd_exec(name, argv, prog)


@command
def cmd_exec(name, argv, prog):
    p = parser(prog, name, "Run a command on ranks of the instance (all by default).")
    p.add_argument("-r", "--rank", default="all", help="ranks to run on (idset or 'all')")
    p.add_argument("-x", "--exclude", default=None, help="ranks to leave out")
    p.add_argument("-d", "--dir", default=None, help="working directory (default: current)")
    p.add_argument("-l", "--label-io", action="store_true", help="prefix output with the rank")
    p.add_argument("-n", "--noinput", action="store_true", help="no stdin (always the case)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    if not args.cmd:
        p.error("a COMMAND is required")
    with handle() as h:
        size = int(h.attr_get("size"))
        ranks = parse_ranks(args.rank, size)
        if args.exclude:
            drop = set(parse_ranks(args.exclude, size))
            ranks = [r for r in ranks if r not in drop]
        env = {k: v for k, v in os.environ.items() if k not in ("FLUX_URI",)}
        cwd = args.dir or os.getcwd()
        rpcs = {r: h.rpc("rexec.exec", {"cmd": args.cmd, "env": env, "cwd": cwd}, nodeid=r,
                         flags=FLAG_STREAMING) for r in ranks}
        status = 0
        for r, rpc in rpcs.items():  # responses queue up per rank; print in rank order
            partial = {"stdout": b"", "stderr": b""}
            try:
                for resp in rpc:
                    if "data" in resp:
                        data = base64.b64decode(resp["data"])
                        if args.label_io:  # label whole lines only
                            data = partial[resp["stream"]] + data
                            data, _, partial[resp["stream"]] = data.rpartition(b"\n")
                            data = _label(r, data + b"\n") if data or _ else b""
                        _write(resp["stream"], data)
                    elif "status" in resp:
                        code = resp["status"]
                        code = 128 - code if code < 0 else code
                        if code and args.verbose:
                            print(f"{prog}-exec: rank {r}: exited with {code}", file=sys.stderr)
                        status = max(status, code)
            except FluxError as exc:
                print(f"{prog}-exec: rank {r}: {exc}", file=sys.stderr)
                status = max(status, 127 if exc.errno == 2 else 1)
            for stream, rest in partial.items():
                if rest:
                    _write(stream, _label(r, rest + b"\n"))
        return status


def _label(rank: int, data: bytes) -> bytes:
    return b"".join(b"%d: %s" % (rank, line) for line in data.splitlines(True))


def _write(stream: str, data: bytes) -> None:
    if not data:
        return
    out = sys.stdout if stream == "stdout" else sys.stderr
    out.flush()
    out.buffer.write(data)
    out.buffer.flush()
