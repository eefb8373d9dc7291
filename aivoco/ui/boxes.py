"""The view's panels as lines of `Text`: a rounded box with a title, rows of figures.

The view's layout is fixed (a box of a given height, labels in a column of a given
width, values right-aligned), so its lines are drawn here directly instead of through
Rich's `Panel`/`Table` layout, which measured ~9 ms a frame for the whole view (10
frames a second: ~9 % of a core, bench/RESULTS.md). Every line comes out exactly as
wide as asked (padded or cut with an ellipsis), so the live view can compare a frame
with the one on the screen line by line (aivoco/ui/screen.py). A `Box` is also a Rich
renderable, drawn at the width it is given, as Rich's panels were.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text


def fit(text: Text, cells: int) -> Text:
    """`text` as exactly `cells` cells: cut with an ellipsis, or padded with spaces."""
    line = text.copy()
    line.no_wrap = True
    line.truncate(max(0, cells), overflow="ellipsis", pad=True)
    return line


def pad_left(text: Text, cells: int) -> Text:
    """`text` right-aligned in `cells` cells (cut with an ellipsis if it is longer)."""
    gap = cells - text.cell_len
    if gap <= 0:
        return fit(text, cells)
    line = Text(" " * gap, no_wrap=True)
    line.append_text(text)
    return line


class Figures:
    """Rows of a label (dim, in a column at least `label_cells` wide) and a value
    (right-aligned): the credits and call panels."""

    def __init__(self, label_cells: int) -> None:
        self.label_cells = label_cells
        self.rows: list[tuple[str, Text]] = []

    def add_row(self, label: str, value: str | Text) -> None:
        self.rows.append((label, value if isinstance(value, Text) else Text(value)))

    def lines(self, cells: int) -> list[Text]:
        label_cells = max([self.label_cells, *(cell_len(label) for label, _ in self.rows)])
        label_cells = min(label_cells, max(0, cells - 2))
        out = []
        for label, value in self.rows:
            line = fit(Text(label, style="dim"), label_cells)
            line.append(" ")
            line.append_text(pad_left(value, cells - label_cells - 1))
            out.append(fit(line, cells))
        return out


class Box:
    """A rounded box, `height` lines tall (borders included), its title in the top
    border; its body lines are cut or padded to the width, extra lines are left out."""

    def __init__(self, body: Figures | Sequence[Text], title: str, height: int) -> None:
        self.body = body
        self.title = title
        self.height = max(2, height)

    def lines(self, width: int) -> list[Text]:
        width = max(4, width)
        inner = width - 4
        body = self.body.lines(inner) if isinstance(self.body, Figures) else self.body
        rows = [fit(line, inner) for line in list(body)[: self.height - 2]]
        rows += [Text(" " * inner)] * (self.height - 2 - len(rows))
        title = self.title if cell_len(self.title) <= width - 6 else ""
        top = f"╭─ {title} " if title else "╭─"
        out = [Text(top + "─" * (width - 1 - cell_len(top)) + "╮", no_wrap=True)]
        for row in rows:
            line = Text("│ ", no_wrap=True)
            line.append_text(row)
            line.append(" │")
            out.append(line)
        out.append(Text("╰" + "─" * (width - 2) + "╯", no_wrap=True))
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.lines(options.max_width)


def side_by_side(left: Sequence[Text], right: Sequence[Text], gap: int = 1) -> list[Text]:
    """Two columns of lines (each column's lines equally wide) joined row by row."""
    out = []
    for a, b in zip(left, right, strict=True):
        line = a.copy()
        line.append(" " * gap)
        line.append_text(b)
        out.append(line)
    return out


class Lines:
    """Prepared lines as a Rich renderable (what `call_view` returns)."""

    def __init__(self, lines: Iterable[Text]) -> None:
        self.lines = list(lines)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.lines

    def __iter__(self) -> Iterator[Text]:
        return iter(self.lines)
