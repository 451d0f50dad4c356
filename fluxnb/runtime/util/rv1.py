"""RFC 20 R version 1: the concrete resource set of an instance or a job.

``execution.R_lite`` lists entries ``{"rank": idset, "children": {"core":
idset, "gpu": idset}}``; ranks whose children are identical share one
entry. ``execution.nodelist`` holds RFC 29 hostlists naming the ranks in
ascending rank order; ``execution.properties`` maps a property name to an
idset of ranks. ``scheduling`` is opaque scheduler data that rides along.

:class:`ResourceSet` is the per-rank model behind R, like flux-core's
librlist (and the ``flux.resource.ResourceSet`` Python class): parse and
validate R, count what it holds, combine two sets (the job manager frees
``alloc - released``), emit canonical R and the short ``rank0/core[0-3]``
form. :func:`resource_list` gives the rows of ``flux resource list``.

Examples
--------
>>> rs = ResourceSet.from_ranks({0: {"core": "0-3", "gpu": "0"},
...                              1: {"core": "0-3", "gpu": "0"}},
...                             hostnames="node[0-1]")
>>> rs.to_R()["execution"]["R_lite"]
[{'rank': '0-1', 'children': {'core': '0-3', 'gpu': '0'}}]
>>> rs.nnodes, rs.ncores, rs.ngpus, str(rs.nodelist)
(2, 8, 2, 'node[0-1]')
>>> (rs - ResourceSet.from_ranks({1: {"core": "2-3"}})).dumps()
'rank0/core[0-3],gpu0 rank1/core[0-1],gpu0'
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fluxnb.runtime.util.hostlist import Hostlist
from fluxnb.runtime.util.idset import IDSet

__all__ = [
    "InvalidR",
    "ResourceSet",
    "ResourceSummary",
    "encode_R_lite",
    "expand_R_lite",
    "resource_list",
    "validate_R",
]

IdsLike = IDSet | str | Iterable[int]

# Characters RFC 20 forbids in property names.
_ILLEGAL_PROPERTY_CHARS = set("!&'\"^`|()")


class InvalidR(ValueError):
    """R that breaks RFC 20; ``path`` says where, ``rule`` what is wrong.

    >>> str(InvalidR("execution.R_lite[0].rank", "missing"))
    'invalid R: execution.R_lite[0].rank: missing'
    """

    def __init__(self, path: str, rule: str) -> None:
        self.path = path
        self.rule = rule
        super().__init__(f"invalid R: {path}: {rule}")


def _ids(value: IdsLike, path: str) -> IDSet:
    if isinstance(value, IDSet):
        return value.copy()
    if isinstance(value, str):
        try:
            return IDSet.decode(value)
        except ValueError as e:
            raise InvalidR(path, str(e)) from None
    try:
        return IDSet(value)
    except (TypeError, ValueError) as e:
        raise InvalidR(path, str(e)) from None


def _child_order(name: str) -> tuple[int, str]:
    return ({"core": 0, "gpu": 1}.get(name, 2), name)


def _canonical(children: Mapping[str, IDSet]) -> dict[str, IDSet]:
    """Children without empty idsets, core first, then gpu, then by name."""
    return {k: children[k] for k in sorted(children, key=_child_order) if children[k]}


def _key(children: Mapping[str, IDSet]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v.encode()) for k, v in children.items())


def _groups(by_rank: Mapping[int, Mapping[str, IDSet]]) -> list[tuple[IDSet, dict[str, IDSet]]]:
    """Ranks sharing identical (non-empty) children, ordered by first rank."""
    groups: dict[tuple[tuple[str, str], ...], tuple[list[int], dict[str, IDSet]]] = {}
    for rank in sorted(by_rank):
        children = _canonical(by_rank[rank])
        if not children:
            continue
        groups.setdefault(_key(children), ([], children))[0].append(rank)
    return [(IDSet(ranks), children) for ranks, children in groups.values()]


def encode_R_lite(by_rank: Mapping[int, Mapping[str, IdsLike]]) -> list[dict[str, Any]]:
    """R_lite for a mapping ``rank -> {child name -> ids}``.

    Ranks with identical children share one entry (as flux-core's rlist
    does); empty children and ranks with nothing are left out.

    >>> encode_R_lite({0: {"core": [0, 1]}, 1: {"core": "0-1"}, 2: {"core": "0"}})
    [{'rank': '0-1', 'children': {'core': '0-1'}}, {'rank': '2', 'children': {'core': '0'}}]
    """
    norm = {r: {k: _ids(v, f"rank {r}.{k}") for k, v in c.items()} for r, c in by_rank.items()}
    return [
        {"rank": ranks.encode(), "children": {k: v.encode() for k, v in children.items()}}
        for ranks, children in _groups(norm)
    ]


def expand_R_lite(R_lite: Any, path: str = "execution.R_lite") -> dict[int, dict[str, IDSet]]:
    """The inverse of :func:`encode_R_lite`: ``rank -> {name -> IDSet}``.

    A rank listed in several entries gets the union of their children.

    >>> expand_R_lite([{"rank": "0-1", "children": {"core": "0-3"}}])[1]
    {'core': IDSet('0-3')}
    """
    if not isinstance(R_lite, list):
        raise InvalidR(path, f"must be an array, not {type(R_lite).__name__}")
    by_rank: dict[int, dict[str, IDSet]] = {}
    for i, entry in enumerate(R_lite):
        where = f"{path}[{i}]"
        if not isinstance(entry, dict):
            raise InvalidR(where, "must be an object")
        if "rank" not in entry:
            raise InvalidR(f"{where}.rank", "missing")
        if not isinstance(entry["rank"], str):
            raise InvalidR(f"{where}.rank", "must be an idset string")
        ranks = _ids(entry["rank"], f"{where}.rank")
        children = entry.get("children")
        if children is None:
            raise InvalidR(f"{where}.children", "missing")
        if not isinstance(children, dict):
            raise InvalidR(f"{where}.children", "must be an object")
        parsed = {}
        for name, ids in children.items():
            if not isinstance(ids, str):
                raise InvalidR(f"{where}.children.{name}", "must be an idset string")
            parsed[name] = _ids(ids, f"{where}.children.{name}")
        for rank in ranks:
            node = by_rank.setdefault(rank, {})
            for name, ids in parsed.items():
                node[name] = node[name] | ids if name in node else ids.copy()
    return by_rank


def shape_key(R: Any) -> tuple[str, str]:
    """What of R places resources (R_lite and nodelist, not the times), as a dict key:
    like jobs on the same resources share it, so what is derived from those parts
    can be derived once."""
    execution = R.get("execution") if isinstance(R, Mapping) else None
    if not isinstance(execution, Mapping):
        execution = {}
    return repr(execution.get("R_lite")), repr(execution.get("nodelist"))


def _number(execution: Mapping[str, Any], key: str) -> float:
    value = execution.get(key, 0.0)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise InvalidR(f"execution.{key}", f"must be a non-negative number, not {value!r}")
    return float(value)


def _check_property_name(name: Any, path: str) -> None:
    if not isinstance(name, str) or not name:
        raise InvalidR(path, "property name must be a non-empty string")
    bad = sorted(_ILLEGAL_PROPERTY_CHARS.intersection(name))
    if bad:
        raise InvalidR(path, f"property name '{name}' contains illegal character(s) {''.join(bad)}")


@dataclass
class _RNode:
    children: dict[str, IDSet]
    hostname: str | None = None
    properties: set[str] = field(default_factory=set)

    def copy(self) -> _RNode:
        return _RNode({k: v.copy() for k, v in self.children.items()},
                      self.hostname, set(self.properties))


class ResourceSet:
    """A set of resources by broker rank, read from and written to R.

    Parameters
    ----------
    R : mapping or str, optional
        An R object or its JSON text; validated (see :func:`validate_R`).

    Attributes
    ----------
    starttime, expiration : float
        Validity window in seconds since the epoch; 0.0 means unset.
    scheduling : object
        Scheduler data, carried through unchanged.
    """

    def __init__(self, R: Mapping[str, Any] | str | None = None) -> None:
        self._nodes: dict[int, _RNode] = {}
        self.starttime = 0.0
        self.expiration = 0.0
        self.nslots: int | None = None
        self.scheduling: Any = None
        self.attributes: Any = None
        if R is not None:
            self._load(R)

    # -- construction -----------------------------------------------------

    @classmethod
    def from_R(cls, R: Mapping[str, Any] | str) -> ResourceSet:
        """Parse and validate R (an object or JSON text); raise InvalidR."""
        return cls(R)

    @classmethod
    def from_ranks(cls, by_rank: Mapping[int, Mapping[str, IdsLike]],
                   hostnames: str | Hostlist | Sequence[str] | Mapping[int, str] | None = None,
                   properties: Mapping[str, IdsLike] | None = None,
                   starttime: float = 0.0, expiration: float = 0.0) -> ResourceSet:
        """Build from ``rank -> {child name -> ids}``.

        ``hostnames`` is a mapping ``rank -> host``, or hosts (a hostlist or
        a sequence) naming the ranks in ascending order.

        >>> ResourceSet.from_ranks({3: {"core": "0-1"}}, hostnames=["fluke3"]).host(3)
        'fluke3'
        """
        rs = cls()
        for rank, children in by_rank.items():
            if not isinstance(rank, int) or isinstance(rank, bool) or rank < 0:
                raise InvalidR(f"rank {rank!r}", "ranks must be non-negative integers")
            rs._nodes[rank] = _RNode({k: _ids(v, f"rank {rank}.{k}") for k, v in children.items()})
        rs._nodes = {r: rs._nodes[r] for r in sorted(rs._nodes)}
        if hostnames is not None:
            if isinstance(hostnames, Mapping):
                for rank, host in hostnames.items():
                    if rank not in rs._nodes:
                        raise InvalidR("hostnames", f"rank {rank} is not in the set")
                    rs._nodes[rank].hostname = host
            else:
                rs._assign_hosts(Hostlist(hostnames), "hostnames")
        for name, ranks in (properties or {}).items():
            rs.set_property(name, ranks)
        rs.starttime, rs.expiration = float(starttime), float(expiration)
        rs._check_times()
        rs._drop_empty()
        return rs

    def _drop_empty(self) -> None:
        # After hosts are matched to ranks: a rank with nothing is not in R.
        self._nodes = {r: n for r, n in self._nodes.items() if _canonical(n.children)}

    def _assign_hosts(self, hosts: Hostlist, path: str) -> None:
        if len(hosts) != len(self._nodes):
            raise InvalidR(path, f"{len(hosts)} hosts for {len(self._nodes)} ranks")
        for node, host in zip(self._nodes.values(), hosts):
            node.hostname = host

    def _check_times(self) -> None:
        if self.starttime > 0 and self.expiration > 0 and self.expiration <= self.starttime:
            raise InvalidR("execution.expiration",
                           f"must be greater than starttime ({self.expiration} <= {self.starttime})")

    def _load(self, R: Mapping[str, Any] | str) -> None:
        if isinstance(R, str):
            try:
                R = json.loads(R)
            except ValueError as e:
                raise InvalidR("R", f"not valid JSON: {e}") from None
        if not isinstance(R, Mapping):
            raise InvalidR("R", f"must be an object, not {type(R).__name__}")
        version = R.get("version")
        if version is None:
            raise InvalidR("version", "missing")
        if version != 1 or isinstance(version, bool):
            raise InvalidR("version", f"must be 1, not {version!r}")
        execution = R.get("execution")
        if execution is None:
            raise InvalidR("execution", "missing (R without execution is not supported)")
        if not isinstance(execution, Mapping):
            raise InvalidR("execution", "must be an object")
        if "R_lite" not in execution:
            raise InvalidR("execution.R_lite", "missing")
        by_rank = expand_R_lite(execution["R_lite"])
        self._nodes = {r: _RNode(by_rank[r]) for r in sorted(by_rank)}
        nodelist = execution.get("nodelist")
        if nodelist is not None:
            if not isinstance(nodelist, list):
                raise InvalidR("execution.nodelist", "must be an array of hostlist strings")
            hosts = Hostlist()
            for i, item in enumerate(nodelist):
                if not isinstance(item, str):
                    raise InvalidR(f"execution.nodelist[{i}]", "must be a hostlist string")
                try:
                    hosts.append(item)
                except ValueError as e:
                    raise InvalidR(f"execution.nodelist[{i}]", str(e)) from None
            self._assign_hosts(hosts, "execution.nodelist")
        props = execution.get("properties")
        if props is not None:
            if not isinstance(props, Mapping):
                raise InvalidR("execution.properties", "must be an object")
            for name, ranks in props.items():
                path = f"execution.properties.{name}"
                if not isinstance(ranks, str):
                    raise InvalidR(path, "must be an idset string of ranks")
                self.set_property(name, _ids(ranks, path), path=path)
        self.starttime = _number(execution, "starttime")
        self.expiration = _number(execution, "expiration")
        self._check_times()
        nslots = execution.get("nslots")
        if nslots is not None and (not isinstance(nslots, int) or isinstance(nslots, bool)
                                   or nslots < 0):
            raise InvalidR("execution.nslots", f"must be a non-negative integer, not {nslots!r}")
        self.nslots = nslots
        self.scheduling = R.get("scheduling")
        self.attributes = R.get("attributes")
        self._drop_empty()

    # -- output -----------------------------------------------------------

    @property
    def R_lite(self) -> list[dict[str, Any]]:
        """The compressed R_lite array."""
        return [
            {"rank": ranks.encode(), "children": {k: v.encode() for k, v in children.items()}}
            for ranks, children in _groups(self.by_rank())
        ]

    def to_R(self) -> dict[str, Any]:
        """R version 1 as a dict, with keys in flux-core's ``rlist_to_R`` order."""
        execution: dict[str, Any] = {"R_lite": self.R_lite}
        if self.nslots is not None:
            execution["nslots"] = self.nslots
        execution["starttime"] = self.starttime
        execution["expiration"] = self.expiration
        if self._nodes and all(n.hostname is not None for n in self._nodes.values()):
            execution["nodelist"] = [self.nodelist.encode()]
        props = self.properties
        if props:
            execution["properties"] = {k: v.encode() for k, v in props.items()}
        R: dict[str, Any] = {"version": 1, "execution": execution}
        if self.scheduling is not None:
            R["scheduling"] = self.scheduling
        if self.attributes is not None:
            R["attributes"] = self.attributes
        return R

    def encode(self) -> str:
        """R as JSON text."""
        return json.dumps(self.to_R())

    def dumps(self) -> str:
        """Short form, as flux-core's ``rlist_dumps``.

        >>> ResourceSet.from_ranks({0: {"core": "0-3"}, 1: {"core": "0-1"},
        ...                         2: {"core": "0-3", "gpu": "0"}}).dumps()
        'rank0/core[0-3] rank1/core[0-1] rank2/core[0-3],gpu0'
        """
        return " ".join(
            f"rank{ranks.encode(brackets=True)}/"
            + ",".join(f"{k}{v.encode(brackets=True)}" for k, v in children.items())
            for ranks, children in _groups(self.by_rank())
        )

    def __str__(self) -> str:
        return self.dumps()

    def __repr__(self) -> str:
        return f"ResourceSet('{self.dumps()}')"

    # -- queries ----------------------------------------------------------

    def by_rank(self) -> dict[int, dict[str, IDSet]]:
        """Expanded form: ``rank -> {child name -> IDSet}`` (copies)."""
        return {r: {k: v.copy() for k, v in _canonical(n.children).items()}
                for r, n in self._nodes.items()}

    @property
    def ranks(self) -> IDSet:
        return IDSet(self._nodes)

    @property
    def nnodes(self) -> int:
        return len(self._nodes)

    def count(self, name: str) -> int:
        """Total number of ``name`` children (e.g. ``"core"``) over all ranks."""
        return sum(len(n.children.get(name, ())) for n in self._nodes.values())

    @property
    def ncores(self) -> int:
        return self.count("core")

    @property
    def ngpus(self) -> int:
        return self.count("gpu")

    @property
    def nodelist(self) -> Hostlist:
        """Host names in rank order (a rank without one is left out)."""
        return Hostlist([n.hostname for n in self._nodes.values() if n.hostname is not None])

    def host(self, rank: int) -> str | None:
        """The host name of ``rank``, or None if unknown; KeyError if absent."""
        return self._nodes[rank].hostname

    def host_ranks(self, hosts: str | Hostlist) -> IDSet:
        """Ranks on the given hosts; ValueError naming hosts not in the set."""
        wanted = Hostlist(hosts)
        ranks = IDSet(r for r, n in self._nodes.items() if n.hostname in wanted)
        found = {self._nodes[r].hostname for r in ranks}
        missing = [h for h in wanted if h not in found]
        if missing:
            raise ValueError(f"invalid hosts: {Hostlist(missing)}")
        return ranks

    @property
    def properties(self) -> dict[str, IDSet]:
        """``property name -> ranks``, sorted by name."""
        props: dict[str, list[int]] = {}
        for rank, node in self._nodes.items():
            for name in node.properties:
                props.setdefault(name, []).append(rank)
        return {k: IDSet(props[k]) for k in sorted(props)}

    def set_property(self, name: str, ranks: IdsLike | None = None, *,
                     path: str = "properties") -> None:
        """Give ``name`` to ``ranks`` (all ranks if None)."""
        _check_property_name(name, path)
        ids = self.ranks if ranks is None else _ids(ranks, path)
        missing = ids - self.ranks
        if missing:
            raise InvalidR(path, f"ranks {missing} are not in R_lite")
        for rank in ids:
            self._nodes[rank].properties.add(name)

    def match_ranks(self, constraint: Mapping[str, Any]) -> IDSet:
        """Ranks satisfying an RFC 31 constraint (``properties``, ``hostlist``,
        ``ranks``, ``and``, ``or``, ``not``); ValueError naming a bad term.

        >>> rs = ResourceSet.from_ranks({0: {"core": "0"}, 1: {"core": "0"}},
        ...                             properties={"big": "1"})
        >>> str(rs.match_ranks({"properties": ["^big"]}))
        '0'
        """
        return IDSet(r for r, n in self._nodes.items() if _matches(constraint, r, n))

    def copy_constraint(self, constraint: Mapping[str, Any]) -> ResourceSet:
        """Only the ranks satisfying an RFC 31 constraint."""
        return self.copy_ranks(self.match_ranks(constraint))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResourceSet):
            return NotImplemented
        return (self.by_rank() == other.by_rank()
                and [n.hostname for n in self._nodes.values()]
                == [n.hostname for n in other._nodes.values()])

    __hash__ = None  # type: ignore[assignment]

    # -- combining --------------------------------------------------------

    def _like(self, nodes: dict[int, _RNode]) -> ResourceSet:
        """A new set with our times and scheduler data, holding ``nodes``
        minus those left without resources."""
        rs = ResourceSet()
        rs._nodes = {r: nodes[r] for r in sorted(nodes) if _canonical(nodes[r].children)}
        rs.starttime, rs.expiration = self.starttime, self.expiration
        rs.scheduling, rs.attributes = self.scheduling, self.attributes
        return rs

    def copy(self) -> ResourceSet:
        rs = self._like({r: n.copy() for r, n in self._nodes.items()})
        rs.nslots = self.nslots
        return rs

    def copy_ranks(self, ranks: IdsLike) -> ResourceSet:
        """Only the given ranks (those present).

        >>> ResourceSet.from_ranks({r: {"core": "0-3"} for r in range(6)}).copy_ranks("1,3,5").dumps()
        'rank[1,3,5]/core[0-3]'
        """
        ids = _ids(ranks, "ranks")
        return self._like({r: n.copy() for r, n in self._nodes.items() if r in ids})

    def remove_ranks(self, ranks: IdsLike) -> ResourceSet:
        """All but the given ranks."""
        ids = _ids(ranks, "ranks")
        return self._like({r: n.copy() for r, n in self._nodes.items() if r not in ids})

    def diff(self, other: ResourceSet) -> ResourceSet:
        """Resources in self and not in ``other`` (what is left after freeing).

        >>> a = ResourceSet.from_ranks({0: {"core": "0-3", "gpu": "0"}})
        >>> a.diff(ResourceSet.from_ranks({0: {"core": "0-3"}})).dumps()
        'rank0/gpu0'
        """
        nodes = {}
        for rank, node in self._nodes.items():
            new = node.copy()
            if rank in other._nodes:
                theirs = other._nodes[rank].children
                new.children = {k: v - theirs[k] if k in theirs else v
                                for k, v in new.children.items()}
            nodes[rank] = new
        return self._like(nodes)

    def intersect(self, other: ResourceSet) -> ResourceSet:
        """Resources in both sets.

        >>> a = ResourceSet.from_ranks({r: {"core": "0-3"} for r in range(11)})
        >>> b = ResourceSet.from_ranks({r: {"core": "1"} for r in range(9, 16)})
        >>> a.intersect(b).dumps()
        'rank[9-10]/core1'
        """
        nodes = {}
        for rank, node in self._nodes.items():
            if rank in other._nodes:
                new = node.copy()
                theirs = other._nodes[rank].children
                new.children = {k: v & theirs[k] for k, v in new.children.items() if k in theirs}
                nodes[rank] = new
        return self._like(nodes)

    def union(self, other: ResourceSet, strict: bool = True) -> ResourceSet:
        """Resources in either set; a rank named differently in each is an
        error (with ``strict=False`` it keeps this set's name, as flux-core's
        Python ResourceSet does).

        >>> a = ResourceSet.from_ranks({0: {"core": "0-3"}})
        >>> a.union(ResourceSet.from_ranks({0: {"gpu": "0"}})).dumps()
        'rank0/core[0-3],gpu0'
        """
        nodes = {r: n.copy() for r, n in self._nodes.items()}
        for rank, theirs in other._nodes.items():
            mine = nodes.get(rank)
            if mine is None:
                nodes[rank] = theirs.copy()
                continue
            if strict and mine.hostname and theirs.hostname and mine.hostname != theirs.hostname:
                raise ValueError(f"rank {rank} is host '{mine.hostname}' in one set "
                                 f"and '{theirs.hostname}' in the other")
            mine.hostname = mine.hostname or theirs.hostname
            mine.properties |= theirs.properties
            for k, v in theirs.children.items():
                mine.children[k] = mine.children[k] | v if k in mine.children else v.copy()
        return self._like(nodes)

    def __sub__(self, other: object) -> ResourceSet:
        return self.diff(other) if isinstance(other, ResourceSet) else NotImplemented

    def __and__(self, other: object) -> ResourceSet:
        return self.intersect(other) if isinstance(other, ResourceSet) else NotImplemented

    def __or__(self, other: object) -> ResourceSet:
        return self.union(other) if isinstance(other, ResourceSet) else NotImplemented


def _strings(op: str, args: Any) -> list[str]:
    if isinstance(args, str):
        args = [args]
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ValueError(f"constraint '{op}' operator requires a list of strings")
    return args


def _matches(con: Any, rank: int, node: _RNode) -> bool:
    if not isinstance(con, Mapping):
        raise ValueError(f"constraint must be an object, not {type(con).__name__}")
    for op, args in con.items():
        if op in ("and", "or", "not"):
            if not isinstance(args, list) or (op == "not" and not args):
                raise ValueError(f"constraint '{op}' operator requires a non-empty list")
            results = [_matches(c, rank, node) for c in args]
            ok = any(results) if op == "or" else all(results)
            if op == "not":
                ok = not ok
        elif op == "properties":
            ok = True
            for prop in _strings(op, args):
                neg = prop.startswith("^")
                ok = ok and ((prop[1:] not in node.properties) if neg
                             else (prop in node.properties))
        elif op == "hostlist":
            ok = node.hostname is not None and any(
                node.hostname in Hostlist(h) for h in _strings(op, args))
        elif op == "ranks":
            ok = any(rank in _ids(r, "constraint.ranks") for r in _strings(op, args))
        else:
            raise ValueError(f"unknown constraint operator '{op}'")
        if not ok:
            return False
    return True


def validate_R(R: Mapping[str, Any] | str) -> None:
    """Raise :class:`InvalidR` (path and rule) if R breaks RFC 20.

    >>> try:
    ...     validate_R({"version": 1, "execution": {
    ...         "R_lite": [{"rank": "0", "children": {"core": "3-1"}}]}})
    ... except InvalidR as e:
    ...     print(e.path, "|", e.rule)
    execution.R_lite[0].children.core | invalid idset '3-1': range '3-1' is descending
    """
    ResourceSet(R)


@dataclass(frozen=True)
class ResourceSummary:
    """One row of ``flux resource list``: what is in one state."""

    state: str
    nnodes: int
    ncores: int
    ngpus: int
    ranks: str
    nodelist: str

    @classmethod
    def of(cls, state: str, rs: ResourceSet) -> ResourceSummary:
        return cls(state, rs.nnodes, rs.ncores, rs.ngpus, rs.ranks.encode(), rs.nodelist.encode())


def resource_list(R: ResourceSet | Mapping[str, Any] | str,
                  allocated: ResourceSet | Mapping[str, Any] | str | None = None,
                  down: IdsLike | None = None) -> list[ResourceSummary]:
    """Rows ``free``, ``allocated`` and ``down`` for ``flux resource list``.

    Down ranks count whole under ``down``; allocated resources on up ranks
    under ``allocated``; the rest of the up ranks under ``free``. A node
    partly allocated counts under both ``free`` and ``allocated``.

    >>> R = ResourceSet.from_ranks({r: {"core": "0-3"} for r in range(4)}, hostnames="n[0-3]")
    >>> alloc = ResourceSet.from_ranks({0: {"core": "0-1"}})
    >>> for row in resource_list(R, alloc, down="3"):
    ...     print(row.state, row.nnodes, row.ncores, row.nodelist)
    free 3 10 n[0-2]
    allocated 1 2 n0
    down 1 4 n3
    """
    everything = R if isinstance(R, ResourceSet) else ResourceSet(R)
    down_ids = IDSet() if down is None else _ids(down, "down")
    up = everything.remove_ranks(down_ids)
    if allocated is None:
        alloc = up.copy_ranks(IDSet())
    else:
        alloc_set = allocated if isinstance(allocated, ResourceSet) else ResourceSet(allocated)
        alloc = up.intersect(alloc_set)
    return [
        ResourceSummary.of("free", up.diff(alloc)),
        ResourceSummary.of("allocated", alloc),
        ResourceSummary.of("down", everything.copy_ranks(down_ids)),
    ]
