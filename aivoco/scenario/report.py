"""Reports of a test session: JUnit XML for CI, a JSON report with every turn's figures.

JUnit: the common schema CI servers read (GitHub/GitLab test reports, Jenkins' JUnit
plugin): `<testsuites>` with one `<testsuite>` per scenario file and one `<testcase>`
per run; a run that failed its expectations has a `<failure>` (message: the first
failure, text: all of them), a call that failed has an `<error>` (its error type), a
cancelled run is `<skipped>`. Each testcase's `<system-out>` lists its turns' figures.

Both files are written whole to a temporary name and renamed, so a CI job never reads
half a report; all text is redacted (the key) and control characters are shown as
escapes (XML 1.0 cannot carry them, and they came from the network).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aivoco.errors import AudioFileError
from aivoco.redact import redact
from aivoco.scenario.expect import TurnResult
from aivoco.scenario.load import Totals
from aivoco.scenario.runner import RunResult
from aivoco.text import terminal_safe, utf8_line

REPORT_VERSION = 1


def clean(text: str) -> str:
    return terminal_safe(redact(text), one_line=False)


def turn_line(t: TurnResult) -> str:
    parts = [f"turn {t.index} {t.label}:"]
    if t.reply_within_s is not None:
        parts.append(f"reply after {t.reply_within_s:.2f} s, {t.reply_s or 0:.2f} s long;")
    else:
        parts.append("no agent audio;")
    parts.append("pass" if t.passed else "FAIL")
    return " ".join(parts)


def junit_xml(results: list[RunResult], totals: Totals, started: dt.datetime) -> bytes:
    root = ET.Element("testsuites", name="aivoco test")
    _counts(root, results, totals.wall_s)
    by_file: dict[str, list[RunResult]] = {}
    for r in results:
        by_file.setdefault(r.file, []).append(r)
    host = socket.gethostname()
    for file, runs in by_file.items():
        suite = ET.SubElement(root, "testsuite", name=clean(runs[0].scenario))
        _counts(suite, runs, sum(r.duration_s for r in runs))
        suite.set("timestamp", started.replace(tzinfo=None).isoformat(timespec="seconds"))
        suite.set("hostname", host)
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="file", value=clean(file))
        for r in runs:
            _testcase(suite, r, file)
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body + b"\n"


def _counts(element: ET.Element, runs: list[RunResult], seconds: float) -> None:
    element.set("tests", str(len(runs)))
    element.set(
        "failures",
        str(sum(1 for r in runs if not r.cancelled and r.error is None and not r.passed)),
    )
    element.set("errors", str(sum(1 for r in runs if not r.cancelled and r.error is not None)))
    element.set("skipped", str(sum(1 for r in runs if r.cancelled)))
    element.set("time", f"{seconds:.3f}")


def _testcase(suite: ET.Element, r: RunResult, file: str) -> None:
    stem = Path(file).stem
    case = ET.SubElement(
        suite, "testcase", name=clean(f"{r.scenario} #{r.run}"), classname=clean(f"aivoco.{stem}")
    )
    case.set("time", f"{r.duration_s:.3f}")
    case.set("file", clean(file))
    if r.cancelled:
        ET.SubElement(case, "skipped", message="cancelled before it could finish")
    elif r.error is not None:
        error = ET.SubElement(
            case, "error", message=clean(str(r.error)), type=type(r.error).__name__
        )
        error.text = clean(str(r.error))
    elif r.all_failures:
        failures = r.all_failures
        failure = ET.SubElement(case, "failure", message=clean(failures[0]), type="expectation")
        failure.text = clean("\n".join(failures))
    lines = [turn_line(t) for t in r.turns]
    if r.recording:
        lines.append(f"recording: {r.recording}")
    if r.transcript:
        lines.append(f"transcript: {r.transcript}")
    if lines:
        ET.SubElement(case, "system-out").text = clean("\n".join(lines))


def json_report(
    results: list[RunResult], totals: Totals, started: dt.datetime, settings: dict[str, Any]
) -> bytes:
    report = {
        "version": REPORT_VERSION,
        "started": started.isoformat(timespec="seconds"),
        "settings": settings,
        "totals": totals.to_record(),
        "runs": [run_record(r) for r in results],
    }
    text = redact(json.dumps(report, ensure_ascii=False, indent=2, default=str))
    return utf8_line(text) + b"\n"


def run_record(r: RunResult) -> dict[str, Any]:
    slips = sorted(r.slips_ms)
    return {
        "scenario": r.scenario,
        "file": r.file,
        "run": r.run,
        "passed": r.passed,
        "cancelled": r.cancelled,
        "error": None
        if r.error is None
        else {"type": type(r.error).__name__, "message": str(r.error)},
        "failures": r.all_failures,
        "duration_s": round(r.duration_s, 3),
        "slip_ms": {
            "frames": len(slips),
            "p95": round(slips[int(0.95 * (len(slips) - 1))], 2) if slips else None,
            "max": round(slips[-1], 2) if slips else None,
        },
        "turns": [t.to_record() for t in r.turns],
        "summary": None if r.summary is None else r.summary.to_record(),
        "recording": r.recording,
        "transcript": r.transcript,
    }


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise AudioFileError(f"cannot write {path}: {exc.strerror or exc}") from exc


def check_writable(paths: Iterable[Path | None]) -> None:
    """Report paths must be writable before any call is made (a usage problem found
    after a 10-minute load run would lose it)."""
    for path in paths:
        if path is None:
            continue
        folder = path.parent if str(path.parent) else Path(".")
        if path.is_dir():
            raise AudioFileError(f"cannot write {path}: it is a directory")
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise AudioFileError(f"cannot write {path}: no writable folder {folder}")
