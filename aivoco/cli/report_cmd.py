"""`aivoco report`: draw a finished (or crashed) call as one self-contained HTML page.

Everything heavy (numpy envelopes, matplotlib) is imported inside the command, so the
rest of the CLI starts as fast as before.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from aivoco.cli.configured import PROFILE_PARAM, ProfileOption
from aivoco.cli.errors import guarded
from aivoco.errors import AudioFileError
from aivoco.redact import redact, register_secret


def report(
    ctx: typer.Context,
    transcript: Annotated[
        Path,
        typer.Argument(
            metavar="CALL.jsonl",
            help="The call's --transcript file (JSON Lines).",
            show_default=False,
        ),
    ],
    recording: Annotated[
        Path | None,
        typer.Option(
            "--recording",
            metavar="CALL.wav",
            help="The call's --record stereo WAV (levels, the agent's turns). "
            "Default: the recording the transcript names, if it is there.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="FILE",
            help="Where to write the HTML. Default: CALL.html beside the transcript.",
            show_default=False,
        ),
    ] = None,
    png: Annotated[
        Path | None,
        typer.Option("--png", metavar="FILE", help="Also write the timeline alone as a PNG."),
    ] = None,
    call: Annotated[
        int | None,
        typer.Option(
            "--call",
            metavar="N",
            min=1,
            help="Which call, when the transcript holds several appended (default: the last).",
            show_default=False,
        ),
    ] = None,
    profile: ProfileOption = None,
) -> None:
    """Draw a call as one HTML page: levels, turns, latency, functions, problems.

    Needs the optional extra: pip install 'aivoco\\[report]'. A profile gives only
    its key, to be masked in the page.
    """

    def body() -> None:
        # The key never reaches the page: transcripts hold none, but a server can echo
        # it into text, and the key the calls used is the one it would echo.
        for secret in _call_keys(ctx, profile):
            register_secret(secret)
        if not transcript.exists():
            raise AudioFileError(f"transcript not found: {transcript}")
        if recording is not None and not recording.exists():
            raise AudioFileError(f"recording not found: {recording}")
        from aivoco.report import render_report

        result = render_report(transcript, recording, out, png, call=call, discover_recording=True)
        err = Console(stderr=True, highlight=False)
        for warning in result.warnings:
            err.print(f"[yellow]aivoco: warning:[/] {escape(redact(warning))}", soft_wrap=True)
        levels = f", levels from {result.recording_path}" if result.recording_path else ""
        typer.echo(
            f"report written to {result.html_path} ({result.duration_s:.1f} s, "
            f"{result.turns} turn(s), {result.answered} answered{levels})"
        )
        if result.png_path is not None:
            typer.echo(f"timeline written to {result.png_path}")

    guarded(body)


def _call_keys(ctx: typer.Context, profile: str | None) -> list[str | None]:
    """The keys a call could have used: $AIVOCO_API_KEY and the config file's (the
    profile --profile or $AIVOCO_PROFILE names, else [defaults]), both masked: one may
    have made the call, whichever wins for a call today. A bad config file or an
    unknown profile is a usage error (exit 2), as for a call."""
    from dataclasses import replace

    from aivoco.cli.configured import given_values, resolve_given
    from aivoco.session.options import cli_fields
    from aivoco.wire.driver import ProtocolName

    given = given_values(ctx, {PROFILE_PARAM: profile})
    # Without its variable, the key option resolves to the file's key.
    key = [(n, d, replace(info, envvar=None)) for n, d, info in cli_fields("sts") if n == "key"]
    resolved = resolve_given(given, key, ProtocolName.STS)
    return [os.environ.get("AIVOCO_API_KEY"), resolved.values.get("key")]
