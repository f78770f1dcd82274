"""Optional cross-check against an outside solver: on small random portfolios with a CVaR
in the objective or a CVaR floor, siteopt's plan value equals the optimum of the plain
Rockafellar-Uryasev model solved by SCIP (OR-Tools). Skipped without OR-Tools, which is
not a siteopt dependency (``pip install ortools``)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from siteopt.optimizer.solve import SolveStatus, solve_plan

from .conftest import make_table, random_problem
from .scip import scip_reference

pytest.importorskip("ortools.linear_solver.pywraplp")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("risk", ["aversion", "floor"])
def test_the_plan_value_equals_scips_plain_model(seed, risk):
    table = make_table(n_sites=8, n_levels=3, seed=seed, n_scenarios=48)
    problem = random_problem(table, seed)
    if risk == "aversion":
        problem = dataclasses.replace(problem, risk_aversion=0.7)
    else:
        neutral = solve_plan(table, problem, gap_rel=1e-9)
        if neutral.status != SolveStatus.OPTIMAL:
            pytest.skip("no feasible plan")
        floor = neutral.cvar_risk_sample_usd + 0.05 * abs(neutral.cvar_risk_sample_usd)
        problem = dataclasses.replace(problem, cvar_floor_usd=floor)
    ours = solve_plan(table, problem, gap_rel=1e-9, time_limit_s=120)
    _, objective, _ = scip_reference(table, problem, 120)
    if ours.status == SolveStatus.INFEASIBLE:
        assert math.isnan(objective)
        return
    assert ours.objective_usd == pytest.approx(objective, rel=1e-6, abs=1e3)
