"""Placements expected from the schedulers' definitions (kube-scheduler's docs, Fluence's gangs)."""

from __future__ import annotations

import random

import pytest

from fluxnb.fluence import (FluenceScheduler, KubeScheduler, build_graph, load_manifests, podgroup_jobspec,
                            simulate)
from fluxnb.fluence.kube import balanced_allocation, least_allocated
from fluxnb.fluence.model import Node, Toleration
from fluxnb.fluence.workflows import demo_cluster, mpi_job

GI = 2**30


def app(name, pods, cpu, duration=100, memory="1Gi", **kw):
    return mpi_job(name, pods=pods, cpu=cpu, memory=memory, duration=duration, node_cost=0, zone_cost=0, **kw)


# -- kube-scheduler -------------------------------------------------------------------------
def test_score_formulas():
    n = Node("n", cpu=4000, memory=8 * GI)
    # LeastAllocated: mean of (alloc - requested) * 100 // alloc over cpu and memory
    assert least_allocated(n, 1000, 4 * GI) == (75 + 50) // 2
    assert least_allocated(n, 5000, 4 * GI) == (0 + 50) // 2  # over-requested cpu scores 0
    # BalancedAllocation: (1 - |f_cpu - f_mem| / 2) * 100
    assert balanced_allocation(n, 1000, 2 * GI) == 100
    assert balanced_allocation(n, 4000, 0) == 50


def test_least_allocated_spreads_pods_over_empty_nodes():
    w = load_manifests(demo_cluster(zones=1, nodes_per_zone=4), app("a", pods=4, cpu="2"))
    for seed in range(5):
        r = simulate(w, KubeScheduler(), seed)
        assert len(set(r.apps[0].placement.values())) == 4  # one pod per node


def test_ties_are_broken_at_random_with_the_seed():
    w = load_manifests(demo_cluster(zones=1, nodes_per_zone=4), app("a", pods=1, cpu="2"))
    picks = {seed: simulate(w, KubeScheduler(), seed).apps[0].placement["a-worker-0"] for seed in range(20)}
    assert len(set(picks.values())) > 1
    assert picks == {seed: simulate(w, KubeScheduler(), seed).apps[0].placement["a-worker-0"] for seed in range(20)}


def test_filters_taints_selector_and_affinity():
    nodes = demo_cluster(zones=2, nodes_per_zone=2)
    nodes[0]["spec"] = {"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}
    job = app("a", pods=1, cpu="2")
    w = load_manifests(nodes, job)
    k = KubeScheduler()
    k.start(w, random.Random(0))
    pod = w.apps[0].pods[0]
    assert not k.feasible(pod, 0) and k.feasible(pod, 1)
    pod.tolerations = (Toleration("dedicated", "Equal", "x"),)
    assert k.feasible(pod, 0)
    pod.node_selector = {"topology.kubernetes.io/zone": "zone-b"}
    assert [i for i in range(4) if k.feasible(pod, i)] == [2, 3]


def test_two_half_placed_groups_deadlock():
    # 2 nodes x 4 cpu; groups a and b each want 4 pods of 2 cpu (the whole cluster);
    # their pods are created alternately, so each group gets half the cluster.
    w = load_manifests(demo_cluster(zones=1, nodes_per_zone=2, cpu="4"), app("a", 4, "2"), app("b", 4, "2"))
    order = {f"{g}-worker-{i}": 2 * i + (g == "b") for g in "ab" for i in range(4)}
    r = simulate(w, KubeScheduler(), seed=3, create_times={k: v / 10 for k, v in order.items()})
    assert not r.finished and r.makespan is None
    assert sorted(r.deadlocked) == ["a", "b"]
    assert [len(a.placement) for a in r.apps] == [2, 2]
    # the same case under Fluence: one gang runs, the other waits whole and runs next
    f = simulate(w, FluenceScheduler(), seed=3, create_times={k: v / 10 for k, v in order.items()})
    assert f.finished and f.deadlocked == []
    a, b = f.apps
    assert a.started == pytest.approx(0.6) and b.started == pytest.approx(a.finished)
    assert f.makespan == pytest.approx(0.6 + 200)


# -- Fluence ------------------------------------------------------------------------------------
def test_podgroup_jobspec_translation():
    w = load_manifests(demo_cluster(1, 2, gpu_nodes_per_zone=1), mpi_job("q", pods=3, cpu="1500m",
                                                                           memory="5Gi", gpu=1))
    js = podgroup_jobspec(w.groups["q"], duration=90.5)
    slot = js["resources"][0]
    assert slot["type"] == "slot" and slot["count"] == 3 and slot["label"] == "q"
    # cpu rounded up to whole cores, memory up to whole 4 GB vertices
    assert slot["with"] == [{"type": "core", "count": 2}, {"type": "gpu", "count": 1},
                            {"type": "memory", "count": 8}]
    assert js["attributes"]["system"]["duration"] == 91
    assert podgroup_jobspec(w.groups["q"], 1, zone=True)["resources"][0]["type"] == "zone"


def test_resource_graph_of_the_nodes():
    w = load_manifests(demo_cluster(zones=2, nodes_per_zone=3, cpu="15500m", memory="62Gi",
                                    gpu_nodes_per_zone=1, gpus=2))
    g = build_graph(w.cluster)
    assert len(g.by_type["zone"]) == 2 and len(g.by_type["node"]) == 6
    assert len(g.by_type["core"]) == 6 * 15 and len(g.by_type["gpu"]) == 2 * 2
    assert len(g.by_type["memory"]) == 6 * 15 and {v.size for v in g.by_type["memory"]} == {4}
    node = g.by_path["/cluster0/zone1/node3"]
    assert node.properties["k8s-name"] == "zone-b-node00"


def test_a_gang_is_placed_all_or_nothing():
    # 2 nodes x 4 cpu, one 1-pod job holds 2 cpu for 50 s; a gang of 4 x 2 cpu needs all 8
    w = load_manifests(demo_cluster(zones=1, nodes_per_zone=2, cpu="4"), app("small", 1, "2", duration=50),
                       app("gang", 4, "2", arrival=1))
    f = simulate(w, FluenceScheduler(), seed=0)
    small, gang = f.apps
    assert gang.started == pytest.approx(small.finished)   # no pod of the gang before that
    assert gang.idle_pod_seconds == pytest.approx(0, abs=1e-9)  # all bound in the same instant
    k = simulate(w, KubeScheduler(), seed=0)
    assert k.apps[1].idle_pod_seconds > 3 * 40  # kube binds 3 pods at once, they wait for the 4th


def test_a_gang_that_cannot_fit_gets_no_pod():
    w = load_manifests(demo_cluster(zones=1, nodes_per_zone=2, cpu="4"), app("big", 5, "2"))
    f = simulate(w, FluenceScheduler(), seed=0)
    assert not f.finished and f.apps[0].state == "pending" and f.apps[0].placement == {}
    k = simulate(w, KubeScheduler(), seed=0)
    assert k.apps[0].state == "partial" and len(k.apps[0].placement) == 4


def test_zone_aware_match_keeps_a_group_in_one_zone():
    # two zones of 2 nodes x 8 cpu; a 4-cpu pod holds zone-a's first node, so zone-a has
    # 12 cpu free and zone-b 16: a group of 4 x 4 cpu fits zone-b only.
    docs = [demo_cluster(zones=2, nodes_per_zone=2, cpu="8"), app("hold", 1, "4", duration=1000),
            app("g", 4, "4", arrival=1)]
    w = load_manifests(*docs)
    f = simulate(w, FluenceScheduler(), seed=0)
    g = f.apps[1]
    assert g.zones == 1 and set(g.placement.values()) == {"zone-b-node00", "zone-b-node01"}
    # without zone awareness, lonode fills the lowest nodes first and spans both zones
    n = simulate(w, FluenceScheduler(zone_aware=False), seed=0).apps[1]
    assert n.zones == 2 and n.nodes == 3
    # a group larger than any zone still runs, across zones
    big = load_manifests(demo_cluster(zones=2, nodes_per_zone=2, cpu="8"), app("g", 6, "4"))
    assert simulate(big, FluenceScheduler(), seed=0).apps[0].zones == 2


def test_easy_backfill_around_a_reservation():
    # 2 nodes x 4 cpu. A holds one node until t=100; B (both nodes) is reserved at t=100;
    # C (one node, 50 s) fits before that and starts at once; D (one node, 200 s) would
    # delay B, so it waits until B is done.
    w = load_manifests(demo_cluster(zones=1, nodes_per_zone=2, cpu="4"), app("a", 1, "4", 100),
                       app("b", 2, "4", 100, arrival=1), app("c", 1, "4", 50, arrival=2),
                       app("d", 1, "4", 200, arrival=3))
    r = simulate(w, FluenceScheduler(), seed=0, create_spread=0)
    a, b, c, d = r.apps
    assert c.started == 2 and b.started == 100 and d.started == 200
    fcfs = simulate(w, FluenceScheduler(queue_policy="fcfs"), seed=0, create_spread=0)
    assert fcfs.apps[2].started >= 200  # no backfill: C waits behind B


def test_fluence_is_deterministic_for_a_creation_order():
    w = load_manifests(demo_cluster(zones=2, nodes_per_zone=3), app("x", 6, "8"), app("y", 6, "8"))
    p1 = [a.placement for a in simulate(w, FluenceScheduler(), seed=5).apps]
    p2 = [a.placement for a in simulate(w, FluenceScheduler(), seed=5).apps]
    assert p1 == p2


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="unknown match policy 'fastest'"):
        FluenceScheduler(policy="fastest")
    with pytest.raises(ValueError, match="queue_policy must be"):
        FluenceScheduler(queue_policy="lifo")


def test_fluence_honours_node_selectors_and_frees_the_rest():
    # 2 zones x 1 node x 8 cpu: "a" must run in zone-b; "b" is free to go anywhere and
    # must get zone-a's node at once (the nodes excluded for "a" are not left down).
    a = app("a", 1, "8")
    a[1]["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["nodeSelector"] = {
        "topology.kubernetes.io/zone": "zone-b"}
    w = load_manifests(demo_cluster(zones=2, nodes_per_zone=1, cpu="8"), a, app("b", 1, "8", arrival=1))
    r = simulate(w, FluenceScheduler(), seed=0, create_spread=0)
    assert r.apps[0].placement == {"a-worker-0": "zone-b-node00"}
    assert r.apps[1].placement == {"b-worker-0": "zone-a-node00"} and r.apps[1].started == 1


def test_pods_beyond_min_member_are_matched_one_slot_each():
    docs = app("g", 4, "4")
    docs[0]["spec"]["minMember"] = 2
    w = load_manifests(demo_cluster(zones=1, nodes_per_zone=2, cpu="8"), docs)
    f = FluenceScheduler()
    r = simulate(w, f, seed=0)
    assert r.finished and len(r.apps[0].placement) == 4
    assert f.jobspecs["g"]["resources"][0]["with"][0]["count"] == 2  # the gang: minMember slots


def test_kube_prefer_no_schedule_and_preferred_affinity_steer_the_score():
    nodes = demo_cluster(zones=1, nodes_per_zone=2)
    nodes[0]["spec"] = {"taints": [{"key": "spot", "value": "yes", "effect": "PreferNoSchedule"}]}
    w = load_manifests(nodes, app("a", 1, "2"))
    picks = {simulate(w, KubeScheduler(), s).apps[0].placement["a-worker-0"] for s in range(10)}
    assert picks == {"zone-a-node01"}  # TaintToleration (weight 3) breaks the tie
    b = app("b", 1, "2")
    b[1]["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["affinity"] = {"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "preference": {"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["zone-a-node00"]}]}}]}}
    w = load_manifests(demo_cluster(zones=1, nodes_per_zone=2), b)
    picks = {simulate(w, KubeScheduler(), s).apps[0].placement["b-worker-0"] for s in range(10)}
    assert picks == {"zone-a-node00"}


def test_walltime_stops_an_application_and_fluxion_plans_with_it():
    # "a" would run 100 s but has a 30 s walltime: it is stopped at 30 s, and "b", which
    # needs the same node, starts then under both schedulers (no overcommitted node).
    a = app("a", 1, "8", duration=100)
    a[1]["metadata"]["annotations"]["fluxnb.io/walltime"] = "30s"
    w = load_manifests(demo_cluster(zones=1, nodes_per_zone=1, cpu="8"), a, app("b", 1, "8", arrival=1))
    for sched in (FluenceScheduler(), KubeScheduler()):
        r = simulate(w, sched, seed=0, create_spread=0)
        ra, rb = r.apps
        assert ra.timed_out and ra.finished == 30 and rb.started == 30 and not rb.timed_out
