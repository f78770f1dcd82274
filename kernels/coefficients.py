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

from .hosting import Financing, SiteDraws, Tenancy, annuity_due, spend_months, tenancy
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
    c_end, m_start, mrf = ten.contract_months, ten.relet_after, ten.market_rent_factor
    lost, to_mining, ai_after = ten.lost, ten.to_mining, ten.ai_after
    a0, a1, a2 = ten.rent_start, ten.contract_end, ten.relet
    pays_power = not contract.power_pass_through

    df_start = (1.0 + scenario.discount_rate) ** (-ten.start.astype(xp.float64) / 12.0)
    d = xp.asarray(cal.discount)  # D_s == df[s] for s <= T
    dsum = prefix(d[:-1], xp=xp)
    rent_c = xp.asarray(prefix(cal.discount[:-1] * sched.contract_rent, xp=np))
    rent_m = xp.asarray(prefix(cal.discount[:-1] * sched.market_base, xp=np))
    clip = lambda x: xp.clip(x, 0, k_end)  # noqa: E731
    rent = gather(rent_c, clip(c_end), xp=xp) + xp.where(
        ai_after, mrf * (gather(rent_m, k_end, xp=xp) - gather(rent_m, clip(m_start), xp=xp)), 0.0
    )
    opex_end = xp.where(lost, clip(ten.exit), xp.where(to_mining, clip(m_start), k_end))
    value = df_start * (rent - ai.opex_usd_mw_month * gather(dsum, opex_end, xp=xp))
    if pays_power:
        pv = streams.ai_power_pv
        value -= gather(pv, a1, xp=xp) - gather(pv, a0, xp=xp)
        value -= xp.where(ai_after, gather(pv, a2 * 0 + t_end, xp=xp) - gather(pv, a2, xp=xp), 0.0)
    returned, returned_tv = _returned_mining_pv(streams, fleet_, ai.pue, a2, cal, scenario, xp=xp)
    value += xp.where(to_mining, returned, 0.0)
    hall_tv = _terminal_ai(streams, ten, ai, pays_power, cal, scenario, xp=xp)
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
    purchase = xp.asarray(fleet_.asic_cost_usd_mw)[t] * xp.asarray(cal.discount)[t]
    return pue_ai * (pv - purchase), pue_ai * tv


def _terminal_ai(streams, ten, ai, pays_power, cal, scenario, *, xp):
    """PV per IT MW of exit_multiple_ai x the hall's NOI in the last 12 months."""
    sched, mrf, m_start = ten.schedule, ten.market_rent_factor, ten.relet_after
    w1 = ten.rent_months
    w0 = xp.clip(w1 - TERMINAL_WINDOW, 0, None)
    rent_c = xp.asarray(prefix(sched.contract_rent, xp=np))
    rent_m = xp.asarray(prefix(sched.market_base, xp=np))
    rent = segment(rent_c, w0, w1, 0, ten.contract_months, xp=xp) + mrf * segment(
        rent_m, w0, w1, m_start, w1, xp=xp
    )
    noi = rent - ai.opex_usd_mw_month * (w1 - w0)
    if pays_power:
        t_end = cal.months
        lo = max(t_end - TERMINAL_WINDOW, 0)
        raw, a0, a1, a2 = streams.ai_power_raw, ten.rent_start, ten.contract_end, ten.relet
        noi -= segment(raw, lo, t_end, a0, a1, xp=xp) + segment(
            raw, lo, t_end, a2, a2 * 0 + t_end, xp=xp
        )
    factor = cal.discount[-1] * scenario.financing.exit_multiple_ai
    return xp.where(ten.ai_after, factor * xp.maximum(noi, 0.0), 0.0)


def _financing_pv(fin, ten, lead, overrun, cal, scenario, *, xp):
    """PV per USD of nominal capex of equity capex, debt service and debt left at T; and
    the PV of the debt left at T alone."""
    t_end, start, k_end, exit_, lost = cal.months, ten.start, ten.rent_months, ten.exit, ten.lost
    spend = spend_months(ten.construction, lead, t_end)
    equity = fin.equity_share * overrun * float(spend @ cal.discount[:-1])
    r = fin.monthly_rate
    growth = 1.0 + r
    draw_weight = float(np.sum(spend * growth ** (-np.arange(t_end, dtype=np.float64))))
    start_f = start.astype(xp.float64)
    balance_start = fin.debt_share * overrun * draw_weight * growth**start_f
    io = fin.interest_only_months
    payment = balance_start / annuity_due(r, fin.term_months - io)
    interest = balance_start * (r / growth)  # paid at the start of a month: the balance holds
    scheduled = xp.minimum(k_end, fin.term_months)  # payments made before T
    paid = xp.where(lost, xp.minimum(scheduled, exit_), scheduled)
    paid_io = xp.minimum(paid, io)  # of them, interest only
    dsum = prefix(xp.asarray(cal.discount[:-1]), xp=xp)
    df_start = (1.0 + scenario.discount_rate) ** (-start_f / 12.0)
    service = payment * df_start * (gather(dsum, paid, xp=xp) - gather(dsum, paid_io, xp=xp))
    service += interest * df_start * gather(dsum, paid_io, xp=xp)
    left = xp.where(
        scheduled <= io, balance_start, payment * annuity_due(r, fin.term_months - scheduled)
    )
    not_started = start >= t_end
    left = xp.where(not_started, fin.debt_share * overrun * draw_weight * growth**t_end, left)
    left = xp.where(lost, 0.0, xp.maximum(left, 0.0))
    owed = cal.discount[-1] * left
    return equity + service + owed, owed
