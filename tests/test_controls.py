"""Call controls (mute, push-to-talk, volume), the key parser and their widgets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from clirun import cli_env, json_lines, run_cli, write_tone
from rich.console import Console

from aivoco.audio.playout import ClockPlayer
from aivoco.cli.keys import Key, KeyParser, check_push_to_talk
from aivoco.emulator import Emulator, EmulatorConfig
from aivoco.errors import UsageError
from aivoco.session.controls import CallControls, MicMode
from aivoco.session.interfaces import MarkToken
from aivoco.session.records import RecordBus
from aivoco.session.state import CallState, ControlsView, EchoView
from aivoco.session.summary import CallSummary, PlaybackFigures
from aivoco.ui.widgets import call_view, controls_line, keys_help, summary_rows
from aivoco.wire.driver import NetStats


class Records:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def on_record(self, record: dict[str, Any]) -> None:
        self.items.append(record)


def controls(push_to_talk: bool = False) -> tuple[CallControls, ClockPlayer[MarkToken], Records]:
    player: ClockPlayer[MarkToken] = ClockPlayer(16000)
    state = CallState("sts", "test", "test", has_credits=False)
    bus = RecordBus()
    records = Records()
    bus.subscribe(records)
    return CallControls(player, state, bus, push_to_talk=push_to_talk), player, records


def live(c: CallControls) -> bool:
    """c.mic_live, read afresh (an assert on the property would narrow it for mypy)."""
    return c.mic_live


def text(renderable: Any, width: int = 100) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


# -- keys ----------------------------------------------------------------------------------
def test_keys_are_mapped_and_escape_sequences_never_read_as_letters() -> None:
    parser = KeyParser()
    assert parser.feed("m+- q?o=_") == [
        Key.MUTE, Key.VOLUME_UP, Key.VOLUME_DOWN, Key.PUSH_TO_TALK, Key.HANG_UP, Key.HELP,
        Key.OPEN_MIC, Key.VOLUME_UP, Key.VOLUME_DOWN,
    ]  # fmt: skip
    # Arrows (ESC [ A), F1 (ESC O P), Ctrl-Right (ESC [ 1 ; 5 C), Alt-m (ESC m): ignored,
    # also when a read splits the sequence.
    assert parser.feed("\x1b[A\x1bOP\x1b[1;5C\x1bm") == []
    assert parser.feed("\x1b[1;") == [] and parser.feed("5Dq") == [Key.HANG_UP]
    assert parser.feed("xyz\r\n\t") == []


def test_push_to_talk_needs_keys() -> None:
    check_push_to_talk(False, False)
    check_push_to_talk(True, True)
    with pytest.raises(UsageError, match="push-to-talk needs the keys"):
        check_push_to_talk(True, False)


# -- controls ------------------------------------------------------------------------------
def test_mute_toggles_the_microphone_and_says_so() -> None:
    c, _, records = controls()
    assert live(c) and not c.muted
    assert c.toggle_mute() and not live(c)
    assert not c.toggle_mute() and live(c)
    assert [r["muted"] for r in records.items if r["type"] == "mute"] == [True, False]
    entries = [e.text for e in c.state.snapshot().transcript]
    assert entries == ["microphone muted", "microphone unmuted"]


def test_push_to_talk_cycles_and_open_mic_leaves_it() -> None:
    c, _, records = controls()
    assert c.push_to_talk() is MicMode.PTT_TALKING and live(c)
    assert c.push_to_talk() is MicMode.PTT_IDLE and not live(c)
    assert c.push_to_talk() is MicMode.PTT_TALKING and live(c)
    c.toggle_mute()
    assert not live(c)  # muted wins over talking
    c.toggle_mute()
    assert c.open_mic() is MicMode.OPEN and live(c)
    modes = [r["mode"] for r in records.items if r["type"] == "microphone"]
    assert modes == ["push-to-talk talking", "push-to-talk idle", "push-to-talk talking", "open"]
    started_closed, _, _ = controls(push_to_talk=True)
    assert started_closed.mic_mode is MicMode.PTT_IDLE and not live(started_closed)


def test_volume_steps_reach_the_player_and_stay_in_range() -> None:
    c, player, records = controls()
    assert c.step_volume(-1) == pytest.approx(0.9) and player.volume == pytest.approx(0.9)
    for _ in range(20):
        c.step_volume(-1)
    assert player.volume == 0.0
    for _ in range(30):
        c.step_volume(1)
    assert player.volume == 2.0 and c.volume == 2.0
    assert records.items[-1] == {**records.items[-1], "type": "volume", "percent": 200}
    assert c.state.snapshot().controls.volume_percent == 200


# -- widgets -------------------------------------------------------------------------------
def snapshot(controls: ControlsView, echo: EchoView) -> Any:
    state = CallState("sts", "test", "voice", has_credits=False)
    state.set_controls(controls)
    state.set_echo(echo)
    return state.snapshot()


def test_controls_line_shows_each_state() -> None:
    snap = snapshot(
        ControlsView(muted=True, keys=True, volume_percent=80),
        EchoView(mode="aec", erle_db=31.4, suppressing=True, barge_ins=2),
    )
    line = text(controls_line(snap))
    for part in ("MUTED", "echo aec", "ERLE 31 dB", "echo suppressed", "barge-ins 2"):
        assert part in line
    assert "vol 80%" in line and "? keys" in line
    ptt = snapshot(ControlsView(mic="push-to-talk idle", mic_live=False), EchoView(mode="gate"))
    line = text(controls_line(ptt))
    assert "PTT: mic closed, space to talk" in line and "echo gate" in line
    assert "ERLE" not in line and "? keys" not in line  # no key reader: no keys offered
    talking = snapshot(ControlsView(mic="push-to-talk talking"), EchoView(mode="off"))
    assert "PTT: TALKING" in text(controls_line(talking))
    fallback = snapshot(ControlsView(), EchoView(mode="gate", note="aec unavailable, ..."))
    assert "(aec unavailable)" in text(controls_line(fallback))


def test_keys_help_is_shown_on_request_and_the_view_fits_80_columns() -> None:
    snap = snapshot(ControlsView(keys=True, show_help=True), EchoView(mode="aec"))
    view = text(call_view(snap), width=80)
    assert text(keys_help()).strip() in view
    assert all(len(line) <= 80 for line in view.splitlines())
    hidden = snapshot(ControlsView(keys=True), EchoView(mode="aec"))
    assert "hang up" not in text(call_view(hidden), width=80)


def test_summary_names_the_echo_mode() -> None:
    summary = CallSummary(
        reason="hangup", duration_s=1.0, turns=0, latency_last_ms=None, latency_mean_ms=None,
        functions_called=0, protocol_errors=0, net=NetStats(), events_dropped=0,
        playback=PlaybackFigures(), echo_mode="aec", echo_erle_db=28.4, local_barge_ins=1,
    )  # fmt: skip
    assert ("echo", "aec, ERLE 28 dB, 1 barge-in") in summary_rows(summary)
    record = summary.to_record()
    assert record["echo_mode"] == "aec" and record["echo_erle_db"] == 28.4
    assert record["local_barge_ins"] == 1


# -- the options on the command line ----------------------------------------------------------
def test_echo_mode_comes_from_the_environment_and_bad_values_are_usage_errors(
    tmp_path: Path,
) -> None:
    tone = write_tone(tmp_path / "tone.wav", 440, 16000, 0.5)
    with Emulator(EmulatorConfig(port=0, latency_ms=0)) as emu:
        args = [
            "sts", "--key", "k", "--url", emu.sts_url, "--input", str(tone), "--output",
            str(tmp_path / "out.wav"), "--idle-timeout", "0.5", "--json",
        ]  # fmt: skip
        res = run_cli(*args, env=cli_env(AIVOCO_ECHO="gate"))
        assert res.returncode == 0, res.stderr
        records = json_lines(res.stdout)
        echo = next(r for r in records if r["type"] == "echo")
        assert echo["mode"] == "gate" and echo["note"] == ""
        assert records[-1]["echo_mode"] == "gate" and records[-1]["local_barge_ins"] == 0
        auto = json_lines(run_cli(*args).stdout)
        assert next(r for r in auto if r["type"] == "echo")["mode"] == "off"  # files
    bad = run_cli("sts", "--key", "k", "--echo", "loud")
    assert bad.returncode == 2 and "loud" in bad.stderr
