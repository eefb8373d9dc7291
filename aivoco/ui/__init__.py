"""Terminal presentation: Rich widgets, the Live view and the plain/JSON printers.

The UI only observes: it renders `CallState.snapshot()` and never touches audio or
network objects.
"""
