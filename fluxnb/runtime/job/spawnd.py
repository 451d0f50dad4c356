"""The task spawner: starts a loop's task processes from a process of its own.

Brokers that share one Python thread (``fluxnb start``, a kernel's instance) would
otherwise start every task themselves: ``subprocess.Popen`` held that thread 0.6 to
0.8 ms a task (its Python half, then ``vfork`` until the child execs), and its pipes
and exit cost three more callbacks each. This process does it on the other core: the
broker sends one frame per task and gets back ``started``, the task's output, and
``exit`` once it has exited and both pipes reached end of file.

Run as ``python -I -S spawnd.py FD``, stdlib only (no ``fluxnb`` import), with FD one
end of a stream socket pair, in a process group of its own (a ^C at the terminal is
the broker's to act on). Frames both ways: a 4-byte big-endian length, then a
pickled tuple. From the broker::

    ("spawn", id, argv, env, cwd, tmpdir)
                                     start argv[0] (searched on env's PATH) in cwd,
                                     stdin /dev/null, in a process group of its own;
                                     first make tmpdir (0700) unless it is None or there
    ("signal", id, signum)           signal the task's process group

To the broker::

    ("started", id, pid)             ("error", id, errno, strerror, filename)
    ("out", id, 1 or 2, bytes)       ("exit", id, wait status)

When the socket reads end of file (the broker's process ended, however it ended),
every task still running is killed with its process group, and the spawner exits.
"""

import os
import pickle
import select
import signal
import socket
import sys

READ = 65536
_DUP2 = os.POSIX_SPAWN_DUP2


def pack(frame, out):
    """Append ``frame`` to the list ``out`` as the wire has it (length, pickle)."""
    data = pickle.dumps(frame, 5)
    out.append(len(data).to_bytes(4, "big"))
    out.append(data)


def unpack(buf):
    """The whole frames at the head of the bytearray ``buf``, taken out of it."""
    frames = []
    pos, end = 0, len(buf)
    while end - pos >= 4:
        n = int.from_bytes(buf[pos:pos + 4], "big")
        if end - pos - 4 < n:
            break
        frames.append(pickle.loads(buf[pos + 4:pos + 4 + n]))
        pos += 4 + n
    del buf[:pos]
    return frames


def make_private_dir(path):
    """``path`` as a directory of mode 0700 (its parents made if missing); there already is fine."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(path, 0o700, exist_ok=True)


class _Task:
    __slots__ = ("id", "pid", "pidfd", "fds", "status")

    def __init__(self, tid, pid, pidfd, fds):
        self.id = tid
        self.pid = pid
        self.pidfd = pidfd
        self.fds = fds  # read ends still open: {fd: 1 or 2}
        self.status = None


def _resolve(name, env):
    """What execvpe would run for ``name``, as subprocess searches the child's PATH."""
    if "/" in name:
        return name
    denied = None
    for d in env.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(d or ".", name)
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_mode & 0o170000) == 0o040000:
            continue
        if os.access(path, os.X_OK):
            return path
        denied = path
    if denied is not None:
        raise PermissionError(13, "Permission denied", name)
    raise FileNotFoundError(2, "No such file or directory", name)


class Spawnd:
    def __init__(self, sock):
        self.sock = sock
        self.ep = select.epoll()
        self.inbuf = bytearray()
        self.out = []
        self.tasks = {}     # id -> _Task
        self.byfd = {}      # fd -> (_Task, stream) for pipes, (_Task, 0) for pidfds
        self.polled = []    # tasks without a pidfd: waitpid(WNOHANG) now and then
        self.cwd = os.getcwd()
        self.devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        # what subprocess resets (restore_signals): ignored stays ignored across exec
        self.sigdef = [s for s in (getattr(signal, "SIGPIPE", None), getattr(signal, "SIGXFSZ", None))
                       if s is not None]
        self.ep.register(sock.fileno(), select.EPOLLIN)

    def send(self, frame):
        pack(frame, self.out)

    def run(self):
        sockfd = self.sock.fileno()
        while True:
            for fd, _ in self.ep.poll(0.005 if self.polled else -1):
                if fd == sockfd:
                    if not self.on_request():
                        self.kill_all()
                        return
                    # the rest of these events is stale: between its spawns,
                    # on_request told tasks' ends and closed their descriptors,
                    # whose numbers its later spawns may have taken (the next poll
                    # gives again what is still pending)
                    break
                self.on_task_fd(fd)
            if not self.tell():
                self.kill_all()
                return

    def on_task_fd(self, fd):
        entry = self.byfd.get(fd)
        if entry is None:
            return
        task, stream = entry
        if stream:
            self.on_output(task, fd, stream)
        else:
            self.on_exit(task)

    def between_spawns(self):
        """What happened to the tasks running, told before the next spawn of a burst:
        a spawn holds this process ~0.5 ms (until the child has exec'd), and the
        scheduler frees a job's cores only once its exit is told, so a burst of eight
        told at its end held the first task's cores ~4 ms longer than it ran."""
        sockfd = self.sock.fileno()
        for fd, _ in self.ep.poll(0):
            if fd != sockfd:  # the frames after this one are read already
                self.on_task_fd(fd)
        return self.tell()

    def tell(self):
        """Reap the tasks without a pidfd, then send what is queued; False if the
        broker is gone."""
        if self.polled:
            self.poll()
        if not self.out:
            return True
        try:
            self.sock.sendall(b"".join(self.out))
        except OSError:
            return False
        self.out.clear()
        return True

    def on_request(self):
        try:
            data = self.sock.recv(READ)
        except InterruptedError:
            return True
        except OSError:
            return False
        if not data:
            return False
        self.inbuf += data
        frames = unpack(self.inbuf)
        last = len(frames) - 1
        for i, frame in enumerate(frames):
            if frame[0] == "spawn":
                self.spawn(*frame[1:])
                if i < last and not self.between_spawns():
                    return False
            elif frame[0] == "signal":
                self.signal(*frame[1:])
        return True

    def spawn(self, tid, argv, env, cwd, tmpdir=None):
        try:
            if tmpdir is not None:
                make_private_dir(tmpdir)
            if cwd != self.cwd:
                os.chdir(cwd)
                self.cwd = cwd
            path = _resolve(argv[0], env)
        except OSError as exc:
            self.send(("error", tid, exc.errno, exc.strerror, exc.filename))
            return
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            pid = os.posix_spawn(path, argv, env, setpgroup=0, setsigdef=self.sigdef,
                                 file_actions=((_DUP2, self.devnull, 0), (_DUP2, out_w, 1),
                                               (_DUP2, err_w, 2)))
        except OSError as exc:
            os.close(out_r)
            os.close(err_r)
            self.send(("error", tid, exc.errno, exc.strerror, argv[0]))
            return
        finally:
            os.close(out_w)
            os.close(err_w)
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = None
        task = _Task(tid, pid, pidfd, {out_r: 1, err_r: 2})
        self.tasks[tid] = task
        for fd, stream in ((out_r, 1), (err_r, 2)):
            os.set_blocking(fd, False)
            self.byfd[fd] = (task, stream)
            self.ep.register(fd, select.EPOLLIN)
        if pidfd is None:
            self.polled.append(task)
        else:
            self.byfd[pidfd] = (task, 0)
            self.ep.register(pidfd, select.EPOLLIN)
        self.send(("started", tid, pid))

    def signal(self, tid, signum):
        task = self.tasks.get(tid)
        if task is None or task.status is not None:
            return  # gone, or never started: its pid may be another process's now
        try:
            os.killpg(task.pid, signum)
        except OSError:
            try:
                os.kill(task.pid, signum)
            except OSError:
                pass

    def on_output(self, task, fd, stream):
        try:
            data = os.read(fd, READ)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.send(("out", task.id, stream, data))
            return
        self.ep.unregister(fd)
        del self.byfd[fd]
        os.close(fd)
        del task.fds[fd]
        self.maybe_done(task)

    def on_exit(self, task):
        self.ep.unregister(task.pidfd)
        del self.byfd[task.pidfd]
        os.close(task.pidfd)
        task.pidfd = None
        self.collect(task, os.waitpid(task.pid, 0)[1])

    def poll(self):
        still = []
        for task in self.polled:
            pid, status = os.waitpid(task.pid, os.WNOHANG)
            if pid == 0:
                still.append(task)
            else:
                self.collect(task, status)
        self.polled = still

    def collect(self, task, status):
        task.status = status
        # what the task left in its process group ends with it: it would hold the
        # output pipes open, and the job would never finish
        try:
            os.killpg(task.pid, signal.SIGKILL)
        except OSError:
            pass
        self.maybe_done(task)

    def maybe_done(self, task):
        if task.status is not None and not task.fds:
            del self.tasks[task.id]
            self.send(("exit", task.id, task.status))

    def kill_all(self):
        for task in self.tasks.values():
            if task.status is None:
                try:
                    os.killpg(task.pid, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    os.waitpid(task.pid, 0)
                except OSError:
                    pass


def main():
    fd = int(sys.argv[1])
    os.set_inheritable(fd, False)  # a task holding it would hide our end from the broker
    sock = socket.socket(fileno=fd)
    sock.setblocking(True)
    # tasks inherit our mask: none blocked, whatever thread of the broker started us
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    Spawnd(sock).run()


if __name__ == "__main__":
    main()
