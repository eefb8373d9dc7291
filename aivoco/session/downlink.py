"""The downlink: what each driver event does to the call.

Agent audio goes to the player (and gives the turn latency), text and function calls to
the transcript, marks and clears to the playout. What the call itself must do (go live,
end, reset the idle timer) comes back as intents (`intents.py`); the downlink never
touches the lifecycle. Runs on the call's event thread; function handlers run on their
own short-lived threads (they may block).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from aivoco.errors import AivocoError, ProtocolError
from aivoco.session import intents as it
from aivoco.session.bargein import LocalBargeIn
from aivoco.session.interfaces import FunctionRunner, MarkToken, PlayerLike
from aivoco.session.lifecycle import EndReason, Lifecycle, Op, Phase
from aivoco.session.records import RecordBus
from aivoco.session.state import CallState
from aivoco.session.turns import TurnTracker
from aivoco.wire import events as ev
from aivoco.wire.driver import Driver
from aivoco.wire.functions import failure_result

log = logging.getLogger("aivoco.session")

# A few malformed messages are logged and survived; this many in a row, with nothing
# valid in between, means the peer is not speaking the protocol at all.
MAX_CONSECUTIVE_PROTOCOL_ERRORS = 20

Intents = list[it.Intent]


class Downlink:
    def __init__(
        self,
        driver: Driver,
        player: PlayerLike,
        lifecycle: Lifecycle,
        *,
        state: CallState,
        bus: RecordBus,
        turns: TurnTracker,
        functions: FunctionRunner | None,
        function_timeout_s: float,
        barge_in: LocalBargeIn | None = None,
        connection: Callable[[], int] = lambda: 0,
    ) -> None:
        self.driver = driver
        self.connection = connection  # the current connection's number (reconnect.py)
        self.player = player
        self.lifecycle = lifecycle
        self.state = state
        self.bus = bus
        self.turns = turns
        self.functions = functions
        self.function_timeout_s = function_timeout_s
        self.bad_in_a_row = 0
        self.barge_in = barge_in  # sts: drops the rest of a reply the user talked over
        # Answered turns waiting for their first sound: cue key -> (arrival, latency ms).
        # Filled on the event thread, emptied on the clock's (the observer's tick).
        self._unheard: dict[int, tuple[float, float]] = {}
        self._unheard_lock = threading.Lock()
        self._cues = 0

    def handle(self, item: ev.Timed) -> Intents:
        """Apply one event; returns what the call must do about it."""
        e = item.event
        if isinstance(e, ev.ProtocolIssue):
            return self._protocol_issue(e)
        self.bad_in_a_row = 0
        if isinstance(e, ev.AgentAudio):
            self._agent_audio(e, item.at)
        elif isinstance(e, ev.AgentText):
            self.state.add_entry("agent", e.text)
            self.bus.emit("agent_text", text=e.text)
        elif isinstance(e, ev.FunctionCall):
            self._start_function(e, item.origin)
        elif isinstance(e, (ev.Ready, ev.Ended, ev.Failed, ev.Disconnected)):
            return self._session(e)
        else:
            self._information(e, item.origin)
            return []
        return [it.AgentActive(item.at)]

    def _agent_audio(self, e: ev.AgentAudio, at: float) -> None:
        if self.barge_in is not None and not self.barge_in.admit(at):
            return
        latency = self.turns.on_agent_audio(at)
        if latency is not None:
            self.state.add_latency(latency)
            self._cues += 1
            with self._unheard_lock:
                self._unheard[self._cues] = (at, latency)
            self.player.cue_heard(self._cues)  # the turn record waits for its first sound
        self.player.play(e.chunk)

    def heard(self, final: bool = False) -> None:
        """Answered turns whose first reply sound reached the speaker (or never will:
        cleared, or the call is over with `final`): the `turn` record, with the latency
        to the first byte and to the first sound. Runs on the observer's tick."""
        for key, heard_at in self.player.pop_heard():
            self._turn_heard(key, heard_at)
        if final:
            with self._unheard_lock:
                left = sorted(self._unheard)
            for key in left:
                self._turn_heard(key, None)

    def _turn_heard(self, key: int, heard_at: float | None) -> None:
        with self._unheard_lock:
            found = self._unheard.pop(key, None)
        if found is None:
            return
        arrived_at, latency = found
        sound: float | None = None
        text = f"(speaking; answered after {latency:.0f} ms"
        if heard_at is not None:
            # Both from the same arrival: what our playout added on top of the byte figure.
            sound = latency + max(0.0, heard_at - arrived_at) * 1000.0
            self.state.add_first_sound(sound)
            text += f", heard after {sound:.0f} ms)"
        else:
            text += ", not played)"
        self.state.add_entry("agent", text)
        self.bus.emit(
            "turn",
            latency_ms=round(latency, 1),
            first_sound_ms=None if sound is None else round(sound, 1),
        )

    def _session(self, e: ev.Ready | ev.Ended | ev.Failed | ev.Disconnected) -> Intents:
        if isinstance(e, ev.Ready):
            self.state.session_started(e.credits_available, e.cost_per_minute)
            self.state.add_entry("info", e.message or "session ready")
            self.bus.emit(
                "ready",
                message=e.message,
                credits_available=e.credits_available,
                cost_per_minute=e.cost_per_minute,
                functions_loaded=e.functions_loaded,
            )
            return [it.GoLive()]
        if isinstance(e, ev.Ended):
            self.state.set_credits(
                final_used=e.total_credits_used, final_remaining=e.remaining_credits
            )
            kind = "error" if e.error else "info"
            # After our goodbye the server's words describe our hang-up ("Session
            # stopped by user" after an idle timeout): show ours, theirs beside it.
            ours = self.lifecycle.reason if self.lifecycle.phase is Phase.ENDING else None
            said = e.message or e.reason
            shown = f"{ours.value} (server: {said})" if ours is not None else said
            self.state.add_entry(kind, f"session ended: {shown}")
            self.bus.emit(
                "session_ended",
                reason=e.reason,
                message=e.message,
                hangup_reason=None if ours is None else ours.value,
                total_credits_used=e.total_credits_used,
                remaining_credits=e.remaining_credits,
            )
            return [it.ServerEnded(e)]
        if isinstance(e, ev.Failed):
            return [it.Fail(e.error)]
        log.info("connection gone: %s", e.detail)
        return [it.ConnectionLost(e)]

    def _protocol_issue(self, e: ev.ProtocolIssue) -> Intents:
        self.bad_in_a_row += 1
        self.state.count_issue()
        self.state.add_entry("error", e.message)
        self.bus.emit("protocol_error", message=e.message)
        if self.bad_in_a_row < MAX_CONSECUTIVE_PROTOCOL_ERRORS:
            return []
        error = ProtocolError(
            f"{self.driver.endpoint} sent {self.bad_in_a_row} malformed messages "
            f"in a row; the last: {e.message}"
        )
        return [it.Fail(error, EndReason.PROTOCOL_ERROR)]

    def _information(self, e: ev.Event, origin: int) -> None:
        if isinstance(e, ev.CreditsInfo):
            self.state.set_credits(available=e.credits)
            self.bus.emit("credits", credits=e.credits)
        elif isinstance(e, ev.FunctionReport):
            self.bus.emit("function_report", kind=e.kind, name=e.name, detail=e.detail)
            if e.kind == "error":
                self.state.add_entry("error", f"function error from server: {e.detail}")
        elif isinstance(e, ev.PlaybackMark):
            self.player.add_marker(MarkToken(origin, e.name))
            self.bus.emit("mark", name=e.name)
        elif isinstance(e, ev.PlaybackClear):
            cleared = self.player.clear()
            self.state.add_entry("info", "barge-in: agent playback cleared")
            self.bus.emit("clear", cleared_ms=round(cleared * 1000 / self.player.clock_rate_hz, 1))
        elif isinstance(e, ev.Notice):
            log.info("%s", e.message)
            self.bus.emit("notice", message=e.message)
        elif isinstance(e, ev.UnknownEvent):
            log.info("ignored unknown event %r", e.name)
            self.bus.emit("notice", message=f"ignored unknown event {e.name!r}")

    # -- custom functions ------------------------------------------------------------
    def _start_function(self, call: ev.FunctionCall, origin: int) -> None:
        self.state.count_function()
        self.state.add_entry("function", f"{call.name}({_short_args(call.arguments)})")
        self.bus.emit(
            "function_call", call_id=call.call_id, name=call.name, arguments=call.arguments
        )
        threading.Thread(
            target=self._run_function, args=(call, origin), name="aivoco-function", daemon=True
        ).start()

    def _run_function(self, call: ev.FunctionCall, origin: int) -> None:
        if self.functions is None:
            failed, result = True, failure_result("no custom functions are loaded")
            duration_ms = 0.0
        else:
            outcome = self.functions.run(call.name, call.arguments, self.function_timeout_s)
            failed, result, duration_ms = not outcome.ok, outcome.result, outcome.duration_ms
        if not self.lifecycle.permits(Op.SEND_FUNCTION_RESULT):
            return
        if origin != self.connection():
            # Asked by a session the call has since replaced: its call id means nothing
            # to the new one.
            log.info("not sending the result of %s: its session was replaced", call.name)
            self.bus.emit("notice", message=f"{call.name}: result not sent, session replaced")
            return
        try:
            self.driver.send_function_result(call.call_id, call.name, result)
        except AivocoError as exc:
            log.warning("could not send the result of %s: %s", call.name, exc)
            return
        shown = f"{call.name} -> {'FAILED ' if failed else ''}{_short_args(result)}"
        self.state.add_entry("error" if failed else "result", shown)
        self.bus.emit(
            "function_result",
            call_id=call.call_id,
            name=call.name,
            ok=not failed,
            result=result,
            duration_ms=round(duration_ms, 1),
        )


def _short_args(value: Any, limit: int = 120) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
