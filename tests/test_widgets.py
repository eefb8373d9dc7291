"""UI widgets rendered as text: what a user sees, without a terminal."""

from __future__ import annotations

import io

from rich.console import Console, RenderableType

from aivoco.session.lifecycle import Phase
from aivoco.session.state import CallState
from aivoco.session.summary import CallSummary, CreditFigures, PlaybackFigures
from aivoco.ui.printers import JsonPrinter, PlainPrinter, describe_record
from aivoco.ui.widgets import call_view, clock, credits_panel, meter, summary_table
from aivoco.wire.driver import NetStats


def render(r: RenderableType, width: int = 100) -> str:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(r)
    return console.export_text()


def _state(has_credits: bool = True) -> CallState:
    st = CallState(
        "sts",
        "sts.example.org",
        "voice female",
        has_credits=has_credits,
        input_label="in.wav",
        output_label="speaker pulse",
    )
    st.set_phase(Phase.LIVE)
    return st


def test_clock_format() -> None:
    assert clock(0) == "00:00.0"
    assert clock(75.25) == "01:15.2"
    assert clock(3725) == "1:02:05"


def test_meter_bar_tracks_dbfs() -> None:
    full = render(meter("you", 0.0, width=20))
    half = render(meter("you", -30.0, width=20))
    silent = render(meter("agent", -96.0, width=20))
    assert full.count("█") == 20 and "0.0 dBFS" in full
    assert half.count("█") == 10 and "-30.0 dBFS" in half
    assert silent.count("█") == 0 and "silent" in silent


def test_call_view_shows_status_meters_transcript_credits_and_stats() -> None:
    st = _state()
    st.set_credits(available=100.0, cost_per_minute=2.0)
    st.add_entry("agent", "Hello there, how can I help?")
    st.add_entry("function", 'get_weather({"city": "Paris"})')
    st.add_latency(640.0)
    st.set_levels(mic_dbfs=-20.0, agent_dbfs=-6.0)
    st.set_stats(
        NetStats(messages_sent=50, bytes_sent=2048, transport="websocket"), PlaybackFigures()
    )
    text = render(call_view(st.snapshot()))
    for expected in (
        "live",
        "sts.example.org",
        "voice female",
        "Hello there, how can I help?",
        "get_weather",
        "640 ms",
        "-20.0 dBFS",
        "-6.0 dBFS",
        "available",
        "100.00",
        "websocket",
        "in.wav",
    ):
        assert expected in text, expected


def test_credits_panel_estimate_then_final() -> None:
    st = _state()
    st.set_credits(available=10.0, cost_per_minute=60.0)  # 1 credit per second
    text = render(credits_panel(st.snapshot()))
    assert "used (est.)" in text
    st.set_credits(final_used=1.25, final_remaining=8.75)
    text = render(credits_panel(st.snapshot()))
    assert "credits (final)" in text and "1.250" in text and "8.750" in text


def test_credits_panel_for_protocol_without_credits() -> None:
    text = render(credits_panel(_state(has_credits=False).snapshot()))
    assert "n/a for agent calls" in text


def summary(**changes: object) -> CallSummary:
    base: dict[str, object] = {
        "reason": "idle",
        "duration_s": 10.45,
        "turns": 2,
        "latency_last_ms": 919.4,
        "latency_mean_ms": 850.0,
        "functions_called": 0,
        "protocol_errors": 0,
        "net": NetStats(
            messages_sent=523,
            bytes_sent=478700,
            messages_received=45,
            bytes_received=237888,
            audio_ms_sent=10400,
            audio_ms_received=3710,
            transport="websocket",
        ),
        "events_dropped": 0,
        "playback": PlaybackFigures(underruns=1, prefill_ms=80.0),
        "credits": CreditFigures(0.1732, 99.8268, final=True),
    }
    return CallSummary(**{**base, **changes})  # type: ignore[arg-type]


def test_summary_table_groups_the_figures() -> None:
    text = render(summary_table(summary()))
    for expected in (
        "idle",
        "10.45 s",
        "last 919.4 ms, mean 850.0 ms over 2 turns",
        "sent 10.4 s, received 3.71 s",
        "websocket: ↑ 523 msg 467 kB, ↓ 45 msg 232 kB",
        "1 underruns",
        "pre-fill 80.0 ms",
        "used 0.1732, remaining 99.8268 (server totals)",
    ):
        assert expected in text, expected
    assert "functions" not in text  # nothing called: no row
    failed = render(summary_table(summary(reason="error", error="connection lost")))
    assert "error: connection lost" in failed
    assert "uplink dropped" not in text  # nothing dropped: no row
    backed_up = render(summary_table(summary(net=NetStats(uplink_dropped=12))))
    assert "uplink dropped" in backed_up and "12 frames" in backed_up


def test_summary_record_keeps_the_flat_keys_scripts_read() -> None:
    record = summary(recording="r.wav", recording_s=10.4).to_record()
    assert record["playback_underruns"] == 1 and record["playback_prefill_ms"] == 80.0
    assert record["audio_s_sent"] == 10.4 and record["credits_final"] is True
    assert record["recording"] == "r.wav" and "error" not in record
    assert "credits_used" not in summary(credits=None).to_record()


def test_plain_and_json_printers() -> None:
    record = {"type": "agent_text", "t": 1.5, "time": "2026-11-21T10:00:01.500+00:00", "text": "hi"}
    out = io.StringIO()
    PlainPrinter(out).on_record(record)
    assert out.getvalue() == "10:00:01.500 [00:01.5] agent: hi\n"
    out = io.StringIO()
    JsonPrinter(out).on_record(record)
    assert out.getvalue().strip().startswith('{"type": "agent_text"')
    assert describe_record({"type": "mark", "t": 0, "time": ""}) is None
    assert "stopped" in str(
        describe_record({"type": "session_ended", "message": "stopped", "total_credits_used": 1})
    )
