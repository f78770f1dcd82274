"""Taxes by hand (kernels/tax.py): MACRS with bonus depreciation, what an asset's deductions
are worth, property tax with an abatement, and losses carried forward."""

from __future__ import annotations

import numpy as np
import pytest

from siteopt.app.valuation import value_options
from siteopt.kernels.tax import (
    NOL_USE_LIMIT,
    assessed_share,
    carried_forward,
    deduction_fractions,
    deduction_months,
    deduction_weights,
    macrs_fractions,
    property_rate_at,
)
from siteopt.model.schema import Tax

from .helpers import random_one_site_ai

# IRS Publication 946, table A-1 (half-year convention), in percent
TABLE_A1 = {
    3: [33.33, 44.45, 14.81, 7.41],
    5: [20.00, 32.00, 19.20, 11.52, 11.52, 5.76],
    7: [14.29, 24.49, 17.49, 12.49, 8.93, 8.92, 8.93, 4.46],
    15: [5.00, 9.50, 8.55, 7.70, 6.93, 6.23, 5.90, 5.90, 5.91, 5.90, 5.91, 5.90, 5.91, 5.90,
         5.91, 2.95],
}  # fmt: skip


@pytest.mark.parametrize("life", sorted(TABLE_A1))
def test_macrs_is_the_irs_table(life):
    got = 100.0 * macrs_fractions(life)
    assert got == pytest.approx(TABLE_A1[life], abs=0.011)  # the table rounds to 0.01
    assert got.sum() == pytest.approx(100.0, abs=1e-12)


def test_a_building_is_straight_line_and_gets_no_bonus():
    fractions = deduction_fractions(39.0, 1.0)
    assert fractions[0] == pytest.approx(0.5 / 39) and fractions[1] == pytest.approx(1 / 39)
    assert fractions.sum() == pytest.approx(1.0)


def test_one_year_of_macrs_with_bonus():
    """$1M of ASICs (5-year) with 60% bonus: the bonus and 20% of the rest in the first
    year, 32% of the rest in the second; by month, the first year's at once, each later
    year's at its anniversary, and what is left at the horizon in its last month."""
    fractions = deduction_fractions(5.0, 0.6)
    assert fractions[0] == pytest.approx(0.6 + 0.4 * 0.20)
    assert fractions[1] == pytest.approx(0.4 * 0.32)
    by_month = 1_000_000.0 * deduction_months(fractions, 7, 30)  # placed in month 7, T = 30
    assert by_month[7] == pytest.approx(680_000.0)
    assert by_month[19] == pytest.approx(128_000.0)
    assert by_month[29] == pytest.approx(1_000_000.0 - 680_000.0 - 128_000.0)  # the basis left
    assert by_month.sum() == pytest.approx(1_000_000.0)
    v = 1.12 ** (-1 / 12)
    weights = deduction_weights(fractions, v ** np.arange(31), 30)
    assert weights[7] == pytest.approx(0.68 * v**7 + 0.128 * v**19 + 0.192 * v**29)
    assert weights[30] == pytest.approx(v**29)  # not yet in service at T: deducted with the exit


def test_bonus_brings_the_deductions_forward():
    v = 1.12 ** (-1 / 12)
    discount = v ** np.arange(121)
    worth = [deduction_weights(deduction_fractions(5.0, b), discount, 120) for b in (0, 0.5, 1)]
    assert np.all(worth[0] <= worth[1] + 1e-15) and np.all(worth[1] <= worth[2] + 1e-15)
    assert worth[2][0] == pytest.approx(1.0)  # expensed at once


def test_property_tax_on_a_straight_line_value_with_an_abatement():
    tax = Tax(property_rate=0.024, property_abatement_years=2.0, property_abatement_share=0.75)
    age = np.array([0, 12, 23, 24, 36, 59, 60, 80])
    share = assessed_share(age, 5.0)
    assert share == pytest.approx([1.0, 0.8, 1 - 23 / 60, 0.6, 0.4, 1 / 60, 0.0, 0.0])
    new = property_rate_at(tax, age, True)
    assert new[:3] == pytest.approx(0.002 * 0.25) and new[3:] == pytest.approx(0.002)
    old = property_rate_at(tax, age, False)  # bought before the start: no abatement
    assert old == pytest.approx(0.002)


def test_losses_carried_forward_by_hand():
    """A loss of 100, then 50, 100 and 30 of income at 21%: the second year uses 40 of the
    loss (80% of 50) and pays on 10; the third uses the 60 left and pays on 40; the last
    pays on all of it."""
    tax = carried_forward(np.array([-100.0, 50.0, 100.0, 30.0]), 0.21)
    assert tax == pytest.approx([0.0, 0.21 * 10, 0.21 * 40, 0.21 * 30])
    assert NOL_USE_LIMIT == 0.8


def test_carried_losses_never_pay_more_than_none_and_never_less_than_offset():
    rng = np.random.default_rng(3)
    income = rng.normal(10.0, 50.0, size=(500, 12))
    carried = carried_forward(income, 0.21)
    assert np.all(carried >= 0)
    assert np.all(carried.sum(axis=1) <= 0.21 * np.maximum(income, 0).sum(axis=1) + 1e-9)
    assert np.all(carried.sum(axis=1) >= 0.21 * income.sum(axis=1) - 1e-9)


# ------------------------------------------------------------ on the same draws


def _values(**changes) -> np.ndarray:
    s = random_one_site_ai(**{"simulation.scenarios": 300, "simulation.risk_sample": 16, **changes})
    return value_options(s, backend="numpy").options.table["expected_npv_usd"].to_numpy()


@pytest.mark.parametrize("losses", ["offset", "carry_forward"])
def test_a_higher_tax_rate_lowers_a_profitable_option(losses):
    """Without debt (whose interest the tax makes worth more), an option that pays before
    tax is worth less the more it is taxed: its income is taxed at the rate, and its
    deductions, worth at most its capex, give back less than that."""
    rates = (0.0, 0.15, 0.21, 0.35)
    values = [_values(**{"tax.rate": r, "tax.losses": losses}) for r in rates]
    profitable = values[0] > 0
    assert profitable.sum() >= 10
    for low, high in zip(values[:-1], values[1:], strict=True):
        assert np.all(high[profitable] < low[profitable])


def test_bonus_depreciation_never_lowers_an_after_tax_value():
    """Expensing more of the capex at once brings its deductions forward: with losses
    offset, on the same draws no option is worth less with more bonus, debt included."""
    bonus = (0.0, 0.4, 1.0)
    changes = {"tax.rate": 0.21, "financing.debt.loan_to_cost": 0.6}
    values = [_values(**changes, **{"tax.bonus_depreciation": b}) for b in bonus]
    for less, more in zip(values[:-1], values[1:], strict=True):
        assert np.all(more >= less - 1e-9 * np.abs(less))
    assert np.any(values[-1] > values[0] + 1.0)


def test_carried_losses_can_make_bonus_depreciation_cost_tax():
    """With losses carried forward, a bonus that turns a build year into a loss is used
    against at most 80% of each later year's income, where the same deductions taken by
    MACRS year by year would have cleared those years: a project can pay tax sooner with
    the bonus (why taxpayers may elect out of it; docs/model.md, Taxes). The model takes
    the bonus as the scenario states it."""
    income = np.array([0.0, 100.0, 100.0, 100.0, 100.0, 100.0])
    bonus = income - np.array([300.0, 0, 0, 0, 0, 0])
    macrs = income - 300.0 * np.array([0.20, 0.32, 0.192, 0.1152, 0.1152, 0.0576])
    paid_bonus = carried_forward(bonus, 0.21)
    paid_macrs = carried_forward(macrs, 0.21)
    assert paid_bonus[1] > paid_macrs[1]  # 20% of year 2's income is taxed with the bonus
    v = 0.9 ** np.arange(6)
    assert paid_bonus @ v > paid_macrs @ v


def test_a_zero_rate_leaves_no_tax():
    """``tax.rate: 0`` (and no state rate) values the options before tax exactly, whatever
    the depreciation and losses keys say."""
    base = _values(**{"tax.rate": 0.0})
    other = _values(
        **{"tax.rate": 0.0, "tax.bonus_depreciation": 0.2, "tax.losses": "carry_forward"}
    )
    np.testing.assert_array_equal(base, other)
