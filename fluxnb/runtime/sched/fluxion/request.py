"""The resource request side of a jobspec, as the Fluxion matcher reads it.

:func:`parse_request` turns a jobspec (YAML text or a dict, RFC 14 / RFC 25)
into a :class:`Request`: a tree of :class:`ResourceReq` (type, count with
min/max/operator/operand, exclusive tristate, slot label, children) plus the
duration from ``attributes.system.duration``.  Full jobspec validation is the
job module's business; this only checks what the matcher depends on and
names the path of anything wrong (``resources[0].with[1].count``).

Examples
--------
>>> r = parse_request({"version": 1, "resources": [{"type": "node", "count": 2}],
...                    "attributes": {"system": {"duration": 60}}, "tasks": []})
>>> r.resources[0].type, r.resources[0].count_min, r.duration
('node', 2, 60)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from . import simpleyaml

#: libyaml's C loader where PyYAML was built with it (several times faster on jobspecs)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

__all__ = ["ResourceReq", "Request", "RequestError", "parse_request", "calc_count",
           "calc_effective_max", "shape_key"]

_UINT_MAX = 0xFFFFFFFF


class RequestError(ValueError):
    """The jobspec cannot be matched as written."""


@dataclass
class ResourceReq:
    """One jobspec resource vertex."""

    type: str
    count_min: int = 1
    count_max: int = 1
    operator: str = "+"
    operand: int = 1
    exclusive: bool | None = None
    label: str = ""
    with_: list["ResourceReq"] = field(default_factory=list)
    #: Pruning-type aggregates of one instance of this resource's subtree.
    user_data: dict[str, int] = field(default_factory=dict)


@dataclass
class Request:
    resources: list[ResourceReq]
    duration: int = 0
    task_slots: list[str] = field(default_factory=list)

    def key(self) -> tuple:
        """The request's shape: what a match depends on (resources, duration, task slots).

        Two requests with equal keys select the same resources on the same
        graph, whatever jobspec object or file they came from; the matcher
        keys its per-request records by it (see :meth:`.matcher.Traverser.run`).
        The resource part is computed once (``resources`` is not to be changed
        after parsing); ``duration`` and ``task_slots`` are read each time.
        """
        shape = self.__dict__.get("_shape")
        if shape is None:
            shape = self.__dict__["_shape"] = shape_key(self.resources)
        return (shape, self.duration, tuple(self.task_slots))


def shape_key(resources: list[ResourceReq]) -> tuple:
    """A hashable canonical form of a resource request tree (every field a match reads)."""
    return tuple((r.type, r.count_min, r.count_max, r.operator, r.operand, r.exclusive, r.label,
                  shape_key(r.with_)) for r in resources)


def calc_count(r: ResourceReq, qc: int) -> int:
    """Largest count allowed by ``r``'s count spec that is <= ``qc`` (0 if none)."""
    if r.count_min > r.count_max or r.count_min > qc:
        return 0
    count, cur = 0, r.count_min
    if r.operator == "+":
        if r.operand == 0:
            return cur
        while cur <= qc and cur <= r.count_max:
            count = cur
            cur += r.operand
    elif r.operator == "*":
        if r.operand == 1:
            return cur
        while cur <= qc and cur <= r.count_max:
            count = cur
            cur *= r.operand
    elif r.operator == "^":
        if r.operand < 2 or cur == 1:
            return cur
        while cur <= qc and cur <= r.count_max:
            count = cur
            cur = cur ** r.operand
    return count


def calc_effective_max(r: ResourceReq) -> int:
    """Largest count ``r`` may ever take."""
    return calc_count(r, _UINT_MAX)


def _int(v: Any, where: str, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise RequestError(f"{where} must be an integer, got {v!r}")
    if v < minimum:
        raise RequestError(f"{where} must be >= {minimum}, got {v}")
    return v


def _parse_resource(d: Any, where: str) -> ResourceReq:
    if not isinstance(d, dict):
        raise RequestError(f"{where} must be a mapping, got {type(d).__name__}")
    rtype = d.get("type")
    if not isinstance(rtype, str) or not rtype:
        raise RequestError(f"{where}.type must be a non-empty string")
    if "count" not in d:
        raise RequestError(f"{where}.count is missing")
    c = d["count"]
    r = ResourceReq(rtype)
    if isinstance(c, dict):
        r.count_min = _int(c.get("min"), f"{where}.count.min", 1)
        r.count_max = _int(c.get("max", r.count_min), f"{where}.count.max", 1)
        r.operator = c.get("operator", "+")
        if r.operator not in ("+", "*", "^"):
            raise RequestError(f"{where}.count.operator must be '+', '*' or '^', got {r.operator!r}")
        r.operand = _int(c.get("operand", 1), f"{where}.count.operand", 1)
        if r.count_max < r.count_min:
            raise RequestError(f"{where}.count.max ({r.count_max}) < min ({r.count_min})")
    else:
        r.count_min = r.count_max = _int(c, f"{where}.count", 1)
    if "exclusive" in d:
        if not isinstance(d["exclusive"], bool):
            raise RequestError(f"{where}.exclusive must be true or false")
        r.exclusive = d["exclusive"]
    if rtype == "slot":
        r.label = str(d.get("label", ""))
        if not r.label:
            raise RequestError(f"{where}: a slot needs a label")
    children = d.get("with", [])
    if not isinstance(children, list):
        raise RequestError(f"{where}.with must be a list")
    if rtype == "slot" and not children:
        raise RequestError(f"{where}: a slot must contain resources ('with')")
    r.with_ = [_parse_resource(x, f"{where}.with[{i}]") for i, x in enumerate(children)]
    seen: set[str] = set()
    for i, ch in enumerate(r.with_):
        if ch.type in seen:
            raise RequestError(f"{where}.with[{i}]: siblings request the same type '{ch.type}'")
        seen.add(ch.type)
    return r


def parse_request(jobspec: str | dict[str, Any], *, where: str = "jobspec") -> Request:
    """Parse the resources and duration of a jobspec.

    Raises
    ------
    RequestError
        Naming ``where`` and the path inside the jobspec.
    """
    if isinstance(jobspec, str):
        doc = simpleyaml.load(jobspec)  # the plain subset, without PyYAML's constructor
        if doc is None:
            try:
                doc = yaml.load(jobspec, Loader=_Loader)  # noqa: S506 (a safe loader)
            except yaml.YAMLError as exc:
                raise RequestError(f"{where}: invalid YAML: {exc}") from None
        jobspec = doc
    if not isinstance(jobspec, dict):
        raise RequestError(f"{where}: jobspec must be a mapping")
    res = jobspec.get("resources")
    if not isinstance(res, list) or not res:
        raise RequestError(f"{where}: 'resources' must be a non-empty list")
    resources = [_parse_resource(x, f"{where}: resources[{i}]") for i, x in enumerate(res)]
    duration = 0
    attrs = jobspec.get("attributes") or {}
    system = attrs.get("system") or {} if isinstance(attrs, dict) else {}
    if isinstance(system, dict) and "duration" in system:
        dur = system["duration"]
        if isinstance(dur, bool) or not isinstance(dur, (int, float)) or dur < 0:
            raise RequestError(f"{where}: attributes.system.duration must be a number >= 0")
        duration = int(dur)
    slots = []
    for t in jobspec.get("tasks") or []:
        if isinstance(t, dict) and isinstance(t.get("slot"), str):
            slots.append(t["slot"])
    return Request(resources, duration, slots)
