"""Losses carried forward, in the fast path (docs/model.md, Taxes).

With ``tax.losses: carry_forward`` a project's tax depends on its taxable income year by
year, which is not linear in an option's MW. The coefficients of the NPV
(siteopt.kernels.coefficients) value the tax as if losses offset at once; this module
gives each option's taxable income by tax year from the same per-scenario pieces (prefix
sums read at the years' edges instead of discounted), runs the carry-forward on it, and
returns what carrying changes: the year's difference settled in its last month, as the
month-by-month reference (siteopt.kernels.cashflows) settles it.

Everything is per grid MW of mining, per IT MW or per USD of capex at today's prices,
by scenario and tax year ((N, Y) backend arrays); the exit value counts in the last year.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .cloud import (
    gpu_loan_monthly,
    is_cloud,
    prepayment_month,
    prepayment_usd_mw,
    residual_share,
    tail_value,
)
from .coefficients import TERMINAL_WINDOW, AICoefficients, SiteStreams, power_level
from .debt import Loan, annuity_due
from .exit_value import exit_terms, hall_exit_value
from .hosting import (
    SiteDraws,
    Tenancy,
    build_cost_index,
    energisation,
    loan_per_capex,
    refit_months,
    refit_share,
    relet_capex_usd_mw,
    spend_months,
    takes_improvements,
)
from .market import Calendar
from .mining import Fleet
from .params import Portfolio
from .prefix import gather, prefix
from .shell import hall_upkeep_usd_mw_month
from .tax import carried_forward, deduction_table, hall_property_share, year_edges


def deduction_years(life_years: float, bonus: float, edges: np.ndarray) -> np.ndarray:
    """(T, Y): the share of 1 USD placed in service in month p deducted in tax year y (the
    basis left at the end in the last year)."""
    by_month = deduction_table(life_years, bonus, int(edges[-1]))
    return np.add.reduceat(by_month, edges[:-1], axis=1)


def by_year(table: Any, a: Any, b: Any, edges: np.ndarray, xp: ModuleType) -> Any:
    """Sums over months [a, b) of each tax year, from a calendar prefix ``table`` ((N, T + 1)
    or (T + 1,)); ``a``, ``b`` per scenario. (N, Y)."""
    cuts = xp.clip(xp.asarray(edges)[None, :], xp.asarray(a)[:, None], xp.asarray(b)[:, None])
    if table.ndim == 1:
        values = table[cuts]
    else:
        values = xp.take_along_axis(table, cuts, axis=1)
    return values[:, 1:] - values[:, :-1]


def relative_by_year(table: Any, start: Any, a: Any, b: Any, edges: np.ndarray, xp) -> Any:
    """As :func:`by_year` for a prefix table over relative months (``table[k]``, months from
    the first rent ``start``), over relative months [a, b)."""
    rel = xp.asarray(edges)[None, :] - start[:, None]
    cuts = xp.clip(rel, a[:, None], b[:, None])
    values = table[cuts]
    return values[:, 1:] - values[:, :-1]


@dataclass(frozen=True)
class YearTables:
    """The deterministic tables of a valuation's tax years (numpy)."""

    edges: np.ndarray  # (Y + 1,)
    asic: np.ndarray  # (T, Y) deduction_years of each class
    equipment: np.ndarray
    building: np.ndarray
    last_months: np.ndarray  # (Y,) the last month of each year

    @classmethod
    def of(cls, scenario: Portfolio) -> YearTables:
        tax, edges = scenario.tax, year_edges(scenario)
        bonus = tax.bonus_depreciation
        return cls(
            edges=edges,
            asic=deduction_years(tax.asic_life_years, bonus, edges),
            equipment=deduction_years(tax.ai_equipment_life_years, bonus, edges),
            building=deduction_years(tax.building_life_years, bonus, edges),
            last_months=edges[1:] - 1,
        )


def mining_income(
    streams: SiteStreams,
    fleet_: Fleet,
    cuts: tuple[int, ...],
    cal: Calendar,
    exit_multiple: float,
    years: YearTables,
    xp: ModuleType,
) -> list[Any]:
    """Per grid MW, for each segment of the horizon cut at ``cuts`` (as
    coefficients.mining_segments): the taxable income by year, its margin less the
    depreciation of its refreshes, and its terminal value in the last year. (N, Y) each."""
    t_end = cal.months
    w0 = max(t_end - TERMINAL_WINDOW, 0)
    edges = [0, *(min(c, t_end) for c in cuts), t_end]
    n = streams.mining_raw.shape[0]
    refresh = xp.broadcast_to(xp.asarray(fleet_.refresh_capex_usd_mw), (n, t_end))
    table = xp.asarray(years.asic)
    out = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        whole = xp.full(n, a), xp.full(n, b)
        income = by_year(streams.mining_raw, *whole, years.edges, xp)
        income = income - refresh[:, a:b] @ table[a:b]
        last_12 = streams.mining_raw[:, max(b, w0)] - streams.mining_raw[:, max(a, w0)]
        income[:, -1] = income[:, -1] + exit_multiple * xp.maximum(last_12, 0.0)
        out.append(income)
    return out


def ppa_income(ppa: Any, years: YearTables, xp: ModuleType) -> Any:
    """The PPA settlement by tax year (``ppa`` (N, T) by month)."""
    n = ppa.shape[0]
    t_end = ppa.shape[1]
    return by_year(prefix(ppa, xp=xp), xp.zeros(n, dtype=xp.int64), xp.full(n, t_end),
                   years.edges, xp)  # fmt: skip


@dataclass(frozen=True)
class GroupIncome:
    """A (site, build year, contract)'s taxable income by tax year: per IT MW, per USD of
    capex at today's prices, and the loan's interest per USD of capex ((N, Y) each); the
    rate the loan's flows are discounted at; a cloud contract's GPU loan's interest per IT
    MW ((N, Y), or 0 without one)."""

    per_mw: Any
    per_capex: Any
    interest_per_capex: Any
    market_rate: float
    interest_per_mw: Any = 0.0


def group_income(
    scenario: Portfolio,
    site_index: int,
    contract_index: int,
    build_year: int,
    draws: SiteDraws,
    streams: SiteStreams,
    fleet_: Fleet,
    cal: Calendar,
    coef: AICoefficients,
    years: YearTables,
    *,
    xp: ModuleType,
) -> GroupIncome:
    """The taxable income of converting IT MW in ``build_year`` for a contract, by year, as
    the month-by-month reference books it (its lines less depreciation; the interest
    apart; the hall's and returned mining's exit values in the last year); ``coef``: the
    group's coefficients (its tenancy and refinancing)."""
    site, contract = scenario.sites[site_index], scenario.contracts[contract_index]
    ten = coef.tenancy
    ai, months, edges = site.ai, cal.months, years.edges
    n = ten.start.shape[0]
    start, k_end, sched = ten.start, ten.rent_months, ten.schedule
    first = xp.minimum(start, months)
    # rent: the first contract, then each lease on its base
    tables = sched.prefixes(np.ones(months), xp)
    zero = xp.zeros(n, dtype=xp.int64)
    rent = relative_by_year(tables[0], start, zero, xp.clip(ten.contract_months, 0, k_end),
                            edges, xp)  # fmt: skip
    rent = ten.signed[:, None] * rent
    for lease in ten.leases:
        own = relative_by_year(tables[1], start, lease.start, lease.end, edges, xp)
        succ = relative_by_year(tables[2], start, lease.start, lease.end, edges, xp)
        rent = rent + lease.factor[:, None] * xp.where(lease.own[:, None], own, succ)
    costs = xp.asarray(prefix(cal.cost[:-1], xp=np))
    alive = by_year(costs, first, first + ten.hall_end, edges, xp)
    per_mw = rent - hall_upkeep_usd_mw_month(contract, ai) * alive
    if not contract.power_pass_through:
        for a, b in ten.rented(months, xp):
            per_mw = per_mw - by_year(streams.ai_power_raw, a, b, edges, xp)
    per_mw = per_mw - _capex_deductions(scenario, contract, site, build_year, ten, cal, years,
                                        xp)  # fmt: skip
    per_mw = per_mw + _returned_income(streams, fleet_, ai.pue, ten, cal, years, scenario, xp)
    terms = exit_terms(scenario, site_index, contract_index, build_year,
                       len(sched.contract_rent) - months)  # fmt: skip
    power = power_level(streams, cal, contract.power_pass_through, xp)
    cloud_tail = tail_value(contract, ten, terms, months, xp=xp)
    per_mw[:, -1] = per_mw[:, -1] + hall_exit_value(
        scenario, terms, ten, power, xp=xp, tail_extra=cloud_tail
    )
    per_mw = per_mw + _cloud_income(contract, ten, cal, years, xp)
    per_capex = _landlord_income(scenario, contract, site, build_year, ten, draws, cal, years, xp)
    per_capex = per_capex - _refund_deductions(contract, ten, cal, years, xp)
    interest = _interest(scenario, site, contract, build_year, coef, draws, cal, years, xp)
    loan = Loan.of(scenario, contract)
    gpu_interest: Any = 0.0
    gpu_loan = gpu_loan_monthly(scenario, contract, ten, months, 1.0, xp=xp)
    if gpu_loan is not None:
        whole = xp.zeros(n, dtype=xp.int64), xp.full(n, months)
        gpu_interest = by_year(prefix(gpu_loan[2], xp=xp), *whole, edges, xp)
    return GroupIncome(per_mw, per_capex, interest, loan.market_rate, gpu_interest)


def in_year(amount: Any, month: Any, edges: np.ndarray, xp: ModuleType) -> Any:
    """(N, Y): ``amount`` (N,) booked in the tax year of calendar ``month`` (N,)."""
    year = xp.searchsorted(xp.asarray(edges), xp.asarray(month), side="right") - 1
    return amount[:, None] * (xp.arange(len(edges) - 1)[None, :] == year[:, None])


def _cloud_income(contract, ten, cal, years, xp) -> Any:
    """Per IT MW: a cloud contract's taxable flows by year (the prepayment, its credits and
    refund, operations, the GPUs' sale) less the GPUs' depreciation (kernels/cloud.py); 0
    for colocation."""
    if not is_cloud(contract):
        return 0.0
    months, edges = cal.months, years.edges
    start, c_end, k_end = ten.start, ten.contract_months, ten.rent_months
    sched = ten.schedule
    n = start.shape[0]
    rent = sched.prefixes(np.ones(months), xp)[0]
    zero = xp.zeros(n, dtype=xp.int64)
    revenue = relative_by_year(rent, start, zero, xp.clip(c_end, 0, k_end), edges, xp)
    out = -contract.prepayment_share * ten.signed[:, None] * revenue
    paid = prepayment_usd_mw(contract, sched) * ten.signed
    arrives = prepayment_month(contract, ten.construction, start, months, xp)
    out = out + in_year(paid, arrives, edges, xp)
    late = ten.terminated & (start < months)
    at_start = xp.minimum(start, months - 1)
    out = out - in_year(xp.where(late, paid, 0.0), at_start, edges, xp)
    costs = xp.asarray(prefix(cal.cost[:-1], xp=np))
    ops = by_year(costs, ten.rent_start, ten.contract_end, edges, xp)
    out = out - contract.operations_usd_mw_month * ops
    gpu = contract.gpu_capex_usd_mw
    end = start + c_end
    sold = (c_end > 0) & (end < months)
    sale = xp.where(sold, gpu * residual_share(contract, c_end, xp), 0.0)
    out = out + in_year(sale, xp.minimum(end, months - 1), edges, xp)
    bought = xp.where((c_end > 0) & (start < months), gpu, 0.0)
    return out - _event_deductions(bought, at_start, xp.asarray(years.asic), xp)


def _event_deductions(amount: Any, month: Any, table: Any, xp: ModuleType) -> Any:
    """(N, Y) deductions of ``amount`` (N,) placed in service in ``month`` (N,)."""
    return amount[:, None] * table[xp.minimum(month, table.shape[0] - 1)]


def _capex_deductions(scenario, contract, site, build_year, ten, cal, years, xp) -> Any:
    """Per IT MW: the depreciation of the re-let capex and the refits, by year."""
    months = cal.months
    eq = xp.asarray(years.equipment)
    prices = xp.asarray(cal.cost[:-1])
    out = 0.0
    fit = relet_capex_usd_mw(contract, site.ai)
    for lease in ten.leases:
        at = xp.minimum(ten.start + lease.start, months - 1)
        amount = xp.where(lease.fitout, fit * prices[at], 0.0)
        out = out + _event_deductions(amount, at, eq, xp)
    refit = scenario.build.refit_capex_usd_mw
    for due in refit_months(scenario, site, build_year, months):
        amount = refit_share(contract, ten, due, xp) * refit * float(cal.cost[due])
        out = out + amount[:, None] * eq[due][None, :]
    return out


def _refund_deductions(contract, ten, cal, years, xp) -> Any:
    """Per USD of capex: the depreciation of the first tenant's share funded again."""
    if not takes_improvements(contract):
        return 0.0
    eq = xp.asarray(years.equipment)
    prices = xp.asarray(cal.cost[:-1])
    out = 0.0
    for lease in ten.leases:
        at = xp.minimum(ten.start + lease.start, cal.months - 1)
        amount = xp.where(lease.refund, contract.tenant_funded_share * prices[at], 0.0)
        out = out + _event_deductions(amount, at, eq, xp)
    return out


def _landlord_income(scenario, contract, site, build_year, ten, draws, cal, years, xp) -> Any:
    """Per USD of capex: the hall's depreciation from energisation and its property tax."""
    months, tax = cal.months, scenario.tax
    cs = ten.construction
    spend = spend_months(cs, site.ai.lead_time_months, months)
    on = energisation(scenario, site, build_year)
    placed = min(on, months - 1)
    q = tax.ai_equipment_share
    share = q * years.equipment[placed] + (1.0 - q) * years.building[placed]
    landlord = (1.0 - contract.tenant_funded_share) * build_cost_index(scenario, build_year)
    paid = landlord * draws.overrun
    out = -(paid * float(spend.sum()))[:, None] * xp.asarray(share)[None, :]
    out[:, -1] = out[:, -1] - paid * max(1.0 - float(spend.sum()), 0.0)  # still to spend at T
    if tax.property_rate > 0:
        age = np.arange(months) - on
        monthly = hall_property_share(tax, age) * (age >= 0)
        table = xp.asarray(prefix(monthly, xp=np))
        until = xp.clip(xp.minimum(ten.start, months) + ten.hall_end, 0, months)
        lo = xp.full(ten.start.shape, min(on, months))
        out = out - paid[:, None] * by_year(table, lo, xp.maximum(until, lo), years.edges, xp)
    return out


def _returned_income(streams, fleet_, pue_ai, ten, cal, years, scenario, xp) -> Any:
    """Per IT MW: mining its pue x grid MW from ``mining_from`` (margin less the depreciation
    of the ASICs bought then and of the refreshes after), its terminal value in the last
    year; 0 where the hall's MW do not mine again."""
    months = cal.months
    n = ten.start.shape[0]
    a2 = ten.mining_from
    income = by_year(streams.mining_raw, a2, xp.full(n, months), years.edges, xp)
    asic = xp.asarray(years.asic)
    t = xp.minimum(a2, months - 1)
    bought = gather(xp.asarray(fleet_.asic_cost_usd_mw), t, xp=xp)
    income = income - _event_deductions(bought, t, asic, xp)
    refresh = xp.broadcast_to(xp.asarray(fleet_.refresh_capex_usd_mw), (n, months))
    later = refresh * (xp.arange(months)[None, :] >= a2[:, None])
    income = income - later @ asic
    w0 = max(months - TERMINAL_WINDOW, 0)
    last = streams.mining_raw[:, months] - gather(streams.mining_raw, xp.maximum(a2, w0), xp=xp)
    tv = scenario.financing.exit_multiple_mining * xp.maximum(last, 0.0)
    income[:, -1] = income[:, -1] + tv
    return xp.where(ten.to_mining[:, None], pue_ai * income, 0.0)


def _interest(scenario, site, contract, build_year, coef, draws, cal, years, xp) -> Any:
    """Per USD of capex: the project debt's interest by year (the reference's debt, in
    closed form by month, summed by year)."""
    loan = Loan.of(scenario, contract)
    ten, months = coef.tenancy, cal.months
    n = ten.start.shape[0]
    if not loan.borrows:
        return xp.zeros((n, len(years.edges) - 1))
    drawn = loan_per_capex(scenario, site, contract, build_year, draws.overrun, xp=xp)
    spend = spend_months(ten.construction, site.ai.lead_time_months, months)
    monthly = interest_by_month(loan, ten, spend, coef.refinanced, months, xp)
    whole = xp.zeros(n, dtype=xp.int64), xp.full(n, months)
    return drawn[:, None] * by_year(prefix(monthly, xp=xp), *whole, years.edges, xp)


def interest_by_month(
    loan: Loan, ten: Tenancy, spend: np.ndarray, refinanced: Any, months: int, xp: ModuleType
) -> Any:
    """The loan's interest per USD drawn by calendar month (N, T): capitalised until the
    first rent, then in each payment (interest only, or the level payment's part; the last
    pays none), then a refinancing's (``refinanced``: its share of the bullet, or None).
    Stops when the lenders take the hall."""
    i = loan.monthly_rate
    g = 1.0 + i
    months_f = np.arange(months, dtype=np.float64)
    grown = xp.asarray(g**months_f)[None, :]  # (1 + i)^t
    t = xp.arange(months)[None, :]
    start = ten.start[:, None]
    # capitalised: i x the balance drawn so far, grown (the same in every scenario)
    drawn = np.cumsum(spend * g ** (-months_f))
    building = xp.asarray(i * drawn * g**months_f)[None, :]
    balance = loan.growth(spend, ten.start, xp)[:, None]
    level, io_payment = loan.payments(balance)
    k = t - start
    # the j-th level payment's interest, level x (1 - (1 + i)^-(n - j - 1)), j = k - io,
    # as level - level (1 + i)^-(n - 1 + io + start) x (1 + i)^t
    n_level = loan.term_months - loan.interest_only_months
    tail = (
        level
        * g ** (-(n_level - 1.0 + loan.interest_only_months))
        * g ** (-start.astype(xp.float64))
    )
    in_level = level - tail * grown
    paying = xp.where(k < loan.interest_only_months, io_payment, in_level)
    scheduled = (k >= 0) & (k < loan.term_months)
    stop = xp.where(ten.lost, ten.lost_at, months)[:, None]
    out = xp.where(k < 0, building, xp.where(scheduled & (k < stop), paying, 0.0))
    if refinanced is None:
        return out
    r, nr = loan.refinance_monthly_rate, loan.refinance_months
    k0 = loan.due_month
    new = refinanced[:, None] * balance
    refi_level = new * (1.0 + r) / annuity_due(r, nr)
    jr = (k - k0 - 1).astype(xp.float64)
    refi = xp.where(k == k0, r * new, 0.0)
    refi = refi + xp.where(
        (jr >= 0) & (jr < nr), refi_level * (1.0 - (1.0 + r) ** (-(nr - jr - 1.0))), 0.0
    )
    return out + xp.where(ten.lost[:, None], 0.0, refi)


def carried_correction(
    income: Any, interest: Any, rate: float, unlevered_last: Any, market_last: Any, xp
) -> tuple[Any, Any]:
    """What carrying losses forward changes in the PV of an option, over valuing its tax as
    if losses offset at once: (the whole change, the part that is the interest's saving).

    ``income``: taxable income by year, without the interest ((..., Y)); ``interest``: the
    debt's interest by year (None without debt); ``unlevered_last``, ``market_last``: the
    discount factors of each year's last month at the unlevered and the debt's rate. Each
    year settles in its last month, as the reference does.
    """
    offset = rate * income
    unlevered = ((offset - carried_forward(income, rate, xp=xp)) * unlevered_last).sum(axis=-1)
    if interest is None:
        return unlevered, 0.0
    levered = income - interest
    saving = (offset - carried_forward(income, rate, xp=xp)) - (
        rate * levered - carried_forward(levered, rate, xp=xp)
    )
    shield = (-saving * market_last).sum(axis=-1)
    return unlevered + shield, shield
