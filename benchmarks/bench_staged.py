"""Benchmark of the staged (wait-and-see) MILP against the static one on the same table.

Two sources: a real scenario (valued here with its market states, e.g. texas.yaml) or the
generated portfolio of bench_milp.py (300 sites x 121 options) with per-state means
perturbed around the table's (tests/optimizer/tables.chain_tree). For each state count K
it records the model size, the solve time, the status and gap, and the in-sample value
of waiting (staged minus static E[NPV] on the same numbers).

    .venv/bin/python benchmarks/bench_staged.py --scenario scenarios/texas.yaml --clusters 1,2,4,8
    .venv/bin/python benchmarks/bench_staged.py --sites 300 --clusters 2,4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_milp import _tables_module, make_portfolio, make_problem  # noqa: E402


def _scenario_case(path: str, scenarios: int, k: int):
    from siteopt.app.plan import plan_problem
    from siteopt.app.staged import stage_tree, staged_states
    from siteopt.app.valuation import value_options
    from siteopt.model.load import load_scenario, with_simulation

    scenario = with_simulation(load_scenario(path), scenarios, None)
    states = staged_states(scenario, k)
    valuation = value_options(scenario, backend="numpy", grouping=states.grouping)
    tree = stage_tree(states.tree, valuation)
    return valuation.options, plan_problem(scenario), tree


def _generated_case(sites: int, levels: int, k: int, seed: int):
    tables = _tables_module()
    table = make_portfolio(sites, levels, 256, seed)
    tree = tables.chain_tree(table, (2027, 2028, 2029), k, np.random.default_rng(seed))
    return table, make_problem(table), tree


def run(table, problem, tree, args) -> dict:
    from siteopt.optimizer.engine import SolverSettings
    from siteopt.optimizer.solve import solve_plan
    from siteopt.optimizer.staged import solve_staged

    began = time.perf_counter()
    static = solve_plan(table, problem, time_limit_s=args.time_limit, gap_rel=args.gap)
    static_s = time.perf_counter() - began
    rows = np.array([int(static.chosen[s]) for s in static.chosen])
    settings = SolverSettings(time_limit_s=args.time_limit, gap_rel=args.gap, presolve=True)
    staged = solve_staged(table, problem, tree, settings, rows)
    return {
        "states": int(len(tree.leaves)),
        "nodes": int(tree.nodes),
        "variables": staged.variables,
        "rows": staged.rows,
        "static_s": round(static_s, 2),
        "staged_s": round(staged.solve_s, 2),
        "status": staged.status,
        "gap": staged.mip_gap,
        "static_musd": static.expected_npv_usd / 1e6,
        "waiting_musd": (staged.expected_npv_usd - static.expected_npv_usd) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=None, help="a scenario file; else generated")
    parser.add_argument("--scenarios", type=int, default=20_000)
    parser.add_argument("--sites", type=int, default=300)
    parser.add_argument("--levels", type=int, default=20)
    parser.add_argument("--clusters", default="2,4")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=600.0)
    parser.add_argument("--gap", type=float, default=1e-4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = []
    for k in (int(x) for x in args.clusters.split(",")):
        if args.scenario:
            case = _scenario_case(args.scenario, args.scenarios, k)
        else:
            case = _generated_case(args.sites, args.levels, k, args.seed)
        row = {"clusters": k, **run(*case, args)}
        out.append(row)
        if not args.json:
            gap = "-" if row["gap"] is None else f"{100 * row['gap']:.3f}%"
            print(
                f"K={k:<2} states {row['states']:>3} nodes {row['nodes']:>3} "
                f"vars {row['variables']:>7} rows {row['rows']:>6}"
                f"  static {row['static_s']:>6.1f} s"
                f"  staged {row['staged_s']:>6.1f} s {row['status']:<10} gap {gap:>7}"
                f"  waiting {row['waiting_musd']:+,.1f} $M",
                flush=True,
            )
    if args.json:
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
