"""What the live view has on the terminal, and the output that turns it into a new frame.

Rich's `Live` erased and re-wrote the whole view on every refresh: ~2-5 kB a frame, 25-39
kB a second, and ~9 ms of rendering a frame (bench/RESULTS.md). Here the frame is a list
of lines (aivoco/ui/frame.py), and `Screen.update` writes only the lines that differ
from the ones on the screen: the cursor moves up or down to the line (relative moves,
so the view stays inline under the command, as before), `\\r`, the line, and "erase to
the end of the line" when it is shorter than the terminal. A frame of a new size, or of
another number of lines, is drawn whole. A line is converted to escape sequences only
when it changed.

The caller sends each update in one write inside the synchronized-output markers
(aivoco/ui/live.py), so a terminal never shows a frame drawn half-way.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from rich.console import COLOR_SYSTEMS, Console
from rich.segment import Segment
from rich.text import Text

CSI = "\x1b["
ERASE_LINE_END = CSI + "K"
ERASE_DOWN = CSI + "J"
HOME_AND_CLEAR = CSI + "H" + CSI + "2J"
HIDE_CURSOR = CSI + "?25l"
SHOW_CURSOR = CSI + "?25h"


def line_key(text: Text) -> Hashable:
    """What a line shows: its characters and their styles."""
    return (text.plain, text.style, tuple(text.spans))


class Screen:
    """The lines on the terminal, drawn from the cursor's line downwards."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._colors = COLOR_SYSTEMS.get(console.color_system or "")
        self._keys: list[Hashable] = []  # what each row of the view shows
        self._shown: list[Text] = []  # the lines drawn (a part that did not change
        # hands back the very same objects: those are not compared again)
        self._size: tuple[int, int] | None = None
        self._row = 0  # the cursor's row within the view

    @property
    def size(self) -> tuple[int, int] | None:
        """The terminal size the lines on the screen were drawn for (None: not yet)."""
        return self._size

    def update(self, lines: Sequence[Text], size: tuple[int, int], repaint: bool = False) -> str:
        """The output that shows `lines` (each at most `size[0]` cells wide; no more
        than fit above the terminal's last line). Empty when nothing changed.
        `repaint` draws every line again (healing what another program wrote)."""
        width = size[0]
        if self._size is None:  # the first frame: from the cursor's line down
            out = "\r" + self._all(lines, width)
        elif size != self._size:
            # The terminal may have re-wrapped or scrolled the old frame: start afresh
            # at its top-left corner rather than from where the old frame might be.
            out = HOME_AND_CLEAR + self._all(lines, width)
        elif len(lines) != len(self._keys):
            out = self._move(0) + "\r" + ERASE_DOWN + self._all(lines, width)
        elif repaint:
            out = self._move(0) + "\r" + self._all(lines, width)
        else:
            out = self._changed(lines, width)
        self._size = size
        return out

    def leave(self) -> str:
        """The output that puts the cursor on the line below the view."""
        if self._size is None:
            return ""
        out = self._move(len(self._keys) - 1) + "\r\n"
        self._row = len(self._keys)
        return out

    # -- output ------------------------------------------------------------------------
    def _all(self, lines: Sequence[Text], width: int) -> str:
        self._keys = [line_key(line) for line in lines]
        self._shown = list(lines)
        self._row = max(0, len(lines) - 1)
        return "\r\n".join(self._line(line, width) for line in lines)

    def _changed(self, lines: Sequence[Text], width: int) -> str:
        out: list[str] = []
        for i, line in enumerate(lines):
            if line is self._shown[i]:
                continue
            self._shown[i] = line
            key = line_key(line)
            if key != self._keys[i]:
                self._keys[i] = key
                out.append(self._move(i) + "\r" + self._line(line, width))
        return "".join(out)

    def _move(self, row: int) -> str:
        step, self._row = row - self._row, row
        if step < 0:
            return f"{CSI}{-step}A"
        return f"{CSI}{step}B" if step > 0 else ""

    def _line(self, text: Text, width: int) -> str:
        """A line as escape sequences, then "erase to the end of the line" when it is
        shorter than the terminal. Not after a full line: the cursor then sits on its
        last cell (xterm's pending wrap), and the erase would take that cell."""
        segments = text.render(self._console)
        if self._console.no_color:
            segments = Segment.remove_color(segments)
        colors = self._colors
        drawn = "".join(
            seg.style.render(seg.text, color_system=colors) if seg.style else seg.text
            for seg in segments
        )
        return drawn if text.cell_len >= width else drawn + ERASE_LINE_END
