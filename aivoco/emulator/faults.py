"""Fault injection: the malformed messages `--garbage-every N` puts on the wire.

Every Nth message a session sends is garbage. Stream messages (sts `audio_response` /
`text_response`, call `media`) are *replaced*: the real one is lost, as corruption on
the wire would lose it. Control messages (auth, session, function, error, mark, clear)
are never lost: the garbage takes their slot and they go out right after it, so the
garbage rate stays exactly one in N while a session can still start and end (losing
`auth_success` would only test a client's timeout). N must be at least 2.

The kinds rotate so a client meets each of them; every one is something a strict
client must survive without crashing or ending the call:
* sts: `audio_response` whose `audio_data` is not base64, `audio_response` whose audio
  has an odd byte count (not PCM16), `text_response` without `text`, an unknown event.
* call: a text frame that is not JSON, a JSON frame that is not an object, `media`
  whose payload is not base64, an unknown event.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aivoco.emulator.common import SessionLog
from aivoco.emulator.records import SessionRecord

STS_GARBAGE_KINDS = ("audio_bad_base64", "audio_odd_bytes", "text_missing", "unknown_event")
CALL_GARBAGE_KINDS = ("not_json", "not_object", "media_bad_base64", "unknown_event")
UNKNOWN_EVENT = "emulator_unknown_event"


# One wire message of either protocol: (event, payload) for sts, a text frame for call.
M = TypeVar("M")


class GarbagePlan:
    """Counts a session's outgoing messages and puts garbage in every Nth slot.

    `send()` is the one send path of both protocols' sessions, so the slot rules above
    cannot drift apart between them.
    """

    def __init__(
        self, every: int | None, kinds: tuple[str, ...], record: SessionRecord, log: SessionLog
    ) -> None:
        self.every = every
        self.kinds = kinds
        self.record = record
        self.log = log
        self.slots = 0  # messages put on the wire so far, garbage included
        self._made = 0

    def take_slot(self) -> str | None:
        """Claim the next wire slot; returns a garbage kind if that slot is garbage."""
        self.slots += 1
        if self.every is None or self.slots % self.every:
            return None
        kind = self.kinds[self._made % len(self.kinds)]
        self._made += 1
        return kind

    async def send(
        self,
        raw: Callable[[M], Awaitable[None]],
        message: M,
        *,
        stream: bool,
        garbage: Callable[[str], M],
    ) -> None:
        """Put `message` on the wire with `raw`, unless its slot is garbage.

        A garbage slot sends `garbage(kind)` instead; a control message (`stream`
        False) then still goes out, in the next slot.
        """
        kind = self.take_slot()
        if kind is not None:
            self.record.garbage_sent += 1
            self.record.garbage_kinds[kind] += 1
            self.log.debug("garbage #%d (%s)", self.record.garbage_sent, kind)
            await raw(garbage(kind))
            if stream:
                return  # lost, as wire corruption would lose it
            self.take_slot()  # N >= 2, so the slot after garbage is never garbage
        await raw(message)


def sts_garbage(kind: str) -> tuple[str, Any]:
    """(event, payload) of a malformed STS message."""
    if kind == "audio_bad_base64":
        return "audio_response", {"audio_data": "%%% this is not base64 %%%"}
    if kind == "audio_odd_bytes":
        return "audio_response", {"audio_data": base64.b64encode(b"\x01\x02\x03").decode()}
    if kind == "text_missing":
        return "text_response", {}
    return UNKNOWN_EVENT, {"note": "aivoco emulator fault injection"}


def call_garbage(kind: str, stream_sid: str | None) -> str:
    """A malformed text frame for the call protocol."""
    if kind == "not_json":
        return "this is not JSON {"
    if kind == "not_object":
        return json.dumps(["media", 1, 2])
    if kind == "media_bad_base64":
        return json.dumps(
            {
                "event": "media",
                "streamSid": stream_sid,
                "media": {"chunk": 0, "timestamp": 0, "payload": "%%% not base64 %%%"},
            }
        )
    return json.dumps({"event": UNKNOWN_EVENT, "streamSid": stream_sid})
