"""JGF (JSON Graph Format) reader and writer for resource graphs.

Fluxion's JGF puts each vertex's resource data in ``nodes[].metadata``
(``type``, ``basename``, ``name``, ``id``, ``uniq_id``, ``rank``, ``size``,
``unit``, ``properties``, ``paths`` per subsystem, ``status``) and each
edge's subsystem in ``edges[].metadata.subsystem`` (or ``name``:
``{subsystem: relation}``).

Examples
--------
>>> from fluxnb.runtime.sched.fluxion.graph import ResourceGraph
>>> g = ResourceGraph(); r = g.add_vertex("cluster", "c", 0); _ = g.add_vertex("node", "n", 0, parent=r)
>>> len(parse_jgf(dumps_jgf(g)))
2
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .graph import CONTAINMENT, GraphError, ResourceGraph, Vertex

__all__ = ["read_jgf", "parse_jgf", "dumps_jgf", "JGFError", "filter_types"]


class JGFError(GraphError):
    """A JGF document is malformed; the message names where."""


def _req(d: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise JGFError(f"{where}: missing '{key}'")
    if not isinstance(d[key], typ) or isinstance(d[key], bool) and typ is int:
        raise JGFError(f"{where}: '{key}' has the wrong type ({type(d[key]).__name__})")
    return d[key]


def parse_jgf(text: str | dict[str, Any], *, where: str = "<jgf>") -> ResourceGraph:
    """Build a :class:`ResourceGraph` from JGF text or an already decoded dict."""
    with ResourceGraph.building():
        return _parse_jgf(text, where)


def _parse_jgf(text: str | dict[str, Any], where: str) -> ResourceGraph:
    if isinstance(text, str):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise JGFError(f"{where}: invalid JSON: {exc}") from None
    else:
        doc = text
    if not isinstance(doc, dict) or not isinstance(doc.get("graph"), dict):
        raise JGFError(f"{where}: top level must be an object with a 'graph' object")
    graph = doc["graph"]
    nodes = graph.get("nodes")
    edges = graph.get("edges", [])
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise JGFError(f"{where}: graph.nodes and graph.edges must be lists")
    g = ResourceGraph()
    by_id: dict[str, Any] = {}
    for i, n in enumerate(nodes):
        w = f"{where}: graph.nodes[{i}]"
        if not isinstance(n, dict):
            raise JGFError(f"{w}: must be an object")
        nid = str(_req(n, "id", (str, int), w))
        m = _req(n, "metadata", dict, w)
        rtype = _req(m, "type", str, w + ".metadata")
        basename = m.get("basename", rtype)
        rid = int(m.get("id", -1))
        size = int(m.get("size", 1))
        if size < 0:
            raise JGFError(f"{w}.metadata: size must be >= 0")
        vx = Vertex(len(g.vertices), rtype, basename, rid, name=m.get("name"), size=size,
                    unit=m.get("unit", ""), rank=int(m.get("rank", -1)))
        if m.get("properties"):
            vx.properties.update({str(k): str(val) for k, val in m["properties"].items()})
        vx.paths.update(m.get("paths") or {})
        if m.get("status") == "down":
            vx.status = "down"
        g.vertices.append(vx)
        if nid in by_id:
            raise JGFError(f"{w}: duplicate node id '{nid}'")
        by_id[nid] = vx
        for ss, p in vx.paths.items():
            g.by_path[p] = vx
        g.by_type.setdefault(rtype, []).append(vx)
        g.by_name.setdefault(vx.name, []).append(vx)
        g.by_rank.setdefault(vx.rank, []).append(vx)
    for i, e in enumerate(edges):
        w = f"{where}: graph.edges[{i}]"
        if not isinstance(e, dict):
            raise JGFError(f"{w}: must be an object")
        src, dst = str(_req(e, "source", (str, int), w)), str(_req(e, "target", (str, int), w))
        if src not in by_id or dst not in by_id:
            raise JGFError(f"{w}: refers to unknown vertex '{src if src not in by_id else dst}'")
        m = e.get("metadata") or {}
        ss, rel = m.get("subsystem", CONTAINMENT), "contains"
        if isinstance(m.get("name"), dict) and m["name"]:
            ss, rel = next(iter(m["name"].items()))
        if rel == "in":
            continue
        g.add_edge(by_id[src], by_id[dst], ss, rel)
    for vx in g.vertices:
        for ss in list(vx.paths) or [CONTAINMENT]:
            if ss not in vx.parent_edge and ss not in g.roots and (vx.out.get(ss) or len(g.vertices) == 1):
                g.roots[ss] = vx
    if CONTAINMENT not in g.roots:
        raise JGFError(f"{where}: no containment root (a vertex without a parent)")
    for vx in g.vertices:
        if CONTAINMENT not in vx.paths:
            pe = vx.parent_edge.get(CONTAINMENT)
            chain, u = [], vx
            while u is not None:
                chain.append(u.name)
                pe = u.parent_edge.get(CONTAINMENT)
                u = g.vertices[pe.src] if pe else None
            vx.paths[CONTAINMENT] = "/" + "/".join(reversed(chain))
            g.by_path[vx.paths[CONTAINMENT]] = vx
    return g


def read_jgf(path: str | os.PathLike[str]) -> ResourceGraph:
    """Read a JGF file; see :func:`parse_jgf`."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise JGFError(f"{p}: cannot read JGF file: {exc.strerror}") from None
    return parse_jgf(text, where=str(p))


def dumps_jgf(g: ResourceGraph) -> str:
    """Serialize a whole graph as JGF."""
    nodes = []
    for v in g.vertices:
        meta: dict[str, Any] = {"type": v.type, "basename": v.basename, "name": v.name, "id": v.id,
                                "uniq_id": v.uniq_id, "rank": v.rank, "exclusive": False,
                                "unit": v.unit, "size": v.size, "paths": v.paths_copy()}
        if v.has_properties:
            meta["properties"] = dict(v.properties)
        if v.status != "up":
            meta["status"] = v.status
        nodes.append({"id": str(v.uniq_id), "metadata": meta})
    edges = [{"source": str(e.src), "target": str(e.dst), "metadata": {"name": {ss: e.relation}}}
             for v in g.vertices for ss, es in v.out.items() for e in es]
    return json.dumps({"graph": {"nodes": nodes, "edges": edges}})


def filter_types(g: ResourceGraph, keep: list[str]) -> ResourceGraph:
    """Copy of ``g`` with only the vertices whose type is in ``keep`` (plus the root).

    A dropped vertex's kept descendants attach to its nearest kept ancestor.
    """
    keep_set = set(keep)
    out = ResourceGraph()
    out.reverse_edges = g.reverse_edges
    root = g.roots[CONTAINMENT]
    stack = [(root, None)]
    while stack:
        u, parent = stack.pop()
        nv = parent
        if u is root or u.type in keep_set:
            nv = out.add_vertex(u.type, u.basename, u.id, parent=parent, size=u.size, unit=u.unit,
                                rank=u.rank, name=u.name, properties=u._props)
        for e in reversed(u.children()):
            stack.append((g.vertices[e.dst], nv))
    return out
