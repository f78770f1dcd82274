"""Prefix sums over months and gathers from them: the arithmetic of the fast path.

A sum over months [a, b) of an (N, T) stream is ``P[n, b] - P[n, a]`` on its prefix table
``P``; each scenario reads its own months with :func:`gather`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any


def prefix(values: Any, *, xp: ModuleType) -> Any:
    """Prefix sums along the last axis with a leading 0: P[..., k] = sum of the first k."""
    zeros = xp.zeros((*values.shape[:-1], 1), dtype=values.dtype)
    return xp.concatenate([zeros, xp.cumsum(values, axis=-1)], axis=-1)


def geometric(ratio: float, n: Any, xp: ModuleType) -> Any:
    """sum_{j < n} ratio^j for whole n >= 0."""
    n = n * 1.0
    if abs(ratio - 1.0) < 1e-15:
        return n
    return (1.0 - ratio**n) / (1.0 - ratio)


def gather(table: Any, idx: Any, *, xp: ModuleType) -> Any:
    """``table[n, idx[n]]`` for a 2-D table, or ``table[idx]`` for a 1-D one."""
    if table.ndim == 1:
        return table[idx]
    return xp.take_along_axis(table, idx[:, None], axis=1)[:, 0]


def segment(table: Any, lo: Any, hi: Any, a: Any, b: Any, *, xp: ModuleType) -> Any:
    """Sum over [a, b) intersected with the window [lo, hi), read from prefix ``table``.
    ``a`` and ``b`` may be plain ints (CuPy's clip takes arrays only)."""
    a, b = xp.asarray(a), xp.asarray(b)
    return gather(table, xp.clip(b, lo, hi), xp=xp) - gather(table, xp.clip(a, lo, hi), xp=xp)
