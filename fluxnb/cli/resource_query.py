"""``fluxnb resource-query``: a drop-in for flux-sched's resource-query tool.

Load a resource graph (GRUG or JGF), then read commands from stdin::

    match allocate|allocate_orelse_reserve|allocate_with_satisfiability|satisfiability JOBSPEC
    multi-match SUBCMD JOBSPEC...
    cancel JOBID | info JOBID | list | stat | find EXPR
    set-status PATH up|down | get-status PATH
    set-property PATH KEY=VALUE | get-property PATH
    help [CMD] | quit

Match results go to ``-t FILE`` when given (else stdout) in the format of
``-F`` and with the same INFO lines as flux-sched, so its test data can check
fluxnb's matcher byte for byte.
"""

from __future__ import annotations

import argparse
import errno
import gc
import re
import sys
import time
from pathlib import Path
from typing import IO

from fluxnb.runtime.sched.fluxion.graph import GraphError, ResourceGraph
from fluxnb.runtime.sched.fluxion.find import FindError, find
from fluxnb.runtime.sched.fluxion.grug import read_grug
from fluxnb.runtime.sched.fluxion.jgf import read_jgf
from fluxnb.runtime.sched.fluxion.matcher import MatchError, Traverser
from fluxnb.runtime.sched.fluxion.policies import POLICIES, PolicyError, make_policy
from fluxnb.runtime.sched.fluxion.prune import PruneSpecError
from fluxnb.runtime.sched.fluxion.request import Request, RequestError, parse_request
from fluxnb.runtime.sched.fluxion.writers import WRITER_FORMATS, MatchWriter, make_writer
from fluxnb.runtime.sched.fluxion.subset import SubsetError, partial_release, read_rv1exec

__all__ = ["main"]

_SUBSYSTEMS = {"CA": ["containment"], "IBA": ["ibnet"], "IBBA": ["ibnetbw"], "PA": ["power"],
               "PFS1BA": ["pfs1bw"], "C+IBA": ["containment", "ibnet"],
               "C+IBBA": ["containment", "ibnetbw"], "C+PA": ["containment", "power"],
               "C+PFS1BA": ["containment", "pfs1bw"], "IB+IBBA": ["ibnet", "ibnetbw"],
               "C+P+IBA": ["containment", "power", "ibnet"], "V+PFS1BA": ["virtual1", "pfs1bw"],
               "VA": ["virtual1"],
               "ALL": ["containment", "ibnet", "ibnetbw", "pfs1bw", "power"]}

_HELP = [
    ("match", "m", "Allocate or reserve matching resources (subcmd: allocate | "
     "allocate_with_satisfiability | allocate_orelse_reserve) | satisfiability: "
     "resource-query> match allocate jobspec"),
    ("multi-match", "M", "Allocate or reserve for multiple jobspecs (subcmd: allocate | "
     "allocate_with_satisfiability | allocate_orelse_reserve): "
     "resource-query> multi-match allocate jobspec1 jobspec2 ..."),
    ("find", "f", "Find resources matched with criteria (predicates: status={up|down} "
     "sched-now={allocated|free} sched-future={reserved|free} property=name): "
     "resource-query> find status=down and sched-now=allocated"),
    ("cancel", "c", "Cancel an allocation or reservation: resource-query> cancel jobid "
     "(optional subcmd: stats)"),
    ("partial-cancel", "pc", "Partially cancel an allocation: resource-query> partial-cancel jobid "
     "(file format: jgf | rv1exec) R_to_cancel.file (optional subcmd: stats)"),
    ("set-property", "p", "Add a property to a resource: "
     "resource-query> set-property resource PROPERTY=VALUE"),
    ("get-property", "g", "Get all properties of a resource: resource-query> get-property resource"),
    ("set-status", "t", "Set resource status on vertex: "
     "resource-query> set-status PATH_TO_VERTEX {up|down}"),
    ("get-status", "e", "Get the graph resource vertex status: "
     "resource-query> get-status PATH_TO_VERTEX"),
    ("list", "l", "List all jobs: resource-query> list"),
    ("info", "i", "Print info on a jobid: resource-query> info jobid"),
    ("stat", "s", "Print overall stats: resource-query> stat jobid"),
    ("cat", "a", "Print jobspec file: resource-query> cat jobspec"),
    ("help", "h", "Print help message: resource-query> help"),
    ("quit", "q", "Quit the session: resource-query> quit"),
]
_BAR = "INFO: =============================\n"


def _settle() -> None:
    """Collect the cyclic garbage of the last command, then freeze what it left alive.

    A session's state (the graph, then each job's spans and planners) lives
    until the process exits.  Python's automatic collections would walk that
    growing state again and again (half the time of a match that plans a
    whole cluster); instead the session runs with them off, collects the
    youngest generation once per command (what the last command allocated;
    inside a match's ELAPSE) and moves the survivors out of the collector's
    reach (:func:`gc.freeze`).  Memory is still freed by reference counting.
    """
    gc.collect(0)
    gc.freeze()


class _Session:
    def __init__(self, trav: Traverser, writer: MatchWriter, out: IO[str], elapse: bool) -> None:
        self.trav = trav
        self.g: ResourceGraph = trav.g
        self.writer = writer
        self.out = out
        self.elapse = elapse
        self.jobid = 1
        self.jobs: dict[int, tuple[str, int, str, float]] = {}
        self.allocations: set[int] = set()
        self.reservations: set[int] = set()
        self.perf = [float("inf"), 0.0, 0.0]
        #: Parsed jobspecs by file text: a file matched again is not parsed again.
        self._parsed: dict[str, Request] = {}
        self._table = {
            "match": self.cmd_match, "m": self.cmd_match,
            "multi-match": self.cmd_multi_match, "M": self.cmd_multi_match,
            "cancel": self.cmd_cancel, "c": self.cmd_cancel,
            "partial-cancel": self.cmd_partial_cancel, "pc": self.cmd_partial_cancel,
            "info": self.cmd_info, "i": self.cmd_info,
            "list": self.cmd_list, "l": self.cmd_list,
            "stat": self.cmd_stat, "s": self.cmd_stat,
            "find": self.cmd_find, "f": self.cmd_find,
            "set-status": self.cmd_set_status, "t": self.cmd_set_status,
            "get-status": self.cmd_get_status, "e": self.cmd_get_status,
            "set-property": self.cmd_set_property, "p": self.cmd_set_property,
            "get-property": self.cmd_get_property, "g": self.cmd_get_property,
            "cat": self.cmd_cat, "a": self.cmd_cat,
            "help": self.cmd_help, "h": self.cmd_help,
        }

    # -- match ------------------------------------------------------------------------
    def run_match(self, op: str, fn: str) -> int:
        try:
            text = Path(fn).read_text()
        except OSError:
            print(f"ERROR: can't open {fn}", file=sys.stderr)
            return 0
        jobid = self.jobid
        t0 = time.perf_counter()
        req = self._parsed.get(text)
        if req is None:
            try:
                req = parse_request(text, where=fn)
            except RequestError as exc:
                print(f"ERROR: Jobspec error for {jobid}: {exc}", file=sys.stderr)
                return -1
            if len(self._parsed) >= 256:
                self._parsed.clear()
            self._parsed[text] = req
        matched, sat, at = True, True, 0
        try:
            meta = self.trav.run(req, op, jobid, self.writer)  # type: ignore[arg-type]
            at = meta.at
        except MatchError as exc:
            matched = False
            sat = exc.errno not in (errno.ENODEV, errno.ENOENT)
        if self.trav.err_msg:
            sys.stderr.write(self.trav.err_msg if self.trav.err_msg.endswith("\n")
                             else self.trav.err_msg + "\n")
        _settle()
        ov = time.perf_counter() - t0
        self.out.write(self.writer.emit())
        if op == "satisfiability":
            self.out.write(_BAR + f"INFO: {'Satisfiable' if matched else 'Unsatisfiable'} request\n" + _BAR)
            self._elapse_info(ov, sys.stdout)
            return 0 if matched else -1
        self.jobid += 1
        self.perf = [min(self.perf[0], ov), max(self.perf[1], ov), self.perf[2] + ov]
        if matched:
            mode = "ALLOCATED" if at == 0 else "RESERVED"
            self.out.write(_BAR + f"INFO: JOBID={jobid}\nINFO: RESOURCES={mode}\n"
                           f"INFO: SCHEDULED AT={'Now' if at == 0 else at}\n")
            self._elapse_info(ov, sys.stdout)
            self.out.write(_BAR)
            self.jobs[jobid] = (mode, at, fn, ov)
            (self.allocations if at == 0 else self.reservations).add(jobid)
            return 0
        self.out.write(_BAR + "INFO: No matching resources found\n")
        if not sat:
            self.out.write("INFO: Unsatisfiable request\n")
        self.out.write(f"INFO: JOBID={jobid}\n")
        self._elapse_info(ov, self.out)
        self.out.write(_BAR)
        return -1

    def _elapse_info(self, ov: float, stream: IO[str]) -> None:
        if self.elapse:
            stream.write(f"INFO: ELAPSE={ov:.6f}\n")
            sys.stdout.write(f"INFO: PREORDER VISIT COUNT={self.trav.total_preorder}\n"
                             f"INFO: POSTORDER VISIT COUNT={self.trav.total_postorder}\n")

    # -- commands ---------------------------------------------------------------------
    def cmd_match(self, args: list[str]) -> None:
        if len(args) != 3:
            print("ERROR: malformed command", file=sys.stderr)
            return
        if args[1] not in ("allocate", "allocate_orelse_reserve", "allocate_with_satisfiability",
                           "satisfiability", "without_allocating"):
            print(f"ERROR: unknown subcmd {args[1]}", file=sys.stderr)
            return
        self.run_match(args[1], args[2])

    def cmd_multi_match(self, args: list[str]) -> None:
        if len(args) <= 3:
            print("ERROR: malformed command", file=sys.stderr)
            return
        if args[1] not in ("allocate", "allocate_orelse_reserve", "allocate_with_satisfiability",
                           "satisfiability"):
            print(f"ERROR: unknown subcmd {args[1]}", file=sys.stderr)
            return
        for fn in args[2:]:
            if self.run_match(args[1], fn) != 0:
                break

    @staticmethod
    def _jobid(word: str) -> int:
        """The job id as flux-sched's ``strtoll``: leading digits, else 0."""
        m = re.match(r"\s*[-+]?\d+", word)
        return int(m.group(0)) if m else 0

    def cmd_cancel(self, args: list[str]) -> None:
        if len(args) not in (2, 3):
            print("ERROR: malformed command", file=sys.stderr)
            return
        jobid = self._jobid(args[1])
        if jobid in self.allocations or jobid in self.reservations:
            self.trav.cancel(jobid)
            self.allocations.discard(jobid)
            self.reservations.discard(jobid)
            self._canceled(jobid)
        else:
            sys.stderr.write(f"cancel: ERROR: nonexistent job {jobid}\n")
            return
        if len(args) == 3 and args[2] == "stats":
            self.out.write(_BAR + f'INFO: CANCEL PREORDER COUNT="{self.trav.total_preorder}"\n'
                           f'INFO: CANCEL POSTORDER COUNT="{self.trav.total_postorder}"\n' + _BAR)

    def _canceled(self, jobid: int) -> None:
        if jobid in self.jobs:
            _mode, at, fn, ov = self.jobs[jobid]
            self.jobs[jobid] = ("CANCELED", at, fn, ov)

    def cmd_partial_cancel(self, args: list[str]) -> None:
        """``partial-cancel JOBID rv1exec|jgf FILE [stats]``: release part of an allocation."""
        if len(args) not in (4, 5):
            print("ERROR: malformed command", file=sys.stderr)
            return
        jobid = self._jobid(args[1])
        reader = args[2]
        if reader not in ("jgf", "rv1exec"):
            print(f"ERROR: unsupported reader {reader}", file=sys.stderr)
            return
        try:
            text = Path(args[3]).read_text()
        except OSError:
            print(f"ERROR: can't open {args[3]}", file=sys.stderr)
            return
        if jobid in self.reservations:
            print("ERROR: reservations not currently supported by partial cancel", file=sys.stderr)
            return
        if jobid not in self.allocations:
            print(f"ERROR: nonexistent job {jobid}", file=sys.stderr)
            return
        self.trav.total_preorder = self.trav.total_postorder = 0
        try:
            full = partial_release(self.trav, jobid, text, reader)
        except (MatchError, SubsetError) as exc:
            sys.stdout.write(f"remove: {exc}\n")
            print(f"ERROR: error encountered while removing job {jobid}", file=sys.stderr)
        else:
            if full:
                self.allocations.discard(jobid)
                self._canceled(jobid)
        if len(args) == 5 and args[4] == "stats":
            self.out.write(_BAR + f'INFO: PARTIAL CANCEL PREORDER COUNT="{self.trav.total_preorder}"\n'
                           f'INFO: PARTIAL CANCEL POSTORDER COUNT="{self.trav.total_postorder}"\n'
                           + _BAR)

    def cmd_info(self, args: list[str]) -> None:
        if len(args) != 2:
            print("ERROR: malformed command", file=sys.stderr)
            return
        jobid = self._jobid(args[1])
        if jobid not in self.jobs:
            sys.stderr.write(f"info: ERROR: nonexistent job {jobid}\n")
            return
        mode, at, fn, ov = self.jobs[jobid]
        print(f"INFO: {jobid}, {mode}, {at}, {fn}, {ov:g}")

    def cmd_list(self, args: list[str]) -> None:
        for jobid, (mode, at, fn, ov) in sorted(self.jobs.items()):
            print(f"INFO: {jobid}, {mode}, {at}, {fn}, {ov:g}")

    def cmd_stat(self, args: list[str]) -> None:
        n = len(self.jobs)
        avg = self.perf[2] / n if n else 0.0
        mn = self.perf[0] if n else 0.0
        print(f"INFO: Num. of Jobs Matched: {n}")
        print(f"INFO: Min. Match Time: {mn:g}")
        print(f"INFO: Max. Match Time: {self.perf[1]:g}")
        print(f"INFO: Avg. Match Time: {avg:g}")

    def cmd_find(self, args: list[str]) -> None:
        if len(args) < 2:
            print("ERROR: malformed command: ", file=sys.stderr)
            return
        criteria = " ".join(args[1:])
        try:
            find(self.trav, criteria, self.writer)
        except FindError as exc:
            print(str(exc), file=sys.stderr)
            return
        self.out.write(self.writer.emit())
        self.out.write(_BAR + f'INFO: EXPRESSION="{criteria}"\n' + _BAR)

    def cmd_set_status(self, args: list[str]) -> None:
        if len(args) != 3:
            print("ERROR: malformed command", file=sys.stderr)
            return
        if args[1] not in self.g.by_path:
            self.out.write(f"Could not find path {args[1]} in resource graph.\n")
            return
        if args[2] not in ("up", "down"):
            print("ERROR: unrecognized status", file=sys.stderr)
            return
        self.trav.mark(args[1], args[2])

    def cmd_get_status(self, args: list[str]) -> None:
        if len(args) != 2:
            print("ERROR: malformed command", file=sys.stderr)
            return
        v = self.g.by_path.get(args[1])
        if v is None:
            self.out.write(f"Could not find path {args[1]} in resource graph.\n")
            return
        self.out.write(f"{args[1]} is {v.status}\n")

    def cmd_set_property(self, args: list[str]) -> None:
        if len(args) != 3:
            print("ERROR: malformed command", file=sys.stderr)
            return
        pos = args[2].find("=")
        if pos <= 0 or pos == len(args[2]) - 1:
            self.out.write("Incorrect input format. \n"
                           "Please use `set-property <resource> PROPERTY=VALUE`.\n")
            return
        v = self.g.by_path.get(args[1])
        if v is None:
            self.out.write(f"Couldn't find path {args[1]} in resource graph.\n")
            return
        v.properties[args[2][:pos]] = args[2][pos + 1:]

    def cmd_get_property(self, args: list[str]) -> None:
        if len(args) != 2:
            print("ERROR: malformed command", file=sys.stderr)
            return
        v = self.g.by_path.get(args[1])
        if v is None:
            self.out.write(f"Could not find path {args[1]} in resource graph.\n")
        elif not v.properties:
            self.out.write(f"No properties were found for {args[1]} (vtx's uniq_id={v.uniq_id}).\n")
        else:
            for k in sorted(v.properties):
                self.out.write(f"{k}={v.properties[k]}\n")

    def cmd_cat(self, args: list[str]) -> None:
        if len(args) != 2:
            print("ERROR: malformed command", file=sys.stderr)
            return
        try:
            sys.stdout.write(Path(args[1]).read_text())
        except OSError as exc:
            print(f"ERROR: can't open {args[1]}: {exc.strerror}", file=sys.stderr)
            return
        print(f"INFO: Jobspec in {args[1]}")

    def cmd_help(self, args: list[str]) -> None:
        want = args[1] if len(args) == 2 else None
        found = False
        for name, abbr, note in _HELP:
            if want is None or want in (name, abbr):
                print(f"INFO: {name} ({abbr}) -- {note}")
                found = True
        if want is not None and not found:
            print(f"ERROR: unknown command: {want}")

    def dispatch(self, line: str) -> bool:
        """Run one command line; return False on quit."""
        args = line.split()
        if not args or args[0].startswith("#"):
            return True
        if args[0] in ("quit", "q"):
            return False
        fn = self._table.get(args[0])
        if fn is None:
            print(f"ERROR: invalid command: {args[0]}", file=sys.stderr)
            return True
        fn(args)
        return True


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="resource-query", description="Query a Fluxion resource graph from the command line.")
    p.add_argument("-L", "--load-file", default="conf/default", help="resource graph file (GRUG or JGF)")
    p.add_argument("-f", "--load-format", default="grug", choices=["grug", "jgf", "rv1exec", "rv1exec_force"],
                   help="format of the load file (rv1exec: an RV1 R, read from its 'scheduling' "
                        "JGF when it has one; rv1exec_force: from R_lite always)")
    p.add_argument("-W", "--load-allowlist", default="",
                   help="comma-separated resource types to keep when loading")
    p.add_argument("-S", "--match-subsystems", default="CA", help="subsystems to match (CA, C+PA, ...)")
    p.add_argument("-P", "--match-policy", default="first", help=f"match policy: {', '.join(POLICIES)}")
    p.add_argument("-F", "--match-format", default="simple", help=f"match output: {', '.join(WRITER_FORMATS)}")
    p.add_argument("-p", "--prune-filters", default="ALL:core,ALL:node", help="pruning filters HL:LL,...")
    p.add_argument("-t", "--test-output", default="", help="write match output to FILE")
    p.add_argument("-e", "--elapse-time", action="store_true", help="print match time")
    p.add_argument("-d", "--disable-prompt", action="store_true", help="do not print the prompt")
    return p


def _load(args: argparse.Namespace) -> ResourceGraph:
    if args.load_format == "jgf":
        g = read_jgf(args.load_file)
    elif args.load_format in ("rv1exec", "rv1exec_force"):
        g = read_rv1exec(args.load_file, force=args.load_format == "rv1exec_force")
    else:
        g = read_grug(args.load_file)
    if args.load_allowlist:
        from fluxnb.runtime.sched.fluxion.jgf import filter_types

        g = filter_types(g, [t.strip() for t in args.load_allowlist.split(",") if t.strip()])
    return g


def main(argv: list[str] | None = None) -> int:
    """Run resource-query; return the process exit status."""
    args = _parser().parse_args(argv)
    subsystems = _SUBSYSTEMS.get(args.match_subsystems) or _SUBSYSTEMS.get(args.match_subsystems.upper())
    if subsystems is None:
        print(f"resource-query: unknown subsystem set '{args.match_subsystems}'; known: "
              f"{', '.join(_SUBSYSTEMS)}", file=sys.stderr)
        return 1
    gc_was, frozen_before = gc.isenabled(), gc.get_freeze_count()
    try:
        policy = make_policy(args.match_policy)
        writer = make_writer(args.match_format)
        # the process owns its graph for good: keep the garbage collector's
        # full collections off its hundreds of thousands of objects
        with ResourceGraph.building(freeze=True):
            g = _load(args)
            trav = Traverser(g, policy, args.prune_filters, subsystems)
    except (PolicyError, GraphError, PruneSpecError, ValueError, MatchError, OSError) as exc:
        if not frozen_before:
            gc.unfreeze()
        print(f"resource-query: {exc}", file=sys.stderr)
        return 1
    out: IO[str] = open(args.test_output, "w") if args.test_output else sys.stdout
    session = _Session(trav, writer, out, args.elapse_time)
    gc.disable()  # see _settle
    try:
        while True:
            if not args.disable_prompt:
                sys.stdout.write("resource-query> ")
                sys.stdout.flush()
            line = sys.stdin.readline()
            if not line:
                break
            if not session.dispatch(line.strip()):
                break
            _settle()
    finally:
        if out is not sys.stdout:
            out.close()
        # called in-process (tests): give the caller its collector back
        if not frozen_before:
            gc.unfreeze()
        if gc_was:
            gc.enable()
    return 0


if __name__ == "__main__":
    sys.exit(main())
