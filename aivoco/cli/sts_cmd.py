"""`aivoco sts`: a call to the Speech-to-Speech API (docs/protocols.md#sts)."""

from __future__ import annotations

from typing import Any

from aivoco.cli.errors import guarded
from aivoco.cli.options import call_options
from aivoco.wire.driver import ProtocolName


@call_options("sts")
def sts(**options: Any) -> None:
    """Talk to the Speech-to-Speech API: 16 kHz PCM up, 24 kHz PCM down.

    Examples:
      aivoco sts --voice male --system "Be brief."
      aivoco sts --input q.wav --output a.wav --transcript call.jsonl --plain
    """
    from aivoco.cli.run import run_command

    guarded(lambda: run_command(ProtocolName.STS, options))
