"""Near-optimal alternatives (optimizer/alternatives.py) against enumeration: each is the
feasible plan within the E[NPV] bound that differs from the plans before it at the most
sites (summed), and no plan comes twice."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from siteopt.optimizer.alternatives import alternatives
from siteopt.optimizer.solve import solve_plan

from .brute import enumerate_plans
from .conftest import make_table, random_problem


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("within", [0.02, 0.3])
def test_alternatives_are_the_most_different_plans_by_enumeration(solver, seed, within):
    table = make_table(n_sites=4, n_levels=2, seed=seed)
    problem = random_problem(table, seed)
    every = enumerate_plans(table, problem)
    if not every.feasible.any():
        pytest.skip("no feasible plan")
    best = solve_plan(table, problem, solver=solver, gap_rel=1e-9)
    optimum = tuple(int(best.chosen[s]) for s in best.chosen)
    e_best = every.expected[every.feasible].max()
    bound = e_best - within * abs(e_best)
    found = alternatives(table, problem, optimum, 3, within, solver=solver, gap_rel=1e-9)
    previous = [np.array(optimum)]
    for alt in found:
        rows = np.array(alt.rows)
        k = int(np.flatnonzero((every.plans == rows).all(axis=1))[0])
        assert every.feasible[k] and every.expected[k] >= bound - 1e-3
        assert all((rows != p).any() for p in previous)  # a new plan
        assert alt.distance == int((rows != previous[0]).sum())
        assert alt.expected_npv_usd == pytest.approx(every.expected[k], rel=1e-9, abs=1e-3)
        # the most different plan of those allowed, by the summed distance
        allowed = every.feasible & (every.expected >= bound - 1e-3)
        for p in previous:
            allowed &= (every.plans != p).any(axis=1)
        score = sum((every.plans != p).sum(axis=1) for p in previous)
        assert sum(int((rows != p).sum()) for p in previous) == score[allowed].max()
        previous.append(rows)
    # fewer alternatives only when no other plan qualifies
    if len(found) < 3:
        left = every.feasible & (every.expected >= bound - 1e-3)
        for p in previous:
            left &= (every.plans != p).any(axis=1)
        assert not left.any()


def test_a_cvar_floor_holds_for_every_alternative():
    table = make_table(n_sites=4, n_levels=2, seed=3, n_scenarios=40)
    problem = random_problem(table, 3)
    neutral = solve_plan(table, problem, gap_rel=1e-9)
    floored = dataclasses.replace(problem, cvar_floor_usd=neutral.cvar_risk_sample_usd - 5e7)
    best = solve_plan(table, floored, gap_rel=1e-9)
    optimum = tuple(int(best.chosen[s]) for s in best.chosen)
    every = enumerate_plans(table, floored)
    for alt in alternatives(table, floored, optimum, 4, 0.5):
        k = int(np.flatnonzero((every.plans == np.array(alt.rows)).all(axis=1))[0])
        assert every.feasible[k], alt  # the enumeration's feasibility includes the floor


def test_bad_arguments_are_refused():
    table = make_table(n_sites=2, n_levels=1, seed=1)
    with pytest.raises(ValueError, match="within"):
        alternatives(table, random_problem(table, 1), (0, 2), 1, 1.5)
