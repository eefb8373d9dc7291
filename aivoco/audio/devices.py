"""PortAudio device discovery and selection (by index or by name substring).

`sounddevice` is imported lazily through `load_sounddevice()`: its import raises
OSError when the PortAudio shared library is missing (docs/protocols.md#pitfall-portaudio), and
`--help`, file-only runs and the pure tests must work without it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any, Literal

from aivoco.errors import DeviceError, PortAudioMissingError

Kind = Literal["input", "output"]


def load_sounddevice() -> ModuleType:
    try:
        import sounddevice
    except OSError as exc:  # 'PortAudio library not found'
        raise PortAudioMissingError(str(exc)) from exc
    module: ModuleType = sounddevice
    return module


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate_hz: int
    default_input: bool
    default_output: bool

    def channels(self, kind: Kind) -> int:
        return self.max_input_channels if kind == "input" else self.max_output_channels

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _default_index(sd: ModuleType, kind: Kind) -> int:
    pos = 0 if kind == "input" else 1
    try:
        idx = sd.default.device[pos]
    except (TypeError, IndexError):
        idx = -1
    if isinstance(idx, str):
        idx = -1
    if idx is None or idx < 0:
        try:
            info = sd.query_devices(kind=kind)
            idx = int(info["index"])
        except Exception:  # PortAudioError when there is no default device
            idx = -1
    return int(idx)


def list_devices() -> list[DeviceInfo]:
    sd = load_sounddevice()
    try:
        raw = sd.query_devices()
        apis = sd.query_hostapis()
    except sd.PortAudioError as exc:
        raise DeviceError(f"PortAudio could not list devices: {exc}") from exc
    din, dout = _default_index(sd, "input"), _default_index(sd, "output")
    out = []
    for d in raw:
        idx = int(d["index"])
        out.append(
            DeviceInfo(
                index=idx,
                name=str(d["name"]),
                hostapi=str(apis[d["hostapi"]]["name"]),
                max_input_channels=int(d["max_input_channels"]),
                max_output_channels=int(d["max_output_channels"]),
                default_samplerate_hz=round(float(d["default_samplerate"])),
                default_input=idx == din,
                default_output=idx == dout,
            )
        )
    return out


def resolve_device(spec: str | int | None, kind: Kind) -> DeviceInfo:
    """Find a device for `kind`: None = the default, an index, or a name substring.

    A substring that matches several devices is an error listing them, unless one of
    them matches the name exactly (case-insensitively).
    """
    devices = list_devices()
    usable = [d for d in devices if d.channels(kind) > 0]
    if not usable:
        raise DeviceError(f"no audio {kind} device found")
    if spec is None or spec == "":
        for d in usable:
            if d.default_input if kind == "input" else d.default_output:
                return d
        raise DeviceError(f"there is no default {kind} device; pick one with --{kind}-device")
    text = str(spec).strip()
    if text.lstrip("-").isdigit():
        idx = int(text)
        for d in devices:
            if d.index == idx:
                if d.channels(kind) == 0:
                    raise DeviceError(f"device {idx} ({d.name}) has no {kind} channels")
                return d
        raise DeviceError(f"no audio device with index {idx}; see `aivoco devices`")
    needle = text.casefold()
    matches = [d for d in usable if needle in d.name.casefold()]
    exact = [d for d in matches if d.name.casefold() == needle]
    if len(exact) == 1:
        return exact[0]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DeviceError(f"no {kind} device matches {text!r}; see `aivoco devices`")
    names = ", ".join(f"{d.index}: {d.name}" for d in matches)
    raise DeviceError(f"{text!r} matches several {kind} devices ({names}); use an index")
