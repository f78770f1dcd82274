"""Near-optimal alternatives (modelling to generate alternatives, as PyPSA's and GenX's
MGA and Calliope's SPORES): plans nearly as good as the optimum and as different from it
as the constraints allow.

Alternative k maximises its distance, summed over the optimum and the alternatives before
it, subject to every constraint of the plan and to an E[NPV] within ``within`` of the
optimum's. Two distances (``differ_by``):

- ``totals`` (the default): the AI MW signed with each contract and built in each build
  year, ``d(x, p) = sum_c |MW_c(x) - MW_c(p)| + sum_y |MW_y(x) - MW_y(p)|``. An alternative
  is another strategy (other tenants, other timing, more or less AI), and must differ from
  each earlier plan in at least one total: moving the same MW from one site to another does
  not count. Each ``|.|`` is maximised through a binary choice of its sign (big-M rows).
- ``sites``: the Hamming distance, the number of sites whose option differs; cheap, but on
  texas every site-distinct alternative kept the optimum's 480 MW and tenants, winning its
  distance with token 20 MW halls.

    maximise  sum_{p in previous} d(x, p)
    s.t.      sum_i E[NPV]_i x_i >= E* - within |E*|,  the plan's constraints,
              x differs from every previous plan (in a total, or in a site).

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
from .model import add_variable, build_model, tail_weights
from .options import OptionTable, PlanProblem

MAX_FLOOR_RETRIES = 20
"""Plans excluded for breaking the CVaR floor before an alternative is given up."""
DIFFER_BY = ("totals", "sites")
MIN_TOTALS_DISTANCE_MW = 0.01
"""An alternative's totals differ from each earlier plan's by at least this [MW]: above the
solver's tolerances on the big-M rows, below any real difference of whole MW levels."""


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
    distance_mw : float [MW]
        Its totals distance from the optimum (AI MW by contract and by build year).
    """

    rows: tuple[int, ...]
    expected_npv_usd: float
    distance: int
    distance_mw: float = 0.0


@dataclass(frozen=True)
class Totals:
    """The AI MW totals a plan is measured by: one coefficient vector over the options per
    contract and per build year [MW]."""

    names: tuple[str, ...]  # "contract x", "built 2028"
    coefs: np.ndarray  # (totals, options)
    cap: np.ndarray  # (totals,): the most any plan can have of each (a site's most, summed)

    def of(self, rows) -> np.ndarray:
        return self.coefs[:, np.asarray(rows, dtype=np.int64)].sum(axis=1)

    def distance(self, a, b) -> float:
        return float(np.abs(self.of(a) - self.of(b)).sum())


def plan_totals(table: OptionTable) -> Totals:
    """The totals of ``table``'s options: AI MW per contract and per build year."""
    frame = table.table
    halls = table.tranche_frame()  # a phased option's MW on each of its contracts and years
    row = halls["row"].to_numpy(dtype=np.int64)
    mw = halls["ai_it_mw"].to_numpy(dtype=float)
    contract = halls["contract"].astype(str).to_numpy(dtype=object)
    year = halls["build_year"].astype(int).to_numpy()
    names, coefs = [], []

    def per_option(mask: np.ndarray) -> np.ndarray:
        return np.bincount(row[mask], weights=mw[mask], minlength=len(frame))

    for c in sorted(set(contract)):
        names.append(f"contract {c}")
        coefs.append(per_option(contract == c))
    for y in sorted(set(year.tolist())):
        names.append(f"built {y}")
        coefs.append(per_option(year == y))
    coefs_array = np.array(coefs).reshape(len(names), len(frame))
    site = frame["site"].to_numpy(dtype=object)
    cap = sum(
        (coefs_array[:, site == name].max(axis=1) for name in dict.fromkeys(site)),
        start=np.zeros(len(names)),
    )
    return Totals(tuple(names), coefs_array, cap)


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
    differ_by: str = "totals",
) -> list[Alternative]:
    """Up to ``count`` alternatives to the plan ``optimum`` (table rows), each within
    ``within`` (a share, e.g. 0.01) of its E[NPV] and as far as possible by ``differ_by``
    (DIFFER_BY); fewer when no other plan qualifies. Each solve has ``time_limit_s``."""
    if count < 0 or not 0.0 <= within < 1.0:
        raise ValueError(f"count must be >= 0 and within in [0, 1); got {count}, {within}")
    if differ_by not in DIFFER_BY:
        raise ValueError(f"differ_by must be one of {', '.join(DIFFER_BY)}; got {differ_by}")
    settings = SolverSettings(
        name=check_solver(solver), time_limit_s=float(time_limit_s), gap_rel=float(gap_rel)
    )
    # the CVaR leaves the model: a floor is checked exactly below, the weight plays no part
    plain = dataclasses.replace(problem, risk_aversion=0.0, cvar_floor_usd=None, exclude=())
    data = plan_data(table, plain)
    best = float(data.expected_npv[np.asarray(optimum)].sum())
    floor_of_npv = best - within * abs(best)
    measure = plan_totals(table)  # distance_mw, whichever distance the MILP maximises
    totals = measure if differ_by == "totals" else None
    previous: list[tuple[int, ...]] = [tuple(int(r) for r in optimum)]
    excluded: list[tuple[int, ...]] = []
    out: list[Alternative] = []

    def most_different() -> tuple[int, ...] | None:
        return _most_different(
            table, plain, data, previous, excluded, floor_of_npv, settings, totals
        )

    while len(out) < count:
        rows = most_different()
        tries = 0
        while rows is not None and not (  # a retry excludes the plan: new totals or floor
            _meets_floor(data, rows, problem) and _new_totals(totals, rows, previous)
        ):
            excluded.append(rows)
            tries += 1
            if tries > MAX_FLOOR_RETRIES:
                return out
            rows = most_different()
        if rows is None:
            break
        distance = sum(a != b for a, b in zip(rows, previous[0], strict=True))
        npv = float(data.expected_npv[np.asarray(rows)].sum()) * MONEY_UNIT_USD
        out.append(Alternative(rows, npv, distance, measure.distance(rows, previous[0])))
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
    totals: Totals | None = None,
) -> tuple[int, ...] | None:
    """The plan farthest from ``previous`` (and none of them nor of ``excluded``), with
    E[NPV] >= ``floor_of_npv`` [MUSD]: by site choices shared, or with ``totals`` by its
    totals distance (differing from each previous plan in a total); None when none."""
    no_goods = dataclasses.replace(problem, exclude=tuple(previous) + tuple(excluded))
    model = build_model(table, no_goods, data=data)
    x, prob = model.x, model.prob
    if totals is None:
        prob.setObjective(-pulp.lpSum(x[r] for plan in previous for r in plan))
    else:
        prob.setObjective(_totals_distance(prob, x, totals, previous))
    prob += (
        pulp.lpSum(float(v) * x[i] for i, v in enumerate(data.expected_npv) if v != 0.0)
        >= floor_of_npv,
        "alternative_npv_bound",
    )
    outcome = optimize(model, settings)
    if outcome.plan is None:
        return None
    return tuple(int(r) for r in outcome.plan.chosen)


def _totals_distance(prob, x, totals: Totals, previous: list[tuple[int, ...]]):
    """``sum_p d(x, p)`` as an expression, with for every previous plan p and total k a
    variable ``d <= |T_k x - T_k p|`` (a binary picks the sign), and a row that x differs
    from each p by at least MIN_TOTALS_DISTANCE_MW.

    With ``a = T_k p`` and ``T_k x`` in [0, cap]: ``up = 1`` leaves ``d <= T_k x - a`` and
    must not cut ``d <= a - T_k x + M``, so M >= 2 (cap - a); ``up = 0`` the other way round,
    M >= 2 a. Each row gets its own big-M, the least that is valid."""
    terms = []
    for j, plan in enumerate(previous):
        at = totals.of(plan)
        gaps = []
        for k, coef in enumerate(totals.coefs):
            a = float(at[k])
            above, below = 2.0 * a + 1.0, 2.0 * max(float(totals.cap[k]) - a, 0.0) + 1.0
            t = pulp.lpSum(float(c) * x[i] for i, c in enumerate(coef) if c != 0.0)
            d = add_variable(prob, f"alt_d_{j}_{k}", low=0.0)
            up = add_variable(prob, f"alt_up_{j}_{k}", cat=pulp.LpBinary)
            prob += d <= t - a + above * (1 - up), f"alt_above_{j}_{k}"
            prob += d <= a - t + below * up, f"alt_below_{j}_{k}"
            gaps.append(d)
        prob += pulp.lpSum(gaps) >= MIN_TOTALS_DISTANCE_MW, f"alt_differs_{j}"
        terms += gaps
    return pulp.lpSum(terms)


def _new_totals(totals: Totals | None, rows, previous) -> bool:
    """With ``totals``, the plan's totals differ from every previous plan's: the MILP's
    row says so only to its integrality tolerance times the big-M (0.03 MW at 30,000 MW)."""
    if totals is None:
        return True
    return all(totals.distance(rows, p) >= MIN_TOTALS_DISTANCE_MW / 2 for p in previous)


def _meets_floor(data: PlanData, rows: tuple[int, ...], problem: PlanProblem) -> bool:
    """The plan's CVaR on the risk sample meets the problem's floor (True without one)."""
    if problem.cvar_floor_usd is None or data.risk_npv.shape[1] == 0:
        return True
    npv = data.risk_npv[np.asarray(rows)].sum(axis=0)
    cvar = float(tail_weights(npv, problem.cvar_alpha) @ npv) * MONEY_UNIT_USD
    return cvar >= problem.cvar_floor_usd - 1e-7 * max(1.0, abs(problem.cvar_floor_usd))
