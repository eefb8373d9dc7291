"""Checks for `aivoco report` output: a strict-enough HTML parse, PNG facts, Chromium.

The browser tests follow the device tests' rule: without Chromium they skip locally, but
with AIVOCO_REQUIRE_DEVICE_TESTS=1 (set by .ci/run) a missing browser is a failure, so CI
can never pass without having rendered a report in a real browser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

REQUIRE_ENV = "AIVOCO_REQUIRE_DEVICE_TESTS"
_VOID = {"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "source", "wbr"}
_BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Headless Chromium with everything that would reach the network switched off.
_CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


@dataclass
class Page:
    tags: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # src attributes
    rows: list[list[str]] = field(default_factory=list)  # every table row's cell texts
    text: str = ""
    external: list[str] = field(default_factory=list)  # any href/src that is not data:


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.stack: list[str] = []
        self._texts: list[str] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.page.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith("data:"):
                self.page.external.append(value)
        if tag == "img":
            self.page.images.append(dict(attrs).get("src") or "")
        if tag == "tr":
            self._row = []
        if tag in ("td", "th"):
            self._cell = []
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        if tag == "tr" and self._row is not None:
            self.page.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        self._texts.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse_page(html: str) -> Page:
    """Parse `html`, asserting every element is closed in order (our pages are strict)."""
    assert html.startswith("<!DOCTYPE html>")
    parser = _Parser()
    parser.feed(html)
    parser.close()
    assert parser.stack == [], f"unclosed elements: {parser.stack}"
    parser.page.text = " ".join("".join(parser._texts).split())
    return parser.page


def png_pixels(path: Path) -> np.ndarray:
    """(height, width, channels) floats in 0..1."""
    return np.asarray(imread(str(path)), dtype=np.float64)


def assert_not_blank(pixels: np.ndarray, min_ink: float = 0.03) -> None:
    """Enough non-white pixels, and in more than a couple of colours."""
    rgb = pixels[..., :3]
    ink = np.mean(np.any(rgb < 0.9, axis=-1))
    assert ink > min_ink, f"only {ink:.1%} of the picture is not white"
    colours = np.unique((rgb.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert len(colours) > 20, f"only {len(colours)} colours"


def has_colour(pixels: np.ndarray, hex_colour: str, tolerance: float = 0.06) -> float:
    """Fraction of pixels within `tolerance` of `hex_colour` (#rrggbb)."""
    want = np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    close = np.all(np.abs(pixels[..., :3] - want) < tolerance, axis=-1)
    return float(np.mean(close))


def chromium() -> str:
    for name in _BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    message = "Chromium not found (Debian: apt-get install chromium)"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message}, and {REQUIRE_ENV}=1 requires the browser tests")
    pytest.skip(message)


def screenshot(html: Path, out: Path, width: int = 1400, height: int = 2400) -> Path:
    """Render `html` in headless Chromium (a fresh profile, no network) to `out`."""
    browser = chromium()
    with tempfile.TemporaryDirectory(prefix="aivoco-chromium-") as profile:
        done = subprocess.run(
            [
                browser,
                *_CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--screenshot={out}",
                html.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    assert done.returncode == 0 and out.exists(), f"chromium failed:\n{done.stderr[-2000:]}"
    return out
