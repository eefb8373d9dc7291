"""What a peer's message may hold, checked before anything recurses into it.

A codec must turn *any* input into an event or a `ProtocolError` (docs/protocols.md#leniency).
Two kinds of input broke that: JSON nested hundreds of levels deep (Python's decoder,
`repr` and every recursive walk hit the recursion limit, and a reader thread died of the
`RecursionError`), and integers too large for a float (`OverflowError`). So:

* nesting is limited to `MAX_DEPTH` levels, checked on the JSON text *before*
  `json.loads` (a linear scan, no recursion) and on decoded values by an iterative walk.
  The protocols' own messages nest at most four levels; function arguments get room;
* a number is a finite float of magnitude at most `MAX_MAGNITUDE`: credits, costs and
  counts beyond that are absurd, and are treated like a missing optional field.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from aivoco.errors import ProtocolError

MAX_DEPTH = 32
MAX_MAGNITUDE = 1e15
# A numeric string longer than this is not a number we would accept anyway.
_MAX_NUMBER_TEXT = 40

# A JSON string literal; brackets inside one do not nest. Possessive, so an unterminated
# string costs one linear scan.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*+"', re.DOTALL)
_OPEN = (ord("["), ord("{"))
_CLOSE = (ord("]"), ord("}"))


def too_deep(what: str) -> ProtocolError:
    return ProtocolError(f"{what} nests deeper than {MAX_DEPTH} levels")


def check_text_depth(text: str, what: str) -> None:
    """ProtocolError if JSON `text` would nest deeper than MAX_DEPTH (no recursion)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return  # the usual case (audio frames): no scan needed
    bare = _STRING.sub("", text)
    codes = np.frombuffer(bare.encode("utf-8", "surrogatepass"), np.uint8)
    step = np.isin(codes, _OPEN).astype(np.int32) - np.isin(codes, _CLOSE)
    if codes.size and int(np.cumsum(step).max()) > MAX_DEPTH:
        raise too_deep(what)


def loads(text: str, what: str) -> Any:
    """`json.loads` of peer text, depth-checked first; ProtocolError if not JSON."""
    check_text_depth(text, what)
    try:
        return json.loads(text)
    except ValueError:  # also an integer of more digits than Python converts
        raise ProtocolError(f"{what} is not JSON") from None


def check_depth(value: Any, what: str) -> None:
    """ProtocolError if a decoded value nests deeper than MAX_DEPTH (iterative walk)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth >= MAX_DEPTH:
            raise too_deep(what)
        stack.extend((child, depth + 1) for child in children)


def number(value: Any) -> float | None:
    """A finite number of sane magnitude (numeric strings allowed), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        # Compared as integers: float() of a 400-digit int raises OverflowError.
        if abs(value) > MAX_MAGNITUDE:
            return None
        f = float(value)
    elif isinstance(value, float):
        f = value
    elif isinstance(value, str) and len(value) <= _MAX_NUMBER_TEXT:
        try:
            f = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return f if math.isfinite(f) and abs(f) <= MAX_MAGNITUDE else None


def amount(value: Any) -> float | None:
    """A number that cannot be negative (a cost, credits used, a count), else None."""
    f = number(value)
    return f if f is not None and f >= 0 else None


def integer(value: Any) -> int | None:
    f = number(value)
    return int(f) if f is not None and f.is_integer() else None
