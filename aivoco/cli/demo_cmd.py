"""`aivoco demo [sts|call]`: a complete call against the built-in emulator.

No key and no network: the emulator runs in-process on a free loopback port, the
shipped utterance stands in for the microphone, and the reply plays through the speaker
when one can be opened, else goes to a WAV file whose path is printed.
"""

from __future__ import annotations

import tempfile
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from aivoco.cli import options as o
from aivoco.cli.callrun import CommonOptions, run_call
from aivoco.cli.errors import guarded
from aivoco.redact import register_secret

DEMO_KEY = "aivoco-demo-key"
DEMO_AGENT = "demo-agent"
DEMO_SYSTEM = "You are the aivoco demo agent. Answer briefly."


class Protocol(str, Enum):
    sts = "sts"
    call = "call"


def demo(
    protocol: Annotated[
        Protocol, typer.Argument(help="sts: Speech-to-Speech API; call: agent call.")
    ] = Protocol.sts,
    output_device: o.OutputDevice = None,
    output_file: Annotated[
        Path | None,
        typer.Option(
            "--output",
            metavar="FILE",
            help="Write the reply here instead of the speaker. Without a speaker it goes "
            "to a file in the temporary directory.",
        ),
    ] = None,
    record: o.RecordFile = None,
    transcript: o.TranscriptFile = None,
    latency_ms: Annotated[
        int,
        typer.Option("--latency-ms", min=0, max=10_000, help="The emulated agent's delay."),
    ] = 300,
    plain: o.Plain = False,
    as_json: o.Json = False,
    log_file: o.LogFile = None,
) -> None:
    """Run a call against the built-in emulator: no key, no network needed."""

    def body() -> None:
        from aivoco.emulator import Emulator, EmulatorConfig, demo_functions
        from aivoco.emulator.assets import demo_utterance_path
        from aivoco.protocols.call_driver import CallDriver
        from aivoco.protocols.sts_driver import StsDriver
        from aivoco.session.functions import load_functions

        register_secret(DEMO_KEY)  # a key is a key: treated like a real one
        fallback = Path(tempfile.gettempdir()) / f"aivoco-demo-{protocol.value}-reply.wav"
        opts = CommonOptions(
            input_file=demo_utterance_path(),
            output_file=output_file,
            output_device=output_device,
            record_file=record,
            transcript_file=transcript,
            idle_timeout_s=2.0,
            max_duration_s=60.0,
            plain=plain,
            json=as_json,
            log_file=log_file,
            speaker_fallback_file=None if output_file else fallback,
        )
        opts.validate()
        config = EmulatorConfig(host="127.0.0.1", port=0, latency_ms=latency_ms)
        with Emulator(config) as emu:
            if protocol is Protocol.sts:
                registry = load_functions(Path(demo_functions.__file__))
                driver = StsDriver(
                    emu.sts_url,
                    DEMO_KEY,
                    "female",
                    system_message=DEMO_SYSTEM,
                    functions=registry.specs,
                )
                run_call(driver, opts, label="voice female (emulator)", functions=registry)
            else:
                call = CallDriver(emu.call_url, DEMO_KEY, DEMO_AGENT)
                run_call(call, opts, label=f"agent {DEMO_AGENT} (emulator)")

    guarded(body)
