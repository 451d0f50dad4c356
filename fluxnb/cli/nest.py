"""``flux broker``: the program of a ``flux batch``/``flux alloc`` job.

It starts a nested fluxnb instance whose resources are exactly the enclosing
job's R, records the instance's URI with the job in the parent (a ``memo`` event,
so ``flux uri JOBID`` and ``flux proxy JOBID`` find it), runs the batch script or
command as the initial program and exits with its status. SIGTERM from the
parent (cancel) shuts the instance and everything under it down.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from .common import CommandError, command, parser


def run(name: str, argv: list[str], prog: str) -> int:
    return cmd_broker(name, argv, prog)


@command
def cmd_broker(name, argv, prog):
    p = parser(prog, name, "Start a nested instance on the enclosing job's resources "
               "and run COMMAND in it (the program of flux batch / flux alloc jobs).")
    p.add_argument("-S", "--setattr", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    jobid = os.environ.get("FLUX_JOB_ID")
    parent_uri = os.environ.get("FLUX_URI")
    if not jobid or not parent_uri:
        raise CommandError("flux broker runs as a job of an instance (FLUX_JOB_ID and FLUX_URI "
                           "unset); to start an instance use `flux start`")
    from .. import kvs
    from ..job import JobID
    from ..runtime.client import Flux
    from ..runtime.instance import Instance
    jid = JobID(jobid)
    with Flux(parent_uri) as parent:
        R = kvs.get(parent, f"{jid.kvs}.R", namespace="primary")
        level = int(parent.attr_get("instance-level")) + 1
    attrs = {"instance-level": str(level), "parent-uri": parent_uri, "jobid": jid.f58,
             "parent-kvs-namespace": os.environ.get("FLUX_KVS_NAMESPACE", ""),
             "log-stderr-level": "2"}
    for item in args.setattr:
        key, sep, val = item.partition("=")
        if not sep:
            raise CommandError(f"--setattr {item!r}: expected key=value")
        attrs[key] = val
    rundir = attrs.pop("rundir", None)   # -Srundir=DIR: the instance's run directory
    if rundir:
        try:
            os.makedirs(rundir, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"rundir {rundir}: {exc.strerror}") from None
    inst = Instance(R=R, attrs=attrs, rundir=rundir or None)
    inst.start()
    stopping = []

    def on_term(signum, frame):
        # A signal sent to the job reached our whole process group (the initial
        # program too); a parent-death signal reached only us: pass it on.
        if not stopping:
            stopping.append(signum)
            try:
                os.killpg(0, signal.SIGTERM)
            except OSError:
                pass

    proc = None
    old = signal.signal(signal.SIGTERM, on_term)
    try:
        with Flux(parent_uri) as parent:
            parent.rpc("job-manager.memo", {"id": int(jid), "memo": {"uri": inst.uri}}, nodeid=0).get()
        env = inst.environ(0)
        for var in ("FLUX_KVS_NAMESPACE", "FLUX_TASK_RANK", "FLUX_TASK_LOCAL_ID"):
            env.pop(var, None)
        cmd = args.command or [os.environ.get("SHELL", "/bin/sh")]
        from .start import spawn_initial_program
        # same process group as this broker: a signal to the job reaches it,
        # and the job shell ends whatever it leaves behind
        proc = spawn_initial_program(cmd, env, f"{prog}-broker")
        if isinstance(proc, int):
            return proc
        rc = proc.wait()
        if stopping:
            return 128 + stopping[0]
        return 128 - rc if rc < 0 else rc
    finally:
        signal.signal(signal.SIGTERM, old)
        inst.stop()
