"""`aivoco call --agent ID`: a call to a configured agent (docs/protocols.md#call)."""

from __future__ import annotations

from typing import Any

from aivoco.cli.errors import guarded
from aivoco.cli.options import call_options
from aivoco.wire.driver import ProtocolName


@call_options("call")
def call(**options: Any) -> None:
    """Call an agent over the Twilio-style WebSocket: G.711 mu-law at 8 kHz both ways.

    Examples:
      aivoco call --agent AGENT_ID
      aivoco call --agent AGENT_ID --input q.wav --output a.wav --json
    """
    from aivoco.cli.run import run_command

    guarded(lambda: run_command(ProtocolName.CALL, options))
