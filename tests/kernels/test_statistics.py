"""Sampling statistics of the random inputs, and the curtailment / PPA arithmetic.

Tolerances come from standard errors, not from a lucky run: a sample mean of N draws
is compared with its expectation within Z = 3 standard errors, SE = sample std / sqrt(N)
(binomial SE sqrt(q (1 - q) / N) for shares). The seed is fixed, so each check is
deterministic; Z = 3 is what a fresh seed would pass with probability ~99.7 %.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from siteopt.app.params import kernel_inputs
from siteopt.kernels.hosting import NEVER, exit_months, site_draws
from siteopt.kernels.market import MarketPaths, horizon_calendar, market_paths, subsidy_schedule
from siteopt.kernels.mining import fleet, mining_streams, ppa_settlement, value_per_mwh
from siteopt.kernels.power import PowerPaths, curtailment, duration_curve, power_paths

from .helpers import one_site, random_one_site_ai

N = 20_000
Z = 3.0


def within(sample: np.ndarray, expected: float, z: float = Z) -> tuple[bool, str]:
    se = sample.std(ddof=1) / math.sqrt(sample.size)
    diff = float(sample.mean()) - expected
    return abs(diff) <= z * se, f"mean {sample.mean():.6g} vs {expected:.6g}: {diff / se:+.2f} SE"


@pytest.fixture(scope="module")
def market_scenario():
    return one_site(
        horizon_years=6,
        **{
            "simulation.seed": 20261121,
            "market.btc_drift": 0.05,
            "market.btc_volatility": 0.55,
            "market.hashrate_growth": 0.2,
            "market.hashrate_volatility": 0.12,
            "market.hashrate_price_correlation": 0.5,
            "market.fee_share": 0.02,
            "market.fee_share_volatility": 0.5,
        },
    )


@pytest.fixture(scope="module")
def paths(market_scenario):
    return market_paths(kernel_inputs(market_scenario), np.arange(N, dtype=np.int64), xp=np)


@pytest.mark.parametrize("month", [1, 12, 36, 60])
def test_btc_price_mean_grows_at_the_drift(paths, market_scenario, month):
    """E[P_t] = P0 exp(mu t / 12): the -s^2/2 term makes the lognormal mean-preserving.
    (At t = 60, ln P has sd 1.23, so the sample std is itself noisy; t <= 60 keeps
    the SE estimate trustworthy at N = 20,000.)"""
    m = market_scenario.market
    ok, msg = within(paths.btc_usd[:, month], m.btc_price_usd * math.exp(m.btc_drift * month / 12))
    assert ok, msg


@pytest.mark.parametrize("month", [12, 60])
def test_log_hashrate_mean_grows_at_g0(paths, market_scenario, month):
    """Elasticity 0: E[ln H_t] = ln H0 + g0 t / 12 (normal, so the 3 SE test is exact)."""
    m = market_scenario.market
    ok, msg = within(
        np.log(paths.hashrate_eh[:, month]),
        math.log(m.hashrate_eh) + m.hashrate_growth * month / 12,
    )
    assert ok, msg


def test_price_and_hashrate_shocks_are_correlated_rho(paths, market_scenario):
    """corr(d ln P, d ln H) = rho; SE of a sample correlation ~ (1 - rho^2) / sqrt(N)."""
    rho = market_scenario.market.hashrate_price_correlation
    d_p = np.diff(np.log(paths.btc_usd[:, :13]), axis=1).ravel()
    d_h = np.diff(np.log(paths.hashrate_eh[:, :13]), axis=1).ravel()
    r = np.corrcoef(d_p, d_h)[0, 1]
    assert abs(r - rho) <= Z * (1 - rho**2) / math.sqrt(d_p.size)


def test_fee_share_is_lognormal_around_its_mean(paths, market_scenario):
    subsidy = subsidy_schedule(kernel_inputs(market_scenario))
    fee_share = paths.reward_btc / subsidy[None, :] - 1.0
    ok, msg = within(fee_share[:, 5], market_scenario.market.fee_share)
    assert ok, msg
    # ln fee share has sd fee_share_volatility: SE of a sample sd of normals ~ s / sqrt(2N)
    sig = market_scenario.market.fee_share_volatility
    assert abs(np.log(fee_share[:, 5]).std(ddof=1) - sig) <= Z * sig / math.sqrt(2 * N)


def test_power_level_mean_is_the_market_mean():
    s = random_one_site_ai(**{"simulation.scenarios": N})
    cal = horizon_calendar(kernel_inputs(s))
    pp = power_paths(kernel_inputs(s), 0, cal, np.arange(N, dtype=np.int64), xp=np)
    ok, msg = within(pp.level[:, 7], s.power_markets["grid"].price_usd_mwh)
    assert ok, msg
    # 4CP avoidance: one Bernoulli(fourcp_avoidance) per calendar year, same within a year
    q = s.power_markets["grid"].fourcp_avoidance
    year0 = pp.fourcp_avoided[:, :12]
    assert np.all(year0 == year0[:, :1])
    assert abs(year0[:, 0].mean() - q) <= Z * math.sqrt(q * (1 - q) / N)


# --------------------------------------------------------------------------- AI risks


@pytest.mark.parametrize("p", [0.06, 0.3])
def test_tenant_exit_share_by_year(p):
    """Share of scenarios whose tenant has exited before relative month 12k is
    1 - (1 - p)^k; binomial SE sqrt(q (1 - q) / N)."""
    s = random_one_site_ai(**{"contracts.0.annual_default_prob": p})
    e = exit_months(kernel_inputs(s), 0, 0, np.arange(N, dtype=np.int64), xp=np)
    assert e.dtype == np.int64
    for k in range(1, 11):
        q = 1 - (1 - p) ** k
        share = float(np.mean(e < 12 * k))
        assert abs(share - q) <= Z * math.sqrt(q * (1 - q) / N), (k, share, q)


def test_tenant_exit_extremes():
    idx = np.arange(100, dtype=np.int64)
    never = exit_months(
        kernel_inputs(random_one_site_ai(**{"contracts.0.annual_default_prob": 0.0})),
        0, 0, idx, xp=np,
    )  # fmt: skip
    at_once = exit_months(
        kernel_inputs(random_one_site_ai(**{"contracts.0.annual_default_prob": 1.0})),
        0, 0, idx, xp=np,
    )  # fmt: skip
    assert np.all(never == NEVER) and np.all(at_once == 0)


@pytest.mark.parametrize("mean", [3.0, 8.0])
def test_delay_mean(mean):
    """Delay = an exponential of mean m rounded to whole months. Rounding to the nearest
    month has mean sum_{k>=1} P(X >= k - 1/2) = 1 / (2 sinh(1 / (2m))), within 0.5 % of m
    for m >= 3 (2.986 at m = 3) - below the 3 SE band (SE ~ m / sqrt(N) = 0.021 at m = 3)."""
    s = random_one_site_ai(**{"sites.0.ai.delay_mean_months": mean})
    d = site_draws(kernel_inputs(s), 0, np.arange(N, dtype=np.int64), xp=np).delay_months
    assert d.dtype == np.int64 and d.min() >= 0
    ok, msg = within(d.astype(np.float64), 1.0 / (2.0 * math.sinh(1.0 / (2.0 * mean))))
    assert ok, msg
    ok, msg = within(d.astype(np.float64), mean)
    assert ok, msg
    q0 = 1 - math.exp(-0.5 / mean)  # P(delay = 0)
    assert abs(np.mean(d == 0) - q0) <= Z * math.sqrt(q0 * (1 - q0) / N)


def test_overrun_factor_has_mean_one():
    s = random_one_site_ai(**{"sites.0.ai.capex_overrun_volatility": 0.25})
    o = site_draws(kernel_inputs(s), 0, np.arange(N, dtype=np.int64), xp=np).overrun
    ok, msg = within(o, 1.0)
    assert ok, msg
    assert abs(np.log(o).std(ddof=1) - 0.25) <= Z * 0.25 / math.sqrt(2 * N)


# --------------------------------------------------------------------------- curtailment

# An explicit curve, deliberately unsorted: (share of hours, multiple of the level).
CURVE = [[0.30, 0.5], [0.05, 6.0], [0.40, 0.9], [0.20, 1.3], [0.05, 2.4]]


def _curtail_scenario():
    """The kernels' view of a one-site scenario with an explicit curve and a PPA."""
    return kernel_inputs(
        one_site(
            **{
                "sites.0.curtailable": True,
                "sites.0.power": {"ppa_mw": 70.0, "ppa_price_usd_mwh": 27.0},
                "power_markets.grid.duration_curve": CURVE,
                "power_markets.grid.transmission_4cp_usd_kw_year": 60.0,
            }
        )
    )


def _paper_bins(level: float) -> list[tuple[float, float]]:
    """(weight, price) per bin, multiples normalised to a weighted mean of 1."""
    mean = sum(w * m for w, m in CURVE)
    return [(w, m / mean * level) for w, m in CURVE]


def test_curtailment_runs_bins_priced_below_the_value():
    s = _curtail_scenario()
    curve = duration_curve(s.power_markets["grid"])
    assert np.all(
        np.diff(curve.multiples) >= 0
    ) and curve.weights @ curve.multiples == pytest.approx(1.0)
    # the paper curve and the kernel's normalised one agree to rounding; "exactly at a
    # price" is the kernel's own bin price, and a power-of-two level keeps value / level exact
    level = 32.0
    for (w, p), wk, mk in zip(
        sorted(_paper_bins(level), key=lambda b: b[1]), curve.weights, curve.multiples, strict=True
    ):
        assert (wk, mk * level) == pytest.approx((w, p), rel=1e-14)
    bins = [
        (float(w), float(m) * level) for w, m in zip(curve.weights, curve.multiples, strict=True)
    ]
    prices = sorted(p for _, p in bins)
    # values below every price, between prices, exactly at a price, above every price
    values = [1.0, prices[0], prices[0] + 1e-6, 0.5 * (prices[1] + prices[2]), prices[3] + 3.0, 1e4]
    v = np.array(values)
    run, price_share = curtailment(v, np.full_like(v, level), curve, xp=np)
    for j, value in enumerate(values):
        running = [(w, p) for w, p in bins if value > p]  # runs only where value exceeds the price
        assert run[j] == pytest.approx(sum(w for w, _ in running), abs=1e-15)
        assert level * price_share[j] == pytest.approx(
            sum(w * p for w, p in running), rel=1e-12, abs=1e-12
        )
    # a zero price level: every bin costs nothing, so everything runs
    run0, share0 = curtailment(np.array([5.0]), np.array([0.0]), curve, xp=np)
    assert run0[0] == pytest.approx(1.0)


def test_mining_streams_pay_only_for_running_bins():
    s = _curtail_scenario()
    site, pm = s.sites[0], s.power_markets["grid"]
    cal = horizon_calendar(s)
    fl = fleet(site, cal.months)
    n, t_end = 3, cal.months
    rng = np.random.default_rng(1)
    hashprice = rng.uniform(15.0, 80.0, size=(n, t_end))
    level = rng.uniform(10.0, 90.0, size=(n, t_end))
    avoided = (rng.uniform(size=(n, t_end)) < 0.5).astype(np.float64)
    market = MarketPaths(np.ones((n, t_end)), np.ones((n, t_end)), np.ones((n, t_end)), hashprice)
    power = PowerPaths(level, avoided, duration_curve(pm))
    ms = mining_streams(site, fl, market, power, cal, pm.transmission_4cp_usd_kw_year, 0.02, xp=np)
    up = site.mining.uptime
    for i in range(n):
        for t in (0, 17, t_end - 1):
            value = hashprice[i, t] / 24.0 * fl.ph_per_mw[t] * (1 - 0.02)
            running = [(w, p) for w, p in _paper_bins(level[i, t]) if value > p]
            hours = cal.hours[t]
            alive = 0.95 ** ((t - 24 * (t // 24)) / 12)  # 5% of machines lost a year
            assert fl.alive[t] == pytest.approx(alive, rel=1e-14)
            assert ms.power[i, t] == pytest.approx(
                sum(w * hours * up * p * alive for w, p in running), rel=1e-12
            )
            assert ms.revenue[i, t] == pytest.approx(
                sum(w * hours * up * value * alive for w, _ in running), rel=1e-12
            )
            fourcp = 60.0 * 1000 / 12 * (1 - avoided[i, t]) * alive
            assert ms.fourcp[i, t] == pytest.approx(fourcp)
            assert ms.margin[i, t] == pytest.approx(
                ms.revenue[i, t] - ms.power[i, t] - site.mining.opex_usd_mw_month - fourcp,
                rel=1e-12,
            )
    # a non-curtailable site runs (and pays) every bin, and always pays 4CP
    firm = dataclasses.replace(s, sites=(dataclasses.replace(site, curtailable=False),))
    ms_firm = mining_streams(firm.sites[0], fl, market, power, cal, 60.0, 0.02, xp=np)
    alive = fl.alive[None, :]
    np.testing.assert_allclose(ms_firm.power, cal.hours[None, :] * up * level * alive, rtol=1e-12)
    np.testing.assert_allclose(ms_firm.fourcp, np.broadcast_to(5000.0 * alive, (n, t_end)))
    np.testing.assert_allclose(ms_firm.run_share, 1.0)
    np.testing.assert_allclose(
        value_per_mwh(hashprice, fl.ph_per_mw[None, :], 0.02) * up * cal.hours[None, :] * alive,
        ms_firm.revenue,
    )


def test_ppa_settlement_sells_back_unused_ppa_power():
    """Site energy bill on paper: take-or-pay ppa_mw at the PPA price, in every bin the
    unused PPA power sold at the bin price and load above the PPA bought at it. That
    equals (mining MW x per-MW market energy) minus mining.ppa_settlement."""
    s = _curtail_scenario()
    site, pm = s.sites[0], s.power_markets["grid"]
    cal = horizon_calendar(s)
    fl = fleet(site, cal.months)
    n, t_end = 2, cal.months
    rng = np.random.default_rng(2)
    hashprice = rng.uniform(15.0, 80.0, size=(n, t_end))
    level = rng.uniform(10.0, 90.0, size=(n, t_end))
    market = MarketPaths(np.ones((n, t_end)), np.ones((n, t_end)), np.ones((n, t_end)), hashprice)
    power = PowerPaths(level, np.zeros((n, t_end)), duration_curve(pm))
    ms = mining_streams(site, fl, market, power, cal, 0.0, 0.02, xp=np)
    settle = ppa_settlement(site, power, cal, xp=np)
    mw, ppa_mw, ppa_price, up = site.mining.mw, 70.0, 27.0, site.mining.uptime
    curtailed_some = 0
    for i in range(n):
        for t in range(0, t_end, 7):
            value = hashprice[i, t] / 24.0 * fl.ph_per_mw[t] * 0.98
            hours = cal.hours[t]
            bill = ppa_mw * hours * ppa_price
            for w, p in _paper_bins(level[i, t]):
                load = mw * up * fl.alive[t] if value > p else 0.0  # MW drawn in this bin
                bill += (load - ppa_mw) * w * hours * p  # < 0: unused PPA power sold back
                curtailed_some += load == 0.0
            assert mw * ms.power[i, t] - settle[i, t] == pytest.approx(bill, rel=1e-10)
    assert curtailed_some > 0  # the check covered bins where the whole PPA is sold back
    # no PPA: no settlement
    bare = dataclasses.replace(site, power=dataclasses.replace(site.power, ppa_mw=0.0))
    assert np.all(ppa_settlement(bare, power, cal, xp=np) == 0.0)


def test_free_idling_never_draws_below_zero():
    """r3: an idle month pays no 4CP, so a miner that saves all its opex by idling, with no
    SG&A, no property tax and no refresh to pay, never has a month below 0 (before its PPA
    settlement, which is the power contract's, not the mining's)."""
    s = kernel_inputs(
        one_site(
            **{
                "sites.0.curtailable": True,
                "sites.0.mining.opex_avoidable_share": 1.0,
                "sites.0.mining.sga_usd_mw_month": 0.0,
                "sites.0.mining.refresh": "never",
                "power_markets.grid.duration_curve": CURVE,
                "power_markets.grid.transmission_4cp_usd_kw_year": 60.0,
                "power_markets.grid.fourcp_avoidance": 0.0,
            }
        )
    )
    site, pm = s.sites[0], s.power_markets["grid"]
    cal = horizon_calendar(s)
    fl = fleet(site, cal.months)
    rng = np.random.default_rng(3)
    n = 50
    hashprice = rng.uniform(2.0, 80.0, size=(n, cal.months))
    level = rng.uniform(10.0, 140.0, size=(n, cal.months))
    avoided = np.zeros((n, cal.months))
    market = MarketPaths(*(np.ones((n, cal.months)),) * 3, hashprice)
    power = PowerPaths(level, avoided, duration_curve(pm))
    ms = mining_streams(site, fl, market, power, cal, 60.0, 0.02, xp=np)
    assert ms.margin.min() >= 0.0
    idle = ms.run_share == 0.0
    assert idle.any() and (ms.fourcp[idle] == 0.0).all()
    alive = np.broadcast_to(fl.alive, idle.shape)  # the machines still working pay 4CP
    assert ms.fourcp[~idle] == pytest.approx(60.0 * 1000.0 / 12.0 * alive[~idle])
