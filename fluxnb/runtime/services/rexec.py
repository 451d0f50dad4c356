"""``rexec``: run a command on this rank (``flux exec``), streaming its output back."""

from __future__ import annotations

import asyncio
import base64
import errno
import os

from ..message import FLAG_STREAMING, FluxError, Message
from ..reaper import MARK
from ..service import DEFERRED, Service, payload_field, request_handler


class RexecService(Service):
    """Each response is ``{"pid"}``, ``{"stream", "data"}`` (base64) or, last,
    ``{"status": waitstatus-like exit code}``; the stream then ends with ENODATA."""

    name = "rexec"

    def start(self) -> None:
        self.procs: dict[int, tuple[asyncio.subprocess.Process, Message]] = {}

    def stop(self) -> None:
        for proc, _ in self.procs.values():
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

    @request_handler("kill")
    def kill(self, msg: Message) -> dict:
        pid = payload_field(msg, "pid", int)
        signum = payload_field(msg, "signum", int, 15)
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
