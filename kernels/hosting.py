"""Hosted AI on a site (docs/model.md) and its financing (§5).

Timing, in months of the horizon: construction starts in January of the build
year (``cs``); capex is spent evenly over ``lead_time_months`` from then; rent starts
at ``S = cs + lead + delay`` with a random whole-month delay. Relative month
``s = t - S`` counts from first rent. The tenant may exit at relative month ``e``
(geometric, from ``annual_default_prob``); the hall stands empty for
``relet_months`` and is then re-let at the scenario's market rent, or the
operator returns its grid MW to mining, whichever earns more that month. After the
term the hall re-lets at market rent. One exit per scenario at most.

With ``non_recourse`` debt an exit hands the hall to the lender: debt service stops,
nothing is owed at T, and the equity loses the hall's re-let income and terminal value
(the walk-away that non-recourse buys). MW returned to mining buy the ASIC generation
of that month (:attr:`Fleet.asic_cost_usd_mw`) but are then counted at the site's
running-fleet efficiency, a simplification that slightly understates them.

Everything here is per MW of critical IT or per USD of nominal capex, so the NPV
of an option is a linear combination of these per-scenario coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .params import ContractParams, Portfolio, SiteAIParams, SiteParams
from .prefix import gather
from .rng import STREAM_DELAY, STREAM_EXIT, STREAM_OVERRUN, STREAM_RELET, entity_stream, uniforms4

NEVER = 10**6  # an exit month that never comes [month]


def capex_usd(ai: SiteAIParams, it_mw: Any) -> Any:
    """Nominal capex of ``it_mw`` of IT: retrofit MW first, then new build [USD]."""
    retrofit = np.minimum(it_mw, ai.retrofit_mw)
    return retrofit * ai.retrofit_capex_usd_mw + (it_mw - retrofit) * ai.build_capex_usd_mw


def mining_left_mw(site: SiteParams, it_mw: Any) -> Any:
    """Grid MW of mining that a conversion of ``it_mw`` leaves [MW]."""
    pue = site.ai.pue if site.ai is not None else 1.0
    return np.clip(np.minimum(site.mining.mw, site.interconnect_mw - it_mw * pue), 0.0, None)


def mining_while_built_mw(site: SiteParams, it_mw: Any) -> Any:
    """Grid MW that mine from construction start to energisation [MW].

    The retrofit MW stop when construction starts (their building is in use); the newly
    built MW only when the AI load needs their power. Never below what the conversion
    leaves for good (:func:`mining_left_mw`).
    """
    retrofit = np.minimum(it_mw, site.ai.retrofit_mw)
    return np.maximum(mining_left_mw(site, it_mw), site.mining.mw - retrofit * site.ai.pue)


def energisation(scenario: Portfolio, site: SiteParams, build_year: int) -> int:
    """Calendar month the hall first draws its power: construction start plus the lead time
    (rent may start later, after a random delay)."""
    return construction_start(scenario, build_year) + site.ai.lead_time_months


def _normal_from(u0: Any, u1: Any, xp: ModuleType) -> Any:
    return xp.sqrt(-2.0 * xp.log(u0)) * xp.cos(2.0 * np.pi * u1)


@dataclass(frozen=True)
class SiteDraws:
    """Per-scenario AI risks of one site, shared by all its options (backend arrays).

    Attributes
    ----------
    delay_months : array (N,) of int64
    overrun : array (N,) [-]
        Lognormal capex factor with mean 1.
    """

    delay_months: Any
    overrun: Any


def site_draws(
    scenario: Portfolio, site_index: int, scenarios: Any, *, xp: ModuleType
) -> SiteDraws:
    ai = scenario.sites[site_index].ai
    seed = scenario.simulation.seed
    u0, u1, _, _ = uniforms4(seed, scenarios, 0, entity_stream(STREAM_OVERRUN, site_index), xp=xp)
    sig = ai.capex_overrun_volatility if ai is not None else 0.0
    overrun = xp.exp(sig * _normal_from(u0, u1, xp) - 0.5 * sig * sig)
    ud = uniforms4(seed, scenarios, 0, entity_stream(STREAM_DELAY, site_index), xp=xp)[0]
    mean = ai.delay_mean_months if ai is not None else 0.0
    delay = xp.floor(-mean * xp.log(ud) + 0.5).astype(xp.int64)
    return SiteDraws(delay, overrun)


def exit_months(
    scenario: Portfolio, site_index: int, contract_index: int, scenarios: Any, *, xp: ModuleType
) -> Any:
    """Relative month of the tenant's exit per scenario (``NEVER`` when none) [month]."""
    c = scenario.contracts[contract_index]
    entity = site_index * max(1, len(scenario.contracts)) + contract_index
    u = uniforms4(
        scenario.simulation.seed, scenarios, 0, entity_stream(STREAM_EXIT, entity), xp=xp
    )[0]
    if c.annual_default_prob <= 0:
        return xp.full(scenarios.shape, NEVER, dtype=xp.int64)
    if c.annual_default_prob >= 1:
        return xp.zeros(scenarios.shape, dtype=xp.int64)
    log_survive = np.log1p(-c.annual_default_prob) / 12.0  # ln(1 - monthly hazard)
    if log_survive > -1e-300:  # a hazard this small never fires (and ln(u) / it overflows)
        return xp.full(scenarios.shape, NEVER, dtype=xp.int64)
    e = xp.floor(xp.log(u) / log_survive)
    return xp.minimum(e, NEVER).astype(xp.int64)


def market_rent_factor(
    scenario: Portfolio, contract_index: int, scenarios: Any, *, xp: ModuleType
) -> Any:
    """Market rent as a multiple of the contract price, per scenario (mean 1) [-]."""
    c = scenario.contracts[contract_index]
    u0, u1, _, _ = uniforms4(
        scenario.simulation.seed, scenarios, 0, entity_stream(STREAM_RELET, contract_index), xp=xp
    )
    sig = c.market_rent_volatility
    return xp.exp(sig * _normal_from(u0, u1, xp) - 0.5 * sig * sig)


@dataclass(frozen=True)
class RentSchedule:
    """Deterministic rent of one contract per IT MW by relative month (numpy).

    Attributes
    ----------
    contract_rent : ndarray (M,) [USD/MW-month]
        Escalated price times the ramp share.
    market_base : ndarray (M,) [USD/MW-month]
        Escalated price (times the scenario's market factor when re-let).
    term_months : int
    """

    contract_rent: np.ndarray
    market_base: np.ndarray
    term_months: int


def rent_schedule(contract: ContractParams, months: int) -> RentSchedule:
    """Rent per MW of IT for ``months`` relative months from first rent."""
    s = np.arange(months)
    base = 1000.0 * contract.price_usd_kw_month * (1.0 + contract.escalator) ** (s // 12)
    ramp = np.ones(months)
    edge = 0
    for phase in contract.ramp:
        ramp[edge : edge + phase.months] = phase.share
        edge += phase.months
    return RentSchedule(base * ramp, base, int(round(12 * contract.term_years)))


@dataclass(frozen=True)
class Financing:
    """Per-USD-of-nominal-capex financing terms of one (site, contract).

    The debt draws with capex, capitalises its interest until the first rent, then pays
    interest only for ``interest_only_months`` and the rest as an annuity-due over the
    remaining months of the term (a bullet is interest only until the term's last month,
    then one payment of the balance). All payments are made at the start of their month.
    """

    equity_share: float  # (1 - tenant share) * (1 - loan to cost)
    debt_share: float  # (1 - tenant share) * loan to cost
    monthly_rate: float
    term_months: int
    non_recourse: bool
    interest_only_months: int = 0  # payments of interest only from the first rent

    @classmethod
    def of(cls, scenario: Portfolio, contract: ContractParams) -> Financing:
        debt = contract.financing or scenario.financing.debt
        funded = 1.0 - contract.tenant_funded_share
        term = max(1, int(round(12 * debt.term_years)))
        if debt.amortization == "bullet":
            interest_only = term - 1
        else:
            interest_only = min(debt.interest_only_months, term - 1)
        return cls(
            funded * (1.0 - debt.loan_to_cost),
            funded * debt.loan_to_cost,
            (1.0 + debt.rate) ** (1.0 / 12.0) - 1.0,
            term,
            debt.non_recourse,
            interest_only,
        )


def spend_months(cs: int, lead: int, months: int) -> np.ndarray:
    """Share of capex spent in each month of the horizon (sums to <= 1) [-]."""
    share = np.zeros(months)
    if lead <= 0:
        if cs < months:
            share[cs] = 1.0
        return share
    share[cs : min(months, cs + lead)] = 1.0 / lead
    return share


def annuity_due(rate: float, n: Any) -> Any:
    """Value at the first payment of ``n`` monthly payments of 1, the first paid at once.

    sum_{i < n} (1 + rate)^-i. Debt amortises from the first rent month: payment
    A = balance / annuity_due(rate, term), and the balance owed just before payment k
    is A * annuity_due(rate, term - k).
    """
    if rate == 0:
        return n * 1.0
    return (1.0 - (1.0 + rate) ** (-n * 1.0)) * (1.0 + rate) / rate


def construction_start(scenario: Portfolio, build_year: int) -> int:
    """Calendar month index of January of ``build_year`` (0 if before the start)."""
    return max(0, (build_year - scenario.start_year) * 12 - (int(scenario.start[5:]) - 1))


@dataclass(frozen=True)
class Tenancy:
    """The tenancy timeline of one (site, build year, contract), per scenario.

    Computed once by :func:`tenancy` and read by the fast path (siteopt.kernels.coefficients),
    the month-by-month reference and cash flows (siteopt.kernels.cashflows) and the AI event
    totals (siteopt.kernels.valuation). Arrays are (N,) on the backend.

    Relative months count from first rent; calendar months count from the horizon start.

    Attributes
    ----------
    schedule : RentSchedule
        The contract's rent per IT MW by relative month.
    construction : int
        Calendar month construction starts (January of the build year).
    start : array of int64
        First rent [calendar month, may be >= T].
    rent_months : array of int64
        Relative months of the horizon from first rent, ``clip(T - start, 0, T)``.
    exit : array of int64
        Relative month of the tenant's exit (``NEVER`` when none).
    contract_months : array of int64
        Relative month contract rent ends (the exit, or the term).
    relet_after : array of int64
        Relative month the hall earns market rent or mines again (exit plus the empty
        months, or the term).
    market_rent_factor : array [-]
        Market rent as a multiple of the contract price (mean 1).
    lost : array of bool
        Non-recourse debt and an exit inside the horizon: the lender takes the hall.
    to_mining : array of bool
        At re-let, the hall's MW mine again (mining earns more that month).
    ai_after : array of bool
        After ``relet_after`` the hall earns market rent (not lost, not mining).
    rent_start, contract_end, relet : array of int64
        ``start``, ``start + contract_months`` and ``start + relet_after`` as calendar
        months clipped to T.
    """

    schedule: RentSchedule
    construction: int
    start: Any
    rent_months: Any
    exit: Any
    contract_months: Any
    relet_after: Any
    market_rent_factor: Any
    lost: Any
    to_mining: Any
    ai_after: Any
    rent_start: Any
    contract_end: Any
    relet: Any


def tenancy(
    scenario: Portfolio,
    site_index: int,
    contract_index: int,
    build_year: int,
    draws: SiteDraws,
    margin: Any,
    ai_power: Any,
    asic_cost_usd_mw: np.ndarray,
    scenarios: Any,
    *,
    xp: ModuleType,
) -> Tenancy:
    """The tenancy timeline of converting a site in ``build_year`` for a contract.

    Parameters
    ----------
    draws : SiteDraws
        The site's delay and overrun draws on ``scenarios``.
    margin : array (N, T) [USD/MW-month]
        Mining operating margin per grid MW (for the re-let choice).
    ai_power : array (N, T) [USD/IT MW-month]
        Grid power of one IT MW; read only when the contract leaves it with the miner.
    asic_cost_usd_mw : ndarray (T,) [USD/MW]
        Price of the ASIC generation bought in each month.
    """
    site, contract = scenario.sites[site_index], scenario.contracts[contract_index]
    ai, t_end = site.ai, margin.shape[1]
    non_recourse = Financing.of(scenario, contract).non_recourse
    cs = construction_start(scenario, build_year)
    start = cs + ai.lead_time_months + draws.delay_months
    exit_ = exit_months(scenario, site_index, contract_index, scenarios, xp=xp)
    sched = rent_schedule(contract, t_end)
    exited = exit_ < sched.term_months
    c_end = xp.where(exited, exit_, sched.term_months)
    m_start = xp.where(exited, exit_ + contract.relet_months, sched.term_months)
    mrf = market_rent_factor(scenario, contract_index, scenarios, xp=xp)
    lost = exited & non_recourse & (start + exit_ < t_end)
    a2 = xp.minimum(start + m_start, t_end)
    beats = _mining_beats_ai(
        margin, ai_power, sched, ai, site, asic_cost_usd_mw, mrf, m_start, a2,
        not contract.power_pass_through, xp=xp,
    )  # fmt: skip
    to_mining = exited & ~lost & (a2 < t_end) & beats
    return Tenancy(
        schedule=sched,
        construction=cs,
        start=start,
        rent_months=xp.clip(t_end - start, 0, t_end),
        exit=exit_,
        contract_months=c_end,
        relet_after=m_start,
        market_rent_factor=mrf,
        lost=lost,
        to_mining=to_mining,
        ai_after=~lost & ~to_mining,
        rent_start=xp.minimum(start, t_end),
        contract_end=xp.minimum(start + c_end, t_end),
        relet=a2,
    )


def _mining_beats_ai(
    margin, ai_power, sched, ai, site, asic_cost_usd_mw, mrf, m_start, a2, pays_power, *, xp
):
    """At re-let, does a grid MW mining earn more this month than the hall re-let?"""
    t = xp.minimum(a2, margin.shape[1] - 1)
    s = xp.minimum(m_start, len(sched.market_base) - 1)
    ai_noi = mrf * xp.asarray(sched.market_base)[s] - ai.opex_usd_mw_month
    if pays_power:
        ai_noi = ai_noi - gather(ai_power, t, xp=xp)
    refresh_months = 12.0 * site.mining.asic_refresh_years
    asic = xp.asarray(asic_cost_usd_mw)[t] / refresh_months
    mining = ai.pue * (gather(margin, t, xp=xp) - asic)
    return mining > ai_noi
