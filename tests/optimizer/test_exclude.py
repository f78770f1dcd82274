"""The runner-up plan: the optimum with the optimum excluded equals the second-best plan
found by enumerating every plan (a no-good cut, PlanProblem.exclude)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from siteopt.optimizer.solve import SolveStatus, solve_plan

from .brute import enumerate_plans
from .conftest import make_table, random_problem


@pytest.mark.parametrize("seed", range(6))
def test_the_runner_up_plan_is_the_second_best_by_enumeration(solver, seed):
    table = make_table(n_sites=3, n_levels=2, seed=seed)
    problem = random_problem(table, seed)
    every = enumerate_plans(table, problem)
    feasible = np.flatnonzero(every.feasible)
    if len(feasible) < 2:
        pytest.skip("fewer than two feasible plans")
    order = feasible[np.argsort(-every.objective[feasible], kind="stable")]
    best = solve_plan(table, problem, solver=solver, gap_rel=1e-9)
    best_rows = tuple(int(best.chosen[s]) for s in best.chosen)
    assert best.expected_npv_usd == pytest.approx(every.objective[order[0]], rel=1e-9, abs=1e-3)
    runner = solve_plan(
        table, dataclasses.replace(problem, exclude=(best_rows,)), solver=solver, gap_rel=1e-9
    )
    assert runner.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
    runner_rows = tuple(int(runner.chosen[s]) for s in runner.chosen)
    assert runner_rows != best_rows
    assert runner.expected_npv_usd == pytest.approx(every.objective[order[1]], rel=1e-9, abs=1e-3)
