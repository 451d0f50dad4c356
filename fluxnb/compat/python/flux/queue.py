"""``flux.queue``: the instance's job queues (``QueueList(h)``) with their
state, resources, defaults and limits, from ``job-manager.queue-status``,
``config.get`` and the scheduler's resource sets.

Queue configuration (``[queues.NAME]``, ``[policy]``) is read as flux-core
lays it out; an instance without a config service has the single anonymous
queue and no limits (``inf``).
"""

from __future__ import annotations

import errno
import math
from dataclasses import dataclass

from flux.resource import resource_list
from flux.util import parse_fsd

__all__ = ["QueueInfo", "QueueList", "QueueLimits", "QueueDefaults", "QueueResources",
           "QueueResourceCounts"]


@dataclass
class QueueResourceCounts:
    nnodes: float
    ncores: float
    ngpus: float


@dataclass
class QueueLimits:
    min: QueueResourceCounts
    max: QueueResourceCounts
    duration: float

    @property
    def timelimit(self):
        return self.duration


@dataclass
class QueueDefaults:
    duration: float

    @property
    def timelimit(self):
        return self.duration


def _dig(entry, *keys):
    for key in keys:
        if not isinstance(entry, dict) or key not in entry:
            raise KeyError(key)
        entry = entry[key]
    return entry


def _parent_missing(name, parent):
    return ValueError(f"queue '{name}': parent queue '{parent}' is not configured")


class QueueResources:
    """The resources of one queue (``all``, ``up``, ``down``, ``allocated``,
    ``free``): those with its ``requires`` properties (or its parent's, for a
    virtual queue), else all of the instance's."""

    def __init__(self, name, resources, config, parent=""):
        queues = config.get("queues", {})
        requires = queues.get(name, {}).get("requires") if name else None
        if requires is None and parent:
            if parent not in queues:
                raise _parent_missing(name, parent)
            requires = queues[parent].get("requires")
        self._resource_list = (resources.copy_constraint({"properties": requires})
                               if requires is not None else resources)

    def __getattr__(self, attr):
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self._resource_list, attr)


class QueueInfo:
    """One queue: ``name`` ("" for the anonymous queue), ``is_default``,
    ``enabled``, ``started``, ``parent``, ``blocked``, ``resources``,
    ``defaults`` and ``limits``."""

    def __init__(self, name, config, resources, enabled, started, default, parent="",
                 blocked=None):
        self.name = name or ""
        self.config = config
        self.is_default = default
        self.enabled = enabled
        self.started = started
        self.parent = parent or ""
        self.blocked = blocked
        self.resources = QueueResources(name, resources, config, self.parent)
        self.defaults = QueueDefaults(duration=parse_fsd(
            self._lookup(("policy", "jobspec", "defaults", "system", "duration"), "inf")))
        counts = {lim: QueueResourceCounts(*(self._size_limit(k, lim == "max")
                                             for k in ("nnodes", "ncores", "ngpus")))
                  for lim in ("min", "max")}
        self.limits = QueueLimits(min=counts["min"], max=counts["max"], duration=parse_fsd(
            self._lookup(("policy", "limits", "duration"), "inf")))

    def _config_entries(self):
        """This queue's config, its parent's (a virtual queue), then the
        instance's: where each setting is looked up, in order."""
        queues = self.config.get("queues", {})
        if self.name in queues:
            yield queues[self.name]
        if self.parent:
            if self.parent not in queues:
                raise _parent_missing(self.name, self.parent)
            yield queues[self.parent]
        yield self.config

    def _lookup(self, keys, default):
        for entry in self._config_entries():
            try:
                return _dig(entry, *keys)
            except KeyError:
                continue
        return default

    def _size_limit(self, key, maximum=True):
        which = "max" if maximum else "min"
        val = self._lookup(("policy", "limits", "job-size", which, key), None)
        if val is None:
            return math.inf if maximum else 0
        return math.inf if val < 0 else val


def _get_config(handle):
    try:
        return handle.rpc("config.get").get()
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.ENOENT):
            return {}
        raise


def _status(resp):
    return (resp.get("enable", resp.get("enabled", True)),
            resp.get("start", resp.get("started", True)),
            resp.get("parent", ""), resp.get("blocked"))


class QueueList:
    """The instance's queues (all configured ones, or those named in
    ``queues``): iterate, index by name (``qlist["batch"]``, ``qlist[""]``
    for the anonymous queue) or use ``qlist.batch``."""

    def __init__(self, handle, queues=None):
        resources = resource_list(handle).get()
        config = _get_config(handle)
        try:
            self.default_queue = _dig(config, "policy", "jobspec", "defaults", "system",
                                      "queue")
        except KeyError:
            self.default_queue = ""
        configured = config.get("queues", {})
        if queues:
            missing = [q for q in queues if q not in configured]
            if missing:
                raise ValueError(f"No such queue: {missing[0]}")
            configured = {q: configured[q] for q in queues}
        self._anonymous = None
        if not configured:
            st = _status(handle.rpc("job-manager.queue-status", {}).get())
            self._anonymous = QueueInfo(None, config, resources, st[0], st[1], True, *st[2:])
            self._queues = {"": self._anonymous}
            return
        rpcs = {q: handle.rpc("job-manager.queue-status", {"name": q}) for q in configured}
        self._queues = {}
        for q, f in rpcs.items():
            st = _status(f.get())
            self._queues[q] = QueueInfo(q, config, resources, st[0], st[1],
                                        q == self.default_queue, *st[2:])

    def __getattr__(self, attr):
        if attr.startswith("_"):
            raise AttributeError(attr)
        try:
            return self._queues[attr]
        except KeyError:
            raise AttributeError(f"no queue named '{attr}'") from None

    def __getitem__(self, item):
        if item is None:
            return self._anonymous
        return self._queues[item]

    def __iter__(self):
        return iter(self._queues.values())
