"""``flux tree``: a hierarchy of nested instances running a Jobscript at its leaves.

As flux-sched's flux-tree: ``flux tree -T 2x4 -J 32 -N 4 -c 2 -- script.sh``
starts 2 nested instances, each of which starts 4 more; each of the 8 leaves runs
``script.sh`` 4 times, one after another, with ``FLUX_TREE_ID``,
``FLUX_TREE_JOBSCRIPT_INDEX``, ``FLUX_TREE_NNODES``, ``FLUX_TREE_NCORES_PER_NODE``
and ``FLUX_TREE_NGPUS_PER_NODE`` set (the script is expected to ``flux submit``
work), then drains its queue. ``-N`` nodes of ``-c`` cores (and ``-g`` gpus) are
split evenly among siblings. ``-Q``/``-P``/``-M`` give each level's queuing policy,
queue parameters and match policy (``easy:fcfs``: ``easy`` here, ``fcfs`` below),
passed to the child instance's Fluxion modules through ``FLUXION_QMANAGER_OPTIONS``
and ``FLUXION_RESOURCE_OPTIONS``. ``-o FILE`` writes one performance line per
instance (``--perf-format``); each child hands its records up through its
parent's KVS (key ``tree-perf`` of the job's guest namespace). The highest
Jobscript exit code is the exit code, reported with its ``ID@index[N]``.
``-X/--prefix`` is internal (the instance's tree id). ``-f DIR`` saves each child
instance's log (``flux dmesg``) in ``DIR/TREEID.log``; ``-r DIR`` puts its run
directory in ``DIR/TREEID.pfs``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import secrets
import shutil
import string
import subprocess
import sys
import time

from ..hierarchy import split  # noqa: F401 - re-exported for callers of flux tree
from .common import CommandError, command, handle, parser

TOP_PREFIX = "tree"
DEFAULT_PERF_FORMAT = ("{treeid:<15s} {elapse:>20f} {begin:>20f} {end:>20f} {match:>15f} "
                       "{njobs:>15d} {my_nodes:>5d} {my_cores:>4d} {my_gpus:>4d}")
PERF_HEADINGS = {"treeid": "TreeID", "elapse": "Elapsed(sec)", "begin": "Begin(Epoch)",
                 "end": "End(Epoch)", "match": "Match(usec)", "njobs": "NJobs",
                 "my_nodes": "NNodes", "my_cores": "CPN", "my_gpus": "GPN"}
QUEUE_POLICIES = ("fcfs", "easy", "hybrid", "conservative", "default")
MATCH_POLICIES = ("low", "high", "locality", "variation", "default")
QUEUE_PARAMS = ("queue-depth", "reservation-depth", "default")
PERF_KEY = "tree-perf"

USAGE = """\
Usage: flux-tree [OPTIONS] -- Jobscript

Create a Flux instance hierarchy according to the specified
policies and schedule/run the specified number
of Jobscripts at the last level of this hierarchy.

If --topology=2x4 and --njobs=32 are given, for instance,
2 Flux instances will be spawned from within the current instance,
each of which will in turn spawn 4 child Flux instances, totaling
8 instances at the last level of this hierarchy.
Once this is done, 4 jobs (of Jobscripts) will be scheduled
and executed at each of these 8 last-level Flux instances.

The resources specified by --nnodes (total number of nodes) and
--ncores-per-node (total number of cores per node) are recursively
divided such that each sibling Flux instance will be assigned to an
equal split of the resources of their parent instance. --ngpus-per-node
splits GPUs likewise (none if not given).

Jobscript is passed FLUX_TREE_ID, FLUX_TREE_JOBSCRIPT_INDEX,
FLUX_TREE_NNODES, FLUX_TREE_NCORES_PER_NODE and FLUX_TREE_NGPUS_PER_NODE.

Options:
 -h, --help                    Display this message
 -l, --leaf                    Leaf instance. Directly submit jobs
                               to enclosing Flux instance. Mutually-exclusive
                               with internal tree-node options like -T.
                                   (default=no)
 -f, --flux-logs=DIR           Dump Flux logs for all instances into DIR
 -r, --flux-rundir=DIR         Set the rundir attribute of each Flux tree instance
                                   into a subdirectory within DIR
 -N, --nnodes=NNODES           Total num of nodes to use (default=1)
 -c, --ncores-per-node=NCORES  Total num of cores per node to use (default=1)
 -g, --ngpus-per-node=NGPUS    Total num of gpus per node to use (default=0)
 -T, --topology=HPOLICY        Topology of Flux instance hierarchy:
                                   e.g., 2x2 (default=1)
 -Q, --queue-policy=QPOLICY    Queuing policy for each level of
                                   the hierarchy: e.g., easy:fcfs
 -P, --queue-params=QPARAMS    Queuing parameters for each level of
                                   the hierarchy: e.g.,
                                   queue-depth=5:reservation-depth=5
 -M, --match-policy=MPOLICY    Match policy for each level of
                                   the hierarchy: e.g., low:high
 -J, --njobs=NJOBS             Total num of Jobscripts to run (default=1)
 -o, --perf-out=FILENAME       Dump the performance data into
                                   the given file (default: don't print)
     --perf-format=FORMAT      Dump the performance data with the given
                                   format. Uses the python format
                                   specification mini-language.
                                   Example: "{treeid:<15s},{elapse:>20f}"
     --job-name=NAME           Name to use when submitting child jobs
 -d, --dry-run                 Print what would be done
     --                        Stop parsing options after this
"""


def run(name: str, argv: list[str], prog: str) -> int:
    if "--json" in argv:   # fluxnb.hierarchy.tree's own levels (see _cmd_levels)
        return _cmd_levels(name, argv, prog)
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


def share(total: int, size: int, rank: int) -> int:
    """flux-tree's split: what sibling ``rank`` (from 1) of ``size`` gets of ``total``
    (the first ``total % size`` get one more)."""
    return total // size + (1 if rank <= total % size else 0)


def _next(value: str, delim: str) -> str:
    """What the next level gets: ``2x3x4`` -> ``3x4``, ``easy:fcfs`` -> ``fcfs``, or ''."""
    head, sep, rest = value.partition(delim)
    return rest if sep else ""


def _first(value: str) -> str:
    return value.split(":", 1)[0]


def _valid_params(value: str) -> bool:
    level = _first(value)
    if not level:
        return False
    return all(tok.split("=", 1)[0] in QUEUE_PARAMS for tok in level.split(","))


class PerfFormat:
    """The ``--perf-format`` string: rows of records and a header of their names."""

    _SPEC = re.compile(r"^(?:(?P<fill>.)?(?P<align>[<>=^]))?[+\- ]?#?0?(?P<width>\d*)")

    def __init__(self, fmt: str):
        self.fmt = fmt
        try:
            self.parsed = list(string.Formatter().parse(fmt))
        except ValueError as exc:
            raise CommandError(f"--perf-format: {exc}") from None
        for _, field, _, _ in self.parsed:
            if field is not None and field not in PERF_HEADINGS:
                raise CommandError(f"Unknown format field: {field}")

    def header(self) -> str:
        out = []
        for text, field, spec, _ in self.parsed:
            out.append(text.replace("{", "{{").replace("}", "}}"))
            if field is not None:
                m = self._SPEC.match(spec or "")
                keep = f"{m.group('fill') or ''}{m.group('align') or ''}{m.group('width')}"
                out.append("{" + field + (":" + keep if keep else "") + "}")
        return "".join(out).format(**PERF_HEADINGS)

    def row(self, record: dict) -> str:
        try:
            return self.fmt.format(**record)
        except (ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"--perf-format: {exc}") from None


def _flatten(record: dict):
    """Records of a tree, each instance before its children (flux-tree's order)."""
    row = {k: v for k, v in record.items() if k in PERF_HEADINGS}
    row.update(record.get("perf") or {})
    yield row
    for child in record.get("child") or []:
        yield from _flatten(child)


def write_perf(path: str, fmt: str, record: dict) -> None:
    pf = PerfFormat(fmt)
    lines = [pf.header()] + [pf.row(r) for r in _flatten(record)]
    try:
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
    except OSError as exc:
        raise CommandError(f"{path}: {os.strerror(exc.errno or 0)}") from None


class _Tree:
    def __init__(self, args, cmd: list[str]):
        self.args = args
        self.cmd = cmd
        self.max_rc = 0
        self.max_where: tuple[str, int] | None = None

    def say(self, text: str) -> None:
        print(f"flux-tree: dry-run: {text}", flush=True)

    def warn(self, text: str) -> None:
        print(f"flux-tree: warning: {text}", file=sys.stderr, flush=True)

    # -- leaf -------------------------------------------------------------------
    def leaf(self) -> tuple[dict, int]:
        a = self.args
        begin = time.time()
        for index in range(1, a.njobs + 1):
            env = dict(os.environ, FLUX_TREE_ID=a.prefix, FLUX_TREE_JOBSCRIPT_INDEX=str(index),
                       FLUX_TREE_NNODES=str(a.nnodes), FLUX_TREE_NCORES_PER_NODE=str(a.ncores),
                       FLUX_TREE_NGPUS_PER_NODE=str(a.ngpus))
            if a.dry_run:
                for var in ("FLUX_TREE_ID", "FLUX_TREE_JOBSCRIPT_INDEX",
                            "FLUX_TREE_NCORES_PER_NODE", "FLUX_TREE_NGPUS_PER_NODE",
                            "FLUX_TREE_NNODES"):
                    self.say(f"{var}={env[var]}")
                self.say(f"eval {' '.join(self.cmd)}")
                continue
            sys.stdout.flush()
            try:
                rc = subprocess.run(self.cmd, env=env).returncode
            except OSError as exc:
                print(f"flux-tree: {self.cmd[0]}: {os.strerror(exc.errno or 0)}",
                      file=sys.stderr)
                rc = 127
            rc = 128 - rc if rc < 0 else rc
            if rc > self.max_rc:
                self.max_rc, self.max_where = rc, (a.prefix, index)
        if not a.dry_run:
            with handle() as h:   # flux queue drain
                h.rpc("job-manager.drain", {}, nodeid=0).get()
        if self.max_where:
            self.warn(f"{' '.join(self.cmd)}: exited with exit code ({self.max_rc})")
            self.warn(f"invocation id: {self.max_where[0]}@index[{self.max_where[1]}]")
            self.warn("output displayed above, if any")
        return self.record(begin, time.time(), []), self.max_rc

    # -- internal ---------------------------------------------------------------
    def internal(self) -> tuple[dict, int]:
        a = self.args
        begin = time.time()
        try:
            size = int(a.topology.split("x", 1)[0])
        except ValueError:
            raise CommandError("invalid topology!") from None
        if size < 1:
            raise CommandError("invalid topology!")
        if a.ngpus and a.ngpus < size:
            size = a.ngpus
        size = min(size, a.ncores)
        nx_topo = _next(a.topology, "x")
        nx_q, nx_p, nx_m = (_next(v, ":") for v in (a.queue_policy, a.queue_params,
                                                    a.match_policy))
        env = self.policy_env()
        children: list[tuple[str, int]] = []
        total_cores, total_gpus = a.nnodes * a.ncores, a.nnodes * a.ngpus
        for rank in range(1, size + 1):
            my_cores = share(total_cores, size, rank)
            my_gpus = share(total_gpus, size, rank)
            my_njobs = share(a.njobs, size, rank)
            if my_njobs == 0:
                break
            N = math.ceil(my_cores / a.ncores)
            c = math.ceil(my_cores / N)
            g = math.ceil(my_gpus / N)
            prefix = f"{a.prefix}.{rank}"
            argv = ["flux", "tree", f"-N{N}", f"-c{c}"] + ([f"-g{g}"] if g else [])
            argv += [f"--topology={nx_topo}"] if nx_topo else ["--leaf"]
            argv += [f"--queue-policy={nx_q}"] if nx_q else []
            argv += [f"--queue-params={nx_p}"] if nx_p else []
            argv += [f"--match-policy={nx_m}"] if nx_m else []
            argv += [f"--flux-logs={a.flux_logs}"] if a.flux_logs else []
            argv += [f"--flux-rundir={a.flux_rundir}"] if a.flux_rundir else []
            argv += [f"--prefix={prefix}", f"--njobs={my_njobs}", f"--job-name={a.job_name}",
                     "--", *self.cmd]
            broker_opts = []
            if a.flux_rundir:
                rundir = os.path.join(a.flux_rundir, f"{prefix}.pfs")
                broker_opts.append(f"-Srundir={rundir}")
            if a.dry_run:
                self.say(f"Rank={rank}: N={N} c={c}" + (f" g=-g {g}" if g else "")
                         + (f" o={' '.join(broker_opts)}" if broker_opts else ""))
                self.say(f"Rank={rank}: T=" + (f"--topology={nx_topo}" if nx_topo else "--leaf"))
                pol = " ".join(x for x in (f"Q=--queue-policy={nx_q}" if nx_q else "",
                                           f"P=--queue-params={nx_p}" if nx_p else "",
                                           f"M=--match-policy={nx_m}" if nx_m else "") if x)
                self.say(f"Rank={rank}: {pol}")
                self.say(f"Rank={rank}: X=--prefix={prefix} J=--njobs={my_njobs} "
                         f"S={' '.join(self.cmd)}")
                self.say("")
                continue
            if a.flux_rundir:
                shutil.rmtree(rundir, ignore_errors=True)
                os.makedirs(rundir, exist_ok=True)
            children.append((prefix, self.submit(prefix, argv, broker_opts, N, c, g, env)))
        records = []
        if children:
            records = self.wait_children(children)
        return self.record(begin, time.time(), records), self.max_rc

    def policy_env(self) -> dict[str, str]:
        """The environment of this level's children: their Fluxion module options."""
        a = self.args
        env = dict(os.environ)
        q, p, m = _first(a.queue_policy), _first(a.queue_params), _first(a.match_policy)
        qopts = []
        if q != "default":
            qopts.append(f"queue-policy={q}")
        if p != "default":
            qopts.append(f"queue-params={p}")
        if qopts:
            env["FLUXION_QMANAGER_OPTIONS"] = " ".join(qopts)
        if m != "default":
            env["FLUXION_RESOURCE_OPTIONS"] = f"hwloc-allowlist=node,core,gpu policy={m}"
        if a.dry_run:
            self.say(f"FLUXION_QMANAGER_OPTIONS:{env.get('FLUXION_QMANAGER_OPTIONS', '')}")
            self.say(f"FLUXION_RESOURCE_OPTIONS:{env.get('FLUXION_RESOURCE_OPTIONS', '')}")
        return env

    def submit(self, prefix: str, argv, broker_opts, N: int, c: int, g: int, env: dict) -> int:
        from ..job import JobspecV1, submit
        from ..runtime.message import FluxError
        js = JobspecV1.from_nest_command(argv, num_slots=N, cores_per_slot=c,
                                         gpus_per_slot=g or None, num_nodes=N,
                                         broker_opts=broker_opts)
        js.environment = env
        js.cwd = os.getcwd()
        js.setattr("system.job.name", self.args.job_name)
        try:
            with handle() as h:
                return int(submit(h, js))
        except FluxError as exc:
            raise CommandError(f"{prefix}: submitting -N{N} -c{c}: {exc}") from None

    def wait_children(self, children: list[tuple[str, int]]) -> list[dict]:
        """Wait for the children; roll up their exit codes and performance records."""
        from .. import kvs
        from ..job import JobID, result
        from ..runtime.message import FluxError
        records, worst = [], None
        with handle() as h:
            for prefix, jobid in children:
                info = result(h, jobid)
                rc = 255 if info.get("result") not in ("COMPLETED", "FAILED") \
                    else int(info.get("returncode") or 0)
                if info.get("result") == "FAILED" and info.get("exception_occurred"):
                    rc = 255
                if rc > self.max_rc:
                    self.max_rc, worst = rc, jobid
                try:
                    records.append(kvs.get(h, f"{JobID(jobid).kvs}.guest.{PERF_KEY}",
                                           namespace="primary"))
                except FluxError:
                    pass   # a child that died hands nothing up
        if worst is not None:   # flux job attach: its output, as flux-tree shows it
            sys.stdout.flush()
            subprocess.run(["flux", "job", "attach", JobID(worst).f58])
        return records

    def record(self, begin: float, end: float, children: list[dict]) -> dict:
        a = self.args
        return {"treeid": a.prefix, "njobs": a.njobs, "my_nodes": a.nnodes,
                "my_cores": a.ncores, "my_gpus": a.ngpus,
                "perf": {"begin": begin, "end": end, "elapse": end - begin, "match": 0.0},
                "child": children}


def _hand_up(record: dict) -> None:
    """A child instance's records go to its parent's KVS: the job's guest namespace."""
    from .. import kvs
    from ..runtime.client import Flux
    from ..runtime.message import FluxError
    try:
        with handle() as h:
            parent_uri = h.attr_get("parent-uri")
            namespace = h.attr_get("parent-kvs-namespace")
    except FluxError:
        return
    if not parent_uri or not namespace:
        return
    with Flux(parent_uri) as parent:
        kvs.put(parent, PERF_KEY, record, namespace=namespace)
        kvs.commit(parent, namespace=namespace)


def _save_log(directory: str, prefix: str) -> None:
    """``-f DIR``: this instance's log as ``DIR/TREEID.log``."""
    from .broker import format_dmesg
    from ..runtime.message import FLAG_STREAMING
    os.makedirs(directory, exist_ok=True)
    with handle() as h, open(os.path.join(directory, f"{prefix}.log"), "w") as f:
        for entry in h.rpc("log.dmesg", {"follow": False}, nodeid=0, flags=FLAG_STREAMING):
            f.write(format_dmesg(entry) + "\n")


def build_parser(prog: str, name: str) -> argparse.ArgumentParser:
    p = parser(prog, name, "Create a Flux instance hierarchy and run a Jobscript at its leaves "
               "(as flux-sched's flux-tree).")
    p.add_argument("-l", "--leaf", action="store_true")
    p.add_argument("-d", "--dry-run", action="store_true")
    p.add_argument("-f", "--flux-logs", metavar="DIR")
    p.add_argument("-r", "--flux-rundir", metavar="DIR")
    p.add_argument("-N", "--nnodes", type=int, default=1)
    p.add_argument("-c", "--ncores-per-node", dest="ncores", type=int, default=1)
    p.add_argument("-g", "--ngpus-per-node", dest="ngpus", type=int, default=0)
    p.add_argument("-T", "--topology", default=None)
    p.add_argument("-Q", "--queue-policy", default=None)
    p.add_argument("-P", "--queue-params", default=None)
    p.add_argument("-M", "--match-policy", default=None)
    p.add_argument("-J", "--njobs", type=int, default=1)
    p.add_argument("-o", "--perf-out", metavar="FILENAME")
    p.add_argument("--perf-format", default=DEFAULT_PERF_FORMAT)
    p.add_argument("-X", "--prefix", default=TOP_PREFIX)
    p.add_argument("--job-name", default=None)
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.print_help = lambda file=None: print(USAGE, end="", file=file)  # type: ignore[method-assign]
    return p


@command
def cmd_tree(name, argv, prog):
    p = build_parser(prog, name)
    args = p.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    inter = any(v is not None for v in (args.topology, args.queue_policy, args.queue_params,
                                        args.match_policy))
    args.topology = args.topology if args.topology is not None else "1"
    args.queue_policy = args.queue_policy if args.queue_policy is not None else "default"
    args.queue_params = args.queue_params if args.queue_params is not None else "default"
    args.match_policy = args.match_policy if args.match_policy is not None else "default"
    if not cmd:
        print(USAGE, end="", file=sys.stderr)
        return 1
    if shutil.which(cmd[0]) is None:
        raise CommandError(f"cannot execute {cmd[0]}!")
    if args.nnodes <= 0:
        raise CommandError("nnodes must be greater than 0!")
    if args.ncores <= 0:
        raise CommandError("ncores must be greater than 0!")
    if args.ngpus < 0:
        raise CommandError("incorrect ngpus!")
    if args.njobs < 0:
        raise CommandError("njobs must not be negative!")
    if _first(args.queue_policy) not in QUEUE_POLICIES:
        raise CommandError("invalid queue policy!")
    if _first(args.match_policy) not in MATCH_POLICIES:
        raise CommandError("invalid match policy!")
    if not _valid_params(args.queue_params):
        raise CommandError("invalid queue params!")
    if inter and args.leaf:
        raise CommandError("--leaf must not be used together with internal tree-node options!")
    if args.perf_out:
        PerfFormat(args.perf_format)   # a bad format fails before any work
    if not args.job_name:   # unique, so sibling trees' records never mix
        args.job_name = f"flux-tree-{secrets.token_hex(16)}"
    tree = _Tree(args, cmd)
    record, rc = tree.leaf() if args.leaf else tree.internal()
    top = args.prefix == TOP_PREFIX
    if args.dry_run:
        return rc
    if top and args.perf_out:
        write_perf(args.perf_out, args.perf_format, record)
    if not top:
        _hand_up(record)
        if args.flux_logs:
            _save_log(args.flux_logs, args.prefix)
    return rc


# -- the levels of fluxnb.hierarchy.tree (an API of its own: jobs, not Jobscripts) --
@command
def _cmd_levels(name, argv, prog):
    p = parser(prog, name, "One level of fluxnb.hierarchy.tree.")
    p.add_argument("-T", "--topology", default="")
    p.add_argument("-J", "--njobs", type=int, default=1)
    p.add_argument("--test-exec", metavar="FSD", default=None)
    p.add_argument("--path", default="")
    p.add_argument("--json", action="store_true")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    if args.njobs < 0:
        raise CommandError("-J: must be >= 0")
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    fanouts = parse_topology(args.topology)
    from ..hierarchy import run_tree_level
    with handle() as h:
        report = run_tree_level(h, fanouts, args.njobs, cmd or ["true"], args.test_exec,
                                args.path or "/")
    for line in report:
        print(json.dumps(line))
    return 0
