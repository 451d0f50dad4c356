"""Hierarchy commands: ``flux batch``, ``flux alloc``, ``flux proxy``, ``flux uri``.

A batch or alloc job's program is ``flux broker``: a nested instance owning exactly
the job's resources, which runs the script (batch) or command (alloc) as its
initial program and records its URI with the job in the parent.
"""

from __future__ import annotations

import argparse
import errno
import os
import subprocess
import sys
import time

from .common import CommandError, command, handle, parser


def run(name: str, argv: list[str], prog: str) -> int:
    return {"batch": cmd_batch, "alloc": cmd_alloc, "proxy": cmd_proxy, "uri": cmd_uri}[name](
        name, argv, prog)


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-N", "--nodes", metavar="N", help="number of nodes")
    p.add_argument("-n", "--ntasks", metavar="N", help="number of slots (same as --nslots)")
    p.add_argument("-c", "--cores-per-task", metavar="N", help="cores per slot")
    p.add_argument("-g", "--gpus-per-task", metavar="N", help="gpus per slot")
    p.add_argument("--nslots", metavar="N", help="number of slots")
    p.add_argument("--cores-per-slot", metavar="N", help="cores per slot")
    p.add_argument("--gpus-per-slot", metavar="N", help="gpus per slot")
    p.add_argument("-x", "--exclusive", action="store_true", help="allocate whole nodes")
    p.add_argument("-t", "--time-limit", metavar="MIN|FSD", help="time limit")
    p.add_argument("--job-name", metavar="NAME")
    p.add_argument("--urgency", metavar="N", default="16")
    p.add_argument("--dependency", action="append", metavar="URI")
    p.add_argument("--env", action="append", metavar="RULE")
    p.add_argument("--env-remove", action="append", metavar="PATTERN", default=None)
    p.add_argument("--cwd", metavar="DIRECTORY")
    p.add_argument("--setattr", action="append", metavar="ATTR")
    p.add_argument("-o", "--setopt", action="append", metavar="OPT")
    p.add_argument("-S", "--broker-opts", action="append", metavar="OPT", default=[],
                   help="attributes of the nested instance (KEY=VALUE)")
    p.add_argument("--conf", action="append", metavar="KEY=VAL", default=[],
                   help="configuration of the nested instance")
    p.add_argument("--flags", action="append", metavar="FLAGS")
    p.add_argument("--dry-run", action="store_true", help="print the jobspec, do not submit")
    p.add_argument("-v", "--verbose", action="count", default=0)


def _jobspec(args, kind: str, script: str | None, command_argv: list[str], name: str):
    from ..job import JobspecV1
    from ..runtime.job.dependencies import DependencyError, parse_dependency_uri
    from .jobspec_args import (
        environment_rules, parse_count, parse_keyval, parse_time_limit,
    )
    nodes = parse_count("nodes", args.nodes)
    nslots = parse_count("nslots", args.nslots or args.ntasks)
    cores = parse_count("cores-per-slot", args.cores_per_slot or args.cores_per_task) or 1
    gpus = parse_count("gpus-per-slot", args.gpus_per_slot or args.gpus_per_task, minimum=0)
    exclusive = args.exclusive
    if nslots is None:
        nslots = nodes or 1
        exclusive = exclusive or bool(nodes)  # as flux: -N alone allocates whole nodes
    if nodes and nslots < nodes:
        raise CommandError(f"number of slots ({nslots}) is less than the number of nodes ({nodes})")
    if nodes and nslots % nodes:
        raise CommandError(f"number of slots ({nslots}) must be a multiple of the number of nodes ({nodes})")
    broker_opts = list(args.broker_opts) + [f"conf.{c}" for c in args.conf]
    env_rules = list(args.env or []) + [f"-{p}" for p in (args.env_remove or [])]
    kw = dict(num_slots=nslots, cores_per_slot=cores,
              gpus_per_slot=gpus, num_nodes=nodes, exclusive=exclusive,
              broker_opts=[o if o.startswith("-S") else f"-S{o}" for o in broker_opts] or None,
              environment=environment_rules(env_rules))
    try:
        if kind == "batch":
            js = JobspecV1.from_batch_command(script, name, args=command_argv, **kw)
        else:
            js = JobspecV1.from_nest_command(command_argv, **kw)
            js.setattr("system.job.name", name)
    except (TypeError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    js.cwd = args.cwd or os.getcwd()
    if args.time_limit is not None:
        js.duration = parse_time_limit(args.time_limit)
    if args.dependency:
        try:
            js.setattr("system.dependencies", [parse_dependency_uri(u) for u in args.dependency])
        except DependencyError as exc:
            raise CommandError(str(exc)) from None
    for keyval in args.setopt or []:
        key, val = parse_keyval("--setopt", keyval)
        js.setattr_shell_option(key, val)
    for keyval in args.setattr or []:
        key, val = parse_keyval("--setattr", keyval)
        if not key.startswith((".", "user.", "system.")):
            key = "system." + key
        js.setattr("attributes." + key.lstrip("."), val)
    return js


def _submit(args, js, prog: str) -> int:
    import json
    from ..job import submit
    from .jobspec_args import parse_flags, parse_urgency
    if args.dry_run:
        print(json.dumps(json.loads(js.dumps())))
        return 0
    flags = parse_flags(args.flags)
    with handle() as h:
        return submit(h, js, urgency=parse_urgency(args.urgency), waitable=flags.get("waitable", False),
                      debug=flags.get("debug", False), novalidate=flags.get("novalidate", False))


@command
def cmd_batch(name, argv, prog):
    p = parser(prog, name, "Submit a batch script to run in a nested instance.")
    _options(p)
    p.add_argument("--wrap", action="store_true", help="wrap the arguments in a /bin/sh script")
    p.add_argument("--output", metavar="FILENAME", default="flux-{{id}}.out",
                   help="job output file (default flux-{{id}}.out)")
    p.add_argument("--error", metavar="FILENAME")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("script", nargs=argparse.REMAINDER, help="SCRIPT [ARGS...] (or read from stdin)")
    args = p.parse_args(argv)
    if args.wrap:
        if not args.script:
            raise CommandError("--wrap needs a command")
        script = "#!/bin/sh\n" + " ".join(_shell_quote(a) for a in args.script) + "\n"
        sargs, jname = [], args.job_name or args.script[0]
    elif args.script and args.script[0] != "-":
        path, sargs = args.script[0], args.script[1:]
        try:
            with open(path) as f:
                script = f.read()
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from None
        jname = source = path
    else:
        if sys.stdin.isatty():
            raise CommandError("give a batch script, or --wrap COMMAND, or a script on stdin")
        # as flux: a script read from stdin makes a job named "batch"
        script, sargs, jname, source = sys.stdin.read(), args.script[1:], "batch", "stdin"
    if not args.wrap:
        if not script.startswith("#!"):
            raise CommandError(f"{source}: batch script does not start with '#!' (a shebang line)")
        args = _apply_directives(p, argv, script, source)
    jname = args.job_name or jname
    js = _jobspec(args, "batch", script, sargs, jname)
    if args.output and args.output not in ("none", "kvs"):
        js.stdout = args.output
    if args.error and args.error not in ("none", "kvs"):
        js.stderr = args.error
    jobid = _submit(args, js, prog)
    if jobid and not args.dry_run and not args.quiet:
        print(jobid.f58 if hasattr(jobid, "f58") else jobid)
    return 0


def _apply_directives(p: argparse.ArgumentParser, argv: list[str], script: str,
                      name: str) -> argparse.Namespace:
    """Options from the script's RFC 36 ``#FLUX:`` directives, then the
    command line's (which override them), as flux batch applies them."""
    from .directives import parse_directives
    try:
        directives = parse_directives(script)
    except ValueError as exc:
        raise CommandError(f"{name}: {exc}") from None
    ns = None
    for lineno, dargs in directives:
        try:
            ns = p.parse_args(dargs, namespace=ns)
        except SystemExit:
            raise CommandError(f"argument parsing failed at {name} line {lineno}") from None
        if ns.script:
            raise CommandError(f"{name} line {lineno}: a directive may only hold options")
    return p.parse_args(argv, namespace=ns)


def _shell_quote(arg: str) -> str:
    import shlex
    return shlex.quote(arg)


@command
def cmd_alloc(name, argv, prog):
    p = parser(prog, name, "Run a command (or an interactive shell) in a nested instance.")
    _options(p)
    p.add_argument("--bg", action="store_true", help="start the instance and print its job id")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    cmd = args.command or [os.environ.get("SHELL", "/bin/sh")]
    jname = args.job_name or os.path.basename(cmd[0])
    js = _jobspec(args, "alloc", None, cmd if not args.bg else ["sleep", "inf"], jname)
    js.setattr_shell_option("stdin", "forward")
    jobid = _submit(args, js, prog)
    if args.dry_run:
        return 0
    if args.bg:
        with handle() as h:
            _wait_uri(h, jobid)
        print(jobid.f58)
        return 0
    from .attach import attach
    with handle() as h:
        return attach(h, jobid, stdin=True, prog=prog)


def job_uri(h, target: str, timeout: float = 0.0) -> str:
    """The URI of a job's nested instance (or ``target`` itself if it is a URI)."""
    if "://" in target:
        return target
    from ..job import JobID, get_job
    try:
        jobid = JobID(target)
    except ValueError as exc:
        raise CommandError(f"{target}: not a job id or URI ({exc})") from None
    deadline = time.time() + timeout
    while True:
        info = get_job(h, jobid)
        if info is None:
            raise CommandError(f"job {target} not found")
        uri = ((info.get("annotations") or {}).get("user") or {}).get("uri")
        if uri and info["state"] in ("RUN",):
            return uri
        if info["state"] in ("CLEANUP", "INACTIVE"):
            raise CommandError(f"job {jobid.f58} is not running" if uri else
                               f"job {jobid.f58} is not a Flux instance")
        if time.time() >= deadline:
            raise CommandError(f"job {jobid.f58} is not running yet" if info["state"] != "RUN" else
                               f"job {jobid.f58} is not a Flux instance (no URI recorded)")
        time.sleep(0.05)


def _wait_uri(h, jobid) -> str:
    return job_uri(h, str(jobid), timeout=60)


@command
def cmd_proxy(name, argv, prog):
    p = parser(prog, name, "Run COMMAND (default: a shell) against the instance of a job.")
    p.add_argument("target", help="JOBID or URI")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    with handle() as h:
        uri = job_uri(h, args.target, timeout=10)
    env = dict(os.environ, FLUX_URI=uri)
    if uri.startswith("local://"):  # the child's own flux shim lives beside its socket
        bindir = os.path.join(os.path.dirname(uri[len("local://"):]), "bin")
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    from ..compat import add_to_environ
    add_to_environ(env)
    cmd = args.command or [os.environ.get("SHELL", "/bin/sh")]
    try:
        return subprocess.run(cmd, env=env).returncode
    except FileNotFoundError:
        raise CommandError(f"{cmd[0]}: command not found") from None


@command
def cmd_uri(name, argv, prog):
    p = parser(prog, name, "Print the URI of a job's instance, or of this instance.")
    p.add_argument("--parent", action="store_true", help="the URI of the enclosing instance's parent")
    p.add_argument("--wait", action="store_true", help="wait for the job's instance to start")
    p.add_argument("--local", action="store_true",
                   help="a local:// URI (flux-uri(1); fluxnb's URIs are always local)")
    p.add_argument("target", nargs="?", help="JOBID or URI (default: this instance)")
    args = p.parse_args(argv)
    with handle() as h:
        if args.parent:
            try:
                print(h.attr_get("parent-uri"))
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    raise CommandError("this instance has no parent") from None
                raise
            return 0
        if args.target is None:
            print(h.uri)
            return 0
        print(job_uri(h, args.target.removeprefix("jobid:"), timeout=60 if args.wait else 0))
    return 0
