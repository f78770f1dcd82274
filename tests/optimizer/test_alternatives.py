"""Near-optimal alternatives (optimizer/alternatives.py) against enumeration: each is the
feasible plan within the E[NPV] bound farthest from the plans before it (summed), by sites
changed or by AI MW per contract and build year, and no plan (or, by totals, no set of
totals) comes twice."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from siteopt.optimizer.alternatives import alternatives, plan_totals
from siteopt.optimizer.solve import solve_plan

from .brute import enumerate_plans
from .conftest import make_table, random_problem


def _case(solver, seed: int, within: float):
    """A random 4-site table and problem, every plan enumerated, the MILP's optimum, and the
    alternatives' E[NPV] bound; skipped when no plan is feasible."""
    table = make_table(n_sites=4, n_levels=2, seed=seed)
    problem = random_problem(table, seed)
    every = enumerate_plans(table, problem)
    if not every.feasible.any():
        pytest.skip("no feasible plan")
    best = solve_plan(table, problem, solver=solver, gap_rel=1e-9)
    optimum = tuple(int(best.chosen[s]) for s in best.chosen)
    e_best = every.expected[every.feasible].max()
    return table, problem, every, optimum, e_best - within * abs(e_best)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("within", [0.02, 0.3])
def test_alternatives_are_the_most_different_plans_by_enumeration(solver, seed, within):
    table, problem, every, optimum, bound = _case(solver, seed, within)
    found = alternatives(
        table, problem, optimum, 3, within, solver=solver, gap_rel=1e-9, differ_by="sites"
    )
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


# seed 23 at within 0.3 and 0.9 reaches moves of more than half a total's range: a big-M
# of the range alone (not twice it) folded them back and picked a nearer plan
@pytest.mark.parametrize(
    ("seed", "within"),
    [*((s, w) for s in range(6) for w in (0.05, 0.3)), (23, 0.3), (23, 0.9)],
)
def test_totals_alternatives_are_the_farthest_strategies_by_enumeration(solver, seed, within):
    table, problem, every, optimum, bound = _case(solver, seed, within)
    totals = plan_totals(table)
    of = totals.coefs[:, every.plans].sum(axis=2).T  # (plans, totals): each plan's MW totals
    found = alternatives(
        table, problem, optimum, 3, within, solver=solver, gap_rel=1e-9, differ_by="totals"
    )
    previous = [np.array(optimum)]
    allowed = every.feasible & (every.expected >= bound - 1e-3)
    for alt in found:
        rows = np.array(alt.rows)
        k = int(np.flatnonzero((every.plans == rows).all(axis=1))[0])
        assert allowed[k]
        # a different strategy: its MW per contract or per build year differ from each earlier
        for p in previous:
            assert np.abs(totals.of(rows) - totals.of(p)).sum() > 1e-6
        assert alt.distance_mw == pytest.approx(totals.distance(rows, previous[0]))
        # the farthest of the plans allowed, by summed totals distance (enumerated)
        candidates = allowed.copy()
        for p in previous:
            candidates &= np.abs(of - totals.of(p)).sum(axis=1) > 1e-6
        score = sum(np.abs(of - totals.of(p)).sum(axis=1) for p in previous)
        mine = sum(totals.distance(rows, p) for p in previous)
        assert mine == pytest.approx(score[candidates].max(), abs=1e-6)
        previous.append(rows)
    if len(found) < 3:  # fewer only when no plan with new totals qualifies
        left = allowed.copy()
        for p in previous:
            left &= np.abs(of - totals.of(p)).sum(axis=1) > 1e-6
        assert not left.any()


def test_totals_count_ai_mw_by_contract_and_by_build_year():
    table = make_table(n_sites=3, n_levels=2, seed=2)
    totals = plan_totals(table)
    frame = table.table
    ai = frame["ai_it_mw"].to_numpy() > 0
    assert len(totals.names) == len(set(frame["contract"][ai])) + len(set(frame["build_year"][ai]))
    rows = [int(frame.index[(frame["site"] == s) & ai][-1]) for s in dict.fromkeys(frame["site"])]
    by_contract = frame.loc[rows].groupby("contract")["ai_it_mw"].sum()
    for name, value in zip(totals.names, totals.of(rows), strict=True):
        kind, key = name.split(" ", 1)
        if kind == "contract":
            assert value == pytest.approx(by_contract.get(key, 0.0))
    # every AI MW counted once by contract and once by year
    assert totals.of(rows).sum() == pytest.approx(2 * frame.loc[rows, "ai_it_mw"].sum())


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
    with pytest.raises(ValueError, match="differ_by"):
        alternatives(table, random_problem(table, 1), (0, 2), 1, 0.1, differ_by="labels")
