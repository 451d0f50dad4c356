"""``job-exec`` (rank 0): start a job's shells on its ranks, report start/finish/release.

For each job it creates the guest KVS namespace ``job-<id>`` (output and exec
eventlogs live there while the job runs), asks the ``job-shell`` of every rank in
R to run that rank's tasks, enforces the time limit, and when all shells are done
copies the guest namespace to ``job.<dothex>.guest`` and removes it.

With ``attributes.system.exec.test.run_duration`` set, no process is started: the
job "runs" for that long (the test exec mode, for throughput and what-if work).
"""

from __future__ import annotations

import errno
import signal
import time

from ..kvs.flags import FLUX_KVS_TREEOBJ
from ..kvs.writer import KVSWriter
from ..message import FLAG_NORESPONSE, FLAG_STREAMING, FluxError, Message
from ..service import DEFERRED, Service, payload_field, payload_jobid, request_handler
from ..util.eventlog import encode_event
from ..util.fsd import parse_fsd
from ..util.idset import IDSet
from ..util.rv1 import ResourceSet, shape_key
from .jobid import JobID, kvs_dir
from .layout import task_layout
from .shell import job_tmpdir, output_files, truncate_outputs

KILL_TIMEOUT = 2.0


class _Exec:
    __slots__ = ("id", "msg", "ranks", "started", "exited", "status", "timer", "kill_timer",
                 "namespace", "test", "done", "layout", "exception", "launched", "signaled")

    def __init__(self, jobid: int, msg: Message):
        self.id = jobid
        self.msg = msg
        self.ranks: list[int] = []
        self.started: set[int] = set()
        self.exited: dict[int, int] = {}
        self.status = 0
        self.timer = None
        self.kill_timer = None
        self.namespace = f"job-{jobid}"
        self.test = False
        self.done = False
        self.layout: dict[int, list[int]] = {}
        self.exception = False
        self.launched = False        # the shells were asked to run
        self.signaled: int | None = None  # a signal that came before that


class JobExec(Service):
    name = "job-exec"

    def start(self) -> None:
        self.jobs: dict[int, _Exec] = {}
        self._layouts: dict[tuple, dict[int, list[int]]] = {}
        self.writer = KVSWriter(self.broker, lambda ns, exc: self.log("err", f"commit {ns}: {exc}"))

    def stop(self) -> None:
        for ex in list(self.jobs.values()):
            self._signal(ex, signal.SIGKILL)
            self.respond_error(ex.msg, errno.ENOSYS, "job-exec unloaded")

    def _layout(self, jobspec: dict, R_obj: dict) -> dict[int, list[int]]:
        """Task ranks per broker rank; the same shape of request on the same ranks
        lays out the same (a burst of like jobs parses R and lays out once each shape;
        the result is shared, and read only)."""
        shell = ((jobspec.get("attributes") or {}).get("system") or {}).get("shell") or {}
        key = (*shape_key(R_obj), repr(jobspec.get("resources")), repr(jobspec.get("tasks")),
               repr((shell.get("options") or {}).get("per-resource")))
        layout = self._layouts.get(key)
        if layout is None:
            layout = task_layout(jobspec, ResourceSet(R_obj))  # only real launches need R parsed
            if len(self._layouts) >= 512:
                self._layouts.clear()
            self._layouts[key] = layout
        return layout

    def _reply(self, ex: _Exec, kind: str, data: dict | None = None) -> None:
        self.respond(ex.msg, {"id": ex.id, "type": kind, "data": data or {}})

    def _exec_event(self, ex: _Exec, name: str, context: dict | None = None) -> None:
        line = encode_event(name, context)
        if ex.test:
            self.writer.append(f"{kvs_dir(ex.id)}.guest.exec.eventlog", line)
        else:
            self.writer.append("exec.eventlog", line, namespace=ex.namespace)

    @request_handler("start")
    def start_job(self, msg: Message):
        if not msg.flags & FLAG_STREAMING:
            raise FluxError(errno.EPROTO, "job-exec.start: needs a streaming RPC")
        jobid = payload_jobid(msg)
        jobspec = payload_field(msg, "jobspec", dict)
        R_obj = payload_field(msg, "R", dict)
        ex = _Exec(jobid, msg)
        self.jobs[jobid] = ex
        system = (jobspec.get("attributes") or {}).get("system") or {}
        test = ((system.get("exec") or {}).get("test")) or None
        expiration = float((R_obj.get("execution") or {}).get("expiration") or 0.0)
        if expiration:
            delay = max(0.0, expiration - time.time())
            ex.timer = self.broker.loop.call_later(delay, self._timeout, ex)
        if test is not None:
            ex.test = True
            self._exec_event(ex, "init")
            self._exec_event(ex, "starting")
            self._reply(ex, "start")
            try:
                duration = parse_fsd(test.get("run_duration", "0s"))
            except ValueError:
                duration = 0.0
            self.broker.loop.call_later(duration, self._test_finish, ex)
            return DEFERRED
        try:
            ex.layout = self._layout(jobspec, R_obj)
        except ValueError as exc:
            raise FluxError(errno.EINVAL, str(exc)) from None
        ex.ranks = sorted(ex.layout)
        ntasks = sum(len(t) for t in ex.layout.values())
        fut = self.broker.rpc("kvs.namespace-create", {"namespace": ex.namespace, "owner": 0, "flags": 0},
                              nodeid=0)
        fut.add_done_callback(lambda f: self._launch(ex, jobspec, R_obj, ntasks, f))
        return DEFERRED

    def _launch(self, ex: _Exec, jobspec: dict, R_obj: dict, ntasks: int, fut) -> None:
        if fut.cancelled():
            return
        if fut.exception() is not None:
            self._fail(ex, f"cannot create guest namespace: {fut.exception()}")
            return
        header = {"version": 1, "encoding": {"stdout": "UTF-8", "stderr": "UTF-8"},
                  "count": {"stdout": ntasks, "stderr": ntasks}, "options": {}}
        self.writer.append("output", encode_event("header", header), namespace=ex.namespace)
        ranks = IDSet(range(len(ex.ranks))).encode(brackets=True)  # shell ranks
        # {{tmpdir}} is the leader shell's (as flux's shell expands it)
        tmpdir = job_tmpdir(self.broker.attrs["rundir"], ex.ranks[0], ex.id)
        for stream, path in output_files(jobspec, ex.id, absolute=False, tmpdir=tmpdir).items():
            # as flux's shell: attach prints "RANKS: stdout redirected to PATH"
            self.writer.append("output", encode_event("redirect", {
                "stream": stream, "rank": ranks, "path": path}), namespace=ex.namespace)
        truncate_outputs(jobspec, ex.id)
        self._exec_event(ex, "init")
        self._exec_event(ex, "starting")
        # the header goes to the KVS before the shells are asked to run, so it is in
        # before any output of a task (as flux's shell commits it before it starts them)
        self.writer.send_now(ex.namespace)
        if ex.signaled is not None:  # killed before its tasks started: they never do
            ex.done = True
            self._finish(ex, (128 + ex.signaled) << 8)  # as a shell whose tasks it killed
            return
        ex.launched = True
        for rank in ex.ranks:
            self.broker.rpc("job-shell.run", {
                "id": ex.id, "jobspec": jobspec, "tasks": ex.layout[rank], "ntasks": ntasks,
                "nnodes": len(ex.ranks), "namespace": ex.namespace, "R": R_obj,
                "shell_rank": ex.ranks.index(rank),
            }, nodeid=rank, flags=FLAG_STREAMING, callback=lambda m, r=rank: self._on_shell(ex, r, m))

    def _on_shell(self, ex: _Exec, rank: int, msg: Message) -> None:
        if ex.done:
            return
        if msg.errnum:
            if msg.errnum == errno.ENODATA:
                return
            if rank not in ex.exited:
                # a task that could not start exits 127 (not found) or 126, as in flux's shell
                failed_start = "start failed" in (msg.errstr or "")
                ex.exited[rank] = (127 if msg.errnum == errno.ENOENT else 126) << 8 \
                    if failed_start else 1 << 8
                if not ex.exception:
                    ex.exception = True
                    note = msg.errstr or f"shell on rank {rank} failed"
                    if msg.errnum == errno.EHOSTUNREACH:  # its broker is lost (flux-core's words)
                        note = f"node failure on {self.broker.hostname(rank)} (rank {rank})"
                    self._reply(ex, "exception", {"type": "exec", "severity": 0, "note": note})
                    self._signal(ex, signal.SIGKILL)
                self._maybe_finish(ex)
            return
        body = msg.json
        if body.get("type") == "exception":
            if not ex.exception:
                ex.exception = True
                self._reply(ex, "exception", {"type": "exec", "severity": 0, "note": body.get("note", "")})
            return
        if body.get("type") == "start":
            ex.started.add(rank)
            if len(ex.started) == len(ex.ranks):
                # flux-core's shells post shell.init (all shells up) before shell.start
                self._exec_event(ex, "shell.init", {"leader-rank": min(ex.ranks),
                                                    "size": len(ex.ranks)})
                self._exec_event(ex, "shell.start", {"task-count": sum(len(t) for t in ex.layout.values())})
                self._reply(ex, "start")
        elif body.get("type") == "exit":
            for line in body.get("output") or ():  # the ends of the streams (see job-shell)
                self.writer.append("output", line, namespace=ex.namespace)
            ex.exited[rank] = int(body.get("status", 0))
            self._maybe_finish(ex)

    def _maybe_finish(self, ex: _Exec) -> None:
        if len(ex.exited) < len(ex.ranks):
            return
        ex.done = True
        status = max(ex.exited.values(), default=0)
        self._finish(ex, status)

    def _test_finish(self, ex: _Exec) -> None:
        if ex.done:
            return
        ex.done = True
        self._finish(ex, ex.status)

    def _finish(self, ex: _Exec, status: int) -> None:
        for t in (ex.timer, ex.kill_timer):
            if t is not None:
                t.cancel()
        self._reply(ex, "finish", {"status": status})
        self._exec_event(ex, "complete", {"status": status})
        self._exec_event(ex, "done")
        if ex.test:
            self._release(ex)
            return
        # copy the guest namespace into the job's directory, then drop it (the guest
        # namespace is the job's alone: its last events go out at once)
        self.writer.after(ex.namespace, lambda: self._archive(ex), now=True)

    def _archive(self, ex: _Exec) -> None:
        fut = self.broker.rpc("kvs.lookup", {"key": ".", "namespace": ex.namespace, "flags": FLUX_KVS_TREEOBJ}, nodeid=0)

        def copied(f):
            if f.cancelled():
                return
            if f.exception() is None:
                root = f.result()["val"]
                self.writer.put_treeobj(f"{kvs_dir(ex.id)}.guest", root)
            self.writer.after("primary", lambda: self._drop_namespace(ex))

        fut.add_done_callback(copied)

    def _drop_namespace(self, ex: _Exec) -> None:
        fut = self.broker.rpc("kvs.namespace-remove", {"namespace": ex.namespace}, nodeid=0)
        fut.add_done_callback(lambda f: f.cancelled() or self._release(ex))

    def _release(self, ex: _Exec) -> None:
        self._reply(ex, "release", {"ranks": "all", "final": True})
        self.respond_error(ex.msg, errno.ENODATA)
        self.jobs.pop(ex.id, None)

    def _fail(self, ex: _Exec, note: str) -> None:
        ex.done = True
        self._reply(ex, "exception", {"type": "exec", "severity": 0, "note": note})
        self._release(ex)

    # -- time limit and signals -----------------------------------------------------------
    def _timeout(self, ex: _Exec) -> None:
        if ex.done:
            return
        self._reply(ex, "exception", {"type": "timeout", "severity": 0, "note": "resource allocation expired"})
        ex.exception = True
        if ex.test:
            ex.status = signal.SIGKILL
            self._test_finish(ex)
            return
        self._signal(ex, signal.SIGALRM)
        ex.kill_timer = self.broker.loop.call_later(KILL_TIMEOUT, self._signal, ex, signal.SIGKILL)

    def _signal(self, ex: _Exec, signum: int) -> None:
        if ex.test:
            if not ex.done:
                ex.status = signum
                self._test_finish(ex)
            return
        if not ex.launched:
            ex.signaled = int(signum)  # the shells are not asked to run yet (see _launch)
            return
        for rank in ex.ranks:
            if rank not in ex.exited:
                self.broker.rpc("job-shell.kill", {"id": ex.id, "signum": int(signum)}, nodeid=rank, flags=FLAG_NORESPONSE)

    @request_handler("kill")
    def kill(self, msg: Message) -> dict:
        jobid = payload_jobid(msg)
        ex = self.jobs.get(jobid)
        if ex is None:
            raise FluxError(errno.ENOENT, f"job {JobID(jobid).f58} is not running")
        signum = payload_field(msg, "signum", int, signal.SIGTERM)
        self._signal(ex, signum)
        if payload_field(msg, "escalate", bool, False) and ex.kill_timer is None:
            ex.kill_timer = self.broker.loop.call_later(KILL_TIMEOUT, self._signal, ex, signal.SIGKILL)
        return {}
