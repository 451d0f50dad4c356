"""The ``resource`` service: the instance's resources (R), and which ranks are up.

R is built from the instance configuration (nodes x cores x gpus, host names) and
written to the KVS as ``resource.R``, as flux-core does. The scheduler acquires it
with ``resource.acquire`` (a stream: the resources first, then up/down changes).
"""

from __future__ import annotations

import errno
import time

from .kvs.writer import val
from .message import FLAG_NORESPONSE, FLAG_STREAMING, FluxError, Message
from .service import DEFERRED, Service, payload_field, request_handler
from .util.idset import IDSet
from .util.rv1 import ResourceSet


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
    carry ``{up}`` or ``{down}`` changes: returns None and ``down`` updated.
    """
    if "resources" in body:
        R = ResourceSet(body["resources"])
        up = IDSet(body.get("up", ""))
        return R, IDSet([r for r in R.ranks if r not in up])
    if "down" in body:
        down = down | IDSet(body["down"])
    if "up" in body:
        down = down - IDSet(body["up"])
    return None, down


class ResourceService(Service):
    name = "resource"

    def start(self) -> None:
        if "R" in self.broker.config:
            self.R = ResourceSet(self.broker.config["R"])
        else:
            self.R = build_R(self.broker.config)
        self.drained: dict[int, dict] = {}
        self.acquirers: list[Message] = []
        self.broker.online_listeners.append(self._rank_online)
        self.broker.rpc("kvs.commit", {"ops": [{"key": "resource.R", "flags": 0,
                                                 "dirent": val(self.R.encode())}]},
                        nodeid=0, flags=FLAG_NORESPONSE)

    def _rank_online(self, rank: int) -> None:
        if rank in self.R.ranks and rank not in self.drained:
            self._notify({"up": str(rank)})

    def stop(self) -> None:
        if self._rank_online in self.broker.online_listeners:
            self.broker.online_listeners.remove(self._rank_online)
        for m in self.acquirers:
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

    @request_handler("drain")
    def drain(self, msg: Message) -> dict:
        ids = self._targets(msg)
        reason = payload_field(msg, "reason", str, "")
        for r in ids:
            self.drained.setdefault(r, {"timestamp": time.time(), "reason": reason})
        self._notify({"down": ids.encode()})
        return {}

    @request_handler("undrain")
    def undrain(self, msg: Message) -> dict:
        ids = self._targets(msg)
        not_drained = [r for r in ids if r not in self.drained]
        if not_drained:
            raise FluxError(errno.EINVAL, f"rank {not_drained[0]} is not drained")
        for r in ids:
            self.drained.pop(r, None)
        self._notify({"up": (ids - self._down()).encode()})
        return {}

    def _notify(self, change: dict) -> None:
        for m in self.acquirers:
            self.respond(m, change)

    def disconnect(self, route) -> None:
        self.acquirers = [m for m in self.acquirers if m.route[:len(route)] != route]
