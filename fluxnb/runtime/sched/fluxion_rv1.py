"""Between an instance's R (RFC 20) and a Fluxion resource graph.

:func:`graph_from_R` builds the containment graph ``cluster > node > core | gpu``
(optionally with ``socket`` vertices between node and its cores and gpus),
as flux-sched's ``rv1exec`` reader does for an R without a ``scheduling`` key.
:class:`RWriter` turns a match into R; :func:`reconstruct` plans a job that
already holds resources (given as R) on the graph, after a scheduler reload.

Examples
--------
>>> from fluxnb.runtime.util.rv1 import ResourceSet
>>> R = ResourceSet.from_ranks({0: {"core": "0-3"}, 1: {"core": "0-3", "gpu": "0"}},
...                            hostnames=["node0", "node1"])
>>> g = graph_from_R(R, sockets_per_node=2)
>>> sorted(g.by_type), len(g.by_type["core"])
(['cluster', 'core', 'gpu', 'node', 'socket'], 8)
>>> g.by_path["/cluster0/node1/socket1/core3"].rank
1
"""

from __future__ import annotations

import errno
import re
from typing import Any

from ..util.idset import IDSet
from ..util.rv1 import ResourceSet, encode_R_lite
from .fluxion.graph import ResourceGraph, Vertex
from .fluxion.matcher import Traverser
from .fluxion.update import JobMeta, MatchError
from .fluxion.writers import MatchWriter, _jgf

__all__ = ["graph_from_R", "RWriter", "reconstruct"]

_TRAILING_DIGITS = re.compile(r"^(.*?)(\d+)$")


def graph_from_R(R: ResourceSet, *, sockets_per_node: int = 0, cluster: str = "cluster") -> ResourceGraph:
    """The containment graph of ``R``: one node per rank, named after its host.

    With ``sockets_per_node`` > 0 each node's cores and gpus are split evenly,
    in id order, over that many sockets (R itself does not say which core sits
    on which socket).  RFC 20 properties of R become node properties.
    """
    g = ResourceGraph()
    with ResourceGraph.building():
        root = g.add_vertex("cluster", cluster, 0, rank=-1)
        props: dict[int, dict[str, str]] = {}
        for name, ranks in R.properties.items():
            for r in ranks:
                key, sep, val = name.partition("=")
                props.setdefault(r, {})[key] = val if sep else ""
        for rank, children in sorted(R.by_rank().items()):
            host = R.host(rank) or f"node{rank}"
            m = _TRAILING_DIGITS.match(host)
            basename, nid = (m.group(1), int(m.group(2))) if m else (host, rank)
            node = g.add_vertex("node", basename, nid, parent=root, rank=rank, name=host,
                                properties=props.get(rank))
            parents = [node]
            if sockets_per_node > 0:
                parents = g.add_children(node, "socket", "socket", range(sockets_per_node), rank=rank)
            for rtype in sorted(children):
                ids = list(children[rtype])
                n = len(parents)
                per = -(-len(ids) // n) if ids else 0
                for i, parent in enumerate(parents):
                    chunk = ids[i * per:(i + 1) * per]
                    if chunk:
                        g.add_children(parent, rtype, rtype, chunk, rank=rank)
    g.finalize()
    return g


class RWriter(MatchWriter):
    """Collects a match and renders it as an R dict (``rv1`` with ``scheduling``, or ``rv1_nosched``)."""

    def __init__(self, scheduling: bool = False) -> None:
        super().__init__()
        self.scheduling = scheduling

    def R(self, starttime: float, expiration: float) -> dict[str, Any]:
        by_rank: dict[int, dict[str, list[int]]] = {}
        hosts: dict[int, str] = {}
        entries = list(self.entries())
        for _, v, _n, _x in entries:
            t = v.type
            if t == "node":
                hosts[v.rank] = v.name
            elif t == "core" or t == "gpu":
                by_rank.setdefault(v.rank, {}).setdefault(t, []).append(v.id)
        R: dict[str, Any] = {"version": 1, "execution": {
            "R_lite": encode_R_lite({r: {t: sorted(ids) for t, ids in c.items()}
                                     for r, c in sorted(by_rank.items())}),
            "nodelist": [hosts[r] for r in sorted(hosts)],
            "starttime": starttime, "expiration": expiration}}
        if self.scheduling:
            R["scheduling"] = _jgf(entries)
        self.items = []
        return R


def reconstruct(trav: Traverser, jobid: int, R: ResourceSet, at: int, duration: int) -> int:
    """Plan ``jobid`` on the graph as holding exactly the cores and gpus of ``R``.

    Returns the number of leaf vertices planned.

    Raises
    ------
    MatchError
        EINVAL when R names resources the graph does not have, EBUSY when
        some of them are already held by another job.
    """
    g = trav.g
    dom = trav.dom
    leaves: list[Vertex] = []
    for rank, children in R.by_rank().items():
        found = 0
        want = sum(len(ids) for ids in children.values())
        for v in g.by_rank.get(rank, ()):
            ids = children.get(v.type)
            if ids is not None and not v.out and v.id in ids:
                leaves.append(v)
                found += 1
        if found != want:
            raise MatchError(errno.EINVAL, f"job {jobid}: R rank {rank} {_describe(children)} "
                                           f"is not in the resource graph")
    for v in leaves:
        if v.avail_during(at, duration) < v.size:
            raise MatchError(errno.EBUSY, f"job {jobid}: {v.path()} is already allocated")
    trav._tick()
    seq = trav.seq
    verts = g.vertices
    for v in leaves:
        pe = v.parent_edge.get(dom)
        if pe is None:
            continue
        trav._mark(pe, v.size, True)
        while True:
            parent = verts[pe.src]
            pe = parent.parent_edge.get(dom)
            if pe is None or pe.seq == seq:
                break
            trav._mark(pe, parent.size, False)
    trav._root_needs = (1, False)
    trav._update(JobMeta(jobid, at, duration, "alloc", at), RWriter())
    return len(leaves)


def _describe(children: dict[str, IDSet]) -> str:
    return " ".join(f"{t}[{ids.encode()}]" for t, ids in sorted(children.items()))
