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

from .params import Portfolio, month_index
from .rng import STREAM_BTC, STREAM_FEES, normal, normal_pair

BLOCKS_PER_DAY = 144.0
PH_PER_EH = 1000.0


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
    halvings = [month_index(scenario.start, m) for m in scenario.market.halving_months]
    count = sum((t >= h).astype(np.int64) for h in halvings) if halvings else np.zeros_like(t)
    return scenario.market.subsidy_btc * 0.5**count


def start_hashprice(scenario: Portfolio) -> float:
    """Hashprice at month 0 with mean fees [USD/PH/day]."""
    m = scenario.market
    subsidy = float(subsidy_schedule(scenario)[0])
    return hashprice_usd_ph_day(subsidy * (1.0 + m.fee_share), m.btc_price_usd, m.hashrate_eh)


def hashprice_usd_ph_day(reward_btc: Any, btc_usd: Any, hashrate_eh: Any) -> Any:
    """144 x reward x price / network PH/s [USD/PH/day]."""
    return BLOCKS_PER_DAY * reward_btc * btc_usd / (hashrate_eh * PH_PER_EH)


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
    """

    btc_usd: Any
    hashrate_eh: Any
    reward_btc: Any
    hashprice: Any


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
    ln P[t+1] = ln P[t] + (mu - s^2/2)/12 + s/sqrt(12) Z1;
    ln H[t+1] = ln H[t] + g[t]/12 + s_h/sqrt(12) Z2, corr(Z1, Z2) = rho,
    g[t] = g0 + elasticity * ln(hashprice[t - lag] / hashprice[0]). Month 0 holds
    the start values; fees are lognormal around ``fee_share`` x subsidy, iid by month.
    """
    m, seed, months = scenario.market, scenario.simulation.seed, scenario.months
    n = scenarios.shape[0]
    subsidy = xp.asarray(subsidy_schedule(scenario))
    col = scenarios[:, None]
    month = xp.arange(months, dtype=xp.int64)[None, :]
    z1, z_indep = normal_pair(seed, col, month, STREAM_BTC, xp=xp)
    rho = m.hashrate_price_correlation
    z2 = rho * z1 + np.sqrt(1.0 - rho * rho) * z_indep
    sig_f = m.fee_share_volatility
    fee_share = m.fee_share * xp.exp(
        sig_f * normal(seed, col, month, STREAM_FEES, xp=xp) - 0.5 * sig_f**2
    )
    reward = subsidy[None, :] * (1.0 + fee_share)

    step = (m.btc_drift - 0.5 * m.btc_volatility**2) / 12.0 + m.btc_volatility / np.sqrt(12.0) * z1
    log_p = np.log(m.btc_price_usd) + xp.concatenate(
        [xp.zeros((n, 1)), xp.cumsum(step[:, :-1], axis=1)], axis=1
    )
    btc = xp.exp(log_p)
    hashrate = xp.empty((n, months))
    hashprice = xp.empty((n, months))
    log_h = xp.full(n, np.log(m.hashrate_eh))
    hp0 = hashprice_usd_ph_day(subsidy[0] * (1.0 + m.fee_share), m.btc_price_usd, m.hashrate_eh)
    sig_h = m.hashrate_volatility / np.sqrt(12.0)
    for t in range(months):
        hashrate[:, t] = xp.exp(log_h)
        hashprice[:, t] = hashprice_usd_ph_day(reward[:, t], btc[:, t], hashrate[:, t])
        lagged = hashprice[:, t - m.hashrate_lag_months] if t >= m.hashrate_lag_months else hp0
        growth = m.hashrate_growth + m.hashrate_elasticity * xp.log(lagged / hp0)
        log_h = log_h + growth / 12.0 + sig_h * z2[:, t]
    return MarketPaths(btc, hashrate, reward, hashprice)
