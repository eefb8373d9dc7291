"""The device engine: the speaker at the protocol's rate when the host API takes it.

The output stream opens at the call's own rate (24/8 kHz) where the host API accepts it,
so the sound server converts, as for any other client; raw hardware that takes only
44.1/48 kHz gets its default rate and our resampler (aivoco/audio/streams.py). Capture
stays at the device's rate, with our resampler (docs/devices.md#rates).
Callbacks only copy into / fill from bounded buffers and bump counters, as in
python-sounddevice's examples: no logging, allocation-heavy work or resampling there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from time import monotonic
from typing import Any, TypeVar

import numpy as np

from aivoco.audio.chunk import AudioChunk, Float32Array
from aivoco.audio.devices import load_sounddevice, resolve_device
from aivoco.audio.framing import CaptureFramer
from aivoco.audio.playout import Player, PlayerStats
from aivoco.audio.streams import (
    OUTPUT_STEPS,
    Ladder,
    OutputStep,
    StreamFormat,
    Verdict,
    open_stream,
    supported_formats,
)
from aivoco.audio.timed import TimedBlock, TimedRing, block_time_s
from aivoco.errors import AivocoError, DeviceError

T = TypeVar("T")

# The input callback's period. Through our resampler a frame's edges do not line up with
# the device's blocks, so a frame waits for up to one block after its last sample: with
# 20 ms blocks (one wake-up per frame) the uplink bench measured 8 ms more than with 10
# ms (docs/devices.md#capture).
CAPTURE_BLOCK_MS = 10.0
CAPTURE_RING_MS = 2000  # what the uplink may fall behind (a GC pause, a slow send)
STALL_CHECK_S = 0.5  # no capture callback for this long: is the stream still running?
SETTLING_POLL_S = 0.05  # how often the output ladder looks at a stream that is settling
HEADROOM_BLOCKS = 16  # the last clean callbacks: their DAC distance is the output latency
# The jitter buffer's hold for a speaker (README "The jitter buffer"): the first output
# step's (40 ms). A step up raises it to that step's (aivoco/audio/streams.py).
DEVICE_PREFILL_MS = float(OUTPUT_STEPS[0].hold_ms)


class MicCapture:
    """Microphone -> mono int16 frames of `frame_ms` at `sample_rate_hz`, each stamped
    with the time its first sample met the converter (`captured_at_s`).

    No thread of its own: the callback copies each block into a ring and sets an event;
    the consumer's thread (the uplink) wakes on it and frames what came."""

    acoustic = True  # a real microphone: it can hear the speaker (echo control)

    def __init__(
        self, device: str | int | None, sample_rate_hz: int, frame_ms: int, *, native: bool = False
    ) -> None:
        """`native`: ask for the call's own rate first (the sound server converts, as for
        arecord), for calls whose echo control does not align the microphone with the
        speaker (docs/devices.md#rates); else the device's rate, converted by us."""
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
        block_ms = CAPTURE_BLOCK_MS
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


class DevicePlayer(Player[T]):
    """Speaker: the output callback fills from the jitter buffer, applies the volume and
    taps what it wrote, with its DAC time, as the echo reference.

    The stream runs from construction, playing silence while it settles; `Ladder` picks
    its latency (aivoco/audio/streams.py) on the `aivoco-output` thread, which sleeps
    once the stream is settled until an underflow wakes it. Agent audio is consumed only
    while `start()` has been called and the stream is settled: a callback that reports an
    underflow writes silence and consumes nothing, because the device is discarding what
    it is given (through ALSA's pulse plugin an underflow burst throws away whole
    blocks), so audio is delayed instead of lost."""

    acoustic = True  # a real speaker: the microphone may hear it (echo control)

    def __init__(
        self,
        device: str | int | None,
        prefill_ms: float = DEVICE_PREFILL_MS,
        *,
        rate_hz: int | None = None,
        steps: tuple[OutputStep, ...] = OUTPUT_STEPS,
        formats: Sequence[StreamFormat] | None = None,
    ) -> None:
        """`formats`: the ones to try, best first (default: `rate_hz`, then the
        device's rate, as `supported_formats` finds them)."""
        self._sd = load_sounddevice()
        self.device = resolve_device(device, "output")
        self.ladder = Ladder(steps)
        self._started = False  # start() was called: the call wants sound
        self._consuming = False  # started and settled: the callback plays agent audio
        self._flags = 0  # callbacks that reported an underflow, every stream
        self._played = 0  # frames of clean callbacks, every stream
        self._heads = np.full(HEADROOM_BLOCKS, np.nan)  # DAC distance of recent callbacks
        self._head_i = 0
        self._stop = threading.Event()
        self._alarm = threading.Event()  # an underflow while settled, or close()
        self._mode = threading.Lock()  # _started/_consuming change together
        if formats is None:
            formats = supported_formats(self._sd, self.device, "output", rate_hz)
        self._stream, fmt = self._open(formats, self.ladder.step)
        super().__init__(fmt.rate_hz, prefill_ms)
        self._format = fmt
        self.channels = fmt.channels
        # Scratch for devices that refuse mono; sized for blocks up to 8x the largest.
        most = max(s.block_ms for s in steps)
        self._scratch = np.zeros((self.clock_rate_hz * most // 1000 * 8, 1), np.float32)
        self._silence = np.zeros_like(self._scratch)
        self._settled = threading.Event()
        self._control = threading.Thread(target=self._run, name="aivoco-output", daemon=True)
        self._begin()

    def _open(self, formats: Any, step: OutputStep) -> tuple[Any, Any]:
        stream, fmt = open_stream(
            self._sd, self.device, "output", self._cb, formats=formats,
            block_ms=step.block_ms, latency=step.latency_ms / 1000,
        )  # fmt: skip
        self._fallback_s = float(stream.latency)  # output buffers lie in the future
        return stream, fmt

    def _begin(self) -> None:
        try:
            self._stream.start()
        except self._sd.PortAudioError as exc:
            self._stream.close()
            raise DeviceError(f"cannot start output device {self.device.name}: {exc}") from exc
        self.ladder.opened(monotonic(), self._played_ms(), self._flags)
        self._control.start()

    def _played_ms(self) -> float:
        return self._played * 1000.0 / self.clock_rate_hz

    def _cb(self, outdata: Float32Array, frames: int, time: Any, status: Any) -> None:
        self._heads[self._head_i % HEADROOM_BLOCKS] = time.outputBufferDacTime - time.currentTime
        self._head_i += 1
        if status.output_underflow:
            self._heads.fill(np.nan)  # measure the latency on clean callbacks only
            self._flags += 1
            if self._consuming:
                self.device_underflows += 1
                self._alarm.set()
            outdata.fill(0.0)
            return
        self._played += frames
        if not self._consuming:
            outdata.fill(0.0)
            if self._started:  # settling after start(): silence on the call's timeline
                self.monitor.write(self._silence[:frames])
            return
        mono = outdata if self.channels == 1 else self._scratch[:frames]
        at = block_time_s(monotonic(), time.currentTime, time.outputBufferDacTime, self._fallback_s)
        self.jitter.fill(mono, at)
        if self.volume != 1.0:
            mono *= self.volume
        if self.channels != 1:
            outdata[:] = mono  # broadcast mono to every channel
        self.reference.write(mono, at)

    # -- the latency ladder (the aivoco-output thread) ---------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            if self.ladder.settled:
                self._alarm.wait()
                self._alarm.clear()
            else:
                self._stop.wait(SETTLING_POLL_S)
            if self._stop.is_set():
                return
            verdict = self.ladder.observe(monotonic(), self._played_ms(), self._flags)
            if verdict is Verdict.ACCEPT:
                self.output_latency_ms = self._measured_ms()
                with self._mode:
                    self._consuming = self._started
                self._settled.set()
            elif verdict is Verdict.STEP_UP:
                with self._mode:
                    self._consuming = False
                self.jitter.raise_prefill(self.ladder.step.hold_ms)
                try:
                    self._reopen(self.ladder.step)
                except AivocoError as exc:
                    self.error = exc  # the call ends with it (the observer reports it)
                    return

    def _reopen(self, step: OutputStep) -> None:
        old = self._stream
        try:
            old.stop()
            old.close()
        except self._sd.PortAudioError:
            pass
        # The old stream's callbacks have ended: measure the new one alone (with 20 ms
        # blocks, settling takes fewer callbacks than HEADROOM_BLOCKS, and the figure
        # after 100 -> 200 ms read 129 ms).
        self._heads.fill(np.nan)
        self._stream, _ = self._open([self._format], step)
        try:
            self._stream.start()
        except self._sd.PortAudioError as exc:
            raise DeviceError(f"cannot restart output device {self.device.name}: {exc}") from exc
        self.ladder.opened(monotonic(), self._played_ms(), self._flags)

    def _measured_ms(self) -> float | None:
        heads = self._heads[np.isfinite(self._heads)]
        if heads.size == 0:
            return None
        return round(float(np.median(heads)) * 1000.0, 1)

    def stats(self) -> PlayerStats:
        # The figure follows the stream, not only its value when the step was accepted:
        # a new 200 ms stream measured 130-140 ms then and 185 ms once it had filled.
        if self.ladder.settled:
            measured = self._measured_ms()
            if measured is not None:
                self.output_latency_ms = measured
        return super().stats()

    @property
    def output_step(self) -> OutputStep:
        """The latency asked of PortAudio and the callback period in use."""
        return self.ladder.step

    def wait_settled(self, timeout_s: float) -> bool:
        """Block until the ladder accepted a step (True), or `timeout_s` passed."""
        return self._settled.wait(timeout_s)

    def start(self) -> None:
        """The call wants sound: agent audio plays from now on, once the stream has
        settled (usually long before: it has run since construction)."""
        with self._mode:
            self._started = True
            self._consuming = self.ladder.settled

    def close(self) -> None:
        self._stop.set()
        self._alarm.set()
        if self._control.is_alive() and self._control is not threading.current_thread():
            self._control.join(timeout=2)
        self._consuming = False
        try:
            self._stream.stop()
            self._stream.close()
        except self._sd.PortAudioError:
            pass


PROBE_RATE_HZ = 24_000  # sts's downlink rate: what a call's output stream opens at
PROBE_TIMEOUT_S = 10.0  # every step of the ladder failing takes about 5 x 1.5 s


@dataclass(frozen=True)
class OutputProbe:
    """What `aivoco devices --latency` found for one output device."""

    asked_ms: int | None = None  # the ladder's step (the latency asked of PortAudio)
    measured_ms: float | None = None  # DAC time - now, median of clean callbacks
    rate_hz: int | None = None  # the rate the stream opened at
    problem: str | None = None  # why there is no figure

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe_output(device: int) -> OutputProbe:
    """Open the device as a call would (silence only), let the ladder settle, report."""
    try:
        player: DevicePlayer[None] = DevicePlayer(device, rate_hz=PROBE_RATE_HZ)
    except AivocoError as exc:
        return OutputProbe(problem=str(exc))
    try:
        if not player.wait_settled(PROBE_TIMEOUT_S):
            return OutputProbe(problem=f"did not settle in {PROBE_TIMEOUT_S:g} s")
        return OutputProbe(
            player.output_step.latency_ms, player.output_latency_ms, player.clock_rate_hz
        )
    finally:
        player.close()
