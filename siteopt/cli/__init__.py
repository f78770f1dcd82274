"""The command line: click commands, rendering, progress. Each command parses, calls the
app layer, and renders; ``siteopt.cli.group:main`` is the console script."""

from .group import main

__all__ = ["main"]
