"""What the session's workers ask of the call, as values instead of shared flags.

The downlink, the uplink and the observer never touch the call's lifecycle or each
other's attributes: they return intents, and `Call._apply` carries each one out in one
place (lifecycle changes go to `lifecycle.py`, which decides what they mean).
"""

from __future__ import annotations

from dataclasses import dataclass

from aivoco.errors import AivocoError
from aivoco.session.lifecycle import EndReason
from aivoco.wire import events as ev


@dataclass(frozen=True)
class GoLive:
    """The server said the session is live (`Ready`)."""


@dataclass(frozen=True)
class ServerEnded:
    event: ev.Ended


@dataclass(frozen=True)
class ConnectionLost:
    event: ev.Disconnected


@dataclass(frozen=True)
class Fail:
    """A part of the call failed: end it with this error."""

    error: AivocoError
    reason: EndReason = EndReason.ERROR


@dataclass(frozen=True)
class HangUp:
    """End the call gracefully (a timer ran out, the user asked)."""

    reason: EndReason


@dataclass(frozen=True)
class AgentActive:
    """The agent showed a sign of life at `at` (time.monotonic()): resets the idle timer."""

    at: float


Intent = GoLive | ServerEnded | ConnectionLost | Fail | HangUp | AgentActive
