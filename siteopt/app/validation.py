"""Validation on fresh draws, as sample-average approximation (SAA) does it.

A plan chosen with a CVaR is the optimum of the draws it was fitted to; its E[NPV] and
CVaR there are biased upward, and a CVaR plan can lose to the risk-neutral plan on both
once new draws are taken. So a solve with a risk term values its plan and the risk-neutral
plan on an independent set of draws (seed + FRESH_SEED_STEP, the run's scenario count):
summary.json's ``validation``. ``siteopt evaluate --seed`` with that seed gives the same
figures for the same plan.

``--validate R`` also solves the MILP on R more independent draws and estimates the plan's
optimality gap (Mak, Morton & Wood 1999, "Monte Carlo bounding techniques for determining
solution quality in stochastic programs"): on replication r the gap is the MILP's bound
less the plan's objective on those draws (its CVaR at a fixed eta, :func:`fixed_eta_objective`);
their mean estimates the gap's expectation, an upper bound in expectation on the plan's
true gap, and the one-sided 95% confidence bound adds Student's t times their standard
error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import numpy as np

from siteopt.app.valuation import ValuationResult, plan_npv_samples, value_options
from siteopt.kernels.sites import SiteOption
from siteopt.model.errors import InputError
from siteopt.model.load import with_simulation
from siteopt.model.schema import Scenario
from siteopt.optimizer.options import OptionTable, PlanProblem
from siteopt.optimizer.results import (
    PlanResult,
    cvar_terms,
    plan_objective,
    portfolio_cvar,
    standard_error,
    value_at_risk,
)

FRESH_SEED_STEP = 1  # the fresh draws use seed + FRESH_SEED_STEP; replication r, seed + 1 + r
MAX_REPLICATIONS = 50
FLOOR_ROUNDS = 4  # re-solves with a CVaR floor raised on the risk sample until it holds over all
CONFIDENCE = 0.95  # of the optimality gap's one-sided bound

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DrawValue:
    """A plan (or policy) valued on one set of draws, with standard errors [USD]."""

    expected_npv_usd: float
    expected_npv_se_usd: float | None
    cvar_usd: float
    cvar_se_usd: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {
            "expected_npv_usd": self.expected_npv_usd,
            "expected_npv_se_usd": self.expected_npv_se_usd,
            "cvar_usd": self.cvar_usd,
            "cvar_se_usd": self.cvar_se_usd,
        }


def valued(samples: np.ndarray, alpha: float) -> DrawValue:
    """E[NPV], CVaR and their standard errors of per-scenario portfolio NPVs [USD]."""
    return DrawValue(
        float(samples.mean()),
        standard_error(samples),
        float(portfolio_cvar(samples, alpha)),
        standard_error(cvar_terms(samples, alpha)),
    )


def fresh_seed(scenario: Scenario) -> int:
    """The seed of the out-of-sample draws of a run."""
    return scenario.simulation.seed + FRESH_SEED_STEP


@dataclass(frozen=True)
class GapEstimate:
    """The Mak-Morton-Wood estimate of the plan's optimality gap [USD], in the objective's
    terms (E[NPV] + risk_aversion x CVaR over the MILP's risk sample)."""

    replications: int
    scenarios: int  # per replication
    seeds: tuple[int, ...]
    gaps_usd: tuple[float, ...]  # per replication: the MILP's bound less the plan's objective
    # replications left out: the MILP found no plan or proved no bound in time, or the plan
    # misses the CVaR floor on that replication's risk sample
    skipped: int = 0

    @property
    def mean_usd(self) -> float:
        return float(np.mean(self.gaps_usd))

    @property
    def se_usd(self) -> float | None:
        return standard_error(np.asarray(self.gaps_usd))

    @property
    def upper_usd(self) -> float | None:
        """The one-sided CONFIDENCE bound on the gap: mean + t(R - 1) x standard error."""
        se = self.se_usd
        return (
            None
            if se is None
            else self.mean_usd + t_quantile(CONFIDENCE, len(self.gaps_usd) - 1) * se
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": "Mak-Morton-Wood",
            "replications": self.replications,
            "scenarios": self.scenarios,
            "seeds": list(self.seeds),
            "gaps_usd": list(self.gaps_usd),
            "mean_usd": self.mean_usd,
            "se_usd": self.se_usd,
            "upper_usd": self.upper_usd,
            "confidence": CONFIDENCE,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class Validation:
    """The plan and the risk-neutral plan on fresh draws (summary.json ``validation``)."""

    seed: int
    scenarios: int
    cvar_alpha: float
    plan: DrawValue
    risk_neutral: DrawValue
    same_plan: bool  # the risk-neutral plan is the plan
    gap: GapEstimate | None = None
    plan_var_usd: float = 0.0  # the plan's VaR on these draws: the replications' fixed eta

    @property
    def dominated(self) -> bool:
        """The plan has neither a higher E[NPV] nor a higher CVaR than the risk-neutral plan
        on the fresh draws (and is not that plan)."""
        p, r = self.plan, self.risk_neutral
        return (
            not self.same_plan
            and p.expected_npv_usd <= r.expected_npv_usd
            and (p.cvar_usd <= r.cvar_usd)
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seed": self.seed,
            "scenarios": self.scenarios,
            "cvar_alpha": self.cvar_alpha,
            "plan": self.plan.as_dict(),
            "risk_neutral": self.risk_neutral.as_dict(),
            "same_plan": self.same_plan,
            "dominated": self.dominated,
        }
        if self.gap is not None:
            out["optimality_gap"] = self.gap.as_dict()
        return out


def has_risk_term(problem: PlanProblem) -> bool:
    """A CVaR weight or floor: the plan is fitted to the risk sample's tail."""
    return problem.risk_aversion > 0 or problem.cvar_floor_usd is not None


def risk_neutral(problem: PlanProblem) -> PlanProblem:
    """The same plan problem without its CVaR weight and floor."""
    return replace(problem, risk_aversion=0.0, cvar_floor_usd=None)


def on_fresh_draws(
    scenario: Scenario,
    plan: Sequence[SiteOption],
    neutral: Sequence[SiteOption],
    progress: Progress | None = None,
    **kernel_options: Any,
) -> Validation:
    """``plan`` and the risk-neutral plan ``neutral`` valued on the fresh draws."""
    fresh = with_simulation(scenario, None, fresh_seed(scenario))
    same = [o.label for o in plan] == [o.label for o in neutral]
    plans = {"plan": list(plan)} if same else {"plan": list(plan), "risk_neutral": list(neutral)}
    step = None if progress is None else (lambda _, d, t: progress("validation", d, t))
    samples = plan_npv_samples(fresh, plans, progress=step, **kernel_options)
    alpha = scenario.objective.cvar_alpha
    mine = valued(samples["plan"], alpha)
    return Validation(
        seed=fresh.simulation.seed,
        scenarios=fresh.simulation.scenarios,
        cvar_alpha=alpha,
        plan=mine,
        risk_neutral=mine if same else valued(samples["risk_neutral"], alpha),
        same_plan=same,
        plan_var_usd=value_at_risk(samples["plan"], alpha),
    )


def check_validate(scenario: Scenario, replications: int) -> None:
    """``--validate R``: R in 2..MAX_REPLICATIONS (0: off), and a run with draws to take.

    Raises
    ------
    InputError
    """
    if not replications:
        return
    _check_replications(replications)
    if scenario.simulation.deterministic:
        raise InputError(
            "--validate estimates the gap from independent draws; a --deterministic run has one "
            "path and none to draw: leave out one of the two"
        )


def replicate_gaps(
    replications: int, gap_of: Callable[[int], float | None]
) -> tuple[tuple[float, ...], int]:
    """The gaps ``gap_of(r)`` of replications r = 1..R, and how many gave none."""
    _check_replications(replications)
    gaps = [gap_of(r) for r in range(1, replications + 1)]
    return tuple(g for g in gaps if g is not None), sum(g is None for g in gaps)


def _check_replications(replications: int) -> None:
    if not 2 <= replications <= MAX_REPLICATIONS:
        raise InputError(
            f"--validate needs between 2 and {MAX_REPLICATIONS} replications, got {replications}"
        )


def keeps_floor(cvar_usd: float, floor_usd: float) -> bool:
    """A CVaR meets a floor, to rounding (1e-9 of the floor's size) [USD]."""
    return cvar_usd >= floor_usd - 1e-9 * max(abs(floor_usd), 1.0)


S = TypeVar("S")


@dataclass(frozen=True)
class FloorHeld(Generic[S]):
    """What :func:`hold_floor` found: the last solution solved, its CVaR over all
    scenarios, the floor on the risk sample it was solved under, how far the first one
    missed the floor over all scenarios (0 when it kept it) and whether this one keeps it."""

    solution: S
    cvar_usd: float
    target_usd: float
    first_short_usd: float
    kept: bool


def hold_floor(
    floor_usd: float,
    first: S,
    cvar_over_all: Callable[[S], float],
    solve_raised: Callable[[float], S | None],
) -> FloorHeld[S]:
    """A solution (a plan, a staged policy) that keeps a CVaR floor over all the run's
    scenarios, where its MILP sees the floor on the risk sample only: while it misses it,
    the floor on the sample is raised by the shortfall and ``solve_raised(target)`` solved
    again (None: nothing keeps the raised floor), up to FLOOR_ROUNDS times."""
    cvar_all, target = cvar_over_all(first), floor_usd
    if keeps_floor(cvar_all, floor_usd):
        return FloorHeld(first, cvar_all, floor_usd, 0.0, True)
    first_short, solution = floor_usd - cvar_all, first
    for _ in range(FLOOR_ROUNDS):
        target += floor_usd - cvar_all  # raise the floor on the sample by the shortfall
        again = solve_raised(target)
        if again is None:
            break
        solution, cvar_all = again, cvar_over_all(again)
        if keeps_floor(cvar_all, floor_usd):
            return FloorHeld(solution, cvar_all, target, first_short, True)
    return FloorHeld(solution, cvar_all, target, first_short, False)


def replication_gap(result: PlanResult, plan_objective_usd: float) -> float | None:
    """One replication's gap [USD]: the MILP's proven bound on that replication's optimum
    less the plan's objective on the same draws; None when the MILP found no plan or
    proved no bound. The plan is one of the replication's candidates, so its optimum (and
    bound) is at least the plan's objective, and the gap is not negative (a rounding
    below 0 counts as 0)."""
    if not result.found_plan or result.objective_usd is None:
        return None
    if result.mip_gap is None or not math.isfinite(result.mip_gap):
        return None  # a plan but no proven bound (time limit): the incumbent bounds nothing
    bound = result.objective_usd + result.mip_gap * abs(result.objective_usd)
    return max(0.0, bound - plan_objective_usd)


def fixed_eta_objective(
    table: OptionTable, problem: PlanProblem, rows: np.ndarray, eta_usd: float
) -> tuple[float, bool]:
    """The plan's objective on a replication's draws with its CVaR's ``eta`` held at
    ``eta_usd`` (``expected_weight E[NPV] + risk_aversion (eta - E[(eta - NPV)^+] /
    (1 - alpha))`` over the risk sample) [USD], and whether the plan keeps the CVaR floor
    there. With eta fixed, the pair (plan, eta) is one candidate of the replication's
    sample-average problem (the MILP maximises over eta too), so the estimate is unbiased
    for it and the gap estimator's expectation bounds the plan's true gap from above;
    re-optimising eta on each replication would bias it upward."""
    objective, expected, cvar = plan_objective(table, problem, rows)
    floor = problem.cvar_floor_usd
    keeps = floor is None or cvar is None or keeps_floor(cvar, floor)
    if cvar is None or problem.risk_aversion <= 0:
        return objective, keeps
    risk = np.asarray(table.risk_npv_usd)[rows].sum(axis=0)
    ru = float(cvar_terms(risk, problem.cvar_alpha, eta_usd).mean())
    return problem.expected_weight * expected + problem.risk_aversion * ru, keeps


def optimality_gap(
    scenario: Scenario,
    problem: PlanProblem,
    rows: Sequence[int],
    replications: int,
    solve: Callable[[ValuationResult, PlanProblem], PlanResult],
    eta_usd: float,
    progress: Progress | None = None,
    **kernel_options: Any,
) -> GapEstimate:
    """The Mak-Morton-Wood gap estimate of the plan ``rows`` (an option-table row per site;
    the table's rows are the same on every seed), its CVaR's eta at ``eta_usd`` (its VaR on
    the fresh draws, :func:`fixed_eta_objective`): ``replications`` independent valuations
    (seeds seed + FRESH_SEED_STEP + r), the MILP ``solve``d on each. A replication where
    the plan misses the CVaR floor is left out (counted in ``skipped``): the plan is not
    one of its candidates there."""
    base = fresh_seed(scenario)
    plan_rows = np.asarray(rows, dtype=np.int64)

    def gap_of(r: int) -> float | None:
        again = with_simulation(scenario, None, base + r)
        valuation = value_options(again, **kernel_options)
        objective, keeps = fixed_eta_objective(valuation.options, problem, plan_rows, eta_usd)
        result = solve(valuation, problem) if keeps else None
        if progress is not None:
            progress("replications", r, replications)
        return None if result is None else replication_gap(result, objective)

    if progress is not None:
        progress("replications", 0, replications)
    gaps, skipped = replicate_gaps(replications, gap_of)
    if len(gaps) < 2:
        raise InputError(
            f"--validate: only {len(gaps)} of {replications} replications found a plan within "
            "the time limit; raise --time-limit"
        )
    return GapEstimate(
        replications=replications,
        scenarios=scenario.simulation.scenarios,
        seeds=tuple(base + r for r in range(1, replications + 1)),
        gaps_usd=gaps,
        skipped=skipped,
    )


def t_cdf(t: float, df: int) -> float:
    """Student's t distribution function with ``df`` >= 1 degrees of freedom (Abramowitz &
    Stegun 26.7.3-4: a finite series in theta = atan(t / sqrt(df)))."""
    theta = math.atan2(t, math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for k in range(1, df // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            total += term
        a = s * total
    else:
        term, total = 1.0, 0.0 if df == 1 else 1.0
        for k in range(1, (df - 1) // 2):
            term *= c2 * (2 * k) / (2 * k + 1)
            total += term
        a = 2.0 / math.pi * (theta + (s * math.cos(theta) * total if df > 1 else 0.0))
    return 0.5 * (1.0 + a)


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (0.5 < p < 1) of Student's t with ``df`` degrees of freedom, by
    bisection on :func:`t_cdf` to 1e-12."""
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    while hi - lo > 1e-12 * max(1.0, hi):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return 0.5 * (lo + hi)
