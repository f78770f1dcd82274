"""Typed results of the build plan, the exact CVaR of a plan, and the two baselines."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import pandas as pd

from .constraints import budget_limits
from .data import MONEY_UNIT_USD, PlanData, plan_data
from .model import CvarSeed, tail_size
from .options import OptionTable, PlanProblem, capex_column

CHOICE_COLUMNS: tuple[str, ...] = (
    "site",
    "option",
    "ai_it_mw",
    "build_year",
    "contract",
    "online_month",
    "equity_capex_usd",
    "debt_usd",
    "expected_npv_usd",
    "cvar_usd",
)


class SolveStatus(StrEnum):
    """Outcome of a solve, as ``summary.json`` spells it."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    NOT_SOLVED = "not_solved"


def standard_error(samples: np.ndarray) -> float | None:
    """Standard error of the mean of ``samples``; None with fewer than two."""
    return float(samples.std(ddof=1) / np.sqrt(samples.size)) if samples.size > 1 else None


def portfolio_cvar(npv_samples: np.ndarray, alpha: float, axis: int = -1) -> np.ndarray | float:
    """Exact CVaR of discrete, equally likely NPV samples: the mean of the worst ``1 - alpha``
    share, the boundary scenario taking a fractional weight. siteopt's one exact CVaR.

    With ``m = (1 - alpha) K`` this is ``(sum of the floor(m) worst + (m - floor(m)) *
    next worst) / m``, which is exactly the optimum of Rockafellar-Uryasev's LP
    ``max_eta eta - 1/m sum_k (eta - npv_k)^+`` (:func:`.model.tail_weights` gives the
    same weights).

    Parameters
    ----------
    npv_samples : numpy.ndarray [USD]
        Scenarios along ``axis``.
    alpha : float
        Tail level in (0, 1), e.g. 0.95.
    axis : int
        The scenario axis (default the last).

    Returns
    -------
    float or numpy.ndarray [USD]
        One CVaR per index of the other axes.
    """
    x = np.sort(np.moveaxis(np.asarray(npv_samples, dtype=np.float64), axis, -1), axis=-1)
    k = x.shape[-1]
    m, whole = tail_size(k, alpha)
    total = x[..., :whole].sum(axis=-1)
    if whole < k:
        total = total + (m - whole) * x[..., whole]
    out = total / m
    return float(out) if out.ndim == 0 else out


def cvar_terms(npv_samples: np.ndarray, alpha: float, eta: float | None = None) -> np.ndarray:
    """Per-scenario terms whose mean is the CVaR of ``npv_samples`` (K,) [USD]: Rockafellar-
    Uryasev's ``eta - (eta - npv_k)^+ / (1 - alpha)`` at the optimal ``eta`` (the VaR), or
    at the ``eta`` given (their mean is then at most the CVaR).

    Their mean equals :func:`portfolio_cvar` (to rounding), and their standard error is the
    CVaR's asymptotic standard error: the envelope theorem makes the optimal ``eta``'s own
    noise second order. Added to per-scenario NPVs with a weight, they give the per-scenario
    terms of ``E[NPV] + weight * CVaR``, whose differences between two plans on the same
    draws carry that objective margin's standard error.
    """
    x = np.asarray(npv_samples, dtype=np.float64)
    if eta is None:
        eta = value_at_risk(x, alpha)
    return eta - np.maximum(eta - x, 0.0) / (1.0 - alpha)


def value_at_risk(npv_samples: np.ndarray, alpha: float) -> float:
    """The VaR of equally likely NPVs (K,) [USD]: the scenario at the edge of the CVaR's
    tail, the ``eta`` at which Rockafellar-Uryasev's ``eta - E[(eta - NPV)^+] / (1 - alpha)``
    is largest (and equals :func:`portfolio_cvar`)."""
    x = np.asarray(npv_samples, dtype=np.float64)
    _, whole = tail_size(x.size, alpha)
    return float(np.partition(x, min(whole, x.size - 1))[min(whole, x.size - 1)])


def plan_objective(
    table: OptionTable, problem: PlanProblem, rows: np.ndarray
) -> tuple[float, float, float | None]:
    """The MILP's objective of the plan ``rows`` (a table row per site) [USD]:
    ``expected_weight x E[NPV] + risk_aversion x CVaR`` over the risk sample, with its
    E[NPV] and that CVaR (None without a risk sample, where the CVaR term is 0)."""
    rows = np.asarray(rows, dtype=np.int64)
    expected = float(table.table["expected_npv_usd"].to_numpy()[rows].sum())
    risk = np.asarray(table.risk_npv_usd)[rows].sum(axis=0)
    cvar = float(portfolio_cvar(risk, problem.cvar_alpha)) if risk.size else None
    weight = problem.risk_aversion if cvar is not None else 0.0
    return problem.expected_weight * expected + weight * (cvar or 0.0), expected, cvar


@dataclass(frozen=True)
class PlanResult:
    """The build plan and how it was found.

    Attributes
    ----------
    status : SolveStatus
    mip_gap : float or None
        ``(bound - objective) / |objective|`` between the plan's objective and the best
        bound on the optimum; ``inf`` when a plan was found but no bound (time limit hit
        before the root relaxation was solved); None without a plan.
    objective_usd : float or None [USD]
        ``expected_weight * expected_npv_usd + risk_aversion * cvar_risk_sample_usd`` of
        the plan (:func:`plan_objective`).
    chosen : dict of str to int
        Site -> row of ``OptionTable.table`` taken.
    plan : pandas.DataFrame
        One row per site, columns :data:`CHOICE_COLUMNS` plus ``row``; ``mining_mw`` is the
        caller's to add (the table does not carry it).
    expected_npv_usd : float or None [USD]
    cvar_in_model_usd : float or None [USD]
        The CVaR the final model assigns to the plan: Rockafellar-Uryasev's
        ``max_eta eta - sum_k s_k / ((1-alpha)K)`` over the scenario rows in the model
        (``full``, ``lazy``) or the tightest cut at the plan (``cuts``); None when the
        model has no CVaR.
    cvar_risk_sample_usd : float or None [USD]
        The plan's CVaR recomputed from the risk-sample NPVs (always reported).
    cvar_alpha : float
    equity_capex_by_year_usd : dict of int to float [USD]
    timings_s : dict of str to float [s]
        ``build`` and ``solve`` (``diagnose`` when infeasible).
    diagnosis : tuple of str
        Why no plan exists, in user terms (infeasible only).
    solver : str
    timed_out : bool
        The time limit stopped the search (with infeasible: no plan found in time).
    cvar_method : str
    rounds : int
        MILP solves; more than 1 when CVaR cuts were added between solves.
    lp_rounds : int
        LP relaxations solved to place CVaR cuts before the first MILP solve.
    """

    status: SolveStatus
    mip_gap: float | None
    objective_usd: float | None
    chosen: dict[str, int]
    plan: pd.DataFrame
    expected_npv_usd: float | None
    cvar_in_model_usd: float | None
    cvar_risk_sample_usd: float | None
    cvar_alpha: float
    equity_capex_by_year_usd: dict[int, float]
    timings_s: dict[str, float]
    diagnosis: tuple[str, ...] = ()
    solver: str = "highs"
    timed_out: bool = False
    cvar_method: str = "cuts"
    rounds: int = 0
    lp_rounds: int = 0
    cvar_seed: CvarSeed | None = field(default=None, repr=False, compare=False)

    @property
    def found_plan(self) -> bool:
        return self.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)


def choice_frame(table: OptionTable, rows: np.ndarray) -> pd.DataFrame:
    """The chosen rows of the table, one per site, with the plan columns and ``row``."""
    frame = table.table.iloc[np.asarray(rows, dtype=np.int64)]
    out = frame.loc[:, list(CHOICE_COLUMNS)].reset_index(names="row")
    return out.loc[:, [*CHOICE_COLUMNS, "row"]]


def capex_by_year(table: OptionTable, rows: np.ndarray) -> dict[int, float]:
    """Equity capex of the chosen rows per horizon year [USD]."""
    frame = table.table.iloc[np.asarray(rows, dtype=np.int64)]
    return {int(y): float(frame[capex_column(y)].sum()) for y in table.years}


def empty_choice() -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in (*CHOICE_COLUMNS, "row")})


@dataclass(frozen=True)
class Baseline:
    """A reference plan.

    Attributes
    ----------
    name : str
    rows : tuple of int
        Table row per site.
    expected_npv_usd, cvar_usd : float [USD]
        Expected NPV, and CVaR on the risk sample at the problem's ``cvar_alpha``.
    feasible : bool
        Satisfies every constraint of the problem (budgets, contracts, hashrate, CVaR floor).
    violations : tuple of str
        Constraint names it violates.
    """

    name: str
    rows: tuple[int, ...]
    expected_npv_usd: float
    cvar_usd: float
    feasible: bool = True
    violations: tuple[str, ...] = field(default_factory=tuple)


def violations(data: PlanData, problem: PlanProblem, rows: np.ndarray) -> tuple[str, ...]:
    """Names of the constraints that the plan ``rows`` (one table row per site) violates."""
    return tuple(name for name, _ in violation_details(data, problem, rows))


def violation_details(
    data: PlanData, problem: PlanProblem, rows: np.ndarray
) -> tuple[tuple[str, str], ...]:
    """Each constraint the plan ``rows`` violates: its name and what breaks it, in amounts,
    e.g. ``("budget_2028", "cumulative equity capex $313.3M against cumulative budget
    $300.0M")``."""
    rows = np.asarray(rows, dtype=np.int64)
    out: list[tuple[str, str]] = []
    listed = {int(y) for y in problem.budget_usd_by_year}
    for year, (coefs, available) in budget_limits(data, problem).items():
        spent = float(coefs[rows].sum())
        if spent > available + 1e-9 * max(1.0, abs(available)):
            what = "cumulative " if problem.carry_over else ""
            gap = "" if year in listed else f" (the file has no budget entry for {year})"
            out.append(
                (
                    f"budget_{year}",
                    f"{what}equity capex ${spent:,.1f}M against {what}budget "
                    f"${available:,.1f}M{gap}",
                )
            )
    for terms in problem.contracts:
        mw = float(data.mw_on(terms.name)[rows].sum())
        signed = mw > 0 or terms.must_sign
        if signed and mw > terms.max_mw + 1e-9:
            out.append(
                (f"contract_max_{terms.name}", f"{mw:g} MW signed, maximum {terms.max_mw:g} MW")
            )
        if signed and mw < terms.min_mw - 1e-9:
            must = " (must_sign)" if terms.must_sign and mw == 0 else ""
            out.append(
                (
                    f"contract_min_{terms.name}",
                    f"{mw:g} MW signed{must}, minimum {terms.min_mw:g} MW",
                )
            )
        on_time = float(data.mw_on(terms.name, terms.online_by or "9999-12")[rows].sum())
        if signed and terms.online_by and on_time < (terms.min_mw - 1e-9):
            out.append(
                (
                    f"contract_online_by_{terms.name}",
                    f"{on_time:g} MW earning rent by {terms.online_by}, minimum "
                    f"{terms.min_mw:g} MW",
                )
            )
    if problem.min_hashrate_eh is not None:
        for year in data.years:
            eh = float(data.mining_eh[year][rows].sum())
            if eh < problem.min_hashrate_eh - 1e-9:
                out.append(
                    (
                        f"hashrate_floor_{year}",
                        f"{eh:,.2f} EH/s of mining in {year}, floor "
                        f"{problem.min_hashrate_eh:,.2f} EH/s",
                    )
                )
    broken = cvar_floor_broken(data.risk_npv[rows].sum(axis=0), problem)
    if broken is not None:
        out.append(broken)
    return tuple(out)


def cvar_floor_broken(
    risk_npv: np.ndarray, problem: PlanProblem, where: str = "on the risk sample"
) -> tuple[str, str] | None:
    """``("cvar_floor", amounts)`` when the portfolio NPVs (K,) [MUSD] (of the risk sample,
    or of the scenarios ``where`` names) have a CVaR below the problem's floor; None when
    they meet it or there is none."""
    if problem.cvar_floor_usd is None:
        return None
    cvar = portfolio_cvar(risk_npv, problem.cvar_alpha)
    if cvar * MONEY_UNIT_USD >= problem.cvar_floor_usd - 1e-6 * max(
        1.0, abs(problem.cvar_floor_usd)
    ):
        return None
    return (
        "cvar_floor",
        f"CVaR{problem.cvar_alpha * 100:g} ${cvar:,.1f}M {where}, "
        f"floor ${problem.cvar_floor_usd / MONEY_UNIT_USD:,.1f}M",
    )


RATIO_DIGITS = 10  # significant digits at which two NPV-per-capex ratios are equal


def _greedy_key(table: OptionTable, data: PlanData, ratio: np.ndarray, site_of, i: int):
    """Sort key of option ``i`` in :func:`max_ai`: best ratio first, then a total order."""
    r = float(ratio[i])
    rounded = -r if not np.isfinite(r) else -float(f"{r:.{RATIO_DIGITS - 1}e}")
    year = table.table["build_year"].iloc[i]
    return (
        rounded,
        -float(data.ai_it_mw[i]),
        0 if pd.isna(year) else int(year),
        int(site_of[i]),
        str(data.contract[i]),
        i,
    )


def _baseline(name, table, problem, data, rows) -> Baseline:
    rows = np.asarray(rows, dtype=np.int64)
    alpha = table.cvar_alpha if problem is None else problem.cvar_alpha
    broken = () if problem is None else violations(data, problem, rows)
    risk = np.asarray(table.risk_npv_usd)[rows].sum(axis=0)
    # no risk sample (simulation.risk_sample 0): no CVaR to report, not an error
    cvar = float(portfolio_cvar(risk, alpha)) if risk.size else math.nan
    return Baseline(
        name=name,
        rows=tuple(int(r) for r in rows),
        expected_npv_usd=float(table.table["expected_npv_usd"].to_numpy()[rows].sum()),
        cvar_usd=cvar,
        feasible=not broken,
        violations=broken,
    )


def all_mining(table: OptionTable, problem: PlanProblem | None = None) -> Baseline:
    """Every site keeps hashing.

    Parameters
    ----------
    table : OptionTable
    problem : PlanProblem, optional
        Gives ``cvar_alpha`` (else the table's) and the constraints to check ``feasible``
        against (else ``feasible`` is True).
    """
    data = plan_data(table, problem or PlanProblem(budget_usd_by_year={}, contracts=()))
    return _baseline("all_mining", table, problem, data, data.hash_row)


def max_ai(table: OptionTable, problem: PlanProblem) -> Baseline:
    """AI by NPV per capex dollar: a greedy baseline, identical on every CPU.

    AI options are ranked by expected NPV gained over keeping the site hashing, per
    dollar of equity capex (options without capex first); in that order each is taken
    when its site has not yet been converted and every budget row still holds. Contracts,
    hashrate and CVaR floor are not looked at while choosing; ``feasible`` says whether
    the result happens to satisfy them too.

    The order is total and does not depend on the last bits of the NPVs: ratios are
    compared at :data:`RATIO_DIGITS` significant digits (options whose NPV is linear in
    MW tie exactly in exact arithmetic, and a CPU's rounding must not pick among them),
    then larger MW first, earlier build year, site order, contract name.
    """
    data = plan_data(table, problem)
    rows = data.hash_row.copy()
    site_of = np.empty(data.n_options, dtype=np.int64)
    for s, site_rows in enumerate(data.site_rows):
        site_of[site_rows] = s
    limits = list(budget_limits(data, problem).values())
    coefs = np.array([c for c, _ in limits]).reshape(len(limits), data.n_options)
    available = np.array([a for _, a in limits])
    spend = coefs[:, rows].sum(axis=1)
    capex = table.table["equity_capex_usd"].to_numpy(dtype=np.float64) / MONEY_UNIT_USD
    gain = data.expected_npv - data.expected_npv[data.hash_row[site_of]]
    with np.errstate(over="ignore"):  # a near-zero capex ranks first, as no capex does
        ratio = np.where(capex > 0, gain / np.where(capex > 0, capex, 1.0), np.inf)
    candidates = np.flatnonzero(data.ai_it_mw > 0)
    for i in sorted(candidates.tolist(), key=lambda i: _greedy_key(table, data, ratio, site_of, i)):
        s = site_of[i]
        if rows[s] != data.hash_row[s]:
            continue
        trial = spend - coefs[:, rows[s]] + coefs[:, i]
        if np.all(trial <= available + 1e-9 * np.maximum(1.0, np.abs(available))):
            rows[s], spend = i, trial
    return _baseline("max_ai", table, problem, data, rows)
