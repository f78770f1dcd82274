"""The project debt by hand (kernels/debt.py) and what it is worth under adjusted present
value: a loan at its own rate adds nothing before tax, its interest saves the tax rate
times itself, and a bullet refinanced when it falls due."""

from __future__ import annotations

import numpy as np
import pytest

from siteopt.app.valuation import value_options
from siteopt.kernels.debt import (
    Loan,
    annuity_due,
    construction_interest_pv,
    interest_pv,
    loan_tables,
    monthly,
    refinancing_pv,
    service_pv,
)

from .helpers import one_site_ai, random_one_site_ai
from .test_closed_form import AI_CASE, paper_npv


def _loan(**changes) -> Loan:
    terms = {
        "landlord_share": 1.0,
        "loan_to_cost": 0.8,
        "monthly_rate": monthly(0.08),
        "term_months": 36,
        "interest_only_months": 6,
        "non_recourse": False,
        "market_rate": 0.08,
        "rate": 0.08,
        "target_dscr": None,
        "bullet": False,
        "refinance": False,
        "refinance_monthly_rate": monthly(0.07),
        "refinance_months": 60,
        "refinance_dscr": 1.3,
    }
    terms.update(changes)
    return Loan(**terms)


def _schedule(loan: Loan, balance: float, months: int):
    """Payments and interest of relative months 0..months-1, by a plain loop."""
    i, io, n = loan.monthly_rate, loan.interest_only_months, loan.term_months
    level = balance * i / (1 - (1 + i) ** -(n - io)) / (1 + i)  # annuity-due
    pay, interest, owed = [], [], balance
    for k in range(months):
        due = 0.0 if k >= n else (owed * i / (1 + i) if k < io else level)
        pay.append(due)
        interest.append(i * (owed - due))
        owed = (owed - due) * (1 + i)
    return np.array(pay), np.array(interest), owed


def test_a_loan_at_its_own_rate_is_worth_nothing_and_its_interest_by_hand():
    """$1 drawn over 4 months from month 2, first payment in month 10 (capitalised until
    then), 6 months interest only, level payments to month 46: at the loan's own rate the
    draws are worth exactly the service; the interest, capitalised and paid, by hand."""
    loan = _loan()
    months = 60
    spend = np.zeros(months)
    spend[2:6] = 0.25
    start = np.array([10])
    tab = loan_tables(loan, months + 1, np)
    v = 1.08 ** (-1 / 12)
    balance = float(loan.growth(spend, start, np)[0])
    grown = sum(spend[u] * (1 + loan.monthly_rate) ** (10 - u) for u in range(months))
    assert balance == pytest.approx(grown)
    pay, interest, owed = _schedule(loan, balance, months - 10)
    assert owed == pytest.approx(0.0, abs=1e-12)  # repaid within the term
    draws = float(spend @ v ** np.arange(months))
    service = v**10 * float(service_pv(loan, balance, np.array([0]), np.array([50]), tab, np)[0])
    assert service == pytest.approx(float(pay @ v ** np.arange(10, months)))
    assert draws - service == pytest.approx(0.0, abs=1e-12)  # APV of the loan at its rate
    # the interest: i x the balance while it is built, then each payment's interest part
    built = sum(
        loan.monthly_rate * sum(spend[u] * (1 + loan.monthly_rate) ** (t - u) for u in range(t + 1))
        * v**t
        for t in range(10)
    )  # fmt: skip
    paid = float(interest @ v ** np.arange(10, months))
    got_built = float(construction_interest_pv(loan, spend, start, months, 0.08, np)[0])
    got_paid = v**10 * float(interest_pv(loan, balance, np.array([0]), np.array([50]), tab, np)[0])
    assert got_built == pytest.approx(built, rel=1e-12)
    assert got_paid == pytest.approx(paid, rel=1e-12)


def test_interest_only_then_a_refinanced_bullet_by_hand():
    """A 24-month bullet of B = 1: 23 months of interest B i / (1 + i), then B falls due in
    month 23; 70% is refinanced at 7% over 60 months from month 24 (drawn in month 23, so
    it has grown one month by its first payment), the equity repays 30%. At T = month 40:
    the refinancing's draw, payments, interest and balance by a loop."""
    loan = _loan(bullet=True, interest_only_months=23, term_months=24, refinance=True)
    k_end = np.array([40])
    tab = loan_tables(loan, 61, np)
    v = 1.08 ** (-1 / 12)
    pay, interest, owed = _schedule(loan, 1.0, 40)
    assert pay[0] == pytest.approx(loan.monthly_rate / (1 + loan.monthly_rate))
    assert pay[23] == pytest.approx(1.0) and owed == pytest.approx(0.0, abs=1e-12)
    r = loan.refinance_monthly_rate
    drawn = 0.7
    level = drawn * (1 + r) / annuity_due(r, 60)  # first paid in month 24
    net, interest_pv_, owed_ = refinancing_pv(loan, np.array([drawn]), k_end, tab, np)
    paid, by_hand, balance = 0.0, r * drawn * v**23, drawn * (1 + r)
    for k in range(24, 40):
        paid += level * v**k
        by_hand += r * (balance - level) * v**k  # paid in advance: the rest accrues
        balance = (balance - level) * (1 + r)
    assert float(net[0]) == pytest.approx(drawn * v**23 - paid, rel=1e-12)
    assert float(interest_pv_[0]) == pytest.approx(by_hand, rel=1e-12)
    assert float(owed_[0]) == pytest.approx(balance, rel=1e-12)  # owed before month 40
    # at the refinancing's own rate its draw is worth its payments and the balance left
    flat = loan_tables(_loan(market_rate=0.07), 61, np)
    net7, _, owed7 = refinancing_pv(loan, np.array([drawn]), k_end, flat, np)
    assert float(net7[0]) == pytest.approx(1.07 ** (-40 / 12) * float(owed7[0]), rel=1e-12)


def test_pre_tax_the_value_does_not_change_with_loan_to_cost():
    """Tax 0, recourse debt: the loan's flows at its own rate add nothing, so every option's
    E[NPV] is the same at any loan to cost on the same draws (the budget, which debt
    relieves, is the MILP's alone), bullets refinanced or not."""
    values = []
    for ltc in (0.0, 0.5, 0.85):
        s = random_one_site_ai(
            **{"financing.debt.loan_to_cost": ltc, "financing.debt.refinance": True}
        )
        table = value_options(s, backend="numpy").options.table
        values.append(table["expected_npv_usd"].to_numpy())
        assert np.all(np.abs(table["leverage_usd"]) <= 1e-6 * np.abs(table["expected_npv_usd"]))
    scale = np.abs(values[0]) + 1.0
    for other in values[1:]:
        assert np.all(np.abs(other - values[0]) <= 1e-9 * scale)


def test_the_tax_shield_is_the_interest_times_the_rate_at_the_debt_s_rate():
    """After tax the leverage of a recourse loan at its market rate is its interest's
    saving: rate x the paper model's interest, month by month, at the debt's rate."""
    s = one_site_ai(
        **AI_CASE,
        **{
            "tax.rate": 0.21,
            "tax.state_rate": 0.01,
            "financing.debt.loan_to_cost": 0.8,
            "financing.debt.term_years": 3.0,
        },
    )
    table = value_options(s, backend="numpy").options.table.set_index("option")
    rate = 0.21 + 0.01 * (1 - 0.21)
    for year in (2027, 2028):
        paper = paper_npv(s, 60.0, year, s.contracts[0])
        dd = (1.0 + paper.debt_rate) ** (-np.arange(len(paper.interest)) / 12.0)
        shield = rate * float(np.asarray(paper.interest) @ dd)
        row = table.loc[f"ai60-{year}-lease"]
        assert row["tax_shield_usd"] == pytest.approx(shield, rel=1e-10)
        assert row["leverage_usd"] == pytest.approx(shield, rel=1e-9)
        assert row["rate_subsidy_usd"] == 0.0


def test_a_loan_below_its_market_rate_is_worth_the_difference():
    """A loan at 8% where the market lends at 10%: its flows at 10% are worth more than
    nothing (the subsidy), and that is all the leverage before tax."""
    s = one_site_ai(
        **AI_CASE,
        **{"financing.debt.loan_to_cost": 0.8, "financing.debt.market_rate": 0.10},
    )
    table = value_options(s, backend="numpy").options.table.set_index("option")
    row = table.loc["ai60-2027-lease"]
    assert row["rate_subsidy_usd"] > 0
    assert row["leverage_usd"] == pytest.approx(row["rate_subsidy_usd"], rel=1e-9)


def test_a_target_dscr_caps_the_loan_by_hand():
    """$130/kW-month, $18k/MW-month of opex, power passed through: a stabilised NOI of
    $112k per MW-month carries a level payment of 112k / 1.5 at a 1.5x coverage, which
    amortises a balance of that x the annuity-due of 120 months at 8%; drawn over the 9
    months of the build, the loan is that balance discounted back from the first rent at the
    loan's rate. Below 85% of the $9M/MW hall, the coverage sets the loan."""
    from siteopt.app.params import kernel_inputs
    from siteopt.kernels.hosting import loan_per_capex

    s = one_site_ai(
        **{
            "financing.debt.loan_to_cost": 0.85,
            "financing.debt.target_dscr": 1.5,
            "financing.debt.term_years": 10.0,
        }
    )
    k = kernel_inputs(s)
    i = 1.08 ** (1 / 12) - 1
    balance = 112_000.0 / 1.5 * annuity_due(i, 120)
    growth = sum((1 + i) ** (9 - t) for t in range(9)) / 9  # per USD drawn, at first rent
    cap = balance / growth / 9_000_000.0
    got = float(loan_per_capex(k, k.sites[0], k.contracts[0], 2027, 1.0))
    assert cap < 0.85 and got == pytest.approx(cap, rel=1e-12)
    loose = one_site_ai(**{"financing.debt.loan_to_cost": 0.5, "financing.debt.target_dscr": 1.5})
    kl = kernel_inputs(loose)
    assert float(loan_per_capex(kl, kl.sites[0], kl.contracts[0], 2027, 1.0)) == 0.5


def test_a_target_dscr_on_a_free_hall_values_without_a_loan():
    """A hall with no capex has nothing to borrow against: with a target coverage the
    options value as without debt (no division by the hall's zero capex)."""
    from siteopt.app.valuation import value_options

    free = {
        "sites.0.ai.build_capex_usd_mw": 0.0,
        "sites.0.ai.retrofit_capex_usd_mw": 0.0,
        "financing.debt.loan_to_cost": 0.8,
        "simulation.scenarios": 16,
    }
    capped = value_options(one_site_ai(**free, **{"financing.debt.target_dscr": 1.3}))
    plain = value_options(one_site_ai(**free))
    got = capped.options.table["expected_npv_usd"].to_numpy()
    np.testing.assert_allclose(got, plain.options.table["expected_npv_usd"], rtol=1e-12)
    assert np.all(np.isfinite(got))
