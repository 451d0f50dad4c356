"""Resource subsets on a live graph: the ``rv1exec`` reader and partial release.

:func:`read_rv1exec` loads a graph from an RV1 ``R`` (RFC 20) the way flux-sched's
``rv1exec`` reader does (its ``scheduling`` JGF when present, else ``R_lite``).
:func:`parse_subset` turns a subset of a job's resources, as an R (``rv1exec``) or
a JGF document (``jgf``), into what :meth:`~.update.UpdateWalk.partial_cancel`
releases, checking it against the graph first; :func:`partial_release` does both.

Examples
--------
>>> from fluxnb.runtime.sched.fluxion.subset import parse_subset
>>> parse_subset(None, '{"version": 1, "execution": {"R_lite": [{"rank": "1-2", '
...              '"children": {"core": "0"}}]}}', "rv1exec")
{'ranks': [1, 2]}
"""

from __future__ import annotations

import json
import os
from typing import Any

from ...util.idset import IDSet
from .graph import GraphError, ResourceGraph, Vertex
from .jgf import parse_jgf

__all__ = ["SubsetError", "read_rv1exec", "parse_subset", "partial_release"]


class SubsetError(GraphError):
    """A malformed or inconsistent resource subset (R or JGF)."""


def _load_json(text: str | dict[str, Any], where: str) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SubsetError(f"{where}: not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise SubsetError(f"{where}: expected a JSON object")
    return doc


def read_rv1exec(path: str | os.PathLike[str] | None = None, *, text: str | dict[str, Any] | None = None,
                 force: bool = False) -> ResourceGraph:
    """The graph of an RV1 R: from its ``scheduling`` JGF unless ``force``, else from R_lite."""
    where = str(path) if path is not None else "R"
    if text is None:
        try:
            with open(path, encoding="utf-8") as f:  # type: ignore[arg-type]
                text = f.read()
        except OSError as exc:
            raise SubsetError(f"{where}: {exc.strerror}") from None
    doc = _load_json(text, where)
    sched = doc.get("scheduling")
    if sched is not None and not force:
        return parse_jgf(sched, where=f"{where}: scheduling")
    from ...util.rv1 import InvalidR, ResourceSet
    from ..fluxion_rv1 import graph_from_R

    try:
        R = ResourceSet(doc)
    except InvalidR as exc:
        raise SubsetError(f"{where}: {exc}") from None
    return graph_from_R(R)


def parse_subset(g: ResourceGraph | None, text: str | dict[str, Any], reader: str) -> dict[str, Any]:
    """``{"ranks": [...]}`` (rv1exec) or ``{"vertices": [...]}`` (jgf) for a partial release.

    A JGF subset names vertices by containment path and rank; each must exist in
    ``g`` with the same type, basename, name, id and size (flux-sched's
    ``find_vtx`` checks), else :class:`SubsetError` says which.
    """
    if reader == "rv1exec":
        doc = _load_json(text, "R")
        if doc.get("version") != 1:
            raise SubsetError("R: version must be 1")
        rlite = doc.get("execution", {}).get("R_lite") if isinstance(doc.get("execution"), dict) else None
        if not isinstance(rlite, list):
            raise SubsetError("R: execution.R_lite must be an array")
        ranks: set[int] = set()
        for i, entry in enumerate(rlite):
            spec = entry.get("rank") if isinstance(entry, dict) else None
            if not isinstance(spec, str):
                raise SubsetError(f"R: execution.R_lite[{i}].rank must be an idset string")
            try:
                ranks.update(IDSet(spec))
            except ValueError:
                raise SubsetError(f"R: execution.R_lite[{i}].rank: invalid idset '{spec}'") from None
        return {"ranks": sorted(ranks)}
    if reader != "jgf":
        raise SubsetError(f"unsupported reader {reader}")
    doc = _load_json(text, "JGF")
    graph = doc.get("graph")
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    if not isinstance(nodes, list):
        raise SubsetError("JGF: graph.nodes must be an array")
    out: list[Vertex] = []
    seen: set[str] = set()
    for i, n in enumerate(nodes):
        md = n.get("metadata") if isinstance(n, dict) else None
        if not isinstance(md, dict):
            raise SubsetError(f"JGF: graph.nodes[{i}].metadata must be an object")
        vid = str(n.get("id", i))
        if vid in seen:
            raise SubsetError(f"found duplicate JGF node id for {vid}")
        seen.add(vid)
        path = (md.get("paths") or {}).get("containment") if isinstance(md.get("paths"), dict) else None
        rank = md.get("rank", -1)
        v = g.by_path.get(path) if g is not None and isinstance(path, str) else None
        if v is None or v.rank != rank:
            raise SubsetError(f"inconsistent input vertex: nonexistent path ({path}) {vid}")
        diffs = [f"{k}=({mine}, {theirs})" for k, mine, theirs in (
            ("type", v.type, md.get("type")), ("basename", v.basename, md.get("basename")),
            ("size", v.size, md.get("size", 1)), ("id", v.id, md.get("id")),
            ("name", v.name, md.get("name")))
            if mine != theirs]
        if diffs:
            raise SubsetError(f"inconsistent input vertex for {vid}: {' '.join(diffs)}")
        out.append(v)
    return {"vertices": out}


def partial_release(trav: Any, jobid: int, text: str | dict[str, Any], reader: str) -> bool:
    """Release the subset ``text`` of allocation ``jobid``; True if the job holds nothing now."""
    return trav.partial_cancel(jobid, **parse_subset(trav.g, text, reader))
