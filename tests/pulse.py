"""A private PulseAudio daemon with null sinks, so device tests use real PortAudio streams.

Layout (all names are ours, nothing else on the machine is touched):

    aivoco_spk      null sink, the default sink: what aivoco plays ends up here; tests
                    record it from its monitor source `aivoco_spk.monitor`.
    aivoco_micsrc   null sink that tests play a tone into (paplay/pacat).
    aivoco_mic      remap of `aivoco_micsrc.monitor`, the default source: aivoco's
                    microphone hears what tests play into `aivoco_micsrc`.

The daemon gets its own HOME, XDG_RUNTIME_DIR and PULSE_RUNTIME_PATH under a temporary
directory, and clients are pointed at its socket with PULSE_SERVER, so it neither finds
nor disturbs a desktop PulseAudio/PipeWire and can run next to one. PortAudio reaches it
through ALSA's pulse plugin (libasound2-plugins): the "pulse" and "default" devices.

Running as root only makes pulseaudio print a warning ("not intended to be run as
root"); it still runs as a per-user daemon because --system is not given.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

SPEAKER_SINK = "aivoco_spk"
SPEAKER_MONITOR = "aivoco_spk.monitor"
MIC_FEED_SINK = "aivoco_micsrc"
MIC_SOURCE = "aivoco_mic"

TOOLS = ("pulseaudio", "pactl", "paplay", "parec")
START_TIMEOUT_S = 20.0


class PulseUnavailableError(RuntimeError):
    """PulseAudio or its client tools are missing, or the daemon would not start."""


class PulseServer:
    """One pulseaudio process; `env` holds the variables that make clients use it."""

    def __init__(self, root: Path) -> None:
        missing = [t for t in TOOLS if shutil.which(t) is None]
        if missing:
            raise PulseUnavailableError(
                f"missing {', '.join(missing)} (apt-get install pulseaudio pulseaudio-utils)"
            )
        self.root = root
        runtime = root / "runtime"
        home = root / "home"
        pulse_dir = runtime / "pulse"
        for d in (runtime, home, pulse_dir):
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o700)  # pulseaudio refuses runtime directories others can enter
        self.socket = pulse_dir / "native"
        self.log_path = root / "pulseaudio.log"
        self.env = {
            "HOME": str(home),
            "XDG_RUNTIME_DIR": str(runtime),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "PULSE_RUNTIME_PATH": str(pulse_dir),
            "PULSE_STATE_PATH": str(root / "state"),
            # Clients (pactl, paplay, ALSA's pulse plugin) go straight to this socket.
            "PULSE_SERVER": f"unix:{self.socket}",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def client_env(self) -> dict[str, str]:
        """os.environ with this server's variables: for client subprocesses."""
        return {**os.environ, **self.env}

    def start(self) -> PulseServer:
        args = [
            "pulseaudio",
            "-n",  # no default.pa: only the modules below, no hardware detection
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--disallow-exit",
            "--realtime=no",  # no rtkit/D-Bus round trips, nothing to grant in CI
            "--high-priority=no",
            "--log-target=stderr",
            # auth-anonymous: no cookie exchange, so clients need no shared HOME.
            "--load=module-native-protocol-unix auth-anonymous=1",
            f"--load=module-null-sink sink_name={SPEAKER_SINK}",
            f"--load=module-null-sink sink_name={MIC_FEED_SINK}",
            f"--load=module-remap-source master={MIC_FEED_SINK}.monitor source_name={MIC_SOURCE}",
        ]
        setpriv = shutil.which("setpriv")  # util-linux
        if setpriv is not None:
            # The kernel sends the daemon SIGTERM when this process dies. It is told never
            # to exit on its own, so a pytest killed before teardown (a CI timeout,
            # SIGKILL) would otherwise leave it running for good.
            args = [setpriv, "--pdeathsig", "TERM", "--", *args]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                args,
                env=self.client_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal reaches pytest only
            )
        try:
            self._wait_ready()
            self.pactl("set-default-sink", SPEAKER_SINK)
            self.pactl("set-default-source", MIC_SOURCE)
            names = self.pactl("list", "short", "sinks") + self.pactl("list", "short", "sources")
            for name in (SPEAKER_SINK, MIC_FEED_SINK, MIC_SOURCE, SPEAKER_MONITOR):
                if name not in names:
                    raise PulseUnavailableError(f"{name} missing after start:\n{names}")
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PulseUnavailableError(
                    f"pulseaudio exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            probe = subprocess.run(
                ["pactl", "info"],
                env=self.client_env(),
                capture_output=True,
                timeout=5,
                check=False,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.1)
        raise PulseUnavailableError(
            f"pulseaudio did not answer within {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> PulseServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- client helpers ----------------------------------------------------------------
    def pactl(self, *args: str) -> str:
        out = subprocess.run(
            ["pactl", *args],
            env=self.client_env(),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if out.returncode != 0:
            raise PulseUnavailableError(f"pactl {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def play_into_mic(self, wav: Path) -> subprocess.Popen[bytes]:
        """Start playing `wav` into the virtual microphone; the caller stops it."""
        return subprocess.Popen(
            ["paplay", f"--device={MIC_FEED_SINK}", str(wav)],
            env=self.client_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def record_speaker(self, raw_path: Path, rate_hz: int = 48000) -> subprocess.Popen[bytes]:
        """Start recording the speaker's monitor as raw s16le mono into `raw_path`.

        Written to a file rather than a pipe: an unread pipe would fill and stall parec,
        and PulseAudio would then drop audio from the recording.
        """
        with raw_path.open("wb") as out:
            return subprocess.Popen(
                [
                    "parec",
                    f"--device={SPEAKER_MONITOR}",
                    "--raw",
                    "--format=s16le",
                    f"--rate={rate_hz}",
                    "--channels=1",
                    "--latency-msec=20",
                ],
                env=self.client_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.PIPE,
            )


class EchoPath:
    """An acoustic echo path for the rig (opt-in, so other device tests are unaffected):
    `module-loopback` from the speaker's monitor into the microphone's feed sink, delayed
    by about `delay_ms` and attenuated by `attenuation_db` (the sink input's volume).

    Measured on this rig (bench/bench_echo.py): after settling for about a second, the
    echo arrives within a few ms of `latency_msec` at exactly the attenuation asked for.
    The loopback's default rate adjustment keeps that delay steadier (+-3 ms over 20 s)
    than faster adjustment (`adjust_time=1`: +-10 ms), so the defaults are kept.
    """

    def __init__(self, server: PulseServer, delay_ms: int, attenuation_db: float) -> None:
        self.server = server
        self.delay_ms = delay_ms
        self.attenuation_db = attenuation_db
        self.module: str | None = None

    def __enter__(self) -> EchoPath:
        self.module = self.server.pactl(
            "load-module",
            "module-loopback",
            f"source={SPEAKER_MONITOR}",
            f"sink={MIC_FEED_SINK}",
            f"latency_msec={self.delay_ms}",
            "source_dont_move=true",
            "sink_dont_move=true",
        ).strip()
        try:
            self.server.pactl(
                "set-sink-input-volume", self._sink_input(), f"{self.attenuation_db}dB"
            )
        except BaseException:
            self.close()
            raise
        return self

    def _sink_input(self) -> str:
        listing = self.server.pactl("list", "sink-inputs")
        for block in listing.split("Sink Input #")[1:]:
            owner = re.search(r"Owner Module: (\d+)", block)
            if owner is not None and owner.group(1) == self.module:
                return block.split("\n", 1)[0].strip()
        raise PulseUnavailableError(f"no sink input of loopback module {self.module}:\n{listing}")

    def close(self) -> None:
        module, self.module = self.module, None
        if module is not None:
            self.server.pactl("unload-module", module)

    def __exit__(self, *exc: object) -> None:
        self.close()


def stop_client(proc: subprocess.Popen[bytes]) -> None:
    """End a paplay/parec started above (SIGTERM, then SIGKILL) and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if proc.stderr is not None:
        proc.stderr.close()
