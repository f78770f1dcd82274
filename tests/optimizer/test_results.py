"""Results: the plan table, totals, and the two baselines."""

from __future__ import annotations

import numpy as np
import pytest

from siteopt.optimizer.options import ContractTerms, PlanProblem
from siteopt.optimizer.results import CHOICE_COLUMNS, all_mining, max_ai, portfolio_cvar
from siteopt.optimizer.solve import SolveStatus, solve_plan

from .conftest import make_table, random_problem, table_from_rows

M = 1.0e6


def test_plan_result_matches_the_table():
    table = make_table(n_sites=6, n_levels=2, build_years=(2027, 2028), seed=4)
    problem = random_problem(table, 4, contracts=(), risk_aversion=0.4)
    result = solve_plan(table, problem)
    assert result.status == SolveStatus.OPTIMAL
    frame = table.table
    rows = np.array(list(result.chosen.values()))
    assert list(result.chosen) == list(dict.fromkeys(frame["site"]))
    assert list(result.plan.columns) == [*CHOICE_COLUMNS, "row"]
    assert list(result.plan["row"]) == list(rows)
    assert list(result.plan["site"]) == list(result.chosen)
    assert result.expected_npv_usd == pytest.approx(frame["expected_npv_usd"][rows].sum())
    assert result.objective_usd == pytest.approx(
        result.expected_npv_usd + 0.4 * result.cvar_risk_sample_usd
    )
    for year, spend in result.equity_capex_by_year_usd.items():
        assert spend == pytest.approx(frame[f"capex_{year}_usd"][rows].sum())
    assert set(result.timings_s) == {"build", "solve"}
    assert result.diagnosis == () and not result.timed_out
    # a CVaR in the objective of a small model: R-U rows for the tail (choose_cvar_method)
    assert result.cvar_method == "lazy" and result.solver == "highs"


def test_risk_neutral_result_still_reports_sample_cvar():
    table = make_table(n_sites=3, seed=1)
    result = solve_plan(table, PlanProblem({}, cvar_alpha=0.9))
    rows = list(result.chosen.values())
    assert result.cvar_in_model_usd is None
    assert result.cvar_risk_sample_usd == pytest.approx(
        portfolio_cvar(table.risk_npv_usd[rows].sum(axis=0), 0.9)
    )


def _greedy_table():
    def site(name, gain, capex, mw=10.0, contract=""):
        return [
            dict(site=name, option="hash", npv=100 * M),
            dict(
                site=name,
                option="ai",
                npv=(100 + gain) * M,
                ai_it_mw=mw,
                contract=contract,
                capex={2027: capex * M},
            ),
        ]

    return table_from_rows(site("a", 6, 6) + site("b", 8, 4, contract="hx") + site("c", 1, 1))


def test_all_mining_baseline():
    table = _greedy_table()
    base = all_mining(table)
    assert base.rows == (0, 2, 4)
    assert base.expected_npv_usd == pytest.approx(300 * M)
    assert base.cvar_usd == pytest.approx(300 * M)
    assert base.feasible


def test_max_ai_is_greedy_by_npv_per_capex_dollar():
    table = _greedy_table()
    # Ratios: b 2.0, a 1.0, c 1.0; a budget of 9 takes b (4), then a (6) no, then c (1).
    base = max_ai(table, PlanProblem({2027: 9 * M}))
    assert base.rows == (0, 3, 5)
    assert base.expected_npv_usd == pytest.approx(309 * M)
    assert base.feasible
    everything = max_ai(table, PlanProblem({2027: 100 * M}))
    assert everything.rows == (1, 3, 5)
    # Contract hx wants 20 MW: the greedy plan hosts 10, so it breaks the contract.
    contract = PlanProblem({2027: 9 * M}, contracts=(ContractTerms("hx", 20, 40, must_sign=True),))
    broken = max_ai(table, contract)
    assert not broken.feasible
    assert broken.violations == ("contract_min_hx",)


def test_max_ai_against_the_milp():
    table = make_table(n_sites=8, n_levels=3, build_years=(2027, 2028), seed=9)
    problem = random_problem(table, 9, contracts=())
    greedy = max_ai(table, problem)
    assert greedy.feasible
    result = solve_plan(table, problem, gap_rel=1e-9)
    assert result.expected_npv_usd >= greedy.expected_npv_usd - 1e-3
    assert result.expected_npv_usd >= all_mining(table, problem).expected_npv_usd - 1e-3


def _linear_site(bumps):
    """Site a: 20, 40 and 60 MW whose NPV gain is exactly linear in capex (equal ratios in
    exact arithmetic), each NPV moved by ``bumps[k]`` ulps, as another CPU's rounding may."""
    rows = [dict(site="a", option="hash", npv=100 * M)]
    for k, mw in enumerate((20.0, 40.0, 60.0)):
        npv = 100 * M + 35.1644245001993 * (mw / 20) * 2 * M
        for _ in range(abs(bumps[k])):
            npv = float(np.nextafter(npv, np.inf if bumps[k] > 0 else -np.inf))
        rows.append(
            dict(site="a", option=f"ai{mw:g}", npv=npv, ai_it_mw=mw, capex={2027: mw / 10 * M})
        )
    rows.append(dict(site="b", option="hash", npv=50 * M))
    rows.append(dict(site="b", option="ai20", npv=90 * M, ai_it_mw=20.0, capex={2027: 4 * M}))
    return table_from_rows(rows)


@pytest.mark.parametrize("bumps", [(0, 0, 0), (1, -1, 0), (-1, 1, 1), (0, -2, 3)])
def test_max_ai_ties_do_not_depend_on_the_last_bit(bumps):
    """Equal ratios are equal whatever the last bits: the larger MW wins, on every CPU."""
    for budget_m, expected in ((100, (3, 5)), (5, (2, 4)), (2, (1, 4))):
        base = max_ai(_linear_site(bumps), PlanProblem({2027: budget_m * M}))
        assert base.rows == expected, (budget_m, bumps)
