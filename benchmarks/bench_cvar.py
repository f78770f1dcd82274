"""The risk-weighted MILP on texas.yaml: CVaR in the objective and a binding CVaR floor,
per CVaR method and HiGHS presolve setting, and a 5-point frontier; each to 0.01%.

The valuation runs once (20,000 scenarios by default); every MILP reads the same option
table, so the times compare the methods alone, in one run.

    .venv/bin/python benchmarks/bench_cvar.py                 # texas, 20,000 scenarios
    .venv/bin/python benchmarks/bench_cvar.py --methods cuts --repeat 3

With OR-Tools installed (``pip install ortools``, not a siteopt dependency), the plain
Rockafellar-Uryasev model of the same problem is also solved with SCIP as an outside
reference: the same plan value is expected, and its time is the yardstick.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _texas(scenarios: int):
    from siteopt.app import pipeline
    from siteopt.app.pipeline import SolveSettings
    from siteopt.app.plan import plan_problem
    from siteopt.model.load import load_scenario, with_simulation

    texas = with_simulation(load_scenario(ROOT / "scenarios" / "texas.yaml"), scenarios, None)
    _, valuation = pipeline.value(texas, SolveSettings(backend="numpy"))
    return valuation.options, plan_problem(texas)


def _cases(table, base):
    """CVaR weight 0.5, and a floor 2% above the risk-neutral plan's CVaR (binding)."""
    from siteopt.optimizer.solve import solve_plan

    neutral = solve_plan(table, base, gap_rel=1e-4)
    cvar = neutral.cvar_risk_sample_usd
    floor = cvar + 0.02 * abs(cvar)
    return {
        "CVaR weight 0.5": dataclasses.replace(base, risk_aversion=0.5),
        "binding CVaR floor": dataclasses.replace(base, cvar_floor_usd=floor),
    }


def _solve(table, problem, method, presolve, limit):
    from siteopt.optimizer.solve import solve_plan

    began = time.perf_counter()
    r = solve_plan(
        table,
        problem,
        gap_rel=1e-4,
        time_limit_s=limit,
        cvar_method=method,
        presolve=presolve,
    )
    return time.perf_counter() - began, r


def scip_reference(table, problem, limit: float) -> tuple[float, float] | None:
    """The plain Rockafellar-Uryasev model in OR-Tools' SCIP: (seconds, objective [USD]);
    None without OR-Tools. Budgets, contracts (minimum, maximum, signing) and the floor
    as in docs/model.md; the hashrate floor is not in texas."""
    try:
        from ortools.linear_solver import pywraplp
    except ImportError:
        return None
    from siteopt.optimizer.data import MONEY_UNIT_USD, plan_data

    data = plan_data(table, problem)
    frame = table.table
    solver = pywraplp.Solver.CreateSolver("SCIP")
    solver.SetTimeLimit(int(limit * 1000))
    solver.SetSolverSpecificParametersAsString("limits/gap = 1e-4\n")
    n = data.n_options
    x = [solver.BoolVar(f"x{i}") for i in range(n)]
    for rows in data.site_rows:
        solver.Add(sum(x[int(i)] for i in rows) == 1)
    years = sorted(problem.budget_usd_by_year)
    spent, budget = 0, 0.0
    for year in years:
        capex = frame[f"capex_{year}_usd"].to_numpy() / MONEY_UNIT_USD
        spent = spent + sum(float(c) * x[i] for i, c in enumerate(capex) if c)
        this = problem.budget_usd_by_year[year] / MONEY_UNIT_USD
        budget = budget + this if problem.carry_over else this
        solver.Add(spent <= budget)
    for terms in problem.contracts:
        mine = np.flatnonzero(frame["contract"].to_numpy() == terms.name)
        u = solver.BoolVar(f"u_{terms.name}")
        mw = sum(float(frame["ai_it_mw"].iat[i]) * x[int(i)] for i in mine)
        solver.Add(mw <= terms.max_mw * u)
        solver.Add(mw >= terms.min_mw * u)
        if terms.must_sign:
            solver.Add(u == 1)
    k = data.risk_npv.shape[1]
    eta = solver.NumVar(-solver.infinity(), solver.infinity(), "eta")
    z = [solver.NumVar(0, solver.infinity(), f"z{j}") for j in range(k)]
    for j in range(k):
        col = data.risk_npv[:, j]
        solver.Add(z[j] >= eta - sum(float(c) * x[i] for i, c in enumerate(col) if c))
    cvar = eta - sum(z) / ((1.0 - problem.cvar_alpha) * k)
    objective = sum(float(v) * x[i] for i, v in enumerate(data.expected_npv) if v)
    if problem.cvar_floor_usd is not None:
        solver.Add(cvar >= problem.cvar_floor_usd / MONEY_UNIT_USD)
    solver.Maximize(objective + problem.risk_aversion * cvar)
    began = time.perf_counter()
    solver.Solve()
    return time.perf_counter() - began, solver.Objective().Value() * MONEY_UNIT_USD


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=20_000)
    parser.add_argument("--methods", default="cuts,full")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=300.0)
    parser.add_argument("--frontier", type=int, default=5, help="frontier points (0: none)")
    args = parser.parse_args()
    table, base = _texas(args.scenarios)
    print(f"texas: {len(table.table)} options, risk sample {table.risk_npv_usd.shape[1]}")
    print("| case | method | presolve | status | seconds | gap | objective $M |")
    print("| --- | --- | --- | --- | ---: | ---: | ---: |")
    for name, problem in _cases(table, base).items():
        for method in args.methods.split(","):
            for presolve in (False, True):
                for _ in range(args.repeat):
                    seconds, r = _solve(table, problem, method, presolve, args.time_limit)
                    gap = "-" if r.mip_gap is None else f"{100 * r.mip_gap:.4f}%"
                    print(
                        f"| {name} | {method} | {'on' if presolve else 'off'} | {r.status} | "
                        f"{seconds:.1f} | {gap} | {r.objective_usd / 1e6:,.2f} |",
                        flush=True,
                    )
        reference = scip_reference(table, problem, args.time_limit)
        if reference is not None:
            print(
                f"| {name} | R-U in OR-Tools SCIP | - | - | {reference[0]:.1f} | - | "
                f"{reference[1] / 1e6:,.2f} |",
                flush=True,
            )
    if args.frontier:
        frontier(args)


def frontier(args) -> None:
    """``siteopt solve --frontier N`` on the same scenarios, through the pipeline."""
    from siteopt.app import pipeline
    from siteopt.app.pipeline import SolveSettings
    from siteopt.model.load import load_scenario, with_simulation

    texas = with_simulation(load_scenario(ROOT / "scenarios" / "texas.yaml"), args.scenarios, None)
    settings = SolveSettings(backend="numpy", time_limit_s=args.time_limit)
    outcome = pipeline.solve(texas, settings)
    began = time.perf_counter()
    backend = pipeline.select_backend("numpy")
    points = pipeline.with_frontier(outcome, backend, settings, args.frontier).frontier
    seconds = time.perf_counter() - began
    statuses = ", ".join(points["status"])
    print(f"frontier of {args.frontier} points: {seconds:.1f} s; statuses: {statuses}")
    print(points.to_string(index=False))


if __name__ == "__main__":
    main()
