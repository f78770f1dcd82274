"""The staged MILP (optimizer/staged.py): a hand-computed value of waiting, one state per
stage equal to the static MILP, non-anticipativity, and brute force over small trees."""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest

from siteopt.optimizer.engine import SolverSettings
from siteopt.optimizer.options import PlanProblem
from siteopt.optimizer.solve import solve_plan
from siteopt.optimizer.staged import StageTree, option_stages, solve_staged

from .brute import enumerate_plans
from .conftest import make_table, random_problem
from .tables import chain_tree

SETTINGS = SolverSettings(presolve=True)


def test_one_site_two_years_waits_for_the_good_state():
    """Keep hashing is worth 100 in the low-hashprice state and 300 in the high one;
    converting now 190 in both; converting next year 250 and 150. Static: the best single
    choice, max(200, 190, 200) = 200 (hashing). Staged: convert next year in the low state
    only, 0.5 x 250 + 0.5 x 300 = 275. The value of waiting is 75 (all in MUSD)."""
    table = make_table(n_sites=1, n_levels=1, build_years=(2027, 2028), n_scenarios=4)
    frame = table.table
    stages = option_stages(table, (2027, 2028))
    keep, now, later = 0, int(np.flatnonzero(stages == 0)[0]), int(np.flatnonzero(stages == 1)[0])
    group = np.zeros((2, len(frame)))
    group[:, keep] = [100e6, 300e6]
    group[:, now] = [190e6, 190e6]
    group[:, later] = [250e6, 150e6]
    frame["expected_npv_usd"] = group.mean(axis=0)
    problem = PlanProblem(budget_usd_by_year={y: 1e12 for y in table.years}, carry_over=True)
    static = solve_plan(table, problem)
    assert static.expected_npv_usd == pytest.approx(200e6)
    tree = StageTree(
        parent=np.array([-1, 0, 0]),
        stage=np.array([0, 1, 1]),
        probability=np.array([1.0, 0.5, 0.5]),
        leaves=np.array([1, 2]),
        stage_years=(2027, 2028),
        group_npv_usd=group,
        risk_group=np.array([0, 1, 0, 1]),
    )
    staged = solve_staged(table, problem, tree, SETTINGS)
    assert staged.status == "optimal"
    assert staged.expected_npv_usd == pytest.approx(275e6, rel=1e-9)
    assert staged.expected_npv_usd - static.expected_npv_usd == pytest.approx(75e6, rel=1e-9)
    assert staged.builds == {1: {0: later}}  # nothing now; convert in the low state only
    assert staged.leaf_rows.tolist() == [[later], [keep]]


@pytest.mark.parametrize("seed", range(6))
def test_one_state_per_stage_is_the_static_plan(seed, solver):
    table = make_table(n_sites=5, n_levels=2, build_years=(2027, 2028, 2029), seed=seed)
    extra = {"risk_aversion": 0.3} if seed % 2 else {}
    problem = random_problem(table, seed, **extra)
    static = solve_plan(table, problem, solver=solver)
    tree = chain_tree(table, (2027, 2028, 2029), k=1)
    staged = solve_staged(table, problem, tree, SolverSettings(name=solver, presolve=True))
    if static.status == "infeasible":
        assert staged.status == "infeasible"
        return
    rows = [int(static.chosen[s]) for s in static.chosen]
    assert staged.leaf_rows.tolist() == [rows]
    assert staged.expected_npv_usd == pytest.approx(static.expected_npv_usd, rel=1e-12)


def _brute_policy(table, problem, tree, stages):
    """Best pair of leaf plans of a root with two leaves, by enumeration: each leaf plan
    feasible on its own, the two equal at every site that builds now."""
    plans = enumerate_plans(table, problem)
    feasible = plans.plans[plans.feasible]
    group = tree.group_npv_usd
    mean = table.table["expected_npv_usd"].to_numpy()
    p = tree.probability[tree.leaves]
    best, best_pair = -np.inf, None
    now = stages == 0
    for a, b in product(range(len(feasible)), repeat=2):
        la, lb = feasible[a], feasible[b]
        if np.any((now[la] | now[lb]) & (la != lb)):
            continue  # a decision taken now must be the same in both states
        value = 0.0
        for s in range(len(la)):
            if now[la[s]]:
                value += mean[la[s]]
            else:
                value += p[0] * group[0, la[s]] + p[1] * group[1, lb[s]]
        if value > best + 1e-6:
            best, best_pair = value, (la, lb)
    return best, best_pair


@pytest.mark.parametrize("seed", range(8))
def test_two_states_match_brute_force(seed):
    table = make_table(n_sites=3, n_levels=2, build_years=(2027, 2028), seed=seed)
    problem = random_problem(table, seed, **({"contracts": ()} if seed % 2 else {}))
    tree = chain_tree(table, (2027, 2028), k=2, rng=np.random.default_rng(seed))
    stages = option_stages(table, tree.stage_years)
    best, pair = _brute_policy(table, problem, tree, stages)
    staged = solve_staged(table, problem, tree, SETTINGS)
    if pair is None:
        assert staged.status == "infeasible"
        return
    assert staged.expected_npv_usd == pytest.approx(best, rel=1e-9)
    # these draws give the two states different plans: waiting is worth something
    assert staged.expected_npv_usd > solve_plan(table, problem).expected_npv_usd * (1 + 1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_decisions_depend_only_on_what_was_seen(seed):
    """Non-anticipativity: leaves below one node take the same options at every stage up
    to that node's; the staged optimum is never below the static one (it is a policy)."""
    years = (2027, 2028, 2029)
    table = make_table(n_sites=4, n_levels=2, build_years=years, seed=seed)
    problem = random_problem(table, seed, contracts=())
    tree = chain_tree(table, years, k=2, rng=np.random.default_rng(seed))
    stages = option_stages(table, years)
    static = solve_plan(table, problem)
    rows = np.array([int(static.chosen[s]) for s in static.chosen])
    staged = solve_staged(table, problem, tree, SETTINGS, rows)
    assert staged.status == "optimal"
    assert staged.expected_npv_usd >= static.expected_npv_usd - 1e-6 * abs(static.expected_npv_usd)
    for v in range(tree.nodes):
        under = [g for g, leaf in enumerate(tree.leaves) if v in tree.path(int(leaf))]
        seen = [
            [r if 0 <= stages[r] <= tree.stage[v] else -1 for r in staged.leaf_rows[g]]
            for g in under
        ]
        assert all(s == seen[0] for s in seen), f"node {v}"
    for g in range(len(tree.leaves)):  # at most one conversion per site on every path
        assert len(staged.leaf_rows[g]) == 4


@pytest.mark.parametrize("seed", range(3))
def test_a_cvar_floor_holds_in_the_policy_as_in_the_static_plan(seed):
    """With a CVaR floor, one state per stage gives the static plan; with two, the policy's
    CVaR over the risk sample (each scenario on its state's plan) meets the floor."""
    years = (2027, 2028)
    table = make_table(n_sites=3, n_levels=2, build_years=years, seed=seed, n_scenarios=40)
    loose = random_problem(table, seed, contracts=())
    free = solve_plan(table, loose)
    floor = free.cvar_risk_sample_usd + 0.02 * abs(free.cvar_risk_sample_usd)
    problem = random_problem(table, seed, contracts=(), cvar_floor_usd=floor)
    static = solve_plan(table, problem)
    one = solve_staged(table, problem, chain_tree(table, years, k=1), SETTINGS)
    if static.status == "infeasible":
        assert one.status == "infeasible"
        return
    assert one.leaf_rows.tolist() == [[int(static.chosen[s]) for s in static.chosen]]
    two = solve_staged(
        table, problem, chain_tree(table, years, k=2, rng=np.random.default_rng(seed)), SETTINGS
    )
    assert two.status == "optimal" and two.cvar_usd >= floor - 1e-6 * abs(floor)
    assert two.expected_npv_usd >= static.expected_npv_usd * (1 - 1e-9)


def test_a_time_limit_before_any_solution_keeps_the_static_plan(monkeypatch):
    """The static plan is a policy: when the solver is stopped before it returns one, the
    staged result is the static plan in every state, marked as stopped, never a crash."""
    from siteopt.optimizer import staged as staged_module
    from siteopt.optimizer.engine import MasterSolve

    years = (2027, 2028)
    table = make_table(n_sites=3, n_levels=2, build_years=years, seed=3)
    problem = random_problem(table, 3, contracts=())
    static = solve_plan(table, problem)
    rows = np.array([int(static.chosen[s]) for s in static.chosen])
    stopped = MasterSolve(False, False, True, float("nan"), float("nan"))
    monkeypatch.setattr(staged_module, "_run_highs", lambda *a: stopped)
    tree = chain_tree(table, years, k=2, rng=np.random.default_rng(3))
    result = solve_staged(table, problem, tree, SETTINGS, rows)
    assert result.status == "time_limit"
    assert result.leaf_rows.tolist() == [rows.tolist()] * 2
    assert result.expected_npv_usd == pytest.approx(static.expected_npv_usd, rel=1e-9)
