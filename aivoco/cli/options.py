"""Options shared by `aivoco sts` and `aivoco call`, declared once as Annotated types."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

_AUDIO = "Audio"
_FILES = "Files and headless use"
_OUT = "Output"

Key = Annotated[
    str | None,
    typer.Option(
        "--key",
        metavar="KEY",
        envvar="AIVOCO_API_KEY",
        show_envvar=True,
        help="API key (never printed or logged).",
        show_default=False,
    ),
]
InputDevice = Annotated[
    str | None,
    typer.Option(
        "--input-device",
        metavar="ID|NAME",
        help="Microphone: index or name substring (see `aivoco devices`).",
        rich_help_panel=_AUDIO,
    ),
]
OutputDevice = Annotated[
    str | None,
    typer.Option(
        "--output-device",
        metavar="ID|NAME",
        help="Speaker: index or name substring (see `aivoco devices`).",
        rich_help_panel=_AUDIO,
    ),
]
ChunkMs = Annotated[
    int,
    typer.Option(
        "--chunk-ms",
        min=10,
        max=200,
        metavar="MS",
        help="Uplink frame length. Lower is lower latency; 20 ms is what telephony uses.",
        rich_help_panel=_AUDIO,
    ),
]
InputFile = Annotated[
    Path | None,
    typer.Option(
        "--input",
        metavar="FILE",
        help="Audio file instead of the microphone (any format libsndfile reads), "
        "sent in real time, then silence until the agent is quiet.",
        rich_help_panel=_FILES,
    ),
]
OutputFile = Annotated[
    Path | None,
    typer.Option(
        "--output",
        metavar="FILE",
        help="Write the agent's audio to this WAV instead of the speaker "
        "(real-time timeline, as a speaker would play it).",
        rich_help_panel=_FILES,
    ),
]
RecordFile = Annotated[
    Path | None,
    typer.Option(
        "--record",
        metavar="FILE",
        help="Stereo WAV of the call: you on the left, the agent on the right, time-aligned.",
        rich_help_panel=_FILES,
    ),
]
TranscriptFile = Annotated[
    Path | None,
    typer.Option(
        "--transcript",
        metavar="FILE",
        help="Append the call's events to this file as JSON Lines, as they happen.",
        rich_help_panel=_FILES,
    ),
]
IdleTimeout = Annotated[
    float,
    typer.Option(
        "--idle-timeout",
        min=0.1,
        metavar="SECONDS",
        help="With --input: hang up once the input ended and the agent was quiet this long.",
        rich_help_panel=_FILES,
    ),
]
MaxDuration = Annotated[
    float | None,
    typer.Option(
        "--max-duration",
        min=0.1,
        metavar="SECONDS",
        help="Hang up after this many seconds.",
        rich_help_panel=_FILES,
    ),
]
Plain = Annotated[
    bool,
    typer.Option(
        "--plain", help="Timestamped log lines instead of the live view.", rich_help_panel=_OUT
    ),
]
Json = Annotated[
    bool,
    typer.Option(
        "--json", help="One JSON object per event on stdout, for scripts.", rich_help_panel=_OUT
    ),
]
LogFile = Annotated[
    Path | None,
    typer.Option(
        "--log-file",
        metavar="FILE",
        help="Log every message sent and received (audio abbreviated to sizes; key masked).",
        rich_help_panel=_OUT,
    ),
]
ConnectTimeout = Annotated[
    float,
    typer.Option(
        "--connect-timeout",
        min=0.1,
        metavar="SECONDS",
        help="Give up if the call is not live after this long (the reference uses 10 s).",
    ),
]
