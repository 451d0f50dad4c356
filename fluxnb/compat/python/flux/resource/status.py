"""``flux.resource.status``: the resource module's view (``resource.status``):
R, and which ranks are online, offline, excluded and drained."""

from __future__ import annotations

from flux.idset import IDset
from flux.resource.ResourceSet import ResourceSet

__all__ = ["ResourceStatus", "ResourceStatusRPC", "resource_status"]


class ResourceStatus:
    """``all`` (ResourceSet); ``online``, ``offline``, ``exclude``,
    ``drained``, ``up``, ``down`` (IDsets of ranks); ``drain_info`` maps a
    drained rank to its ``{"timestamp", "reason"}``."""

    def __init__(self, resp):
        self.all = ResourceSet(resp.get("R"))
        self.online = IDset(resp.get("online", ""))
        self.offline = IDset(resp.get("offline", ""))
        self.exclude = IDset(resp.get("exclude", ""))
        self.drain_info = {}
        drained = IDset()
        for ranks, info in (resp.get("drain") or {}).items():
            ids = IDset(ranks)
            drained.add(ids)
            for rank in ids:
                self.drain_info[rank] = info
        self.drained = drained
        self.avail = IDset(self.all.ranks).difference(self.exclude)
        self.down = self.offline.union(self.exclude, self.drained)
        self.up = IDset(self.all.ranks).difference(self.down)

    def __getitem__(self, item):
        return getattr(self, item)


class ResourceStatusRPC:
    def __init__(self, flux_handle, nodeid=0):
        self._future = flux_handle.rpc("resource.status", nodeid=nodeid)

    def get(self, timeout=None):
        resp = self._future.get(timeout) if timeout is not None else self._future.get()
        return ResourceStatus(resp)

    def then(self, callback, *args, **kwargs):
        self._future.then(lambda _f: callback(self, *args, **kwargs))
        return self


def resource_status(flux_handle):
    """Ask the resource module for its status; returns a ResourceStatusRPC."""
    return ResourceStatusRPC(flux_handle)
