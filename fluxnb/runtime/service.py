"""Services: classes whose methods declare the topics they serve.

Examples
--------
>>> class Echo(Service):
...     name = "echo"
...     @request_handler("say")
...     def say(self, msg):
...         return {"said": msg.json["text"]}
>>> sorted(Echo.declared_topics())
['echo.ping', 'echo.say']

A handler receives the request :class:`~fluxnb.runtime.message.Message` and
returns the response payload (a dict, or ``None`` for an empty one). It may be a
coroutine function. It raises :class:`FluxError` to answer with an error. A
handler that answers later, or streams several responses, calls ``self.respond``
and returns :data:`DEFERRED`.
"""

from __future__ import annotations

import errno
import os
import time
from typing import TYPE_CHECKING, Any, Callable

from .message import FluxError, Message

if TYPE_CHECKING:  # pragma: no cover
    from .broker import Broker

#: returned by a handler that responds by itself (later, or as a stream)
DEFERRED = object()


def request_handler(method: str, *, topic: str | None = None) -> Callable:
    """Mark a Service method as the handler of ``<service>.<method>``.

    ``topic`` gives a full topic instead, for a service that answers under
    another name too (the ``kvs`` service answering ``kvs-watch.lookup``).
    """

    def mark(fn: Callable) -> Callable:
        fn.__dict__.setdefault("_flux_topics", []).append((method, topic))
        return fn

    return mark


def event_handler(prefix: str) -> Callable:
    """Mark a Service method as a subscriber to events whose topic starts with prefix."""

    def mark(fn: Callable) -> Callable:
        fn.__dict__.setdefault("_flux_events", []).append(prefix)
        return fn

    return mark


def payload_field(msg: Message, key: str, kind: type | tuple = object, default: Any = ...,
                  body: Any = ...) -> Any:
    """Fetch ``key`` from a request payload (or ``body``), or raise EPROTO naming what is wrong.

    ``int`` does not accept a boolean, and ``float`` accepts an integer, as JSON
    readers in flux-core's ``json_unpack`` do.
    """
    if body is ...:
        body = msg.json
    if not isinstance(body, dict):
        raise FluxError(errno.EPROTO, f"{msg.topic}: payload must be a JSON object")
    if key not in body:
        if default is not ...:
            return default
        raise FluxError(errno.EPROTO, f"{msg.topic}: missing '{key}' in payload")
    value = body[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if kind is not object and (not isinstance(value, kind) or (
            isinstance(value, bool) and bool not in kinds and int in kinds)):
        want = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise FluxError(errno.EPROTO, f"{msg.topic}: '{key}' must be of type {want}, "
                                      f"not {type(value).__name__}")
    return value


def payload_jobid(msg: Message, key: str = "id", body: Any = ...) -> int:
    """A job id from a request payload: an integer from 0 to 2**64-1, else EPROTO."""
    jobid = payload_field(msg, key, int, body=body)
    if not 0 <= jobid < 1 << 64:
        raise FluxError(errno.EPROTO, f"{msg.topic}: '{key}' {jobid} is not a job id "
                                      "(an integer from 0 to 2**64-1)")
    return jobid


class Service:
    """Base class of broker services (``flux module`` units).

    Subclasses set :attr:`name` and decorate handlers with :func:`request_handler`.
    Every service answers ``<name>.ping``.
    """

    name: str = ""
    #: other service names whose topics this service answers (shown by ``module list``)
    also_serves: tuple[str, ...] = ()

    def __init__(self, broker: "Broker", args: list[str] | None = None):
        self.broker = broker
        self.args = list(args or [])
        self.loaded_at = time.time()

    # -- declared topics ----------------------------------------------------------
    @classmethod
    def declared_topics(cls) -> dict[str, str]:
        """Map each topic to the name of the method that serves it."""
        topics: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for attr, fn in vars(klass).items():
                for method, topic in getattr(fn, "_flux_topics", ()):
                    topics[topic or f"{cls.name}.{method}"] = attr
        return topics

    @classmethod
    def declared_events(cls) -> dict[str, str]:
        events: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for attr, fn in vars(klass).items():
                for prefix in getattr(fn, "_flux_events", ()):
                    events[prefix] = attr
        return events

    @property
    def services(self) -> list[str]:
        return [self.name, *self.also_serves]

    # -- life -------------------------------------------------------------------
    def start(self) -> None:
        """Called once the service is registered; may schedule tasks."""

    def stop(self) -> None:
        """Called before the service is unregistered (module unload, shutdown)."""

    def disconnect(self, route: list[str]) -> None:
        """A client went away: drop streams kept for requests whose route starts with ``route``."""

    # -- helpers ----------------------------------------------------------------
    @property
    def rank(self) -> int:
        return self.broker.rank

    def respond(self, msg: Message, payload: Any = None) -> None:
        self.broker.respond(msg, payload)

    def respond_error(self, msg: Message, errnum: int, errstr: str | None = None) -> None:
        self.broker.respond_error(msg, errnum, errstr)

    def log(self, level: int | str, text: str) -> None:
        self.broker.log(level, text, name=self.name)

    @request_handler("ping")
    def _ping(self, msg: Message) -> dict:
        body = msg.json or {}
        return {**body, "route": "!".join(map(str, self.broker.rank_path(msg.route))),
                "userid": os.getuid(), "rolemask": 1}
