"""`aivoco devices --latency` as text, in a real 80-column terminal's width."""

from __future__ import annotations

from rich.console import Console

from aivoco.audio.devices import DeviceInfo
from aivoco.audio.engine import OutputProbe
from aivoco.cli.devices_cmd import devices_table

DEVICES = [
    DeviceInfo(0, "pulse", "ALSA", 32, 32, 44100, False, False),
    DeviceInfo(1, "default", "ALSA", 32, 32, 44100, True, True),
    DeviceInfo(2, "HDA Intel PCH: ALC3246 Analog (hw:0,0)", "ALSA", 2, 2, 48000, False, False),
]
PROBES = {
    0: OutputProbe(20, 28.4, 24000),
    1: OutputProbe(100, 109.3, 24000),
    2: OutputProbe(problem="did not settle in 10 s"),
}


def render(width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(devices_table(DEVICES, PROBES))
    return console.export_text().splitlines()


def test_at_80_columns_figures_and_marks_stay_on_one_line() -> None:
    lines = render(80)
    assert all(len(line.rstrip()) <= 80 for line in lines)
    text = "\n".join(lines)
    # Wrapped, "109 ms" sat above "(100)" and "input," above "output".
    assert "109 ms (100)" in text and "28 ms (20)" in text
    assert "input, output" in text
    assert "out latency: measured (asked)" in text  # what the figures are
