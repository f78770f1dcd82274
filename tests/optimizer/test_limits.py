"""(e) A tiny time limit on a bigger instance returns a plan with a gap, or infeasible with
timed_out; it never crashes. Plus solver choice and the working directory left clean."""

from __future__ import annotations

import dataclasses
import os

import pytest

from siteopt.optimizer import engine
from siteopt.optimizer.solve import SolverUnavailable, SolveStatus, solve_plan

from .conftest import make_table, random_problem


@pytest.fixture(scope="module")
def big_table():
    return make_table(
        n_sites=120,
        n_levels=8,
        build_years=(2027, 2028, 2029),
        contracts=("hyperscaler-a", "neocloud-b"),
        n_scenarios=64,
        cvar_alpha=0.95,
        seed=21,
    )


@pytest.mark.parametrize("limit_s", [1e-3, 0.3])
@pytest.mark.parametrize("risk", ["neutral", "floor", "aversion"])
def test_tiny_time_limit(big_table, limit_s, risk, solver):
    problem = random_problem(big_table, 21, contracts=())
    if risk == "floor":
        neutral = solve_plan(big_table, problem, time_limit_s=30)
        problem = dataclasses.replace(problem, cvar_floor_usd=neutral.cvar_risk_sample_usd + 1e8)
    elif risk == "aversion":
        problem = dataclasses.replace(problem, risk_aversion=1.0)
    result = solve_plan(big_table, problem, time_limit_s=limit_s, solver=solver)
    assert result.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE, SolveStatus.INFEASIBLE)
    if result.status == SolveStatus.INFEASIBLE:
        assert result.timed_out
        assert result.diagnosis == ()
    else:
        assert result.mip_gap is not None and result.mip_gap >= 0.0
        assert len(result.chosen) == 120
        if result.status == SolveStatus.FEASIBLE:
            assert result.timed_out or result.mip_gap > 0.005


def test_feasible_with_a_gap_reported(big_table):
    problem = random_problem(big_table, 21, contracts=(), risk_aversion=1.0)
    result = solve_plan(big_table, problem, time_limit_s=60, gap_rel=0.2)
    assert result.status == SolveStatus.OPTIMAL
    assert 0.0 <= result.mip_gap <= 0.2


def test_unknown_or_missing_solver(monkeypatch, big_table):
    problem = random_problem(big_table, 21)
    with pytest.raises(SolverUnavailable, match="unknown MILP solver"):
        solve_plan(big_table, problem, solver="gurobi")
    monkeypatch.setattr(engine, "cbc_path", lambda: None)
    with pytest.raises(SolverUnavailable, match="pip install cbcbox"):
        solve_plan(big_table, problem, solver="cbc")
    monkeypatch.setattr(engine, "highs_available", lambda: False)
    assert engine.default_solver() == "cbc"
    with pytest.raises(SolverUnavailable, match="pip install highspy"):
        solve_plan(big_table, problem, solver="highs")


def test_no_files_left_in_the_working_directory(tmp_path, monkeypatch, solver):
    table = make_table(n_sites=5, n_levels=2, seed=2)
    monkeypatch.chdir(tmp_path)
    result = solve_plan(table, random_problem(table, 2, risk_aversion=0.5), solver=solver)
    assert result.solver == solver
    assert result.status in (SolveStatus.OPTIMAL, SolveStatus.INFEASIBLE)
    assert os.listdir(tmp_path) == []


def test_thread_counts_can_change_between_solves():
    # HiGHS refuses a threads option unlike its running scheduler's; the solver restarts it.
    table = make_table(n_sites=10, n_levels=3, build_years=(2027, 2028), seed=3)
    problem = random_problem(table, 3, contracts=(), risk_aversion=0.5)
    objectives = {solve_plan(table, problem, threads=t).objective_usd for t in (2, 1, None, 3)}
    assert len(objectives) == 1


@pytest.mark.parametrize("risk", ["aversion", "floor"])
def test_the_time_limit_only_ends_the_search(big_table, risk):
    """Nothing inside the search is a share of the clock (the LP cut phase ends when its
    CVaR is exact, the start heuristic on a node limit): a run that finishes makes the
    same rounds and returns the same plan under any limit, and every time."""
    problem = random_problem(big_table, 21, contracts=())
    if risk == "floor":
        neutral = solve_plan(big_table, problem, time_limit_s=60)
        problem = dataclasses.replace(problem, cvar_floor_usd=neutral.cvar_risk_sample_usd + 1e8)
    else:
        problem = dataclasses.replace(problem, risk_aversion=1.0)
    runs = [solve_plan(big_table, problem, time_limit_s=s) for s in (60.0, 60.0, 60.0, 600.0)]
    assert all(r.status == SolveStatus.OPTIMAL and not r.timed_out for r in runs)
    first = runs[0]
    for other in runs[1:]:
        assert other.chosen == first.chosen
        assert other.objective_usd == first.objective_usd
        assert (other.rounds, other.lp_rounds) == (first.rounds, first.lp_rounds)
