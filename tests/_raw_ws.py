"""`RawPeer`: a WebSocket server on 127.0.0.1 that writes exactly the bytes a test asks
for (partial frames, a header promising too much, garbage), optionally over TLS.

The upgrade is answered by hand (RFC 6455 section 4.2.2); after it the test holds the
socket: `send_frame(...)` writes a whole server frame, `send_raw(bytes)` anything at
all, `read_frames()` parses what the client sent (its frames are masked). With `first`
bytes given, they go out in the same write as the 101 response, so over TLS they sit in
one record with it: the client's TLS layer then holds them, decrypted, after the
handshake has read its headers (the bytes a selector cannot see).
"""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import struct
import threading

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def server_frame(payload: bytes, opcode: int = 1, fin: bool = True) -> bytes:
    """An unmasked server frame."""
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([size])
    elif size < 1 << 16:
        head += bytes([126]) + struct.pack("!H", size)
    else:
        head += bytes([127]) + struct.pack("!Q", size)
    return head + payload


class RawPeer:
    def __init__(self, tls: ssl.SSLContext | None = None, first: bytes = b"") -> None:
        self._tls = tls
        self._first = first
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.conn: socket.socket | None = None
        self._accepted = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._pending = b""

    @property
    def url(self) -> str:
        return f"{'wss' if self._tls else 'ws'}://127.0.0.1:{self.port}/ws"

    def __enter__(self) -> RawPeer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        if self.conn is not None:
            self.conn.close()
        self._thread.join(5)

    def _accept(self) -> None:
        try:
            raw, _ = self._listener.accept()
        except OSError:
            return
        conn = self._tls.wrap_socket(raw, server_side=True) if self._tls else raw
        conn.settimeout(10)
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        head, _, self._pending = request.partition(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n" + self._first
        )
        self.conn = conn
        self._accepted.set()

    def wait(self, timeout_s: float = 5.0) -> socket.socket:
        assert self._accepted.wait(timeout_s), "no client connected"
        assert self.conn is not None
        return self.conn

    def send_raw(self, data: bytes) -> None:
        self.wait().sendall(data)

    def send_frame(self, payload: bytes, opcode: int = 1, fin: bool = True) -> None:
        self.send_raw(server_frame(payload, opcode, fin))

    def read_frames(self, timeout_s: float = 5.0) -> list[tuple[int, bytes]]:
        """The client's frames (opcode, unmasked payload) until it closes or goes quiet."""
        conn = self.wait()
        conn.settimeout(timeout_s)
        data = self._pending
        try:
            while chunk := conn.recv(65536):
                data += chunk
        except (TimeoutError, OSError):
            pass
        frames = []
        while len(data) >= 2:
            opcode, size, at = data[0] & 0x0F, data[1] & 0x7F, 2
            if size == 126:
                size, at = struct.unpack("!H", data[2:4])[0], 4
            elif size == 127:
                size, at = struct.unpack("!Q", data[2:10])[0], 10
            mask, at = data[at : at + 4], at + 4
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(data[at : at + size]))
            frames.append((opcode, payload))
            data = data[at + size :]
        return frames
