"""One call core for `aivoco sts` and `aivoco call`, usable from code.

    from aivoco.session import CallOptions, open_call
    result = open_call(CallOptions(key="...", input_file=Path("q.wav"))).run()

The lifecycle lives in `lifecycle.py`, the public call in `call.py`, building one from
options in `build.py`. Names are loaded on first use, so importing the options (as the
command line does for `--help`) does not import numpy, sockets or devices.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Call": "aivoco.session.call",
    "CallResult": "aivoco.session.call",
    "open_call": "aivoco.session.build",
    "CallOptions": "aivoco.session.options",
    "EndReason": "aivoco.session.lifecycle",
    "Phase": "aivoco.session.lifecycle",
    "Outcome": "aivoco.session.lifecycle",
}

__all__ = ["Call", "CallOptions", "CallResult", "EndReason", "Outcome", "Phase", "open_call"]

if TYPE_CHECKING:
    from aivoco.session.build import open_call
    from aivoco.session.call import Call, CallResult
    from aivoco.session.lifecycle import EndReason, Outcome, Phase
    from aivoco.session.options import CallOptions


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'aivoco.session' has no attribute {name!r}")
    return getattr(import_module(module), name)
