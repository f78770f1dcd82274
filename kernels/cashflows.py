"""Month-by-month cash flows of one site option: the reference the fast path must equal.

Where :mod:`.coefficients` reads prefix sums, this module builds every line item as
an (N, T) array with explicit state per month (which MW mine, whether the hall earns
contract rent, stands empty, is re-let or mines again, the debt balance). It is
slower and simpler; the tests hold the two paths equal, and ``cashflows.csv`` comes
from here.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .backend import Backend
from .chunks import ChunkSize, KeptMarket, ordered_map, stream_chunks, usable_cores
from .cloud import CLOUD_LINES, gpu_loan_monthly, monthly_lines, tail_value_monthly
from .coefficients import TERMINAL_WINDOW
from .debt import Loan, annuity_due
from .exit_value import ExitTerms, exit_terms
from .hosting import (
    NEVER,
    TAIL_CONTRACT,
    TAIL_OWN,
    TAIL_VACANT,
    build_cost_index,
    capex_usd,
    energisation,
    full_build_capex_usd_mw,
    loan_per_capex,
    relet_capex_usd_mw,
    site_draws,
    spend_months,
    takes_improvements,
    tenancy,
)
from .market import month_label
from .mining import per_month, ppa_settlement
from .params import Portfolio
from .sale import sale_monthly
from .shell import hall_upkeep_usd_mw_month, upkeep_share
from .sites import (
    ChunkMarket,
    SiteOption,
    ai_power_per_it_mw,
    chunk_market,
    market_rows,
    site_mining,
)
from .tax import carried_forward, deduction_table, hall_property_share, year_edges
from .tranches import mining_cuts, mining_mw_by_month, tranche_capex_usd

LINE_ITEMS = (
    "mining_revenue",
    "mining_ancillary",
    "mining_power",
    "mining_opex",
    "mining_4cp",
    "mining_property_tax",
    "asic_capex",
    "ppa_settlement",
    "ai_rent",
    "ai_opex",
    "ai_power",
    "ai_property_tax",
    "ai_relet_capex",
    "ai_refit_capex",
    *CLOUD_LINES,
    "site_sale",
    "equity_capex",
    "debt_service",
    "refinancing_draw",
    "income_tax",
)
# Lines of the operations before tax: the income that is taxed (depreciation apart).
TAXABLE_ITEMS = (
    "mining_revenue",
    "mining_ancillary",
    "mining_power",
    "mining_opex",
    "mining_4cp",
    "mining_property_tax",
    "ppa_settlement",
    "ai_rent",
    "ai_opex",
    "ai_power",
    "ai_property_tax",
    "cloud_prepayment",
    "cloud_operations",
    "gpu_residual",
    "site_sale",
)
# Memo lines, monthly: the project debt drawn with the capex (behind equity_capex), the
# interest inside debt_service, the tax that interest saves (inside income_tax), the
# depreciation deducted, the part of a bullet the equity repays when it falls due (the
# bullet in debt_service less the line refinancing_draw, what a new loan lends then), the
# balance the lenders take with a hall (non-recourse), and the capex the tenant funds (its
# cash, not the landlord's: the proforma shows it beside). Not cash of their own: never
# added to the lines. By month, the balance owed grows by the draws (refinancing_draw's
# included) and the interest and falls by the service and what is written off.
MEMO_ITEMS = (
    "debt_draw",
    "debt_interest",
    "interest_tax_shield",
    "depreciation",
    "refinancing_paydown",
    "debt_written_off",
    "tenant_capex",
)
# Memo amounts at T: the exit value before tax, its tax, and the debt owed then; the
# line ``terminal_value`` is exit_value + exit_tax - debt_owed_at_end.
TERMINAL_MEMOS = ("exit_value", "exit_tax", "debt_owed_at_end")


class OptionCashflows(NamedTuple):
    """One option's cash flows on a chunk of scenarios."""

    lines: dict[str, Any]  # LINE_ITEMS, each (N, T) [USD/month]
    terminal: Any  # (N,) [USD at month T]: exit value after its tax, less the debt owed
    memo: dict[str, Any]  # MEMO_ITEMS (N, T) and TERMINAL_MEMOS (N,) [USD]


def option_cashflows(
    scenario: Portfolio, option: SiteOption, ctx: ChunkMarket, *, xp: ModuleType
) -> OptionCashflows:
    """Line items, terminal value and the memo lines of one option (OptionCashflows)."""
    i = option.site_index
    site, cal = scenario.sites[i], ctx.cal
    power, fl, ms = site_mining(scenario, i, ctx, xp=xp)
    n, t_end = ctx.scenarios.shape[0], cal.months
    t = xp.arange(t_end)[None, :]
    zeros = xp.zeros((n, t_end))
    lines = {name: zeros for name in LINE_ITEMS}
    memo = {name: zeros for name in MEMO_ITEMS}
    lines["ppa_settlement"] = ppa_settlement(site, power, cal, xp=xp)
    mining_mw = xp.full((n, t_end), site.mining.mw)
    exit_value = xp.zeros(n)
    owed = xp.zeros(n)
    window = t >= t_end - TERMINAL_WINDOW
    multiple_m = scenario.financing.exit_multiple_mining
    capex_events: dict[str, Any] = {"asic": 0.0, "equipment": 0.0, "building": 0.0}
    basis = 0.0
    if option.sells:
        # the buyer takes the site at closing where the sale closes (kernels.sale)
        sale = sale_monthly(scenario, i, ctx.scenarios, t_end, xp=xp)
        mining_mw = mining_mw * sale.keep
        lines["ppa_settlement"] = lines["ppa_settlement"] * sale.keep
        lines["site_sale"] = sale.proceeds
        basis = sale.basis
        exit_value += (
            multiple_m
            * site.mining.mw
            * xp.maximum((ms.margin * window * sale.keep).sum(axis=1), 0.0)
        )
    elif option.contract_index is None:
        exit_value += (
            multiple_m * site.mining.mw * xp.maximum((ms.margin * window).sum(axis=1), 0.0)
        )
    else:
        # the mining the option's halls leave, month by month (kernels.tranches: for one
        # hall all MW mine until construction starts, the retrofit MW stop then, the
        # new-build MW at energisation; from then on what the conversion leaves), and a
        # hall per tranche with its share of the site's capex, of which a JV partner takes
        # its share (kernels.sale)
        tranches = option.tranches
        mining_mw = xp.asarray(mining_mw_by_month(scenario, site, tranches, t_end))
        mining_mw = mining_mw[None, :] + xp.zeros((n, t_end))
        cuts, segment_mw = mining_cuts(scenario, site, tranches)
        edges = list(zip([0, *cuts], [*cuts, t_end], strict=True))
        exit_value += multiple_m * sum(
            mw * xp.maximum((ms.margin * (window & (t >= a) & (t < b))).sum(axis=1), 0.0)
            for mw, (a, b) in zip(segment_mw, edges, strict=True)
        )
        halls = [
            _hosting(scenario, SiteOption(i, "", p.it_mw, p.build_year, p.contract_index), ctx,
                     power, ms, fl, xp=xp, capex_today=cap)
            for p, cap in zip(tranches, tranche_capex_usd(site.ai, tranches), strict=True)
        ]  # fmt: skip
        share = option.hall_share
        # a cloud tranche has lines a lease has not: every name any hall has
        names = dict.fromkeys(name for h in halls for name in h.lines)
        lines.update({name: share * sum(h.lines.get(name, 0.0) for h in halls) for name in names})
        memo.update({name: share * sum(h.memo[name] for h in halls) for name in halls[0].memo})
        mining_mw = mining_mw + share * sum(h.returned_mw for h in halls)
        exit_value += share * sum(h.exit_value for h in halls)
        owed = share * sum(h.owed for h in halls)
        capex_events = {
            kind: share * sum(h.capex_events[kind] for h in halls) for kind in capex_events
        }
    lines["mining_revenue"] = mining_mw * ms.revenue
    lines["mining_ancillary"] = mining_mw * ms.ancillary
    lines["mining_power"] = -mining_mw * ms.power
    lines["mining_opex"] = -mining_mw * ms.opex
    lines["mining_4cp"] = -mining_mw * ms.fourcp
    lines["mining_property_tax"] = -mining_mw * ms.property_tax
    lines["asic_capex"] = lines["asic_capex"] - mining_mw * ms.refresh
    capex_events["asic"] = capex_events["asic"] - lines["asic_capex"]
    tax = _income_tax(
        scenario, lines, capex_events, memo["debt_interest"], exit_value, basis, xp=xp
    )
    lines["income_tax"] = tax.levered
    memo["interest_tax_shield"] = tax.levered - tax.unlevered
    memo["depreciation"] = tax.depreciation
    exit_tax = tax.exit_tax
    terminal = exit_value + exit_tax - owed
    memo.update(exit_value=exit_value, exit_tax=exit_tax, debt_owed_at_end=owed)
    return OptionCashflows(lines, terminal, memo)


class _Taxes(NamedTuple):
    levered: Any  # (N, T) income tax paid, interest deducted [USD, <= 0 when paid]
    unlevered: Any  # (N, T) the same without the interest
    depreciation: Any  # (N, T) deducted [USD, >= 0]
    exit_tax: Any  # (N,) on the exit value at T [USD, <= 0 when paid]


def _income_tax(scenario, lines, capex_events, interest, exit_value, basis, *, xp) -> _Taxes:
    """Income tax by month (docs/model.md, Taxes): on the taxable lines less depreciation
    (capex by class deducted from the month it is placed in service; what is left of its
    basis in the horizon's last month; a sold site's ``basis`` at closing) and, levered,
    less the interest; the exit value is taxed in full at T. Losses offset at once, or
    carried forward by year."""
    tax, months = scenario.tax, scenario.months
    rate = tax.income_rate
    bonus = tax.bonus_depreciation
    lives = {
        "asic": tax.asic_life_years,
        "equipment": tax.ai_equipment_life_years,
        "building": tax.building_life_years,
    }
    depreciation = 0.0
    for kind, spent in capex_events.items():
        if isinstance(spent, float):
            continue
        table = deduction_table(lives[kind], bonus, months)
        depreciation = depreciation + spent @ xp.asarray(table)
    depreciation = depreciation + basis + xp.zeros_like(lines["ai_rent"])
    income = sum(lines[name] for name in TAXABLE_ITEMS) - depreciation
    unlevered = -rate * income
    levered = -rate * (income - interest)
    exit_tax = -rate * exit_value
    if tax.losses == "carry_forward":
        unlevered, _ = _carried(scenario, income, exit_value, rate, xp=xp)
        levered, exit_tax = _carried(scenario, income - interest, exit_value, rate, xp=xp)
    return _Taxes(levered, unlevered, depreciation, exit_tax)


def _carried(scenario, income, exit_value, rate, *, xp):
    """Tax by month with losses carried forward: each month pays as if losses offset, and
    the year's last month settles the difference to the tax on the year's income after
    losses carried (the exit value counts in the last year, its tax at T)."""
    spans = list(itertools.pairwise(int(e) for e in year_edges(scenario)))
    by_year = xp.stack([income[:, a:b].sum(axis=1) for a, b in spans], axis=1)
    by_year[:, -1] = by_year[:, -1] + exit_value
    paid = carried_forward(by_year, rate, xp=xp)
    settle = -(paid - rate * by_year)  # what carrying the losses changes, by year
    out = -rate * income
    for y, (_, b) in enumerate(spans):
        out[:, b - 1] = out[:, b - 1] + settle[:, y]
    return out, -rate * exit_value


class _Hall(NamedTuple):
    lines: dict[str, Any]
    memo: dict[str, Any]
    returned_mw: Any
    exit_value: Any
    owed: Any
    capex_events: dict[str, Any]


def _hosting(scenario, option, ctx, power, ms, fl, *, xp, capex_today=None) -> _Hall:
    """AI line items, the debt's memo lines, MW returned to mining, the hall's exit value,
    the debt owed at T, and the capex by tax class; ``capex_today``: the hall's capex at
    today's prices where it is not its own level's (a tranche of a phased site)."""
    i, c_index, L = option.site_index, option.contract_index, option.it_mw
    site, contract, cal = scenario.sites[i], scenario.contracts[c_index], ctx.cal
    ai, loan = site.ai, Loan.of(scenario, contract)
    n, t_end = ctx.scenarios.shape[0], cal.months
    t = xp.arange(t_end)[None, :]
    prices = xp.asarray(cal.cost[:-1])[None, :]
    draws = site_draws(scenario, i, ctx.scenarios, xp=xp, rent_index=ctx.market.ai_rent_index)
    pays_power = not contract.power_pass_through
    ai_power = (
        ai_power_per_it_mw(scenario, i, power, cal, xp=xp) if pays_power else xp.zeros((n, t_end))
    )
    ten = tenancy(
        scenario, i, c_index, option.build_year, draws, ms.margin, ai_power,
        fl.asic_cost_usd_mw, ctx.scenarios, xp=xp,
    )  # fmt: skip
    cs, sched = ten.construction, ten.schedule
    start = ten.start[:, None]
    to_mining = ten.to_mining[:, None]
    s = t - start

    s_idx = xp.clip(s, 0, t_end - 1)
    contract_on = (s >= 0) & (s < ten.contract_months[:, None])
    own_on = xp.zeros((n, t_end), dtype=bool)
    successor_on = xp.zeros((n, t_end), dtype=bool)
    fitouts = xp.zeros((n, t_end))  # successors fitted out in the month (one may exit at once)
    refunds = xp.zeros((n, t_end))
    factor_on = xp.zeros((n, t_end))  # the market factor of the lease running in the month
    for lease in ten.leases:
        on_lease = (s >= lease.start[:, None]) & (s < lease.end[:, None])
        factor_on += on_lease * lease.factor[:, None]
        own_on |= on_lease & lease.own[:, None]
        successor_on |= on_lease & ~lease.own[:, None]
        first_month = s == lease.start[:, None]
        fitouts += lease.fitout[:, None] & first_month
        refunds += lease.refund[:, None] & first_month
    market_on = own_on | successor_on
    alive = (s >= 0) & (s < ten.hall_end[:, None])
    own_rent = xp.asarray(sched.market_base)[s_idx]
    successor_rent = xp.asarray(sched.successor_base)[s_idx]
    rent = L * (
        contract_on * ten.signed[:, None] * xp.asarray(sched.contract_rent)[s_idx]
        + factor_on * (own_on * own_rent + successor_on * successor_rent)
    )
    upkeep = hall_upkeep_usd_mw_month(contract, ai)
    opex = -L * upkeep * prices * alive
    nominal = float(capex_usd(ai, L)) if capex_today is None else capex_today  # today's prices
    relet_capex = -L * relet_capex_usd_mw(contract, ai) * prices * fitouts
    refund = -contract.tenant_funded_share * nominal * prices * refunds
    refits = _refits(scenario, site, contract, option.build_year, ten, L, prices, t, xp=xp)
    power_line = -L * ai_power * (contract_on | market_on)
    mining_from = ten.mining_from[:, None]
    returned = L * ai.pue * (to_mining & (t >= mining_from))
    purchase = -L * ai.pue * per_month(fl.asic_cost_usd_mw, xp) * (to_mining & (t == mining_from))

    overrun = draws.overrun[:, None]
    price = build_cost_index(scenario, option.build_year)
    landlord = (1.0 - contract.tenant_funded_share) * nominal * price * overrun
    tenant = contract.tenant_funded_share * nominal * price * overrun
    spend = xp.asarray(spend_months(cs, ai.lead_time_months, t_end))[None, :]
    drawn = (
        loan_per_capex(scenario, site, contract, option.build_year, draws.overrun, xp=xp)[:, None]
        * nominal
    )
    debt_draw = drawn * spend if loan.borrows else xp.zeros((n, t_end))
    equity = -(landlord * spend - debt_draw)
    on = energisation(scenario, site, option.build_year)
    age = t - on
    hall_ptax = -landlord * hall_property_share(scenario.tax, age, xp=xp) * (age >= 0)
    hall_ptax = hall_ptax * (t < start + ten.hall_end[:, None])

    noi_lines = rent + opex + power_line
    lost_from = xp.where(ten.lost, ten.start + ten.lost_at, NEVER)[:, None]  # calendar month
    share = _refinanced_share(loan, start, noi_lines / L, debt_draw, nominal, ai, t_end, xp=xp)
    debt = _debt(debt_draw, start, lost_from, loan, share, t_end, xp=xp)

    terms = exit_terms(scenario, i, c_index, option.build_year, len(sched.contract_rent) - t_end)
    level = 0.0
    if pays_power:
        level = ai_power[:, t_end - TERMINAL_WINDOW :].sum(axis=1) / TERMINAL_WINDOW
    cloud = monthly_lines(contract, ten, cal, L, xp=xp)
    cloud_tail = tail_value_monthly(contract, ten, terms, t_end, xp=xp)
    hall_exit = L * _exit_value_monthly(scenario, terms, ten, level, xp=xp, tail_extra=cloud_tail)
    # a hall still being built at T: the buyer pays its lease's value less the capex to come
    hall_exit -= landlord[:, 0] * max(1.0 - float(spend.sum()), 0.0)
    back = (ms.margin * (t >= t_end - TERMINAL_WINDOW) * (t >= mining_from)).sum(axis=1)
    multiple_m = scenario.financing.exit_multiple_mining
    hall_exit += xp.where(ten.to_mining, multiple_m * L * ai.pue * xp.maximum(back, 0.0), 0.0)
    # placed in service at energisation (not yet at T: deducted in the horizon's last month)
    placed = xp.zeros((n, t_end))
    placed[:, min(on, t_end - 1)] = (landlord * spend).sum(axis=1)
    q = scenario.tax.ai_equipment_share
    lines = {
        "ai_rent": rent,
        "ai_opex": opex,
        "ai_power": power_line,
        "ai_property_tax": hall_ptax,
        "ai_relet_capex": relet_capex + refund,
        "ai_refit_capex": refits,
        "equity_capex": equity,
        "debt_service": -debt.service,
        "refinancing_draw": debt.refinanced,
        "asic_capex": purchase,
        **cloud,
    }
    memo = {
        "debt_draw": debt_draw,
        "debt_interest": debt.interest,
        "refinancing_paydown": debt.paydown,
        "debt_written_off": debt.written_off,
        "tenant_capex": tenant * spend,
    }
    events = {
        "asic": -cloud["gpu_capex"] if cloud else 0.0,
        "equipment": q * placed - relet_capex - refund - refits,
        "building": (1.0 - q) * placed,
    }
    owed = debt.owed
    gpu_loan = gpu_loan_monthly(scenario, contract, ten, t_end, L, xp=xp)
    if gpu_loan is not None:  # drawn with the GPUs: the equity's capex is net of it
        draw, service, interest, gpu_owed = gpu_loan
        lines["equity_capex"] = lines["equity_capex"] + draw
        lines["debt_service"] = lines["debt_service"] - service
        memo["debt_draw"] = memo["debt_draw"] + draw
        memo["debt_interest"] = memo["debt_interest"] + interest
        owed = owed + gpu_owed
    return _Hall(lines, memo, returned, hall_exit, owed, events)


def _refits(scenario, site, contract, build_year, ten, L, prices, t, *, xp):
    """Refit capex by month: every ``refit_years`` from energisation while the hall is the
    equity's; the landlord's share while the first tenant holds a hall whose funded share
    it takes."""
    b = scenario.build
    out = xp.zeros((ten.start.shape[0], prices.shape[1]))
    if b.refit_years <= 0 or b.refit_capex_usd_mw <= 0:
        return out
    step = max(1, round(12 * b.refit_years))
    on = energisation(scenario, site, build_year)
    due = (t >= on + step) & ((t - on) % step == 0)
    s = t - ten.start[:, None]
    alive = (s >= 0) & (s < ten.hall_end[:, None])
    share = upkeep_share(contract)
    if takes_improvements(contract):
        held = s < ten.original_end[:, None]
        share = xp.where(held, 1.0 - contract.tenant_funded_share, 1.0)
    return -L * b.refit_capex_usd_mw * prices * share * (due & alive)


class _Debt(NamedTuple):
    service: Any  # (N, T) paid, >= 0
    interest: Any  # (N, T) accrued (capitalised or paid)
    refinanced: Any  # (N, T) drawn by a refinancing
    paydown: Any  # (N, T) of a bullet's balance the equity repays when it falls due
    written_off: Any  # (N, T) the balance the lenders take with the hall
    owed: Any  # (N,) at T


def _debt(draws, start, lost_from, loan, share, t_end, *, xp) -> _Debt:
    """The loan simulated month by month (docs/model.md, Debt).

    Interest is capitalised until the first rent; from then, payments at the start of each
    month: interest only (which keeps the balance) for the loan's interest-only months,
    then level payments that repay it by the end of the term. A bullet that falls due inside
    the horizon is refinanced up to what the hall's NOI of the 12 months before carries at
    ``refinance_dscr`` (``share`` of it, :func:`_refinanced_share`), the equity paying the
    rest; the refinancing amortises from the next month.
    """
    n = draws.shape[0]
    i, io, term = loan.monthly_rate, loan.interest_only_months, loan.term_months
    r, nr = loan.refinance_monthly_rate, loan.refinance_months
    growth = 1.0 + i
    balance = xp.zeros(n)
    level = xp.zeros(n)
    io_payment = xp.zeros(n)
    refi_balance = xp.zeros(n)
    refi_level = xp.zeros(n)
    service = xp.zeros((n, t_end))
    interest = xp.zeros((n, t_end))
    refinanced = xp.zeros((n, t_end))
    paydown = xp.zeros((n, t_end))
    written_off = xp.zeros((n, t_end))
    due_factor = annuity_due(i, term - io)
    for t in range(t_end):
        balance = balance + draws[:, t]
        k = t - start[:, 0]
        at_start = k == 0
        level = xp.where(at_start, balance / due_factor, level)
        io_payment = xp.where(at_start, balance * (i / growth), io_payment)
        due = xp.where(k < io, io_payment, level)
        gone = t >= lost_from[:, 0]  # the lenders hold the hall
        paying = (k >= 0) & (k < term) & ~gone
        pay = xp.where(paying, due, 0.0)
        if loan.refinance:
            falls_due = paying & (k == term - 1)
            drawn_now = xp.where(falls_due, share * balance, 0.0)
            refinanced[:, t] = drawn_now
            paydown[:, t] = xp.where(falls_due, pay - drawn_now, 0.0)
            refi_level = xp.where(falls_due, drawn_now * (1.0 + r) / annuity_due(r, nr), refi_level)
            refi_balance = refi_balance + drawn_now
            j = k - term
            refi_pay = xp.where((j >= 0) & (j < nr), refi_level, 0.0)
            interest[:, t] = r * (refi_balance - refi_pay)
            refi_balance = (refi_balance - refi_pay) * (1.0 + r)
            pay = pay + refi_pay
            own = xp.where(paying, due, 0.0)
        else:
            own = pay
        service[:, t] = pay
        interest[:, t] = interest[:, t] + xp.where(gone, 0.0, i * (balance - own))
        written_off[:, t] = xp.where(gone, balance, 0.0)
        balance = (balance - own) * growth
        balance = xp.where(gone, 0.0, balance)
    # the loop grew the balances one month past T-1: they are what is owed at T
    owed = xp.where(lost_from[:, 0] < t_end, 0.0, xp.maximum(balance, 0.0)) + refi_balance
    return _Debt(service, interest, refinanced, paydown, written_off, owed)


def _refinanced_share(loan, start, noi, draws, nominal, ai, t_end, *, xp):
    """Share of a bullet refinanced when it falls due: what the hall's NOI (``noi`` (N, T)
    per IT MW) of the 12 months before carries at ``refinance_dscr``, over the balance
    then per IT MW of the site's whole build (the option's draws ``draws`` per USD of its
    capex ``nominal`` at today's prices); at most 1."""
    n = noi.shape[0]
    if not loan.refinance:
        return xp.zeros(n)
    due = loan.due_month
    lo = max(due - 12, 0)
    t = xp.arange(t_end)[None, :]
    s = t - start
    window = (s >= lo) & (s < due)
    capacity = loan.refinancing_capacity((noi * window).sum(axis=1) / max(due - lo, 1), xp)
    g = 1.0 + loan.monthly_rate
    months = xp.arange(draws.shape[1])[None, :]
    balance = (draws * g ** (start - months).astype(xp.float64)).sum(axis=1)
    per_mw = balance / max(nominal, 1e-300) * full_build_capex_usd_mw(ai)
    safe = xp.where(per_mw > 0, per_mw, 1.0)
    # capacity >= 0: min(capacity, balance) / balance is the share, at most 1, and cannot
    # overflow where a tiny balance meets a large NOI
    return xp.where(per_mw > 0, xp.minimum(capacity, safe) / safe, 0.0)


def _exit_value_monthly(scenario: Portfolio, terms: ExitTerms, ten, power, *, xp, tail_extra=0.0):
    """The hall's value at T per IT MW (siteopt.kernels.exit_value), its sums over months
    taken one month at a time; ``tail_extra`` what a buyer takes over with the first
    contract running then (kernels.cloud.tail_value_monthly)."""
    sched, months = ten.schedule, scenario.months
    u, v, g = terms.lease_month, terms.unlevered_month, terms.price_month
    k, start, mrf = ten.rent_months, ten.start, ten.market_rent_factor
    kind = ten.tail_kind
    end = xp.maximum(ten.tail_end, k)
    length = len(sched.contract_rent)
    span = int(xp.max(end - k)) if end.size else 0
    j = xp.arange(max(span, 1))[None, :]
    s = k[:, None] + j
    inside = j < (end - k)[:, None]
    s_idx = xp.minimum(s, length - 1)
    rent = xp.where(
        (kind == TAIL_CONTRACT)[:, None],
        ten.signed[:, None] * xp.asarray(sched.contract_rent)[s_idx],
        ten.tail_factor[:, None]
        * xp.where(
            (kind == TAIL_OWN)[:, None],
            xp.asarray(sched.market_base)[s_idx],
            xp.asarray(sched.successor_base)[s_idx],
        ),
    )
    at = (start[:, None] + s).astype(xp.float64)  # calendar month
    cost = terms.cost_usd_mw_month * g**at
    power_ = power[:, None] if hasattr(power, "shape") else power
    from_t = at - months
    lease = (inside * (rent - cost - power_) * u**from_t).sum(axis=1)
    first = kind <= TAIL_OWN
    after = _reversion_monthly(terms, sched, first, end, start, mrf, power, ten, xp=xp)
    lease_end = (start + end - months).astype(xp.float64)
    refits = 0.0
    share = xp.where(first & terms.takes, terms.landlord_share, 1.0)
    for due in terms.refits:
        if due >= months:
            refits = refits + xp.where(
                due < start + end,
                share * terms.refit_usd_mw * g**due * v ** (due - months),
                0.0,
            )
    running = lease + v**lease_end * after - refits
    running = running + xp.where(kind == TAIL_CONTRACT, tail_extra, 0.0)
    # empty at T: the successor to come
    wait = ten.vacant_after
    successor = _vacancy_then_let(terms, sched, k, wait, start, mrf, power, ten.refund_at_end,
                                  ten, xp=xp)  # fmt: skip
    value = xp.where(kind == TAIL_VACANT, successor, running)
    return xp.where(ten.ai_after, xp.maximum(value, 0.0), 0.0)


def _reversion_monthly(terms, sched, first, end, start, mrf, power, ten, *, xp):
    """What follows a lease that ends at relative ``end``, valued then (see
    exit_value.reversion): a renewal, or a vacancy of ``relet_months`` then a successor."""
    last = len(sched.successor_base) - 1
    g, v = terms.price_month, terms.unlevered_month
    at = xp.minimum(end, last)
    base = xp.where(first, xp.asarray(sched.market_base)[at], xp.asarray(sched.successor_base)[at])
    base = base * ten.remark(at)
    upkeep = terms.cost_usd_mw_month + terms.reserve_usd_mw_month
    when = (start + end).astype(xp.float64)
    renew = mrf * base - upkeep * g**when - power
    empty = 0.0
    for j in range(terms.relet_months):
        empty = empty + terms.cost_usd_mw_month * g ** (when + j) * v**j
    vac = terms.relet_months
    signs = xp.minimum(end + vac, last)
    successor = mrf * xp.asarray(sched.successor_base)[signs] * ten.remark(signs)
    successor = successor - upkeep * g ** (when + vac) - power
    refund = xp.where(first & terms.takes, terms.refund_usd_mw, 0.0)
    fit = (terms.fit_usd_mw + refund) * g ** (when + vac)
    relet = v**vac * (12.0 * terms.multiple * successor - fit) - empty
    p = terms.renewal_prob
    return p * 12.0 * terms.multiple * renew + (1.0 - p) * relet


def _vacancy_then_let(terms, sched, k, wait, start, mrf, power, refund, ten, *, xp):
    """A hall empty at T: its costs month by month until the successor starts ``wait``
    months after relative ``k``, then the successor's let value, at T."""
    g, v = terms.price_month, terms.unlevered_month
    horizon = (start + k).astype(xp.float64)  # calendar month of relative k (T if let by T)
    span = int(xp.max(wait)) if wait.size else 0
    empty = 0.0
    for j in range(span):
        live = j < wait
        empty = empty + xp.where(
            live, terms.cost_usd_mw_month * g ** (horizon + j) * v ** (j + 0.0), 0.0
        )
    last = len(sched.successor_base) - 1
    then = horizon + wait
    upkeep = terms.cost_usd_mw_month + terms.reserve_usd_mw_month
    signs = xp.minimum(k + wait, last)
    noi = mrf * xp.asarray(sched.successor_base)[signs] * ten.remark(signs)
    noi = noi - upkeep * g**then - power
    fit = (terms.fit_usd_mw + xp.where(refund, terms.refund_usd_mw, 0.0)) * g**then
    return v ** (wait * 1.0) * (12.0 * terms.multiple * noi - fit) - empty


def option_npv(scenario: Portfolio, option: SiteOption, ctx: ChunkMarket, *, xp: ModuleType) -> Any:
    """NPV per scenario from the line items [USD] (:func:`adjusted_present_value`)."""
    flows = option_cashflows(scenario, option, ctx, xp=xp)
    rate = None
    if option.contract_index is not None:
        rate = Loan.of(scenario, scenario.contracts[option.contract_index]).market_rate
    return adjusted_present_value(flows.lines, flows.memo, ctx.cal.discount, rate, xp=xp)


def adjusted_present_value(
    lines: Mapping[str, Any],
    memo: Mapping[str, Any],
    discount: np.ndarray,
    market_rate: float | None,
    *,
    xp: ModuleType = np,
) -> Any:
    """The NPV of an option's lines and memos ((..., T) by month; the TERMINAL_MEMOS (...,)),
    per scenario or expected: the adjusted present value [USD].

    The unlevered flows (equity capex and debt service with the debt's draws taken back,
    income tax with the interest's saving taken back) and the exit value after its tax at
    ``discount`` (the unlevered rate, length T + 1); the debt's draws, service and balance
    owed at T, and the tax its interest saves, at ``market_rate`` (None: no debt).
    """
    d = xp.asarray(discount)
    flows = {**lines, **memo}
    value = (unlevered_flows(flows) * d[:-1]).sum(axis=-1)
    value = value + d[-1] * (memo["exit_value"] + memo["exit_tax"])
    if market_rate is None:
        return value
    months = len(discount) - 1
    dm = xp.asarray((1.0 + market_rate) ** (-np.arange(months + 1) / 12.0))
    financing = financing_flows(flows)
    return value + (financing * dm[:-1]).sum(axis=-1) - dm[-1] * memo["debt_owed_at_end"]


_FINANCED = ("equity_capex", "debt_service", "refinancing_draw", "income_tax")
# the lines and memo lines of the debt's flows and of the tax its interest saves
FINANCING_ITEMS = ("debt_draw", "refinancing_draw", "debt_service", "interest_tax_shield")


def unlevered_flows(flows: Mapping[str, Any]) -> Any:
    """An option's unlevered cash flows by month, from its lines and memo lines (``flows``
    holds both): the operations, capex and tax as if there were no debt (the equity capex
    with the debt's draws taken back, the income tax with the interest's saving taken
    back)."""
    out = sum(flows[name] for name in LINE_ITEMS if name not in _FINANCED)
    out = out + flows["equity_capex"] - flows["debt_draw"]
    return out + flows["income_tax"] - flows["interest_tax_shield"]


def financing_flows(flows: Mapping[str, Any]) -> Any:
    """The debt's flows by month (its draws, a refinancing's, its service) and the tax its
    interest saves, from an option's lines and memo lines: what the adjusted present value
    discounts at the debt's market rate."""
    return sum(flows[name] for name in FINANCING_ITEMS)


def expected_cashflows(
    scenario: Portfolio,
    options: list[SiteOption],
    *,
    xp: ModuleType = np,
    chunk_size: int = 2_000,
    markets: Sequence[KeptMarket] = (),
    threads: int | None = None,
    memo: bool = False,
) -> pd.DataFrame:
    """Mean monthly cash flows of the chosen options by site and line item [USD].

    Columns: ``site, month, line_item, usd``; the terminal value is a line item
    in the last month. With ``memo``, also the MEMO_ITEMS and TERMINAL_MEMOS (those in the
    last month), which the caller must keep apart from the cash to the equity.

    The month-by-month reference path, on chunks of ``chunk_size`` scenarios: larger chunks
    are slower here (the line items of a chunk are large).

    ``markets``: the valuation's shared paths of the same scenarios (``xp`` arrays, in
    scenario order); the chunks read their rows instead of drawing them again, with the
    same numbers. A chunk they do not cover is drawn.

    On numpy the chunks run on ``threads`` threads (default: the cores this process may
    use) and their sums are added in chunk order, so the numbers do not depend on it; on
    CuPy one chunk at a time, halved on a CUDA out-of-memory error.
    """
    n_total = scenario.simulation.scenarios
    be = Backend(name="numpy" if xp is np else "cupy", xp=xp)
    sums: dict[int, dict[str, np.ndarray]] = {}
    kept = [(m.lo, m.market) for m in markets]
    covered = bool(kept) and kept[0][0] == 0 and markets[-1].hi >= n_total
    needed = {
        list(scenario.power_markets).index(scenario.sites[o.site_index].market) for o in options
    }

    def draw(lo: int, hi: int) -> ChunkMarket:
        ctx = market_rows(kept, lo, hi, xp=xp) if covered else None
        if ctx is None or any(ctx.power[k] is None for k in needed):
            ctx = chunk_market(scenario, xp.arange(lo, hi, dtype=xp.int64), xp=xp)
        return ctx

    def chunk_sums(lo: int, hi: int) -> list[tuple[dict[str, np.ndarray], float]]:
        """Per option: each line item summed over the chunk's scenarios, and the terminal value."""
        ctx, out = draw(lo, hi), []
        for opt in options:
            flows = option_cashflows(scenario, opt, ctx, xp=xp)
            by_line = {name: _host(values.sum(axis=0)) for name, values in flows.lines.items()}
            if memo:
                for name in MEMO_ITEMS:
                    by_line[name] = _host(flows.memo[name].sum(axis=0))
                for name in TERMINAL_MEMOS:
                    by_line[name] = float(_host(flows.memo[name].sum()))
            out.append((by_line, float(_host(flows.terminal.sum()))))
        return out

    if be.name == "numpy":
        ranges = [(lo, min(n_total, lo + chunk_size)) for lo in range(0, n_total, chunk_size)]
        parts = ordered_map(lambda r: chunk_sums(*r), ranges, threads or usable_cores())
    else:
        chunks = stream_chunks(n_total, ChunkSize(chunk_size), be, chunk_sums)
        parts = (part for _, _, part in chunks)
    for part in parts:  # in chunk order
        for k, (by_line, terminal) in enumerate(part):
            acc = sums.setdefault(k, {})
            for name, values in by_line.items():
                acc[name] = acc.get(name, 0.0) + values
            acc["terminal_value"] = acc.get("terminal_value", 0.0) + terminal
    names = (*LINE_ITEMS, "terminal_value", *((*MEMO_ITEMS, *TERMINAL_MEMOS) if memo else ()))
    return _frame(scenario, options, sums, n_total, names)


def _frame(scenario, options, sums, n_total, names) -> pd.DataFrame:
    months = [month_label(scenario, t) for t in range(scenario.months)]
    frames = []
    for k, opt in enumerate(options):
        site = scenario.sites[opt.site_index].name
        for name in names:
            values = np.zeros(scenario.months)
            if name in ("terminal_value", *TERMINAL_MEMOS):
                values[-1] = sums[k][name]
            else:
                values += np.broadcast_to(sums[k][name], values.shape)
            frames.append(
                pd.DataFrame(
                    {"site": site, "month": months, "line_item": name, "usd": values / n_total}
                )
            )
    if not frames:
        return pd.DataFrame({"site": [], "month": [], "line_item": [], "usd": []})
    return pd.concat(frames, ignore_index=True)


def _host(a: Any) -> np.ndarray:
    return a.get() if hasattr(a, "get") else np.asarray(a)
