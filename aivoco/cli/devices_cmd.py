"""`aivoco devices`: the audio devices PortAudio offers, as a table or JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from aivoco.cli.errors import guarded
from aivoco.errors import DeviceError

if TYPE_CHECKING:  # imported when the command runs: `aivoco --help` stays light
    from rich.table import Table

    from aivoco.audio.devices import DeviceInfo
    from aivoco.audio.engine import OutputProbe


NO_DEVICES = (
    "PortAudio found no audio device. PortAudio is installed, but it sees no sound "
    "server and no sound card. On a desktop, check that PulseAudio or PipeWire runs "
    "(`pactl info`). In Docker, share the host's sound server with the container (mount "
    "its PulseAudio socket and set PULSE_SERVER=unix:/path/to/socket) or pass /dev/snd. "
    "In WSL, use WSLg (Windows 11), which provides a PulseAudio server. Without any "
    "device, calls still run with --input FILE and --output FILE."
)


def probe_text(probe: OutputProbe) -> str:
    if probe.problem is not None:
        return "-"
    measured = "?" if probe.measured_ms is None else f"{probe.measured_ms:.0f}"
    return f"{measured} ms ({probe.asked_ms})"


def devices_table(devices: list[DeviceInfo], probes: dict[int, OutputProbe]) -> Table:
    from rich.table import Table

    table = Table(title="Audio devices", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("name")
    table.add_column("host API")
    table.add_column("in", justify="right")
    table.add_column("out", justify="right")
    # In 80 columns the names wrap, not the marks or figures: "109 ms" above "(100)"
    # reads as two values. A column that never wraps needs a header no wider than its
    # cells, hence the caption.
    table.add_column("default rate", justify="right")
    table.add_column("default", no_wrap=True)
    if probes:
        table.add_column("out latency", justify="right", no_wrap=True)
        table.caption = "out latency: measured (asked), docs/devices.md#latency"
        table.caption_justify = "left"
    for d in devices:
        marks = [m for m, on in (("input", d.default_input), ("output", d.default_output)) if on]
        table.add_row(
            str(d.index),
            d.name,
            d.hostapi,
            str(d.max_input_channels),
            str(d.max_output_channels),
            f"{d.default_samplerate_hz} Hz",
            ", ".join(marks),
            *([probe_text(probes[d.index])] if d.index in probes else [""] if probes else []),
        )
    return table


def probe_outputs(devices: list[DeviceInfo]) -> dict[int, OutputProbe]:
    """Each output device opened in turn as a call opens it (it plays silence until the
    latency ladder settles, about 0.3 s for a clean device): docs/devices.md#latency."""
    from aivoco.audio.engine import probe_output

    return {d.index: probe_output(d.index) for d in devices if d.max_output_channels > 0}


def devices(
    as_json: Annotated[
        bool, typer.Option("--json", metavar="", help="Print the devices as a JSON list.")
    ] = False,
    latency: Annotated[
        bool,
        typer.Option(
            "--latency",
            metavar="",
            help="Open each output device as a call would and show the output latency "
            "it settles on (measured, and the step asked of PortAudio).",
        ),
    ] = False,
) -> None:
    """List audio input and output devices (select them by index or name).

    Examples:
      aivoco devices
      aivoco devices --latency
      aivoco sts --input-device 3 --output-device pulse
    """

    def body() -> None:
        from aivoco.audio.devices import list_devices
        from aivoco.ui.console import make_console

        found = list_devices()
        probes = probe_outputs(found) if latency else {}
        if as_json:
            # For scripts "none" is an answer: the list, with the hint on stderr.
            rows = [d.as_dict() for d in found]
            for row in rows:
                if row["index"] in probes:
                    row["output_latency"] = probes[row["index"]].as_dict()
            typer.echo(json.dumps(rows, indent=2))
            if not found:
                typer.echo(f"aivoco: warning: {NO_DEVICES}", err=True)
            return
        if not found:
            raise DeviceError(NO_DEVICES)
        make_console().print(devices_table(found, probes))

    guarded(body)
