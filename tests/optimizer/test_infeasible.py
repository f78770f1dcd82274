"""(d) Infeasible problems: status infeasible and a diagnosis that names what conflicts."""

from __future__ import annotations

import numpy as np

from siteopt.optimizer.data import plan_data
from siteopt.optimizer.diagnose import precheck
from siteopt.optimizer.options import ContractTerms, PlanProblem
from siteopt.optimizer.solve import SolveStatus, solve_plan

from .conftest import table_from_rows

M = 1.0e6


def _table():
    """Three sites; each converts 10 MW to contract hx for 10 $M equity (half in 2027)."""
    rows = []
    for site, month in (("a", "2028-01"), ("b", "2028-01"), ("c", "2029-01")):
        rows += [
            dict(site=site, option="hash", npv=100 * M),
            dict(
                site=site,
                option="ai",
                npv=104 * M,
                ai_it_mw=10,
                contract="hx",
                build_year=2027,
                online_month=month,
                capex={2027: 5 * M, 2028: 5 * M},
                eh={2027: 0.2, 2028: 0.2},
            ),
        ]
    return table_from_rows(rows)


def _diagnosis(problem, **kwargs):
    result = solve_plan(_table(), problem, **kwargs)
    assert result.status == SolveStatus.INFEASIBLE
    assert not result.timed_out
    assert result.chosen == {} and result.plan.empty
    assert result.diagnosis
    return " | ".join(result.diagnosis)


def test_precheck_contract_larger_than_all_sites():
    problem = PlanProblem({2027: 100 * M}, contracts=(ContractTerms("hx", 40, 50, must_sign=True),))
    text = _diagnosis(problem)
    assert "contract hx needs at least 40 MW" in text and "at most 30 MW" in text
    assert precheck(plan_data(_table(), problem), problem)


def test_precheck_min_above_max():
    problem = PlanProblem({}, contracts=(ContractTerms("hx", 20, 10, must_sign=True),))
    assert "exceeds its maximum" in _diagnosis(problem)


def test_precheck_online_by():
    problem = PlanProblem(
        {2027: 100 * M}, contracts=(ContractTerms("hx", 30, 50, "2028-06", must_sign=True),)
    )
    text = _diagnosis(problem)
    assert "30 MW online by 2028-06" in text and "at most 20 MW by then" in text


def test_online_by_within_the_budget():
    # Two early sites could deliver 20 MW by 2028-06, but 2027 money pays for one.
    problem = PlanProblem(
        {2027: 6 * M, 2028: 100 * M},
        contracts=(ContractTerms("hx", 20, 50, "2028-06", must_sign=True),),
    )
    text = _diagnosis(problem)
    assert "contract hx needs 20 MW online by 2028-06" in text
    assert "at most 10 MW by then" in text
    assert "capital budget through 2027" in text
    assert not precheck(plan_data(_table(), problem), problem)


def test_contract_minimum_within_per_year_budget():
    problem = PlanProblem(
        {2027: 10 * M, 2028: 10 * M},
        carry_over=False,
        contracts=(ContractTerms("hx", 30, 50, must_sign=True),),
    )
    text = _diagnosis(problem)
    assert "contract hx needs at least 30 MW" in text and "at most 20 MW" in text
    assert "2027 capital budget" in text or "2028 capital budget" in text


def test_hashrate_floor_against_a_signed_contract():
    problem = PlanProblem(
        {2027: 100 * M},
        min_hashrate_eh=2.5,
        contracts=(ContractTerms("hx", 10, 50, must_sign=True),),
    )
    text = _diagnosis(problem)
    assert "hashrate floor 2027-2028: 2.5 EH/s required, at most 2.2 EH/s possible" in text
    assert "contract hx" in text


def test_precheck_hashrate_and_budget():
    problem = PlanProblem({2027: 100 * M}, min_hashrate_eh=3.5)
    assert "hashrate floor 2027: 3.5 EH/s required, at most 3.0 EH/s possible" in _diagnosis(
        problem
    )
    # A keep-hashing option that spends (an ASIC refresh) more than the budget.
    table = table_from_rows([dict(site="a", option="hash", npv=M, capex={2027: 2 * M})])
    result = solve_plan(table, PlanProblem({2027: 1 * M}))
    assert result.status == SolveStatus.INFEASIBLE
    assert "capital budget 2027: the plan needs at least $2.0M" in result.diagnosis[0]
    assert "through 2027 is $1.0M" in result.diagnosis[0]


def test_cvar_floor_too_high():
    risk = np.array([[90.0, 110.0, 100.0, 100.0], [80.0, 130.0, 100.0, 110.0]]) * M
    table = table_from_rows(
        [dict(site="a", option="hash"), dict(site="a", option="ai", ai_it_mw=5)],
        risk_npv_usd=risk,
        cvar_alpha=0.5,
    )
    for floor, expected in (
        (99 * M, "CVaR floor: $99.0M required (alpha 0.5), at most $95.0M possible"),
        (120 * M, "CVaR cannot exceed the mean"),
    ):
        problem = PlanProblem({}, cvar_alpha=0.5, cvar_floor_usd=floor)
        result = solve_plan(table, problem)
        assert result.status == SolveStatus.INFEASIBLE
        assert expected in " ".join(result.diagnosis)
