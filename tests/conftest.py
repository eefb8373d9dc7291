"""Shared fixtures: a private PulseAudio server for the `device` tests, and the rule that
CI may not skip them; a private TLS authority for the TLS tests.

Device tests skip when PulseAudio cannot start, unless AIVOCO_REQUIRE_DEVICE_TESTS=1
(set by .ci/run): then a skipped device test is turned into a failure, so CI can never
pass without having played and recorded real audio. When AIVOCO_DEVICE_REPORT names a
file, the outcome of every device test is written there as JSON at the end of the run,
so CI can also check that device tests ran at all (not merely that none skipped).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
import trustme
from pulse import PulseServer, PulseUnavailableError
from xlock import one_at_a_time

# A suite started in the background by a non-interactive shell (`cmd &`, a CI script)
# inherits SIGINT ignored, and so would every command the tests start: Python leaves an
# inherited SIG_IGN alone, so their Ctrl-C tests would wait for an exit that never comes.
# Handled again here, the commands start with the default (each worker runs this too).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REQUIRE_ENV = "AIVOCO_REQUIRE_DEVICE_TESTS"
DEVICE_TEST_NICE = -10
REPORT_ENV = "AIVOCO_DEVICE_REPORT"


def device_tests_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") == "1"


# -- the PulseAudio fixtures ---------------------------------------------------------------
@pytest.fixture(scope="session")
def pulse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseServer]:
    """The daemon, started once per test session (about a second) and stopped at the end.

    Device tests check real-time audio end to end, while the other workers of the suite
    keep both cores busy: a starved PortAudio callback or PulseAudio daemon drops audio
    that the tests then (rightly) miss. So this worker, and what it starts (the daemon,
    the aivoco processes under test), run at a higher priority where that is allowed
    (as root, as in CI); elsewhere they run as they are."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, DEVICE_TEST_NICE)
    try:
        server = PulseServer(tmp_path_factory.mktemp("pulse")).start()
    except (PulseUnavailableError, OSError) as exc:
        message = f"PulseAudio could not be started for device tests: {exc}"
        if device_tests_required():
            pytest.fail(f"{message} ({REQUIRE_ENV}=1)")
        pytest.skip(message)
    try:
        yield server
    finally:
        server.stop()


def _reinitialise_portaudio() -> None:
    """Make PortAudio enumerate devices again under the current environment.

    PortAudio lists devices (and ALSA resolves "default" to PulseAudio or not) once, in
    Pa_Initialize, which sounddevice runs at import. aivoco imports sounddevice lazily,
    so usually nothing has happened yet; if an earlier test imported it, its device list
    predates our server. sounddevice has no public re-scan; _terminate/_initialize is
    the maintainer's suggested way (python-sounddevice issue #125), checked to work here.
    """
    sd = sys.modules.get("sounddevice")
    if sd is not None:
        sd._terminate()
        sd._initialize()


@pytest.fixture(scope="module")
def pulse(pulse_server: PulseServer) -> Iterator[PulseServer]:
    """The server, with this process's environment pointing PortAudio at it.

    Module-scoped so the changed HOME/XDG_RUNTIME_DIR never leak into other test modules
    (which may start subprocesses of their own).
    """
    with pytest.MonkeyPatch.context() as mp:
        for key, value in pulse_server.env.items():
            mp.setenv(key, value)
        _reinitialise_portaudio()
        yield pulse_server
    _reinitialise_portaudio()


# -- device tests may not skip in CI ---------------------------------------------------
# With pytest-xdist (the suite runs on several workers, see pyproject.toml), one device
# test runs at a time across the workers (tests/xlock.py): each plays and records real
# time audio, and two echo rigs at once starve each other. Outcomes are collected where
# reports arrive: in the controller, or in the only process.
_device_outcomes: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _one_device_test_at_a_time(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    if request.node.get_closest_marker("device") is None:
        yield
        return
    with one_at_a_time(tmp_path_factory, "device-tests"):
        yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if item.get_closest_marker("device") is None:
        return report
    if report.skipped and device_tests_required():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"device test skipped although {REQUIRE_ENV}=1: {reason}"
    report.user_properties.append(("device", True))
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if ("device", True) not in report.user_properties:
        return
    previous = _device_outcomes.get(report.nodeid)
    if report.failed:
        _device_outcomes[report.nodeid] = "failed"
    elif report.skipped and previous != "failed":
        _device_outcomes[report.nodeid] = "skipped"
    elif report.when == "call" and previous is None:
        _device_outcomes[report.nodeid] = "passed"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get(REPORT_ENV)
    if not target or hasattr(session.config, "workerinput"):  # an xdist worker: not here
        return
    counts = {
        k: sum(1 for v in _device_outcomes.values() if v == k)
        for k in ("passed", "failed", "skipped")
    }
    Path(target).write_text(json.dumps({**counts, "tests": _device_outcomes}, indent=2))


# -- TLS ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ssl.SSLContext, Path]]:
    """A server context with a certificate for 127.0.0.1, and its CA as a PEM file."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    pem = tmp_path_factory.mktemp("ca") / "private-ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    yield server_ctx, pem
