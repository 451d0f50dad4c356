"""Services every broker runs: broker control, events, attributes, log, modules, overlay."""

from __future__ import annotations

import errno
import importlib
import time

from ..message import FLAG_STREAMING, FluxError, Message
from ..service import DEFERRED, Service, payload_field, request_handler

#: attributes a user may not change once the broker runs
IMMUTABLE_ATTRS = frozenset({
    "rank", "size", "local-uri", "parent-uri", "instance-level", "hostlist", "broker.pid",
    "rundir", "statedir", "version", "broker.starttime", "tbon.fanout", "jobid",
    "parent-kvs-namespace", "broker.mapping",
})


class BrokerControl(Service):
    """``broker.*``: start-up barrier, shutdown, and facts for ``flux uptime``."""

    name = "broker"

    @request_handler("online")
    def online(self, msg: Message) -> dict:
        rank = payload_field(msg, "rank", int)
        if not 0 <= rank < self.broker.size:
            raise FluxError(errno.EPROTO, f"broker.online: no rank {rank} in an instance "
                                          f"of size {self.broker.size}")
        self.broker.mark_online(rank)
        return {}

    @request_handler("wait-online")
    def wait_online(self, msg: Message):
        if self.broker.all_online:
            return {"size": self.broker.size}
        fut = self.broker.loop.create_future()
        self.broker.online_waiters.append(fut)
        fut.add_done_callback(lambda f: f.cancelled() or self.respond(msg, {"size": self.broker.size}))
        return DEFERRED

    @request_handler("shutdown")
    def shutdown(self, msg: Message) -> dict:
        if self.rank != 0:
            raise FluxError(errno.EINVAL, "broker.shutdown: only rank 0 can shut an instance down")
        self.broker.log("notice", "shutdown requested")
        self.broker.request_shutdown(int((msg.json or {}).get("exitcode", 0)))
        return {}

    @request_handler("disconnect")
    def disconnect_request(self, msg: Message) -> None:
        self.broker.disconnect_route(msg.route)

    @request_handler("info")
    def info(self, msg: Message) -> dict:
        b = self.broker
        return {"rank": b.rank, "size": b.size, "starttime": b.started_at,
                "uptime": time.time() - b.started_at, "online": sorted(b.online_ranks),
                "state": "run" if b.all_online else "join"}


class EventService(Service):
    """``event.*``: publish instance-wide, and manage a client's subscriptions."""

    name = "event"

    @request_handler("pub")
    def pub(self, msg: Message) -> dict:
        topic = payload_field(msg, "topic", str)
        if not topic:
            raise FluxError(errno.EINVAL, "event.pub: topic must not be empty")
        self.broker.publish(topic, (msg.json or {}).get("payload"))
        return {}

    @request_handler("subscribe")
    def subscribe(self, msg: Message) -> dict:
        self.broker.client_subscribe(self._sender(msg), payload_field(msg, "topic", str))
        return {}

    @request_handler("unsubscribe")
    def unsubscribe(self, msg: Message) -> dict:
        sender, topic = self._sender(msg), payload_field(msg, "topic", str)
        if topic not in self.broker.client_subs.get(sender, []):
            raise FluxError(errno.ENOENT, f"event.unsubscribe: {topic}: No such file or directory")
        self.broker.client_unsubscribe(sender, topic)
        return {}

    def _sender(self, msg: Message) -> str:
        if len(msg.route) != 1 or not msg.route[0].startswith("c:"):
            raise FluxError(errno.EPROTO, f"{msg.topic}: only a local client can subscribe")
        return msg.route[0]


class AttrService(Service):
    """``attr.*``: broker attributes (get, set, list)."""

    name = "attr"

    @request_handler("get")
    def get(self, msg: Message) -> dict:
        name = payload_field(msg, "name", str)
        attrs = self.broker.attrs
        if name not in attrs:
            raise FluxError(errno.ENOENT, f"{name}: no such attribute")
        return {"value": attrs[name], "flags": 1 if name in IMMUTABLE_ATTRS else 0}

    @request_handler("set")
    def set(self, msg: Message) -> dict:
        name = payload_field(msg, "name", str)
        value = payload_field(msg, "value", (str, type(None)))
        if name in IMMUTABLE_ATTRS:
            raise FluxError(errno.EPERM, f"{name}: attribute is immutable")
        if name in ("log-level", "log-stderr-level", "log-forward-level"):
            try:
                from ..broker import log_level
                value = str(log_level(int(value) if str(value).isdigit() else value))
            except ValueError as exc:
                raise FluxError(errno.EINVAL, f"{name}: {exc}") from None
        if name == "log-ring-size":
            if not str(value).isdigit() or int(value) < 1:
                raise FluxError(errno.EINVAL, f"{name}: must be a positive integer")
            from collections import deque
            self.broker.dmesg = deque(self.broker.dmesg, maxlen=int(value))
        if value is None:
            self.broker.attrs.pop(name, None)
        else:
            self.broker.attrs[name] = value
        return None  # flux-core answers attr.set with no payload

    @request_handler("rm")
    def rm(self, msg: Message) -> None:
        name = payload_field(msg, "name", str)
        if name in IMMUTABLE_ATTRS:
            raise FluxError(errno.EPERM, f"{name}: attribute is immutable")
        if name not in self.broker.attrs:
            raise FluxError(errno.ENOENT, f"{name}: no such attribute")
        del self.broker.attrs[name]

    @request_handler("list")
    def list(self, msg: Message) -> dict:
        return {"names": sorted(self.broker.attrs)}


class LogService(Service):
    """``log.*``: the dmesg ring buffer (rank 0 also holds entries forwarded from other ranks)."""

    name = "log"

    def start(self) -> None:
        self.followers: list[Message] = []
        self.broker.dmesg_listeners.append(self._follow)

    def _follow(self, entry: dict) -> None:
        for m in self.followers:
            self.respond(m, entry)

    @request_handler("append")
    def append(self, msg: Message) -> dict:
        entry = msg.json
        if not isinstance(entry, dict) or "message" not in entry:
            raise FluxError(errno.EPROTO, "log.append: entry must have a message")
        self.broker.append_dmesg(entry)
        return {}

    @request_handler("dmesg")
    def dmesg(self, msg: Message):
        follow = bool((msg.json or {}).get("follow"))
        if not msg.flags & FLAG_STREAMING:
            return {"entries": list(self.broker.dmesg)}
        for entry in list(self.broker.dmesg):
            self.respond(msg, entry)
        if follow:
            self.followers.append(msg)
        else:
            self.respond_error(msg, errno.ENODATA)
        return DEFERRED

    @request_handler("clear")
    def clear(self, msg: Message) -> dict:
        self.broker.dmesg.clear()
        return {}

    def disconnect(self, route: list[str]) -> None:
        self.followers = [m for m in self.followers if m.route[:len(route)] != route]

    def stop(self) -> None:
        if self._follow in self.broker.dmesg_listeners:
            self.broker.dmesg_listeners.remove(self._follow)
        for m in self.followers:
            self.respond_error(m, errno.ENODATA)
        self.followers = []


class ModuleService(Service):
    """``module.*``: list, load and unload services (``flux module``)."""

    name = "module"

    @request_handler("list")
    def list(self, msg: Message) -> dict:
        mods = []
        now = time.time()
        for svc in self.broker.services.values():
            mods.append({"name": svc.name, "idle": int(now - svc.loaded_at), "status": "R",
                         "services": list(svc.also_serves), "path": type(svc).__module__})
        return {"mods": mods}

    @request_handler("load")
    def load(self, msg: Message) -> dict:
        name = payload_field(msg, "name", str)
        args = payload_field(msg, "args", list, [])
        owner = self.broker.service_names.get(name)
        if owner is not None and owner.name != name:
            # flux-core's kvs-watch is a module of its own; here the kvs serves it
            raise FluxError(errno.EEXIST, f"load {name}: File exists (served by module "
                                          f"{owner.name}, which is loaded)")
        if name in PART_OF:
            raise FluxError(errno.ENOENT, f"load {name}: part of module {PART_OF[name]} "
                                          f"(flux module load {PART_OF[name]})")
        cls = resolve_module(name)
        self.broker.load(cls, [str(a) for a in args])
        self.broker.log("info", f"module {cls.name} loaded" + (f" {' '.join(map(str, args))}" if args else ""))
        return {}

    @request_handler("remove")
    def remove(self, msg: Message) -> dict:
        name = payload_field(msg, "name", str)
        if name in {cls.name for cls in BUILTIN}:
            raise FluxError(errno.EINVAL, f"module {name} is part of the broker and cannot be unloaded")
        self.broker.unload(name)
        self.broker.log("info", f"module {name} unloaded")
        return {}


#: module name -> "package.module:Class" (``flux module load NAME``)
MODULES: dict[str, str] = {
    "kvs": "fluxnb.runtime.kvs.service:KVSService",
    "rexec": "fluxnb.runtime.services.rexec:RexecService",
    "resource": "fluxnb.runtime.resource:ResourceService",
    "job-manager": "fluxnb.runtime.job.manager:JobManager",
    "job-exec": "fluxnb.runtime.job.exec:JobExec",
    "job-shell": "fluxnb.runtime.job.shell:JobShell",
    "job-list": "fluxnb.runtime.job.joblist:JobList",
    "sched-simple": "fluxnb.runtime.sched.simple:SchedSimple",
    "sched-fluxion-resource": "fluxnb.runtime.sched.fluxion_service:FluxionResource",
    "sched-fluxion-qmanager": "fluxnb.runtime.sched.qmanager:FluxionQmanager",
    "dyad": "fluxnb.runtime.dyad.service:DyadService",
}


#: flux-core module names that are part of one of ours
PART_OF = {"kvs-watch": "kvs", "content": "kvs", "job-ingest": "job-manager"}


def resolve_module(name: str) -> type[Service]:
    """Find the service class for a module name, or a ``package.module:Class`` path."""
    spec = MODULES.get(name)
    if spec is None and ":" in name:
        spec = name
    if spec is None:
        known = ", ".join(sorted(MODULES))
        raise FluxError(errno.ENOENT, f"module {name}: not found (known modules: {known})")
    modname, _, clsname = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(modname), clsname)
    except (ImportError, AttributeError) as exc:
        raise FluxError(errno.ENOENT, f"module {name}: cannot import {spec}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Service)):
        raise FluxError(errno.EINVAL, f"module {name}: {spec} is not a Service")
    return cls


class OverlayService(Service):
    """``overlay.*``: this broker's place in the tree, for ``flux overlay``."""

    name = "overlay"

    @request_handler("health")
    def health(self, msg: Message) -> dict:
        """This broker and its children as it sees them (RFC 3's TBON, flux-overlay(1)).

        A child is ``online`` once this broker has heard from it on its child socket,
        ``lost`` once it went away or stayed silent past ``tbon.torpid_max`` (with the
        reason as ``error``, as flux-core's overlay reports it).
        """
        b, now = self.broker, time.time()
        children = []
        for child in b.topo.children(b.rank):
            seen = b.children_seen.get(str(child).encode())
            if child in b.lost:
                when, why = b.lost[child]
                children.append({"rank": child, "status": "lost", "duration": now - when,
                                 "error": why})
                continue
            children.append({"rank": child, "status": "online" if seen else "offline",
                             "duration": now - (seen or b.started_at)})
        return {"rank": b.rank, "status": "online", "duration": now - b.started_at,
                "parent": b.topo.parent(b.rank), "children": children}


class ServiceRegistry(Service):
    """``service.*``: a client registers a service name; requests to it go to that client."""

    name = "service"

    @request_handler("add")
    def add(self, msg: Message) -> None:
        name = payload_field(msg, "service", str)
        if not name or "." in name:
            raise FluxError(errno.EINVAL, f"service.add: invalid service name {name!r}")
        if name in self.broker.service_names or name in self.broker.client_services:
            raise FluxError(errno.EEXIST, f"service.add: service {name} is already registered")
        if len(msg.route) != 1 or not msg.route[0].startswith("c:"):
            raise FluxError(errno.EPROTO, "service.add: only a local client can register a service")
        self.broker.client_services[name] = msg.route[0]

    @request_handler("remove")
    def remove(self, msg: Message) -> None:
        name = payload_field(msg, "service", str)
        if self.broker.client_services.get(name) != (msg.route[0] if msg.route else None):
            raise FluxError(errno.ENOENT, f"service.remove: {name}: no service registered by this client")
        del self.broker.client_services[name]


class ConfigService(Service):
    """``config.*``: the instance configuration (``flux config get``, ``conf_get()``)."""

    name = "config"

    @request_handler("get")
    def get(self, msg: Message) -> dict:
        return self.broker.conf

    @request_handler("load")
    def load(self, msg: Message) -> None:
        conf = msg.json
        if not isinstance(conf, dict):
            raise FluxError(errno.EINVAL, "config.load: the configuration must be a JSON object")
        self.broker.conf = conf


BUILTIN = (BrokerControl, EventService, AttrService, LogService, ModuleService, OverlayService,
           ServiceRegistry, ConfigService)
