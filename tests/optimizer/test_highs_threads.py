"""HiGHS's thread count is fixed once per process (optimizer/highs.py:scheduler_threads):
many solves in one process with changing settings (threads, CVaR method, time limits,
gaps) all run, and give the same plans as the first. Resetting HiGHS's global scheduler
between runs, as this layer used to when ``threads`` changed, is a pattern HiGHS fixed
upstream as a segfault; one was seen once in the slow fuzz test."""

from __future__ import annotations

import pytest

from siteopt.optimizer import highs
from siteopt.optimizer.solve import solve_plan

from .conftest import make_table, random_problem

pytestmark = pytest.mark.skipif(not highs.highs_available(), reason="highspy not installed")


def test_many_solves_with_changing_settings_in_one_process():
    table = make_table(n_sites=8, n_levels=3, seed=3)
    problem = random_problem(table, seed=3, risk_aversion=0.5)
    first = solve_plan(table, problem, solver="highs", threads=1)
    fixed = highs.scheduler_threads(None)
    settings = [
        {"threads": 2},
        {"threads": None},
        {"threads": 3, "cvar_method": "full"},
        {"threads": 1, "cvar_method": "cuts", "gap_rel": 1e-6},
        {"threads": 4, "time_limit_s": 30.0},
    ]
    for k in range(30):
        result = solve_plan(table, problem, solver="highs", **settings[k % len(settings)])
        assert result.status in ("optimal", "feasible")
        assert result.objective_usd == pytest.approx(first.objective_usd, rel=1e-6)
        assert result.chosen == first.chosen
        assert highs.scheduler_threads(k % 5 + 1) == fixed  # never reset
