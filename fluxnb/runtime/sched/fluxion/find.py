"""``find`` expressions: select graph vertices by status, schedule and property.

An expression is predicates joined by ``and``/``or``, evaluated left to right
without precedence as flux-sched does (two predicates side by side mean ``and``),
optionally parenthesized::

    status=down and sched-now=allocated
    property=perf_class or names=node[0-3]

Predicates: ``status={up|down}``, ``sched-now={allocated|free}``,
``sched-future={reserved|free}``, ``property=NAME`` (or ``NAME=VALUE``),
``names=HOSTLIST``, ``jobid-alloc=ID``, ``jobid-reserved=ID``,
``jobid-span=ID`` (the job's subtree span), ``jobid-tag=ID``, ``agfilter={true|false}``.
Values are case-insensitive; a vertex below a down, allocated or reserved vertex
counts as down, allocated or reserved. Matching vertices, and their ancestors, are
emitted in post-order to a writer.
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

#: inherited state: a vertex below a down / allocated / reserved one counts as such
_DOWN, _ALLOC, _RESV = 1, 2, 4

Pred = Callable[[Vertex, int], bool]


def _jobid(key: str, val: str) -> int:
    from ...job.jobid import id_parse

    try:
        return id_parse(val)
    except ValueError:
        raise FindError(f"{key} needs a job id, got '{val}'") from None


def _predicate(tok: str) -> Pred:
    key, sep, raw = tok.partition("=")
    if not sep or not key or not raw:
        raise FindError(f"invalid predicate '{tok}' (expected key=value)")
    val = raw.lower()
    if key == "status":
        if val not in ("up", "down"):
            raise FindError(f"status must be up or down, got '{raw}'")
        if val == "down":
            return lambda v, o: bool(o & _DOWN) or v.status == "down"
        return lambda v, o: not o & _DOWN and v.status == "up"
    if key == "sched-now":
        if val not in ("allocated", "free"):
            raise FindError(f"sched-now must be allocated or free, got '{raw}'")
        if val == "allocated":
            return lambda v, o: bool(o & _ALLOC) or bool(v.allocations)
        return lambda v, o: not o & _ALLOC and not v.allocations
    if key == "sched-future":
        if val not in ("reserved", "free"):
            raise FindError(f"sched-future must be reserved or free, got '{raw}'")
        if val == "reserved":
            return lambda v, o: bool(o & _RESV) or bool(v.reservations)
        return lambda v, o: not o & _RESV and not v.reservations
    if key == "property":
        return lambda v, o: v.has_properties and val in v.properties
    if key == "names":
        from ...util.hostlist import Hostlist

        try:
            names = set(Hostlist(val))
        except ValueError:
            raise FindError(f"names: invalid hostlist '{raw}'") from None
        return lambda v, o: v.name in names
    if key in ("jobid-alloc", "jobid-reserved", "jobid-span", "jobid-tag"):
        jid = _jobid(key, raw)
        if key == "jobid-alloc":
            return lambda v, o: jid in v.allocations
        if key == "jobid-reserved":
            return lambda v, o: jid in v.reservations
        if key == "jobid-span":
            return lambda v, o: jid in v.job2span
        return lambda v, o: jid in v.tags
    if key == "agfilter":
        if val not in ("true", "t", "false", "f"):
            raise FindError(f"agfilter must be true or false, got '{raw}'")
        truth = val in ("true", "t")
        return lambda v, o: truth
    raise FindError(f"unknown predicate '{key}'")


def compile_expression(expr: str) -> Pred:
    """Compile an expression into a predicate of (vertex, inherited flags).

    As flux-sched's evaluator: operands are combined left to right with no
    precedence, ``and`` is implied between two operands, parentheses group.
    """
    toks = _TOKEN.findall(expr)
    if not toks:
        raise FindError("empty find expression")
    pos = 0

    def operand() -> Pred:
        nonlocal pos
        if pos >= len(toks):
            raise FindError(f"expression ends early: '{expr}'")
        t = toks[pos]
        pos += 1
        if t == "(":
            f = sequence()
            if pos >= len(toks) or toks[pos] != ")":
                raise FindError(f"missing ')' in '{expr}'")
            pos += 1
            return f
        if t in ("and", "or", ")"):
            raise FindError(f"unexpected '{t}' in '{expr}'")
        return _predicate(t)

    def sequence() -> Pred:
        nonlocal pos
        f = operand()
        while pos < len(toks) and toks[pos] != ")":
            op = "and"
            if toks[pos] in ("and", "or"):
                op = toks[pos]
                pos += 1
            g = operand()
            f = (lambda a, b: (lambda v, o: a(v, o) and b(v, o)))(f, g) if op == "and" else \
                (lambda a, b: (lambda v, o: a(v, o) or b(v, o)))(f, g)
        return f

    f = sequence()
    if pos != len(toks):
        raise FindError(f"unexpected '{toks[pos]}' in '{expr}'")
    return f


def find(trav: object, expr: str, writer: MatchWriter) -> int:
    """Emit vertices matching ``expr`` (and their ancestors); return how many matched."""
    try:
        pred = compile_expression(expr)
    except FindError as exc:
        raise FindError(f"find: invalid criteria: {expr}: {exc}") from None
    g = trav.g  # type: ignore[attr-defined]
    dom = trav.dom  # type: ignore[attr-defined]
    verts = g.vertices
    count = 0

    def visit(u: Vertex, level: int, inherited: int) -> int:
        nonlocal count
        flags = inherited
        if u.status == "down":
            flags |= _DOWN
        if u.allocations:
            flags |= _ALLOC
        if u.reservations:
            flags |= _RESV
        n = 0
        for e in u.children(dom):
            n += visit(verts[e.dst], level + 1, flags)
        if pred(u, flags):
            count += 1
        elif not n:
            return 0
        writer.emit_vtx(level, u, u.size, True)
        return n + 1

    visit(trav.root, 1, 0)  # type: ignore[attr-defined]
    return count
