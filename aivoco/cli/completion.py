"""Shell completion of option values: profile names and audio device names.

These run inside a completion query (`_AIVOCO_COMPLETE=complete_bash aivoco ...`), so
they must never print, raise or take long. Device names come from PortAudio only when
asked; when its library is missing, sounddevice is never imported (its import raises
OSError then, docs/protocols.md#pitfall-portaudio): the same `find_library("portaudio")`
sounddevice itself starts with answers first, in a few milliseconds.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

COMPLETE_VAR = "_AIVOCO_COMPLETE"
Candidates = list[tuple[str, str]]  # (value, help) as Typer's autocompletion takes them
Kind = Literal["input", "output"]
_BASH_SPECIAL = re.compile(
    r"[\s\\'\"$`&|;()<>*?\[\]{}!#~=:,]"
)  # aivoco.audio.devices' own; importing it loads numpy


def complete_profiles(incomplete: str) -> Candidates:
    from aivoco.config import load_config

    try:
        config = load_config()
    except Exception:  # an invalid file is reported when a command runs, not on Tab
        return []
    profiles = sorted(config.profiles.items())
    # The help zsh and fish show beside each name: what the profile sets.
    return [(name, ", ".join(p.entries) or "(empty)") for name, p in profiles]


def complete_input_devices(incomplete: str) -> Candidates:
    return _devices("input")


def complete_output_devices(incomplete: str) -> Candidates:
    return _devices("output")


COMPLETERS: dict[str, Callable[[str], Candidates]] = {
    "input_device": complete_input_devices,
    "output_device": complete_output_devices,
}


def portaudio_present() -> bool:
    """Whether `import sounddevice` can succeed, without importing it."""
    if "sounddevice" in sys.modules or sys.platform in ("darwin", "win32"):
        return True  # imported already, or the wheel bundles PortAudio there
    import ctypes.util

    return ctypes.util.find_library("portaudio") is not None


def _devices(kind: Kind) -> Candidates:
    if not portaudio_present():
        return []
    from aivoco.audio.devices import list_devices

    try:
        with _quiet_stderr():  # PortAudio's ALSA probing prints to fd 2
            found = list_devices()
    except Exception:
        return []
    # Typer keeps the candidates that start with what was typed (case-sensitive).
    return [(_for_shell(d.name), f"#{d.index}, {d.hostapi}") for d in found if d.channels(kind) > 0]


def _for_shell(name: str) -> str:
    """Bash inserts a candidate as typed text, so spaces and shell characters in a
    device name are backslash-escaped for it (a prefix of the name still matches); zsh
    and fish quote candidates themselves."""
    if os.environ.get(COMPLETE_VAR) != "complete_bash":
        return name
    return _BASH_SPECIAL.sub(r"\\\g<0>", name)


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
