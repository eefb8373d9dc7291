"""One agent call: a Twilio-Media-Streams-style conversation (docs/protocols.md#call).

What the emulator expects from a client, and checks (each miss is a counted, logged
deviation; the call goes on, as a lenient production server would let it):
* an empty text message first, then `start` with `sequenceNumber` "1", `tracks`
  ["inbound"], `mediaFormat` audio/x-mulaw 8000 Hz mono, AC/MZ/CA-prefixed SIDs and a
  top-level `streamSid` equal to `start.streamSid`;
* `media` with `track` "inbound", `chunk` counting 1, 2, 3..., a numeric `timestamp`
  (ms, string or number) that never goes back, and a base64 payload of mu-law bytes;
* `mark` echoes of the marks we sent, and finally `stop`;
* one `sequenceNumber` counter over every numbered message after `start` (media, and
  mark or stop when they carry one): each is the previous one plus 1. The first may be
  1 or 2, since the call doc shows `start` as "1" but also fills `chunk` and
  `sequenceNumber` from one variable (docs/protocols.md#call-media).

What it sends: `media` frames of 160 mu-law bytes (20 ms at 8 kHz) with `chunk`
counting from 1 over the whole call and `timestamp` = ms since `start`, a `mark`
named `reply-N` after each complete reply, and `clear` on barge-in.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

import numpy as np
from aiohttp import web

from aivoco.audio.chunk import Int16Array
from aivoco.audio.g711 import ulaw_decode, ulaw_encode
from aivoco.emulator.agent import EchoAgent
from aivoco.emulator.common import SessionLog, note_deviation, short
from aivoco.emulator.config import EmulatorConfig
from aivoco.emulator.faults import CALL_GARBAGE_KINDS, GarbagePlan, call_garbage
from aivoco.emulator.records import CallSessionRecord, MarkRecord, Reply

RATE_HZ = 8000
FRAME_BYTES = 160  # 20 ms of mu-law at 8 kHz
_ULAW_SILENCE = 0xFF  # the code for 0: pads the last frame of a reply


class CallAgent(EchoAgent):
    frame_s = FRAME_BYTES / RATE_HZ

    def __init__(self, session: CallSession) -> None:
        super().__init__(session.config, session.record, RATE_HZ, session.log)
        self.session = session

    async def send_text(self, text: str) -> None:
        # The call protocol has no text channel; the agent logs the text instead.
        return None

    def encode_reply(self, samples: Int16Array) -> list[Any]:
        codes = ulaw_encode(samples)
        pad = (-codes.size) % FRAME_BYTES
        if pad:
            codes = np.concatenate([codes, np.full(pad, _ULAW_SILENCE, np.uint8)])
        return [codes[i : i + FRAME_BYTES].tobytes() for i in range(0, codes.size, FRAME_BYTES)]

    async def send_frame(self, frame: Any) -> None:
        await self.session.send_media(frame)

    async def on_finished(self, reply: Reply) -> None:
        await self.session.send_mark(f"reply-{reply.index}")

    async def on_interrupted(self, reply: Reply) -> None:
        await self.session.send_clear()


class CallSession:
    def __init__(
        self,
        config: EmulatorConfig,
        record: CallSessionRecord,
        ws: web.WebSocketResponse,
        log: SessionLog,
    ) -> None:
        self.config = config
        self.record = record
        self.ws = ws
        self.log = log
        self.plan = GarbagePlan(config.garbage_every, CALL_GARBAGE_KINDS, record, log)
        self.agent = CallAgent(self)
        self.shutting_down = False
        self._started_at: float | None = None
        self._texts = 0
        self._chunk_out = 0
        self._expect_chunk = 1
        self._last_seq: int | None = None  # of the last numbered message after start
        self._last_ts: float | None = None

    def _deviate(self, kind: str, detail: str) -> None:
        note_deviation(self.record, self.log, kind, detail)

    # -- sending -----------------------------------------------------------------------
    async def _send(self, message: dict[str, Any], *, stream: bool) -> None:
        """Send one message to the client, through the --garbage-every plan."""
        if self.ws.closed:
            return
        try:
            await self.plan.send(
                self._send_text, json.dumps(message), stream=stream, garbage=self._garbage
            )
        except ConnectionError as exc:
            # The peer vanished mid-reply; the receive loop notices and ends the session.
            self.log.debug("send failed: %s", exc)

    async def _send_text(self, text: str) -> None:
        self.record.messages_sent += 1
        await self.ws.send_str(text)

    def _garbage(self, kind: str) -> str:
        return call_garbage(kind, self.record.stream_sid)

    async def send_media(self, frame: bytes) -> None:
        self._chunk_out += 1
        self.record.media_sent += 1
        started = self._started_at if self._started_at is not None else time.monotonic()
        payload = base64.b64encode(frame).decode("ascii")
        media = {
            "chunk": self._chunk_out,
            "timestamp": round((time.monotonic() - started) * 1000),
            "payload": payload,
        }
        message = {"event": "media", "streamSid": self.record.stream_sid, "media": media}
        await self._send(message, stream=True)

    async def send_mark(self, name: str) -> None:
        self.record.marks.append(MarkRecord(name, time.monotonic()))
        mark = {"event": "mark", "streamSid": self.record.stream_sid, "mark": {"name": name}}
        await self._send(mark, stream=False)

    async def send_clear(self) -> None:
        self.record.clears_sent += 1
        await self._send({"event": "clear", "streamSid": self.record.stream_sid}, stream=False)

    # -- receiving ---------------------------------------------------------------------
    def on_binary(self, data: bytes) -> None:
        self.record.messages_received += 1
        self._deviate("binary_frame", f"{len(data)} bytes; every message is a JSON text frame")

    async def on_text(self, data: str) -> None:
        self.record.messages_received += 1
        self._texts += 1
        if data == "":
            if self._texts == 1:
                self.record.handshake_seen = True
            else:
                self._deviate("empty_message", f"message {self._texts} is empty")
            return
        try:
            msg = json.loads(data)
        except ValueError:
            self._deviate("not_json", short(data))
            return
        if not isinstance(msg, dict):
            self._deviate("not_object", short(msg))
            return
        event = msg.get("event")
        self.record.events_received[str(event)] += 1
        if event == "start":
            self._on_start(msg)
        elif event not in ("media", "mark", "stop"):
            self._deviate("unknown_event", short(event))
        elif self._started_at is None:
            self._deviate("before_start", f"{event} before start")
        else:
            self._check_seq(event, msg)
            if event == "media":
                self._on_media(msg)
            elif event == "mark":
                self._on_mark(msg)
            else:
                await self._on_stop(msg)

    def _on_start(self, msg: dict[str, Any]) -> None:
        if self._started_at is not None:
            self._deviate("start", "a second start message")
            return
        if not self.record.handshake_seen:
            self._deviate("handshake", "start without the empty message before it")
        start = msg.get("start")
        if not isinstance(start, dict):
            self._deviate("start", "no start object")
            start = {}
        self.record.start = start
        for problem in _start_problems(msg, start):
            self._deviate("start", problem)
        sid = start.get("streamSid") if isinstance(start.get("streamSid"), str) else None
        self.record.stream_sid = sid or msg.get("streamSid") or "MZemulator"
        call_sid = start.get("callSid")
        self.record.call_sid = call_sid if isinstance(call_sid, str) else None
        self._started_at = time.monotonic()
        self.agent.start()
        self.log.info("start: streamSid %s, callSid %s", self.record.stream_sid, call_sid)

    def _on_media(self, msg: dict[str, Any]) -> None:
        media = msg.get("media")
        if not isinstance(media, dict):
            self._deviate("media", "no media object")
            return
        if media.get("track") != "inbound":
            self._deviate("media_track", f"track {short(media.get('track'))}")
        chunk = _as_int(media.get("chunk"))
        if chunk != self._expect_chunk:
            got = short(media.get("chunk"))
            self._deviate("media_chunk", f"chunk {got}, expected {self._expect_chunk}")
        self._expect_chunk = (chunk if chunk is not None else self._expect_chunk) + 1
        self._check_timestamp(media.get("timestamp"))
        payload = media.get("payload")
        try:
            if not isinstance(payload, str):
                raise ValueError("payload is not a string")
            codes = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            self._deviate("media_payload", str(exc))
            return
        self.record.media_received += 1
        self.record.media_bytes += len(codes)
        if codes:
            self.agent.feed(ulaw_decode(codes))

    def _check_seq(self, event: str, msg: dict[str, Any]) -> None:
        """One counter over media, mark and stop, as a client numbers what it sends.

        Checking media alone flagged a correct client (aivoco's `CallEncoder` numbers
        its mark answers too) on every media message after a mark. Media must carry a
        number; a mark or stop without one is accepted and leaves the counter alone: no
        source shows their shape, and a Twilio-style echo of our mark has no number.
        """
        if event != "media" and "sequenceNumber" not in msg:
            return
        value = msg.get("sequenceNumber")
        seq = _as_int(value)
        if seq is None:
            self._deviate("sequence_number", f"{event}: not a number: {short(value)}")
            return
        allowed = {1, 2} if self._last_seq is None else {self._last_seq + 1}
        if seq not in allowed:
            self._deviate("sequence_number", f"{event}: {seq}, expected {sorted(allowed)}")
        self._last_seq = seq

    def _check_timestamp(self, value: Any) -> None:
        try:
            ts = float(value)
        except (TypeError, ValueError):
            self._deviate("timestamp", f"not a number of ms: {short(value)}")
            return
        if self._last_ts is not None and ts < self._last_ts:
            self._deviate("timestamp", f"went back from {self._last_ts:g} to {ts:g}")
        self._last_ts = ts

    def _on_mark(self, msg: dict[str, Any]) -> None:
        mark = msg.get("mark")
        name = mark.get("name") if isinstance(mark, dict) else None
        for m in self.record.marks:
            if m.name == name and m.answered_at is None:
                m.answered_at = time.monotonic()
                self.log.info("mark %s answered after %.2f s", name, m.answered_at - m.sent_at)
                return
        self._deviate("mark", f"answers no outstanding mark: {short(name)}")

    async def _on_stop(self, msg: dict[str, Any]) -> None:
        self.record.stop_received = True
        await self.agent.aclose()
        self.log.info("stop received")

    async def finish(self, reason: str) -> None:
        await self.agent.aclose()
        r = self.record
        r.closed_at = time.monotonic()
        r.close_reason = reason
        self.log.info(
            "closed (%s) after %.1f s: %d media in (%d bytes), %d media out, "
            "%d utterance(s), %d reply(ies), %d barge-in(s), marks answered %d/%d, "
            "%d message(s) sent (%d garbage), %d deviation(s)",
            reason,
            r.closed_at - r.connected_at,
            r.media_received,
            r.media_bytes,
            r.media_sent,
            len(r.utterances),
            len(r.replies),
            r.barge_ins,
            len(r.marks_answered),
            len(r.marks),
            r.messages_sent,
            r.garbage_sent,
            r.deviation_total,
        )


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _start_problems(msg: dict[str, Any], start: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if msg.get("sequenceNumber") != "1":
        problems.append(f'sequenceNumber {short(msg.get("sequenceNumber"))}, expected "1"')
    if start.get("tracks") != ["inbound"]:
        problems.append(f'tracks {short(start.get("tracks"))}, expected ["inbound"]')
    fmt = start.get("mediaFormat")
    want = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    if not isinstance(fmt, dict) or any(fmt.get(k) != v for k, v in want.items()):
        problems.append(f"mediaFormat {short(fmt)}, expected {want}")
    for field, prefix in (("accountSid", "AC"), ("streamSid", "MZ"), ("callSid", "CA")):
        value = start.get(field)
        if not isinstance(value, str) or not value.startswith(prefix) or len(value) <= 2:
            problems.append(f"{field} {short(value)} should be {prefix} followed by an id")
    if msg.get("streamSid") != start.get("streamSid"):
        problems.append("top-level streamSid differs from start.streamSid")
    if not isinstance(start.get("customParameters", {}), dict):
        problems.append("customParameters is not an object")
    return problems
