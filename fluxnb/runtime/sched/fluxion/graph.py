"""The Fluxion resource graph: vertices, subsystems and look-up indexes.

Each resource (cluster, rack, node, socket, core, gpu, memory, ...) is a
:class:`Vertex`.  Vertices are joined by directed edges that belong to a
*subsystem*: ``containment`` (a tree: cluster > rack > node > socket > core)
and optionally others such as ``power`` or ``ibnet``.  The matcher walks the
dominant subsystem (containment) depth first, so the graph keeps, per vertex,
its children in each subsystem in insertion order (the order flux-sched's
boost adjacency lists have) and the scheduling state that edge carries.

The hot path uses these plain lists; :meth:`ResourceGraph.to_networkx` gives a
:class:`networkx.MultiDiGraph` view for analysis and drawing, because a
networkx adjacency dict per vertex would cost several times the memory of a
slotted object on a 600k-vertex graph.

Examples
--------
>>> g = ResourceGraph()
>>> root = g.add_vertex("cluster", "tiny", 0, size=1)
>>> node = g.add_vertex("node", "node", 0, parent=root)
>>> g.finalize()
>>> g.by_path["/tiny0/node0"].name
'node0'
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Iterable, Iterator, Literal, Mapping

from .planner import INT64_MAX, MultiPlanner, Planner

__all__ = ["CONTAINMENT", "Vertex", "Edge", "ResourceGraph", "GraphError", "X_CHECKER_NJOBS", "EMPTY"]

CONTAINMENT = "containment"
#: Capacity of the per-vertex job counter used for the exclusivity check.
X_CHECKER_NJOBS = 0x40000000

Status = Literal["up", "down"]
_MAX_WEIGHT = (1 << 64) - 1


class GraphError(ValueError):
    """A resource graph (or a recipe for one) is malformed."""


@dataclass(slots=True)
class Edge:
    """A directed edge of one subsystem, with its per-match scheduling state.

    ``needs``/``exclusive``/``seq`` are written by the matcher when it selects
    the edge for the current match (``seq`` equal to the match's sequence
    number); ``weight`` orders children for the ``first`` policy.
    """

    src: int
    dst: int
    subsystem: str = CONTAINMENT
    relation: str = "contains"
    needs: int = 0
    exclusive: bool = False
    seq: int = -1
    weight: int = (1 << 64) - 1  # flux-sched starts every edge at the largest weight (_MAX_WEIGHT)
    #: Position among ``src``'s out-edges of this subsystem (insertion order).
    pos: int = 0


#: Shared read-only stand-in for a vertex's empty per-job maps and child lists:
#: most of a large graph's vertices never hold a job, so they share this one
#: object instead of owning half a dozen empty dicts (the matcher swaps in a
#: real dict on first write, see :meth:`Vertex.own`).
EMPTY: Mapping[Any, Any] = MappingProxyType({})


class Vertex:
    """One resource pool vertex.

    Attributes mirror flux-sched's ``resource_pool_t``: ``type``, ``basename``,
    ``name``, ``id``, ``uniq_id``, ``rank``, ``size``, ``unit``,
    ``properties``, ``paths`` (per subsystem) and ``status``, plus the
    scheduling state: ``plans`` (the vertex's own :class:`Planner`, created on
    first use; ``_plans`` may be a planner shared with other leaves of one job,
    see :meth:`Planner.copy`), ``x_checker`` (jobs using the vertex), ``subplans`` (subtree
    aggregates per subsystem), and per-job ``tags``/``x_spans``/``job2span``/
    ``allocations``/``reservations``, all maps keyed by job id (``tags``, the
    jobs planned at or below the vertex, maps them to None: a dict of ints,
    unlike a set, is not tracked by the cyclic garbage collector, and a job
    over a whole cluster puts one in every vertex).

    The per-job maps, ``subplans`` and ``out`` start as the shared read-only
    :data:`EMPTY` and become real containers on first write (:meth:`own`),
    which keeps a 600k-vertex graph small.
    """

    __slots__ = ("uniq_id", "type", "basename", "name", "id", "rank", "size", "unit",
                 "_props", "_paths", "status", "out", "parent_edge", "_plans", "_x_checker",
                 "subplans", "tags", "x_spans", "job2span", "allocations", "reservations",
                 "color", "label", "version", "kid_types")

    def __init__(self, uniq_id: int, rtype: str, basename: str, rid: int, name: str | None = None,
                 size: int = 1, unit: str = "", rank: int = -1) -> None:
        self.uniq_id = uniq_id
        self.type = rtype
        self.basename = basename
        self.id = rid
        self.name = name if name is not None else (basename + (str(rid) if rid != -1 else ""))
        self.rank = rank
        self.size = size
        self.unit = unit
        self._props: dict[str, str] | None = None
        # a containment path alone is kept as a plain string (one object less
        # per vertex); :attr:`paths` turns it into a dict on first use
        self._paths: dict[str, str] | str | None = None
        self.status: Status = "up"
        self.out: dict[str, list[Edge]] = EMPTY  # type: ignore[assignment]
        self.parent_edge: dict[str, Edge] = EMPTY  # type: ignore[assignment]
        self._plans: Planner | None = None
        self._x_checker: Planner | None = None
        self.subplans: dict[str, MultiPlanner] = EMPTY  # type: ignore[assignment]
        self.tags: dict[int, None] = EMPTY  # type: ignore[assignment]
        self.x_spans: dict[int, int] = EMPTY  # type: ignore[assignment]
        self.job2span: dict[int, int] = EMPTY  # type: ignore[assignment]
        self.allocations: dict[int, int] = EMPTY  # type: ignore[assignment]
        self.reservations: dict[int, int] = EMPTY  # type: ignore[assignment]
        self.color = 0
        self.label = ""
        #: Bumped whenever a span is added to or removed from this vertex or its
        #: subtree, or a status in the subtree changes (records of a walk of the
        #: subtree are stale once it moves, see :mod:`.fastpaths`).
        self.version = 0
        #: Types of the vertex's neighbours in the dominant subsystem (cached by the matcher).
        self.kid_types: frozenset[str] | None = None

    def __repr__(self) -> str:
        return f"<Vertex {self.name} type={self.type} uniq_id={self.uniq_id}>"

    @property
    def properties(self) -> dict[str, str]:
        """The vertex's properties (``perf_class``, ...), created on first use."""
        p = self._props
        if p is None:
            p = self._props = {}
        return p

    @property
    def paths(self) -> dict[str, str]:
        """The vertex's path in each subsystem (``{"containment": "/c0/node3"}``)."""
        p = self._paths
        if p is None:
            p = self._paths = {}
        elif p.__class__ is str:
            p = self._paths = {CONTAINMENT: p}  # type: ignore[dict-item]
        return p  # type: ignore[return-value]

    def paths_copy(self) -> dict[str, str]:
        """A new dict of the vertex's paths (for writers; leaves the compact form alone)."""
        p = self._paths
        if p.__class__ is str:
            return {CONTAINMENT: p}  # type: ignore[dict-item]
        return dict(p) if p else {}  # type: ignore[arg-type]

    def path(self, subsystem: str = CONTAINMENT) -> str:
        """The vertex's path in ``subsystem`` ("" if it has none), without creating a dict."""
        p = self._paths
        if p.__class__ is str:
            return p if subsystem == CONTAINMENT else ""  # type: ignore[return-value]
        return p.get(subsystem, "") if p else ""  # type: ignore[union-attr]

    @property
    def has_properties(self) -> bool:
        """True when the vertex has at least one property (without creating the dict)."""
        return bool(self._props)

    def own(self, attr: str) -> Any:
        """Return the vertex's own mutable container ``attr``, replacing a shared empty one."""
        c = getattr(self, attr)
        if c is EMPTY:
            c = {}
            setattr(self, attr, c)
        return c

    @property
    def plans(self) -> Planner:
        """The vertex's own availability planner (``size`` units), its own to change."""
        p = self._plans
        if p is None:
            p = self._plans = Planner(self.size, 0, INT64_MAX, self.type)
        elif p.shared:
            p = self._plans = p.copy()
        return p

    @property
    def x_checker(self) -> Planner:
        """Planner counting jobs that use this vertex (exclusivity check), its own to change."""
        p = self._x_checker
        if p is None:
            p = self._x_checker = Planner(X_CHECKER_NJOBS, 0, INT64_MAX, "jobs")
        elif p.shared:
            p = self._x_checker = p.copy()
        return p

    def avail_during(self, at: int, duration: int) -> int:
        """Units of this vertex free during ``[at, at+duration)``."""
        p = self._plans
        return self.size if p is None or not p._spans else p.avail_during(at, duration)

    def njobs_during(self, at: int, duration: int) -> int:
        """Number of jobs using this vertex at some time in the window."""
        if self._x_checker is None or not self._x_checker._spans:
            return 0
        return X_CHECKER_NJOBS - self._x_checker.avail_during(at, duration)

    def children(self, subsystem: str = CONTAINMENT) -> list[Edge]:
        """Out-edges of ``subsystem``, in insertion order."""
        return self.out.get(subsystem, _NO_EDGES)


_NO_EDGES: list[Edge] = []


class ResourceGraph:
    """A resource graph plus the indexes resource-query and the matcher use.

    Attributes
    ----------
    vertices : list[Vertex]
        Indexed by ``uniq_id``.
    roots : dict[str, Vertex]
        Root vertex of each subsystem.
    by_path, by_type, by_name, by_rank : dict
        Look-up indexes, as flux-sched's graph metadata.
    """

    def __init__(self) -> None:
        self.vertices: list[Vertex] = []
        self.roots: dict[str, Vertex] = {}
        self.by_path: dict[str, Vertex] = {}
        self.by_type: dict[str, list[Vertex]] = {}
        self.by_name: dict[str, list[Vertex]] = {}
        self.by_rank: dict[int, list[Vertex]] = {}
        #: True when the graph was built with reverse ("in") edges, as GRUG does.
        self.reverse_edges = False
        self._nodes_up: int | None = None

    def __len__(self) -> int:
        return len(self.vertices)

    # -- construction ----------------------------------------------------------
    def add_vertex(self, rtype: str, basename: str, rid: int, *, parent: Vertex | None = None,
                   size: int = 1, unit: str = "", rank: int = -1, name: str | None = None,
                   subsystem: str = CONTAINMENT, properties: dict[str, str] | None = None,
                   uniq_id: int | None = None) -> Vertex:
        """Create a vertex (a root when ``parent`` is None) and index it."""
        if not rtype:
            raise GraphError("a resource vertex needs a non-empty type")
        if size < 0:
            raise GraphError(f"vertex {basename}{rid} of type {rtype}: size must be >= 0")
        v = Vertex(len(self.vertices) if uniq_id is None else uniq_id, rtype, basename, rid,
                   name=name, size=size, unit=unit, rank=rank)
        self._nodes_up = None
        if properties:
            v.properties.update(properties)
        self.vertices.append(v)
        if parent is None:
            if subsystem not in self.roots:
                self.roots[subsystem] = v
            path = "/" + v.name
        else:
            path = parent.path(subsystem) + "/" + v.name
            self.add_edge(parent, v, subsystem)
        if subsystem == CONTAINMENT:
            v._paths = path
        else:
            v.paths[subsystem] = path
        self.by_path[path] = v
        lst = self.by_type.get(rtype)
        if lst is None:
            self.by_type[rtype] = [v]
        else:
            lst.append(v)
        lst = self.by_name.get(v.name)
        if lst is None:
            self.by_name[v.name] = [v]
        else:
            lst.append(v)
        lst = self.by_rank.get(rank)
        if lst is None:
            self.by_rank[rank] = [v]
        else:
            lst.append(v)
        return v

    def add_children(self, parent: Vertex, rtype: str, basename: str, ids: Iterable[int], *,
                     size: int = 1, unit: str = "", rank: int = -1,
                     subsystem: str = CONTAINMENT) -> list[Vertex]:
        """Create one child of ``parent`` per id in ``ids`` (in order) and index them.

        The same as calling :meth:`add_vertex` once per id, several times
        faster: graph readers and generators build large graphs with it.

        Examples
        --------
        >>> g = ResourceGraph()
        >>> root = g.add_vertex("cluster", "c", 0)
        >>> [v.paths["containment"] for v in g.add_children(root, "node", "n", range(2))]
        ['/c0/n0', '/c0/n1']
        """
        if not rtype:
            raise GraphError("a resource vertex needs a non-empty type")
        if size < 0:
            raise GraphError(f"vertex {basename} of type {rtype}: size must be >= 0")
        if subsystem != CONTAINMENT:
            return [self.add_vertex(rtype, basename, rid, parent=parent, size=size, unit=unit,
                                    rank=rank, subsystem=subsystem) for rid in ids]
        verts = self.vertices
        by_path, by_name = self.by_path, self.by_name
        by_type = self.by_type.setdefault(rtype, [])
        by_rank = self.by_rank.setdefault(rank, [])
        prefix = parent.path(subsystem) + "/"
        out = parent.out
        if out is EMPTY:
            out = parent.out = {}
        edges = out.setdefault(subsystem, [])  # new vertices: no duplicate edge to check
        parent.kid_types = None
        src = parent.uniq_id
        made = []
        for rid in ids:
            uid = len(verts)
            name = basename + str(rid) if rid != -1 else basename
            v = Vertex(uid, rtype, basename, rid, name, size, unit, rank)
            e = Edge(src, uid, subsystem, "contains", 0, False, -1, _MAX_WEIGHT, len(edges))
            edges.append(e)
            v.parent_edge = {subsystem: e}
            path = prefix + name
            v._paths = path
            verts.append(v)
            by_path[path] = v
            lst = by_name.get(name)
            if lst is None:
                by_name[name] = [v]
            else:
                lst.append(v)
            by_type.append(v)
            by_rank.append(v)
            made.append(v)
        self._nodes_up = None
        return made

    @staticmethod
    @contextmanager
    def building(freeze: bool = False) -> Iterator[None]:
        """Pause Python's cyclic garbage collector while building a large graph.

        A graph is hundreds of thousands of long-lived objects and no
        garbage: letting the collector scan them again and again as they
        are created doubles the load time.

        With ``freeze``, leaving the block also moves every object alive in
        the process to the collector's permanent generation
        (:func:`gc.freeze`), so that later full collections do not walk the
        graph either (each one costs about a second on a 600k-vertex graph).
        Frozen objects are never collected, even if they later end up in a
        reference cycle, so this suits a process that owns its graph for its
        whole life (``fluxnb resource-query``, a scheduler service), not a
        notebook kernel that builds and drops graphs.

        Examples
        --------
        >>> with ResourceGraph.building():
        ...     g = ResourceGraph()
        """
        was = gc.isenabled()
        gc.disable()
        try:
            yield
        finally:
            if was:
                if freeze:
                    gc.freeze()
                gc.enable()

    def add_edge(self, src: Vertex, dst: Vertex, subsystem: str = CONTAINMENT,
                 relation: str = "contains") -> Edge:
        """Add ``src -> dst`` in ``subsystem`` unless it already exists."""
        out = src.out
        if out is EMPTY:
            out = src.out = {}
        edges = out.get(subsystem)
        if edges is None:
            edges = out[subsystem] = []
        else:
            # Every edge into dst sets dst.parent_edge[subsystem] if unset, so
            # only a vertex with another parent in this subsystem needs a scan
            # (a linear duplicate check on each add would make loading O(n^2)).
            first = dst.parent_edge.get(subsystem)
            if first is not None:
                if first.src == src.uniq_id:
                    return first
                dst_id = dst.uniq_id
                for e in edges:
                    if e.dst == dst_id:
                        return e
        e = Edge(src.uniq_id, dst.uniq_id, subsystem, relation, pos=len(edges))
        edges.append(e)
        src.kid_types = dst.kid_types = None
        pe = dst.parent_edge
        if pe is EMPTY:
            dst.parent_edge = {subsystem: e}
        elif subsystem not in pe:
            pe[subsystem] = e
        return e

    def finalize(self) -> None:
        """Check the graph is usable for matching (a containment root exists)."""
        if CONTAINMENT not in self.roots:
            raise GraphError("resource graph has no containment subsystem root")

    # -- queries -----------------------------------------------------------------
    def vertex(self, uniq_id: int) -> Vertex:
        return self.vertices[uniq_id]

    @property
    def nodes_up(self) -> int:
        """Number of ``node`` vertices whose status is up (cached; :meth:`mark` refreshes it)."""
        n = self._nodes_up
        if n is None:
            n = self._nodes_up = sum(1 for v in self.by_type.get("node", ()) if v.status == "up")
        return n

    def subtree(self, v: Vertex, subsystem: str = CONTAINMENT) -> Iterator[Vertex]:
        """Vertices of ``v``'s subtree in ``subsystem``, pre-order."""
        stack = [v]
        verts = self.vertices
        while stack:
            u = stack.pop()
            yield u
            stack.extend(verts[e.dst] for e in reversed(u.out.get(subsystem, ())))

    def mark(self, path: str, status: Status) -> None:
        """Set ``status`` on the vertex at ``path`` and its whole containment subtree."""
        try:
            root = self.by_path[path]
        except KeyError:
            raise GraphError(f"could not find subtree path ({path}) in resource graph") from None
        for u in self.subtree(root):
            u.status = status
            u.version += 1
        # ancestors too: what a walk finds below them changed (see Vertex.version)
        pe = root.parent_edge.get(CONTAINMENT)
        while pe is not None:
            parent = self.vertices[pe.src]
            parent.version += 1
            pe = parent.parent_edge.get(CONTAINMENT)
        self._nodes_up = None

    def to_networkx(self) -> Any:
        """Return a :class:`networkx.MultiDiGraph` copy (vertex attrs, edge subsystem)."""
        import networkx as nx

        g = nx.MultiDiGraph()
        for v in self.vertices:
            g.add_node(v.uniq_id, type=v.type, basename=v.basename, name=v.name, id=v.id,
                       rank=v.rank, size=v.size, unit=v.unit, status=v.status,
                       properties=dict(v._props or {}), paths=v.paths_copy())
        for v in self.vertices:
            for ss, edges in v.out.items():
                for e in edges:
                    g.add_edge(e.src, e.dst, subsystem=ss, relation=e.relation)
        return g
