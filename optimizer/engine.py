"""Solver choice, one solve of a model, and the CVaR cut loop around it.

The loop (``cuts`` and ``lazy`` CVaR methods) treats the model as a relaxation of the
true problem: its CVaR (``theta``, or R-U rows on a subset of scenarios) can only
overestimate a plan's CVaR. Each round solves the model, recomputes the proposed plan's
CVaR exactly from the risk sample, keeps the best plan that truly satisfies everything,
and adds the cut (or the tail rows) that the plan violates. The solver's dual bound of
any round bounds the true optimum, so the loop stops as soon as the best true plan is
within the requested gap of that bound, or when the proposed plan's model CVaR is exact.
"""

from __future__ import annotations

import importlib
import math
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
import pulp

from .cbc import StoppableCbc
from .defaults import DEFAULT_MIP_GAP, DEFAULT_TIME_LIMIT_S
from .highs import IncrementalHiGHS, highs_available
from .interrupt import call_interruptibly
from .model import PlanModel, add_cvar_cut, add_cvar_rows, tail_weights

SOLVERS = ("highs", "cbc")
MAX_ROUNDS = 200
"""Safety stop of the cut loop; the loop converges finitely (finitely many tail sets)."""


class SolverUnavailable(RuntimeError):
    """The requested MILP solver cannot run here."""


@dataclass(frozen=True)
class SolverSettings:
    """How to run the solver.

    Attributes
    ----------
    name : {"highs", "cbc"}
    time_limit_s : float [s]
        Wall-clock limit for the whole optimisation (all cut rounds).
    gap_rel : float
        Relative MIP gap at which to stop.
    threads : int or None
    msg : bool
        Show the solver log.
    presolve : bool
        HiGHS presolve. Off by default: its dominated-column rule costs ~15 s on
        36,000 options with dense budget rows and gains nothing on this near-integral
        multiple-choice structure.
    """

    name: str = "highs"
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    gap_rel: float = DEFAULT_MIP_GAP
    threads: int | None = None
    msg: bool = False
    presolve: bool = False


def cbc_path() -> str | None:
    """The CBC binary: the ``cbcbox`` package's, else PuLP's bundled one, else ``cbc`` on
    PATH; None when there is none."""
    try:
        cbcbox = importlib.import_module("cbcbox")
        path = cbcbox.cbc_bin_path()
        if path and os.access(path, os.X_OK):
            return str(path)
    except (ImportError, AttributeError, OSError):
        pass
    try:
        from pulp.apis.coin_api import pulp_cbc_path
    except ImportError:
        pulp_cbc_path = None
    if pulp_cbc_path and os.path.isfile(pulp_cbc_path) and os.access(pulp_cbc_path, os.X_OK):
        return os.path.realpath(pulp_cbc_path)
    return shutil.which("cbc")


def default_solver() -> str:
    """``highs`` when highspy imports, else ``cbc``."""
    return "highs" if highs_available() else "cbc"


def check_solver(name: str | None) -> str:
    """The solver name to use; raises :class:`SolverUnavailable` when it cannot run."""
    name = default_solver() if name is None else name.lower()
    if name not in SOLVERS:
        raise SolverUnavailable(f"unknown MILP solver {name!r}; choose one of {SOLVERS}")
    if name == "highs" and not highs_available():
        raise SolverUnavailable("the HiGHS solver needs highspy: pip install highspy")
    if name == "cbc" and cbc_path() is None:
        raise SolverUnavailable("no CBC binary found; install one with: pip install cbcbox")
    return name


@dataclass(frozen=True)
class MasterSolve:
    """One solver run on a model.

    Attributes
    ----------
    has_solution : bool
    infeasible : bool
        Proven infeasible.
    hit_limit : bool
        Stopped by the time limit (with or without a solution).
    objective, bound : float
        Primal objective and dual bound (maximisation) [model units]; nan when unknown.
    """

    has_solution: bool
    infeasible: bool
    hit_limit: bool
    objective: float
    bound: float


def _run_highs(model: PlanModel, solver: IncrementalHiGHS, time_limit_s, start) -> MasterSolve:
    solver.timeLimit = time_limit_s
    solver.start = start
    model.prob.solve(solver)
    report = solver.report
    status = report.model_status
    if status in (
        "Unbounded",
        "ModelError",
        "SolveError",
        "LoadError",
        "PresolveError",
        "PostsolveError",
        "MemoryLimit",
    ):
        raise RuntimeError(f"HiGHS stopped with model status {status}")
    return MasterSolve(
        has_solution=report.has_solution,
        infeasible=status in ("Infeasible", "UnboundedOrInfeasible"),
        hit_limit=status not in ("Optimal", "Infeasible", "UnboundedOrInfeasible"),
        objective=report.objective if report.has_solution else math.nan,
        bound=report.bound if math.isfinite(report.bound) else math.nan,
    )


def cbc_bound(log: str, objective: float, *, stopped: bool) -> float:
    """The dual bound CBC proved, read from its log, in the model's (maximisation) sense;
    nan when the log gives none.

    PuLP hands CBC the negated objective, so CBC's log speaks of a minimisation: its
    "best possible" is minus our bound. In order:

    - ``Exiting as integer gap of G``: CBC stopped on the gap; the bound is objective + G;
    - ``Search completed`` (not stopped): the tree was exhausted, so the incumbent is
      proven optimal and the bound is the objective (a gap of 0, not the gap allowed);
    - otherwise the last ``best possible`` of a progress line (minimisation sense), or
      the summary's ``Upper bound:`` line (the model's sense).
    """
    gap = re.search(r"Exiting as integer gap of (\S+)", log)
    if gap and not math.isnan(objective):
        try:
            return objective + abs(float(gap.group(1)))
        except ValueError:
            pass
    if not stopped and "Search completed" in log and not math.isnan(objective):
        return objective
    possible = re.findall(r"best possible (-?[0-9.]+(?:[eE][-+]?[0-9]+)?)", log)
    if possible:
        return -float(possible[-1])
    # the summary speaks in the model's own sense
    found = re.search(r"^(?:Upper|Lower) bound:\s*(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)", log, re.M)
    return float(found.group(1)) if found else math.nan


def _run_cbc(model: PlanModel, settings: SolverSettings, time_limit_s) -> MasterSolve:
    with tempfile.TemporaryDirectory(prefix="siteopt_cbc_") as tmp:
        log_path = os.path.join(tmp, "cbc.log")
        solver = StoppableCbc(
            path=cbc_path(),
            msg=False,
            gapRel=settings.gap_rel,
            timeLimit=max(time_limit_s, 1.0),
            threads=settings.threads,
            logPath=log_path,
        )
        solver.tmpDir = tmp
        call_interruptibly(lambda: model.prob.solve(solver), solver.stop)
        with open(log_path) as handle:
            log = handle.read()
    stopped = "Stopped on" in log or "stopped" in log.split("Result -")[-1][:80].lower()
    has_solution = model.prob.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
    objective = float(pulp.value(model.prob.objective)) if has_solution else math.nan
    bound = cbc_bound(log, objective, stopped=stopped) if has_solution else math.nan
    if has_solution and bound < objective:  # a bound below the incumbent: rounding
        bound = objective
    return MasterSolve(
        has_solution=has_solution,
        infeasible=model.prob.status == pulp.LpStatusInfeasible and not stopped,
        hit_limit=stopped,
        objective=objective,
        bound=bound,
    )


@dataclass(frozen=True)
class Plan:
    """A plan proposed by the solver, valued exactly.

    Attributes
    ----------
    chosen : numpy.ndarray of int
        Table row per site.
    objective : float or None
        True objective [model units]; None when the plan violates the CVaR floor.
    cvar : float or None
        CVaR of the plan on the risk sample [MUSD]; None without a CVaR in the model.
    model_cvar : float or None
        The model's CVaR of the plan as solved [MUSD].
    slacks : dict of ConstraintGroup to float
        Phase 1: how far each relaxed group gives [group units] (the CVaR floor's from
        the exact CVaR).
    """

    chosen: np.ndarray
    objective: float | None
    cvar: float | None
    model_cvar: float | None
    slacks: dict = field(default_factory=dict)


def _chosen_rows(model: PlanModel) -> np.ndarray:
    values = np.array([v.varValue or 0.0 for v in model.x])
    return np.array([rows[np.argmax(values[rows])] for rows in model.data.site_rows])


def _value_plan(model: PlanModel) -> Plan:
    """Read the solved model's plan and value it with the exact CVaR."""
    data, cvar = model.data, model.cvar
    chosen = _chosen_rows(model)
    slacks = {g: max(v.varValue or 0.0, 0.0) for g, v in model.slacks.items()}
    weight = model.problem.expected_weight
    objective = 0.0 if model.phase_one else weight * float(data.expected_npv[chosen].sum())
    exact = in_model = None
    if cvar is not None:
        npv = data.risk_npv[chosen].sum(axis=0)
        exact = float(tail_weights(npv, cvar.alpha) @ npv)
        in_model = float(pulp.value(cvar.expression))
        objective += cvar.weight * exact
        if cvar.floor is not None:
            shortfall = cvar.floor - exact
            relaxed = [g for g in slacks if g.kind == "cvar_floor"]
            if relaxed:
                slacks[relaxed[0]] = max(slacks[relaxed[0]], shortfall)
            elif shortfall > 1e-7 * max(1.0, abs(cvar.floor)):
                return Plan(chosen, None, exact, in_model, slacks)
    objective -= sum(w * slacks[g] for g, w in model.slack_weights.items())
    return Plan(chosen, objective, exact, in_model, slacks)


@dataclass(frozen=True)
class Outcome:
    """Result of :func:`optimize`.

    Attributes
    ----------
    plan : Plan or None
        The best plan that satisfies every constraint; None when none was found.
    bound : float
        Upper bound on the true optimum [model units]; nan when unknown.
    gap : float or None
        ``(bound - objective) / |objective|`` of the best plan.
    infeasible : bool
        Proven: no plan satisfies the constraints.
    timed_out : bool
        The time limit stopped the search.
    rounds : int
        MILP solves (1 unless the cut loop ran).
    lp_rounds : int
        LP relaxations solved to seed the cuts.
    solve_s : float [s]
    """

    plan: Plan | None
    bound: float
    gap: float | None
    infeasible: bool
    timed_out: bool
    rounds: int
    lp_rounds: int
    solve_s: float


def _relative_gap(bound: float, objective: float) -> float:
    if math.isnan(bound):
        return math.inf
    return max(bound - objective, 0.0) / max(abs(objective), 1e-6)


def _start(model: PlanModel, plan: Plan | None) -> dict:
    """A MIP start from a plan: x, u and theta (the rest HiGHS completes)."""
    if plan is None:
        return {}
    data = model.data
    start = {v: 0.0 for v in model.x}
    start.update({model.x[i]: 1.0 for i in plan.chosen.tolist()})
    for terms in model.problem.contracts:
        mw = data.mw_on(terms.name)[plan.chosen].sum()
        start[model.u[terms.name]] = 1.0 if mw > 0 or terms.must_sign else 0.0
    cvar = model.cvar
    if cvar is not None and cvar.theta is not None:
        start[cvar.theta] = min(float(c[plan.chosen].sum()) for c in cvar.cuts)
    return start


def _refine(model: PlanModel, plan: Plan) -> bool:
    """Add the cut (or tail rows) that ``plan`` violates; False when there is none."""
    cvar = model.cvar
    if cvar is None or cvar.method == "full" or plan.model_cvar is None:
        return False
    if plan.model_cvar - plan.cvar <= 1e-9 * max(1.0, abs(plan.cvar)):
        return False
    npv = model.data.risk_npv[plan.chosen].sum(axis=0)
    weights = tail_weights(npv, cvar.alpha)
    if cvar.method == "cuts":
        add_cvar_cut(model, weights)
        return True
    return add_cvar_rows(model, np.flatnonzero(weights)) > 0


def _close(model: PlanModel, plan: Plan) -> None:
    """Give the final model the plan's own cut (or tail rows), so that the model's CVaR
    of the reported plan is exact even when the loop stopped on the gap first."""
    cvar = model.cvar
    if cvar is None or cvar.method == "full":
        return
    npv = model.data.risk_npv[plan.chosen].sum(axis=0)
    weights = tail_weights(npv, cvar.alpha)
    if cvar.method == "cuts":
        if min(float(c[plan.chosen].sum()) for c in cvar.cuts) > float(weights @ npv):
            add_cvar_cut(model, weights)
    else:
        add_cvar_rows(model, np.flatnonzero(weights))


class _Runner:
    """Runs the chosen solver on one model, reusing the loaded HiGHS model between rounds."""

    def __init__(self, model: PlanModel, settings: SolverSettings):
        self.model, self.settings = model, settings
        self.highs = None
        if settings.name == "highs":
            self.highs = IncrementalHiGHS(
                time_limit_s=settings.time_limit_s,
                gap_rel=settings.gap_rel,
                threads=settings.threads,
                msg=settings.msg,
                options={} if settings.presolve else {"presolve": "off"},
            )
            self.highs.choice_groups = [[model.x[i] for i in rows] for rows in model.data.site_rows]

    def solve(self, time_limit_s: float, start: Plan | None) -> MasterSolve:
        if self.highs is not None:
            return _run_highs(self.model, self.highs, time_limit_s, _start(self.model, start))
        return _run_cbc(self.model, self.settings, time_limit_s)


def _lp_phase(model: PlanModel, runner: _Runner, deadline: float) -> int:
    """Kelley's cutting planes on the LP relaxation: add the cut (or tail rows) of each
    fractional LP optimum until the relaxation's CVaR is exact. Cuts are valid for
    fractional x too (CVaR of ``NPV x`` is concave in x), and they shape the CVaR near
    the MIP optimum, so the MIP rounds that follow need few further cuts. Rounds run.

    The phase ends when the CVaR is exact (or after MAX_ROUNDS), never on a share of the
    clock, so the cuts the MIP starts from do not depend on the time limit; the deadline
    only stops it."""
    cvar = model.cvar
    if runner.highs is None or cvar is None or cvar.method == "full":
        return 0
    columns = None
    for rounds in range(1, MAX_ROUNDS + 1):
        remaining = deadline - time.perf_counter()
        if remaining <= 0.0:
            return rounds - 1
        values = runner.highs.relaxation(model.prob, remaining)
        if values is None:
            return rounds
        if columns is None:
            columns = np.array([v.index for v in model.x])
        x = values[columns]
        npv = model.data.risk_npv.T @ x
        weights = tail_weights(npv, cvar.alpha)
        exact = float(weights @ npv)
        in_model = float(sum(c * values[v.index] for v, c in cvar.expression.items()))
        if in_model - exact <= 1e-9 * max(1.0, abs(exact)):
            return rounds
        if cvar.method == "cuts":
            add_cvar_cut(model, weights)
        elif add_cvar_rows(model, np.flatnonzero(weights)) == 0:
            return rounds
    return MAX_ROUNDS


def binding_rows(model: PlanModel, settings: SolverSettings) -> dict[str, float] | None:
    """Rows with a nonzero dual at the LP relaxation of ``model`` (cuts added so far
    included), by constraint name; None without HiGHS or an optimal LP."""
    if not highs_available():
        return None
    solver = IncrementalHiGHS(
        time_limit_s=settings.time_limit_s,
        gap_rel=settings.gap_rel,
        threads=settings.threads,
        options={"presolve": "off"},
    )
    if solver.relaxation(model.prob, settings.time_limit_s) is None:
        return None
    duals = solver.relaxation_duals()
    names = list(model.prob._constraints)
    return {names[i]: float(d) for i, d in enumerate(duals) if abs(d) > 1e-9}


def optimize(
    model: PlanModel, settings: SolverSettings, start_rows: np.ndarray | None = None
) -> Outcome:
    """Solve ``model``; with a ``cuts``/``lazy`` CVaR, iterate until the CVaR is exact.

    Parameters
    ----------
    model : PlanModel
        Extended in place by the loop's cuts.
    settings : SolverSettings
    start_rows : numpy.ndarray of int, optional
        A plan (table row per site) to start the first HiGHS run from, e.g. the
        previous point of a sweep; HiGHS drops it when it breaks a constraint.

    Returns
    -------
    Outcome
    """
    began = time.perf_counter()
    deadline = began + settings.time_limit_s
    runner = _Runner(model, settings)
    lp_rounds = _lp_phase(model, runner, deadline)
    best: Plan | None = None
    bound, rounds, timed_out, infeasible = math.inf, 0, False, False
    while rounds < MAX_ROUNDS:
        remaining = deadline - time.perf_counter()
        if remaining <= 0.0:
            timed_out = True
            break
        hint = best
        if hint is None and start_rows is not None:
            hint = Plan(np.asarray(start_rows, dtype=np.int64), None, None, None)
        master = runner.solve(remaining, hint)
        rounds += 1
        if not master.has_solution:
            infeasible, timed_out = master.infeasible, master.hit_limit
            break
        bound = min(bound, master.bound) if not math.isnan(master.bound) else bound
        plan = _value_plan(model)
        if plan.objective is not None and (best is None or plan.objective > best.objective):
            best = plan
        if master.hit_limit:
            timed_out = True
            break
        if best is not None and _relative_gap(bound, best.objective) <= settings.gap_rel:
            break
        if not _refine(model, plan):
            break
    if best is not None:
        _close(model, best)
    bound = math.nan if math.isinf(bound) else bound
    gap = None if best is None else _relative_gap(bound, best.objective)
    return Outcome(
        plan=best,
        bound=bound,
        gap=gap,
        infeasible=infeasible and best is None,
        timed_out=timed_out,
        rounds=rounds,
        lp_rounds=lp_rounds,
        solve_s=time.perf_counter() - began,
    )
