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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from time import monotonic
from typing import Any, TypeVar

import numpy as np

from aivoco.audio.chunk import Float32Array
from aivoco.audio.devices import load_sounddevice, resolve_device
from aivoco.audio.playout import Player, PlayerStats
from aivoco.audio.streams import (
    OUTPUT_STEPS,
    RETRY_AFTER_S,
    Ladder,
    OutputStep,
    StreamFormat,
    Trial,
    Verdict,
    open_stream,
    supported_formats,
)
from aivoco.audio.timed import block_time_s
from aivoco.errors import AivocoError, DeviceError

T = TypeVar("T")

SETTLING_POLL_S = 0.05  # how often the output ladder looks at a stream that is settling
HEADROOM_BLOCKS = 16  # the last clean callbacks: their DAC distance is the output latency
TRIAL_WAIT_S = 30.0  # a settled trial waits this long for a quiet speaker, then is closed


class DevicePlayer(Player[T]):
    """Speaker: the output callback fills from the jitter buffer, applies the volume and
    taps what it wrote, with its DAC time, as the echo reference.

    The stream runs from construction, playing silence while it settles; `Ladder` picks
    its latency (aivoco/audio/streams.py) on the `aivoco-output` thread, which sleeps
    once the stream is settled until an underflow wakes it or a step left for one is due
    to be tried again (on a second stream that takes over only once it has settled and
    the speaker is quiet: docs/devices.md#step-down). Agent audio is consumed only
    while `start()` has been called and the stream is settled: a callback that reports an
    underflow writes silence and consumes nothing, because the device is discarding what
    it is given (through ALSA's pulse plugin an underflow burst throws away whole
    blocks), so audio is delayed instead of lost."""

    acoustic = True  # a real speaker: the microphone may hear it (echo control)

    def __init__(
        self,
        device: str | int | None,
        prefill_ms: float | None = None,
        *,
        rate_hz: int | None = None,
        steps: tuple[OutputStep, ...] = OUTPUT_STEPS,
        formats: Sequence[StreamFormat] | None = None,
        retry_after_s: float = RETRY_AFTER_S,
    ) -> None:
        """`prefill_ms`: the jitter buffer's hold (README "The jitter buffer"); by default
        the first of `steps`' holds, as a step up raises it to that step's
        (aivoco/audio/streams.py). `formats`: the ones to try, best first (default:
        `rate_hz`, then the device's rate, as `supported_formats` finds them).
        `retry_after_s`: clean play before a step left for an underflow is tried again
        (`Ladder`)."""
        self._sd = load_sounddevice()
        self.device = resolve_device(device, "output")
        self.ladder = Ladder(steps, retry_after_s=retry_after_s)
        self._started = False  # start() was called: the call wants sound
        self._consuming = False  # started and settled: the callback plays agent audio
        self._flags = 0  # callbacks that reported an underflow, every stream
        self._played = 0  # frames of clean callbacks, every stream
        self._heads = np.full(HEADROOM_BLOCKS, np.nan)  # DAC distance of recent callbacks
        self._head_i = 0
        self._stop = threading.Event()
        self._alarm = threading.Event()  # an underflow while settled, or close()
        self._mode = threading.Lock()  # _started/_consuming change together
        self._gen = 0  # the stream whose callbacks play; any other plays silence
        self._trial: tuple[Any, int, Trial] | None = None  # (stream, its gen, judge)
        self._trial_played = 0  # frames of the trial stream's clean callbacks
        self._trial_flags = 0  # its callbacks that reported an underflow
        self._quiet_since = (0, 0.0)  # (jitter read position, when it last moved)
        if formats is None:
            formats = supported_formats(self._sd, self.device, "output", rate_hz)
        self._stream, fmt = self._open(formats, self.ladder.step, 0)
        self._fallback_s = float(self._stream.latency)  # output buffers lie in the future
        super().__init__(fmt.rate_hz, steps[0].hold_ms if prefill_ms is None else prefill_ms)
        self._format = fmt
        self.channels = fmt.channels
        # Scratch for devices that refuse mono; sized for blocks up to 8x the largest.
        most = max(s.block_ms for s in steps)
        self._scratch = np.zeros((self.clock_rate_hz * most // 1000 * 8, 1), np.float32)
        self._silence = np.zeros_like(self._scratch)
        self._settled = threading.Event()
        self._control = threading.Thread(target=self._run, name="aivoco-output", daemon=True)
        self._begin()

    def _open(self, formats: Any, step: OutputStep, gen: int) -> tuple[Any, Any]:
        def callback(outdata: Float32Array, frames: int, time: Any, status: Any) -> None:
            if gen == self._gen:
                self._cb(outdata, frames, time, status)
            else:
                self._standby(gen, outdata, frames, status)

        return open_stream(
            self._sd, self.device, "output", callback, formats=formats,
            block_ms=step.block_ms, latency=step.latency_ms / 1000,
        )  # fmt: skip

    def _standby(self, gen: int, outdata: Float32Array, frames: int, status: Any) -> None:
        """A stream that does not play: a trial settling, or the one it replaced."""
        outdata.fill(0.0)
        trial = self._trial
        if trial is None or trial[1] != gen:
            return
        if status.output_underflow:
            self._trial_flags += 1
        else:
            self._trial_played += frames

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
            if self.ladder.settled and self._trial is None:
                self._alarm.wait(self.ladder.retry_in_s(monotonic()))
                self._alarm.clear()
            else:
                self._stop.wait(SETTLING_POLL_S)
            if self._stop.is_set():
                return
            now = monotonic()
            verdict = self.ladder.observe(now, self._played_ms(), self._flags)
            if verdict is Verdict.ACCEPT:
                self.output_latency_ms = self._measured_ms()
                with self._mode:
                    self._consuming = self._started
                self._settled.set()
            elif verdict is Verdict.STEP_UP:
                self._close_trial()
                with self._mode:
                    self._consuming = False
                self.jitter.raise_prefill(self.ladder.step.hold_ms)
                try:
                    self._reopen(self.ladder.step)
                except AivocoError as exc:
                    self.error = exc  # the call ends with it (the observer reports it)
                    return
            elif self.ladder.settled:
                self._tend_trial(now)

    # -- back down: make before break (docs/devices.md#step-down) ----------------------
    def _tend_trial(self, now: float) -> None:
        if self._trial is None:
            step = self.ladder.retry_due(now)
            if step is not None:
                self._open_trial(step, now)
            return
        judge = self._trial[2]
        played_ms = self._trial_played * 1000.0 / self.clock_rate_hz
        verdict = judge.observe(now, played_ms, self._trial_flags)
        waited_s = now - judge.opened_at
        if verdict is Verdict.STEP_UP or waited_s > TRIAL_WAIT_S:
            self._close_trial()
            self.ladder.trial_failed(now)
        elif verdict is Verdict.ACCEPT and self._quiet(now):
            self._take_over(now)

    def _open_trial(self, step: OutputStep, now: float) -> None:
        gen = self._gen + 1
        self._trial_played = self._trial_flags = 0
        try:
            stream, _ = self._open([self._format], step, gen)
            self._trial = (stream, gen, self.ladder.trial(now, 0.0, 0))
            stream.start()
        except (AivocoError, self._sd.PortAudioError):
            self._close_trial()  # the stream in use plays on; try again later
            self.ladder.trial_failed(now)

    def _quiet(self, now: float) -> bool:
        """Nothing queued or playing, and nothing consumed for longer than the stream in
        use holds: what it still has to play is silence, so switching loses nothing."""
        read, write = self.jitter.positions
        if read != self._quiet_since[0]:
            self._quiet_since = (read, now)
            return False
        held_s = self.ladder.step.latency_ms / 1000 + SETTLING_POLL_S
        return read == write and not self.jitter.playing and now - self._quiet_since[1] > held_s

    def _take_over(self, now: float) -> None:
        assert self._trial is not None
        stream, gen, judge = self._trial
        old, above = self._stream, self.ladder.step
        self._heads.fill(np.nan)  # the figure is the new stream's from here
        self._fallback_s = float(stream.latency)
        self._stream, self._trial = stream, None
        self._gen = gen  # its callbacks play from the next one on; the old one's are silent
        self.ladder.came_down(now, self._flags)
        self.jitter.lower_prefill(above.hold_ms, judge.step.hold_ms)
        self._close(old)

    def _close_trial(self) -> None:
        if self._trial is not None:
            stream, self._trial = self._trial[0], None
            self._close(stream)

    def _close(self, stream: Any) -> None:
        try:
            stream.stop()
            stream.close()
        except self._sd.PortAudioError:
            pass

    def _reopen(self, step: OutputStep) -> None:
        self._close(self._stream)
        # The old stream's callbacks have ended: measure the new one alone (with 20 ms
        # blocks, settling takes fewer callbacks than HEADROOM_BLOCKS, and the figure
        # after 100 -> 200 ms read 129 ms).
        self._heads.fill(np.nan)
        self._gen += 2  # past any trial's: only the new stream plays
        self._stream, _ = self._open([self._format], step, self._gen)
        self._fallback_s = float(self._stream.latency)
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
        step_ms = self.ladder.step.latency_ms if self.ladder.settled else None
        return replace(super().stats(), output_step_ms=step_ms)

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
        self._close_trial()
        self._close(self._stream)


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
