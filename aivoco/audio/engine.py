"""The threaded device engine: PortAudio streams at the device's own rate.

Streams open at the device's default sample rate (44.1/48 kHz-only hardware rejects
8/16/24 kHz with "Invalid sample rate"); conversion to protocol rates happens on worker
threads. Callbacks only copy into / fill from bounded buffers and bump counters, as in
python-sounddevice's examples: no logging, allocation-heavy work or resampling there.
"""

from __future__ import annotations

import queue
import threading
import warnings
from collections.abc import Iterator
from time import monotonic
from typing import Any, TypeVar

import numpy as np

from aivoco.audio.chunk import AudioChunk, Float32Array, float32_to_pcm16
from aivoco.audio.devices import DeviceInfo, load_sounddevice, resolve_device
from aivoco.audio.playout import Player
from aivoco.audio.resample import StreamResampler
from aivoco.audio.timed import TimedRing, block_time_s
from aivoco.errors import AivocoError, DeviceError

T = TypeVar("T")


def _quiet_sounddevice_deprecation() -> None:
    """sounddevice 0.5 reshapes each callback buffer by assigning `ndarray.shape`, which
    NumPy 2.5 deprecates. Where warnings are errors (python -W error, a test runner)
    that warning is raised inside the PortAudio callback, aborting it and stopping the
    stream. Installed at every stream open (filterwarnings de-duplicates), because
    test runners reset the filters around each test."""
    warnings.filterwarnings(
        "ignore",
        message="Setting the shape on a NumPy array has been deprecated",
        category=DeprecationWarning,
        module="sounddevice",
    )


BLOCK_MS = 10  # callback period: short enough for low latency, long enough for Python
CAPTURE_RING_MS = 2000  # the worker drains every few ms; 2 s covers a long GC pause
FRAME_QUEUE_LIMIT = 100  # frames waiting for the sender; overflow drops the oldest
# Output buffer asked of PortAudio. Through ALSA's pulse plugin (how PortAudio 19.6
# reaches PulseAudio/PipeWire), "low" (20 ms) lost 20-260 ms of a 1.5 s tone in 8 of 8
# idle trials, and all of it once under CPU load; "high" (40 ms) was worse. 100 ms lost
# nothing in any idle trial (over 25); with both cores saturated by busy loops about 1
# run in 10 still lost some (49 ms once), as did 150 ms (2 ms once). The same tone is
# played by tests/test_device_audio.py. Capture keeps "low": no overflow or gap seen.
OUTPUT_LATENCY_S = 0.1


def _open_stream(sd: Any, cls: Any, device: DeviceInfo, kind: str, callback: Any) -> Any:
    """Open at the device's default rate, mono if possible, else its own channel count."""
    _quiet_sounddevice_deprecation()
    rate = device.default_samplerate_hz
    attempts = [1]
    own = min(2, device.channels("input" if kind == "input" else "output"))
    if own > 1:
        attempts.append(own)
    last: Exception | None = None
    for channels in attempts:
        try:
            stream = cls(
                device=device.index,
                samplerate=rate,
                channels=channels,
                dtype="float32",
                blocksize=rate * BLOCK_MS // 1000,
                latency="low" if kind == "input" else OUTPUT_LATENCY_S,
                callback=callback,
            )
            return stream
        except (sd.PortAudioError, ValueError) as exc:
            last = exc
    raise DeviceError(f"cannot open {kind} device {device.index} ({device.name}): {last}")


class MicCapture:
    """Microphone -> mono int16 frames of `frame_ms` at `sample_rate_hz`, each stamped
    with the time its first sample left the converter (`captured_at_s`)."""

    acoustic = True  # a real microphone: it can hear the speaker (echo control)

    def __init__(self, device: str | int | None, sample_rate_hz: int, frame_ms: int) -> None:
        self._sd = load_sounddevice()
        self.device = resolve_device(device, "input")
        self.sample_rate_hz = sample_rate_hz
        self.frame_ms = frame_ms
        self.frame_frames = sample_rate_hz * frame_ms // 1000
        self.input_overflows = 0
        self.dropped_frames = 0
        self.finished = False  # a microphone never runs out (FileSource API parity)
        self._frames: queue.Queue[AudioChunk] = queue.Queue(maxsize=FRAME_QUEUE_LIMIT)
        self._stop = threading.Event()
        self._error: AivocoError | None = None
        self._stream = _open_stream(self._sd, self._sd.InputStream, self.device, "input", self._cb)
        self.device_rate_hz = int(self._stream.samplerate)
        self.channels = int(self._stream.channels)
        self._ring = TimedRing(
            self.device_rate_hz * CAPTURE_RING_MS // 1000, self.device_rate_hz, self.channels
        )
        # Input buffers lie in the past: without a believable ADC time, assume the
        # stream's nominal latency (docs/echo.md#alignment).
        self._fallback_s = -float(self._stream.latency)
        self._worker = threading.Thread(target=self._work, name="aivoco-capture", daemon=True)

    @property
    def lost_frames(self) -> int:
        """Captured audio dropped by an overflow (at `sample_rate_hz`)."""
        ring_lost = self._ring.dropped_frames * self.sample_rate_hz // self.device_rate_hz
        return self.dropped_frames + ring_lost

    def _cb(self, indata: Float32Array, frames: int, time: Any, status: Any) -> None:
        if status.input_overflow:
            self.input_overflows += 1
        at = block_time_s(monotonic(), time.currentTime, time.inputBufferAdcTime, self._fallback_s)
        self._ring.write(indata, at)

    def start(self) -> None:
        try:
            self._stream.start()
        except self._sd.PortAudioError as exc:
            raise DeviceError(f"cannot start input device {self.device.name}: {exc}") from exc
        self._worker.start()

    def _work(self) -> None:
        rs = StreamResampler(self.device_rate_hz, self.sample_rate_hz)
        pending = np.zeros(0, np.float32)
        produced = 0  # resampler output position of pending[0]
        fed = 0  # device frames fed to the resampler
        anchor = (0, 0.0)  # (resampler input position, its capture time)
        period = BLOCK_MS / 2000.0
        while not self._stop.wait(period):
            if not self._stream.active:
                self._error = DeviceError(f"input device {self.device.name} stopped")
                return
            block = self._ring.read()
            if block.frames == 0:
                continue
            x = block.samples
            anchor = (fed, block.start_s)
            fed += block.frames
            mono = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
            pending = np.concatenate([pending, rs.process_float(mono)[:, 0]])
            while pending.shape[0] >= self.frame_frames:
                frame = float32_to_pcm16(pending[: self.frame_frames])
                pending = pending[self.frame_frames :]
                # libsamplerate keeps output aligned: output j is input j / ratio.
                at = anchor[1] + (produced / rs.ratio - anchor[0]) / self.device_rate_hz
                produced += self.frame_frames
                self._put(AudioChunk(frame, self.sample_rate_hz, captured_at_s=at))

    def _put(self, chunk: AudioChunk) -> None:
        while True:
            try:
                self._frames.put_nowait(chunk)
                return
            except queue.Full:
                try:
                    self._frames.get_nowait()
                    self.dropped_frames += self.frame_frames
                except queue.Empty:
                    pass

    def __iter__(self) -> Iterator[AudioChunk]:
        while not self._stop.is_set():
            try:
                yield self._frames.get(timeout=0.2)
            except queue.Empty:
                if self._error is not None:
                    raise self._error from None

    def close(self) -> None:
        self._stop.set()
        try:
            self._stream.stop()
            self._stream.close()
        except self._sd.PortAudioError:
            pass
        if self._worker.is_alive():
            self._worker.join(timeout=1)


class DevicePlayer(Player[T]):
    """Speaker: the output callback fills from the jitter buffer at the device rate,
    applies the volume and taps what it wrote, with its DAC time, as the echo reference."""

    acoustic = True  # a real speaker: the microphone may hear it (echo control)

    def __init__(self, device: str | int | None, prefill_ms: float = 60.0) -> None:
        self._sd = load_sounddevice()
        self.device = resolve_device(device, "output")
        super().__init__(self.device.default_samplerate_hz, prefill_ms)
        self._stream = _open_stream(
            self._sd, self._sd.OutputStream, self.device, "output", self._cb
        )
        self.channels = int(self._stream.channels)
        self._fallback_s = float(self._stream.latency)  # output buffers lie in the future
        block = self.clock_rate_hz * BLOCK_MS // 1000
        # Scratch for devices that refuse mono; sized for blocks up to 8x nominal.
        self._scratch = np.zeros((block * 8, 1), np.float32)

    def _cb(self, outdata: Float32Array, frames: int, time: Any, status: Any) -> None:
        if status.output_underflow:
            self.device_underflows += 1
        mono = outdata if self.channels == 1 else self._scratch[:frames]
        self.jitter.fill(mono)
        if self.volume != 1.0:
            mono *= self.volume
        if self.channels != 1:
            outdata[:] = mono  # broadcast mono to every channel
        at = block_time_s(monotonic(), time.currentTime, time.outputBufferDacTime, self._fallback_s)
        self.reference.write(mono, at)

    def start(self) -> None:
        try:
            self._stream.start()
        except self._sd.PortAudioError as exc:
            raise DeviceError(f"cannot start output device {self.device.name}: {exc}") from exc

    def close(self) -> None:
        try:
            self._stream.stop()
            self._stream.close()
        except self._sd.PortAudioError:
            pass
