"""The common factor: shocks that move together (docs/model.md, "Shocks that move together").

One standard normal factor per scenario and month, F[t], loads on BTC's monthly log return
and on the AI rent index's; its horizon-wide level G (the normalised sum of F) loads on
each tenant's exit and each site's capex overrun, a one-factor Gaussian copula, so that
exits cluster across tenants in the scenarios where BTC and AI rents fall.

F is built from the level, so both come from two counter-based draws: G from
:data:`rng.STREAM_FACTOR_LEVEL` (month 0) and innovations e[t] from
:data:`rng.STREAM_FACTOR` (month t) over the whole horizon of ``T_f`` months:

    F[t] = G / sqrt(T_f) + e[t] - mean(e)

The F[t] are iid standard normals (a Brownian bridge pinned at G sqrt(T_f)) whose sum over
the horizon is G sqrt(T_f), whatever the chunk, machine or the months drawn. The second
normal of each e pair is the AI rent index's own noise. A loading of 0 leaves the variable
as it was drawn before this module, bit for bit; a loading l mixes as
l x (risk-off) + sqrt(1 - l^2) x own, each loading being the correlation of the variable's
bad direction (BTC and rents down, exits earlier, overruns larger) with the factor's low
side.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from .rng import STREAM_FACTOR, STREAM_FACTOR_LEVEL, normal_pair

__all__ = [
    "factor_level",
    "factor_paths",
    "loaded",
    "loaded_uniform",
    "normal_cdf",
]

SQRT_HALF = 0.7071067811865476  # == 1 / sqrt(2)


def factor_level(seed: int, scenarios: Any, *, xp: ModuleType) -> Any:
    """G per scenario: the factor's level over the horizon, a standard normal (N,)."""
    return normal_pair(seed, scenarios, 0, STREAM_FACTOR_LEVEL, xp=xp)[0]


def factor_paths(seed: int, scenarios: Any, months: int, factor_months: int, *, xp: ModuleType):
    """F[t] and the AI rent index's own noise, (N, months) each, for months < factor_months.

    Parameters
    ----------
    months : int
        Months returned (the horizon drawn, at most ``factor_months``).
    factor_months : int
        T_f: the whole horizon the factor spans (the bridge's length).
    """
    col = scenarios[:, None]
    t = xp.arange(factor_months, dtype=xp.int64)[None, :]
    e, own = normal_pair(seed, col, t, STREAM_FACTOR, xp=xp)
    g = factor_level(seed, scenarios, xp=xp)
    centre = e.sum(axis=1) / factor_months
    f = g[:, None] / np.sqrt(factor_months) + (e[:, :months] - centre[:, None])
    return f, own[:, :months]


def loaded(own: Any, risk_off: Any, loading: float) -> Any:
    """loading x risk_off + sqrt(1 - loading^2) x own: a standard normal whose correlation
    with ``risk_off`` is ``loading`` (``own`` as it is when the loading is 0)."""
    if loading == 0.0:
        return own
    return loading * risk_off + np.sqrt(1.0 - loading * loading) * own


def loaded_uniform(u: Any, own: Any, risk_off: Any, loading: float, *, xp: ModuleType) -> Any:
    """A uniform whose normal score loads on ``risk_off`` (a Gaussian copula): Phi(loaded(own,
    risk_off, loading)), with ``own`` the standard normal of the same draw; ``u`` itself when
    the loading is 0."""
    if loading == 0.0:
        return u
    return normal_cdf(loaded(own, risk_off, loading), xp=xp)


# erfc by the Chebyshev fit of Numerical Recipes (3rd ed., 6.2.2), |relative error| < 1.2e-16
_ERFC_COF = (
    -1.3026537197817094, 6.4196979235649026e-1, 1.9476473204185836e-2,
    -9.561514786808631e-3, -9.46595344482036e-4, 3.66839497852761e-4,
    4.2523324806907e-5, -2.0278578112534e-5, -1.624290004647e-6,
    1.303655835580e-6, 1.5626441722e-8, -8.5238095915e-8,
    6.529054439e-9, 5.059343495e-9, -9.91364156e-10,
    -2.27365122e-10, 9.6467911e-11, 2.394038e-12,
    -6.886027e-12, 8.94487e-13, 3.13092e-13,
    -1.12708e-13, 3.81e-16, 7.106e-15,
    -1.523e-15, -9.4e-17, 1.21e-16,
    -2.8e-17,
)  # fmt: skip


def _erfc_nonnegative(z: Any, xp: ModuleType) -> Any:
    t = 2.0 / (2.0 + z)
    ty = 4.0 * t - 2.0
    d = xp.zeros_like(z)
    dd = xp.zeros_like(z)
    for c in _ERFC_COF[:0:-1]:
        d, dd = ty * d - dd + c, d
    return t * xp.exp(-z * z + 0.5 * (_ERFC_COF[0] + ty * d) - dd)


def normal_cdf(x: Any, *, xp: ModuleType) -> Any:
    """Phi(x) = erfc(-x / sqrt(2)) / 2, elementwise on the backend."""
    z = -x * SQRT_HALF
    a = xp.abs(z)
    e = _erfc_nonnegative(a, xp)
    return 0.5 * xp.where(z >= 0, e, 2.0 - e)
