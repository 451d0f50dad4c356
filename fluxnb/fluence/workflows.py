"""Manifests for experiments: a cloud-like cluster and MPI applications with their PodGroups.

Everything here returns plain Kubernetes manifests (dicts, ready for
:func:`~.manifests.load_manifests` or ``yaml.safe_dump_all``), so what a
notebook runs is what a cluster would be given.

The three application shapes of :func:`mpi_workflow` are sized after the
converged-computing experiments' workflow (LAMMPS, AMG, QMCPACK) on nodes
of 32 cpus: their parameters are documented in :func:`mpi_workflow`.

Examples
--------
>>> docs = demo_cluster(zones=2, nodes_per_zone=3)
>>> len(docs), docs[0]["metadata"]["labels"]["topology.kubernetes.io/zone"]
(6, 'zone-a')
>>> [d["kind"] for d in mpi_job("lammps-0", pods=4, cpu="8")]
['PodGroup', 'MPIJob']
"""

from __future__ import annotations

from typing import Any

from .model import GPU, GROUP_LABEL, INSTANCE_TYPE_LABEL, ZONE_LABEL

__all__ = ["demo_cluster", "mpi_job", "mpi_workflow", "APPS"]


def demo_cluster(zones: int = 3, nodes_per_zone: int = 8, cpu: str = "32", memory: str = "128Gi",
                 instance_type: str = "hpc7g.8xlarge", gpu_nodes_per_zone: int = 0,
                 gpus: int = 4) -> list[dict]:
    """Node manifests: ``nodes_per_zone`` nodes in each of ``zones`` zones (``zone-a``, ...).

    With ``gpu_nodes_per_zone``, that many nodes of each zone also allocate
    ``gpus`` ``nvidia.com/gpu`` (instance type ``g5.8xlarge``).
    """
    docs = []
    for z in range(zones):
        zone = f"zone-{chr(ord('a') + z)}"
        for i in range(nodes_per_zone):
            gpu = i >= nodes_per_zone - gpu_nodes_per_zone
            alloc: dict[str, Any] = {"cpu": cpu, "memory": memory, "pods": "110"}
            if gpu:
                alloc[GPU] = str(gpus)
            docs.append({"apiVersion": "v1", "kind": "Node",
                         "metadata": {"name": f"{zone}-node{i:02d}",
                                      "labels": {ZONE_LABEL: zone,
                                                 INSTANCE_TYPE_LABEL: "g5.8xlarge" if gpu else instance_type,
                                                 "kubernetes.io/hostname": f"{zone}-node{i:02d}"}},
                         "status": {"allocatable": alloc, "capacity": dict(alloc)}})
    return docs


def mpi_job(name: str, pods: int, cpu: str = "8", memory: str = "16Gi", gpu: int = 0,
            duration: float = 120, node_cost: float | None = None, zone_cost: float | None = None,
            arrival: float = 0, image: str = "ghcr.io/converged-computing/metric-app:latest",
            group: bool = True, kind: str = "MPIJob") -> list[dict]:
    """A PodGroup (``minMember = pods``) and an MPIJob (or a Job) of ``pods`` workers in it.

    The model's parameters go in ``fluxnb.io/*`` annotations (see :mod:`.manifests`).
    With ``group=False`` the pods carry no group label and no PodGroup is made.
    """
    ann = {"fluxnb.io/duration": f"{duration:g}s"}
    if node_cost is not None:
        ann["fluxnb.io/node-cost"] = f"{node_cost:g}"
    if zone_cost is not None:
        ann["fluxnb.io/zone-cost"] = f"{zone_cost:g}"
    if arrival:
        ann["fluxnb.io/arrival"] = f"{arrival:g}s"
    requests: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if gpu:
        requests[GPU] = gpu
    labels = {GROUP_LABEL: name} if group else {}
    template = {"metadata": {"labels": dict(labels)},
                "spec": {"containers": [{"name": "app", "image": image,
                                         "resources": {"requests": requests, "limits": dict(requests)}}]}}
    if kind == "Job":
        job = {"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": name, "annotations": ann},
               "spec": {"parallelism": pods, "completions": pods, "template": template}}
    else:
        template["spec"]["restartPolicy"] = "Never"
        job = {"apiVersion": "kubeflow.org/v2beta1", "kind": "MPIJob",
               "metadata": {"name": name, "annotations": ann},
               "spec": {"slotsPerWorker": 1, "mpiReplicaSpecs": {"Worker": {"replicas": pods,
                                                                             "template": template}}}}
    if not group:
        return [job]
    pg = {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
          "metadata": {"name": name}, "spec": {"minMember": pods}}
    return [pg, job]


#: The applications of :func:`mpi_workflow`: pods, per-pod cpu and memory, run
#: time with every pod on one node, and slowdown per extra node and zone.
APPS = {
    "lammps": dict(pods=8, cpu="16", memory="32Gi", duration=300, node_cost=0.04, zone_cost=0.8),
    "amg": dict(pods=16, cpu="8", memory="16Gi", duration=240, node_cost=0.03, zone_cost=1.2),
    "qmcpack": dict(pods=4, cpu="32", memory="64Gi", duration=420, node_cost=0.01, zone_cost=0.15),
}


def mpi_workflow(copies: dict[str, int] | None = None, spacing: float = 0.0) -> list[dict]:
    """PodGroups and MPIJobs of a multi-application workflow, created together.

    Defaults: 3 LAMMPS-like jobs (8 pods of 16 cpu / 32Gi; 300 s; +4% per extra
    node, +80% per extra zone: a molecular-dynamics halo exchange), 3 AMG-like
    jobs (16 pods of 8 cpu / 16Gi; 240 s; +3% per node, +120% per zone: an
    algebraic multigrid solve, latency-bound in its coarse levels) and 2
    QMCPACK-like jobs (4 pods of 32 cpu / 64Gi; 420 s; +1% per node, +15% per
    zone: quantum Monte Carlo walkers that rarely talk).  ``spacing`` seconds
    separate one job's creation from the next.
    """
    copies = copies or {"lammps": 3, "amg": 3, "qmcpack": 2}
    docs: list[dict] = []
    t = 0.0
    for i in range(max(copies.values(), default=0)):
        for app, n in copies.items():
            if i < n:
                docs += mpi_job(f"{app}-{i}", arrival=t, **APPS[app])  # type: ignore[arg-type]
                t += spacing
    return docs
