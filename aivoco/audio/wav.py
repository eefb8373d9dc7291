"""A PCM16 WAV writer that is a valid file at every moment.

The RIFF and data sizes in the header are patched after every write (two small seeks
and a flush to the OS), so a recording interrupted by an exception, Ctrl-C or even
SIGKILL is still a playable WAV holding everything written so far.
"""

from __future__ import annotations

import contextlib
import os
import struct
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from aivoco.audio.chunk import AudioChunk
from aivoco.errors import AudioFileError, AudioFormatError

_HEADER_BYTES = 44
_MAX_DATA_BYTES = 0xFFFFFFFF - (_HEADER_BYTES - 8)  # RIFF sizes are 32-bit


def _header(sample_rate_hz: int, channels: int, data_bytes: int) -> bytes:
    block_align = channels * 2
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        _HEADER_BYTES - 8 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        channels,
        sample_rate_hz,
        sample_rate_hz * block_align,
        block_align,
        16,
        b"data",
        data_bytes,
    )


class WavWriter:
    def __init__(
        self, path: str | os.PathLike[str], sample_rate_hz: int, channels: int = 1
    ) -> None:
        self.path = Path(path)
        self.sample_rate_hz = sample_rate_hz
        self.channels = channels
        self._data_bytes = 0
        fh: BinaryIO | None = None
        try:
            fh = open(self.path, "wb")  # noqa: SIM115 - closed in close()
            fh.write(_header(sample_rate_hz, channels, 0))
            fh.flush()
        except OSError as exc:
            if fh is not None:  # e.g. a full disk: opened, but the header did not fit
                with contextlib.suppress(OSError):  # the failed flush repeats; fd closes
                    fh.close()
            raise AudioFileError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        self._fh: BinaryIO | None = fh

    @property
    def frames_written(self) -> int:
        return self._data_bytes // (2 * self.channels)

    @property
    def duration_ms(self) -> float:
        return self.frames_written * 1000.0 / self.sample_rate_hz

    @property
    def closed(self) -> bool:
        return self._fh is None

    def write(self, chunk: AudioChunk) -> None:
        if self._fh is None:
            raise AudioFileError(f"{self.path} is already closed")
        if chunk.sample_rate_hz != self.sample_rate_hz or chunk.channels != self.channels:
            raise AudioFormatError(
                f"{self.path} is {self.sample_rate_hz} Hz x{self.channels}; got "
                f"{chunk.sample_rate_hz} Hz x{chunk.channels}"
            )
        data = chunk.to_bytes()
        if self._data_bytes + len(data) > _MAX_DATA_BYTES:
            raise AudioFileError(f"{self.path} reached the 4 GiB WAV size limit")
        try:
            self._fh.write(data)
            self._data_bytes += len(data)
            self._patch_sizes()
        except OSError as exc:
            raise AudioFileError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def _patch_sizes(self) -> None:
        assert self._fh is not None
        fh = self._fh
        fh.seek(4)
        fh.write(struct.pack("<I", _HEADER_BYTES - 8 + self._data_bytes))
        fh.seek(40)
        fh.write(struct.pack("<I", self._data_bytes))
        fh.seek(0, os.SEEK_END)
        fh.flush()

    def close(self) -> None:
        if self._fh is None:
            return
        fh, self._fh = self._fh, None
        try:
            fh.close()
        except OSError as exc:
            raise AudioFileError(f"cannot finish {self.path}: {exc.strerror or exc}") from exc

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
