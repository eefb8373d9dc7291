"""A call's audio while it is live: source -> uplink, player -> observer.

Started when the call goes live (both clocks start together, so the recording's two
tracks share a time origin and no pre-call microphone audio is sent) and stopped when it
is released. Paced parts run on the process's shared clock (`aivoco/audio/clock.py`): a
timed source's uplink (a file, a scenario's script) and the observer; a microphone
delivers frames by itself, so its uplink is a thread that waits for them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from aivoco.audio.clock import ClockHandle, shared_clock
from aivoco.session.interfaces import TimedSource
from aivoco.session.observer import OBSERVE_PERIOD_S, Observer
from aivoco.session.uplink import Uplink

if TYPE_CHECKING:
    from aivoco.session.call import Call


class Media:
    def __init__(self, call: Call) -> None:
        self.call = call
        self.jobs: list[ClockHandle] = []  # the uplink's and the observer's, on the clock
        self.drained = threading.Event()  # the observer took what played until the end
        self._observer: Observer | None = None

    @property
    def observer(self) -> Observer:
        """Built on first use: after the call opened its files (the recording)."""
        if self._observer is None:
            self._observer = self._build_observer()
        return self._observer

    def start(self) -> None:
        call = self.call
        call.player.start()
        call.source.start()
        uplink = self._uplink()
        uplink.begin()
        clock = shared_clock()
        if isinstance(call.source, TimedSource):
            frame_s = call.options.chunk_ms / 1000
            self.jobs.append(clock.every(frame_s, uplink.tick, call.job_failed, urgent=True))
        else:
            call.spawn("uplink", uplink.run)
        self.jobs.append(clock.every(OBSERVE_PERIOD_S, self._observe(), call.job_failed))

    def halt(self) -> None:
        """Stop taking audio: no clock job runs after this returns."""
        for job in self.jobs:
            job.cancel()
        self.call.source.close()

    def finish(self) -> None:
        """After the threads stopped: what played until the end, then the devices/files."""
        if not self.drained.is_set():  # closed before the observer's last tick
            self.observer.drain_played()
        self.call.player.close()
        if self.call.recorder is not None:
            self.call.recorder.close()
        self.observer.publish_stats()

    def _uplink(self) -> Uplink:
        call = self.call
        return Uplink(
            call.source,
            call.driver,
            call.lifecycle,
            state=call.state,
            bus=call.bus,
            turns=call.turns,
            recorder=call.recorder,
            frame_ms=call.options.chunk_ms,
            input_finished=call.timers.input_finished,
            echo=call.echo,
        )

    def _build_observer(self) -> Observer:
        call = self.call
        return Observer(
            call.player,
            call.driver,
            call.lifecycle,
            state=call.state,
            bus=call.bus,
            recorder=call.recorder,
            timers=call.timers,
            connection=lambda: call.driver.generation,
            heard=call.downlink.heard,
        )

    def _observe(self) -> Callable[[float], bool]:
        call, observer = self.call, self.observer

        def tick(now: float) -> bool:
            if call.ended.is_set():
                # What played until the end, and nothing after: closing can take seconds
                # on a loaded machine, and the recording covers the call, not its release.
                observer.drain_played()
                self.drained.set()
                return False
            for intent in observer.tick(now):
                call.apply(intent)
            return True

        return tick
