"""TLS against real servers on loopback: a certificate from a private authority (made
by trustme for the test) is refused with a clear message, and accepted with --ca-file.
Verification cannot be turned off: no code path builds a non-verifying context."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from clirun import run_cli, write_tone
from servers import RecordingCallServer, RecordingStsServer

from aivoco.cli.errors import ExitCode

KEY = "sk-tls-93b1e0"
ROOT = Path(__file__).resolve().parent.parent


def run(protocol: str, url: str, tmp_path: Path, *extra: str) -> tuple[int, str]:
    rate = 16000 if protocol == "sts" else 8000
    quiet = write_tone(tmp_path / "q.wav", 300, rate, 0.3, amplitude=0.0)
    target = ["--url", url] if protocol == "sts" else ["--agent", "a", "--url", f"{url}/ws"]
    res = run_cli(
        protocol, "--key", KEY, *target, "--input", str(quiet),
        "--output", str(tmp_path / "o.wav"), "--idle-timeout", "0.3", "--connect-timeout",
        "5", "--plain", *extra,
    )  # fmt: skip
    return res.returncode, res.stderr


@pytest.mark.parametrize("protocol", ["sts", "call"])
def test_a_private_ca_is_refused_clearly_and_accepted_with_ca_file(
    protocol: str, authority: tuple[ssl.SSLContext, Path], tmp_path: Path
) -> None:
    server_ctx, pem = authority
    server = RecordingStsServer() if protocol == "sts" else RecordingCallServer()
    server.ssl_context = server_ctx
    with server:
        assert server.url.startswith(("https://", "wss://"))
        code, err = run(protocol, server.url, tmp_path)
        assert code == ExitCode.CONNECTION, err
        assert "certificate was not accepted" in err and "--ca-file" in err
        assert KEY not in err
        code, err = run(protocol, server.url, tmp_path, "--ca-file", str(pem))
        assert code == 0, err


def test_an_unusable_ca_file_is_a_usage_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    code, err = run("sts", "https://127.0.0.1:9", tmp_path, "--ca-file", str(junk))
    assert code == ExitCode.USAGE and "cannot use --ca-file" in err
    code, err = run("call", "wss://127.0.0.1:9", tmp_path, "--ca-file", str(tmp_path / "no"))
    assert code == ExitCode.USAGE and "cannot use --ca-file" in err


def test_no_code_path_turns_verification_off() -> None:
    forbidden = ("CERT_NONE", "check_hostname = False", "ssl_verify=False", "verify=False",
                 "ssl=False", "_create_unverified_context")  # fmt: skip
    found = [
        f"{path.relative_to(ROOT)}: {word}"
        for path in (ROOT / "aivoco").rglob("*.py")
        for word in forbidden
        if word in path.read_text()
    ]
    assert found == []
