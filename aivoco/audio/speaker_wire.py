"""The speaker process's wire: pure encoding of what goes between a call and the process
that owns its output stream (docs/devices.md#process). No pipes here: the player
(`speaker_proc.py`) and the child (`speaker_child.py`) own those.

Every message is a 5-byte header (kind, payload length) and its payload. Audio travels
as raw samples after a fixed struct, so a block costs one copy each side; control goes
as JSON (a few a second). Malformed input raises `SpeakerWireError`: the other side is
our own code, so it means a bug or a dying process, and the player reports it as a
device error instead of guessing.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

from aivoco.audio.chunk import Float32Array, Int16Array, pcm16_to_float32
from aivoco.errors import AivocoError

HEADER = struct.Struct("<BI")
BLOCK_HEAD = struct.Struct("<dqqII")  # start_s, read_pos, write_pos, monitor n, reference n
MAX_PAYLOAD = 16 << 20  # far above any block or chunk: a larger length is corruption


class SpeakerWireError(AivocoError):
    """A message between the call and its speaker process could not be decoded."""


class Kind(IntEnum):
    # parent -> child
    PLAY = 1  # int16 samples at the stream's rate
    MARK = 2  # JSON id: reached once everything played before it has been consumed
    CUE = 3  # JSON key: resolved with the time the next audio is heard
    CLEAR = 4  # JSON sequence number: answered by CLEARED
    VOLUME = 5  # JSON float
    START = 6  # the call wants sound
    CLOSE = 7
    # child -> parent
    READY = 20  # the stream is open (in the format the parent chose)
    FAIL = 21  # JSON: the stream could not be opened (kind, message)
    BLOCK = 22  # one callback: what it handed the device and its echo reference
    EVENTS = 23  # JSON: marks reached, cues heard, a stats snapshot
    CLEARED = 24  # JSON: sequence number, frames discarded, the read position after
    ERROR = 25  # JSON message: the stream failed during the call


@dataclass(frozen=True)
class Block:
    """One output callback, as the parent needs it: the audio handed to the device
    (before the volume, silence included: the monitor), the echo reference (after the
    volume; empty while the call does not consume) with the time its first sample is
    heard, and the jitter buffer's positions after the callback."""

    start_s: float
    read_pos: int
    write_pos: int
    monitor: Float32Array
    reference: Float32Array


def frame(kind: Kind, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def control(kind: Kind, value: Any = None) -> bytes:
    return frame(kind, json.dumps(value).encode())


def block(b: Block) -> bytes:
    head = BLOCK_HEAD.pack(
        b.start_s, b.read_pos, b.write_pos, b.monitor.shape[0], b.reference.shape[0]
    )
    mon = np.ascontiguousarray(b.monitor, np.float32).tobytes()
    ref = np.ascontiguousarray(b.reference, np.float32).tobytes()
    return frame(Kind.BLOCK, head + mon + ref)


def play(samples: Int16Array) -> bytes:
    return frame(Kind.PLAY, np.ascontiguousarray(samples, np.int16).tobytes())


def decode_json(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise SpeakerWireError(f"speaker process: bad control message ({exc})") from exc


def decode_block(payload: bytes) -> Block:
    if len(payload) < BLOCK_HEAD.size:
        raise SpeakerWireError("speaker process: short block")
    start_s, read_pos, write_pos, n_mon, n_ref = BLOCK_HEAD.unpack_from(payload)
    if len(payload) != BLOCK_HEAD.size + 4 * (n_mon + n_ref):
        raise SpeakerWireError("speaker process: block length does not match its counts")
    samples = np.frombuffer(payload, np.float32, offset=BLOCK_HEAD.size)
    return Block(
        start_s,
        read_pos,
        write_pos,
        samples[:n_mon].reshape(-1, 1),
        samples[n_mon:].reshape(-1, 1),
    )


def decode_play(payload: bytes) -> Float32Array:
    if len(payload) % 2:
        raise SpeakerWireError("speaker process: odd audio length")
    # The same conversion as AudioChunk.to_float32: the child plays what the parent
    # would have played in-process, sample for sample.
    return pcm16_to_float32(np.frombuffer(payload, np.int16)).reshape(-1, 1)


class Decoder:
    """Bytes in, whole messages out, in order (a message may span reads)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[Kind, bytes]]:
        self._buf += data
        out: list[tuple[Kind, bytes]] = []
        pos = 0
        while len(self._buf) - pos >= HEADER.size:
            raw_kind, length = HEADER.unpack_from(self._buf, pos)
            if length > MAX_PAYLOAD:
                raise SpeakerWireError(f"speaker process: message of {length} bytes")
            try:
                kind = Kind(raw_kind)
            except ValueError:
                raise SpeakerWireError(f"speaker process: unknown message {raw_kind}") from None
            end = pos + HEADER.size + length
            if end > len(self._buf):
                break
            out.append((kind, bytes(self._buf[pos + HEADER.size : end])))
            pos = end
        del self._buf[:pos]
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)
