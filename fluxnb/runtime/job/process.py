"""A job's task processes, driven by the broker's loop with no helper threads.

Brokers that share one thread hand their tasks to a spawner process of their loop
(:class:`Spawner`, ``spawnd.py``): a task costs the loop one frame out and a few
frames back. Where a task needs more than that spawner does (stdin forwarded, a
death signal, a session of its own for a nested instance), or where its broker has
a process of its own, :class:`TaskProcess` starts it with ``subprocess.Popen``; its
stdout/stderr pipes and a pidfd for its exit are read by ``loop.add_reader``
callbacks. asyncio's subprocess transports cost a waiter thread per child and
several layers of protocol objects; a job shell that starts hundreds of tasks a
second cannot afford either.
"""

from __future__ import annotations

import asyncio
import os
import signal
import shutil
import socket
import subprocess
import sys
from typing import Callable

from .spawnd import make_private_dir, pack, unpack


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
    and both pipes reached end of file. ``started`` is None: the process has started
    (or raised, as Popen does) when the constructor returns.
    """

    started = None

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


#: ``FLUXNB_SPAWNER=0`` starts every task with Popen from the broker's thread
SPAWNER = os.environ.get("FLUXNB_SPAWNER", "1") != "0"
_SPAWND = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spawnd.py")
_STREAMS = (None, "stdout", "stderr")
READ = 65536
#: each loop's spawner, from its first task until close_spawner
_spawners: "dict[asyncio.AbstractEventLoop, Spawner]" = {}


def start_task(loop: asyncio.AbstractEventLoop, cmd: list[str], env: dict, cwd: str | None,
               on_output: Callable[[str, bytes], None], *, mark: str, tmpdir: str | None = None,
               stdin_pipe: bool = False, die_with_parent: bool = False, death_signal: str = "KILL",
               new_session: bool = False):
    """A task started by the loop's spawner where that is enough, else a TaskProcess.

    A spawned task's start errors come from awaiting its ``started`` future (the
    OSError Popen would have raised); ``mark`` (the instance's run directory) goes in
    the spawner's environment, so that the instance's reaper finds it as it finds
    the tasks. ``tmpdir``: a directory (0700) made first if it is not there (by the
    spawner, off this thread, when it starts the task).
    """
    if SPAWNER and cmd and not (stdin_pipe or die_with_parent or new_session):
        spawner = _spawners.get(loop)
        if spawner is None or spawner.closed:
            spawner = _spawners[loop] = Spawner(loop, mark)
        # the spawner changes directory for each task: a relative cwd is this process's
        cwd = os.getcwd() if cwd is None else cwd if cwd.startswith("/") else os.path.abspath(cwd)
        return spawner.spawn(cmd, env, cwd, on_output, tmpdir)
    if tmpdir is not None:
        make_private_dir(tmpdir)
    return TaskProcess(loop, cmd, env, cwd, on_output, stdin_pipe=stdin_pipe,
                       die_with_parent=die_with_parent, death_signal=death_signal,
                       new_session=new_session)


def close_spawner(loop: asyncio.AbstractEventLoop, timeout: float = 5.0) -> None:
    """End the loop's spawner, if it has one: what it was sent goes out first (the
    kills of a shutdown), then end of file; it kills what still runs, and exits."""
    spawner = _spawners.pop(loop, None)
    if spawner is not None:
        spawner.close(timeout)


class SpawnedTask:
    """A task the spawner runs: the interface of :class:`TaskProcess`, and ``started``."""

    stdin = None

    def __init__(self, spawner: "Spawner", tid: int, on_output: Callable[[str, bytes], None]):
        self.spawner = spawner
        self.id = tid
        self.on_output = on_output
        self.pid: int | None = None
        self.status: int | None = None
        self.started: asyncio.Future = spawner.loop.create_future()
        self.done: asyncio.Future = spawner.loop.create_future()

    @property
    def returncode(self) -> int | None:
        return None if self.status is None else os.waitstatus_to_exitcode(self.status)

    def _exited(self, status: int) -> None:
        self.status = status
        if not self.started.done():  # lost with a spawner that died
            self.started.set_exception(OSError(5, "Input/output error: the task spawner died"))
        if not self.done.done():
            self.done.set_result(status)

    def send_signal(self, signum: int) -> None:
        if self.status is not None:
            return
        if not self.spawner.closed:
            self.spawner.send(("signal", self.id, int(signum)))
        elif self.pid is not None:
            try:
                os.killpg(self.pid, signum)
            except (ProcessLookupError, PermissionError):
                pass

    def kill_all(self) -> None:
        self.send_signal(signal.SIGKILL)


class Spawner:
    """The broker side of ``spawnd.py``: one per loop, started with its first task.

    Frames to the spawner are written without blocking (the loop must never wait on
    a spawner that waits on it) and go out once per pass of the loop.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, mark: str):
        self.loop = loop
        self.closed = False
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            from ..reaper import MARK
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", _SPAWND, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, close_fds=True,
                process_group=0, env={MARK: mark})
        finally:
            theirs.close()
        self.sock = ours
        ours.setblocking(False)
        self.tasks: dict[int, SpawnedTask] = {}
        self.next_id = 0
        self.out: list[bytes] = []
        self.pending = b""
        self.flush_queued = False
        self.writing = False
        self.inbuf = bytearray()
        loop.add_reader(ours.fileno(), self._on_readable)

    def spawn(self, cmd: list[str], env: dict, cwd: str, on_output,
              tmpdir: str | None = None) -> SpawnedTask:
        self.next_id += 1
        task = SpawnedTask(self, self.next_id, on_output)
        self.tasks[task.id] = task
        self.send(("spawn", task.id, cmd, env, cwd, tmpdir))
        return task

    def send(self, frame: tuple) -> None:
        pack(frame, self.out)
        if not self.flush_queued and not self.writing:
            self.flush_queued = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_queued = False
        if self.closed:
            return
        data = self.pending + b"".join(self.out)
        self.out.clear()
        try:
            n = self.sock.send(data)
        except BlockingIOError:
            n = 0
        except OSError:
            self._lost()
            return
        self.pending = data[n:]
        if self.pending and not self.writing:
            self.writing = True
            self.loop.add_writer(self.sock.fileno(), self._on_writable)
        elif not self.pending and self.writing:
            self.writing = False
            self.loop.remove_writer(self.sock.fileno())

    def _on_writable(self) -> None:
        self._flush()

    def _on_readable(self) -> None:
        try:
            data = self.sock.recv(READ)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._lost()
            return
        self.inbuf += data
        tasks = self.tasks
        for frame in unpack(self.inbuf):
            kind, tid = frame[0], frame[1]
            task = tasks.get(tid)
            if task is None:
                continue
            if kind == "out":
                task.on_output(_STREAMS[frame[2]], frame[3])
            elif kind == "started":
                task.pid = frame[2]
                task.started.set_result(task.pid)
            elif kind == "exit":
                del tasks[tid]
                task._exited(frame[2])
            elif kind == "error":
                del tasks[tid]
                errnum, strerror, filename = frame[2:5]
                task.status = -1
                exc = OSError(errnum, strerror, filename)  # FileNotFoundError for ENOENT...
                task.started.set_exception(exc)
                task.done.set_result(-1)

    def _lost(self) -> None:
        """The spawner died (or was killed): its tasks are ended and reported killed."""
        self._shut()
        for task in list(self.tasks.values()):
            if task.pid is not None:
                try:
                    os.killpg(task.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            task._exited(signal.SIGKILL)
        self.tasks.clear()
        try:
            self.proc.wait(1)
        except subprocess.TimeoutExpired:
            pass

    def _shut(self) -> None:
        if self.closed:
            return
        self.closed = True
        if _spawners.get(self.loop) is self:
            del _spawners[self.loop]
        try:
            self.loop.remove_reader(self.sock.fileno())
            if self.writing:
                self.loop.remove_writer(self.sock.fileno())
        except (RuntimeError, ValueError):  # the loop is closed
            pass
        self.sock.close()

    def close(self, timeout: float = 5.0) -> None:
        if self.closed:
            return
        data = self.pending + b"".join(self.out)
        self.out.clear()
        self.pending = b""
        if data:
            try:
                self.sock.setblocking(True)
                self.sock.settimeout(timeout)
                self.sock.sendall(data)
            except OSError:
                pass
        self._shut()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
