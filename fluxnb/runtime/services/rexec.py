"""``rexec``: run a command on this rank (``flux exec``), streaming its output back.

Also flux-core's background processes (RFC 42, as ``flux.subprocess`` uses them): a
non-streaming ``exec`` whose ``cmd`` is an RFC 42 command object (``cmdline``, ``cwd``,
``env``, ``label``) starts a process and answers ``{pid, rank}`` at once; with the
waitable flag (16) it stays listed as a zombie (``Z``) once it exits until ``wait``
(by pid, or ``pid: -1`` and ``label``) collects its wait status and the output it
kept. ``kill`` and ``wait`` take a pid or a label; ``list`` gives ``{rank, procs:
[{pid, state, label, cmd}]}``.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import os

from ..message import FLAG_STREAMING, FluxError, Message
from ..reaper import MARK
from ..service import DEFERRED, Service, payload_field, request_handler


#: ``rexec.exec`` flag: keep the process after it exits until waited for
WAITABLE = 16
#: at most this much of a background process's output is kept for ``wait``
OUTPUT_KEEP = 65536


class _Background:
    """A background process (RFC 42) and what ``wait`` and ``list`` need of it."""

    def __init__(self, proc, label: str | None, cmd: list[str], waitable: bool):
        self.proc = proc
        self.label = label
        self.cmd = cmd
        self.waitable = waitable
        self.state = "R"
        self.status: int | None = None
        self.output: list[dict] = []
        self.kept = 0
        self.waiters: list[Message] = []

    def keep(self, stream: str, rank: int, data: bytes) -> None:
        if self.kept + len(data) > OUTPUT_KEEP:
            return  # the output kept is bounded (flux-core: "possibly incomplete")
        self.kept += len(data)
        try:
            io = {"stream": stream, "rank": str(rank), "data": data.decode("utf-8")}
        except UnicodeDecodeError:
            io = {"stream": stream, "rank": str(rank), "encoding": "base64",
                  "data": base64.b64encode(data).decode()}
        self.output.append(io)


def _waitstatus(returncode: int) -> int:
    """asyncio's returncode (-N: killed by signal N) as a wait(2) status."""
    return -returncode if returncode < 0 else (returncode & 0xFF) << 8


class RexecService(Service):
    """Each response is ``{"pid"}``, ``{"stream", "data"}`` (base64) or, last,
    ``{"status": waitstatus-like exit code}``; the stream then ends with ENODATA."""

    name = "rexec"

    def start(self) -> None:
        self.procs: dict[int, tuple[asyncio.subprocess.Process, Message]] = {}
        self.background: dict[int, _Background] = {}

    def stop(self) -> None:
        for bg in self.background.values():
            for m in bg.waiters:
                self.respond_error(m, errno.ENOSYS, "rexec unloaded")
        for proc, _ in list(self.procs.values()) + [(b.proc, None) for b in
                                                     self.background.values()
                                                     if b.state == "R"]:
            try:
                proc.kill()
            except ProcessLookupError:
                pass
            # close the pipes now: the loop may be gone before the transport is collected
            transport = getattr(proc, "_transport", None)
            if transport is not None:
                transport.close()

    @request_handler("exec")
    def exec(self, msg: Message):
        body = msg.json if isinstance(msg.json, dict) else {}
        if isinstance(body.get("cmd"), dict):  # an RFC 42 command object
            return self._exec_rfc42(msg, body)
        if not msg.flags & FLAG_STREAMING:
            raise FluxError(errno.EPROTO, "rexec.exec: needs a streaming RPC")
        cmd = payload_field(msg, "cmd", list)
        if not cmd or not all(isinstance(a, str) for a in cmd):
            raise FluxError(errno.EINVAL, "rexec.exec: cmd must be a non-empty list of strings")
        env = payload_field(msg, "env", dict, None)
        cwd = payload_field(msg, "cwd", str, None)
        return self._run(msg, cmd, env, cwd)

    def environment(self, base: dict | None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["FLUX_URI"] = self.broker.attrs["local-uri"]
        env[MARK] = self.broker.attrs["rundir"]
        env["HOSTNAME"] = self.broker.hostname(self.rank)   # `flux exec hostname`: the node's
        bindir = os.path.join(self.broker.attrs["rundir"], "bin")
        path = env.get("PATH", "")
        if not path.startswith(bindir):
            env["PATH"] = bindir + (os.pathsep + path if path else "")
        from ...compat import add_to_environ  # `import flux` gives fluxnb's package
        return add_to_environ(env)

    async def _run(self, msg: Message, cmd: list[str], env: dict | None, cwd: str | None):
        note = None
        if cwd is not None and not os.path.isdir(cwd):
            # as flux-core's exec: say so, and run in /tmp rather than fail
            why = "Not a directory" if os.path.exists(cwd) else "No such file or directory"
            note = f"Could not change dir to {cwd}: {why}. Going to /tmp instead\n"
            cwd = "/tmp"
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=self.environment(env), cwd=cwd)
        except FileNotFoundError:
            raise FluxError(errno.ENOENT, f"{cmd[0]}: command not found") from None
        except PermissionError:
            raise FluxError(errno.EACCES, f"{cmd[0]}: permission denied") from None
        except NotADirectoryError:
            raise FluxError(errno.ENOENT, f"{cwd}: no such directory") from None
        self.procs[proc.pid] = (proc, msg)
        self.respond(msg, {"pid": proc.pid, "rank": self.rank})
        if note:
            self.respond(msg, {"stream": "stderr", "rank": self.rank,
                               "data": base64.b64encode(note.encode()).decode()})

        async def pump(stream, name):
            while True:
                data = await stream.read(65536)
                if not data:
                    return
                self.respond(msg, {"stream": name, "rank": self.rank,
                                   "data": base64.b64encode(data).decode()})

        await asyncio.gather(pump(proc.stdout, "stdout"), pump(proc.stderr, "stderr"))
        status = await proc.wait()
        self.procs.pop(proc.pid, None)
        self.respond(msg, {"status": status, "rank": self.rank})
        self.respond_error(msg, errno.ENODATA)
        return DEFERRED

    # -- RFC 42 background processes ------------------------------------------------------
    def _exec_rfc42(self, msg: Message, body: dict):
        cmd = body["cmd"]
        argv = cmd.get("cmdline")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise FluxError(errno.EINVAL, "rexec.exec: cmd.cmdline must be a non-empty "
                                          "list of strings")
        env = cmd.get("env") if isinstance(cmd.get("env"), dict) else None
        cwd = cmd.get("cwd") if isinstance(cmd.get("cwd"), str) else None
        label = cmd.get("label") if isinstance(cmd.get("label"), str) else None
        flags = body.get("flags", 0) if isinstance(body.get("flags"), int) else 0
        if msg.flags & FLAG_STREAMING:
            return self._run(msg, argv, env, cwd)
        if label is not None and any(b.label == label for b in self.background.values()):
            raise FluxError(errno.EEXIST, f"rexec.exec: label {label} is already in use")
        return self._run_background(msg, argv, env, cwd, label, bool(flags & WAITABLE))

    async def _run_background(self, msg, argv, env, cwd, label, waitable):
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=self.environment(env),
                cwd=cwd if cwd and os.path.isdir(cwd) else None)
        except FileNotFoundError:
            raise FluxError(errno.ENOENT, f"{argv[0]}: command not found") from None
        except PermissionError:
            raise FluxError(errno.EACCES, f"{argv[0]}: permission denied") from None
        bg = _Background(proc, label, argv, waitable)
        self.background[proc.pid] = bg
        self.respond(msg, {"pid": proc.pid, "rank": self.rank})

        async def pump(stream, name):
            while True:
                data = await stream.read(65536)
                if not data:
                    return
                if waitable:
                    bg.keep(name, self.rank, data)

        await asyncio.gather(pump(proc.stdout, "stdout"), pump(proc.stderr, "stderr"))
        bg.status = _waitstatus(await proc.wait())
        bg.state = "Z"
        if not waitable:
            self.background.pop(proc.pid, None)
            return DEFERRED
        for m in bg.waiters:
            self._answer_wait(m, bg)
        if bg.waiters:
            self.background.pop(proc.pid, None)
        return DEFERRED

    def _answer_wait(self, msg: Message, bg: _Background) -> None:
        self.respond(msg, {"pid": bg.proc.pid, "status": bg.status, "output": bg.output})

    def _find(self, msg: Message, what: str) -> tuple[int | None, _Background | None]:
        """The process a kill or wait names by ``pid`` (or ``pid: -1`` and ``label``)."""
        pid = payload_field(msg, "pid", int)
        if pid == -1:
            label = payload_field(msg, "label", str)
            for p, bg in self.background.items():
                if bg.label == label:
                    return p, bg
            raise FluxError(errno.ESRCH, f"rexec.{what}: no process labeled {label} "
                                         f"on rank {self.rank}")
        return pid, self.background.get(pid)

    @request_handler("wait")
    def wait(self, msg: Message):
        pid, bg = self._find(msg, "wait")
        if bg is None:
            raise FluxError(errno.ESRCH, f"rexec.wait: no process {pid} on rank {self.rank}")
        if not bg.waitable:
            raise FluxError(errno.EINVAL, f"rexec.wait: process {pid} is not waitable")
        if bg.state == "Z":
            self.background.pop(pid, None)
            self._answer_wait(msg, bg)
            return DEFERRED
        bg.waiters.append(msg)
        return DEFERRED

    @request_handler("list")
    def list_(self, msg: Message) -> dict:
        procs = [{"pid": p, "state": bg.state, "label": bg.label or "",
                  "cmd": " ".join(bg.cmd)} for p, bg in self.background.items()]
        procs += [{"pid": p, "state": "R", "label": "", "cmd": ""} for p in self.procs]
        return {"rank": self.rank, "procs": procs}

    @request_handler("kill")
    def kill(self, msg: Message) -> dict:
        signum = payload_field(msg, "signum", int, 15)
        pid, bg = self._find(msg, "kill")
        if bg is not None:
            if bg.state == "R":
                bg.proc.send_signal(signum)
            return {}
        entry = self.procs.get(pid)
        if entry is None:
            raise FluxError(errno.ESRCH, f"rexec.kill: no process {pid} on rank {self.rank}")
        entry[0].send_signal(signum)
        return {}

    def disconnect(self, route: list[str]) -> None:
        for proc, m in list(self.procs.values()):
            if m.route[:len(route)] == route:
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
