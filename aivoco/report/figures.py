"""Draw the timeline and the latency chart as PNG bytes with matplotlib.

matplotlib is the optional extra `aivoco[report]`; it is imported here, inside the
functions, so nothing else in aivoco pays for it. Figures are built with the
object-oriented API on the Agg canvas (never pyplot): no global state, no GUI backend,
safe to call from any thread.
"""

from __future__ import annotations

import io
import warnings
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from aivoco.errors import UsageError
from aivoco.redact import redact
from aivoco.report import layout as lay
from aivoco.report.bands import Bands
from aivoco.report.levels import Levels, reduce_max
from aivoco.report.model import CallModel, Marker, percentile

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

INSTALL_HINT = "pip install 'aivoco[report]'"
_POINTS_PER_ROW = 2 * round(lay.WIDTH_IN * lay.DPI)  # two per pixel column


class ReportDependencyError(UsageError):
    """matplotlib (the `report` extra) is not installed."""

    def __init__(self) -> None:
        super().__init__(f"aivoco report draws with matplotlib; install it: {INSTALL_HINT}")


def require_matplotlib() -> None:
    """Raise ReportDependencyError unless matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ReportDependencyError() from exc


@contextmanager
def _quiet() -> Iterator[None]:
    # A glyph missing from the bundled font (an emoji in a function name) is a warning
    # on stderr, not a problem with the call; the user would read it as one.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="matplotlib")
        yield


def _new_figure(width_in: float, height_in: float) -> Figure:
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=lay.DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    # No bbox_inches="tight": the size stays exactly figsize x dpi, as documented.
    fig.savefig(buf, format="png", dpi=lay.DPI, facecolor="white")
    return buf.getvalue()


def _text(value: str, limit: int = 40) -> str:
    text = redact(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _in_row(t: float, start: float, span: float) -> bool:
    return start <= t < start + span


def _clock_axis(ax: Axes, span: float) -> None:
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    step = lay.tick_step(span)
    ax.xaxis.set_major_locator(MultipleLocator(step))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: lay.clock(x, step < 1)))


def _row_frame(ax: Axes, start: float, span: float) -> None:
    ax.set_xlim(start, start + span)
    ax.set_ylim(*lay.Y_LIMITS)
    labels = {"you": lay.YOU_LANE[0] + 0.5, "agent": lay.AGENT_LANE[0] + 0.5, **lay.MARKER_Y}
    ax.set_yticks(list(labels.values()), list(labels.keys()), fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    for y in (lay.AGENT_LANE[0] - 0.1, lay.AGENT_LANE[0] + 1.0, lay.YOU_LANE[0] + 1.0):
        ax.axhline(y, color="#dddddd", lw=0.6, zorder=0)
    _clock_axis(ax, span)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _bands(
    ax: Axes, bands: list[tuple[float, float]], lane: tuple[float, float], **kw: Any
) -> None:
    if bands:
        ax.broken_barh([(s, e - s) for s, e in bands], lane, zorder=1, lw=0, **kw)


def _envelope(ax: Axes, levels: Levels, start: float, span: float) -> None:
    first = int(start / levels.window_s)
    last = int(np.ceil((start + span) / levels.window_s))
    for db_all, lane, color in (
        (levels.user_db, lay.YOU_LANE, lay.COLORS["you"]),
        (levels.agent_db, lay.AGENT_LANE, lay.COLORS["agent"]),
    ):
        db, factor = reduce_max(db_all[first:last], _POINTS_PER_ROW)
        if not len(db):
            continue
        x = (first + np.arange(len(db)) * factor) * levels.window_s
        low, high = lay.DB_RANGE
        height = np.clip((db - low) / (high - low), 0.0, 1.0) * lane[1]
        ax.fill_between(x, lane[0], lane[0] + height, step="post", color=color, lw=0, zorder=2)


def _latencies(ax: Axes, model: CallModel, start: float, span: float) -> None:
    gaps = [
        (t.reply_t - t.latency_ms / 1000, t.reply_t, t.latency_ms)
        for t in model.turns
        if t.latency_ms is not None and t.reply_t is not None and _in_row(t.reply_t, start, span)
    ]
    bottom, top = lay.AGENT_LANE[0], lay.YOU_LANE[0] + lay.YOU_LANE[1]
    # One collection per look, not one per turn: an hour has hundreds of turns.
    for slow in (False, True):
        ranges = [(b, e - b) for b, e, ms in gaps if (ms >= lay.SLOW_MS) == slow]
        if ranges:
            ax.broken_barh(
                ranges,
                (bottom, top - bottom),
                facecolor=lay.COLORS["latency"],
                edgecolor=lay.COLORS["slow"] if slow else "#999999",
                hatch="///" if slow else None,
                lw=0.5,
                zorder=0,
            )
    if len(gaps) > lay.MAX_LABELS_PER_ROW:
        return
    for begin, end, ms in gaps:
        ax.text(
            (begin + end) / 2,
            lay.GAP_Y,
            f"{ms:.0f} ms",
            ha="center",
            va="center",
            fontsize=7,
            zorder=5,
            parse_math=False,
            color=lay.COLORS["slow"] if ms >= lay.SLOW_MS else "#333333",
        )


def _marker_color(m: Marker) -> str:
    if m.severity != "info":
        return lay.COLORS[m.severity]
    if m.kind == "function_result":
        return lay.COLORS["ok"]
    return lay.COLORS["functions"] if m.lane == "functions" else lay.COLORS["info"]


def _label(m: Marker) -> str | None:
    if m.kind == "function_call":
        return _text(m.text.split("(", 1)[0], 24)
    return lay.LABELS.get(m.kind)


def _marker_labels(ax: Axes, shown: list[Marker], start: float, span: float) -> None:
    """Short words beside the markers, skipping any that would overprint the last one."""
    last: dict[str, float] = {}
    count = 0
    for m in shown:
        label = _label(m)
        if label is None or m.t - last.get(m.lane, -span) < span * lay.LABEL_GAP:
            continue
        last[m.lane] = m.t
        count += 1
        if count > lay.MAX_LABELS_PER_ROW:
            return
        # Near the row's right end the word goes left of its marker, not off the axes.
        near_end = m.t - start > span * 0.9
        ax.text(
            m.t,
            lay.MARKER_Y.get(m.lane, lay.MARKER_Y["other"]) + 0.14,
            label,
            fontsize=7,
            ha="right" if near_end else "left",
            va="bottom",
            color=lay.COLORS["functions"] if m.lane == "functions" else "#444444",
            parse_math=False,
        )


def _markers(ax: Axes, model: CallModel, start: float, span: float) -> None:
    groups: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    shown = [m for m in model.markers if _in_row(m.t, start, span)]
    for m in shown:
        groups[(m.lane, lay.SYMBOLS.get(m.kind, "o"), _marker_color(m))].append(m.t)
    for (lane, symbol, color), times in groups.items():
        y = np.full(len(times), lay.MARKER_Y.get(lane, lay.MARKER_Y["other"]))
        ax.scatter(times, y, marker=symbol, color=color, s=28, lw=1.2, zorder=4)
    _marker_labels(ax, shown, start, span)


def _spans_and_end(ax: Axes, model: CallModel, start: float, span: float) -> None:
    for s in model.spans:
        end = model.duration_s if s.end is None else s.end
        if end >= start and s.start < start + span:
            ax.axvspan(s.start, end, color=lay.COLORS["span"], alpha=0.35, hatch="xx", zorder=0)
            ax.text(
                max(s.start, start),
                lay.Y_LIMITS[1] - 0.1,
                s.label,
                fontsize=7,
                va="top",
                parse_math=False,
            )
    end = model.duration_s
    if _in_row(end, start, span) or (end == start + span):
        ax.axvline(end, color=lay.COLORS["end"], lw=1.2, ls="--", zorder=3)
        reason = _text(f"end: {model.end_reason or 'unknown'}", 60)
        ax.text(
            end,
            lay.Y_LIMITS[1],
            reason,
            fontsize=8,
            ha="right",
            va="top",
            color=lay.COLORS["end"],
            parse_math=False,
            zorder=6,
        )


def _legend(fig: Figure, bands: Bands, has_levels: bool) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    agent = "agent speaking" + (" (end estimated: no recording)" if bands.agent_estimated else "")
    levels = [
        Patch(color=lay.COLORS["you"], label="your level"),
        Patch(color=lay.COLORS["agent"], label="agent level (-60..0 dBFS)"),
    ]
    handles = [
        Patch(color=lay.COLORS["you_band"], label="you speaking"),
        Patch(color=lay.COLORS["agent_band"], label=agent),
        *(levels if has_levels else []),
        Patch(facecolor=lay.COLORS["latency"], edgecolor="#999999", label="latency"),
        Line2D([], [], color=lay.COLORS["functions"], marker="v", ls="", label="function call"),
        Line2D([], [], color=lay.COLORS["ok"], marker="^", ls="", label="result"),
        Line2D([], [], color=lay.COLORS["warn"], marker="X", ls="", label="barge-in / clear"),
        Line2D([], [], color=lay.COLORS["warn"], marker="s", ls="", label="underrun"),
        Line2D([], [], color=lay.COLORS["error"], marker="x", ls="", label="error"),
    ]
    fig.legend(
        handles=handles,
        loc="upper center",
        ncol=len(handles),
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.5, 1.0 - 0.05 / fig.get_figheight()),
    )


def timeline_png(model: CallModel, levels: Levels | None, bands: Bands) -> bytes:
    """The whole call as rows of equal span: levels, turns, latency, markers, the end."""
    duration = max(model.duration_s, levels.duration_s if levels else 0.0)
    rows = lay.rows_for(duration)
    width, height = lay.timeline_size_in(duration)
    with _quiet():
        fig = _new_figure(width, height)
        top = 1 - lay.HEADER_IN / height
        fig.subplots_adjust(left=0.06, right=0.99, top=top, bottom=0.35 / height, hspace=0.35)
        axes = fig.subplots(rows.count, 1, squeeze=False)[:, 0]
        for i, ax in enumerate(axes):
            start = rows.start(i)
            _row_frame(ax, start, rows.span_s)
            user = [b for b in bands.user if b[1] >= start and b[0] < start + rows.span_s]
            agent = [b for b in bands.agent if b[1] >= start and b[0] < start + rows.span_s]
            _bands(ax, user, lay.YOU_LANE, facecolor=lay.COLORS["you_band"])
            hatch = "//" if bands.agent_estimated else None
            _bands(ax, agent, lay.AGENT_LANE, facecolor=lay.COLORS["agent_band"], hatch=hatch)
            if levels is not None:
                _envelope(ax, levels, start, rows.span_s)
            _latencies(ax, model, start, rows.span_s)
            _markers(ax, model, start, rows.span_s)
            _spans_and_end(ax, model, start, rows.span_s)
        _legend(fig, bands, levels is not None)
        return _png(fig)


def latency_png(model: CallModel) -> bytes | None:
    """Latency per answered turn with p50/p95 lines; None when no turn was answered."""
    turns = [t for t in model.turns if t.latency_ms is not None]
    if not turns:
        return None
    values = [t.latency_ms for t in turns if t.latency_ms is not None]
    with _quiet():
        from matplotlib.ticker import MaxNLocator

        fig = _new_figure(lay.WIDTH_IN, lay.LATENCY_HEIGHT_IN)
        fig.subplots_adjust(left=0.06, right=0.99, top=0.88, bottom=0.16)
        ax = fig.subplots()
        colors = [lay.COLORS["slow"] if v >= lay.SLOW_MS else lay.COLORS["agent"] for v in values]
        first, last = min(t.index for t in turns), max(t.index for t in turns)
        ax.bar([t.index for t in turns], values, color=colors, width=0.6 if last < 40 else 0.9)
        # At least ten slots wide, so one or two turns give bars, not walls.
        right = max(last, first + 9)
        ax.set_xlim(first - 0.7, right + 0.7)
        ax.set_ylim(0, max(values) * 1.15 or 1.0)
        if right - first <= 30:
            ax.set_xticks(range(first, right + 1))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        # p50 labelled on the left, p95 on the right: equal values must not overprint.
        for q, style, x, align in ((50, "-", 0.0, "left"), (95, "--", 1.0, "right")):
            value = percentile(values, q)
            assert value is not None
            ax.axhline(value, color="#333333", ls=style, lw=1)
            ax.text(
                x,
                value,
                f"p{q} {value:.0f} ms",
                fontsize=8,
                va="bottom",
                ha=align,
                transform=ax.get_yaxis_transform(),
                parse_math=False,
            )
        ax.set_xlabel("turn", fontsize=9)
        ax.set_ylabel("latency (ms)", fontsize=9)
        ax.set_title(
            "Response latency per turn (your speech end to the agent's first audio)",
            fontsize=10,
            loc="left",
        )
        ax.tick_params(labelsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        return _png(fig)
