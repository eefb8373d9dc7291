"""`aivoco devices`: the audio devices PortAudio offers, as a table or JSON."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from aivoco.audio.devices import DeviceInfo, list_devices
from aivoco.cli.errors import guarded


def devices_table(devices: list[DeviceInfo]) -> Table:
    table = Table(title="Audio devices", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("name")
    table.add_column("host API")
    table.add_column("in", justify="right")
    table.add_column("out", justify="right")
    table.add_column("default rate", justify="right")
    table.add_column("default")
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
        )
    return table


def devices(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the devices as a JSON list.")
    ] = False,
) -> None:
    """List audio input and output devices (select them by index or name)."""

    def body() -> None:
        found = list_devices()
        if as_json:
            typer.echo(json.dumps([d.as_dict() for d in found], indent=2))
        else:
            Console().print(devices_table(found))

    guarded(body)
