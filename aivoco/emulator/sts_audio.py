"""What an `audio_data` event must hold (docs/protocols.md#sts-audio-data).

Form is checked strictly, as a strict server would: `audio_data` strict base64 of a
non-empty, even number of bytes (PCM16), `has_audio` a bool, `max_amplitude` a number
in 0..1. A chunk failing that is unusable (`AudioFormatError`).

The two hints are only compared with the samples, and a mismatch is a deviation, not
an error: the reference clients compute `has_audio` with different thresholds (0.01
in the terminal client, 0.001 in the browser), so only a flag neither of them could
have produced is flagged, and `max_amplitude` may be off by a little rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aivoco.audio.chunk import Int16Array, b64decode_strict, pcm16_from_bytes
from aivoco.audio.levels import FULL_SCALE
from aivoco.errors import AudioFormatError

IN_RATE_HZ = 16_000  # audio_data: PCM16 16 kHz mono
OUT_RATE_HZ = 24_000  # audio_response: PCM16 24 kHz mono
_HAS_AUDIO_MIN = 0.001
_HAS_AUDIO_MAX = 0.01
_AMPLITUDE_TOLERANCE = 0.02


def check_audio_data(data: Any) -> tuple[Int16Array, list[tuple[str, str]]]:
    """The chunk's samples, and (kind, detail) for each hint that disagrees with them."""
    if not isinstance(data, dict):
        raise AudioFormatError(f"payload must be an object, got {type(data).__name__}")
    audio = data.get("audio_data")
    if not isinstance(audio, str):
        raise AudioFormatError("audio_data must be a base64 string")
    raw = b64decode_strict(audio)
    if not raw:
        raise AudioFormatError("audio_data is empty")
    pcm = pcm16_from_bytes(raw)
    has_audio, amplitude = data.get("has_audio"), data.get("max_amplitude")
    if not isinstance(has_audio, bool):
        raise AudioFormatError("has_audio must be a boolean")
    if isinstance(amplitude, bool) or not isinstance(amplitude, (int, float)):
        raise AudioFormatError("max_amplitude must be a number")
    if not 0.0 <= amplitude <= 1.0:
        raise AudioFormatError(f"max_amplitude must be within 0..1, got {amplitude}")
    peak = float(np.abs(pcm.astype(np.int32)).max()) / FULL_SCALE
    deviations: list[tuple[str, str]] = []
    if abs(peak - amplitude) > _AMPLITUDE_TOLERANCE:
        deviations.append(
            ("max_amplitude", f"says {amplitude:.3f}, the samples peak at {peak:.3f}")
        )
    if (has_audio and peak <= _HAS_AUDIO_MIN) or (not has_audio and peak > _HAS_AUDIO_MAX):
        deviations.append(("has_audio", f"says {has_audio}, peak is {peak:.4f}"))
    return pcm, deviations
