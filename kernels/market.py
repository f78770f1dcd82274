"""Market paths shared by every site and option (docs/model.md): BTC, hashrate, fees, hashprice.

One path per scenario, drawn from the counter-based generator keyed by the scenario
index, so every site and option sees the same market (common random numbers) and a
chunk of scenarios gets the same draws wherever it is computed.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .factor import factor_paths, loaded
from .forward import (
    BLOCKS_PER_DAY,
    PH_PER_EH,
    central_market,
    hashprice_usd_ph_day,
    month0_hashprice,
    walk,
)
from .params import Portfolio, month_index
from .rng import STREAM_BTC, STREAM_FEES, normal, normal_pair

__all__ = [
    "BLOCKS_PER_DAY",
    "PH_PER_EH",
    "Calendar",
    "MarketPaths",
    "hashprice_usd_ph_day",
    "horizon_calendar",
    "market_paths",
    "month_label",
    "start_hashprice",
    "subsidy_schedule",
]


@dataclass(frozen=True)
class Calendar:
    """Deterministic month facts of the horizon (numpy, length T).

    Attributes
    ----------
    hours : ndarray [h]
        Hours in each calendar month (days x 24).
    days : ndarray [day]
    month_of_year : ndarray of int
        1..12.
    year : ndarray of int
        Calendar year of each month.
    discount : ndarray, length T + 1 [-]
        (1 + r)^(-t/12) at the unlevered rate; the last entry discounts the terminal value.
    cost : ndarray, length T + 1 [-]
        (1 + cost_inflation)^(t/12): what a cost of today's prices costs in month t.
    """

    hours: np.ndarray
    days: np.ndarray
    month_of_year: np.ndarray
    year: np.ndarray
    discount: np.ndarray
    cost: np.ndarray

    @property
    def months(self) -> int:
        return len(self.hours)


def month_label(scenario: Portfolio, month: int) -> str:
    """``YYYY-MM`` of month ``month`` of the horizon (0 is ``scenario.start``)."""
    first = int(scenario.start[:4]) * 12 + int(scenario.start[5:]) - 1 + month
    return f"{first // 12:04d}-{first % 12 + 1:02d}"


def horizon_calendar(scenario: Portfolio) -> Calendar:
    """Month lengths, calendar years and discount factors of the horizon."""
    first = month_index("0000-01", scenario.start)
    idx = first + np.arange(scenario.months)
    year, month = idx // 12, idx % 12 + 1
    days = np.array(
        [calendar.monthrange(int(y), int(m))[1] for y, m in zip(year, month, strict=True)]
    )
    t = np.arange(scenario.months + 1, dtype=np.float64)
    discount = (1.0 + scenario.discount_rate) ** (-t / 12.0)
    cost = (1.0 + scenario.market.cost_inflation) ** (t / 12.0)
    return Calendar(days * 24.0, days.astype(np.float64), month, year, discount, cost)


def subsidy_schedule(scenario: Portfolio) -> np.ndarray:
    """Block subsidy per month [BTC/block].

    ``subsidy_btc`` is the subsidy before the listed halvings; it halves from each
    halving month on, so a halving listed at or before ``start`` applies from month 0.
    """
    t = np.arange(scenario.months)
    halvings = halving_indices(scenario)
    count = sum((t >= h).astype(np.int64) for h in halvings) if halvings else np.zeros_like(t)
    return scenario.market.subsidy_btc * 0.5**count


def halving_indices(scenario: Portfolio) -> tuple[int, ...]:
    """Months of the horizon of the known halvings (``market.halving_months``)."""
    return tuple(month_index(scenario.start, m) for m in scenario.market.halving_months)


def start_hashprice(scenario: Portfolio) -> float:
    """Hashprice at month 0 with the central fee [USD/PH/day] (the mean fee, no forward)."""
    return month0_hashprice(scenario.market, float(subsidy_schedule(scenario)[0]))


@dataclass(frozen=True)
class MarketPaths:
    """Per scenario (rows) and month (columns) market state, float64 on the backend.

    Attributes
    ----------
    btc_usd : array (N, T) [USD]
    hashrate_eh : array (N, T) [EH/s]
    reward_btc : array (N, T) [BTC/block]
        Subsidy plus fees.
    hashprice : array (N, T) [USD/PH/day]
    ai_rent_index : array (N, T) [-]
        The AI rent index, 1 at month 0 (market.ai): market rents move with it.
    """

    btc_usd: Any
    hashrate_eh: Any
    reward_btc: Any
    hashprice: Any
    ai_rent_index: Any = None


def market_paths(scenario: Portfolio, scenarios: Any, *, xp: ModuleType) -> MarketPaths:
    """Draw BTC, hashrate and fee paths for the given scenario indices.

    Parameters
    ----------
    scenario : Portfolio
    scenarios : array of int64, shape (N,)
        Global scenario indices (the counter of the generator).
    xp : module
        numpy or cupy.

    Notes
    -----
    ln P[t+1] = ln P[t] + a[t] + s/sqrt(12) Z1;
    ln H[t+1] = ln H[t] + g[t]/12 + s_h/sqrt(12) Z2, corr(Z1, Z2) = rho,
    g[t] = A[t] + elasticity * (ln hashprice[t - lag] - B[t]), with the start hashprice
    before month ``lag``. a, A and B come from :func:`forward.central_market`: without a
    forward a = (mu - s^2/2)/12, A = ``hashrate_growth`` and B the log break-even
    hashprice of the marginal fleet; with one, the steps of the forward and its central
    hashprice. Month 0 holds the start values; fees are lognormal around the fee share's
    centre, iid by month.
    """
    m, seed, months = scenario.market, scenario.simulation.seed, scenario.months
    n = scenarios.shape[0]
    sub = subsidy_schedule(scenario)
    c = central_market(scenario, sub)
    subsidy = xp.asarray(sub)
    col = scenarios[:, None]
    month = xp.arange(months, dtype=xp.int64)[None, :]
    z1, z_indep = normal_pair(seed, col, month, STREAM_BTC, xp=xp)
    factor, own = common_factor(scenario, scenarios, xp=xp)
    if factor is not None:
        z1 = loaded(z1, factor, m.factor.btc)
    rho = m.hashrate_price_correlation
    z2 = rho * z1 + np.sqrt(1.0 - rho * rho) * z_indep
    sig_f = m.fee_share_volatility
    fee_share = xp.asarray(c.fee_share)[None, :] * xp.exp(
        sig_f * normal(seed, col, month, STREAM_FEES, xp=xp) - c.fee_shift
    )
    reward = subsidy[None, :] * (1.0 + fee_share)

    step = xp.asarray(c.btc_step)[None, :] + c.btc_sigma * z1
    btc = xp.exp(walk(c.log_btc0, step, xp))
    hashrate = xp.empty((n, months))
    hashprice = xp.empty((n, months))
    log_h = xp.full(n, c.log_hashrate0)
    hp0 = c.start_hashprice
    sig_h = m.hashrate_volatility / np.sqrt(12.0)
    drift, anchor, lag = c.hashrate_drift, c.hashrate_anchor, m.hashrate_lag_months
    for t in range(months):
        hashrate[:, t] = xp.exp(log_h)
        hashprice[:, t] = hashprice_usd_ph_day(reward[:, t], btc[:, t], hashrate[:, t])
        log_lagged = xp.log(hashprice[:, t - lag]) if t >= lag else np.log(hp0)
        growth = drift[t] + m.hashrate_elasticity * (log_lagged - anchor[t])
        log_h = log_h + growth / 12.0 + sig_h * z2[:, t]
    index = ai_rent_index(scenario, factor, own, n, xp=xp)
    return MarketPaths(btc, hashrate, reward, hashprice, index)


def common_factor(scenario: Portfolio, scenarios: Any, *, xp: ModuleType) -> tuple[Any, Any]:
    """The factor F and the AI rent index's own noise, (N, T) each; (None, None) when
    neither BTC loads on the factor nor the index moves (nothing is drawn then)."""
    m = scenario.market
    if m.factor.btc == 0.0 and m.ai.rent_volatility == 0.0:
        return None, None
    span = m.factor_months or scenario.months
    return factor_paths(scenario.simulation.seed, scenarios, scenario.months, span, xp=xp)


def ai_rent_index(scenario: Portfolio, factor: Any, own: Any, n: int, *, xp: ModuleType) -> Any:
    """The AI rent index, 1 at month 0 (N, T): ln I[t+1] = ln I[t] + (mu - s^2/2)/12 +
    s/sqrt(12) Z, Z loading on the factor by ``market.factor.ai_rent``."""
    ai, months = scenario.market.ai, scenario.months
    step = (ai.rent_drift - 0.5 * ai.rent_volatility**2) / 12.0
    if own is None or ai.rent_volatility == 0.0:
        t = np.arange(months, dtype=np.float64)
        return xp.broadcast_to(xp.asarray(np.exp(step * t)), (n, months))
    z = loaded(own, factor, scenario.market.factor.ai_rent)
    steps = step + ai.rent_volatility / np.sqrt(12.0) * z
    return xp.exp(walk(0.0, steps, xp))
