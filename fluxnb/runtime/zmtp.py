"""A ZeroMQ DEALER over a unix socket in plain Python: ZMTP 3.0, NULL mechanism.

A broker's ``local`` socket is a ZeroMQ ROUTER on ``ipc://PATH``, i.e. a unix stream
socket speaking ZMTP (https://rfc.zeromq.org/spec/23/). A ``flux`` command is a new
process each time, and importing pyzmq costs more than the rest of its start-up, so
the CLI's handles speak the protocol themselves (:class:`Dealer`); everything else
(hosted instances' inproc sockets, the asyncio client, the brokers) uses pyzmq.

Only what a DEALER needs against a NULL-mechanism ROUTER is here: the 64-byte
greeting, the READY command with ``Socket-Type`` and ``Identity``, and framed
messages. The greeting goes out at connect; the peer's greeting is read before our
READY goes out with the first message (libzmq drops a connection whose READY arrives
before it has sent its own greeting). The peer's READY, and later commands (PING),
are taken where messages are read.

Reads take exactly the bytes of one frame at a time, so nothing waits in a
buffer of ours: the file descriptor is readable exactly when a message (or the end
of the connection) is there, and the socket can be polled like a zmq one
(:meth:`Dealer.fileno`).

A server whose first byte is not ``0xFF`` is not ZeroMQ: flux-core's local
connector sends one auth byte instead (:class:`NotZMTP`).

Examples
--------
>>> d = Dealer("/tmp/fluxnb-x/local", b"1234.ab")      # doctest: +SKIP
>>> d.send_multipart([b"frame"]); d.recv_multipart(timeout=1.0)   # doctest: +SKIP
"""

from __future__ import annotations

import select
import struct

# the C module: socket.py's enums of constants cost a `flux` command more than the
# rest of this transport
import _socket

FLAG_MORE = 0x01
FLAG_LONG = 0x02
FLAG_COMMAND = 0x04

#: signature, version 3.0, mechanism NULL, as-server 0, filler
GREETING = (b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\0")
            + b"\0" + b"\0" * 31)
assert len(GREETING) == 64


class NotZMTP(ConnectionError):
    """The server did not greet with ZMTP (the first byte it sent is in ``first``)."""

    def __init__(self, first: bytes):
        super().__init__(f"not a ZeroMQ peer (first byte {first!r})")
        self.first = first


def _command(name: bytes, body: bytes) -> bytes:
    data = bytes([len(name)]) + name + body
    if len(data) > 255:
        return bytes([FLAG_COMMAND | FLAG_LONG]) + struct.pack(">Q", len(data)) + data
    return bytes([FLAG_COMMAND, len(data)]) + data


def _property(name: bytes, value: bytes) -> bytes:
    return bytes([len(name)]) + name + struct.pack(">I", len(value)) + value


def _frame_header(flags: int, size: int) -> bytes:
    if size > 255:
        return bytes([flags | FLAG_LONG]) + struct.pack(">Q", size)
    return bytes([flags, size])


class Dealer:
    """A connected DEALER: ``send_multipart``, ``recv_multipart``, ``poll``, ``close``.

    Raises ``OSError`` if nothing listens at ``path``; :class:`ConnectionError` when
    the peer goes away (EOF) or breaks the protocol.
    """

    def __init__(self, path: str, identity: bytes):
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            self.sock.connect(path)
            self.sock.sendall(GREETING)
        except BaseException:
            self.sock.close()
            raise
        self._ready: bytes | None = _command(
            b"READY", _property(b"Socket-Type", b"DEALER") + _property(b"Identity", identity))
        self._greeted = False
        self._poller = None
        self.closed = False

    @property
    def handshaken(self) -> bool:
        """Whether our READY went out (with a first message, or before a receive)."""
        return self._ready is None

    def fileno(self) -> int:
        return self.sock.fileno()

    # -- reading --------------------------------------------------------------------
    def _read(self, n: int) -> bytes:
        """Exactly ``n`` bytes (blocking); ConnectionResetError at EOF."""
        chunk = self.sock.recv(n)
        if len(chunk) == n:
            return chunk
        buf = bytearray(chunk)
        while chunk and len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            buf += chunk
        if len(buf) < n:
            raise ConnectionResetError("connection closed by the peer")
        return bytes(buf)

    def _frame(self) -> tuple[int, bytes]:
        flags = self._read(1)[0]
        if flags & FLAG_LONG:
            size = struct.unpack(">Q", self._read(8))[0]
        else:
            size = self._read(1)[0]
        return flags, self._read(size)

    def _greet(self) -> None:
        """Read the peer's greeting (waking each half second, so that an exception
        raised in this thread from another is seen)."""
        while not self.poll(500):
            pass
        first = self.sock.recv(1)
        if not first:
            raise ConnectionResetError("connection closed by the peer")
        if first != b"\xff":
            raise NotZMTP(first)
        rest = self._read(63)
        if rest[8] != 0x7f or rest[9] < 3:
            raise ConnectionError(f"unsupported ZMTP version {rest[9]}.{rest[10]}")
        if rest[11:31].rstrip(b"\0") != b"NULL":
            raise ConnectionError("the peer's ZMTP mechanism is not NULL")
        self._greeted = True

    def _handshake(self) -> None:
        if not self._greeted:
            self._greet()
        ready, self._ready = self._ready, None
        self.sock.sendall(ready)

    def recv_multipart(self, timeout: float | None = None) -> list[bytes] | None:
        """The next message's frames; None if none began within ``timeout`` seconds."""
        if self._ready is not None:
            self._handshake()
        frames: list[bytes] = []
        while True:
            if not frames and timeout is not None and not self.poll(int(timeout * 1000)):
                return None
            flags, body = self._frame()
            if flags & FLAG_COMMAND:
                name = body[1:1 + body[0]]
                if name == b"PING":   # ZMTP 3.1 heartbeat: PONG with its context
                    self.sock.sendall(_command(b"PONG", body[1 + body[0] + 2:]))
                elif name == b"ERROR":
                    raise ConnectionError(f"ZMTP error from the peer: {body[7:]!r}")
                continue   # READY (its properties are of no use to a DEALER), others
            frames.append(body)
            if not flags & FLAG_MORE:
                return frames

    def poll(self, timeout_ms: int) -> bool:
        """Whether something is readable within ``timeout_ms`` (a message, or EOF)."""
        if self._poller is None:
            self._poller = select.poll()
            self._poller.register(self.sock.fileno(), select.POLLIN)
        return bool(self._poller.poll(max(0, timeout_ms)))

    # -- writing --------------------------------------------------------------------
    def send_multipart(self, frames: list) -> None:
        parts: list = []
        last = len(frames) - 1
        for i, f in enumerate(frames):
            parts.append(_frame_header(FLAG_MORE if i < last else 0, len(f)))
            parts.append(f)
        if self._ready is not None:   # the first message: the handshake's READY with it
            parts.insert(0, self._ready)
            if not self._greeted:
                self._greet()
            self._ready = None
        if sum(len(p) for p in parts) <= 65536:
            self.sock.sendall(b"".join(parts))
        else:
            for p in parts:   # a large payload goes out uncopied
                self.sock.sendall(p)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sock.close()
