"""``flux.resource.ResourceSet``: flux-core's R (RFC 20) class over fluxnb's
:class:`fluxnb.runtime.util.rv1.ResourceSet` (available as ``.impl``)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from flux.hostlist import Hostlist
from flux.idset import IDset
from fluxnb.runtime.util.rv1 import ResourceSet as _RSet

__all__ = ["ResourceSet"]


def _ranks(ranks):
    return str(ranks) if isinstance(ranks, IDset) else ranks


class ResourceSet:
    """A set of resources by rank, from R (a dict or its JSON text).

    >>> rs = ResourceSet({"version": 1, "execution": {"R_lite": [
    ...     {"rank": "0-1", "children": {"core": "0-3"}}]}})
    >>> str(rs), rs.ncores
    ('rank[0-1]/core[0-3]', 8)
    """

    def __init__(self, arg=None, version=1, keep_scheduling=False, **kwargs):
        self.state = None
        if isinstance(arg, _RSet):
            self.impl = arg
            return
        if isinstance(arg, ResourceSet):
            self.impl = arg.impl.copy()
            self.state = arg.state
            return
        if arg is None:
            self.impl = _RSet()
            return
        if isinstance(arg, str):
            arg = json.loads(arg)
        if not isinstance(arg, Mapping):
            raise TypeError(f"ResourceSet: expected R as dict or JSON string, "
                            f"not {type(arg).__name__}")
        version = arg["version"]
        if version != 1:
            raise ValueError(f"R version {version} not supported")
        self.impl = _RSet(arg)
        if not keep_scheduling:
            self.impl.scheduling = None

    def _new(self, impl):
        new = ResourceSet(impl)
        new.state = self.state
        return new

    # -- output ------------------------------------------------------------
    def dumps(self):
        return self.impl.dumps()

    __str__ = dumps

    def __repr__(self):
        return f"ResourceSet('{self.dumps()}')"

    def encode(self):
        return self.impl.encode()

    def to_dict(self):
        return self.impl.to_R()

    @property
    def rlist(self):
        return self.impl.dumps()

    # -- queries -----------------------------------------------------------
    def count(self, name):
        return self.impl.count(name)

    @property
    def nodelist(self):
        return Hostlist(str(self.impl.nodelist))

    @property
    def ranks(self):
        return IDset(str(self.impl.ranks))

    @property
    def nnodes(self):
        return self.impl.nnodes

    @property
    def ncores(self):
        return self.impl.ncores

    @property
    def ngpus(self):
        return self.impl.ngpus

    @property
    def properties(self):
        return ",".join(self.impl.properties)

    def get_properties(self):
        return json.dumps({k: v.encode() for k, v in self.impl.properties.items()})

    @property
    def expiration(self):
        return self.impl.expiration

    @expiration.setter
    def expiration(self, value):
        self.impl.expiration = float(value)

    @property
    def starttime(self):
        return self.impl.starttime

    @starttime.setter
    def starttime(self, value):
        self.impl.starttime = float(value)

    def host_ranks(self, hosts, ignore_nomatch=False):
        """Ranks of ``hosts`` (in order); FileNotFoundError for hosts not in
        the set unless ``ignore_nomatch``."""
        ranks = list(self.impl.ranks)
        return [ranks[i] for i in self.nodelist.index(hosts, ignore_nomatch=ignore_nomatch)]

    # -- editing -----------------------------------------------------------
    def copy(self):
        return self._new(self.impl.copy())

    def copy_ranks(self, ranks):
        return self._new(self.impl.copy_ranks(_ranks(ranks)))

    def remove_ranks(self, ranks):
        """Remove ``ranks`` in place; return self."""
        self.impl = self.impl.remove_ranks(_ranks(ranks))
        return self

    def copy_constraint(self, constraint):
        """The ranks matching an RFC 31 constraint (a dict or JSON string)."""
        if isinstance(constraint, str):
            constraint = json.loads(constraint)
        return self._new(self.impl.copy_constraint(constraint))

    def set_property(self, name, ranks=None):
        self.impl.set_property(name, None if ranks is None else _ranks(ranks))

    def _op(self, method, args):
        result = self.impl
        for arg in args:
            if not isinstance(arg, ResourceSet):
                arg = ResourceSet(arg)
            result = getattr(result, method)(arg.impl)
        return self._new(result)

    def union(self, *args):
        result = self.impl
        for arg in args:
            if not isinstance(arg, ResourceSet):
                arg = ResourceSet(arg)
            result = result.union(arg.impl, strict=False)
        return self._new(result)

    def diff(self, *args):
        return self._op("diff", args)

    def intersect(self, *args):
        """The ranks of this set that are in every argument (whole ranks, as
        flux-core's Python ResourceSet intersects)."""
        ranks = self.impl.ranks
        for arg in args:
            if not isinstance(arg, ResourceSet):
                arg = ResourceSet(arg)
            ranks = ranks & arg.impl.ranks
        return self._new(self.impl.copy_ranks(ranks))

    __or__ = union
    __sub__ = diff
    __and__ = intersect

    def add(self, *args):
        """Add resources of each argument in place; return self."""
        self.impl = self.union(*args).impl
        return self

    append = add
