"""Why this plan: a reason for every site, the constraints and their slack, and what more
capital would buy (docs/cli.md: plan.csv ``why_code``/``why``, summary.json ``sites[].why``,
``constraints``, ``capital_value``).

A site's reason is read from the option table with the rest of the plan held fixed:

- a converted site names its runner-up, the best other option of the site that keeps the
  plan within every constraint, and the margin in E[NPV] over it (``converted``); a site
  sold does the same (``sold``);
- a site that keeps hashing says why: it has no AI option (``no_ai_option``), its best
  conversion is worth less than hashing (``uneconomic``), or a better conversion would
  break the budget (``budget``: the MW, the year and the amount short), a contract's
  minimum or date (``contract``), or a floor (``floor``).

What more capital buys is the MILP solved again on the same draws with $10M (and $50M)
more in one budget year, warm-started from the plan (not an LP dual of the MILP, which
would say nothing about a step of whole options).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from siteopt.kernels.sale import SELL
from siteopt.optimizer.constraints import budget_limits
from siteopt.optimizer.data import MONEY_UNIT_USD, plan_data
from siteopt.optimizer.options import OptionTable, PlanProblem
from siteopt.optimizer.results import plan_objective, portfolio_cvar, violation_details

CAPITAL_STEP_USD = 10_000_000.0  # "what another $10M would buy", per budget year
CAPITAL_STEPS_USD = (CAPITAL_STEP_USD, 50_000_000.0)  # ... and "$50M more"
WHY_CODES = (
    "converted",
    "sold",
    "no_ai_option",
    "uneconomic",
    "budget",
    "contract",
    "floor",
    "plan",
)


@dataclass(frozen=True)
class SiteWhy:
    """One site's reason (``code`` one of WHY_CODES) in a sentence."""

    site: str
    code: str
    text: str
    runner_up: str | None = None  # the runner-up option's label (converted sites)
    margin_usd: float | None = None  # E[NPV] of the chosen option over the runner-up

    def payload(self) -> dict[str, Any]:
        """summary.json's ``sites[].why``."""
        return {
            "code": self.code,
            "text": self.text,
            "runner_up": self.runner_up,
            "margin_usd": self.margin_usd,
        }


@dataclass(frozen=True)
class ConstraintSlack:
    """One constraint of the plan: its value, its limit and the slack between them."""

    name: str  # budget_2027, contract_min_x, contract_max_x, hashrate_floor_2030, cvar_floor
    value: float
    limit: float
    slack: float  # >= 0 when the plan meets it
    unit: str  # "USD", "MW", "EH/s"
    binding: bool  # no slack left (or, for a budget, more of it would buy more E[NPV])


@dataclass(frozen=True)
class CapitalValue:
    """What ``extra_usd`` (one of CAPITAL_STEPS_USD) more in one budget year buys, in the
    MILP's objective (E[NPV] + risk_aversion x CVaR over the risk sample) and, beside it,
    in E[NPV] and that CVaR; all 0 where the plan stays the same."""

    year: int
    extra_usd: float
    expected_npv_gain_usd: float  # may be negative under a CVaR weight: CVaR bought instead
    changes: tuple[str, ...]  # "site: label" of the sites whose option changes
    objective_gain_usd: float = 0.0  # never negative: the plan itself stays feasible
    cvar_gain_usd: float | None = None  # None without a risk sample


def site_reasons(
    options: OptionTable,
    problem: PlanProblem,
    rows: tuple[int, ...],
    without_ai: frozenset[str] = frozenset(),
) -> tuple[SiteWhy, ...]:
    """A reason for every site of the plan ``rows`` (one option-table row per site);
    ``without_ai``: the sites with no ``ai`` section (the others without an AI option have
    no contract open to them)."""
    data = plan_data(options, problem)
    table = options.table
    label = table["option"].to_numpy(dtype=object)
    sells = label == SELL
    npv = data.expected_npv * MONEY_UNIT_USD
    plan = np.asarray(rows, dtype=np.int64)
    out = []
    for i, site in enumerate(data.sites):
        r, hash_row = int(plan[i]), int(data.hash_row[i])
        others = [int(o) for o in data.site_rows[i] if int(o) != r]
        if sells[r]:
            out.append(_runner_up(site, "sold", _sale_text(table, r), r, others, plan, i, data,
                                  problem, label, npv))  # fmt: skip
        elif r != hash_row:
            what = _conversion_text(options, r)
            out.append(_converted(site, what, r, others, plan, i, data, problem, label, npv, table))
        else:
            ai = [o for o in others if o != hash_row]
            out.append(_hashing(site, hash_row, ai, plan, i, data, problem, label, npv, without_ai))
    return tuple(out)


def _conversion_text(options: OptionTable, r: int) -> str:
    """``converts 40 MW for a from 2027``, and ``and 20 MW for b from 2029`` for each
    further tranche of a phased site."""
    halls = options.tranche_frame()
    mine = halls[halls["row"].to_numpy() == r]
    return "converts " + " and ".join(
        f"{float(h.ai_it_mw):g} MW for {h.contract} from {int(h.build_year)}"
        for h in mine.itertuples(index=False)
    )


def _converted(site, what, r, others, plan, i, data, problem, label, npv, table) -> SiteWhy:
    partner = float(table["partner_share"].iloc[r]) if "partner_share" in table else 0.0
    if partner > 0:
        what += f" in a joint venture ({partner:.0%} the partner's)"
    return _runner_up(site, "converted", what, r, others, plan, i, data, problem, label, npv)


def _sale_text(table, r) -> str:
    proceeds = -float(table["equity_capex_usd"].iloc[r])
    return f"sells the site (expected proceeds after tax ${proceeds / 1e6:,.1f}M)"


def _runner_up(site, code, what, r, others, plan, i, data, problem, label, npv) -> SiteWhy:
    """``what`` the site does, against the best other option that keeps the plan within
    its constraints."""
    for alt in sorted(others, key=lambda o: -npv[o]):
        if not violation_details(data, problem, _with(plan, i, alt)):
            margin = float(npv[r] - npv[alt])
            return SiteWhy(
                site,
                code,
                f"{what}: E[NPV] ${margin / 1e6:,.1f}M above its runner-up, {label[alt]}",
                str(label[alt]),
                margin,
            )
    text = f"{what}: no other option of the site keeps the plan within its constraints"
    keep = violation_details(data, problem, _with(plan, i, int(data.hash_row[i])))
    if keep and r != int(data.hash_row[i]):
        text += f" (keeping it hashing breaks {keep[0][0]})"
    return SiteWhy(site, code, text)


def _hashing(site, hash_row, ai, plan, i, data, problem, label, npv, without_ai) -> SiteWhy:
    if not ai:
        cause = "it has no ai section" if site in without_ai else "no contract is open to it"
        return SiteWhy(site, "no_ai_option", f"keeps hashing: no AI option ({cause})")
    best = max(ai, key=lambda o: npv[o])
    if npv[best] <= npv[hash_row]:
        short = float(npv[hash_row] - npv[best])
        what = "selling it" if label[best] == SELL else f"its best conversion, {label[best]},"
        return SiteWhy(
            site,
            "uneconomic",
            f"keeps hashing: {what} is worth ${short / 1e6:,.1f}M less than hashing",
            str(label[best]),
            short,
        )
    for alt in sorted((o for o in ai if npv[o] > npv[hash_row]), key=lambda o: -npv[o]):
        broken = violation_details(data, problem, _with(plan, i, alt))
        if not broken:
            continue  # a better conversion fits alone: the MILP chose otherwise (risk, gap)
        gain = float(npv[alt] - npv[hash_row])
        name, detail = broken[0]
        code = _code(name)
        mw = f"{data.ai_it_mw[alt]:g} MW"
        text = f"keeps hashing: {label[alt]} ({mw}) would add ${gain / 1e6:,.1f}M but "
        if code == "budget":
            text += f"breaks {name}: {detail}"
        else:
            text += f"breaks {name} ({detail})"
        return SiteWhy(site, code, text, str(label[alt]), -gain)
    return SiteWhy(
        site,
        "plan",
        f"keeps hashing: {label[best]} alone would fit and add E[NPV], but the plan's "
        "objective (CVaR weight, or the MIP gap) prefers hashing",
        str(label[best]),
    )


def _code(constraint: str) -> str:
    if constraint.startswith("budget_"):
        return "budget"
    if constraint.startswith("contract_"):
        return "contract"
    return "floor"


def _with(plan: np.ndarray, i: int, row: int) -> np.ndarray:
    changed = plan.copy()
    changed[i] = row
    return changed


def constraint_slacks(
    options: OptionTable,
    problem: PlanProblem,
    rows: tuple[int, ...],
    capital: tuple[CapitalValue, ...] = (),
) -> tuple[ConstraintSlack, ...]:
    """Every constraint group's value, limit and slack for the plan ``rows``; a budget year
    binds when more of it raises the objective (``capital``), another constraint when its
    slack is 0."""
    data = plan_data(options, problem)
    plan = np.asarray(rows, dtype=np.int64)
    gains = {c.year: c.objective_gain_usd for c in capital if c.extra_usd == CAPITAL_STEP_USD}
    out = []
    for year, (coefs, available) in budget_limits(data, problem).items():
        spent = float(coefs[plan].sum()) * MONEY_UNIT_USD
        limit = available * MONEY_UNIT_USD
        out.append(
            ConstraintSlack(
                f"budget_{year}", spent, limit, limit - spent, "USD", gains.get(year, 0.0) > 0
            )
        )
    for terms in problem.contracts:
        mw = float(data.mw_on(terms.name)[plan].sum())
        if mw == 0 and not terms.must_sign:
            continue  # not signed: its minimum and maximum do not apply
        for kind, limit, slack in (
            ("min", terms.min_mw, mw - terms.min_mw),
            ("max", terms.max_mw, terms.max_mw - mw),
        ):
            out.append(
                ConstraintSlack(
                    f"contract_{kind}_{terms.name}", mw, limit, slack, "MW", abs(slack) < 1e-9
                )  # fmt: skip
            )
    if problem.min_hashrate_eh is not None:
        for year in data.years:
            eh = float(data.mining_eh[year][plan].sum())
            slack = eh - problem.min_hashrate_eh
            out.append(
                ConstraintSlack(
                    f"hashrate_floor_{year}",
                    eh,
                    problem.min_hashrate_eh,
                    slack,
                    "EH/s",
                    slack < 1e-6 * max(1.0, problem.min_hashrate_eh),
                )  # fmt: skip
            )
    if problem.cvar_floor_usd is not None:
        cvar = portfolio_cvar(data.risk_npv[plan].sum(axis=0), problem.cvar_alpha) * MONEY_UNIT_USD
        slack = cvar - problem.cvar_floor_usd
        out.append(
            ConstraintSlack(
                "cvar_floor",
                cvar,
                problem.cvar_floor_usd,
                slack,
                "USD",
                slack < 1e-6 * max(1.0, abs(problem.cvar_floor_usd)),
            )  # fmt: skip
        )
    return tuple(out)


def capital_values(
    options: OptionTable,
    problem: PlanProblem,
    rows: tuple[int, ...],
    solve: Any,
) -> tuple[CapitalValue, ...]:
    """For each budget year and each of CAPITAL_STEPS_USD, what that much more in it buys:
    the MILP solved again on the same draws (``solve(problem)`` -> PlanResult, warm-started
    by the caller from ``rows``). The gain is the objective's; a re-solve whose plan scores
    no better than ``rows`` (which stays feasible with more capital: only the MIP gap lets
    it) leaves the plan as it is, with every gain 0."""
    data = plan_data(options, problem)
    label = options.table["option"].to_numpy(dtype=object)
    base, base_npv, base_cvar = plan_objective(options, problem, np.asarray(rows))
    out = []
    years = sorted(int(y) for y in problem.budget_usd_by_year)
    for year, step in ((y, step) for y in years for step in CAPITAL_STEPS_USD):
        budgets = dict(problem.budget_usd_by_year)
        budgets[year] = float(budgets[year]) + step
        result = solve(dataclasses.replace(problem, budget_usd_by_year=budgets))
        if result.expected_npv_usd is None:
            continue
        new = [int(result.chosen[s]) for s in data.sites]
        objective, npv, cvar = plan_objective(options, problem, np.asarray(new))
        changes = tuple(
            f"{s}: {label[n]}" for s, n, o in zip(data.sites, new, rows, strict=True) if n != o
        )
        if not changes or objective <= base:
            out.append(CapitalValue(year, step, 0.0, (), 0.0, None if cvar is None else 0.0))
            continue
        out.append(
            CapitalValue(
                year,
                step,
                npv - base_npv,
                changes,
                objective - base,
                None if cvar is None or base_cvar is None else cvar - base_cvar,
            )
        )
    return tuple(out)
