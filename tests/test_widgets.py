"""UI widgets rendered as text: what a user sees, without a terminal."""

from __future__ import annotations

import io
import json
import os
import threading
from typing import Any

import pytest
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
    assert "agent calls" in text and "not billed here" in text


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
        "1 underrun,",
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


def printed(printer: PlainPrinter | JsonPrinter, *records: dict[str, Any]) -> None:
    """Records through a printer, written out (its own thread writes them)."""
    for record in records:
        printer.on_record(record)
    printer.close()


def test_plain_and_json_printers() -> None:
    record = {"type": "agent_text", "t": 1.5, "time": "2026-11-21T10:00:01.500+00:00", "text": "hi"}
    out = io.StringIO()
    printed(PlainPrinter(out), record)
    assert out.getvalue() == "10:00:01.500 [00:01.5] agent: hi\n"
    out = io.StringIO()
    printed(JsonPrinter(out), record)
    assert out.getvalue().strip().startswith('{"type": "agent_text"')
    assert describe_record({"type": "mark", "t": 0, "time": ""}) is None
    underrun = {"type": "underrun", "count": 1, "total": 2, "prefill_ms": 80.0}
    assert describe_record(underrun) == "playback ran dry (2 in total); pre-fill now 80.0 ms"
    assert "stopped" in str(
        describe_record({"type": "session_ended", "message": "stopped", "total_credits_used": 1})
    )


# -- the view fits its terminal (issue: the first hour, items 6 and 7) -----------------
def _lines(r: RenderableType, width: int) -> list[str]:
    return render(r, width).rstrip("\n").split("\n")


def _busy_state(protocol: str = "sts", label: str = "voice female") -> CallState:
    endpoint = "127.0.0.1:11002" if protocol == "sts" else "127.0.0.1:11002 agent demo"
    st = CallState(protocol, endpoint, label, has_credits=protocol == "sts")
    st.set_phase(Phase.LIVE)
    for i in range(30):
        st.add_entry("you", f"spoke {i}.0 s")
        st.add_entry("agent", f"answer {i}: " + "a fairly long sentence of agent text " * 3)
    st.add_entry("info", "the newest entry")
    return st


@pytest.mark.parametrize(("width", "height"), [(80, 24), (120, 40), (80, 12), (60, 10)])
def test_the_view_fits_the_terminal_and_keeps_the_newest_line(width: int, height: int) -> None:
    lines = _lines(call_view(_busy_state().snapshot(), width, height), width)
    assert len(lines) <= height - 1
    assert all(len(line) <= width for line in lines)
    assert "the newest entry" in lines[-2]  # the last line inside the transcript panel
    assert not any(line.strip() == "..." for line in lines)
    assert "live" in lines[0]


def test_agent_text_wraps_with_a_hanging_indent() -> None:
    lines = _lines(call_view(_busy_state().snapshot(), 80, 24), 80)
    first = next(i for i, line in enumerate(lines) if "answer 29:" in line)
    text_column = lines[first].index("answer 29:")
    continuation = lines[first + 1]
    assert continuation[:text_column].strip("│ ") == ""  # indented under the text
    assert continuation[text_column] != " "


def test_the_header_names_the_agent_once_on_one_line() -> None:
    st = _busy_state("call", "agent demo")
    lines = _lines(call_view(st.snapshot(), 80, 24), 80)
    assert lines[0].count("agent demo") == 1
    assert lines[1].startswith("in:")  # the header did not wrap onto a second line


def test_figures_keep_their_columns_as_values_change() -> None:
    small = _state()
    small.set_credits(available=9.5, cost_per_minute=1.0)
    small.add_latency(5.0)
    small.set_stats(NetStats(bytes_sent=10), PlaybackFigures(buffered_ms=0))
    big = _state()
    big.set_credits(available=99_999.25, cost_per_minute=12.5)
    big.add_latency(12_345.0)
    big.set_stats(NetStats(bytes_sent=10**9), PlaybackFigures(buffered_ms=2400, underruns=12))
    a = _lines(call_view(small.snapshot(), 80, 24), 80)
    b = _lines(call_view(big.snapshot(), 80, 24), 80)
    borders = [[i for i, c in enumerate(line) if c in "│╭╮╰╯"] for line in a]
    assert borders == [[i for i, c in enumerate(line) if c in "│╭╮╰╯"] for line in b]


def test_server_text_is_shown_never_obeyed_in_the_view_and_summary() -> None:
    st = _state()
    st.add_entry("agent", "\x1b[31mred\x1b[0m [bold]loud[/bold] \u202eevil \x07 \ud83d")
    text = render(call_view(st.snapshot()))
    assert "\\x1b[31mred" in text and "[bold]loud[/bold]" in text
    assert "\\u202e" in text and "\\x07" in text and "\\ud83d" in text
    assert "\x1b" not in text and "\u202e" not in text
    table = render(summary_table(summary(reason="error", error="[red]x[/red] \x1b[2J")))
    assert "[red]x[/red] \\x1b[2J" in table and "\x1b" not in table


def test_plain_and_json_lines_survive_a_lone_surrogate() -> None:
    record = {"type": "agent_text", "t": 1.0, "time": "2026-11-21T10:00:01.000+00:00"}
    record["text"] = "a \ud83d b \x1b[2J"
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8")
    printed(JsonPrinter(stream), record)
    line = raw.getvalue().decode("utf-8")  # valid UTF-8
    assert json.loads(line)["text"] == record["text"]  # intact, as JSON escapes
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8")
    printed(PlainPrinter(stream), record)
    shown = raw.getvalue().decode("utf-8")
    assert "\\ud83d" in shown and "\\x1b[2J" in shown and "\x1b" not in shown


def test_plain_lines_say_it_once_and_count_right() -> None:
    report = {"type": "function_report", "kind": "result", "name": "f", "detail": {"a": 1}}
    assert describe_record(report) == "server: received the result of f"
    billed = {"type": "function_report", "kind": "billed", "name": "f", "detail": {"u": 0.5}}
    assert describe_record(billed) == 'server: function f billed: {"u": 0.5}'
    ended = {"type": "session_ended", "message": "Session stopped by user", "hangup_reason": "idle"}
    assert describe_record(ended) == "session ended: idle (server: Session stopped by user)"
    one = render(summary_table(summary(turns=1, playback=PlaybackFigures(underruns=1))))
    assert "over 1 turn" in one and "1 underrun," in one


def test_a_printer_never_blocks_its_caller_and_bounds_what_waits() -> None:
    from aivoco.ui.printers import PRINT_QUEUE_RECORDS

    read_fd, write_fd = os.pipe()  # nobody reads it yet: its buffer fills, then writes block
    stream = os.fdopen(write_fd, "w", encoding="utf-8")
    printer = JsonPrinter(stream)
    total = PRINT_QUEUE_RECORDS + 5000
    for i in range(total):  # returns at once although the pipe is full
        printer.on_record({"type": "agent_text", "t": 0.0, "time": "", "text": f"{i:06d}"})
    dropped = printer.dropped
    assert 0 < dropped <= 5000  # the pipe and the writer took some before the queue filled
    chunks: list[bytes] = []
    reader = threading.Thread(
        target=lambda: chunks.extend(iter(lambda: os.read(read_fd, 65536), b""))
    )
    reader.start()
    printer.close()
    stream.close()
    reader.join(10)
    os.close(read_fd)
    lines = b"".join(chunks).decode().splitlines()
    assert len(lines) == total - dropped  # every record queued was written
    texts = [json.loads(line)["text"] for line in lines]
    assert texts == sorted(texts) and texts[0] == "000000"  # in order, the oldest kept
