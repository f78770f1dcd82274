"""Forward curves and the break-even network hashrate (kernels/forward.py, market paths).

The forward is hit: the median (or the mean) of many paths equals it month by month
within a few standard errors of that statistic; with every volatility at zero the path
is the forward itself. The break-even rule has a closed-form steady state.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from siteopt.app.params import kernel_inputs
from siteopt.kernels.forward import (
    breakeven_hashprice,
    hashrate_log_variance,
    monthly_curve,
)
from siteopt.kernels.market import horizon_calendar, market_paths
from siteopt.kernels.power import power_paths

from .helpers import one_site

N = 20_000
Z = 4.0  # standard errors allowed
MONTHS = (1, 7, 30, 59)

FORWARD = {
    "market.forward": {
        "btc_price_usd": {"2027": 95_000.0, "2028-06": 140_000.0, "2031": 110_000.0},
        "hashrate_eh": {"2027": 1_150.0, "2029": 1_900.0, "2031-12": 2_300.0},
    },
    "power_markets.grid.forward_usd_mwh": {"2027": 40.0, "2030": 52.0},
}
RANDOM = {
    "market.btc_volatility": 0.6,
    "market.hashrate_volatility": 0.15,
    "market.hashrate_elasticity": 0.5,
    "power_markets.grid.price_volatility": 0.3,
    "simulation.scenarios": N,
}


def scenario(forward_is: str, **more):
    return kernel_inputs(
        one_site(horizon_years=5, **FORWARD, **RANDOM, **{"market.forward_is": forward_is}, **more)
    )


def test_monthly_curve_is_log_linear_between_points_and_flat_outside():
    curve = monthly_curve(((3, 100.0), (15, 400.0)), 20)
    assert curve[0] == pytest.approx(100.0) and curve[3] == pytest.approx(100.0)
    assert curve[9] == pytest.approx(200.0, rel=1e-12)  # halfway in logs
    assert curve[15] == pytest.approx(400.0) and curve[19] == pytest.approx(400.0)
    linear = monthly_curve(((0, 0.0), (10, 0.02)), 11)  # a 0 point: linear
    assert linear[5] == pytest.approx(0.01)


def test_forward_year_keys_are_januaries():
    k = scenario("median")
    assert k.market.btc_forward == ((0, 95_000.0), (17, 140_000.0), (48, 110_000.0))
    assert k.market.btc_price_usd == 95_000.0  # the forward's first month is the start
    assert k.market.hashrate_eh == 1_150.0


@pytest.mark.parametrize("forward_is", ["median", "mean"])
def test_the_paths_hit_the_forward(forward_is):
    k = scenario(forward_is)
    paths = market_paths(k, np.arange(N, dtype=np.int64), xp=np)
    months = k.months
    want_btc = monthly_curve(k.market.btc_forward, months)
    want_h = monthly_curve(k.market.hashrate_forward, months)
    var_h = hashrate_log_variance(k)
    sig_b = k.market.btc_volatility / math.sqrt(12.0)
    for t in MONTHS:
        for got, want, log_var in (
            (paths.btc_usd[:, t], want_btc[t], sig_b**2 * t),
            (paths.hashrate_eh[:, t], want_h[t], var_h[t]),
        ):
            if forward_is == "median":
                # the sample median of a lognormal: ln-SE sqrt(pi/2) s / sqrt(N)
                se = math.sqrt(math.pi / 2.0 * log_var / N)
                assert abs(math.log(np.median(got) / want)) < Z * se + 1e-12, (t, want)
            else:
                se = got.std() / math.sqrt(N)
                assert abs(got.mean() - want) < Z * se + 1e-9 * want, (t, want)


@pytest.mark.parametrize("forward_is", ["median", "mean"])
def test_power_paths_hit_the_power_forward(forward_is):
    k = scenario(forward_is)
    cal = horizon_calendar(k)
    level = power_paths(k, 0, cal, np.arange(N, dtype=np.int64), xp=np).level
    want = monthly_curve(k.power_markets["grid"].forward_usd_mwh, k.months)
    sig = k.power_markets["grid"].price_volatility
    for t in MONTHS:
        got = level[:, t]
        if forward_is == "median":
            se = math.sqrt(math.pi / 2.0) * sig / math.sqrt(N)
            assert abs(math.log(np.median(got) / want[t])) < Z * se
        else:
            assert abs(got.mean() - want[t]) < Z * got.std() / math.sqrt(N)


def test_with_no_noise_the_path_is_the_forward():
    k = kernel_inputs(one_site(horizon_years=5, **FORWARD, **{"simulation.scenarios": 3}))
    paths = market_paths(k, np.arange(3, dtype=np.int64), xp=np)
    want_btc = monthly_curve(k.market.btc_forward, k.months)
    want_h = monthly_curve(k.market.hashrate_forward, k.months)
    np.testing.assert_allclose(paths.btc_usd, np.broadcast_to(want_btc, (3, k.months)), rtol=1e-12)
    np.testing.assert_allclose(
        paths.hashrate_eh, np.broadcast_to(want_h, (3, k.months)), rtol=1e-12
    )


def test_revision_2_rule_is_the_start_hashprice_as_break_even():
    """breakeven_efficiency_j_th null and no efficiency gain: g = g0 + e ln(hp_lag / hp0)."""
    k = kernel_inputs(one_site(horizon_years=3, **{**RANDOM, "simulation.scenarios": 64}))
    m = k.market
    p = market_paths(k, np.arange(64, dtype=np.int64), xp=np)
    hp0, lag = p.hashprice[0, 0], m.hashrate_lag_months
    z2 = (np.log(p.hashrate_eh[:, 1:]) - np.log(p.hashrate_eh[:, :-1])) * 12.0
    for t in range(k.months - 1):
        lagged = p.hashprice[:, t - lag] if t >= lag else hp0
        g = m.hashrate_growth + m.hashrate_elasticity * np.log(lagged / hp0)
        shock = (z2[:, t] - g) / 12.0 / (m.hashrate_volatility / math.sqrt(12.0))
        assert abs(shock.mean()) < 5.0 / math.sqrt(64) and 0.5 < shock.std() < 1.5


@pytest.mark.parametrize("to_ai", [0.0, 0.03])
def test_the_network_settles_where_growth_matches_the_falling_break_even(to_ai):
    """No noise, no halvings, flat BTC: H grows at the break-even's pace a - r, which
    takes elasticity x ln(hashprice / break-even) = a - r, a = -ln(1 - gain),
    r = -ln(1 - to_ai)."""
    gain, elasticity = 0.12, 0.6
    s = one_site(
        horizon_years=40,
        **{
            "market.halving_months": [],
            "market.btc_drift": 0.0,
            "market.hashrate_growth": 0.0,
            "market.hashrate_elasticity": elasticity,
            "market.hashrate_lag_months": 3,
            "market.breakeven_efficiency_j_th": 25.0,
            "market.breakeven_power_usd_mwh": 40.0,
            "market.fleet_efficiency_gain": gain,
            "market.hashrate_to_ai_per_year": to_ai,
            "simulation.scenarios": 1,
        },
    )
    k = kernel_inputs(s)
    p = market_paths(k, np.arange(1, dtype=np.int64), xp=np)
    t = k.months - 1
    star = breakeven_hashprice(k, p.hashprice[0, 0], k.months)
    lag = k.market.hashrate_lag_months
    a, r = -math.log(1.0 - gain), -math.log(1.0 - to_ai)
    # growth at month t answers the hashprice of month t - lag against its break-even
    gap = math.log(p.hashprice[0, t - lag] / star[t - lag])
    assert elasticity * gap == pytest.approx(a - r, abs=1e-4)
    assert star[0] == pytest.approx(0.024 * 25.0 * 40.0)


def test_break_even_hashprice_falls_with_efficiency_and_rises_with_power_to_ai():
    k = kernel_inputs(
        one_site(
            **{
                "market.breakeven_efficiency_j_th": 28.2,
                "market.breakeven_power_usd_mwh": 45.0,
                "market.fleet_efficiency_gain": 0.15,
                "market.hashrate_to_ai_per_year": 0.01,
            }
        )
    )
    star = breakeven_hashprice(k, 1.0, 25)
    assert star[0] == pytest.approx(0.024 * 28.2 * 45.0)  # 30.46 USD/PH/day
    assert star[12] == pytest.approx(star[0] * 0.85 / 0.99)
    assert star[24] == pytest.approx(star[0] * (0.85 / 0.99) ** 2)
