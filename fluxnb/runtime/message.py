"""Flux messages: request, response, event and control, and their wire encoding.

A message travels as one zmq frame (after any ROUTER identity frame): a compact
JSON header ``[type, topic, matchtag, nodeid, flags, errnum, errstr, route, seq]``,
a NUL byte (which JSON text never contains), then the payload: raw bytes (JSON
text for ordinary RPCs) or nothing. One frame per message halves the zmq calls
at every hop.

The payload is kept as bytes while a message is routed through brokers and only
decoded by the endpoint that uses it.

Examples
--------
>>> m = Message.request("kvs.lookup", {"key": "a"}, nodeid=0, matchtag=7)
>>> Message.decode(m.encode()).json
{'key': 'a'}
"""

from __future__ import annotations

import errno as _errno
import json
import os

TYPE_CHECKING = False  # not typing's: a `flux` command would import typing for it
if TYPE_CHECKING:
    from typing import Any

REQUEST = 0x01
RESPONSE = 0x02
EVENT = 0x04
CONTROL = 0x08

TYPE_NAMES = {REQUEST: "request", RESPONSE: "response", EVENT: "event", CONTROL: "control"}

#: a request with this nodeid goes to the nearest broker that serves its topic
NODEID_ANY = 0xFFFFFFFF
#: a request with this nodeid skips the local broker and goes to its parent
NODEID_UPSTREAM = 0xFFFFFFFE

# message flags (RFC 3)
FLAG_STREAMING = 0x04
FLAG_NORESPONSE = 0x08

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads


_UNSET = object()
#: payloads larger than this travel in a frame of their own, uncopied
LARGE = 65536


class ProtocolError(ValueError):
    """A frame that is not a well-formed fluxnb message."""


class Message:
    """One Flux message.

    Attributes
    ----------
    type : int
        ``REQUEST``, ``RESPONSE``, ``EVENT`` or ``CONTROL``.
    topic : str
        Service method (``kvs.lookup``) or event topic.
    payload : bytes
        Raw payload; JSON text for ordinary messages, ``b""`` for none. A large
        payload may be a read-only ``memoryview`` (sent or received uncopied). A message
        made in this process from a Python object keeps the object and encodes it
        only if it has to cross a socket (``raw is None`` until then); receivers
        must treat payload objects as read-only.
    matchtag : int
        Pairs responses with their request on one connection.
    nodeid : int
        Destination rank of a request, or ``NODEID_ANY``/``NODEID_UPSTREAM``.
    errnum, errstr :
        Error of a response (``errnum == 0`` means success).
    route : list of str
        Hops a request took; its response retraces them backwards.
    seq : int
        Sequence number of an event, assigned by rank 0.
    """

    # a plain class rather than a dataclass: importing dataclasses (and inspect with
    # it) would be a good part of a `flux` command's start-up
    __slots__ = ("type", "topic", "raw", "matchtag", "nodeid", "flags", "errnum", "errstr",
                 "route", "seq", "obj")

    def __init__(self, type: int, topic: str, raw: bytes | None = b"", matchtag: int = 0,
                 nodeid: int = NODEID_ANY, flags: int = 0, errnum: int = 0,
                 errstr: str | None = None, route: list | None = None, seq: int = 0,
                 obj: Any = _UNSET):
        self.type = type
        self.topic = topic
        self.raw = raw
        self.matchtag = matchtag
        self.nodeid = nodeid
        self.flags = flags
        self.errnum = errnum
        self.errstr = errstr
        self.route = [] if route is None else route
        self.seq = seq
        self.obj = obj

    def __eq__(self, other: object):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None  # mutable, as the dataclass was

    # -- constructors -------------------------------------------------------------
    @classmethod
    def request(cls, topic: str, payload: Any = None, *, nodeid: int = NODEID_ANY,
                matchtag: int = 0, flags: int = 0) -> "Message":
        raw, obj = _split(payload)
        return cls(REQUEST, topic, raw, matchtag, nodeid, flags, obj=obj)

    @classmethod
    def event(cls, topic: str, payload: Any = None, seq: int = 0) -> "Message":
        raw, obj = _split(payload)
        return cls(EVENT, topic, raw, seq=seq, obj=obj)

    def response(self, payload: Any = None) -> "Message":
        """A success response to this request, retracing its route."""
        raw, obj = _split(payload)
        return Message(RESPONSE, self.topic, raw, self.matchtag, self.nodeid, self.flags, 0, None,
                       self.route, obj=obj)

    def error_response(self, errnum: int, errstr: str | None = None) -> "Message":
        """An error response to this request (``errstr`` defaults to strerror)."""
        return Message(RESPONSE, self.topic, b"", self.matchtag, self.nodeid, self.flags,
                       errnum, errstr if errstr is not None else os.strerror(errnum),
                       self.route)

    # -- payload --------------------------------------------------------------
    @property
    def payload(self) -> bytes:
        """The payload as bytes (encoding a payload object on first use)."""
        if self.raw is None:
            self.raw = _dumps(self.obj).encode()
        return self.raw

    @property
    def json(self) -> Any:
        """The payload decoded as JSON (``None`` when empty)."""
        if self.obj is not _UNSET:
            return self.obj
        if not self.raw:
            return None
        try:
            self.obj = _loads(self.raw if isinstance(self.raw, bytes) else bytes(self.raw))
        except ValueError as exc:
            raise ProtocolError(f"{self.topic}: payload is not valid JSON: {exc}") from None
        except RecursionError:
            raise ProtocolError(f"{self.topic}: payload is nested too deeply") from None
        return self.obj

    @property
    def streaming(self) -> bool:
        return bool(self.flags & FLAG_STREAMING)

    # -- wire ---------------------------------------------------------------
    def encode(self) -> bytes:
        head = _dumps([self.type, self.topic, self.matchtag, self.nodeid, self.flags,
                       self.errnum, self.errstr, self.route, self.seq])
        return head.encode() + b"\0" + self.payload

    def frames(self) -> list:
        """The zmq frames of this message: one, or header and payload for a large one.

        A payload over ``LARGE`` bytes travels in its own frame so that neither the
        concatenation nor zmq needs to copy it (send with ``copy=False``).
        """
        payload = self.payload
        if len(payload) <= LARGE:
            return [self.encode()]
        head = _dumps([self.type, self.topic, self.matchtag, self.nodeid, self.flags,
                       self.errnum, self.errstr, self.route, self.seq])
        return [head.encode() + b"\0", payload]

    @classmethod
    def from_frames(cls, frames: list) -> "Message":
        """Build a message from the one or two frames :meth:`frames` made."""
        if len(frames) == 1:
            return cls.decode(frames[0])
        if len(frames) == 2 and frames[0][-1:] == b"\0":
            msg = cls.decode(frames[0])
            msg.raw = frames[1]
            return msg
        raise ProtocolError(f"malformed message: {len(frames)} frames")

    @classmethod
    def decode(cls, frame: bytes) -> "Message":
        """Build a message from its frame; raise ProtocolError if malformed."""
        head, sep, payload = bytes(frame).partition(b"\0")
        if not sep:
            raise ProtocolError("malformed message: no header separator")
        try:
            h = _loads(head)
            mtype, topic, matchtag, nodeid, flags, errnum, errstr, route, seq = h
        except (ValueError, TypeError) as exc:
            raise ProtocolError(f"malformed message header: {exc}") from None
        if mtype not in TYPE_NAMES or not isinstance(topic, str) or not isinstance(route, list) \
                or not isinstance(matchtag, int) or not isinstance(nodeid, int):
            raise ProtocolError("malformed message header: bad field types")
        return cls(mtype, topic, payload, matchtag, nodeid, flags, errnum, errstr, route, seq)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        kind = TYPE_NAMES.get(self.type, "?")
        err = f" errnum={self.errnum}" if self.errnum else ""
        return f"<Message {kind} {self.topic} tag={self.matchtag} node={self.nodeid}{err}>"


def _split(payload: Any) -> tuple[bytes | None, Any]:
    """``(raw, obj)`` for a payload: bytes and text stay raw, objects stay objects."""
    if payload is None:
        return b"", _UNSET
    if isinstance(payload, (bytes, memoryview)):
        return payload, _UNSET
    if isinstance(payload, str):
        return payload.encode(), _UNSET
    return None, payload


class FluxError(OSError):
    """An error with an errno and a message, as carried by a Flux response.

    Examples
    --------
    >>> e = FluxError(_errno.ENOENT, "a.b: No such file or directory")
    >>> e.errno, str(e)
    (2, 'a.b: No such file or directory')
    """

    def __init__(self, errnum: int, errstr: str | None = None):
        super().__init__(errnum, errstr or os.strerror(errnum))
        self.errstr = errstr or os.strerror(errnum)

    def __str__(self) -> str:
        return self.errstr


errno = _errno
