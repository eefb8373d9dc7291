"""The process that runs a Locust worker's calls: JSON lines in, JSON lines out.

Request (one line on stdin): `{"id": 7, "scenario": "path.yaml", "url": null,
"agent": null}`. Reply (one line on stdout): `{"id": 7, "run": {...}}`, the run's record
as in `aivoco test --report` (turns with `reply_within_s`, failures, error), or
`{"id": 7, "problem": "..."}` when the scenario file itself is wrong. Each request runs
on its own thread, as many at once as the users ask for; scenarios are parsed and their
audio prepared once. The key comes from `AIVOCO_API_KEY`. End of input cancels the
calls in progress and ends the process.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
from pathlib import Path
from typing import IO, Any

from aivoco.errors import AivocoError
from aivoco.redact import redact, register_secret
from aivoco.scenario.prepare import PreparedScenario, prepare_all
from aivoco.scenario.report import run_record
from aivoco.scenario.runner import ActiveRun, RunListener, RunSettings, execute


class Engine:
    def __init__(self, out: IO[str], key: str | None) -> None:
        self.out = out
        self.key = key
        self._lock = threading.Lock()
        self._prepared: dict[str, PreparedScenario] = {}
        self._active: set[ActiveRun] = set()
        self._runs = itertools.count(1)

    def handle(self, line: str) -> None:
        request = json.loads(line)
        threading.Thread(target=self._run, args=(request,), daemon=True).start()

    def _scenario(self, path: str) -> PreparedScenario:
        from aivoco.scenario.parse import load_scenarios

        with self._lock:
            if path not in self._prepared:
                self._prepared[path] = prepare_all(load_scenarios([Path(path)]))[0]
            return self._prepared[path]

    def _run(self, request: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"id": request.get("id")}
        try:
            prepared = self._scenario(str(request["scenario"]))
        except (AivocoError, KeyError) as exc:
            reply["problem"] = redact(str(exc))
            self._send(reply)
            return
        settings = RunSettings(key=self.key, url=request.get("url"), agent=request.get("agent"))
        run = ActiveRun(prepared, next(self._runs), settings)
        with self._lock:
            self._active.add(run)
        try:
            reply["run"] = run_record(execute(run, RunListener()))
        finally:
            with self._lock:
                self._active.discard(run)
        self._send(reply)

    def _send(self, reply: dict[str, Any]) -> None:
        line = redact(json.dumps(reply, ensure_ascii=True, default=str))
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()

    def stop(self) -> None:
        with self._lock:
            active = list(self._active)
        for run in active:
            run.cancel()


def main() -> None:
    key = (os.environ.get("AIVOCO_API_KEY") or "").strip() or None
    register_secret(key)
    engine = Engine(sys.stdout, key)
    for line in sys.stdin:
        if line.strip():
            engine.handle(line)
    engine.stop()


if __name__ == "__main__":
    main()
