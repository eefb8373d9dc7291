"""aivoco: a terminal client for live voice calls with Aivoco's AI agents."""

import logging

__version__ = "0.1.0"

# A library logs only where it is told to (--log-file): without this, Python's
# last-resort handler would print warnings to stderr, across the live view.
logging.getLogger("aivoco").addHandler(logging.NullHandler())
