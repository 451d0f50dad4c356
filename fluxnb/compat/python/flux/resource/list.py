"""``flux.resource.list``: the scheduler's view of resources
(``resource_list(h).get()`` -> ``.all``, ``.down``, ``.allocated``, ``.up``,
``.free`` as ResourceSets), from the ``sched.resource-status`` RPC."""

from __future__ import annotations

import errno
import os

from flux.idset import IDset
from flux.resource.ResourceSet import ResourceSet

__all__ = ["SchedResourceList", "ResourceListRPC", "resource_list"]


class SchedResourceList:
    """The ``all``, ``down`` and ``allocated`` sets of a resource-status
    response; ``up`` and ``free`` are derived from them."""

    def __init__(self, resp):
        for state in ("all", "down", "allocated"):
            rset = resp.get(state)
            if isinstance(rset, str) and not rset.lstrip().startswith("{"):
                # fluxnb's scheduler names down ranks (an idset); flux-core sends R
                rset = self.all.copy_ranks(rset)
            elif not isinstance(rset, ResourceSet):
                rset = ResourceSet(rset)
            rset.state = state
            setattr(self, state, rset)

    def __getitem__(self, item):
        return getattr(self, item)

    @property
    def up(self):
        res = self.all - self.down
        res.state = "up"
        return res

    @property
    def free(self):
        res = self.up - self.allocated
        res.state = "free"
        return res

    def filter(self, include):
        """Keep only the ranks (an idset) or hosts (a hostlist) ``include``."""
        try:
            ranks = IDset(include)
        except ValueError:
            ranks = IDset(self.all.host_ranks(include, ignore_nomatch=True))
        for state in ("all", "down", "allocated"):
            setattr(self, state, self[state].copy_ranks(ranks))

    def copy_constraint(self, constraint):
        return SchedResourceList({s: self[s].copy_constraint(constraint)
                                  for s in ("all", "down", "allocated")})


class ResourceListRPC:
    """The pending request; ``get()`` returns a SchedResourceList."""

    def __init__(self, flux_handle, topic="sched.resource-status", nodeid=0):
        self._handle, self.topic = flux_handle, topic
        self._future = flux_handle.rpc(topic, nodeid=nodeid)

    def get(self, timeout=None):
        try:
            resp = self._future.get(timeout) if timeout is not None else self._future.get()
        except OSError as exc:
            if exc.errno != errno.ENOSYS or self.topic == "sched.resource-status":
                raise
            self.topic = "sched.resource-status"
            self._future = self._handle.rpc(self.topic, nodeid=0)
            return self.get(timeout)
        return SchedResourceList(resp)

    def then(self, callback, *args, **kwargs):
        """Call ``callback(self, *args)`` when the response arrives."""
        self._future.then(lambda _f: callback(self, *args, **kwargs))
        return self

    def wait_for(self, timeout=None):
        return self._future.wait_for(timeout)


def resource_list(flux_handle):
    """Ask the scheduler for its resource sets; returns a ResourceListRPC."""
    return ResourceListRPC(flux_handle, os.getenv("FLUX_RESOURCE_LIST_RPC")
                           or "sched.resource-status", nodeid=0)
