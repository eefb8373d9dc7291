"""`aivoco demo [sts|call]`: a complete call against the built-in emulator.

No key and no network: the emulator runs in-process on a free loopback port, the
shipped utterance stands in for the microphone, and the reply plays through the speaker
when one can be opened, else goes to a WAV file whose path is printed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from aivoco.cli.errors import guarded
from aivoco.cli.options import call_options
from aivoco.wire.driver import ProtocolName

DEMO_KEY = "aivoco-demo-key"
DEMO_AGENT = "demo-agent"
DEMO_SYSTEM = "You are the aivoco demo agent. Answer briefly."


@call_options("demo")
def demo(
    protocol: Annotated[
        ProtocolName, typer.Argument(help="sts: Speech-to-Speech API; call: agent call.")
    ] = ProtocolName.STS,
    latency_ms: Annotated[
        int,
        typer.Option("--latency-ms", min=0, max=10_000, help="The emulated agent's delay."),
    ] = 300,
    **options: Any,
) -> None:
    """Run a call against the built-in emulator: no key, no network needed."""

    def body() -> None:
        from aivoco.cli.options import split_options
        from aivoco.cli.run import run_call
        from aivoco.emulator import Emulator, EmulatorConfig, demo_functions
        from aivoco.emulator.assets import demo_utterance_path
        from aivoco.session.options import CallOptions

        fields, output = split_options(dict(options))
        fallback = Path(tempfile.gettempdir()) / f"aivoco-demo-{protocol.value}-reply.wav"
        config = EmulatorConfig(host="127.0.0.1", port=0, latency_ms=latency_ms)
        output.mode()  # a usage error before the emulator starts
        with Emulator(config) as emu:
            sts = protocol is ProtocolName.STS
            opts = CallOptions(
                protocol=protocol,
                key=DEMO_KEY,  # a key is a key: registered and masked like a real one
                url=emu.sts_url if sts else emu.call_url,
                agent=DEMO_AGENT,
                system=DEMO_SYSTEM,
                functions=Path(demo_functions.__file__) if sts else None,
                input_file=demo_utterance_path(),
                idle_timeout_s=2.0,
                max_duration_s=60.0,
                speaker_fallback_file=None if fields.get("output_file") else fallback,
                label="voice female (emulator)" if sts else f"agent {DEMO_AGENT} (emulator)",
                **fields,
            )
            run_call(opts, output)

    guarded(body)
