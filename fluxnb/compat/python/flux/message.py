"""``flux.message``: flux-core's ``Message`` over fluxnb's wire message."""

import json
import os

import flux.constants as _c
from fluxnb.runtime.message import Message as _Msg

_TYPES = {_c.FLUX_MSGTYPE_REQUEST: "request", _c.FLUX_MSGTYPE_RESPONSE: "response",
          _c.FLUX_MSGTYPE_EVENT: "event", _c.FLUX_MSGTYPE_CONTROL: "control"}


def msg_typestr(msg_type):
    return _TYPES.get(msg_type, "unknown")


def encode_topic(topic):
    if isinstance(topic, bytes):
        return topic.decode("utf-8")
    if not isinstance(topic, str):
        raise TypeError(f"topic must be str or bytes, not {type(topic).__name__}")
    return topic


def encode_payload(payload):
    """The raw payload (bytes) of ``payload``: None, str/bytes as is, else JSON."""
    if payload is None:
        return None
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


class Message:
    """One Flux message: ``type``, ``topic``, ``payload`` (JSON), ``payload_str``."""

    def __init__(self, type_id=_c.FLUX_MSGTYPE_REQUEST, handle=None):
        if handle is not None:
            if not isinstance(handle, _Msg):
                raise TypeError("Message: handle must be a fluxnb message")
            self.handle = handle
            self._userid, self._rolemask = os.getuid(), _c.FLUX_ROLE_OWNER | _c.FLUX_ROLE_LOCAL
        else:
            if type_id not in _TYPES:
                raise ValueError(f"Message: invalid message type {type_id!r}")
            self.handle = _Msg(type_id, "")
            self._userid, self._rolemask = _c.FLUX_USERID_UNKNOWN, 0

    @classmethod
    def from_event_encode(cls, topic, payload=None):
        m = cls(_c.FLUX_MSGTYPE_EVENT)
        m.topic = topic
        if payload is not None:
            m.handle.raw, m.handle.obj = encode_payload(payload), _UNSET
        return m

    @property
    def topic(self):
        return self.handle.topic

    @topic.setter
    def topic(self, value):
        self.handle.topic = encode_topic(value)

    @property
    def payload_str(self):
        raw = self.handle.payload
        if not raw:
            return None
        return bytes(raw).decode("utf-8")

    @payload_str.setter
    def payload_str(self, value):
        self.handle.raw = encode_payload(value) or b""
        self.handle.obj = _UNSET

    @property
    def payload(self):
        text = self.payload_str
        return None if text is None else json.loads(text)

    @payload.setter
    def payload(self, value):
        self.handle.raw = json.dumps(value).encode() if value is not None else b""
        self.handle.obj = _UNSET

    @property
    def type(self):
        return self.handle.type

    @type.setter
    def type(self, value):
        if value not in _TYPES:
            raise ValueError(f"Message: invalid message type {value!r}")
        self.handle.type = value

    @property
    def type_str(self):
        return msg_typestr(self.type)

    @property
    def userid(self):
        return self._userid

    @userid.setter
    def userid(self, userid):
        self._userid = int(userid)

    @property
    def rolemask(self):
        return self._rolemask

    @rolemask.setter
    def rolemask(self, rolemask):
        self._rolemask = int(rolemask)

    def decode(self):
        """``(type, topic, payload_str or None)``."""
        return self.type, self.topic, self.payload_str

    def __repr__(self):
        return f"<flux.message.Message {self.type_str} {self.topic!r}>"


_UNSET = _Msg(0x01, "").obj  # fluxnb's "no payload object" marker

__all__ = ["Message", "msg_typestr"]
