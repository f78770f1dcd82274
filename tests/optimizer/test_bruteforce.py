"""(a) The MILP's plan is the best of all plans enumerated by brute force."""

from __future__ import annotations

import numpy as np
import pytest

from siteopt.optimizer.solve import SolveStatus, solve_plan

from .brute import enumerate_plans
from .conftest import make_table, random_problem

SEEDS = [0, 1, 2, 3]
GAP_REL = 1e-9  # asked of the solver
REPORTED_GAP_CAP = 1e-6  # a "feasible" stop must still have proven this close
SHAPES = {
    "4x5": dict(n_sites=4, n_levels=2, build_years=(2027, 2028), contracts=("hyperscaler-a",)),
    "3x9": dict(
        n_sites=3, n_levels=2, build_years=(2027, 2028), contracts=("hyperscaler-a", "neocloud-b")
    ),
}


def _table(shape: str, seed: int):
    return make_table(**SHAPES[shape], n_scenarios=40, cvar_alpha=0.9, seed=seed)


def _floor_between(cvars: np.ndarray, feasible: np.ndarray, best: int) -> float | None:
    """A CVaR floor strictly between plans' CVaRs, above the unconstrained best's."""
    above = np.unique(np.round(cvars[feasible & (cvars > cvars[best] + 1.0)], 3))
    if len(above) < 2:
        return None
    return float(0.5 * (above[len(above) // 2 - 1] + above[len(above) // 2]))


def _check(table, problem, method, solver="highs"):
    truth = enumerate_plans(table, problem)
    best = truth.best()
    result = solve_plan(table, problem, cvar_method=method, gap_rel=GAP_REL, solver=solver)
    if best is None:
        assert result.status == SolveStatus.INFEASIBLE
        assert result.diagnosis
        return None
    # The solver promises the gap it reports, not the 1e-9 asked for: HiGHS may stop at a
    # proven gap of ~1e-8 and say "feasible". Hold it to that promise, never a tighter one.
    assert result.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE), result.diagnosis
    assert not result.timed_out
    gap = GAP_REL if result.status == SolveStatus.OPTIMAL else result.mip_gap
    assert gap is not None and np.isfinite(gap) and gap <= REPORTED_GAP_CAP, gap
    expected = truth.objective[best]
    slack = max(gap, 1e-6) * abs(expected) + 1e-3
    assert expected - slack <= result.objective_usd <= expected + 1e-6 * abs(expected) + 1e-3
    chosen = np.array(list(result.chosen.values()))
    assert truth.feasible[np.flatnonzero((truth.plans == chosen).all(axis=1))[0]]
    margin = np.sort(np.where(truth.feasible, truth.objective, -np.inf))[-2:]
    if margin[1] - margin[0] > slack:
        np.testing.assert_array_equal(chosen, truth.plans[best])
    return truth, best


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("seed", SEEDS)
def test_risk_neutral(shape, seed):
    table = _table(shape, seed)
    _check(table, random_problem(table, seed), "cuts")


@pytest.mark.parametrize("method", ["cuts", "full", "lazy"])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("seed", SEEDS)
def test_cvar_floor(method, shape, seed):
    table = _table(shape, seed)
    for contracts in ({}, {"contracts": ()}):  # without contracts when they leave no room
        base = random_problem(table, seed, **contracts)
        truth = enumerate_plans(table, base)
        best = truth.best()
        floor = None if best is None else _floor_between(truth.cvar, truth.feasible, best)
        if floor is not None:
            break
    assert floor is not None
    _check(table, random_problem(table, seed, cvar_floor_usd=floor, **contracts), method)


@pytest.mark.parametrize("method", ["cuts", "full", "lazy"])
@pytest.mark.parametrize("aversion", [0.3, 2.0])
@pytest.mark.parametrize("seed", SEEDS)
def test_risk_aversion(method, aversion, seed):
    table = _table("4x5", seed)
    _check(table, random_problem(table, seed, risk_aversion=aversion), method)


@pytest.mark.parametrize("seed", SEEDS)
def test_hashrate_floor_random(seed):
    table = _table("4x5", seed)
    frame = table.table
    most = frame.groupby("site")["mining_eh_2030"].max().sum()
    least = frame.groupby("site")["mining_eh_2030"].min().sum()
    problem = random_problem(table, seed, min_hashrate_eh=float(0.5 * (most + least)))
    _check(table, problem, "cuts")
