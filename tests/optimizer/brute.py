"""Brute force: every plan of a small table, valued and checked with plain numpy.

Written apart from the optimizer (no import from it) so that the MILP is checked
against an independent reading of docs/model.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from siteopt.optimizer.options import OptionTable, PlanProblem


def rockafellar_uryasev(npv: np.ndarray, alpha: float) -> np.ndarray:
    """CVaR of each row of ``npv`` (plans x K) as max over eta of
    ``eta - 1/((1-alpha) K) sum_k (eta - npv_k)^+``; the max sits at a sample value."""
    k = npv.shape[1]
    m = (1.0 - alpha) * k
    best = np.full(npv.shape[0], -np.inf)
    for j in range(k):
        eta = npv[:, j : j + 1]
        value = eta[:, 0] - np.maximum(eta - npv, 0.0).sum(axis=1) / m
        best = np.maximum(best, value)
    return best


@dataclass(frozen=True)
class Enumeration:
    plans: np.ndarray  # (P, S) table rows
    feasible: np.ndarray  # (P,) bool
    expected: np.ndarray  # (P,) [USD]
    cvar: np.ndarray  # (P,) [USD]
    objective: np.ndarray  # (P,) [USD]

    def best(self) -> int | None:
        """Index of the best feasible plan; None when none is feasible."""
        if not self.feasible.any():
            return None
        return int(np.argmax(np.where(self.feasible, self.objective, -np.inf)))


def _budget_ok(frame, years, plans, problem: PlanProblem, tol) -> np.ndarray:
    ok = np.ones(len(plans), dtype=bool)
    spent = np.zeros(len(plans))
    for year in years:
        spend = frame[f"capex_{year}_usd"].to_numpy()[plans].sum(axis=1)
        spent = spent + spend
        if problem.carry_over:
            limit = sum(v for y, v in problem.budget_usd_by_year.items() if y <= year)
            ok &= spent <= limit + tol
        else:
            ok &= spend <= problem.budget_usd_by_year.get(year, 0.0) + tol
    return ok


def _contracts_ok(table: OptionTable, plans, problem: PlanProblem) -> np.ndarray:
    """Each contract's min, max and online_by, summing the MW of every hall (tranche) an
    option builds on it."""
    ok = np.ones(len(plans), dtype=bool)
    halls = table.tranche_frame()
    row = halls["row"].to_numpy()
    mw = halls["ai_it_mw"].to_numpy()
    contract = halls["contract"].astype(str).to_numpy()
    month = halls["online_month"].astype(str).to_numpy()
    n = len(table.table)
    for c in problem.contracts:
        on_c = np.zeros(n)
        np.add.at(on_c, row, np.where(contract == c.name, mw, 0.0))
        on_c = on_c[plans].sum(axis=1)
        early = np.zeros(n)
        np.add.at(
            early,
            row,
            np.where((contract == c.name) & (month <= (c.online_by or "9999-99")), mw, 0.0),
        )
        early = early[plans].sum(axis=1)
        signed = (on_c > 0) | c.must_sign
        ok &= ~signed | ((on_c >= c.min_mw - 1e-9) & (on_c <= c.max_mw + 1e-9))
        if c.online_by:
            ok &= ~signed | (early >= c.min_mw - 1e-9)
    return ok


def enumerate_plans(table: OptionTable, problem: PlanProblem) -> Enumeration:
    frame = table.table
    sites = list(dict.fromkeys(frame["site"]))
    site_rows = [np.flatnonzero(frame["site"].to_numpy() == s) for s in sites]
    plans = np.array(list(product(*site_rows)), dtype=np.int64)
    expected = frame["expected_npv_usd"].to_numpy()[plans].sum(axis=1)
    npv = table.risk_npv_usd[plans].sum(axis=1)  # (P, K)
    cvar = rockafellar_uryasev(npv, problem.cvar_alpha)
    feasible = _budget_ok(frame, table.years, plans, problem, tol=1e-3)
    feasible &= _contracts_ok(table, plans, problem)
    if problem.min_hashrate_eh is not None:
        for year in table.years:
            eh = frame[f"mining_eh_{year}"].to_numpy()[plans].sum(axis=1)
            feasible &= eh >= problem.min_hashrate_eh - 1e-9
    if problem.cvar_floor_usd is not None:
        feasible &= cvar >= problem.cvar_floor_usd - 1e-3
    objective = expected + problem.risk_aversion * cvar
    return Enumeration(plans, feasible, expected, cvar, objective)


def check_milp_is_best(table: OptionTable, problem: PlanProblem, solve) -> np.ndarray:
    """``solve(table, problem)`` (the MILP, passed in: this module imports nothing of it)
    finds a feasible plan whose objective is the best enumerated; where the best is ahead
    of the second by more than the tolerance, that very plan. Returns the chosen rows."""
    truth = enumerate_plans(table, problem)
    best = truth.best()
    result = solve(table, problem)
    assert result.status.value == "optimal"
    expected = truth.objective[best]
    assert abs(result.objective_usd - expected) <= 1e-7 * abs(expected) + 1e-3
    chosen = np.array(list(result.chosen.values()))
    assert truth.feasible[np.flatnonzero((truth.plans == chosen).all(axis=1))[0]]
    margin = np.sort(np.where(truth.feasible, truth.objective, -np.inf))[-2:]
    if margin[1] - margin[0] > 1e-6 * abs(margin[1]):
        np.testing.assert_array_equal(chosen, truth.plans[best])
    return chosen
