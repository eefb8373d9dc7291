"""One at a time across pytest-xdist workers: a file lock in the run's shared temp dir.

pytest-xdist's `--dist loadgroup` (the `xdist_group` marker) does not group anything
under pytest 9 (checked with xdist 3.8: every item keeps its own node id), so what must
not run twice at once takes this lock instead. Workers of one run share the parent of
their base temp dirs (`pytest-N/popen-gwK`); a single process simply takes the lock.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def one_at_a_time(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[None]:
    """Hold the run-wide lock `name` (blocks while another worker holds it)."""
    path = tmp_path_factory.getbasetemp().parent / f"{name}.lock"
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
