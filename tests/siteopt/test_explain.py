"""Why this plan (siteopt/app/explain.py): every reason, the slacks and the value of
capital on a portfolio small enough to check by hand, then the same on texas.yaml."""

from __future__ import annotations

import pytest

from siteopt.app.explain import (
    CAPITAL_STEP_USD,
    WHY_CODES,
    capital_values,
    constraint_slacks,
    site_reasons,
)
from siteopt.optimizer.options import ContractTerms, PlanProblem
from siteopt.optimizer.solve import solve_plan

from ..optimizer.tables import table_from_rows

M = 1e6


def _hand_table():
    """Four sites, one budget year of $10M:
    a: converting 20 MW (capex $10M) adds $50M; b: the same conversion adds $40M;
    c: no AI option; d: converting loses $2M against hashing. Only one $10M conversion
    fits, so a converts and b keeps hashing for want of budget."""
    ai = {"ai_it_mw": 20.0, "build_year": 2027, "contract": "lease", "online_month": "2028-01"}
    rows = [
        {"site": "a", "option": "hash", "npv": 0.0},
        {"site": "a", "option": "ai20-2027-lease", "npv": 50 * M, "capex": {2027: 10 * M}, **ai},
        {"site": "b", "option": "hash", "npv": 0.0},
        {"site": "b", "option": "ai20-2027-lease", "npv": 40 * M, "capex": {2027: 10 * M}, **ai},
        {"site": "c", "option": "hash", "npv": 5 * M},
        {"site": "d", "option": "hash", "npv": 10 * M},
        {"site": "d", "option": "ai20-2027-lease", "npv": 8 * M, "capex": {2027: 4 * M}, **ai},
    ]
    table = table_from_rows(rows)
    problem = PlanProblem(
        budget_usd_by_year={2027: 10 * M},
        contracts=(ContractTerms("lease", 0.0, 100.0, None, False),),
    )
    return table, problem


def _solve(table, problem):
    return lambda changed: solve_plan(table, changed, gap_rel=1e-9)


def test_every_reason_by_hand():
    table, problem = _hand_table()
    result = solve_plan(table, problem, gap_rel=1e-9)
    rows = tuple(int(result.chosen[s]) for s in ("a", "b", "c", "d"))
    assert rows == (1, 2, 4, 5)  # a converts; b, c, d keep hashing
    why = {w.site: w for w in site_reasons(table, problem, rows, frozenset({"c"}))}
    assert why["a"].code == "converted"
    assert why["a"].runner_up == "hash" and why["a"].margin_usd == pytest.approx(50 * M)
    assert why["a"].text == (
        "converts 20 MW for lease from 2027: E[NPV] $50.0M above its runner-up, hash"
    )
    assert why["b"].code == "budget"
    assert why["b"].text == (
        "keeps hashing: ai20-2027-lease (20 MW) would add $40.0M but breaks budget_2027: "
        "cumulative equity capex $20.0M against cumulative budget $10.0M"
    )
    assert why["c"].code == "no_ai_option"
    assert why["c"].text == "keeps hashing: no AI option (it has no ai section)"
    assert why["d"].code == "uneconomic" and why["d"].margin_usd == pytest.approx(2 * M)
    assert all(w.code in WHY_CODES for w in why.values())


def test_a_contract_minimum_is_named_as_the_reason():
    table, problem = _hand_table()
    problem = PlanProblem(
        budget_usd_by_year={2027: 100 * M},
        contracts=(ContractTerms("lease", 50.0, 100.0, None, False),),
    )  # 20 MW alone is below the 50 MW minimum; a + b + d = 60 MW meets it, but d loses
    result = solve_plan(table, problem, gap_rel=1e-9)
    rows = tuple(int(result.chosen[s]) for s in ("a", "b", "c", "d"))
    assert rows == (1, 3, 4, 6)  # all three convert to meet the minimum
    why = {w.site: w for w in site_reasons(table, problem, rows)}
    assert why["d"].code == "converted"
    assert why["d"].runner_up is None  # hashing would leave 40 MW, under the minimum
    assert "no other option" in why["d"].text
    assert why["c"].text == "keeps hashing: no AI option (no contract is open to it)"
    without = PlanProblem(budget_usd_by_year={2027: 100 * M}, contracts=problem.contracts)
    one = (1, 2, 4, 5)  # a alone: 20 MW signed, under the minimum
    assert site_reasons(table, without, one)[1].code == "contract"


def test_what_more_capital_buys_and_the_slacks():
    table, problem = _hand_table()
    result = solve_plan(table, problem, gap_rel=1e-9)
    rows = tuple(int(result.chosen[s]) for s in ("a", "b", "c", "d"))
    capital = capital_values(table, problem, rows, _solve(table, problem))
    assert [(c.year, c.extra_usd) for c in capital] == [(2027, CAPITAL_STEP_USD), (2027, 50 * M)]
    assert capital[0].expected_npv_gain_usd == pytest.approx(40 * M)  # b converts too
    assert capital[0].changes == ("b: ai20-2027-lease",)
    # $50M buys at least what $10M does (the plan with $10M more still fits)
    assert capital[1].expected_npv_gain_usd >= capital[0].expected_npv_gain_usd
    slacks = {c.name: c for c in constraint_slacks(table, problem, rows, capital)}
    budget = slacks["budget_2027"]
    assert (budget.value, budget.limit, budget.slack) == pytest.approx((10 * M, 10 * M, 0.0))
    assert budget.binding
    assert slacks["contract_max_lease"].slack == pytest.approx(80.0)
    assert not slacks["contract_max_lease"].binding
    # with money to spare, more of it buys nothing and the budget does not bind
    rich = PlanProblem(budget_usd_by_year={2027: 100 * M}, contracts=problem.contracts)
    rich_rows = tuple(int(solve_plan(table, rich).chosen[s]) for s in ("a", "b", "c", "d"))
    spare = capital_values(table, rich, rich_rows, _solve(table, rich))
    assert spare[0].expected_npv_gain_usd == 0.0 and spare[0].changes == ()
    assert not constraint_slacks(table, rich, rich_rows, spare)[0].binding
