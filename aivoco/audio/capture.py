"""The microphone: device blocks -> uplink frames at the call's rate, on the consumer's
thread (docs/devices.md#capture).

The callback only copies each block, with its ADC time, into a bounded ring and sets an
event, as in python-sounddevice's examples; converting and framing happen on the thread
that iterates (the uplink).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from time import monotonic
from typing import Any

from aivoco.audio.chunk import AudioChunk, Float32Array
from aivoco.audio.devices import load_sounddevice, resolve_device
from aivoco.audio.framing import CaptureFramer
from aivoco.audio.streams import open_stream, supported_formats
from aivoco.audio.timed import TimedBlock, TimedRing, block_time_s
from aivoco.errors import AivocoError, DeviceError

# The input callback's period. Through our resampler a frame's edges do not line up with
# the device's blocks, so a frame waits for up to one block after its last sample: with
# 20 ms blocks (one wake-up per frame) the uplink bench measured 8 ms more than with 10
# ms (docs/devices.md#capture).
CAPTURE_BLOCK_MS = 10.0
CAPTURE_RING_MS = 2000  # what the uplink may fall behind (a GC pause, a slow send)
STALL_CHECK_S = 0.5  # no capture callback for this long: is the stream still running?


class MicCapture:
    """Microphone -> mono int16 frames of `frame_ms` at `sample_rate_hz`, each stamped
    with the time its first sample met the converter (`captured_at_s`).

    No thread of its own: the callback copies each block into a ring and sets an event;
    the consumer's thread (the uplink) wakes on it and frames what came."""

    acoustic = True  # a real microphone: it can hear the speaker (echo control)

    def __init__(
        self,
        device: str | int | None,
        sample_rate_hz: int,
        frame_ms: int,
        *,
        native: bool = False,
        block_ms: float = CAPTURE_BLOCK_MS,
    ) -> None:
        """`native`: ask for the call's own rate first (the sound server converts, as for
        arecord), for calls whose echo control does not align the microphone with the
        speaker (docs/devices.md#rates); else the device's rate, converted by us.
        `block_ms`: the callback's period (`--low-cpu` asks for a whole frame,
        docs/devices.md#low-cpu)."""
        self._sd = load_sounddevice()
        self.device = resolve_device(device, "input")
        self.sample_rate_hz = sample_rate_hz
        self.frame_ms = frame_ms
        self.frame_frames = sample_rate_hz * frame_ms // 1000
        self.input_overflows = 0
        self.finished = False  # a microphone never runs out (FileSource API parity)
        self._stop = threading.Event()
        self._ready = threading.Event()  # the callback wrote a block
        self._error: AivocoError | None = None
        # With echo control, the device's own rate: on the echo rig a 16 kHz capture
        # stream (converted by PulseAudio) let the agent's echo through the gate and the
        # canceller in 7 of 20 test cases, the 44.1 kHz one in none of 16. Without it,
        # the call's rate where the host API takes it (docs/devices.md#rates).
        formats = supported_formats(
            self._sd, self.device, "input", sample_rate_hz if native else None
        )
        self._stream, fmt = open_stream(
            self._sd, self.device, "input", self._cb, formats=formats, block_ms=block_ms,
            latency="low",
        )  # fmt: skip
        self.device_rate_hz = fmt.rate_hz
        self.channels = fmt.channels
        self._ring = TimedRing(
            self.device_rate_hz * CAPTURE_RING_MS // 1000, self.device_rate_hz, self.channels
        )
        self._framer = CaptureFramer(self.device_rate_hz, sample_rate_hz, self.frame_frames)
        # Input buffers lie in the past: without a believable ADC time, assume the
        # stream's nominal latency (docs/echo.md#alignment).
        self._fallback_s = -float(self._stream.latency)

    @property
    def block_frames(self) -> int:
        """Frames per callback, at the device's rate."""
        return int(self._stream.blocksize)

    @property
    def resampling(self) -> bool:
        """True when the device rate differs from the call's and aivoco converts."""
        return self._framer.converting

    @property
    def lost_frames(self) -> int:
        """Captured audio dropped by an overflow (at `sample_rate_hz`)."""
        return self._ring.dropped_frames * self.sample_rate_hz // self.device_rate_hz

    def _cb(self, indata: Float32Array, frames: int, time: Any, status: Any) -> None:
        if status.input_overflow:
            self.input_overflows += 1
        at = block_time_s(monotonic(), time.currentTime, time.inputBufferAdcTime, self._fallback_s)
        self._ring.write(indata, at)
        self._ready.set()

    def start(self) -> None:
        try:
            self._stream.start()
        except self._sd.PortAudioError as exc:
            raise DeviceError(f"cannot start input device {self.device.name}: {exc}") from exc

    def __iter__(self) -> Iterator[AudioChunk]:
        """Frames as they are captured, until `close()`; raises DeviceError if the
        stream stops by itself (a device unplugged)."""
        while not self._stop.is_set():
            if not self._ready.wait(STALL_CHECK_S):
                if not self._stream.active and not self._stop.is_set():
                    raise DeviceError(f"input device {self.device.name} stopped")
                continue
            self._ready.clear()  # before reading: a block written meanwhile sets it again
            yield from self._frames(self._ring.read())

    def _frames(self, block: TimedBlock) -> list[AudioChunk]:
        if self._stop.is_set():
            return []
        return self._framer.frames(block.samples, block.start_s)

    def close(self) -> None:
        self._stop.set()
        self._ready.set()  # wake the consumer so it sees the stop
        try:
            self._stream.stop()
            self._stream.close()
        except self._sd.PortAudioError:
            pass
