"""GRUG reader: build a resource graph from a GraphML generation recipe.

A GRUG (Generating Resources Using GraphML) file describes a *recipe* graph:
each recipe vertex is a resource pool kind (``type``, ``basename``, ``size``,
``unit``, ``subsystem``; one has ``root=1``), and each recipe edge says how to
generate children: ``gen_method=MULTIPLY`` with ``multi_scale`` copies per
parent, ids numbered from ``id_start`` with ``id_stride`` and an ``id_scope``
(0: ids restart under each parent; k: ids run on across k ancestor levels).
``ASSOCIATE_IN``/``ASSOCIATE_BY_PATH_IN`` link already generated vertices in
another subsystem.

Generation walks the recipe depth first, like flux-sched's GRUG reader, so
vertex ``uniq_id`` values, names and child order are the same as Fluxion's.

Examples
--------
>>> from fluxnb.runtime.sched.fluxion.grug import read_grug  # doctest: +SKIP
>>> g = read_grug("tiny.graphml")                              # doctest: +SKIP
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .graph import CONTAINMENT, GraphError, ResourceGraph, Vertex

__all__ = ["read_grug", "parse_grug", "GrugError"]

_NS = "{http://graphml.graphdrawing.org/xmlns}"


class GrugError(GraphError):
    """A GRUG recipe is malformed; the message names the file and the element."""


@dataclass
class _RecipeVertex:
    key: str
    root: int = 0
    type: str = ""
    basename: str = ""
    unit: str = ""
    size: int = 1
    subsystem: str = CONTAINMENT


@dataclass
class _RecipeEdge:
    key: str
    src: str
    dst: str
    e_subsystem: str = CONTAINMENT
    relation: str = "contains"
    rrelation: str = "in"
    id_scope: int = 0
    id_start: int = 0
    id_stride: int = 1
    gen_method: str = "MULTIPLY"
    multi_scale: int = 1
    as_tgt_subsystem: str = CONTAINMENT
    as_tgt_uplvl: int = 1
    as_src_uplvl: int = 1


@dataclass
class _Recipe:
    vertices: dict[str, _RecipeVertex] = field(default_factory=dict)
    edges: list[_RecipeEdge] = field(default_factory=list)


def _tag(el: ET.Element) -> str:
    return el.tag[len(_NS):] if el.tag.startswith(_NS) else el.tag


def _parse_recipe(text: str, where: str) -> _Recipe:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise GrugError(f"{where}: not well-formed GraphML: {exc}") from None
    if _tag(root) != "graphml":
        raise GrugError(f"{where}: root element is <{_tag(root)}>, expected <graphml>")
    keys: dict[str, tuple[str, str, str | None]] = {}
    for k in root:
        if _tag(k) != "key":
            continue
        kid, name, ktype = k.get("id"), k.get("attr.name"), k.get("attr.type", "string")
        if not kid or not name:
            raise GrugError(f"{where}: <key> needs 'id' and 'attr.name'")
        default = None
        for d in k:
            if _tag(d) == "default":
                default = (d.text or "").strip()
        keys[kid] = (name, ktype, default)
    graphs = [g for g in root if _tag(g) == "graph"]
    if len(graphs) != 1:
        raise GrugError(f"{where}: expected exactly one <graph>, found {len(graphs)}")
    recipe = _Recipe()
    int_fields = {"root", "size", "id_scope", "id_start", "id_stride", "multi_scale",
                  "as_tgt_uplvl", "as_src_uplvl"}

    def apply(obj: object, el: ET.Element, what: str) -> None:
        # defaults first, then the element's own <data>
        values: dict[str, str] = {}
        for kid, (name, _kt, default) in keys.items():
            if default is not None:
                values[name] = default
        for d in el:
            if _tag(d) != "data":
                continue
            kid = d.get("key")
            if kid not in keys:
                raise GrugError(f"{where}: {what} uses undeclared data key '{kid}'")
            values[keys[kid][0]] = (d.text or "").strip()
        for name, val in values.items():
            if not hasattr(obj, name):
                continue
            if name in int_fields:
                try:
                    setattr(obj, name, int(val))
                except ValueError:
                    raise GrugError(f"{where}: {what}: '{name}' must be an integer, got '{val}'") from None
            else:
                setattr(obj, name, val)

    for el in graphs[0]:
        t = _tag(el)
        if t == "node":
            vid = el.get("id")
            if not vid:
                raise GrugError(f"{where}: <node> without an 'id'")
            rv = _RecipeVertex(vid)
            apply(rv, el, f"node '{vid}'")
            if not rv.type:
                raise GrugError(f"{where}: node '{vid}' has no 'type'")
            if rv.size < 0:
                raise GrugError(f"{where}: node '{vid}' has negative size {rv.size}")
            recipe.vertices[vid] = rv
        elif t == "edge":
            src, dst = el.get("source"), el.get("target")
            re_ = _RecipeEdge(el.get("id", f"{src}2{dst}"), src or "", dst or "")
            apply(re_, el, f"edge '{re_.key}'")
            recipe.edges.append(re_)
    for re_ in recipe.edges:
        for end in (re_.src, re_.dst):
            if end not in recipe.vertices:
                raise GrugError(f"{where}: edge '{re_.key}' refers to unknown node '{end}'")
        if re_.gen_method not in ("MULTIPLY", "ASSOCIATE_IN", "ASSOCIATE_BY_PATH_IN"):
            raise GrugError(f"{where}: edge '{re_.key}': unknown gen_method '{re_.gen_method}'")
        if re_.multi_scale < 0:
            raise GrugError(f"{where}: edge '{re_.key}': multi_scale must be >= 0")
    if not any(v.root for v in recipe.vertices.values()):
        raise GrugError(f"{where}: no recipe node has root=1")
    return recipe


def _path_prefix(path: str, uplevel: int) -> str | None:
    nslash = path.count("/")
    if uplevel >= nslash:
        return None
    pos, occ = 0, 0
    while occ != nslash - uplevel + 1:
        nxt = path.find("/", pos)
        if nxt == -1:
            break
        pos = nxt + 1
        occ += 1
    pref = path[:pos]
    return pref if pref.endswith("/") else pref + "/"


class _Emitter:
    """Depth-first generator mirroring flux-sched's dfs_emitter_t."""

    def __init__(self, recipe: _Recipe, g: ResourceGraph, rank: int) -> None:
        self.recipe = recipe
        self.g = g
        self.rank = rank
        self.gen_src: dict[str, list[Vertex]] = {}
        self.scales: list[int] = []  # front = index 0
        self.out: dict[str, list[_RecipeEdge]] = {k: [] for k in recipe.vertices}
        for e in recipe.edges:
            self.out[e.src].append(e)

    def gen_id(self, e: _RecipeEdge, i: int, sz: int, j: int) -> int:
        scope = e.id_scope
        if scope < 0:
            return -1
        if scope == 0:
            return e.id_start + i
        scope = min(scope, len(self.scales))
        wrap = 1
        for h in range(scope):
            wrap *= self.scales[h]
        return e.id_start + (j % wrap * sz * e.id_stride) + i * e.id_stride

    def emit_vertex(self, rv: _RecipeVertex, e: _RecipeEdge | None, parent: Vertex | None,
                    i: int, sz: int, j: int) -> Vertex:
        g = self.g
        if parent is None and rv.subsystem in g.roots:
            return g.roots[rv.subsystem]
        rid = 0 if parent is None else self.gen_id(e, i, sz, j)  # type: ignore[arg-type]
        return g.add_vertex(rv.type, rv.basename, rid, parent=parent, size=rv.size, unit=rv.unit,
                            rank=self.rank, subsystem=rv.subsystem)

    def tree_edge(self, e: _RecipeEdge) -> None:
        rs, rt = self.recipe.vertices[e.src], self.recipe.vertices[e.dst]
        g = self.g
        if rs.root and not self.gen_src.get(e.src):
            self.gen_src[e.src] = [self.emit_vertex(rs, e, None, 0, 1, 0)]
        srcs = self.gen_src.get(e.src, [])
        made: list[Vertex] = []
        if e.gen_method == "MULTIPLY":
            bulk = e.e_subsystem == rt.subsystem == CONTAINMENT and not rt.root
            ms = e.multi_scale
            if bulk and e.id_scope > 0:
                # gen_id for a whole batch: ids step by id_stride from a base
                # that depends on j only (the scales do not change meanwhile)
                wrap = 1
                for h in range(min(e.id_scope, len(self.scales))):
                    wrap *= self.scales[h]
            for j, sv in enumerate(srcs):
                if bulk:
                    if e.id_scope > 0:
                        base = e.id_start + (j % wrap * ms * e.id_stride)
                        ids: Sequence[int] = range(base, base + ms * e.id_stride, e.id_stride) \
                            if e.id_stride else [base] * ms
                    else:
                        ids = [self.gen_id(e, i, ms, j) for i in range(ms)]
                    kids = g.add_children(sv, rt.type, rt.basename, ids, size=rt.size, unit=rt.unit,
                                          rank=self.rank)
                    if e.relation != "contains":
                        for tv in kids:
                            tv.parent_edge[CONTAINMENT].relation = e.relation
                    made.extend(kids)
                    continue
                for i in range(e.multi_scale):
                    tv = self.emit_vertex(rt, e, sv, i, e.multi_scale, j)
                    if e.e_subsystem != rt.subsystem:
                        g.add_edge(sv, tv, e.e_subsystem, e.relation)
                    else:
                        sv.out[e.e_subsystem][-1].relation = e.relation
                    made.append(tv)
            self.scales.insert(0, e.multi_scale)
        else:
            for sv in srcs:
                for tv in g.by_type.get(rt.type, []):
                    if e.gen_method == "ASSOCIATE_BY_PATH_IN":
                        p1 = _path_prefix(tv.path(e.as_tgt_subsystem), e.as_tgt_uplvl)
                        p2 = _path_prefix(sv.path(e.as_tgt_subsystem), e.as_src_uplvl)
                        if p1 != p2:
                            continue
                    tv.paths[e.e_subsystem] = sv.path(e.e_subsystem) + "/" + tv.name
                    g.by_path[tv.paths[e.e_subsystem]] = tv
                    g.add_edge(sv, tv, e.e_subsystem, e.relation)
                    made.append(tv)
        self.gen_src[e.dst] = made

    def run(self) -> None:
        color: dict[str, int] = {k: 0 for k in self.recipe.vertices}

        def visit(k: str) -> None:
            color[k] = 1
            for e in self.out[k]:
                if color[e.dst] == 0:
                    self.tree_edge(e)
                    visit(e.dst)
            color[k] = 2
            if self.scales:
                self.scales.pop(0)

        for k in self.recipe.vertices:
            if color[k] == 0:
                visit(k)


def parse_grug(text: str, *, where: str = "<grug>", rank: int = -1) -> ResourceGraph:
    """Build a :class:`ResourceGraph` from GRUG GraphML text.

    Raises
    ------
    GrugError
        With ``where`` and the offending element in the message.
    """
    import sys

    recipe = _parse_recipe(text, where)
    g = ResourceGraph()
    g.reverse_edges = True
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 10000))
    try:
        with ResourceGraph.building():
            _Emitter(recipe, g, rank).run()
    finally:
        sys.setrecursionlimit(old)
    if CONTAINMENT not in g.roots:
        raise GrugError(f"{where}: recipe generated no containment root")
    return g


def read_grug(path: str | os.PathLike[str], *, rank: int = -1) -> ResourceGraph:
    """Read a GRUG file; see :func:`parse_grug`."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise GrugError(f"{p}: cannot read GRUG file: {exc.strerror}") from None
    return parse_grug(text, where=str(p), rank=rank)
