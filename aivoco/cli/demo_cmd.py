"""`aivoco demo [sts|call]`: a complete call against the built-in emulator.

No key and no network: the emulator runs in-process on a free loopback port, the
shipped utterance stands in for the microphone, and the reply plays through the speaker
when one can be opened, else goes to a WAV file whose path is printed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from aivoco.cli.errors import guarded
from aivoco.cli.options import LatencyMs, call_options
from aivoco.wire.driver import ProtocolName

DEMO_KEY = "aivoco-demo-key"
FALLBACK_PREFIX = "aivoco-demo-"
DEMO_AGENT = "demo-agent"
DEMO_SYSTEM = "You are the aivoco demo agent. Answer briefly."


@contextmanager
def _fallback_file(protocol: ProtocolName, fields: dict[str, Any]) -> Iterator[Path | None]:
    """Where the reply goes when no speaker can be opened: a new file of our own in the
    temporary directory (created exclusively, so two demos never share one and a
    planted symlink is never followed), removed again if the speaker worked."""
    if fields.get("output_file") is not None or fields.get("output_device") is not None:
        yield None
        return
    fd, name = tempfile.mkstemp(prefix=f"{FALLBACK_PREFIX}{protocol.value}-", suffix=".wav")
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            if path.stat().st_size == 0:  # the speaker played the reply: nothing was written
                path.unlink()


@call_options("demo")
def demo(
    protocol: Annotated[
        Literal["sts", "call"],
        typer.Argument(
            metavar="PROTOCOL",
            help="sts (the Speech-to-Speech API) or call (an agent call).",
        ),
    ] = "sts",
    latency_ms: LatencyMs = 300.0,
    **options: Any,
) -> None:
    """Run a call against the built-in emulator: no key, no network needed.

    Examples:
      aivoco demo
      aivoco demo call --plain
      aivoco demo --json --output reply.wav
    """
    chosen = ProtocolName(protocol)

    def body() -> None:
        from aivoco.cli.options import split_options
        from aivoco.cli.run import run_call
        from aivoco.emulator import Emulator, EmulatorConfig, demo_functions
        from aivoco.emulator.assets import demo_utterance_path
        from aivoco.session.options import CallOptions

        fields, output = split_options(dict(options))
        config = EmulatorConfig(host="127.0.0.1", port=0, latency_ms=latency_ms)
        output.mode()  # a usage error before the emulator starts
        with Emulator(config) as emu, _fallback_file(chosen, fields) as fallback:
            sts = chosen is ProtocolName.STS
            opts = CallOptions(
                protocol=chosen,
                key=DEMO_KEY,  # a key is a key: registered and masked like a real one
                url=emu.sts_url if sts else emu.call_url,
                agent=DEMO_AGENT,
                system=DEMO_SYSTEM,
                functions=Path(demo_functions.__file__) if sts else None,
                input_file=demo_utterance_path(),
                idle_timeout_s=2.0,
                max_duration_s=60.0,
                speaker_fallback_file=fallback,
                label="voice female (emulator)" if sts else f"agent {DEMO_AGENT} (emulator)",
                **fields,
            )
            run_call(opts, output)

    guarded(body)
