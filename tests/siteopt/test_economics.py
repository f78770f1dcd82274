"""Unit economics at the first month, checked by hand and against public figures."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from siteopt.app.economics import (
    hashprice_usd_ph_day,
    market_fan,
    mining_unit_economics,
    subsidy_btc_at,
    unit_economics,
)
from siteopt.model.load import load_scenario
from siteopt.model.schema import Market, Scenario, SiteMining

from .support import REPO, SCENARIOS, Run

DAY_PER_MONTH = 365 / 12


def scenario(
    *,
    start: str = "2027-01",
    market: dict[str, Any] | None = None,
    power_market: dict[str, Any] | None = None,
    site: dict[str, Any] | None = None,
    contracts: list[dict[str, Any]] | None = None,
) -> Scenario:
    """A one-site scenario; keyword arguments replace whole sections."""
    return Scenario.model_validate(
        {
            "name": "hand",
            "start": start,
            "market": market or {},
            "power_markets": {"grid": power_market or {"price_usd_mwh": 40}},
            "sites": [site or {"name": "s", "market": "grid", "interconnect_mw": 100,
                               "mining": {"mw": 80}}],
            "contracts": contracts or [],
        }
    )  # fmt: skip


def test_neutral_case_by_hand() -> None:
    # pue 1, uptime 1, no pool fee, no transaction fees, no PPA, flat prices
    s = scenario(
        market={"btc_price_usd": 100_000, "hashrate_eh": 1000, "subsidy_btc": 3.125,
                "halving_months": [], "fee_share": 0.0, "pool_fee": 0.0},
        power_market={"price_usd_mwh": 40},
        site={"name": "s", "market": "grid", "interconnect_mw": 100,
              "mining": {"mw": 80, "efficiency_j_th": 20, "pue": 1.0, "uptime": 1.0,
                         "opex_usd_mw_month": 9125},
              "ai": {"max_it_mw": 50, "pue": 1.2, "opex_usd_mw_month": 36_500}},
        contracts=[{"name": "c", "price_usd_kw_month": 100, "power_pass_through": True}],
    )  # fmt: skip
    econ = unit_economics(s)
    # hashprice = 144 blocks x 3.125 BTC x $100,000 / 1,000,000 PH/s = $45.00
    assert econ.hashprice_usd_ph_day == pytest.approx(45.0)
    assert (econ.subsidy_btc, econ.fees_btc) == (3.125, 0.0)
    site = econ.sites[0]
    m = site.mining
    assert m.ph_per_mw == pytest.approx(50.0)  # 1000 / (20 J/TH x 1.0)
    assert m.revenue_usd_mw_day == pytest.approx(2250.0)  # 45 x 50
    assert site.power_price_usd_mwh == pytest.approx(40.0)
    assert m.power_cost_usd_mw_day == pytest.approx(960.0)  # 24 h x $40
    assert m.opex_usd_mw_day == pytest.approx(300.0)  # 9,125 x 12 / 365
    assert m.margin_usd_mw_day == pytest.approx(990.0)  # 2250 - 960 - 300
    assert m.breakeven_power_usd_mwh == pytest.approx(81.25)  # (2250 - 300) / 24
    assert m.btc_mw_day == pytest.approx(0.0225)  # $2,250 at $100,000
    assert m.cash_cost_usd_btc == pytest.approx(56_000.0)  # (960 + 300) / 0.0225
    assert econ.cash_cost_usd_btc == pytest.approx(56_000.0)  # one site
    ai = site.ai
    assert ai is not None and ai.contract == "c"
    assert ai.revenue_usd_mw_day == pytest.approx(100 * 1000 * 12 / 365)  # 3,287.67
    assert ai.opex_usd_mw_day == pytest.approx(1200.0)  # 36,500 x 12 / 365
    assert ai.power_cost_usd_mw_day == 0.0  # passed through to the tenant
    assert ai.margin_usd_mw_day == pytest.approx(100_000 * 12 / 365 - 1200)  # 2,087.67


def test_loaded_case_by_hand() -> None:
    # fees, pool fee, uptime and PUE all matter; a PPA covers 60 of 80 MW; March seasonality
    s = scenario(
        start="2027-03",
        market={"btc_price_usd": 80_000, "hashrate_eh": 800, "subsidy_btc": 3.125,
                "halving_months": ["2028-04"], "fee_share": 0.02, "pool_fee": 0.02},
        power_market={"price_usd_mwh": 40,
                      "seasonality": [1.0, 1.0, 1.2, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]},
        site={"name": "s", "market": "grid", "interconnect_mw": 100,
              "power": {"ppa_mw": 60, "ppa_price_usd_mwh": 30},
              "mining": {"mw": 80, "efficiency_j_th": 16, "pue": 1.25, "uptime": 0.9,
                         "opex_usd_mw_month": 7300},
              "ai": {"max_it_mw": 60, "pue": 1.25, "opex_usd_mw_month": 18_250}},
        contracts=[{"name": "c", "price_usd_kw_month": 120, "power_pass_through": False}],
    )  # fmt: skip
    econ = unit_economics(s)
    # fees = 0.02 x 3.125 = 0.0625 BTC; reward 3.1875 BTC
    # hashprice = 144 x 3.1875 x 80,000 / 800,000 = 45.9
    assert econ.fees_btc == pytest.approx(0.0625)
    assert econ.hashprice_usd_ph_day == pytest.approx(45.9)
    site = econ.sites[0]
    m = site.mining
    assert m.ph_per_mw == pytest.approx(50.0)  # 1000 / (16 x 1.25)
    # revenue = 45.9 x 50 x 0.9 uptime x 0.98 (pool fee) = 2,024.19
    assert m.revenue_usd_mw_day == pytest.approx(2024.19)
    # PPA covers 60/80 = 0.75 at $30; the rest pays $40 x 1.2 (March) = $48
    # blended = 0.75 x 30 + 0.25 x 48 = 34.5
    assert site.power_price_usd_mwh == pytest.approx(34.5)
    assert m.power_cost_usd_mw_day == pytest.approx(745.2)  # 24 x 0.9 x 34.5
    assert m.opex_usd_mw_day == pytest.approx(240.0)  # 7,300 x 12 / 365
    assert m.margin_usd_mw_day == pytest.approx(2024.19 - 745.2 - 240.0)  # 1,038.99
    ai = site.ai
    assert ai is not None
    rent = 120 * 1000 * 12 / 365  # 3,945.21
    assert ai.revenue_usd_mw_day == pytest.approx(rent)
    assert ai.opex_usd_mw_day == pytest.approx(600.0)  # 18,250 x 12 / 365
    assert ai.power_cost_usd_mw_day == pytest.approx(1035.0)  # 24 h x 1.25 PUE x 34.5
    assert ai.margin_usd_mw_day == pytest.approx(rent - 600.0 - 1035.0)  # 2,310.21


def test_figures_worked_check() -> None:
    # docs/sources.md: S21 XP 13.5 J/TH, 95% uptime, 2% pool fee, $39.53/PH/day, $40/MWh, no opex
    fleet = SiteMining(mw=1, efficiency_j_th=13.5, pue=1.0, uptime=0.95, opex_usd_mw_month=0)
    m = mining_unit_economics(fleet, hashprice=39.53, pool_fee=0.02, power_price=40.0)
    assert m.ph_per_mw == pytest.approx(74.1, abs=0.05)
    assert m.revenue_usd_mw_day == pytest.approx(2727, abs=2)  # FIGURES rounds PH/s to 74.1
    assert m.power_cost_usd_mw_day == pytest.approx(912.0)
    assert m.margin_usd_mw_day == pytest.approx(1815, abs=2)
    assert m.margin_usd_mw_day * 365 == pytest.approx(0.66e6, rel=0.01)  # ~$0.66M per MW-year
    assert m.breakeven_power_usd_mwh == pytest.approx(120, abs=1)


def test_january_2026_public_figures_give_the_published_hashprice() -> None:
    # BTC $91,132, 1,024 EH/s, fees ~0.55% of the reward, subsidy 3.125: published $39.53
    s = scenario(
        start="2026-01",
        market={"btc_price_usd": 91_132, "hashrate_eh": 1024, "subsidy_btc": 3.125,
                "halving_months": ["2028-04"], "fee_share": 0.0055},
    )  # fmt: skip
    hashprice = unit_economics(s).hashprice_usd_ph_day
    assert hashprice == pytest.approx(39.53, rel=0.02)
    assert hashprice == pytest.approx(hashprice_usd_ph_day(3.125 * 1.0055, 91_132, 1024))


@pytest.mark.parametrize(
    ("start", "halvings", "subsidy"),
    [
        ("2028-03", ["2028-04"], 3.125),
        ("2028-04", ["2028-04"], 1.5625),  # the halving month itself is halved
        ("2029-01", ["2028-04"], 1.5625),
        ("2033-01", ["2032-04", "2028-04"], 0.78125),  # order does not matter
        ("2027-01", [], 3.125),
    ],
)
def test_halving_before_start_halves_the_subsidy(
    start: str, halvings: list[str], subsidy: float
) -> None:
    assert subsidy_btc_at(Market(halving_months=tuple(halvings)), start) == subsidy
    market = {"btc_price_usd": 100_000, "hashrate_eh": 1000, "subsidy_btc": 3.125,
              "halving_months": halvings, "fee_share": 0.01}  # fmt: skip
    econ = unit_economics(scenario(start=start, market=market))
    assert econ.subsidy_btc == subsidy
    # fees scale with the subsidy: 144 x 1.01 x subsidy x 100,000 / 1,000,000
    assert econ.hashprice_usd_ph_day == pytest.approx(14.4 * 1.01 * subsidy)


def test_power_price_without_mining_load_or_ppa() -> None:
    seasonality = [1.0] * 11 + [1.5]
    base = {"name": "s", "market": "grid", "interconnect_mw": 100}
    pm = {"price_usd_mwh": 40, "seasonality": seasonality}
    no_load_ppa = {**base, "mining": {"mw": 0}, "power": {"ppa_mw": 50, "ppa_price_usd_mwh": 25}}
    no_load_no_ppa = {**base, "mining": {"mw": 0}}
    big_ppa = {**base, "mining": {"mw": 40}, "power": {"ppa_mw": 90, "ppa_price_usd_mwh": 25}}
    price = {
        name: unit_economics(scenario(start="2027-12", power_market=pm, site=site))
        .sites[0]
        .power_price_usd_mwh
        for name, site in [("ppa", no_load_ppa), ("market", no_load_no_ppa), ("big", big_ppa)]
    }
    assert price == pytest.approx({"ppa": 25.0, "market": 60.0, "big": 25.0})  # Dec: 40 x 1.5


def test_ai_is_none_without_ai_section_or_eligible_contract() -> None:
    site = {"name": "s", "market": "grid", "interconnect_mw": 100, "mining": {"mw": 80}}
    with_ai = {**site, "ai": {"max_it_mw": 50}}
    elsewhere = [{"name": "c", "price_usd_kw_month": 130, "eligible_sites": ["s"]},
                 {"name": "d", "price_usd_kw_month": 150}]  # fmt: skip
    assert unit_economics(scenario(site=site, contracts=elsewhere)).sites[0].ai is None
    assert unit_economics(scenario(site=with_ai)).sites[0].ai is None  # no contracts at all
    first = unit_economics(scenario(site=with_ai, contracts=elsewhere)).sites[0].ai
    assert first is not None and first.contract == "c"  # the first eligible one
    no_it = {**site, "ai": {"max_it_mw": 0}}
    assert unit_economics(scenario(site=no_it, contracts=elsewhere)).sites[0].ai is None


def test_unit_economics_is_pure_and_frozen() -> None:
    s = scenario()
    first = unit_economics(s)
    assert unit_economics(s) == first
    with pytest.raises(AttributeError):
        first.hashprice_usd_ph_day = 0.0  # type: ignore[misc]


# ------------------------------------------------------------- the JSON contract

TOP_KEYS = {"scenario", "month", "hashprice_usd_ph_day", "sites"}
SITE_KEYS = {"name", "mining", "ai"}
MINING_KEYS = {"ph_per_mw", "revenue_usd_mw_day", "power_cost_usd_mw_day", "opex_usd_mw_day",
               "margin_usd_mw_day"}  # fmt: skip
AI_KEYS = {"revenue_usd_mw_day", "opex_usd_mw_day", "margin_usd_mw_day"}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_economics_json_has_the_cli_md_keys(path: Path, run_cli: Callable[..., Run]) -> None:
    result = run_cli("economics", str(path), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert TOP_KEYS <= payload.keys()
    assert payload["month"] == "2027-01"
    assert isinstance(payload["hashprice_usd_ph_day"], float)
    assert payload["sites"]
    for site in payload["sites"]:
        assert SITE_KEYS <= site.keys()
        assert MINING_KEYS <= site["mining"].keys()
        assert all(isinstance(site["mining"][k], float) for k in MINING_KEYS)
        if site["ai"] is not None:
            assert AI_KEYS <= site["ai"].keys()
            assert "contract" in site["ai"]
    assert any(site["ai"] is None for site in payload["sites"])  # mining-only sites exist


def test_economics_table_names_every_site(run_cli: Callable[..., Run]) -> None:
    texas = next(p for p in SCENARIOS if p.name == "texas.yaml")
    result = run_cli("economics", str(texas))
    assert result.exit_code == 0, result.output
    assert "hashprice $34.09" in result.stdout  # 144 x 3.15625 x 90,000 / 1,200,000
    for name in ("odessa-campus", "garden-city", "corsicana-north", "hyperscaler-a"):
        assert name in result.stdout


def test_mining_and_ai_in_both_units():
    """One MW of critical IT takes AI PUE MW of grid power: the per-MW figures convert by it."""
    econ = unit_economics(load_scenario(REPO / "scenarios" / "texas.yaml"))
    for site in econ.sites:
        if site.ai is None:
            assert site.mining_margin_usd_it_mw_day is None
            continue
        assert site.mining_margin_usd_it_mw_day == pytest.approx(
            site.mining.margin_usd_mw_day * site.ai_pue
        )
        assert site.ai_margin_usd_grid_mw_day == pytest.approx(
            site.ai.margin_usd_mw_day / site.ai_pue
        )


def test_market_fan_against_the_lognormal_closed_form():
    """ln P moves by (mu - s^2/2)/12 a month plus noise, so at month t the median is
    P0 exp((mu - s^2/2) t/12) and the mean P0 exp(mu t/12); 4 standard errors of the
    5,000-draw estimates (the median's from the normal density, the mean's from the
    lognormal variance)."""
    scenario = load_scenario(REPO / "scenarios" / "texas.yaml")
    fan = market_fan(scenario, scenarios=5_000)
    m = scenario.market
    assert fan.years[0] == 2027 and fan.months[0] == "2027-12"
    t = 11  # December of the first year
    s2 = m.btc_volatility**2 * t / 12
    assert m.btc_drift is None  # texas leaves it out: mu = s^2/2, a flat median
    mu = m.btc_volatility**2 / 2
    median = m.btc_price_usd * math.exp((mu - m.btc_volatility**2 / 2) * t / 12)
    mean = m.btc_price_usd * math.exp(mu * t / 12)
    se_log_median = math.sqrt(math.pi / 2) * math.sqrt(s2) / math.sqrt(5_000)
    se_mean = mean * math.sqrt(math.expm1(s2)) / math.sqrt(5_000)
    btc = fan.paths["btc_usd"]
    assert abs(math.log(btc["p50"][0] / median)) < 4 * se_log_median
    assert abs(btc["mean"][0] - mean) < 4 * se_mean
    for name, st in fan.paths.items():
        assert all(
            lo <= mid <= hi for lo, mid, hi in zip(st["p10"], st["p50"], st["p90"], strict=True)
        ), name
    assert btc["p50"][0] < btc["mean"][0] < btc["mean"][-1]  # the drift is a mean
    last = 12 * scenario.horizon_years - 1  # the median stays flat, to 4 standard errors
    se_last = math.sqrt(math.pi / 2) * m.btc_volatility * math.sqrt(last / 12) / math.sqrt(5_000)
    assert abs(math.log(btc["p50"][-1] / m.btc_price_usd)) < 4 * se_last
