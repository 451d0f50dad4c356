"""The ``dyad`` service: serves a rank's produced files and fetches consumed ones.

Load it on every rank, as in DYAD's tutorial::

    flux exec -r all flux module load dyad [DIR] [--mode FLUX_RPC]

``DIR`` is the producer-managed directory this rank serves files from; without it
each rank gets a node-local directory ``<rundir>/dyad/<rank>``.

Topics
------
``dyad.fetch``    streaming, ``{upath}``: one JSON header ``{upath, size}``, then
                  the file's bytes as raw payloads (no base64, no JSON), then ENODATA.
``dyad.consume``  ``{upath, path, namespace, depth?, bins?, shared?}``: wait (KVS
                  waitcreate) until ``upath`` is published, fetch it from its owner
                  rank into ``path/upath`` unless it is local or storage is shared,
                  answer ``{key, owner, fetched, size}``. Concurrent consumers of one
                  file on a rank share one fetch.
``dyad.cancel``   ``{matchtag}``: stop waiting for a consume this client sent.
``dyad.stats``    this rank's directory, mode, waiting consumers and counters.

A fetched file is written to a hidden temporary name next to its destination and
renamed into place once its last byte arrived and its size matched the header:
a consumer never sees a partial file, even when the owner goes away mid-transfer.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import json
import mmap
import os
import time
from dataclasses import dataclass, field
from typing import Any

from ..message import FLAG_STREAMING, LARGE, FluxError, Message
from ..service import DEFERRED, Service, payload_field, request_handler
from .keys import DEFAULT_BINS, DEFAULT_DEPTH, key as path_key

#: data transfer layers DYAD knows; only FLUX_RPC moves data here
DTL_MODES = ("FLUX_RPC", "UCX", "MARGO")
#: 1 MiB measured best here: 4 MiB chunks took 5x longer end to end (bench/dyad.py)
DEFAULT_CHUNK = 1 << 20
FLUX_KVS_WAITCREATE = 8
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)


def parse_module_args(args: list[str]) -> dict[str, Any]:
    """Parse ``[DIR] [--mode M] [--chunk-size N] [--throttle S]`` (``--opt=v`` too).

    ``--throttle`` delays each chunk sent (seconds): a slow link, for demos and for
    tests that need a fetch to be in flight. A bare ``--`` is ignored.

    Examples
    --------
    >>> parse_module_args(["/tmp/p", "--mode", "FLUX_RPC"])["path"]
    '/tmp/p'
    """
    opts: dict[str, Any] = {"path": None, "mode": "FLUX_RPC", "chunk_size": DEFAULT_CHUNK,
                            "throttle": 0.0}
    names = {"--mode": ("mode", str), "-m": ("mode", str), "--chunk-size": ("chunk_size", int),
             "--throttle": ("throttle", float), "--info_log": (None, str),
             "--error_log": (None, str)}
    items = list(args)
    while items:
        arg = items.pop(0)
        if arg == "--":
            continue
        name, eq, value = arg.partition("=")
        if name in names:
            if not eq:
                if not items:
                    raise FluxError(errno.EINVAL, f"dyad: option {name} needs a value")
                value = items.pop(0)
            attr, kind = names[name]
            try:
                if attr:
                    opts[attr] = kind(value)
            except ValueError:
                raise FluxError(errno.EINVAL, f"dyad: {name}={value!r} is not a {kind.__name__}") from None
        elif arg.startswith("-"):
            raise FluxError(errno.EINVAL, f"dyad: unknown option {arg} (known: --mode, "
                                          "--chunk-size, --throttle)")
        elif opts["path"] is None:
            opts["path"] = arg
        else:
            raise FluxError(errno.EINVAL, f"dyad: unexpected argument {arg!r} (one DIR only)")
    mode = opts["mode"].upper()
    if mode not in DTL_MODES:
        raise FluxError(errno.EINVAL, f"dyad: unknown --mode {opts['mode']} (one of {', '.join(DTL_MODES)})")
    if mode != "FLUX_RPC":
        raise FluxError(errno.ENOTSUP, f"dyad: --mode {mode} is not available here; use FLUX_RPC")
    opts["mode"] = mode
    if opts["chunk_size"] < 1:
        raise FluxError(errno.EINVAL, "dyad: --chunk-size must be >= 1")
    return opts


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def safe_join(root: str, upath: str) -> str:
    """``root/upath``, refusing paths that leave ``root`` (``..``, absolute)."""
    norm = os.path.normpath(upath)
    if not upath or os.path.isabs(upath) or norm == "." or norm.startswith(".." + os.sep) or norm == "..":
        raise FluxError(errno.EINVAL, f"dyad: {upath!r} is not a path inside a managed directory")
    return os.path.join(root, norm)


@dataclass
class _Consumer:
    msg: Message
    upath: str
    key: str
    namespace: str
    dest: str
    since: float = field(default_factory=time.time)
    state: str = "waiting"          # waiting -> fetching -> (answered)
    watch_tag: int | None = None


class _Fetch:
    """One transfer of a file from its owner into this rank's consumer directory."""

    def __init__(self, upath: str, owner: int, dest: str):
        self.upath, self.owner, self.dest = upath, owner, dest
        self.tmp = os.path.join(os.path.dirname(dest),
                                f".{os.path.basename(dest)}.dyad-{os.getpid()}-{id(self):x}.part")
        self.fd: int | None = None
        self.size: int | None = None
        self.received = 0
        self.started = time.perf_counter()
        self.future: asyncio.Future | None = None


class DyadService(Service):
    """DYAD's per-rank module (``dyad``): see the module docstring for its topics."""

    name = "dyad"

    def start(self) -> None:
        opts = parse_module_args(self.args)
        rundir = self.broker.attrs.get("rundir") or "/tmp"
        self.path = os.path.abspath(opts["path"] or os.path.join(rundir, "dyad", str(self.rank)))
        os.makedirs(self.path, exist_ok=True)
        self.mode = opts["mode"]
        self.chunk_size = opts["chunk_size"]
        self.throttle = opts["throttle"]
        self.inproc = self.broker.topo.transport == "inproc"
        self.consumers: list[_Consumer] = []
        self.fetches: dict[str, _Fetch] = {}
        self.serving: dict[int, tuple[Message, asyncio.Task, str]] = {}
        self.last_transfer: dict[str, float] = {}
        self.counters = {"served": 0, "bytes_out": 0, "fetched": 0, "bytes_in": 0,
                         "local": 0, "shared": 0, "dedup": 0}
        self.log("info", f"dyad: serving {self.path} (mode {self.mode})")

    def stop(self) -> None:
        why = f"dyad: module unloaded on rank {self.rank}"
        for msg, task, upath in list(self.serving.values()):
            task.cancel()
            self.respond_error(msg, errno.ENOSYS, f"{why} while sending {upath}")
        self.serving.clear()
        for c in self.consumers:
            self._cancel_watch(c)
            self.respond_error(c.msg, errno.ENOSYS, f"{why} while consuming {c.upath}")
        self.consumers.clear()
        for f in list(self.fetches.values()):
            self._abort(f, FluxError(errno.ENOSYS, why))
        self.fetches.clear()

    # -- producer side: serve files ------------------------------------------------
    @request_handler("fetch")
    def fetch(self, msg: Message):
        if not msg.flags & FLAG_STREAMING:
            raise FluxError(errno.EPROTO, "dyad.fetch: needs a streaming RPC")
        upath = payload_field(msg, "upath", str)
        path = safe_join(self.path, upath)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise FluxError(errno.ENOENT, f"dyad.fetch: {upath}: no such file in {self.path} on rank "
                            f"{self.rank} (is DYAD_PATH_PRODUCER the directory the module serves?)") from None
        except OSError as exc:
            raise FluxError(exc.errno or errno.EIO, f"dyad.fetch: {upath}: {exc.strerror}") from None
        task = self.broker.loop.create_task(self._send(msg, fd, upath))
        self.serving[id(msg)] = (msg, task, upath)
        return DEFERRED

    def _map(self, fd: int, size: int) -> memoryview | None:
        """The file mapped read-only, when its chunks can travel uncopied; else None.

        Only when every broker lives in this process (inproc): the chunks then reach
        the consumer's ``write`` without a copy, as UCX's shared-memory transport
        would move them. Across processes zmq copies through a socket anyway, and a
        file truncated under a mapping would fault inside zmq's I/O thread, so
        chunks are read with ``pread`` there.
        """
        if not self.inproc or size < 2 * LARGE:
            return None
        try:
            return memoryview(mmap.mmap(fd, size, flags=mmap.MAP_SHARED | _POPULATE,
                                        prot=mmap.PROT_READ))
        except (OSError, ValueError):
            return None

    async def _send(self, msg: Message, fd: int, upath: str) -> None:
        try:
            size = os.fstat(fd).st_size
            self.respond(msg, {"upath": upath, "size": size, "rank": self.rank})
            offset = 0
            view = self._map(fd, size)
            while offset < size:
                n = min(self.chunk_size, size - offset)
                if view is None:
                    data = os.pread(fd, n, offset)
                else:       # never hand zmq a slice past a (since) shortened file's end
                    data = view[offset:offset + n] if os.fstat(fd).st_size >= offset + n else b""
                if not data:
                    raise FluxError(errno.EIO, f"dyad.fetch: {upath} shrank while being sent")
                self.respond(msg, data)
                offset += len(data)
                self.counters["bytes_out"] += len(data)
                # let the loop breathe between chunks (and let an unload interrupt us)
                await asyncio.sleep(self.throttle)
            self.counters["served"] += 1
            self.respond_error(msg, errno.ENODATA)
        except FluxError as exc:
            self.respond_error(msg, exc.errno, exc.errstr)
        except OSError as exc:
            self.respond_error(msg, exc.errno or errno.EIO, f"dyad.fetch: {upath}: {exc.strerror}")
        finally:
            os.close(fd)
            self.serving.pop(id(msg), None)

    # -- consumer side ---------------------------------------------------------------
    @request_handler("consume")
    def consume(self, msg: Message):
        upath = payload_field(msg, "upath", str)
        cons_dir = payload_field(msg, "path", str)
        ns = payload_field(msg, "namespace", str)
        depth = payload_field(msg, "depth", int, DEFAULT_DEPTH)
        bins = payload_field(msg, "bins", int, DEFAULT_BINS)
        shared = payload_field(msg, "shared", bool, False)
        try:
            key = path_key(upath, depth, bins)
        except ValueError as exc:
            raise FluxError(errno.EINVAL, f"dyad.consume: {exc}") from None
        c = _Consumer(msg, upath, key, ns, safe_join(os.path.abspath(cons_dir), upath))
        self.consumers.append(c)
        c.watch_tag = self.broker.rpc(
            "kvs-watch.lookup", {"key": key, "namespace": ns, "flags": FLUX_KVS_WAITCREATE},
            nodeid=0, callback=lambda m, c=c, s=shared: self._published(c, m, s))
        return DEFERRED

    def _published(self, c: _Consumer, m: Message, shared: bool) -> None:
        c.watch_tag = None
        if c not in self.consumers:
            return
        if m.errnum:
            text = m.errstr or os.strerror(m.errnum)
            if m.errnum == errno.ENOTSUP:
                text = (f"DYAD_KVS_NAMESPACE {c.namespace!r} does not exist "
                        f"(create it with: flux kvs namespace create {c.namespace})")
            self._answer_error(c, m.errnum, f"dyad.consume: {c.upath}: {text}")
            return
        try:
            val = m.json["val"]
            owner = int(json.loads(base64.b64decode(val["data"])))
        except (KeyError, TypeError, ValueError) as exc:
            self._answer_error(c, errno.EPROTO, f"dyad.consume: {c.key}: bad DYAD metadata: {exc!r}")
            return
        if shared:
            self.counters["shared"] += 1
            self._answer(c, owner, False)
        elif owner == self.rank:
            self._local(c, owner)
        else:
            c.state = "fetching"
            fut = self._fetch_once(c.upath, owner, c.dest)
            fut.add_done_callback(lambda f, c=c, o=owner: self._fetched(c, o, f))

    def _local(self, c: _Consumer, owner: int) -> None:
        """Producer and consumer share this rank: link, never copy."""
        src = safe_join(self.path, c.upath)
        self.counters["local"] += 1
        try:
            if os.path.abspath(src) != c.dest and not os.path.exists(c.dest):
                os.makedirs(os.path.dirname(c.dest), exist_ok=True)
                tmp = f"{c.dest}.dyad-link-{os.getpid()}"
                try:
                    os.link(src, tmp)
                except OSError:
                    os.symlink(src, tmp)
                os.replace(tmp, c.dest)
        except OSError as exc:
            self._answer_error(c, exc.errno or errno.EIO, f"dyad.consume: {c.upath}: {exc}")
            return
        self._answer(c, owner, False)

    def _fetched(self, c: _Consumer, owner: int, fut: asyncio.Future) -> None:
        if c not in self.consumers:
            return
        if fut.cancelled():
            self._answer_error(c, errno.ECANCELED, f"dyad.consume: {c.upath}: fetch canceled")
        elif fut.exception() is not None:
            exc = fut.exception()
            self._answer_error(c, getattr(exc, "errno", None) or errno.EIO,
                               f"dyad.consume: {c.upath}: fetch from rank {owner} failed: {exc}")
        else:
            self._answer(c, owner, fut.result())

    def _answer(self, c: _Consumer, owner: int, fetched: bool) -> None:
        self.consumers.remove(c)
        size = os.path.getsize(c.dest) if os.path.exists(c.dest) else None
        self.respond(c.msg, {"key": c.key, "owner": owner, "fetched": bool(fetched), "size": size,
                             "path": c.dest, "transfer": self.last_transfer.get(c.upath) if fetched else None})

    def _answer_error(self, c: _Consumer, errnum: int, text: str) -> None:
        if c in self.consumers:
            self.consumers.remove(c)
        self.respond_error(c.msg, errnum, text)

    # -- fetching (once per destination) ---------------------------------------------
    def _fetch_once(self, upath: str, owner: int, dest: str) -> asyncio.Future:
        """A future of the fetch of ``upath`` into ``dest``; one transfer however many ask.

        Returns True when this call's transfer moved data, False when ``dest`` was
        already complete (fetched earlier).
        """
        f = self.fetches.get(dest)
        if f is not None:
            self.counters["dedup"] += 1
            return f.future
        fut = self.broker.loop.create_future()
        if os.path.exists(dest):
            self.counters["dedup"] += 1
            fut.set_result(False)
            return fut
        f = _Fetch(upath, owner, dest)
        f.future = fut
        try:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            f.fd = os.open(f.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            fut.set_exception(FluxError(exc.errno or errno.EIO, f"{dest}: {exc.strerror}"))
            return fut
        self.fetches[dest] = f
        self.broker.rpc("dyad.fetch", {"upath": upath}, nodeid=owner, flags=FLAG_STREAMING,
                        callback=lambda m, f=f: self._on_data(f, m))
        return fut

    def _on_data(self, f: _Fetch, m: Message) -> None:
        if f.future.done():
            return
        if m.errnum == errno.ENODATA:
            if f.size is None or f.received != f.size:
                self._abort(f, FluxError(errno.EIO, f"stream ended after {f.received} of {f.size} bytes"))
            else:
                self._complete(f)
        elif m.errnum:
            self._abort(f, FluxError(m.errnum, m.errstr))
        elif f.size is None:
            f.size = int(m.json["size"])
        else:
            # written here, on the loop: a writer thread would wait for the GIL
            # (switch interval) and measured slower
            data = m.payload
            try:
                _write_all(f.fd, data)
            except OSError as exc:
                if exc.errno == errno.EFAULT:    # the owner's mapped file was cut short
                    self._abort(f, FluxError(errno.EIO, f"{f.upath} shrank on rank {f.owner} "
                                                        "while being sent"))
                else:
                    self._abort(f, FluxError(exc.errno or errno.EIO, f"{f.tmp}: {exc.strerror}"))
                return
            f.received += len(data)
            self.counters["bytes_in"] += len(data)

    def _complete(self, f: _Fetch) -> None:
        try:
            os.close(f.fd)
            f.fd = None
            os.replace(f.tmp, f.dest)
        except OSError as exc:
            self._abort(f, FluxError(exc.errno or errno.EIO, f"{f.dest}: {exc.strerror}"))
            return
        self.fetches.pop(f.dest, None)
        self.counters["fetched"] += 1
        self.last_transfer[f.upath] = time.perf_counter() - f.started
        if len(self.last_transfer) > 64:
            self.last_transfer.pop(next(iter(self.last_transfer)))
        f.future.set_result(True)

    def _abort(self, f: _Fetch, exc: FluxError) -> None:
        """Fail a fetch: drop its temporary file, never rename it into place."""
        self.fetches.pop(f.dest, None)
        if f.fd is not None:
            os.close(f.fd)
            f.fd = None
        try:
            os.unlink(f.tmp)
        except OSError:
            pass
        if f.future is not None and not f.future.done():
            f.future.set_exception(exc)

    # -- cancellation, disconnects, stats --------------------------------------------
    def _cancel_watch(self, c: _Consumer) -> None:
        if c.watch_tag is not None:
            self.broker.rpc_cancel(c.watch_tag)
            self.broker.rpc("kvs-watch.cancel", {"matchtag": c.watch_tag}, nodeid=0,
                            callback=lambda m: None)
            c.watch_tag = None

    @request_handler("cancel")
    def cancel(self, msg: Message) -> dict:
        tag = payload_field(msg, "matchtag", int)
        for c in list(self.consumers):
            if c.msg.matchtag == tag and c.msg.route == msg.route:
                self._cancel_watch(c)
                self._answer_error(c, errno.ECANCELED, f"dyad.consume: {c.upath}: canceled")
        return {}

    def disconnect(self, route: list[str]) -> None:
        n = len(route)
        for c in list(self.consumers):
            if c.msg.route[:n] == route:
                self._cancel_watch(c)
                self.consumers.remove(c)

    @request_handler("stats")
    def stats(self, msg: Message) -> dict:
        now = time.time()
        return {"rank": self.rank, "path": self.path, "mode": self.mode,
                "chunk_size": self.chunk_size,
                "consumers": [{"upath": c.upath, "key": c.key, "namespace": c.namespace,
                               "state": c.state, "waited": round(now - c.since, 3)}
                              for c in self.consumers],
                "fetching": [{"upath": f.upath, "owner": f.owner, "received": f.received,
                              "size": f.size} for f in self.fetches.values()],
                "sending": [u for _, _, u in self.serving.values()],
                **self.counters}
