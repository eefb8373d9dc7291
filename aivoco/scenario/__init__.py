"""Scripted conversation tests of a voice agent (`aivoco test`).

A scenario file (YAML, `parse.py`) says what to say and what to expect; each turn's
audio is prepared once (`prepare.py`, `tts.py`), then played on a real call's uplink in
audio time (`script.py`) while the agent's events are timed on arrival (`probe.py`).
`runner.py` runs one call, `expect.py` checks it, `load.py` runs many at once in this
process, `report.py` writes JUnit XML and JSON.
"""
