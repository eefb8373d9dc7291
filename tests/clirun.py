"""Run the real `aivoco` command in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from aivoco.audio.chunk import AudioChunk

CLI_TIMEOUT_S = 60


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIVOCO_")}
    env["AIVOCO_CONFIG"] = os.devnull  # no config file: the user's own never leaks in
    env["PYTHONUNBUFFERED"] = "1"
    env["COLUMNS"] = "120"
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = CLI_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aivoco", *args],
        capture_output=True,
        text=True,
        env=env or cli_env(),
        timeout=timeout,
        check=False,
    )


def spawn_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "aivoco", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or cli_env(),
    )


def file_args(tmp_path: Path) -> list[str]:
    """`--record` and `--transcript` into tmp_path (rec.wav, t.jsonl)."""
    return ["--record", str(tmp_path / "rec.wav"), "--transcript", str(tmp_path / "t.jsonl")]


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def write_tone(
    path: Path,
    freq_hz: float,
    rate_hz: int,
    seconds: float,
    amplitude: float = 0.5,
    channels: int = 1,
    silence_after_s: float = 0.0,
) -> Path:
    t = np.arange(round(rate_hz * seconds)) / rate_hz
    x = amplitude * np.sin(2 * np.pi * freq_hz * t)
    x = np.concatenate([x, np.zeros(round(rate_hz * silence_after_s))])
    data = np.repeat(x[:, None], channels, axis=1)
    soundfile.write(str(path), data, rate_hz, subtype="PCM_16")
    return path


def read_wav(path: Path) -> AudioChunk:
    data, rate = soundfile.read(str(path), dtype="int16", always_2d=True)
    return AudioChunk(data, int(rate), data.shape[1])
