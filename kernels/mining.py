"""Mining on a site (docs/model.md), per MW of grid power and month.

Energy accounting: the PPA is take-or-pay for ``ppa_mw`` at its price, unused PPA
power is sold at the bin price and load above the PPA buys at the bin price. Summed
over bins that is ppa_mw * (p_k - ppa_price) (a settlement independent of the load)
plus load_k * p_k, so each MW of load simply pays the bin price and the PPA is a
site-level settlement stream (:func:`ppa_settlement`). The settlement is the same for
every option of a site, so it moves no decision; it is taken to end with the horizon
and is not capitalised in the terminal value (which values mining at market prices).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .market import Calendar, MarketPaths
from .params import SiteParams
from .power import PowerPaths, curtailment

TH_PER_PH = 1000.0


@dataclass(frozen=True)
class Fleet:
    """Deterministic fleet facts per month (numpy, length T).

    Attributes
    ----------
    ph_per_mw : ndarray [PH/s per grid MW]
        1000 / (J/TH x PUE) of the fleet running that month.
    refresh_capex_usd_mw : ndarray [USD per grid MW]
        ASIC purchase in refresh months (every ``asic_refresh_years`` from the
        start; the fleet at the start is taken as new), else 0.
    asic_cost_usd_mw : ndarray [USD per grid MW]
        Cost of buying the current-generation fleet that month (used when converted
        MW return to mining).
    """

    ph_per_mw: np.ndarray
    refresh_capex_usd_mw: np.ndarray
    asic_cost_usd_mw: np.ndarray


def fleet(site: SiteParams, months: int) -> Fleet:
    """Efficiency steps at each refresh; refreshed fleets gain ``efficiency_gain_per_year``."""
    m = site.mining
    t = np.arange(months)
    period = max(1, int(round(12 * m.asic_refresh_years)))
    generation_start = (t // period) * period  # month the running fleet was bought
    efficiency = m.efficiency_j_th * (1.0 - m.efficiency_gain_per_year) ** (generation_start / 12.0)
    ph_per_mw = 1000.0 / (efficiency * m.pue)
    current_eff = m.efficiency_j_th * (1.0 - m.efficiency_gain_per_year) ** (t / 12.0)
    asic_cost = m.asic_cost_usd_th * TH_PER_PH * 1000.0 / (current_eff * m.pue)
    refresh = np.where((t > 0) & (t % period == 0), m.asic_cost_usd_th * TH_PER_PH * ph_per_mw, 0.0)
    return Fleet(ph_per_mw, refresh, asic_cost)


@dataclass(frozen=True)
class MiningStreams:
    """Cash flows per grid MW of mining, per scenario and month (backend arrays) [USD/MW].

    ``margin`` = revenue - power - opex - fourcp (operating; refresh capex apart).
    """

    revenue: Any
    power: Any
    opex: Any
    fourcp: Any
    refresh: Any
    margin: Any
    run_share: Any


def value_per_mwh(hashprice: Any, ph_per_mw: Any, pool_fee: float) -> Any:
    """Value of a MWh of hashing [USD/MWh]: hashprice / 24 x PH/s per MW x (1 - pool fee)."""
    return hashprice / 24.0 * ph_per_mw * (1.0 - pool_fee)


def mining_streams(
    site: SiteParams,
    fleet_: Fleet,
    market: MarketPaths,
    power: PowerPaths,
    cal: Calendar,
    transmission_4cp_usd_kw_year: float,
    pool_fee: float,
    *,
    xp: ModuleType,
) -> MiningStreams:
    """Revenue, power, opex and 4CP of one grid MW of mining per month.

    A curtailable site runs the bins priced below the value of hashing; a month whose
    margin over the power it buys is below the opex idling would save
    (``opex_avoidable_share`` x opex) is idled whole: no revenue, no power bought (the PPA
    settlement sells its energy back), the avoidable share of opex saved. No foresight.
    """
    m = site.mining
    value = value_per_mwh(market.hashprice, xp.asarray(fleet_.ph_per_mw)[None, :], pool_fee)
    hours_up = xp.asarray(cal.hours)[None, :] * m.uptime
    if site.curtailable:
        run, price_share = curtailment(value, power.level, power.curve, xp=xp)
        fourcp = transmission_4cp_usd_kw_year * 1000.0 / 12.0 * (1.0 - power.fourcp_avoided)
    else:
        run = xp.ones_like(value)
        price_share = xp.ones_like(value)
        fourcp = xp.full_like(value, transmission_4cp_usd_kw_year * 1000.0 / 12.0)
    revenue = hours_up * run * value
    energy = hours_up * power.level * price_share
    opex = xp.full_like(value, m.opex_usd_mw_month)
    avoidable = idle_saving(site)
    if avoidable > 0:
        # a month that earns less over its power than the opex idling saves is idled
        idle = revenue - energy < avoidable * m.opex_usd_mw_month
        revenue = xp.where(idle, 0.0, revenue)
        energy = xp.where(idle, 0.0, energy)
        opex = xp.where(idle, m.opex_usd_mw_month * (1.0 - avoidable), opex)
        run = xp.where(idle, 0.0, run)
    refresh = xp.broadcast_to(xp.asarray(fleet_.refresh_capex_usd_mw)[None, :], value.shape)
    margin = revenue - energy - opex - fourcp
    return MiningStreams(revenue, energy, opex, fourcp, refresh, margin, run)


def idle_saving(site: SiteParams) -> float:
    """Share of opex an idle month saves: the site's ``opex_avoidable_share``, or 0 for a
    site that may not curtail (it runs every month) [-]."""
    return site.mining.opex_avoidable_share if site.curtailable else 0.0


def ppa_settlement(site: SiteParams, power: PowerPaths, cal: Calendar, *, xp: ModuleType) -> Any:
    """SiteParams PPA settlement per month [USD]: ppa_mw x hours x (mean price - PPA price)."""
    p = site.power
    if p.ppa_mw <= 0:
        return xp.zeros_like(power.level)
    return p.ppa_mw * xp.asarray(cal.hours)[None, :] * (power.level - p.ppa_price_usd_mwh)


def hashrate_eh_per_mw(fleet_: Fleet) -> np.ndarray:
    """Installed EH/s per grid MW per month."""
    return fleet_.ph_per_mw / 1000.0
