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
import importlib.util
import time
from pathlib import Path

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


def scip_reference(table, problem, limit: float):
    """tests/optimizer/scip.py's R-U model in SCIP, loaded by path (tests/ is not a
    package): (seconds, objective [USD], rows), or None without OR-Tools."""
    spec = importlib.util.spec_from_file_location(
        "siteopt_scip_reference", ROOT / "tests" / "optimizer" / "scip.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.scip_reference(table, problem, limit)


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
