"""Constraint groups of the build-plan MILP, one function per group (docs/model.md).

Every row is named after what it means (``budget_2028``, ``contract_min_hyperscaler_a``).
Each function takes ``slacks``, a mapping from :class:`ConstraintGroup` to a nonnegative
variable: a group found there is relaxed by it (in the group's own units), so that the
diagnosis can ask how far a group must give for a plan to exist. Expressions are built
from (variable, coefficient) lists in one go; a term-by-term ``+=`` is far too slow on
10^4-10^5 options.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pulp

from .data import MONEY_UNIT_USD, PlanData
from .options import PlanProblem


@dataclass(frozen=True)
class ConstraintGroup:
    """A group of rows that means one thing to a user.

    Attributes
    ----------
    kind : str
        ``budget``, ``contract_min``, ``contract_online_by``, ``must_sign``,
        ``hashrate_floor`` or ``cvar_floor``.
    key : str
        The budget year or contract name; ``""`` for the hashrate floor (one group for
        all years: it asks the same of each) and the CVaR floor.
    """

    kind: str
    key: str


def constraint_groups(data: PlanData, problem: PlanProblem) -> dict[ConstraintGroup, float]:
    """Every group the diagnosis may relax, with the size of one unit of its slack.

    The size is the group's own requirement (budget, minimum MW, floor), so that the
    phase-1 objective compares slacks of different units as shares of what was asked.
    """
    groups: dict[ConstraintGroup, float] = {}
    for year, (_, available) in budget_limits(data, problem).items():
        groups[ConstraintGroup("budget", str(year))] = max(abs(available), 1.0)
    for terms in problem.contracts:
        scale = max(terms.min_mw, 1.0)
        groups[ConstraintGroup("contract_min", terms.name)] = scale
        if terms.online_by:
            groups[ConstraintGroup("contract_online_by", terms.name)] = scale
        if terms.must_sign:
            groups[ConstraintGroup("must_sign", terms.name)] = 1.0
    if problem.min_hashrate_eh is not None:
        groups[ConstraintGroup("hashrate_floor", "")] = max(problem.min_hashrate_eh, 1.0)
    if problem.cvar_floor_usd is not None:
        floor = problem.cvar_floor_usd / MONEY_UNIT_USD
        groups[ConstraintGroup("cvar_floor", "")] = max(abs(floor), 1.0)
    return groups


def linear(x: list, rows: np.ndarray, coefs: np.ndarray, extra=()) -> pulp.LpAffineExpression:
    """``sum coefs[j] * x[rows[j]]`` (+ extra (variable, coefficient) pairs), zeros dropped."""
    keep = coefs != 0.0
    pairs = [(x[i], c) for i, c in zip(rows[keep].tolist(), coefs[keep].tolist(), strict=True)]
    return pulp.LpAffineExpression(pairs + list(extra))


NO_SLACK: Mapping[ConstraintGroup, pulp.LpVariable] = {}


def _add(prob, name, expr, sense, rhs, group=None, slacks=NO_SLACK) -> pulp.LpConstraint:
    """Add ``expr (sense) rhs`` named ``name``; a relaxed group's slack widens it."""
    slack = slacks.get(group) if group is not None else None
    if slack is not None:
        expr.addterm(slack, 1.0 if sense == pulp.LpConstraintGE else -1.0)
    constraint = pulp.LpConstraint(expr, sense=sense, name=name, rhs=float(rhs))
    prob.addConstraint(constraint)
    return constraint


def one_option_per_site(prob, data: PlanData, x: list, tag: str = "") -> None:
    """``sum_o x[s,o] = 1`` for every site ``s``: ``one_option_<site>``; ``tag`` ends every
    name (a staged plan states each group once per market state)."""
    for site, rows in zip(data.sites, data.site_rows, strict=True):
        expr = linear(x, rows, np.ones(len(rows)))
        _add(prob, f"one_option_{data.site_names[site]}{tag}", expr, pulp.LpConstraintEQ, 1.0)


def exclude_plans(prob, data: PlanData, x: list, problem: PlanProblem) -> None:
    """``sum_s x[plan_s] <= sites - 1`` for each excluded plan: ``exclude_<k>`` (a no-good
    cut: at least one site takes another option)."""
    for k, plan in enumerate(problem.exclude):
        rows = np.asarray(plan, dtype=np.int64)
        expr = linear(x, rows, np.ones(len(rows)))
        _add(prob, f"exclude_{k}", expr, pulp.LpConstraintLE, len(rows) - 1.0)


def budget_limits(data: PlanData, problem: PlanProblem) -> dict[int, tuple[np.ndarray, float]]:
    """Equity capex coefficients and budget of each constrained year [MUSD].

    With ``carry_over`` the row for year y is cumulative spend through y against
    cumulative budget through y (budget years before the horizon count); otherwise the
    year's own spend against its own budget. Every year in which any option spends is
    constrained, even a year without a budget entry (its budget is 0).
    """
    budget = {int(y): float(v) / MONEY_UNIT_USD for y, v in problem.budget_usd_by_year.items()}
    limits: dict[int, tuple[np.ndarray, float]] = {}
    cumulative = np.zeros(data.n_options)
    for year in data.years:
        spend = data.capex[year]
        cumulative = cumulative + spend
        if problem.carry_over:
            coefs = cumulative
            available = sum(v for y, v in budget.items() if y <= year)
        else:
            coefs, available = spend, budget.get(year, 0.0)
        if np.any(spend != 0.0):
            limits[year] = (coefs, available)
    return limits


def budget(prob, data: PlanData, x: list, problem: PlanProblem, slacks=NO_SLACK, tag="") -> None:
    """Capital budget rows ``budget_<year>`` [MUSD]."""
    rows = np.arange(data.n_options)
    for year, (coefs, available) in budget_limits(data, problem).items():
        group = ConstraintGroup("budget", str(year))
        _add(
            prob,
            f"budget_{year}{tag}",
            linear(x, rows, coefs),
            pulp.LpConstraintLE,
            available,
            group,
            slacks,
        )


def contracts(
    prob, data: PlanData, x: list, u: dict, problem: PlanProblem, slacks=NO_SLACK, tag=""
):
    """Contract rows: ``min_mw u <= MW on c <= max_mw u``, online_by and must_sign [MW]."""
    for terms in problem.contracts:
        name, signed = data.contract_names[terms.name], u[terms.name]
        on_c = data.mw_on(terms.name)
        rows = np.flatnonzero(on_c > 0)
        group = ConstraintGroup("contract_min", terms.name)
        expr = linear(x, rows, on_c[rows], [(signed, -terms.min_mw)])
        _add(prob, f"contract_min_{name}{tag}", expr, pulp.LpConstraintGE, 0.0, group, slacks)
        # An unbounded maximum becomes the most the eligible options could ever host.
        max_mw = min(terms.max_mw, float(on_c[rows].sum()))
        expr = linear(x, rows, on_c[rows], [(signed, -max_mw)])
        _add(prob, f"contract_max_{name}{tag}", expr, pulp.LpConstraintLE, 0.0)
        if terms.online_by:
            on_time = data.mw_on(terms.name, terms.online_by)
            early = np.flatnonzero(on_time > 0)
            group = ConstraintGroup("contract_online_by", terms.name)
            expr = linear(x, early, on_time[early], [(signed, -terms.min_mw)])
            _add(
                prob,
                f"contract_online_by_{name}{tag}",
                expr,
                pulp.LpConstraintGE,
                0.0,
                group,
                slacks,
            )
        if terms.must_sign:
            group = ConstraintGroup("must_sign", terms.name)
            _add(
                prob,
                f"must_sign_{name}{tag}",
                pulp.LpAffineExpression([(signed, 1.0)]),
                pulp.LpConstraintGE,
                1.0,
                group,
                slacks,
            )


def hashrate_floor(
    prob, data: PlanData, x: list, problem: PlanProblem, slacks=NO_SLACK, tag=""
) -> None:
    """``sum mining_eh_<year> x >= min_hashrate_eh`` in every horizon year [EH/s]."""
    if problem.min_hashrate_eh is None:
        return
    rows = np.arange(data.n_options)
    for year in data.years:
        group = ConstraintGroup("hashrate_floor", "")  # one slack for every year
        _add(
            prob,
            f"hashrate_floor_{year}{tag}",
            linear(x, rows, data.mining_eh[year]),
            pulp.LpConstraintGE,
            problem.min_hashrate_eh,
            group,
            slacks,
        )


def cvar_tail(prob, data: PlanData, x: list, eta, tail: list, scenarios) -> None:
    """Rockafellar-Uryasev rows ``s_k >= eta - NPV_k . x`` as ``cvar_tail_<k>`` [MUSD]."""
    rows = np.arange(data.n_options)
    for k in scenarios:
        expr = linear(x, rows, data.risk_npv[:, k], [(tail[k], 1.0), (eta, -1.0)])
        _add(prob, f"cvar_tail_{k}", expr, pulp.LpConstraintGE, 0.0)


def cvar_cut(prob, data: PlanData, x: list, theta, weights: np.ndarray, index: int) -> None:
    """Supergradient cut of the concave CVaR: ``theta <= (NPV q) . x`` as ``cvar_cut_<j>``.

    For any q in the risk envelope {0 <= q_k <= 1/((1-alpha)K), sum q = 1},
    CVaR(x) = min_q q . NPV(x) <= q . NPV(x), so the cut never removes a plan's true CVaR.
    """
    rows = np.arange(data.n_options)
    expr = linear(x, rows, data.risk_npv @ weights, [(theta, -1.0)])
    _add(prob, f"cvar_cut_{index}", expr, pulp.LpConstraintGE, 0.0)


def cvar_floor(prob, cvar_expr, problem: PlanProblem, slacks=NO_SLACK) -> None:
    """``CVaR >= cvar_floor_usd`` as ``cvar_floor`` [MUSD]."""
    if problem.cvar_floor_usd is None:
        return
    floor = problem.cvar_floor_usd / MONEY_UNIT_USD
    group = ConstraintGroup("cvar_floor", "")
    _add(
        prob,
        "cvar_floor",
        pulp.LpAffineExpression(cvar_expr),
        pulp.LpConstraintGE,
        floor,
        group,
        slacks,
    )
