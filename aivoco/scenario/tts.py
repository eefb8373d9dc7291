"""`say:` turns: text -> speech with a local TTS, cached per text, voice and command.

eSpeak NG by default (`espeak-ng -v VOICE -w WAV`, the text on standard input so a text
starting with `-` is never read as an option). A scenario's `tts:` setting names another
command as a template: it is split like a shell would (`shlex`), then `{wav}`, `{text}`
and `{voice}` are replaced inside each argument, so no shell ever sees the text; without
`{text}` the text goes to standard input. The command must write a WAV to `{wav}`.

Renders are cached under `$AIVOCO_CACHE_DIR` (default `~/.cache/aivoco/tts`), keyed by a
SHA-256 of command, voice and text: a CI job with a cached folder synthesises each line
once, and many concurrent runs share one render.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from aivoco.errors import UsageError

ESPEAK = "espeak-ng"
DEFAULT_COMMAND = "espeak-ng -v {voice} -w {wav}"
TTS_TIMEOUT_S = 60.0
INSTALL_HINT = (
    "say: needs eSpeak NG, which is not installed. Install it with "
    "`sudo apt-get install espeak-ng` (Debian/Ubuntu), `sudo dnf install espeak-ng` "
    "(Fedora) or `brew install espeak-ng` (macOS), or set `tts:` in the scenario to "
    'another command, e.g. tts: "piper --model VOICE.onnx --output_file {wav}"'
)
_lock = threading.Lock()


def cache_dir() -> Path:
    configured = os.environ.get("AIVOCO_CACHE_DIR")
    if configured:
        return Path(configured) / "tts"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aivoco" / "tts"


def render(text: str, voice: str, template: str | None = None) -> Path:
    """The WAV for `text` (from the cache, or synthesised now); UsageError on failure."""
    command = template or DEFAULT_COMMAND
    digest = hashlib.sha256("\0".join((command, voice, text)).encode()).hexdigest()
    folder = cache_dir()
    target = folder / f"{digest[:32]}.wav"
    with _lock:  # one render per text even when many runs start at once
        if target.is_file() and target.stat().st_size > 44:
            return target
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the TTS cache {folder}: {exc.strerror}") from exc
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            wav = Path(tmp) / "say.wav"
            _synthesise(command, voice, text, wav, custom=template is not None)
            os.replace(wav, target)  # atomic: a reader never sees half a file
    return target


def argv_for(template: str, voice: str, text: str, wav: Path) -> tuple[list[str], bool]:
    """The command's argv, and whether the text must go on standard input."""
    try:
        parts = shlex.split(template)
    except ValueError as exc:
        raise UsageError(f"tts: cannot split the command {template!r}: {exc}") from exc
    if not parts:
        raise UsageError("tts: the command is empty")
    values = {"{wav}": str(wav), "{voice}": voice, "{text}": text}
    argv = []
    for part in parts:
        filled = part
        for placeholder, value in values.items():
            filled = filled.replace(placeholder, value)
        argv.append(filled)
    return argv, "{text}" not in template


def _synthesise(command: str, voice: str, text: str, wav: Path, custom: bool) -> None:
    argv, text_on_stdin = argv_for(command, voice, text, wav)
    exe = shutil.which(argv[0])
    if exe is None:
        if not custom:
            raise UsageError(INSTALL_HINT)
        raise UsageError(f"tts: the command {argv[0]!r} was not found on PATH")
    if not custom:
        argv.append("--stdin")
    try:
        done = subprocess.run(
            [exe, *argv[1:]],
            input=text.encode("utf-8") if text_on_stdin else None,
            capture_output=True,
            timeout=TTS_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise UsageError(f"tts: {argv[0]} took more than {TTS_TIMEOUT_S:g} s") from exc
    except OSError as exc:
        raise UsageError(f"tts: cannot run {argv[0]}: {exc.strerror or exc}") from exc
    if done.returncode != 0 or not wav.is_file() or wav.stat().st_size <= 44:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = detail[-1] if detail else f"exit code {done.returncode}, no audio written"
        raise UsageError(f"tts: {argv[0]} failed for {text[:60]!r}: {why}")
