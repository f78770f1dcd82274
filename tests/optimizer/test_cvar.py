"""(c) CVaR: the exact discrete CVaR, and the model's CVaR equals the plan's recomputed one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pulp
import pytest

from siteopt.optimizer.model import build_model, seed_cvar, tail_weights
from siteopt.optimizer.results import portfolio_cvar
from siteopt.optimizer.solve import SolveStatus, solve_plan

from .brute import rockafellar_uryasev
from .conftest import make_table, random_problem


def _rockafellar_uryasev_lp(npv: np.ndarray, alpha: float) -> float:
    """max eta - 1/((1-alpha)K) sum s_k, s_k >= eta - npv_k, s_k >= 0, solved by HiGHS."""
    prob = pulp.LpProblem("ru", pulp.LpMaximize)
    eta = prob.add_variable("eta")
    s = prob.add_variable_dict("s", range(len(npv)), lowBound=0.0)
    m = (1.0 - alpha) * len(npv)
    prob.setObjective(pulp.LpAffineExpression([(eta, 1.0)] + [(v, -1.0 / m) for v in s.values()]))
    for k, v in s.items():
        prob.addConstraint(
            pulp.LpConstraint(
                pulp.LpAffineExpression([(v, 1.0), (eta, -1.0)]),
                pulp.LpConstraintGE,
                f"tail_{k}",
                -float(npv[k]),
            )
        )
    prob.solve(pulp.HiGHS(msg=False))
    return float(pulp.value(prob.objective))


@pytest.mark.parametrize("k, alpha", [(37, 0.9), (40, 0.9), (256, 0.95), (10, 0.95), (7, 0.5)])
def test_portfolio_cvar_is_the_rockafellar_uryasev_optimum(k, alpha):
    npv = np.random.default_rng(k).normal(100.0, 30.0, size=k)
    assert portfolio_cvar(npv, alpha) == pytest.approx(
        _rockafellar_uryasev_lp(npv, alpha), rel=1e-9, abs=1e-9
    )
    assert portfolio_cvar(npv, alpha) == pytest.approx(
        rockafellar_uryasev(npv[None, :], alpha)[0], rel=1e-12
    )


def test_portfolio_cvar_hand_checked():
    # K = 10, alpha 0.75: m = 2.5 -> (1 + 2 + 0.5 * 3) / 2.5
    npv = np.array([5.0, 3.0, 1.0, 9.0, 2.0, 8.0, 7.0, 6.0, 4.0, 10.0])
    assert portfolio_cvar(npv, 0.75) == pytest.approx(4.5 / 2.5)
    assert portfolio_cvar(npv, 0.9) == pytest.approx(1.0)
    stacked = portfolio_cvar(np.stack([npv, npv + 1.0]), 0.75)
    np.testing.assert_allclose(stacked, [1.8, 2.8])


def test_tail_weights_lie_in_the_risk_envelope():
    npv = np.random.default_rng(3).normal(size=256)
    q = tail_weights(npv, 0.95)
    assert q.sum() == pytest.approx(1.0)
    assert q.min() >= 0.0 and q.max() <= 1.0 / (0.05 * 256) + 1e-15
    assert np.count_nonzero(q) == 13  # 12.8 scenarios: 12 whole, one at 0.8


@pytest.mark.parametrize("method", ["cuts", "full", "lazy"])
@pytest.mark.parametrize("case", ["floor", "aversion"])
def test_reported_cvar_is_the_risk_sample_cvar(method, case):
    table = make_table(
        n_sites=8,
        n_levels=2,
        build_years=(2027, 2028),
        contracts=("hyperscaler-a", "neocloud-b"),
        n_scenarios=64,
        seed=11,
    )
    base = random_problem(table, 11, contracts=())
    neutral = solve_plan(table, base, gap_rel=1e-9)
    extra = (
        dict(cvar_floor_usd=neutral.cvar_risk_sample_usd + 5e6)
        if case == "floor"
        else dict(risk_aversion=0.8)
    )
    result = solve_plan(table, dataclasses.replace(base, **extra), cvar_method=method, gap_rel=1e-9)
    assert result.status == SolveStatus.OPTIMAL
    rows = list(result.chosen.values())
    recomputed = portfolio_cvar(table.risk_npv_usd[rows].sum(axis=0), base.cvar_alpha)
    assert result.cvar_risk_sample_usd == pytest.approx(recomputed, rel=1e-12)
    assert result.cvar_in_model_usd == pytest.approx(recomputed, rel=1e-7)
    if case == "floor":
        assert result.cvar_risk_sample_usd >= neutral.cvar_risk_sample_usd + 5e6 - 1.0
        assert result.expected_npv_usd <= neutral.expected_npv_usd + 1e-3


def test_methods_agree_beyond_brute_force():
    table = make_table(
        n_sites=14,
        n_levels=3,
        build_years=(2027, 2028),
        contracts=("hyperscaler-a", "neocloud-b"),
        n_scenarios=128,
        cvar_alpha=0.95,
        seed=5,
    )
    neutral = solve_plan(table, random_problem(table, 5), gap_rel=1e-9)
    problem = random_problem(
        table, 5, cvar_floor_usd=neutral.cvar_risk_sample_usd + 2e7, risk_aversion=0.3
    )
    results = {
        m: solve_plan(table, problem, cvar_method=m, gap_rel=1e-9) for m in ("cuts", "full", "lazy")
    }
    objectives = {m: r.objective_usd for m, r in results.items()}
    assert all(r.status == SolveStatus.OPTIMAL for r in results.values()), objectives
    assert objectives["cuts"] == pytest.approx(objectives["full"], rel=1e-7)
    assert objectives["lazy"] == pytest.approx(objectives["full"], rel=1e-7)


def test_full_model_eta_and_tail_variables_give_the_cvar():
    from siteopt.optimizer.engine import SolverSettings, optimize
    from siteopt.optimizer.model import build_model

    table = make_table(
        n_sites=6, n_levels=2, build_years=(2027, 2028), n_scenarios=50, cvar_alpha=0.9, seed=8
    )
    problem = random_problem(table, 8, contracts=(), risk_aversion=1.5)
    model = build_model(table, problem, cvar_method="full")
    outcome = optimize(model, SolverSettings(gap_rel=1e-9))
    rows = outcome.plan.chosen
    from_variables = pulp.value(model.cvar.expression) * 1e6
    assert from_variables == pytest.approx(
        portfolio_cvar(table.risk_npv_usd[rows].sum(axis=0), 0.9), rel=1e-7
    )


def test_the_cvar_method_is_chosen_by_problem_and_size():
    """R-U tail rows for a CVaR in the objective of a small model, cuts for a floor alone
    and for large models (the measurements in benchmarks/RESULTS.md)."""
    import dataclasses

    from siteopt.optimizer.options import PlanProblem
    from siteopt.optimizer.solve import LAZY_MAX_CELLS, choose_cvar_method

    neutral = PlanProblem(budget_usd_by_year={2027: 1.0})
    weighted = dataclasses.replace(neutral, risk_aversion=0.5)
    floored = dataclasses.replace(neutral, cvar_floor_usd=1.0)
    assert choose_cvar_method(weighted, 426, 256) == "lazy"
    assert choose_cvar_method(weighted, LAZY_MAX_CELLS // 256 + 1, 256) == "cuts"
    assert choose_cvar_method(floored, 426, 256) == "cuts"
    assert choose_cvar_method(neutral, 426, 256) == "cuts"


def test_presolve_is_chosen_by_problem():
    import dataclasses

    from siteopt.optimizer.options import PlanProblem
    from siteopt.optimizer.solve import choose_presolve

    neutral = PlanProblem(budget_usd_by_year={2027: 1.0})
    assert not choose_presolve(neutral)
    assert choose_presolve(dataclasses.replace(neutral, cvar_floor_usd=1.0))
    both = dataclasses.replace(neutral, cvar_floor_usd=1.0, risk_aversion=0.5)
    assert not choose_presolve(both)


def test_a_seed_carries_what_the_solve_learnt_not_the_starting_cuts():
    """A ``lazy`` model started from a ``cuts`` solve's seed gets the tail rows of its cuts,
    not a row per scenario (the uniform starting cut weighs them all), and a seeded solve
    finds the same optimum."""
    table = make_table(n_sites=4, n_levels=2, seed=3, n_scenarios=200)
    floor = dataclasses.replace(random_problem(table, 3), risk_aversion=0.0, cvar_floor_usd=-1e12)
    first = solve_plan(table, floor, gap_rel=1e-9)
    assert first.cvar_method == "cuts"
    uniform = np.full(200, 1.0 / 200)
    assert not any(np.array_equal(w, uniform) for w in first.cvar_seed.weights)
    weighted = dataclasses.replace(floor, cvar_floor_usd=None, risk_aversion=0.5)
    model = build_model(table, weighted, cvar_method="lazy")
    before = len(model.cvar.scenarios)
    seed_cvar(model, first.cvar_seed)
    tails = {int(k) for w in first.cvar_seed.weights for k in np.flatnonzero(w)}
    assert len(model.cvar.scenarios) <= before + len(tails) < 200
    for method in ("lazy", "cuts"):
        cold = solve_plan(table, weighted, gap_rel=1e-9, cvar_method=method)
        warm = solve_plan(
            table, weighted, gap_rel=1e-9, cvar_method=method, cvar_seed=first.cvar_seed
        )
        assert warm.objective_usd == pytest.approx(cold.objective_usd, rel=1e-9)
