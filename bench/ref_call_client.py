"""Bare-library reference client for the agent call: the CPU floor for `aivoco call`.

    python bench/ref_call_client.py --url ws://127.0.0.1:PORT/ws --key K --input speech8k.wav

The same wire work as `aivoco call --input FILE --output FILE` and nothing else: a
websocket-client WebSocket to `{BASE}/{key}/{agent}`; the empty handshake and `start`;
20 ms frames (160 samples of 8 kHz PCM16 from the file, then silence) paced in real
time on a deadline, each mu-law encoded (aivoco.audio.g711, numpy table lookups) and
sent as a `media` message; one reader thread decoding every server `media` (base64 ->
mu-law -> numpy int16) and answering each `mark` at once; `stop` after `--seconds`.
No devices, no resampling (give it an 8 kHz mono file), no UI. Prints one JSON line of
counters at the end. bench/bench_cpu.py runs it side by side with aivoco.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import quote

import numpy as np
import soundfile
import websocket

from aivoco.audio.g711 import ulaw_decode, ulaw_encode

RATE_HZ = 8000


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


def run(  # noqa: PLR0917 - one parameter per command-line option
    base: str, key: str, agent: str, path: str, seconds: float, frame_ms: int
) -> dict[str, Any]:
    data, rate = soundfile.read(path, dtype="int16", always_2d=True)
    if rate != RATE_HZ:
        raise SystemExit(f"{path}: need an {RATE_HZ} Hz file, got {rate} Hz")
    pcm = np.ascontiguousarray(data[:, 0])
    frame = RATE_HZ * frame_ms // 1000
    silence = np.zeros(frame, np.int16)
    stats: dict[str, Any] = {"frames_sent": 0, "audio_received_s": 0.0, "messages_received": 0}
    ws: Any = websocket.WebSocket(enable_multithread=True)
    ws.connect(f"{base.rstrip('/')}/{quote(key, safe='')}/{quote(agent, safe='')}", timeout=10)
    ws.settimeout(None)
    stream_sid = "MZ" + secrets.token_hex(16)
    seq = 1
    lock = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        nonlocal seq
        with lock:
            seq += 1
            message["sequenceNumber"] = seq
            ws.send(_dumps(message))

    def reader() -> None:
        try:
            while True:
                opcode, fr = ws.recv_data_frame(control_frame=False)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    return
                msg = json.loads(fr.data)
                stats["messages_received"] += 1
                event = msg.get("event")
                if event == "media":
                    samples = ulaw_decode(base64.b64decode(msg["media"]["payload"]))
                    stats["audio_received_s"] += samples.size / RATE_HZ
                elif event == "mark":
                    send({"event": "mark", "streamSid": stream_sid, "mark": msg["mark"]})
        except (websocket.WebSocketException, OSError, ValueError):
            return

    ws.send("")
    ws.send(
        _dumps(
            {
                "event": "start",
                "sequenceNumber": "1",
                "start": {
                    "accountSid": "AC" + secrets.token_hex(16),
                    "streamSid": stream_sid,
                    "callSid": "CA" + secrets.token_hex(16),
                    "tracks": ["inbound"],
                    "customParameters": {},
                    "mediaFormat": {
                        "encoding": "audio/x-mulaw",
                        "sampleRate": RATE_HZ,
                        "channels": 1,
                    },
                },
                "streamSid": stream_sid,
            }
        )
    )
    t = threading.Thread(target=reader, name="ref-reader", daemon=True)
    t.start()
    start = time.monotonic()
    k = 0
    while time.monotonic() - start < seconds:
        due = start + k * frame_ms / 1000
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        lo = k * frame
        chunk = pcm[lo : lo + frame] if lo + frame <= pcm.size else silence
        payload = base64.b64encode(ulaw_encode(chunk).tobytes()).decode("ascii")
        send(
            {
                "event": "media",
                "media": {
                    "track": "inbound",
                    "chunk": k + 1,
                    "timestamp": str(k * frame_ms),
                    "payload": payload,
                },
                "streamSid": stream_sid,
            }
        )
        stats["frames_sent"] += 1
        k += 1
    send({"event": "stop", "streamSid": stream_sid, "stop": {}})
    ws.send_close(websocket.STATUS_NORMAL, b"call ended")
    t.join(timeout=2)
    ws.shutdown()
    stats["audio_received_s"] = round(stats["audio_received_s"], 2)
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="base URL, e.g. ws://127.0.0.1:11002/ws")
    ap.add_argument("--key", default="bench")
    ap.add_argument("--agent", default="bench-agent")
    ap.add_argument("--input", required=True, help="8 kHz mono WAV")
    ap.add_argument("--seconds", type=float, default=60.0, help="call length once live")
    ap.add_argument("--chunk-ms", type=int, default=20)
    args = ap.parse_args()
    t0 = time.monotonic()
    stats = run(args.url, args.key, args.agent, args.input, args.seconds, args.chunk_ms)
    stats["audio_received_s"] = round(stats["audio_received_s"], 2)
    stats["wall_s"] = round(time.monotonic() - t0, 2)
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()
