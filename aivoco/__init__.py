"""aivoco: a terminal client for live voice calls with Aivoco's AI agents."""

__version__ = "0.1.0"
