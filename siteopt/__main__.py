"""``python -m siteopt``: the same as the ``siteopt`` console script."""

from siteopt.cli import main

main(prog_name="siteopt")
