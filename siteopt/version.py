"""The version of siteopt (one place; the package, summary.json and --version read it)."""

__version__ = "0.1.0"
