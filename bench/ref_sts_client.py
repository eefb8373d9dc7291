"""Bare-library reference client for the Speech-to-Speech API: the CPU floor for `aivoco sts`.

    python bench/ref_sts_client.py --url http://127.0.0.1:PORT --key K --input speech.wav

It does the same wire work as `aivoco sts --input FILE --output FILE` and nothing else:
python-socketio's asyncio client over websocket; `start_call`; 20 ms frames of 16 kHz
PCM16 read from the file (then silence), paced in real time on a deadline, each sent as
`audio_data` with its numpy peak level and base64 payload; every `audio_response`
decoded (base64 -> numpy int16) and counted; `stop_call` after `--seconds`. No devices,
no resampling (give it a 16 kHz mono file), no UI, no recording. Prints one JSON line of
counters at the end. bench/bench_cpu.py runs it side by side with aivoco.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import time
from typing import Any

import numpy as np
import socketio
import soundfile

RATE_HZ = 16000
HAS_AUDIO_THRESHOLD = 0.01  # peak / 32768, as the reference clients and aivoco use


async def run(url: str, key: str, path: str, seconds: float, frame_ms: int) -> dict[str, Any]:
    data, rate = soundfile.read(path, dtype="int16", always_2d=True)
    if rate != RATE_HZ:
        raise SystemExit(f"{path}: need a {RATE_HZ} Hz file, got {rate} Hz")
    pcm = np.ascontiguousarray(data[:, 0])
    frame = RATE_HZ * frame_ms // 1000
    silence = np.zeros(frame, np.int16)
    stats: dict[str, Any] = {"frames_sent": 0, "audio_received_s": 0.0, "messages_received": 0}
    ready = asyncio.Event()
    ended = asyncio.Event()
    sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)

    async def on_any(event: str, payload: Any = None) -> None:
        stats["messages_received"] += 1
        if event == "audio_response":
            samples = np.frombuffer(base64.b64decode(payload["audio_data"]), np.int16)
            stats["audio_received_s"] += samples.size / 24000
        elif event == "session_ready":
            ready.set()
        elif event == "session_ended":
            ended.set()

    sio.on("*", on_any)
    await sio.connect(url, transports=["websocket"])
    await sio.emit(
        "start_call",
        {"auth_key": key, "system_message": "", "voice_choice": "female", "custom_functions": []},
    )
    await asyncio.wait_for(ready.wait(), 10)
    loop = asyncio.get_running_loop()
    start = loop.time()
    k = 0
    while loop.time() - start < seconds:
        due = start + k * frame_ms / 1000
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        lo = k * frame
        chunk = pcm[lo : lo + frame] if lo + frame <= pcm.size else silence
        level = float(np.abs(chunk.astype(np.int32)).max()) / 32768.0
        await sio.emit(
            "audio_data",
            {
                "audio_data": base64.b64encode(chunk.tobytes()).decode("ascii"),
                "has_audio": level > HAS_AUDIO_THRESHOLD,
                "max_amplitude": level,
            },
        )
        stats["frames_sent"] += 1
        k += 1
    await sio.emit("stop_call")
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(ended.wait(), 2)
    await sio.disconnect()
    stats["audio_received_s"] = round(stats["audio_received_s"], 2)
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="Socket.IO server, e.g. http://127.0.0.1:11002")
    ap.add_argument("--key", default="bench")
    ap.add_argument("--input", required=True, help="16 kHz mono WAV")
    ap.add_argument("--seconds", type=float, default=60.0, help="call length once live")
    ap.add_argument("--chunk-ms", type=int, default=20)
    args = ap.parse_args()
    t0 = time.monotonic()
    stats = asyncio.run(run(args.url, args.key, args.input, args.seconds, args.chunk_ms))
    stats["wall_s"] = round(time.monotonic() - t0, 2)
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()
