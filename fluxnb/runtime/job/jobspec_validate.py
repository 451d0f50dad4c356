"""Jobspec validation: canonical rules (RFC 14) and version 1 rules (RFC 25).

:func:`validate` raises :class:`JobspecError`, a ``ValueError`` whose message
is ``<JSON path>: <rule>``, for the first problem found, e.g.
``resources[0].with[1].count: must be >= 1`` or ``version: must be 1``.
The rules follow the RFCs, flux-core's ``flux.job.Jobspec`` validation and
the conformance vectors of flux-core's ``t/jobspec``.

Examples
--------
>>> validate({"version": 2, "resources": [], "tasks": [], "attributes": {}}, version=1)
Traceback (most recent call last):
...
fluxnb.runtime.job.jobspec_validate.JobspecError: version: must be 1
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

TYPE_CHECKING = False  # not typing's: a `flux` command would import typing for it
if TYPE_CHECKING:
    from typing import Any


__all__ = ["JobspecError", "validate", "load_yaml", "TOP_LEVEL_KEYS"]

TOP_LEVEL_KEYS = ("version", "resources", "tasks", "attributes")


class JobspecError(ValueError):
    """An invalid jobspec: ``path`` is where, ``reason`` is which rule."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_list(x: Any) -> bool:
    return isinstance(x, Sequence) and not isinstance(x, (str, bytes))


def _need(cond: bool, path: str, reason: str) -> None:
    if not cond:
        raise JobspecError(path, reason)


def _check_range(count: Mapping, path: str) -> None:
    for key in count:
        _need(key in ("min", "max", "operator", "operand"), f"{path}.{key}",
              "unknown key (a count range has min, max, operator, operand)")
    _need("min" in count, f"{path}.min", "is required in a count range")
    for key in ("min", "max", "operand"):
        if key in count:
            _need(_is_int(count[key]), f"{path}.{key}", "must be an integer")
            _need(count[key] >= 1, f"{path}.{key}", "must be >= 1")
    if "max" in count:
        _need(count["max"] >= count["min"], f"{path}.max", "must be >= min")
    _need(("operator" in count) == ("operand" in count), path,
          "operator and operand must be given together")
    if "operator" in count:
        op = count["operator"]
        _need(op in ("+", "*", "^"), f"{path}.operator", "must be one of '+', '*', '^'")
        if op in ("*", "^"):
            _need(count["operand"] >= 2, f"{path}.operand",
                  f"must be >= 2 with operator '{op}'")
        if op == "^":
            _need(count["min"] >= 2, f"{path}.min", "must be >= 2 with operator '^'")


_IDSET_RE = re.compile(r"^\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*$")
_RANGE_RE = re.compile(r"^(\d+)(?:-(\d+)|\+)(?::(\d+)(?::(.*))?)?$")


def _check_count_string(count: str, path: str) -> None:
    if _IDSET_RE.match(count):
        for part in count.split(","):
            lo, _, hi = part.partition("-")
            _need(int(lo) >= 1, path, f"idset {count!r} must not include 0")
            _need(not hi or int(hi) >= int(lo), path, f"idset {count!r}: bad range {part!r}")
        return
    m = _RANGE_RE.match(count)
    _need(m is not None, path,
          f"{count!r} is not an RFC 22 idset or a range like '2+' or '2-32:2:*'")
    rng: dict[str, Any] = {"min": int(m.group(1))}
    if m.group(2):
        rng["max"] = int(m.group(2))
    if m.group(3):
        rng["operand"], rng["operator"] = int(m.group(3)), m.group(4) or "+"
    _check_range(rng, path)


def _check_count(count: Any, rtype: Any, path: str) -> None:
    if _is_int(count):
        # As flux-core: node, slot and core need one or more; other resource
        # types (gpu, memory...) may ask for zero.
        least = 1 if rtype in ("node", "slot", "core") else 0
        _need(count >= least, path, f"must be >= {least}")
    elif isinstance(count, str):
        _check_count_string(count, path)
    elif isinstance(count, Mapping):
        _check_range(count, path)
    else:
        raise JobspecError(path, "must be an integer, an idset or range string, "
                                 "or a mapping with min/max/operator/operand")


def _check_vertex(res: Any, path: str, labels: set[str]) -> None:
    _need(isinstance(res, Mapping), path, "a resource vertex must be a mapping")
    _need("type" in res, f"{path}.type", "is required")
    _need(isinstance(res["type"], str), f"{path}.type", "must be a string")
    _need("count" in res, f"{path}.count", "is required")
    _check_count(res["count"], res["type"], f"{path}.count")
    for key in ("id", "unit", "label"):
        if key in res:
            _need(isinstance(res[key], str), f"{path}.{key}", "must be a string")
    if "exclusive" in res:
        _need(isinstance(res["exclusive"], bool), f"{path}.exclusive", "must be true or false")
    if res["type"] == "slot":
        _need("label" in res, f"{path}.label", "is required for a slot")
        _need("with" in res, f"{path}.with", "is required for a slot")
    if "label" in res:
        _need(res["label"] not in labels, f"{path}.label",
              f"label {res['label']!r} is used more than once")
        labels.add(res["label"])
    if "with" in res:
        children = res["with"]
        _need(_is_list(children) and len(children) > 0, f"{path}.with",
              "must be a non-empty list of resource vertices")
        for i, child in enumerate(children):
            _check_vertex(child, f"{path}.with[{i}]", labels)


def _check_task(task: Any, path: str) -> None:
    _need(isinstance(task, Mapping), path, "a task must be a mapping")
    for key in ("command", "slot", "count"):
        _need(key in task, f"{path}.{key}", "is required")
    cmd = task["command"]
    _need(_is_list(cmd) and len(cmd) > 0 and all(isinstance(a, str) for a in cmd),
          f"{path}.command", "must be a non-empty list of strings")
    _need(isinstance(task["slot"], str), f"{path}.slot", "must be a string")
    count = task["count"]
    _need(isinstance(count, Mapping), f"{path}.count",
          "must be a mapping with one of per_slot, per_resource, total")
    _need(len(count) == 1, f"{path}.count",
          "must have exactly one of per_slot, per_resource, total")
    (key, value), = count.items()
    if key in ("per_slot", "total"):
        _need(_is_int(value), f"{path}.count.{key}", "must be an integer")
        _need(value >= 1, f"{path}.count.{key}", "must be >= 1")
    elif key == "per_resource":
        _need(isinstance(value, Mapping), f"{path}.count.per_resource",
              "must be a mapping with type and count")
        _need(isinstance(value.get("type"), str), f"{path}.count.per_resource.type",
              "must be a string")
        _need(_is_int(value.get("count")) and value["count"] >= 1,
              f"{path}.count.per_resource.count", "must be an integer >= 1")
    else:
        raise JobspecError(f"{path}.count.{key}",
                           "unknown key (use per_slot, per_resource or total)")
    if "attributes" in task:
        _need(isinstance(task["attributes"], Mapping), f"{path}.attributes", "must be a mapping")
    if "distribution" in task:
        _need(isinstance(task["distribution"], str), f"{path}.distribution", "must be a string")


_CONSTRAINT_OPS = ("and", "or", "not", "properties", "hostlist", "ranks")


def _check_constraint(con: Any, path: str) -> None:
    _need(isinstance(con, Mapping), path, "must be a mapping of operator to arguments (RFC 31)")
    for op, args in con.items():
        _need(op in _CONSTRAINT_OPS, f"{path}.{op}",
              f"unknown constraint operator (use one of {', '.join(_CONSTRAINT_OPS)})")
        _need(_is_list(args), f"{path}.{op}", "must be a list")
        for i, arg in enumerate(args):
            if op in ("and", "or", "not"):
                _check_constraint(arg, f"{path}.{op}[{i}]")
            else:
                _need(isinstance(arg, str), f"{path}.{op}[{i}]", "must be a string")


def _check_system(system: Mapping, path: str) -> None:
    # Unknown system keys are allowed (RFC 14: they warn, not fail); the
    # ones flux defines must have the documented types.
    for key in ("duration", "preemptible-after"):
        if key in system:
            v = system[key]
            _need(_is_number(v), f"{path}.{key}", "must be a number of seconds")
            _need(math.isfinite(v) and v >= 0, f"{path}.{key}", "must be a finite number >= 0")
    for key in ("cwd", "queue", "bank", "project"):
        if key in system:
            _need(isinstance(system[key], str), f"{path}.{key}", "must be a string")
    if "environment" in system:
        env = system["environment"]
        _need(isinstance(env, Mapping), f"{path}.environment", "must be a mapping")
        # (a submitter's whole environment: the messages are made only for a bad entry)
        for name, value in env.items():
            if type(name) is not str or (value is not None and type(value) is not str):
                _need(isinstance(name, str), f"{path}.environment", f"name {name!r} must be a string")
                _need(value is None or isinstance(value, str), f"{path}.environment.{name}",
                      "must be a string (or null to unset)")
    if "job" in system:
        _need(isinstance(system["job"], Mapping), f"{path}.job", "must be a mapping")
        for name, value in system["job"].items():
            _need(isinstance(value, str), f"{path}.job.{name}", "must be a string")
    if "shell" in system:
        shell = system["shell"]
        _need(isinstance(shell, Mapping), f"{path}.shell", "must be a mapping")
        if "options" in shell:
            _need(isinstance(shell["options"], Mapping), f"{path}.shell.options",
                  "must be a mapping")
    if "files" in system:
        files = system["files"]
        _need(isinstance(files, Mapping), f"{path}.files", "must be a mapping (RFC 37)")
        for name, entry in files.items():
            _need(isinstance(entry, Mapping), f"{path}.files.{name}", "must be a mapping")
    if "dependencies" in system:
        deps = system["dependencies"]
        _need(_is_list(deps), f"{path}.dependencies", "must be a list (RFC 26)")
        for i, dep in enumerate(deps):
            p = f"{path}.dependencies[{i}]"
            _need(isinstance(dep, Mapping), p, "must be a mapping with scheme and value")
            for key in ("scheme", "value"):
                _need(isinstance(dep.get(key), str), f"{p}.{key}", "must be a string")
    if "constraints" in system:
        _check_constraint(system["constraints"], f"{path}.constraints")


def _check_canonical(js: Any, v1: bool = False) -> None:
    _need(isinstance(js, Mapping), "jobspec", "must be a mapping")
    for key in TOP_LEVEL_KEYS:
        _need(key in js, key, "is required")
    for key in js:
        _need(key in TOP_LEVEL_KEYS, str(key),
              "unknown top-level key (expected version, resources, tasks, attributes)")
    version = js["version"]
    _need(_is_int(version), "version", "must be an integer")
    _need(version >= 1, "version", "must be >= 1")
    if v1:
        _need(version == 1, "version", "must be 1")
    resources = js["resources"]
    _need(_is_list(resources) and len(resources) > 0, "resources",
          "must be a non-empty list of resource vertices")
    labels: set[str] = set()
    for i, res in enumerate(resources):
        _check_vertex(res, f"resources[{i}]", labels)
    tasks = js["tasks"]
    _need(_is_list(tasks) and len(tasks) > 0, "tasks", "must be a non-empty list of tasks")
    for i, task in enumerate(tasks):
        _check_task(task, f"tasks[{i}]")
    attrs = js["attributes"]
    _need(isinstance(attrs, Mapping), "attributes", "must be a mapping")
    for key, value in attrs.items():
        _need(key in ("system", "user"), f"attributes.{key}",
              "unknown key (attributes has only system and user)")
        _need(isinstance(value, Mapping), f"attributes.{key}", "must be a mapping")
    if "system" in attrs:
        _check_system(attrs["system"], "attributes.system")


_V1_KEYS = {
    "node": {"type", "count", "unit", "with", "label", "exclusive"},
    "slot": {"type", "count", "unit", "with", "label", "exclusive"},
    "core": {"type", "count", "unit", "label"},
    "gpu": {"type", "count", "unit", "label"},
}


def _check_v1_vertex(res: Mapping, path: str, allowed: tuple[str, ...]) -> None:
    rtype = res["type"]
    _need(rtype in allowed, f"{path}.type",
          f"must be {' or '.join(repr(a) for a in allowed)} here in version 1 "
          "(node>slot>core[,gpu] or slot>core[,gpu])")
    _need(_is_int(res["count"]), f"{path}.count", "must be an integer in version 1")
    for key in res:
        _need(key in _V1_KEYS[rtype], f"{path}.{key}", f"not allowed on a {rtype} in version 1")


def _check_v1(js: Mapping) -> None:
    resources = js["resources"]
    _need(len(resources) == 1, "resources",
          "must have exactly one vertex (node or slot) in version 1")
    top = resources[0]
    _check_v1_vertex(top, "resources[0]", ("node", "slot"))
    slot, slot_path = top, "resources[0]"
    if top["type"] == "node":
        _need("with" in top, "resources[0].with", "is required: a node holds one slot")
        _need(len(top["with"]) == 1, "resources[0].with", "must hold exactly one slot in version 1")
        slot, slot_path = top["with"][0], "resources[0].with[0]"
        _check_v1_vertex(slot, slot_path, ("slot",))
    children = slot["with"]
    _need(len(children) <= 2, f"{slot_path}.with",
          "must hold a core and at most one gpu in version 1")
    seen = []
    for i, child in enumerate(children):
        path = f"{slot_path}.with[{i}]"
        _check_v1_vertex(child, path, ("core", "gpu"))
        _need(child["type"] not in seen, f"{path}.type", f"{child['type']} appears twice")
        seen.append(child["type"])
    _need("core" in seen, f"{slot_path}.with", "must include a core in version 1")
    tasks = js["tasks"]
    _need(len(tasks) == 1, "tasks", "must have exactly one task in version 1")
    count = tasks[0]["count"]
    _need("per_resource" not in count, "tasks[0].count.per_resource",
          "not supported in version 1 (use per_slot or total)")
    if "per_slot" in count:
        _need(count["per_slot"] == 1, "tasks[0].count.per_slot", "must be 1 in version 1")
    attrs = js["attributes"]
    _need("system" in attrs, "attributes.system", "is required in version 1")
    _need("duration" in attrs["system"], "attributes.system.duration", "is required in version 1")


def validate(jobspec: Any, version: int | None = None) -> None:
    """Check a jobspec, raising :class:`JobspecError` at the first problem.

    Parameters
    ----------
    jobspec : mapping, Jobspec, or str
        The jobspec dictionary (or a Jobspec, or its JSON/YAML text).
    version : {None, 1}
        ``None`` checks the canonical rules of RFC 14 (any version >= 1).
        ``1`` also applies RFC 25: one node or slot vertex, the shapes
        ``[node>]slot>core[,gpu]``, integer counts, one task counted
        ``per_slot: 1`` or ``total``, and ``attributes.system.duration``.

    Raises
    ------
    JobspecError
        A ``ValueError`` whose message is ``<path>: <rule>``.

    Examples
    --------
    >>> js = {"version": 1, "attributes": {"system": {"duration": 0}},
    ...       "resources": [{"type": "slot", "count": 1, "label": "task",
    ...                      "with": [{"type": "core", "count": 0}]}],
    ...       "tasks": [{"command": ["app"], "slot": "task", "count": {"per_slot": 1}}]}
    >>> validate(js)
    Traceback (most recent call last):
    ...
    fluxnb.runtime.job.jobspec_validate.JobspecError: resources[0].with[0].count: must be >= 1
    """
    if isinstance(getattr(jobspec, "jobspec", None), Mapping):
        jobspec = jobspec.jobspec  # a Jobspec object
    elif isinstance(jobspec, (str, bytes)):
        jobspec = load_yaml(jobspec)
    if version not in (None, 1):
        raise ValueError(f"unsupported jobspec version {version!r} (use None or 1)")
    _check_depth(jobspec)
    try:
        _check_canonical(jobspec, v1=version == 1)
        if version == 1:
            _check_v1(jobspec)
    except RecursionError:
        raise JobspecError("jobspec", f"nested more than {MAX_DEPTH} levels deep") from None


#: the largest jobspec accepted, as text (flux-core's job-ingest has no smaller one)
MAX_BYTES = 10 * 1024 * 1024
#: deepest nesting of a jobspec's resources (``with``) and of its values
MAX_DEPTH = 64
#: most values YAML aliases may expand a jobspec to (a 577-byte "billion laughs"
#: document expands to millions)
MAX_ALIAS_EXPANSION = 100_000


def _check_depth(jobspec: Any) -> None:
    """Refuse a resource tree nested deeper than MAX_DEPTH (iteratively: no recursion)."""
    if not isinstance(jobspec, Mapping):
        return
    level = jobspec.get("resources")
    depth = 0
    while isinstance(level, list) and level:
        depth += 1
        if depth > MAX_DEPTH:
            raise JobspecError("resources", f"'with' nested more than {MAX_DEPTH} levels deep")
        level = [w for r in level if isinstance(r, Mapping)
                 for w in (r.get("with") if isinstance(r.get("with"), list) else ())]


def _expanded_size(obj: Any, budget: int) -> int:
    """Count the values of ``obj`` as if every shared reference were a copy; stop past ``budget``."""
    count = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        count += 1
        if count > budget:
            break
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def load_yaml(source: Any, name: str = "jobspec") -> Any:
    """Parse YAML (or JSON) text or a stream; parse errors become ValueError.

    Examples
    --------
    >>> load_yaml("foo: bar: baz")
    Traceback (most recent call last):
    ...
    ValueError: jobspec: invalid YAML at line 1, column 9: mapping values are not allowed here
    """
    import yaml  # only YAML input pays for it

    if isinstance(source, (str, bytes)) and len(source) > MAX_BYTES:
        raise ValueError(f"{name}: {len(source)} bytes is larger than the jobspec limit "
                         f"of {MAX_BYTES // (1024 * 1024)} MiB")
    if isinstance(source, bytes) and b"\0" in source:
        raise ValueError(f"{name}: not a jobspec: binary data (a NUL byte)")

    class Loader(yaml.SafeLoader):
        aliases = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                Loader.aliases += 1
            return super().compose_node(parent, index)

    try:
        loader = Loader(source)
        try:
            obj = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if "special characters are not allowed" in str(problem) or "unacceptable character" in str(exc):
            problem = "binary data, not JSON or YAML text"
        raise ValueError(f"{name}: invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise ValueError(f"{name}: nested too deeply (more than {MAX_DEPTH} levels allowed "
                         "for resources)") from None
    if Loader.aliases and _expanded_size(obj, MAX_ALIAS_EXPANSION) > MAX_ALIAS_EXPANSION:
        raise ValueError(f"{name}: YAML aliases expand to more than {MAX_ALIAS_EXPANSION} "
                         "values (an alias bomb?); write the jobspec out in full")
    return obj
