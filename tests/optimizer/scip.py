"""The plain Rockafellar-Uryasev model of a plan problem in OR-Tools' SCIP: an outside
reference for siteopt's MILP (tests/optimizer/test_scip.py, benchmarks/bench_cvar.py).

Written from docs/model.md and the optimizer's data (plan_data, budget_limits), not from
its model builder, so a shared mistake in the model would not pass unnoticed. OR-Tools is
not a siteopt dependency: ``pip install ortools``.
"""

from __future__ import annotations

import time

import numpy as np


def scip_reference(table, problem, limit: float) -> tuple[float, float, list[int]] | None:
    """The plain Rockafellar-Uryasev model in OR-Tools' SCIP: (seconds, objective [USD],
    the chosen table rows); None without OR-Tools. Budgets (siteopt's rows), contracts
    (minimum, maximum, online-by date, signing), the hashrate floor and the CVaR floor as
    in docs/model.md."""
    try:
        from ortools.linear_solver import pywraplp
    except ImportError:
        return None
    from siteopt.optimizer.constraints import budget_limits
    from siteopt.optimizer.data import MONEY_UNIT_USD, plan_data

    data = plan_data(table, problem)
    solver = pywraplp.Solver.CreateSolver("SCIP")
    solver.SetTimeLimit(int(limit * 1000))
    solver.SetSolverSpecificParametersAsString("limits/gap = 1e-4\n")
    n = data.n_options
    x = [solver.BoolVar(f"x{i}") for i in range(n)]

    def dot(coefs, rows=range(n)):
        return sum(float(c) * x[int(i)] for i, c in zip(rows, coefs, strict=True) if c)

    for rows in data.site_rows:
        solver.Add(sum(x[int(i)] for i in rows) == 1)
    for coefs, available in budget_limits(data, problem).values():
        solver.Add(dot(coefs) <= available)
    for terms in problem.contracts:
        on_c = data.mw_on(terms.name)
        rows = np.flatnonzero(on_c > 0)
        u = solver.BoolVar(f"u_{terms.name}")
        mw = dot(on_c[rows], rows)
        solver.Add(mw <= min(terms.max_mw, float(on_c[rows].sum())) * u)
        solver.Add(mw >= terms.min_mw * u)
        if terms.online_by:
            on_time = data.mw_on(terms.name, terms.online_by)
            early = np.flatnonzero(on_time > 0)
            solver.Add(dot(on_time[early], early) >= terms.min_mw * u)
        if terms.must_sign:
            solver.Add(u == 1)
    if problem.min_hashrate_eh is not None:
        for year in data.years:
            solver.Add(dot(data.mining_eh[year]) >= problem.min_hashrate_eh)
    k = data.risk_npv.shape[1]
    eta = solver.NumVar(-solver.infinity(), solver.infinity(), "eta")
    z = [solver.NumVar(0, solver.infinity(), f"z{j}") for j in range(k)]
    for j in range(k):
        solver.Add(z[j] >= eta - dot(data.risk_npv[:, j]))
    cvar = eta - sum(z) / ((1.0 - problem.cvar_alpha) * k)
    objective = dot(data.expected_npv)
    if problem.cvar_floor_usd is not None:
        solver.Add(cvar >= problem.cvar_floor_usd / MONEY_UNIT_USD)
    solver.Maximize(objective + problem.risk_aversion * cvar)
    began = time.perf_counter()
    status = solver.Solve()
    seconds = time.perf_counter() - began
    if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        return seconds, float("nan"), []
    chosen = [i for i in range(n) if x[i].solution_value() > 0.5]
    return seconds, solver.Objective().Value() * MONEY_UNIT_USD, chosen
