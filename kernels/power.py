"""Power prices (docs/model.md): monthly levels, price-duration curves, and curtailment.

A month is a price-duration curve of K bins: weights w_k (share of hours) and prices
p_k[t] = level[t] * multiple_k. Mining runs in a bin when a MWh of hashing is worth
more than the bin's price, so the value of a curtailable MWh is
sum_k w_k max(v - p_k, 0). Writing x = v / level, that sum is
level * (x W(x) - M(x)) with W(x) = sum_{m_k < x} w_k (the run share) and
M(x) = sum_{m_k < x} w_k m_k, so one ``searchsorted`` over the sorted multiples
replaces the loop over bins, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from types import ModuleType
from typing import Any

import numpy as np

from .forward import power_centre
from .market import Calendar
from .params import Portfolio, PowerMarketParams
from .rng import normal, power_stream, uniforms4

DEFAULT_CURVE_SIGMA = 0.5  # lognormal spread of non-spike hours around the level


@dataclass(frozen=True)
class DurationCurve:
    """A market's price-duration curve, bins sorted by multiple (numpy).

    Attributes
    ----------
    weights : ndarray (K,) [share of hours]
    multiples : ndarray (K,) [multiple of the monthly level]
        Weighted mean is 1, so the monthly level is the month's mean price.
    cum_weight, cum_weighted_multiple : ndarray (K + 1,)
        Prefix sums W and M of the module docstring, starting at 0.
    """

    weights: np.ndarray
    multiples: np.ndarray
    cum_weight: np.ndarray
    cum_weighted_multiple: np.ndarray


def duration_curve(pm: PowerMarketParams) -> DurationCurve:
    """The explicit curve of ``pm`` or the default one, normalised to mean 1.

    The default puts ``spike_hours_share`` of hours at ``spike_price_usd_mwh`` and
    spreads the rest over ``duration_bins - 1`` equal-weight bins at lognormal
    quantiles, scaled so that the curve's mean is the market's mean price.
    """
    if pm.duration_curve is not None:
        weights = np.array([w for w, _ in pm.duration_curve], dtype=np.float64)
        multiples = np.array([m for _, m in pm.duration_curve], dtype=np.float64)
        multiples = multiples / float(weights @ multiples)
    else:
        weights, multiples = _default_curve(pm)
    order = np.argsort(multiples, kind="stable")
    weights, multiples = weights[order], multiples[order]
    cum_w = np.concatenate([[0.0], np.cumsum(weights)])
    cum_wm = np.concatenate([[0.0], np.cumsum(weights * multiples)])
    return DurationCurve(weights, multiples, cum_w, cum_wm)


def _default_curve(pm: PowerMarketParams) -> tuple[np.ndarray, np.ndarray]:
    spike_share = pm.spike_hours_share
    # without spike hours the spike multiple weighs nothing (and a near-zero mean price
    # would make it inf, and 0 x inf NaN)
    priced = pm.price_usd_mwh > 0 and spike_share > 0
    spike_mult = pm.spike_price_usd_mwh / pm.price_usd_mwh if priced else 0.0
    k = pm.duration_bins - 1
    probs = (np.arange(k) + 0.5) / k
    body = np.exp(DEFAULT_CURVE_SIGMA * np.array([NormalDist().inv_cdf(p) for p in probs]))
    body_weight = (1.0 - spike_share) / k
    scale = (
        (1.0 - spike_share * spike_mult) / (body_weight * body.sum()) if body_weight > 0 else 0.0
    )
    weights = np.append(np.full(k, body_weight), spike_share)
    return weights, np.append(body * scale, spike_mult)


@dataclass(frozen=True)
class PowerPaths:
    """One market's prices per scenario and month (backend arrays).

    Attributes
    ----------
    level : array (N, T) [USD/MWh]
        Monthly mean price.
    fourcp_avoided : array (N, T) [0 or 1]
        Whether curtailable load misses the 4CP peaks of that month's year.
    curve : DurationCurve
    """

    level: Any
    fourcp_avoided: Any
    curve: DurationCurve


def power_paths(
    scenario: Portfolio, market_index: int, cal: Calendar, scenarios: Any, *, xp: ModuleType
) -> PowerPaths:
    """Monthly price levels (iid lognormal around the centre, forward.power_centre) and 4CP
    outcomes."""
    name = list(scenario.power_markets)[market_index]
    pm = scenario.power_markets[name]
    seed, col = scenario.simulation.seed, scenarios[:, None]
    month = xp.arange(cal.months, dtype=xp.int64)[None, :]
    centre, shift = power_centre(scenario, pm, cal.month_of_year)
    mean = xp.asarray(centre)
    sig = pm.price_volatility
    z = normal(seed, col, month, power_stream(market_index), xp=xp)
    level = mean[None, :] * xp.exp(sig * z - shift)
    # One 4CP draw per calendar year: the uniform at the year's first month in the horizon.
    first_of_year = np.searchsorted(cal.year, cal.year, side="left")
    u = uniforms4(seed, col, xp.asarray(first_of_year)[None, :], power_stream(market_index), xp=xp)[
        2
    ]
    avoided = (u < pm.fourcp_avoidance).astype(xp.float64)
    return PowerPaths(level, avoided, duration_curve(pm))


def curtailment(
    value_mwh: Any, level: Any, curve: DurationCurve, *, xp: ModuleType
) -> tuple[Any, Any]:
    """Run share and energy cost share of a curtailable load.

    Parameters
    ----------
    value_mwh : array [USD/MWh]
        Value of a MWh of hashing.
    level : array [USD/MWh]
        Monthly price level (same shape).

    Returns
    -------
    run_share : array [share of hours]
        W(x): the hours priced below the value of hashing.
    price_share : array [multiple of the level]
        M(x): sum of w_k m_k over the bins run; energy cost per MW-hour is level * M.
    """
    mult = xp.asarray(curve.multiples)
    # a level near 0 sends x to inf (run in every bin), which is the right answer
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = xp.where(level > 0, value_mwh / level, xp.inf)
    idx = xp.searchsorted(mult, x, side="left")
    return xp.asarray(curve.cum_weight)[idx], xp.asarray(curve.cum_weighted_multiple)[idx]
