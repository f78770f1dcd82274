"""The AI market and the common factor (issue 26): the rent index, contracts that follow it
or lapse, AI capex inflation, shocks that move together, and the value of waiting for the
AI market that the staged solve finds in sample and on fresh draws."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from siteopt import api
from siteopt.app.params import kernel_inputs
from siteopt.app.valuation import value_options
from siteopt.kernels.factor import factor_paths
from siteopt.kernels.hosting import build_cost_index, exit_months, site_draws
from siteopt.kernels.market import market_paths
from siteopt.kernels.sites import site_options
from siteopt.model.load import load_scenario

from ..kernels.helpers import random_one_site_ai
from .support import REPO

NO_FACTOR = {"btc": 0.0, "ai_rent": 0.0, "tenant_exit": 0.0, "capex_overrun": 0.0}
UNLOADED = {f"market.factor.{k}": v for k, v in NO_FACTOR.items()}


def texas(**changes):
    return api.override(load_scenario(REPO / "scenarios" / "texas.yaml"), changes)


def test_zero_loadings_leave_every_draw_as_it_was():
    """Loadings 0: BTC, hashrate and fees are the draws made without the factor, bit for
    bit, however the AI rent index moves; exits and overruns are the raw uniforms'."""
    moving = kernel_inputs(
        texas(**UNLOADED, **{"simulation.scenarios": 64, "simulation.risk_sample": 64})
    )
    still = dataclasses.replace(
        moving,
        market=dataclasses.replace(
            moving.market, ai=dataclasses.replace(moving.market.ai, rent_volatility=0.0)
        ),  # fmt: skip
    )
    idx = np.arange(64, dtype=np.int64)
    a, b = market_paths(moving, idx, xp=np), market_paths(still, idx, xp=np)
    for name in ("btc_usd", "hashrate_eh", "reward_btc", "hashprice"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.ai_rent_index, b.ai_rent_index)
    draws = site_draws(moving, 0, idx, xp=np)
    assert draws.factor_level is None  # nothing loads on it: not even drawn
    np.testing.assert_array_equal(
        exit_months(moving, 0, 1, idx, xp=np, draws=draws), exit_months(moving, 0, 1, idx, xp=np)
    )


def test_the_factor_is_a_standard_normal_path_summing_to_its_level():
    """F[t] = G / sqrt(T) + e[t] - mean(e): iid standard normals whose sum is G sqrt(T)."""
    idx = np.arange(20_000, dtype=np.int64)
    f, own = factor_paths(7, idx, 120, 120, xp=np)
    assert abs(f.mean()) < 4 / np.sqrt(f.size) and abs(f.std() - 1) < 0.01
    lag1 = np.corrcoef(f[:, :-1].ravel(), f[:, 1:].ravel())[0, 1]
    assert abs(lag1) < 4 / np.sqrt(f[:, 1:].size)
    assert abs(np.corrcoef(f.ravel(), own.ravel())[0, 1]) < 4 / np.sqrt(f.size)
    short, _ = factor_paths(7, idx[:5], 24, 120, xp=np)  # a shorter draw: the same months
    np.testing.assert_array_equal(short, f[:5, :24])


def test_loadings_correlate_btc_with_the_rent_index_and_cluster_exits():
    s = kernel_inputs(texas(**{"simulation.scenarios": 4000, "market.factor.tenant_exit": 0.8}))
    m = s.market
    idx = np.arange(4000, dtype=np.int64)
    p = market_paths(s, idx, xp=np)
    btc = np.diff(np.log(p.btc_usd), axis=1).ravel()
    rent = np.diff(np.log(p.ai_rent_index), axis=1).ravel()
    want = m.factor.btc * m.factor.ai_rent  # both load on the same monthly factor
    se = (1 - want**2) / np.sqrt(btc.size)
    assert abs(np.corrcoef(btc, rent)[0, 1] - want) < 5 * se

    def early(portfolio, site):  # the neocloud tenant of a site leaves within five years
        draws = site_draws(portfolio, site, idx, xp=np)
        return exit_months(portfolio, site, 1, idx, xp=np, draws=draws) < 60

    independent = dataclasses.replace(
        s, market=dataclasses.replace(m, factor=dataclasses.replace(m.factor, tenant_exit=0.0))
    )
    together = np.corrcoef(early(s, 0), early(s, 1))[0, 1]
    apart = np.corrcoef(early(independent, 0), early(independent, 1))[0, 1]
    assert abs(apart) < 4 / np.sqrt(4000)  # independent tenants
    assert together > 0.1 + 4 / np.sqrt(4000)  # exits cluster


def test_shocks_that_move_together_worsen_a_mixed_plans_cvar():
    """The same plan (AI at two sites, the rest hashing), the same seed: with the default
    loadings its CVaR is lower than with independent draws."""
    plan = pd.DataFrame(
        {
            "site": ["abilene-legacy", "pecos-1"],
            "ai_it_mw": [100.0, 60.0],
            "build_year": [2027, 2027],
            "contract": ["neocloud-b", "neocloud-b"],
        }
    )
    together = api.evaluate(texas(), plan, scenarios=4000)
    apart = api.evaluate(texas(**UNLOADED), plan, scenarios=4000)
    assert together.summary["cvar_usd"] < apart.summary["cvar_usd"]


def test_a_contract_following_a_still_index_is_todays_contract():
    """price_follows_index with the index at 1 throughout (no drift, no volatility): every
    option of the contract is valued as the contract as offered today."""
    base = random_one_site_ai(**{"market.ai": {"rent_drift": 0.0, "rent_volatility": 0.0}})
    follows = api.override(base, {"contracts.lease.price_follows_index": True})
    a = value_options(base, backend="numpy").options.table
    b = value_options(follows, backend="numpy").options.table
    np.testing.assert_allclose(b["expected_npv_usd"], a["expected_npv_usd"], rtol=1e-12)


def test_a_later_build_signs_at_the_moved_index():
    """With a rising index, a build of the later year signs at a higher rent: its E[NPV]
    rises when the contract follows the index; the first year's (signed at month 0, index
    1) is unchanged."""
    base = random_one_site_ai(
        **{
            "market.ai": {"rent_drift": 0.2, "rent_volatility": 0.0},
            "build.decision_years": [2027, 2029],
        }
    )
    follows = api.override(base, {"contracts.lease.price_follows_index": True})
    a = value_options(base, backend="numpy").options.table.set_index("option")
    b = value_options(follows, backend="numpy").options.table.set_index("option")
    first = [o for o in a.index if o.endswith("2027-lease")]
    later = [o for o in a.index if o.endswith("2029-lease")]
    np.testing.assert_allclose(b.loc[first, "expected_npv_usd"], a.loc[first, "expected_npv_usd"],
                               rtol=1e-12)  # fmt: skip
    assert (b.loc[later, "expected_npv_usd"] > a.loc[later, "expected_npv_usd"] + 1e5).all()


def test_available_until_removes_the_later_options():
    s = random_one_site_ai(**{"build.decision_years": [2027, 2028, 2029]})
    lapses = api.override(s, {"contracts.lease.available_until": "2028-01"})
    labels = [o.label for o in site_options(kernel_inputs(lapses), 0)]
    every = [o.label for o in site_options(kernel_inputs(s), 0)]
    gone = set(every) - set(labels)
    assert gone and all(label.endswith("2029-lease") for label in gone)
    assert any(label.endswith("2028-lease") for label in labels)  # signed in its January


def test_ai_capex_inflation_prices_later_build_years():
    s = kernel_inputs(random_one_site_ai(**{"market.ai": {"capex_inflation": 0.06}}))
    assert build_cost_index(s, 2027) == 1.0
    assert build_cost_index(s, 2029) == pytest.approx(1.06**2)
    plain = kernel_inputs(random_one_site_ai(**{"market.cost_inflation": 0.03}))
    assert build_cost_index(plain, 2029) == pytest.approx(1.03**2)  # omitted: cost_inflation


WAITING = {
    "build.decision_years": [2027, 2028],
    "simulation.scenarios": 2000,
    "contracts.0.price_usd_kw_month": 80.0,
    "contracts.1.price_usd_kw_month": 98.0,
    "contracts.0.price_follows_index": True,
    "contracts.1.price_follows_index": True,
    "market.ai": {"rent_drift": 0.05, "rent_volatility": 0.5},
    "market.factor": NO_FACTOR,
    "financing.capital_budget_usd": {2027: 1e9, 2028: 1e9},
}


def test_the_staged_solve_waits_for_the_ai_market():
    """A rent index likely to move a lot: signing next year at the index then beats both
    signing now and never. The policy converts where the index rose and keeps hashing where
    it fell, within the same hashprice bin, and waiting is worth money on the draws it was
    fitted to and on fresh ones."""
    run = api.solve(random_one_site_ai(**WAITING), staged=4, explain=False)
    st = run.summary["staged"]
    assert st["value_of_waiting"]["in_sample"]["expected_npv_usd"] > 1e6
    assert st["value_of_waiting"]["out_of_sample"]["expected_npv_usd"] > 1e6
    assert st["first_stage"][0]["contract"] is None  # nothing is signed now
    policy = run.outcome.staged.policy.query("decision_year == 2028")
    for _, same_bin in policy.groupby("hashprice_low_usd_ph_day", dropna=False):
        by_index = same_bin.sort_values("ai_rent_index_p50")["action"].tolist()
        assert by_index[0] == "keep hashing" and by_index[-1].startswith("convert")
