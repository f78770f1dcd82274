"""The main job, end to end: scenario -> valuation -> build plan -> outputs.

``solve`` picks the plan with the MILP; ``evaluate`` (siteopt.app.evaluate) values a plan
the user fixed. Both end in :func:`finish`, so their outputs are the same files with
the same keys, and a plan evaluated is valued exactly as the same plan solved.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import reduce
from typing import Any

import numpy as np
import pandas as pd

from siteopt.app.checks import scenario_warnings
from siteopt.app.deals import DealComparison, compare_deals
from siteopt.app.economics import MarketFan, market_fan
from siteopt.app.engines import chunk_executor
from siteopt.app.explain import (
    CapitalValue,
    ConstraintSlack,
    SiteWhy,
    capital_values,
    constraint_slacks,
    site_reasons,
)
from siteopt.app.finance import increment, returns, yield_on_cost
from siteopt.app.plan import plan_problem
from siteopt.app.staged import StagedOutcome, StagedStates, StaticPlan, staged_policy, staged_states
from siteopt.app.structures import StructureComparison, compare_structures
from siteopt.app.validation import (
    Validation,
    check_validate,
    has_risk_term,
    hold_floor,
    on_fresh_draws,
    optimality_gap,
    risk_neutral,
)
from siteopt.app.valuation import ValuationResult, plan_npv_samples, value_options
from siteopt.kernels.backend import Backend, select_backend
from siteopt.kernels.cashflows import MEMO_ITEMS, TERMINAL_MEMOS, expected_cashflows
from siteopt.kernels.hosting import (
    construction_start,
    energisation,
    mining_left_mw,
    ramp_months,
    term_revenue_usd_mw,
)
from siteopt.kernels.params import Portfolio
from siteopt.kernels.reduce import Grouping
from siteopt.kernels.sites import SiteOption
from siteopt.kernels.valuation import ValuationCache
from siteopt.model.errors import InfeasibleError, InputError
from siteopt.model.load import with_simulation
from siteopt.model.plausibility import ScenarioWarning, SourceLines
from siteopt.model.schema import Scenario
from siteopt.optimizer.alternatives import alternatives as near_optimal
from siteopt.optimizer.data import plan_data
from siteopt.optimizer.defaults import DEFAULT_MIP_GAP, DEFAULT_TIME_LIMIT_S
from siteopt.optimizer.engine import SolverSettings, check_solver
from siteopt.optimizer.options import PlanProblem, capex_column
from siteopt.optimizer.results import (
    PlanResult,
    all_mining,
    cvar_terms,
    max_ai,
    portfolio_cvar,
    standard_error,
    violations,
)
from siteopt.optimizer.solve import SolveStatus, solve_plan

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
    "expected_terminal_pv_usd",
    "leverage_usd",
    "why_code",
    "why",
    # revision 3: what the debt adds, split (after the earlier columns, which keep their place)
    "leverage_value_usd",
    "tax_shield_usd",
    "rate_subsidy_usd",
    "walk_away_value_usd",
    # issue 28: the option's label (``sell`` for a sale, ``-jv`` for a joint venture) and a
    # JV partner's share of the hall
    "option",
    "partner_share",
    # a phased site's tranche (1, 2, ...): a row per tranche; empty without a hall
    "tranche",
)
PORTFOLIO_KEYS = (  # summary.json's portfolio figures, compared by whatif and sweep
    "expected_npv_usd",
    "cvar_usd",
    "p5_npv_usd",
    "p50_npv_usd",
    "p95_npv_usd",
    "ai_it_mw_total",
    "mining_mw_total",
)
MAX_FRONTIER_POINTS = 50
MAX_ALTERNATIVES = 20
DEFAULT_WITHIN = 0.01  # --within: alternatives' E[NPV] within 1% of the plan's
FRONTIER_MIN_POINT_S = 5.0


@dataclass(frozen=True)
class SolveSettings:
    """How to run a solve (docs/cli.md's shared options). The scenario count and seed are
    not here: ``--scenarios`` and ``--seed`` are applied to the scenario once, at load
    (siteopt.model.load.with_simulation), and the scenario carries them."""

    backend: str = "auto"
    engine: str = "local"  # "dask": chunks run on a cluster (siteopt.app.engines)
    scheduler: str | None = None  # the Dask scheduler's address; None starts a local cluster
    solver: str | None = None
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    gap_rel: float = DEFAULT_MIP_GAP
    source: SourceLines | None = None  # the scenario's file and lines, to place warnings


@dataclass(frozen=True)
class Decision:
    """How the plan was arrived at: the MILP's verdict, or a user's plan checked."""

    status: str
    mip_gap: float | None
    solver: str | None
    violations: tuple[str, ...] = ()
    violation_details: tuple[str, ...] = ()  # "budget_2028: cumulative equity capex ..."
    notes: tuple[str, ...] = ()
    result: PlanResult | None = None
    warm_start: bool = False  # the MILP was offered a feasible start plan


@dataclass(frozen=True)
class PortfolioFigures:
    """The plan's portfolio statistics, its sites and the baselines, computed once.

    Money in USD; ``sites`` and ``baselines`` hold plain values, as summary.json has them.
    """

    expected_npv_usd: float
    expected_npv_se_usd: float | None  # standard error of the mean over the scenarios
    cvar_usd: float
    cvar_alpha: float
    p5_npv_usd: float
    p50_npv_usd: float
    p95_npv_usd: float
    equity_capex_by_year_usd: dict[str, float]  # years with spend only
    ai_it_mw_total: float
    mining_mw_total: float
    sites: tuple[dict[str, Any], ...]  # name, ai_it_mw, mining_mw, build_year, contract, ...
    baselines: dict[str, dict[str, Any]]  # all_mining, max_ai: expected_npv_usd, cvar_usd
    warnings: tuple[ScenarioWarning, ...]
    cvar_in_model_usd: float | None
    cvar_risk_sample_usd: float | None
    risk_sample: int
    expected_terminal_pv_usd: float = 0.0  # of expected_npv_usd, the terminal value's PV
    leverage_usd: float = 0.0  # E[NPV] less the E[NPV] without project debt, same draws
    # of leverage_usd: the tax shield and the rate subsidy (their sum the leverage's value),
    # and the non-recourse walk-away, the equity's option
    tax_shield_usd: float = 0.0
    rate_subsidy_usd: float = 0.0
    walk_away_value_usd: float = 0.0
    returns: dict[str, Any] | None = None  # the conversions over hashing (finance.returns)

    @property
    def leverage_value_usd(self) -> float:
        """What the debt is worth as financing: its tax shield and rate subsidy."""
        return self.tax_shield_usd + self.rate_subsidy_usd

    @property
    def terminal_value_share(self) -> float | None:
        """The terminal value's share of the plan's E[NPV]; None when E[NPV] <= 0."""
        return _share(self.expected_terminal_pv_usd, self.expected_npv_usd)

    def portfolio(self) -> dict[str, float]:
        """The figures whatif and sweep compare (PORTFOLIO_KEYS)."""
        return {key: getattr(self, key) for key in PORTFOLIO_KEYS}


@dataclass(frozen=True)
class SolveOutcome:
    """Everything a run produced; the output files and the report are drawn from it
    (summary.json by siteopt.output.summary.summary_of, once the outcome is final)."""

    scenario: Scenario
    valuation: ValuationResult
    problem: PlanProblem
    rows: tuple[int, ...]  # option-table row per site
    decision: Decision
    plan_frame: pd.DataFrame
    figures: PortfolioFigures
    cashflows: pd.DataFrame
    samples: dict[str, np.ndarray]  # portfolio NPV per scenario: plan, all_mining, max_ai [USD]
    backend_note: str  # the one-line backend description, e.g. "numpy (no NVIDIA GPU found)"
    backend_detail: str  # why that backend (the CUDA error, for --verbose and summary.json)
    engine: str  # "local" or "dask": where the chunks ran
    time_limit_s: float
    frontier: pd.DataFrame | None = None
    frontier_records: tuple[dict[str, Any], ...] = ()  # summary.json's "frontier"
    evaluated: bool = False  # a user's plan valued (siteopt evaluate), no MILP
    timings_s: dict[str, float] = field(default_factory=dict)
    why: tuple[SiteWhy, ...] = ()  # a reason per site (siteopt.app.explain)
    constraints: tuple[ConstraintSlack, ...] = ()  # each constraint's value and slack
    capital: tuple[CapitalValue, ...] = ()  # what CAPITAL_STEP_USD more per year buys
    runner_up: RunnerUp | None = None  # the best other plan (solve with explain)
    alternatives: tuple[AlternativePlan, ...] = ()  # near-optimal plans (--alternatives)
    staged: StagedOutcome | None = None  # the wait-and-see policy (--staged)
    # the plan's expected memo lines (kernels.cashflows.MEMO_ITEMS, TERMINAL_MEMOS), in
    # cashflows.csv's format: what proforma.xlsx reads beside the cash flows
    memo: pd.DataFrame | None = None
    # the converted sites' expected cash flows had they kept hashing, in cashflows.csv's
    # format: the flows the returns are measured over (siteopt.app.finance.increment)
    hashing_cashflows: pd.DataFrame | None = None
    # the drawn market by year (economics.market_fan): summary.json's "market", the report
    market: MarketFan | None = None
    # the plan's NPV on the central path (--deterministic's); None in a deterministic run
    central_npv_usd: float | None = None
    # colocation beside cloud at each site with options of both (siteopt.app.structures)
    structures: tuple[StructureComparison, ...] = ()
    # sell, share or keep at each site with a sale block (siteopt.app.deals)
    deals: tuple[DealComparison, ...] = ()
    # the plan and the risk-neutral plan on fresh draws (a solve with a risk term, or
    # --validate); None otherwise
    validation: Validation | None = None
    # the problem the MILP solved when it is not ``problem``: the CVaR floor raised on the
    # risk sample so that the plan keeps the user's over all scenarios (floor_over_all)
    solved_problem: PlanProblem | None = None

    @property
    def chosen(self) -> list[SiteOption]:
        flat = [o for opts in self.valuation.site_options for o in opts]
        return [flat[r] for r in self.rows]

    @property
    def plan(self) -> PlanResult | None:
        return self.decision.result

    @property
    def plan_csv(self) -> pd.DataFrame:
        """plan.csv: :attr:`plan_frame` with a row per tranche of a phased site
        (:func:`tranche_rows`)."""
        return tranche_rows(self.valuation.portfolio, self.plan_frame, self.chosen)

    @property
    def milp_problem(self) -> PlanProblem:
        """What the re-solves (capital, runner-up, frontier, alternatives, staged) hold the
        plan's rivals to: the problem the MILP solved, a raised floor included."""
        return self.solved_problem or self.problem


def value(
    scenario: Scenario,
    settings: SolveSettings,
    progress: Progress | None = None,
    cache: ValuationCache | None = None,
    grouping: Grouping | None = None,
) -> tuple[Backend, ValuationResult]:
    """The valuation stage: the backend, and every option's NPV statistics (on the
    cluster with ``--engine dask``); the scenario carries its run settings. With a
    ``grouping``, also every option's mean NPV in each group of scenarios."""
    backend = select_backend(settings.backend)
    executor = _executor(settings)
    valuation = value_options(
        scenario,
        backend=backend,
        progress=progress,
        cache=cache,
        executor=executor,
        grouping=grouping,
    )
    return backend, valuation


def _executor(settings: SolveSettings):
    """The Dask chunk executor of ``--engine dask``; None runs chunks in this process."""
    return chunk_executor(settings.engine, settings.scheduler, settings.backend)


def solve(
    scenario: Scenario,
    settings: SolveSettings,
    progress: Progress | None = None,
    *,
    cache: ValuationCache | None = None,
    start: Sequence[SiteOption] | None = None,
    frontier: int = 0,
    explain: bool = False,
    alternatives: int = 0,
    within: float = DEFAULT_WITHIN,
    differ_by: str = "totals",
    staged: int = 0,
    validate: int = 0,
    validation: bool = False,
) -> SolveOutcome:
    """Value every option, solve the MILP, and value the chosen plan on every scenario.

    Parameters
    ----------
    cache : ValuationCache, optional
        Reuse the valuation of sites a what-if or sweep did not change.
    start : list of SiteOption, optional
        A previous plan to warm-start the MILP from (used when it satisfies this
        scenario's constraints).
    frontier : int
        When >= 2, also solve that many risk weights and return the E[NPV]-CVaR frontier.
    explain : bool
        Also what more capital buys: the MILP again with CAPITAL_STEP_USD more in each
        budget year (siteopt.app.explain), warm-started from the plan.
    alternatives, within, differ_by : int, float, str
        Also that many near-optimal plans, each with E[NPV] within ``within`` (a share)
        of the plan's, as different from it and from each other as possible: in AI MW per
        contract and build year (``totals``) or in sites changed (``sites``).
    staged : int
        When >= 1, also the wait-and-see policy with up to that many market states per
        state at each later decision year (siteopt.app.staged), and its value of waiting.
    validate : int
        When >= 2, also that many independent replications and the plan's optimality gap
        estimated from them (siteopt.app.validation).
    validation : bool
        Value the plan and the risk-neutral plan on fresh draws when the problem has a CVaR
        weight or floor (``siteopt solve``; what-ifs, sweeps and cases leave it off). On
        with any ``validate``. Never in a deterministic run (one path: nothing to draw).

    Raises
    ------
    InfeasibleError
        No plan satisfies the constraints; the conflicts are named.
    """
    check_validate(scenario, validate)
    t0 = time.perf_counter()
    states = staged_states(scenario, staged) if staged else None
    grouping = states.grouping if states is not None else None
    backend, valuation = value(scenario, settings, progress, cache, grouping)
    t1 = time.perf_counter()
    problem = plan_problem(scenario)
    if progress is not None:
        progress("milp", 0, 1)
    start_rows = _start_rows(valuation, problem, start)
    result = _solve_milp(valuation, problem, settings, start_rows)
    if result.status == SolveStatus.INFEASIBLE:
        raise InfeasibleError(_infeasible_message(result, settings), result.diagnosis)
    result, floor_notes, solved = floor_over_all(
        scenario, valuation, problem, settings, backend, result
    )
    if progress is not None:
        progress("milp", 1, 1)
    t2 = time.perf_counter()
    decision = Decision(
        status=str(result.status),
        mip_gap=_maybe(result.mip_gap),
        solver=result.solver,
        notes=(*_milp_notes(result, settings), *floor_notes),
        result=result,
        warm_start=start_rows is not None,
    )
    rows = tuple(int(result.chosen[site]) for site in result.chosen)
    outcome = finish(scenario, backend, valuation, problem, rows, decision, settings, progress)
    if solved is not problem:
        outcome = replace(outcome, solved_problem=solved)
    if explain:
        outcome = with_explanation(outcome, backend, settings)
    if frontier:
        outcome = with_frontier(outcome, backend, settings, frontier, progress)
    if alternatives:
        outcome = with_alternatives(
            outcome, backend, settings, alternatives, within, progress, differ_by
        )
    t3 = time.perf_counter()
    if states is not None:
        outcome = with_staged(outcome, backend, settings, states, progress)
    t4 = time.perf_counter()
    wanted = validate or (validation and has_risk_term(problem))
    if wanted and not scenario.simulation.deterministic:
        outcome = with_validation(outcome, backend, settings, validate, progress)
    timings = {"valuation": t1 - t0, "milp": t2 - t1}
    if states is not None:
        timings["staged"] = t4 - t3
    if outcome.validation is not None:
        timings["validation"] = time.perf_counter() - t4
    timings["total"] = time.perf_counter() - t0
    return replace(outcome, timings_s=timings)


def with_validation(
    outcome: SolveOutcome,
    backend: Backend,
    settings: SolveSettings,
    replications: int = 0,
    progress: Progress | None = None,
) -> SolveOutcome:
    """``outcome`` with its plan and the risk-neutral plan (the MILP without the CVaR
    weight and floor, warm-started from the plan) valued on fresh draws, and with
    ``replications`` >= 2 the plan's Mak-Morton-Wood optimality gap."""
    valuation, problem = outcome.valuation, outcome.problem
    flat = [o for opts in valuation.site_options for o in opts]
    neutral_rows = outcome.rows
    if has_risk_term(problem):
        start = np.asarray(outcome.rows, dtype=np.int64)
        neutral = _solve_milp(valuation, risk_neutral(problem), settings, start)
        if neutral.found_plan:
            neutral_rows = tuple(int(neutral.chosen[s]) for s in neutral.chosen)
    kernel_options = {"backend": backend, "executor": _executor(settings)}
    validation = on_fresh_draws(
        outcome.scenario,
        [flat[r] for r in outcome.rows],
        [flat[r] for r in neutral_rows],
        progress,
        **kernel_options,
    )
    if replications:
        gap = optimality_gap(
            outcome.scenario,
            problem,
            outcome.rows,
            replications,
            lambda again, p: _solve_milp(again, p, settings),
            validation.plan_var_usd,
            progress,
            **kernel_options,
        )
        validation = replace(validation, gap=gap)
    return replace(outcome, validation=validation)


def with_staged(
    outcome: SolveOutcome,
    backend: Backend,
    settings: SolveSettings,
    staged: StagedStates,
    progress: Progress | None = None,
) -> SolveOutcome:
    """``outcome`` (valued with ``staged``'s grouping) with the staged policy and its value
    of waiting (siteopt.app.staged), on the run's solver settings and engine."""
    solver = SolverSettings(
        name=check_solver(settings.solver),
        time_limit_s=settings.time_limit_s,
        gap_rel=settings.gap_rel,
    )
    policy = staged_policy(
        outcome.scenario,
        outcome.valuation,
        outcome.milp_problem,
        StaticPlan(outcome.rows, outcome.samples["plan"]),
        staged,
        backend,
        solver,
        progress,
        _executor(settings),
    )
    return replace(outcome, staged=policy)


def plan_only(
    scenario: Scenario, settings: SolveSettings, cache: ValuationCache | None = None
) -> tuple[ValuationResult, PlanResult]:
    """The valuation and the MILP's plan, without the rest of a solve (the plan valued on
    every scenario, the cash flows, the figures): what a search over whole plans needs.

    Raises
    ------
    InfeasibleError
        No plan satisfies the constraints.
    """
    _, valuation = value(scenario, settings, None, cache)
    problem = plan_problem(scenario)
    result = _solve_milp(valuation, problem, settings)
    if result.status == SolveStatus.INFEASIBLE:
        raise InfeasibleError(_infeasible_message(result, settings), result.diagnosis)
    return valuation, result


def with_explanation(
    outcome: SolveOutcome, backend: Backend, settings: SolveSettings
) -> SolveOutcome:
    """``outcome`` with what CAPITAL_STEP_USD more in each budget year buys (and the
    budgets' binding flags from it) and the runner-up plan: the MILP's optimum with this
    plan excluded, its E[NPV] and the margin's standard error on the same draws. A note
    says when the plan beats it by less than two standard errors."""
    valuation, problem, rows = outcome.valuation, outcome.milp_problem, outcome.rows
    start = np.asarray(rows, dtype=np.int64)
    seed = _seed(outcome)  # the main solve's CVaR rows or cuts: no rounds to find them again
    capital = capital_values(
        valuation.options,
        problem,
        rows,
        lambda changed: _solve_milp(valuation, changed, settings, start, seed),
    )
    runner = _runner_up(outcome, backend, settings)
    notes = outcome.decision.notes
    if runner is not None:
        notes += _runner_up_notes(runner)
    return replace(
        outcome,
        capital=capital,
        constraints=constraint_slacks(valuation.options, outcome.problem, rows, capital),
        runner_up=runner,
        decision=replace(outcome.decision, notes=notes),
    )


@dataclass(frozen=True)
class AlternativePlan:
    """A near-optimal plan (optimizer.alternatives), valued on every scenario."""

    rows: tuple[int, ...]  # option-table row per site
    expected_npv_usd: float
    cvar_usd: float
    distance: int  # sites whose option differs from the plan's
    changes: tuple[str, ...]  # "site: option" where it differs from the plan
    distance_mw: float = 0.0  # AI MW by contract and build year apart from the plan's


def with_alternatives(
    outcome: SolveOutcome,
    backend: Backend,
    settings: SolveSettings,
    count: int,
    within: float,
    progress: Progress | None = None,
    differ_by: str = "totals",
) -> SolveOutcome:
    """``outcome`` with up to ``count`` near-optimal plans (optimizer.alternatives), each
    valued on every scenario (the plan's draws) for its E[NPV] and CVaR."""
    if not 1 <= count <= MAX_ALTERNATIVES:
        raise InputError(f"--alternatives must be between 1 and {MAX_ALTERNATIVES}, got {count}")
    if not 0.0 <= within < 1.0:
        raise InputError(f"--within must be a share in [0, 1), e.g. 0.01 for 1%, got {within}")
    valuation, rows = outcome.valuation, outcome.rows
    if progress is not None:
        progress("alternatives", 0, count)
    found = near_optimal(
        valuation.options,
        outcome.milp_problem,
        rows,
        count,
        within,
        solver=settings.solver,
        time_limit_s=settings.time_limit_s,
        gap_rel=settings.gap_rel,
        differ_by=differ_by,
    )
    flat = [o for opts in valuation.site_options for o in opts]
    samples = plan_npv_samples(
        outcome.scenario,
        {f"alt {k}": [flat[r] for r in alt.rows] for k, alt in enumerate(found)},
        valuation,
        backend=backend,
        executor=_executor(settings),
    )
    alpha = outcome.scenario.objective.cvar_alpha
    plans = []
    for k, alt in enumerate(found):
        npv = samples[f"alt {k}"]
        changes = _changes(valuation, rows, alt.rows)
        cvar = float(portfolio_cvar(npv, alpha))
        plans.append(
            AlternativePlan(
                alt.rows, float(npv.mean()), cvar, alt.distance, changes, alt.distance_mw
            )
        )
        if progress is not None:
            progress("alternatives", k + 1, count)
    return replace(outcome, alternatives=tuple(plans))


@dataclass(frozen=True)
class RunnerUp:
    """The best plan other than the chosen one (the MILP with the chosen one excluded),
    compared on every scenario of the run (the same draws)."""

    expected_npv_usd: float
    margin_usd: float  # the plan's E[NPV] over it
    margin_se_usd: float | None  # the margin's standard error
    changes: tuple[str, ...]  # "site: option" where it differs
    cvar_usd: float = 0.0  # its CVaR
    cvar_margin_usd: float = 0.0  # the plan's CVaR over it
    risk_aversion: float = 0.0  # the objective's CVaR weight
    # the plan's objective (E[NPV] + risk_aversion x CVaR) over it, and that margin's
    # standard error (the CVaR's part through its per-scenario terms, optimizer.results.
    # cvar_terms); with no CVaR weight, the E[NPV] margin
    objective_margin_usd: float = 0.0
    objective_margin_se_usd: float | None = None


def _runner_up_notes(runner: RunnerUp) -> tuple[str, ...]:
    """A note when the scenarios do not tell the plan from the runner-up (the objective's
    margin within two of its standard errors), or when the runner-up is clearly better over
    all scenarios (the MILP compares plans on the risk sample); with a CVaR weight, the
    margin's E[NPV] and CVaR parts beside."""
    margin, se = runner.objective_margin_usd, runner.objective_margin_se_usd
    if not se or margin >= 2 * se:
        return ()
    if runner.risk_aversion > 0:
        what = (
            f"in the objective (E[NPV] + {runner.risk_aversion:g} x CVaR: E[NPV] "
            f"{runner.margin_usd / 1e6:+,.1f}M, CVaR {runner.cvar_margin_usd / 1e6:+,.1f}M)"
        )
    else:
        what = "in E[NPV]"
    if margin <= -2 * se:
        return (
            f"the runner-up plan beats the plan by ${-margin / 1e6:,.1f}M {what} over all the "
            f"run's scenarios, more than two standard errors (${se / 1e6:,.1f}M): the MILP "
            "weighs the CVaR on the risk sample only; raise simulation.risk_sample",
        )
    verb = "beats" if margin >= 0 else "trails"
    return (
        f"the plan {verb} the runner-up plan by ${abs(margin) / 1e6:,.1f}M {what}, less than "
        f"two standard errors of that margin (${se / 1e6:,.1f}M): these scenarios do not "
        "tell the two apart; run more to separate them",
    )


def _runner_up(outcome: SolveOutcome, backend: Backend, settings: SolveSettings) -> RunnerUp | None:
    valuation, rows = outcome.valuation, outcome.rows
    excluded = replace(outcome.milp_problem, exclude=(tuple(int(r) for r in rows),))
    result = _solve_milp(valuation, excluded, settings, cvar_seed=_seed(outcome))
    if result.status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
        return None
    flat = [o for opts in valuation.site_options for o in opts]
    other = [int(result.chosen[site]) for site in result.chosen]
    samples = plan_npv_samples(
        outcome.scenario,
        {"runner_up": [flat[r] for r in other]},
        valuation,
        backend=backend,
        executor=_executor(settings),
    )["runner_up"]
    problem = outcome.problem
    return runner_up_of(
        outcome.samples["plan"],
        samples,
        problem.cvar_alpha,
        problem.risk_aversion,
        _changes(valuation, rows, other),
    )


def runner_up_of(
    plan: np.ndarray, other: np.ndarray, alpha: float, weight: float, changes: tuple[str, ...]
) -> RunnerUp:
    """The plan against the runner-up ``other``, both NPVs on the same scenarios [USD]: the
    margins in E[NPV], in CVaR and in the objective ``E[NPV] + weight x CVaR``, with the
    standard errors of the E[NPV] and objective margins."""
    margin = plan - other
    objective = margin
    if weight > 0:
        objective = margin + weight * (cvar_terms(plan, alpha) - cvar_terms(other, alpha))
    cvar = float(portfolio_cvar(other, alpha))
    return RunnerUp(
        float(other.mean()),
        float(margin.mean()),
        standard_error(margin),
        changes,
        cvar_usd=cvar,
        cvar_margin_usd=float(portfolio_cvar(plan, alpha)) - cvar,
        risk_aversion=weight,
        objective_margin_usd=float(objective.mean()),
        objective_margin_se_usd=standard_error(objective),
    )


def _seed(outcome: SolveOutcome):
    """The CVaR rows or cuts the outcome's MILP found (None without a CVaR or a MILP)."""
    result = outcome.decision.result
    return None if result is None else result.cvar_seed


def _changes(
    valuation: ValuationResult, rows: Sequence[int], other: Sequence[int]
) -> tuple[str, ...]:
    """``site: option`` of each site whose option in the plan ``other`` differs from
    ``rows`` (both option-table rows, one per site)."""
    flat = [o for opts in valuation.site_options for o in opts]
    return tuple(
        f"{valuation.options.sites[i]}: {flat[b].label}"
        for i, (a, b) in enumerate(zip(rows, other, strict=True))
        if a != b
    )


def _solve_milp(valuation, problem, settings, start_rows=None, cvar_seed=None) -> PlanResult:
    return solve_plan(
        valuation.options,
        problem,
        solver=settings.solver,
        time_limit_s=settings.time_limit_s,
        gap_rel=settings.gap_rel,
        start_rows=start_rows,
        cvar_seed=cvar_seed,
    )


def floor_over_all(
    scenario: Scenario,
    valuation: ValuationResult,
    problem: PlanProblem,
    settings: SolveSettings,
    backend: Backend,
    result: PlanResult,
) -> tuple[PlanResult, tuple[str, ...], PlanProblem]:
    """The plan, holding ``objective.cvar_floor_usd`` over all the run's scenarios, its
    notes, and the problem it was solved under (``problem``, or with the raised floor).

    The MILP sees the floor on the risk sample only; a plan can keep it there and miss it
    over all scenarios. Then the floor on the sample is raised by the shortfall and the
    MILP solved again, up to FLOOR_ROUNDS times; a plan that keeps the floor after that is
    reported ``feasible`` (no longer proven best over all scenarios) with a note, and one
    that still misses it raises InfeasibleError (exit 3) with the amount.
    """
    floor = problem.cvar_floor_usd
    if floor is None or valuation.options.risk_npv_usd.shape[1] == 0:
        return result, (), problem
    flat = [opt for opts in valuation.site_options for opt in opts]
    alpha, n = problem.cvar_alpha, scenario.simulation.scenarios

    def over_all(res: PlanResult) -> float:
        rows = [int(res.chosen[site]) for site in res.chosen]
        samples = plan_npv_samples(
            scenario, {"plan": [flat[i] for i in rows]}, valuation, backend=backend,
            executor=_executor(settings),
        )["plan"]  # fmt: skip
        return float(portfolio_cvar(samples, alpha))

    seeds = [result.cvar_seed]  # each re-solve starts from the last one's CVaR cuts or rows

    def solve_raised(target: float) -> PlanResult | None:
        raised = replace(problem, cvar_floor_usd=target)
        tightened = _solve_milp(valuation, raised, settings, cvar_seed=seeds[-1])
        if tightened.status == SolveStatus.INFEASIBLE and tightened.timed_out:
            # out of time before any plan keeps the raised floor: say so, as the first MILP
            raise InfeasibleError(_infeasible_message(tightened, settings), tightened.diagnosis)
        if tightened.status == SolveStatus.INFEASIBLE:
            return None
        seeds.append(tightened.cvar_seed)
        return tightened

    held = hold_floor(floor, result, over_all, solve_raised)
    cvar_all, target = held.cvar_usd, held.target_usd
    if held.kept and not held.first_short_usd:
        return result, (), problem
    if held.kept:
        note = (
            f"the first plan kept the CVaR floor on the risk sample but missed it by "
            f"${held.first_short_usd / 1e6:,.1f}M over all {n:,} scenarios; the floor was raised "
            f"to ${target / 1e6:,.1f}M on the sample so that the plan keeps "
            f"${floor / 1e6:,.1f}M over all scenarios (its CVaR there: "
            f"${cvar_all / 1e6:,.1f}M); the plan is feasible, not proven best"
        )
        solved = replace(held.solution, status=SolveStatus.FEASIBLE)
        return solved, (note,), replace(problem, cvar_floor_usd=target)
    k = valuation.options.risk_npv_usd.shape[1]
    raise InfeasibleError(
        f"no plan found that keeps the CVaR floor of ${floor / 1e6:,.1f}M over all {n:,} "
        f"scenarios: the best found misses it by ${(floor - cvar_all) / 1e6:,.1f}M (its CVaR "
        f"${cvar_all / 1e6:,.1f}M), although the MILP's risk sample of {k:,} scenarios "
        "allowed it; lower objective.cvar_floor_usd or raise simulation.risk_sample"
    )


def _start_rows(
    valuation: ValuationResult, problem: PlanProblem, start: Sequence[SiteOption] | None
) -> np.ndarray | None:
    """Table rows of a previous plan, by site and option label; None when a site's
    option is not offered any more or the plan breaks a constraint here."""
    if not start:
        return None
    where = {
        (o.site_index, o.label): r
        for r, o in enumerate(o for opts in valuation.site_options for o in opts)
    }
    rows = [where.get((o.site_index, o.label)) for o in start]
    if None in rows or len(rows) != len(valuation.site_options):
        return None
    rows_array = np.array(rows, dtype=np.int64)
    if violations(plan_data(valuation.options, problem), problem, rows_array):
        return None
    return rows_array


def _milp_notes(result: PlanResult, settings: SolveSettings) -> tuple[str, ...]:
    if result.status == SolveStatus.FEASIBLE and result.timed_out:
        gap = "unknown" if result.mip_gap in (None, np.inf) else f"{result.mip_gap:.2%}"
        return (
            f"the MILP stopped at the time limit ({settings.time_limit_s:g} s) with gap {gap}; "
            "the plan is the best found, not proven optimal",
        )
    return ()


def _infeasible_message(result: PlanResult, settings: SolveSettings) -> str:
    if result.timed_out:
        return (
            f"no build plan found within the time limit of {settings.time_limit_s:g} s; "
            "try a longer --time-limit"
        )
    return "infeasible: no build plan satisfies the constraints"


def finish(
    scenario: Scenario,
    backend: Backend,
    valuation: ValuationResult,
    problem: PlanProblem,
    rows: tuple[int, ...],
    decision: Decision,
    settings: SolveSettings,
    progress: Progress | None = None,
) -> SolveOutcome:
    """Value the plan ``rows`` and the baselines on every scenario; build the outputs."""
    flat = [opt for opts in valuation.site_options for opt in opts]
    baselines = {
        "all_mining": all_mining(valuation.options),
        "max_ai": max_ai(valuation.options, problem),
    }
    plans = {"plan": [flat[i] for i in rows]}
    plans.update({name: [flat[i] for i in b.rows] for name, b in baselines.items()})
    # each converted site alone and hashing, on the same draws: its gain's standard error
    changed = {i: o for i, o in enumerate(plans["plan"]) if not o.hashes}  # converted or sold
    converted = {i: o for i, o in changed.items() if o.contract_index is not None}
    for i, option in changed.items():
        plans[f"site {i}"] = [option]
        plans[f"hash {i}"] = [valuation.site_options[i][0]]
    samples = plan_npv_samples(
        scenario,
        plans,
        valuation,
        backend=backend,
        progress=progress,
        executor=_executor(settings),
    )
    over_hashing = {}
    for i in changed:
        gain = samples.pop(f"site {i}") - samples.pop(f"hash {i}")
        over_hashing[i] = (float(gain.mean()), standard_error(gain))
    # pass 1's shared paths, when it kept them: the cash flows read them, not draw them again
    markets = valuation.kernel.take_markets() if valuation.kernel is not None else []
    cashflows = expected_cashflows(
        valuation.portfolio, plans["plan"], xp=np, markets=markets, memo=True
    )
    hashing = (
        expected_cashflows(
            valuation.portfolio, [valuation.site_options[i][0] for i in converted], markets=markets
        )
        if converted
        else None
    )
    structures = compare_structures(
        valuation.portfolio, valuation.options.table, valuation.site_options, rows, markets
    )
    del markets
    increments = {
        i: increment(cashflows, hashing, scenario.sites[i].name, *_loan_months(valuation, plans, i))
        for i in converted
    }
    memos = (*MEMO_ITEMS, *TERMINAL_MEMOS)
    memo = cashflows[cashflows["line_item"].isin(memos)].reset_index(drop=True)
    cashflows = cashflows[~cashflows["line_item"].isin(memos)].reset_index(drop=True)
    without_ai = frozenset(site.name for site in scenario.sites if site.ai is None)
    why = site_reasons(valuation.options, problem, rows, without_ai)
    frame = plan_frame(valuation.portfolio, valuation.options.table, plans["plan"], list(rows), why)
    figures = portfolio_figures(
        scenario, valuation, rows, decision, frame, samples, baselines, settings, why, over_hashing
    )
    yields = _yields(valuation.portfolio, plans["plan"], frame, cashflows)
    figures = replace(
        figures,
        sites=tuple(
            site
            | {"yield_on_cost": y, "returns": returns(increments[i]) if i in increments else None}
            for i, (site, y) in enumerate(zip(figures.sites, yields, strict=True))
        ),
        returns=returns(reduce(operator.add, increments.values())) if increments else None,
    )
    return SolveOutcome(
        scenario,
        valuation,
        problem,
        rows,
        decision,
        frame,
        figures,
        cashflows,
        samples,
        backend.describe(),
        backend.describe(verbose=True),
        settings.engine,
        settings.time_limit_s,
        why=why,
        constraints=constraint_slacks(valuation.options, problem, rows),
        memo=memo,
        hashing_cashflows=hashing,
        market=market_fan(scenario),
        central_npv_usd=(
            None if scenario.simulation.deterministic else central_npv(scenario, plans["plan"])
        ),
        structures=structures,
        deals=compare_deals(
            valuation.portfolio, valuation.options.table, valuation.site_options, rows
        ),
    )


def central_npv(scenario: Scenario, plan: list[SiteOption]) -> float:
    """The plan's NPV on the central path (app.central): one scenario, no noise [USD];
    only the plan's options are valued."""
    central = with_simulation(scenario, None, None, deterministic=True)
    return float(plan_npv_samples(central, {"plan": plan}, backend="numpy")["plan"][0])


def frontier_weights(points: int) -> list[float]:
    """The frontier's weights w of E[NPV] in ``w E[NPV] + (1 - w) CVaR``: ``points`` values
    evenly spaced from 1 (risk neutral) down to 0 (the CVaR alone)."""
    if not 2 <= points <= MAX_FRONTIER_POINTS:
        raise InputError(f"--frontier must be between 2 and {MAX_FRONTIER_POINTS}, got {points}")
    return [float(w) for w in np.linspace(1.0, 0.0, points)]


def frontier_problem(problem: PlanProblem, weight: float) -> PlanProblem:
    """The plan problem of frontier weight w: ``w E[NPV] + (1 - w) CVaR`` as
    ``E[NPV] + (1 - w) / w CVaR`` for w > 0 (the same plans, and the MIP gap, a relative
    one, the same), and the CVaR alone at w = 0."""
    if weight > 0:
        return replace(problem, risk_aversion=(1.0 - weight) / weight)
    return replace(problem, risk_aversion=1.0, expected_weight=0.0)


def _best_cvar_then_npv(
    valuation, problem, settings, start, seed=None
) -> tuple[PlanResult, PlanResult]:
    """The frontier's w = 0 point, lexicographically: the best CVaR over the risk sample,
    then the best E[NPV] among the plans within the MIP gap of that CVaR. Returns the CVaR
    solve (its status and gap are the point's) and the plan of the E[NPV] solve (the CVaR
    solve's own when that finds none)."""
    first = _solve_milp(valuation, frontier_problem(problem, 0.0), settings, start, seed)
    if not first.found_plan or first.cvar_risk_sample_usd is None:
        return first, first
    best = first.cvar_risk_sample_usd
    gap = first.mip_gap if first.mip_gap is not None and np.isfinite(first.mip_gap) else 0.0
    floor = best - max(settings.gap_rel, gap) * abs(best)
    if problem.cvar_floor_usd is not None:
        floor = max(floor, problem.cvar_floor_usd)
    rows = np.array([int(first.chosen[s]) for s in first.chosen], dtype=np.int64)
    lexicographic = replace(problem, risk_aversion=0.0, cvar_floor_usd=floor)
    then = _solve_milp(valuation, lexicographic, settings, rows, first.cvar_seed)
    return first, then if then.found_plan else first


def with_frontier(
    outcome: SolveOutcome,
    backend: Backend,
    settings: SolveSettings,
    points: int,
    progress: Progress | None = None,
) -> SolveOutcome:
    """Solve the plan at each frontier weight w (``w E[NPV] + (1 - w) CVaR``), warm-starting
    each from the last; value each distinct plan on every scenario for its E[NPV] and CVaR.

    The points share ``settings.time_limit_s`` (at least FRONTIER_MIN_POINT_S each) and
    stop at the run's gap, like the plan (texas at 20,000 scenarios: ~2 s a point with the
    CVaR method chosen per problem); each point reports its own status and gap. The w = 0
    point is the best CVaR, then the best E[NPV] within the gap of it (two solves), so
    that its E[NPV] is not left to the gap's tolerance."""
    valuation = outcome.valuation
    flat = [o for opts in valuation.site_options for o in opts]
    rows_by_point: list[tuple[int, ...] | None] = []
    results = []
    start = np.array(outcome.rows, dtype=np.int64)
    point_settings = replace(
        settings,
        time_limit_s=max(FRONTIER_MIN_POINT_S, settings.time_limit_s / points),
    )
    weights = frontier_weights(points)
    seed = _seed(outcome)
    for k, weight in enumerate(weights):
        if weight > 0:
            result = chosen = _solve_milp(
                valuation,
                frontier_problem(outcome.milp_problem, weight),
                point_settings,
                start,
                seed,
            )
        else:
            result, chosen = _best_cvar_then_npv(
                valuation, outcome.milp_problem, point_settings, start, seed
            )
        seed = chosen.cvar_seed or seed  # each point's rows and cuts start the next
        results.append(result)
        if not chosen.found_plan:
            rows_by_point.append(None)
        else:
            rows = tuple(int(chosen.chosen[s]) for s in chosen.chosen)
            rows_by_point.append(rows)
            start = np.array(rows, dtype=np.int64)
        if progress is not None:
            progress("frontier", k + 1, points)
    distinct = {rows: f"p{k}" for k, rows in enumerate(rows_by_point) if rows is not None}
    samples = plan_npv_samples(
        outcome.scenario,
        {name: [flat[r] for r in rows] for rows, name in distinct.items()},
        valuation,
        backend=backend,
        executor=_executor(settings),
    )
    alpha = outcome.scenario.objective.cvar_alpha
    records = []
    for weight, rows, result in zip(weights, rows_by_point, results, strict=True):
        record = {
            "weight": weight,
            # the same objective as E[NPV] + risk_aversion x CVaR; null at w = 0
            "risk_aversion": (1.0 - weight) / weight if weight > 0 else None,
            "status": str(result.status),
        }
        if rows is None:
            record.update(expected_npv_usd=None, cvar_usd=None, ai_it_mw_total=None)
        else:
            s = samples[distinct[rows]]
            record.update(
                expected_npv_usd=float(s.mean()),
                cvar_usd=float(portfolio_cvar(s, alpha)),
                ai_it_mw_total=float(sum(flat[r].it_mw for r in rows)),
            )
        record.update(mip_gap=_maybe(result.mip_gap), chosen=rows == outcome.rows)
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    return replace(outcome, frontier=frame, frontier_records=tuple(records))


def plan_frame(
    portfolio: Portfolio,
    table: pd.DataFrame,
    chosen: list[SiteOption],
    rows: list[int],
    why: Sequence[SiteWhy],
) -> pd.DataFrame:
    """plan.csv: one row per site, columns as docs/cli.md."""
    picked = table.loc[rows].reset_index(drop=True)
    sites = portfolio.sites
    mining = [
        float(mining_left_mw(sites[o.site_index], o.it_mw))
        if o.contract_index is not None
        else 0.0
        if o.sells  # nothing mines there once the sale closes
        else sites[o.site_index].mining.mw
        for o in chosen
    ]
    picked["mining_mw"] = mining
    picked["why_code"] = [w.code for w in why]
    picked["why"] = [w.text for w in why]
    picked["tranche"] = [1 if o.tranches else 0 for o in chosen]
    return picked[list(PLAN_COLUMNS)]


def tranche_rows(
    portfolio: Portfolio, frame: pd.DataFrame, chosen: list[SiteOption]
) -> pd.DataFrame:
    """plan.csv from the plan's frame (a row per site): a phased site's row becomes a row
    per tranche, the first with its tranche's MW, build year and contract and the site's
    figures, the later ones with their own MW, year and contract, 0 in the site's figures
    (so a column's sum is the plan's) and no reason."""
    rows = []
    for row, option in zip(frame.to_dict("records"), chosen, strict=True):
        if not option.parts:
            rows.append(row)
            continue
        for k, t in enumerate(option.parts, start=1):
            tranche = {
                "ai_it_mw": t.it_mw,
                "build_year": t.build_year,
                "contract": portfolio.contracts[t.contract_index].name,
                "tranche": k,
            }
            if k == 1:
                rows.append(row | tranche)
            else:
                later = {c: (0.0 if isinstance(v, float) else "") for c, v in row.items()}
                rows.append(later | {"site": row["site"], "option": row["option"]} | tranche)
    out = pd.DataFrame.from_records(rows, columns=list(PLAN_COLUMNS))
    out["build_year"] = out["build_year"].astype("Int64")
    return out


def portfolio_figures(
    scenario: Scenario,
    valuation: ValuationResult,
    rows: tuple[int, ...],
    decision: Decision,
    frame: pd.DataFrame,
    samples: dict[str, np.ndarray],
    baselines: dict[str, Any],
    settings: SolveSettings,
    why: Sequence[SiteWhy],
    over_hashing: dict[int, tuple[float, float | None]],
) -> PortfolioFigures:
    """The plan's statistics over every scenario, its sites, the baselines and warnings;
    ``over_hashing``: per converted site, its E[NPV] over hashing and that difference's
    standard error on the same draws."""
    alpha = scenario.objective.cvar_alpha
    plan = samples["plan"]
    se = standard_error(plan)
    picked = valuation.options.table.loc[list(rows)]
    flat = [o for opts in valuation.site_options for o in opts]
    chosen = [flat[r] for r in rows]
    capex = {y: float(picked[capex_column(y)].sum()) for y in valuation.options.years}
    result = decision.result
    return PortfolioFigures(
        expected_npv_usd=float(plan.mean()),
        expected_npv_se_usd=se,
        cvar_usd=float(portfolio_cvar(plan, alpha)),
        cvar_alpha=alpha,
        p5_npv_usd=float(np.quantile(plan, 0.05)),
        p50_npv_usd=float(np.quantile(plan, 0.50)),
        p95_npv_usd=float(np.quantile(plan, 0.95)),
        equity_capex_by_year_usd={str(y): usd for y, usd in capex.items() if usd != 0},
        ai_it_mw_total=float(frame["ai_it_mw"].sum()),
        mining_mw_total=float(frame["mining_mw"].sum()),
        sites=tuple(
            _site_entry(row)
            | {
                "tranches": _tranches(valuation.portfolio, chosen[i]),
                "npv_over_hashing_usd": over_hashing.get(i, (0.0, 0.0))[0],
                "npv_over_hashing_se_usd": over_hashing.get(i, (0.0, 0.0))[1],
                "why": w.payload(),
            }
            for i, (row, w) in enumerate(zip(frame.to_dict("records"), why, strict=True))
        ),
        baselines={
            "all_mining": _baseline(samples["all_mining"], alpha),
            "max_ai": {
                **_baseline(samples["max_ai"], alpha),
                "feasible": bool(baselines["max_ai"].feasible),
            },
        },
        warnings=tuple(scenario_warnings(scenario, settings.source, se)),
        cvar_in_model_usd=_maybe(result.cvar_in_model_usd if result else None),
        cvar_risk_sample_usd=_maybe(result.cvar_risk_sample_usd if result else None),
        risk_sample=int(valuation.options.risk_npv_usd.shape[1]),
        expected_terminal_pv_usd=float(frame["expected_terminal_pv_usd"].sum()),
        leverage_usd=float(frame["leverage_usd"].sum()),
        tax_shield_usd=float(frame["tax_shield_usd"].sum()),
        rate_subsidy_usd=float(frame["rate_subsidy_usd"].sum()),
        walk_away_value_usd=float(frame["walk_away_value_usd"].sum()),
    )


def _yields(
    portfolio: Portfolio, chosen: list[SiteOption], frame: pd.DataFrame, cashflows: pd.DataFrame
) -> list[dict[str, Any] | None]:
    """Each converted site's NOI and yield on cost (siteopt.app.finance); None when hashing."""
    out: list[dict[str, Any] | None] = []
    for option, row in zip(chosen, frame.to_dict("records"), strict=True):
        if option.contract_index is None:
            out.append(None)
            continue
        site = portfolio.sites[option.site_index]
        contract = portfolio.contracts[option.contract_index]
        first_rent = construction_start(portfolio, option.build_year) + site.ai.lead_time_months
        # the miner's share of the hall: its flows, capex and MW (a JV partner has the rest);
        # a phased site's halls together, from its first tranche's rent
        mw = option.hall_share * option.it_mw
        # the budgets' equity nets an AI cloud's prepayment: the capex does not
        prepaid = option.hall_share * sum(
            t.it_mw * c.prepayment_share * term_revenue_usd_mw(c)
            for t in option.tranches
            for c in (portfolio.contracts[t.contract_index],)
        )
        out.append(
            yield_on_cost(
                cashflows,
                site.name,
                mw,
                first_rent,
                float(row["equity_capex_usd"] + row["debt_usd"]) + prepaid,
                contract.tenant_funded_share,
            )
        )
    return out


def _loan_months(valuation: ValuationResult, plans: dict, site_index: int) -> tuple[int, int]:
    """The month indices of a converted site's planned first rent and of its rent's end of
    ramp: where its loan years and its stabilised DSCR start."""
    portfolio = valuation.portfolio
    option = plans["plan"][site_index]
    site, contract = portfolio.sites[option.site_index], portfolio.contracts[option.contract_index]
    first = energisation(portfolio, site, option.build_year)
    return first, first + ramp_months(contract)


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def _tranches(portfolio: Portfolio, option: SiteOption) -> list[dict[str, Any]]:
    """summary.json's ``sites[].tranches``: the halls the site's option builds."""
    return [
        {
            "ai_it_mw": t.it_mw,
            "build_year": t.build_year,
            "contract": portfolio.contracts[t.contract_index].name,
        }
        for t in option.tranches
    ]


def _site_entry(row: dict[str, Any]) -> dict[str, Any]:
    year = row["build_year"]
    return {
        "name": row["site"],
        "option": row["option"],
        "partner_share": float(row["partner_share"]),
        "ai_it_mw": float(row["ai_it_mw"]),
        "mining_mw": float(row["mining_mw"]),
        "build_year": None if pd.isna(year) else int(year),
        "contract": row["contract"] or None,
        "equity_capex_usd": float(row["equity_capex_usd"]),
        "expected_npv_usd": float(row["expected_npv_usd"]),
        "cvar_usd": float(row["cvar_usd"]),
        "terminal_value_share": _share(
            float(row["expected_terminal_pv_usd"]), float(row["expected_npv_usd"])
        ),
        "leverage_usd": float(row["leverage_usd"]),
        "leverage_value_usd": float(row["leverage_value_usd"]),
        "tax_shield_usd": float(row["tax_shield_usd"]),
        "rate_subsidy_usd": float(row["rate_subsidy_usd"]),
        "walk_away_value_usd": float(row["walk_away_value_usd"]),
    }


def _baseline(samples: np.ndarray, alpha: float) -> dict[str, float]:
    return {
        "expected_npv_usd": float(samples.mean()),
        "cvar_usd": float(portfolio_cvar(samples, alpha)),
    }


def _maybe(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)
