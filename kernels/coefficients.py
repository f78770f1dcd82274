"""Per-scenario NPV coefficients of a site's options: the fast path of the valuation.

For a site, a build year b and a contract c, the NPV of converting L MW of IT is

    NPV_n(L) = ppa_n + mining_mw * before_n(b) + left(L) * after_n(b)
               + L * ai_n(b, c) + capex(L) * per_capex_n(b, c)

where left(L) is the mining MW the conversion leaves and capex(L) the capex at today's
prices of the retrofit-then-build MW. Each coefficient is a handful of gathers on prefix
sums over months (discounted and undiscounted), so an option costs O(1) per scenario
however long the horizon. :mod:`.cashflows` computes the same NPVs month by month; the
tests hold the two equal.

The NPV is an adjusted present value (docs/model.md, Adjusted present value): the
unlevered cash flows after income tax at ``discount_rate``, the project debt's flows at
its market rate, and the tax its interest saves at the same rate. With losses offset at
once, a taxable flow is worth ``1 - rate`` of itself and a capex the cost less the PV of
its deductions (:mod:`.tax`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .cloud import cloud_pv, gpu_loan_pv, tail_value
from .debt import (
    Loan,
    construction_interest_pv,
    interest_pv,
    loan_tables,
    refinancing_pv,
    service_pv,
)
from .exit_value import exit_terms, hall_exit_value
from .hosting import (
    SiteDraws,
    Tenancy,
    build_cost_index,
    energisation,
    full_build_capex_usd_mw,
    loan_per_capex,
    refit_months,
    refit_share,
    relet_capex_usd_mw,
    spend_months,
    takes_improvements,
    tenancy,
)
from .market import Calendar
from .mining import Fleet, MiningStreams
from .params import Portfolio
from .prefix import gather, prefix, segment
from .shell import hall_upkeep_usd_mw_month
from .tax import hall_deductions, hall_property_share, tax_weights

TERMINAL_WINDOW = 12  # months of mining margin capitalised in the terminal value


@dataclass(frozen=True)
class SiteStreams:
    """A site's calendar prefix sums for one chunk (backend arrays, shape (N, T + 1)).

    ``mining_pv`` discounts margin after income tax less refresh capex net of its
    deductions, per grid MW; ``mining_raw`` is the undiscounted operating margin;
    ``ai_power_pv`` (after tax) / ``ai_power_raw`` the grid power of one IT MW (zero when no
    contract of the site pays AI power); ``ppa_pv`` (N,) the PV of the PPA settlement after
    tax.
    """

    mining_pv: Any
    mining_raw: Any
    margin: Any
    ai_power: Any
    ai_power_pv: Any
    ai_power_raw: Any
    ppa_pv: Any


def stream_weights(scenario: Portfolio, cal: Calendar) -> tuple[np.ndarray, np.ndarray]:
    """Weights of a site stream's months (numpy, length T): a taxable flow's (its discount
    factor after income tax) and a USD of ASIC capex's (its discount factor less the PV of
    its deductions)."""
    tw = tax_weights(scenario)
    return tw.after_tax * cal.discount[:-1], tw.capex("asic", cal.discount)


def site_streams(
    mining: MiningStreams,
    ai_power: Any,
    ppa: Any,
    weights: tuple[np.ndarray, np.ndarray],
    *,
    xp: ModuleType,
) -> SiteStreams:
    """The prefix sums of a site's streams, weighted by :func:`stream_weights`."""
    taxed, capex = (xp.asarray(w)[None, :] for w in weights)
    return SiteStreams(
        mining_pv=prefix(taxed * mining.margin - capex * mining.refresh, xp=xp),
        mining_raw=prefix(mining.margin, xp=xp),
        margin=mining.margin,
        ai_power=ai_power,
        ai_power_pv=prefix(taxed * ai_power, xp=xp),
        ai_power_raw=prefix(ai_power, xp=xp),
        ppa_pv=(taxed * ppa).sum(axis=1),
    )


def mining_segments(
    streams: SiteStreams,
    cuts: tuple[int, ...],
    cal: Calendar,
    exit_multiple: float,
    after_tax: float,
    *,
    xp: ModuleType,
) -> tuple[list[Any], list[Any]]:
    """Per grid MW of mining, for each segment [0, c1), [c1, c2), ..., [ck, T) of the horizon
    cut at the months ``cuts`` (ascending): the PV of its months' margin less refresh capex,
    and the PV of its share of the terminal value, both after income tax. A segment's value
    is their sum."""
    t_end = cal.months
    w0 = max(t_end - TERMINAL_WINDOW, 0)
    term = cal.discount[-1] * exit_multiple * after_tax
    edges = [0, *(min(c, t_end) for c in cuts), t_end]
    pvs, terminals = [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        # Terminal value per MW segment, floored at 0: a buyer pays nothing for a loss-making
        # fleet.
        last_12 = streams.mining_raw[:, max(b, w0)] - streams.mining_raw[:, max(a, w0)]
        pvs.append(streams.mining_pv[:, b] - streams.mining_pv[:, a])
        terminals.append(term * xp.maximum(last_12, 0.0))
    return pvs, terminals


@dataclass(frozen=True)
class AICoefficients:
    """Per-scenario PV per IT MW (``per_mw``) and per USD of capex at today's prices
    (``per_capex``), with the tenancy timeline they were read from.

    ``terminal_per_mw`` and ``terminal_per_capex`` are the parts of them that come from the
    terminal value (the hall's and returned mining's exit value after tax; the debt owed at
    T); ``debt_per_capex`` is what the project debt adds when the hall's own flows do not
    depend on it (its flows at the market rate and the tax its interest saves),
    ``shield_per_capex`` and ``subsidy_per_capex`` those two parts of it;
    ``refinanced`` the share of a bullet refinanced when it falls due (None without).
    """

    per_mw: Any
    per_capex: Any
    tenancy: Tenancy
    terminal_per_mw: Any
    terminal_per_capex: Any
    debt_per_capex: Any
    shield_per_capex: Any
    subsidy_per_capex: Any
    refinanced: Any = None


def ai_coefficients(
    scenario: Portfolio,
    site_index: int,
    contract_index: int,
    build_year: int,
    draws: SiteDraws,
    streams: SiteStreams,
    fleet_: Fleet,
    cal: Calendar,
    scenarios: Any,
    *,
    xp: ModuleType,
) -> AICoefficients:
    """Coefficients of converting IT MW at a site in ``build_year`` for one contract."""
    site, contract = scenario.sites[site_index], scenario.contracts[contract_index]
    tw = tax_weights(scenario)
    ten = tenancy(
        scenario, site_index, contract_index, build_year, draws, streams.margin,
        streams.ai_power, fleet_.asic_cost_usd_mw, scenarios, xp=xp,
    )  # fmt: skip
    hall = _HallFlows(scenario, site_index, contract_index, build_year, ten, draws.overrun, cal,
                      tw, xp)  # fmt: skip
    per_mw = hall.operating(streams) - hall.fitouts() - hall.refits()
    returned, returned_tv = _returned_mining_pv(
        streams, fleet_, site.ai.pue, ten.mining_from, cal, scenario, tw, xp=xp
    )
    per_mw = per_mw + xp.where(ten.to_mining, returned, 0.0)
    per_mw = per_mw + cloud_pv(scenario, contract, ten, cal, tw, xp=xp)
    gpu_debt, gpu_owed = gpu_loan_pv(scenario, contract, ten, cal, tw.rate, xp=xp)
    per_mw = per_mw + gpu_debt
    terms = exit_terms(scenario, site_index, contract_index, build_year, hall.extra_months)
    power = power_level(streams, cal, contract.power_pass_through, xp)
    cloud_tail = tail_value(contract, ten, terms, cal.months, xp=xp)
    hall_tv = (
        cal.discount[-1]
        * tw.after_tax
        * hall_exit_value(scenario, terms, ten, power, xp=xp, tail_extra=cloud_tail)
    )
    per_mw = per_mw + hall_tv
    unfinished = cal.discount[-1] * tw.after_tax * hall.unfinished()
    per_capex = hall.capex() - hall.refunds() - hall.property_tax() - unfinished
    debt = _DebtFlows(scenario, site_index, contract_index, build_year, ten, draws, cal, tw, xp)
    refinanced = debt.refinanced_share(streams) if debt.loan.refinance else None
    loan = debt.per_capex(refinanced)
    terminal = hall_tv + xp.where(ten.to_mining, returned_tv, 0.0) - gpu_owed
    return AICoefficients(
        per_mw=per_mw,
        per_capex=per_capex + loan.value + loan.shield,
        tenancy=ten,
        terminal_per_mw=terminal,
        terminal_per_capex=-loan.owed - unfinished,
        debt_per_capex=loan.value + loan.shield,
        shield_per_capex=loan.shield,
        subsidy_per_capex=loan.subsidy,
        refinanced=refinanced,
    )


def bare_coefficients(
    scenario: Portfolio,
    site_index: int,
    contract_index: int,
    build_year: int,
    draws: SiteDraws,
    streams: SiteStreams,
    fleet_: Fleet,
    cal: Calendar,
    scenarios: Any,
    *,
    xp: ModuleType,
) -> AICoefficients | None:
    """The coefficients without project debt on the same draws, where the debt changes the
    hall's own cash flows: non-recourse debt (the walk-away); else None.

    Unlevered: no loan, no lender, the landlord's capex all equity.
    """
    loan = Loan.of(scenario, scenario.contracts[contract_index])
    if not (loan.borrows and loan.non_recourse):
        return None
    return ai_coefficients(
        unlevered(scenario), site_index, contract_index, build_year, draws, streams, fleet_,
        cal, scenarios, xp=xp,
    )  # fmt: skip


def leverage_coefficients(coef: AICoefficients, bare: AICoefficients | None) -> tuple[Any, Any]:
    """What the project debt adds, per scenario: levered minus unlevered PV per IT MW and
    per USD of capex (``coef`` levered; ``bare`` :func:`bare_coefficients`).

    Only non-recourse debt changes the hall's own cash flows (the walk-away), so only then
    is the hall valued again (``bare``); otherwise the difference is the debt's own flows
    and tax shield (0 without debt).
    """
    if bare is None:
        return 0.0, coef.debt_per_capex
    return coef.per_mw - bare.per_mw, coef.per_capex - bare.per_capex


def unlevered(scenario: Portfolio) -> Portfolio:
    """``scenario`` without project debt: no loan, no lender (and so no walk-away)."""
    debt = dataclasses.replace(scenario.financing.debt, loan_to_cost=0.0, non_recourse=False)
    return dataclasses.replace(
        scenario,
        financing=dataclasses.replace(scenario.financing, debt=debt),
        contracts=tuple(dataclasses.replace(c, financing=None) for c in scenario.contracts),
    )


class _HallFlows:
    """The hall's own flows of one (site, build year, contract), unlevered, after tax."""

    def __init__(
        self, scenario, site_index, contract_index, build_year, ten, overrun, cal, tw, xp
    ):  # fmt: skip
        self.scenario, self.ten, self.cal, self.tw, self.xp = scenario, ten, cal, tw, xp
        self.overrun = overrun
        self.site = scenario.sites[site_index]
        self.contract = scenario.contracts[contract_index]
        self.build_year = build_year
        self.ai = self.site.ai
        d = cal.discount
        self.d = xp.asarray(d)
        # a USD of equipment capex paid in month t at that month's prices, net of deductions
        self.equipment_host = cal.cost[:-1] * tw.capex("equipment", d)
        self.equipment = xp.asarray(self.equipment_host)
        self.rent_start = xp.minimum(ten.start, cal.months)
        self.extra_months = len(ten.schedule.contract_rent) - cal.months

    def operating(self, streams: SiteStreams) -> Any:
        """Rent less opex, SG&A and grid power, after tax, per IT MW."""
        xp, ten, cal, sched = self.xp, self.ten, self.cal, self.ten.schedule
        k_end, months = ten.rent_months, cal.months
        df_start = (1.0 + self.scenario.discount_rate) ** (-ten.start.astype(xp.float64) / 12.0)
        # D_s == df[s]: relative months discount like calendar ones
        rent_c, own, successor = sched.prefixes(cal.discount[:-1], xp)
        market = 0.0
        for lease in ten.leases:
            table_end = xp.where(lease.own, gather(own, lease.end, xp=xp),
                                 gather(successor, lease.end, xp=xp))  # fmt: skip
            table_start = xp.where(lease.own, gather(own, lease.start, xp=xp),
                                   gather(successor, lease.start, xp=xp))  # fmt: skip
            market = market + lease.factor * (table_end - table_start)
        rent = gather(rent_c, xp.clip(ten.contract_months, 0, k_end), xp=xp)
        rent = df_start * (ten.signed * rent + market)
        costs = xp.asarray(prefix(cal.discount[:-1] * cal.cost[:-1], xp=np))
        upkeep = hall_upkeep_usd_mw_month(self.contract, self.ai)
        spent = gather(costs, self.rent_start + ten.hall_end, xp=xp) - gather(
            costs, self.rent_start, xp=xp
        )
        value = self.tw.after_tax * (rent - upkeep * spent)
        if not self.contract.power_pass_through:
            pv = streams.ai_power_pv
            for a, b in ten.rented(months, xp):
                value = value - (gather(pv, b, xp=xp) - gather(pv, a, xp=xp))
        return value

    def fitouts(self) -> Any:
        """The re-let capex of the successors, net of its deductions, per IT MW."""
        xp, ten = self.xp, self.ten
        total = 0.0
        for lease in ten.leases:
            at = xp.minimum(ten.start + lease.start, self.cal.months - 1)
            total = total + xp.where(lease.fitout, gather(self.equipment, at, xp=xp), 0.0)
        return relet_capex_usd_mw(self.contract, self.ai) * total

    def refunds(self) -> Any:
        """The first tenant's share of the hall funded again for the first successor after
        it took it, net of its deductions, per USD of capex at today's prices."""
        xp, ten = self.xp, self.ten
        if not takes_improvements(self.contract):
            return 0.0
        total = 0.0
        for lease in ten.leases:
            at = xp.minimum(ten.start + lease.start, self.cal.months - 1)
            total = total + xp.where(lease.refund, gather(self.equipment, at, xp=xp), 0.0)
        return self.contract.tenant_funded_share * total

    def refits(self) -> Any:
        """The refits due inside the horizon while the hall is the equity's, net of their
        deductions, per IT MW: the landlord's share of one while the first tenant holds a
        hall whose funded share it takes."""
        total = 0.0
        for due in refit_months(self.scenario, self.site, self.build_year, self.cal.months):
            share = refit_share(self.contract, self.ten, due, self.xp)
            total = total + share * float(self.equipment_host[due])
        return self.scenario.build.refit_capex_usd_mw * total

    def capex(self) -> Any:
        """The landlord's capex at the prices of the build year, with the overrun, less the
        PV of its deductions from energisation, per USD of capex at today's prices."""
        cal, ai = self.cal, self.ai
        cs = self.ten.construction
        spend = spend_months(cs, ai.lead_time_months, cal.months)
        on = energisation(self.scenario, self.site, self.build_year)
        net = float(spend @ cal.discount[:-1]) - self.tw.rate * hall_deductions(
            self.scenario.tax, self.tw, min(on, cal.months)
        ) * float(spend.sum())
        price = build_cost_index(self.scenario, self.build_year)
        landlord = 1.0 - self.contract.tenant_funded_share
        return -landlord * price * self.overrun * net

    def unfinished(self) -> Any:
        """The landlord's capex still to spend after T (a hall being built then: a buyer
        pays the lease's value less it), at the prices of the build year with the overrun,
        per USD of capex at today's prices."""
        spend = spend_months(self.ten.construction, self.ai.lead_time_months, self.cal.months)
        price = build_cost_index(self.scenario, self.build_year)
        landlord = 1.0 - self.contract.tenant_funded_share
        return landlord * price * self.overrun * max(1.0 - float(spend.sum()), 0.0)

    def property_tax(self) -> Any:
        """The hall's property tax from energisation while it is the equity's, after tax,
        per USD of capex at today's prices."""
        xp, cal, tax = self.xp, self.cal, self.scenario.tax
        if tax.property_rate <= 0:
            return 0.0
        on = energisation(self.scenario, self.site, self.build_year)
        age = np.arange(cal.months) - on
        monthly = hall_property_share(tax, age) * (age >= 0)
        table = xp.asarray(prefix(cal.discount[:-1] * monthly, xp=np))
        until = xp.clip(self.rent_start + self.ten.hall_end, 0, cal.months)
        paid = gather(table, until, xp=xp) - float(table[min(on, cal.months)])
        price = build_cost_index(self.scenario, self.build_year)
        landlord = 1.0 - self.contract.tenant_funded_share
        return self.tw.after_tax * landlord * price * self.overrun * xp.maximum(paid, 0.0)


@dataclass(frozen=True)
class LoanValue:
    """What the project debt adds per USD of capex at today's prices, per scenario:
    ``value`` its flows at the market rate (draws, service, refinancing, the balance owed
    at T), ``shield`` the tax its interest saves, ``subsidy`` the part of ``value`` that
    the loan's rate being below the market's is worth, ``owed`` the PV of the balance owed
    at T (inside ``value``)."""

    value: Any
    shield: Any
    subsidy: Any
    owed: Any


class _DebtFlows:
    """The project debt of one (site, build year, contract) in closed form (kernels.debt)."""

    def __init__(self, scenario, site_index, contract_index, build_year, ten, draws, cal, tw,
                 xp):  # fmt: skip
        self.scenario, self.ten, self.cal, self.tw, self.xp = scenario, ten, cal, tw, xp
        self.site = scenario.sites[site_index]
        self.contract = scenario.contracts[contract_index]
        self.loan = Loan.of(scenario, self.contract)
        self.drawn = loan_per_capex(
            scenario, self.site, self.contract, build_year, draws.overrun, xp=xp
        )
        self.spend = spend_months(ten.construction, self.site.ai.lead_time_months, cal.months)

    def per_capex(self, refinanced: Any) -> LoanValue:
        """The LoanValue; ``refinanced``: :meth:`refinanced_share` (None without)."""
        xp, loan = self.xp, self.loan
        if not loan.borrows:
            zero = xp.zeros(self.ten.start.shape)
            return LoanValue(zero, zero, zero, zero)
        value, interest, owed = self._flows(loan.market_rate, refinanced)
        shield = self.tw.rate * interest
        subsidy = 0.0
        if loan.market_rate != loan.rate:
            subsidy = value - self._flows(loan.rate, refinanced)[0]
        return LoanValue(
            self.drawn * value, self.drawn * shield, self.drawn * subsidy, self.drawn * owed
        )

    def _flows(self, rate: float, refinanced: Any) -> tuple[Any, Any, Any]:
        """Per USD drawn, discounted at ``rate``: the loan's flows (draws less service and
        the balance owed at T), its interest, and the PV of that balance."""
        xp, loan, ten, months = self.xp, self.loan, self.ten, self.cal.months
        tab = loan_tables(loan, months + 1, xp, rate)
        d = (1.0 + rate) ** (-np.arange(months + 1) / 12.0)
        start, k_end = ten.start, ten.rent_months
        d_start = (1.0 + rate) ** (-start.astype(xp.float64) / 12.0)
        balance = loan.growth(self.spend, start, xp)
        scheduled = xp.minimum(k_end, loan.term_months)  # payments made before T
        paid = xp.where(ten.lost, xp.minimum(scheduled, ten.lost_at), scheduled)
        zero = xp.zeros_like(paid)
        service = d_start * service_pv(loan, balance, zero, paid, tab, xp)
        interest = d_start * interest_pv(loan, balance, zero, paid, tab, xp)
        interest = interest + construction_interest_pv(loan, self.spend, start, months, rate, xp)
        left = loan.balance_before(balance, scheduled, xp)
        left = xp.where(k_end < loan.term_months, left, 0.0)
        refinancing = 0.0
        if refinanced is not None:
            live = ~ten.lost
            net, refi_interest, refi_owed = refinancing_pv(
                loan, refinanced * balance, k_end, tab, xp
            )
            refinancing = xp.where(live, d_start * net, 0.0)
            interest = interest + xp.where(live, d_start * refi_interest, 0.0)
            left = left + xp.where(live, refi_owed, 0.0)
        # a hall whose rent starts at or after T owes what was drawn, grown to T
        not_started = start >= months
        left = xp.where(not_started, loan.growth(self.spend, start * 0 + months, xp), left)
        left = xp.where(ten.lost, 0.0, xp.maximum(left, 0.0))
        owed = d[-1] * left
        draws = float(self.spend @ d[:-1])
        return draws - service + refinancing - owed, interest, owed

    def refinanced_share(self, streams: SiteStreams) -> Any:
        """Share of a bullet refinanced when it falls due: what the hall's NOI of the 12
        months before carries at ``refinance_dscr``, over the balance then, per IT MW of the
        site's whole build; at most 1."""
        xp, loan, ten, cal = self.xp, self.loan, self.ten, self.cal
        due = loan.due_month
        lo = max(due - 12, 0)
        noi = window_noi(self.scenario, self.contract, self.site.ai, ten, streams, cal, lo, due,
                         xp)  # fmt: skip
        capacity = loan.refinancing_capacity(noi / max(due - lo, 1), xp)
        per_mw = self.drawn * full_build_capex_usd_mw(self.site.ai)
        balance = per_mw * loan.growth(self.spend, ten.start, xp)
        safe = xp.where(balance > 0, balance, 1.0)
        # capacity >= 0: min(capacity, balance) / balance is the share, at most 1, and cannot
        # overflow where a tiny balance meets a large NOI
        return xp.where(balance > 0, xp.minimum(capacity, safe) / safe, 0.0)


def window_noi(scenario, contract, ai, ten, streams, cal, lo, hi, xp) -> Any:
    """The hall's NOI per IT MW over relative months [lo, hi), pre-tax, undiscounted: its
    rent less opex, SG&A and (where the landlord pays it) grid power [USD/MW]."""
    sched, months = ten.schedule, cal.months
    k_end = ten.rent_months
    lo_k, hi_k = xp.minimum(lo, k_end), xp.minimum(hi, k_end)
    raw_c, raw_own, raw_succ = sched.prefixes(np.ones(months), xp)
    rent = segment(raw_c, lo_k, hi_k, 0, ten.contract_months, xp=xp)
    market = 0.0
    for lease in ten.leases:
        own = segment(raw_own, lo_k, hi_k, lease.start, lease.end, xp=xp)
        succ = segment(raw_succ, lo_k, hi_k, lease.start, lease.end, xp=xp)
        market = market + lease.factor * xp.where(lease.own, own, succ)
    rent = ten.signed * rent + market
    costs = xp.asarray(prefix(cal.cost[:-1], xp=np))
    first = xp.minimum(ten.start, months)
    alive = segment(costs, first + lo_k, first + hi_k, first, first + ten.hall_end, xp=xp)
    noi = rent - hall_upkeep_usd_mw_month(contract, ai) * alive
    if not contract.power_pass_through:
        for a, b in ten.rented(months, xp):
            noi = noi - segment(streams.ai_power_raw, first + lo_k, first + hi_k, a, b, xp=xp)
    return noi


def power_level(streams: SiteStreams, cal: Calendar, pass_through: bool, xp: ModuleType) -> Any:
    """An IT MW's grid power a month at its last 12 months' level (0 with pass-through)."""
    if pass_through:
        return 0.0
    t_end = cal.months
    lo = max(t_end - TERMINAL_WINDOW, 0)
    return (streams.ai_power_raw[:, t_end] - streams.ai_power_raw[:, lo]) / max(t_end - lo, 1)


def _returned_mining_pv(streams, fleet_, pue_ai, a2, cal, scenario, tw, *, xp):
    """PV per IT MW of mining its pue x grid MW from month a2, ASICs bought at a2, after
    tax; and the part of it that is terminal value."""
    t_end = cal.months
    w0 = max(t_end - TERMINAL_WINDOW, 0)
    term = cal.discount[-1] * scenario.financing.exit_multiple_mining * tw.after_tax
    full = xp.full_like(a2, t_end)
    pv = gather(streams.mining_pv, full, xp=xp) - gather(streams.mining_pv, a2, xp=xp)
    last = gather(streams.mining_raw, full, xp=xp) - gather(
        streams.mining_raw, xp.maximum(a2, w0), xp=xp
    )
    tv = term * xp.maximum(last, 0.0)
    pv += tv
    t = xp.minimum(a2, t_end - 1)
    weight = xp.asarray(tw.capex("asic", cal.discount))[t]
    purchase = gather(xp.asarray(fleet_.asic_cost_usd_mw), t, xp=xp) * weight
    return pue_ai * (pv - purchase), pue_ai * tv
