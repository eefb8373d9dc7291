"""`aivoco sts`: a call to the Speech-to-Speech API (protocol notes section 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aivoco.cli import options as o
from aivoco.cli.callrun import CommonOptions, run_call
from aivoco.cli.common import require_key, resolve_url, text_or_file
from aivoco.cli.errors import guarded
from aivoco.protocols.sts_codec import VOICE_ALIASES, FunctionSpec
from aivoco.protocols.sts_driver import DEFAULT_URL, StsDriver

# 20 ms frames: the usual speech-frame size, so the agent hears speech as soon as it is
# spoken; 50 events/s cost ~40 % framing overhead on ~256 kbit/s, trivial for the link.
DEFAULT_CHUNK_MS = 20


def sts(
    voice: Annotated[
        str,
        typer.Option(
            "--voice",
            metavar="NAME",
            help="Voice, passed through as voice_choice. Seen: " + ", ".join(VOICE_ALIASES) + ".",
        ),
    ] = "female",
    system: Annotated[
        str | None,
        typer.Option("--system", metavar="TEXT|@FILE", help="System message, or @FILE."),
    ] = None,
    functions: Annotated[
        Path | None,
        typer.Option(
            "--functions",
            metavar="FILE",
            help="Custom functions: a .py file (public functions) or a .json list.",
        ),
    ] = None,
    function_timeout: Annotated[
        float,
        typer.Option("--function-timeout", min=0.1, metavar="SECONDS", help="Per function call."),
    ] = 10.0,
    key: o.Key = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="URL",
            envvar="AIVOCO_STS_URL",
            show_envvar=True,
            help=f"Service URL (http/https/ws/wss). Default: {DEFAULT_URL}",
        ),
    ] = None,
    input_device: o.InputDevice = None,
    output_device: o.OutputDevice = None,
    input_file: o.InputFile = None,
    output_file: o.OutputFile = None,
    record: o.RecordFile = None,
    transcript: o.TranscriptFile = None,
    idle_timeout: o.IdleTimeout = 3.0,
    max_duration: o.MaxDuration = None,
    chunk_ms: o.ChunkMs = DEFAULT_CHUNK_MS,
    plain: o.Plain = False,
    as_json: o.Json = False,
    log_file: o.LogFile = None,
    connect_timeout: o.ConnectTimeout = 10.0,
) -> None:
    """Talk to the Speech-to-Speech API: 16 kHz PCM up, 24 kHz PCM down."""

    def body() -> None:
        api_key = require_key(key)
        service = resolve_url(url, "AIVOCO_STS_URL", DEFAULT_URL, ("http", "https", "ws", "wss"))
        registry = None
        specs: tuple[FunctionSpec, ...] = ()
        if functions is not None:
            from aivoco.session.functions import load_functions

            registry = load_functions(functions)
            specs = registry.specs
        driver = StsDriver(
            service, api_key, voice, system_message=text_or_file(system), functions=specs
        )
        opts = CommonOptions(
            input_device=input_device,
            output_device=output_device,
            input_file=input_file,
            output_file=output_file,
            record_file=record,
            transcript_file=transcript,
            idle_timeout_s=idle_timeout,
            max_duration_s=max_duration,
            chunk_ms=chunk_ms,
            plain=plain,
            json=as_json,
            log_file=log_file,
            connect_timeout_s=connect_timeout,
            function_timeout_s=function_timeout,
        )
        run_call(driver, opts, label=f"voice {voice}", functions=registry)

    guarded(body)
