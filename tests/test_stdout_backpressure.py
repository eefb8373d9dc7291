"""A stdout nobody reads must not stall the call (README "Output modes").

`aivoco sts --json | less` with `less` paused, or a CI step that reads the pipe only at
the end: once the pipe's buffer (64 kB on Linux) is full, a write blocks. The call's
threads hand records to the printer's own thread and go on, so the call ends on time
and its audio keeps flowing; the records reach stdout when the reader reads.
"""

from __future__ import annotations

from pathlib import Path

from _hostile import check_run
from clirun import json_lines, spawn_cli
from servers import Emit, RecordingStsServer
from test_hostile_sts import KEY, start_then, sts_args

TEXTS = 3000  # about 1 MB of JSON lines: far more than a pipe holds


def test_a_stdout_nobody_reads_does_not_stall_the_call(tmp_path: Path) -> None:
    text = "x" * 200
    flood = [Emit("text_response", {"text": f"{i} {text}"}) for i in range(TEXTS)]
    with RecordingStsServer() as server:
        server.on("start_call", start_then(*flood))
        proc = spawn_cli(*sts_args(server.url, tmp_path, 1.0, "--max-duration", "4"))
        try:
            # Nobody reads stdout yet: the call must still end by itself (idle after
            # the 1 s input, at most --max-duration) and say goodbye to the server.
            server.wait_for("stop_call", timeout=20)
        finally:
            out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    check_run(err, tmp_path, KEY)
    records = json_lines(out)
    texts = [r for r in records if r["type"] == "agent_text"]
    assert len(texts) == TEXTS  # nothing dropped below the printer's bound
    assert records[-1]["type"] == "summary"
