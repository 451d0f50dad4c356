"""Job dependencies (RFC 26): ``attributes.system.dependencies`` of a jobspec.

>>> parse_dependencies({"attributes": {"system": {"dependencies": [
...     {"scheme": "afterok", "value": "f1"}]}}})
[('afterok', 'f1')]
>>> resolve_dependency("afterok", "f1")
1
"""

from __future__ import annotations

from .jobid import id_parse

SCHEMES = ("afterok", "afterany", "afternotok", "afterstart")


class DependencyError(ValueError):
    """A dependency that is malformed or can never be met."""


def parse_dependencies(jobspec: dict) -> list[tuple[str, str]]:
    """``[(scheme, value), ...]``; raise DependencyError if the structure is wrong."""
    system = ((jobspec or {}).get("attributes") or {}).get("system") or {}
    deps = system.get("dependencies", [])
    if not isinstance(deps, list):
        raise DependencyError("attributes.system.dependencies: must be a list")
    out = []
    for i, dep in enumerate(deps):
        where = f"attributes.system.dependencies[{i}]"
        if not isinstance(dep, dict):
            raise DependencyError(f"{where}: must be an object with scheme and value")
        scheme, value = dep.get("scheme"), dep.get("value")
        if not isinstance(scheme, str) or not scheme:
            raise DependencyError(f"{where}.scheme: must be a non-empty string")
        if not isinstance(value, (str, int)):
            raise DependencyError(f"{where}.value: must be a string")
        out.append((scheme, str(value)))
    return out


def resolve_dependency(scheme: str, value: str) -> int:
    """The job id a dependency names; raise DependencyError naming what is wrong."""
    if scheme not in SCHEMES:
        raise DependencyError(f"dependency scheme '{scheme}' is not supported "
                              f"(one of {', '.join(SCHEMES)})")
    try:
        return id_parse(value)
    except ValueError:
        raise DependencyError(f"dependency {scheme}:{value}: invalid job id") from None


def parse_dependency_uri(text: str) -> dict:
    """``--dependency=afterok:ID`` (RFC 26 short form) as a jobspec dependency."""
    scheme, sep, value = text.partition(":")
    if not sep or not scheme or not value:
        raise DependencyError(f"--dependency {text!r}: expected SCHEME:JOBID (e.g. afterok:ƒ2sX)")
    return {"scheme": scheme, "value": value}
