"""siteopt: which megawatts to keep hashing and which to convert to hosted AI.

The Python API (docs/api.md) is :mod:`siteopt.api`; its functions are also here, imported
on first use so that ``import siteopt`` stays light: ``siteopt.load``, ``siteopt.override``,
``siteopt.solve``, ``siteopt.evaluate``, ``siteopt.evaluate_policy``, ``siteopt.whatif``,
``siteopt.sweep``, ``siteopt.cases``, ``siteopt.settings`` and ``siteopt.Run``.
"""

from typing import Any

from siteopt.version import __version__

_API = (
    "Run",
    "cases",
    "evaluate",
    "evaluate_policy",
    "load",
    "override",
    "settings",
    "solve",
    "sweep",
    "whatif",
)
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from siteopt import api

        return getattr(api, name)
    raise AttributeError(f"module 'siteopt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
