"""The runner-up plan and the value of more capital speak in the objective's terms (issue
27): with a CVaR weight, a plan can trail its runner-up in E[NPV] and lead it in the
objective, and the margin, its standard error and the note follow the objective."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from siteopt.app.explain import capital_values
from siteopt.app.pipeline import _runner_up_notes, runner_up_of
from siteopt.optimizer.solve import solve_plan

from ..optimizer.conftest import make_table, random_problem

# 20 equally likely scenarios, CVaR at alpha 0.9: the mean of the worst 2.
PLAN = np.full(20, 100.0)  # E 100, CVaR 100
OTHER = np.array([120.0] * 18 + [0.0, 0.0])  # E 108, CVaR 0


def test_a_plan_behind_in_expected_npv_leads_in_the_objective():
    r = runner_up_of(PLAN, OTHER, 0.9, 0.5, ("site: option",))
    assert r.margin_usd == pytest.approx(-8.0)  # 100 - 108
    assert r.cvar_usd == pytest.approx(0.0) and r.cvar_margin_usd == pytest.approx(100.0)
    # objective: 100 + 0.5 x 100 = 150 against 108 + 0.5 x 0 = 108
    assert r.objective_margin_usd == pytest.approx(42.0)
    # by hand: the per-scenario objective margin is d_k = (100 - y_k) + 0.5 (100 - phi_k),
    # phi_k = eta - (eta - y_k)^+ / 0.1 at eta = 0 (the VaR): phi = 0 everywhere for the
    # runner-up and 100 for the plan, so d = -20 + 50 = 30 (18 times) and 100 + 50 = 150
    d = np.array([30.0] * 18 + [150.0] * 2)
    assert d.mean() == pytest.approx(42.0)
    assert r.objective_margin_se_usd == pytest.approx(d.std(ddof=1) / np.sqrt(20))
    assert r.margin_se_usd == pytest.approx((PLAN - OTHER).std(ddof=1) / np.sqrt(20))


def test_without_a_weight_the_objective_margin_is_the_expected_npv_margin():
    r = runner_up_of(PLAN, OTHER, 0.9, 0.0, ())
    assert r.objective_margin_usd == r.margin_usd
    assert r.objective_margin_se_usd == r.margin_se_usd


def test_the_note_reads_the_objective_margin():
    leads = runner_up_of(PLAN, OTHER, 0.9, 0.5, ())  # +42 with se ~16.5: more than 2 se
    assert leads.objective_margin_usd > 2 * leads.objective_margin_se_usd
    assert _runner_up_notes(leads) == ()  # the E[NPV] margin (-8) alone would have noted it
    close = dataclasses.replace(leads, objective_margin_usd=10.0e6, objective_margin_se_usd=6e6)
    (note,) = _runner_up_notes(close)
    assert "beats the runner-up plan by $10.0M in the objective (E[NPV] + 0.5 x CVaR" in note
    behind = dataclasses.replace(close, objective_margin_usd=-1e6)
    assert "trails the runner-up plan by $1.0M" in _runner_up_notes(behind)[0]
    neutral = dataclasses.replace(close, risk_aversion=0.0)
    assert "by $10.0M in E[NPV]," in _runner_up_notes(neutral)[0]


def _solve(table, problem):
    return lambda changed: solve_plan(table, changed, gap_rel=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_capital_values_are_objective_gains(seed):
    table = make_table(n_sites=4, n_levels=2, seed=seed, n_scenarios=40)
    problem = dataclasses.replace(random_problem(table, seed), risk_aversion=2.0)
    best = solve_plan(table, problem, gap_rel=1e-9)
    if not best.found_plan:
        pytest.skip("no feasible plan")
    rows = tuple(int(best.chosen[s]) for s in best.chosen)
    for c in capital_values(table, problem, rows, _solve(table, problem)):
        assert c.objective_gain_usd >= 0.0
        if not c.changes:
            assert c.objective_gain_usd == 0.0 == c.expected_npv_gain_usd
            continue
        # the gain is the objective's: E[NPV] gained plus the weight times the CVaR gained
        assert c.objective_gain_usd == pytest.approx(
            c.expected_npv_gain_usd + 2.0 * c.cvar_gain_usd, rel=1e-9, abs=1e-3
        )
        assert c.objective_gain_usd > 0.0


def test_a_runner_up_clearly_better_over_all_scenarios_is_said_so():
    r = runner_up_of(OTHER, PLAN, 0.9, 0.5, ())  # the plan is the risky one: -42 in objective
    assert r.objective_margin_usd == pytest.approx(-42.0)
    (note,) = _runner_up_notes(
        dataclasses.replace(r, objective_margin_usd=-30e6, objective_margin_se_usd=1e6)
    )
    assert note.startswith("the runner-up plan beats the plan by $30.0M in the objective")
    assert "more than two standard errors ($1.0M)" in note and "risk_sample" in note
