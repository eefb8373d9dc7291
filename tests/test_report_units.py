"""`aivoco.report` piece by piece: transcript reading, the model, envelopes, layout, the
page's escaping and redaction, and the command's answers to bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from clirun import cli_env, run_cli
from reportcheck import parse_page, png_pixels

from aivoco.cli.errors import ExitCode
from aivoco.errors import AudioFileError, UsageError
from aivoco.redact import clear_secrets, register_secret
from aivoco.report import (
    INSTALL_HINT,
    ReportDependencyError,
    ReportError,
    render_report,
    write_report,
    write_report_from_records,
)
from aivoco.report import figures as report_figures
from aivoco.report.build import HANDLERS, build_model
from aivoco.report.layout import rows_for, tick_step, timeline_size_px
from aivoco.report.levels import RecordingMismatchError, read_levels, reduce_max, segments
from aivoco.report.model import percentile
from aivoco.report.transcript import EmptyTranscriptError, load_transcript, split_calls


def rec(kind: str, t: float, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "t": t, "time": "2026-01-01T10:00:00.000+00:00", **fields}


# One short sts call, as the session writes it (field for field).
CALL = [
    rec("connecting", 0.0, endpoint="127.0.0.1:1", protocol="sts"),
    rec("credits", 0.001, credits=100.0),
    rec("ready", 0.001, message="ready", credits_available=100.0, cost_per_minute=1.0),
    rec("user_speech_end", 4.06, duration_s=3.74),
    rec("function_call", 4.42, call_id="c1", name="local_time", arguments={"city": "Paris"}),
    rec("function_result", 4.43, call_id="c1", name="local_time", ok=True, result={"h": 13}),
    rec("agent_text", 4.46, text="It is 13:00 in Paris."),
    rec("turn", 4.46, latency_ms=700.0),
    rec("clear", 5.5, cleared_ms=42.0),
    rec("user_speech_end", 7.0, duration_s=1.0),
    rec("turn", 8.2, latency_ms=1500.0),
    rec("hangup", 10.0, reason="idle"),
    rec("session_ended", 10.01, reason="stopped", total_credits_used=0.17, remaining_credits=99.83),
    rec("summary", 10.05, reason="idle", duration_s=10.05, turns=2, playback_underruns=0),
]


def write_jsonl(path: Path, records: list[dict[str, Any]], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)
    return path


def stereo_wav(path: Path, seconds: float, rate: int = 24000, channels: int = 2) -> Path:
    """A -9 dBFS tone on the left for the first half, the agent on the right after."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    x = np.zeros((n, channels))
    x[: n // 2, 0] = 0.5 * np.sin(2 * np.pi * 300 * t[: n // 2])
    if channels > 1:
        x[n // 2 :, 1] = 0.5 * np.sin(2 * np.pi * 500 * t[n // 2 :])
    soundfile.write(str(path), x, rate, subtype="PCM_16")
    return path


@pytest.fixture(autouse=True)
def _no_secrets() -> Iterator[None]:
    clear_secrets()
    yield
    clear_secrets()


# -- the transcript ----------------------------------------------------------------------
def test_a_line_cut_off_mid_write_is_skipped_and_named(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", CALL[:5], tail='{"type": "agent_te')
    t = load_transcript(path)
    assert [r["type"] for r in t.records] == [r["type"] for r in CALL[:5]]
    assert len(t.problems) == 1 and "line 6" in t.problems[0] and "cut off" in t.problems[0]


def test_files_that_are_not_transcripts_are_refused_clearly(tmp_path: Path) -> None:
    other = write_jsonl(tmp_path / "other.jsonl", [{"event": "start"}, {"type": "x"}])
    with pytest.raises(AudioFileError, match="not an aivoco transcript: none of its 2"):
        load_transcript(other)
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(AudioFileError, match="not an aivoco transcript"):
        load_transcript(binary)
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(EmptyTranscriptError, match="empty"):
        load_transcript(tmp_path / "empty.jsonl")
    with pytest.raises(AudioFileError, match="cannot read transcript"):
        load_transcript(tmp_path / "missing.jsonl")


def test_appended_calls_are_told_apart(tmp_path: Path) -> None:
    second = [dict(r, time="2026-01-01T11:00:00.000+00:00") for r in CALL[:4]]
    crashed = CALL[:6]  # no summary: the next call is found by its clock restarting
    path = write_jsonl(tmp_path / "t.jsonl", [*crashed, *CALL, *second])
    assert [len(c) for c in split_calls(load_transcript(path, 1).records)] == [len(crashed)]
    t = load_transcript(path)
    assert (t.calls, t.call_index, len(t.records)) == (3, 3, 4)
    assert "holds 3 calls" in t.problems[0] and "11:00:00" in t.problems[0]
    assert len(load_transcript(path, 2).records) == len(CALL)
    with pytest.raises(UsageError, match="holds 3 call"):
        load_transcript(path, 4)


# -- the model -----------------------------------------------------------------------------
def test_records_become_turns_with_speech_latency_text_and_functions() -> None:
    m = build_model(CALL)
    assert [t.index for t in m.turns] == [1, 2]
    first, second = m.turns
    assert first.speech_end == pytest.approx(3.76) and first.speech_start == pytest.approx(0.02)
    assert (first.reply_t, first.latency_ms, first.texts) == (
        4.46,
        700.0,
        ["It is 13:00 in Paris."],
    )
    assert [(f.name, f.ok, f.result) for f in first.functions] == [("local_time", True, {"h": 13})]
    assert first.notes and "42 ms" in first.notes[0]
    assert second.latency_ms == 1500.0 and second.texts == []
    assert m.latencies_ms == [700.0, 1500.0]
    assert (m.credits.available, m.credits.cost_per_minute) == (100.0, 1.0)
    assert (m.credits.used, m.credits.remaining, m.credits.final) == (0.17, 99.83, True)
    assert (m.end_reason, m.duration_s, m.protocol) == ("idle", 10.05, "sts")
    assert m.counts["user_speech_end"] == 2 and not m.unknown


def test_unknown_types_and_missing_fields_never_break_the_model() -> None:
    records = [
        {"type": "ready"},  # no t, no time, no fields
        rec("future_thing", 1.0, detail={"a": 1}),
        rec("turn", 2.0),  # an answer with no latency and no speech before it
        rec("function_result", 2.5, name="ghost", ok=False, result={"error": "x"}),
        {"type": "user_speech_end", "t": "soon"},
        rec("summary", 3.0, duration_s="long"),
    ]
    m = build_model(records)
    assert m.unknown == {"future_thing": 1}
    assert [mk.lane for mk in m.markers if mk.kind == "future_thing"] == ["other"]
    assert m.turns[0].index == 0 and m.turns[0].reply_t == 2.0  # before anyone spoke
    assert m.turns[0].functions[0].ok is False  # a result whose call was lost is kept
    assert m.turns[1].speech_s is None and m.duration_s == 3.0


def test_non_finite_numbers_and_absurd_durations_are_survived(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"type": "user_speech_end", "t": 1.0, "duration_s": NaN}\n'
        '{"type": "turn", "t": NaN, "latency_ms": Infinity}\n'
        '{"type": "summary", "t": 2.0, "duration_s": 1e12}\n'
    )
    m = build_model(load_transcript(path).records)
    assert m.turns[0].speech_s is None and m.turns[0].latency_ms is None
    assert m.turns[0].reply_t == 1.0  # no usable t: placed where the previous record was
    result = write_report(path, None, tmp_path / "r.html", tmp_path / "r.png")
    assert png_pixels(tmp_path / "r.png").shape[:2] == timeline_size_px(1e12)[::-1]
    assert tick_step(rows_for(1e12).span_s) >= rows_for(1e12).span_s / 12
    assert result.duration_s == 1e12


def test_records_in_flight_elsewhere_already_have_a_place() -> None:
    records = [
        rec("user_speech_end", 1.3, duration_s=1.0),
        rec("turn", 2.0, latency_ms=700.0, first_byte_ms=450.0, first_sound_ms=760.0),
        rec("barge_in", 3.0, cleared_ms=80.0),
        rec("underrun", 3.5, gap_ms=40.0),
        rec("output_step", 3.6, step_ms=100, previous_ms=20, output_latency_ms=128.9),
        rec("reconnecting", 4.0, attempt=1),
        rec("reconnected", 5.0),
        rec("reconnecting", 6.0, attempt=2),
        rec("error", 7.0, message="connection lost", exit_code=5),
    ]
    m = build_model(records)
    assert m.turns[0].figures == {"first_byte_ms": 450.0, "first_sound_ms": 760.0}
    assert [(mk.kind, mk.lane, mk.severity) for mk in m.markers if mk.lane != "connection"] == [
        ("barge_in", "playback", "warn"),
        ("underrun", "problems", "warn"),
        ("output_step", "playback", "warn"),
        ("error", "problems", "error"),
    ]
    assert [(s.start, s.end) for s in m.spans] == [(4.0, 5.0), (6.0, None)]
    assert (m.exit_code, m.errors) == (5, ["connection lost"])
    assert not m.unknown and {"barge_in", "underrun", "reconnecting"} <= set(HANDLERS)


def test_percentiles_match_numpy() -> None:
    values = [120.0, 700.0, 340.0, 1500.0, 90.0, 610.0]
    for q in (0, 50, 95, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert percentile([], 50) is None


# -- envelopes and layout --------------------------------------------------------------------
def test_envelopes_are_exact_per_window_across_block_boundaries(tmp_path: Path) -> None:
    path = stereo_wav(tmp_path / "r.wav", 100.37, rate=8000)  # several blocks, a partial tail
    levels = read_levels(path)
    data, _ = soundfile.read(str(path), dtype="int16")
    x = data.astype(np.float64) / 32768
    w = 160
    n = len(x) // w * w
    expected = 10 * np.log10(np.maximum((x[:n] ** 2).reshape(-1, w, 2).mean(axis=1), 1e-10))
    assert len(levels.user_db) == -(-len(x) // w)
    np.testing.assert_allclose(
        levels.user_db[: n // w], np.maximum(expected[:, 0], -100), atol=1e-3
    )
    assert levels.user_db[10] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.05)
    assert levels.agent_db[10] == -100.0  # digital silence, floored
    assert segments(levels.agent_db, levels.window_s) == [pytest.approx((50.18, 100.38), abs=0.03)]


def test_a_recording_that_is_not_ours_is_named(tmp_path: Path) -> None:
    with pytest.raises(RecordingMismatchError, match=r"1 channel.*--output file"):
        read_levels(stereo_wav(tmp_path / "mono.wav", 1.0, channels=1))
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(AudioFileError, match="cannot read recording"):
        read_levels(tmp_path / "text.wav")


def test_segments_bridge_short_gaps_and_drop_blips() -> None:
    db = np.full(200, -100.0)
    db[10:40] = -20  # 0.2-0.8 s
    db[50:60] = -20  # 0.2 s later: bridged
    db[120:122] = -20  # 40 ms: a blip
    assert segments(db, 0.02) == [pytest.approx((0.2, 1.2))]


def test_max_pooling_keeps_short_bursts() -> None:
    values = np.full(10_000, -100.0)
    values[5_001] = -3.0
    pooled, factor = reduce_max(values, 1000)
    assert factor == 10 and len(pooled) == 1000 and pooled.max() == -3.0


def test_rows_keep_one_scale_and_the_png_size_follows() -> None:
    assert (rows_for(10).count, rows_for(10).span_s) == (1, 10)
    assert (rows_for(0).span_s, rows_for(600).span_s, rows_for(600).count) == (1.0, 60.0, 10)
    assert (rows_for(3600).span_s, rows_for(3600).count) == (300.0, 12)
    assert rows_for(5 * 3600).count <= 12
    assert timeline_size_px(10) == (1600, 280)
    assert timeline_size_px(3600) == (1600, 50 + 12 * 230)


# -- the page --------------------------------------------------------------------------------
def test_markup_and_secrets_from_the_transcript_are_neutralised(tmp_path: Path) -> None:
    key = "sk-live-0123456789abcdef"
    register_secret(key)
    evil = '<img src=x onerror=alert(1)><script>alert("k")</script>'
    records = [
        rec("connecting", 0.0, endpoint=f"wss://h/ws/{key}/agent", protocol="call"),
        rec("user_speech_end", 1.3, duration_s=1.0),
        rec("agent_text", 2.0, text=f"{evil} your key is {key}"),
        rec("function_call", 2.1, call_id="c", name=f"f{evil}", arguments={"k": key}),
        rec("function_result", 2.2, call_id="c", name="f", ok=True, result=evil),
        rec("turn", 2.0, latency_ms=700.0),
        rec("notice", 2.5, message="$x^2$ is not math"),  # no mathtext in the figure
        rec("summary", 3.0, reason=evil, duration_s=3.0, error=key, transport=evil),
    ]
    path = write_jsonl(tmp_path / "t.jsonl", records)
    result = write_report(path, None, tmp_path / "r.html", tmp_path / "r.png")
    html = result.html_path.read_text()
    assert key not in html and "<script" not in html and "<img src=x" not in html
    page = parse_page(html)
    assert page.tags.count("img") == 2 and page.external == []
    assert "your key is ***" in page.text and evil in page.text  # shown, as text
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert png_pixels(tmp_path / "r.png").shape[:2] == (280, 1600)


def test_an_empty_call_still_gets_a_page(tmp_path: Path) -> None:
    records = [
        rec("connecting", 0.0, endpoint="x", protocol="sts"),
        rec("error", 0.2, message="invalid API key", exit_code=3),
        rec("summary", 0.25, reason="error", duration_s=0.25, error="invalid API key"),
    ]
    result = write_report(write_jsonl(tmp_path / "t.jsonl", records), None, tmp_path / "r.html")
    page = parse_page(result.html_path.read_text())
    assert "No turns" in page.text and "invalid API key" in page.text
    assert len(page.images) == 1  # the timeline; no latency chart without an answer
    assert any("nobody spoke" in w for w in result.warnings)


def test_write_report_from_records_and_a_recording_that_does_not_match(tmp_path: Path) -> None:
    wav = stereo_wav(tmp_path / "r.wav", 30.0)
    result = write_report_from_records(CALL, wav, tmp_path / "r.html")
    assert result.recording_path == wav and (result.turns, result.answered) == (2, 2)
    assert any("30.0 s long but this call lasted 10.1 s" in w for w in result.warnings)
    mono = stereo_wav(tmp_path / "m.wav", 10.0, channels=1)
    result = write_report_from_records(CALL, mono, tmp_path / "m.html")
    assert result.recording_path is None and any("1 channel" in w for w in result.warnings)


def test_write_report_raises_only_aivoco_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", CALL)
    with pytest.raises(AudioFileError, match="cannot write report"):
        write_report(path, None, tmp_path / "no" / "r.html")
    with pytest.raises(UsageError, match="is an input"):
        write_report(path, None, path)

    def broken(*args: object) -> bytes:
        raise ValueError("a bug")

    monkeypatch.setattr(report_figures, "timeline_png", broken)
    with pytest.raises(ReportError, match="ValueError: a bug") as info:
        write_report(path, None, tmp_path / "r.html")
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(ValueError):  # the command's variant lets a bug show as one
        render_report(path, None, tmp_path / "r.html")


def test_without_matplotlib_the_one_line_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ReportDependencyError, match=r"pip install 'aivoco\[report\]'"):
        write_report(write_jsonl(tmp_path / "t.jsonl", CALL), None, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()
    assert INSTALL_HINT == "pip install 'aivoco[report]'"


# -- the command -------------------------------------------------------------------------------
def test_command_answers_bad_input_with_messages_and_exit_codes(tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", CALL)
    other = write_jsonl(tmp_path / "other.jsonl", [{"event": "x"}])
    (tmp_path / "empty.jsonl").write_text("")
    cases = [
        (["missing.jsonl"], ExitCode.AUDIO_FILE, "transcript not found"),
        ([str(other)], ExitCode.AUDIO_FILE, "not an aivoco transcript"),
        ([str(tmp_path / "empty.jsonl")], ExitCode.AUDIO_FILE, "is empty"),
        ([str(good), "--recording", "nope.wav"], ExitCode.AUDIO_FILE, "recording not found"),
        ([str(good), "--call", "2"], ExitCode.USAGE, "holds 1 call"),
        ([str(good), "--out", str(good)], ExitCode.USAGE, "is an input"),
    ]
    for args, code, message in cases:
        res = run_cli("report", *args)
        assert res.returncode == code, (args, res.stderr)
        assert message in res.stderr and "Traceback" not in res.stderr, res.stderr
    cut = write_jsonl(tmp_path / "cut.jsonl", CALL[:8], tail='{"type": "cle')
    res = run_cli("report", str(cut))
    assert res.returncode == 0, res.stderr
    assert "warning: skipped 1 line" in res.stderr
    assert (tmp_path / "cut.html").exists() and "report written to" in res.stdout


def test_command_without_matplotlib_says_how_to_install(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", CALL)
    code = (
        "import sys; sys.modules['matplotlib'] = None; "
        "from aivoco.cli.app import main; sys.argv = ['aivoco', 'report', sys.argv[1]]; main()"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
        check=False,
    )
    assert res.returncode == ExitCode.USAGE, res.stderr
    assert "pip install 'aivoco[report]'" in res.stderr and "Traceback" not in res.stderr


def test_the_cli_does_not_import_the_report_stack_at_start() -> None:
    code = (
        "import sys, aivoco.cli.app; "
        "print(sorted(m for m in sys.modules if m.startswith(('matplotlib', 'aivoco.report'))))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert res.stdout.strip() == "[]"
