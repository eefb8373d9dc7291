"""Audio shipped with the package.

`demo_utterance.wav`: "Hello! This is the aivoco demo, talking to the local emulator."
spoken by eSpeak NG (en-us, 180 words/min), 16 kHz mono PCM16, trimmed, peak -3 dBFS,
about 3.8 s. Made by the project itself with `tools/make_demo_utterance.py`, whose
docstring gives every step; rerun it to regenerate the file.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
from importlib import resources
from pathlib import Path

DEMO_UTTERANCE = "demo_utterance.wav"

_extracted = contextlib.ExitStack()
atexit.register(_extracted.close)


@functools.cache
def demo_utterance_path() -> Path:
    """A filesystem path to the demo utterance (16 kHz mono PCM16 WAV)."""
    resource = resources.files(__name__) / DEMO_UTTERANCE
    if isinstance(resource, Path):
        return resource
    # Installed from a zip: extract once, delete at exit.
    return _extracted.enter_context(resources.as_file(resource))
