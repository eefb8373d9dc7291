"""The tables printed after the runs: one per scenario (a row per turn, over all its
runs), then the totals with the latency and slip figures."""

from __future__ import annotations

from collections import Counter

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from aivoco.scenario.load import Figures, Totals, figures
from aivoco.scenario.report import clean
from aivoco.scenario.runner import RunResult


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def scenario_table(runs: list[RunResult]) -> RenderableType:
    first = runs[0]
    passed = sum(r.passed for r in runs)
    title = f"{clean(first.scenario)} ({clean(first.file)}): {passed}/{len(runs)} runs passed"
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("turn", justify="right", no_wrap=True, min_width=4)
    table.add_column("what", max_width=26, overflow="ellipsis", no_wrap=True)
    table.add_column("ok", justify="right", no_wrap=True)
    for name in ("reply p50", "p95", "max", "length"):
        table.add_column(name, justify="right", no_wrap=True)
    table.caption = "reply: s from the end of our speech to the first agent audio; length: p50 s"
    table.caption_justify = "left"
    by_turn: dict[int, list[tuple[bool, float | None, float | None, str]]] = {}
    for r in runs:
        for t in r.turns:
            by_turn.setdefault(t.index, []).append((t.passed, t.reply_within_s, t.reply_s, t.label))
    for index in sorted(by_turn):
        rows = by_turn[index]
        within = figures([w for _, w, _, _ in rows if w is not None])
        length = figures([d for _, _, d, _ in rows if d is not None])
        ok = sum(p for p, _, _, _ in rows)
        style = None if ok == len(rows) else "red"
        table.add_row(
            str(index), rows[0][3], f"{ok}/{len(rows)}",
            _s(within.p50), _s(within.p95), _s(within.max), _s(length.p50), style=style,
        )  # fmt: skip
    parts: list[RenderableType] = [table]
    problems: Counter[str] = Counter()
    for r in runs:
        if r.error is not None:
            problems[f"error: {r.error}"] += 1
        problems.update(r.all_failures)
    for message, count in problems.items():
        suffix = f" (x{count})" if count > 1 else ""
        parts.append(Text(f"  {clean(message)}{suffix}", style="red"))
    return Group(*parts)


def totals_table(t: Totals) -> Table:
    table = Table(title="totals", title_justify="left", box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row(
        "runs",
        f"{t.runs}: {t.passed} passed, {t.failed} failed, {t.errors} errors, "
        f"{t.cancelled} cancelled",
    )
    table.add_row("calls", f"{t.calls_completed} completed, {t.failed + t.errors} failed")
    table.add_row("reply_within", _figures(t.reply_within_s, "s"))
    table.add_row("uplink slip", _figures(t.slip_ms, "ms", 1))
    table.add_row("wall time", f"{t.wall_s:.1f} s")
    return table


def _figures(f: Figures, unit: str, digits: int = 2) -> str:
    if f.count == 0:
        return "-"
    assert f.p50 is not None and f.p95 is not None and f.max is not None
    return (
        f"p50 {f.p50:.{digits}f} {unit}, p95 {f.p95:.{digits}f} {unit}, "
        f"max {f.max:.{digits}f} {unit} ({f.count})"
    )


def tables(results: list[RunResult], totals: Totals) -> list[RenderableType]:
    by_file: dict[str, list[RunResult]] = {}
    for r in results:
        by_file.setdefault(r.file, []).append(r)
    return [*(scenario_table(runs) for runs in by_file.values()), totals_table(totals)]
