"""`python -m aivoco` runs the same Typer app as the `aivoco` console script."""

from aivoco.cli.app import main

if __name__ == "__main__":
    main()
