"""The valuation cache: a site whose inputs did not change is reused, and reusing it
gives the very numbers a fresh valuation gives (bit for bit)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from siteopt.app.params import kernel_inputs
from siteopt.app.valuation import value_options
from siteopt.kernels.valuation import ValuationCache, site_key
from siteopt.model.load import apply_overrides, load_scenario, with_simulation

from .helpers import SCENARIO_FILES

N = 1_500


@pytest.fixture(scope="module")
def texas():
    return with_simulation(load_scenario(SCENARIO_FILES["texas"]), N, None)


def _changed(scenario, *assignments):
    return apply_overrides(scenario, assignments)


def _eligible(scenario, contract_name):
    contract = next(c for c in scenario.contracts if c.name == contract_name)
    return {s.name for s in scenario.sites if contract in scenario.contracts_for(s)}


def test_cached_valuation_equals_a_fresh_one(texas):
    cache = ValuationCache()
    value_options(texas, backend="numpy", cache=cache)
    assert (cache.hits, cache.misses) == (0, len(texas.sites))
    changed = _changed(texas, "contracts.hyperscaler-a.price_usd_kw_month=120")
    reused = value_options(changed, backend="numpy", cache=cache)
    affected = _eligible(texas, "hyperscaler-a")
    assert 0 < len(affected) < len(texas.sites)
    assert reused.timings_s["sites_valued"] == len(affected)
    assert cache.hits == len(texas.sites) - len(affected)
    fresh = value_options(changed, backend="numpy")
    pd.testing.assert_frame_equal(reused.options.table, fresh.options.table, check_exact=True)
    np.testing.assert_array_equal(reused.options.risk_npv_usd, fresh.options.risk_npv_usd)


def test_plan_only_inputs_do_not_touch_any_site(texas):
    cache = ValuationCache()
    base = value_options(texas, backend="numpy", cache=cache)
    changed = _changed(
        texas,
        "financing.capital_budget_usd.2027=1",
        "contracts.hyperscaler-a.min_mw=0",
        "objective.risk_aversion=0.5",
    )
    again = value_options(changed, backend="numpy", cache=cache)
    assert again.timings_s["sites_valued"] == 0
    pd.testing.assert_frame_equal(base.options.table, again.options.table, check_exact=True)


@pytest.mark.parametrize(
    ("assignment", "touched"),
    [
        ("sites.pecos-1.ai.build_capex_usd_mw=9000000", {"pecos-1"}),
        ("market.btc_price_usd=60000", "all"),
        ("simulation.seed=8", "all"),
        ("discount_rate=0.10", "all"),
        ("financing.debt.rate=0.09", "all"),
        ("tax.rate=0.30", "all"),
        ("tax.property_rate=0.01", "all"),
        (
            "power_markets.ercot-north.ancillary.capacity_usd_mw_month=5000",
            {"denton-north", "corsicana-north"},
        ),
    ],
)
def test_site_key_changes_exactly_where_the_valuation_can(texas, assignment, touched):
    changed = _changed(texas, assignment)
    moved = {
        s.name
        for i, s in enumerate(texas.sites)
        if site_key(kernel_inputs(texas), i, "numpy", 64)
        != site_key(kernel_inputs(changed), i, "numpy", 64)
    }
    assert moved == ({s.name for s in texas.sites} if touched == "all" else touched)
