"""Read a model cluster and workload from ordinary Kubernetes manifests.

Kinds read: ``v1`` ``Node`` and ``Pod``, ``batch/v1`` ``Job``, ``kubeflow.org``
``MPIJob`` (``v2beta1`` or ``v1``: ``mpiReplicaSpecs.Launcher`` and ``Worker``), and
the scheduler-plugins coscheduling ``PodGroup`` (``scheduling.x-k8s.io/v1alpha1``,
``spec.minMember``; pods join a group with the label
``scheduling.x-k8s.io/pod-group: <name>``).  ``List`` objects are unpacked.

What Kubernetes does not say, the model takes from annotations on the Job,
MPIJob or Pod: ``fluxnb.io/duration`` (run time with all pods on one node),
``fluxnb.io/node-cost`` and ``fluxnb.io/zone-cost`` (see :mod:`.model`),
``fluxnb.io/arrival`` (when it is created, seconds after the start) and
``fluxnb.io/walltime`` (what Fluxion plans for; a Job's
``activeDeadlineSeconds`` too).

The reader is strict: an unknown kind, an unknown field where the model reads a
manifest, a quantity Kubernetes would refuse, a pod no node could ever hold or
a PodGroup whose ``minMember`` exceeds its pods raise one :class:`ManifestError`
naming the object and the field (``Job/amg-1: spec.template.spec.containers[0].
resources.requests.cpu``).  Fields that change nothing here (images, commands,
volumes, ...) are accepted and ignored.

Examples
--------
>>> w = load_manifests('''
... apiVersion: v1
... kind: Node
... metadata: {name: n1, labels: {topology.kubernetes.io/zone: a}}
... status: {allocatable: {cpu: "8", memory: 32Gi}}
... ''')
>>> w.cluster.nodes[0].cpu, w.cluster.nodes[0].memory // 2**30, w.cluster.nodes[0].zone
(8000, 32, 'a')
"""

from __future__ import annotations

import os
from typing import Any, Iterable

import yaml

from .model import (GPU, GROUP_LABEL, INSTANCE_TYPE_LABEL, ZONE_LABEL, App, Cluster, Node, Pod,
                    PodGroup, Requirement, Taint, Toleration, Workload, DEFAULT_NODE_COST,
                    DEFAULT_ZONE_COST)
from .quantity import QuantityError, parse_bytes, parse_count, parse_cpu, parse_duration

__all__ = ["ManifestError", "load_manifests", "check_workload"]

KINDS = {("v1", "Node"), ("v1", "Pod"), ("v1", "List"), ("batch/v1", "Job"),
         ("kubeflow.org/v2beta1", "MPIJob"), ("kubeflow.org/v1", "MPIJob"),
         ("scheduling.x-k8s.io/v1alpha1", "PodGroup")}
_TOP = {"apiVersion", "kind", "metadata", "spec", "status"}
_META = {"name", "namespace", "labels", "annotations", "uid", "generateName", "creationTimestamp",
         "resourceVersion", "ownerReferences", "finalizers", "generation"}
_ANNOTATIONS = {"fluxnb.io/duration", "fluxnb.io/node-cost", "fluxnb.io/zone-cost",
                "fluxnb.io/arrival", "fluxnb.io/walltime"}
_NODE_SPEC = {"taints", "unschedulable", "podCIDR", "podCIDRs", "providerID"}
_NODE_STATUS = {"allocatable", "capacity", "conditions", "addresses", "nodeInfo", "images",
                "daemonEndpoints", "phase"}
_NODE_RES = {"cpu", "memory", GPU, "pods", "ephemeral-storage"}
_POD_SPEC_READ = {"containers", "nodeSelector", "affinity", "tolerations", "priority",
                  "initContainers", "schedulerName"}
_POD_SPEC_IGNORED = {"restartPolicy", "volumes", "hostname", "subdomain", "serviceAccountName",
                     "terminationGracePeriodSeconds", "dnsPolicy", "securityContext",
                     "imagePullSecrets", "hostNetwork", "hostIPC", "hostPID", "shareProcessNamespace",
                     "setHostnameAsFQDN", "enableServiceLinks", "automountServiceAccountToken",
                     "priorityClassName", "activeDeadlineSeconds", "serviceAccount"}
_CONTAINER_IGNORED = {"name", "image", "command", "args", "env", "envFrom", "ports", "volumeMounts",
                      "imagePullPolicy", "workingDir", "securityContext", "stdin", "tty",
                      "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
                      "terminationMessagePath", "terminationMessagePolicy", "volumeDevices"}
_POD_RES = {"cpu", "memory", GPU, "ephemeral-storage"}
_JOB_SPEC = {"parallelism", "completions", "template", "activeDeadlineSeconds", "backoffLimit",
             "completionMode", "ttlSecondsAfterFinished", "suspend", "manualSelector", "selector",
             "podFailurePolicy", "backoffLimitPerIndex", "maxFailedIndexes", "podReplacementPolicy"}
_MPI_SPEC = {"mpiReplicaSpecs", "slotsPerWorker", "runPolicy", "mpiImplementation",
             "sshAuthMountPath", "launcherCreationPolicy", "runLauncherAsWorker", "cleanPodPolicy"}
_REPLICA = {"replicas", "template", "restartPolicy"}
_PG_SPEC = {"minMember", "minResources", "scheduleTimeoutSeconds"}
_OPERATORS = {"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"}
_EFFECTS = {"NoSchedule", "PreferNoSchedule", "NoExecute"}


class ManifestError(ValueError):
    """A manifest the model cannot read as written; the message names the object and field."""


def _docs(source: Any) -> Iterable[Any]:
    if isinstance(source, dict):
        yield source
    elif isinstance(source, (list, tuple)):
        for s in source:
            yield from _docs(s)
    elif isinstance(source, (str, os.PathLike)):
        text = str(source)
        if "\n" not in text and (text.endswith((".yaml", ".yml", ".json")) or os.path.exists(text)):
            try:
                with open(text) as f:
                    text = f.read()
            except OSError as exc:
                raise ManifestError(f"{source}: cannot read manifest file: {exc.strerror}") from None
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            raise ManifestError(f"invalid YAML: {exc}") from None
        for d in docs:
            if d is not None:
                yield d
    else:
        raise ManifestError("expected YAML text, a path, a dict or a list of them, "
                            f"got {type(source).__name__}")


class _Reader:
    def __init__(self, obj: str) -> None:
        self.obj = obj

    def fail(self, field: str, msg: str) -> ManifestError:
        return ManifestError(f"{self.obj}: {field}: {msg}")

    def mapping(self, d: Any, field: str, known: set[str] | None = None, ignored: set[str] = set()) -> dict:
        if d is None:
            return {}
        if not isinstance(d, dict):
            raise self.fail(field, f"must be a mapping, got {type(d).__name__}")
        if known is not None:
            for k in d:
                if k not in known and k not in ignored:
                    more = f"; {len(ignored)} others are accepted and ignored" if ignored else ""
                    raise self.fail(f"{field}.{k}" if field else k,
                                    f"unknown field (read here: {', '.join(sorted(known))}{more})")
        return d

    def seq(self, d: Any, field: str) -> list:
        if d is None:
            return []
        if not isinstance(d, list):
            raise self.fail(field, f"must be a list, got {type(d).__name__}")
        return d

    def str_map(self, d: Any, field: str) -> dict[str, str]:
        d = self.mapping(d, field)
        for k, v in d.items():
            if not isinstance(v, str):
                raise self.fail(f"{field}.{k}", f"must be a string, got {v!r}")
        return dict(d)

    def int_(self, v: Any, field: str, minimum: int = 0) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(field, f"must be an integer, got {v!r}")
        if v < minimum:
            raise self.fail(field, f"must be >= {minimum}, got {v}")
        return v

    def quantity(self, fn: Any, v: Any, field: str) -> int:
        try:
            return fn(v, field)
        except QuantityError as exc:
            raise ManifestError(f"{self.obj}: {exc}") from None

    def number(self, v: Any, field: str) -> float:
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise self.fail(field, f"must be a number, got {v!r}") from None
        if x < 0:
            raise self.fail(field, f"must be >= 0, got {v!r}")
        return x

    def duration(self, v: Any, field: str) -> float:
        try:
            return parse_duration(v, field)
        except QuantityError as exc:
            raise ManifestError(f"{self.obj}: {exc}") from None


def _metadata(r: _Reader, doc: dict, kind: str) -> dict:
    meta = r.mapping(doc.get("metadata"), "metadata", _META)
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ManifestError(f"{kind} (document without a name): metadata.name is missing")
    r.obj = f"{kind}/{name}"
    r.str_map(meta.get("labels"), "metadata.labels")
    ann = r.str_map(meta.get("annotations"), "metadata.annotations")
    for k in ann:
        if k.startswith("fluxnb.io/") and k not in _ANNOTATIONS:
            raise r.fail(f"metadata.annotations.{k}",
                         f"unknown fluxnb.io annotation (known: {', '.join(sorted(_ANNOTATIONS))})")
    return meta


def _node(r: _Reader, doc: dict, meta: dict, index: int) -> Node:
    spec = r.mapping(doc.get("spec"), "spec", _NODE_SPEC)
    status = r.mapping(doc.get("status"), "status", _NODE_STATUS)
    alloc = r.mapping(status.get("allocatable") or status.get("capacity"), "status.allocatable")
    if not alloc:
        raise r.fail("status.allocatable", "is missing (the node's cpu and memory)")
    for k in alloc:
        if k not in _NODE_RES and not k.startswith("hugepages-"):
            raise r.fail(f"status.allocatable.{k}",
                         f"unknown resource (known: {', '.join(sorted(_NODE_RES))})")
    for k in ("cpu", "memory"):
        if k not in alloc:
            raise r.fail(f"status.allocatable.{k}", "is missing")
    labels = dict(meta.get("labels") or {})
    taints = []
    for i, t in enumerate(r.seq(spec.get("taints"), "spec.taints")):
        t = r.mapping(t, f"spec.taints[{i}]", {"key", "value", "effect", "timeAdded"})
        if not isinstance(t.get("key"), str) or not t["key"]:
            raise r.fail(f"spec.taints[{i}].key", "is missing")
        if t.get("effect") not in _EFFECTS:
            raise r.fail(f"spec.taints[{i}].effect", f"must be one of {', '.join(sorted(_EFFECTS))}")
        taints.append(Taint(t["key"], str(t.get("value", "")), t["effect"]))
    return Node(meta["name"],
                cpu=r.quantity(parse_cpu, alloc["cpu"], "status.allocatable.cpu"),
                memory=r.quantity(parse_bytes, alloc["memory"], "status.allocatable.memory"),
                gpu=r.quantity(parse_count, alloc.get(GPU, 0), f"status.allocatable.{GPU}"),
                max_pods=r.quantity(parse_count, alloc.get("pods", 110), "status.allocatable.pods"),
                zone=labels.get(ZONE_LABEL, ""), instance_type=labels.get(INSTANCE_TYPE_LABEL, ""),
                labels=labels, taints=tuple(taints), unschedulable=bool(spec.get("unschedulable")),
                index=index)


def _requirements(r: _Reader, exprs: Any, field: str) -> tuple[Requirement, ...]:
    out = []
    for i, e in enumerate(r.seq(exprs, field)):
        f = f"{field}[{i}]"
        e = r.mapping(e, f, {"key", "operator", "values"})
        if e.get("operator") not in _OPERATORS:
            raise r.fail(f"{f}.operator",
                         f"must be one of {', '.join(sorted(_OPERATORS))}, got {e.get('operator')!r}")
        if not isinstance(e.get("key"), str):
            raise r.fail(f"{f}.key", "is missing")
        vals = tuple(str(v) for v in r.seq(e.get("values"), f"{f}.values"))
        if e["operator"] in ("In", "NotIn", "Gt", "Lt") and not vals:
            raise r.fail(f"{f}.values", f"operator {e['operator']} needs values")
        out.append(Requirement(e["key"], e["operator"], vals))
    return tuple(out)


def _term(r: _Reader, t: Any, field: str) -> tuple[Requirement, ...]:
    t = r.mapping(t, field, {"matchExpressions", "matchFields"})
    if t.get("matchFields"):
        raise r.fail(f"{field}.matchFields", "not modelled (use matchExpressions on node labels)")
    return _requirements(r, t.get("matchExpressions"), f"{field}.matchExpressions")


def _pod_spec(r: _Reader, spec: Any, field: str, name: str, app: str, group: str) -> Pod:
    spec = r.mapping(spec, field, _POD_SPEC_READ, _POD_SPEC_IGNORED)
    sched = spec.get("schedulerName")
    if sched is not None and not isinstance(sched, str):
        raise r.fail(f"{field}.schedulerName", "must be a string")
    cpu = mem = gpu = 0
    containers = r.seq(spec.get("containers"), f"{field}.containers")
    if not containers:
        raise r.fail(f"{field}.containers", "a pod needs at least one container")

    def requests(c: Any, cf: str) -> tuple[int, int, int]:
        c = r.mapping(c, cf, {"resources"}, _CONTAINER_IGNORED)
        res = r.mapping(c.get("resources"), f"{cf}.resources", {"requests", "limits", "claims"})
        req = dict(r.mapping(res.get("limits"), f"{cf}.resources.limits"))  # requests default to limits
        req.update(r.mapping(res.get("requests"), f"{cf}.resources.requests"))
        for part in ("limits", "requests"):
            for k in res.get(part) or {}:
                if k not in _POD_RES and not k.startswith("hugepages-"):
                    raise r.fail(f"{cf}.resources.{part}.{k}",
                                 f"unknown resource (known: {', '.join(sorted(_POD_RES))})")
        src = lambda k: "requests" if k in (res.get("requests") or {}) else "limits"  # noqa: E731
        return (r.quantity(parse_cpu, req.get("cpu", 0), f"{cf}.resources.{src('cpu')}.cpu"),
                r.quantity(parse_bytes, req.get("memory", 0), f"{cf}.resources.{src('memory')}.memory"),
                r.quantity(parse_count, req.get(GPU, 0), f"{cf}.resources.{src(GPU)}.{GPU}"))

    for i, c in enumerate(containers):
        a, b, g = requests(c, f"{field}.containers[{i}]")
        cpu, mem, gpu = cpu + a, mem + b, gpu + g
    for i, c in enumerate(r.seq(spec.get("initContainers"), f"{field}.initContainers")):
        a, b, g = requests(c, f"{field}.initContainers[{i}]")  # init containers run one at a time
        cpu, mem, gpu = max(cpu, a), max(mem, b), max(gpu, g)
    selector = r.str_map(spec.get("nodeSelector"), f"{field}.nodeSelector")
    required: tuple = ()
    preferred: list = []
    aff = r.mapping(spec.get("affinity"), f"{field}.affinity", {"nodeAffinity"},
                    {"podAffinity", "podAntiAffinity"})
    if aff.get("podAffinity") or aff.get("podAntiAffinity"):
        raise r.fail(f"{field}.affinity", "podAffinity/podAntiAffinity are not modelled")
    na = r.mapping(aff.get("nodeAffinity"), f"{field}.affinity.nodeAffinity",
                   {"requiredDuringSchedulingIgnoredDuringExecution",
                    "preferredDuringSchedulingIgnoredDuringExecution"})
    af = f"{field}.affinity.nodeAffinity"
    req = r.mapping(na.get("requiredDuringSchedulingIgnoredDuringExecution"),
                    f"{af}.requiredDuringSchedulingIgnoredDuringExecution", {"nodeSelectorTerms"})
    tf = f"{af}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
    terms = r.seq(req.get("nodeSelectorTerms"), tf)
    required = tuple(_term(r, t, f"{tf}[{i}]") for i, t in enumerate(terms))
    for i, p in enumerate(r.seq(na.get("preferredDuringSchedulingIgnoredDuringExecution"),
                                f"{af}.preferredDuringSchedulingIgnoredDuringExecution")):
        pf = f"{af}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
        p = r.mapping(p, pf, {"weight", "preference"})
        preferred.append((r.int_(p.get("weight"), f"{pf}.weight", 1),
                          _term(r, p.get("preference"), f"{pf}.preference")))
    tols = []
    for i, t in enumerate(r.seq(spec.get("tolerations"), f"{field}.tolerations")):
        tf = f"{field}.tolerations[{i}]"
        t = r.mapping(t, tf, {"key", "operator", "value", "effect", "tolerationSeconds"})
        op = t.get("operator", "Equal")
        if op not in ("Equal", "Exists"):
            raise r.fail(f"{tf}.operator", f"must be Equal or Exists, got {op!r}")
        if t.get("effect", "") not in _EFFECTS | {""}:
            raise r.fail(f"{tf}.effect", f"must be one of {', '.join(sorted(_EFFECTS))}")
        tols.append(Toleration(str(t.get("key", "")), op, str(t.get("value", "")), str(t.get("effect", ""))))
    prio = r.int_(spec.get("priority", 0), f"{field}.priority", -2**31) if "priority" in spec else 0
    return Pod(name, app, group, cpu, mem, gpu, selector, required, tuple(preferred), tuple(tols), prio,
               source=field)


def _template(r: _Reader, t: Any, field: str) -> tuple[dict, Any]:
    t = r.mapping(t, field, {"metadata", "spec"})
    if "spec" not in t:
        raise r.fail(f"{field}.spec", "is missing")
    tm = r.mapping(t.get("metadata"), f"{field}.metadata", _META)
    return r.str_map(tm.get("labels"), f"{field}.metadata.labels"), t["spec"]


def _app_params(r: _Reader, meta: dict, app: App) -> App:
    ann = meta.get("annotations") or {}
    if "fluxnb.io/duration" in ann:
        app.duration = r.duration(ann["fluxnb.io/duration"], "metadata.annotations.fluxnb.io/duration")
    if "fluxnb.io/walltime" in ann:
        app.walltime = r.duration(ann["fluxnb.io/walltime"], "metadata.annotations.fluxnb.io/walltime")
    if "fluxnb.io/arrival" in ann:
        app.arrival = r.duration(ann["fluxnb.io/arrival"], "metadata.annotations.fluxnb.io/arrival")
    if "fluxnb.io/node-cost" in ann:
        app.node_cost = r.number(ann["fluxnb.io/node-cost"], "metadata.annotations.fluxnb.io/node-cost")
    if "fluxnb.io/zone-cost" in ann:
        app.zone_cost = r.number(ann["fluxnb.io/zone-cost"], "metadata.annotations.fluxnb.io/zone-cost")
    return app


def _owner(r: _Reader, doc: dict, meta: dict, kind: str) -> App:
    name = meta["name"]
    own_group = (meta.get("labels") or {}).get(GROUP_LABEL, "")
    pods: list[Pod] = []
    app = App(name, kind, pods, node_cost=DEFAULT_NODE_COST, zone_cost=DEFAULT_ZONE_COST)
    if kind == "Pod":
        pods.append(_pod_spec(r, doc.get("spec"), "spec", name, name, own_group))
        return _app_params(r, meta, app)
    if kind == "Job":
        spec = r.mapping(doc.get("spec"), "spec", _JOB_SPEC)
        n = r.int_(spec.get("parallelism", spec.get("completions", 1)), "spec.parallelism", 1)
        labels, pspec = _template(r, spec.get("template"), "spec.template")
        group = labels.get(GROUP_LABEL, own_group)
        for i in range(n):
            p = _pod_spec(r, pspec, "spec.template.spec", f"{name}-{i}", name, group)
            p.index = i
            pods.append(p)
        if "activeDeadlineSeconds" in spec:
            app.walltime = float(r.int_(spec["activeDeadlineSeconds"], "spec.activeDeadlineSeconds", 1))
        return _app_params(r, meta, app)
    spec = r.mapping(doc.get("spec"), "spec", _MPI_SPEC)
    reps = r.mapping(spec.get("mpiReplicaSpecs"), "spec.mpiReplicaSpecs", {"Launcher", "Worker"})
    if "Worker" not in reps:
        raise r.fail("spec.mpiReplicaSpecs.Worker", "is missing")
    for role in ("Launcher", "Worker"):
        if role not in reps:
            continue
        f = f"spec.mpiReplicaSpecs.{role}"
        rs = r.mapping(reps[role], f, _REPLICA)
        n = r.int_(rs.get("replicas", 1), f"{f}.replicas", 1 if role == "Worker" else 0)
        labels, pspec = _template(r, rs.get("template"), f"{f}.template")
        group = labels.get(GROUP_LABEL, own_group)
        for i in range(n):
            p = _pod_spec(r, pspec, f"{f}.template.spec", f"{name}-{role.lower()}-{i}", name, group)
            p.index = len(pods)
            pods.append(p)
    return _app_params(r, meta, app)


def load_manifests(*sources: Any) -> Workload:
    """Read Nodes, Pods, Jobs, MPIJobs and PodGroups into a :class:`~.model.Workload`.

    Each source is YAML text (several documents allowed), a path to a YAML file,
    a parsed manifest (dict) or a list of any of these.

    Raises
    ------
    ManifestError
        One error for the first problem found, naming the object and field.
    """
    nodes: list[Node] = []
    apps: list[App] = []
    groups: dict[str, PodGroup] = {}
    pending = [d for s in sources for d in _docs(s)]
    i = 0
    while i < len(pending):
        doc = pending[i]
        i += 1
        if not isinstance(doc, dict):
            raise ManifestError(f"document {i}: a manifest must be a mapping, got {type(doc).__name__}")
        api, kind = doc.get("apiVersion"), doc.get("kind")
        if (api, kind) not in KINDS:
            known = ", ".join(f"{a} {k}" for a, k in sorted(KINDS))
            raise ManifestError(f"document {i} ({api or '?'} {kind or '?'}): apiVersion/kind: unknown kind "
                                f"(known: {known})")
        r = _Reader(kind)
        if kind == "List":
            r.mapping(doc, "", {"apiVersion", "kind", "items", "metadata"})
            pending[i:i] = r.seq(doc.get("items"), "items")
            continue
        r.mapping(doc, "", _TOP)
        meta = _metadata(r, doc, kind)
        if kind == "Node":
            if any(n.name == meta["name"] for n in nodes):
                raise r.fail("metadata.name", "a second Node of this name")
            nodes.append(_node(r, doc, meta, len(nodes)))
        elif kind == "PodGroup":
            spec = r.mapping(doc.get("spec"), "spec", _PG_SPEC)
            if "minMember" not in spec:
                raise r.fail("spec.minMember", "is missing")
            if meta["name"] in groups:
                raise r.fail("metadata.name", "a second PodGroup of this name")
            groups[meta["name"]] = PodGroup(meta["name"], r.int_(spec["minMember"], "spec.minMember", 1))
        else:
            app = _owner(r, doc, meta, kind)
            if any(a.name == app.name for a in apps):
                raise r.fail("metadata.name", "a second application (Pod/Job/MPIJob) of this name")
            apps.append(app)
    w = Workload(Cluster(nodes), apps, groups)
    check_workload(w)
    return w


def check_workload(w: Workload) -> None:
    """Join pods to their groups and refuse what can never run.

    Raises
    ------
    ManifestError
        A pod naming a PodGroup that does not exist, a PodGroup whose
        ``minMember`` exceeds its pods, or a pod larger than every node.
    """
    for g in w.groups.values():
        g.pods = []
    for g in [g for g in w.groups.values() if g.implicit]:
        del w.groups[g.name]
    nodes = w.cluster.nodes
    for app in w.apps:
        where = {"Job": "spec.template", "MPIJob": "spec.mpiReplicaSpecs"}.get(app.kind, "spec")
        for p in app.pods:
            if p.group:
                g = w.groups.get(p.group)
                if g is None or g.implicit:
                    raise ManifestError(f"{app.kind}/{app.name}: {where}.metadata.labels.{GROUP_LABEL}: "
                                        f"no PodGroup named {p.group!r}")
                g.pods.append(p)
                p.gang = p.group
            else:
                p.gang = p.name
                w.groups[p.name] = PodGroup(p.name, 1, [p], implicit=True)
            if nodes and not any(p.cpu <= n.cpu and p.memory <= n.memory and p.gpu <= n.gpu for n in nodes):
                big = {"cpu": max(n.cpu for n in nodes), "memory": max(n.memory for n in nodes),
                       GPU: max(n.gpu for n in nodes)}
                asks = {"cpu": p.cpu, "memory": p.memory, GPU: p.gpu}
                over = [k for k in asks if asks[k] > big[k]]
                show = {"cpu": lambda v: f"{v / 1000:g}", "memory": lambda v: f"{v / 2**30:g}Gi",
                        GPU: lambda v: f"{v}"}
                if over:
                    k = over[0]
                    msg = (f"pod {p.name} requests {k} {show[k](asks[k])}, more than any node allocates "
                           f"(largest: {show[k](big[k])})")
                else:
                    msg = (f"pod {p.name} requests cpu {show['cpu'](p.cpu)}, "
                           f"memory {show['memory'](p.memory)}, {GPU} {p.gpu}: no single node allocates all of it")
                    k = "cpu"
                raise ManifestError(f"{app.kind}/{app.name}: {p.source}.containers[*].resources.requests.{k}: "
                                    f"{msg}")
    for g in w.groups.values():
        if g.min_member > len(g.pods):
            raise ManifestError(f"PodGroup/{g.name}: spec.minMember: {g.min_member} exceeds the "
                                f"{len(g.pods)} pod(s) labelled {GROUP_LABEL}={g.name}")
