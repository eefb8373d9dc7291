"""Read a `--transcript` JSON Lines file tolerantly: one call's records plus what was wrong.

A transcript is appended to line by line and flushed as it goes, so a crash or a kill
can leave the last line cut off, and several calls can share one file. Neither is a
reason to give up: bad lines are skipped and reported, and the calls are told apart.
Only a file with no aivoco record at all is refused.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aivoco.errors import AudioFileError, UsageError

Record = dict[str, Any]

# A new call's clock starts at 0; records of one call can be a few ms out of order
# (t is taken before the bus lock), so only a clear step back means a new call.
_CLOCK_RESTART_S = 1.0
_MAX_LISTED_LINES = 5


class EmptyTranscriptError(AudioFileError):
    """The transcript holds no lines at all (the call wrote nothing, or not yet)."""


@dataclass
class Transcript:
    path: Path
    records: list[Record]  # the chosen call's records, in file order
    calls: int = 1  # how many calls the file holds
    call_index: int = 1  # which one `records` is (1-based)
    problems: list[str] = field(default_factory=list)


def is_record(value: object) -> bool:
    """An aivoco record: a JSON object with a string `type` and a numeric `t` or a `time`."""
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        return False
    t = value.get("t")
    has_t = isinstance(t, (int, float)) and not isinstance(t, bool)
    return has_t or isinstance(value.get("time"), str)


@dataclass
class _Lines:
    records: list[Record] = field(default_factory=list)
    bad: list[int] = field(default_factory=list)  # numbers of lines that are not records
    count: int = 0  # non-blank lines
    last: int = 0  # number of the last non-blank line


def _parse_lines(path: Path) -> _Lines:
    out = _Lines()
    try:
        # errors="replace": a binary file given by mistake must give "not a transcript",
        # not a UnicodeDecodeError.
        with open(path, encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                out.count, out.last = out.count + 1, number
                try:
                    value = json.loads(line)
                except ValueError:
                    value = None
                if is_record(value):
                    out.records.append(value)
                else:
                    out.bad.append(number)
    except OSError as exc:
        raise AudioFileError(f"cannot read transcript {path}: {exc.strerror or exc}") from exc
    return out


def _line_list(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:_MAX_LISTED_LINES])
    more = len(numbers) - _MAX_LISTED_LINES
    return shown + (f" and {more} more" if more > 0 else "")


def split_calls(records: list[Record]) -> list[list[Record]]:
    """Split appended calls: a `connecting` after a `summary`, or the clock restarting."""
    calls: list[list[Record]] = []
    current: list[Record] = []
    finished = False
    last_t = 0.0
    for record in records:
        t = record.get("t")
        restarted = isinstance(t, (int, float)) and t < last_t - _CLOCK_RESTART_S
        new_call = record["type"] == "connecting" and finished
        if current and (restarted or new_call):
            calls.append(current)
            current, finished, last_t = [], False, 0.0
        current.append(record)
        finished = finished or record["type"] == "summary"
        if isinstance(t, (int, float)):
            last_t = max(last_t, float(t))
    if current:
        calls.append(current)
    return calls


def load_transcript(path: str | os.PathLike[str], call: int | None = None) -> Transcript:
    """One call of the transcript at `path` (the last one unless `call` says which).

    Raises AudioFileError when the file cannot be read or holds no aivoco record (then it
    is not a transcript, or an empty one) and UsageError for a `call` out of range.
    """
    path = Path(path)
    if path.is_dir():
        raise AudioFileError(f"{path} is a directory, not a transcript (a .jsonl file)")
    lines = _parse_lines(path)
    records, bad = lines.records, lines.bad
    if not records:
        if lines.count == 0:
            raise EmptyTranscriptError(f"transcript {path} is empty: the call wrote no events")
        raise AudioFileError(
            f"{path} is not an aivoco transcript: none of its {lines.count} line(s) is an aivoco "
            'record (a JSON object with "type" and "t", as --transcript writes)'
        )
    problems = []
    if bad:
        last_cut = bad == [lines.last]
        why = " (cut off mid-write: the call was killed?)" if last_cut else ""
        problems.append(
            f"skipped {len(bad)} line(s) that are not aivoco records{why}: line {_line_list(bad)}"
        )
    calls = split_calls(records)
    index = len(calls) if call is None else call
    if not 1 <= index <= len(calls):
        raise UsageError(f"--call {call}: {path} holds {len(calls)} call(s)")
    if len(calls) > 1:
        started = calls[index - 1][0].get("time", "?")
        problems.append(
            f"{path.name} holds {len(calls)} calls (appended); this report shows call "
            f"{index}, started {started} (choose one with --call N)"
        )
    return Transcript(path, calls[index - 1], len(calls), index, problems)
