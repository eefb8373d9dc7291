"""The speaker process: it owns a call's output stream, so the output callback never waits
for the call's interpreter lock (docs/devices.md#process).

Started by `speaker_proc.ProcessPlayer` as `python -m aivoco.audio.speaker_child SPEC`:
commands come on stdin, messages go out on stdout (moved to a descriptor of its own first,
so nothing a library prints can break the stream), stderr goes to the parent's log
file. Inside, it is the in-process `DevicePlayer` (jitter buffer, ladder, echo
reference) with a callback that also ships what it just did to the parent.

Threads: PortAudio's callback, which also takes the parent's commands in (`Commands`),
the ladder's (asleep once settled) and the main thread, which wakes ten times a second
to take commands in when no callback runs and to report a failed stream. The callback
sends without blocking; what the pipe cannot take waits in a bounded backlog (`Sender`).
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import sys
import threading
from collections import deque
from time import monotonic
from typing import Any

from aivoco.audio import speaker_wire as wire
from aivoco.audio.engine import DevicePlayer
from aivoco.audio.streams import RETRY_AFTER_S, OutputStep, StreamFormat
from aivoco.errors import AivocoError, PortAudioMissingError

STATS_EVERY = 10  # callbacks between stats snapshots (10 a second with 10 ms blocks)
# With no callback for this long (settling, a step up) the main thread takes commands
# in; also how soon a stream that failed is reported.
MAIN_POLL_S = 0.1
# With no callback for this long (a step up, a stream that will not start), the main
# thread sends the figures itself: the parent takes 5 s of silence for a stopped or
# stuck child (speaker_proc.SILENT_CHILD_S).
HEARTBEAT_S = 1.0
# What may wait for the parent beyond the pipe's own buffer: with blocks of both taps at
# 24 kHz (about 200 kB a second) and a 1 MiB pipe, about 20 s of a parent that reads
# nothing. Past it, whole audio blocks are dropped, oldest first; control never is.
BACKLOG_BYTES = 4 << 20
PIPE_BYTES = 1 << 20
F_SETPIPE_SZ = 1031  # Linux; elsewhere the pipe keeps its default size


def enlarge_pipe(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, OSError):
        pass  # not Linux, or over /proc/sys/fs/pipe-max-size: the default size works


class Sender:
    """Whole messages out on a non-blocking descriptor, from any thread, never blocking."""

    def __init__(self, fd: int, backlog_bytes: int = BACKLOG_BYTES) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._cap = backlog_bytes
        self._lock = threading.Lock()
        self._backlog: deque[tuple[bool, memoryview]] = deque()  # (is audio, bytes left)
        self._held = 0
        self.dropped_blocks = 0
        self.broken = False

    def send(self, data: bytes, audio: bool = False) -> None:
        with self._lock:
            if self.broken:
                return
            self._backlog.append((audio, memoryview(data)))
            self._held += len(data)
            self._flush()
            self._trim()

    def _flush(self) -> None:
        while self._backlog:
            audio, head = self._backlog[0]
            try:
                n = os.write(self._fd, head)
            except BlockingIOError:
                return
            except OSError:  # the parent is gone: nothing more will be read
                self.broken = True
                self._backlog.clear()
                return
            self._held -= n
            if n < len(head):
                self._backlog[0] = (audio, head[n:])
                return
            self._backlog.popleft()

    def _trim(self) -> None:
        # The head may be half written: only whole audio blocks behind it are dropped.
        i = 1
        while self._held > self._cap and i < len(self._backlog):
            audio, data = self._backlog[i]
            if audio:
                del self._backlog[i]
                self._held -= len(data)
                self.dropped_blocks += 1
            else:
                i += 1

    def finish(self, timeout_s: float = 2.0) -> None:
        """Write what is left (at exit), waiting up to `timeout_s` for the pipe."""
        with self._lock:
            while self._backlog and not self.broken:
                _, ready, _ = select.select([], [self._fd], [], timeout_s)
                if not ready:
                    return
                self._flush()


class ChildPlayer(DevicePlayer[int]):
    """DevicePlayer whose callback ships each block, with the marks and cues it
    resolved, to the parent."""

    def __init__(
        self, sender: Sender, device: int, fmt: StreamFormat, steps: Any, retry_after_s: float
    ) -> None:
        self._sender = sender
        self._calls = 0
        self.commands: Commands | None = None  # set once built (the stream runs already)
        self._publishing = threading.Lock()
        self.published_at = monotonic()
        # Only the format the parent chose: it already told the call this rate.
        super().__init__(
            device, rate_hz=fmt.rate_hz, steps=steps, formats=[fmt],
            retry_after_s=retry_after_s,
        )  # fmt: skip

    def _cb(self, outdata: Any, frames: int, time: Any, status: Any) -> None:
        if self.commands is not None:
            self.commands.poll()
        super()._cb(outdata, frames, time, status)
        self._calls += 1
        self.publish(self._calls % STATS_EVERY == 0)

    def publish(self, with_stats: bool) -> None:
        with self._publishing:  # the callback's, or the main thread's heartbeat
            self._publish(with_stats)
            self.published_at = monotonic()

    def _publish(self, with_stats: bool) -> None:
        monitor = self.monitor.read()
        ref = self.reference.read()
        read_pos, write_pos = self.jitter.positions
        if monitor.shape[0] or ref.frames:
            block = wire.Block(ref.start_s, read_pos, write_pos, monitor, ref.samples)
            self._sender.send(wire.block(block), audio=True)
        reached = self.jitter.pop_reached()
        heard = self.jitter.pop_cues()
        if reached or heard or with_stats:
            events: dict[str, Any] = {"reached": reached, "heard": heard}
            if with_stats:
                events["stats"] = self.snapshot()
            self._sender.send(wire.control(wire.Kind.EVENTS, events))

    def snapshot(self) -> dict[str, Any]:
        stats = self.stats()
        return {
            "jitter": vars(stats.jitter),
            "device_underflows": stats.device_underflows,
            "output_latency_ms": stats.output_latency_ms,
            "step": [self.output_step.latency_ms, self.output_step.block_ms],
            "settled": self.ladder.settled,
        }


class Commands:
    """The parent's commands, taken in without a wake-up of their own: by the output
    callback at the start of each block (so audio that came is there for it), or by the
    main thread when no callback has run for a while (settling, a step up). One of the
    two at a time; the other skips. Taken in on the callback's turn instead of on a
    wake-up of the main thread per message, 20 ms chunks cost the child about a point
    of a core less (5.4-5.8 -> 3.5-4.9 %, bench/probe_speaker_process.py); a reply's
    first chunk may start up to one block (10 ms) later."""

    def __init__(self, fd: int, player: ChildPlayer, sender: Sender) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._player = player
        self._sender = sender
        self._decoder = wire.Decoder()
        self._lock = threading.Lock()
        self.polled_at = monotonic()
        self.ended = threading.Event()  # CLOSE, the end of the pipe, or a bad message
        self.failure: wire.SpeakerWireError | None = None

    def poll(self) -> None:
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._take()
        except (wire.SpeakerWireError, ValueError, TypeError) as exc:
            self.failure = wire.SpeakerWireError(f"speaker process: bad command ({exc})")
            self.ended.set()
        finally:
            self.polled_at = monotonic()
            self._lock.release()

    def _take(self) -> None:
        while not self.ended.is_set():
            try:
                data = os.read(self._fd, PIPE_BYTES)
            except BlockingIOError:
                return
            if not data:
                self.ended.set()  # the parent is gone
                return
            for kind, payload in self._decoder.feed(data):
                if kind is wire.Kind.CLOSE:
                    self.ended.set()
                    return
                apply(self._player, self._sender, kind, payload)


def serve(player: ChildPlayer, sender: Sender, commands: Commands) -> None:
    """Until CLOSE or the end of the parent's pipe: take commands in when the callback
    does not, and report a stream that failed."""
    reported = False
    while not commands.ended.wait(MAIN_POLL_S):
        if monotonic() - commands.polled_at >= MAIN_POLL_S:
            commands.poll()
        if monotonic() - player.published_at >= HEARTBEAT_S:
            player.publish(with_stats=True)  # no callback for a while: still alive
        if player.error is not None and not reported:
            reported = True
            sender.send(wire.control(wire.Kind.ERROR, str(player.error)))
    if commands.failure is not None:
        raise commands.failure


def apply(player: ChildPlayer, sender: Sender, kind: wire.Kind, payload: bytes) -> None:
    if kind is wire.Kind.PLAY:
        player.jitter.write(wire.decode_play(payload))
    elif kind is wire.Kind.MARK:
        player.jitter.add_marker(int(wire.decode_json(payload)))
    elif kind is wire.Kind.CUE:
        player.jitter.cue(int(wire.decode_json(payload)))
    elif kind is wire.Kind.CLEAR:
        frames = player.jitter.clear()
        read_pos, _ = player.jitter.positions
        cleared = [wire.decode_json(payload), frames, read_pos]
        sender.send(wire.control(wire.Kind.CLEARED, cleared))
    elif kind is wire.Kind.VOLUME:
        player.set_volume(float(wire.decode_json(payload)))
    elif kind is wire.Kind.START:
        player.start()
    else:
        raise wire.SpeakerWireError(f"speaker process: unexpected command {kind.name}")


def steps_from(spec: dict[str, Any]) -> tuple[OutputStep, ...]:
    return tuple(OutputStep(*map(int, s)) for s in spec["steps"])


def main(argv: list[str]) -> int:
    # Started in a session of its own, so a Ctrl-C at the terminal does not come here;
    # one sent to us directly is the call's to act on too: it closes us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out_fd = os.dup(1)
    os.dup2(2, 1)  # a stray print goes to the log, not into the parent's stream
    enlarge_pipe(out_fd)
    sender = Sender(out_fd)
    spec = json.loads(argv[1])
    try:
        fmt = StreamFormat(int(spec["rate_hz"]), int(spec["channels"]))
        retry_s = float(spec.get("retry_after_s", RETRY_AFTER_S))
        player = ChildPlayer(sender, int(spec["device"]), fmt, steps_from(spec), retry_s)
    except AivocoError as exc:
        what = "portaudio" if isinstance(exc, PortAudioMissingError) else "device"
        sender.send(wire.control(wire.Kind.FAIL, [what, str(exc)]))
        sender.finish()
        return 1
    # Everything made so far (modules, the player) lives as long as the process. Out of
    # the collector's way, a full collection takes microseconds instead of 5 ms (11 ms
    # seen during a call), time a 20 ms stream cannot spare (docs/devices.md#process).
    gc.collect()
    gc.freeze()
    sender.send(wire.frame(wire.Kind.READY))
    player.commands = commands = Commands(0, player, sender)
    try:
        serve(player, sender, commands)
    finally:
        player.close()
        player.publish(with_stats=True)  # the last blocks and the final figures
        sender.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
