"""The frontier parameterised as w E[NPV] + (1 - w) CVaR (issue 27): each point is the
enumerated optimum of its objective, and the w = 0 point is the best CVaR, then the best
E[NPV] among the plans with that CVaR, so that its E[NPV] is not left to a gap tolerance."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from siteopt.app.pipeline import (
    SolveSettings,
    _best_cvar_then_npv,
    _solve_milp,
    frontier_problem,
    frontier_weights,
)
from siteopt.model.errors import InputError

from ..optimizer.brute import enumerate_plans
from ..optimizer.conftest import make_table, random_problem

SETTINGS = SolveSettings(gap_rel=1e-9, time_limit_s=60.0)


def test_weights_run_from_risk_neutral_to_the_cvar_alone():
    assert frontier_weights(5) == [1.0, 0.75, 0.5, 0.25, 0.0]
    with pytest.raises(InputError, match="--frontier"):
        frontier_weights(1)


@pytest.mark.parametrize("seed", range(4))
def test_each_point_is_the_enumerated_optimum_of_its_weight(seed):
    table = make_table(n_sites=4, n_levels=2, seed=seed, n_scenarios=40)
    problem = random_problem(table, seed)
    every = enumerate_plans(table, problem)
    if not every.feasible.any():
        pytest.skip("no feasible plan")
    valuation = SimpleNamespace(options=table)  # what the MILP reads of a valuation
    ok = every.feasible
    for w in (1.0, 0.6, 0.2):
        result = _solve_milp(valuation, frontier_problem(problem, w), SETTINGS)
        value = w * every.expected + (1 - w) * every.cvar
        mine = w * result.expected_npv_usd + (1 - w) * result.cvar_risk_sample_usd
        assert mine == pytest.approx(value[ok].max(), rel=1e-7, abs=1e-3)
    first, then = _best_cvar_then_npv(valuation, problem, SETTINGS, None)
    best_cvar = every.cvar[ok].max()
    assert first.cvar_risk_sample_usd == pytest.approx(best_cvar, rel=1e-7, abs=1e-3)
    # among the plans with the best CVaR (to the gap), the best E[NPV]
    ties = ok & (every.cvar >= best_cvar - 1e-9 * abs(best_cvar) - 1e-3)
    assert then.expected_npv_usd == pytest.approx(every.expected[ties].max(), rel=1e-9, abs=1e-3)
    assert then.cvar_risk_sample_usd == pytest.approx(best_cvar, rel=1e-7, abs=1e-3)
