"""A speaker whose output stream lives in a process of its own (docs/devices.md#process).

Why: the output callback is Python. In the call's process it waits for the interpreter
lock whenever a thread of the call holds it, and with both cores busy that thread may
be descheduled while it does: a low-latency stream then underflows. In a process of its
own the callback shares the lock with nothing that works, so the stream can ask for
20 ms instead of 100 and the downlink meets its goal.

`ProcessPlayer` is the call's side: it resamples agent audio to the stream's rate, sends
it and the marks, cues, clears and volume changes to `speaker_child`, and takes back,
without a thread of its own, what the child played (the monitor), the echo reference
with its DAC times, the marks reached, the cues heard and the figures. It reads the
pipe whenever one of those is asked for: the uplink asks for the reference every frame,
the observer for the rest every tick.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import replace
from time import monotonic
from typing import IO, Any, Generic, TypeVar

from aivoco.audio import speaker_wire as wire
from aivoco.audio.chunk import AudioChunk
from aivoco.audio.devices import load_sounddevice, resolve_device
from aivoco.audio.jitter import JitterStats
from aivoco.audio.playout import MAX_VOLUME, MONITOR_MS, REFERENCE_MS, PlayerStats, take_monitor
from aivoco.audio.resample import ToRate
from aivoco.audio.ring import SampleRing
from aivoco.audio.speaker_child import enlarge_pipe
from aivoco.audio.streams import (
    OUTPUT_STEPS,
    RETRY_AFTER_S,
    OutputStep,
    StreamFormat,
    supported_formats,
)
from aivoco.audio.timed import TimedBlock, TimedRing
from aivoco.errors import AivocoError, DeviceError

T = TypeVar("T")

STARTUP_TIMEOUT_S = 10.0  # interpreter start, imports, the stream's open (about 0.3 s)
WRITE_TIMEOUT_S = 2.0  # a child that takes nothing for this long (1 MiB queued) is stuck
CLEAR_WAIT_S = 0.5  # for the count of frames a clear discarded
# A started child sends something at least every second (speaker_child.HEARTBEAT_S):
# this long without a word, it is stopped or stuck, and the call ends with it.
SILENT_CHILD_S = 5.0
CLOSE_TIMEOUT_S = 3.0
READ_BYTES = 1 << 20
LOG_TAIL_BYTES = 4096  # the end of the child's log, for the last line of an error


class _FedRing(TimedRing):
    """The echo reference: each read first takes in what the child has sent."""

    def __init__(
        self, capacity_frames: int, sample_rate_hz: int, fetch: Callable[[], None]
    ) -> None:
        super().__init__(capacity_frames, sample_rate_hz)
        self._fetch = fetch

    def read(self) -> TimedBlock:
        self._fetch()
        return super().read()


class ProcessPlayer(Generic[T]):
    """The speaker, played by a child process (the `PlayerLike` interface)."""

    acoustic = True  # a real speaker: the microphone may hear it (echo control)

    def __init__(
        self,
        device: str | int | None,
        *,
        rate_hz: int,
        steps: tuple[OutputStep, ...] = OUTPUT_STEPS,
        retry_after_s: float = RETRY_AFTER_S,
    ) -> None:
        """`steps`, `retry_after_s`: the child's ladder (aivoco/audio/streams.py)."""
        self.device = resolve_device(device, "output")
        self.error: AivocoError | None = None
        self.volume = 1.0
        self._rlock = threading.Lock()  # reading the child's messages, and their state
        self._wlock = threading.Lock()  # one whole message at a time into the child
        self._producer_lock = threading.Lock()  # the resampler and what was sent
        self._decoder = wire.Decoder()
        self._eof = self._closing = self._broken = False
        self._sent = self._read_pos = 0  # frames sent; played, dropped or cleared
        self._marks: dict[int, T] = {}
        self._mark_seq = self._clear_seq = 0
        self._cleared: dict[int, int] = {}
        self._reached: list[T] = []
        self._heard: list[tuple[int, float | None]] = []
        self._monitor_lost = 0
        # The format is chosen here, so the call knows its rate without waiting for the
        # child (about 0.5 s to start): the child opens that format or fails.
        sd = load_sounddevice()
        fmt = supported_formats(sd, self.device, "output", rate_hz)[0]
        self.clock_rate_hz = fmt.rate_hz
        self.channels = fmt.channels
        self._ready = False
        self._ready_by = monotonic() + STARTUP_TIMEOUT_S
        self._heard_at = monotonic()  # the last bytes from the child
        # The child's stderr (PortAudio and ALSA say things there): kept for the error
        # message if it dies, instead of printed across the live view. Closed in close().
        self._log = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self._proc = self._spawn(self._log, fmt, steps, retry_after_s)
        except BaseException:
            self._log.close()
            raise
        self._to_clock = ToRate(self.clock_rate_hz)
        self.monitor = SampleRing(self.clock_rate_hz * MONITOR_MS // 1000)
        self.reference: TimedRing = _FedRing(
            self.clock_rate_hz * REFERENCE_MS // 1000, self.clock_rate_hz, self._drain
        )
        self._stats = PlayerStats(JitterStats(0, False, 0, 0, 0, 0, 0, 0, 0), 0, self.clock_rate_hz)

    # -- the child ---------------------------------------------------------------------
    def _spawn(
        self, log: IO[bytes], fmt: StreamFormat, steps: tuple[OutputStep, ...], retry_s: float
    ) -> Any:
        spec = {
            "device": self.device.index,
            "rate_hz": fmt.rate_hz,
            "channels": fmt.channels,
            "steps": [[s.latency_ms, s.block_ms, s.hold_ms] for s in steps],
            "retry_after_s": retry_s,
        }
        # The child needs no key: it gets no AIVOCO_* variable (secrets stay in the call).
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIVOCO_")}
        argv = [sys.executable, "-m", "aivoco.audio.speaker_child", json.dumps(spec)]
        try:
            # A session of its own: Ctrl-C and a hang-up at the terminal go to the call,
            # which closes the child; the child ends with the call's pipe in any case.
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise DeviceError(f"cannot start the speaker process: {exc}") from exc
        self._in: int = proc.stdin.fileno()  # type: ignore[union-attr]
        self._out: int = proc.stdout.fileno()  # type: ignore[union-attr]
        enlarge_pipe(self._in)
        os.set_blocking(self._in, False)
        os.set_blocking(self._out, False)
        return proc

    def _read_some(self) -> bytes | None:
        """Bytes from the child; b"" at its end; None if there are none yet."""
        try:
            return os.read(self._out, READ_BYTES)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    def _log_tail(self) -> str:
        try:
            size = self._log.seek(0, os.SEEK_END)
            self._log.seek(max(0, size - LOG_TAIL_BYTES))
            lines = self._log.read().decode("utf-8", "replace").strip().splitlines()
        except (OSError, ValueError):
            return ""
        return f": {lines[-1].strip()}" if lines else ""

    # -- reading what the child sent ---------------------------------------------------
    def _drain(self) -> None:
        with self._rlock:
            while not self._eof:
                data = self._read_some()
                if data is None:
                    # Only once the pipe is empty: what waits in it was said in time,
                    # however long the call took to come and read it.
                    self._watch()
                    return
                self._heard_at = monotonic()
                if not data:
                    self._eof = True
                    self._ended()
                    return
                try:
                    for kind, payload in self._decoder.feed(data):
                        self._dispatch(kind, payload)
                except (wire.SpeakerWireError, ValueError, TypeError, KeyError) as exc:
                    # Our own child, so a bug or a dying process: the speaker is lost.
                    self._eof = True
                    self._fail(f"bad message from the speaker process ({exc})")

    def _drain_until(self, done: Callable[[], bool], timeout_s: float) -> None:
        """Take in what the child sends until `done()`, its pipe ends, or `timeout_s`."""
        deadline = monotonic() + timeout_s
        while not done() and not self._eof and (left := deadline - monotonic()) > 0:
            select.select([self._out], [], [], left)
            self._drain()

    def _watch(self) -> None:
        """A child that never started, or has gone quiet, fails the speaker."""
        now = monotonic()
        if not self._ready and now > self._ready_by:
            self._fail(f"the speaker process did not start in {STARTUP_TIMEOUT_S:g} s")
        elif self._ready and now - self._heard_at > SILENT_CHILD_S:
            self._fail(f"the speaker process has said nothing for {SILENT_CHILD_S:g} s")

    def _dispatch(self, kind: wire.Kind, payload: bytes) -> None:
        if kind is wire.Kind.READY:
            self._ready = True
        elif kind is wire.Kind.FAIL:
            _, message = wire.decode_json(payload)
            self._fail(str(message))
        elif kind is wire.Kind.BLOCK:
            block = wire.decode_block(payload)
            if block.monitor.shape[0]:
                self.monitor.write(block.monitor)
            if block.reference.shape[0]:
                self.reference.write(block.reference, block.start_s)
            self._read_pos = block.read_pos
        elif kind is wire.Kind.EVENTS:
            self._events(wire.decode_json(payload))
        elif kind is wire.Kind.CLEARED:
            seq, frames, read_pos = wire.decode_json(payload)
            self._read_pos = max(self._read_pos, int(read_pos))
            if seq == self._clear_seq:
                self._cleared[int(seq)] = int(frames)
        elif kind is wire.Kind.ERROR:
            self._fail(str(wire.decode_json(payload)))
        else:
            raise wire.SpeakerWireError(f"speaker process: unexpected {kind.name}")

    def _events(self, events: dict[str, Any]) -> None:
        try:
            self._reached.extend(self._marks.pop(int(i)) for i in events["reached"])
            self._heard.extend(
                (int(k), None if t is None else float(t)) for k, t in events["heard"]
            )
            if "stats" in events:
                s = events["stats"]
                self._stats = PlayerStats(
                    JitterStats(**s["jitter"]),
                    int(s["device_underflows"]),
                    self.clock_rate_hz,
                    s["output_latency_ms"],
                    int(s["step"][0]) if s["settled"] else None,
                )
        except (KeyError, TypeError, ValueError) as exc:
            raise wire.SpeakerWireError(f"speaker process: bad events ({exc!r})") from exc

    def _ended(self) -> None:
        if not self._closing:
            code = self._proc.poll()
            how = "" if code is None else f" (exit {code})"
            self._fail(f"the speaker process ended{how}{self._log_tail()}")

    def _fail(self, message: str) -> None:
        if self.error is None:
            self.error = DeviceError(f"speaker {self.device.name}: {message}")

    # -- sending -----------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        if self._broken:
            return  # already reported (or closed): nothing more goes to the child
        with self._wlock:
            view = memoryview(data)
            deadline = monotonic() + WRITE_TIMEOUT_S
            while view and not self._broken:
                try:
                    view = view[os.write(self._in, view) :]
                except BlockingIOError:
                    left = deadline - monotonic()
                    if left <= 0 or not select.select([], [self._in], [], left)[1]:
                        self._broken = True
                        self._fail(f"the speaker process took no audio for {WRITE_TIMEOUT_S:g} s")
                except OSError:
                    self._broken = True
        if self._broken:
            self._drain()  # the child's own account of why, if it gave one
            self._fail("the speaker process is gone")

    # -- PlayerLike --------------------------------------------------------------------
    def play(self, chunk: AudioChunk) -> None:
        with self._producer_lock:
            self._send_audio(self._to_clock.process(chunk))

    def _send_audio(self, pcm: AudioChunk) -> None:
        if pcm.frames:
            self._send(wire.play(pcm.samples.reshape(-1)))
            self._sent += pcm.frames

    def add_marker(self, token: T) -> None:
        with self._producer_lock:
            self._send_audio(self._to_clock.flush())
            self._mark_seq += 1
            self._marks[self._mark_seq] = token
            self._send(wire.control(wire.Kind.MARK, self._mark_seq))

    def cue_heard(self, key: int) -> None:
        with self._producer_lock:
            self._send(wire.control(wire.Kind.CUE, key))

    def clear(self) -> int:
        """Barge-in: the child discards what it queued; returns how many frames (or,
        if it does not say within CLEAR_WAIT_S, what was queued by the last report)."""
        with self._producer_lock:
            self._to_clock.reset()
            self._clear_seq += 1
            seq = self._clear_seq
            estimate = max(0, self._sent - self._read_pos)  # frames, as the child counts
            self._send(wire.control(wire.Kind.CLEAR, seq))
            self._drain_until(lambda: seq in self._cleared, CLEAR_WAIT_S)
            return self._cleared.pop(seq, estimate)

    def pop_reached(self) -> list[T]:
        self._drain()
        with self._rlock:
            out, self._reached = self._reached, []
        return out

    def pop_heard(self) -> list[tuple[int, float | None]]:
        self._drain()
        with self._rlock:
            out, self._heard = self._heard, []
        return out

    def take_played(self) -> AudioChunk:
        self._drain()
        with self._rlock:
            chunk, self._monitor_lost = take_monitor(
                self.monitor, self._monitor_lost, self.clock_rate_hz
            )
        return chunk

    def _queued_ms(self) -> float:
        """Sent and not yet played, dropped or cleared, by the child's last report."""
        return max(0, self._sent - self._read_pos) * 1000.0 / self.clock_rate_hz

    def buffered_ms(self) -> float:
        self._drain()
        return self._queued_ms()

    def stats(self) -> PlayerStats:
        """The child's last figures (at most 0.1 s old), with what is queued now."""
        self._drain()
        jitter = replace(self._stats.jitter, buffered_ms=self._queued_ms())
        return replace(self._stats, jitter=jitter)

    def set_volume(self, volume: float) -> float:
        self.volume = min(MAX_VOLUME, max(0.0, float(volume)))
        self._send(wire.control(wire.Kind.VOLUME, self.volume))
        return self.volume

    def start(self) -> None:
        self._send(wire.frame(wire.Kind.START))

    def close(self) -> None:
        """Stop the child and take its last blocks and figures (the summary's)."""
        if self._closing:
            return
        self._closing = True
        self._send(wire.frame(wire.Kind.CLOSE))
        deadline = monotonic() + CLOSE_TIMEOUT_S
        self._drain_until(lambda: False, CLOSE_TIMEOUT_S)  # to the end of its pipe
        try:
            self._proc.wait(timeout=max(0.1, deadline - monotonic()))
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        with self._rlock, self._wlock:
            # No read or write after this: the descriptors' numbers may be reused.
            self._eof = self._broken = True
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                pipe.close()
        self._log.close()
