"""Forward curves and the central market path the stochastic paths disperse around.

A forward is a house view: a few points (month of the horizon -> value), interpolated
month by month in logs (linearly where a point is 0) and held flat before the first
point and after the last. The market's central path is the forward where one is given
and the drift rules of docs/model.md where not; :func:`central_market` returns the
month arrays that the xp code (:func:`market.market_paths`) and its fused CUDA twin
both read, so the two cannot disagree on the view.

``forward_is: median`` makes the forward the median of the paths: the log shocks have
median 0, so the central log path is the log forward. ``mean`` makes it the mean: the
central log path is the log forward less half the variance of the log deviation at that
month (for BTC sigma^2 t / 12; for the network hashrate the variance the feedback gives,
computed exactly for the Gaussian shocks, fees aside).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .params import MarketParams, Portfolio, PowerMarketParams

__all__ = [
    "CentralMarket",
    "breakeven_hashprice",
    "breakeven_level",
    "btc_log_drift",
    "central_market",
    "hashprice_usd_ph_day",
    "hashrate_log_variance",
    "month0_hashprice",
    "monthly_curve",
    "power_centre",
    "walk",
]

BLOCKS_PER_DAY = 144.0
PH_PER_EH = 1000.0


def hashprice_usd_ph_day(reward_btc: Any, btc_usd: Any, hashrate_eh: Any) -> Any:
    """144 x reward x price / network PH/s [USD/PH/day]."""
    return BLOCKS_PER_DAY * reward_btc * btc_usd / (hashrate_eh * PH_PER_EH)


def month0_hashprice(m: MarketParams, subsidy0: float) -> float:
    """Hashprice of month 0 with the central fee [USD/PH/day], from the month-0 values:
    ``btc_price_usd``, ``hashrate_eh`` and ``fee_share``, where the app's adapter puts a
    forward's first month."""
    return hashprice_usd_ph_day(subsidy0 * (1.0 + m.fee_share), m.btc_price_usd, m.hashrate_eh)


def walk(log0: Any, steps: Any, xp: ModuleType) -> Any:
    """ln of a path from ln of its month 0 and its monthly log steps (..., T): month t is
    log0 + the steps of the months before it, summed in order."""
    lead = xp.zeros((*steps.shape[:-1], 1))
    return log0 + xp.concatenate([lead, xp.cumsum(steps[..., :-1], axis=-1)], axis=-1)


# USD/PH/day at which a fleet of 1 J/TH breaks even on 1 USD/MWh: 24 h x 1e-6 MWh/Wh x 1000 TH/PH
BREAKEVEN_USD_PH_DAY_PER_J_TH_USD_MWH = 0.024


def breakeven_level(efficiency_j_th: float, power_usd_mwh: float) -> float:
    """The hashprice at which a fleet of ``efficiency_j_th`` on ``power_usd_mwh`` breaks even
    [USD/PH/day]: 0.024 x J/TH x USD/MWh."""
    return BREAKEVEN_USD_PH_DAY_PER_J_TH_USD_MWH * efficiency_j_th * power_usd_mwh


def monthly_curve(points: tuple[tuple[int, float], ...], months: int) -> np.ndarray:
    """Month-by-month values of a forward given at ``points`` ((month, value), ...).

    Log-linear between two positive points, linear where either is 0, flat outside.
    """
    at = np.array([p[0] for p in points], dtype=np.float64)
    value = np.array([p[1] for p in points], dtype=np.float64)
    order = np.argsort(at, kind="stable")
    at, value = at[order], value[order]
    t = np.arange(months, dtype=np.float64)
    if not np.all(value > 0):
        return np.interp(t, at, value)
    curve = np.exp(np.interp(t, at, np.log(value)))
    exact = (at >= 0) & (at < months)
    curve[at[exact].astype(np.int64)] = value[exact]  # a point's own month: its value exactly
    return curve


@dataclass(frozen=True)
class CentralMarket:
    """What the market paths need besides the draws, month by month (numpy, length T).

    Attributes
    ----------
    log_btc0 : float
        ln of the BTC price at month 0 [ln USD].
    btc_step : ndarray
        Deterministic part of ln P[t+1] - ln P[t] [-].
    btc_sigma : float
        Standard deviation of a month's BTC log shock [-].
    log_hashrate0 : float
        ln of the network hashrate at month 0 [ln EH/s].
    hashrate_drift : ndarray
        A[t]: growth of ln H with the hashprice on its anchor [1/yr].
    hashrate_anchor : ndarray
        B[t]: ln of the hashprice the lagged hashprice is compared with [ln USD/PH/day];
        the growth of month t is A[t] + elasticity (ln hashprice[t - lag] - B[t]), with
        the start hashprice standing in for months before the start.
    fee_share : ndarray
        Fee share's centre: its mean (no forward, or ``forward_is: mean``) or its median.
    fee_shift : float
        What the fee's lognormal exponent subtracts: sigma^2 / 2 for a mean, 0 for a median.
    start_hashprice : float
        Hashprice of month 0 with the central fee [USD/PH/day].
    """

    log_btc0: float
    btc_step: np.ndarray
    btc_sigma: float
    log_hashrate0: float
    hashrate_drift: np.ndarray
    hashrate_anchor: np.ndarray
    fee_share: np.ndarray
    fee_shift: float
    start_hashprice: float


def central_market(scenario: Portfolio, subsidy: np.ndarray) -> CentralMarket:
    """The central path of ``scenario``'s market over its horizon (see the module notes).

    Parameters
    ----------
    scenario : Portfolio
    subsidy : ndarray (T,)
        Block subsidy by month [BTC/block] (market.subsidy_schedule).
    """
    m, months = scenario.market, scenario.months
    mean = m.forward_is == "mean"
    sig_month = m.btc_volatility / np.sqrt(12.0)
    t = np.arange(months + 1, dtype=np.float64)

    if m.btc_forward is not None:
        log_p = np.log(monthly_curve(m.btc_forward, months + 1))
        if mean:
            log_p = log_p - 0.5 * sig_month**2 * t
        log_btc0 = float(log_p[0])
        btc_step = np.diff(log_p)
    else:
        log_btc0 = float(np.log(m.btc_price_usd))
        drift = btc_log_drift(m.btc_drift, m.btc_volatility)
        btc_step = np.full(months, (drift - 0.5 * m.btc_volatility**2) / 12.0)

    if m.fee_forward is not None:
        fee = monthly_curve(m.fee_forward, months)
        fee_shift = 0.5 * m.fee_share_volatility**2 if mean else 0.0
    else:
        fee = np.full(months, m.fee_share)
        fee_shift = 0.5 * m.fee_share_volatility**2
    hp0 = month0_hashprice(m, float(subsidy[0]))

    if m.hashrate_forward is not None:
        log_h = np.log(monthly_curve(m.hashrate_forward, months + 1))
        if mean:
            log_h = log_h - 0.5 * hashrate_log_variance(scenario)
        log_hashrate0 = float(log_h[0])
        drift = 12.0 * np.diff(log_h)
        # the central hashprice: the one on which the hashrate follows the forward
        log_p = walk(log_btc0, btc_step, np)
        central = np.log(
            hashprice_usd_ph_day(subsidy * (1.0 + fee), np.exp(log_p), np.exp(log_h[:-1]))
        )
        anchor = np.empty(months)
        lag = m.hashrate_lag_months
        anchor[:lag] = np.log(hp0)
        anchor[lag:] = central[: max(months - lag, 0)]
    else:
        log_hashrate0 = float(np.log(m.hashrate_eh))
        drift = np.full(months, m.hashrate_growth)
        lag = m.hashrate_lag_months
        anchor = np.log(breakeven_hashprice(scenario, hp0, months))
        anchor = np.concatenate([np.full(min(lag, months), anchor[0]), anchor])[:months]
    return CentralMarket(
        log_btc0,
        btc_step,
        float(sig_month),
        log_hashrate0,
        drift,
        anchor,
        fee,
        float(fee_shift),
        float(hp0),
    )


def power_centre(
    scenario: Portfolio, pm: PowerMarketParams, month_of_year: np.ndarray
) -> tuple[np.ndarray, float]:
    """A power market's monthly centre [USD/MWh] and its lognormal shift [-].

    The centre is ``forward_usd_mwh`` (else ``price_usd_mwh``) times the month's
    seasonality; the level is centre x exp(s Z - shift), shift = s^2/2 when the centre
    is a mean (``price_usd_mwh``, or a forward with ``forward_is: mean``), 0 for a median.
    """
    season = np.ones(12) if pm.seasonality is None else np.asarray(pm.seasonality, dtype=np.float64)
    sig = pm.price_volatility
    if pm.forward_usd_mwh is None:
        return pm.price_usd_mwh * season[month_of_year - 1], 0.5 * sig * sig
    centre = monthly_curve(pm.forward_usd_mwh, len(month_of_year)) * season[month_of_year - 1]
    return centre, 0.5 * sig * sig if scenario.market.forward_is == "mean" else 0.0


def btc_log_drift(btc_drift: float | None, btc_volatility: float) -> float:
    """The annual drift before -s^2/2: ``btc_drift``, or s^2/2 (a flat median) when unset."""
    return 0.5 * btc_volatility**2 if btc_drift is None else btc_drift


def breakeven_hashprice(scenario: Portfolio, start_hashprice: float, months: int) -> np.ndarray:
    """The hashprice at which the network's marginal fleet breaks even, by month [USD/PH/day].

    0.024 x ``breakeven_efficiency_j_th`` x ``breakeven_power_usd_mwh`` at the start (the
    start hashprice when the efficiency is unset), falling with ``fleet_efficiency_gain``
    a year, and divided by (1 - ``hashrate_to_ai_per_year``)^years: the power that moves
    to AI leaves the network as if its break-even hashprice rose.
    """
    m = scenario.market
    if m.breakeven_efficiency_j_th is None:
        level = start_hashprice
    else:
        level = breakeven_level(m.breakeven_efficiency_j_th, m.breakeven_power_usd_mwh)
    years = np.arange(months, dtype=np.float64) / 12.0
    return (
        level
        * (1.0 - m.fleet_efficiency_gain) ** years
        / (1.0 - m.hashrate_to_ai_per_year) ** years
    )


def hashrate_log_variance(scenario: Portfolio) -> np.ndarray:
    """Variance of the log network hashrate's deviation from its central path, by month.

    In logs the deviations are linear in the Gaussian shocks: the BTC deviation
    p[t] = s_m sum_{u<t} z1[u] and the hashrate's x[t+1] = x[t] + elasticity / 12
    (p - x)[t - lag] + s_h (rho z1[t] + sqrt(1 - rho^2) z_indep[t]) (fees aside).
    Tracking the coefficients of each shock gives the variance exactly (length T + 1).
    """
    m, months = scenario.market, scenario.months
    lag, k = m.hashrate_lag_months, m.hashrate_elasticity / 12.0
    s_b, s_h = m.btc_volatility / np.sqrt(12.0), m.hashrate_volatility / np.sqrt(12.0)
    rho = m.hashrate_price_correlation
    # coefficients on (z1[0..T-1], z_indep[0..T-1]) of p[t] and x[t], t = 0..T
    p = np.zeros((months + 1, 2 * months))
    x = np.zeros((months + 1, 2 * months))
    for t in range(months):
        p[t + 1] = p[t]
        p[t + 1, t] += s_b
        x[t + 1] = x[t]
        if t >= lag:
            x[t + 1] += k * (p[t - lag] - x[t - lag])
        x[t + 1, t] += s_h * rho
        x[t + 1, months + t] += s_h * np.sqrt(1.0 - rho * rho)
    return np.einsum("ij,ij->i", x, x)
