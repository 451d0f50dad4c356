"""The local connector: clients reach their broker over a framed unix socket.

flux-core's clients reach their broker through ``local://PATH``, a unix stream
socket its connector-local serves; fluxnb's do the same (ZeroMQ stays for the brokers'
tree and for clients in the broker's own process, which use ``inproc``).

Wire format, both directions::

    server, once, on accept:  0xFF                     (fluxnb's greeting byte)
    then each message:        LENGTH (4 bytes, big-endian)  BODY (LENGTH bytes)

BODY is a message as :meth:`Message.encode` makes it (JSON header, NUL, payload), so a
message crosses the socket exactly as it crosses a zmq frame. flux-core's server
greets with one auth byte (0 when the peer may stay, else an errno, which is never
0xFF): the first byte tells the two apart (:func:`fluxnb.realflux.engine.probe`).

The server checks the peer's uid with ``SO_PEERCRED`` when it accepts (the broker
answers every request of another uid with EPERM, see :mod:`fluxnb.runtime.broker`).

A client reads whole messages and nothing more (no read-ahead), so the socket's
readiness as ``select``/``zmq.Poller`` see it always means "a message is waiting";
a broker that goes away makes the socket readable and the next read fail with
ECONNRESET at once.

Examples
--------
>>> import socket
>>> a, b = socket.socketpair()
>>> _ = b.send(GREETING)
>>> c = UnixConnection.from_socket(a, "local://pair")
>>> c.send_multipart([b'["x"]\\0payload'])
>>> r = FrameReader()
>>> r.feed(b.recv(100))
[b'["x"]\\x00payload']
"""

from __future__ import annotations

import errno
import os
import select
import struct
import time

# the C module: socket.py's enum classes cost a `flux` command more than the rest of
# its connection (the broker's side imports socket.py: it accepts connections)
import _socket

from .message import FluxError

#: the byte a fluxnb broker sends first on every new connection
GREETING = b"\xff"
_LEN = struct.Struct(">I")
_CRED = struct.Struct("3i")
#: largest message a peer may announce (a length past it is a protocol error)
MAX_MESSAGE = 1 << 31
#: the errnos of a connection whose other end went away
_GONE = {errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN, errno.ECONNABORTED, errno.EBADF}
POLLIN = 1   # zmq.POLLIN
POLLOUT = 2  # zmq.POLLOUT


def pack(frames: list) -> list:
    """The buffers that put one message (its frames, concatenated) on the wire."""
    if len(frames) == 1:
        body = frames[0]
        return [_LEN.pack(len(body)) + bytes(body)] if len(body) <= 65536 else \
            [_LEN.pack(len(body)), body]
    return [_LEN.pack(sum(len(f) for f in frames)), *frames]


class FrameReader:
    """Splits a byte stream into message bodies (for non-blocking readers)."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buf = self.buf
        buf += data
        out = []
        pos, n = 0, len(buf)
        while n - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            if size >= MAX_MESSAGE:
                raise FluxError(errno.EPROTO, f"message of {size} bytes announced: not a fluxnb peer")
            end = pos + 4 + size
            if end > n:
                break
            out.append(bytes(buf[pos + 4:end]))
            pos = end
        if pos:
            del buf[:pos]
        return out


class UnixConnection:
    """A client's blocking connection to a broker's ``local://`` socket.

    It offers what the handles use of a zmq socket: ``send_multipart``/``send``,
    ``recv_multipart``, ``poll`` and ``fileno`` (so ``zmq.Poller`` can poll it).
    """

    def __init__(self, path: str, uri: str):
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            s.connect(path)
        except PermissionError:
            s.close()
            raise FluxError(errno.EPERM, f"cannot connect to {uri}: permission denied "
                            "(the instance belongs to another user)") from None
        except ConnectionRefusedError:   # the socket of a broker that died
            s.close()
            raise FluxError(errno.ECONNRESET, f"lost connection to {uri}: no broker listens "
                            "there (the instance stopped)") from None
        except FileNotFoundError:
            s.close()
            raise FluxError(errno.ENOENT, f"cannot connect to {uri}: no broker socket there "
                            "(is the instance running?)") from None
        except OSError as exc:
            s.close()
            raise FluxError(exc.errno or errno.EIO, f"cannot connect to {uri}: {exc.strerror}") from None
        self._init(s, uri)

    @classmethod
    def from_socket(cls, sock, uri: str) -> "UnixConnection":
        self = cls.__new__(cls)
        self._init(sock, uri)
        return self

    def _init(self, s, uri: str) -> None:
        self._sock = s
        self.uri = uri
        self.closed = False
        self._poller = select.poll()
        self._poller.register(s.fileno(), select.POLLIN)
        self._partial = bytearray()
        #: the server's first byte is read with the first message (or poll), so that
        #: connecting (and closing a handle that never sent) never waits on the server
        self._greeted = False

    def _greet(self) -> None:
        """Read the server's first byte: fluxnb's greeting, or not a fluxnb broker."""
        try:
            first = self._sock.recv(1)
        except OSError as exc:
            if exc.errno not in _GONE:
                raise
            first = b""
        if first == GREETING:
            self._greeted = True
            return
        self.close()
        if not first:
            raise FluxError(errno.ECONNRESET, f"lost connection to {self.uri}")
        from ..realflux.engine import hint   # flux-core's auth byte
        raise FluxError(errno.EPROTO, hint(self.uri))

    def fileno(self) -> int:
        return self._sock.fileno()

    def _lost(self) -> FluxError:
        return FluxError(errno.ECONNRESET, f"lost connection to {self.uri}")

    # -- out -----------------------------------------------------------------------
    def send_multipart(self, frames: list, flags: int = 0, copy: bool = True) -> None:
        bufs = pack(frames)
        try:
            if len(bufs) == 1:
                self._sock.sendall(bufs[0])
                return
            total = sum(len(b) for b in bufs)
            sent = self._sock.sendmsg(bufs)
            while sent < total:  # a large message: the rest, without joining the frames
                rest, skip = [], sent
                for b in bufs:
                    if skip >= len(b):
                        skip -= len(b)
                        continue
                    rest.append(memoryview(b)[skip:] if skip else b)
                    skip = 0
                bufs, total = rest, total - sent
                sent = self._sock.sendmsg(bufs)
        except OSError as exc:
            if exc.errno in _GONE:
                raise self._lost() from None
            raise

    def send(self, data: bytes, flags: int = 0) -> None:
        self.send_multipart([data], flags)

    # -- in ------------------------------------------------------------------------
    def recv_multipart(self, flags: int = 0, copy: bool = True) -> list[bytes]:
        """The next message, as one frame (blocks; ECONNRESET if the broker is gone).

        What was read of a message stays here until the rest comes, so an exception
        from a signal handler (a CLI's timeout) during the read loses no bytes.
        """
        if self.closed:
            raise FluxError(errno.EBADF, "connection is closed")
        if not self._greeted:
            self._greet()
        buf = self._partial
        while True:
            have = len(buf)
            if have >= 4:
                (size,) = _LEN.unpack_from(buf)
                if size >= MAX_MESSAGE:
                    raise FluxError(errno.EPROTO, f"{self.uri}: message of {size} bytes announced")
                if have == size + 4:
                    body = bytes(buf[4:]) if have > 4 else b""
                    buf.clear()
                    return [body]
                want = size + 4 - have
            else:
                want = 4 - have
            try:
                data = self._sock.recv(min(want, 1 << 22), _socket.MSG_WAITALL)
            except OSError as exc:
                if exc.errno in _GONE:
                    raise self._lost() from None
                raise   # an exception of a signal handler (or a real error): as it is
            if not data:
                raise self._lost()
            buf += data

    def recv_available(self) -> bytes:
        """What the socket holds now, without waiting (for readers that frame it
        themselves, :class:`FrameReader`); ``b""`` at the end of the connection."""
        if not self._greeted:
            self._greet()
        return self._sock.recv(262144, _socket.MSG_DONTWAIT)

    def recv(self, flags: int = 0, copy: bool = True) -> bytes:
        return self.recv_multipart()[0]

    def poll(self, timeout: int | None = None, flags: int = POLLIN) -> int:
        """POLLIN if a message (or the end of the connection) waits, else 0 after
        ``timeout`` milliseconds (None: wait)."""
        if self.closed:
            return 0
        if not flags & POLLIN:
            return POLLOUT
        if not self._greeted:
            start = time.monotonic()
            if not self._poller.poll(timeout):
                return 0
            self._greet()
            if timeout is not None:
                timeout = max(0, timeout - int(1000 * (time.monotonic() - start)))
        return POLLIN if self._poller.poll(timeout) else 0

    def close(self, linger: int | None = None) -> None:
        if not self.closed:
            self.closed = True
            try:
                self._sock.close()
            except OSError:
                pass


class ServerConnection:
    """The broker's end of one client connection (non-blocking, on the broker's loop).

    Messages wait in ``pending`` and go out together: ``on_queued`` (called when
    the first one arrives) schedules a `flush` after what the loop is doing now,
    so the responses and events a client gets in one pass of the loop cost one
    ``sendmsg``. What cannot be written then waits until the socket is writable
    again (``on_writable`` arms that), so a slow client never blocks the broker.
    """

    __slots__ = ("sock", "fd", "hop", "uid", "pid", "reader", "pending", "closed", "on_writable",
                 "on_queued", "said_goodbye", "spoke", "armed")

    def __init__(self, sock, hop: str, on_writable, on_queued):
        self.sock = sock
        self.fd = sock.fileno()
        self.hop = hop
        try:
            cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, _CRED.size)
            self.pid, self.uid, _ = _CRED.unpack(cred)
        except OSError:
            self.pid, self.uid = 0, -1   # unknown: a stranger
        self.reader = FrameReader()
        self.pending: list = []
        self.closed = False
        self.on_writable = on_writable
        self.on_queued = on_queued
        self.said_goodbye = False
        #: whether the client sent anything (a probe that only read the greeting did not)
        self.spoke = False
        #: whether ``on_writable`` was asked to watch for writability (and not told to stop)
        self.armed = False

    def send(self, frames: list) -> bool:
        """Queue one message; False if the client is gone (a failed write shows
        at the flush)."""
        if self.closed:
            return False
        first = not self.pending
        self.pending.extend(pack(frames))
        if first:
            self.on_queued(self)
        return True

    def send_raw(self, data: bytes) -> bool:
        try:
            self._keep([data], self.sock.send(data))
            return True
        except BlockingIOError:
            self._keep([data], 0)
            return True
        except OSError:
            return False

    def _keep(self, bufs: list, sent: int) -> None:
        total = sum(len(b) for b in bufs)
        if sent >= total:
            return
        for b in bufs:
            if sent >= len(b):
                sent -= len(b)
                continue
            self.pending.append(memoryview(b)[sent:] if sent else b)
            sent = 0
        self._arm(True)

    def _arm(self, on: bool) -> None:
        if on != self.armed:
            self.armed = on
            self.on_writable(self, on)

    def flush(self) -> bool:
        """Write what waits; False if the client is gone."""
        while self.pending:
            try:
                sent = self.sock.sendmsg(self.pending[:64])
            except BlockingIOError:
                self._arm(True)
                return True
            except OSError:
                self.pending.clear()
                return False
            while sent and self.pending:
                head = self.pending[0]
                if sent >= len(head):
                    sent -= len(head)
                    self.pending.pop(0)
                else:
                    self.pending[0] = memoryview(head)[sent:]
                    sent = 0
        self._arm(False)
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.pending.clear()
            try:
                self.sock.close()
            except OSError:
                pass


def bind_listener(path: str):
    """A listening unix socket at ``path`` (mode 0600), replacing a dead broker's file."""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            s.bind(path)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or broker_listening(path):
                raise
            os.unlink(path)   # left behind by a broker that died
            s.bind(path)
        os.chmod(path, 0o600)
        s.listen(128)
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


def broker_listening(path: str) -> bool:
    """Whether a broker listens on the unix socket ``path`` (a dead one leaves the
    file behind, but connecting to it is refused)."""
    t = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        t.settimeout(1.0)
        t.connect(path)
        return True
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:  # busy (EAGAIN, timeout): alive but slow
        return True
    finally:
        t.close()


__all__ = ["GREETING", "FrameReader", "ServerConnection", "UnixConnection", "bind_listener",
           "pack"]
