"""The live view's frame: the widgets (aivoco/ui/widgets.py) put together to fit a terminal.

A frame fits the terminal it is drawn for: the status line, the controls line and the
newest transcript lines always show; the meters, the figures and the input/output line
give way, in that order from last to first, when the terminal is short (the side panels
first shrink to their one-line form). A frame is a list of lines, each at most `width`
cells, so the live view redraws just the lines that changed (aivoco/ui/screen.py).

`FrameBuilder` keeps each part's lines until what the part shows changes, so a frame in
which only the meters moved builds only the meters. The parts that change with time
alone, the clock and the running figures (credits used, bytes sent, the queue), are
built at most every `TICKING_S`: the clock on its half seconds, the figures twice a
second. Everything else (phase, meters, controls, transcript) shows at the next frame.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from aivoco.session.state import Snapshot
from aivoco.text import terminal_safe
from aivoco.ui.boxes import side_by_side
from aivoco.ui.widgets import (
    _SIDE_ROWS,
    MIN_TRANSCRIPT_LINES,
    _figures_line,
    controls_line,
    credits_panel,
    keys_help,
    meter,
    stats_panel,
    status_line,
    transcript_panel,
)

TICKING_S = 0.5
_SIZES = {"io": 1, "meters": 2, "panels": _SIDE_ROWS + 2, "figures": 1}


class _Same:
    """Compares equal only to the very same object (a transcript entry)."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)


class FrameBuilder:
    """Frames of the view, each part rebuilt only when what it shows changed."""

    def __init__(self) -> None:
        self._parts: dict[str, tuple[Hashable, list[Text]]] = {}

    def frame(self, snap: Snapshot, width: int, height: int, now: float = 0.0) -> list[Text]:
        """The view in at most `height - 1` lines of `width` cells (the last line of a
        terminal is left free, so drawing never scrolls it); `now` (monotonic seconds)
        paces the running figures."""
        rows = max(MIN_TRANSCRIPT_LINES + 3, height - 1)
        controls = 2 if snap.controls.show_help and snap.controls.keys else 1
        optional = ["io", "meters", "panels" if width >= 60 else "figures"]
        fixed = 1 + controls + 2  # status line, controls, transcript borders
        while optional and rows - fixed - sum(_SIZES[n] for n in optional) < MIN_TRANSCRIPT_LINES:
            if optional.pop() == "panels":  # the panels give way to their one-line form
                optional.append("figures")
        transcript = rows - fixed - sum(_SIZES[n] for n in optional)
        head = optional[:1] if optional[:1] == ["io"] else []  # stays under the header
        order = ["status", *head, "controls", *optional[len(head) :], "transcript"]
        lines: list[Text] = []
        for name in order:
            key, build = self._spec(name, snap, width, transcript, now)
            lines.extend(self._part(name, (width, key), build, width))
        return _crop(lines, max(1, height - 1))

    def _part(
        self, name: str, key: Hashable, build: Callable[[], list[Text]], width: int
    ) -> list[Text]:
        kept = self._parts.get(name)
        if kept is not None and kept[0] == key:
            return kept[1]
        lines = [_fit(line, width) for line in build()]
        self._parts[name] = (key, lines)
        return lines

    def _spec(
        self, name: str, s: Snapshot, width: int, transcript: int, now: float
    ) -> tuple[Hashable, Callable[[], list[Text]]]:
        """A part's key (everything it shows, or its time slot) and how to build it."""
        key: Hashable
        if name == "status":
            clock_slot = int(s.elapsed_s / TICKING_S)
            key = (s.phase, s.phase_label, s.protocol, s.endpoint, s.label, clock_slot)
            return key, lambda: [status_line(s, width)]
        if name == "io":
            return (s.input_label, s.output_label), lambda: [_io_line(s)]
        if name == "controls":
            return (s.controls, s.echo), lambda: _controls(s)
        if name == "meters":
            bar = max(10, min(30, width - 20))
            key = (bar, s.mic_dbfs, s.agent_dbfs, s.user_speaking, s.agent_speaking)
            return key, lambda: [
                meter("you", s.mic_dbfs, bar, active=s.user_speaking),
                meter("agent", s.agent_dbfs, bar, active=s.agent_speaking),
            ]
        if name == "panels":
            return int(now / TICKING_S), lambda: _panels(s, width)
        if name == "figures":
            return int(now / TICKING_S), lambda: [_figures_line(s)]
        newest = _Same(s.transcript[-1] if s.transcript else None)
        key = (transcript, len(s.transcript), newest)
        return key, lambda: transcript_panel(s.transcript, transcript, width).lines(width)


def view_frame(snap: Snapshot, width: int, height: int) -> list[Text]:
    """The view's lines for this snapshot, every part built afresh."""
    return FrameBuilder().frame(snap, width, height)


def _io_line(snap: Snapshot) -> Text:
    text = f"in: {snap.input_label}   out: {snap.output_label}"
    return Text(terminal_safe(text), style="dim")


def _controls(snap: Snapshot) -> list[Text]:
    """Mic, echo and volume always show (a muted microphone must never scroll away)."""
    if snap.controls.show_help and snap.controls.keys:
        return [controls_line(snap), keys_help()]
    return [controls_line(snap)]


def _panels(snap: Snapshot, width: int) -> list[Text]:
    """The credits and call panels side by side."""
    left = (width - 1) // 2
    return side_by_side(credits_panel(snap).lines(left), stats_panel(snap).lines(width - 1 - left))


def _fit(text: Text, width: int) -> Text:
    """Never wider than the terminal: a line that wrapped would shift the ones below."""
    text.no_wrap, text.overflow = True, "ellipsis"
    if text.cell_len > width:
        text.truncate(width, overflow="ellipsis")
    return text


def _crop(lines: list[Text], rows: int) -> list[Text]:
    """A terminal too short for even the smallest view: the status line and the
    bottom of the transcript (the newest lines)."""
    if len(lines) <= rows:
        return lines
    return [lines[0], *lines[len(lines) - rows + 1 :]]


class CallView:
    """The view's lines as a Rich renderable, drawn no wider than its console."""

    def __init__(self, snap: Snapshot, width: int, height: int) -> None:
        self.snap, self.width, self.height = snap, width, height

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from view_frame(self.snap, min(self.width, options.max_width), self.height)
