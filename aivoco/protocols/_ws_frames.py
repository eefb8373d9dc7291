"""WebSocket frames from bytes read without blocking, and frames built for the shared
loop to write (`_reader.py`, `_outbox.py`): an agent call's connection.

Parsing is websocket-client's own (`frame_buffer`, `continuous_frame`: the same checks
of opcodes, reserved bits and close codes as its blocking reader; UTF-8 is checked by
Python's decoder), fed from a
buffer instead of the socket: when the buffer runs dry the parser's `recv` raises, and
`frame_buffer` keeps what it had (header, length, partial payload), so the next call
resumes where it stopped. The length is checked as soon as the header is in, so a
message over the limit is refused before its payload is buffered
(docs/protocols.md#leniency).

One lock per connection keeps the loop's reads and writes apart from a teardown on
another thread: an SSL object must not be used by two threads at once, and with a
non-blocking socket each call is short.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any

import websocket
from websocket import WebSocketPayloadException
from websocket._abnf import continuous_frame, frame_buffer

ABNF = websocket.ABNF
DATA_OPCODES = (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_CONT)
# One read: more than a TLS record (16 KiB), so a read takes a whole record and the TLS
# layer keeps no decrypted bytes the selector cannot see; a few reads per turn keep a
# flooding peer from holding up the others.
READ_BYTES = 65536
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class TooBigError(Exception):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a message of {size} bytes (the limit is {limit})")


class _DryError(Exception):
    """The buffer holds no more bytes: the frame continues in a later read."""


class FrameParser:
    """Messages (opcode, payload) from bytes fed in any pieces; control frames as they
    come, data frames assembled into their message."""

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        self._inbox = bytearray()
        self._frames = frame_buffer(self._take, skip_utf8_validation=False)
        # UTF-8 is checked here, by Python's decoder (C): the library's own check is a
        # Python loop per byte, 140 us for one 20 ms media message.
        self._message = continuous_frame(fire_cont_frame=False, skip_utf8_validation=True)
        self._assembled = 0

    def feed(self, data: bytes) -> None:
        self._inbox += data

    def next_message(self) -> tuple[int, bytes] | None:
        """The next complete message or control frame; None until more bytes arrive.
        Raises TooBigError, or websocket-client's errors for an invalid frame."""
        while True:
            frame = self._next_frame()
            if frame is None:
                return None
            if frame.opcode not in DATA_OPCODES:
                return frame.opcode, frame.data
            self._assembled += len(frame.data)
            if self._assembled > self.max_message_bytes:
                raise TooBigError(self._assembled, self.max_message_bytes)
            self._message.validate(frame)
            self._message.add(frame)
            if self._message.is_fire(frame):
                self._assembled = 0
                opcode, whole = self._message.extract(frame)
                if opcode == ABNF.OPCODE_TEXT:
                    _check_utf8(whole.data)
                return opcode, whole.data

    def _next_frame(self) -> Any:
        buffer = self._frames
        try:
            if buffer.needs_header():
                buffer.recv_header()
            if buffer.needs_length():
                buffer.recv_length()
            if buffer.length is not None and buffer.length > self.max_message_bytes:
                raise TooBigError(buffer.length, self.max_message_bytes)
            return buffer.recv_frame()
        except _DryError:
            return None

    def _take(self, size: int) -> bytes:
        # Only whole pieces of what the parser asks for (at most 16 KiB of a payload at
        # a time): it keeps its pieces in a list it sums on every call, so a peer
        # trickling a byte per read must not grow that list a byte at a time.
        if len(self._inbox) < size:
            raise _DryError
        data = bytes(self._inbox[:size])
        del self._inbox[:size]
        return data


def _check_utf8(data: bytes) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:  # RFC 6455 section 8.1: the connection fails
        raise WebSocketPayloadException("a text message that is not UTF-8") from None


def receive(sock: socket.socket | None, lock: threading.Lock) -> bytes | None:
    """What one read returns now (None: nothing yet). Raises ConnectionError at the end
    of the stream (or once the socket is gone), OSError on a socket error."""
    if sock is None:
        raise ConnectionError("the connection is closed")
    try:
        with lock:
            data = sock.recv(READ_BYTES)
    except _WOULD_BLOCK:
        return None
    if not data:
        raise ConnectionResetError("Connection to remote host was lost.")
    return data


def frame(payload: bytes | str, opcode: int) -> Any:
    """A client frame (masked, as RFC 6455 requires of a client)."""
    return ABNF.create_frame(payload, opcode)
