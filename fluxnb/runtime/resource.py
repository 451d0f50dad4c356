"""The ``resource`` service: the instance's resources (R), and which ranks are up.

R is built from the instance configuration (nodes x cores x gpus, host names) and
written to the KVS as ``resource.R``, as flux-core does. The scheduler acquires it
with ``resource.acquire`` (a stream: the resources first, then up/down changes).

Events that should outlive the instance go to the KVS eventlog ``resource.eventlog``
(flux-resource(1), RESOURCE INVENTORY): ``resource-define`` each time the service
starts, ``drain`` and ``undrain``. On a restart from a state directory the drained
ranks are rebuilt from it: drained nodes stay drained.

The instance can shrink and grow (``flux resource shrink|grow TARGETS``): ``resource.shrink``
removes ranks from R (acquirers get RFC 28's ``{down, shrink}``; an event
``resource.shrink`` tells the job manager, which raises a ``node-failure`` exception on
jobs running there); ``resource.grow`` puts back ranks the instance was defined with
(acquirers get ``{grow: R of those ranks, up}``). Both are recorded in the eventlog
(``shrink``/``grow``) and rewrite ``resource.R``.
"""

from __future__ import annotations

import errno
import time

from .kvs.writer import KVSWriter
from .message import FLAG_STREAMING, FluxError, Message
from .service import DEFERRED, Service, payload_field, request_handler
from .util.eventlog import decode as decode_eventlog, encode_event
from .util.idset import IDSet
from .util.rv1 import ResourceSet

EVENTLOG = "resource.eventlog"
#: ``resource.drain`` modes: what to do with targets that are already drained
DRAIN_MODES = {None: 0, "update": 0, "overwrite": 1, "force-overwrite": 2}


def build_R(config: dict) -> ResourceSet:
    """R of an instance from its resource configuration."""
    res = config.get("resource", {})
    nodes = int(res.get("nodes", 1))
    cores = int(res.get("cores_per_node", 1))
    gpus = int(res.get("gpus_per_node", 0))
    hosts = config.get("hosts") or [f"node{r}" for r in range(nodes)]
    by_rank = {}
    for r in range(nodes):
        children = {"core": f"0-{cores - 1}" if cores > 1 else "0"}
        if gpus:
            children["gpu"] = f"0-{gpus - 1}" if gpus > 1 else "0"
        by_rank[r] = children
    return ResourceSet.from_ranks(by_rank, hostnames=hosts)


def acquire_update(body: dict, down: IDSet) -> tuple[ResourceSet | None, IDSet]:
    """Decode one ``resource.acquire`` response for a scheduler.

    The first carries ``{resources, up}``: returns R and the ranks not up. Later ones
    carry ``{up}``, ``{down}`` or ``{down, shrink}`` changes: returns None and ``down``
    updated (ranks removed by a shrink are no longer down: they are gone).
    """
    if "resources" in body:
        R = ResourceSet(body["resources"])
        up = IDSet(body.get("up", ""))
        return R, IDSet([r for r in R.ranks if r not in up])
    if "down" in body:
        down = down | IDSet(body["down"])
    if "up" in body:
        down = down - IDSet(body["up"])
    if "shrink" in body:
        down = down - IDSet(body["shrink"])
    return None, down


def acquire_change(body: dict, R: ResourceSet) -> tuple[ResourceSet, IDSet, ResourceSet | None]:
    """Apply a later response's ``shrink``/``grow`` to R: ``(new R, ranks gone, R added)``."""
    gone = IDSet(body["shrink"]) & R.ranks if "shrink" in body else IDSet()
    if gone:
        R = R.remove_ranks(gone)
    added = ResourceSet(body["grow"]) if "grow" in body else None
    if added is not None:
        R = R | added
    return R, gone, added


class ResourceService(Service):
    name = "resource"

    def start(self) -> None:
        if "R" in self.broker.config:
            self.R = ResourceSet(self.broker.config["R"])
        else:
            self.R = build_R(self.broker.config)
        #: R as defined when the service started: what ``grow`` may put back
        self.defined = self.R.copy()
        self.drained: dict[int, dict] = {}
        self.acquirers: list[Message] = []
        #: resource.journal: every event since the start (also those not in the KVS
        #: eventlog, such as online), and the consumers following it
        self.journal: list[dict] = []
        self.journal_consumers: list[Message] = []
        self.writer = KVSWriter(self.broker, lambda what, exc: self.log(
            "err", f"resource: cannot write {what}: {exc}"))
        self._restore()
        self.broker.online_listeners.append(self._rank_online)
        self.broker.lost_listeners.append(self._ranks_lost)
        self.writer.put_raw("resource.R", self.R.encode())
        ranks = self.R.ranks
        self._journal("restart", {"nodelist": ",".join(self.R.host(r) or "" for r in ranks),
                                  "online": "", "ranks": IDSet(ranks).encode()})
        up = sorted(r for r in self.broker.online_ranks if r in ranks)
        if up:
            self._journal("online", {"idset": IDSet(up).encode()})
        self._post("resource-define", {"method": "job-info" if "R" in self.broker.config
                                       else "configuration"})

    def _post(self, name: str, context: dict, timestamp: float | None = None) -> None:
        ev = self._journal(name, context, timestamp)
        self.writer.append(EVENTLOG, encode_event(name, context, ev["timestamp"]))

    def _journal(self, name: str, context: dict, timestamp: float | None = None) -> dict:
        """Record an event in the journal (strictly later than the last) and send it
        to the journal's consumers."""
        ts = time.time() if timestamp is None else timestamp
        if self.journal and ts <= self.journal[-1]["timestamp"]:
            ts = self.journal[-1]["timestamp"] + 1e-6
        ev = {"timestamp": ts, "name": name, "context": dict(context)}
        self.journal.append(ev)
        for m in self.journal_consumers:
            self.respond(m, self._journal_response([ev]))
        return ev

    def _journal_response(self, events: list[dict]) -> dict:
        resp: dict = {"events": events}
        if len(events) == 1 and events[0]["name"] == "resource-define":
            resp["R"] = self.R.to_R()
        return resp

    @request_handler("journal")
    def journal_(self, msg: Message):
        """flux-core's resource.journal: the events so far (in batches; resource-define
        alone, with R), an empty response, then each event as it is posted."""
        if not msg.flags & FLAG_STREAMING:
            raise FluxError(errno.EPROTO, "journal requires streaming RPC flag")
        batch: list[dict] = []
        for ev in self.journal:
            if ev["name"] == "resource-define":
                if batch:
                    self.respond(msg, {"events": batch})
                    batch = []
                self.respond(msg, self._journal_response([ev]))
                continue
            batch.append(ev)
            if len(batch) >= 100:
                self.respond(msg, {"events": batch})
                batch = []
        if batch:
            self.respond(msg, {"events": batch})
        self.respond(msg, {"events": []})
        self.journal_consumers.append(msg)
        return DEFERRED

    @request_handler("journal-cancel")
    def journal_cancel(self, msg: Message):
        tag = payload_field(msg, "matchtag", int)
        for m in list(self.journal_consumers):
            if m.matchtag == tag and m.route == msg.route:
                self.journal_consumers.remove(m)
                self.respond_error(m, errno.ENODATA)
        return {}

    def _apply_drain(self, ranks, reason: str, overwrite: int, stamp: float) -> None:
        """Record a drain: ranks already drained keep theirs unless ``overwrite`` (1: the
        reason, 2: the time too), as ``flux resource drain [-f|-ff]``."""
        for r in ranks:
            old = self.drained.get(r)
            if old is not None and not overwrite:
                continue
            keep = old is not None and overwrite < 2
            self.drained[r] = {"timestamp": old["timestamp"] if keep else stamp, "reason": reason}

    def _restore(self) -> None:
        """Drained ranks from ``resource.eventlog``, after a restart on a state directory."""
        kvs = self.broker.services.get("kvs")
        if kvs is None or not self.broker.attrs.get("statedir"):
            return
        try:
            events = decode_eventlog(kvs.kvs.get_raw("primary", EVENTLOG).decode())
        except Exception:  # a new state directory: nothing to restore
            return
        for ev in events:
            ctx = ev.get("context") or {}
            try:
                ids = [r for r in IDSet(ctx.get("idset", "")) if r in self.R.ranks]
            except ValueError:
                continue
            if ev["name"] == "drain":
                self._apply_drain(ids, ctx.get("reason", ""), ctx.get("overwrite", 0), ev["timestamp"])
            elif ev["name"] == "undrain":
                for r in ids:
                    self.drained.pop(r, None)
        if self.drained:
            self.log("info", f"resource: ranks {IDSet(sorted(self.drained)).encode()} "
                             "remain drained from before the restart")

    def _rank_online(self, rank: int) -> None:
        if rank in self.R.ranks:
            self._journal("online", {"idset": str(rank)})
        if rank in self.R.ranks and rank not in self.drained:
            self._notify({"up": str(rank)})

    def _ranks_lost(self, ranks: list[int], why: str) -> None:
        """Lost brokers' nodes go offline: the scheduler stops using them (flux-core
        posts ``offline`` to resource.eventlog, as here)."""
        gone = IDSet(sorted(r for r in ranks if r in self.R.ranks))
        if not gone:
            return
        self._post("offline", {"idset": gone.encode()})
        self._notify({"down": gone.encode()})

    def stop(self) -> None:
        if self._ranks_lost in self.broker.lost_listeners:
            self.broker.lost_listeners.remove(self._ranks_lost)
        if self._rank_online in self.broker.online_listeners:
            self.broker.online_listeners.remove(self._rank_online)
        for m in self.acquirers + self.journal_consumers:
            self.respond_error(m, errno.ENODATA)

    def _down(self) -> IDSet:
        return IDSet(sorted(r for r in self.R.ranks if r not in self.broker.online_ranks))

    @request_handler("acquire")
    def acquire(self, msg: Message):
        if not msg.flags & FLAG_STREAMING:
            raise FluxError(errno.EPROTO, "resource.acquire: needs a streaming RPC")
        self.acquirers.append(msg)
        up = IDSet(sorted(r for r in self.R.ranks if r not in self.drained)) - self._down()
        self.respond(msg, {"resources": self.R.to_R(), "up": up.encode()})
        return DEFERRED

    @request_handler("status")
    def status(self, msg: Message) -> dict:
        return {"R": self.R.to_R(), "online": IDSet(self.broker.online_ranks & set(self.R.ranks)).encode(),
                "offline": self._down().encode(),
                "drain": {str(r): d for r, d in self.drained.items()}}

    def _targets(self, msg: Message) -> IDSet:
        spec = payload_field(msg, "targets", str)
        try:
            ids = IDSet(spec) if spec != "all" else IDSet(list(self.R.ranks))
        except ValueError as exc:
            raise FluxError(errno.EINVAL, f"targets: {exc}") from None
        ranks = self.R.ranks
        bad = [r for r in ids if r not in ranks]
        if bad:
            raise FluxError(errno.EINVAL, f"targets: rank {bad[0]} is not in the instance")
        return ids

    def _hosts(self, ids) -> str:
        from .util.hostlist import Hostlist
        return Hostlist([self.R.host(r) or str(r) for r in ids]).encode()

    def _answer_after_commit(self, msg: Message) -> None:
        self.writer.after("primary", lambda: self.respond(msg, {}))

    @request_handler("drain")
    def drain(self, msg: Message):
        """Drain ``targets``; ``mode`` says what to do with those already drained.

        No mode: fail, naming them. ``update``: leave their reason and time.
        ``overwrite``: replace their reason. ``force-overwrite``: their time too.
        """
        ids = self._targets(msg)
        reason = payload_field(msg, "reason", str, "")
        mode = payload_field(msg, "mode", str, None)
        if mode not in DRAIN_MODES:
            raise FluxError(errno.EINVAL, f"resource.drain: unknown mode {mode!r} "
                                          "(one of update, overwrite, force-overwrite)")
        already = IDSet(r for r in ids if r in self.drained)
        if already and mode is None:
            raise FluxError(errno.EEXIST, f"ranks {already.encode()} already drained "
                                          "(--force overwrites the reason, --update keeps it)")
        overwrite = DRAIN_MODES[mode]
        change = IDSet(r for r in ids if r not in already or overwrite)
        if change:
            stamp = time.time()
            self._post("drain", {"idset": change.encode(), "nodelist": self._hosts(change),
                                 "reason": reason, "overwrite": overwrite}, stamp)
            self._apply_drain(change, reason, overwrite, stamp)
            newly = change - already
            if newly:
                self._notify({"down": newly.encode()})
        self._answer_after_commit(msg)
        return DEFERRED

    @request_handler("undrain")
    def undrain(self, msg: Message):
        """Undrain ``targets``; fail on ones not drained unless ``mode`` is ``force``."""
        ids = self._targets(msg)
        mode = payload_field(msg, "mode", str, None)
        if mode not in (None, "force"):
            raise FluxError(errno.EINVAL, f"resource.undrain: unknown mode {mode!r} (only force)")
        not_drained = IDSet(r for r in ids if r not in self.drained)
        if not_drained and mode is None:
            raise FluxError(errno.EINVAL, f"ranks {not_drained.encode()} are not drained "
                                          "(--force ignores that)")
        change = ids - not_drained
        if change:
            self._post("undrain", {"idset": change.encode(), "nodelist": self._hosts(change)})
            for r in change:
                self.drained.pop(r, None)
            self._notify({"up": (change - self._down()).encode()})
        self._answer_after_commit(msg)
        return DEFERRED

    def _target_ranks(self, msg: Message, pool: ResourceSet) -> IDSet:
        """``targets`` (an idset or hostlist) as ranks of ``pool``."""
        spec = payload_field(msg, "targets", str)
        try:
            ids = IDSet(spec)
        except ValueError:
            try:
                ids = pool.host_ranks(spec)
            except ValueError as exc:
                raise FluxError(errno.EINVAL, f"{msg.topic}: targets: {exc}") from None
        if not ids:
            raise FluxError(errno.EINVAL, f"{msg.topic}: targets: empty")
        return ids

    @request_handler("shrink")
    def shrink(self, msg: Message):
        """Remove ``targets`` from the instance's resources."""
        ids = self._target_ranks(msg, self.R)
        bad = [r for r in ids if r not in self.R.ranks]
        if bad:
            raise FluxError(errno.ENOENT, f"{msg.topic}: rank {bad[0]} is not in the instance's "
                            "resources" + (" (it was removed)" if bad[0] in self.defined.ranks else ""))
        if 0 in ids:
            raise FluxError(errno.EINVAL, f"{msg.topic}: rank 0 hosts the instance and cannot be removed")
        hosts = self._hosts(ids)
        self.R = self.R.remove_ranks(ids)
        for r in ids:
            self.drained.pop(r, None)
        self._post("shrink", {"idset": ids.encode(), "nodelist": hosts})
        self.writer.put_raw("resource.R", self.R.encode())
        self._notify({"down": ids.encode(), "shrink": ids.encode()})
        self.broker.publish("resource.shrink", {"idset": ids.encode(), "nodelist": hosts})
        self.log("info", f"resource: removed rank{'s' if len(ids) > 1 else ''} {ids.encode()} ({hosts})")
        self._answer_after_commit(msg)
        return DEFERRED

    @request_handler("grow")
    def grow(self, msg: Message):
        """Put back ``targets`` that the instance was defined with and a shrink removed."""
        ids = self._target_ranks(msg, self.defined)
        present = [r for r in ids if r in self.R.ranks]
        if present:
            raise FluxError(errno.EEXIST, f"{msg.topic}: rank {present[0]} "
                            f"({self.R.host(present[0]) or present[0]}) is already in the instance")
        unknown = [r for r in ids if r not in self.defined.ranks]
        if unknown:
            raise FluxError(errno.ENOENT, f"{msg.topic}: rank {unknown[0]} was never part of this "
                            f"instance (it has ranks {self.defined.ranks.encode()})")
        added = self.defined.copy_ranks(ids)
        self.R = self.R | added
        self._post("grow", {"idset": ids.encode(), "nodelist": self._hosts(ids)})
        self.writer.put_raw("resource.R", self.R.encode())
        up = ids - self._down()
        self._notify({"grow": added.to_R(), "up": up.encode()})
        self.broker.publish("resource.grow", {"idset": ids.encode(), "nodelist": self._hosts(ids)})
        self.log("info", f"resource: added rank{'s' if len(ids) > 1 else ''} {ids.encode()} "
                         f"({self._hosts(ids)})")
        self._answer_after_commit(msg)
        return DEFERRED

    def _notify(self, change: dict) -> None:
        for m in self.acquirers:
            self.respond(m, change)

    def disconnect(self, route) -> None:
        self.acquirers = [m for m in self.acquirers if m.route[:len(route)] != route]
        self.journal_consumers = [m for m in self.journal_consumers
                                  if m.route[:len(route)] != route]
