"""Why no build plan exists, in the user's terms.

Two steps. :func:`precheck` catches the obvious (a contract minimum above what all
eligible sites together could host, a floor above what any plan reaches) from the table
alone, before any MILP. :func:`diagnose` then relaxes constraint groups (each budget
year, contract minimum, online-by date, must-sign, the hashrate floor, the CVaR
floor) with nonnegative slacks, minimises the slacks weighted as shares of what each group
asks, keeps an irreducible set of groups that must give, and for each of them measures
how far it must give with the other groups hard. The message names the contract or year,
the amounts, and the hard constraints that are exhausted at that point.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from .constraints import ConstraintGroup, budget_limits, constraint_groups
from .data import MONEY_UNIT_USD, PlanData, plan_data
from .defaults import DEFAULT_MIP_GAP
from .engine import SolverSettings, binding_rows, optimize
from .model import build_model
from .options import OptionTable, PlanProblem

PENALTY = {"budget": 10.0, "must_sign": 2.0}
"""Relaxing money or a signature explains less than naming the MW or EH/s short."""


def _mw(value: float) -> str:
    return f"{value:,.0f}" if abs(value - round(value)) < 0.05 else f"{value:,.1f}"


def _usd(value_musd: float) -> str:
    return f"${value_musd:,.1f}M"


def _eh(value: float) -> str:
    return f"{value:,.1f}"


def _per_site_best(data: PlanData, values: np.ndarray) -> float:
    return float(sum(values[rows].max() for rows in data.site_rows))


def _precheck_contracts(data: PlanData, problem: PlanProblem) -> list[str]:
    out = []
    for terms in problem.contracts:
        if not terms.must_sign:
            continue
        if terms.max_mw < terms.min_mw:
            out.append(
                f"contract {terms.name} must be signed but its minimum of "
                f"{_mw(terms.min_mw)} MW exceeds its maximum of {_mw(terms.max_mw)} MW"
            )
            continue
        on_c = data.mw_on(terms.name)
        total = _per_site_best(data, on_c)
        if total < terms.min_mw - 1e-9:
            out.append(
                f"contract {terms.name} needs at least {_mw(terms.min_mw)} MW but "
                f"eligible sites can host at most {_mw(total)} MW in total"
            )
            continue
        if terms.online_by:
            early = data.mw_on(terms.name, terms.online_by)
            total = _per_site_best(data, early)
            if total < terms.min_mw - 1e-9:
                out.append(
                    f"contract {terms.name} needs {_mw(terms.min_mw)} MW online by "
                    f"{terms.online_by} but eligible options can deliver at most "
                    f"{_mw(total)} MW by then"
                )
    return out


def precheck(data: PlanData, problem: PlanProblem) -> tuple[str, ...]:
    """Conflicts visible without a MILP: each bound is what every site at its best could
    give, ignoring all other constraints, so a message here is certain.

    Returns
    -------
    tuple of str
        Empty when nothing obvious is wrong.
    """
    out = _precheck_contracts(data, problem)
    for year, (coefs, available) in budget_limits(data, problem).items():
        least = -_per_site_best(data, -coefs)
        if least > available + 1e-9 * max(1.0, abs(available)):
            out.append(_budget_message(year, least, available, problem.carry_over))
    if problem.min_hashrate_eh is not None:
        for year in data.years:
            most = _per_site_best(data, data.mining_eh[year])
            if most < problem.min_hashrate_eh - 1e-9:
                out.append(
                    f"hashrate floor {year}: {_eh(problem.min_hashrate_eh)} EH/s "
                    f"required, at most {_eh(most)} EH/s possible"
                )
    if problem.cvar_floor_usd is not None and data.risk_npv.shape[1] > 0:
        # CVaR never exceeds the mean, and the mean is separable by site.
        most = _per_site_best(data, data.risk_npv.mean(axis=1))
        floor = problem.cvar_floor_usd / MONEY_UNIT_USD
        if most < floor - 1e-9 * max(1.0, abs(floor)):
            out.append(
                f"CVaR floor: {_usd(floor)} required, but no plan's mean NPV over the "
                f"risk sample exceeds {_usd(most)}, and CVaR cannot exceed the mean"
            )
    return tuple(out)


def _budget_message(year, needed, available, carry_over) -> str:
    budget = (
        f"the cumulative budget through {year} is {_usd(available)}"
        if carry_over
        else f"the {year} budget is {_usd(available)}"
    )
    return f"capital budget {year}: the plan needs at least {_usd(needed)} but {budget}"


class _Relaxer:
    """Phase-1 solves of one problem, sharing data, solver settings and a deadline."""

    def __init__(self, table, problem, settings: SolverSettings, data: PlanData):
        self.table, self.problem, self.settings, self.data = table, problem, settings, data
        self.deadline = time.perf_counter() + settings.time_limit_s

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def solve(self, weights: dict[ConstraintGroup, float], share: float, gap_rel=DEFAULT_MIP_GAP):
        """Minimise the weighted slacks of ``weights``' groups (the rest stay hard): the
        best plan found (chosen rows, slacks) and the model, or (None, model) when there
        is no plan or no time. A large ``gap_rel`` stops at the first plan found."""
        model = build_model(self.table, self.problem, relax=weights, data=self.data)
        if self.left() <= 0.05:
            return None, model
        limit = max(min(share, 1.0) * self.left(), 0.05)
        outcome = optimize(model, replace(self.settings, time_limit_s=limit, gap_rel=gap_rel))
        return outcome.plan, model


def _join(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} and {phrases[-1]}"


def _budget_bundles(data: PlanData, problem: PlanProblem, hard):
    """Each constrained budget year, then all of them together."""
    years = [y for y in budget_limits(data, problem) if ConstraintGroup("budget", str(y)) in hard]
    word = "the capital budget through {}" if problem.carry_over else "the {} capital budget"
    single = [(word.format(y), [ConstraintGroup("budget", str(y))]) for y in years]
    if len(years) < 2:
        return single, None
    plural = "the capital budgets through {}" if problem.carry_over else "the {} capital budgets"
    return single, (
        plural.format(_join([str(y) for y in years])),
        [ConstraintGroup("budget", str(y)) for y in years],
    )


def _other_bundles(problem: PlanProblem, hard, group: ConstraintGroup):
    """Hashrate floors, other contracts' requirements and the CVaR floor, as bundles."""
    out = []
    floors = [g for g in hard if g.kind == "hashrate_floor"]
    if floors:
        out.append((f"the hashrate floor of {_eh(problem.min_hashrate_eh)} EH/s", floors))
    for terms in problem.contracts:
        mine = [g for g in hard if g.key == terms.name and g.kind != "budget"]
        if mine and terms.name != group.key:
            by = f" by {terms.online_by}" if terms.online_by else ""
            out.append((f"contract {terms.name}'s minimum of {_mw(terms.min_mw)} MW{by}", mine))
    if ConstraintGroup("cvar_floor", "") in hard:
        floor = problem.cvar_floor_usd / MONEY_UNIT_USD
        out.append((f"the CVaR floor of {_usd(floor)}", [ConstraintGroup("cvar_floor", "")]))
    return out


def _row_phrase(name: str, data: PlanData, problem: PlanProblem, hard, group) -> str | None:
    """The partner phrase of a binding row of the LP relaxation, if it is one."""
    contracts = {data.contract_names[c.name]: c for c in problem.contracts}
    for prefix in ("contract_min_", "contract_online_by_", "must_sign_", "contract_max_"):
        terms = contracts.get(name.removeprefix(prefix)) if name.startswith(prefix) else None
        if terms is None or terms.name == group.key:
            continue
        if prefix == "contract_max_":
            return f"contract {terms.name}'s maximum of {_mw(terms.max_mw)} MW"
        by = f" by {terms.online_by}" if terms.online_by else ""
        if ConstraintGroup(prefix.removesuffix("_"), terms.name) in hard:
            return f"contract {terms.name}'s minimum of {_mw(terms.min_mw)} MW{by}"
    if name.startswith("budget_") and ConstraintGroup("budget", name[7:]) in hard:
        year = name[7:]
        return (
            f"the capital budget through {year}"
            if problem.carry_over
            else f"the {year} capital budget"
        )
    if name.startswith("hashrate_floor_") and ConstraintGroup("hashrate_floor", "") in hard:
        return f"the hashrate floor of {_eh(problem.min_hashrate_eh)} EH/s"
    if name == "cvar_floor" and ConstraintGroup("cvar_floor", "") in hard:
        return f"the CVaR floor of {_usd(problem.cvar_floor_usd / MONEY_UNIT_USD)}"
    return None


def _lp_partners(relaxer: _Relaxer, model, group, hard) -> list[str] | None:
    """Partners from the duals of the LP relaxation of ``min slack[group]``: the hard rows
    that bind it. None when the relaxation does not bind (an integrality gap)."""
    if relaxer.left() <= 0.0:
        return []  # out of time: name no partners rather than guess
    rows = binding_rows(model, replace(relaxer.settings, time_limit_s=max(relaxer.left(), 1.0)))
    if not rows:
        return None
    phrases = [_row_phrase(n, relaxer.data, relaxer.problem, hard, group) for n in rows]
    return list(dict.fromkeys(p for p in phrases if p is not None)) or None


def _partners(relaxer: _Relaxer, group, needed, hard, short: float, scale: float) -> list[str]:
    """Phrases naming the hard constraints whose relaxation lets ``group`` give less, by
    solving with each candidate relaxed too (when the LP relaxation could not tell)."""
    base = {h: (1.0 if h == group else 0.0) for h in needed}
    single, joint = _budget_bundles(relaxer.data, relaxer.problem, hard)
    others = _other_bundles(relaxer.problem, hard, group)
    pending = len(single) + len(others) + 1

    def helps(groups) -> bool:
        nonlocal pending
        trial, _ = relaxer.solve(base | {g: 0.0 for g in groups}, 1.0 / max(pending, 1))
        pending -= 1
        return trial is not None and trial.slacks.get(group, 0.0) < short - 1e-6 * scale

    out = [phrase for phrase, groups in single if helps(groups)]
    if not out and joint is not None and helps(joint[1]):
        out.append(joint[0])
    return out + [phrase for phrase, groups in others if helps(groups)]


def _years(years: list[int]) -> str:
    """``2027-2029`` for consecutive years, else ``2027, 2029``."""
    if len(years) > 1 and years[-1] - years[0] == len(years) - 1:
        return f"{years[0]}-{years[-1]}"
    return ", ".join(str(y) for y in years)


def _message(group, short: float, data, problem: PlanProblem, partners, rows) -> str:
    within = f" within {_join(partners)}" if partners else ""
    terms = {c.name: c for c in problem.contracts}.get(group.key)
    if group.kind == "budget":
        year = int(group.key)
        available = budget_limits(data, problem)[year][1]
        text = _budget_message(year, available + short, available, problem.carry_over)
        return text + (f" (to meet {_join(partners)})" if partners else "")
    if group.kind == "contract_min":
        signed = " (it must be signed)" if terms.must_sign else ""
        return (
            f"contract {terms.name} needs at least {_mw(terms.min_mw)} MW{signed} but "
            f"eligible options can host at most {_mw(terms.min_mw - short)} MW{within}"
        )
    if group.kind == "contract_online_by":
        return (
            f"contract {terms.name} needs {_mw(terms.min_mw)} MW online by "
            f"{terms.online_by} but eligible options can deliver at most "
            f"{_mw(terms.min_mw - short)} MW by then{within}"
        )
    if group.kind == "must_sign":
        return (
            f"contract {terms.name} must be signed but no plan that signs it meets the "
            f"other constraints{within}"
        )
    if group.kind == "hashrate_floor":
        floor = problem.min_hashrate_eh
        tightest = [
            y for y in data.years if data.mining_eh[y][rows].sum() <= floor - short + 1e-6 * floor
        ]
        return (
            f"hashrate floor {_years(tightest)}: {_eh(floor)} EH/s required, at most "
            f"{_eh(floor - short)} EH/s possible{within}"
        )
    floor = problem.cvar_floor_usd / MONEY_UNIT_USD
    return (
        f"CVaR floor: {_usd(floor)} required (alpha {problem.cvar_alpha:g}), at most "
        f"{_usd(floor - short)} possible{within}"
    )


def _irreducible(relaxer: _Relaxer, needed, weights) -> list[ConstraintGroup]:
    """Deletion filter: drop each group whose relaxation the others make unnecessary."""
    for group in sorted(needed, key=lambda g: -PENALTY.get(g.kind, 1.0)):
        others = [h for h in needed if h != group]
        share = 1.0 / (2 * len(needed))
        if others and relaxer.solve({h: weights[h] for h in others}, share, gap_rel=1.0)[0]:
            needed = others
    return needed


def diagnose(
    table: OptionTable,
    problem: PlanProblem,
    settings: SolverSettings,
    *,
    data: PlanData | None = None,
) -> tuple[str, ...]:
    """Explain an infeasible problem: which groups conflict, by how much, with what.

    Parameters
    ----------
    table : OptionTable
    problem : PlanProblem
    settings : SolverSettings
        Solver and threads; ``time_limit_s`` bounds the whole diagnosis.
    data : PlanData, optional

    Returns
    -------
    tuple of str
        One message per group that must give (an irreducible set: keeping any one of
        them hard while relaxing the others still leaves no plan), naming the hard
        constraints that stop it.
    """
    data = plan_data(table, problem) if data is None else data
    early = precheck(data, problem)
    if early:
        return early
    scales = constraint_groups(data, problem)
    weights = {g: PENALTY.get(g.kind, 1.0) / s for g, s in scales.items()}
    relaxer = _Relaxer(table, problem, settings, data)
    plan, _ = relaxer.solve(weights, 0.4)
    if plan is None:
        return (
            "no plan satisfies even the constraints that are never relaxed "
            "(one option per site, contract maxima), or the diagnosis ran out of time",
        )
    needed = [g for g in scales if plan.slacks.get(g, 0.0) > 1e-6 * scales[g]]
    if not needed:
        return (
            "the solver found no plan, but relaxing nothing gives one within numerical "
            "tolerances; try the other solver",
        )
    needed = _irreducible(relaxer, needed, weights)
    hard = set(scales) - set(needed)
    messages = []
    for i, group in enumerate(needed):
        w = {h: (1.0 if h == group else 0.0) for h in needed}
        best, model = relaxer.solve(w, 1.0 / (2 * (len(needed) - i)))
        short = (best or plan).slacks.get(group, 0.0)
        partners = _lp_partners(relaxer, model, group, hard)
        if partners is None:
            partners = _partners(relaxer, group, needed, hard, short, scales[group])
        rows = (best or plan).chosen
        messages.append(_message(group, short, data, problem, partners, rows))
    return tuple(messages)
