"""Near-optimal alternatives (modelling to generate alternatives, as PyPSA's and GenX's
MGA and Calliope's SPORES): plans nearly as good as the optimum and as different from it
as the constraints allow.

Alternative k maximises its Hamming distance, the number of sites whose option differs,
summed over the optimum and the alternatives before it, subject to every constraint of
the plan and to an E[NPV] within ``within`` of the optimum's:

    maximise  sum_{p in previous} sum_s (1 - x[p_s])
    s.t.      sum_i E[NPV]_i x_i >= E* - within |E*|,  the plan's constraints,
              sum_s x[p_s] <= sites - 1 for every previous plan p (no plan twice).

A CVaR floor is checked exactly on the risk sample after each solve, and a plan that
breaks it is excluded and the solve repeated; the objective's CVaR weight plays no part
(the bound is on E[NPV], as users read the alternatives' E[NPV] against the optimum's).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pulp

from .data import MONEY_UNIT_USD, PlanData, plan_data
from .engine import SolverSettings, check_solver, optimize
from .model import build_model, tail_weights
from .options import OptionTable, PlanProblem

MAX_FLOOR_RETRIES = 20
"""Plans excluded for breaking the CVaR floor before an alternative is given up."""


@dataclass(frozen=True)
class Alternative:
    """One near-optimal plan.

    Attributes
    ----------
    rows : tuple of int
        Table row per site, in site order.
    expected_npv_usd : float [USD]
        Its E[NPV] (sum of the options' expected NPVs).
    distance : int
        Sites whose option differs from the optimum's.
    """

    rows: tuple[int, ...]
    expected_npv_usd: float
    distance: int


def alternatives(
    table: OptionTable,
    problem: PlanProblem,
    optimum: tuple[int, ...],
    count: int,
    within: float,
    *,
    solver: str | None = None,
    time_limit_s: float = 60.0,
    gap_rel: float = 1e-4,
) -> list[Alternative]:
    """Up to ``count`` alternatives to the plan ``optimum`` (table rows), each within
    ``within`` (a share, e.g. 0.01) of its E[NPV]; fewer when no other plan qualifies.
    Each solve has ``time_limit_s``."""
    if count < 0 or not 0.0 <= within < 1.0:
        raise ValueError(f"count must be >= 0 and within in [0, 1); got {count}, {within}")
    settings = SolverSettings(
        name=check_solver(solver), time_limit_s=float(time_limit_s), gap_rel=float(gap_rel)
    )
    # the CVaR leaves the model: a floor is checked exactly below, the weight plays no part
    plain = dataclasses.replace(problem, risk_aversion=0.0, cvar_floor_usd=None, exclude=())
    data = plan_data(table, plain)
    best = float(data.expected_npv[np.asarray(optimum)].sum())
    floor_of_npv = best - within * abs(best)
    previous: list[tuple[int, ...]] = [tuple(int(r) for r in optimum)]
    excluded: list[tuple[int, ...]] = []
    out: list[Alternative] = []
    while len(out) < count:
        rows = _most_different(table, plain, data, previous, excluded, floor_of_npv, settings)
        tries = 0
        while rows is not None and not _meets_floor(data, rows, problem):
            excluded.append(rows)
            tries += 1
            if tries > MAX_FLOOR_RETRIES:
                return out
            rows = _most_different(table, plain, data, previous, excluded, floor_of_npv, settings)
        if rows is None:
            break
        distance = sum(a != b for a, b in zip(rows, previous[0], strict=True))
        npv = float(data.expected_npv[np.asarray(rows)].sum()) * MONEY_UNIT_USD
        out.append(Alternative(rows, npv, distance))
        previous.append(rows)
    return out


def _most_different(
    table: OptionTable,
    problem: PlanProblem,
    data: PlanData,
    previous: list[tuple[int, ...]],
    excluded: list[tuple[int, ...]],
    floor_of_npv: float,
    settings: SolverSettings,
) -> tuple[int, ...] | None:
    """The plan that shares the fewest site choices with ``previous`` (and is none of
    them nor of ``excluded``), with E[NPV] >= ``floor_of_npv`` [MUSD]; None when none."""
    no_goods = dataclasses.replace(problem, exclude=tuple(previous) + tuple(excluded))
    model = build_model(table, no_goods, data=data)
    x, prob = model.x, model.prob
    shared = pulp.lpSum(x[r] for plan in previous for r in plan)
    prob.setObjective(-shared)
    prob += (
        pulp.lpSum(float(v) * x[i] for i, v in enumerate(data.expected_npv) if v != 0.0)
        >= floor_of_npv,
        "alternative_npv_bound",
    )
    outcome = optimize(model, settings)
    if outcome.plan is None:
        return None
    return tuple(int(r) for r in outcome.plan.chosen)


def _meets_floor(data: PlanData, rows: tuple[int, ...], problem: PlanProblem) -> bool:
    """The plan's CVaR on the risk sample meets the problem's floor (True without one)."""
    if problem.cvar_floor_usd is None or data.risk_npv.shape[1] == 0:
        return True
    npv = data.risk_npv[np.asarray(rows)].sum(axis=0)
    cvar = float(tail_weights(npv, problem.cvar_alpha) @ npv) * MONEY_UNIT_USD
    return cvar >= problem.cvar_floor_usd - 1e-7 * max(1.0, abs(problem.cvar_floor_usd))
