"""``job-shell`` (every rank): run a job's tasks on this rank as real processes.

Each task gets Flux's task environment (``FLUX_JOB_ID``, ``FLUX_TASK_RANK``,
``FLUX_TASK_LOCAL_ID``, ``FLUX_JOB_SIZE``, ``FLUX_JOB_NNODES``, ``FLUX_URI``,
``FLUX_KVS_NAMESPACE``, ``FLUX_JOB_TMPDIR``, and ``CUDA_VISIBLE_DEVICES`` when R
gives the rank gpus) and a ``flux`` on its PATH. Output goes
to the ``output`` eventlog of the job's guest namespace (RFC 24 ``data`` events),
or to files when the jobspec asks (``{{id}}`` templates). Stdin is forwarded from
the guest ``input`` eventlog when the submitter asked for it (``flux run``).
"""

from __future__ import annotations

import asyncio
import base64
import errno
import json
import os
import queue
import shutil
import signal
import threading

from ...compat import add_to_environ
from ..kvs.flags import FLUX_KVS_WAITCREATE, FLUX_KVS_WATCH_APPEND
from ..kvs.writer import KVSWriter
from ..message import FLAG_STREAMING, FluxError, Message
from ..reaper import MARK
from ..service import DEFERRED, Service, payload_field, payload_jobid, request_handler
from ..util.eventlog import encode_event
from ..util.rv1 import ResourceSet
from .jobid import JobID
from .process import start_task
from .spawnd import make_private_dir



def _start_error(exc: OSError, taskrank: int, cmd: list[str], cwd: str | None,
                 tmpdir: str | None) -> FluxError:
    """The job exception for a task that could not start, as flux's shell words it
    (its tmpdir not made: the shell's setup failed)."""
    if tmpdir is not None and exc.filename == tmpdir:
        return FluxError(errno.EIO, f"job shell setup failed: {exc}")
    if isinstance(exc, FileNotFoundError):
        if cwd and not os.path.isdir(cwd):
            return FluxError(errno.ENOENT, f"task {taskrank}: start failed: cwd {cwd}: "
                             "No such file or directory")
        return FluxError(errno.ENOENT, f"task {taskrank}: start failed: {cmd[0]}: "
                         "No such file or directory")
    return FluxError(errno.EACCES, f"task {taskrank}: start failed: {cmd[0]}: "
                     f"{exc.strerror or exc}")


class _Remover:
    """Removes finished jobs' tmpdirs from a thread of its own.

    Nobody waits for it, and on a busy disk an ``rmdir`` held the broker's loop for
    0.05 to 1.4 ms a job (measured here); the thread waits on its queue without the
    GIL. What it has not reached when the instance ends goes with the run directory.
    """

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def remove(self, path: str) -> None:
        self.queue.put(path)
        if self.thread is None:
            with self.lock:
                if self.thread is None:
                    self.thread = threading.Thread(target=self._run, name="fluxnb-jobtmp",
                                                   daemon=True)
                    self.thread.start()

    def _run(self) -> None:
        while True:
            path = self.queue.get()
            try:
                os.rmdir(path)  # most jobs leave it empty: one syscall
            except FileNotFoundError:
                pass
            except OSError:
                shutil.rmtree(path, ignore_errors=True)


_remover = _Remover()


def job_tmpdir(rundir: str, rank: int, jobid: int) -> str:
    """The job's ``FLUX_JOB_TMPDIR`` on broker ``rank`` (the shell makes it, then removes it)."""
    return os.path.join(rundir, f"jobtmp-{rank}-{JobID(jobid).f58plain}")


def expand_template(path: str, jobid: int, name: str = "", tmpdir: str | None = None) -> str:
    """Replace flux's mustache templates in an output path."""
    jid = JobID(jobid)
    if tmpdir is not None:
        path = path.replace("{{tmpdir}}", tmpdir)
    for key, val in (("{{id}}", jid.f58), ("{{jobid}}", jid.f58), ("{{id.f58}}", jid.f58),
                     ("{{id.dec}}", str(int(jid))), ("{{id.hex}}", jid.hex),
                     ("{{id.dothex}}", jid.dothex), ("{{id.words}}", jid.words),
                     ("{{name}}", name)):
        path = path.replace(key, val)
    return path


def output_files(jobspec: dict, jobid: int, absolute: bool = True,
                 tmpdir: str | None = None) -> dict[str, str]:
    """``stream -> path`` of the job's file outputs (``--output``,
    ``--error``; stderr goes with stdout unless given), templates expanded
    against its id and name, and made absolute against its cwd."""
    system = (jobspec.get("attributes") or {}).get("system") or {}
    opts = ((system.get("shell") or {}).get("options")) or {}
    cmd = ((jobspec.get("tasks") or [{}])[0].get("command")) or [""]
    name = (system.get("job") or {}).get("name") or os.path.basename(str(cmd[0]))
    cwd = system.get("cwd") or os.getcwd()
    out = {}
    for stream in ("stdout", "stderr"):
        s = (opts.get("output") or {}).get(stream) or {}
        if isinstance(s, dict) and s.get("type") == "file" and s.get("path"):
            path = expand_template(s["path"], jobid, name, tmpdir)
            out[stream] = os.path.join(cwd, path) if absolute else path
    if "stdout" in out and "stderr" not in out:
        out["stderr"] = out["stdout"]
    return out


def truncate_outputs(jobspec: dict, jobid: int) -> None:
    """Empty the job's output files before its shells start, unless the
    shell option ``output.mode`` (or ``output.STREAM.mode``) is ``append``,
    as flux's shell opens them (one truncation, whatever the node count)."""
    system = (jobspec.get("attributes") or {}).get("system") or {}
    output = ((((system.get("shell") or {}).get("options")) or {}).get("output")) or {}
    for stream, path in output_files(jobspec, jobid).items():
        mode = (output.get(stream) or {}).get("mode") or output.get("mode") or "truncate"
        if mode == "append":
            continue
        try:
            with open(path, "wb"):
                pass
        except OSError:
            pass  # the shell reports an unopenable file when it opens it


def _verbosity(value) -> int:
    """The shell's ``verbose`` option as a level (``-o verbose`` alone is 1)."""
    if value is True:
        return 1
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


class _ShellJob:
    def __init__(self, jobid: int, msg: Message):
        self.id = jobid
        self.msg = msg
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.sinks: list[_OutputSink] = []
        self.tmpdir: str | None = None
        self.input_tag = None
        self.killed = False


#: a partial line longer than this goes out without waiting for its end
LINE_MAX = 65536


class _OutputSink:
    """A task's output: to its files, or to the job's ``output`` eventlog a line at a
    time, as flux's shell buffers stdout and stderr by line by default
    (``output.<stream>.buffer.type=line``). A line the task wrote in pieces is one
    ``data`` event, and no UTF-8 character is cut in two. What is left of a line
    goes out at the task's end (:meth:`flush`), or once it passes `LINE_MAX` bytes.
    """

    def __init__(self, writer: KVSWriter, ns: str, rank: str, outputs: dict):
        self.writer = writer
        self.ns = ns
        self.rank = rank
        self.outputs = outputs
        self.partial: dict[str, bytes] = {}

    def __call__(self, stream: str, data: bytes) -> None:
        fileobj = self.outputs.get(stream)
        if fileobj is not None:
            fileobj.write(data)
            fileobj.flush()
            return
        if stream in self.partial:
            data = self.partial.pop(stream) + data
        if not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) < LINE_MAX:
                self.partial[stream] = data
                return
            if cut:
                data, self.partial[stream] = data[:cut], data[cut:]
        self._append(stream, data)

    def flush(self) -> None:
        for stream, data in self.partial.items():
            self._append(stream, data)
        self.partial.clear()

    def _append(self, stream: str, data: bytes) -> None:
        self.writer.append("output", encode_event(
            "data", {"stream": stream, "rank": self.rank, "data": data.decode("utf-8", "replace")}),
            namespace=self.ns)


class JobShell(Service):
    name = "job-shell"

    def start(self) -> None:
        self.jobs: dict[int, _ShellJob] = {}
        self.writer = KVSWriter(self.broker, lambda ns, exc: self.log("err", f"output to {ns}: {exc}"))

    def stop(self) -> None:
        for job in self.jobs.values():
            for proc in job.procs.values():
                proc.kill_all()

    @request_handler("run")
    def run(self, msg: Message):
        if not msg.flags & FLAG_STREAMING:
            raise FluxError(errno.EPROTO, "job-shell.run: needs a streaming RPC")
        jobid = payload_jobid(msg)
        job = _ShellJob(jobid, msg)
        self.jobs[jobid] = job
        return self._run(job, msg.json)

    def _environment(self, job: _ShellJob, body: dict, system: dict,
                     make_tmpdir: bool = True) -> dict[str, str]:
        env = {str(k): str(v) for k, v in (system.get("environment") or {}).items() if v is not None}
        if not env:
            env = dict(os.environ)
        bindir = os.path.join(self.broker.attrs["rundir"], "bin")
        path = env.get("PATH", os.defpath)
        if bindir not in path.split(os.pathsep):
            env["PATH"] = bindir + os.pathsep + path
        add_to_environ(env)  # `import flux` gives fluxnb's package, as `flux` gives its CLI
        job.tmpdir = job_tmpdir(self.broker.attrs["rundir"], self.rank, job.id)
        if make_tmpdir:  # else start_task makes it (the spawner, off this thread)
            make_private_dir(job.tmpdir)
        env.update({
            "FLUX_URI": self.broker.attrs["local-uri"],
            MARK: self.broker.attrs["rundir"],  # how the instance finds what it leaves behind
            "FLUX_JOB_ID": JobID(job.id).f58,
            "FLUX_JOB_SIZE": str(body["ntasks"]),
            "FLUX_JOB_NNODES": str(body["nnodes"]),
            "FLUX_KVS_NAMESPACE": body["namespace"],
            "FLUX_JOB_TMPDIR": job.tmpdir,
            # the virtual node's name: `hostname` (the shim beside `flux`) prints it
            "HOSTNAME": self.broker.hostname(self.rank),
        })
        env.pop("FLUX_KVS_NAMESPACE_PARENT", None)
        gpus = self._gpus(body.get("R"))
        if gpus is not None:
            # as flux's gpu-affinity: the job's gpus on this node, by id
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus)
        return env

    def _gpus(self, R: dict | None) -> list[int] | None:
        """Ids of the gpus R gives this rank, or None if it gives none."""
        if not R:
            return None
        rlite = (R.get("execution") or {}).get("R_lite") if isinstance(R, dict) else None
        if isinstance(rlite, list) and not any(
                isinstance(e, dict) and "gpu" in (e.get("children") or {}) for e in rlite):
            return None  # no gpu anywhere in R: nothing to parse
        try:
            children = ResourceSet(R).by_rank().get(self.rank) or {}
        except ValueError:
            return None
        gpus = children.get("gpu")
        return list(gpus) if gpus else None

    async def _run(self, job: _ShellJob, body: dict):
        jobspec = body["jobspec"]
        system = (jobspec.get("attributes") or {}).get("system") or {}
        shell_opts = ((system.get("shell") or {}).get("options")) or {}
        task = (jobspec.get("tasks") or [{}])[0]
        cmd = [str(a) for a in task.get("command") or []]
        ns = body["namespace"]
        # nothing to write into the tmpdir first: start_task makes it, the spawner where
        # it starts the task (a mkdir held this thread ~40 us a job here)
        late_tmpdir = bool(cmd) and not system.get("files") and not shell_opts.get("output")
        try:
            env = self._environment(job, body, system, make_tmpdir=not late_tmpdir)
            self._write_files(job, system.get("files") or {})
        except (FluxError, OSError) as exc:
            self._cleanup(job, {})  # the job's tmpdir and its entry go with the error
            if isinstance(exc, FluxError):
                raise
            raise FluxError(errno.EIO, f"job shell setup failed: {exc}") from None
        cmd = [a.replace("{{tmpdir}}", job.tmpdir) for a in cmd]
        nested = cmd[:2] == ["flux", "broker"]
        tasks = body["tasks"]
        if nested:
            # a nested instance runs all its brokers in one process, on the job's
            # first node; tasks of the other nodes are part of it
            tasks = [t for t in tasks if t == 0]
        cwd = system.get("cwd") or None
        name = (system.get("job") or {}).get("name") or os.path.basename(cmd[0] if cmd else "")
        try:
            outputs = self._open_outputs(job, shell_opts, name, cwd)
        except FluxError:
            self._cleanup(job, {})
            raise
        forward_stdin = shell_opts.get("stdin") == "forward"
        loop = self.broker.loop
        own_process = self.broker.topo.transport != "inproc"
        try:
            for local_id, taskrank in enumerate(tasks):
                tenv = dict(env, FLUX_TASK_RANK=str(taskrank), FLUX_TASK_LOCAL_ID=str(local_id))
                sink = self._sink(ns, taskrank, outputs)
                job.sinks.append(sink)
                try:
                    # a nested broker gets SIGTERM if we die, so that it can take its
                    # own process group (batch script, clients) down with it; it leads
                    # a session of its own, and whatever of that session outlives it
                    # (its tasks, if it was killed) is killed when it exits
                    # A broker of its own process may be killed alone: its tasks die
                    # with it (in one process, the instance's watchdog reaps them)
                    proc = start_task(loop, cmd, tenv, cwd, sink, mark=self.broker.attrs["rundir"],
                                      tmpdir=job.tmpdir if late_tmpdir else None,
                                      stdin_pipe=forward_stdin,
                                      die_with_parent=nested or own_process,
                                      death_signal="TERM" if nested else "KILL",
                                      new_session=nested)
                except OSError as exc:
                    raise _start_error(exc, taskrank, cmd, cwd, job.tmpdir) from None
                job.procs[taskrank] = proc
            for taskrank, proc in job.procs.items():
                if proc.started is not None:  # the spawner's answer
                    try:
                        await proc.started
                    except OSError as exc:
                        raise _start_error(exc, taskrank, cmd, cwd, job.tmpdir) from None
        except FluxError:
            for proc in job.procs.values():
                proc.kill_all()
            self._cleanup(job, outputs)
            raise
        self.respond(job.msg, {"type": "start", "rank": self.rank})
        verbose = _verbosity(shell_opts.get("verbose"))
        shell_rank = int(body.get("shell_rank", 0))
        if verbose:
            self._log(ns, shell_rank, f"{shell_rank}: task_count={body['ntasks']} "
                      f"local_tasks={len(job.procs)}")
            for taskrank in job.procs:
                self._log(ns, shell_rank, f"{shell_rank}: task {taskrank} started")
        if forward_stdin:
            self._watch_input(job, ns)
        statuses = await asyncio.gather(*(p.done for p in job.procs.values()))
        for sink in job.sinks:  # the tasks' last lines without a newline
            sink.flush()
        # as the flux shell: a task killed by signal N makes the shell exit 128+N
        statuses = [((128 + (st & 0x7F)) << 8) if st & 0x7F else st for st in statuses]
        if verbose:
            for taskrank, st in zip(job.procs, statuses):
                self._log(ns, shell_rank, f"task {taskrank} complete status={st}")
        if nested and statuses and (statuses[0] >> 8) > 128:
            sig = (statuses[0] >> 8) - 128
            self.respond(job.msg, {"type": "exception", "rank": self.rank,
                                   "note": f"nested instance (pid {next(iter(job.procs.values())).pid}) "
                                           f"died from signal {sig}"})
        eofs = [encode_event("data", {"stream": stream, "rank": str(taskrank), "eof": True})
                for taskrank in job.procs for stream in ("stdout", "stderr")] \
            if "stdout" not in outputs else []
        self._cleanup(job, outputs)
        status = max(statuses, default=0)
        if verbose:
            self._log(ns, shell_rank, f"exit {status >> 8}")
        if self.writer.idle(ns):
            # all the job's output is in the KVS: job-exec appends the ends of the
            # streams with its own complete event, in one commit (one fewer a job)
            self._exited(job, status, eofs)
            return DEFERRED
        for line in eofs:  # after the output still on its way, then exit
            self.writer.append("output", line, namespace=ns)
        # the guest namespace is the job's alone: nothing to gather by waiting
        self.writer.after(ns, lambda: self._exited(job, status), now=True)
        return DEFERRED

    def _log(self, ns: str, shell_rank: int, message: str, level: int = 6) -> None:
        """A shell log message (RFC 24 ``log`` event; 6 is LOG_DEBUG), as ``-o verbose``
        makes flux's shell write: ``flux job attach`` shows it as ``flux-shell[N]: ...``."""
        self.writer.append("output", encode_event("log", {
            "rank": shell_rank, "level": level, "message": message}), namespace=ns)

    def _sink(self, ns: str, taskrank: int, outputs: dict) -> "_OutputSink":
        return _OutputSink(self.writer, ns, str(taskrank), outputs)

    def _write_files(self, job: _ShellJob, files: dict) -> None:
        """Write ``attributes.system.files`` (e.g. a batch script) into the job's tmpdir."""
        for name, spec in files.items():
            if not isinstance(spec, dict) or "/" in name or name in ("", ".", ".."):
                raise FluxError(errno.EINVAL, f"attributes.system.files.{name}: invalid file")
            data = spec.get("data", "")
            path = os.path.join(job.tmpdir, name)
            if spec.get("encoding") == "base64":
                with open(path, "wb") as f:
                    f.write(base64.b64decode(data))
            else:
                with open(path, "w") as f:
                    f.write(data if isinstance(data, str) else json.dumps(data))
            os.chmod(path, int(spec.get("mode", 0o600)) & 0o7777)

    def _exited(self, job: _ShellJob, status: int, output: list[str] | None = None) -> None:
        """The shell's ``exit``; ``output``: eventlog lines for job-exec to append to the
        job's ``output`` (the streams' ends) before its ``complete`` event."""
        body = {"type": "exit", "rank": self.rank, "status": status}
        if output:
            body["output"] = output
        self.respond(job.msg, body)
        self.respond_error(job.msg, errno.ENODATA)

    def _cleanup(self, job: _ShellJob, outputs: dict) -> None:
        self.jobs.pop(job.id, None)
        if job.input_tag is not None:
            self.broker.rpc_cancel(job.input_tag)
        for f in set(outputs.values()):
            f.close()
        if job.tmpdir:
            _remover.remove(job.tmpdir)

    def _open_outputs(self, job: _ShellJob, opts: dict, name: str, cwd: str | None) -> dict:
        out = {}
        spec = opts.get("output") or {}
        for stream in ("stdout", "stderr"):
            s = spec.get(stream) or {}
            if s.get("type") == "file" and s.get("path"):
                path = expand_template(s["path"], job.id, name, job.tmpdir)
                if not os.path.isabs(path):
                    path = os.path.join(cwd or os.getcwd(), path)
                try:
                    out[stream] = open(path, "ab")
                except OSError as exc:
                    raise FluxError(errno.EIO, f"{stream}: cannot open {path}: {exc.strerror}") from None
        if "stdout" in out and "stderr" not in out:
            out["stderr"] = out["stdout"]
        return out

    def _watch_input(self, job: _ShellJob, ns: str) -> None:
        buf = [b""]

        def on_input(msg: Message) -> None:
            if msg.errnum or job.id not in self.jobs:
                return
            val = msg.json["val"]
            buf[0] += base64.b64decode(val["data"]) if val.get("data") else b""
            *lines, buf[0] = buf[0].split(b"\n")
            for line in lines:
                if not line:
                    continue
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("name") != "data":
                    continue
                ctx = ev.get("context") or {}
                for proc in job.procs.values():
                    if proc.stdin is None or proc.stdin.closed:
                        continue
                    try:
                        if "data" in ctx:
                            # small writes to a pipe; a full pipe would block the
                            # broker, so stdin forwarding is for interactive use
                            proc.stdin.write(ctx["data"].encode())
                            proc.stdin.flush()
                        if ctx.get("eof"):
                            proc.stdin.close()
                    except (BrokenPipeError, ConnectionResetError, ValueError):
                        pass

        job.input_tag = self.broker.rpc(
            "kvs-watch.lookup", {"key": "input", "namespace": ns,
                                 "flags": FLUX_KVS_WATCH_APPEND | FLUX_KVS_WAITCREATE},
            nodeid=0, flags=FLAG_STREAMING, callback=on_input)

    @request_handler("kill")
    def kill(self, msg: Message) -> dict:
        jobid = payload_jobid(msg)
        signum = payload_field(msg, "signum", int, signal.SIGTERM)
        job = self.jobs.get(jobid)
        if job is None:
            raise FluxError(errno.ENOENT, f"job {JobID(jobid).f58} has no tasks on rank {self.rank}")
        for proc in job.procs.values():
            proc.send_signal(signum)
        return {}
