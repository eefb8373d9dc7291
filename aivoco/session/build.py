"""Building a call from its options: driver, source, player, functions (`open_call`).

Everything the commands used to assemble by hand lives here, so code and tests get the
same call the CLI runs. Parts may be passed in (a scripted fake driver, a file source)
to replace what the options would build.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aivoco.errors import DeviceError, PortAudioMissingError, UsageError
from aivoco.redact import register_secret, register_url_credentials
from aivoco.session.call import Call
from aivoco.session.interfaces import FunctionRunner, MarkToken, PlayerLike, Source
from aivoco.session.options import CallOptions, EchoMode
from aivoco.wire.driver import Driver, ProtocolName

if TYPE_CHECKING:  # imported where used: they load PortAudio
    from aivoco.audio.engine import DevicePlayer
    from aivoco.audio.speaker_proc import ProcessPlayer


def text_or_file(value: str | None) -> str:
    """`--system TEXT` or `--system @FILE` (the file's contents, UTF-8)."""
    if not value:
        return ""
    if not value.startswith("@"):
        return value
    path = Path(value[1:])
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise UsageError(f"cannot read {path}: {reason}") from exc


def load_functions(options: CallOptions) -> FunctionRunner | None:
    if options.functions is None:
        return None
    from aivoco.session.functions import load_functions as load

    return load(options.functions)


def build_driver(options: CallOptions, functions: FunctionRunner | None) -> Driver:
    key = (options.key or "").strip()
    url = options.resolved_url()
    if options.protocol is ProtocolName.CALL:
        from aivoco.protocols.call_driver import CallDriver

        return CallDriver(url, key, (options.agent or "").strip(), ca_file=options.ca_file)
    from aivoco.protocols.sts_codec import StsCodec
    from aivoco.protocols.sts_driver import StsDriver

    specs = functions.specs if functions is not None else ()
    codec = StsCodec(key, options.voice, text_or_file(options.system), specs)
    return StsDriver(url, codec, ca_file=options.ca_file)


def aligns(options: CallOptions) -> bool:
    """Will echo control line the microphone up with the speaker (aec or gate)? Not with
    --echo off, nor under auto when a file stands in for the speaker (session/echo.py)."""
    if options.echo is EchoMode.OFF:
        return False
    return not (options.echo is EchoMode.AUTO and options.output_file is not None)


def build_source(options: CallOptions, rate_hz: int) -> tuple[Source, str]:
    if options.input_file is not None:
        from aivoco.audio.files import FileSource

        return FileSource(options.input_file, rate_hz, options.chunk_ms), str(options.input_file)
    from aivoco.audio.capture import CAPTURE_BLOCK_MS, MicCapture
    from aivoco.session.echo import echo_rate_hz

    # Lined up with the speaker, at echo control's rate; it converts to the call's after
    # the canceller (session/echo.py, docs/echo.md#rate).
    align = aligns(options)
    capture_hz = echo_rate_hz(rate_hz) if align else rate_hz
    block_ms = float(options.chunk_ms) if options.low_cpu else CAPTURE_BLOCK_MS
    mic = MicCapture(
        options.input_device, capture_hz, options.chunk_ms, native=not align, block_ms=block_ms
    )
    converted = f" -> {capture_hz} Hz" if mic.resampling else ""
    if capture_hz != rate_hz:
        converted += f" -> {rate_hz} Hz after echo control"
    return mic, f"mic {mic.device.name} @ {mic.device_rate_hz} Hz{converted}"


def build_player(options: CallOptions, rate_hz: int) -> tuple[PlayerLike, str, Path | None]:
    """The player for --output FILE or the speaker, its label and the file it writes.

    With `speaker_fallback_file` (the demo), a default speaker that cannot be opened is
    replaced by that file instead of failing the call.
    """
    from aivoco.audio.playout import ClockPlayer

    if options.output_file is not None:
        path = options.output_file
        return ClockPlayer(rate_hz, path), str(path), path
    try:
        spk, where = _speaker(options, rate_hz)
    except (PortAudioMissingError, DeviceError) as exc:
        fallback = options.speaker_fallback_file
        if fallback is None or options.output_device is not None:
            raise  # a device asked for by name or index must exist, fallback or not
        return ClockPlayer(rate_hz, fallback), f"{fallback} (no speaker: {exc})", fallback
    return spk, f"speaker {spk.device.name} @ {spk.clock_rate_hz} Hz{where}", None


def _speaker(
    options: CallOptions, rate_hz: int
) -> tuple[ProcessPlayer[MarkToken] | DevicePlayer[MarkToken], str]:
    """The speaker and what its label adds. It runs in a process of its own
    (docs/devices.md#process), or with --low-cpu in this one (docs/devices.md#low-cpu)."""
    if options.low_cpu:
        from aivoco.audio.engine import DevicePlayer
        from aivoco.audio.streams import LOW_CPU_STEPS

        player: DevicePlayer[MarkToken] = DevicePlayer(
            options.output_device, rate_hz=rate_hz, steps=LOW_CPU_STEPS
        )
        return player, f", in-process, {LOW_CPU_STEPS[0].latency_ms} ms (--low-cpu)"
    from aivoco.audio.speaker_proc import ProcessPlayer

    return ProcessPlayer(options.output_device, rate_hz=rate_hz), ""


def open_call(
    options: CallOptions,
    *,
    driver: Driver | None = None,
    source: Source | None = None,
    player: PlayerLike | None = None,
    functions: FunctionRunner | None = None,
    reconnect: Callable[[], Driver] | None = None,
) -> Call:
    """A call ready to `start()`: options checked, the key registered as a secret,
    parts built (usage, file and device errors raise here, before any connection).

    A dropped call reconnects with a driver built like the first (or by `reconnect`,
    e.g. a scripted one); a `driver` passed without `reconnect` is never replaced."""
    options.check()
    register_secret((options.key or "").strip())
    register_url_credentials(options.resolved_url())
    if functions is None:
        functions = load_functions(options)
    rebuild = reconnect
    if driver is None:
        driver = build_driver(options, functions)
        rebuild = reconnect or (lambda: build_driver(options, functions))
    in_label = out_label = ""
    written: Path | None = None
    if source is None:
        source, in_label = build_source(options, driver.uplink_rate_hz)
    if player is None:
        try:
            player, out_label, written = build_player(options, driver.downlink_rate_hz)
        except BaseException:
            source.close()
            raise
    return Call(
        options,
        driver,
        source,
        player,
        functions=functions,
        input_label=in_label,
        output_label=out_label,
        output_path=written,
        reconnect=rebuild,
    )
