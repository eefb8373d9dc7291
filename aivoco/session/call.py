"""`Call`: one call from start to end, for both protocols, runnable from code.

    call = open_call(CallOptions(key=..., input_file=Path("q.wav"), output_file=...))
    call.subscribe(printer)          # records, as --json prints them
    result = call.run()              # start(), wait(), close()

Threads: connect; events (the driver's queue -> `Downlink`, whose intents are applied
here); uplink (source -> `Uplink` -> driver: a thread for a microphone, a job on the
shared clock for a file or script); observer (`Observer`, a clock job every 40 ms: what
the speaker played, marks, counters, timers); goodbye (the protocol's goodbye, then a
bounded wait for the server's final word); reconnect (`reconnect.py`); one worker per
function call. Every change of phase goes through `lifecycle.py`; the UI reads
`state.snapshot()`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from aivoco.errors import AivocoError, ConnectionFailedError
from aivoco.session import intents as it
from aivoco.session.bargein import LocalBargeIn
from aivoco.session.controls import CallControls
from aivoco.session.downlink import Downlink
from aivoco.session.echo import echo_for_call
from aivoco.session.files import StereoRecorder, open_outputs
from aivoco.session.interfaces import FunctionRunner, PlayerLike, Source
from aivoco.session.lifecycle import EndReason, Lifecycle, Outcome, Phase, ReconnectPolicy
from aivoco.session.media import Media
from aivoco.session.observer import Timers
from aivoco.session.options import CallOptions
from aivoco.session.reconnect import DriverSlot, Reconnector, came_back
from aivoco.session.records import RecordBus, RecordConsumer
from aivoco.session.state import CallState
from aivoco.session.summary import CallSummary, build_summary
from aivoco.session.turns import TurnTracker
from aivoco.wire.driver import Driver
from aivoco.wire.events import EventQueue

log = logging.getLogger("aivoco.session")

_JOIN_S = 2.0


@dataclass(frozen=True)
class CallResult:
    outcome: Outcome
    error: AivocoError | None  # the outcome's, or a file that failed while closing
    summary: CallSummary


class Call:
    def __init__(
        self,
        options: CallOptions,
        driver: Driver,
        source: Source,
        player: PlayerLike,
        *,
        functions: FunctionRunner | None = None,
        input_label: str = "",
        output_label: str = "",
        output_path: Path | None = None,
        reconnect: Callable[[], Driver] | None = None,
    ) -> None:
        self.options = options
        self.output_path = output_path  # the WAV the agent's audio goes to, if not a speaker
        self.driver = DriverSlot(driver)
        self._build_driver = reconnect  # a new driver for the same call, or None: no retry
        self.source = source
        self.player = player
        tries = options.reconnect_tries if reconnect is not None else 0
        self.lifecycle = Lifecycle(ReconnectPolicy(tries, options.reconnect_delay_s))
        self.state = CallState(
            driver.protocol.value,
            driver.endpoint,
            options.display_label,
            has_credits=driver.has_credits,
            input_label=input_label,
            output_label=output_label,
        )
        self.bus = RecordBus()
        self.events = EventQueue()
        self.turns = TurnTracker()
        self.timers = Timers(options.idle_timeout_s, options.max_duration_s)
        self.recorder: StereoRecorder | None = None
        barge_in = self._controls_and_echo(source, player, driver.uplink_rate_hz)
        self.downlink = Downlink(
            self.driver,
            player,
            self.lifecycle,
            state=self.state,
            bus=self.bus,
            turns=self.turns,
            functions=functions,
            function_timeout_s=options.function_timeout_s,
            barge_in=barge_in,
            connection=lambda: self.driver.generation,
        )
        self.ended = threading.Event()  # stops the uplink and the observer
        self._closing = threading.Event()  # the event thread stops once the queue is empty
        self._threads: list[threading.Thread] = []
        self._close_lock = threading.Lock()
        self._result: CallResult | None = None
        self._dropped_at = 0.0  # when the outage in progress began (time.monotonic())
        self.media = Media(self)
        self.lifecycle.subscribe(self._on_phase)

    def _controls_and_echo(
        self, source: Source, player: PlayerLike, rate_hz: int
    ) -> LocalBargeIn | None:
        """Mute, push-to-talk, volume (the keys), echo control and local barge-in."""
        ptt = self.options.push_to_talk
        self.controls = CallControls(player, self.state, self.bus, push_to_talk=ptt)
        acoustic = getattr(source, "acoustic", False) and getattr(player, "acoustic", False)
        self.echo, barge_in = echo_for_call(
            self.options, acoustic=acoustic, player=player, rate_hz=rate_hz,
            state=self.state, bus=self.bus, mic_live=lambda: self.controls.mic_live,
            source_rate_hz=source.sample_rate_hz,
        )  # fmt: skip
        return barge_in

    # -- public ----------------------------------------------------------------------
    @property
    def phase(self) -> Phase:
        return self.lifecycle.phase

    @property
    def result(self) -> CallResult | None:
        return self._result

    def subscribe(self, consumer: RecordConsumer) -> None:
        """Receive every record (the `--json` objects) as it happens, on call threads."""
        self.bus.subscribe(consumer)

    def start(self, wait: bool = True) -> None:
        """Open the files and connect (on the call's own thread); with `wait`, return
        once the call is live or over.

        Failures (files, refused key, timeouts) end the call: see `result` after
        `close()`. Starting a call twice raises `CallStateError`.
        """
        self.lifecycle.start()
        connecting = self.spawn("connect", self._connect)
        if wait:
            connecting.join()

    def _connect(self) -> None:
        opts = self.options
        deadline = time.monotonic() + opts.connect_timeout_s
        try:
            self._open_files()
            self.bus.emit(
                "connecting",
                endpoint=self.driver.endpoint,
                protocol=self.driver.protocol.value,
                input=self.state.input_label,
                output=self.state.output_label,
            )
            self.spawn("events", self._event_loop)
            self.driver.open(self.events, opts.connect_timeout_s)
        except AivocoError as exc:
            self.lifecycle.end(EndReason.ERROR, exc)
            return
        if self._closing.is_set():
            return
        remaining = deadline - time.monotonic()
        if not self.lifecycle.wait_until(lambda p: p is not Phase.CONNECTING, remaining):
            self.lifecycle.end(
                EndReason.ERROR,
                ConnectionFailedError(
                    f"{self.driver.endpoint} accepted the connection but did not start the "
                    f"session within {opts.connect_timeout_s:g} s"
                ),
            )
        if self.phase is Phase.LIVE:
            self.media.start()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the call is over (or `timeout_s` passed); True once it is."""
        return self.lifecycle.wait_until(lambda p: p is Phase.ENDED, timeout_s)

    def hang_up(self, reason: EndReason = EndReason.HANGUP) -> bool:
        """End gracefully, from any thread: the protocol's goodbye, then the server's
        final word (bounded by `hangup_timeout_s`). False if already ending or over."""
        return self.lifecycle.hang_up(reason)

    def abort(self) -> CallResult:
        """End now without a goodbye (a second Ctrl-C); files stay valid."""
        self.lifecycle.end(EndReason.ABORTED)
        return self.close()

    def run(self) -> CallResult:
        self.start()
        self.wait()
        return self.close()

    def close(self) -> CallResult:
        """Release devices, sockets and files and build the summary (idempotent).

        A call that is not over yet is aborted first."""
        with self._close_lock:
            if self._result is None:
                self.lifecycle.end(EndReason.ABORTED)
                self._result = self._release()
            return self._result

    def __enter__(self) -> Call:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- phases ----------------------------------------------------------------------
    def _on_phase(self, old: Phase, new: Phase) -> None:
        self.state.set_phase(new)
        if new is Phase.LIVE and old is Phase.CONNECTING:
            self.bus.start_clock()  # records' `t` counts from here, across reconnects
        elif new is Phase.LIVE and old is Phase.RECONNECTING:
            gap_s = time.monotonic() - self._dropped_at
            came_back(self.state, self.bus, self.lifecycle.attempt, gap_s)
        elif new is Phase.RECONNECTING:
            self._dropped_at = time.monotonic()
            self.spawn("reconnect", self._reconnect)
        elif new is Phase.ENDING:
            reason = self.lifecycle.reason or EndReason.HANGUP
            self.bus.emit("hangup", reason=reason.value)
            self.spawn("goodbye", self._goodbye)
        elif new is Phase.ENDED:
            self.ended.set()
            outcome = self.lifecycle.outcome
            if outcome is not None and outcome.error is not None:
                self._report_error(outcome.error)

    def _report_error(self, error: AivocoError) -> None:
        if self.bus.emit_error(error):  # once per call, before the summary
            self.state.add_entry("error", str(error))

    def _reconnect(self) -> None:
        assert self._build_driver is not None  # no policy allows a retry without one
        Reconnector(
            self.driver,
            self._build_driver,
            self.lifecycle,
            events=self.events,
            state=self.state,
            bus=self.bus,
            connect_timeout_s=self.options.connect_timeout_s,
        ).run()

    def _goodbye(self) -> None:
        try:
            self.driver.hang_up()
        except AivocoError as exc:
            log.warning("hang-up did not complete cleanly: %s", exc)
        timeout_s = self.options.hangup_timeout_s
        if not self.wait(timeout_s):
            log.info("no final word from the server within %.1f s of the goodbye", timeout_s)
            self.lifecycle.end(EndReason.HANGUP)

    # -- intents ---------------------------------------------------------------------
    def apply(self, intent: it.Intent) -> None:
        lc = self.lifecycle
        if isinstance(intent, it.AgentActive):
            self.timers.agent_active(intent.at)
        elif isinstance(intent, it.GoLive):
            lc.went_live()
        elif isinstance(intent, it.ServerEnded):
            lc.server_ended(intent.event)
        elif isinstance(intent, it.ConnectionLost):
            lc.disconnected(intent.event)
        elif isinstance(intent, it.Fail):
            lc.end(intent.reason, intent.error)
        else:
            lc.hang_up(intent.reason)

    # -- threads ---------------------------------------------------------------------
    def spawn(self, name: str, target: Callable[[], None]) -> threading.Thread:
        t = threading.Thread(target=self._guard, args=(target,), name=f"aivoco-{name}")
        t.daemon = True
        self._threads.append(t)
        t.start()
        return t

    def _guard(self, fn: Callable[[], None]) -> None:
        """No call thread dies silently: what it raises ends the call with an error."""
        try:
            fn()
        except AivocoError as exc:
            self.lifecycle.end(EndReason.ERROR, exc)
        except Exception as exc:
            log.exception("internal error in a call thread")
            internal = AivocoError(f"internal error: {type(exc).__name__}: {exc}")
            self.lifecycle.end(EndReason.ERROR, internal)

    def job_failed(self, exc: BaseException) -> None:
        """A clock job (uplink, observer) raised: the same as a call thread raising."""

        def reraise() -> None:
            raise exc

        self._guard(reraise)

    def _event_loop(self) -> None:
        # After close() closed the driver, keep going until the queue is empty, so
        # every event the server sent is accounted for in records and the summary;
        # close() wakes this thread (no polling while idle).
        while True:
            item = self.events.get(None)
            if item is not None and self.driver.is_stale(item):
                log.info("ignored %s from a connection already replaced", type(item.event).__name__)
            elif item is not None:
                for intent in self.downlink.handle(item):
                    self.apply(intent)
            elif self._closing.is_set():
                return

    # -- files and the end -------------------------------------------------------------
    def _open_files(self) -> None:
        """Outputs open before connecting, so a bad path fails before any call starts."""
        rate = max(self.driver.uplink_rate_hz, self.driver.downlink_rate_hz)
        self.recorder = open_outputs(self.options, self.bus, rate)

    def _release(self) -> CallResult:
        self._closing.set()
        try:
            self.driver.close()
        finally:
            self.events.wake()
            self.media.halt()
            for t in self._threads:
                if t is not threading.current_thread():
                    t.join(timeout=_JOIN_S)
            self.media.finish()
        self.downlink.heard(final=True)  # every answered turn gets its record
        outcome = self.lifecycle.outcome
        assert outcome is not None  # close() ended the call first
        self.state.set_end_reason(outcome.label)
        error = outcome.error or self.bus.error
        if error is not None:
            self._report_error(error)  # a file that failed while the call was closing
        summary = self._summary(outcome, error)
        self.bus.emit("summary", **summary.to_record())
        self.bus.close()
        return CallResult(outcome, error, summary)

    def _summary(self, outcome: Outcome, error: AivocoError | None) -> CallSummary:
        # A scratch recording (--report without --record) is removed once the report
        # is drawn: the summary names only a file the user asked for.
        recorder = self.recorder if self.options.record_file is not None else None
        return build_summary(
            self.state.snapshot(),
            outcome,
            error,
            has_credits=self.driver.has_credits,
            events_dropped=self.events.dropped,
            reconnects=self.lifecycle.reconnects,
            recording=None if recorder is None else (recorder.path, recorder.duration_ms),
        )
