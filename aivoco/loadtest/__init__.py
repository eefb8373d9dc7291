"""Scenarios as Locust tasks, to spread calls over machines (`pip install aivoco[loadtest]`).

    # locustfile.py
    from aivoco.loadtest import ScenarioUser

    class Smoke(ScenarioUser):
        scenarios = ["examples/sts-smoke.yaml"]

    locust -f locustfile.py --master          # and on each machine:
    locust -f locustfile.py --worker --master-host MASTER

Each turn is a Locust request (`turn`, named "scenario / turn N: what"), its response
time the turn's `reply_within` in ms, failed when the turn failed; each run is one more
(`scenario`, its duration). Locust's own statistics then show per-turn latency.

Why the calls do not run inside Locust's process: Locust patches the whole process with
gevent, and an sts call runs one asyncio loop on its own OS thread, which gevent turns
into greenlets of one thread, where only one asyncio loop may run at a time. So each
Locust process starts one engine process (`aivoco.loadtest.engine`: plain threads, the
same in-process runner as `aivoco test --concurrency`) and its users hand it runs over
a pipe. Names are imported lazily so the engine never imports Locust.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = ["ScenarioUser"]

if TYPE_CHECKING:
    from aivoco.loadtest.user import ScenarioUser


def __getattr__(name: str) -> Any:
    if name == "ScenarioUser":
        return import_module("aivoco.loadtest.user").ScenarioUser
    raise AttributeError(f"module 'aivoco.loadtest' has no attribute {name!r}")
