"""Make aivoco/emulator/assets/demo_utterance.wav, the demo's spoken line.

How the checked-in asset was made (run from the repository root):

    sudo apt-get install espeak-ng          # eSpeak NG 1.51 (Debian 12)
    python tools/make_demo_utterance.py

1. eSpeak NG speaks TEXT with the `en-us` voice at 180 words/min into a temporary WAV
   (22,050 Hz mono PCM16; espeak-ng's own output, so the project owns the recording).
2. aivoco's own decoder/resampler (aivoco.audio.files.read_file, libsamplerate
   sinc_medium) converts it to 16 kHz mono, the Speech-to-Speech uplink rate.
3. Leading and trailing silence is trimmed: the first and last 10 ms frames above
   -50 dBFS RMS, with 40 ms kept either side so onsets and releases stay intact.
4. The peak is normalised to -3 dBFS (0.708 of full scale).
5. It is written as 16 kHz mono PCM16 WAV, and checked: 2-4 s long, and the emulator's
   VAD hears it as exactly one utterance (no pause inside reaches the 600 ms hangover).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.files import read_file
from aivoco.audio.levels import peak_dbfs
from aivoco.audio.wav import WavWriter
from aivoco.emulator.vad import EnergyVad, UtteranceEnded

TEXT = "Hello! This is the aivoco demo, talking to the local emulator."
VOICE = "en-us"
WORDS_PER_MINUTE = 180
RATE_HZ = 16_000
TRIM_THRESHOLD_DBFS = -50.0
MARGIN_MS = 40
TARGET_PEAK_DBFS = -3.0
OUT = Path(__file__).resolve().parent.parent / "aivoco/emulator/assets/demo_utterance.wav"


def synthesise(text: str, wav: Path) -> None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        sys.exit("espeak-ng is not installed (apt-get install espeak-ng)")
    cmd = [exe, "-v", VOICE, "-s", str(WORDS_PER_MINUTE), "-w", str(wav), text]
    subprocess.run(cmd, check=True)


def trim(samples: np.ndarray, rate: int) -> np.ndarray:
    frame = rate // 100
    n = samples.size // frame
    x = samples[: n * frame].astype(np.float64).reshape(n, frame)
    rms = np.sqrt((x * x).mean(axis=1)) / 32768.0
    loud = np.nonzero(rms >= 10 ** (TRIM_THRESHOLD_DBFS / 20))[0]
    if loud.size == 0:
        sys.exit("the synthesised audio is silent")
    margin = rate * MARGIN_MS // 1000
    start = max(0, int(loud[0]) * frame - margin)
    end = min(samples.size, (int(loud[-1]) + 1) * frame + margin)
    return samples[start:end]


def normalise(samples: np.ndarray) -> np.ndarray:
    peak = float(np.abs(samples.astype(np.float64)).max())
    gain = 32768.0 * 10 ** (TARGET_PEAK_DBFS / 20) / peak
    return np.clip(np.rint(samples * gain), -32768, 32767).astype(np.int16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--text", default=TEXT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "espeak.wav"
        synthesise(args.text, raw)
        decoded = read_file(raw, RATE_HZ).mono_samples()
    audio = normalise(trim(decoded, RATE_HZ))
    chunk = AudioChunk(audio, RATE_HZ)
    vad = EnergyVad(RATE_HZ)
    events = vad.feed(np.concatenate([audio, np.zeros(RATE_HZ, np.int16)]))
    utterances = [e for e in events if isinstance(e, UtteranceEnded)]
    if not 2000 <= chunk.duration_ms <= 4000:
        sys.exit(f"unexpected duration {chunk.duration_ms:.0f} ms (want 2-4 s)")
    if len(utterances) != 1:
        sys.exit(f"the VAD hears {len(utterances)} utterances, want 1")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with WavWriter(args.out, RATE_HZ) as w:
        w.write(chunk)
    print(
        f"wrote {args.out}: {chunk.duration_ms / 1000:.2f} s at {RATE_HZ} Hz, "
        f"peak {peak_dbfs(chunk):.1f} dBFS, VAD utterance {utterances[0].duration_s:.2f} s"
    )


if __name__ == "__main__":
    main()
