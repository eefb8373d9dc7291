"""WavWriter: a valid WAV at every moment, even after an exception or SIGKILL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.wav import WavWriter
from aivoco.errors import AudioFileError, AudioFormatError


def counting_chunk(start: int, frames: int, rate: int = 16000, channels: int = 1) -> AudioChunk:
    """Samples start, start+1, ... (wrapping in int16) so any lost or moved frame shows."""
    x = ((np.arange(start, start + frames * channels) + 32768) % 65536 - 32768).astype(np.int16)
    return AudioChunk(x.reshape(frames, channels), rate, channels)


def read_with_wave(path: Path) -> tuple[int, int, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        return w.getframerate(), w.getnchannels(), data


def test_header_is_valid_after_every_write(tmp_path: Path) -> None:
    path = tmp_path / "rec.wav"
    with WavWriter(path, 16000) as wav:
        rate, ch, data = read_with_wave(path)  # a header-only file is already valid
        assert (rate, ch, data.size) == (16000, 1, 0)
        written = 0
        for i in range(5):
            wav.write(counting_chunk(written, 160 + i))
            written += 160 + i
            # Read back while the writer still has the file open: no close() involved.
            rate, ch, data = read_with_wave(path)
            assert (rate, ch) == (16000, 1)
            assert data.tolist() == counting_chunk(0, written).mono_samples().tolist()
            info = soundfile.info(str(path))
            assert info.frames == written and info.samplerate == 16000
            sf_data, _ = soundfile.read(str(path), dtype="int16")
            assert sf_data.tolist() == data.tolist()
            assert wav.frames_written == written
        assert wav.duration_ms == pytest.approx(written / 16)
    assert wav.closed


def test_stereo_and_sizes_in_header(tmp_path: Path) -> None:
    path = tmp_path / "st.wav"
    with WavWriter(path, 48000, channels=2) as wav:
        wav.write(counting_chunk(0, 100, 48000, 2))
    raw = path.read_bytes()
    assert raw[:4] == b"RIFF" and raw[8:16] == b"WAVEfmt "
    assert int.from_bytes(raw[4:8], "little") == len(raw) - 8
    assert int.from_bytes(raw[40:44], "little") == 100 * 2 * 2
    rate, ch, data = read_with_wave(path)
    assert (rate, ch) == (48000, 2)
    assert data.tolist() == counting_chunk(0, 100, 48000, 2).samples.ravel().tolist()


def test_file_survives_an_exception_mid_write(tmp_path: Path) -> None:
    path = tmp_path / "crash.wav"

    class BoomError(Exception):
        pass

    with pytest.raises(BoomError), WavWriter(path, 8000) as wav:
        wav.write(counting_chunk(0, 800, 8000))
        wav.write(counting_chunk(800, 800, 8000))
        raise BoomError
    rate, _, data = read_with_wave(path)
    assert rate == 8000
    assert data.tolist() == counting_chunk(0, 1600, 8000).mono_samples().tolist()
    assert soundfile.info(str(path)).frames == 1600


def test_file_survives_sigkill(tmp_path: Path) -> None:
    """A child writes 20 ms chunks until killed; every chunk it reported is in the file."""
    path = tmp_path / "killed.wav"
    child = textwrap.dedent(
        """
        import sys, time
        import numpy as np
        from aivoco.audio.chunk import AudioChunk
        from aivoco.audio.wav import WavWriter

        wav = WavWriter(sys.argv[1], 16000)
        n = 0
        while True:
            x = (np.arange(n, n + 320) % 30000).astype(np.int16)
            wav.write(AudioChunk(x, 16000))
            n += 320
            print(n, flush=True)  # reported only after write() returned
            time.sleep(0.002)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", child, str(path)], stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            reported = 0
            deadline = time.monotonic() + 30
            while reported < 320 * 50 and time.monotonic() < deadline:
                line = proc.stdout.readline()
                assert line, "writer exited early"
                reported = int(line)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert reported >= 320 * 50
    rate, _, data = read_with_wave(path)
    assert rate == 16000
    # The child may have finished a few more writes between its last report and the
    # kill; all of them, and at least every reported one, must be there, intact.
    assert data.size >= reported and data.size % 320 == 0
    assert data.tolist() == (np.arange(data.size) % 30000).tolist()
    assert soundfile.info(str(path)).frames == data.size


def test_format_mismatch_raises(tmp_path: Path) -> None:
    with WavWriter(tmp_path / "m.wav", 16000) as wav:
        with pytest.raises(AudioFormatError, match="16000 Hz x1"):
            wav.write(AudioChunk.silence(10, 8000))
        with pytest.raises(AudioFormatError):
            wav.write(AudioChunk.silence(10, 16000, channels=2))
        wav.write(AudioChunk.silence(10, 16000))
        assert wav.frames_written == 10


def test_write_after_close_raises(tmp_path: Path) -> None:
    wav = WavWriter(tmp_path / "c.wav", 16000)
    wav.close()
    wav.close()  # idempotent
    with pytest.raises(AudioFileError, match="closed"):
        wav.write(AudioChunk.silence(10, 16000))


def test_missing_directory_raises_audio_file_error(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir" / "x.wav"
    with pytest.raises(AudioFileError, match="cannot write") as err:
        WavWriter(path, 16000)
    assert str(path) in str(err.value)


def test_directory_as_path_raises_audio_file_error(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match=re.escape(str(tmp_path))):
        WavWriter(tmp_path, 16000)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_full_disk_at_open_raises_audio_file_error() -> None:
    # /dev/full accepts open() and fails every write with ENOSPC, like a full disk. The
    # descriptor must be closed again (pytest turns a leaked file into an error).
    with pytest.raises(AudioFileError, match=r"/dev/full.*No space left"):
        WavWriter("/dev/full", 16000)


def test_file_limit_mid_recording_keeps_what_was_written(tmp_path: Path) -> None:
    """The disk fills up during a recording: write() raises AudioFileError and the file
    is still a valid WAV with every chunk written before the failure."""
    path = tmp_path / "full.wav"
    # RLIMIT_FSIZE makes writes past 44 + 3200 bytes fail with EFBIG, like a full disk,
    # in a child process so the limit cannot affect the test run itself.
    child = textwrap.dedent(
        """
        import resource, signal, sys
        import numpy as np
        from aivoco.audio.chunk import AudioChunk
        from aivoco.audio.wav import WavWriter
        from aivoco.errors import AudioFileError

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of dying
        resource.setrlimit(resource.RLIMIT_FSIZE, (44 + 3200, 44 + 3200))
        wav = WavWriter(sys.argv[1], 16000)
        n = 0
        try:
            while n < 16000:
                wav.write(AudioChunk(np.arange(n, n + 320).astype(np.int16), 16000))
                n += 320
        except AudioFileError as exc:
            print(exc)
        try:
            wav.close()
        except AudioFileError:
            pass  # the unwritable tail is reported again; the header is already right
        """
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", child, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert f"cannot write {path}" in out.stdout
    assert "too large" in out.stdout
    _, _, data = read_with_wave(path)
    assert data.tolist() == list(range(1600))  # the 5 chunks that fitted, intact
