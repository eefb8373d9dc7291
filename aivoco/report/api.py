"""Transcript (+ recording) in, HTML (+ PNG) out: the steps of `aivoco report`.

`render_report` lets AivocoError subclasses through and anything else too (a bug shows
as one under `aivoco report`); `write_report` is the same for callers that end a call,
where nothing but an AivocoError may escape.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from aivoco.errors import AivocoError, AudioFileError, UsageError
from aivoco.report import figures
from aivoco.report.bands import call_bands
from aivoco.report.build import build_model
from aivoco.report.layout import SLOW_MS
from aivoco.report.levels import Levels, read_levels
from aivoco.report.model import CallModel
from aivoco.report.page import PageInput, render_page
from aivoco.report.transcript import (
    EmptyTranscriptError,
    Record,
    Transcript,
    load_transcript,
    split_calls,
)

PathLike = str | os.PathLike[str]
# The recorder and the transcript stop a few ms apart; more than this is another file.
_RECORDING_TOLERANCE_S = 1.0


class ReportError(AivocoError):
    """The report could not be made for a reason that is aivoco's fault (a bug)."""


@dataclass(frozen=True)
class ReportResult:
    html_path: Path
    png_path: Path | None
    recording_path: Path | None  # the recording whose levels were drawn, if any
    turns: int  # turns you spoke
    answered: int  # turns with a latency figure
    duration_s: float
    warnings: tuple[str, ...] = field(default_factory=tuple)  # also listed in the page


def _recorded_path(records: list[Record], transcript: Path | None) -> Path | None:
    """The recording the call itself wrote, per its summary, if that file is there."""
    summary = next((r for r in reversed(records) if r["type"] == "summary"), None)
    name = summary.get("recording") if summary else None
    if not isinstance(name, str) or not name:
        return None
    candidates = [Path(name)]
    if transcript is not None and not Path(name).is_absolute():
        candidates += [transcript.parent / name, transcript.parent / Path(name).name]
    return next((p for p in candidates if p.is_file()), None)


def _check_match(levels: Levels, model: CallModel, problems: list[str]) -> None:
    recorded = model.counter("recording_s")
    expected = recorded if recorded is not None else model.duration_s
    if expected <= 0 or abs(levels.duration_s - expected) <= _RECORDING_TOLERANCE_S:
        return
    source = "this call recorded" if recorded is not None else "this call lasted"
    named = model.summary.get("recording") if model.summary else None
    hint = f" (its recording was {named})" if isinstance(named, str) else ""
    problems.append(
        f"recording {levels.path.name} is {levels.duration_s:.1f} s long but {source} "
        f"{expected:.1f} s{hint}: is it the same call? Levels drawn anyway"
    )


def _levels(path: Path | None, model: CallModel, problems: list[str]) -> Levels | None:
    if path is None:
        return None
    if not path.exists():
        problems.append(f"recording {path} not found; no levels")
        return None
    try:
        levels = read_levels(path)
    except AudioFileError as exc:  # unreadable, or RecordingMismatchError: not stereo
        problems.append(f"{exc}; no levels")
        return None
    _check_match(levels, model, problems)
    return levels


def _write(path: Path, data: bytes, what: str) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise AudioFileError(f"cannot write {what} {path}: {exc.strerror or exc}") from exc


def _check_outputs(inputs: list[Path | None], outputs: list[Path | None]) -> None:
    taken = {p.resolve() for p in inputs if p is not None}
    for out in outputs:
        if out is not None and out.resolve() in taken:
            raise UsageError(f"{out} is an input of this report; choose another output file")


def _report(
    transcript: Transcript,
    recording: Path | None,
    out_html: Path,
    png: Path | None,
) -> ReportResult:
    _check_outputs([transcript.path, recording], [out_html, png])
    figures.require_matplotlib()  # before any work: say what to install at once
    problems = list(transcript.problems)
    model = build_model(transcript.records)
    levels = _levels(recording, model, problems)
    if not model.turns:
        problems.append("nobody spoke in this call: no turns to show")
    if model.unknown:
        kinds = ", ".join(f"{k} ({n})" for k, n in sorted(model.unknown.items()))
        problems.append(f"record types this aivoco does not know, shown as plain events: {kinds}")
    if levels is not None and model.end_t == 0 and not transcript.records:
        model.end_t = levels.duration_s
    bands = call_bands(model, levels)
    timeline = figures.timeline_png(model, levels, bands)
    page = PageInput(
        model=model,
        title=transcript.path.name,
        recording=levels.path.name if levels else None,
        problems=problems,
        timeline_png=timeline,
        latency_png=figures.latency_png(model),
        slow_ms=SLOW_MS,
    )
    _write(out_html, render_page(page).encode("utf-8"), "report")
    if png is not None:
        _write(png, timeline, "timeline PNG")
    return ReportResult(
        html_path=out_html,
        png_path=png,
        recording_path=levels.path if levels else None,
        turns=sum(1 for t in model.turns if t.speech_end is not None),
        answered=len(model.latencies_ms),
        duration_s=model.duration_s,
        warnings=tuple(problems),
    )


def default_output(transcript_path: PathLike) -> Path:
    """CALL.jsonl -> CALL.html beside it."""
    return Path(transcript_path).with_suffix(".html")


def render_report(
    transcript_path: PathLike,
    recording_path: PathLike | None = None,
    out_html: PathLike | None = None,
    png: PathLike | None = None,
    *,
    call: int | None = None,
    discover_recording: bool = False,
) -> ReportResult:
    """Like `write_report`, but an unexpected exception (a bug) propagates as itself.

    `discover_recording`: without `recording_path`, use the recording the transcript's
    summary names, if that file exists (what `aivoco report` does).
    """
    path = Path(transcript_path)
    recording = Path(recording_path) if recording_path is not None else None
    try:
        transcript = load_transcript(path, call)
    except EmptyTranscriptError as exc:
        if recording is None or not recording.is_file():
            raise
        transcript = Transcript(path, [], problems=[f"{exc}; only the recording is shown"])
    if recording is None and discover_recording:
        recording = _recorded_path(transcript.records, path)
    out = Path(out_html) if out_html is not None else default_output(path)
    return _report(transcript, recording, out, Path(png) if png is not None else None)


def write_report(
    transcript_path: PathLike,
    recording_path: PathLike | None = None,
    out_html: PathLike | None = None,
    png: PathLike | None = None,
) -> ReportResult:
    """Write the HTML report of the call in `transcript_path` (and its timeline as PNG).

    For `sts`/`call --report FILE`, once the call has ended and its transcript and
    recording are closed: `write_report(transcript, recording_or_None, FILE)`.

    - `transcript_path`: the call's `--transcript` JSON Lines (if the file holds several
      appended calls, the last one is reported).
    - `recording_path`: its `--record` stereo WAV, or None (no levels; the agent's turns
      are then estimated from the transcript). A missing, unreadable or non-matching
      recording is a warning, not an error: the report is written without its levels.
    - `out_html`: where to write; default: the transcript's path with `.html`.
    - `png`: also write the timeline alone as a PNG here.

    Strings are redacted with `aivoco.redact` (register the key first) and HTML-escaped.
    Returns a `ReportResult` (paths, turn counts, the warnings shown in the page).
    Raises only `AivocoError` subclasses (KeyboardInterrupt aside): `AudioFileError`
    for an unreadable or non-aivoco transcript or an unwritable output,
    `UsageError` (`figures.ReportDependencyError`) when matplotlib is missing, and
    `ReportError` for anything unexpected (a bug in aivoco, chained as `__cause__`).
    """
    try:
        return render_report(transcript_path, recording_path, out_html, png)
    except AivocoError:
        raise
    except Exception as exc:
        raise ReportError(f"the report failed: {type(exc).__name__}: {exc}") from exc


def write_report_from_records(
    records: list[Record],
    recording_path: PathLike | None,
    out_html: PathLike,
    png: PathLike | None = None,
    title: str = "call",
) -> ReportResult:
    """`write_report` for records held in memory (a call run without `--transcript`).

    `records`: the dicts the session's RecordBus emitted, in order. Same errors.
    """
    try:
        usable = [r for r in records if isinstance(r.get("type"), str)]
        calls = split_calls(usable) or [[]]
        transcript = Transcript(Path(title), calls[-1])
        recording = Path(recording_path) if recording_path is not None else None
        return _report(transcript, recording, Path(out_html), Path(png) if png else None)
    except AivocoError:
        raise
    except Exception as exc:
        raise ReportError(f"the report failed: {type(exc).__name__}: {exc}") from exc


__all__ = [
    "ReportError",
    "ReportResult",
    "default_output",
    "render_report",
    "write_report",
    "write_report_from_records",
]
