"""Smoke test: every benchmark script in bench/ starts and prints its --help.

The benchmarks themselves take minutes and need PulseAudio, Node or py-spy; they are run
by hand (bench/RESULTS.md), not by the test suite. This only checks that each one imports
and parses its options, so they do not rot silently.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pulse import PulseServer

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = [
    "bench_cpu.py",
    "bench_latency.py",
    "bench_startup.py",
    "profile_call.py",
    "probe_output_callback.py",
    "probe_speaker_process.py",
    "probe_uplink_budget.py",
    "ref_sts_client.py",
    "ref_call_client.py",
    "ref_device_floor.py",
    "bench_wakeups.py",
]


def run_bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_script_help(script: str) -> None:
    out = run_bench(script, "--help")
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout


def test_bench_cpu_lists_its_modes() -> None:
    out = run_bench("bench_cpu.py", "--list")
    assert out.returncode == 0, out.stderr
    assert "ref-sts-file" in out.stdout and "node-sts-dev" in out.stdout


def test_bench_cpu_has_like_for_like_echo_off_modes() -> None:
    """The Node client does no echo control: the device modes also run aivoco with
    `--echo off`, given on the command line (the bench's environment drops AIVOCO_*)."""
    out = run_bench("bench_cpu.py", "--list")
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    for name in ("sts-dev-plain-echo-off", "call-dev-plain-echo-off"):
        assert "--echo off" in lines[name]
    assert "--echo" not in lines["sts-dev-plain"]


def test_bench_cpu_measures_the_device_floor_beside_the_node_client() -> None:
    """The bare-stream floor runs at aivoco's buffering and at the Node client's."""
    out = run_bench("bench_cpu.py", "--list")
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    assert "ref_device_floor.py" in lines["floor-dev-streams"]
    assert "--input-block-ms 128 --output-latency-ms 100" in lines["floor-dev-node-buffers"]
    assert "--echo off, --chunk-ms 128" in lines["sts-dev-node-chunks"]


@pytest.mark.device
def test_the_device_floor_keeps_both_streams_running(pulse: PulseServer) -> None:
    """bench/ref_device_floor.py on the private PulseAudio: both callbacks run, at the
    block sizes asked (so its figure is the floor of those streams, not of idle ones)."""
    out = subprocess.run(
        [sys.executable, str(BENCH / "ref_device_floor.py"), "--seconds", "6"],
        capture_output=True, text=True, timeout=60, check=False, env=pulse.client_env(),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    counts = json.loads(out.stdout.splitlines()[-1])
    # 6 s of 10 ms blocks is 600 per stream. A new stream on a null sink may wait ~1.5 s
    # for its first callback and ~1.75 s after an underrun (bench/RESULTS.md section 16),
    # which a busy machine makes likelier: ask for one second's worth.
    assert counts["input_blocks"] >= 100 and counts["output_blocks"] >= 100, counts


def test_the_wire_only_patch_still_applies() -> None:
    """bench/wire_only.patch (the headless floor, bench/RESULTS.md section 21) is applied
    to a worktree by hand: a change to the code it edits must come with a new patch."""
    root = BENCH.parent
    out = subprocess.run(
        ["git", "apply", "--check", str(BENCH / "wire_only.patch")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr


def test_the_wakeup_floor_runs_aivocos_clock_and_hop() -> None:
    """bench_wakeups.py drives the real Clock and EventQueue: a short run of each variant
    must wake and use CPU (a rotted API would crash or count no wake-up)."""
    result = run_bench("bench_wakeups.py", "--seconds", "0.5", "--runs", "1")
    assert result.returncode == 0, result.stderr
    rows = [
        line for line in result.stdout.splitlines() if line.startswith("| ") and "%" not in line
    ]
    names = [row.split("|")[1].strip() for row in rows]
    assert [n for n in names if n != "uvloop"] == ["sleep", "asyncio", "clock", "clock+hop"]
    for row in rows:
        us_per_wake, wakes_per_s = float(row.split("|")[3]), float(row.split("|")[4])
        assert us_per_wake > 0
        assert wakes_per_s > 10  # asked for 50 a second; only a broken variant is far off
