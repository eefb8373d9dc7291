"""The live view's drawing, as text: what it writes to the terminal frame by frame.

Read back through pyte (a VT100 emulator): after every update the screen shows exactly
the frame a fresh drawing would show, at any size and after a resize. Counted from the
output: an idle call redraws only its clock, a meter that moved redraws only its line,
a busy call writes a bounded number of bytes a second (Rich's `Live` wrote every line of
the view ten times a second: 25-39 kB/s, bench/RESULTS.md).
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
from collections.abc import Callable
from pathlib import Path

import pyte
import pytest
from clirun import cli_env
from ptyrun import run_in_pty, seen
from rich.console import Console
from rich.text import Text

from aivoco.session.lifecycle import Phase
from aivoco.session.state import CallState, ControlsView, Credits, Entry, Snapshot
from aivoco.session.summary import PlaybackFigures
from aivoco.ui.frame import TICKING_S, view_frame
from aivoco.ui.live import FRAME_S, REPAINT_S, LiveView
from aivoco.ui.screen import SHOW_CURSOR, Screen
from aivoco.wire.driver import NetStats

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Held:
    """The state as the view reads it (`snapshot()`), with a snapshot the test sets."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.fail_after: int | None = None

    def snapshot(self) -> Snapshot:
        if self.fail_after is not None:
            self.fail_after -= 1
            if self.fail_after < 0:
                raise RuntimeError("a bug while drawing")
        return self.snap

    def change(self, **changes: object) -> None:
        self.snap = dataclasses.replace(self.snap, **changes)  # type: ignore[arg-type]


def first_snapshot(protocol: str = "sts", entries: int = 12) -> Snapshot:
    st = CallState(
        protocol,
        "127.0.0.1:9 agent a" if protocol == "call" else "127.0.0.1:9",
        "voice female",
        has_credits=protocol == "sts",
        input_label="in.wav",
        output_label="out.wav",
    )
    st.set_phase(Phase.LIVE)
    st.set_stats(NetStats(bytes_sent=4096, transport="websocket"), PlaybackFigures())
    for i in range(entries):
        st.add_entry("agent" if i % 2 else "you", f"line {i} " + "with some words " * (i % 4))
    return dataclasses.replace(st.snapshot(), elapsed_s=10.0)


def console(width: int, height: int) -> Console:
    return Console(
        file=io.StringIO(), width=width, height=height, force_terminal=True, color_system="256"
    )


def view(snap: Snapshot, width: int = 80, height: int = 24) -> tuple[LiveView, Held]:
    held = Held(snap)
    return LiveView(held, console(width, height)), held  # type: ignore[arg-type]


def written(out: str) -> list[str]:
    """The lines an update wrote (each starts at `\\r`), without their escape codes."""
    return [_ANSI.sub("", part).rstrip() for part in out.split("\r")[1:]]


def expected(snap: Snapshot, width: int, height: int) -> list[str]:
    return [line.plain.rstrip() for line in view_frame(snap, width, height)]


class Terminal:
    """A pyte screen fed with what the view writes."""

    def __init__(self, width: int, height: int) -> None:
        self.screen = pyte.Screen(width, height)
        self.stream = pyte.Stream(self.screen)

    def feed(self, out: str) -> None:
        self.stream.feed(out)

    def top(self, rows: int) -> list[str]:
        return [line.rstrip() for line in self.screen.display[:rows]]


# -- what reaches the terminal -------------------------------------------------------------
@pytest.mark.parametrize(("width", "height"), [(80, 24), (120, 40), (60, 12), (40, 5)])
def test_every_update_leaves_the_screen_as_a_fresh_frame(width: int, height: int) -> None:
    live, held = view(first_snapshot(), width, height)
    term = Terminal(width, height)
    steps: list[Callable[[], None]] = [
        lambda: held.change(mic_dbfs=-20.0, user_speaking=True),
        lambda: held.change(agent_dbfs=-3.5, mic_dbfs=-96.0, user_speaking=False),
        lambda: held.change(
            transcript=(*held.snap.transcript, Entry(11.0, "agent", "new 中文 ok"))
        ),
        lambda: held.change(controls=ControlsView(muted=True, keys=True, show_help=True)),
        lambda: held.change(controls=ControlsView(keys=True), protocol_issues=3),
        lambda: held.change(phase=Phase.ENDED, elapsed_s=12.5),
    ]
    term.feed(live.draw(0.0))
    for i, step in enumerate(steps):
        step()
        term.feed(live.draw(TICKING_S * (i + 1)))  # every part due, the figures too
        rows = len(expected(held.snap, width, height))
        assert rows <= height - 1
        assert term.top(rows) == expected(held.snap, width, height), f"after step {i}"


def test_a_new_size_draws_the_whole_frame_afresh() -> None:
    live, held = view(first_snapshot(), 80, 24)
    term = Terminal(80, 24)
    term.feed(live.draw(0.0))
    for width, height in [(120, 40), (60, 14), (100, 30)]:
        live.console.size = (width, height)
        term.screen.resize(height, width)
        held.change(mic_dbfs=-30.0 - width / 10)
        term.feed(live.draw(1.0))
        assert term.top(height) == [*expected(held.snap, width, height), ""]


def test_an_idle_call_redraws_only_its_clock_twice_a_second() -> None:
    snap = first_snapshot("call")  # no credits: no running estimate
    live, held = view(snap)
    live.draw(0.0)
    writes = []
    for i in range(1, 31):  # three seconds at 10 frames a second
        now = i * FRAME_S
        held.change(elapsed_s=snap.elapsed_s + now)
        out = live.draw(now)
        if out:
            writes.append(written(out))
    assert 5 <= len(writes) <= 7  # every half second of the clock
    assert all(len(lines) == 1 and lines[0].startswith("● live") for lines in writes)
    clocks = [re.search(r"\d\d:\d\d\.\d", lines[0]).group() for lines in writes]  # type: ignore[union-attr]
    assert all(clock[-1] in "05" for clock in clocks)  # on the half seconds


def test_a_meter_that_moved_redraws_only_its_line() -> None:
    live, held = view(first_snapshot())
    live.draw(0.0)
    held.change(mic_dbfs=-18.0, user_speaking=True)
    lines = written(live.draw(0.1))
    assert len(lines) == 1 and lines[0].startswith("you") and "-18.0 dBFS" in lines[0]
    held.change(agent_dbfs=-6.0)
    lines = written(live.draw(0.2))
    assert len(lines) == 1 and lines[0].startswith("agent") and "-6.0 dBFS" in lines[0]
    assert live.draw(0.3) == ""  # nothing changed: nothing written


def test_discrete_changes_show_at_the_next_frame_running_figures_within_half_a_second() -> None:
    live, held = view(first_snapshot())
    live.draw(0.0)
    held.change(controls=ControlsView(muted=True))
    assert any("MUTED" in line for line in written(live.draw(0.1)))
    entry = Entry(10.5, "agent", "a brand new line")
    held.change(transcript=(*held.snap.transcript, entry))
    assert any("a brand new line" in line for line in written(live.draw(0.2)))
    held.change(protocol_issues=4)
    assert not any("protocol errors" in line for line in written(live.draw(0.3)))
    assert any(re.search(r"protocol errors +4", line) for line in written(live.draw(0.5)))


def test_the_last_frame_shows_the_exact_end_state() -> None:
    live, held = view(first_snapshot())
    live.draw(0.0)
    credits = Credits(available=100.0, cost_per_minute=1.0, final_used=0.25, final_remaining=99.75)
    held.change(phase=Phase.ENDED, elapsed_s=15.0, credits=credits)
    out = written(live.draw(0.1, final=True))  # within the figures' half second
    assert any("credits (final)" in line for line in out)
    assert any("● ended" in line and "00:15.0" in line for line in out)


@pytest.mark.parametrize(("width", "height"), [(80, 24), (120, 40)])
def test_a_busy_call_writes_a_few_kilobytes_a_second(width: int, height: int) -> None:
    """Ten seconds with both meters moving on every frame, the figures running and a
    transcript line every second: a fraction of one whole frame per frame."""
    snap = first_snapshot()
    live, held = view(snap, width, height)
    whole = len(live.draw(0.0).encode())
    total, frames = 0, int(10 / FRAME_S)
    for i in range(1, frames + 1):
        now = i * FRAME_S
        held.change(
            elapsed_s=snap.elapsed_s + now,
            mic_dbfs=-40.0 + (i * 7) % 30,
            agent_dbfs=-30.0 + (i * 11) % 25,
            net=NetStats(bytes_sent=4096 + i * 3200, bytes_received=i * 4800),
            playback=PlaybackFigures(buffered_ms=float(i % 9) * 20),
        )
        if i % 10 == 0:
            entry = Entry(snap.elapsed_s + now, "agent", f"reply {i}")
            held.change(transcript=(*held.snap.transcript, entry))
        total += len(live.draw(now).encode())
    per_second = total / (frames * FRAME_S)
    assert per_second < 8 * 1024  # was 25-39 kB/s
    assert total / frames < whole / 4
    assert total > 0


def test_every_ten_seconds_the_whole_frame_is_drawn_again() -> None:
    live, _ = view(first_snapshot())
    rows = len(written(live.draw(0.0)))
    assert live.draw(1.0) == ""
    assert len(written(live.draw(REPAINT_S + 0.05))) == rows


def test_a_terminal_too_short_keeps_the_status_line_and_the_newest_line() -> None:
    snap = first_snapshot()
    snap = dataclasses.replace(snap, transcript=(*snap.transcript, Entry(11.0, "info", "newest")))
    lines = [line.plain for line in view_frame(snap, 80, 4)]
    assert len(lines) == 3
    assert lines[0].startswith("● live")
    assert "newest" in lines[1] and lines[2].startswith("╰")


def test_a_full_width_line_is_not_followed_by_an_erase() -> None:
    """At the last column xterm's cursor waits on the last cell: an erase there would
    take the line's last character."""
    screen = Screen(console(20, 5))
    out = screen.update([Text("x" * 20), Text("short")], (20, 5))
    assert "x" * 20 + "\r\n" in out and "short\x1b[K" in out


# -- the view's thread ---------------------------------------------------------------------
def test_a_failure_while_drawing_ends_the_view_with_the_terminal_restored() -> None:
    live, held = view(first_snapshot())
    held.fail_after = 2  # the first frame, one more, then the bug
    with pytest.raises(RuntimeError, match="a bug while drawing"), live:
        live._thread.join(timeout=5)
    output = live.console.file.getvalue()  # type: ignore[attr-defined]
    assert output.endswith(SHOW_CURSOR) and "\x1b[?25l" in output


# -- on a real pseudo-terminal -------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "openpty"), reason="POSIX pty")
def test_the_view_follows_a_resized_terminal_and_writes_a_few_kilobytes_a_second(
    tmp_path: Path,
) -> None:
    env = cli_env(
        PULSE_SERVER="unix:/nonexistent/pulse", HOME=str(tmp_path), TMPDIR=str(tmp_path),
        TERM="xterm-256color",
    )  # fmt: skip
    steps = [
        (seen("● live"), lambda r: r.resize(100, 30)),
        (seen("spoke"), lambda r: r.resize(70, 20)),  # the first transcript line of yours
    ]
    run = run_in_pty(
        ["demo", "--latency-ms", "0"], env=env, columns=80, rows=24, steps=steps,
        size_in_env=False,
    )  # fmt: skip
    assert run.returncode == 0, run.text[-2000:]
    assert len(run.resizes) == 2
    everything = run.history + run.screen_lines
    top = max(i for i, line in enumerate(everything) if line.startswith("● ended"))
    frame = everything[top : top + 19]  # the final frame, drawn for 70x20
    assert all(len(line) <= 70 for line in frame + run.screen_lines)
    assert frame[1].startswith("in:") and frame[2].startswith("mic open")
    assert frame[-1] == "╰" + "─" * 68 + "╯"
    assert "session ended: idle" in "".join(frame[-3:-1])  # the newest, wrapped
    assert everything[top + 19] == "call summary"  # right under the frame
    # The whole call, resizes and summary included. Rich's Live wrote 25-39 kB a second.
    duration_s = float(re.findall(r"duration +│ ([0-9.]+) s", "\n".join(everything))[-1])
    assert len(run.raw) / duration_s < 8 * 1024
