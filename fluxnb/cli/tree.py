"""``flux tree``: lay out a hierarchy of nested instances and share N jobs among its leaves.

``flux tree -T 2x2 -J 100 -- true`` starts two nested instances, each of which
starts two more, and the four leaves run 25 ``true`` jobs each (after flux-core's
flux-tree). Each instance gets an equal share of its parent's nodes (or cores,
when there are fewer nodes than children). Prints one line per instance with its
path, jobs and elapsed time, then the whole tree's throughput.
"""

from __future__ import annotations

import argparse
import json

from ..hierarchy import split  # noqa: F401 - re-exported for callers of flux tree
from .common import CommandError, command, handle, parser


def run(name: str, argv: list[str], prog: str) -> int:
    return cmd_tree(name, argv, prog)


def parse_topology(text: str) -> list[int]:
    """``"2x2"`` -> ``[2, 2]``; an empty string is a single (leaf) instance."""
    if not text:
        return []
    try:
        fanouts = [int(x) for x in text.lower().split("x")]
    except ValueError:
        raise CommandError(f"-T {text!r}: expected fan-outs like 2x2") from None
    if any(k < 1 for k in fanouts):
        raise CommandError(f"-T {text!r}: every fan-out must be >= 1")
    return fanouts




@command
def cmd_tree(name, argv, prog):
    p = parser(prog, name, "Run N jobs through a hierarchy of nested instances (after flux-tree).")
    p.add_argument("-T", "--topology", default="", help="fan-out per level, e.g. 2x2")
    p.add_argument("-J", "--njobs", type=int, default=1, help="leaf jobs in all")
    p.add_argument("--test-exec", metavar="FSD", default=None,
                   help="run leaf jobs in test exec mode for FSD each (no process)")
    p.add_argument("--path", default="", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="print one JSON object per instance")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    if args.njobs < 0:
        raise CommandError("-J: must be >= 0")
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        cmd = ["true"]
    fanouts = parse_topology(args.topology)
    from ..hierarchy import run_tree_level
    with handle() as h:
        report = run_tree_level(h, fanouts, args.njobs, cmd, args.test_exec, args.path or "/")
    if args.json:  # a parent reads its children's lines from their output
        for line in report:
            print(json.dumps(line))
        return 0
    for line in report:
        print(
              f"{line['path']:<12} size {line['size']:>3}  jobs {line['njobs']:>6}  "
              f"elapsed {line['elapsed']:8.3f}s  "
              f"{line['njobs'] / line['elapsed'] if line['elapsed'] else 0:8.1f} jobs/s")
    return 0
