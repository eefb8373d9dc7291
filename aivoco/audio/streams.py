"""Opening PortAudio streams: at the protocol's rate when the host API takes it, and an
output latency chosen by measurement (the ladder below).

Rate. Through ALSA's pulse plugin (how PortAudio reaches PulseAudio and PipeWire on
Linux) a stream opens at any rate and the sound server resamples in its own process, as
it does for Aivoco's Node client (`arecord` at 16 kHz, `speaker` at 24 kHz). Raw
hardware usually takes only 44.1/48 kHz ("Invalid sample rate"): then the stream opens
at the device's default rate and aivoco resamples on its own threads. The format is
asked with Pa_IsFormatSupported first, and an open that still fails falls back too.

Output latency. How much audio the output stream keeps ahead of the speaker is most of
the downlink's latency and of how fast a barge-in cut is heard. Measured through the
pulse plugin (README "Output buffering"): a new stream asking for 20-60 ms underflows in
a burst for its first 0-0.7 s (its audio is discarded, not played late) and then
usually runs clean; sometimes the burst never ends; 100 ms never underflowed, idle or
with both cores busy. `Ladder` moves up one step whenever the stream underflows: while
it settles (before the call uses it) and during the call. The first step is 20 ms: it
meets the downlink goal, and a call's speaker runs in a process of its own, where no
busy thread of the call holds the interpreter lock the callback needs
(docs/devices.md#latency, #process).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from aivoco.audio.devices import DeviceInfo, Kind
from aivoco.errors import DeviceError


def quiet_sounddevice_deprecation() -> None:
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


@dataclass(frozen=True)
class StreamFormat:
    rate_hz: int
    channels: int

    def native(self, rate_hz: int) -> bool:
        """True if audio at `rate_hz` needs no resampling of ours."""
        return self.rate_hz == rate_hz


def _candidates(device: DeviceInfo, kind: Kind, rate_hz: int | None) -> list[StreamFormat]:
    rates = [r for r in (rate_hz, device.default_samplerate_hz) if r]
    rates = list(dict.fromkeys(rates))  # in order, once
    channels = [1]
    own = min(2, device.channels(kind))
    if own > 1:
        channels.append(own)
    return [StreamFormat(r, c) for r in rates for c in channels]


def supported_formats(
    sd: Any, device: DeviceInfo, kind: Kind, rate_hz: int | None
) -> list[StreamFormat]:
    """The formats to try, best first: `rate_hz` (the protocol's), then the device's
    default rate; mono, then the device's own channel count. Formats PortAudio says it
    cannot open are left out; if it rejects all of them, all are returned (the open
    then gives the real error)."""
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    every = _candidates(device, kind, rate_hz)
    ok = []
    for fmt in every:
        try:
            check(device=device.index, samplerate=fmt.rate_hz, channels=fmt.channels)
        except (sd.PortAudioError, ValueError):
            continue
        ok.append(fmt)
    return ok or every


def native_rates(sd: Any, device: DeviceInfo, kind: Kind, rates: Sequence[int]) -> list[int]:
    """Which of `rates` the device opens without our resampling (for `aivoco devices`)."""
    if device.channels(kind) == 0:
        return []
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    out = []
    for rate in rates:
        try:
            check(device=device.index, samplerate=rate, channels=1)
        except (sd.PortAudioError, ValueError):
            continue
        out.append(rate)
    return out


def block_frames(rate_hz: int, block_ms: float) -> int:
    return max(1, round(rate_hz * block_ms / 1000))


def open_stream(
    sd: Any,
    device: DeviceInfo,
    kind: Kind,
    callback: Callable[..., None],
    *,
    formats: Sequence[StreamFormat],
    block_ms: float,
    latency: float | str,
) -> tuple[Any, StreamFormat]:
    """Open (not start) a float32 stream in the first format that opens."""
    quiet_sounddevice_deprecation()
    cls = sd.InputStream if kind == "input" else sd.OutputStream
    last: Exception | None = None
    for fmt in formats:
        try:
            stream = cls(
                device=device.index,
                samplerate=fmt.rate_hz,
                channels=fmt.channels,
                dtype="float32",
                blocksize=block_frames(fmt.rate_hz, block_ms),
                latency=latency,
                callback=callback,
            )
        except (sd.PortAudioError, ValueError) as exc:
            last = exc
            continue
        return stream, fmt
    raise DeviceError(f"cannot open {kind} device {device.index} ({device.name}): {last}")


# -- the output latency ladder -----------------------------------------------------------
@dataclass(frozen=True)
class OutputStep:
    """One output setting: the latency asked of PortAudio, the callback period, and the
    jitter hold that goes with it (the least the buffer waits before a reply plays)."""

    latency_ms: int
    block_ms: int
    hold_ms: int = 60


# Lowest first (docs/devices.md#latency). A call's speaker runs in a process of its own
# (docs/devices.md#process), where the callback does not wait for the call's interpreter
# lock: there a 20 ms stream (10 ms blocks, measured 24-31 ms) with a 40 ms hold meets
# the 80 ms downlink goal. In the call's own process it underflowed under CPU load
# (the echo rig with both cores busy failed 6 of 40 cases against 1 of 30 from 100 ms).
# 100 ms with 10 ms blocks is what every earlier release asked for.
OUTPUT_STEPS = (
    OutputStep(20, 10, hold_ms=40),
    OutputStep(100, 10, hold_ms=60),
    OutputStep(200, 20, hold_ms=60),
)
# `--low-cpu` (docs/devices.md#low-cpu): about the Node reference client's buffering, in
# the call's own process. 50 ms blocks are 20 wake-ups a second instead of 100; 100 ms is
# what every earlier release asked for in-process (with both cores busy the echo rig
# underflowed in 1 of 30 cases there, against 6 of 40 at 20 ms), and the ladder still
# steps up to 200 ms for a machine that cannot keep it.
LOW_CPU_STEPS = (
    OutputStep(100, 50, hold_ms=100),
    OutputStep(200, 50, hold_ms=100),
)
SETTLE_MS = 250  # audio a new stream must play without an underflow to be accepted
STEP_DEADLINE_S = 1.5  # a step still underflowing this long after opening is left
OPEN_DEADLINE_S = 4.0  # a device that barely runs at all is accepted as it is
# Back down (docs/devices.md#step-down): a step left for an underflow during the call is
# tried again after this long without one; each failure doubles the wait.
RETRY_AFTER_S = 20.0
RETRY_LIMIT = 4  # trials per stream's life: a machine that cannot keep up stops paying


class Verdict(Enum):
    WAIT = "wait"
    ACCEPT = "accept"
    STEP_UP = "step up"


class Ladder:
    """Which output step to use, from what the stream did (pure: fed with counters).

    Settling: a step is accepted once it has played `settle_ms` without an underflow;
    one still underflowing `step_deadline_s` after it opened is left for the next (a
    device whose callbacks barely run is not an underflow problem: it is accepted after
    `open_deadline_s`). Live: any underflow moves one step up. The top step is kept
    whatever happens. Back down: a step left for an underflow during the call (one the
    device had played cleanly) is tried again on a second stream (`Trial`) after
    `retry_after_s` without an underflow; the wait doubles each time a trial fails or
    the lower step underflows again within it, and there are at most `retry_limit`."""

    def __init__(
        self,
        steps: Sequence[OutputStep] = OUTPUT_STEPS,
        *,
        settle_ms: float = SETTLE_MS,
        step_deadline_s: float = STEP_DEADLINE_S,
        open_deadline_s: float = OPEN_DEADLINE_S,
        retry_after_s: float = RETRY_AFTER_S,
        retry_limit: int = RETRY_LIMIT,
    ) -> None:
        if not steps:
            raise ValueError("no output steps")
        self.steps = tuple(steps)
        self.index = 0
        self.settle_ms = settle_ms
        self.step_deadline_s = step_deadline_s
        self.open_deadline_s = open_deadline_s
        self.settled = False
        self._opened_at = 0.0
        self._underflows = 0
        self._clean_from_ms = 0.0  # audio position after the last underflow
        self._troubled = False  # underflowed since this step opened
        self.history: list[tuple[OutputStep, str]] = []  # (step, why it was left)
        self.retry_limit = retry_limit
        self.trials = 0  # lower steps tried again so far
        self._wait_s = retry_after_s  # clean play before the next trial
        self._retry_at: float | None = None  # when the step below may be tried
        self._lowest_played = len(self.steps)  # lowest index accepted so far
        self._down_at = -1e9  # when the ladder last came back down

    @property
    def step(self) -> OutputStep:
        return self.steps[self.index]

    @property
    def at_top(self) -> bool:
        return self.index == len(self.steps) - 1

    def opened(self, now_s: float, played_ms: float, underflows: int) -> None:
        """A stream at `step` was just opened (counters as they are now)."""
        self.settled = False
        self._opened_at = now_s
        self._underflows = underflows
        self._clean_from_ms = played_ms
        self._troubled = False

    def observe(self, now_s: float, played_ms: float, underflows: int) -> Verdict:
        """`played_ms`: audio the stream consumed so far; `underflows`: flagged callbacks."""
        new = underflows != self._underflows
        self._underflows = underflows
        if self.settled:
            if new and not self.at_top:
                return self._up_live(now_s)
            return Verdict.WAIT
        if new:
            self._clean_from_ms = played_ms
            self._troubled = True
        if played_ms - self._clean_from_ms >= self.settle_ms:
            return self._accept()
        waited = now_s - self._opened_at
        if self._troubled and waited >= self.step_deadline_s:
            if self.at_top:
                return self._accept()
            return self._up(f"still underflowing {self.step_deadline_s:g} s after opening")
        if waited >= self.open_deadline_s:
            return self._accept()
        return Verdict.WAIT

    def _accept(self) -> Verdict:
        self.settled = True
        self._lowest_played = min(self._lowest_played, self.index)
        return Verdict.ACCEPT

    def _up(self, why: str) -> Verdict:
        self.history.append((self.step, why))
        self.index += 1
        return Verdict.STEP_UP

    def _up_live(self, now_s: float) -> Verdict:
        if now_s - self._down_at < self._wait_s:  # came down too soon: wait longer
            self._wait_s *= 2
        verdict = self._up("underflow during the call")
        self._retry_at = now_s + self._wait_s
        return verdict

    # -- back down ---------------------------------------------------------------------
    def retry_due(self, now_s: float) -> OutputStep | None:
        """The step to try again now, if one is due (the stream in use has settled)."""
        wait = self.retry_in_s(now_s)
        if not self.settled or wait is None or wait > 0:
            return None
        return self.steps[self.index - 1]

    def retry_in_s(self, now_s: float) -> float | None:
        """How long until `retry_due` may say yes (None: not while nothing changes)."""
        if self._retry_at is None or self.trials >= self.retry_limit:
            return None
        if self.index - 1 < self._lowest_played:  # nothing below that has played
            return None
        return max(0.0, self._retry_at - now_s)

    def trial(self, now_s: float, played_ms: float, underflows: int) -> Trial:
        """A second stream at the step below was just opened (its own counters)."""
        self.trials += 1
        return Trial(
            self.steps[self.index - 1], now_s, played_ms, underflows,
            settle_ms=self.settle_ms, deadline_s=self.open_deadline_s,
        )  # fmt: skip

    def trial_failed(self, now_s: float) -> None:
        self._wait_s *= 2
        self._retry_at = now_s + self._wait_s

    def came_down(self, now_s: float, underflows: int) -> None:
        """The trial's stream took over (`underflows`: the counter live play is judged
        on from now)."""
        self.history.append((self.step, f"no underflow for {self._wait_s:g} s: back down"))
        self.index -= 1
        self._underflows = underflows
        self._down_at = now_s
        self._retry_at = now_s + self._wait_s


class Trial:
    """A lower step on a second stream while the first keeps playing (make before
    break), judged on the new stream's own counters: accepted once it has played
    `settle_ms` without an underflow, failed if it has not by `deadline_s` or
    underflows after that."""

    def __init__(
        self, step: OutputStep, now_s: float, played_ms: float, underflows: int, *,
        settle_ms: float, deadline_s: float,
    ) -> None:  # fmt: skip
        self.step = step
        self.opened_at = now_s
        self.settle_ms = settle_ms
        self.deadline_s = deadline_s
        self._underflows = underflows
        self._clean_from_ms = played_ms
        self.accepted = False

    def observe(self, now_s: float, played_ms: float, underflows: int) -> Verdict:
        """ACCEPT (ready to take over), STEP_UP (failed: stay where we are) or WAIT."""
        if underflows != self._underflows:
            self._underflows = underflows
            self._clean_from_ms = played_ms
            if self.accepted:
                return Verdict.STEP_UP
        if self.accepted or played_ms - self._clean_from_ms >= self.settle_ms:
            self.accepted = True
            return Verdict.ACCEPT
        if now_s - self.opened_at >= self.deadline_s:
            return Verdict.STEP_UP
        return Verdict.WAIT
