"""Per-scenario NPV coefficients of a site's options: the fast path of the valuation.

For a site, a build year b and a contract c, the NPV of converting L MW of IT is

    NPV_n(L) = ppa_n + mining_mw * before_n(b) + left(L) * after_n(b)
               + L * ai_n(b, c) + capex(L) * per_capex_n(b, c)

where left(L) is the mining MW the conversion leaves and capex(L) the nominal
retrofit-then-build capex. Each coefficient is a handful of gathers on prefix sums
over months (discounted and undiscounted), so an option costs O(1) per scenario
however long the horizon. :mod:`.cashflows` computes the same NPVs month by month;
the tests hold the two equal.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .hosting import (
    Financing,
    SiteDraws,
    Tenancy,
    relet_capex_usd_mw,
    spend_months,
    tenancy,
)
from .market import Calendar
from .mining import Fleet, MiningStreams
from .params import Portfolio
from .prefix import gather, prefix, segment

TERMINAL_WINDOW = 12  # months of NOI capitalised in the terminal value


@dataclass(frozen=True)
class SiteStreams:
    """A site's calendar prefix sums for one chunk (backend arrays, shape (N, T + 1)).

    ``mining_pv`` discounts margin less refresh capex per grid MW; ``mining_raw`` is the
    undiscounted operating margin; ``ai_power_pv``/``ai_power_raw`` the grid power of
    one IT MW (zero when no contract of the site pays AI power); ``ppa_pv`` (N,) the
    PV of the PPA settlement.
    """

    mining_pv: Any
    mining_raw: Any
    margin: Any
    ai_power: Any
    ai_power_pv: Any
    ai_power_raw: Any
    ppa_pv: Any


def site_streams(
    mining: MiningStreams, ai_power: Any, ppa: Any, cal: Calendar, *, xp: ModuleType
) -> SiteStreams:
    df = xp.asarray(cal.discount[:-1])[None, :]
    return SiteStreams(
        mining_pv=prefix(df * (mining.margin - mining.refresh), xp=xp),
        mining_raw=prefix(mining.margin, xp=xp),
        margin=mining.margin,
        ai_power=ai_power,
        ai_power_pv=prefix(df * ai_power, xp=xp),
        ai_power_raw=prefix(ai_power, xp=xp),
        ppa_pv=(df * ppa).sum(axis=1),
    )


def mining_segments(
    streams: SiteStreams,
    cuts: tuple[int, ...],
    cal: Calendar,
    exit_multiple: float,
    *,
    xp: ModuleType,
) -> tuple[list[Any], list[Any]]:
    """Per grid MW of mining, for each segment [0, c1), [c1, c2), ..., [ck, T) of the horizon
    cut at the months ``cuts`` (ascending): the PV of its months' margin less refresh capex,
    and the PV of its share of the terminal value. A segment's value is their sum."""
    t_end = cal.months
    w0 = max(t_end - TERMINAL_WINDOW, 0)
    term = cal.discount[-1] * exit_multiple
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
    """Per-scenario PV per IT MW (``per_mw``) and per USD of nominal capex (``per_capex``),
    with the tenancy timeline they were read from.

    ``terminal_per_mw`` and ``terminal_per_capex`` are the parts of them that come from the
    terminal value (the hall's and returned mining's exit value; the debt owed at T).
    """

    per_mw: Any
    per_capex: Any
    tenancy: Tenancy
    terminal_per_mw: Any
    terminal_per_capex: Any


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
    ai, fin = site.ai, Financing.of(scenario, contract)
    ten = tenancy(
        scenario, site_index, contract_index, build_year, draws, streams.margin,
        streams.ai_power, fleet_.asic_cost_usd_mw, scenarios, xp=xp,
    )  # fmt: skip
    t_end, sched, k_end = cal.months, ten.schedule, ten.rent_months
    mrf, to_mining = ten.market_rent_factor, ten.to_mining
    pays_power = not contract.power_pass_through

    df_start = (1.0 + scenario.discount_rate) ** (-ten.start.astype(xp.float64) / 12.0)
    d = xp.asarray(cal.discount)  # D_s == df[s] for s <= T
    dsum = prefix(d[:-1], xp=xp)
    rent_c = xp.asarray(prefix(cal.discount[:-1] * sched.contract_rent, xp=np))
    rent_m = xp.asarray(prefix(cal.discount[:-1] * sched.market_base, xp=np))
    market = 0.0
    fitouts = 0.0
    for lease in ten.leases:
        market = market + (gather(rent_m, lease.end, xp=xp) - gather(rent_m, lease.start, xp=xp))
        fitouts = fitouts + xp.where(lease.fitout, gather(d, lease.start, xp=xp), 0.0)
    rent = gather(rent_c, xp.clip(ten.contract_months, 0, k_end), xp=xp) + mrf * market
    opex = ai.opex_usd_mw_month * gather(dsum, ten.hall_end, xp=xp)
    fit = relet_capex_usd_mw(contract, ai)
    value = df_start * (rent - opex - fit * fitouts)
    if pays_power:
        pv = streams.ai_power_pv
        for a, b in ten.rented(t_end, xp):
            value -= gather(pv, b, xp=xp) - gather(pv, a, xp=xp)
    returned, returned_tv = _returned_mining_pv(
        streams, fleet_, ai.pue, ten.mining_from, cal, scenario, xp=xp
    )
    value += xp.where(to_mining, returned, 0.0)
    hall_tv = _terminal_ai(streams, ten, ai, fit, pays_power, cal, scenario, xp=xp)
    value += hall_tv
    financing, owed = _financing_pv(
        fin, ten, ai.lead_time_months, draws.overrun, cal, scenario, xp=xp
    )
    terminal = hall_tv + xp.where(to_mining, returned_tv, 0.0)
    return AICoefficients(value, -financing, ten, terminal, -owed)


def leverage_coefficients(
    scenario: Portfolio,
    site_index: int,
    contract_index: int,
    build_year: int,
    draws: SiteDraws,
    streams: SiteStreams,
    fleet_: Fleet,
    cal: Calendar,
    scenarios: Any,
    coef: AICoefficients,
    *,
    xp: ModuleType,
) -> tuple[Any, Any]:
    """What the project debt adds, per scenario: levered minus unlevered PV per IT MW and
    per USD of nominal capex (``coef`` levered, the unlevered on the same draws).

    Unlevered: no loan, no lender, the funded capex all equity. Only non-recourse debt
    changes the hall's own cash flows (the walk-away), so only then is the hall valued
    again; otherwise the difference is the financing alone.
    """
    contract = scenario.contracts[contract_index]
    fin = Financing.of(scenario, contract)
    if fin.debt_share == 0:
        return 0.0, 0.0
    if fin.non_recourse:
        bare = ai_coefficients(
            unlevered(scenario), site_index, contract_index, build_year, draws, streams,
            fleet_, cal, scenarios, xp=xp,
        )  # fmt: skip
        return coef.per_mw - bare.per_mw, coef.per_capex - bare.per_capex
    equity_only = dataclasses.replace(
        fin, equity_share=fin.equity_share + fin.debt_share, debt_share=0.0
    )
    lead = scenario.sites[site_index].ai.lead_time_months
    cost, _ = _financing_pv(equity_only, coef.tenancy, lead, draws.overrun, cal, scenario, xp=xp)
    return 0.0, coef.per_capex + cost


def unlevered(scenario: Portfolio) -> Portfolio:
    """``scenario`` without project debt: no loan, no lender (and so no walk-away)."""
    debt = dataclasses.replace(scenario.financing.debt, loan_to_cost=0.0, non_recourse=False)
    return dataclasses.replace(
        scenario,
        financing=dataclasses.replace(scenario.financing, debt=debt),
        contracts=tuple(dataclasses.replace(c, financing=None) for c in scenario.contracts),
    )


def _returned_mining_pv(streams, fleet_, pue_ai, a2, cal, scenario, *, xp):
    """PV per IT MW of mining its pue x grid MW from month a2, ASICs bought at a2; and the
    part of it that is terminal value."""
    t_end = cal.months
    w0 = max(t_end - TERMINAL_WINDOW, 0)
    term = cal.discount[-1] * scenario.financing.exit_multiple_mining
    full = xp.full_like(a2, t_end)
    pv = gather(streams.mining_pv, full, xp=xp) - gather(streams.mining_pv, a2, xp=xp)
    last = gather(streams.mining_raw, full, xp=xp) - gather(
        streams.mining_raw, xp.maximum(a2, w0), xp=xp
    )
    tv = term * xp.maximum(last, 0.0)
    pv += tv
    t = xp.minimum(a2, t_end - 1)
    purchase = gather(xp.asarray(fleet_.asic_cost_usd_mw), t, xp=xp) * xp.asarray(cal.discount)[t]
    return pue_ai * (pv - purchase), pue_ai * tv


def _terminal_ai(streams, ten, ai, fit_usd_mw, pays_power, cal, scenario, *, xp):
    """PV per IT MW of the hall's value at T, as a buyer prices it: exit_multiple_ai x its
    stabilised NOI of the last 12 months (months without a tenant counted at market rent),
    less what letting it still costs (the rest of a vacancy running past T, the successor's
    fit-out); never below 0, and 0 unless the hall is the equity's AI hall at T."""
    sched, mrf = ten.schedule, ten.market_rent_factor
    w1 = ten.rent_months
    w0 = xp.clip(w1 - TERMINAL_WINDOW, 0, None)
    rent_c = xp.asarray(prefix(sched.contract_rent, xp=np))
    rent_m = xp.asarray(prefix(sched.market_base, xp=np))
    c_end = ten.contract_months
    rent = segment(rent_c, w0, w1, 0, c_end, xp=xp) + mrf * segment(
        rent_m, w0, w1, c_end, w1, xp=xp
    )
    noi = rent - ai.opex_usd_mw_month * (w1 - w0)
    last = xp.clip(w1 - 1, 0, None)
    lost_noi = mrf * xp.asarray(sched.market_base)[last]  # a month of the vacancy past T
    if pays_power:
        t_end = cal.months
        lo = max(t_end - TERMINAL_WINDOW, 0)
        noi -= segment(streams.ai_power_raw, lo, t_end, ten.rent_start, t_end + 0 * w1, xp=xp)
        lost_noi = lost_noi - streams.ai_power[:, t_end - 1]
    to_let = ten.vacant_after * lost_noi + xp.where(ten.vacant_at_end, fit_usd_mw, 0.0)
    value = scenario.financing.exit_multiple_ai * noi - to_let
    return xp.where(ten.ai_after, cal.discount[-1] * xp.maximum(value, 0.0), 0.0)


def _financing_pv(fin, ten, lead, overrun, cal, scenario, *, xp):
    """PV per USD of nominal capex of equity capex, debt service and debt left at T; and
    the PV of the debt left at T alone."""
    t_end, start, k_end = cal.months, ten.start, ten.rent_months
    spend = spend_months(ten.construction, lead, t_end)
    equity = fin.equity_share * overrun * float(spend @ cal.discount[:-1])
    balance = fin.balance_at_first_rent(ten.construction, lead, overrun, start, t_end, xp)
    scheduled = xp.minimum(k_end, fin.term_months)  # payments made before T
    paid = xp.where(ten.lost, xp.minimum(scheduled, ten.lost_at), scheduled)
    dsum = prefix(xp.asarray(cal.discount[:-1]), xp=xp)
    df_start = (1.0 + scenario.discount_rate) ** (-start.astype(xp.float64) / 12.0)
    service = df_start * fin.service_pv(balance, xp.zeros_like(paid), paid, dsum, xp)
    left = fin.balance_before(balance, scheduled, xp)
    # a hall whose rent starts at or after T owes what was drawn, grown to T
    not_started = start >= t_end
    grown = fin.balance_at_first_rent(ten.construction, lead, overrun, start * 0 + t_end, t_end, xp)
    left = xp.where(not_started, grown, left)
    left = xp.where(ten.lost, 0.0, xp.maximum(left, 0.0))
    owed = cal.discount[-1] * left
    return equity + service + owed, owed
