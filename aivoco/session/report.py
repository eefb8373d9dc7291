"""`--report FILE` of a call: the page drawn from the call's own files once it ended.

The report is drawn from the transcript and the recording (aivoco/report/api.py). When
the user asked for neither, the call writes them to a temporary directory, removed once
the page is written: on disk rather than in memory, so a long call, or a server that
floods the transcript with protocol errors, costs no memory. The scratch recording is
not named in the call's summary (the user never sees a path that is gone a moment later).

The page is written on every way a call ends (normal end, hang-up, server error, a
signal, a connection that failed part way) by whoever ran the call, after `close()`:
`write()` never raises an `AivocoError`; it returns it, so the command decides whether
it changes the exit code (only when the call itself succeeded).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aivoco.errors import AivocoError
from aivoco.session.options import CallOptions
from aivoco.session.records import error_fields

if TYPE_CHECKING:
    from aivoco.report import ReportResult


@dataclass(frozen=True)
class ReportOutcome:
    """The page written (`result`), or why not (`error`)."""

    path: Path
    result: ReportResult | None = None
    error: AivocoError | None = None

    def record(self) -> dict[str, Any]:
        """The fields of the `report` record of `--json`."""
        if self.result is None:
            failed = error_fields(self.error) if self.error is not None else {}
            return {"ok": False, "path": str(self.path), **failed}
        r = self.result
        return {
            "ok": True,
            "path": str(r.html_path),
            "turns": r.turns,
            "answered": r.answered,
            "warnings": list(r.warnings),
        }


class CallReport:
    """Where a call writes what its report needs, and the report once it ended."""

    def __init__(self, options: CallOptions) -> None:
        assert options.report_file is not None
        self.path = options.report_file
        self._scratch: Path | None = None
        transcript, recording = options.transcript_file, options.record_file
        scratch: Path | None = None
        if transcript is None or recording is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="aivoco-report-"))
        if transcript is None:
            transcript = self._dir() / "call.jsonl"
        if recording is None:
            scratch = self._dir() / "call.wav"
        self.transcript = transcript
        self.recording = recording or scratch
        self.options = replace(options, transcript_file=transcript, scratch_record_file=scratch)

    def _dir(self) -> Path:
        assert self._scratch is not None
        return self._scratch

    def write(self) -> ReportOutcome:
        """Draw the page (the last call of the transcript); the scratch files go after."""
        from aivoco.report import write_report

        recording = self.recording
        if recording is not None and recording != self.options.record_file:
            recording = recording if _has_frames(recording) else None
        try:
            result = write_report(self.transcript, recording, self.path)
        except AivocoError as exc:
            return ReportOutcome(self.path, error=exc)
        finally:
            self.close()
        return ReportOutcome(self.path, result=result)

    def close(self) -> None:
        """Remove the scratch files (idempotent): also when no call was ever made."""
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


def _has_frames(path: Path) -> bool:
    """A scratch recording of a call that never went live holds nothing: no warning
    about a file the user did not ask for (one of theirs is warned about)."""
    import soundfile

    try:
        return int(soundfile.info(str(path)).frames) > 0
    except (OSError, soundfile.SoundFileError):  # unreadable, or not there
        return False


def prepare_report(options: CallOptions) -> tuple[CallOptions, CallReport | None]:
    """The options the call runs with, and its report when `--report` was given."""
    if options.report_file is None:
        return options, None
    report = CallReport(options)
    return report.options, report
