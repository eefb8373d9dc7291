"""Run a module with its Python threads' names visible from outside (for per-thread CPU).

    python bench/_named_threads.py MAPFILE -m aivoco sts ...

Before 3.14 Python leaves every OS thread's `comm` as "python", so /proc cannot tell the
uplink thread from Rich's refresh thread. This shim wraps `Thread._bootstrap_inner`: each
Python thread, as it starts, appends `native_id<TAB>name` to MAPFILE and sets its `comm`
(15 bytes, prctl PR_SET_NAME). The main thread is recorded as MainThread. Nothing else
changes: the module then runs exactly as `python -m MODULE` would. Threads absent from
the map were started by C code (PortAudio, libpulse); bench/_measure.py labels them
`native:<comm>` (comm inherited from the creating thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import runpy
import sys
import threading
from typing import Any

PR_SET_NAME = 15


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[2] != "-m":
        sys.exit("usage: _named_threads.py MAPFILE -m MODULE [ARGS...]")
    map_path, module = sys.argv[1], sys.argv[3]
    out = open(map_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    lock = threading.Lock()
    try:
        libc: Any = ctypes.CDLL(None, use_errno=True)
    except OSError:
        libc = None

    def record(name: str) -> None:
        with lock:
            out.write(f"{threading.get_native_id()}\t{name}\n")
        if libc is not None:
            libc.prctl(PR_SET_NAME, name.encode("utf-8", "replace")[:15], 0, 0, 0)

    original = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def bootstrap_inner(self: threading.Thread) -> None:
        with contextlib.suppress(Exception):  # best effort; never break the thread
            record(self.name)
        original(self)

    threading.Thread._bootstrap_inner = bootstrap_inner  # type: ignore[attr-defined]
    record("MainThread")
    assert os.getpid() == threading.get_native_id()
    sys.argv = [module, *sys.argv[4:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
