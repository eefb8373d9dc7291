"""A faithful local stand-in for both Aivoco services (`aivoco emulate`).

One aiohttp server hosts the Speech-to-Speech Socket.IO service (docs/protocols.md#sts)
and the agent-call raw WebSocket route (docs/protocols.md#call). Its agent echoes: it
detects the end of each utterance, describes it in text, and plays it back in real
time; faults can be injected to test clients. The implementation is independent of the client-side
codecs in `aivoco.protocols`, so the two can check each other.

    with Emulator(EmulatorConfig(port=0, latency_ms=0)) as emu:
        ...  # connect a client to emu.sts_url or emu.call_url_for(key, agent)
        emu.wait_until(lambda: emu.sts_sessions and emu.sts_sessions[0].replies)
"""

from aivoco.emulator.config import DEFAULT_PORT, EmulatorConfig
from aivoco.emulator.records import (
    CallSessionRecord,
    FunctionCallRecord,
    MarkRecord,
    Reply,
    SessionRecord,
    StsSessionRecord,
    Utterance,
    key_fingerprint,
)
from aivoco.emulator.server import Emulator

__all__ = [
    "DEFAULT_PORT",
    "CallSessionRecord",
    "Emulator",
    "EmulatorConfig",
    "FunctionCallRecord",
    "MarkRecord",
    "Reply",
    "SessionRecord",
    "StsSessionRecord",
    "Utterance",
    "key_fingerprint",
]
