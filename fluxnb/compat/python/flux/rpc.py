"""``flux.rpc.RPC``: a request sent on a handle; the future of its response(s)."""

import errno
import json

from flux.future import Future
from flux.message import encode_payload, encode_topic

import flux.constants as _c
from fluxnb.runtime.message import FLAG_NORESPONSE, FLAG_STREAMING
from fluxnb.runtime.message import Message as _Msg

# fluxnb's own message flags are accepted too (fluxnb's API calls rpc() with them)
_STREAM = _c.FLUX_RPC_STREAMING | FLAG_STREAMING
_NORESP = _c.FLUX_RPC_NORESPONSE | FLAG_NORESPONSE


class RPC(Future):
    """``flux_rpc()``: ``get()`` the JSON payload of the (current) response."""

    def __init__(self, flux_handle, topic, payload=None, nodeid=_c.FLUX_NODEID_ANY, flags=0):
        if isinstance(flux_handle, RPC):  # RPC(other): the same RPC
            super().__init__(flux_handle)
            return
        super().__init__()
        if topic is None:
            raise OSError(errno.EINVAL, "rpc: topic must not be None")
        topic = encode_topic(topic)
        if not isinstance(nodeid, int) or isinstance(nodeid, bool):
            raise TypeError("rpc: nodeid must be an integer")
        if not isinstance(flags, int):
            raise TypeError("rpc: flags must be an integer")
        self.flux_handle = flux_handle
        self.topic = topic
        self.streaming = bool(flags & _STREAM)
        mflags = (FLAG_STREAMING if self.streaming else 0) | (FLAG_NORESPONSE if flags & _NORESP else 0)
        self.matchtag = flux_handle._send_request(topic, encode_payload(payload), nodeid, mflags)
        self._msg = None
        self.done = False

    # -- state --------------------------------------------------------------------
    def _poll(self):
        if self._msg is None:
            h = self.flux_handle
            q = h._responses.get(self.matchtag)
            if q:
                self._msg = q.popleft()
                self._epoch_msg = self._msg
                if self._msg.errnum or not self.streaming:
                    h._responses.pop(self.matchtag, None)
                    self.done = True
        return self._msg is not None

    def _reset(self):
        self._msg = None

    def _multi(self):
        return self.streaming and not self.done

    def _active(self):
        # its last response was taken and reset away: nothing more will come
        if self.done and self._msg is None:
            return False
        return super()._active()

    def _raise(self):
        msg = self._root()._msg
        if msg.errnum:
            raise OSError(msg.errnum, msg.errstr or "")

    def error_string(self):
        msg = self._root()._msg
        return (msg.errstr or None) if msg is not None and msg.errnum else None

    # -- values -------------------------------------------------------------------
    def _wait(self, timeout):
        if timeout is not None:  # fluxnb's API passes a timeout in seconds
            try:
                self.wait_for(timeout)
            except OSError as exc:
                if exc.errno == errno.ETIMEDOUT:
                    raise TimeoutError(f"no response to {self._root().topic} within {timeout}s") from None
                raise
        else:
            self.wait_for()
        self._raise()
        return self._root()._msg

    def get_raw(self, timeout=None):
        return bytes(self._wait(timeout).payload)

    def get_str(self, timeout=None):
        """The payload as a str (None if empty); OSError on an error response."""
        raw = self._wait(timeout).payload
        return bytes(raw).decode("utf-8") if raw else None

    def get(self, timeout=None):
        """The payload decoded from JSON (None if empty); OSError on an error response."""
        msg = self._wait(timeout)
        if not msg.payload:
            return None
        return msg.json if isinstance(msg, _Msg) else json.loads(msg.payload)

    def __iter__(self):
        """Each payload of a streaming RPC until it ends (ENODATA)."""
        while True:
            try:
                payload = self.get()
            except OSError as exc:
                if exc.errno == errno.ENODATA:
                    return
                raise
            self.reset()
            yield payload


__all__ = ["RPC"]
