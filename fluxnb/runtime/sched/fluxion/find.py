"""``find`` expressions: select graph vertices by status, schedule and property.

An expression is predicates joined by ``and``/``or`` (``and`` binds tighter),
optionally parenthesized::

    status=down and sched-now=allocated
    property=perf_class or names=node[0-3]

Predicates: ``status={up|down}``, ``sched-now={allocated|free}``,
``sched-future={reserved|free}``, ``property=NAME`` (or ``NAME=VALUE``),
``names=HOSTLIST``, ``jobid-alloc=ID``, ``jobid-reserved=ID``,
``jobid-span=ID``, ``agfilter={true|false}`` (accepted, ignored).
Matching vertices, and their ancestors, are emitted in post-order to a writer.
"""

from __future__ import annotations

import re
from typing import Callable

from .graph import Vertex
from .writers import MatchWriter

__all__ = ["find", "FindError", "compile_expression"]


class FindError(ValueError):
    """Malformed find expression."""


_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def _hostnames(spec: str) -> set[str]:
    out: set[str] = set()
    for m in re.finditer(r"([^,\[]+)(?:\[([^\]]*)\])?", spec):
        base, rng = m.group(1), m.group(2)
        if rng is None:
            out.add(base)
            continue
        for part in rng.split(","):
            lo, _, hi = part.partition("-")
            for i in range(int(lo), int(hi or lo) + 1):
                out.add(f"{base}{i}")
    return out


def _predicate(tok: str) -> Callable[[Vertex], bool]:
    key, sep, val = tok.partition("=")
    if not sep or not key or not val:
        raise FindError(f"invalid predicate '{tok}' (expected key=value)")
    if key == "status":
        if val not in ("up", "down"):
            raise FindError(f"status must be up or down, got '{val}'")
        return lambda v: v.status == val
    if key == "sched-now":
        if val not in ("allocated", "free"):
            raise FindError(f"sched-now must be allocated or free, got '{val}'")
        return (lambda v: bool(v.allocations)) if val == "allocated" else (lambda v: not v.allocations)
    if key == "sched-future":
        if val not in ("reserved", "free"):
            raise FindError(f"sched-future must be reserved or free, got '{val}'")
        return (lambda v: bool(v.reservations)) if val == "reserved" else (lambda v: not v.reservations)
    if key == "property":
        pk, _, pv = val.partition("=")
        return lambda v: v.has_properties and pk in v.properties and (not pv or v.properties[pk] == pv)
    if key == "names":
        names = _hostnames(val)
        return lambda v: v.name in names
    if key in ("jobid-alloc", "jobid-reserved", "jobid-span", "jobid-tag"):
        try:
            jid = int(val)
        except ValueError:
            raise FindError(f"{key} needs an integer jobid, got '{val}'") from None
        if key == "jobid-alloc":
            return lambda v: jid in v.allocations
        if key == "jobid-reserved":
            return lambda v: jid in v.reservations
        return lambda v: jid in v.tags
    if key == "agfilter":
        return lambda v: True
    raise FindError(f"unknown predicate '{key}'")


def compile_expression(expr: str) -> Callable[[Vertex], bool]:
    """Compile an expression into a vertex predicate."""
    toks = _TOKEN.findall(expr)
    if not toks:
        raise FindError("empty find expression")
    pos = 0

    def atom() -> Callable[[Vertex], bool]:
        nonlocal pos
        if pos >= len(toks):
            raise FindError(f"expression ends early: '{expr}'")
        t = toks[pos]
        pos += 1
        if t == "(":
            f = disj()
            if pos >= len(toks) or toks[pos] != ")":
                raise FindError(f"missing ')' in '{expr}'")
            pos += 1
            return f
        if t in ("and", "or", ")"):
            raise FindError(f"unexpected '{t}' in '{expr}'")
        return _predicate(t)

    def conj() -> Callable[[Vertex], bool]:
        nonlocal pos
        fs = [atom()]
        while pos < len(toks) and toks[pos] == "and":
            pos += 1
            fs.append(atom())
        return fs[0] if len(fs) == 1 else (lambda v: all(f(v) for f in fs))

    def disj() -> Callable[[Vertex], bool]:
        nonlocal pos
        fs = [conj()]
        while pos < len(toks) and toks[pos] == "or":
            pos += 1
            fs.append(conj())
        return fs[0] if len(fs) == 1 else (lambda v: any(f(v) for f in fs))

    f = disj()
    if pos != len(toks):
        raise FindError(f"unexpected '{toks[pos]}' in '{expr}'")
    return f


def find(trav: object, expr: str, writer: MatchWriter) -> int:
    """Emit vertices matching ``expr`` (and their ancestors); return how many matched."""
    pred = compile_expression(expr)
    g = trav.g  # type: ignore[attr-defined]
    dom = trav.dom  # type: ignore[attr-defined]
    verts = g.vertices
    count = 0

    def visit(u: Vertex, level: int) -> int:
        nonlocal count
        n = 0
        for e in u.children(dom):
            n += visit(verts[e.dst], level + 1)
        if pred(u):
            count += 1
        elif not n:
            return 0
        writer.emit_vtx(level, u, u.size, True)
        return n + 1

    visit(trav.root, 1)  # type: ignore[attr-defined]
    return count
