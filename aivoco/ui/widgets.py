"""Small renderables for the live call view; each is a pure function of a snapshot."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from aivoco.audio.levels import SILENCE_DBFS
from aivoco.session.lifecycle import Phase
from aivoco.session.state import Entry, Snapshot
from aivoco.session.summary import CallSummary

METER_FLOOR_DBFS = -60.0
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


def meter(label: str, dbfs: float, width: int = 30, active: bool = False) -> Text:
    """A dBFS bar from METER_FLOOR_DBFS to 0: green, yellow above -12, red above -3."""
    span = -METER_FLOOR_DBFS
    frac = 0.0 if dbfs <= METER_FLOOR_DBFS else min(1.0, (dbfs - METER_FLOOR_DBFS) / span)
    filled = round(frac * width)
    colour = "red" if dbfs > -3 else "yellow" if dbfs > -12 else "green"
    text = Text()
    text.append(f"{label:<6}", style="bold" if active else "")
    text.append("█" * filled, style=colour)
    text.append("░" * (width - filled), style="dim")
    shown = "  silent" if dbfs <= SILENCE_DBFS else f"{dbfs:6.1f} dBFS"
    text.append(f" {shown}")
    return text


def status_line(snap: Snapshot) -> Text:
    text = Text()
    text.append("● ", style=_PHASE_STYLE.get(snap.phase, "white"))
    text.append(f"{snap.phase_label:<10}", style="bold")
    text.append(f" {snap.protocol}  {snap.endpoint}  ")
    text.append(snap.label, style="cyan")
    text.append(f"  {clock(snap.elapsed_s)}")
    return text


def transcript_panel(entries: tuple[Entry, ...], max_lines: int = 12) -> Panel:
    body = Text()
    shown = entries[-max_lines:]
    for i, e in enumerate(shown):
        if i:
            body.append("\n")
        body.append(f"[{clock(e.t_s)}] ", style="dim")
        body.append(f"{e.kind:<8} ", style=_KIND_STYLE.get(e.kind, ""))
        body.append(e.text)
    if not shown:
        body.append("(nothing yet)", style="dim")
    return Panel(body, title="transcript", title_align="left")


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def credits_panel(snap: Snapshot) -> Panel:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column(justify="right")
    if not snap.has_credits:
        table.add_row("credits", "n/a for agent calls")
        return Panel(table, title="credits", title_align="left")
    c = snap.credits
    used, remaining = c.estimate(snap.elapsed_s)
    final = c.final_used is not None
    table.add_row("available", _num(c.available))
    table.add_row("cost / min", _num(c.cost_per_minute))
    table.add_row("used" if final else "used (est.)", _num(used, 3))
    table.add_row("remaining" if final else "remaining (est.)", _num(remaining, 3))
    return Panel(table, title="credits (final)" if final else "credits", title_align="left")


def stats_panel(snap: Snapshot) -> Panel:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column(justify="right")
    last = "—" if snap.latency_last_ms is None else f"{snap.latency_last_ms:.0f} ms"
    mean = "—" if snap.latency_mean_ms is None else f"{snap.latency_mean_ms:.0f} ms"
    table.add_row("latency (last)", last)
    table.add_row("latency (mean)", f"{mean} ({snap.turns} turns)")
    n = snap.net
    if n is not None:
        table.add_row("sent", f"{n.messages_sent} msg {n.bytes_sent / 1024:,.0f} kB")
        table.add_row("received", f"{n.messages_received} msg {n.bytes_received / 1024:,.0f} kB")
        if n.transport:
            table.add_row("transport", n.transport)
    p = snap.playback
    if p is not None:
        table.add_row("buffered", f"{p.buffered_ms:.0f} ms")
        table.add_row("underruns", str(p.underruns))
    issues = Text(str(snap.protocol_issues), style="red" if snap.protocol_issues else "")
    table.add_row("protocol errors", issues)
    return Panel(table, title="call", title_align="left")


def call_view(snap: Snapshot, transcript_lines: int = 12) -> RenderableType:
    meters = Group(
        meter("you", snap.mic_dbfs, active=snap.user_speaking),
        meter("agent", snap.agent_dbfs, active=snap.agent_speaking),
    )
    side = Table.grid(expand=True, padding=(0, 1))
    side.add_column(ratio=1)
    side.add_column(ratio=1)
    side.add_row(credits_panel(snap), stats_panel(snap))
    io = Text(f"in: {snap.input_label}   out: {snap.output_label}", style="dim")
    return Group(
        status_line(snap), io, meters, side, transcript_panel(snap.transcript, transcript_lines)
    )


def _kb(n: int) -> str:
    return f"{n / 1024:,.0f} kB"


def summary_rows(s: CallSummary) -> list[tuple[str, str]]:
    """The after-call summary as a few readable rows (JSON keeps the flat keys)."""
    rows = [("ended", s.reason + (f": {s.error}" if s.error else ""))]
    rows.append(("duration", f"{round(s.duration_s, 2)} s"))
    if s.turns:
        rows.append(
            (
                "latency",
                f"last {_num(s.latency_last_ms, 1)} ms, mean {_num(s.latency_mean_ms, 1)} ms "
                f"over {s.turns} turn{'s' if s.turns != 1 else ''}",
            )
        )
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
            f"{p.underruns} underruns, {p.clears} clears, {round(p.dropped_ms, 1)} ms dropped, "
            f"pre-fill {round(p.prefill_ms, 1)} ms",
        )
    )
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


def summary_table(summary: CallSummary) -> Table:
    table = Table(title="call summary", title_justify="left", show_header=False)
    table.add_column(style="dim")
    table.add_column()
    for key, value in summary_rows(summary):
        table.add_row(key, value)
    return table
