"""The live call view's parts; each is a pure function of a snapshot.

aivoco/ui/frame.py puts them together so the view fits the terminal (`call_view(snap,
width, height)` prints it): the status line and the newest transcript lines always show;
the meters, the figures and the input/output line give way when the terminal is short.
Transcript entries wrap with a hanging indent under their text, and the newest line is
always the bottom line. Figures have fixed widths, so values do not shift sideways as
they change. The panels are drawn as lines (aivoco/ui/boxes.py), not laid out by Rich.

Text from the network is drawn through `terminal_safe` and only ever as `Text` objects,
never parsed as Rich markup, so `[bold]` or an ESC sequence from a peer is shown as is.
"""

from __future__ import annotations

from functools import lru_cache

from rich.cells import cell_len, chop_cells
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from aivoco.audio.levels import SILENCE_DBFS
from aivoco.redact import redact
from aivoco.session.lifecycle import Phase
from aivoco.session.state import Entry, Snapshot
from aivoco.session.summary import CallSummary
from aivoco.text import terminal_safe
from aivoco.ui.boxes import Box, Figures

METER_FLOOR_DBFS = -60.0
DEFAULT_SIZE = (100, 40)  # when rendered outside a terminal (tests, a log)
MIN_TRANSCRIPT_LINES = 3
_PREFIX_CELLS = len("[00:00.0] ") + len("function ")  # clock + kind column
_SIDE_ROWS = 6  # rows inside the credits / call panels
_PHASE_STYLE = {
    Phase.NEW: "dim",
    Phase.CONNECTING: "yellow",
    Phase.LIVE: "green",
    Phase.RECONNECTING: "red",
    Phase.ENDING: "yellow",
    Phase.ENDED: "dim",
}
_KIND_STYLE = {
    "agent": "cyan",
    "you": "green",
    "function": "magenta",
    "result": "magenta",
    "error": "red",
    "info": "dim",
}


def clock(seconds: float) -> str:
    """mm:ss.t (or h:mm:ss once past an hour)."""
    seconds = max(0.0, seconds)
    minutes, sec = divmod(seconds, 60.0)
    if minutes >= 60:
        hours, minutes = divmod(int(minutes), 60)
        return f"{hours}:{minutes:02d}:{int(sec):02d}"
    return f"{int(minutes):02d}:{sec:04.1f}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def meter(label: str, dbfs: float, width: int = 30, active: bool = False) -> Text:
    """A dBFS bar from METER_FLOOR_DBFS to 0: green, yellow above -12, red above -3."""
    span = -METER_FLOOR_DBFS
    frac = 0.0 if dbfs <= METER_FLOOR_DBFS else min(1.0, (dbfs - METER_FLOOR_DBFS) / span)
    filled = round(frac * width)
    colour = "red" if dbfs > -3 else "yellow" if dbfs > -12 else "green"
    text = Text(no_wrap=True)
    text.append(f"{label:<6}", style="bold" if active else "")
    text.append("█" * filled, style=colour)
    text.append("░" * (width - filled), style="dim")
    shown = "silent" if dbfs <= SILENCE_DBFS else f"{dbfs:.1f} dBFS"
    text.append(f" {shown:>11}")
    return text


def status_line(snap: Snapshot, width: int = DEFAULT_SIZE[0]) -> Text:
    """One line, never wrapped: phase, clock, protocol, host, then the voice or agent
    (the label names the agent, so the endpoint's own "agent X" is not repeated)."""
    host = snap.endpoint.split(" ", 1)[0]
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("● ", style=_PHASE_STYLE.get(snap.phase, "white"))
    text.append(f"{snap.phase_label:<10}", style="bold")
    text.append(f" {clock(snap.elapsed_s):>7}  {snap.protocol}  {terminal_safe(host)}  ")
    text.append(terminal_safe(snap.label), style="cyan")
    text.truncate(width, overflow="ellipsis")
    return text


def wrap_cells(text: str, width: int) -> list[str]:
    """Greedy word wrap by terminal cells; words longer than a line are folded."""
    width = max(1, width)
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if cell_len(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        pieces = chop_cells(word, width) or [""]
        lines.extend(pieces[:-1])
        line = pieces[-1]
    lines.append(line)
    return lines


@lru_cache(maxsize=1024)
def entry_lines(e: Entry, width: int) -> tuple[Text, ...]:
    """One transcript entry as lines of `width` cells, continuation lines indented.
    Cached: entries never change, and the view draws the same ones many times."""
    head = Text(no_wrap=True)
    head.append(f"[{clock(e.t_s)}] ", style="dim")
    head.append(f"{e.kind:<8} ", style=_KIND_STYLE.get(e.kind, ""))
    style = _KIND_STYLE.get(e.kind, "") if e.kind == "error" else ""
    body = wrap_cells(terminal_safe(e.text), width - _PREFIX_CELLS)
    lines = [head + Text(body[0], style=style)]
    lines.extend(Text(" " * _PREFIX_CELLS + part, style=style, no_wrap=True) for part in body[1:])
    return tuple(lines)


def transcript_panel(
    entries: tuple[Entry, ...], max_lines: int = 12, width: int = DEFAULT_SIZE[0]
) -> Box:
    """The newest `max_lines` lines of the transcript (bottom-anchored)."""
    inner = max(_PREFIX_CELLS + 8, width - 4)
    shown: list[Text] = []
    for e in reversed(entries):
        if len(shown) >= max_lines:
            break
        shown[:0] = entry_lines(e, inner)
    shown = shown[-max_lines:] if max_lines > 0 else []
    if not shown:
        shown = [Text("(nothing yet)", style="dim")]
    return Box(shown, "transcript", height=max_lines + 2)  # lines are pre-wrapped to fit


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _grid(label_cells: int) -> Figures:
    return Figures(label_cells)


def credits_panel(snap: Snapshot) -> Box:
    table = _grid(16)
    if not snap.has_credits:
        table.add_row("agent calls", "not billed here")
        return Box(table, "credits", height=_SIDE_ROWS + 2)
    c = snap.credits
    used, remaining = c.estimate(snap.elapsed_s)
    final = c.final_used is not None
    table.add_row("available", _num(c.available))
    table.add_row("cost / min", _num(c.cost_per_minute))
    table.add_row("used" if final else "used (est.)", _num(used, 3))
    table.add_row("remaining" if final else "remaining (est.)", _num(remaining, 3))
    title = "credits (final)" if final else "credits"
    return Box(table, title, height=_SIDE_ROWS + 2)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def stats_panel(snap: Snapshot) -> Box:
    table = _grid(9)
    heard = snap.first_sound_last_ms
    last = _ms(snap.latency_last_ms) + (f", heard {heard:.0f}" if heard is not None else "")
    table.add_row("latency", last)
    table.add_row("mean", f"{_ms(snap.latency_mean_ms)} ({plural(snap.turns, 'turn')})")
    n = snap.net
    if n is not None:
        table.add_row("network", f"↑ {_kb(n.bytes_sent)}  ↓ {_kb(n.bytes_received)}")
    p = snap.playback
    if p is not None:
        out = p.output_latency_ms
        device = f" + {out:.0f} out" if out is not None else ""
        table.add_row("queued", f"{p.buffered_ms:.0f} ms{device}")
        table.add_row("underruns", str(p.underruns))
    issues = Text(str(snap.protocol_issues), style="red" if snap.protocol_issues else "")
    table.add_row("protocol errors", issues)
    title = f"call ({n.transport})" if n is not None and n.transport else "call"
    return Box(table, title, height=_SIDE_ROWS + 2)


# -- microphone, echo and keys (docs/echo.md) --------------------------------------------
KEYS_HELP = (
    ("m", "mute"),
    ("+/-", "volume"),
    ("space", "push-to-talk"),
    ("o", "open mic"),
    ("q", "hang up"),
    ("?", "keys"),
)


def mic_badge(snap: Snapshot) -> Text:
    """MUTED, push-to-talk state, or an open microphone."""
    c = snap.controls
    if c.muted:
        return Text(" MUTED ", style="bold white on red")
    if c.mic == "push-to-talk idle":
        return Text(" PTT: mic closed, space to talk ", style="bold black on yellow")
    if c.mic == "push-to-talk talking":
        return Text(" PTT: TALKING ", style="bold black on green")
    return Text("mic open", style="green")


def echo_badge(snap: Snapshot) -> Text:
    """The echo mode in force, its ERLE (aec), and "echo suppressed" while it acts."""
    e = snap.echo
    text = Text("echo ")
    text.append(e.mode, style="bold")
    if "unavailable" in e.note:
        text.append(" (aec unavailable)", style="yellow")
    if e.mode == "aec":
        text.append(" ERLE " + ("—" if e.erle_db is None else f"{e.erle_db:.0f} dB"))
    if e.suppressing:
        text.append("  echo suppressed", style="bold yellow")
    if e.barge_ins:
        text.append(f"  barge-ins {e.barge_ins}", style="cyan")
    return text


def controls_line(snap: Snapshot) -> Text:
    """One line: microphone, echo control, volume, and the keys hint."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append_text(mic_badge(snap))  # its style, not the line's (the rest is not green)
    text.append("  ")
    text.append_text(echo_badge(snap))
    text.append(f"  vol {snap.controls.volume_percent}%")
    if snap.controls.keys:
        text.append("  ? keys", style="dim")
    return text


def keys_help() -> Text:
    """The keys of a live call (shown with `?`)."""
    text = Text()
    for i, (key, what) in enumerate(KEYS_HELP):
        if i:
            text.append("  ")
        text.append(key, style="bold reverse")
        text.append(f" {what}")
    return text


def _figures_line(snap: Snapshot) -> Text:
    """The side panels in one line, for terminals too short for them."""
    parts = [f"latency {_ms(snap.latency_last_ms)}"]
    if snap.playback is not None:
        parts.append(plural(snap.playback.underruns, "underrun"))
    if snap.has_credits:
        _, remaining = snap.credits.estimate(snap.elapsed_s)
        parts.append(f"credits left {_num(remaining, 2)}")
    parts.append(plural(snap.protocol_issues, "protocol error"))
    return Text("  ".join(parts), style="dim", no_wrap=True, overflow="ellipsis")


def call_view(
    snap: Snapshot,
    width: int = DEFAULT_SIZE[0],
    height: int = DEFAULT_SIZE[1],
) -> RenderableType:
    """The whole view (aivoco/ui/frame.py puts these widgets together) as a renderable,
    drawn no wider than the console it is printed on."""
    from aivoco.ui.frame import CallView  # frame.py imports this module

    return CallView(snap, width, height)


def _kb(n: int) -> str:
    return f"{n / 1024:,.0f} kB"


def summary_rows(s: CallSummary) -> list[tuple[str, str]]:
    """The after-call summary as a few readable rows (JSON keeps the flat keys)."""
    ended = s.reason + (f": {s.error}" if s.error else "")
    said = s.server_message or s.server_reason
    if said and said != s.reason:
        ended += f" (server: {said})"
    rows = [("ended", ended), ("duration", f"{round(s.duration_s, 2)} s")]
    if s.turns:
        latency = (
            f"last {_num(s.latency_last_ms, 1)} ms, mean {_num(s.latency_mean_ms, 1)} ms "
            f"over {plural(s.turns, 'turn')} to the first reply byte"
        )
        if s.first_sound_last_ms is not None:
            latency += f"; to its first sound last {_num(s.first_sound_last_ms, 1)} ms, "
            latency += f"mean {_num(s.first_sound_mean_ms, 1)} ms"
        rows.append(("latency", latency))
    n, p = s.net, s.playback
    rows.append(
        (
            "audio",
            f"sent {round(n.audio_ms_sent / 1000, 2)} s, "
            f"received {round(n.audio_ms_received / 1000, 2)} s",
        )
    )
    rows.append(
        (
            "network",
            f"{n.transport or '?'}: ↑ {n.messages_sent} msg {_kb(n.bytes_sent)}, "
            f"↓ {n.messages_received} msg {_kb(n.bytes_received)}",
        )
    )
    rows.append(
        (
            "playback",
            f"{plural(p.underruns, 'underrun')}, {plural(p.clears, 'clear')}, "
            f"{round(p.dropped_ms, 1)} ms dropped, pre-fill {round(p.prefill_ms, 1)} ms "
            f"(held {round(p.hold_ms, 1)} ms)"
            + (f", output latency {p.output_latency_ms:.0f} ms" if p.output_latency_ms else ""),
        )
    )
    if s.echo_mode is not None:
        rows.append(("echo", _echo_summary(s)))
    if s.functions_called:
        rows.append(("functions", f"{s.functions_called} called"))
    rows.append(("protocol errors", str(s.protocol_errors)))
    if s.reconnects:
        rows.append(("reconnects", str(s.reconnects)))
    if s.events_dropped:
        rows.append(("events dropped", str(s.events_dropped)))
    if n.uplink_dropped:
        rows.append(("uplink dropped", f"{n.uplink_dropped} frames (link backed up)"))
    if s.credits is not None:
        kind = "server totals" if s.credits.final else "estimate"
        rows.append(
            (
                "credits",
                f"used {_num(s.credits.used, 4)}, "
                f"remaining {_num(s.credits.remaining, 4)} ({kind})",
            )
        )
    if s.recording:
        rows.append(("recording", f"{s.recording} ({s.recording_s} s)"))
    return rows


def _echo_summary(s: CallSummary) -> str:
    text = s.echo_mode or "off"
    if s.echo_erle_db is not None:
        text += f", ERLE {s.echo_erle_db:.0f} dB"
    if s.local_barge_ins:
        text += f", {s.local_barge_ins} barge-in{'s' if s.local_barge_ins != 1 else ''}"
    return text


def summary_table(summary: CallSummary) -> Table:
    """Rows as `Text` made terminal-safe: no server text is read as markup or control."""
    table = Table(title="call summary", title_justify="left", show_header=False)
    table.add_column(style="dim")
    table.add_column()
    for key, value in summary_rows(summary):
        table.add_row(key, Text(terminal_safe(redact(value))))
    return table
