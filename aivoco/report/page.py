"""The report as one self-contained HTML page: inline CSS, images as data: URIs, no script.

Every string from a transcript (agent text, function results, server messages) passes
through `redact()` and then `html.escape()`, in that order, on its way into the page, so a
server that echoes the key or sends markup can neither leak the one nor inject the other.
The Content-Security-Policy forbids scripts and every network fetch as a second line.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Iterable
from dataclasses import dataclass

from aivoco import __version__
from aivoco.redact import redact
from aivoco.report.build import as_json
from aivoco.report.layout import clock
from aivoco.report.model import CallModel, FunctionUse, Turn, percentile

MAX_EVENT_ROWS = 2000  # an hour of call-protocol marks would make a page nobody reads
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_SUMMARY_ELSEWHERE = frozenset(
    [
        "type",
        "t",
        "time",
        "reason",
        "duration_s",
        "turns",
        "latency_last_ms",
        "latency_mean_ms",
        "functions_called",
        "protocol_errors",
        "credits_used",
        "credits_remaining",
        "credits_final",
        "error",
        "recording",
        "recording_s",
    ]
)
# What the session's own end reasons mean (server reasons are shown as they come).
_REASONS = {
    "idle": "idle: the agent was quiet for --idle-timeout after the input ended",
    "max-duration": "max-duration: --max-duration reached",
    "interrupted": "interrupted: Ctrl-C, hung up gracefully",
    "aborted": "aborted: a second Ctrl-C, left at once",
    "hangup": "hung up",
    "error": "error: see errors",
    "protocol-error": "protocol-error: the peer sent only malformed messages",
}
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#666;margin:0 0 16px}
.problems{background:#fff4e0;border:1px solid #e69f00;padding:8px 14px;border-radius:4px}
table{border-collapse:collapse;margin:4px 0}td,th{border:1px solid #ddd;padding:3px 8px;
vertical-align:top;text-align:left}th{background:#f4f4f4}
td.n{text-align:right;white-space:nowrap}.slow{color:#d62728;font-weight:600}
.bad{color:#d62728}.grid{display:flex;flex-wrap:wrap;gap:28px;align-items:flex-start}
img{max-width:100%;height:auto;border:1px solid #eee}code{font-size:12px;word-break:break-all}
footer{color:#888;margin-top:32px;font-size:12px}
"""


def esc(value: object) -> str:
    """Redact, then escape: the only way text reaches the page."""
    return html.escape(redact(str(value)), quote=True)


def fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} ms"


@dataclass
class PageInput:
    model: CallModel
    title: str  # the transcript's name
    recording: str | None  # the recording's name, if levels were drawn
    problems: list[str]
    timeline_png: bytes | None
    latency_png: bytes | None
    slow_ms: float


def _rows(pairs: Iterable[tuple[str, object]]) -> str:
    return "".join(f"<tr><th>{esc(k)}</th><td>{esc(fmt(v))}</td></tr>" for k, v in pairs)


def _img(png: bytes | None, alt: str) -> str:
    if png is None:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def _summary(m: CallModel) -> str:
    lat = m.latencies_ms
    c = m.credits
    functions = [f for t in m.turns for f in t.functions]
    failed = sum(1 for f in functions if f.ok is False)
    # The summary's count is the total; `underrun` records (one per stats period with
    # any) say when they happened and are what the timeline marks.
    underruns: object = m.counter("playback_underruns") or m.counts["underrun"]
    if not m.counts["underrun"] and underruns:
        underruns = f"{fmt(underruns)} (this transcript does not say when)"
    reason = _REASONS.get(m.end_reason or "", m.end_reason)
    call = [
        ("duration", f"{m.duration_s:.1f} s ({clock(m.duration_s)})"),
        ("ended", reason or "unknown: the transcript has no summary (cut off?)"),
        ("exit code", m.exit_code),
        ("errors", "; ".join(m.errors) or None),
        ("turns", f"{sum(1 for t in m.turns if t.speech_end is not None)} spoken, "
                  f"{len(lat)} answered"),
        ("latency p50 / p95 / max",
         f"{ms(percentile(lat, 50))} / {ms(percentile(lat, 95))} / {ms(max(lat, default=None))}"),
        ("functions", f"{len(functions)} called, {failed} failed"),
        ("barge-ins", m.counts["clear"] + m.counts["barge_in"]),
        ("underruns", underruns),
        ("protocol errors", m.counts["protocol_error"]),
        ("reconnects", m.counts["reconnecting"]),
    ]  # fmt: skip
    credits = [
        ("available at start", c.available),
        ("cost per minute", c.cost_per_minute),
        ("used", c.used),
        ("remaining", c.remaining),
        ("source", "server totals" if c.final else ("estimate" if c.used is not None else None)),
    ]
    return (
        f'<div class="grid"><table>{_rows(call)}</table>'
        f"<table><tr><th colspan=2>credits</th></tr>{_rows(credits)}</table></div>"
    )


def _counters(m: CallModel) -> str:
    if m.summary is None:
        return "<p>No summary record: the counters are written when a call ends.</p>"
    items = [(k, v) for k, v in m.summary.items() if k not in _SUMMARY_ELSEWHERE]
    network = [(k, v) for k, v in items if not k.startswith("playback_")]
    playback = [(k.removeprefix("playback_"), v) for k, v in items if k.startswith("playback_")]
    return (
        f'<div class="grid"><table><tr><th colspan=2>network</th></tr>{_rows(network)}</table>'
        f"<table><tr><th colspan=2>playback</th></tr>{_rows(playback)}</table></div>"
    )


def _function_cell(f: FunctionUse) -> str:
    status = {True: "ok", False: '<span class="bad">failed</span>', None: "no result"}[f.ok]
    took = f", {f.duration_ms:g} ms" if f.duration_ms is not None else ""
    return (
        f"<code>{esc(f.name)}({esc(as_json(f.arguments, 500))})</code> → "
        f"<code>{esc(as_json(f.result, 500))}</code> ({status}{took})"
    )


def _turn_row(t: Turn, slow_ms: float) -> str:
    slow = t.latency_ms is not None and t.latency_ms >= slow_ms
    latency = f'<td class="n{" slow" if slow else ""}">{esc(ms(t.latency_ms))}</td>'
    figures = [f"{k}: {fmt(v)}" for k, v in t.figures.items()]
    notes = "<br>".join(esc(n) for n in [*t.notes, *figures])
    start = t.start
    return (
        f'<tr><td class="n">{t.index}</td>'
        f'<td class="n">{esc("–" if start is None else f"{clock(start)} ({start:.1f} s)")}</td>'
        f'<td class="n">{esc("–" if t.speech_s is None else f"{t.speech_s:.2f} s")}</td>'
        f"{latency}<td>{'<br>'.join(esc(x) for x in t.texts)}</td>"
        f"<td>{'<br>'.join(_function_cell(f) for f in t.functions)}</td><td>{notes}</td></tr>"
    )


def _turns(m: CallModel, slow_ms: float) -> str:
    if not m.turns:
        return "<p>No turns: nobody spoke and the agent did not answer.</p>"
    head = (
        "<tr><th>#</th><th>start</th><th>you spoke</th><th>latency</th>"
        "<th>agent said</th><th>functions</th><th>notes</th></tr>"
    )
    return f"<table>{head}{''.join(_turn_row(t, slow_ms) for t in m.turns)}</table>"


def _events(m: CallModel) -> str:
    rows = [
        f'<tr><td class="n">{esc(f"{mk.t:.2f}")}</td><td>{esc(mk.kind)}</td>'
        f"<td{' class=bad' if mk.severity == 'error' else ''}>{esc(mk.text)}</td></tr>"
        for mk in m.markers[:MAX_EVENT_ROWS]
    ]
    more = len(m.markers) - MAX_EVENT_ROWS
    tail = f"<p>… and {more} more events (see the transcript).</p>" if more > 0 else ""
    counts = ", ".join(
        f"{esc(k)} {n}" + (" (unknown to this version)" if k in m.unknown else "")
        for k, n in sorted(m.counts.items())
    )
    return (
        f"<p>Records: {counts or 'none'}.</p><table><tr><th>t (s)</th><th>event</th>"
        f"<th>detail</th></tr>{''.join(rows)}</table>{tail}"
    )


def _when(iso: str) -> str:
    try:
        when = dt.datetime.fromisoformat(iso).astimezone(dt.timezone.utc)
    except ValueError:
        return iso
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def _header(p: PageInput) -> str:
    m = p.model
    meta = [p.title, m.protocol, m.endpoint, f"started {_when(m.started)}" if m.started else None]
    meta.append(f"recording {p.recording}" if p.recording else "no recording: no levels")
    problems = "".join(f"<li>{esc(x)}</li>" for x in p.problems)
    box = (
        f'<div class="problems"><b>Input problems</b><ul>{problems}</ul></div>' if problems else ""
    )
    return (
        f"<h1>aivoco call report</h1><p class=meta>{esc(' · '.join(x for x in meta if x))}</p>{box}"
    )


def render_page(p: PageInput) -> str:
    """The whole HTML document."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    latency = f"<h2>Latency</h2>{_img(p.latency_png, 'latency per turn')}" if p.latency_png else ""
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>aivoco report: {esc(p.title)}</title><style>{_CSS}</style></head><body>"
        f"{_header(p)}<h2>Summary</h2>{_summary(p.model)}"
        f"<h2>Timeline</h2>{_img(p.timeline_png, 'call timeline')}{latency}"
        f"<h2>Turns</h2>{_turns(p.model, p.slow_ms)}"
        f"<h2>Network and playback</h2>{_counters(p.model)}"
        f"<h2>Events</h2>{_events(p.model)}"
        f"<footer>aivoco {esc(__version__)} · report made {esc(now)}</footer>"
        "</body></html>\n"
    )
