"""What a solve's explanations cost against its main MILP, with and without the main solve's
CVaR rows or cuts (issue 27: "a CVaR solve's explanations cost at most ~1.5x its main MILP").

    python benchmarks/bench_explain.py [--scenario scenarios/texas.yaml] [--scenarios 20000]
        [--risk-aversion 0.5] [--repeat 3]

The options are valued once; then, alternating in each repeat, the main MILP and the
explanation re-solves (a capital re-solve per budget year and step, and the runner-up) are
timed starting from the main solve's CVaR rows or cuts ("seeded", what solve does) and from
scratch ("cold"). Prints JSON with the medians and their ratios to the main MILP.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

import numpy as np

from siteopt.app.explain import capital_values
from siteopt.app.pipeline import SolveSettings, value
from siteopt.app.plan import plan_problem
from siteopt.model.load import load_scenario, with_simulation
from siteopt.optimizer.solve import solve_plan

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", type=Path, default=REPO / "scenarios" / "texas.yaml")
    parser.add_argument("--scenarios", type=int, default=20_000)
    parser.add_argument("--risk-aversion", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    scenario = with_simulation(load_scenario(args.scenario), args.scenarios, None)
    _, valuation = value(scenario, SolveSettings(backend="numpy"))
    table = valuation.options
    problem = dataclasses.replace(plan_problem(scenario), risk_aversion=args.risk_aversion)
    times: dict[str, list[float]] = {"main": [], "seeded": [], "cold": []}
    for _ in range(args.repeat):
        began = time.perf_counter()
        main_result = solve_plan(table, problem)
        times["main"].append(time.perf_counter() - began)
        rows = tuple(int(main_result.chosen[s]) for s in main_result.chosen)
        start = np.asarray(rows, dtype=np.int64)
        for label, seed in (("seeded", main_result.cvar_seed), ("cold", None)):
            began = time.perf_counter()
            capital_values(
                table,
                problem,
                rows,
                lambda changed, seed=seed, start=start: solve_plan(
                    table, changed, start_rows=start, cvar_seed=seed
                ),
            )
            excluded = dataclasses.replace(problem, exclude=(rows,))
            solve_plan(table, excluded, cvar_seed=seed)
            times[label].append(time.perf_counter() - began)
    median = {k: statistics.median(v) for k, v in times.items()}
    print(
        json.dumps(
            {
                "scenario": args.scenario.name,
                "scenarios": args.scenarios,
                "risk_sample": int(table.risk_npv_usd.shape[1]),
                "risk_aversion": args.risk_aversion,
                "cvar_method": main_result.cvar_method,
                "repeat": args.repeat,
                "median_s": {k: round(v, 3) for k, v in median.items()},
                "explanations_over_main": {
                    "seeded": round(median["seeded"] / median["main"], 2),
                    "cold": round(median["cold"] / median["main"], 2),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
