"""Audio files standing in for the microphone: decode, downmix, resample, pace.

Fixtures are generated at test time with soundfile (libsndfile), so every format the
bundled libsndfile can write is covered without binary files in the repository.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from tones import dominant_freq, level_dbfs, sine, sine_dbfs, steady

from aivoco.audio.chunk import AudioChunk
from aivoco.audio.files import FileSource, iter_file_pcm, probe, read_file
from aivoco.errors import AudioFileError

FORMATS = [
    # (extension, soundfile format, subtype)
    ("wav", "WAV", "PCM_16"),
    ("flac", "FLAC", "PCM_16"),
    ("ogg", "OGG", "VORBIS"),
    ("mp3", "MP3", "MPEG_LAYER_III"),
]


def can_write(fmt: str, subtype: str) -> bool:
    return fmt in soundfile.available_formats() and subtype in soundfile.available_subtypes(fmt)


def write_tone(
    path: Path,
    rate: int,
    seconds: float,
    fmt: str = "WAV",
    subtype: str = "PCM_16",
    freq: float = 1000,
    amplitude: float = 0.5,
) -> Path:
    soundfile.write(
        str(path), sine(freq, rate, seconds, amplitude), rate, format=fmt, subtype=subtype
    )
    return path


@pytest.mark.parametrize(("ext", "fmt", "subtype"), FORMATS, ids=[f[0] for f in FORMATS])
def test_decodes_each_format(tmp_path: Path, ext: str, fmt: str, subtype: str) -> None:
    if not can_write(fmt, subtype):
        pytest.skip(f"this libsndfile cannot write {fmt}/{subtype} to make a fixture")
    path = write_tone(tmp_path / f"tone.{ext}", 16000, 1.0, fmt, subtype)
    rate, channels, _frames = probe(path)
    assert (rate, channels) == (16000, 1)
    pcm = read_file(path, 16000)
    assert pcm.sample_rate_hz == 16000 and pcm.channels == 1
    # Lossy codecs add encoder delay/padding (MP3: ~1100 samples); the tone is what counts.
    assert 15000 <= pcm.frames <= 17500
    body = steady(pcm)
    assert dominant_freq(body, 16000) == pytest.approx(1000, abs=2)
    assert level_dbfs(body) == pytest.approx(sine_dbfs(0.5), abs=1.0)


@pytest.mark.parametrize("rate", [16000, 44100])
def test_mp3_decodes_without_gaps(tmp_path: Path, rate: int) -> None:
    """Every 100 ms of a decoded MP3 carries the tone at its level.

    libsndfile's own MP3 writer leaves a Xing header that does not match the stream (as
    do VBR encoders and truncated downloads); python-soundfile seeks after every block
    read, and libsndfile's MP3 seek then lands in the wrong place, so block-wise decoding
    spliced in silence and repeats. This guards the one-read workaround in files.py.
    """
    if not can_write("MP3", "MPEG_LAYER_III"):
        pytest.skip("this libsndfile cannot write MP3 to make a fixture")
    path = write_tone(tmp_path / "long.mp3", rate, 3.0, "MP3", "MPEG_LAYER_III")
    y = read_file(path, 16000)
    body = steady(y, trim=0.02)
    window = 1600
    levels = [level_dbfs(body[i : i + window]) for i in range(0, body.size - window, window)]
    assert len(levels) >= 25
    assert min(levels) > sine_dbfs(0.5) - 1.0
    assert max(levels) < sine_dbfs(0.5) + 1.0


def test_lossless_decode_is_exact(tmp_path: Path) -> None:
    x = (np.arange(-1000, 1000) * 16).astype(np.int16)
    for ext in ("wav", "flac"):
        path = tmp_path / f"ramp.{ext}"
        soundfile.write(str(path), x, 8000, subtype="PCM_16")
        np.testing.assert_array_equal(read_file(path, 8000).mono_samples(), x)


def test_stereo_is_averaged_to_mono(tmp_path: Path) -> None:
    left = sine(1000, 16000, 1.0, 0.5)
    path = tmp_path / "stereo.wav"
    soundfile.write(str(path), np.stack([left, np.zeros_like(left)], axis=1), 16000)
    assert probe(path)[1] == 2
    mono = read_file(path, 16000)
    assert mono.channels == 1
    # Averaging a tone with a silent channel halves it: -6 dB.
    assert level_dbfs(steady(mono)) == pytest.approx(sine_dbfs(0.25), abs=0.1)
    # Opposite channels cancel: a sum, not a pick of one channel.
    soundfile.write(str(path), np.stack([left, -left], axis=1), 16000)
    assert np.abs(read_file(path, 16000).mono_samples()).max() <= 1


@pytest.mark.parametrize("file_rate", [48000, 44100])
@pytest.mark.parametrize("target", [16000, 8000])
def test_resampling_keeps_a_1khz_tone(tmp_path: Path, file_rate: int, target: int) -> None:
    path = write_tone(tmp_path / "t.wav", file_rate, 1.5)
    chunks = list(iter_file_pcm(path, target))
    assert all(c.sample_rate_hz == target and c.channels == 1 for c in chunks)
    pcm = AudioChunk.concat(chunks)
    assert pcm.frames == round(file_rate * 1.5 * target / file_rate)
    body = steady(pcm)
    assert dominant_freq(body, target) == pytest.approx(1000, abs=0.5)
    assert level_dbfs(body) == pytest.approx(sine_dbfs(0.5), abs=0.5)


def test_long_file_is_streamed_in_blocks(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "long.wav", 48000, 3.0)
    chunks = list(iter_file_pcm(path, 16000))
    assert len(chunks) > 5  # not one whole-file chunk
    assert sum(c.frames for c in chunks) == 48000


# -- bad files -------------------------------------------------------------------------
def bad_files(tmp_path: Path) -> dict[str, Path]:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4096).astype(np.uint8).tobytes())
    text = tmp_path / "notes.mp3"
    text.write_text("this is not audio\n" * 50)
    good = write_tone(tmp_path / "good.wav", 16000, 0.5)
    header_only = tmp_path / "cut.wav"
    header_only.write_bytes(good.read_bytes()[:30])
    return {"empty": empty, "junk": junk, "text": text, "cut header": header_only}


@pytest.mark.parametrize("case", ["empty", "junk", "text", "cut header"])
def test_corrupt_files_raise_with_the_path(tmp_path: Path, case: str) -> None:
    path = bad_files(tmp_path)[case]
    with pytest.raises(AudioFileError) as err:
        read_file(path, 16000)
    assert str(path) in str(err.value)
    with pytest.raises(AudioFileError, match=re.escape(str(path))):
        FileSource(path, 16000, 20)  # fails before any call is placed


def test_missing_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioFileError, match=re.escape(f"not found: {path}")):
        FileSource(path, 16000, 20)
    with pytest.raises(AudioFileError, match=re.escape(f"not found: {path}")):
        read_file(path, 16000)


def test_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match=re.escape(f"{tmp_path} is a directory")):
        FileSource(tmp_path, 16000, 20)


def test_file_without_frames_raises(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    soundfile.write(str(path), np.zeros(0), 16000)
    with pytest.raises(AudioFileError, match=re.escape(f"{path} contains no audio frames")):
        read_file(path, 16000)


def test_truncated_flac_raises_while_decoding(tmp_path: Path) -> None:
    good = write_tone(tmp_path / "t.flac", 44100, 1.0, "FLAC")
    cut = tmp_path / "cut.flac"
    data = good.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioFileError, match=re.escape(str(cut))):
        read_file(cut, 16000)


def test_unreadable_file_raises(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "locked.wav", 16000, 0.2)
    path.chmod(0)
    if os.geteuid() != 0:
        with pytest.raises(AudioFileError, match=re.escape(str(path))):
            FileSource(path, 16000, 20)
        return
    # Root reads any file through CAP_DAC_OVERRIDE; a child without that capability (and
    # without CAP_DAC_READ_SEARCH) meets the permission check a normal user meets.
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv (util-linux) is not available")
    code = (
        "import sys\n"
        "from aivoco.audio.files import FileSource\n"
        "from aivoco.errors import AudioFileError\n"
        "try:\n"
        "    FileSource(sys.argv[1], 16000, 20)\n"
        "except AudioFileError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(3)\n"
    )
    drop = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--"]
    out = subprocess.run(
        [*drop, sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 3, out.stderr
    assert str(path) in out.stdout


# -- FileSource ------------------------------------------------------------------------
@pytest.mark.parametrize(("rate", "frame_ms", "frame_frames"), [(16000, 20, 320), (8000, 20, 160)])
def test_frames_have_fixed_size_then_silence(
    tmp_path: Path, rate: int, frame_ms: int, frame_frames: int
) -> None:
    # 0.51 s: 25 whole 20 ms frames and a 10 ms remainder, padded into a 26th frame.
    path = write_tone(tmp_path / "t.wav", 48000, 0.51)
    src = FileSource(path, rate, frame_ms, realtime=False)
    assert src.frame_frames == frame_frames
    frames = []
    for chunk in src:
        assert chunk.frames == frame_frames and chunk.sample_rate_hz == rate
        frames.append(chunk)
        if len(frames) == 26:
            assert not src.finished  # the file may still have frames, as far as it knows
        if len(frames) == 30:
            break
    src.close()
    assert src.finished
    tone = AudioChunk.concat(frames[:25])
    assert dominant_freq(steady(tone), rate) == pytest.approx(1000, abs=1)
    last = frames[25].mono_samples()
    half = frame_frames // 2
    assert np.abs(last[: half - 8]).max() > 8000  # the remainder is tone...
    assert not last[half + 8 :].any()  # ...then padding
    for extra in frames[26:]:
        assert not extra.samples.any()


def test_then_silence_false_ends_iteration(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "t.wav", 16000, 0.1)
    src = FileSource(path, 16000, 20, realtime=False, then_silence=False)
    frames = list(src)
    assert len(frames) == 5
    assert src.finished


def test_close_stops_the_silence(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "t.wav", 16000, 0.04)
    src = FileSource(path, 16000, 20, realtime=False)
    got = []
    for chunk in src:
        got.append(chunk)
        if len(got) == 10:
            src.close()
    assert len(got) == 10  # closing ends the endless silence


def test_realtime_pacing_releases_frames_at_frame_rate(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "t.wav", 16000, 2.0)
    src = FileSource(path, 16000, 20, realtime=True)
    stamps = [time.monotonic() for _ in itertools.islice(src, 26)]
    src.close()
    # 25 intervals of 20 ms = 0.5 s. The mean interval is what pacing promises; the bounds
    # are wide because a loaded CI machine may oversleep (never undersleep much).
    mean_ms = (stamps[-1] - stamps[0]) / 25 * 1000
    assert 17.0 <= mean_ms <= 40.0


def test_as_fast_as_possible_mode_does_not_wait(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "t.wav", 16000, 20.0)
    src = FileSource(path, 16000, 20, realtime=False, then_silence=False)
    start = time.monotonic()
    n = sum(1 for _ in src)
    elapsed = time.monotonic() - start
    assert n == 1000
    # Real-time pacing would take 20 s; unpaced decoding takes milliseconds.
    assert elapsed < 5.0
