"""Reading Kubernetes manifests: quantities as Kubernetes parses them, kinds, bad input."""

from __future__ import annotations

import pytest
import yaml

from fluxnb.fluence import ManifestError, load_manifests
from fluxnb.fluence.quantity import QuantityError, parse_bytes, parse_cpu, parse_duration
from fluxnb.fluence.workflows import demo_cluster, mpi_job

NODE = """
apiVersion: v1
kind: Node
metadata:
  name: n1
  labels: {topology.kubernetes.io/zone: us-east-1a, node.kubernetes.io/instance-type: c5.4xlarge}
spec:
  taints: [{key: dedicated, value: hpc, effect: NoSchedule}]
status:
  allocatable: {cpu: "15890m", memory: 31Gi, nvidia.com/gpu: "2", pods: "58"}
"""


@pytest.mark.parametrize("text,milli", [("500m", 500), ("2", 2000), ("0.25", 250), ("1.5", 1500),
                                         ("1e3", 1000000), ("100u", 1), (3, 3000)])
def test_cpu_quantities_as_kubernetes_rounds_them(text, milli):
    assert parse_cpu(text) == milli


@pytest.mark.parametrize("text,nbytes", [("4Gi", 4 * 2**30), ("1G", 10**9), ("512Mi", 2**29),
                                          ("1.5Gi", 3 * 2**29), ("128974848", 128974848), ("129e6", 129 * 10**6),
                                          ("1k", 1000), ("1Ki", 1024)])
def test_memory_quantities(text, nbytes):
    assert parse_bytes(text) == nbytes


@pytest.mark.parametrize("bad", ["4GB", "1.2.3", "-1", "Gi", "", "4 Gi"])
def test_bad_quantity_names_the_field(bad):
    with pytest.raises(QuantityError, match=r"memory: .* is not a quantity|must not be negative"):
        parse_bytes(bad, "memory")


def test_durations():
    assert parse_duration("1h30m") == 5400 and parse_duration("90s") == 90 and parse_duration("250ms") == 0.25
    with pytest.raises(QuantityError, match="not a duration"):
        parse_duration("soon")


def test_node_fields():
    n = load_manifests(NODE).cluster.nodes[0]
    assert (n.cpu, n.memory, n.gpu, n.max_pods) == (15890, 31 * 2**30, 2, 58)
    assert (n.zone, n.instance_type) == ("us-east-1a", "c5.4xlarge")
    assert n.taints[0].key == "dedicated" and n.taints[0].effect == "NoSchedule"


def test_mpijob_job_and_pod_make_apps_with_their_pods():
    docs = demo_cluster(1, 2) + mpi_job("lammps", pods=3, cpu="2", memory="1Gi", duration=50)
    docs.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                 "spec": {"parallelism": 2, "activeDeadlineSeconds": 600, "template": {"spec": {"containers": [
                     {"name": "a", "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}},
                     {"name": "b", "resources": {"requests": {"cpu": "250m"}}}]}}}})
    docs.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    w = load_manifests(docs)
    lammps, job, pod = w.apps
    assert [p.name for p in lammps.pods] == ["lammps-worker-0", "lammps-worker-1", "lammps-worker-2"]
    assert lammps.duration == 50 and w.groups["lammps"].min_member == 3
    assert {p.gang for p in lammps.pods} == {"lammps"}
    # requests default to limits; containers add up
    assert (job.pods[0].cpu, job.pods[0].memory) == (750, 2**30) and job.walltime == 600
    assert len(job.pods) == 2 and pod.pods[0].cpu == 0
    # pods without a group label are each their own group of one
    assert w.groups["j-0"].implicit and w.groups["j-0"].min_member == 1


def test_mpijob_launcher_joins_the_group():
    docs = mpi_job("amg", pods=2)
    spec = docs[1]["spec"]["mpiReplicaSpecs"]
    spec["Launcher"] = {"replicas": 1, "template": dict(spec["Worker"]["template"])}
    w = load_manifests(demo_cluster(1, 2), docs)
    assert [p.name for p in w.apps[0].pods] == ["amg-launcher-0", "amg-worker-0", "amg-worker-1"]
    assert len(w.groups["amg"].pods) == 3


# -- bad input: one error naming the object and the field ----------------------------------
def test_unknown_kind():
    with pytest.raises(ManifestError, match=r"document 1 \(apps/v1 Deployment\): apiVersion/kind: unknown kind"):
        load_manifests({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}})


def test_podgroup_of_another_api_version_is_unknown():
    with pytest.raises(ManifestError, match="scheduling.sigs.k8s.io/v1alpha1 PodGroup"):
        load_manifests({"apiVersion": "scheduling.sigs.k8s.io/v1alpha1", "kind": "PodGroup",
                        "metadata": {"name": "g"}, "spec": {"minMember": 2}})


def test_unknown_field_in_a_pod_template():
    docs = mpi_job("amg", pods=2, kind="Job")
    docs[1]["spec"]["template"]["spec"]["nodeName"] = "n1"
    with pytest.raises(ManifestError, match=r"^Job/amg: spec.template.spec.nodeName: unknown field"):
        load_manifests(demo_cluster(1, 2), docs)


def test_unknown_node_resource_and_annotation():
    bad = yaml.safe_load(NODE)
    bad["status"]["allocatable"]["amd.com/gpu"] = 1
    with pytest.raises(ManifestError, match=r"^Node/n1: status.allocatable.amd.com/gpu: unknown resource"):
        load_manifests(bad)
    docs = mpi_job("amg", pods=2)
    docs[1]["metadata"]["annotations"]["fluxnb.io/runtime"] = "5s"
    with pytest.raises(ManifestError, match=r"^MPIJob/amg: metadata.annotations.fluxnb.io/runtime: unknown"):
        load_manifests(docs)


def test_bad_quantity_in_a_container_names_the_path():
    docs = mpi_job("amg", pods=2, memory="16GB")
    with pytest.raises(ManifestError, match=r"^MPIJob/amg: spec.mpiReplicaSpecs.Worker.template.spec"
                                            r".containers\[0\].resources.requests.memory: '16GB' is not a quantity"):
        load_manifests(demo_cluster(1, 2), docs)


def test_pod_larger_than_any_node():
    with pytest.raises(ManifestError, match=r"^MPIJob/big: spec.mpiReplicaSpecs.Worker.template.spec"
                                            r".containers\[\*\].resources.requests.cpu: pod big-worker-0 requests cpu 64, "
                                            r"more than any node allocates \(largest: 32\)"):
        load_manifests(demo_cluster(2, 2), mpi_job("big", pods=2, cpu="64"))
    # each part fits some node, but no node has all of it
    docs = demo_cluster(1, 2, gpu_nodes_per_zone=1, gpus=1, cpu="32")
    docs[1]["status"]["allocatable"]["cpu"] = "8"
    with pytest.raises(ManifestError, match="no single node allocates all of it"):
        load_manifests(docs, mpi_job("g", pods=1, cpu="16", gpu=1))


def test_min_member_larger_than_the_group():
    docs = mpi_job("lammps", pods=4)
    docs[0]["spec"]["minMember"] = 5
    with pytest.raises(ManifestError, match=r"^PodGroup/lammps: spec.minMember: 5 exceeds the 4 pod\(s\) "
                                            r"labelled scheduling.x-k8s.io/pod-group=lammps"):
        load_manifests(demo_cluster(1, 4), docs)


def test_group_label_without_a_podgroup():
    docs = mpi_job("lammps", pods=2)[1:]
    with pytest.raises(ManifestError,
                       match=r"MPIJob/lammps: .*scheduling.x-k8s.io/pod-group: no PodGroup named 'lammps'"):
        load_manifests(demo_cluster(1, 2), docs)


def test_missing_allocatable_and_name():
    with pytest.raises(ManifestError, match=r"^Node/n: status.allocatable: is missing"):
        load_manifests({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}})
    with pytest.raises(ManifestError, match="metadata.name is missing"):
        load_manifests({"apiVersion": "v1", "kind": "Node", "metadata": {}})
