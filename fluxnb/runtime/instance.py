"""An instance: a set of brokers, their run directory, and their life cycle.

By default all brokers live in one background thread with their own asyncio loop,
handing messages to each other directly (`Broker.link_direct`; their sockets are zmq
inproc ones, for clients of this process). With ``processes=True`` each rank is its own
process (``python -m fluxnb.runtime.brokerd``) and the TBON runs over ipc; the
behaviour seen by clients is the same.

Examples
--------
>>> from fluxnb.runtime.instance import Instance
>>> with Instance(test_size=2) as inst:            # doctest: +SKIP
...     print(inst.uri)
local:///tmp/fluxnb-abc123/local
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import zmq

from .broker import Broker
from .client import clear_hosted_instance, set_hosted_instance
from .message import FluxError
from .topology import Topology

#: services every rank loads after the built-ins, by rank ("0" = rank 0 only)
DEFAULT_MODULES: list[tuple[str, str]] = [
    ("0", "kvs"),
    ("0", "resource"),
    ("0", "job-manager"),
    ("0", "job-exec"),
    ("0", "job-list"),
    ("0", "sched-fluxion-resource"),
    ("0", "sched-fluxion-qmanager"),
    ("all", "rexec"),
    ("all", "job-shell"),
]


#: as flux-sched's rc1: options of the Fluxion modules from the environment
#: (space-separated; `flux tree -Q/-P/-M` sets them for its child instances)
MODULE_OPTIONS_ENV = {"sched-fluxion-qmanager": "FLUXION_QMANAGER_OPTIONS",
                      "sched-fluxion-resource": "FLUXION_RESOURCE_OPTIONS"}


def module_options(mod: str) -> list[str] | None:
    var = MODULE_OPTIONS_ENV.get(mod)
    value = os.environ.get(var, "") if var else ""
    return value.split() or None


#: heartbeat period and silence after which a broker's child is lost (tbon.torpid_min/max)
TORPID_MIN, TORPID_MAX = "1s", "5s"


class InstanceError(RuntimeError):
    """An instance could not start, or was used wrongly."""


def _hostlist(size: int, hosts: str | None) -> list[str]:
    if hosts:
        from .util.hostlist import Hostlist
        names = list(Hostlist(hosts))
        if len(names) != size:
            raise InstanceError(f"--test-hosts names {len(names)} hosts for {size} brokers")
        return names
    if size == 1:
        return [socket.gethostname().split(".")[0]]
    return [f"node{r}" for r in range(size)]


def _shim_paths() -> list[str]:
    """What ``-S`` takes off ``sys.path`` that the CLI needs: this fluxnb, and the site
    directories with the plain directory lines of their ``.pth`` files.

    ``.pth`` lines that run code (editable-install finders, coverage hooks...) are
    left out: running them is most of what ``site`` costs at start-up. fluxnb itself
    is named by its own directory, however it was installed.
    """
    import site
    paths = [os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))]
    sitedirs = list(site.getsitepackages())
    user = site.ENABLE_USER_SITE
    if user is None:   # site did not run (a -S process: a shim starting a nested instance)
        user = site.check_enableusersite()
    if user:
        sitedirs.insert(0, site.getusersitepackages())
    for d in sitedirs:
        if not os.path.isdir(d):
            continue
        paths.append(d)
        try:
            names = sorted(n for n in os.listdir(d) if n.endswith(".pth"))
        except OSError:
            continue
        for name in names:
            try:
                with open(os.path.join(d, name), encoding="utf-8") as f:
                    lines = f.read().splitlines()
            except (OSError, UnicodeDecodeError):
                continue
            for line in lines:
                line = line.strip()
                if not line or line.startswith(("#", "import ", "import\t")):
                    continue
                entry = os.path.join(d, line)
                if os.path.isdir(entry):
                    paths.append(os.path.abspath(entry))
    out: list[str] = []
    for p in paths:
        if p not in out:
            out.append(p)
    return out


def write_flux_shim(bindir: str) -> str:
    """Write ``<bindir>/flux``, the fluxnb CLI as ``flux`` for processes of an instance.

    The shim runs Python with ``-S``: ``site`` (and the ``.pth`` files it executes)
    is the larger part of a bare interpreter's start-up, and a ``flux`` command is a
    new process each time. The directories site would add are written into the shim
    instead (:func:`_shim_paths`), after ``PYTHONPATH`` and the standard library as
    site puts them; should fluxnb not import from there, the shim runs site after all.
    ``-S`` is not inherited: the job's processes, and Python programs the CLI starts,
    start as usual with ``PYTHONPATH`` (and so ``import flux``) as the instance set it.
    """
    os.makedirs(bindir, exist_ok=True)
    path = os.path.join(bindir, "flux")
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(f"#!{sys.executable} -S\n"
                "# fluxnb's CLI, named flux inside a fluxnb instance (see write_flux_shim)\n"
                "import sys\n"
                f"sys.path += [p for p in {_shim_paths()!r} if p not in sys.path]\n"
                "try:\n"
                "    from fluxnb.cli.main import main\n"
                "except ImportError:\n"
                "    import site\n"
                "    site.main()\n"
                "    from fluxnb.cli.main import main\n"
                "sys.exit(main())\n")
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)   # a shell running the old shim never reads half a new one
    write_hostname_shim(bindir)
    return path


#: ``hostname`` for a job's tasks: the virtual node's name (``$HOSTNAME``, which the job
#: shell sets from R's nodelist), as each node of a real Flux is a host of its own;
#: any other use, or no ``$HOSTNAME``, goes to the system's hostname.
HOSTNAME_SHIM = r"""#!/bin/sh
# fluxnb: the name of the (virtual) node this task runs on, from R's nodelist
if [ -n "$HOSTNAME" ]; then
    case "$*" in
        "") echo "$HOSTNAME"; exit 0 ;;
        -s|--short) echo "${HOSTNAME%%.*}"; exit 0 ;;
        -f|--fqdn|--long|-A|--all-fqdns) echo "$HOSTNAME"; exit 0 ;;
    esac
fi
here=$(cd "$(dirname "$0")" && pwd)
PATH=$(printf '%s' ":$PATH:" | sed "s#:$here:#:#g; s#^:##; s#:\$##")
export PATH
exec hostname "$@"
"""


def write_hostname_shim(bindir: str) -> str:
    """Write ``<bindir>/hostname`` (see :data:`HOSTNAME_SHIM`)."""
    path = os.path.join(bindir, "hostname")
    with open(path, "w") as f:
        f.write(HOSTNAME_SHIM)
    os.chmod(path, 0o755)
    return path


class BrokerSet:
    """Some ranks of an instance, run on one asyncio loop in the calling thread."""

    def __init__(self, ranks: list[int], topo: Topology, attrs: list[dict[str, str]],
                 config: dict[str, Any], ctx: zmq.Context | None = None,
                 alive_fd: int | None = None):
        self.ranks = ranks
        self.topo = topo
        self.attrs = attrs
        self.config = config
        self.ctx = ctx or zmq.Context()
        self.brokers: dict[int, Broker] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.exit_code = 0
        self.alive_fd = alive_fd

    def run(self) -> None:
        """Run the brokers until rank 0 asks for shutdown (or :meth:`stop`)."""
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to the thread that waits on ready
            self.error = exc
            self.ready.set()
        finally:
            # end what services left running (a job shell waiting on its tasks...)
            pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            from .job.process import close_spawner
            close_spawner(self.loop)  # the kills above go out; what still runs goes too
            self.loop.close()

    async def _main(self) -> None:
        from .services.builtin import BUILTIN, resolve_module
        for rank in self.ranks:
            b = Broker(rank, self.topo.size, self.topo, self.ctx, self.attrs[rank], self.config)
            b.loop = self.loop  # services may queue requests while they load
            self.brokers[rank] = b
        for b in self.brokers.values():
            b.link_direct(self.brokers)  # before any message: all of theirs go this way
            for cls in BUILTIN:
                b.load(cls)
            for where, mod in self.config.get("modules", DEFAULT_MODULES):
                if where == "all" or int(where) == b.rank:
                    b.load(resolve_module(mod), module_options(mod))
        for b in self.brokers.values():
            b.start(self.loop)
            b.subscribe("broker.shutdown", lambda ev, b=b: b.request_shutdown())
        self.stopping = asyncio.Event()
        if self.alive_fd is not None:
            self.loop.add_reader(self.alive_fd, self._starter_gone)
        if 0 in self.brokers:
            waiter = self.loop.create_task(self._wait_online(self.brokers[0]))
            await asyncio.wait_for(waiter, timeout=float(self.config.get("online-timeout", 30)))
        self.ready.set()
        stop = [asyncio.create_task(b.shutdown_requested.wait()) for b in self.brokers.values()]
        stop.append(asyncio.create_task(self.stopping.wait()))
        await asyncio.wait(stop, return_when=asyncio.FIRST_COMPLETED)
        for t in stop:
            t.cancel()
        if 0 in self.brokers:
            self.exit_code = self.brokers[0].exit_code
            self.brokers[0].publish("broker.shutdown", {})
            await asyncio.sleep(0.01)  # let the event leave before sockets close
        for b in sorted(self.brokers.values(), key=lambda b: -b.rank):
            b.close()

    def _starter_gone(self) -> None:
        try:
            if os.read(self.alive_fd, 64):
                return
        except BlockingIOError:
            return
        except OSError:
            pass
        self.loop.remove_reader(self.alive_fd)
        for b in self.brokers.values():
            b.log("err", "the process that started this broker is gone: exiting")
        self.stopping.set()

    async def _wait_online(self, b: Broker) -> None:
        if b.all_online:
            return
        fut = self.loop.create_future()
        b.online_waiters.append(fut)
        await fut

    def stop(self) -> None:
        """Ask the loop to shut the brokers down (thread-safe)."""
        if self.loop is not None and not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(lambda: self.stopping.set())
            except RuntimeError:
                pass


class Instance:
    """A locally hosted fluxnb instance.

    Parameters
    ----------
    test_size : int
        Number of brokers (virtual nodes), as ``flux start --test-size``.
    nodes, cores_per_node, gpus_per_node : int, optional
        Resources of the instance (``nodes`` defaults to ``test_size``; cores to
        this machine's core count, as a Flux test instance does).
    statedir : str, optional
        Directory whose SQLite content store keeps the KVS across restarts.
    fanout : int
        TBON fan-out (``tbon.fanout``).
    processes : bool
        Run each broker in its own process instead of threads of this one.
    attrs : dict, optional
        Extra broker attributes (``-o key=value``, ``-S key=value``).
    test_hosts : str, optional
        Hostlist naming the virtual nodes.
    """

    def __init__(self, test_size: int | None = None, *, nodes: int | None = None,
                 cores_per_node: int | None = None, gpus_per_node: int = 0,
                 statedir: str | None = None, fanout: int = 2, processes: bool = False,
                 attrs: dict[str, str] | None = None, test_hosts: str | None = None,
                 modules: list[tuple[str, str]] | None = None, rundir: str | None = None,
                 R: dict | None = None, conf: dict | None = None):
        #: the instance's configuration (flux-config(5) tables, e.g. from ``fluxnb start -c``)
        self.conf = dict(conf or {})
        self.R = None
        if R is not None:
            # a nested instance: exactly these resources, ranks renumbered from 0
            from .util.rv1 import ResourceSet
            rs = ResourceSet(R)
            by_rank = rs.by_rank()
            renum = {i: by_rank[r] for i, r in enumerate(sorted(by_rank))}
            hosts = [rs.host(r) or f"node{r}" for r in sorted(by_rank)]
            self.R = ResourceSet.from_ranks(renum, hostnames=hosts).to_R()
            test_size = len(renum)
            test_hosts = None
            self._R_hosts = hosts
        size = test_size if test_size is not None else (nodes or 1)
        if size < 1:
            raise InstanceError(f"--test-size must be >= 1, got {size}")
        if nodes is not None and nodes != size:
            if test_size is not None:
                raise InstanceError(f"--nodes={nodes} does not match --test-size={test_size}")
        self.size = size
        self.fanout = fanout
        self.processes = processes
        self.statedir = os.path.abspath(statedir) if statedir else None
        self.resources = {"nodes": size,
                          "cores_per_node": cores_per_node or os.cpu_count() or 1,
                          "gpus_per_node": gpus_per_node}
        for key, val in self.resources.items():
            if val < 0 or (key != "gpus_per_node" and val < 1):
                raise InstanceError(f"{key.replace('_', '-')} must be >= 1, got {val}")
        self.extra_attrs = dict(attrs or {})
        self.hosts = self._R_hosts if self.R is not None else _hostlist(size, test_hosts)
        self.modules = modules
        self._rundir_arg = rundir
        self.rundir: str | None = None
        self.topo: Topology | None = None
        self._set: BrokerSet | None = None
        self._thread: threading.Thread | None = None
        self._procs: list[subprocess.Popen] = []
        self.started = False

    # -- properties --------------------------------------------------------------
    @property
    def uri(self) -> str:
        if self.topo is None:
            raise InstanceError("instance is not started")
        return self.topo.local_uri(0)

    def rank_uri(self, rank: int) -> str:
        return self.topo.local_uri(rank)

    @property
    def bindir(self) -> str:
        return os.path.join(self.rundir, "bin")

    def environ(self, rank: int = 0, base: dict | None = None) -> dict[str, str]:
        """Environment for a process of this instance: FLUX_URI and the flux shim."""
        env = dict(os.environ if base is None else base)
        env["FLUX_URI"] = self.rank_uri(rank)
        path = env.get("PATH", "")
        env["PATH"] = self.bindir + (os.pathsep + path if path else "")
        from ..compat import add_to_environ  # `import flux` gives fluxnb's package
        return add_to_environ(env)

    # -- life ------------------------------------------------------------------
    def _attrs(self, rank: int) -> dict[str, str]:
        from .util.hostlist import Hostlist
        attrs = {
            "rank": str(rank), "size": str(self.size),
            "local-uri": self.topo.local_uri(rank),
            "instance-level": "0", "hostlist": Hostlist(self.hosts).encode(),
            "broker.pid": str(os.getpid()), "rundir": self.rundir,
            "tbon.fanout": str(self.fanout), "version": _version(),
            "broker.starttime": f"{time.time():.6f}",
            "log-level": "6", "log-stderr-level": "3", "log-forward-level": "7",
            "log-ring-size": "1024", "broker.hostname": self.hosts[rank],
            # a child silent this long is lost (flux-core: 5s and 30s, for real networks)
            "tbon.torpid_min": TORPID_MIN, "tbon.torpid_max": TORPID_MAX,
        }
        if self.statedir:
            attrs["statedir"] = self.statedir
        attrs.update(self.extra_attrs)
        return attrs

    def start(self) -> "Instance":
        if self.started:
            raise InstanceError("instance already started")
        from .util import gctune
        gctune.tune()  # brokers in this process: unless its owner chose thresholds
        if self.statedir:
            from .kvs.content import StatedirError, prepare_statedir
            try:
                warning = prepare_statedir(self.statedir)
            except StatedirError as exc:
                raise InstanceError(str(exc)) from None
            if warning:
                print(f"fluxnb: warning: {warning}", file=sys.stderr)
        self.rundir = self._rundir_arg or tempfile.mkdtemp(prefix="fluxnb-")
        os.chmod(self.rundir, 0o700)
        write_flux_shim(self.bindir)
        self._start_watchdog()
        self.topo = Topology(self.size, self.fanout, self.rundir,
                             "ipc" if self.processes else "inproc")
        config = {"resource": self.resources, "hosts": self.hosts, "conf": self.conf}
        if self.R is not None:
            config["R"] = self.R
        if self.modules is not None:
            config["modules"] = self.modules
        try:
            if self.processes:
                self._start_processes(config)
            else:
                self._start_thread(config)
        except BaseException:
            self._cleanup()
            raise
        self.started = True
        set_hosted_instance(self)
        # a kernel (or script) that exits without stopping its instance still leaves
        # no run directory, sockets or tasks behind
        atexit.register(self.stop)
        return self

    def _start_watchdog(self) -> None:
        """A process that reaps this instance if the process hosting it dies."""
        from .reaper import MARK, watchdog_command
        rfd, self._alive_fd = os.pipe()
        # not marked as the enclosing instance's: its reaper must leave it to do its work
        env = {k: v for k, v in os.environ.items() if k != MARK}
        try:
            self._watchdog = subprocess.Popen(
                watchdog_command(rfd, self.rundir, not self._rundir_arg), pass_fds=(rfd,),
                stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        finally:
            os.close(rfd)

    def _stop_watchdog(self) -> None:
        fd, self._alive_fd = getattr(self, "_alive_fd", None), None
        if fd is None:
            return
        try:
            os.write(fd, b"x")  # stopped cleanly: nothing for it to do
        except OSError:
            pass
        os.close(fd)
        try:
            self._watchdog.wait(5)
        except subprocess.TimeoutExpired:
            self._watchdog.kill()
            self._watchdog.wait()

    def _start_thread(self, config: dict) -> None:
        attrs = [self._attrs(r) for r in range(self.size)]
        # the process-wide context: clients of this process reach the brokers over inproc
        self._set = BrokerSet(list(range(self.size)), self.topo, attrs, config,
                              ctx=zmq.Context.instance())
        self._thread = threading.Thread(target=self._set.run, name="fluxnb-brokers", daemon=True)
        self._thread.start()
        self._set.ready.wait()
        if self._set.error is not None:
            self._thread.join()
            err = self._set.error
            raise InstanceError(f"instance failed to start: {err}") from err

    def _start_processes(self, config: dict) -> None:
        self._alive_r, self._alive_w = os.pipe()
        for rank in range(self.size):
            spec = {"rank": rank, "topo": [self.size, self.fanout, self.rundir],
                    "attrs": self._attrs(rank), "config": config}
            # the broker stops when it reads end of file here: when this process ends
            spec["alive_fd"] = self._alive_r
            self._procs.append(subprocess.Popen(
                [sys.executable, "-m", "fluxnb.runtime.brokerd", json.dumps(spec)],
                stdin=subprocess.DEVNULL, start_new_session=True, pass_fds=(self._alive_r,)))
        from .client import Flux
        deadline = time.time() + 30
        while True:
            try:
                with Flux(self.uri) as h:
                    h.rpc("broker.wait-online", {}, nodeid=0).get(timeout=max(0.1, deadline - time.time()))
                break
            except (FluxError, TimeoutError) as exc:
                dead = [p for p in self._procs if p.poll() is not None]
                if dead or time.time() > deadline:
                    raise InstanceError(f"brokers failed to come online: {exc}") from None
                time.sleep(0.05)

    def wait(self, timeout: float | None = None) -> int:
        """Block until the instance shuts down (``flux shutdown``); return its exit code."""
        if self._thread is not None:
            self._thread.join(timeout)
            return self._set.exit_code
        for p in self._procs:
            p.wait(timeout)
        return self._procs[0].returncode if self._procs else 0

    def stop(self) -> None:
        """Shut the brokers down and remove the run directory."""
        if not self.started:
            return
        self.started = False
        atexit.unregister(self.stop)
        clear_hosted_instance(self)
        if self._set is not None:
            self._set.stop()
            self._thread.join(30)
        if self._procs:
            from .client import Flux
            try:
                with Flux(self.uri) as h:
                    h.rpc("broker.shutdown", {}, nodeid=0).get(timeout=5)
            except Exception:
                pass
            for p in self._procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        for name in ("_alive_r", "_alive_w"):
            fd = getattr(self, name, None)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)
        if self.rundir:
            # what outlived the brokers (a task's daemon, a killed broker's tasks) goes too
            from .reaper import reap
            reap(self.rundir, remove=not self._rundir_arg)
        self._stop_watchdog()

    def __enter__(self) -> "Instance":
        return self.start() if not self.started else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"uri={self.uri}" if self.started else "stopped"
        return f"<fluxnb.Instance size={self.size} {state}>"


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("fluxnb")
    except Exception:
        return "0.0.0"
