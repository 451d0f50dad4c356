"""Match writers: render the resources a match selected.

The update walk calls :meth:`MatchWriter.emit_vtx` for every selected vertex
in post-order (children before parents), then :meth:`MatchWriter.emit_tm`
with the job's start and end.  :meth:`MatchWriter.emit` returns the text and
resets the writer.  Formats follow flux-sched's resource-query ``-F``:

``simple``         one line per vertex, ``---`` per depth, ``name[needs:x|s]``
``pretty_simple``  the same, parents first, ``exclusive``/``shared``
``jgf``            JSON Graph Format of the selected subgraph
``rlite``          RFC 20 ``R_lite`` array (ranks, cores, gpus)
``rv1``            RFC 20 R version 1 with the JGF under ``scheduling``
``rv1_nosched``    RFC 20 R version 1 without ``scheduling``
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from .graph import Vertex

__all__ = ["MatchWriter", "make_writer", "WRITER_FORMATS", "WriterError"]

WRITER_FORMATS = ("simple", "pretty_simple", "jgf", "rlite", "rv1", "rv1_nosched")


class WriterError(ValueError):
    """Unknown match format."""


def _prefix(level: int) -> str:
    return "      " + "---" * level


class MatchWriter:
    """Base writer: remembers emitted vertices; subclasses render them.

    ``items`` holds them flat, four values a vertex (level, vertex, needs,
    exclusive; :meth:`entries` regroups them): a job over a whole cluster
    emits every vertex, and a tuple each would be as many more objects for
    the cyclic garbage collector to walk before they are rendered.
    """

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.starttime = 0
        self.expiration = 0

    def emit_vtx(self, level: int, v: Vertex, needs: int, exclusive: bool) -> None:
        self.items += (level, v, needs, exclusive)

    def entries(self) -> Iterator[tuple[int, Vertex, int, bool]]:
        """The emitted vertices in order, as ``(level, vertex, needs, exclusive)``."""
        it = iter(self.items)
        return zip(it, it, it, it)

    def emit_tm(self, start: int, end: int) -> None:
        self.starttime, self.expiration = start, end

    def render(self) -> str:
        raise NotImplementedError

    def emit(self) -> str:
        """Return the rendered match (empty if nothing was emitted) and reset."""
        out = self.render() if self.items else ""
        self.items = []
        self.starttime = self.expiration = 0
        return out


class SimpleWriter(MatchWriter):
    def render(self) -> str:
        return "".join(f"{_prefix(lv)}{v.name}[{n}:{'x' if x else 's'}]\n" for lv, v, n, x in self.entries())


class PrettySimpleWriter(MatchWriter):
    def render(self) -> str:
        return "".join(f"{_prefix(lv)}{v.name}[{n}:{'exclusive' if x else 'shared'}]\n"
                       for lv, v, n, x in reversed(list(self.entries())))


def _jgf(items: list[tuple[int, Vertex, int, bool]]) -> dict[str, Any]:
    nodes, edges = [], []
    chosen = {v.uniq_id for _, v, _, _ in items}
    for _, v, n, x in items:
        meta: dict[str, Any] = {"type": v.type, "basename": v.basename, "name": v.name, "id": v.id,
                                "uniq_id": v.uniq_id, "rank": v.rank, "exclusive": x,
                                "unit": v.unit, "size": n, "paths": v.paths_copy()}
        if v.has_properties:
            meta["properties"] = dict(v.properties)
        nodes.append({"id": str(v.uniq_id), "metadata": meta})
        for ss, pe in v.parent_edge.items():
            if pe.src in chosen:
                edges.append({"source": str(pe.src), "target": str(v.uniq_id),
                              "metadata": {"name": {ss: pe.relation}}})
    return {"graph": {"nodes": nodes, "edges": edges}}


def _rlite(items: list[tuple[int, Vertex, int, bool]]) -> tuple[list[dict[str, Any]], list[str]]:
    from fluxnb.runtime.util.idset import IDSet

    ranks: dict[int, dict[str, set[int]]] = {}
    hosts: dict[int, str] = {}
    for _, v, _n, _x in items:
        if v.type == "node":
            hosts[v.rank] = v.name
        elif v.type in ("core", "gpu"):
            ranks.setdefault(v.rank, {}).setdefault(v.type, set()).add(v.id)
    rl = []
    for rank in sorted(ranks):
        children = {t: IDSet(sorted(ids)).encode() for t, ids in sorted(ranks[rank].items())}
        rl.append({"rank": str(rank), "children": children})
    return rl, [hosts[r] for r in sorted(hosts)]


class JGFWriter(MatchWriter):
    def render(self) -> str:
        return json.dumps(_jgf(list(self.entries()))) + "\n"


class RLiteWriter(MatchWriter):
    def render(self) -> str:
        return json.dumps(_rlite(list(self.entries()))[0]) + "\n"


class RV1Writer(MatchWriter):
    sched = True

    def render(self) -> str:
        entries = list(self.entries())
        rl, nodelist = _rlite(entries)
        r: dict[str, Any] = {"version": 1, "execution": {
            "R_lite": rl, "nodelist": nodelist, "starttime": self.starttime,
            "expiration": self.expiration}}
        if self.sched:
            r["scheduling"] = _jgf(entries)
        return json.dumps(r) + "\n"


class RV1NoSchedWriter(RV1Writer):
    sched = False


_WRITERS = {"simple": SimpleWriter, "pretty_simple": PrettySimpleWriter, "jgf": JGFWriter,
            "rlite": RLiteWriter, "rv1": RV1Writer, "rv1_nosched": RV1NoSchedWriter}


def make_writer(fmt: str) -> MatchWriter:
    """Writer for a ``-F`` format name."""
    try:
        return _WRITERS[fmt]()
    except KeyError:
        raise WriterError(f"unknown match format '{fmt}'; known: {', '.join(WRITER_FORMATS)}") from None
