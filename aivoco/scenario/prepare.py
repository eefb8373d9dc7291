"""A scenario's audio, ready to send: every turn cut into uplink frames at the wire's rate.

Prepared once per scenario and protocol, before any call, and shared by all its runs
(the arrays are read-only): `--repeat 100 --concurrency 50` synthesises and decodes
each line once. TTS and decoding failures are usage problems, reported at once with the
turn's file and line, like the parser's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.files import read_file
from aivoco.audio.levels import HAS_AUDIO_PEAK_THRESHOLD, peak
from aivoco.errors import AivocoError
from aivoco.scenario import tts
from aivoco.scenario._yaml import Problem, ScenarioFileError
from aivoco.scenario.model import Scenario, Turn, TurnKind
from aivoco.session.interfaces import FunctionRunner
from aivoco.wire.driver import ProtocolName

UPLINK_RATE_HZ = {ProtocolName.STS: 16000, ProtocolName.CALL: 8000}


@dataclass(frozen=True)
class TurnAudio:
    turn: Turn
    frames: tuple[AudioChunk, ...]
    # Frames up to and including the last one with audio (`has_audio`, the session's own
    # threshold): "the end of our speech" is when that frame went out. 0 = none voiced.
    voiced_frames: int

    @property
    def seconds(self) -> float:
        return sum(f.duration_ms for f in self.frames) / 1000


@dataclass(frozen=True)
class PreparedScenario:
    scenario: Scenario
    rate_hz: int
    frame_ms: int
    turns: tuple[TurnAudio, ...]
    functions: FunctionRunner | None

    @property
    def silence(self) -> AudioChunk:
        return _silence(self.rate_hz * self.frame_ms // 1000, self.rate_hz)


def prepare_all(scenarios: list[Scenario], frame_ms: int = 20) -> list[PreparedScenario]:
    problems: list[Problem] = []
    prepared = [_prepare(s, frame_ms, problems) for s in scenarios]
    if problems:
        raise ScenarioFileError(problems)
    return [p for p in prepared if p is not None]


def _prepare(scenario: Scenario, frame_ms: int, problems: list[Problem]) -> PreparedScenario | None:
    rate = UPLINK_RATE_HZ[scenario.protocol]
    turns = []
    for turn in scenario.turns:
        try:
            turns.append(turn_audio(scenario, turn, rate, frame_ms))
        except AivocoError as exc:
            key = f"turns[{turn.index}].{turn.kind.value}"
            problems.append(Problem(scenario.path, turn.line, key, str(exc)))
    functions = None
    if scenario.functions is not None:
        from aivoco.session.functions import load_functions

        try:
            functions = load_functions(scenario.functions)
        except AivocoError as exc:
            problems.append(Problem(scenario.path, 0, "functions", str(exc)))
    if len(turns) != len(scenario.turns):
        return None
    return PreparedScenario(scenario, rate, frame_ms, tuple(turns), functions)


def turn_audio(scenario: Scenario, turn: Turn, rate_hz: int, frame_ms: int) -> TurnAudio:
    frame = rate_hz * frame_ms // 1000
    if turn.kind is TurnKind.SILENCE:
        count = max(1, round((turn.seconds or 0) * 1000 / frame_ms))
        return TurnAudio(turn, (_silence(frame, rate_hz),) * count, 0)
    path: Path
    if turn.kind is TurnKind.SAY:
        path = tts.render(turn.text or "", scenario.tts_voice, scenario.tts)
    else:
        assert turn.path is not None
        path = turn.path
    samples = read_file(path, rate_hz).mono_samples()
    count = max(1, -(-samples.size // frame))
    padded = np.zeros(count * frame, np.int16)
    padded[: samples.size] = samples
    padded.flags.writeable = False  # shared by every run of the scenario
    frames = tuple(AudioChunk(padded[i * frame : (i + 1) * frame], rate_hz) for i in range(count))
    voiced = [i for i, f in enumerate(frames) if peak(f) > HAS_AUDIO_PEAK_THRESHOLD]
    return TurnAudio(turn, frames, voiced[-1] + 1 if voiced else 0)


def _silence(frames: int, rate_hz: int) -> AudioChunk:
    return AudioChunk(np.zeros(frames, np.int16), rate_hz)
