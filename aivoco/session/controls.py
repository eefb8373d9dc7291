"""What the user changes during a call: mute, push-to-talk, playback volume, the keys help.

Changed from any thread (the key reader, code); read by the uplink once per frame
(`mic_live`). Each change is mirrored into the call state for the view and emitted as
a record, so `--json`, `--plain` and the transcript see it too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

from aivoco.session.interfaces import PlayerLike
from aivoco.session.records import RecordBus
from aivoco.session.state import CallState, ControlsView

VOLUME_STEP = 0.1  # `+`/`-`: 10 % of the agent's level per press (0-200 %)


class MicMode(str, Enum):
    OPEN = "open"  # the microphone is live
    PTT_IDLE = "push-to-talk idle"  # push-to-talk: closed until space
    PTT_TALKING = "push-to-talk talking"  # push-to-talk: live until space


@dataclass(frozen=True)
class _Settings:
    muted: bool = False
    mic: MicMode = MicMode.OPEN
    volume: float = 1.0
    keys: bool = False
    show_help: bool = False


class CallControls:
    def __init__(
        self, player: PlayerLike, state: CallState, bus: RecordBus, *, push_to_talk: bool = False
    ) -> None:
        self.player = player
        self.state = state
        self.bus = bus
        self._lock = threading.Lock()
        self._s = _Settings(mic=MicMode.PTT_IDLE if push_to_talk else MicMode.OPEN)
        self._publish()

    # -- reading -----------------------------------------------------------------------
    @property
    def mic_live(self) -> bool:
        s = self._s  # one attribute read: a consistent snapshot
        return not s.muted and s.mic is not MicMode.PTT_IDLE

    @property
    def muted(self) -> bool:
        return self._s.muted

    @property
    def mic_mode(self) -> MicMode:
        return self._s.mic

    @property
    def volume(self) -> float:
        return self._s.volume

    # -- changes -----------------------------------------------------------------------
    def toggle_mute(self) -> bool:
        """`m`: the microphone sends silence (has_audio false) while muted."""
        s = self._change(lambda s: replace(s, muted=not s.muted))
        self.state.add_entry("info", "microphone muted" if s.muted else "microphone unmuted")
        self.bus.emit("mute", muted=s.muted)
        return s.muted

    def push_to_talk(self) -> MicMode:
        """`space`: open mic -> push-to-talk talking; then talking <-> idle."""
        order = {
            MicMode.OPEN: MicMode.PTT_TALKING,
            MicMode.PTT_TALKING: MicMode.PTT_IDLE,
            MicMode.PTT_IDLE: MicMode.PTT_TALKING,
        }
        return self._set_mic(lambda m: order[m])

    def open_mic(self) -> MicMode:
        """`o`: leave push-to-talk; the microphone stays live."""
        return self._set_mic(lambda m: MicMode.OPEN)

    def step_volume(self, steps: int) -> float:
        """`+`/`-`: change the playback volume by `steps` x 10 % (0-200 %)."""
        target = round(self._s.volume + steps * VOLUME_STEP, 2)
        volume = self.player.set_volume(target)  # clamped by the player
        self._change(lambda s: replace(s, volume=volume))
        self.bus.emit("volume", percent=round(volume * 100))
        return volume

    def toggle_help(self) -> bool:
        return self._change(lambda s: replace(s, show_help=not s.show_help)).show_help

    def set_keys_active(self, active: bool) -> None:
        """The view says which keys work only while a key reader runs."""
        self._change(lambda s: replace(s, keys=active))

    # -- internals -----------------------------------------------------------------------
    def _set_mic(self, step: Callable[[MicMode], MicMode]) -> MicMode:
        s = self._change(lambda s: replace(s, mic=step(s.mic)))
        self.state.add_entry("info", f"microphone: {s.mic.value}")
        self.bus.emit("microphone", mode=s.mic.value, live=self.mic_live)
        return s.mic

    def _change(self, fn: Callable[[_Settings], _Settings]) -> _Settings:
        with self._lock:
            self._s = fn(self._s)
            s = self._s
        self._publish()
        return s

    def _publish(self) -> None:
        s = self._s
        self.state.set_controls(
            ControlsView(
                muted=s.muted,
                mic=s.mic.value,
                mic_live=self.mic_live,
                volume_percent=round(s.volume * 100),
                keys=s.keys,
                show_help=s.show_help,
            )
        )
