"""The model cluster and workload: nodes, pods, pod groups and MPI applications.

These are plain records read from Kubernetes manifests by :mod:`.manifests`; the
schedulers (:mod:`.kube`, :mod:`.fluxion`) and the event loop (:mod:`.sim`) work on
them.  Units: CPU in millicores, memory in bytes, GPUs whole, times in seconds.

The application model (:class:`App`) is where placement matters: an MPI job does
no work until every one of its pods is running (a partial gang only holds its
resources), then runs for::

    duration * (1 + node_cost * (nodes - 1)) * (1 + zone_cost * (zones - 1))

seconds (at most ``walltime`` after its first pod was bound, when it has one: the
application is then stopped, as Kubernetes stops a Job past its
``activeDeadlineSeconds``), where ``nodes`` and ``zones`` are how many distinct nodes and zones its
pods landed on.  ``duration`` is the run time with every pod on one node;
``node_cost`` is the slowdown each extra node adds (off-node MPI messages) and
``zone_cost`` the slowdown each extra availability zone adds (cross-zone latency
is several times the in-zone one).  Both are per application (annotations
``fluxnb.io/node-cost`` and ``fluxnb.io/zone-cost``): a halo-exchange code such
as AMG pays a lot for a zone, an ensemble-style QMCPACK run little.

Examples
--------
>>> app = App("lammps", "Job", pods=[], duration=100.0, node_cost=0.25, zone_cost=0.5)
>>> app.run_time(nodes=4, zones=1), app.run_time(nodes=4, zones=2)
(175.0, 262.5)
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Taint", "Toleration", "Requirement", "Node", "Pod", "PodGroup", "App", "Cluster", "PLAN_SLACK",
           "Workload", "DEFAULT_NODE_COST", "DEFAULT_ZONE_COST"]

#: Slowdown per extra node an MPI job spans, when its manifest does not say.
DEFAULT_NODE_COST = 0.03
#: Slowdown per extra availability zone an MPI job spans, when its manifest does not say.
DEFAULT_ZONE_COST = 0.5

#: Seconds added to the worst-case run time when Fluence plans an application with no walltime.
PLAN_SLACK = 60.0

ZONE_LABEL = "topology.kubernetes.io/zone"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
GROUP_LABEL = "scheduling.x-k8s.io/pod-group"
GPU = "nvidia.com/gpu"


@dataclass(frozen=True)
class Taint:
    key: str
    value: str = ""
    effect: str = "NoSchedule"  # NoSchedule | PreferNoSchedule | NoExecute


@dataclass(frozen=True)
class Toleration:
    key: str = ""            # "" with operator Exists tolerates every taint
    operator: str = "Equal"  # Equal | Exists
    value: str = ""
    effect: str = ""         # "" matches every effect

    def tolerates(self, t: Taint) -> bool:
        if self.effect and self.effect != t.effect:
            return False
        if not self.key:
            return self.operator == "Exists"
        if self.key != t.key:
            return False
        return self.operator == "Exists" or self.value == t.value


@dataclass(frozen=True)
class Requirement:
    """A node selector requirement (``matchExpressions`` item)."""

    key: str
    operator: str  # In | NotIn | Exists | DoesNotExist | Gt | Lt
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        v = labels.get(self.key)
        op = self.operator
        if op == "In":
            return v is not None and v in self.values
        if op == "NotIn":
            return v is None or v not in self.values
        if op == "Exists":
            return v is not None
        if op == "DoesNotExist":
            return v is None
        try:
            if v is None:
                return False
            return int(v) > int(self.values[0]) if op == "Gt" else int(v) < int(self.values[0])
        except ValueError:
            return False


@dataclass
class Node:
    """A Kubernetes node: what it can allocate and where it is."""

    name: str
    cpu: int                # millicores (status.allocatable.cpu)
    memory: int             # bytes (status.allocatable.memory)
    gpu: int = 0            # status.allocatable["nvidia.com/gpu"]
    max_pods: int = 110     # status.allocatable.pods
    zone: str = ""
    instance_type: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False
    index: int = 0          # position in the cluster (the Fluxion graph's rank)


@dataclass
class Pod:
    """One pod: its requests and placement constraints."""

    name: str
    app: str
    group: str
    cpu: int                # millicores requested (sum over containers)
    memory: int             # bytes requested
    gpu: int = 0
    node_selector: dict[str, str] = field(default_factory=dict)
    #: requiredDuringScheduling node selector terms: OR of ANDs.
    required_terms: tuple[tuple[Requirement, ...], ...] = ()
    #: preferredDuringScheduling terms: (weight, requirements).
    preferred_terms: tuple[tuple[int, tuple[Requirement, ...]], ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    priority: int = 0
    index: int = 0          # position in the workload (creation order within an app)
    #: The PodGroup the pod is scheduled with: ``group``, or a group of its own
    #: when it has no label (set by :func:`~.manifests.check_workload`).
    gang: str = ""
    #: Where the pod's spec is in its manifest (``spec.template.spec``), for error messages.
    source: str = "spec"

    @property
    def shape(self) -> tuple:
        """What two pods share when one cannot be placed where the other could not."""
        return (self.cpu, self.memory, self.gpu, tuple(sorted(self.node_selector.items())),
                self.required_terms, self.tolerations)


@dataclass
class PodGroup:
    """A coscheduling PodGroup (``scheduling.x-k8s.io/v1alpha1``)."""

    name: str
    min_member: int
    pods: list[Pod] = field(default_factory=list)
    implicit: bool = False  # made for a pod without a group label (Fluence's group of one)


@dataclass
class App:
    """An application (a Job, an MPIJob or a bare Pod): pods that work together.

    See the module docstring for the run-time model.
    """

    name: str
    kind: str
    pods: list[Pod]
    duration: float = 60.0
    node_cost: float = DEFAULT_NODE_COST
    zone_cost: float = DEFAULT_ZONE_COST
    arrival: float = 0.0
    walltime: float | None = None

    def run_time(self, nodes: int, zones: int) -> float:
        """Seconds of work once all pods run on ``nodes`` nodes in ``zones`` zones."""
        return (self.duration * (1 + self.node_cost * max(nodes - 1, 0))
                * (1 + self.zone_cost * max(zones - 1, 0)))

    def worst_run_time(self, nzones: int) -> float:
        """The run time with every pod on its own node, across ``nzones`` zones."""
        return self.run_time(len(self.pods), min(nzones, len(self.pods)))

    def time_limit(self, nzones: int) -> float:
        """What Fluence plans for: ``walltime`` or, unset, :meth:`worst_run_time` plus
        :data:`PLAN_SLACK` (pods bound a little after the match start the clock late)."""
        return self.walltime if self.walltime is not None else self.worst_run_time(nzones) + PLAN_SLACK


@dataclass
class Cluster:
    nodes: list[Node]

    @property
    def zones(self) -> list[str]:
        """Zone names in order of first appearance."""
        return list(dict.fromkeys(n.zone for n in self.nodes))


@dataclass
class Workload:
    """What a set of manifests describes: the cluster, its applications and pod groups."""

    cluster: Cluster
    apps: list[App] = field(default_factory=list)
    groups: dict[str, PodGroup] = field(default_factory=dict)

    @property
    def pods(self) -> list[Pod]:
        return [p for a in self.apps for p in a.pods]
