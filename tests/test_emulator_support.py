"""Helpers for the emulator tests (this module holds no tests itself).

Raw clients only: python-socketio's `Client` for Speech-to-Speech and websocket-client
for agent calls, so the emulator is checked against docs/protocols.md, not against
aivoco's own client codecs.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import socketio
import websocket

from aivoco.audio.g711 import ulaw_encode
from aivoco.emulator import Emulator, EmulatorConfig

KEY = "test-key-123"
TIMEOUT = 10.0
Int16 = npt.NDArray[np.int16]


def config(**overrides: Any) -> EmulatorConfig:
    """Test defaults: any free port, no think time."""
    values: dict[str, Any] = {"port": 0, "latency_ms": 0.0}
    values.update(overrides)
    return EmulatorConfig(**values)


@contextmanager
def running(**overrides: Any) -> Iterator[Emulator]:
    emu = Emulator(config(**overrides))
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


def tone(seconds: float, rate: int, amplitude: float = 0.5, freq: float = 440.0) -> Int16:
    t = np.arange(round(seconds * rate)) / rate
    return np.rint(amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def silence(seconds: float, rate: int) -> Int16:
    return np.zeros(round(seconds * rate), np.int16)


def utterance(seconds: float, rate: int, lead: float = 0.1, tail: float = 0.8) -> Int16:
    """Silence, a tone burst, then enough silence for the VAD's 600 ms hangover."""
    return np.concatenate([silence(lead, rate), tone(seconds, rate), silence(tail, rate)])


def paced(frames: list[Any], frame_s: float, send: Callable[[Any], object]) -> None:
    """Send frames in real time (deadline pacing), as a microphone would deliver them."""
    t0 = time.monotonic()
    for k, frame in enumerate(frames):
        delay = t0 + k * frame_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        send(frame)


# -- Speech-to-Speech ------------------------------------------------------------------
def audio_payload(samples: Int16) -> dict[str, Any]:
    peak = float(np.abs(samples.astype(np.int32)).max()) / 32768 if samples.size else 0.0
    return {
        "audio_data": base64.b64encode(samples.astype("<i2").tobytes()).decode("ascii"),
        "has_audio": peak > 0.01,
        "max_amplitude": peak,
    }


def split(samples: Int16, size: int) -> list[Int16]:
    return [samples[i : i + size] for i in range(0, samples.size, size)]


@dataclass
class StsClient:
    """A python-socketio Client that records every event with its arrival time."""

    sio: socketio.Client
    events: list[tuple[float, str, Any]] = field(default_factory=list)
    disconnected_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def named(self, name: str) -> list[Any]:
        with self.lock:
            return [data for _, event, data in self.events if event == name]

    def times(self, name: str) -> list[float]:
        with self.lock:
            return sorted(t for t, event, _ in self.events if event == name)

    def wait(self, name: str, count: int = 1, timeout: float = TIMEOUT) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.named(name)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout} s for {count} {name!r}: {self.summary()}")
            time.sleep(0.01)
        return self.named(name)

    def summary(self) -> str:
        with self.lock:
            counts: dict[str, int] = {}
            for _, event, _ in self.events:
                counts[event] = counts.get(event, 0) + 1
        return json.dumps(counts)

    def emit(self, event: str, data: Any = None) -> None:
        if data is None:
            self.sio.emit(event)
        else:
            self.sio.emit(event, data)

    def stream(self, samples: Int16, chunk: int = 1024) -> None:
        """Send 16 kHz audio in real time, in `chunk`-sample audio_data events."""
        frames = [audio_payload(c) for c in split(samples, chunk)]

        def send(frame: dict[str, Any]) -> None:
            # The server may end the connection mid-stream (credits, drops): stop quietly.
            with suppress(socketio.exceptions.BadNamespaceError):
                self.sio.emit("audio_data", frame)

        paced(frames, chunk / 16000, send)


@contextmanager
def sts_client(emu: Emulator, transport: str = "websocket") -> Iterator[StsClient]:
    sio = socketio.Client(reconnection=False, handle_sigint=False)
    client = StsClient(sio)

    @sio.on("*")  # type: ignore[untyped-decorator]
    def any_event(event: str, data: Any = None) -> None:
        with client.lock:
            client.events.append((time.monotonic(), event, data))

    @sio.event  # type: ignore[untyped-decorator]
    def disconnect(reason: Any = None) -> None:
        client.disconnected_at = time.monotonic()

    sio.connect(emu.sts_url, transports=[transport], wait_timeout=5)
    try:
        yield client
    finally:
        if sio.connected:
            sio.disconnect()
        # python-engineio's client leaves its websocket open when the *server* closes
        # the connection (e.g. the 1 MB limit); close it so no socket leaks.
        reader = getattr(sio.eio, "read_loop_task", None)
        if reader is not None:
            reader.join(5)
        ws = getattr(sio.eio, "ws", None)
        if ws is not None:
            ws.shutdown()


def start_call(client: StsClient, key: str = KEY, functions: list[Any] | None = None) -> None:
    client.emit(
        "start_call",
        {
            "auth_key": key,
            "system_message": "You are a test.",
            "voice_choice": "female",
            "custom_functions": functions or [],
        },
    )


def pcm_of(audio_responses: list[Any]) -> list[Int16]:
    return [
        np.frombuffer(base64.b64decode(r["audio_data"]), dtype="<i2").astype(np.int16)
        for r in audio_responses
    ]


# -- agent call --------------------------------------------------------------------------
def start_message(stream_sid: str = "MZ0123456789abcdef") -> dict[str, Any]:
    return {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": "AC0123456789abcdef",
            "streamSid": stream_sid,
            "callSid": "CA0123456789abcdef",
            "tracks": ["inbound"],
            "customParameters": {},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
        "streamSid": stream_sid,
    }


def media_messages(samples: Int16, first_seq: int = 2, frame: int = 160) -> list[str]:
    """8 kHz PCM as the client's media messages: mu-law, 20 ms frames, chunk from 1."""
    out = []
    for i, part in enumerate(split(samples, frame)):
        payload = base64.b64encode(ulaw_encode(part).tobytes()).decode("ascii")
        media = {"track": "inbound", "chunk": i + 1, "timestamp": str(i * 20), "payload": payload}
        out.append(json.dumps({"event": "media", "media": media, "sequenceNumber": first_seq + i}))
    return out


@dataclass
class CallClient:
    """websocket-client connection with a reader thread recording parsed messages."""

    ws: websocket.WebSocket
    messages: list[tuple[float, Any]] = field(default_factory=list)  # (time, JSON or raw str)
    closed_at: float | None = None
    close_error: str | None = None
    close_code: int | None = None
    answer_marks: bool = True
    thread: threading.Thread | None = None

    def read_loop(self) -> None:
        while True:
            try:
                opcode, data = self.ws.recv_data()
            except Exception as exc:  # connection lost or closed
                self.close_error = type(exc).__name__
                break
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                self.close_error = "close frame"
                self.close_code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                break
            text = data.decode("utf-8", "replace")
            try:
                msg: Any = json.loads(text)
            except ValueError:
                msg = text
            self.messages.append((time.monotonic(), msg))
            if self.answer_marks and isinstance(msg, dict) and msg.get("event") == "mark":
                self.ws.send(json.dumps(msg))
        self.closed_at = time.monotonic()

    def events(self, name: str) -> list[tuple[float, dict[str, Any]]]:
        return [
            (t, m) for t, m in list(self.messages) if isinstance(m, dict) and m.get("event") == name
        ]

    def wait(self, name: str, count: int = 1, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while len(self.events(name)) < count:
            if time.monotonic() > deadline or self.closed_at is not None:
                raise AssertionError(f"no {count} {name!r} messages: {self.messages[-3:]}")
            time.sleep(0.01)


@contextmanager
def call_client(emu: Emulator, key: str = KEY, agent: str = "agent-1") -> Iterator[CallClient]:
    ws = websocket.create_connection(emu.call_url_for(key, agent), timeout=TIMEOUT)
    ws.settimeout(None)
    client = CallClient(ws)
    client.thread = threading.Thread(target=client.read_loop, daemon=True)
    client.thread.start()
    try:
        yield client
    finally:
        # The reader thread owns recv: send our close frame, let the reader take the
        # reply, then free the socket (websocket-client's close() returns early, and
        # leaks it, once a close frame has been received).
        if ws.connected:
            with suppress(Exception):
                ws.send_close()
        client.thread.join(5)
        ws.shutdown()  # type: ignore[no-untyped-call]


def mulaw_bytes(messages: list[tuple[float, dict[str, Any]]]) -> list[bytes]:
    return [base64.b64decode(m["media"]["payload"]) for _, m in messages]
