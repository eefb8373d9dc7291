"""Client-added latency through real PortAudio and a private PulseAudio, uplink and downlink.

    python bench/bench_latency.py                     # sts and call, 10 bursts each
    python bench/bench_latency.py --protocol sts --bursts 30
    python bench/bench_latency.py --bursts 20 --stall-at 2   # a stall: up, then back down

Rig (all on this machine; nothing else is touched):
* a private PulseAudio with null sinks (tests/pulse.py): aivoco's microphone is
  `aivoco_mic` (a remap of `aivoco_micsrc.monitor`), its speaker `aivoco_spk`;
* a loopback server in this process (python-socketio AsyncServer and an aiohttp
  WebSocket route on one aiohttp app, like tests/_servers_*.py) that timestamps every
  audio message it receives and sends, at the WebSocket itself (engine.io's aiohttp
  wrapper is wrapped for sts, so the times are when the frame was read or written,
  not when a handler ran);
* PortAudio streams of this process (48 kHz, 10 ms blocks, through ALSA's pulse
  plugin): one plays bursts into `aivoco_micsrc`, one plays calibration clicks into
  `aivoco_spk`, and two record `aivoco_mic` and `aivoco_spk.monitor`. Times are
  PortAudio's DAC/ADC timestamps mapped onto time.monotonic() in each callback.
* aivoco itself (`aivoco sts|call --json`, default devices), a subprocess.

Every `--period` (2 s) and 7 ms: a 100 ms 1 kHz burst is played into the microphone;
0.6 s later a 10 ms click into the speaker sink (calibration); 1.0 s later the server
sends a 300 ms 1 kHz reply (sts: three 100 ms chunks of 24 kHz PCM16, paced in real
time, like the emulator; call: fifteen 20 ms mu-law `media` frames, then a `mark`).
The 7 ms step moves each burst to another place in the client's 20 ms frames: with a
period of whole frames every burst of a run fell at the same place, so how long it
waited for the rest of its frame was one random figure per run (0-20 ms, the spread
between runs in bench/RESULTS.md sections 10-14), not the average a user meets.

(a) uplink: from the burst's first sample at the microphone to the server reading the
    frame that contains it. "at the mic" is the ADC time at which this process's own
    recorder of `aivoco_mic` (the source aivoco reads) saw the onset, i.e. the
    client's share only; the same from the DAC time it was played into
    `aivoco_micsrc` is also shown. "after frame end" subtracts the wait for the rest
    of the frame: the delay once the frame's last sample was captured.
(b) downlink: from the server writing the reply's first chunk to its first sample at the
    speaker, i.e. the ADC time of the onset on `aivoco_spk.monitor`, corrected by the
    recorder's own bias (median ADC-minus-DAC of the calibration clicks played into the
    same sink); the uncorrected figure and an upper bound from the recorder callback's
    arrival time are shown too.
Underruns come from aivoco's own `--json` summary. The rig checks (ADC minus DAC of the
same sound on both paths) say how far this rig's clocks can be trusted: a few ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _measure as m

RIG_RATE = 48000
RIG_BLOCK = 480  # 10 ms
THRESHOLD = 0.1  # of full scale: onset detection
BURST_HZ = 1000.0
MIC_BURST_S = 0.1
CLICK_S = 0.01
REPLY_S = 0.3
CLICK_AT_S = 0.6
REPLY_AT_S = 1.0
PHASE_STEP_S = 0.007  # each burst this much later in the frame grid than the last
STALL_S = 0.4  # --stall-at: the speaker process stopped this long (SIGSTOP, SIGCONT)

Float32Array = npt.NDArray[np.float32]
Int16Array = npt.NDArray[np.int16]


def tone(seconds: float, rate: int, freq: float = BURST_HZ, amp: float = 0.5) -> Float32Array:
    t = np.arange(round(seconds * rate)) / rate
    out: Float32Array = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return out


# -- the loopback server -------------------------------------------------------------------
@dataclass
class Wire:
    """What the server read and wrote, with time.monotonic() stamps."""

    received: list[tuple[float, str]] = field(default_factory=list)  # raw audio messages
    sent: list[tuple[float, int, int]] = field(default_factory=list)  # t, burst, chunk
    marks: list[tuple[float, str]] = field(default_factory=list)  # client mark answers
    marks_sent: list[tuple[float, str]] = field(default_factory=list)


_STS_SENT = re.compile(r'"bench_burst":\s*(\d+),\s*"bench_chunk":\s*(\d+)')


class LoopbackServer:
    """Socket.IO (sts) and a raw WebSocket route (call) on one aiohttp app, on a thread."""

    def __init__(self) -> None:
        self.wire = Wire()
        self.live = threading.Event()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._sio: Any = None
        self._sid: str | None = None
        self._ws: Any = None
        self._runner: Any = None
        self._stream_sid = ""

    def _patch_engineio(self) -> None:
        """Timestamp sts frames where engine.io reads and writes the WebSocket (patched
        once per process; each server in turn becomes the one that records)."""
        from engineio.async_drivers import aiohttp as eio_aiohttp

        cls: Any = eio_aiohttp.WebSocket
        cls._bench_wire = self.wire
        if getattr(cls, "_bench_patched", False):
            return
        orig_send, orig_wait = cls.send, cls.wait

        async def send(self: Any, message: Any) -> None:
            await orig_send(self, message)
            if isinstance(message, str) and "audio_response" in message:
                found = _STS_SENT.search(message)
                if found:
                    cls._bench_wire.sent.append((time.monotonic(), int(found[1]), int(found[2])))

        async def wait(self: Any) -> Any:
            data = await orig_wait(self)
            if isinstance(data, str) and data.startswith('42["audio_data"'):
                cls._bench_wire.received.append((time.monotonic(), data))
            return data

        cls.send, cls.wait, cls._bench_patched = send, wait, True

    async def _setup(self) -> None:
        import socketio
        from aiohttp import WSMsgType, web

        self._patch_engineio()
        sio = socketio.AsyncServer(async_mode="aiohttp", async_handlers=False, logger=False)
        self._sio = sio
        app = web.Application()
        sio.attach(app)

        async def start_call(sid: str, data: Any) -> None:
            self._sid = sid
            await sio.emit("auth_success", {"credits": 1000}, to=sid)
            ready = {"message": "bench", "credits_available": 1000, "cost_per_minute": 1}
            await sio.emit("session_ready", ready, to=sid)
            self.live.set()

        async def stop_call(sid: str, data: Any = None) -> None:
            await sio.emit("session_ended", {"reason": "stopped_by_user"}, to=sid)
            await sio.disconnect(sid)

        sio.on("start_call", start_call)
        sio.on("stop_call", stop_call)

        async def ws_route(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            self._ws = ws
            async for msg in ws:
                t = time.monotonic()
                if msg.type != WSMsgType.TEXT or not msg.data:
                    continue
                if '"event":"media"' in msg.data:
                    self.wire.received.append((t, msg.data))
                    continue
                message = json.loads(msg.data)
                event = message.get("event")
                if event == "start":
                    self._stream_sid = message.get("streamSid", "")
                    self.live.set()
                elif event == "mark":
                    self.wire.marks.append((t, message["mark"]["name"]))
                elif event == "stop":
                    break
            self._ws = None
            return ws

        app.router.add_get("/ws/{key}/{agent}", ws_route)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._setup(), self._loop).result(10)

    def stop(self) -> None:
        async def teardown() -> None:
            if self._sio is not None:
                for sid in [self._sid] if self._sid else []:
                    with contextlib.suppress(Exception):
                        await self._sio.disconnect(sid)
            if self._ws is not None:
                await self._ws.close()
            if self._sio is not None:
                await self._sio.shutdown()
            if self._runner is not None:
                await self._runner.cleanup()
            # What is left are engine.io's timers: cancel them so nothing outlives stop().
            current = asyncio.current_task()
            leftovers = [t for t in asyncio.all_tasks() if t is not current]
            for task in leftovers:
                task.cancel()
            await asyncio.gather(*leftovers, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(teardown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._loop.is_running():
            self._loop.close()

    def send_reply(self, protocol: str, burst: int) -> None:
        """Start sending one reply burst (returns at once; paced on the server loop)."""
        coro = self._sts_reply(burst) if protocol == "sts" else self._call_reply(burst)
        asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def _sts_reply(self, burst: int) -> None:
        pcm = (tone(REPLY_S, 24000) * 32767).astype(np.int16)
        chunk = 2400  # 100 ms at 24 kHz, as the emulator sends
        t0 = time.monotonic()
        for k in range(0, pcm.size, chunk):
            delay = t0 + (k / 24000) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            payload = {
                "audio_data": base64.b64encode(pcm[k : k + chunk].tobytes()).decode(),
                "bench_burst": burst,
                "bench_chunk": k // chunk,
            }
            await self._sio.emit("audio_response", payload, to=self._sid)

    async def _call_reply(self, burst: int) -> None:
        from aivoco.audio.g711 import ulaw_encode

        ws = self._ws
        if ws is None:
            return
        pcm = (tone(REPLY_S, 8000) * 32767).astype(np.int16)
        frame = 160
        t0 = time.monotonic()
        for k in range(0, pcm.size, frame):
            delay = t0 + (k / 8000) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            codes = ulaw_encode(pcm[k : k + frame]).tobytes()
            media = {"track": "outbound", "payload": base64.b64encode(codes).decode()}
            msg = {"event": "media", "streamSid": self._stream_sid, "media": media}
            await ws.send_str(json.dumps(msg))
            self.wire.sent.append((time.monotonic(), burst, k // frame))
        name = f"burst-{burst}"
        mark = {"event": "mark", "streamSid": self._stream_sid, "mark": {"name": name}}
        await ws.send_str(json.dumps(mark))
        self.wire.marks_sent.append((time.monotonic(), name))


# -- the audio rig -------------------------------------------------------------------------
def _rig_stream(cls: Any, variable: str, name: str, callback: Any) -> Any:
    """A mono low-latency stream on PulseAudio's `name` (sink or source): the pulse
    ALSA device picks it from $PULSE_SINK / $PULSE_SOURCE while the stream opens."""
    os.environ[variable] = name
    try:
        return cls(
            device="pulse",
            samplerate=RIG_RATE,
            channels=1,
            blocksize=RIG_BLOCK,
            latency="low",
            dtype="float32",
            callback=callback,
        )
    finally:
        del os.environ[variable]


class RigPlayer:
    """An output stream into one sink; plays scheduled sounds at known DAC times."""

    def __init__(self, sd: Any, sink: str) -> None:
        self.pos = 0
        self.blocks: list[tuple[int, float]] = []  # first sample index, DAC time (monotonic)
        self._pending: list[tuple[int, Float32Array]] = []
        self._lock = threading.Lock()
        self.stream = _rig_stream(sd.OutputStream, "PULSE_SINK", sink, self._cb)

    def _cb(self, out: Float32Array, frames: int, ti: Any, status: Any) -> None:
        offset = time.monotonic() - ti.currentTime
        out.fill(0)
        start = self.pos
        with self._lock:
            for at, wave in self._pending:
                lo, hi = max(at, start), min(at + wave.size, start + frames)
                if lo < hi:
                    out[lo - start : hi - start, 0] = wave[lo - at : hi - at]
        self.blocks.append((start, ti.outputBufferDacTime + offset))
        self.pos += frames

    def schedule(self, delay_s: float, wave: Float32Array) -> int:
        """Play `wave` about `delay_s` from now; returns its first sample's index."""
        at = self.pos + RIG_BLOCK + round(delay_s * RIG_RATE)
        with self._lock:
            self._pending = [(a, w) for a, w in self._pending if a + w.size > self.pos]
            self._pending.append((at, wave))
        return at

    def dac_time(self, index: int) -> float | None:
        for first, t in reversed(self.blocks):
            if first <= index:
                return t + (index - first) / RIG_RATE
        return None


class RigRecorder:
    """An input stream from one source; keeps samples with ADC and arrival times."""

    def __init__(self, sd: Any, source: str) -> None:
        self.blocks: list[tuple[Float32Array, float, float]] = []  # samples, ADC, arrival
        self.stream = _rig_stream(sd.InputStream, "PULSE_SOURCE", source, self._cb)

    def _cb(self, data: Float32Array, frames: int, ti: Any, status: Any) -> None:
        now = time.monotonic()
        self.blocks.append((data[:, 0].copy(), ti.inputBufferAdcTime + now - ti.currentTime, now))

    def onsets(self, min_gap_s: float = 0.15) -> list[tuple[float, float]]:
        """(ADC time, arrival-based upper bound) of each sound's first sample."""
        out: list[tuple[float, float]] = []
        last_loud = -1e9
        for samples, adc, arrival in self.blocks:
            loud = np.flatnonzero(np.abs(samples) > THRESHOLD)
            if loud.size == 0:
                continue
            first = int(loud[0])
            t_adc = adc + first / RIG_RATE
            if t_adc - last_loud > min_gap_s:
                out.append((t_adc, arrival - (samples.size - first) / RIG_RATE))
            last_loud = adc + int(loud[-1]) / RIG_RATE
        return out


# -- one protocol --------------------------------------------------------------------------
@dataclass
class ProtocolResult:
    protocol: str  # sts | call, with "@base" for the --baseline build
    uplink_mic: list[float] = field(default_factory=list)  # ms, from ADC at aivoco_mic
    uplink_dac: list[float] = field(default_factory=list)  # ms, from DAC into aivoco_micsrc
    uplink_after_frame: list[float] = field(default_factory=list)  # ms
    downlink: list[float] = field(default_factory=list)  # ms, bias-corrected
    downlink_raw: list[float] = field(default_factory=list)  # ms, ADC uncorrected
    downlink_arrival: list[float] = field(default_factory=list)  # ms, upper bound
    mark_rtt: list[float] = field(default_factory=list)  # ms, call: mark sent -> answered
    rig_mic: list[float] = field(default_factory=list)  # ms, ADC - DAC, mic path
    rig_spk: list[float] = field(default_factory=list)  # ms, ADC - DAC, speaker path
    # aivoco's own `turn` records: first sound minus first byte, i.e. its playout share
    playout_self: list[float] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def decode_uplink(protocol: str, raw: str) -> Int16Array:
    if protocol == "sts":
        payload = json.loads(raw[2:])[1]
        out: Int16Array = np.frombuffer(base64.b64decode(payload["audio_data"]), np.int16)
        return out
    from aivoco.audio.g711 import ulaw_decode

    return ulaw_decode(base64.b64decode(json.loads(raw)["media"]["payload"]))


def uplink_onsets(
    protocol: str, received: Sequence[tuple[float, str]]
) -> list[tuple[float, float, float]]:
    """(time read, seconds from onset to the frame's end, onset sample index) per burst."""
    rate = 16000 if protocol == "sts" else 8000
    out: list[tuple[float, float, float]] = []
    n = 0
    last_loud = -(10**9)
    for t, raw in received:
        x = decode_uplink(protocol, raw)
        loud = np.flatnonzero(np.abs(x.astype(np.int32)) > THRESHOLD * 32768)
        if loud.size:
            first = int(loud[0])
            if n + first - last_loud > 0.15 * rate:
                out.append((t, (x.size - first) / rate, n + first))
            last_loud = n + int(loud[-1])
        n += x.size
    return out


def stall_speaker(parent: int) -> str:
    """Stop aivoco's speaker process for STALL_S: its stream underflows as a stalled
    callback's does, and the ladder steps up (then back down after its wait)."""
    pids = []
    for pid in m.descendants(parent):
        with contextlib.suppress(OSError):
            if b"speaker_child" in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(pid)
    if not pids:
        return "--stall-at: no speaker process found"
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    time.sleep(STALL_S)
    for pid in pids:
        os.kill(pid, signal.SIGCONT)
    return f"speaker process stopped for {STALL_S:g} s"


def nearest_after(times: Sequence[float], t: float, window_s: float) -> float | None:
    """The latest of `times` at or before t (within window_s)."""
    best = None
    for x in times:
        if x <= t + 0.005 and t - x <= window_s:
            best = x
    return best


def run_protocol(
    protocol: str, pulse: Any, sd: Any, args: argparse.Namespace, root: Path | None = None
) -> ProtocolResult:
    res = ProtocolResult(protocol if root is None else f"{protocol}@base")
    server = LoopbackServer()
    server.start()
    mic_rec = RigRecorder(sd, "aivoco_mic")
    spk_rec = RigRecorder(sd, "aivoco_spk.monitor")
    mic_play = RigPlayer(sd, "aivoco_micsrc")
    spk_play = RigPlayer(sd, "aivoco_spk")
    streams = [mic_rec.stream, spk_rec.stream, mic_play.stream, spk_play.stream]
    for s in streams:
        s.start()
    client: m.Child | None = None
    mic_idx: list[int] = []
    click_idx: list[int] = []
    reply_sent: dict[int, float] = {}
    try:
        env = m.aivoco_env(m.clean_env(pulse.env), root)
        url = f"http://127.0.0.1:{server.port}"
        cmd = [protocol, "--key", "bench", "--json", "--chunk-ms", str(args.chunk_ms)]
        if args.echo is not None:
            cmd += ["--echo", args.echo]
        if args.low_cpu:
            cmd.append("--low-cpu")
        cmd += ["--max-duration", f"{args.bursts * args.period + 30:g}"]
        if protocol == "sts":
            cmd += ["--url", url]
        else:
            cmd += ["--url", f"ws://127.0.0.1:{server.port}/ws", "--agent", "bench"]
        client = m.Child(m.aivoco_command(*cmd), env=env)
        if not server.live.wait(30):
            res.notes.append(f"client never went live: {client.stderr_text()[-500:]!r}")
            return res
        time.sleep(args.settle)
        mic_wave = tone(MIC_BURST_S, RIG_RATE)
        click = tone(CLICK_S, RIG_RATE, freq=3000.0)
        for j in range(args.bursts):
            if j == args.stall_at:
                res.notes.append(stall_speaker(client.proc.pid))
            t0 = time.monotonic()
            mic_idx.append(mic_play.schedule(0.0, mic_wave))
            click_idx.append(spk_play.schedule(CLICK_AT_S, click))
            time.sleep(max(0.0, t0 + REPLY_AT_S - time.monotonic()))
            server.send_reply(protocol, j)
            time.sleep(max(0.0, t0 + args.period + PHASE_STEP_S - time.monotonic()))
        time.sleep(0.5)
    finally:
        if client is not None:
            client.stop(grace_s=6.0)
        for s in streams:
            with contextlib.suppress(Exception):
                s.stop()
                s.close()
        server.stop()
    if client is not None:
        for line in client.stdout_text().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and record.get("type") == "summary":
                    res.summary = record
                if isinstance(record, dict) and record.get("first_sound_ms") is not None:
                    res.playout_self.append(record["first_sound_ms"] - record["latency_ms"])
    wire = server.wire
    for t, burst, chunk in wire.sent:
        if chunk == 0:
            reply_sent[burst] = t
    # rig checks and the ground truth at the microphone
    mic_dacs = [d for d in (mic_play.dac_time(i) for i in mic_idx) if d is not None]
    click_dacs = [d for d in (spk_play.dac_time(i) for i in click_idx) if d is not None]
    mic_onsets = mic_rec.onsets()
    mic_adc_by_dac: dict[float, float] = {}
    for adc, _ in mic_onsets:
        d = nearest_after(mic_dacs, adc, 0.2)
        if d is not None and d not in mic_adc_by_dac:
            mic_adc_by_dac[d] = adc
            res.rig_mic.append((adc - d) * 1000)
    spk_onsets = spk_rec.onsets()
    cal = []
    for adc, _ in spk_onsets:
        d = nearest_after(click_dacs, adc, 0.1)
        if d is not None:
            cal.append(adc - d)
    res.rig_spk = [c * 1000 for c in cal]
    bias = float(np.median(cal)) if cal else 0.0
    if not cal:
        res.notes.append("no calibration click found on the speaker monitor: no bias correction")
    # (a) uplink
    for t_read, to_end_s, _ in uplink_onsets(protocol, wire.received):
        d = nearest_after(mic_dacs, t_read, 0.6)
        if d is None:
            continue
        res.uplink_dac.append((t_read - d) * 1000)
        mic_adc = mic_adc_by_dac.get(d)
        if mic_adc is not None:
            res.uplink_mic.append((t_read - mic_adc) * 1000)
            res.uplink_after_frame.append((t_read - mic_adc - to_end_s) * 1000)
    # (b) downlink: onsets on the speaker monitor that are not calibration clicks
    sends = sorted(reply_sent.values())
    for adc, arrival in spk_onsets:
        if nearest_after(click_dacs, adc, 0.1) is not None:
            continue
        s = nearest_after(sends, adc, 1.0)
        if s is None:
            continue
        res.downlink_raw.append((adc - s) * 1000)
        res.downlink.append((adc - bias - s) * 1000)
        res.downlink_arrival.append((arrival - s) * 1000)
    sent_marks = dict((name, t) for t, name in wire.marks_sent)
    for t, name in wire.marks:
        if name in sent_marks:
            res.mark_rtt.append((t - sent_marks[name]) * 1000)
    if len(res.uplink_mic) < args.bursts:
        res.notes.append(f"uplink: {len(res.uplink_mic)} of {args.bursts} bursts matched")
    if len(res.downlink) < args.bursts:
        res.notes.append(f"downlink: {len(res.downlink)} of {args.bursts} replies heard")
    return res


# -- report --------------------------------------------------------------------------------
def mmm(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{min(values):.1f} / {m.median(values):.1f} / {max(values):.1f}"


def report(results: Sequence[ProtocolResult], args: argparse.Namespace) -> str:
    lines = [
        f"bench_latency: {args.bursts} bursts per protocol every {args.period:g} s, "
        f"--chunk-ms {args.chunk_ms}{' --low-cpu' if args.low_cpu else ''}; {m.machine_line()}",
        m.aivoco_label(),
        *([f"PROTOCOL@base: {m.aivoco_label(args.baseline)}"] if args.baseline else []),
        "",
        "ms, min / median / max",
    ]
    rows = []
    for r in results:
        s = r.summary
        under = (
            f"{s.get('playback_underruns', '?')} / {s.get('playback_device_underflows', '?')}"
            if s
            else "no summary"
        )
        up = m.median(r.uplink_mic)
        down = m.median(r.downlink)
        rows.append(
            [
                r.protocol,
                mmm(r.uplink_mic),
                mmm(r.uplink_after_frame),
                mmm(r.uplink_dac),
                mmm(r.downlink),
                mmm(r.downlink_raw),
                mmm(r.downlink_arrival),
                under,
                f"{s.get('playback_prefill_ms', '?')}" if s else "-",
                f"{s.get('playback_output_latency_ms', '-')}" if s else "-",
                mmm(r.playout_self),
            ]
        )
        goal_up = args.chunk_ms + 5
        verdict = (
            f"{r.protocol}: uplink median {up:.1f} ms vs goal <= {goal_up} ms "
            f"({'met' if up <= goal_up else 'NOT met'}); downlink median {down:.1f} ms vs goal "
            f"<= 80 ms ({'met' if down <= 80 else 'NOT met'}), underruns "
            f"{s.get('playback_underruns', '?') if s else '?'} (goal 0)"
        )
        r.notes.insert(0, verdict)
    lines.append(
        m.table(
            [
                "protocol",
                "uplink (mic ADC)",
                "uplink after frame end",
                "uplink (from DAC)",
                "downlink",
                "downlink uncorrected",
                "downlink upper bound",
                "underruns / device underflows",
                "final pre-fill ms",
                "output latency ms",
                "aivoco's own: first sound - first byte",
            ],
            rows,
        )
    )
    lines += ["", "rig checks (ADC minus DAC of the same sound, ms, min / median / max):"]
    for r in results:
        lines.append(
            f"  {r.protocol}: mic path {mmm(r.rig_mic)}; speaker path {mmm(r.rig_spk)}"
            + (f"; mark sent -> answered {mmm(r.mark_rtt)}" if r.mark_rtt else "")
        )
    lines.append("")
    for r in results:
        lines += [f"  {n}" for n in r.notes]
    if args.stall_at is not None:
        lines += ["", f"downlink per reply, ms (the speaker stalled before reply {args.stall_at}):"]
        lines += [f"  {r.protocol}: " + " ".join(f"{d:.0f}" for d in r.downlink) for r in results]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description="aivoco's uplink and downlink latency through real PortAudio + PulseAudio."
    )
    ap.add_argument("--protocol", choices=["sts", "call", "both"], default="both")
    ap.add_argument("--bursts", type=int, default=10, help="bursts per protocol (10)")
    ap.add_argument("--period", type=float, default=2.0, help="seconds between bursts (2)")
    ap.add_argument("--settle", type=float, default=2.0, help="wait after going live (2 s)")
    ap.add_argument("--chunk-ms", type=int, default=20, help="aivoco's --chunk-ms (20)")
    ap.add_argument("--json-out", default=None, help="every measurement as JSON")
    ap.add_argument(
        "--low-cpu", action="store_true",
        help="aivoco's --low-cpu (whole-chunk microphone blocks, a 100 ms in-process speaker)",
    )  # fmt: skip
    ap.add_argument(
        "--echo", choices=["auto", "aec", "gate", "off"], default=None,
        help="aivoco's --echo (default: its own default, auto: aec with devices)",
    )  # fmt: skip
    ap.add_argument(
        "--aivoco-root", type=Path, default=None,
        help="measure the aivoco in this checkout (default: the one installed here)",
    )  # fmt: skip
    ap.add_argument(
        "--baseline", type=Path, default=None,
        help="also measure the aivoco in this checkout (e.g. a git worktree of an older "
        "commit), as PROTOCOL@base, right before each protocol's run",
    )  # fmt: skip
    ap.add_argument(
        "--stall-at", type=int, default=None, metavar="N",
        help=f"stop aivoco's speaker process for {STALL_S:g} s before burst N (0-based): "
        "shows the output ladder stepping up and, after its wait, back down",
    )  # fmt: skip
    # Kept for the common --seconds/--runs interface: --seconds bounds the burst count.
    ap.add_argument("--seconds", type=float, default=None, help="alternative to --bursts")
    args = ap.parse_args()
    m.set_aivoco_root(args.aivoco_root)
    if args.baseline is not None:
        args.baseline = m.check_root(args.baseline)
    if args.seconds is not None:
        args.bursts = max(1, int(args.seconds / args.period))
    if args.period < REPLY_AT_S + REPLY_S + 0.4:
        raise SystemExit(f"--period must be at least {REPLY_AT_S + REPLY_S + 0.4:g} s")
    m.install_cleanup()
    protocols = ["sts", "call"] if args.protocol == "both" else [args.protocol]
    results = []
    with m.private_pulse() as pulse:
        os.environ.update(pulse.env)  # this process's PortAudio streams use it too
        import sounddevice as sd

        for protocol in protocols:
            if args.baseline is not None:
                print(f"{protocol}@base: {args.bursts} bursts ...", flush=True)
                results.append(run_protocol(protocol, pulse, sd, args, args.baseline))
            print(f"{protocol}: {args.bursts} bursts ...", flush=True)
            results.append(run_protocol(protocol, pulse, sd, args))
    print()
    print(report(results, args))
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump([r.__dict__ for r in results], f, indent=1)


if __name__ == "__main__":
    m.run_main(main)
