"""Typer commands: one module per command; `errors` maps exceptions to exit codes."""
