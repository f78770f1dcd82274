"""The main job, end to end: scenario -> valuation -> build plan -> outputs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from siteopt.kernels.backend import select_backend
from siteopt.kernels.cashflows import expected_cashflows
from siteopt.kernels.hosting import mining_left_mw
from siteopt.kernels.options import SiteOption
from siteopt.kernels.reduce import exact_cvar
from siteopt.kernels.valuation import (
    ValuationResult,
    plan_npv_samples,
    value_options,
    with_simulation,
)
from siteopt.optimizer.options import BASE_COLUMNS, capex_column
from siteopt.optimizer.results import PlanResult, all_mining, max_ai
from siteopt.optimizer.solve import SolveStatus, solve_plan

from . import __version__
from .errors import InfeasibleError
from .outputs import prepare_out_dir, write_csv, write_json
from .plan import plan_problem
from .schema import Scenario

Progress = Callable[[str, int, int], None]

PLAN_COLUMNS = (
    "site",
    "ai_it_mw",
    "mining_mw",
    "build_year",
    "contract",
    "equity_capex_usd",
    "debt_usd",
    "expected_npv_usd",
    "cvar_usd",
)
OPTIONS_COLUMNS = (
    "site",
    "option",
    "ai_it_mw",
    "build_year",
    "contract",
    "expected_npv_usd",
    "std_npv_usd",
    "p5_npv_usd",
    "p50_npv_usd",
    "p95_npv_usd",
    "cvar_usd",
    "equity_capex_usd",
)


@dataclass(frozen=True)
class SolveSettings:
    """Run settings from the command line (CLI.md's shared options)."""

    backend: str = "auto"
    engine: str = "local"
    scenarios: int | None = None
    seed: int | None = None
    solver: str | None = None
    time_limit_s: float = 120.0
    gap_rel: float = 0.005


@dataclass(frozen=True)
class SolveOutcome:
    scenario: Scenario
    valuation: ValuationResult
    plan: PlanResult
    plan_frame: pd.DataFrame
    summary: dict[str, Any]
    cashflows: pd.DataFrame
    backend_note: str


def solve(
    scenario: Scenario, settings: SolveSettings, progress: Progress | None = None
) -> SolveOutcome:
    """Value every option, solve the MILP, and value the chosen plan on every scenario.

    Raises
    ------
    InfeasibleError
        No plan satisfies the constraints; the conflicts are named.
    """
    t0 = time.perf_counter()
    scenario = with_simulation(scenario, settings.scenarios, settings.seed)
    backend = select_backend(settings.backend)
    valuation = value_options(scenario, backend=backend, progress=progress)
    t1 = time.perf_counter()
    problem = plan_problem(scenario)
    if progress is not None:
        progress("milp", 0, 1)
    result = solve_plan(
        valuation.options,
        problem,
        solver=settings.solver,
        time_limit_s=settings.time_limit_s,
        gap_rel=settings.gap_rel,
    )
    if progress is not None:
        progress("milp", 1, 1)
    t2 = time.perf_counter()
    if result.status == SolveStatus.INFEASIBLE:
        raise InfeasibleError(_infeasible_message(result, settings), result.diagnosis)
    table = valuation.options.table
    flat = [opt for opts in valuation.site_options for opt in opts]
    baseline_rows = {
        "all_mining": all_mining(valuation.options),
        "max_ai": max_ai(valuation.options, problem),
    }
    plans = {"plan": [flat[i] for i in _rows(result)]}
    plans.update({name: [flat[i] for i in b.rows] for name, b in baseline_rows.items()})
    samples = plan_npv_samples(scenario, plans, backend=backend, progress=progress)
    cashflows = expected_cashflows(scenario, plans["plan"], xp=np)
    t3 = time.perf_counter()
    frame = plan_frame(scenario, table, plans["plan"], _rows(result))
    timings = {"valuation": t1 - t0, "milp": t2 - t1, "total": t3 - t0}
    summary = build_summary(
        scenario, valuation, result, frame, samples, baseline_rows, settings, timings
    )
    return SolveOutcome(scenario, valuation, result, frame, summary, cashflows, backend.describe())


def _rows(result: PlanResult) -> list[int]:
    return [int(result.chosen[site]) for site in result.chosen]


def _infeasible_message(result: PlanResult, settings: SolveSettings) -> str:
    if getattr(result, "timed_out", False):
        return (
            f"no build plan found within the time limit of {settings.time_limit_s:g} s; "
            "try a longer --time-limit"
        )
    return "infeasible: no build plan satisfies the constraints"


def plan_frame(
    scenario: Scenario, table: pd.DataFrame, chosen: list[SiteOption], rows: list[int]
) -> pd.DataFrame:
    """plan.csv: one row per site, columns as CLI.md."""
    picked = table.loc[rows].reset_index(drop=True)
    mining = [
        float(mining_left_mw(scenario.sites[o.site_index], o.it_mw))
        if o.contract_index is not None
        else scenario.sites[o.site_index].mining.mw
        for o in chosen
    ]
    picked["mining_mw"] = mining
    return picked[list(PLAN_COLUMNS)]


def build_summary(
    scenario, valuation, result, frame, samples, baselines, settings, timings
) -> dict[str, Any]:
    """summary.json: every key CLI.md lists, plus a few documented extras."""
    alpha = scenario.objective.cvar_alpha
    plan = samples["plan"]
    picked = valuation.options.table.loc[_rows(result)]
    capex = {y: float(picked[capex_column(y)].sum()) for y in valuation.options.years}
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "status": str(result.status),
        "mip_gap": _maybe(result.mip_gap),  # null when no bound was proven in time
        "backend": valuation.backend,
        "engine": settings.engine,
        "solver": result.solver,
        "scenarios": valuation.scenarios,
        "seed": valuation.seed,
        "expected_npv_usd": float(plan.mean()),
        "cvar_usd": float(exact_cvar(plan, alpha)),
        "cvar_alpha": alpha,
        "p5_npv_usd": float(np.quantile(plan, 0.05)),
        "p50_npv_usd": float(np.quantile(plan, 0.50)),
        "p95_npv_usd": float(np.quantile(plan, 0.95)),
        "equity_capex_by_year_usd": {str(y): usd for y, usd in capex.items() if usd != 0},
        "ai_it_mw_total": float(frame["ai_it_mw"].sum()),
        "mining_mw_total": float(frame["mining_mw"].sum()),
        "sites": [_site_entry(row) for row in frame.to_dict("records")],
        "baselines": {
            "all_mining": _baseline(samples["all_mining"], alpha),
            "max_ai": {
                **_baseline(samples["max_ai"], alpha),
                "feasible": bool(baselines["max_ai"].feasible),
            },
        },
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "cvar_in_model_usd": _maybe(getattr(result, "cvar_in_model_usd", None)),
        "cvar_risk_sample_usd": _maybe(getattr(result, "cvar_risk_sample_usd", None)),
        "risk_sample": int(valuation.options.risk_npv_usd.shape[1]),
        "time_limit_s": settings.time_limit_s,
        "version": __version__,
    }
    return summary


def _site_entry(row: dict[str, Any]) -> dict[str, Any]:
    year = row["build_year"]
    return {
        "name": row["site"],
        "ai_it_mw": float(row["ai_it_mw"]),
        "mining_mw": float(row["mining_mw"]),
        "build_year": None if pd.isna(year) else int(year),
        "contract": row["contract"] or None,
        "equity_capex_usd": float(row["equity_capex_usd"]),
        "expected_npv_usd": float(row["expected_npv_usd"]),
        "cvar_usd": float(row["cvar_usd"]),
    }


def _baseline(samples: np.ndarray, alpha: float) -> dict[str, float]:
    return {
        "expected_npv_usd": float(samples.mean()),
        "cvar_usd": float(exact_cvar(samples, alpha)),
    }


def _maybe(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def write_outputs(outcome: SolveOutcome, out_dir: Path) -> list[Path]:
    """summary.json, plan.csv, options.csv, cashflows.csv, each written atomically."""
    out = prepare_out_dir(out_dir)
    table = outcome.valuation.options.table
    capex_cols = [capex_column(y) for y in outcome.valuation.options.years]
    extra = [
        c
        for c in table.columns
        if c not in OPTIONS_COLUMNS and c not in capex_cols and c in BASE_COLUMNS
    ]
    options = table[[*OPTIONS_COLUMNS, *capex_cols, *extra]]
    return [
        write_csv(outcome.plan_frame, out / "plan.csv"),
        write_csv(options, out / "options.csv"),
        write_csv(outcome.cashflows, out / "cashflows.csv"),
        write_json(outcome.summary, out / "summary.json"),
    ]
