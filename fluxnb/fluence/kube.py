"""kube-scheduler's default behaviour, pod by pod, as the Kubernetes documentation gives it.

Each pending pod, in queue order (priority, then creation time), goes through:

Filter
    ``NodeUnschedulable`` (``spec.unschedulable``), ``TaintToleration`` (every
    ``NoSchedule``/``NoExecute`` taint tolerated), ``NodeAffinity``
    (``nodeSelector`` and required ``nodeSelectorTerms``: any term, all of its
    expressions) and ``NodeResourcesFit`` (requested cpu, memory,
    ``nvidia.com/gpu`` and pod count within ``status.allocatable``).
Score (0-100 each, summed with the default profile's weights)
    ``NodeResourcesFit`` with the ``LeastAllocated`` strategy (weight 1; cpu and
    memory weighted 1 each): ``sum(w * (allocatable - requested) * 100 //
    allocatable) // sum(w)``, where requested includes the pod and pods without
    a request count 100m cpu / 200Mi memory; ``NodeResourcesBalancedAllocation``
    (weight 1): ``(1 - std) * 100`` of the requested/allocatable fractions
    (for cpu and memory, ``std = |f_cpu - f_mem| / 2``); ``NodeAffinity``
    preferred terms (weight 2, normalised to 100 for the best node);
    ``TaintToleration`` (weight 3: fewer untolerated ``PreferNoSchedule``
    taints score higher). ``ImageLocality`` and the pod-topology plugins are
    off (no images, no spread constraints in these manifests).
Select
    The highest total; ties broken uniformly at random (kube-scheduler's
    ``selectHost``), from the scheduler's seeded generator.

There is no gang: pods of a group are placed one at a time as they come, so
two groups can each hold part of the cluster and wait for ever for the rest.
A pod that fits nowhere stays pending and is tried again when a pod finishes
(the queue's "unschedulable pods move on a cluster event"); a newly created
pod is tried at once, ahead of older unschedulable ones, as in kube-scheduler.
Binding takes no time.

Examples
--------
>>> from fluxnb.fluence.model import Node
>>> least_allocated(Node("n", cpu=4000, memory=8 * 2**30), 1000, 2 * 2**30)
75
>>> balanced_allocation(Node("n", cpu=4000, memory=8 * 2**30), 2000, 2 * 2**30)
87
"""

from __future__ import annotations

import random
from bisect import insort
from typing import Any

from .model import App, Node, Pod, Workload

__all__ = ["KubeScheduler", "least_allocated", "balanced_allocation", "DEFAULT_WEIGHTS"]

MAX_NODE_SCORE = 100
#: Score plugins of the default profile and their weights.
DEFAULT_WEIGHTS = {"NodeResourcesFit": 1, "NodeResourcesBalancedAllocation": 1, "NodeAffinity": 2,
                   "TaintToleration": 3}
#: What a pod without requests counts for in scoring (scheduler's non-zero defaults).
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 2**20


def least_allocated(node: Node, cpu: int, memory: int) -> int:
    """LeastAllocated score of ``node`` once its requests are ``cpu`` (m) and ``memory`` (bytes)."""
    total = weights = 0
    for alloc, req in ((node.cpu, cpu), (node.memory, memory)):
        weights += 1
        if alloc == 0 or req > alloc:
            continue
        total += (alloc - req) * MAX_NODE_SCORE // alloc
    return total // weights


def balanced_allocation(node: Node, cpu: int, memory: int) -> int:
    """BalancedAllocation score of ``node`` once its requests are ``cpu`` and ``memory``."""
    fr = [min(req / alloc, 1.0) for alloc, req in ((node.cpu, cpu), (node.memory, memory)) if alloc]
    std = abs(fr[0] - fr[1]) / 2 if len(fr) == 2 else 0.0
    return int((1 - std) * MAX_NODE_SCORE)


class KubeScheduler:
    """The default kube-scheduler profile over a model cluster (see the module docstring).

    Parameters
    ----------
    weights : dict, optional
        Score plugin weights (defaults: :data:`DEFAULT_WEIGHTS`).
    """

    name = "kube-scheduler"

    def __init__(self, weights: dict[str, int] | None = None) -> None:
        self.weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        self.rng = random.Random(0)

    # -- the simulator's interface -------------------------------------------------------
    def start(self, workload: Workload, rng: random.Random) -> None:
        self.rng = rng
        self.nodes = list(workload.cluster.nodes)
        n = len(self.nodes)
        self.cpu = [0] * n      # requested (filter)
        self.mem = [0] * n
        self.gpu = [0] * n
        self.npods = [0] * n
        self.score_cpu = [0] * n  # requested with the non-zero defaults (score)
        self.score_mem = [0] * n
        self.pending: list[tuple[int, float, int, Pod]] = []
        self._seq = 0
        self._new: list[Pod] = []
        self._freed = False
        self.where: dict[str, int] = {}  # pod name -> node index

    def submit(self, pods: list[Pod], now: float) -> None:
        for p in pods:
            insort(self.pending, (-p.priority, now, self._seq, p), key=lambda e: e[:3])
            self._seq += 1
        self._new.extend(pods)

    def finish(self, app: App, now: float) -> None:
        for p in app.pods:
            i = self.where.pop(p.name)
            self._unreserve(i, p)
        self._freed = True

    def schedule(self, now: float) -> list[tuple[Pod, Node]]:
        if not self._freed:
            fresh = {id(p) for p in self._new}
            todo = [e for e in self.pending if id(e[3]) in fresh]
        else:
            todo = list(self.pending)
        self._new, self._freed = [], False
        out = []
        failed: set[tuple] = set()
        placed: set[int] = set()
        for e in todo:
            pod = e[3]
            shape = pod.shape
            if shape in failed:  # nothing freed in this pass: an equal pod cannot fit either
                continue
            i = self.place(pod)
            if i is None:
                failed.add(shape)
                continue
            placed.add(id(pod))
            out.append((pod, self.nodes[i]))
        if placed:
            self.pending = [e for e in self.pending if id(e[3]) not in placed]
        return out

    # -- one pod ----------------------------------------------------------------------------
    def feasible(self, pod: Pod, i: int) -> bool:
        """The filter plugins: may ``pod`` go to node ``i`` now?"""
        n = self.nodes[i]
        if n.unschedulable:
            return False
        for t in n.taints:
            if t.effect != "PreferNoSchedule" and not any(tol.tolerates(t) for tol in pod.tolerations):
                return False
        labels = n.labels
        for k, v in pod.node_selector.items():
            if labels.get(k) != v:
                return False
        terms = pod.required_terms
        if terms and not any(all(r.matches(labels) for r in term) for term in terms):
            return False
        return (self.cpu[i] + pod.cpu <= n.cpu and self.mem[i] + pod.memory <= n.memory
                and self.gpu[i] + pod.gpu <= n.gpu and self.npods[i] < n.max_pods)

    def scores(self, pod: Pod, candidates: list[int]) -> list[int]:
        """Weighted total score of each candidate node for ``pod``."""
        w = self.weights
        pc = pod.cpu or DEFAULT_MILLI_CPU
        pm = pod.memory or DEFAULT_MEMORY
        fit_w, bal_w = w.get("NodeResourcesFit", 0), w.get("NodeResourcesBalancedAllocation", 0)
        totals = []
        for i in candidates:
            n = self.nodes[i]
            c, m = self.score_cpu[i] + pc, self.score_mem[i] + pm
            totals.append(fit_w * least_allocated(n, c, m) + bal_w * balanced_allocation(n, c, m))
        aff_w = w.get("NodeAffinity", 0)
        if aff_w and pod.preferred_terms:
            raw = [sum(wt for wt, term in pod.preferred_terms
                       if all(r.matches(self.nodes[i].labels) for r in term)) for i in candidates]
            top = max(raw)
            if top:
                totals = [t + aff_w * (r * MAX_NODE_SCORE // top) for t, r in zip(totals, raw)]
        tt_w = w.get("TaintToleration", 0)
        if tt_w:
            raw = [sum(1 for t in self.nodes[i].taints if t.effect == "PreferNoSchedule"
                       and not any(tol.tolerates(t) for tol in pod.tolerations)) for i in candidates]
            top = max(raw, default=0)
            totals = [t + tt_w * (MAX_NODE_SCORE - (r * MAX_NODE_SCORE // top if top else 0))
                      for t, r in zip(totals, raw)]
        return totals

    def place(self, pod: Pod) -> int | None:
        """Filter, score and select a node for ``pod`` and reserve it there (None: unschedulable)."""
        candidates = [i for i in range(len(self.nodes)) if self.feasible(pod, i)]
        if not candidates:
            return None
        totals = self.scores(pod, candidates)
        best = max(totals)
        ties = [i for i, t in zip(candidates, totals) if t == best]
        i = ties[0] if len(ties) == 1 else self.rng.choice(ties)
        self.cpu[i] += pod.cpu
        self.mem[i] += pod.memory
        self.gpu[i] += pod.gpu
        self.npods[i] += 1
        self.score_cpu[i] += pod.cpu or DEFAULT_MILLI_CPU
        self.score_mem[i] += pod.memory or DEFAULT_MEMORY
        self.where[pod.name] = i
        return i

    def _unreserve(self, i: int, pod: Pod) -> None:
        self.cpu[i] -= pod.cpu
        self.mem[i] -= pod.memory
        self.gpu[i] -= pod.gpu
        self.npods[i] -= 1
        self.score_cpu[i] -= pod.cpu or DEFAULT_MILLI_CPU
        self.score_mem[i] -= pod.memory or DEFAULT_MEMORY

    def describe(self) -> dict[str, Any]:
        return {"scheduler": self.name, "weights": self.weights}
