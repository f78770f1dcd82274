# ruff: noqa: E501  (verbatim CBC log lines)
"""Truthful status from every solver: the gap CBC proved, read from its log, not the gap
it was allowed; and the same fields from CBC as from HiGHS."""

from __future__ import annotations

import math

import pytest

from siteopt.optimizer.engine import cbc_bound, cbc_path
from siteopt.optimizer.solve import SolveStatus, solve_plan

from .conftest import make_table, random_problem

# PuLP hands CBC the negated objective: its progress lines speak of a minimisation
COMPLETED = """Cbc0010I After 0 nodes, 1 on tree, -3969.2312 best solution, best possible -4066.8259 (0.10 seconds)
Cbc0001I Search completed - best objective -3999.61696611951, took 4203 iterations and 258 nodes (0.47 seconds)
Result - Optimal solution found
"""
ON_GAP = """Cbc0010I After 100 nodes, 3 on tree, -3999.5 best solution, best possible -3999.9 (0.2 seconds)
Cbc0011I Exiting as integer gap of 0.25 less than 1e-10 or 0.01%
Cbc0001I Search completed - best objective -3999.5, took 10 iterations and 100 nodes (0.3 seconds)
"""
STOPPED = """Cbc0010I After 0 nodes, 1 on tree, -5276.8236 best solution, best possible -5594.3132 (0.99 seconds)
Cbc0020I Exiting on maximum time
Cbc0005I Partial search - best objective -5463.8823 (best possible -5594.3132), took 3750 iterations and 294 nodes (2.96 seconds)
Result - Stopped on time limit

Objective value:                5463.88235640
Upper bound:                    5594.313
"""


def test_the_bound_cbc_proved_is_read_from_its_log():
    assert cbc_bound(COMPLETED, 3999.61696611951, stopped=False) == 3999.61696611951
    assert cbc_bound(ON_GAP, 3999.5, stopped=False) == pytest.approx(3999.75)
    assert cbc_bound(STOPPED, 5463.8823, stopped=True) == pytest.approx(5594.3132)
    assert cbc_bound("Upper bound:  1.5e+03\n", 1400.0, stopped=True) == 1500.0
    assert math.isnan(cbc_bound("nothing here", 1.0, stopped=True))


@pytest.mark.skipif(cbc_path() is None, reason="no CBC binary (pip install cbcbox)")
def test_cbc_reports_the_gap_it_proved_and_the_fields_highs_does():
    table = make_table(
        n_sites=12, n_levels=3, build_years=(2027, 2028), contracts=("a",),
        n_scenarios=32, cvar_alpha=0.95, seed=5,
    )  # fmt: skip
    problem = random_problem(table, 5, contracts=())
    cbc = solve_plan(table, problem, solver="cbc", gap_rel=0.05)
    highs = solve_plan(table, problem, solver="highs", gap_rel=1e-9)
    assert cbc.status == SolveStatus.OPTIMAL
    # a completed search proves its incumbent optimal, however wide the gap allowed
    if cbc.objective_usd == pytest.approx(highs.objective_usd, rel=1e-9):
        assert cbc.mip_gap is not None and cbc.mip_gap <= 1e-9
    assert 0.0 <= cbc.mip_gap <= 0.05
    same = ("status", "mip_gap", "objective_usd", "chosen", "expected_npv_usd", "timed_out")
    for name in same:
        assert hasattr(cbc, name) and hasattr(highs, name), name
