"""A task process driven by the broker's loop with no helper threads.

``subprocess.Popen`` starts it; its stdout/stderr pipes and a pidfd for its exit
are read by ``loop.add_reader`` callbacks. asyncio's subprocess transports cost a
waiter thread per child and several layers of protocol objects; a job shell that
starts hundreds of tasks a second cannot afford either.
"""

from __future__ import annotations

import asyncio
import os
import signal
import shutil
import subprocess
from typing import Callable


_prctl = None
_SETPRIV = shutil.which("setpriv")


def _check_command(name: str, env: dict, cwd: str | None) -> None:
    """Raise as Popen would for a command that cannot be run (setpriv would hide it)."""
    if cwd is not None and not os.path.isdir(cwd):
        raise FileNotFoundError(2, "No such file or directory", cwd)
    if "/" in name:
        path = name if os.path.isabs(name) or cwd is None else os.path.join(cwd, name)
        if not os.path.exists(path):
            raise FileNotFoundError(2, "No such file or directory", name)
        if not os.access(path, os.X_OK) or os.path.isdir(path):
            raise PermissionError(13, "Permission denied", name)
        return
    if shutil.which(name, path=env.get("PATH", os.defpath)) is None:
        raise FileNotFoundError(2, "No such file or directory", name)


def _die_with_parent(signum: int) -> None:
    """In the child: get ``signum`` when the thread that started us goes away
    (PR_SET_PDEATHSIG), so a killed nested instance leaves no process behind.
    prctl is looked up once in the parent; the child only calls it."""
    _prctl(1, signum, 0, 0, 0)


def _prepare_prctl() -> None:
    global _prctl
    if _prctl is None:
        import ctypes
        _prctl = ctypes.CDLL(None, use_errno=True).prctl


def kill_session(sid: int, signum: int = 9) -> int:
    """Send ``signum`` to every process of session ``sid``; return how many got it.

    What a nested instance started, in its own process groups, is still in its
    session: this is how a killed nested broker's tasks are found without a death
    signal (and an extra ``exec``) on each of them.
    """
    me = os.getpid()
    n = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid == me:
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if len(fields) > 3 and int(fields[3]) == sid:
            try:
                os.kill(pid, signum)
                n += 1
            except (ProcessLookupError, PermissionError):
                pass
    return n


class TaskProcess:
    """Run ``cmd``; call ``on_output(stream, bytes)`` for output, then resolve ``done``.

    ``done`` is a future of the POSIX wait status, set once the process has exited
    and both pipes reached end of file.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, cmd: list[str], env: dict, cwd: str | None,
                 on_output: Callable[[str, bytes], None], stdin_pipe: bool = False,
                 die_with_parent: bool = False, death_signal: str = "KILL",
                 new_session: bool = False):
        self.loop = loop
        self.on_output = on_output
        self.new_session = new_session
        preexec = None
        if die_with_parent:
            if _SETPRIV:
                # util-linux setpriv sets the death signal and execs the task: Popen
                # keeps its vfork fast path (a preexec_fn forces a full fork)
                _check_command(cmd[0], env, cwd)
                cmd = [_SETPRIV, f"--pdeathsig={death_signal}", "--", *cmd]
            else:
                _prepare_prctl()
                import functools
                preexec = functools.partial(_die_with_parent, getattr(signal, "SIG" + death_signal))
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, close_fds=True, preexec_fn=preexec,
            process_group=None if new_session else 0, start_new_session=new_session,
            stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.pid = self.proc.pid
        self.done: asyncio.Future = loop.create_future()
        self.status: int | None = None
        self._open = 2
        self.stdin = self.proc.stdin
        for name, pipe in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr)):
            fd = pipe.fileno()
            os.set_blocking(fd, False)
            loop.add_reader(fd, self._read, name, pipe)
        try:
            self._pidfd = os.pidfd_open(self.pid)
            loop.add_reader(self._pidfd, self._reap)
        except (AttributeError, OSError):  # no pidfd: poll for the exit instead
            self._pidfd = None
            loop.call_later(0.005, self._poll)

    def _read(self, name: str, pipe) -> None:
        fd = pipe.fileno()
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.on_output(name, data)
            return
        self.loop.remove_reader(fd)
        pipe.close()
        self._open -= 1
        self._maybe_done()

    def _reap(self) -> None:
        self.loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None
        self._collect(os.waitpid(self.pid, 0)[1])

    def _poll(self) -> None:
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            self.loop.call_later(0.005, self._poll)
        else:
            self._collect(status)

    def _collect(self, status: int) -> None:
        self.status = status
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        # what the task left in its process group ends with it; it would otherwise
        # hold the output pipes open and the job would never finish
        try:
            os.killpg(self.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        if self.new_session:
            # a session leader (a nested broker) took its tasks' process groups
            # with it into its session: whatever of them outlived it goes now
            kill_session(self.pid)
        self._maybe_done()

    def _maybe_done(self) -> None:
        if self._open == 0 and self.status is not None and not self.done.done():
            self.done.set_result(self.status)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def kill_all(self) -> None:
        """SIGKILL the task's process group and, for a session leader, its session.

        For shutdown: a nested broker killed here cannot clean up after itself, and
        this process may be gone before it could reap it, so what the nested broker
        started (its session) goes at the same time.
        """
        self.send_signal(signal.SIGKILL)
        if self.new_session:
            kill_session(self.pid)

    def send_signal(self, signum: int) -> None:
        if self.status is not None:
            return
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass
