"""WebRTC's audio processing module (AEC3, noise suppression, high-pass) via pywebrtc-audio.

An optional dependency (`pip install 'aivoco[aec]'`), imported only when a call asks
for it. The module works in 10 ms frames; uplink frames may be any length (10-200 ms),
so frames are re-cut here and the output lags by the remainder (0 for the usual
multiples of 10 ms). The far end given with each near frame is what the speaker played
at the near frame's capture time (aivoco.audio.echo.FarEnd), so what remains for AEC3's
own delay estimator is the acoustic path (docs/echo.md#alignment).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aivoco.audio.chunk import Int16Array

FRAME_MS = 10


class EchoUnavailableError(Exception):
    """The WebRTC module cannot be used here; the message says why, for the user."""


def load_processor_class() -> Any:
    try:
        from pywebrtc_audio import AudioProcessor
    except ImportError as exc:  # missing, or a wheel that does not load here
        raise EchoUnavailableError(
            f"pywebrtc-audio is not available ({exc}); install it with pip install 'aivoco[aec]'"
        ) from exc
    return AudioProcessor


class WebRtcProcessor:
    """One AudioProcessor for the uplink: int16 near (and far) frames in, near out."""

    def __init__(
        self,
        rate_hz: int,
        *,
        echo_cancellation: bool,
        ns_level: int | None = None,
        high_pass: bool = False,
    ) -> None:
        """`ns_level`: WebRTC noise suppression 0-3 (about 6, 12, 18, 21 dB), None = off."""
        cls = load_processor_class()
        level = ns_level
        try:
            self._ap = cls(
                sample_rate=rate_hz,
                echo_cancellation=echo_cancellation,
                noise_suppression=level is not None,
                ns_level=level or 0,
                high_pass_filter=high_pass,
            )
            # One silent frame proves the module runs on this machine before the call
            # depends on it.
            probe = np.zeros(rate_hz * FRAME_MS // 1000, np.int16)
            self._ap.process(probe, probe if echo_cancellation else None)
        except Exception as exc:  # the binding raises plain RuntimeError/ValueError
            raise EchoUnavailableError(f"WebRTC audio processing failed to start: {exc}") from exc
        self.rate_hz = rate_hz
        self.echo_cancellation = echo_cancellation
        self._step = rate_hz * FRAME_MS // 1000
        self._near = np.zeros(0, np.int16)
        self._far = np.zeros(0, np.int16)
        self._out = np.zeros(0, np.int16)
        self._primed = False

    def process(self, near: Int16Array, far: Int16Array | None = None) -> Int16Array:
        """Process one uplink frame; returns as many samples as were given."""
        n = near.shape[0]
        self._near = np.concatenate([self._near, near])
        if self.echo_cancellation:
            ref = far if far is not None else np.zeros(n, np.int16)
            self._far = np.concatenate([self._far, ref])
        whole = (self._near.shape[0] // self._step) * self._step
        if whole:
            near_in, self._near = self._near[:whole], self._near[whole:]
            far_in = None
            if self.echo_cancellation:
                far_in, self._far = self._far[:whole], self._far[whole:]
            done = np.asarray(self._ap.process(near_in, far_in), dtype=np.int16)
            self._out = np.concatenate([self._out, done])
        if not self._primed and self._out.shape[0] < n:
            # Frames that are not a multiple of 10 ms: lag by the remainder, once.
            self._out = np.concatenate([np.zeros(n - self._out.shape[0], np.int16), self._out])
        self._primed = True
        out, self._out = self._out[:n], self._out[n:]
        if out.shape[0] < n:  # not reached with constant frame sizes; never send short
            out = np.concatenate([out, np.zeros(n - out.shape[0], np.int16)])
        return out
