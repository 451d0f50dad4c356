import errno

import pytest

from fluxnb.runtime.message import (
    EVENT, REQUEST, RESPONSE, FluxError, Message, ProtocolError,
)


def test_request_roundtrip_keeps_every_field():
    m = Message.request("kvs.lookup", {"key": "a.b"}, nodeid=3, matchtag=42, flags=4)
    m.route.append("c:abc")
    back = Message.decode(m.encode())
    assert (back.type, back.topic, back.nodeid, back.matchtag, back.flags) == (REQUEST, "kvs.lookup", 3, 42, 4)
    assert back.route == ["c:abc"]
    assert back.json == {"key": "a.b"}


def test_error_response_carries_errnum_and_errstr():
    req = Message.request("x.y", {}, matchtag=7)
    req.route.append("c:1")
    resp = Message.decode(req.error_response(errno.ENOENT, "a: No such file or directory").encode())
    assert resp.type == RESPONSE and resp.matchtag == 7 and resp.route == ["c:1"]
    assert (resp.errnum, resp.errstr) == (errno.ENOENT, "a: No such file or directory")


def test_error_response_defaults_to_strerror():
    resp = Message.request("x.y").error_response(errno.ENOSYS)
    assert resp.errstr == "Function not implemented"


def test_event_has_sequence():
    ev = Message.decode(Message.event("a.b", {"n": 1}, seq=9).encode())
    assert (ev.type, ev.seq, ev.json) == (EVENT, 9, {"n": 1})


@pytest.mark.parametrize("frame", [
    b"not json\0",
    b"[1,2]\0",
    b'[99,"t",0,0,0,0,null,[],0]\0',
    b'[1,5,0,0,0,0,null,[],0]\0',
    b"no separator at all",
])
def test_malformed_frames_raise_protocol_error(frame):
    with pytest.raises(ProtocolError):
        Message.decode(frame)


def test_payload_may_hold_any_bytes():
    m = Message.request("t.raw", b"\0\xff\0")
    assert Message.decode(m.encode()).payload == b"\0\xff\0"


def test_bad_json_payload_is_a_protocol_error_naming_the_topic():
    m = Message(REQUEST, "kvs.put", b"{oops")
    with pytest.raises(ProtocolError, match="kvs.put"):
        m.json


def test_flux_error_is_oserror_with_errno():
    e = FluxError(errno.EPERM, "rank: attribute is immutable")
    assert isinstance(e, OSError) and e.errno == errno.EPERM and str(e) == "rank: attribute is immutable"
