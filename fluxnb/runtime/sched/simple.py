"""``sched-simple``: first-fit over nodes, cores and gpus, in first-come first-served order."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..util.idset import IDSet
from ..util.rv1 import ResourceSet
from .base import PendingJob, SchedulerBase


@dataclass(frozen=True)
class SlotRequest:
    """A V1 jobspec's resources as counts: nslots slots of cores+gpus, on nnodes nodes."""

    nslots: int
    cores: int
    gpus: int
    nnodes: int | None
    exclusive: bool
    duration: float

    @property
    def slots_per_node(self) -> int | None:
        if self.nnodes is None:
            return None
        return self.nslots // self.nnodes


def parse_request(jobspec: dict) -> SlotRequest:
    """Counts of a V1 jobspec (``node -> slot -> core[, gpu]`` or ``slot -> ...``)."""
    resources = jobspec.get("resources")
    if not isinstance(resources, list) or len(resources) != 1:
        raise ValueError("resources: must be a list of one vertex")
    top = resources[0]
    nnodes = None
    exclusive = False
    if top.get("type") == "node":
        nnodes = _count(top, "resources[0]")
        exclusive = bool(top.get("exclusive", False))
        kids = top.get("with") or []
        if len(kids) != 1:
            raise ValueError("resources[0].with: a node must hold exactly one slot")
        slot, path = kids[0], "resources[0].with[0]"
    else:
        slot, path = top, "resources[0]"
    if slot.get("type") != "slot":
        raise ValueError(f"{path}.type: expected 'slot', got {slot.get('type')!r}")
    per = _count(slot, path)
    cores = gpus = 0
    for i, child in enumerate(slot.get("with") or []):
        kind = child.get("type")
        if kind == "core":
            cores += _count(child, f"{path}.with[{i}]")
        elif kind == "gpu":
            gpus += _count(child, f"{path}.with[{i}]", minimum=0)
        else:
            raise ValueError(f"{path}.with[{i}].type: sched-simple knows core and gpu, not {kind!r}")
    if cores < 1:
        raise ValueError(f"{path}: a slot needs at least one core")
    system = (jobspec.get("attributes") or {}).get("system") or {}
    duration = float(system.get("duration", 0) or 0)
    nslots = per * nnodes if nnodes else per
    return SlotRequest(nslots, cores, gpus, nnodes, exclusive, duration)


def _count(vertex: dict, path: str, minimum: int = 1) -> int:
    count = vertex.get("count", 1)
    if isinstance(count, dict):
        count = count.get("min", 1)
    if not isinstance(count, int) or count < minimum:
        raise ValueError(f"{path}.count: must be an integer >= {minimum}")
    return count


class SchedSimple(SchedulerBase):
    """First fit: ranks in order; each takes as many slots as fit."""

    name = "sched-simple"

    def resources_acquired(self) -> None:
        self.free_cores: dict[int, set[int]] = {}
        self.free_gpus: dict[int, set[int]] = {}
        self.ncores: dict[int, int] = {}
        self.ngpus: dict[int, int] = {}
        for rank, children in self.R.by_rank().items():
            self.free_cores[rank] = set(children.get("core", IDSet()))
            self.free_gpus[rank] = set(children.get("gpu", IDSet()))
            self.ncores[rank] = len(self.free_cores[rank])
            self.ngpus[rank] = len(self.free_gpus[rank])
        self.ranks = sorted(self.free_cores)

    def resources_shrunk(self, gone) -> None:
        for r in gone:
            for table in (self.free_cores, self.free_gpus, self.ncores, self.ngpus):
                table.pop(r, None)
        self.ranks = sorted(self.free_cores)

    def resources_grown(self, added: ResourceSet) -> None:
        for rank, children in added.by_rank().items():
            self.free_cores[rank] = set(children.get("core", IDSet()))
            self.free_gpus[rank] = set(children.get("gpu", IDSet()))
            self.ncores[rank] = len(self.free_cores[rank])
            self.ngpus[rank] = len(self.free_gpus[rank])
        self.ranks = sorted(self.free_cores)

    def describe(self) -> str:
        return (f"sched-simple: {len(self.ranks)} nodes, {sum(self.ncores.values())} cores, "
                f"{sum(self.ngpus.values())} gpus; fcfs")

    def parse(self, jobspec: dict) -> SlotRequest:
        return parse_request(jobspec)

    def unsatisfiable(self, req: SlotRequest) -> str | None:
        up = [r for r in self.ranks]
        fits = [r for r in up if self.ncores[r] >= req.cores and self.ngpus[r] >= req.gpus]
        if not fits:
            return (f"unsatisfiable request: a slot of {req.cores} cores and {req.gpus} gpus "
                    f"does not fit on any node")
        if req.nnodes is not None:
            if req.nnodes > len(up):
                return f"unsatisfiable request: {req.nnodes} nodes requested, instance has {len(up)}"
            per = req.slots_per_node
            able = [r for r in up if self._slots(r, req, whole=True) >= per]
            if len(able) < req.nnodes:
                return (f"unsatisfiable request: {req.nnodes} nodes of {per} slots "
                        f"({per * req.cores} cores) each")
            return None
        total = sum(self._slots(r, req, whole=True) for r in up)
        if total < req.nslots:
            return (f"unsatisfiable request: {req.nslots} slots of {req.cores} cores"
                    f"{f' and {req.gpus} gpus' if req.gpus else ''}, instance fits {total}")
        return None

    def _slots(self, rank: int, req: SlotRequest, whole: bool = False) -> int:
        cores = self.ncores[rank] if whole else len(self.free_cores[rank])
        gpus = self.ngpus[rank] if whole else len(self.free_gpus[rank])
        n = cores // req.cores
        if req.gpus:
            n = min(n, gpus // req.gpus)
        return n

    def match(self, req: SlotRequest, job: PendingJob) -> ResourceSet | None:
        take: dict[int, int] = {}
        up = [r for r in self.ranks if r not in self.down]
        if req.nnodes is not None:
            per = req.slots_per_node
            for r in up:
                if req.exclusive:
                    if len(self.free_cores[r]) == self.ncores[r] and len(self.free_gpus[r]) == self.ngpus[r]:
                        take[r] = per
                elif self._slots(r, req) >= per:
                    take[r] = per
                if len(take) == req.nnodes:
                    break
            if len(take) < req.nnodes:
                return None
        else:
            need = req.nslots
            for r in up:
                n = min(self._slots(r, req), need)
                if n:
                    take[r] = n
                    need -= n
                if not need:
                    break
            if need:
                return None
        by_rank = {}
        for r, n in take.items():
            if req.exclusive:
                cores, gpus = sorted(self.free_cores[r]), sorted(self.free_gpus[r])
            else:
                cores = sorted(self.free_cores[r])[: n * req.cores]
                gpus = sorted(self.free_gpus[r])[: n * req.gpus]
            self.free_cores[r].difference_update(cores)
            self.free_gpus[r].difference_update(gpus)
            children = {"core": IDSet(cores)}
            if gpus:
                children["gpu"] = IDSet(gpus)
            by_rank[r] = children
        now = time.time()
        hosts = {r: self.R.host(r) for r in by_rank}
        return ResourceSet.from_ranks(by_rank, hostnames=hosts, starttime=now,
                                      expiration=now + req.duration if req.duration else 0.0)

    def claim(self, jobid: int, rs: ResourceSet, jobspec) -> None:
        for r, children in rs.by_rank().items():
            if r in self.free_cores:  # a rank a shrink removed is no longer tracked
                self.free_cores[r].difference_update(children.get("core", ()))
                self.free_gpus[r].difference_update(children.get("gpu", ()))

    def release(self, jobid: int, rs: ResourceSet) -> None:
        for r, children in rs.by_rank().items():
            if r in self.free_cores:
                self.free_cores[r].update(children.get("core", ()))
                self.free_gpus[r].update(children.get("gpu", ()))
