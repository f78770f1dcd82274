"""The exit value of a hall by hand (kernels/exit_value.py), and what a lease past the
horizon is worth on the same draws."""

from __future__ import annotations

import pytest

from siteopt.app.valuation import value_options

from .helpers import one_site_ai, random_one_site_ai

T = 48  # months of the 4-year horizon from 2027-01
FIRST_RENT = 9  # built from 2027-01 with a 9-month lead time
RENT = 130_000.0  # USD per IT MW-month: $130/kW, flat


@pytest.mark.parametrize("years_left", [0, 3, 9])
def test_the_exit_value_of_a_lease_with_k_years_left(years_left):
    """A hall let at a flat $130/kW-month with ``years_left`` of its lease to run at T, no
    costs: a buyer pays the rent to the lease's end at the lease rate (7%), then, the
    tenant renewing for sure at the same rent, the multiple on a year of it, discounted at
    discount_rate from the lease's end. Pre-tax, no debt; 40 MW."""
    term_months = T - FIRST_RENT + 12 * years_left
    s = one_site_ai(
        **{
            "sites.0.mining.mw": 0.0,
            "sites.0.ai.opex_usd_mw_month": 0.0,
            "contracts.0.escalator": 0.0,
            "contracts.0.term_years": term_months / 12.0,
            "contracts.0.lease_discount_rate": 0.07,
            "financing.exit_multiple_ai": 11.0,
        }
    )
    table = value_options(s, backend="numpy").options.table.set_index("option")
    u, v = 1.07 ** (-1 / 12), 1.12 ** (-1 / 12)
    k = 12 * years_left
    lease = RENT * (1 - u**k) / (1 - u)
    reversion = v**k * 12 * 11.0 * RENT
    exit_value = 40.0 * (lease + reversion)
    assert table.loc["ai40-2027-lease", "expected_terminal_pv_usd"] == pytest.approx(
        v**T * exit_value, rel=1e-10
    )


def test_a_longer_lease_past_the_horizon_is_worth_more():
    """A sound tenant (no riskier than a successor) at the market's rent, with a lease that
    runs past the horizon (first rent in month 9 of 48), its remaining term discounted at
    its credit (6%, below the 12% of the reversion): each extra year of term replaces a
    reversion (renewal odds, vacancy, re-let capex) by contracted rent, so on the same
    draws a longer lease is worth more."""
    values = {}
    for term in (5.0, 8.0, 12.0, 20.0):
        s = random_one_site_ai(
            horizon_years=4,
            **{
                "contracts.0.term_years": term,
                "contracts.0.annual_default_prob": 0.04,
                "contracts.0.successor_default_prob": 0.04,
                "contracts.0.lease_discount_rate": 0.06,
                "contracts.1.eligible_sites": [],
                "simulation.scenarios": 400,
                "simulation.risk_sample": 16,
            },
        )
        result = value_options(s, backend="numpy")
        table = result.options.table.set_index("option")
        values[term] = table.loc["ai40-2027-lease", "expected_npv_usd"]
    terms = sorted(values)
    for short, long in zip(terms[:-1], terms[1:], strict=True):
        assert values[long] > values[short], (short, long, values)
