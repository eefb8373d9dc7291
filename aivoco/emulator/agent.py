"""The echo agent both services share: hear an utterance, describe it, play it back.

Per session, uplink audio goes through the energy VAD (aivoco.emulator.vad) as it
arrives. Each finished utterance is queued; one responder task answers them in order:
wait `latency_ms`, run the protocol's pre-reply step (STS: a function call round trip),
send the text ("I heard 1.4 s of audio, peak -6 dBFS."), then play the utterance back.

Playback is paced in real time by deadline (frame k leaves at t0 + k x frame length),
the way a real voice service streams synthesis: a client sees a steady stream it must
buffer a little, never one burst it could not tell from a file download. The first
frame leaves at once, so the client holds about one frame of lead.

Barge-in: playback stops, before the next frame, as soon as the VAD confirms an onset
(100 ms of speech) while a reply is being sent; the protocol hook then reacts (the
call protocol sends `clear`). Replies that were already queued still play afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from typing import Any

from aivoco.audio.chunk import Int16Array
from aivoco.emulator.common import SessionLog
from aivoco.emulator.config import EmulatorConfig
from aivoco.emulator.records import Reply, SessionRecord, Utterance
from aivoco.emulator.vad import EnergyVad, SpeechStarted, UtteranceEnded

# After a stall longer than this (a suspended laptop, a debugger), re-anchor the pacing
# clock instead of bursting the backlog onto the wire.
_REANCHOR_S = 1.0


def describe(utt: Utterance) -> str:
    return f"I heard {utt.duration_s:.1f} s of audio, peak {utt.peak_dbfs:.0f} dBFS."


class EchoAgent(ABC):
    """Protocol-independent part of a session's agent; subclasses do the wire format."""

    #: Duration of one outgoing audio frame, in seconds.
    frame_s: float

    def __init__(
        self, config: EmulatorConfig, record: SessionRecord, rate_hz: int, log: SessionLog
    ) -> None:
        self.config = config
        self.record = record
        self.log = log
        self.rate_hz = rate_hz
        self.vad = EnergyVad(
            rate_hz,
            threshold_dbfs=config.vad_threshold_dbfs,
            hangover_ms=config.vad_hangover_ms,
            min_speech_ms=config.vad_min_speech_ms,
            max_utterance_s=config.max_utterance_s,
        )
        self._queue: asyncio.Queue[tuple[Utterance, Int16Array]] = asyncio.Queue()
        self._barge = asyncio.Event()
        self._playing = False
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        """Stop answering (session over); a reply in flight is abandoned."""
        self._closed = True
        task, self._task = self._task, None
        if task is asyncio.current_task():
            # Called from within a reply step (e.g. a function call found the account
            # empty): the responder notices `_closed` and returns by itself.
            return
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while not self._queue.empty():
            self._queue.get_nowait()

    # -- uplink ------------------------------------------------------------------------
    def feed(self, pcm: Int16Array) -> None:
        """Uplink audio at `rate_hz`, in arrival order (called from the receive path)."""
        for event in self.vad.feed(pcm):
            if isinstance(event, SpeechStarted):
                if self._playing:
                    self._barge.set()
                self.log.debug("speech started at %.2f s", event.start_s)
            elif isinstance(event, UtteranceEnded):
                utt = Utterance(
                    index=len(self.record.utterances) + 1,
                    start_s=event.start_s,
                    duration_s=event.duration_s,
                    peak_dbfs=event.peak_dbfs,
                    rms_dbfs=event.rms_dbfs,
                    detected_at=time.monotonic(),
                )
                self.record.utterances.append(utt)
                self.log.info(
                    "utterance %d: %.2f s at %.2f s, peak %.1f dBFS, rms %.1f dBFS",
                    utt.index,
                    utt.duration_s,
                    utt.start_s,
                    utt.peak_dbfs,
                    utt.rms_dbfs,
                )
                self._queue.put_nowait((utt, event.samples))

    # -- responder ---------------------------------------------------------------------
    async def _run(self) -> None:
        while not self._closed:
            utt, samples = await self._queue.get()
            try:
                await self._respond(utt, samples)
            except Exception:
                # A bug in one reply must not silence the agent for the rest of the call.
                self.log.exception("internal error while replying to utterance %d", utt.index)

    async def _respond(self, utt: Utterance, samples: Int16Array) -> None:
        if self.config.latency_ms > 0:
            await asyncio.sleep(self.config.latency_ms / 1000)
        suffix = await self.before_reply(utt)
        if self._closed:
            return
        frames = self.encode_reply(samples)
        reply = Reply(
            index=len(self.record.replies) + 1,
            utterance=utt.index,
            text=describe(utt) + suffix,
            audio_s=samples.size / self.rate_hz,
            frames_total=len(frames),
            started_at=time.monotonic(),
        )
        self.record.replies.append(reply)
        self.log.info("reply %d: %r + %.2f s of audio", reply.index, reply.text, reply.audio_s)
        await self.send_text(reply.text)
        await self._play(reply, frames)
        reply.finished_at = time.monotonic()
        if reply.interrupted:
            self.record.barge_ins += 1
            self.log.info(
                "reply %d interrupted by barge-in after %d of %d frames",
                reply.index,
                reply.frames_sent,
                reply.frames_total,
            )
            await self.on_interrupted(reply)
        else:
            await self.on_finished(reply)

    async def _play(self, reply: Reply, frames: list[Any]) -> None:
        loop = asyncio.get_running_loop()
        self._barge.clear()
        self._playing = True
        try:
            t0 = loop.time()
            for k, frame in enumerate(frames):
                if self.vad.in_speech or self._barge.is_set():
                    reply.interrupted = True
                    return
                delay = t0 + k * self.frame_s - loop.time()
                if delay > 0:
                    try:
                        await asyncio.wait_for(self._barge.wait(), delay)
                    except asyncio.TimeoutError:
                        pass
                    else:
                        reply.interrupted = True
                        return
                elif -delay > _REANCHOR_S:
                    t0 = loop.time() - k * self.frame_s
                await self.send_frame(frame)
                reply.frames_sent += 1
        finally:
            self._playing = False

    # -- protocol hooks ----------------------------------------------------------------
    async def before_reply(self, utt: Utterance) -> str:
        """Anything to do before the reply; returns text appended to the reply text."""
        return ""

    @abstractmethod
    async def send_text(self, text: str) -> None: ...

    @abstractmethod
    def encode_reply(self, samples: Int16Array) -> list[Any]:
        """The utterance (at `rate_hz`) as the protocol's outgoing audio frames."""

    @abstractmethod
    async def send_frame(self, frame: Any) -> None: ...

    async def on_interrupted(self, reply: Reply) -> None:
        return None

    async def on_finished(self, reply: Reply) -> None:
        return None
