"""``flux start``: start an instance, run the initial program in it, clean up."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from .common import CommandError, command, parser


def run(name: str, argv: list[str], prog: str) -> int:
    return cmd_start(name, argv, prog)


def _keyval(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        item = item[2:] if item.startswith("-S") else item
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise CommandError(f"{what} {item!r}: expected key=value")
        out[key] = val
    return out


@command
def cmd_start(name, argv, prog):
    p = parser(prog, name, "Start a fluxnb instance. With COMMAND, run it as the initial "
               "program and exit with its status; without, serve until `flux shutdown`.")
    p.add_argument("-s", "--test-size", type=int, default=None, metavar="N",
                   help="number of brokers (virtual nodes)")
    p.add_argument("-N", "--nodes", type=int, default=None, help="number of nodes")
    p.add_argument("--cores-per-node", type=int, default=None, metavar="C")
    p.add_argument("--gpus-per-node", type=int, default=0, metavar="G")
    p.add_argument("--test-hosts", default=None, metavar="HOSTLIST", help="names of the nodes")
    p.add_argument("--test-fanout", type=int, default=2, metavar="K", help="TBON fan-out")
    p.add_argument("--statedir", default=None, help="keep the KVS here across restarts")
    p.add_argument("--processes", action="store_true",
                   help="run each broker in its own process (default: threads of one process)")
    p.add_argument("-o", "--broker-opts", action="append", default=[], metavar="KEY=VALUE",
                   help="set a broker attribute (also accepts -Skey=value)")
    p.add_argument("-S", "--setattr", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("-c", "--config-path", default=None, metavar="PATH",
                   help="read the instance's configuration from a TOML file or a directory of them")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("command", nargs=argparse.REMAINDER, help="initial program")
    args = p.parse_args(argv)
    attrs = _keyval(args.broker_opts, "--broker-opts") | _keyval(args.setattr, "--setattr")
    from ..runtime.instance import Instance, InstanceError
    from ..runtime.kvs.content import StatedirError
    conf = None
    if args.config_path:
        from ..runtime.config import ConfigError, load
        try:
            conf = load(args.config_path)
        except ConfigError as exc:
            raise CommandError(f"--config-path: {exc}") from None
    from ..runtime.util import gctune
    gctune.tune(force=True)  # this process is the brokers' (and the initial program's parent)
    try:
        inst = Instance(args.test_size, nodes=args.nodes, cores_per_node=args.cores_per_node,
                        gpus_per_node=args.gpus_per_node, statedir=args.statedir,
                        fanout=args.test_fanout, processes=args.processes, attrs=attrs,
                        test_hosts=args.test_hosts, conf=conf)
        inst.start()
    except (InstanceError, StatedirError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if args.verbose:
        print(f"{prog}-start: instance of size {inst.size} at {inst.uri}", file=sys.stderr)
    try:
        if not args.command:
            old = signal.signal(signal.SIGTERM, lambda *_: inst.stop())
            try:
                return inst.wait()
            finally:
                signal.signal(signal.SIGTERM, old)
        return _initial_program(inst, args.command, prog)
    finally:
        # a second SIGTERM (timeout(1), a job being cancelled) must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        inst.stop()


def spawn_initial_program(cmd: list[str], env: dict, who: str, **popen) -> "subprocess.Popen | int":
    """Start an instance's initial program, or say why not and return the shell's
    exit code for it (127 not found, 126 not executable)."""
    try:
        return subprocess.Popen(cmd, env=env, **popen)
    except FileNotFoundError:
        print(f"{who}: {cmd[0]}: command not found", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"{who}: {cmd[0]}: permission denied", file=sys.stderr)
        return 126


def _initial_program(inst, cmd: list[str], prog: str) -> int:
    from ..runtime.reaper import MARK
    env = dict(inst.environ(0), **{MARK: inst.rundir})
    # Its own process group, so that what it leaves running is ended with the
    # instance; on a terminal it stays in the foreground group for job control.
    own_group = not os.isatty(0)
    proc = spawn_initial_program(cmd, env, f"{prog}-start", process_group=0 if own_group else None)
    if isinstance(proc, int):
        return proc

    def terminate(signum, frame):  # SIGTERM: the initial program goes first, then the instance
        try:
            if own_group:
                os.killpg(proc.pid, signal.SIGTERM)
            else:
                proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass

    old = signal.signal(signal.SIGTERM, terminate)
    try:
        while True:
            try:
                rc = proc.wait()
                break
            except KeyboardInterrupt:
                proc.send_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, old)
    if own_group:
        _kill_group(proc.pid)
    return 128 - rc if rc < 0 else rc


def _kill_group(pgid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        for _ in range(20):
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.01)
