"""`aivoco report` on real calls: the real `sts`/`call` commands against the emulator (and
a scripted server for an underrun), then the real `report` command on their files.

The calls run once per module (they take ~15 s, concurrently); each test reads their
files. The page is checked as parsed HTML and as rendered by headless Chromium.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from clirun import cli_env, json_lines, run_cli, spawn_cli
from reportcheck import assert_not_blank, has_colour, parse_page, png_pixels, screenshot
from servers import Emit, RecordingStsServer, Sleep
from tones import sine_chunk

from aivoco.emulator import Emulator, EmulatorConfig
from aivoco.emulator.assets import demo_utterance_path
from aivoco.report.layout import COLORS, timeline_size_px

KEY = "sk-report-test-5d1c9e77"
FUNCTIONS = Path(__file__).parent / "fixtures" / "functions" / "weather_tools.py"


@dataclass
class Call:
    name: str
    transcript: Path
    recording: Path
    records: list[dict[str, Any]]

    @property
    def summary(self) -> dict[str, Any]:
        return self.records[-1]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["type"] == kind]


def _speech_then_interruption(path: Path) -> Path:
    """The demo utterance, 1.2 s of silence, then its first 1.2 s again: the second part
    starts while the agent is still answering the first, so the agent is interrupted."""
    x, rate = soundfile.read(str(demo_utterance_path()), dtype="int16")
    gap = np.zeros(round(rate * 1.2), np.int16)
    soundfile.write(str(path), np.concatenate([x, gap, x[: round(rate * 1.2)]]), rate)
    return path


def _file_args(d: Path, name: str) -> list[str]:
    return [
        "--output",
        str(d / f"{name}-agent.wav"),
        "--record",
        str(d / f"{name}.wav"),
        "--transcript",
        str(d / f"{name}.jsonl"),
        "--idle-timeout",
        "1.5",
        "--plain",
    ]


def _call(d: Path, name: str) -> Call:
    transcript = d / f"{name}.jsonl"
    return Call(name, transcript, d / f"{name}.wav", json_lines(transcript.read_text()))


def _underrun_call(d: Path) -> None:
    """A scripted sts server: text echoing the key, a failing function, then a reply with
    a gap in the middle (half a second of audio, 0.7 s of nothing, more audio)."""
    reply = sine_chunk(440, 24000, 0.5, amplitude=0.3)
    audio = Emit("audio_response", {"audio_data": base64.b64encode(reply.to_bytes()).decode()})
    nope = {"function_name": "nope", "arguments": {"q": "<b>x</b>"}, "call_id": "c-9"}
    script = [
        Emit("text_response", {"text": f"<script>alert(1)</script> your key is {KEY}"}),
        Emit("function_called", nope),
        Sleep(0.3),
        audio,
        Sleep(0.7),
        audio,
    ]
    quiet = d / "quiet.wav"
    soundfile.write(str(quiet), np.zeros(3200, np.int16), 16000)

    def start(srv: RecordingStsServer, sid: str, data: object) -> list[Any]:
        return [*srv.default_start_call(sid, data), *script]

    with RecordingStsServer() as server:
        server.on("start_call", start)
        res = run_cli(
            "sts",
            "--key",
            KEY,
            "--url",
            server.url,
            "--input",
            str(quiet),
            "--functions",
            str(FUNCTIONS),
            *_file_args(d, "underrun"),
        )
    assert res.returncode == 0, res.stderr


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Call]:
    d = tmp_path_factory.mktemp("calls")
    speech = str(_speech_then_interruption(d / "speech.wav"))
    plain = EmulatorConfig(port=0, latency_ms=0)
    garbage = EmulatorConfig(port=0, latency_ms=0, garbage_every=7)
    with Emulator(plain) as emu, Emulator(garbage) as bad_emu:
        sts = spawn_cli(
            "sts",
            "--key",
            KEY,
            "--url",
            emu.sts_url,
            "--input",
            speech,
            "--functions",
            str(FUNCTIONS),
            *_file_args(d, "sts"),
        )
        call = spawn_cli(
            "call",
            "--agent",
            "agent-1",
            "--key",
            KEY,
            "--url",
            bad_emu.call_url,
            "--input",
            speech,
            *_file_args(d, "call"),
        )
        for proc in (sts, call):
            _out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
    _underrun_call(d)
    return {name: _call(d, name) for name in ("sts", "call", "underrun")}


def _report(call: Call, tmp_path: Path, *extra: str) -> tuple[str, Path]:
    out, png = tmp_path / f"{call.name}.html", tmp_path / f"{call.name}.png"
    res = run_cli(
        "report",
        str(call.transcript),
        "--recording",
        str(call.recording),
        "--out",
        str(out),
        "--png",
        str(png),
        *extra,
        env=cli_env(AIVOCO_API_KEY=KEY),
    )
    assert res.returncode == 0, res.stderr
    assert f"report written to {out}" in res.stdout
    return out.read_text(encoding="utf-8"), png


@pytest.fixture(scope="module")
def sts_report(
    calls: dict[str, Call], tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    """The sts call's report, made once for the page checks and the browser."""
    return _report(calls["sts"], tmp_path_factory.mktemp("sts-report"))


def _turn_rows(rows: list[list[str]]) -> list[list[str]]:
    """Rows of the turns table: seven cells, the first a turn number."""
    return [r for r in rows if len(r) == 7 and r[0].isdigit()]


def _check_common(call: Call, html: str, png: Path) -> None:
    page = parse_page(html)
    assert KEY not in html
    assert page.external == []  # nothing fetched: no scripts, fonts or images from outside
    assert "script" not in page.tags
    assert len(page.images) == 2 and all(
        s.startswith("data:image/png;base64,") for s in page.images
    )
    spoken = call.of_type("user_speech_end")
    numbered = [r for r in _turn_rows(page.rows) if r[0] != "0"]  # turn 0: before you spoke
    assert len(numbered) == len(spoken) > 0
    for turn in call.of_type("turn"):
        assert f"{turn['latency_ms']:.0f} ms" in page.text
    pixels = png_pixels(png)
    width, height = timeline_size_px(call.summary["duration_s"])
    assert pixels.shape[:2] == (height, width)
    assert_not_blank(pixels)
    assert has_colour(pixels, COLORS["you"]) > 0.002  # your level envelope
    assert has_colour(pixels, COLORS["agent"]) > 0.002  # the agent's


def test_sts_report_has_every_turn_function_and_figure(
    calls: dict[str, Call], sts_report: tuple[str, Path]
) -> None:
    call = calls["sts"]
    html, png = sts_report
    _check_common(call, html, png)
    page = parse_page(html)
    for text in call.of_type("agent_text"):
        assert text["text"] in page.text
    used = call.of_type("function_call")
    assert used, "the emulator calls a loaded function on each answer"
    for fn in used:
        assert f"{fn['name']}({json.dumps(fn['arguments'], ensure_ascii=False)})" in page.text
    summary = {r[0]: r[1] for r in page.rows if len(r) == 2}
    assert summary["functions"] == f"{len(used)} called, 0 failed"
    assert summary["source"] == "server totals"
    assert summary["used"] == f"{call.summary['credits_used']:.4g}"
    assert summary["ended"].startswith("idle")


def test_call_report_shows_the_barge_in_and_protocol_errors(
    calls: dict[str, Call], tmp_path: Path
) -> None:
    call = calls["call"]
    clears = call.of_type("clear")
    assert clears, "the emulator's call agent clears when interrupted"
    html, png = _report(call, tmp_path)
    _check_common(call, html, png)
    page = parse_page(html)
    summary = {r[0]: r[1] for r in page.rows if len(r) == 2}
    assert summary["barge-ins"] == str(len(clears))
    assert summary["protocol errors"] == str(len(call.of_type("protocol_error")))
    assert int(summary["protocol errors"]) > 0  # --garbage-every
    assert "barge-in: clear" in page.text
    # The events table lists each one at its time.
    events = {(r[0], r[1]) for r in page.rows if len(r) == 3}
    for clear in clears:
        assert (f"{clear['t']:.2f}", "clear") in events


def test_underrun_failed_function_and_an_echoed_key(calls: dict[str, Call], tmp_path: Path) -> None:
    call = calls["underrun"]
    assert call.summary["playback_underruns"] >= 1
    # The server echoed the key into its text: the transcript, like every sink, masks it.
    text = call.transcript.read_text()
    assert KEY not in text and "***" in text
    html, png = _report(call, tmp_path)
    assert KEY not in html and "***" in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = parse_page(html)
    summary = {r[0]: r[1] for r in page.rows if len(r) == 2}
    assert summary["underruns"] == str(call.summary["playback_underruns"])  # and when:
    underruns = call.of_type("underrun")
    assert underruns and underruns[-1]["total"] >= call.summary["playback_underruns"]
    events = {(r[0], r[1]) for r in page.rows if len(r) == 3}
    for underrun in underruns:
        assert (f"{underrun['t']:.2f}", "underrun") in events
    assert summary["functions"] == "1 called, 1 failed"
    assert 'nope({"q": "<b>x</b>"})' in page.text  # shown as text, not markup
    assert_not_blank(png_pixels(png))


def test_report_renders_in_a_real_browser(sts_report: tuple[str, Path], tmp_path: Path) -> None:
    html_text, png = sts_report
    shot = screenshot(png.with_suffix(".html"), tmp_path / "shot.png", 1400, 1800)
    pixels = png_pixels(shot)
    assert pixels.shape[:2] == (1800, 1400)
    assert_not_blank(pixels)
    # The embedded figures were decoded and drawn (the page's CSS has none of these).
    assert has_colour(pixels, COLORS["agent"]) > 0.001
    assert has_colour(pixels, COLORS["you"]) > 0.001
    assert "<img" in html_text
