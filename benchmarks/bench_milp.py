"""Benchmark of the build-plan MILP on a generated 300-site portfolio.

Records model-build and solve time separately, the gap, and the CVaR, without a risk
constraint, with a CVaR floor and with CVaR in the objective, for each CVaR method asked.

    .venv/bin/python benchmarks/bench_milp.py                   # 300 sites, cuts
    .venv/bin/python benchmarks/bench_milp.py --methods cuts,lazy,full --sites 60

The ``full`` Rockafellar-Uryasev model puts K dense rows (K x options nonzeros, 9.3e6 at
300 sites x 121 options x 256 scenarios) into the MILP; HiGHS does not check its time limit
while it sets such a model up, so run it on fewer sites.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tables_module():
    """The test suite's table generator, loaded by path (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "siteopt_bench_tables", ROOT / "tests" / "optimizer" / "tables.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_portfolio(sites: int, levels: int, scenarios: int, seed: int):
    """~``1 + levels * 3 * 2`` options per site: AI levels x 3 build years x 2 contracts."""
    tables = _tables_module()
    return tables.make_table(
        n_sites=sites,
        n_levels=levels,
        build_years=(2027, 2028, 2029),
        contracts=("hyperscaler-a", "neocloud-b"),
        years=tuple(range(2026, 2041)),
        n_scenarios=scenarios,
        cvar_alpha=0.95,
        seed=seed,
    )


def make_problem(table):
    """Budgets of a quarter of what converting every site at its largest level would cost,
    spread over 2027-2029 with carry-over; two contracts with minimum, maximum, a date."""
    from siteopt.optimizer.options import ContractTerms, PlanProblem

    frame = table.table
    most = frame.groupby("site")["equity_capex_usd"].max().sum()
    total_mw = frame.groupby("site")["ai_it_mw"].max().sum()
    budget = {2027: 0.12 * most, 2028: 0.08 * most, 2029: 0.05 * most}
    contracts = (
        ContractTerms("hyperscaler-a", 0.05 * total_mw, 0.35 * total_mw, "2029-06"),
        ContractTerms("neocloud-b", 0.02 * total_mw, 0.2 * total_mw),
    )
    return PlanProblem(
        budget_usd_by_year=budget, carry_over=True, contracts=contracts, cvar_alpha=0.95
    )


def run_case(table, problem, name, method, args):
    from siteopt.optimizer.solve import solve_plan

    began = time.perf_counter()
    result = solve_plan(
        table,
        problem,
        solver=args.solver,
        time_limit_s=args.time_limit,
        gap_rel=args.gap,
        threads=args.threads,
        cvar_method=method,
    )
    return {
        "case": name,
        "method": method,
        "status": str(result.status),
        "build_s": result.timings_s.get("build", 0.0),
        "solve_s": result.timings_s.get("solve", 0.0),
        "wall_s": time.perf_counter() - began,
        "gap": result.mip_gap,
        "rounds": result.rounds,
        "lp_rounds": result.lp_rounds,
        "timed_out": result.timed_out,
        "expected_npv_musd": None
        if result.expected_npv_usd is None
        else result.expected_npv_usd / 1e6,
        "cvar_musd": None
        if result.cvar_risk_sample_usd is None
        else result.cvar_risk_sample_usd / 1e6,
        "cvar_in_model_musd": None
        if result.cvar_in_model_usd is None
        else result.cvar_in_model_usd / 1e6,
    }


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def print_table(rows) -> None:
    head = (
        f"{'case':<9} {'method':<6} {'status':<10} {'build s':>8} {'solve s':>8} "
        f"{'gap %':>7} {'MIP/LP':>6} {'E[NPV] $M':>11} {'CVaR $M':>10} {'model CVaR':>10}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        gap = None if r["gap"] is None else 100 * r["gap"]
        print(
            f"{r['case']:<9} {r['method']:<6} {r['status']:<10} {r['build_s']:>8.2f} "
            f"{r['solve_s']:>8.2f} {_fmt(gap, '7.3f')} {r['rounds']:>3d}/{r['lp_rounds']:<2d} "
            f"{_fmt(r['expected_npv_musd'], '11,.1f')} {_fmt(r['cvar_musd'], '10,.1f')} "
            f"{_fmt(r['cvar_in_model_musd'], '10,.1f')}"
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=300)
    parser.add_argument("--levels", type=int, default=20, help="AI levels per site")
    parser.add_argument("--scenarios", type=int, default=256, help="risk-sample size K")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--solver", default=None, choices=("highs", "cbc"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--gap", type=float, default=0.005)
    parser.add_argument("--methods", default="cuts", help="comma list of cuts,lazy,full")
    parser.add_argument("--cases", default="neutral,floor,objective")
    parser.add_argument(
        "--floor-share",
        type=float,
        default=0.3,
        help="CVaR floor this share of the way from the risk-neutral plan's CVaR towards 0",
    )
    parser.add_argument("--aversion", type=float, default=0.5, help="risk_aversion weight")
    parser.add_argument("--json", type=Path, default=None, help="also write rows here")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)

    began = time.perf_counter()
    table = make_portfolio(args.sites, args.levels, args.scenarios, args.seed)
    problem = make_problem(table)
    n_options = len(table.table)
    print(
        f"{args.sites} sites, {n_options} options ({n_options / args.sites:.0f} per site), "
        f"K = {args.scenarios}, generated in {time.perf_counter() - began:.1f}s; "
        f"solver {args.solver or 'default'}, {args.threads} threads, "
        f"limit {args.time_limit:g}s, gap {100 * args.gap:g}%",
        flush=True,
    )
    rows = []
    cases = args.cases.split(",")
    neutral = run_case(table, problem, "neutral", "-", args)
    if "neutral" in cases:
        rows.append(neutral)
    # A floor part of the way from the risk-neutral plan's CVaR towards zero: it binds.
    floor_usd = 1e6 * (neutral["cvar_musd"] + args.floor_share * abs(neutral["cvar_musd"]))
    for method in args.methods.split(","):
        if "floor" in cases:
            rows.append(
                run_case(
                    table,
                    dataclasses.replace(problem, cvar_floor_usd=floor_usd),
                    "floor",
                    method,
                    args,
                )
            )
        if "objective" in cases:
            rows.append(
                run_case(
                    table,
                    dataclasses.replace(problem, risk_aversion=args.aversion),
                    "objective",
                    method,
                    args,
                )
            )
    print_table(rows)
    print(f"CVaR floor {floor_usd / 1e6:,.1f} $M; risk aversion {args.aversion:g}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
