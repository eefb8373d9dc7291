"""Audio core: chunk type, codecs, levels, resampling, buffers, files and devices.

Modules here are pure (no sockets) except `devices` and `engine`, which own PortAudio
streams and import `sounddevice` lazily.
"""

from aivoco.audio.chunk import AudioChunk

__all__ = ["AudioChunk"]
