"""`aivoco.loadtest` for real: a Locust master with two local workers runs a scenario
against the emulator for a bounded time; the result is read from Locust's own stats."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import cli_env

from aivoco.emulator import Emulator, EmulatorConfig

# Not imported here: importing Locust patches the whole process with gevent.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("locust") is None, reason="locust is not installed ([loadtest])"
)

KEY = "locust-test-key-789"
LOCUSTFILE = """\
from aivoco.loadtest import ScenarioUser


class Smoke(ScenarioUser):
    scenarios = [{scenario!r}]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def locust(*args: str, env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[str]:
    with log.open("w") as err:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "locust", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE if "--master" in args else subprocess.DEVNULL,
            stderr=err,
            text=True,
        )


def test_a_master_and_two_workers_run_scenarios(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: locust smoke\nreply_quiet: 0.4\nturns:\n"
        "  - say: Hello there.\n    expect: {reply_within: 3}\n"
    )
    (tmp_path / "lf.py").write_text(LOCUSTFILE.format(scenario=str(scenario)))
    port = free_port()
    with Emulator(EmulatorConfig(port=0, accept_keys=(KEY,))) as emu:
        env = cli_env(
            AIVOCO_API_KEY=KEY,
            AIVOCO_STS_URL=emu.sts_url,
            AIVOCO_CACHE_DIR=str(tmp_path / "tts"),
            PYTHONPATH=os.pathsep.join(sys.path),
        )
        master = locust(
            "-f", "lf.py", "--master", "--headless", "-u", "4", "-r", "4", "--run-time", "12s",
            "--expect-workers", "2", "--master-bind-port", str(port), "--stop-timeout", "15",
            "--json", env=env, cwd=tmp_path, log=tmp_path / "master.log",
        )  # fmt: skip
        workers = [
            locust("-f", "lf.py", "--worker", "--master-port", str(port), env=env, cwd=tmp_path,
                   log=tmp_path / f"worker{n}.log")
            for n in (1, 2)
        ]  # fmt: skip
        try:
            out, _ = master.communicate(timeout=90)
            for w in workers:
                w.wait(timeout=30)
        finally:
            for p in (master, *workers):
                if p.poll() is None:
                    p.kill()
        sessions = len(emu.sts_sessions)
    logs = "".join(p.read_text() for p in tmp_path.glob("*.log"))
    assert master.returncode == 0, logs
    stats = {(e["method"], e["name"]): e for e in json.loads(out)}
    turn = stats[("turn", 'locust smoke / turn 1: say "Hello there."')]
    runs = stats[("scenario", "locust smoke")]
    assert turn["num_requests"] >= 4 and turn["num_failures"] == 0, logs
    assert runs["num_requests"] == turn["num_requests"] and runs["num_failures"] == 0
    # reply_within in ms, as the emulator answers: ~600 ms to hear the end + 300 ms
    assert 600 <= turn["total_response_time"] / turn["num_requests"] <= 3000
    assert sessions >= turn["num_requests"]
    assert logs.count("Shutting down (exit code 0)") >= 2  # both workers ended cleanly
    assert KEY not in logs + out
