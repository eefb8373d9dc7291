"""The vocabulary shared by `protocols/` and `session/`: events, the driver contract and
custom-function definitions. Both packages depend on this one, never on each other's
internals, so the import graph has no cycle (tests/test_architecture.py checks it).
"""
