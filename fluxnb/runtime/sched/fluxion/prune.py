"""Pruning filters: subtree aggregates that let the matcher skip subtrees.

A filter spec such as ``"ALL:core,ALL:node"`` (flux-sched's default) or
``"rack:node,node:core"`` reads *HL:LL*: every vertex of type HL (``ALL``:
any type) keeps a :class:`~.planner.MultiPlanner` counting the LL resources
in its subtree over time.  A match first asks that planner whether the subtree
could hold the request at all, and allocations add spans to it on the way
back up.  Leaf types not named in the spec are added as ``ALL:<leaf>`` while
priming, as Fluxion does.

Examples
--------
>>> f = PruneFilters("ALL:core,rack:node")
>>> f.my_types("rack"), f.my_types("socket")
(['node', 'core'], ['core'])
"""

from __future__ import annotations

from .graph import CONTAINMENT, ResourceGraph, Vertex
from .planner import INT64_MAX, MultiPlanner

__all__ = ["PruneFilters", "PruneSpecError", "prime_pruning_filters", "DEFAULT_PRUNE_FILTERS"]

DEFAULT_PRUNE_FILTERS = "ALL:core,ALL:node"
ANY = "*"


_BUILTIN_ORDER = ("cluster", "core", "socket", "gpu", "node", "rack", "slot")


def _type_rank(t: str) -> tuple[int, str]:
    try:
        return (_BUILTIN_ORDER.index(t), t)
    except ValueError:
        return (len(_BUILTIN_ORDER), t)


class PruneSpecError(ValueError):
    """A pruning filter spec is malformed."""


class PruneFilters:
    """Which resource types each vertex type aggregates over its subtree."""

    def __init__(self, spec: str = DEFAULT_PRUNE_FILTERS, subsystem: str = CONTAINMENT) -> None:
        self.subsystem = subsystem
        self._anchors: dict[str, set[str]] = {}
        self._total: set[str] = set()
        for pair in spec.split(","):
            if ":" not in pair:
                raise PruneSpecError(f"pruning filter '{pair}' is not of the form HL:LL (e.g. ALL:core)")
            h, low = (s.strip() for s in pair.split(":", 1))
            if not h or not low:
                raise PruneSpecError(f"pruning filter '{pair}' has an empty side")
            self.set_pruning_type(ANY if h == "ALL" else h, low)

    def set_pruning_type(self, anchor: str, prune_type: str) -> None:
        """Aggregate ``prune_type`` under vertices of type ``anchor`` (``*``: all)."""
        if anchor == ANY:
            for s in self._anchors.values():
                s.discard(prune_type)
            self._anchors.setdefault(ANY, set()).add(prune_type)
        elif prune_type not in self._anchors.get(ANY, ()):
            self._anchors.setdefault(anchor, set()).add(prune_type)
        self._total.add(prune_type)

    def is_pruning_type(self, rtype: str) -> bool:
        return rtype in self._total

    def my_types(self, anchor: str) -> list[str]:
        """Types aggregated at a vertex of type ``anchor``, in planner order.

        Fluxion keeps these in sets of interned type names, ordered by
        interning order, where its built-in types come first, in the order
        flux-sched's ``data_std.cpp`` defines them (cluster, core, socket,
        gpu, node, rack, slot).  The last type orders children for the
        ``first`` policy, so the order matters: a rack's children are ordered
        by free nodes, a node's by free cores.
        """
        out = sorted(self._anchors.get(anchor, ()), key=_type_rank) if anchor != ANY else []
        # as matcher_util_api_t::get_my_pruning_types: an ALL type never
        # aggregates at a vertex of its own type (a node does not count nodes)
        out += sorted((t for t in self._anchors.get(ANY, ()) if t != anchor), key=_type_rank)
        return out

    def accum(self, rtype: str, n: int, into: dict[str, int]) -> None:
        if rtype in self._total:
            into[rtype] = into.get(rtype, 0) + n


def prime_pruning_filters(g: ResourceGraph, filters: PruneFilters) -> None:
    """Create every vertex's subtree planner from the graph's current contents."""
    ss = filters.subsystem
    root = g.roots[ss]
    verts = g.vertices
    total = filters._total  # grows while leaf types are discovered below
    reverse = g.reverse_edges
    types_of: dict[str, list[str]] = {}
    n_total = -1
    # iterative post-order over the subsystem tree; sums[uid] holds the
    # pruning-type totals of a finished vertex's subtree until its parent pops it
    stack: list[tuple[Vertex, bool]] = [(root, False)]
    sums: dict[int, dict[str, int]] = {}
    pop = sums.pop
    while stack:
        u, done = stack.pop()
        kids = u.out.get(ss)
        if not done:
            # flux-sched adds unnamed leaf types, but a GRUG leaf still has its
            # reverse "in" edge, so there only roots without children count.
            if not kids and u.type not in total and (not reverse or u is root):
                filters.set_pruning_type(ANY, u.type)
            if kids:
                stack.append((u, True))
                stack.extend([(verts[e.dst], False) for e in reversed(kids)])
            continue
        dfv: dict[str, int] = {}
        get = dfv.get
        for e in kids:
            c = verts[e.dst]
            t = c.type
            if t in total:
                dfv[t] = get(t, 0) + c.size
            sub = pop(c.uniq_id, None)
            if sub:
                for t, n in sub.items():
                    if t in total:
                        dfv[t] = get(t, 0) + n
        sums[u.uniq_id] = dfv
        if len(total) != n_total:  # a new pruning type: the per-type lists changed
            types_of.clear()
            n_total = len(total)
        types = types_of.get(u.type)
        if types is None:
            types = types_of[u.type] = filters.my_types(u.type)
        if types:
            u.own("subplans")[ss] = MultiPlanner([get(t, 0) for t in types], types, 0, INT64_MAX)
