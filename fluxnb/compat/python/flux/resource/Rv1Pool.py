"""``flux.resource.Rv1Pool``: an R (RFC 20) resource pool a Python scheduler
allocates from, with flux-core's names: ``alloc(jobid, request)`` places a
:class:`ResourceRequest` worst-fit (nodes with the most free cores first),
``free()`` returns it (whole, or rank by rank as housekeeping does),
``check_feasibility()`` tells a request that can never fit
(:class:`InfeasibleRequest`) from one that must wait
(:class:`InsufficientResources`).

R is read and written through :class:`fluxnb.runtime.util.rv1.ResourceSet`.

>>> pool = Rv1Pool({"version": 1, "execution": {"R_lite": [
...     {"rank": "0-1", "children": {"core": "0-3"}}], "nodelist": ["n[0-1]"]}})
>>> a = pool.alloc(1, ResourceRequest(None, ResourceCount(6, 6), 1, 0, 0.0, None, False))
>>> a.dumps(), pool.copy_allocated().count("core")
('rank0/core[0-3] rank1/core[0-1]', 6)
"""

from __future__ import annotations

import errno
import json
import time

from flux.idset import IDset
from flux.resource.ResourceCount import ResourceCount
from fluxnb.runtime.util.rv1 import ResourceSet as _RSet
from fluxnb.runtime.util.rv1 import _matches

__all__ = ["InfeasibleRequest", "InsufficientResources", "ResourceRequest", "Rv1Pool"]

MAX_RESOURCE_DEPTH = 64


class InsufficientResources(OSError):
    """Not enough resources available right now: retry after a free."""

    def __init__(self, *args):
        super().__init__(*((errno.ENOSPC,) + args if len(args) == 1 else args))


class InfeasibleRequest(OSError):
    """A request this pool can never satisfy."""

    def __init__(self, *args):
        super().__init__(*((errno.EOVERFLOW,) + args if len(args) == 1 else args))


class ResourceRequest:
    """What a job asks for: ``node_count`` (a ResourceCount, or None for
    slots anywhere) of nodes each holding ``slot_count`` slots (the total
    when node_count is None), ``slot_size`` cores and ``gpu_per_slot`` GPUs a
    slot, ``duration`` seconds (0: unlimited), an RFC 31 ``constraint``,
    ``exclusive`` whole nodes, and the ``jobspec`` it came from."""

    __slots__ = ("node_count", "slot_count", "slot_size", "gpu_per_slot", "duration",
                 "constraint", "exclusive", "jobspec")

    def __init__(self, node_count, slot_count, slot_size, gpu_per_slot, duration,
                 constraint, exclusive, jobspec=None):
        self.node_count = node_count
        self.slot_count = slot_count
        self.slot_size = slot_size
        self.gpu_per_slot = gpu_per_slot
        self.duration = duration
        self.constraint = constraint
        self.exclusive = exclusive
        self.jobspec = jobspec

    @property
    def nnodes(self):
        return self.node_count.min if self.node_count is not None else 0

    @property
    def nnodes_max(self):
        return self.node_count.max if self.node_count is not None else 0

    @property
    def nslots(self):
        if self.node_count is None:
            return self.slot_count.min
        return self.slot_count.min * self.node_count.min

    @property
    def nslots_max(self):
        if self.node_count is None:
            return self.slot_count.max
        if self.node_count.max is None or self.slot_count.max is None:
            return None
        return self.slot_count.max * self.node_count.max

    @classmethod
    def from_jobspec(cls, jobspec):
        """Read the resource graph of a jobspec (V1 or not): the last node
        and slot vertices and the cores/GPUs under the slot; counts of other
        vertices above the node multiply the node count. ValueError if it
        cannot be read."""
        resources = jobspec.get("resources") or []
        if not resources:
            raise ValueError("jobspec has no resources")
        st = {"nnodes": None, "nslots": None, "slot_size": None, "gpu": 0,
              "exclusive": False, "nodefactor": 1}

        def walk(vertices, factor, depth):
            if depth > MAX_RESOURCE_DEPTH:
                raise ValueError(f"jobspec resource nesting exceeds maximum depth "
                                 f"{MAX_RESOURCE_DEPTH}")
            for v in vertices:
                if not isinstance(v, dict):
                    raise ValueError("jobspec resources must be objects")
                rtype = v.get("type", "")
                count = ResourceCount.from_count_spec(v.get("count", 1))
                children = v.get("with") or []
                if rtype == "node":
                    st["nnodes"], st["nodefactor"] = count, factor
                    st["exclusive"] = st["exclusive"] or bool(v.get("exclusive"))
                    walk(children, 1, depth + 1)
                elif rtype == "slot":
                    st["nslots"] = count
                    if v.get("exclusive") and st["nnodes"] is None:
                        st["exclusive"] = True
                    walk(children, factor * count.min, depth + 1)
                elif rtype == "core":
                    st["slot_size"] = count.min
                elif rtype == "gpu":
                    st["gpu"] = count.min
                else:
                    walk(children, factor * count.min, depth + 1)

        walk(resources, 1, 0)
        nslots = st["nslots"] or ResourceCount(1, 1)
        node_count = st["nnodes"]
        if node_count is not None:
            node_count = node_count.scaled(st["nodefactor"])
        elif st["exclusive"]:
            node_count, nslots = nslots, ResourceCount(1, 1)
        attrs = jobspec.get("attributes") or {}
        system = attrs.get("system")
        if jobspec.get("version") == 1:
            if not isinstance(system, dict):
                raise ValueError("jobspec attributes.system is missing")
            if "duration" not in system:
                raise ValueError("jobspec attributes.system.duration is missing")
        system = system if isinstance(system, dict) else {}
        constraint = system.get("constraints") or None
        return cls(node_count, nslots, st["slot_size"] or 1, st["gpu"],
                   float(system.get("duration", 0.0) or 0.0), constraint,
                   st["exclusive"], jobspec)


def _all(ranks):
    return isinstance(ranks, str) and ranks == "all"


def _ids(ranks):
    return set(IDset(ranks) if not isinstance(ranks, (set, frozenset, list)) else ranks)


class Rv1Pool:
    """A pool of R resources by rank, tracking up/down and allocations."""

    def __init__(self, R, **kwargs):
        if isinstance(R, str):
            R = json.loads(R)
        if not isinstance(R, dict):
            raise TypeError(f"Rv1Pool: R must be a dict or JSON string, not {type(R).__name__}")
        rs = _RSet(R)
        self._init_empty()
        for rank, children in rs.by_rank().items():
            self._ranks[rank] = self._info(rs.host(rank), children.get("core", ()),
                                           children.get("gpu", ()))
        self._properties = {k: set(v) for k, v in rs.properties.items()}
        self._starttime, self._expiration = rs.starttime, rs.expiration
        self._nslots = rs.nslots
        self._scheduling = R.get("scheduling")

    # -- state --------------------------------------------------------------
    def _init_empty(self):
        self._ranks = {}
        self._properties = {}
        self._job_state = {}
        self._starttime = self._expiration = 0.0
        self._nslots = None
        self._scheduling = None

    @staticmethod
    def _info(hostname, cores, gpus, up=True):
        return {"hostname": hostname, "cores": set(cores), "gpus": set(gpus),
                "allocated_cores": set(), "allocated_gpus": set(), "up": up}

    def _init_from_state(self, source):
        """Hook: copy subclass state from ``source`` into a new pool."""

    def _new(self, ranks, keep_alloc=False, props=None):
        new = type(self).__new__(type(self))
        Rv1Pool._init_empty(new)
        for rank, info in ranks.items():
            new._ranks[rank] = {k: (set(v) if isinstance(v, set) else v) for k, v in info.items()}
            if not keep_alloc:
                new._ranks[rank]["allocated_cores"] = set()
                new._ranks[rank]["allocated_gpus"] = set()
        source = self._properties if props is None else props
        for name, pranks in source.items():
            mine = pranks & set(ranks)
            if mine:
                new._properties[name] = set(mine)
        new._starttime, new._expiration = self._starttime, self._expiration
        new._scheduling = self._scheduling
        new._init_from_state(self)
        return new

    def copy(self):
        """An independent copy, allocations and up/down included."""
        new = self._new(self._ranks, keep_alloc=True)
        new._job_state = dict(self._job_state)
        new._nslots = self._nslots
        return new

    def _copy_from_ranks(self, ranks):
        """A pool of ``ranks`` only (their resources, none allocated)."""
        return self._new({r: i for r, i in self._ranks.items() if r in ranks})

    def copy_down(self):
        return self._new({r: i for r, i in self._ranks.items() if not i["up"]})

    def copy_allocated(self):
        ranks = {}
        for r, i in self._ranks.items():
            if i["allocated_cores"] or i["allocated_gpus"]:
                ranks[r] = dict(i, cores=set(i["allocated_cores"]), gpus=set(i["allocated_gpus"]))
        return self._new(ranks)

    def remove_ranks(self, ranks):
        for r in list(self._ranks) if _all(ranks) else _ids(ranks):
            self._ranks.pop(r, None)
        for name in list(self._properties):
            self._properties[name] &= set(self._ranks)
            if not self._properties[name]:
                del self._properties[name]

    def _set_up(self, ranks, up):
        targets = self._ranks if _all(ranks) else _ids(ranks)
        for r in targets:
            if r in self._ranks:
                self._ranks[r]["up"] = up

    def mark_up(self, ranks):
        self._set_up(ranks, True)

    def mark_down(self, ranks):
        self._set_up(ranks, False)

    # -- queries ------------------------------------------------------------
    def count(self, name):
        key = {"core": "cores", "gpu": "gpus"}.get(name)
        return sum(len(i[key]) for i in self._ranks.values()) if key else 0

    def nnodes(self):
        return len(self._ranks)

    @property
    def expiration(self):
        return self._expiration

    @expiration.setter
    def expiration(self, value):
        self._expiration = float(value)

    def set_expiration(self, expiration):
        self.expiration = expiration

    def set_starttime(self, starttime):
        self._starttime = float(starttime)

    def _rset(self):
        by_rank = {r: {"core": sorted(i["cores"]), "gpu": sorted(i["gpus"])}
                   for r, i in self._ranks.items()}
        hosts = {r: i["hostname"] for r, i in self._ranks.items() if i["hostname"]}
        props = {k: sorted(v) for k, v in self._properties.items() if v}
        rs = _RSet.from_ranks(by_rank, hostnames=hosts or None, properties=props,
                              starttime=self._starttime, expiration=self._expiration)
        rs.nslots, rs.scheduling = self._nslots, self._scheduling
        return rs

    def to_dict(self):
        return self._rset().to_R()

    def encode(self):
        return json.dumps(self.to_dict())

    def dumps(self):
        return self._rset().dumps()

    __str__ = dumps

    def parse_resource_request(self, jobspec):
        return ResourceRequest.from_jobspec(jobspec)

    # -- feasibility ----------------------------------------------------------
    @staticmethod
    def _constraint(request):
        con = request.constraint
        if isinstance(con, str):
            con = json.loads(con)
        return con or None

    def _matching(self, request):
        con = self._constraint(request)
        if con is None:
            return list(self._ranks.items())
        return [(r, i) for r, i in self._ranks.items() if _matches(con, r, _Node(i, r, self))]

    @staticmethod
    def _slots_on(ncores, ngpus, request):
        slots = ncores // request.slot_size if request.slot_size else ncores
        if request.gpu_per_slot:
            slots = min(slots, ngpus // request.gpu_per_slot)
        return slots

    def _check_feasibility(self, request):
        """Raise InfeasibleRequest if ``request`` could never be satisfied,
        even with every resource up and free. Subclasses may add checks."""
        for what, count in (("node", request.node_count), ("slot", request.slot_count)):
            if count is not None and count._values is not None:
                raise InfeasibleRequest(f"stepped {what} counts are not supported")
        nodes = self._matching(request)
        if request.nnodes:
            spn = request.slot_count.min
            fit = [r for r, i in nodes
                   if self._slots_on(len(i["cores"]), len(i["gpus"]), request) >= spn]
            if len(fit) < request.nnodes:
                raise InfeasibleRequest(f"request for {request.nnodes} nodes of {spn} slots "
                                        f"can never be satisfied ({len(fit)} nodes can hold them)")
            return
        capacity = sum(self._slots_on(len(i["cores"]), len(i["gpus"]), request)
                       for _, i in nodes)
        if capacity < request.nslots:
            raise InfeasibleRequest(f"request for {request.nslots} slots of {request.slot_size} "
                                    f"cores can never be satisfied (at most {capacity} fit)")

    def check_feasibility(self, request):
        self._check_feasibility(request)

    # -- allocation -------------------------------------------------------------
    def _candidates(self, request):
        out = []
        for r, i in self._matching(request):
            if not i["up"]:
                continue
            free_cores = sorted(i["cores"] - i["allocated_cores"])
            free_gpus = sorted(i["gpus"] - i["allocated_gpus"])
            out.append((r, i, free_cores, free_gpus))
        out.sort(key=lambda c: (-len(c[2]), c[0]))  # worst fit: most free cores first
        return out

    def _select_resources(self, candidates, request):
        """Choose resources from ``candidates`` (``(rank, info, free_cores,
        free_gpus)``, in preference order); return ``({rank: (cores, gpus)},
        nslots)`` or raise InsufficientResources."""
        chosen, nslots = {}, 0
        ss, gs = request.slot_size, request.gpu_per_slot
        if request.nnodes:
            spn = request.slot_count.min
            limit = request.nnodes_max
            for rank, info, fc, fg in candidates:
                if limit is not None and len(chosen) >= limit:
                    break
                if request.exclusive:
                    if info["allocated_cores"] or info["allocated_gpus"] \
                            or self._slots_on(len(fc), len(fg), request) < spn:
                        continue
                    chosen[rank] = (fc, fg)
                elif self._slots_on(len(fc), len(fg), request) >= spn:
                    chosen[rank] = (fc[:spn * ss], fg[:spn * gs])
            if len(chosen) < request.nnodes:
                raise InsufficientResources(f"{len(chosen)} of {request.nnodes} nodes available")
            return chosen, spn * len(chosen)
        want = request.nslots_max
        for rank, info, fc, fg in candidates:
            if want is not None and nslots >= want:
                break
            n = self._slots_on(len(fc), len(fg), request)
            if want is not None:
                n = min(n, want - nslots)
            if n > 0:
                chosen[rank] = (fc[:n * ss], fg[:n * gs])
                nslots += n
        if nslots < request.nslots:
            raise InsufficientResources(f"{nslots} of {request.nslots} slots available")
        return chosen, nslots

    def alloc(self, jobid, request):
        """Allocate ``request`` for ``jobid``; return the allocation as a pool."""
        self._check_feasibility(request)
        chosen, nslots = self._select_resources(self._candidates(request), request)
        ranks = {}
        for rank, (cores, gpus) in sorted(chosen.items()):
            info = self._ranks[rank]
            info["allocated_cores"].update(cores)
            info["allocated_gpus"].update(gpus)
            ranks[rank] = dict(info, cores=set(cores), gpus=set(gpus))
        local = {k: v for k, v in self._properties.items() if not k.startswith("+")}
        result = self._new(ranks, props=local)
        end = time.time() + request.duration if request.duration else self._expiration
        result._expiration = end
        result._nslots = nslots
        self._job_state[jobid] = (end, result)
        return result

    def _as_pool(self, R):
        return R if isinstance(R, Rv1Pool) else Rv1Pool(R)

    def _release(self, pool):
        for rank, info in pool._ranks.items():
            mine = self._ranks.get(rank)
            if mine is not None:
                mine["allocated_cores"] -= info["cores"]
                mine["allocated_gpus"] -= info["gpus"]

    def free(self, jobid, R=None, final=True):
        """Return ``jobid``'s resources: all it still holds (``R`` None), or
        the ranks of ``R``; the job is forgotten on ``final``. Unknown jobs
        are ignored; ranks the job does not hold raise ValueError."""
        state = self._job_state.get(jobid)
        if state is None:
            return
        end, held = state
        if R is None:
            self._release(held)
            del self._job_state[jobid]
            return
        part = self._as_pool(R)
        extra = set(part._ranks) - set(held._ranks)
        if extra:
            raise ValueError(f"job {jobid}: ranks {IDset(sorted(extra))} are not allocated to it")
        rest = set(held._ranks) - set(part._ranks)
        if final and rest:
            raise ValueError(f"job {jobid}: final free leaves ranks {IDset(sorted(rest))} "
                             f"allocated")
        self._release(held._copy_from_ranks(set(part._ranks)))
        if final:
            del self._job_state[jobid]
        else:
            remaining = held._copy_from_ranks(rest)
            remaining._expiration, remaining._nslots = held._expiration, held._nslots
            self._job_state[jobid] = (end, remaining)

    def register_alloc(self, jobid, R):
        """Mark an existing allocation (after a scheduler restart) as busy."""
        pool = self._as_pool(R)
        missing = set(pool._ranks) - set(self._ranks)
        if missing:
            raise ValueError(f"job {jobid}: ranks {IDset(sorted(missing))} are not in the pool")
        for rank, info in pool._ranks.items():
            self._ranks[rank]["allocated_cores"].update(info["cores"])
            self._ranks[rank]["allocated_gpus"].update(info["gpus"])
        self._job_state[jobid] = (pool.expiration, pool)

    def update_expiration(self, jobid, expiration):
        state = self._job_state.get(jobid)
        if state is not None:
            state[1]._expiration = float(expiration)
            self._job_state[jobid] = (float(expiration), state[1])


class _Node:
    """What RFC 31 matching needs of a rank (its properties and hostname)."""

    __slots__ = ("properties", "hostname")

    def __init__(self, info, rank, pool):
        self.hostname = info["hostname"]
        self.properties = {k for k, v in pool._properties.items() if rank in v}
