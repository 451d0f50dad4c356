"""A discrete-event run of a workload under one scheduler.

Pods are created (each application's pods at its arrival time, a few tenths
of a second apart as a controller creates them), the scheduler binds them to
nodes, an application starts working once every one of its pods is bound and
runs for the time its placement gives it (:meth:`~.model.App.run_time`), then
all its pods finish at once and free their nodes.  Until its last pod is bound
an application holds what it has and does nothing.

The run ends when no event is left.  If pods are still pending then, nothing
will ever free their resources: the run is *stuck*, and every application
holding part of its pods at that moment is a **deadlocked group** (two or more
half-placed gangs each waiting for the other's nodes, or one waiting for nodes
nobody releases).

A scheduler is any object with ``name``, ``start(workload, rng)``,
``submit(pods, now)``, ``schedule(now) -> [(pod, node), ...]`` and
``finish(app, now)``: :class:`~.kube.KubeScheduler` and
:class:`~.fluxion.FluenceScheduler`.

Examples
--------
>>> from fluxnb.fluence import KubeScheduler, load_manifests, simulate
>>> from fluxnb.fluence.workflows import demo_cluster, mpi_job
>>> w = load_manifests(demo_cluster(zones=1, nodes_per_zone=2), mpi_job("lammps", pods=2, cpu="4"))
>>> r = simulate(w, KubeScheduler(), seed=1)
>>> r.finished, r.apps[0].nodes
(True, 2)
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .model import App, Pod, Workload

__all__ = ["AppResult", "RunResult", "simulate", "compare"]


@dataclass
class AppResult:
    """What happened to one application in a run (times in seconds)."""

    name: str
    pods: int
    created: float
    started: float | None = None
    finished: float | None = None
    nodes: int = 0
    zones: int = 0
    run_time: float = 0.0
    #: Pod-seconds bound to a node before the application could start (held, no work done).
    idle_pod_seconds: float = 0.0
    #: "done", or at the end of a stuck run "partial" (some pods bound) or "pending" (none).
    state: str = "pending"
    #: Stopped at its walltime (counted from its first pod's binding) before its work was done.
    timed_out: bool = False
    placement: dict[str, str] = field(default_factory=dict)  # pod -> node


@dataclass
class RunResult:
    """One run: per-application results, makespan, deadlocked groups."""

    scheduler: str
    seed: int
    apps: list[AppResult]
    #: Time the last application finished; None when the run got stuck.
    makespan: float | None
    #: Time the run ended (the last event).
    end: float

    @property
    def finished(self) -> bool:
        return self.makespan is not None

    @property
    def deadlocked(self) -> list[str]:
        """Applications left holding part of their pods when the run got stuck."""
        return [a.name for a in self.apps if a.state == "partial"]

    @property
    def idle_pod_seconds(self) -> float:
        return sum(a.idle_pod_seconds for a in self.apps)

    def summary(self) -> dict[str, Any]:
        done = [a for a in self.apps if a.state == "done"]
        return {"scheduler": self.scheduler, "seed": self.seed,
                "makespan": None if self.makespan is None else round(self.makespan, 1),
                "done": len(done), "deadlocked": len(self.deadlocked),
                "mean nodes/app": round(sum(a.nodes for a in done) / len(done), 2) if done else None,
                "mean zones/app": round(sum(a.zones for a in done) / len(done), 2) if done else None,
                "idle pod-s": round(self.idle_pod_seconds, 1),
                "timed out": sum(1 for a in self.apps if a.timed_out)}


def simulate(workload: Workload, scheduler: Any, seed: int = 0, create_spread: float = 1.0,
             create_times: dict[str, float] | None = None) -> RunResult:
    """Run ``workload`` under ``scheduler``.

    Parameters
    ----------
    seed : int
        Seeds the pod creation times and the scheduler's tie breaks.
    create_spread : float
        Each pod is created at its application's arrival plus a uniform draw in
        ``[0, create_spread)`` seconds, so the pods of applications created
        together reach the scheduler interleaved, as several Job controllers'
        pods do.
    create_times : dict, optional
        Creation time of named pods, overriding the draw (to construct a case).
    """
    rng = random.Random(seed)
    scheduler.start(workload, random.Random(rng.random()))
    nodes = {n.name: n for n in workload.cluster.nodes}
    res: dict[str, AppResult] = {}
    apps: dict[str, App] = {}
    events: list[tuple[float, int, str, Any]] = []
    seq = 0
    for app in workload.apps:
        apps[app.name] = app
        times = sorted(app.arrival + rng.random() * create_spread for _ in app.pods)
        if create_times:
            times = [create_times.get(p.name, t) for p, t in zip(app.pods, times)]
        res[app.name] = AppResult(app.name, len(app.pods), min(times, default=app.arrival))
        for pod, t in zip(app.pods, times):
            events.append((t, seq, "create", pod))
            seq += 1
    heapq.heapify(events)
    bound_at: dict[str, dict[str, float]] = {a: {} for a in apps}
    used = {n: [0, 0, 0] for n in nodes}  # cpu, memory, gpu bound on each node
    end = 0.0
    while events:
        now = events[0][0]
        created: list[Pod] = []
        while events and events[0][0] == now:
            _, _, kind, data = heapq.heappop(events)
            if kind == "create":
                created.append(data)
            else:
                app = apps[data]
                r = res[data]
                r.finished, r.state = now, "done"
                for p in app.pods:
                    u = used[r.placement[p.name]]
                    u[0] -= p.cpu
                    u[1] -= p.memory
                    u[2] -= p.gpu
                scheduler.finish(app, now)
        if created:
            scheduler.submit(created, now)
        end = now
        for pod, node in scheduler.schedule(now):
            _bind(used[node.name], pod, node, scheduler.name, now)
            r = res[pod.app]
            r.placement[pod.name] = node.name
            bound_at[pod.app][pod.name] = now
            app = apps[pod.app]
            if len(r.placement) == len(app.pods):
                on = [nodes[n] for n in r.placement.values()]
                r.nodes = len({n.name for n in on})
                r.zones = len({n.zone for n in on})
                r.started, r.state = now, "running"
                r.run_time = app.run_time(r.nodes, r.zones)
                r.idle_pod_seconds = sum(now - t for t in bound_at[pod.app].values())
                stop = now + r.run_time
                if app.walltime is not None:
                    limit = min(bound_at[pod.app].values()) + app.walltime
                    if limit < stop:
                        stop, r.timed_out = max(limit, now), True
                heapq.heappush(events, (stop, seq, "finish", app.name))
                seq += 1
    for name, r in res.items():
        if r.state != "done":
            r.state = "partial" if r.placement else "pending"
            r.idle_pod_seconds = sum(end - t for t in bound_at[name].values())
    done = all(r.state == "done" for r in res.values())
    makespan = max((r.finished or 0.0 for r in res.values()), default=0.0) if done else None
    return RunResult(scheduler.name, seed, list(res.values()), makespan, end)


def _bind(u: list[int], pod: Pod, node: Any, scheduler: str, now: float) -> None:
    """Account ``pod`` on ``node``; a scheduler that overcommits a node is a bug, not a result."""
    u[0] += pod.cpu
    u[1] += pod.memory
    u[2] += pod.gpu
    if u[0] > node.cpu or u[1] > node.memory or u[2] > node.gpu:
        raise RuntimeError(f"{scheduler} bound pod {pod.name} to node {node.name} at t={now:.1f} s beyond "
                           f"its allocatable (cpu {u[0]}m of {node.cpu}m, memory {u[1]} of {node.memory} "
                           f"bytes, gpu {u[2]} of {node.gpu}): is an application running past its walltime?")


def compare(workload: Workload, schedulers: Iterable[Callable[[], Any]], seeds: Iterable[int],
            **kwargs: Any) -> list[RunResult]:
    """One :func:`simulate` per scheduler factory and seed (a fresh scheduler each run)."""
    seeds = list(seeds)
    return [simulate(workload, make(), seed, **kwargs) for make in schedulers for seed in seeds]
