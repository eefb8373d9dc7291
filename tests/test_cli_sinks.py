"""Every sink, fed by a hostile server: escape sequences, lone surrogates, the echoed key.

A real Socket.IO (or WebSocket) server on loopback sends text that would drive a
terminal, text that is not valid UTF-8 once encoded, and the API key it was given.
Through `--plain`, `--json`, `--transcript`, `--log-file`, the summary and the error
message on stderr: no write fails, nothing reaches a terminal unneutralised, JSON keeps
the text intact, and the key appears nowhere (the live view: tests/test_cli_terminal.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clirun import cli_env, json_lines, run_cli, write_tone
from servers import Emit, RecordingCallServer, RecordingStsServer, SendText, Sleep

from aivoco.errors import ExitCode

KEY = "sk-sinks-0123456789"
HOSTILE = (
    f"\x1b[2J\x1b[31mred\x1b[0m [bold]b[/bold] \u202eevil\u202c \x07 \x00 cr\rlf \ud83d {KEY}!"
)
ERROR_TEXT = f"rate limited for {KEY} \x1b]0;pwned\x07 \ud800"
RAW = ("\x1b[2J", "\x1b[31m", "\u202e", "\x07", "\x00", "\x1b]0;")


def hostile_server(*extra: Any) -> RecordingStsServer:
    def hook(srv: RecordingStsServer, sid: str, data: object) -> list[Any]:
        return [
            *srv.default_start_call(sid, data),
            Emit("text_response", {"text": HOSTILE}),
            Emit("mystery\x1b[2J", {"x": 1}),
            *extra,
        ]

    return RecordingStsServer(hooks={"start_call": hook})


def args(server: RecordingStsServer, tmp_path: Path, *extra: str) -> list[str]:
    tone = write_tone(tmp_path / "q.wav", 500, 16000, 0.3)
    return [
        "sts",
        "--key",
        KEY,
        "--url",
        server.url,
        "--input",
        str(tone),
        "--output",
        str(tmp_path / "o.wav"),
        "--idle-timeout",
        "0.5",
        "--transcript",
        str(tmp_path / "t.jsonl"),
        "--log-file",
        str(tmp_path / "log.txt"),
        *extra,
    ]


def assert_terminal_safe(text: str) -> None:
    for raw in RAW:
        assert raw not in text, repr(raw)
    assert KEY not in text


def transcript_text(tmp_path: Path) -> list[dict[str, Any]]:
    data = (tmp_path / "t.jsonl").read_bytes().decode("utf-8")  # valid UTF-8
    return [json.loads(line) for line in data.splitlines()]


def agent_text(records: list[dict[str, Any]]) -> str:
    return str(next(r["text"] for r in records if r["type"] == "agent_text"))


def test_plain_output_summary_and_files(tmp_path: Path) -> None:
    with hostile_server() as server:
        res = run_cli(*args(server, tmp_path, "--plain"))
    assert res.returncode == 0, res.stderr
    assert_terminal_safe(res.stdout + res.stderr)
    assert "\\x1b[31mred" in res.stdout and "\\u202eevil" in res.stdout
    assert "\\ud83d ***!" in res.stdout and "cr\\x0dlf" in res.stdout
    expected = HOSTILE.replace(KEY, "***")
    assert agent_text(transcript_text(tmp_path)) == expected  # intact, key masked
    log = (tmp_path / "log.txt").read_text(encoding="utf-8")
    assert_terminal_safe(log)
    assert "call summary" in res.stdout
    # Our reason for the end (idle), the server's words beside it (item 5).
    assert "session ended: idle (server: Session stopped by user)" in res.stdout


def test_json_output_keeps_the_text_as_json_escapes(tmp_path: Path) -> None:
    with hostile_server() as server:
        res = run_cli(*args(server, tmp_path, "--json"))
    assert res.returncode == 0, res.stderr
    assert KEY not in res.stdout + res.stderr
    records = json_lines(res.stdout)
    assert agent_text(records) == HOSTILE.replace(KEY, "***")
    assert "\\ud83d" in res.stdout  # the lone surrogate as its JSON escape
    assert records == transcript_text(tmp_path)


def test_an_error_echoing_the_key_is_masked_and_neutralised_everywhere(tmp_path: Path) -> None:
    error = Emit("error", {"message": ERROR_TEXT, "type": "rate_limit_exceeded"})
    with hostile_server(Sleep(0.2), error) as server:
        res = run_cli(*args(server, tmp_path, "--plain"))
    assert res.returncode == ExitCode.SERVICE, res.stderr
    assert_terminal_safe(res.stdout + res.stderr)
    assert "rate limited for *** \\x1b]0;pwned\\x07 \\ud800" in res.stderr
    assert res.stderr.count("service error") == 1
    records = transcript_text(tmp_path)
    error_record = next(r for r in records if r["type"] == "error")
    assert error_record["exit_code"] == ExitCode.SERVICE
    assert error_record["message"].endswith(ERROR_TEXT.replace(KEY, "***"))  # intact
    assert KEY not in (tmp_path / "log.txt").read_text(encoding="utf-8")


def test_a_mark_name_with_a_lone_surrogate_is_answered_and_recorded(tmp_path: Path) -> None:
    tone = write_tone(tmp_path / "q.wav", 500, 8000, 0.5)

    def hook(srv: RecordingCallServer, conn: Any, msg: dict[str, Any]) -> list[Any]:
        return [SendText('{"event": "mark", "mark": {"name": "m\\ud800\\u001b[2J"}}')]

    with RecordingCallServer(hooks={"start": hook}) as server:
        res = run_cli(
            "call", "--agent", "a", "--key", KEY, "--url", f"{server.url}/ws",
            "--input", str(tone), "--output", str(tmp_path / "o.wav"), "--idle-timeout", "0.5",
            "--json", "--transcript", str(tmp_path / "t.jsonl"), "--log-file",
            str(tmp_path / "log.txt"),
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    marks = [r for r in json_lines(res.stdout) if r["type"] in ("mark", "mark_played")]
    assert [r["name"] for r in marks] == ["m\ud800\x1b[2J"] * 2
    assert transcript_text(tmp_path)[-1]["type"] == "summary"
    assert_terminal_safe((tmp_path / "log.txt").read_text(encoding="utf-8"))


def test_short_keys_mask_whole_words_only_and_warn(tmp_path: Path) -> None:
    quiet = write_tone(tmp_path / "q.wav", 500, 16000, 0.2, amplitude=0.0)
    error = Emit("error", {"message": "key k refused by the websocket gateway", "type": "x"})
    with RecordingStsServer() as server:
        server.on("start_call", lambda srv, sid, data: [*srv.default_start_call(sid, data), error])
        res = run_cli(
            "sts", "--key", "k", "--url", server.url, "--input", str(quiet),
            "--output", str(tmp_path / "o.wav"), "--plain",
        )  # fmt: skip
    assert "key *** refused by the websocket gateway" in res.stderr
    assert "websoc***et" not in res.stdout + res.stderr
    assert "warning: the API key has 1 characters" in res.stderr


def test_credentials_in_the_url_are_never_shown(tmp_path: Path) -> None:
    quiet = write_tone(tmp_path / "q.wav", 500, 16000, 0.2, amplitude=0.0)
    with RecordingStsServer() as server:
        url = server.url.replace("http://", "http://alice:hunter2secret@")
        res = run_cli(
            "sts", "--key", KEY, "--url", url, "--input", str(quiet), "--output",
            str(tmp_path / "o.wav"), "--idle-timeout", "0.3", "--plain", "--transcript",
            str(tmp_path / "t.jsonl"), "--log-file", str(tmp_path / "log.txt"),
            env=cli_env(),
        )  # fmt: skip
    everything = res.stdout + res.stderr + (tmp_path / "t.jsonl").read_text()
    everything += (tmp_path / "log.txt").read_text()
    assert "connecting to ***@127.0.0.1" in res.stdout
    assert "hunter2secret" not in everything and "alice" not in everything
