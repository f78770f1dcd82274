"""AI cloud contracts (kernels/cloud.py): the delivery milestone, the residual curve and
what the GPUs' cost does to an option's value, scenario by scenario."""

from __future__ import annotations

import numpy as np
import pytest

from siteopt.app.params import kernel_inputs
from siteopt.kernels.cashflows import option_cashflows
from siteopt.kernels.cloud import residual_share
from siteopt.kernels.sites import chunk_market, site_chunk, site_options

from .helpers import random_one_site_ai
from .test_invariance import CLOUD_TERMS

N = 400


def _cloud(**overrides):
    return random_one_site_ai(
        **{"contracts.1": {"kind": "cloud", **CLOUD_TERMS}, "sites.0.ai.delay_mean_months": 3.0,
           **overrides}
    )  # fmt: skip


def _cloud_option(scenario):
    portfolio = kernel_inputs(scenario)
    opts = site_options(portfolio, 0)
    j = next(j for j, o in enumerate(opts) if o.contract_index == 1)
    return portfolio, opts, j


@pytest.mark.parametrize("due", [2, 60], ids=["before-delivery", "due-after-delivery"])
def test_a_late_delivery_loses_the_customer_the_prepayment_and_the_gpus(due):
    """milestone 0 months, termination certain: every scenario whose delivery slips ends the
    cloud contract at delivery (no revenue, no GPUs, the prepayment paid back then); every
    other runs it. A prepayment due after delivery arrives at first revenue: never refunded
    before it was paid."""
    s = _cloud(**{"contracts.1.milestone_months": 0, "contracts.1.milestone_termination_prob": 1.0,
                  "contracts.1.annual_default_prob": 0.0,
                  "contracts.1.prepayment_months": due})  # fmt: skip
    portfolio, opts, j = _cloud_option(s)
    ctx = chunk_market(portfolio, np.arange(N, dtype=np.int64), xp=np)
    chunk = site_chunk(portfolio, 0, opts, ctx, xp=np)
    ten = chunk.events[(opts[j].build_year, 1)]
    late = ten.start > ten.construction + s.sites[0].ai.lead_time_months
    assert 0 < late.sum() < N
    np.testing.assert_array_equal(ten.terminated, late)
    lines = option_cashflows(portfolio, opts[j], ctx, xp=np).lines
    assert np.all(lines["gpu_capex"][late] == 0.0) and np.all(lines["gpu_capex"][~late].sum(1) < 0)
    # received, then refunded: nothing kept, and never paid back before it came in
    prepay = lines["cloud_prepayment"][late]
    np.testing.assert_allclose(prepay.sum(axis=1), 0.0, atol=1e-6)
    assert np.all(np.cumsum(prepay, axis=1) >= -1e-6)
    assert np.all(lines["cloud_operations"][late] == 0.0)


def test_a_higher_gpu_cost_never_raises_a_cloud_option_s_value():
    """On the same draws, each scenario's NPV falls as the GPUs cost more (their debt, their
    sale and the walk-away see the same tenancy)."""
    values = []
    for capex in (20e6, 29e6, 40e6):
        s = _cloud(**{"contracts.1.gpu_capex_usd_mw": capex, "financing.debt.non_recourse": True})
        portfolio, opts, j = _cloud_option(s)
        ctx = chunk_market(portfolio, np.arange(N, dtype=np.int64), xp=np)
        values.append(site_chunk(portfolio, 0, opts, ctx, xp=np).npv[:, j])
    assert np.all(np.diff(np.stack(values), axis=0) <= 1e-6)
    assert np.mean(values[0]) > np.mean(values[2])


@pytest.mark.parametrize(
    ("age", "share"), [(0, 1.0), (6, 0.85), (12, 0.7), (30, 0.425), (60, 0.1), (200, 0.1)]
)
def test_the_residual_curve_is_linear_within_a_year_and_held_after(age, share):
    contract = kernel_inputs(_cloud()).contracts[1]
    assert float(residual_share(contract, np.array([age]), np)[0]) == pytest.approx(share)


def test_a_contract_with_one_site_offers_no_level_below_its_minimum():
    """cloud-gb300 may sign at odessa-campus alone, for at least 100 MW: no smaller level is
    offered there (no plan could take it); hyperscaler-a, open to every site, keeps its 20s."""
    from siteopt.model.load import load_scenario, site_option_count

    from .helpers import SCENARIO_FILES

    texas = kernel_inputs(load_scenario(SCENARIO_FILES["texas"]))
    i = next(k for k, s in enumerate(texas.sites) if s.name == "odessa-campus")
    names = [c.name for c in texas.contracts]
    by_contract = {}
    for o in site_options(texas, i)[1:]:
        by_contract.setdefault(names[o.contract_index], set()).add(o.it_mw)
    assert min(by_contract["cloud-gb300"]) == 100.0 and max(by_contract["cloud-gb300"]) == 200.0
    assert min(by_contract["hyperscaler-a"]) == 20.0
    # the memory check counts them without listing them: at least as many
    scenario = load_scenario(SCENARIO_FILES["texas"])
    for k in range(len(texas.sites)):
        assert site_option_count(scenario, k) >= len(site_options(texas, k))
