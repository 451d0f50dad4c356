"""Fluence: pod groups scheduled as Fluxion jobs on a resource graph of the nodes.

The nodes become a Fluxion resource graph, ``cluster > zone > node > core | gpu
| memory`` (one ``core`` vertex per whole allocatable cpu, one ``gpu`` per
``nvidia.com/gpu``, and the allocatable memory as ``memory`` vertices of
``memory_chunk`` GB each: Fluxion gives a slot whole pool vertices, so one
vertex per node would let one pod take all of a node's memory).

Each PodGroup becomes a jobspec (:func:`podgroup_jobspec`): ``minMember``
slots, each holding what the group's largest pod requests (cpu rounded up to
whole cores, memory up to whole chunks, gpus), matched all-or-nothing by
fluxnb's Fluxion traverser (:mod:`fluxnb.runtime.sched.fluxion`) under a
match policy (``lonode`` by default: fill a node before the next, lowest
first).  Pods are then bound to the nodes the match chose, one slot each;
pods of a group beyond ``minMember`` are matched one slot at a time.

Zone awareness: the group is first matched in one zone at a time (the other
zones' subtrees marked down for that match, as a drained rack would be), so
a group that fits in a zone stays in it; only when no zone can take it now is
it matched across the whole cluster.  Pods' node selectors, required node
affinity and untolerated ``NoSchedule`` taints mark the nodes they exclude
down the same way.

Queue: groups in the order their first pod was created.  The first group that
cannot start gets a Fluxion reservation (``allocate_orelse_reserve``: the
earliest time it fits, planned with its walltime, or with no walltime its
worst-case run time plus a minute: :meth:`~.model.App.time_limit`; times in
the graph's planners are milliseconds), and later groups start
only where they do not delay it (EASY backfill; ``queue_policy="fcfs"``
stops at the first blocked group, ``"conservative"`` reserves for all).

Examples
--------
>>> from fluxnb.fluence import load_manifests
>>> from fluxnb.fluence.workflows import demo_cluster, mpi_job
>>> w = load_manifests(demo_cluster(zones=2, nodes_per_zone=2),
...                    mpi_job("amg", pods=4, cpu="8", memory="16Gi"))
>>> js = podgroup_jobspec(w.groups["amg"], duration=60)
>>> js["resources"][0]["count"], [(r["type"], r["count"]) for r in js["resources"][0]["with"]]
(4, [('core', 8), ('memory', 16)])
"""

from __future__ import annotations

import errno
import math
import random
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from ..runtime.sched.fluxion import (MatchError, ResourceGraph, Traverser, make_policy,
                                     parse_request)
from ..runtime.sched.fluxion.writers import MatchWriter
from .model import App, Cluster, Node, Pod, PodGroup, Workload

__all__ = ["FluenceScheduler", "build_graph", "podgroup_jobspec", "pod_slot", "MEMORY_CHUNK_GB"]

#: Size (GB, as GiB) of one memory vertex.
MEMORY_CHUNK_GB = 4
_GIB = 2**30


def build_graph(cluster: Cluster, memory_chunk: int = MEMORY_CHUNK_GB) -> ResourceGraph:
    """The Fluxion resource graph of ``cluster``'s schedulable nodes.

    Zones are ``zone0, zone1, ...`` in order of first appearance, with the
    Kubernetes zone name in the property ``zone``; nodes are ``node<i>`` (``i``
    the node's position; also its rank) with the Kubernetes name in the
    property ``k8s-name`` and the instance type in ``instance-type``.

    Examples
    --------
    >>> from fluxnb.fluence.model import Node
    >>> g = build_graph(Cluster([Node("a1", 2000, 8 * 2**30, gpu=1, zone="us-a")]))
    >>> sorted(v.type for v in g.vertices)
    ['cluster', 'core', 'core', 'gpu', 'memory', 'memory', 'node', 'zone']
    """
    zones = cluster.zones
    with ResourceGraph.building():
        g = ResourceGraph()
        root = g.add_vertex("cluster", "cluster", 0)
        zv = [g.add_vertex("zone", "zone", i, parent=root, properties={"zone": z or "(none)"})
              for i, z in enumerate(zones)]
        for n in cluster.nodes:
            if n.unschedulable:
                continue
            props = {"k8s-name": n.name}
            if n.instance_type:
                props["instance-type"] = n.instance_type
            nv = g.add_vertex("node", "node", n.index, parent=zv[zones.index(n.zone)], rank=n.index,
                              properties=props)
            g.add_children(nv, "core", "core", range(n.cpu // 1000), rank=n.index)
            if n.gpu:
                g.add_children(nv, "gpu", "gpu", range(n.gpu), rank=n.index)
            g.add_children(nv, "memory", "memory", range(n.memory // (memory_chunk * _GIB)),
                           size=memory_chunk, unit="GB", rank=n.index)
        g.finalize()
    return g


def pod_slot(pods: list[Pod], memory_chunk: int = MEMORY_CHUNK_GB) -> list[dict[str, Any]]:
    """A slot's contents for any of ``pods``: the componentwise largest request.

    cpu is rounded up to whole cores (at least one), memory up to whole chunks.
    """
    cores = max(1, max(math.ceil(p.cpu / 1000) for p in pods))
    mem = max(p.memory for p in pods)
    gpus = max(p.gpu for p in pods)
    out: list[dict[str, Any]] = [{"type": "core", "count": cores}]
    if gpus:
        out.append({"type": "gpu", "count": gpus})
    if mem:
        out.append({"type": "memory", "count": memory_chunk * math.ceil(mem / (memory_chunk * _GIB))})
    return out


def podgroup_jobspec(group: PodGroup, duration: float, count: int | None = None, zone: bool = False,
                     memory_chunk: int = MEMORY_CHUNK_GB) -> dict[str, Any]:
    """The Fluxion jobspec (RFC 25, version 1) that Fluence asks for a PodGroup.

    Parameters
    ----------
    duration : float
        Seconds the match is planned for (``attributes.system.duration``).
    count : int, optional
        Slots (default: ``minMember``).
    zone : bool
        Wrap the slots in ``zone: 1``, the jobspec of a one-zone request.
        (fluxnb's matcher, as flux-sched's, finds slots only directly under a
        matched resource, so the scheduler itself restricts a match to one
        zone by marking the others down; this form is what the request means.)
    """
    slot = {"type": "slot", "count": group.min_member if count is None else count, "label": group.name,
            "with": pod_slot(group.pods, memory_chunk)}
    res = [{"type": "zone", "count": 1, "with": [slot]}] if zone else [slot]
    return {"version": 1, "resources": res,
            "attributes": {"system": {"duration": max(1, math.ceil(duration))}},
            "tasks": [{"command": [group.name], "slot": group.name, "count": {"per_slot": 1}}]}


class _Collect(MatchWriter):
    """Keeps the vertices of a match (the scheduler reads cores per rank)."""

    def render(self) -> str:
        return ""


class _Group:
    __slots__ = ("group", "app", "pods", "count", "taken", "jobids", "nodes", "created", "request",
                 "duration")

    def __init__(self, group: PodGroup, app: App | None, count: int, created: float) -> None:
        self.group = group
        self.app = app
        self.pods: list[Pod] = []          # created, not yet bound
        self.count = count                 # slots asked for in one match
        self.taken = 0                     # pods that belong to this match
        self.jobids: list[int] = []
        self.nodes: list[int] = []         # node index per matched slot, not yet given to a pod
        self.created = created
        self.request: Any = None
        self.duration = 0


class FluenceScheduler:
    """Fluence over a model cluster (see the module docstring).

    Parameters
    ----------
    policy : str
        Fluxion match policy (:func:`~fluxnb.runtime.sched.fluxion.make_policy`).
    zone_aware : bool
        Try one zone at a time before the whole cluster.
    queue_policy : {"easy", "fcfs", "conservative"}
    memory_chunk : int
        GB per memory vertex.
    """

    name = "fluence"

    def __init__(self, policy: str = "lonode", zone_aware: bool = True, queue_policy: str = "easy",
                 memory_chunk: int = MEMORY_CHUNK_GB) -> None:
        if queue_policy not in ("easy", "fcfs", "conservative"):
            raise ValueError("FluenceScheduler: queue_policy must be easy, fcfs or conservative, "
                             f"not {queue_policy!r}")
        make_policy(policy)  # refuse an unknown policy now, not at the first match
        self.policy, self.zone_aware, self.queue_policy = policy, zone_aware, queue_policy
        self.memory_chunk = memory_chunk
        self.matches = 0
        #: The last jobspec each group was matched with (for display).
        self.jobspecs: dict[str, dict] = {}

    # -- the simulator's interface -------------------------------------------------------
    def start(self, workload: Workload, rng: random.Random) -> None:
        self.workload = workload
        self.nodes = workload.cluster.nodes
        self.graph = build_graph(workload.cluster, self.memory_chunk)
        self.trav = Traverser(self.graph, make_policy(self.policy),
                              prune_filters="ALL:core,ALL:gpu,ALL:memory")
        self.zones = [f"/cluster0/zone{i}" for i in range(len(workload.cluster.zones))]
        self.app_of = {p.name: a for a in workload.apps for p in a.pods}
        self.nzones = len(self.zones)
        self.queue: list[_Group] = []
        self.groups: dict[str, _Group] = {}
        self.all: list[_Group] = []       # every match request with pods still to bind
        self.app_jobs: dict[str, list[int]] = {}
        self.reserved: list[int] = []
        self.next_id = 1
        self._dirty = False

    def submit(self, pods: list[Pod], now: float) -> None:
        for p in pods:
            g = self.groups.get(p.gang)
            if g is None:
                pg = self.workload.groups[p.gang]
                g = self.groups[p.gang] = _Group(pg, self.app_of[p.name], pg.min_member, now)
                self.queue.append(g)
                self.all.append(g)
                self._dirty = True
            if g.taken < g.count:
                g.taken += 1
                g.pods.append(p)
            else:  # beyond minMember: a match of one slot for this pod
                s = _Group(g.group, g.app, 1, now)
                s.taken = 1
                s.pods.append(p)
                self.queue.append(s)
                self.all.append(s)
                self._dirty = True

    def finish(self, app: App, now: float) -> None:
        for jobid in self.app_jobs.pop(app.name, []):
            self.trav.cancel(jobid)
        self._dirty = True

    def schedule(self, now: float) -> list[tuple[Pod, Node]]:
        if self._dirty:
            self._pass(now)
            self._dirty = False
        out = []
        for g in self.all:
            while g.pods and g.nodes:
                out.append((g.pods.pop(0), self.nodes[g.nodes.pop(0)]))
        self.all = [g for g in self.all if g.pods or g.taken < g.count or not g.jobids]
        return out

    # -- matching ---------------------------------------------------------------------------
    def _pass(self, now: float) -> None:
        at = int(now * 1000)
        for jobid in self.reserved:
            self.trav.cancel(jobid)
        self.reserved = []
        reserve = self.queue_policy != "fcfs"
        waiting = []
        for g in self.queue:
            if self._allocate(g, at):
                continue
            waiting.append(g)
            if not reserve:
                break
            self._reserve(g, at)
            if self.queue_policy == "easy":
                reserve = False
        if self.queue_policy == "fcfs" and waiting:
            waiting = self.queue[self.queue.index(waiting[0]):]
        self.queue = waiting

    def _prepare(self, g: _Group) -> None:
        if g.request is None:
            g.duration = g.app.time_limit(self.nzones) if g.app else 3600.0
            js = podgroup_jobspec(g.group, g.duration * 1000, g.count, memory_chunk=self.memory_chunk)
            js_show = podgroup_jobspec(g.group, g.duration, g.count, zone=self.zone_aware,
                                       memory_chunk=self.memory_chunk)
            if g.count == g.group.min_member:
                self.jobspecs[g.group.name] = js_show
            g.request = parse_request(js, where=f"PodGroup/{g.group.name}")

    def _excluded(self, g: _Group) -> list[str]:
        """Paths of nodes the group's pods may not use (selectors, affinity, taints)."""
        pods = g.group.pods
        out = []
        for n in self.nodes:
            if n.unschedulable:
                continue
            for p in pods:
                ok = all(n.labels.get(k) == v for k, v in p.node_selector.items())
                ok = ok and (not p.required_terms or any(all(r.matches(n.labels) for r in t)
                                                         for t in p.required_terms))
                ok = ok and all(t.effect == "PreferNoSchedule"
                                or any(tol.tolerates(t) for tol in p.tolerations) for t in n.taints)
                if not ok:
                    out.append(self.graph.by_rank[n.index][0].path())
                    break
        return out

    @contextmanager
    def _down(self, paths: Sequence[str], keep_down: Sequence[str] = ()) -> Iterator[None]:
        """Mark ``paths`` down for the block; afterwards up again, except ``keep_down``.

        A zone marked up brings its whole subtree up, so the nodes an outer
        block excluded (``keep_down``) are marked down again.
        """
        for p in paths:
            self.trav.mark(p, "down")
        try:
            yield
        finally:
            for p in paths:
                self.trav.mark(p, "up")
            for p in keep_down:
                self.trav.mark(p, "down")

    def _run(self, g: _Group, op: str, at: int) -> tuple[int, str, list[int]] | None:
        w = _Collect()
        jobid = self.next_id
        self.matches += 1
        try:
            meta = self.trav.run(g.request, op, jobid, w, at=at)  # type: ignore[arg-type]
        except MatchError as exc:
            if exc.errno not in (errno.EBUSY, errno.ENODEV):
                raise
            return None
        self.next_id += 1
        cores: dict[int, int] = {}
        for _, v, _, _ in w.entries():
            if v.type == "core":
                cores[v.rank] = cores.get(v.rank, 0) + 1
        per = g.request.resources[0].with_[0].count_min
        nodes = [r for r in sorted(cores) for _ in range(cores[r] // per)]
        return jobid, meta.alloc_type, nodes

    def _zone_may_fit(self, path: str, g: _Group, at: int) -> bool:
        """False when the zone's subtree aggregates (pruning filters) rule the group out now.

        A cheap test that spares the mark-down and the match of a zone that is too full.
        """
        sp = self.graph.by_path[path].subplans.get("containment")
        if sp is None:
            return True
        slot = g.request.resources[0]
        want = {c.type: c.count_min * slot.count_min for c in slot.with_}
        return sp.avail_during(at, int(g.duration * 1000), sp.counts_for(want))

    def _allocate(self, g: _Group, at: int) -> bool:
        self._prepare(g)
        excluded = self._excluded(g)
        got = None
        with self._down(excluded):
            if self.zone_aware and self.nzones > 1:
                for i, z in enumerate(self.zones):
                    if not self._zone_may_fit(z, g, at):
                        continue
                    with self._down([o for j, o in enumerate(self.zones) if j != i], keep_down=excluded):
                        got = self._run(g, "allocate", at)
                    if got:
                        break
            if got is None:
                got = self._run(g, "allocate", at)
        if got is None:
            return False
        jobid, _, nodes = got
        g.jobids.append(jobid)
        g.nodes.extend(nodes)
        if g.app is not None:
            self.app_jobs.setdefault(g.app.name, []).append(jobid)
        return True

    def _reserve(self, g: _Group, at: int) -> None:
        """Plan ``g`` at the earliest time it fits (EBUSY now was just seen at ``at``)."""
        with self._down(self._excluded(g)):
            got = self._run(g, "allocate_orelse_reserve", at)
        if got is not None:
            self.reserved.append(got[0])

    def describe(self) -> dict[str, Any]:
        return {"scheduler": self.name, "policy": self.policy, "zone_aware": self.zone_aware,
                "queue_policy": self.queue_policy, "vertices": len(self.graph)}
