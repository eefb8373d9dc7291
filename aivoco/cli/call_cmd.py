"""`aivoco call --agent ID`: a call to a configured agent (protocol notes section 2)."""

from __future__ import annotations

from typing import Annotated

import typer

from aivoco.cli import options as o
from aivoco.cli.callrun import CommonOptions, run_call
from aivoco.cli.common import require_key, resolve_url
from aivoco.cli.errors import guarded
from aivoco.errors import UsageError
from aivoco.protocols.call_driver import DEFAULT_URL, CallDriver

# 20 ms = 160 mu-law bytes: the frame size telephony peers (Twilio Media Streams) use.
DEFAULT_CHUNK_MS = 20


def call(
    agent: Annotated[
        str, typer.Option("--agent", metavar="ID", help="The agent to call.", show_default=False)
    ],
    key: o.Key = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="BASE",
            envvar="AIVOCO_CALL_URL",
            show_envvar=True,
            help=f"Base URL (ws/wss); the call goes to BASE/KEY/AGENT. Default: {DEFAULT_URL}",
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
    """Call an agent over the Twilio-style WebSocket: G.711 mu-law at 8 kHz both ways."""

    def body() -> None:
        api_key = require_key(key)
        if not agent.strip():
            raise UsageError("--agent must not be empty")
        base = resolve_url(url, "AIVOCO_CALL_URL", DEFAULT_URL, ("ws", "wss"))
        driver = CallDriver(base, api_key, agent.strip())
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
        )
        run_call(driver, opts, label=f"agent {agent}")

    guarded(body)
