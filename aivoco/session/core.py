"""The call session: one core for both protocols (`aivoco sts` and `aivoco call`).

Threads and what they own:
* uplink: source frames (microphone or file) -> levels, turn tracking, recording (left)
  -> driver.send_audio. Frames are produced in real time by the source.
* events: the driver's EventQueue -> `Downlink` (player, transcript, functions), which
  reports the end of the call back here; this module owns the lifecycle.
* observer (every 20 ms): what the speaker played -> agent meter and recording (right);
  reached playout marks -> driver.answer_mark; counters; idle and duration timers.
* function workers: one short-lived thread per function call (handlers may block).
The UI never touches any of this: it reads `state.snapshot()`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.levels import HAS_AUDIO_PEAK_THRESHOLD, SILENCE_DBFS, peak, to_dbfs
from aivoco.errors import AivocoError
from aivoco.session import events as ev
from aivoco.session.downlink import Downlink
from aivoco.session.files import StereoRecorder, TranscriptWriter
from aivoco.session.interfaces import FunctionRunner, PlayerLike, Source
from aivoco.session.records import RecordBus
from aivoco.session.state import CallState
from aivoco.session.turns import TurnTracker

log = logging.getLogger("aivoco.session")

OBSERVE_PERIOD_S = 0.02
STATS_PERIOD_S = 0.1


@dataclass
class SessionOptions:
    chunk_ms: int = 20
    idle_timeout_s: float = 3.0
    max_duration_s: float | None = None
    function_timeout_s: float = 10.0
    connect_timeout_s: float = 10.0
    hangup_timeout_s: float = 2.0
    record_path: Path | None = None
    transcript_path: Path | None = None


@dataclass
class SessionResult:
    reason: str
    error: AivocoError | None
    summary: dict[str, Any] = field(default_factory=dict)


class CallSession:
    def __init__(
        self,
        driver: ev.Driver,
        source: Source,
        player: PlayerLike,
        *,
        state: CallState,
        bus: RecordBus,
        options: SessionOptions,
        functions: FunctionRunner | None = None,
    ) -> None:
        self.driver = driver
        self.source = source
        self.player = player
        self.state = state
        self.bus = bus
        self.options = options
        self.events = ev.EventQueue()
        self.recorder: StereoRecorder | None = None
        self.turns = TurnTracker()
        self._stop = threading.Event()
        self.downlink = Downlink(
            driver,
            player,
            state=state,
            bus=bus,
            turns=self.turns,
            functions=functions,
            function_timeout_s=options.function_timeout_s,
            hanging_up=lambda: self._ending,
            stopped=self._stop,
        )
        self.done = threading.Event()
        self._end_lock = threading.Lock()
        self._ending = False
        self._reason = "hangup"
        self._error: AivocoError | None = None
        self._threads: list[threading.Thread] = []
        self._result: SessionResult | None = None
        self._input_done_at: float | None = None
        self._frame_s = options.chunk_ms / 1000.0

    # -- lifecycle -----------------------------------------------------------------
    def open_files(self) -> None:
        """Open outputs before connecting, so a bad path fails before any call starts."""
        opts = self.options
        if opts.transcript_path is not None:
            self.bus.add_writer(TranscriptWriter(opts.transcript_path))
        if opts.record_path is not None:
            rate = max(self.driver.uplink_rate_hz, self.driver.downlink_rate_hz)
            self.recorder = StereoRecorder(opts.record_path, rate)

    def start(self) -> None:
        """Connect (blocking until live) and start the call's threads."""
        self.state.set_phase("connecting")
        self.bus.emit(
            "connecting",
            endpoint=self.driver.endpoint,
            protocol=self.driver.protocol,
            input=self.state.input_label,
            output=self.state.output_label,
        )
        self.driver.connect(self.events, self.options.connect_timeout_s)
        self.state.set_phase("live")
        self.bus.start_clock()
        self.downlink.last_agent_activity = time.monotonic()
        # Both clocks start when the call goes live, so the recording's two tracks
        # share a time origin and no pre-call microphone audio is sent.
        self.player.start()
        self.source.start()
        for name, target in (
            ("events", self._event_loop),
            ("uplink", self._uplink_loop),
            ("observer", self._observe_loop),
        ):
            t = threading.Thread(target=target, name=f"aivoco-{name}", daemon=True)
            self._threads.append(t)
            t.start()

    def request_hangup(self, reason: str = "hangup") -> None:
        """Graceful end from any thread: tell the server and wait for its final word."""
        with self._end_lock:
            if self._ending:
                return
            self._ending = True
            self._reason = reason
        self.state.set_phase("ending")
        self.bus.emit("hangup", reason=reason)
        threading.Thread(target=self._hang_up, name="aivoco-hangup", daemon=True).start()

    def _hang_up(self) -> None:
        try:
            self.driver.hang_up(self.options.hangup_timeout_s)
        except AivocoError as exc:
            log.warning("hang-up did not complete cleanly: %s", exc)
        # The server's final word (e.g. `session_ended` with totals) may still sit in the
        # event queue: the event thread drains it before close() builds the summary.
        self._finish()

    def _end(self, reason: str, error: AivocoError | None) -> None:
        """The server ended the call (or it failed): no hang-up handshake needed."""
        with self._end_lock:
            if not self._ending:
                self._ending = True
                self._reason = reason
            if error is not None and self._error is None:
                self._error = error
        self._finish()

    def _finish(self) -> None:
        self._stop.set()
        self.done.set()

    def abort(self) -> None:
        """Second Ctrl-C: drop everything now (files stay valid)."""
        with self._end_lock:
            self._ending = True
            self._reason = "aborted"
        self._finish()
        self.close()

    def close(self) -> SessionResult:
        """Stop threads and release devices, sockets and files; build the summary.

        Idempotent: the second call returns the first result.
        """
        with self._end_lock:
            if self._result is not None:
                return self._result
            self._result = SessionResult(self._reason, self._error)
        self._stop.set()
        try:
            self.driver.close()
        finally:
            self.source.close()
            for t in self._threads:
                if t is not threading.current_thread():
                    t.join(timeout=2)
            self.player.close()
            self._drain_played()
            if self.recorder is not None:
                self.recorder.close()
        self._publish_stats()
        self.state.mark_ended(self._reason)
        if self._error is None and self.bus.error is not None:
            self._error = self.bus.error
        summary = self.summary()
        self.bus.emit("summary", **summary)
        self.bus.close()
        self._result.reason, self._result.error = self._reason, self._error
        self._result.summary = summary
        return self._result

    # -- threads -------------------------------------------------------------------
    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except AivocoError as exc:
            self._end("error", exc)
        except Exception as exc:
            log.exception("internal error in session thread")
            self._end("error", AivocoError(f"internal error: {type(exc).__name__}: {exc}"))

    def _uplink_loop(self) -> None:
        self._guard(self._uplink)

    def _uplink(self) -> None:
        frames: Iterable[AudioChunk] = self.source
        for frame in frames:
            if self._stop.is_set() or self._ending:
                return
            now = time.monotonic()
            level = peak(frame)
            voiced = level > HAS_AUDIO_PEAK_THRESHOLD  # has_audio(), without a second pass
            self.state.set_levels(mic_dbfs=to_dbfs(level), user_speaking=self.turns.user_speaking)
            end = self.turns.on_user_frame(voiced, now, self._frame_s)
            if end is not None:
                self.state.add_entry("you", f"spoke {end.duration_s:.1f} s")
                self.bus.emit("user_speech_end", duration_s=round(end.duration_s, 3))
            if self.recorder is not None:
                self.recorder.add_user(frame)
            self.driver.send_audio(frame)
            if self.source.finished and self._input_done_at is None:
                self._input_done_at = now
                self.bus.emit("input_finished")

    def _event_loop(self) -> None:
        self._guard(self._events)

    def _events(self) -> None:
        # After stop, keep going until the queue is empty: close() joins this thread
        # after closing the driver, so every event the server sent is accounted for.
        while True:
            item = self.events.get(timeout=0.05)
            if item is not None:
                ending = self.downlink.handle(item)
                if ending is not None:
                    self._end(*ending)
            elif self._stop.is_set():
                return

    def _observe_loop(self) -> None:
        self._guard(self._observe)

    def _observe(self) -> None:
        next_stats = 0.0
        while not self._stop.wait(OBSERVE_PERIOD_S):
            now = time.monotonic()
            self._drain_played()
            for name in self.player.pop_reached():
                self.driver.answer_mark(name)
                self.bus.emit("mark_played", name=name)
            if self.player.error is not None:
                raise self.player.error
            if self.bus.error is not None:
                raise self.bus.error
            if now >= next_stats:
                next_stats = now + STATS_PERIOD_S
                self._publish_stats()
            self._check_timers(now)

    def _drain_played(self) -> None:
        played = self.player.take_played()
        if played.frames == 0:
            return
        level = peak(played)
        speaking = level > HAS_AUDIO_PEAK_THRESHOLD
        if speaking:
            self.downlink.last_agent_activity = time.monotonic()
        self.state.set_levels(
            agent_dbfs=to_dbfs(level) if speaking else SILENCE_DBFS, agent_speaking=speaking
        )
        if self.recorder is not None:
            self.recorder.add_agent(played)

    def _publish_stats(self) -> None:
        net = self.driver.net
        ps = self.player.stats()
        self.state.set_stats(
            {
                "transport": net.transport,
                "messages_sent": net.messages_sent,
                "messages_received": net.messages_received,
                "bytes_sent": net.bytes_sent,
                "bytes_received": net.bytes_received,
                "audio_s_sent": round(net.audio_ms_sent / 1000, 2),
                "audio_s_received": round(net.audio_ms_received / 1000, 2),
                "events_dropped": self.events.dropped,
                "uplink_dropped": net.uplink_dropped,
            },
            {
                "buffered_ms": round(ps.jitter.buffered_ms, 1),
                "underruns": ps.jitter.underruns,
                "device_underflows": ps.device_underflows,
                "dropped_ms": round(ps.jitter.dropped_ms, 1),
                "clears": ps.jitter.clears,
                "prefill_ms": round(ps.jitter.prefill_ms, 1),
            },
        )

    def _check_timers(self, now: float) -> None:
        if self._ending:
            return
        limit = self.options.max_duration_s
        if limit is not None and self.state.elapsed_s(now) >= limit:
            self.request_hangup("max-duration")
            return
        if self._input_done_at is not None:  # set once the input file has ended
            if self.player.stats().jitter.buffered_ms > 0:
                self.downlink.last_agent_activity = now
            quiet_since = max(self._input_done_at, self.downlink.last_agent_activity)
            if now - quiet_since >= self.options.idle_timeout_s:
                self.request_hangup("idle")

    # -- results -------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        snap = self.state.snapshot()
        used, remaining = snap.credits.estimate(snap.elapsed_s)
        out: dict[str, Any] = {
            "reason": self._reason,
            "duration_s": round(snap.elapsed_s, 2),
            "turns": snap.turns,
            "latency_last_ms": snap.latency_last_ms and round(snap.latency_last_ms, 1),
            "latency_mean_ms": snap.latency_mean_ms and round(snap.latency_mean_ms, 1),
            "functions_called": snap.functions_called,
            "protocol_errors": snap.protocol_issues,
            **snap.net,
            **{f"playback_{k}": v for k, v in snap.playback.items()},
        }
        if self.driver.has_credits:
            out["credits_used"] = None if used is None else round(used, 4)
            out["credits_remaining"] = None if remaining is None else round(remaining, 4)
            out["credits_final"] = snap.credits.final_used is not None
        if self._error is not None:
            out["error"] = str(self._error)
        if self.recorder is not None:
            out["recording"] = str(self.recorder.path)
            out["recording_s"] = round(self.recorder.duration_ms / 1000, 2)
        return out
