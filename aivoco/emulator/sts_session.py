"""One Speech-to-Speech connection: call state, billing, functions.

Protocol: docs/protocols.md#sts (flow: docs/protocols.md#sts-flow). Decisions where the
sources leave room, chosen to be what a strict real server would do:
* A bad key (empty, or not in `--accept-key`) gets `auth_failed {message, credits: 0}`
  and nothing else: the documented flow answers `start_call` with `auth_success` *or*
  `auth_failed`, and also sending `error {type: invalid_api_key}` would make a client
  report one failure twice. The connection stays open, so a client may retry.
* A valid key with no credits left gets `auth_success {credits: 0}` then
  `error {type: insufficient_credits}`, no `session_ready`.
* Credits are a balance per key that lasts as long as the emulator, so a second call
  sees what the first one left. Session time runs from `session_ready`; used =
  minutes x cost_per_minute. When the balance is used up mid-call the server sends
  `session_ended {reason: insufficient_user_credits, remaining_credits: 0}` and
  disconnects.
* `stop_call` ends the call with `session_ended {reason: stopped_by_user}`; the
  connection stays open (the client disconnects, or starts another call).
* `audio_data` is checked strictly (`aivoco.emulator.sts_audio`): `audio_data` must be
  strict base64 of a non-empty, even number of bytes (PCM16), `has_audio` a boolean
  and `max_amplitude` a number in 0..1; otherwise `error {type: invalid_audio}`, the
  chunk is dropped and the call goes on. Flags that disagree with the samples are only
  logged deviations. Audio outside a call is ignored (counted, logged once). A message
  over 1 MB closes the connection, as the JS server's `maxHttpBufferSize` does
  (enforced by python-engineio).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aivoco.audio.chunk import AudioChunk, Int16Array
from aivoco.audio.resample import resample_once
from aivoco.emulator.agent import EchoAgent
from aivoco.emulator.billing import Account, Ledger
from aivoco.emulator.common import EmitEvent, SessionLog, note_deviation, short
from aivoco.emulator.config import EmulatorConfig
from aivoco.emulator.faults import STS_GARBAGE_KINDS, GarbagePlan, sts_garbage
from aivoco.emulator.function_calls import FunctionBroker
from aivoco.emulator.functions import (
    UNITS_PER_CALL,
    DeclaredFunction,
    definition_units,
    parse_functions,
)
from aivoco.emulator.records import StsSessionRecord, Utterance, key_fingerprint
from aivoco.emulator.sts_audio import IN_RATE_HZ, OUT_RATE_HZ, check_audio_data
from aivoco.errors import AudioFormatError

# Control messages are never lost to --garbage-every (see aivoco.emulator.faults).
STREAM_EVENTS = frozenset({"audio_response", "text_response"})


def _credits(x: float) -> float:
    return round(x, 4)


@dataclass(frozen=True)
class StsLink:
    """What a session may do to its own connection, and nothing else.

    The service builds one per client; the session never sees the Socket.IO server,
    other clients or the service's bookkeeping.
    """

    send: EmitEvent  # one event to this client, exactly as given (no fault injection)
    disconnect: Callable[[], Awaitable[None]]  # server-side disconnect, bounded in time


class StsAgent(EchoAgent):
    def __init__(self, session: StsSession) -> None:
        super().__init__(session.config, session.record, IN_RATE_HZ, session.log)
        self.session = session
        self.frame_s = session.config.sts_reply_chunk_ms / 1000
        self._next_function = 0

    async def before_reply(self, utt: Utterance) -> str:
        specs = self.session.functions
        if not specs:
            return ""
        spec = specs[self._next_function % len(specs)]
        self._next_function += 1
        return await self.session.call_function(spec)

    async def send_text(self, text: str) -> None:
        await self.session.emit("text_response", {"text": text})

    def encode_reply(self, samples: Int16Array) -> list[Any]:
        up = resample_once(AudioChunk(samples, IN_RATE_HZ), OUT_RATE_HZ).mono_samples()
        step = OUT_RATE_HZ * self.session.config.sts_reply_chunk_ms // 1000
        return [up[i : i + step] for i in range(0, up.size, step)]

    async def send_frame(self, frame: Any) -> None:
        await self.session.emit(
            "audio_response", {"audio_data": AudioChunk(frame, OUT_RATE_HZ).to_base64()}
        )


class StsSession:
    """One client connection, wired only to what it needs.

    `link` sends to and disconnects this client; `ledger` opens the `Account` of the key
    `start_call` brings, which then pays for the call and its functions. The session
    never sees the service that created it.
    """

    def __init__(
        self,
        config: EmulatorConfig,
        record: StsSessionRecord,
        log: SessionLog,
        link: StsLink,
        ledger: Ledger,
    ) -> None:
        self.config = config
        self.record = record
        self.log = log
        self._link = link
        self._ledger = ledger  # only to open the account of the key start_call brings
        self.plan = GarbagePlan(config.garbage_every, STS_GARBAGE_KINDS, record, log)
        self.connected = True
        self.agent: StsAgent | None = None
        self.account: Account | None = None  # set once a key is accepted
        self.functions: list[DeclaredFunction] = []
        self._call_started: float | None = None
        self._balance = 0.0
        self._credit_timer: asyncio.Task[None] | None = None
        self.broker = FunctionBroker(self.emit, record, log, config.function_timeout_s)

    @property
    def in_call(self) -> bool:
        return self._call_started is not None

    # -- sending -----------------------------------------------------------------------
    async def emit(self, event: str, data: Any) -> None:
        """Send one event to the client, through the --garbage-every plan."""
        if not self.connected:
            return
        stream = event in STREAM_EVENTS
        await self.plan.send(self._send, (event, data), stream=stream, garbage=sts_garbage)

    async def _send(self, message: tuple[str, Any]) -> None:
        event, data = message
        self.record.messages_sent += 1
        self.record.events_sent[event] += 1
        await self._link.send(event, data)

    async def _error(self, type_: str, message: str) -> None:
        await self.emit("error", {"message": message, "type": type_})

    # -- start_call --------------------------------------------------------------------
    async def on_start_call(self, data: Any) -> None:
        if not isinstance(data, dict):
            note_deviation(self.record, self.log, "start_call", f"payload is {short(data)}")
            data = {}
        if self.in_call:
            note_deviation(self.record, self.log, "start_call", "a call is already active")
            await self._error("invalid_request", "A call is already active on this connection")
            return
        account = await self._authenticate(data.get("auth_key"))
        if account is None:
            return
        balance = account.credits
        self.log.info("auth ok: key %s, balance %.4f credits", self.record.key, balance)
        await self.emit("auth_success", {"credits": _credits(max(balance, 0.0))})
        if balance <= 0:
            await self._error("insufficient_credits", "Insufficient credits to start a call")
            return
        self._configure(data)
        units = definition_units(data.get("custom_functions"), self.functions)
        if units:
            account.charge_admin(units)
            self.record.admin_units_used += units
        await self._begin(balance)

    async def _authenticate(self, key: Any) -> Account | None:
        """The key's account, or None after answering auth_failed."""
        if not isinstance(key, str):
            note_deviation(self.record, self.log, "start_call", "auth_key missing or not a string")
            key = ""
        self.record.key = key_fingerprint(key)
        if not self.config.key_accepted(key):
            self.record.auth_ok = False
            self.log.warning("auth refused: key %s", self.record.key)
            await self.emit("auth_failed", {"message": "Invalid API key", "credits": 0})
            return None
        self.record.auth_ok = True
        self.account = self._ledger.account(key)
        return self.account

    async def _begin(self, balance: float) -> None:
        """The call is live: start the agent, say session_ready, arm the credit timer."""
        self._balance = balance
        self._call_started = time.monotonic()
        self.record.calls_started += 1
        self.agent = StsAgent(self)
        self.agent.start()
        await self.emit(
            "session_ready",
            {
                "message": "Session ready: start speaking",
                "credits_available": _credits(balance),
                "cost_per_minute": self.config.cost_per_minute,
                "functions_loaded": len(self.functions),
            },
        )
        if self.config.cost_per_minute > 0:
            seconds = balance / self.config.cost_per_minute * 60
            self._credit_timer = asyncio.get_running_loop().create_task(self._expire(seconds))

    def _configure(self, data: dict[str, Any]) -> None:
        voice, system = data.get("voice_choice"), data.get("system_message")
        self.record.voice_choice = voice if isinstance(voice, str) else None
        self.record.system_message = system if isinstance(system, str) else None
        if voice is not None and not isinstance(voice, str):
            note_deviation(self.record, self.log, "start_call", "voice_choice is not a string")
        raw = data.get("custom_functions")
        self.functions, problems = parse_functions(raw)
        for p in problems:
            note_deviation(self.record, self.log, "custom_functions", p)
        self.record.functions = list(raw) if isinstance(raw, list) else []
        names = ", ".join(f.name for f in self.functions) or "none"
        self.log.info(
            "call starting: voice %r, %d function(s) (%s)",
            self.record.voice_choice,
            len(self.functions),
            names,
        )

    async def _expire(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._credit_timer = None  # finishing now; end_call must not cancel this task
        await self.end_call("insufficient_user_credits", "Insufficient credits: call ended")
        await self._link.disconnect()

    # -- functions ---------------------------------------------------------------------
    async def call_function(self, spec: DeclaredFunction) -> str:
        """One function round trip before a reply; text to append to the reply.

        Each call costs admin units: when the account cannot pay, the session ends
        with `insufficient_admin_units` (a reason the real service uses) and the
        function is not called.
        """
        account = self.account
        assert account is not None  # the agent only runs after a key was accepted
        if account.admin_units < UNITS_PER_CALL:
            await self.end_call("insufficient_admin_units", "Insufficient admin units")
            await self._link.disconnect()
            return ""
        return await self.broker.call(spec, account)

    # -- audio_data --------------------------------------------------------------------
    async def on_audio(self, data: Any) -> None:
        if not self.in_call:
            self.record.audio_before_start += 1
            if self.record.audio_before_start == 1:
                self.log.info("audio_data outside a call (no successful start_call): ignored")
            return
        try:
            pcm, deviations = check_audio_data(data)
        except AudioFormatError as exc:
            self.record.invalid_audio += 1
            note_deviation(self.record, self.log, "invalid_audio", str(exc))
            await self._error("invalid_audio", f"Invalid audio_data: {exc}")
            return
        for kind, detail in deviations:
            note_deviation(self.record, self.log, kind, detail)
        self.record.audio_chunks += 1
        self.record.audio_bytes += pcm.size * 2
        if self.agent is not None:
            self.agent.feed(pcm)

    # -- ending ------------------------------------------------------------------------
    async def on_stop_call(self) -> None:
        if not self.in_call:
            note_deviation(self.record, self.log, "stop_call", "no call is active")
            return
        await self.end_call("stopped_by_user", "Session stopped by user")

    async def end_call(self, reason: str, message: str, *, notify: bool = True) -> None:
        """Charge the call and (if `notify`) send session_ended; idempotent."""
        if self._call_started is None:
            return
        elapsed = time.monotonic() - self._call_started
        self._call_started = None
        timer, self._credit_timer = self._credit_timer, None
        if timer is not None:
            timer.cancel()
        self.broker.abandon()
        agent, self.agent = self.agent, None
        used = min(self._balance, elapsed / 60 * self.config.cost_per_minute)
        if reason == "insufficient_user_credits":
            used = self._balance
        assert self.account is not None  # a call only starts once a key was accepted
        remaining = self.account.charge(used)
        self.record.credits_used += used
        self.record.remaining_credits = remaining
        self.record.end_reason = reason
        self.log.info(
            "call ended (%s) after %.1f s: charged %.4f credits, %.4f left; "
            "%d utterance(s), %d reply(ies), %d function call(s)",
            reason,
            elapsed,
            used,
            remaining,
            len(self.record.utterances),
            len(self.record.replies),
            len(self.record.function_calls),
        )
        if notify:
            await self.emit(
                "session_ended",
                {
                    "reason": reason,
                    "message": message,
                    "total_credits_used": _credits(used),
                    "remaining_credits": _credits(remaining),
                },
            )
        if agent is not None:
            await agent.aclose()

    async def on_disconnect(self, reason: str) -> None:
        self.connected = False
        await self.end_call(f"disconnected: {reason}", "", notify=False)
        self.record.closed_at = time.monotonic()
        self.record.close_reason = "dropped" if self.record.dropped else reason
        r = self.record
        assert r.closed_at is not None
        self.log.info(
            "disconnected (%s) after %.1f s: %d audio chunk(s), %d invalid, %d before "
            "start_call; %d utterance(s), %d reply(ies), %d barge-in(s), %d function call(s), "
            "%.4f credits; %d message(s) sent (%d garbage), %d deviation(s)",
            r.close_reason,
            r.closed_at - r.connected_at,
            r.audio_chunks,
            r.invalid_audio,
            r.audio_before_start,
            len(r.utterances),
            len(r.replies),
            r.barge_ins,
            len(r.function_calls),
            r.credits_used,
            r.messages_sent,
            r.garbage_sent,
            r.deviation_total,
        )
