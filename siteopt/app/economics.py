"""Unit economics at the first month of the horizon, and the market paths the valuation draws.

The numbers a miner checks on the back of an envelope before trusting a Monte Carlo run:
hashprice, and per site per MW per day what hashing earns and costs, and what hosting AI
for the site's first eligible contract would earn, each per MW of grid power and per MW of
critical IT. Means only: no curtailment, no price spikes, no 4CP charges, no tenant risk
(those are the valuation's job, kernels/).

:func:`market_fan` is the one random part: the p10/p50/p90 and mean of BTC, network
hashrate and hashprice by year over the scenario's own draws, because with a mean drift
the median BTC path falls (docs/model.md) and nobody should learn that from a plan.

>>> econ = unit_economics(load_scenario("scenarios/texas.yaml"))  # doctest: +SKIP
>>> econ.hashprice_usd_ph_day                                       # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from siteopt.app.params import kernel_inputs
from siteopt.kernels.cloud import gpu_cost_per_month, is_cloud
from siteopt.kernels.market import (
    hashprice_usd_ph_day,
    horizon_calendar,
    market_paths,
    subsidy_schedule,
)
from siteopt.kernels.shell import upkeep_share
from siteopt.model.generator import as_markets, site_market
from siteopt.model.schema import Contract, Market, Scenario, Site, SiteMining, year_month_index

__all__ = [
    "AIEconomics",
    "Economics",
    "MarketFan",
    "MiningEconomics",
    "SiteEconomics",
    "ai_unit_economics",
    "hashprice_usd_ph_day",
    "market_fan",
    "mining_unit_economics",
    "power_price_usd_mwh",
    "subsidy_btc_at",
    "unit_economics",
]

DAYS_PER_MONTH = 365.0 / 12.0  # [day/month]: a month of opex or rent is 1/12 of a year


@dataclass(frozen=True)
class MiningEconomics:
    """Mining per MW of grid (facility) power per day.

    Attributes
    ----------
    ph_per_mw : float [PH/s per MW]
    revenue_usd_mw_day : float [USD/MW-day]
        After uptime and the pool fee.
    power_cost_usd_mw_day : float [USD/MW-day]
        Energy for the hours the fleet runs (uptime), at the site's blended price.
    opex_usd_mw_day : float [USD/MW-day]
    margin_usd_mw_day : float [USD/MW-day]
        Revenue less power and opex.
    breakeven_power_usd_mwh : float or None [USD/MWh]
        Power price at which the margin is zero; None when uptime is 0.
    btc_mw_day : float [BTC/MW-day]
        BTC earned (revenue / BTC price).
    cash_cost_usd_btc : float or None [USD/BTC]
        Power and opex per BTC earned, the listed miners' "cash cost"; None when the
        fleet earns nothing.
    """

    ph_per_mw: float
    revenue_usd_mw_day: float
    power_cost_usd_mw_day: float
    opex_usd_mw_day: float
    margin_usd_mw_day: float
    breakeven_power_usd_mwh: float | None
    btc_mw_day: float = 0.0
    cash_cost_usd_btc: float | None = None


@dataclass(frozen=True)
class AIEconomics:
    """Hosted AI per MW of critical IT per day, for one contract.

    Attributes
    ----------
    contract : str
        The contract priced (the site's first eligible one).
    revenue_usd_mw_day : float [USD/MW IT-day]
        Rent at the contract price, before escalators and ramps.
    power_cost_usd_mw_day : float [USD/MW IT-day]
        0 when the tenant pays the power (``power_pass_through``), else the grid
        draw (IT x pue) around the clock at the site's blended price.
    opex_usd_mw_day : float [USD/MW IT-day]
        The hall's; for a cloud contract also its operations and its GPUs' cost net of
        their sale at the term's end, spread over the term.
    margin_usd_mw_day : float [USD/MW IT-day]
    """

    contract: str
    revenue_usd_mw_day: float
    power_cost_usd_mw_day: float
    opex_usd_mw_day: float
    margin_usd_mw_day: float


@dataclass(frozen=True)
class SiteEconomics:
    """One site: its blended power price, mining per MW, and AI per MW of IT (or None).

    ``ai_pue`` [grid MW per IT MW] converts between the two: one MW of critical IT takes
    ``ai_pue`` MW of the interconnect that mining would otherwise use.
    """

    name: str
    mining_mw: float
    power_price_usd_mwh: float
    mining: MiningEconomics
    ai: AIEconomics | None
    ai_pue: float | None = None

    @property
    def mining_margin_usd_it_mw_day(self) -> float | None:
        """Mining margin of the grid MW that one MW of critical IT would take [USD/day]."""
        return None if self.ai_pue is None else self.mining.margin_usd_mw_day * self.ai_pue

    @property
    def ai_margin_usd_grid_mw_day(self) -> float | None:
        """Hosted-AI margin per MW of grid power (per MW of IT / AI PUE) [USD/MW-day]."""
        if self.ai is None or not self.ai_pue:
            return None
        return self.ai.margin_usd_mw_day / self.ai_pue


@dataclass(frozen=True)
class Economics:
    """Unit economics of a scenario at its first month."""

    scenario: str
    month: str
    btc_price_usd: float
    hashrate_eh: float
    subsidy_btc: float
    fees_btc: float
    hashprice_usd_ph_day: float
    sites: tuple[SiteEconomics, ...]

    @property
    def cash_cost_usd_btc(self) -> float | None:
        """The portfolio's power and opex per BTC its mining MW earn [USD/BTC]; None when
        it mines nothing."""
        btc = sum(s.mining_mw * s.mining.btc_mw_day for s in self.sites)
        cost = sum(
            s.mining_mw * (s.mining.power_cost_usd_mw_day + s.mining.opex_usd_mw_day)
            for s in self.sites
        )
        return cost / btc if btc > 0 else None


def unit_economics(scenario: Scenario) -> Economics:
    """Hashprice and per-site unit economics at ``scenario.start``.

    Parameters
    ----------
    scenario : Scenario
        A validated scenario.

    Returns
    -------
    Economics
    """
    scenario = as_markets(scenario)  # a generator site buys at its generator's cost
    market = scenario.market
    subsidy = subsidy_btc_at(market, scenario.start)
    fees = market.fee_share * subsidy
    hashprice = hashprice_usd_ph_day(subsidy + fees, market.btc_price_usd, market.hashrate_eh)
    sites = tuple(_site_economics(scenario, site, hashprice) for site in scenario.sites)
    return Economics(
        scenario=scenario.name,
        month=scenario.start,
        btc_price_usd=market.btc_price_usd,
        hashrate_eh=market.hashrate_eh,
        subsidy_btc=subsidy,
        fees_btc=fees,
        hashprice_usd_ph_day=hashprice,
        sites=sites,
    )


def _site_economics(scenario: Scenario, site: Site, hashprice: float) -> SiteEconomics:
    price = power_price_usd_mwh(scenario, site)
    mining = mining_unit_economics(
        site.mining, hashprice, scenario.market.pool_fee, price, scenario.market.btc_price_usd
    )
    contracts = scenario.contracts_for(site)
    ai = ai_unit_economics(site, contracts[0], price) if contracts else None
    return SiteEconomics(
        name=site.name,
        mining_mw=site.mining.mw,
        power_price_usd_mwh=price,
        mining=mining,
        ai=ai,
        ai_pue=site.ai.pue if site.ai is not None else None,
    )


def subsidy_btc_at(market: Market, month: str) -> float:
    """Block subsidy [BTC] in ``month``: halved once per halving month at or before it
    (listed, or generated when ``halving_months`` is omitted)."""
    halvings = sum(1 for h in market.halvings(month) if year_month_index(h, month) >= 0)
    return market.subsidy_btc / 2**halvings


def power_price_usd_mwh(scenario: Scenario, site: Site) -> float:
    """The site's blended power price [USD/MWh] in the first month.

    The PPA covers ``min(1, ppa_mw / mining.mw)`` of the mining load at its price; the
    rest pays the market's mean price times the seasonality of the start's calendar
    month. A site without mining load pays the PPA price if it has a PPA, else the
    market price (with seasonality).
    """
    market = site_market(scenario, site)
    month_of_year = int(scenario.start[5:7])
    seasonal = market.seasonality[month_of_year - 1] if market.seasonality else 1.0
    market_price = market.price_usd_mwh * seasonal
    ppa_mw, ppa_price = site.power.ppa_mw, site.power.ppa_price_usd_mwh
    if ppa_mw <= 0 or ppa_price is None:
        return market_price
    if site.mining.mw <= 0:
        return ppa_price
    covered = min(1.0, ppa_mw / site.mining.mw)
    return covered * ppa_price + (1.0 - covered) * market_price


def mining_unit_economics(
    mining: SiteMining,
    hashprice: float,
    pool_fee: float,
    power_price: float,
    btc_price: float | None = None,
) -> MiningEconomics:
    """Mining per MW of grid power per day.

    Parameters
    ----------
    mining : SiteMining
        Fleet efficiency [J/TH], pue [-], uptime [0-1], opex [USD/MW-month].
    hashprice : float [USD per PH/s per day]
    pool_fee : float [0-1]
    power_price : float [USD/MWh]
    btc_price : float, optional [USD/BTC]
        For the BTC earned and the cash cost per BTC (0 and None without it).
    """
    ph_per_mw = 1000.0 / (mining.efficiency_j_th * mining.pue)  # 1 MW / (J/TH) = 1000 PH/s
    revenue = hashprice * ph_per_mw * mining.uptime * (1.0 - pool_fee)
    power = 24.0 * mining.uptime * power_price
    opex = mining.opex_usd_mw_month / DAYS_PER_MONTH
    breakeven = (revenue - opex) / (24.0 * mining.uptime) if mining.uptime > 0 else None
    return MiningEconomics(
        ph_per_mw=ph_per_mw,
        revenue_usd_mw_day=revenue,
        power_cost_usd_mw_day=power,
        opex_usd_mw_day=opex,
        margin_usd_mw_day=revenue - power - opex,
        breakeven_power_usd_mwh=_finite(breakeven),
        btc_mw_day=revenue / btc_price if btc_price else 0.0,
        cash_cost_usd_btc=_finite((power + opex) * btc_price / revenue)
        if btc_price and revenue
        else None,
    )


def _finite(value: float | None) -> float | None:
    """``value``, or None where a vanishing uptime or revenue sends it past a float's range."""
    return value if value is not None and math.isfinite(value) else None


def ai_unit_economics(site: Site, contract: Contract, power_price: float) -> AIEconomics:
    """Hosted AI per MW of critical IT per day under ``contract``.

    Parameters
    ----------
    site : Site
        Must have an ``ai`` section (pue [-], opex [USD/MW IT-month]).
    contract : Contract
        Price [USD/kW IT-month], power pass-through.
    power_price : float [USD/MWh]
        Paid for the grid draw (IT x pue) when the power is not passed through.
    """
    if site.ai is None:
        raise ValueError(f"site {site.name} has no ai section")
    revenue = contract.price_usd_kw_month * 1000.0 / DAYS_PER_MONTH
    opex = upkeep_share(contract) * site.ai.opex_usd_mw_month / DAYS_PER_MONTH
    if is_cloud(contract):  # its operations, and its GPUs net of their sale
        opex += (contract.operations_usd_mw_month + gpu_cost_per_month(contract)) / DAYS_PER_MONTH
    power = 0.0 if contract.power_pass_through else 24.0 * site.ai.pue * power_price
    return AIEconomics(
        contract=contract.name,
        revenue_usd_mw_day=revenue,
        power_cost_usd_mw_day=power,
        opex_usd_mw_day=opex,
        margin_usd_mw_day=revenue - power - opex,
    )


FAN_SCENARIOS = 5_000  # draws for the market fan: p10/p90 to about 1% of their value
FAN_QUANTILES = (0.05, 0.10, 0.50, 0.90, 0.95)


@dataclass(frozen=True)
class MarketFan:
    """BTC, network hashrate, hashprice, fees and the AI rent index by year: p5, p10, p50,
    p90, p95 and the mean over scenarios.

    Each year's value is its last month inside the horizon (December, or the horizon's last
    month). ``paths[name]`` maps ``"p5"``, ``"p10"``, ``"p50"``, ``"p90"``, ``"p95"``,
    ``"mean"`` to one value per year; names are ``btc_usd`` [USD], ``hashrate_eh`` [EH/s],
    ``hashprice_usd_ph_day`` [USD per PH/s per day], ``fee_share`` [fees over the
    subsidy] and ``ai_rent_index`` [-, 1 at the start].
    """

    scenarios: int
    seed: int
    years: tuple[int, ...]
    months: tuple[str, ...]
    paths: dict[str, dict[str, tuple[float, ...]]]


def market_fan(scenario: Scenario, scenarios: int | None = None) -> MarketFan:
    """The market paths the valuation draws (the same generator, seed and first scenarios),
    summarised by year.

    Parameters
    ----------
    scenarios : int, optional
        Draws [default: the scenario's count, at most FAN_SCENARIOS].
    """
    n = scenarios or min(scenario.simulation.scenarios, FAN_SCENARIOS)
    portfolio = kernel_inputs(scenario)
    paths = market_paths(portfolio, np.arange(n, dtype=np.int64), xp=np)
    cal = horizon_calendar(portfolio)
    last = [int(np.flatnonzero(cal.year == y)[-1]) for y in scenario.years]
    series = {
        "btc_usd": paths.btc_usd,
        "hashrate_eh": paths.hashrate_eh,
        "hashprice_usd_ph_day": paths.hashprice,
        "fee_share": paths.reward_btc / subsidy_schedule(portfolio)[None, :] - 1.0,
        "ai_rent_index": paths.ai_rent_index,
    }
    out = {}
    for name, values in series.items():
        at = values[:, last]
        quantiles = np.quantile(at, FAN_QUANTILES, axis=0)
        out[name] = {
            **{
                f"p{round(100 * q)}": tuple(map(float, row))
                for q, row in zip(FAN_QUANTILES, quantiles, strict=True)
            },
            "mean": tuple(map(float, at.mean(axis=0))),
        }
    months = tuple(
        f"{y:04d}-{int(cal.month_of_year[t]):02d}"
        for y, t in zip(scenario.years, last, strict=True)
    )
    return MarketFan(n, scenario.simulation.seed, tuple(scenario.years), months, out)
