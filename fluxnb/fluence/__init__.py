"""Fluence, Fluxion as a Kubernetes scheduler for pod groups, against kube-scheduler: a what-if model.

No Kubernetes is needed: a model cluster and workload are read from ordinary
manifests (:func:`load_manifests`: Nodes, Pods, Jobs, MPIJobs, coscheduling
PodGroups), and a discrete-event run (:func:`simulate`) places their pods with
either kube-scheduler's default behaviour (:class:`KubeScheduler`: per pod,
filter and score, no gang) or Fluence (:class:`FluenceScheduler`: each
PodGroup a Fluxion jobspec matched all-or-nothing on a resource graph
``cluster > zone > node > core | gpu | memory`` by fluxnb's own Fluxion
matcher).  An MPI application's run time grows with the nodes and zones its
pods span (:class:`~fluxnb.fluence.model.App`); a partial gang does no work.

Examples
--------
>>> from fluxnb.fluence import FluenceScheduler, KubeScheduler, load_manifests, compare
>>> from fluxnb.fluence.workflows import demo_cluster, mpi_workflow
>>> w = load_manifests(demo_cluster(zones=2, nodes_per_zone=4), mpi_workflow({"amg": 2}))
>>> [r.finished for r in compare(w, [FluenceScheduler], seeds=[0, 1])]
[True, True]
"""

from __future__ import annotations

from .fluxion import FluenceScheduler, build_graph, podgroup_jobspec
from .kube import KubeScheduler
from .manifests import ManifestError, load_manifests
from .model import App, Cluster, Node, Pod, PodGroup, Workload
from .quantity import QuantityError, parse_bytes, parse_cpu
from .sim import AppResult, RunResult, compare, simulate

__all__ = ["FluenceScheduler", "KubeScheduler", "build_graph", "podgroup_jobspec", "ManifestError",
           "load_manifests", "App", "Cluster", "Node", "Pod", "PodGroup", "Workload", "QuantityError",
           "parse_bytes", "parse_cpu", "AppResult", "RunResult", "compare", "simulate"]
