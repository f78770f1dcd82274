"""Solve the build plan: pre-check, build, optimise, and explain an infeasible problem.

``solve_plan`` is the one call the CLI makes. Its status follows ``summary.json``:
``optimal`` (gap within the requested gap), ``feasible`` (a plan, but the search stopped
at the time limit or above the requested gap) or ``infeasible`` (no plan: proven, or
none found in time, which ``timed_out`` tells apart).
"""

from __future__ import annotations

import math
import time

import numpy as np

from .data import MONEY_UNIT_USD, plan_data
from .defaults import DEFAULT_MIP_GAP, DEFAULT_TIME_LIMIT_S
from .diagnose import diagnose, precheck
from .engine import (
    SOLVERS,
    SolverSettings,
    SolverUnavailable,
    check_solver,
    default_solver,
    optimize,
)
from .model import CVAR_METHODS, CvarSeed, build_model, seed_cvar
from .options import OptionTable, PlanProblem
from .results import (
    PlanResult,
    SolveStatus,
    capex_by_year,
    choice_frame,
    empty_choice,
    plan_objective,
)

__all__ = [
    "SOLVERS",
    "CVAR_METHODS",
    "SolveStatus",
    "SolverUnavailable",
    "default_solver",
    "solve_plan",
]


def _status(outcome, gap_rel: float) -> SolveStatus:
    if outcome.plan is None:
        return SolveStatus.INFEASIBLE
    closed = outcome.gap is not None and outcome.gap <= gap_rel * (1.0 + 1e-9)
    return SolveStatus.OPTIMAL if closed and not outcome.timed_out else SolveStatus.FEASIBLE


def _infeasible(problem, solver, method, timings, diagnosis, timed_out) -> PlanResult:
    return PlanResult(
        status=SolveStatus.INFEASIBLE,
        mip_gap=None,
        objective_usd=None,
        chosen={},
        plan=empty_choice(),
        expected_npv_usd=None,
        cvar_in_model_usd=None,
        cvar_risk_sample_usd=None,
        cvar_alpha=problem.cvar_alpha,
        equity_capex_by_year_usd={},
        timings_s=timings,
        diagnosis=tuple(diagnosis),
        solver=solver,
        timed_out=timed_out,
        cvar_method=method,
    )


def _result(table, problem, model, outcome, settings, method, timings) -> PlanResult:
    plan = outcome.plan
    rows = plan.chosen
    frame = choice_frame(table, rows)
    objective, expected, cvar_sample = plan_objective(table, problem, rows)
    in_model = None
    if model.cvar is not None:
        in_model = _model_cvar(model, rows) * MONEY_UNIT_USD
    return PlanResult(
        status=_status(outcome, settings.gap_rel),
        mip_gap=math.inf if outcome.gap is None else float(outcome.gap),
        objective_usd=objective,
        chosen={site: int(r) for site, r in zip(model.data.sites, rows, strict=True)},
        plan=frame,
        expected_npv_usd=expected,
        cvar_in_model_usd=in_model,
        cvar_risk_sample_usd=cvar_sample,
        cvar_alpha=problem.cvar_alpha,
        equity_capex_by_year_usd=capex_by_year(table, rows),
        timings_s=timings,
        solver=settings.name,
        timed_out=outcome.timed_out,
        cvar_method=method,
        rounds=outcome.rounds,
        lp_rounds=outcome.lp_rounds,
        cvar_seed=CvarSeed.of(model),
    )


def _model_cvar(model, rows) -> float:
    """The model's CVaR of a plan [MUSD]: the tightest cut at it (``cuts``), or the R-U
    value over the scenario rows in the model (``full``, ``lazy``)."""
    cvar = model.cvar
    if cvar.method == "cuts":
        return min(float(c[rows].sum()) for c in cvar.cuts)
    npv = model.data.risk_npv[rows].sum(axis=0)
    in_model = np.array(sorted(cvar.scenarios), dtype=np.int64)
    m = (1.0 - cvar.alpha) * model.data.risk_npv.shape[1]
    # max over eta of eta - 1/m sum_{k in model} (eta - npv_k)^+ : at eta = an npv_k
    candidates = npv[in_model]
    values = [eta - np.maximum(eta - candidates, 0.0).sum() / m for eta in candidates]
    return float(max(values))


LAZY_MAX_CELLS = 600_000
"""Options x risk scenarios up to which a CVaR in the objective is solved with R-U rows
added for the tail scenarios (``lazy``) rather than cuts. Issue 17 (texas, 426 x 256: 4.0 s
against 8.3 s; 300 sites, 36,300 x 256: 44 s against 11 s) set 10^6; issue 27, with risk
samples in the thousands (texas at 2,000 scenarios, best of 2, December 2026): 426 x 1,000
mixed (lazy 1.66 s against cuts 0.84 s at risk_aversion 0.5, 1.76 s against 2.65 s at 2.0),
426 x 2,000 cuts at both (0.64 s against 2.89 s; 2.25 s against 3.28 s): benchmarks/
RESULTS.md."""


def choose_cvar_method(problem: PlanProblem, options: int, scenarios: int) -> str:
    """``lazy`` for a CVaR in the objective on a small model (options x scenarios up to
    LAZY_MAX_CELLS), else ``cuts``: with a CVaR floor alone cuts won at both sizes measured
    (texas 10.2 s against 11.9 s, 300 sites 2.0 s against 3.8 s), and without a CVaR the
    method plays no part."""
    if problem.risk_aversion > 0 and options * scenarios <= LAZY_MAX_CELLS:
        return "lazy"
    return "cuts"


def choose_presolve(problem: PlanProblem) -> bool:
    """HiGHS presolve on for a CVaR floor without a CVaR in the objective, off otherwise.

    Measured (benchmarks/RESULTS.md, issue 17): with a binding floor it gains on texas
    (8.4-9.0 s against 9.3-10.8 s) and is even at 300 sites (2.8-3.0 s against 3.0-3.5 s);
    with the CVaR in the objective it loses (texas 12 s against 9 s); risk neutral at 300
    sites its dominated-column pass costs ~15 s on the dense budget rows."""
    return problem.cvar_floor_usd is not None and problem.risk_aversion <= 0


def solve_plan(
    table: OptionTable,
    problem: PlanProblem,
    *,
    solver: str | None = None,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    gap_rel: float = DEFAULT_MIP_GAP,
    threads: int | None = None,
    msg: bool = False,
    cvar_method: str | None = None,
    start_rows: np.ndarray | None = None,
    presolve: bool | None = None,
    cvar_seed: CvarSeed | None = None,
) -> PlanResult:
    """Choose one option per site: maximise expected NPV (+ risk_aversion * CVaR).

    Parameters
    ----------
    table : OptionTable
    problem : PlanProblem
    solver : {"highs", "cbc"}, optional
        Default: ``highs`` when highspy imports, else ``cbc``.
    time_limit_s : float [s]
        For the whole search, all CVaR cut rounds included.
    gap_rel : float
        Relative MIP gap at which the search stops.
    threads : int, optional
    msg : bool
        Show the solver log.
    cvar_method : {"cuts", "lazy", "full"}, optional
        See :mod:`.model`; ``full`` is the plain Rockafellar-Uryasev model. Default: the
        method measured fastest for the problem (:func:`choose_cvar_method`).
    start_rows : numpy.ndarray of int, optional
        A plan (table row per site, in site order) to warm-start HiGHS from.
    presolve : bool, optional
        HiGHS presolve; default :func:`choose_presolve`.
    cvar_seed : CvarSeed, optional
        The CVaR rows or cuts of an earlier solve on the same table (``PlanResult.
        cvar_seed``), added before the search: a re-solve skips the rounds that found them.

    Returns
    -------
    PlanResult

    Raises
    ------
    SolverUnavailable
        The solver cannot run here (the CLI exits 2).
    ValueError
        Inconsistent table or problem (unknown contract, site without keep-hashing).
    """
    name = check_solver(solver)
    if presolve is None:
        presolve = choose_presolve(problem)
    settings = SolverSettings(
        name=name,
        time_limit_s=float(time_limit_s),
        gap_rel=float(gap_rel),
        threads=threads,
        msg=msg,
        presolve=presolve,
    )
    began = time.perf_counter()
    data = plan_data(table, problem)
    if cvar_method is None:
        cvar_method = choose_cvar_method(problem, data.n_options, data.risk_npv.shape[1])
    early = precheck(data, problem)
    if early:
        timings = {"build": 0.0, "solve": 0.0, "diagnose": time.perf_counter() - began}
        return _infeasible(problem, name, cvar_method, timings, early, False)
    model = build_model(table, problem, cvar_method=cvar_method, data=data)
    seed_cvar(model, cvar_seed)
    outcome = optimize(model, settings, start_rows)
    timings = {"build": model.build_s, "solve": outcome.solve_s}
    if outcome.plan is not None:
        return _result(table, problem, model, outcome, settings, cvar_method, timings)
    if outcome.timed_out:
        return _infeasible(problem, name, cvar_method, timings, (), True)
    started = time.perf_counter()
    reasons = diagnose(table, problem, settings, data=data)
    timings["diagnose"] = time.perf_counter() - started
    return _infeasible(problem, name, cvar_method, timings, reasons, False)
