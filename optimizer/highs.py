"""PuLP's HiGHS interface, made fit for repeated solves of one large model.

PuLP 3.3's ``pulp.HiGHS`` adds columns and rows one call at a time and rebuilds the
whole highspy model on every solve. The CVaR cut loop solves the same model again with a
few more rows, so :class:`IncrementalHiGHS` loads the model in bulk once, appends only
the new rows on a re-solve, passes a MIP start, and keeps the solver's own report
(model status, primal and dual bound, gap) that PuLP does not expose.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import pulp

from .defaults import DEFAULT_MIP_GAP
from .interrupt import call_interruptibly

try:
    import highspy
except ImportError:  # pragma: no cover - highspy is a dependency; cbc remains
    highspy = None


def _silence_banner() -> None:
    """Construct the process's first ``highspy.Highs`` with file descriptor 1 on /dev/null.

    HiGHS prints its banner ("Running HiGHS ... Copyright ...") from C++ on the first
    construction, before any option such as ``output_flag`` can be set; it would open
    every solve's output and break ``--json`` on standard output. Later instances stay
    silent. C stdio is flushed before fd 1 comes back, so nothing buffered leaks out.
    """
    if highspy is None:
        return
    import ctypes
    import os
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
            try:
                highspy.Highs()
            finally:
                ctypes.CDLL(None).fflush(None)
    finally:
        os.dup2(saved, 1)
        os.close(saved)


_silence_banner()


@dataclass(frozen=True)
class HighsReport:
    """What HiGHS said about its last run.

    Attributes
    ----------
    model_status : str
        ``HighsModelStatus`` name without the ``k`` (``Optimal``, ``TimeLimit``, ...).
    has_solution : bool
        A primal feasible solution exists.
    objective : float
        Primal objective (maximisation) [model units].
    bound : float
        Dual bound on the optimum [model units].
    gap : float
        HiGHS's relative MIP gap.
    """

    model_status: str
    has_solution: bool
    objective: float
    bound: float
    gap: float


_SCHEDULER_THREADS: list[int | None] = [None]
"""Threads of HiGHS's process-wide task scheduler: the first count a run here asked for (None
until then). The scheduler is started once per process with it and never reset."""


def scheduler_threads(threads: int | None) -> int:
    """The thread count a run may use: the process's scheduler's once it has one.

    HiGHS runs its parallel parts on one process-wide scheduler, started by the first run
    with that run's ``threads``, and refuses a later run asking for another count.
    Resetting the scheduler between runs (``resetGlobalScheduler``) is what HiGHS fixed
    upstream as a crash, and a segfault was once seen here after many solves; so the first
    count holds for the process and later runs take it (results do not depend on it).
    """
    if _SCHEDULER_THREADS[0] is None:
        _SCHEDULER_THREADS[0] = threads if threads is not None else default_threads()
    return _SCHEDULER_THREADS[0]


def default_threads() -> int:
    """HiGHS's own choice when none is given: half the logical cores, at least one."""
    return max(1, ((os.cpu_count() or 1) + 1) // 2)


def _run(highs, threads: int | None) -> None:
    """``highs.run()``, stoppable by Ctrl-C or SIGTERM (see :mod:`.interrupt`), with the
    process's scheduler thread count (:func:`scheduler_threads`)."""
    highs.setOptionValue("threads", int(scheduler_threads(threads)))

    def run():
        return highs.run()

    cancel = getattr(highs, "cancelSolve", None)  # highspy >= 1.8
    if cancel is None:
        cancel = _cannot_cancel
    elif not highs.HandleUserInterrupt:
        highs.HandleUserInterrupt = True  # HiGHS polls cancelSolve's flag in its callbacks
    status = call_interruptibly(run, cancel)
    if status == highspy.HighsStatus.kError:
        raise RuntimeError(
            f"HiGHS failed to run (model status {highs.getModelStatus().name}); "
            "rerun with the solver log shown for details"
        )


def _cannot_cancel() -> None:
    """An older highspy: the run is abandoned on Ctrl-C (the CLI then exits at once)."""


def highs_available() -> bool:
    """True when highspy imports."""
    return highspy is not None


HEURISTIC_MAX_NODES = 5_000
"""Branch-and-bound nodes of the start heuristic's leftover MIP (a handful of fractional
sites): a deterministic work limit, so the start never depends on the clock."""


MIN_MASTER_S = 0.02
"""Less time than this left after the start heuristic: report its plan and LP bound rather
than start a MIP run that could not prove a bound."""


class IncrementalHiGHS(pulp.HiGHS):
    """``pulp.HiGHS`` that loads in bulk, re-solves incrementally and takes a MIP start.

    Parameters
    ----------
    time_limit_s : float [s]
    gap_rel : float
    threads : int or None
    msg : bool
    options : dict
        Further HiGHS options, by name.
    """

    def __init__(self, *, time_limit_s, gap_rel, threads=None, msg=False, options=None):
        super().__init__(
            mip=True,
            msg=msg,
            gapRel=gap_rel,
            threads=threads,
            timeLimit=time_limit_s,
            **(options or {}),
        )
        self.start: dict[pulp.LpVariable, float] = {}
        self.choice_groups: list[list[pulp.LpVariable]] = []
        self.heuristic = True  # the fix-and-solve start when no start is given
        self.report: HighsReport | None = None
        self._loaded: tuple[int, int, int] | None = None  # (id(lp), n_cols, n_rows)
        self._relaxed = None  # LP relaxation copy, its row count, id(lp)
        self._lp_bound: float | None = None  # optimum of the last LP relaxation
        self._heuristic_objective: float | None = None

    def _configure(self, lp) -> None:
        model = lp.solverModel
        model.setOptionValue("output_flag", bool(self.msg))
        if self.gapRel is not None:
            model.setOptionValue("mip_rel_gap", float(self.gapRel))
        if self.threads is not None:
            model.setOptionValue("threads", int(self.threads))
        model.setOptionValue("time_limit", float(max(self.timeLimit, 1e-3)))
        for key, value in self.optionsDict.items():
            model.setOptionValue(key, value)

    def _add_rows(self, lp, constraints, target=None) -> None:
        lower, upper, starts, index, value = [], [], [], [], []
        for constraint in constraints:
            starts.append(len(index))
            for var, coef in constraint.items():
                if coef != 0:
                    index.append(var.index)
                    value.append(coef)
            lb, ub = constraint.getLb(), constraint.getUb()
            lower.append(-highspy.kHighsInf if lb is None else lb)
            upper.append(highspy.kHighsInf if ub is None else ub)
        if constraints:
            (lp.solverModel if target is None else target).addRows(
                len(constraints),
                np.array(lower),
                np.array(upper),
                len(index),
                np.array(starts, dtype=np.int32),
                np.array(index, dtype=np.int32),
                np.array(value, dtype=np.float64),
            )

    def buildSolverModel(self, lp) -> None:
        """Load every column and row in a few bulk calls."""
        model = lp.solverModel
        variables = lp.variables()
        for i, var in enumerate(variables):
            var.index = i
        n = len(variables)
        inf = highspy.kHighsInf
        lower = np.array([-inf if v.lowBound is None else v.lowBound for v in variables], float)
        upper = np.array([inf if v.upBound is None else v.upBound for v in variables], float)
        model.addVars(n, lower, upper)
        cost = np.array([lp.objective.get(v, 0.0) for v in variables], dtype=np.float64)
        model.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
        model.changeObjectiveOffset(float(lp.objective.constant))
        model.changeObjectiveSense(
            highspy.ObjSense.kMaximize
            if lp.sense == pulp.LpMaximize
            else highspy.ObjSense.kMinimize
        )
        integer = np.array(
            [i for i, v in enumerate(variables) if v.cat == pulp.LpInteger], dtype=np.int32
        )
        if len(integer):
            model.changeColsIntegrality(
                len(integer), integer, np.full(len(integer), 1, dtype=np.uint8)
            )
        constraints = list(lp._constraints.values())
        self._add_rows(lp, constraints)
        self._loaded = (id(lp), n, len(constraints))

    def _load(self, lp) -> None:
        constraints = list(lp._constraints.values())
        loaded = self._loaded
        if (
            lp.solverModel is not None
            and loaded is not None
            and loaded[0] == id(lp)
            and loaded[1] == len(lp.variables())
            and loaded[2] <= len(constraints)
        ):
            self._add_rows(lp, constraints[loaded[2] :])
            self._loaded = (loaded[0], loaded[1], len(constraints))
        else:
            lp.solverModel = highspy.Highs()
            self._configure(lp)
            self.buildSolverModel(lp)
        self._configure(lp)

    def _read(self, lp) -> None:
        model = lp.solverModel
        status = model.getModelStatus()
        info = model.getInfo()
        has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
        self.report = HighsReport(
            model_status=str(status.name).removeprefix("k"),
            has_solution=has_solution,
            objective=float(info.objective_function_value),
            bound=float(info.mip_dual_bound),
            gap=float(info.mip_gap),
        )
        values = np.asarray(model.getSolution().col_value) if has_solution else None
        for var in lp.variables():
            var.varValue = None if values is None else float(values[var.index])

    def _sub_highs(self, lp, time_limit_s: float):
        sub = highspy.Highs()
        sub.setOptionValue("output_flag", False)
        if self.threads is not None:
            sub.setOptionValue("threads", int(self.threads))
        sub.setOptionValue("time_limit", float(max(time_limit_s, 1e-3)))
        sub.passModel(lp.solverModel.getModel())
        return sub

    def _fix_and_solve(self, lp, time_limit_s: float) -> np.ndarray | None:
        """Primal heuristic for a start: solve the LP relaxation, fix every choice group
        (site) whose LP solution is integral, solve the small MIP left over.

        A multiple-choice model with a few coupling rows has at most that many
        fractional groups at an LP vertex, so the leftover MIP is tiny; HiGHS's own
        heuristics find a first plan only after lengthy root cut rounds on such models.
        """
        began = time.perf_counter()
        values = self.relaxation(lp, time_limit_s)
        if values is None:
            return None
        fixed = np.array(
            [g[np.argmax(values[g])] for g in self._group_indices() if values[g].max() > 1 - 1e-6],
            dtype=np.int32,
        )
        left = time_limit_s - (time.perf_counter() - began)
        sub = self._sub_highs(lp, left)
        sub.changeColsBounds(len(fixed), fixed, np.ones(len(fixed)), np.ones(len(fixed)))
        sub.setOptionValue("mip_rel_gap", float(self.gapRel or DEFAULT_MIP_GAP))
        # a work limit, not a share of the clock: the same start however long the run
        sub.setOptionValue("mip_max_nodes", HEURISTIC_MAX_NODES)
        _run(sub, self.threads)
        if sub.getInfo().primal_solution_status != 2:
            return None
        self._heuristic_objective = float(sub.getInfo().objective_function_value)
        return np.asarray(sub.getSolution().col_value)

    def relaxation(self, lp, time_limit_s: float) -> np.ndarray | None:
        """Solve the LP relaxation of ``lp`` (loading it if needed); rows added to ``lp``
        since the last call are appended, so simplex restarts from the previous basis.

        Returns
        -------
        numpy.ndarray or None
            Column values in load order (``var.index``); None without an optimal LP.
        """
        if lp.solverModel is None or self._loaded is None or self._loaded[0] != id(lp):
            self._load(lp)
        constraints = list(lp._constraints.values())
        if self._relaxed is None or self._relaxed[2] != id(lp):
            sub = self._sub_highs(lp, time_limit_s)
            n = sub.getNumCol()
            sub.changeColsIntegrality(n, np.arange(n, dtype=np.int32), np.zeros(n, np.uint8))
            self._relaxed = [sub, self._loaded[2], id(lp)]
        sub, n_rows, _ = self._relaxed
        self._add_rows(lp, constraints[n_rows:], target=sub)
        self._relaxed[1] = len(constraints)
        sub.setOptionValue("time_limit", float(max(time_limit_s, 1e-3)))
        _run(sub, self.threads)
        if sub.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        self._lp_bound = float(sub.getInfo().objective_function_value)
        return np.asarray(sub.getSolution().col_value)

    def relaxation_duals(self) -> np.ndarray | None:
        """Row duals of the last LP relaxation solved, in row load order."""
        if self._relaxed is None:
            return None
        return np.asarray(self._relaxed[0].getSolution().row_dual)

    def _group_indices(self) -> list[np.ndarray]:
        return [np.array([v.index for v in g], dtype=np.int64) for g in self.choice_groups]

    def _set_start(self, lp) -> np.ndarray | None:
        """Pass the given start, else the heuristic's plan (returned) as the MIP start."""
        if self.start:
            index = np.array([v.index for v in self.start], dtype=np.int32)
            value = np.array(list(self.start.values()), dtype=np.float64)
            lp.solverModel.setSolution(len(index), index, value)
            return None
        if not self.choice_groups or not self.heuristic:
            return None
        values = self._fix_and_solve(lp, self.timeLimit)
        if values is not None:
            n = len(values)
            lp.solverModel.setSolution(n, np.arange(n, dtype=np.int32), values)
        return values

    def _closes_gap(self, lp) -> bool:
        """The heuristic plan is within the gap of the LP bound (both maximisation): the
        MIP run would stop at its root, so skip it."""
        if lp.sense != pulp.LpMaximize or self._lp_bound is None:
            return False
        objective, bound = self._heuristic_objective, self._lp_bound
        gap = max(bound - objective, 0.0) / max(abs(objective), 1e-9)
        return gap <= (self.gapRel if self.gapRel is not None else DEFAULT_MIP_GAP)

    def _report_heuristic(self, lp, values: np.ndarray, status: str = "Optimal") -> None:
        objective, bound = self._heuristic_objective, self._lp_bound
        self.report = HighsReport(
            model_status=status,
            has_solution=True,
            objective=objective,
            bound=max(bound, objective),
            gap=max(bound - objective, 0.0) / max(abs(objective), 1e-9),
        )
        for var in lp.variables():
            var.varValue = float(values[var.index])

    def actualSolve(self, lp, **kwargs):
        """Load (or extend) the model, set the start, run, read the report."""
        began = time.perf_counter()
        self._load(lp)
        self._lp_bound = self._heuristic_objective = None
        heuristic = self._set_start(lp)
        left = self.timeLimit - (time.perf_counter() - began)
        if heuristic is not None and self._closes_gap(lp):
            self._report_heuristic(lp, heuristic)
        elif heuristic is not None and left <= MIN_MASTER_S and self._lp_bound is not None:
            # the limit ran out in the heuristic: its plan, with the LP bound for the gap
            self._report_heuristic(lp, heuristic, status="TimeLimit")
        else:
            lp.solverModel.setOptionValue("time_limit", float(max(left, 1e-3)))
            _run(lp.solverModel, self.threads)
            self._read(lp)
        status = self.report.model_status
        if self.report.has_solution:
            lp.assignStatus(
                pulp.LpStatusOptimal,
                pulp.LpSolutionOptimal if status == "Optimal" else pulp.LpSolutionIntegerFeasible,
            )
        elif status in ("Infeasible", "UnboundedOrInfeasible"):
            lp.assignStatus(pulp.LpStatusInfeasible, pulp.LpSolutionInfeasible)
        elif status == "Unbounded":
            lp.assignStatus(pulp.LpStatusUnbounded, pulp.LpSolutionUnbounded)
        else:
            lp.assignStatus(pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound)
        return lp.status
