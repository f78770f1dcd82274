"""Hosted AI on a site (docs/model.md, Hosted AI) and the size of its project debt.

Timing, in months of the horizon: construction starts in January of the build
year (``cs``); capex is spent evenly over ``lead_time_months`` from then; rent starts
at ``S = cs + lead + delay`` with a random whole-month delay. Relative month
``s = t - S`` counts from first rent.

The tenancy is a renewal process to the horizon (:func:`tenancy`): the first tenant
pays contract rent until it exits (geometric, from ``annual_default_prob``) or its term
ends; renewals and successors pay the scenario's market rent for ``relet_term_years``
each, with vacancies, re-let capex and further exits between them, and at a re-let the
operator may return the hall's grid MW to mining instead. The first tenant renews at its
own escalated price times the market factor; a successor pays the successor price (the
rent of a hall the landlord fits out) times the factor, and where the first tenant funded
part of the hall and takes it when it leaves, the landlord funds that share again for the
first successor. With ``non_recourse`` debt the equity may hand the hall to the lenders
at an exit or non-renewal: debt service stops, nothing is owed at T, and the equity loses
the hall's later income and terminal value. MW returned to mining buy the ASIC generation
of that month (:attr:`Fleet.asic_cost_usd_mw`) but are then counted at the site's
running-fleet efficiency, a simplification that slightly understates them.

Everything here is per MW of critical IT or per USD of capex at today's prices, so the
NPV of an option is a linear combination of these per-scenario coefficients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from types import ModuleType
from typing import Any

import numpy as np

from .cloud import (
    GpuLoan,
    cloud_cost_per_month,
    is_cloud,
    milestone_terminated,
    renewal_base,
)
from .debt import Loan
from .factor import factor_level, loaded, loaded_uniform
from .forward import monthly_curve
from .params import ContractParams, Portfolio, SiteAIParams, SiteParams
from .prefix import gather, prefix
from .rent_index import RentIndex, rent_index
from .rng import (
    STREAM_DELAY,
    STREAM_EXIT,
    STREAM_OVERRUN,
    STREAM_RELET,
    STREAM_RENEWAL,
    entity_stream,
    uniforms4,
)
from .shell import hall_upkeep_usd_mw_month, is_powered_shell, upkeep_share

NEVER = 10**6  # an exit month that never comes [month]


def capex_usd(ai: SiteAIParams, it_mw: Any) -> Any:
    """Capex of ``it_mw`` of IT at today's prices: retrofit MW first, then new build [USD]."""
    retrofit = np.minimum(it_mw, ai.retrofit_mw)
    return retrofit * ai.retrofit_capex_usd_mw + (it_mw - retrofit) * ai.build_capex_usd_mw


def build_cost_index(scenario: Portfolio, build_year: int) -> float:
    """What a USD of AI capex at today's prices costs when construction starts in
    ``build_year``: ``market.ai.capex_inflation`` (omitted: ``cost_inflation``) compounded
    to its January [-]."""
    months = construction_start(scenario, build_year)
    m = scenario.market
    rate = m.cost_inflation if m.ai.capex_inflation is None else m.ai.capex_inflation
    return float((1.0 + rate) ** (months / 12.0))


def nominal_capex_usd(scenario: Portfolio, site: SiteParams, it_mw: Any, build_year: int) -> Any:
    """Capex of ``it_mw`` of IT built from ``build_year``, in the money of then [USD]."""
    return capex_usd(site.ai, it_mw) * build_cost_index(scenario, build_year)


def full_build_capex_usd_mw(ai: SiteAIParams) -> float:
    """Capex per IT MW of the site's whole AI build at today's prices (its retrofit and
    new-build mix) [USD/MW]: what per-MW rules of a hall (the walk-away, the refinancing
    and the debt a target coverage allows) read where the option's own mix would make
    them non-linear."""
    return float(capex_usd(ai, ai.max_it_mw)) / max(ai.max_it_mw, 1e-12)


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
    factor_level : array (N,) or None
        The common factor's level G (kernels/factor.py) where an exit or the overrun loads.
    """

    delay_months: Any
    overrun: Any
    factor_level: Any = None  # G (N,): the common factor's level; None when nothing loads
    rent_index: Any = None  # (N, T) the AI rent index of the chunk; None: its expected path
    # the tenancy draws of the site's contracts, made once per chunk and shared by the
    # build years (:meth:`memo`); they depend on the site, contract and scenario only
    _memo: dict = field(default_factory=dict, compare=False, repr=False)

    def memo(self, key: tuple, make: Callable[[], Any]) -> Any:
        """``make()`` the first time ``key`` is asked for on these scenarios, then kept."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]


def site_draws(
    scenario: Portfolio,
    site_index: int,
    scenarios: Any,
    *,
    xp: ModuleType,
    rent_index: Any = None,
) -> SiteDraws:
    """The site's delay, overrun and factor-level draws on ``scenarios``; ``rent_index``
    (N, T) is the chunk's AI rent index (None: its expected path)."""
    ai = scenario.sites[site_index].ai
    seed, loads = scenario.simulation.seed, scenario.market.factor
    level = (
        factor_level(seed, scenarios, xp=xp)
        if loads.tenant_exit != 0.0 or loads.capex_overrun != 0.0
        else None
    )
    u0, u1, _, _ = uniforms4(seed, scenarios, 0, entity_stream(STREAM_OVERRUN, site_index), xp=xp)
    sig = ai.capex_overrun_volatility if ai is not None else 0.0
    z = _normal_from(u0, u1, xp)
    if level is not None:  # larger overruns where the factor is low
        z = loaded(z, -level, loads.capex_overrun)
    overrun = xp.exp(sig * z - 0.5 * sig * sig)
    ud = uniforms4(seed, scenarios, 0, entity_stream(STREAM_DELAY, site_index), xp=xp)[0]
    mean = ai.delay_mean_months if ai is not None else 0.0
    delay = xp.floor(-mean * xp.log(ud) + 0.5).astype(xp.int64)
    return SiteDraws(delay, overrun, level, rent_index)


def exit_uniform(draws: SiteDraws, scenario: Portfolio, u: Any, u_other: Any, *, xp) -> Any:
    """The uniform an exit is drawn from, its normal score loading on the factor's level
    (``market.factor.tenant_exit``: a one-factor Gaussian copula, so exits cluster where the
    factor is low); ``u`` itself at loading 0. ``u_other`` is the draw's second uniform
    (Box-Muller gives the normal score of the pair)."""
    loading = scenario.market.factor.tenant_exit
    if loading == 0.0 or draws.factor_level is None:
        return u
    return loaded_uniform(u, _normal_from(u, u_other, xp), -draws.factor_level, loading, xp=xp)


def exit_months(
    scenario: Portfolio,
    site_index: int,
    contract_index: int,
    scenarios: Any,
    *,
    xp: ModuleType,
    draws: SiteDraws | None = None,
) -> Any:
    """Relative month of the tenant's exit per scenario (``NEVER`` when none) [month]; with
    ``draws``, the exit loads on their factor level (:func:`exit_uniform`)."""
    c = scenario.contracts[contract_index]
    entity = site_index * max(1, len(scenario.contracts)) + contract_index
    u, u_other, _, _ = uniforms4(
        scenario.simulation.seed, scenarios, 0, entity_stream(STREAM_EXIT, entity), xp=xp
    )
    if draws is not None:
        u = exit_uniform(draws, scenario, u, u_other, xp=xp)
    return _exit_from(u, c.annual_default_prob, xp)


def _renewal_draws(scenario, draws, scenarios, k, stream, xp):
    """The k-th end of a tenancy's uniforms: whether it renews, and its next exit's (loading
    on the factor's level like the first exit)."""
    u_renew, u_exit, _, u_other = uniforms4(scenario.simulation.seed, scenarios, k, stream, xp=xp)
    return u_renew, exit_uniform(draws, scenario, u_exit, u_other, xp=xp)


def _exit_from(u: Any, annual_prob: float, xp: ModuleType) -> Any:
    """Relative month of an exit at ``annual_prob`` a year from uniforms ``u`` (geometric
    in months; ``NEVER`` when none) [month]."""
    if annual_prob <= 0:
        return xp.full(u.shape, NEVER, dtype=xp.int64)
    if annual_prob >= 1:
        return xp.zeros(u.shape, dtype=xp.int64)
    log_survive = np.log1p(-annual_prob) / 12.0  # ln(1 - monthly hazard)
    if log_survive > -1e-300:  # a hazard this small never fires (and ln(u) / it overflows)
        return xp.full(u.shape, NEVER, dtype=xp.int64)
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
    """Deterministic rent of one contract per IT MW by relative month (numpy), for the
    horizon and the longest lease a buyer at T can see beyond it.

    Attributes
    ----------
    contract_rent : ndarray (M,) [USD/MW-month]
        Escalated price times the ramp share.
    market_base : ndarray (M,) [USD/MW-month]
        Escalated price: the first tenant's renewals pay it times the market factor (a
        cloud customer's renewal leases the hall as colocation: the successor base).
    successor_base : ndarray (M,) [USD/MW-month]
        Escalated successor price: successors (and their renewals) pay it times the factor.
    term_months : int
    """

    contract_rent: np.ndarray
    market_base: np.ndarray
    successor_base: np.ndarray
    term_months: int

    @property
    def term_revenue(self) -> float:
        """The first term's contract rent, undiscounted [USD/MW]."""
        return float(self.contract_rent[: self.term_months].sum())

    def prefixes(self, weight: np.ndarray, xp: ModuleType) -> tuple[Any, Any, Any]:
        """Prefix sums over the first ``len(weight)`` relative months of ``weight`` times the
        contract rent, the market base and the successor base (backend arrays)."""
        n = len(weight)
        rents = (self.contract_rent, self.market_base, self.successor_base)
        return tuple(xp.asarray(prefix(weight * rent[:n], xp=np)) for rent in rents)


def schedule_months(contract: ContractParams, months: int) -> int:
    """Relative months a RentSchedule covers: the horizon, then the longest lease that can
    run past it, its vacancy, and a year to capitalise."""
    longest = int(np.ceil(12 * max(contract.term_years, contract.relet_term_years)))
    return months + longest + contract.relet_months + 13


def rent_schedule(contract: ContractParams, months: int) -> RentSchedule:
    """Rent per MW of IT by relative month from first rent (:func:`schedule_months` of
    them for a horizon of ``months``)."""
    length = schedule_months(contract, months)
    s = np.arange(length)
    growth = (1.0 + contract.escalator) ** (s // 12)
    base = 1000.0 * contract.price_usd_kw_month * growth
    successor = contract.successor_price_usd_kw_month
    ramp = np.ones(length)
    edge = 0
    for phase in contract.ramp:
        ramp[edge : edge + phase.months] = phase.share
        edge += phase.months
    successor_base = base if successor is None else 1000.0 * successor * growth
    return RentSchedule(
        base * ramp,
        renewal_base(contract, base, successor_base),
        successor_base,
        int(round(12 * contract.term_years)),
    )


def term_revenue_usd_mw(contract: ContractParams) -> float:
    """The first term's scheduled rent (a cloud contract's revenue) per IT MW, undiscounted,
    before any index [USD/MW]."""
    return rent_schedule(contract, 0).term_revenue


def ramp_months(contract: ContractParams) -> int:
    """Months from first rent until the whole hall pays rent [months]."""
    return sum(phase.months for phase in contract.ramp)


def stabilised_noi_usd_mw_month(
    scenario: Portfolio, site: SiteParams, contract: ContractParams, build_year: int
) -> float:
    """The contract's NOI per IT MW in the month its rent stabilises, planned (no delay,
    power at the market's mean price): what a lender sizes the debt on [USD/MW-month]."""
    ai = site.ai
    stable = ramp_months(contract)
    at = construction_start(scenario, build_year) + ai.lead_time_months + stable
    rent = 1000.0 * contract.price_usd_kw_month * (1.0 + contract.escalator) ** (stable // 12)
    if contract.price_follows_index:  # signed at the index's expected level then
        cs = construction_start(scenario, build_year)
        rent *= float(np.exp(scenario.market.ai.rent_drift * cs / 12.0))
    prices = (1.0 + scenario.market.cost_inflation) ** (at / 12.0)
    cost = hall_upkeep_usd_mw_month(contract, ai) * prices
    if not contract.power_pass_through:
        pm = scenario.power_markets[site.market]
        price = pm.price_usd_mwh
        if pm.forward_usd_mwh is not None:  # the forward's level that month
            price = float(monthly_curve(pm.forward_usd_mwh, at + 1)[at])
        cost += ai.pue * (price * 730.0 + pm.transmission_4cp_usd_kw_year * 1000.0 / 12)
    if is_cloud(contract):
        gpu_loan = GpuLoan.of(scenario, contract)
        payment = 0.0 if gpu_loan is None else gpu_loan.payment
        cost += cloud_cost_per_month(contract, prices, rent, payment)
    return rent - cost


def loan_per_capex(
    scenario: Portfolio,
    site: SiteParams,
    contract: ContractParams,
    build_year: int,
    overrun: Any,
    *,
    xp: ModuleType = np,
) -> Any:
    """Project debt drawn per USD of the option's capex at today's prices [-].

    ``loan_to_cost`` of the landlord's capex as spent (inflated to the build year, times
    the overrun); with ``target_dscr``, at most what the stabilised contract NOI carries
    at that coverage, per IT MW of the site's whole build (planned: balance at the planned
    first rent). ``overrun`` 1 gives the planned loan.
    """
    loan = Loan.of(scenario, contract)
    share = loan.landlord_share * loan.loan_to_cost * build_cost_index(scenario, build_year)
    drawn = share * overrun
    if loan.target_dscr is None or not loan.borrows:
        return drawn
    noi = stabilised_noi_usd_mw_month(scenario, site, contract, build_year)
    cs = construction_start(scenario, build_year)
    spend = spend_months(cs, site.ai.lead_time_months, max(scenario.months, cs + 1))
    planned_start = cs + site.ai.lead_time_months
    growth = float(loan.growth(spend, planned_start, np)) / max(float(spend.sum()), 1e-300)
    cap_usd_mw = loan.sized_balance(noi) / growth
    full = full_build_capex_usd_mw(site.ai)
    if full <= 0:
        return drawn  # nothing to borrow against: the loan is 0 whatever the cap
    return xp.minimum(drawn, cap_usd_mw / full)


def equity_per_capex(
    scenario: Portfolio, site: SiteParams, contract: ContractParams, build_year: int
) -> float:
    """Planned equity capex per USD of the option's capex at today's prices: the landlord's
    share at the prices of the build year, less the planned loan (no overrun) [-]."""
    landlord = (1.0 - contract.tenant_funded_share) * build_cost_index(scenario, build_year)
    return landlord - float(loan_per_capex(scenario, site, contract, build_year, 1.0))


def spend_months(cs: int, lead: int, months: int) -> np.ndarray:
    """Share of capex spent in each month of the horizon (sums to <= 1) [-]."""
    share = np.zeros(months)
    if lead <= 0:
        if cs < months:
            share[cs] = 1.0
        return share
    share[cs : min(months, cs + lead)] = 1.0 / lead
    return share


def construction_start(scenario: Portfolio, build_year: int) -> int:
    """Calendar month index of January of ``build_year`` (0 if before the start)."""
    return max(0, (build_year - scenario.start_year) * 12 - (int(scenario.start[5:]) - 1))


@dataclass(frozen=True)
class Lease:
    """One tenancy after the first: market rent over relative months [start, end).

    Both are clipped to the horizon (``start == end == rent_months`` when there is none).
    ``fitout`` marks a successor tenant, whose hall paid the re-let capex at ``start`` (a
    renewal pays none); ``own`` a renewal of the first tenant (its rent follows the
    contract's own price, a successor's the successor price); ``refund`` the first
    successor after a first tenant that took the share of the hall it funded: the landlord
    funds that share again at ``start``. ``factor`` multiplies its rent tables: the
    contract's market-rent factor x the AI rent index when it starts
    (:meth:`rent_index.RentIndex.remark`).
    """

    start: Any
    end: Any
    fitout: Any
    own: Any
    refund: Any
    factor: Any  # what its rent tables are multiplied by: market factor x the index then


# what runs at the horizon (Tenancy.tail_kind)
TAIL_CONTRACT, TAIL_OWN, TAIL_SUCCESSOR, TAIL_VACANT = 0, 1, 2, 3


@dataclass(frozen=True)
class Tenancy:
    """The tenancy timeline of one (site, build year, contract), per scenario.

    Computed once by :func:`tenancy` and read by the fast path (siteopt.kernels.coefficients),
    the month-by-month reference and cash flows (siteopt.kernels.cashflows) and the AI event
    totals (siteopt.kernels.reduce). Arrays are (N,) on the backend.

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
    contract_months : array of int64
        Relative month the first tenant's contract rent ends (its exit, or the term).
    leases : tuple of Lease
        The renewals and successor tenancies that follow, in order, at market rent.
    vacant_at_end : array of bool
        At T the hall waits for a successor (who will need the re-let capex).
    vacant_after : array of int64
        Months that wait still runs after T (0 when none).
    market_rent_factor : array [-]
        Market rent as a multiple of the escalated price (mean 1).
    lost : array of bool
        The equity handed the hall to the lenders (non-recourse debt) at ``lost_at``.
    lost_at : array of int64
        Relative month the lenders take the hall (``NEVER`` when they do not).
    to_mining : array of bool
        At a re-let the hall's MW mine again instead (mining earns more that month).
    ai_after : array of bool
        Neither lost nor mining: the hall is the equity's AI hall at the horizon.
    hall_end : array of int64
        Relative month the hall stops costing opex: lost, mining again, or the horizon.
    rent_start, contract_end : array of int64
        ``start`` and ``start + contract_months`` as calendar months clipped to T.
    mining_from : array of int64
        Calendar month the hall's MW mine again (T when they do not).
    original_end : array of int64
        Relative month the first tenant (with its renewals) leaves (``NEVER`` while it
        holds the hall at T).
    tail_kind : array of int64
        What runs at T: TAIL_CONTRACT (the first contract), TAIL_OWN (a renewal of the
        first tenant), TAIL_SUCCESSOR (a successor's lease) or TAIL_VACANT.
    tail_end : array of int64
        Relative month the lease running at T ends by its terms (a buyer at T sees the
        term, not the exit the scenario draws later); for TAIL_VACANT the month the
        successor would start.
    refund_at_end : array of bool
        TAIL_VACANT where the successor to come needs the first tenant's share funded
        again.
    index : RentIndex
        The AI rent index as these leases meet it (kernels/rent_index.py).
    tail_factor : array [-]
        The factor of the market lease running at T (:meth:`market_factor` at its start).
    terminated : array of bool
        A cloud customer terminated at a delivery later than its milestone (an exit at
        relative month 0; kernels/cloud.py).
    """

    schedule: RentSchedule
    construction: int
    start: Any
    rent_months: Any
    contract_months: Any
    leases: tuple[Lease, ...]
    vacant_at_end: Any
    vacant_after: Any
    market_rent_factor: Any
    lost: Any
    lost_at: Any
    to_mining: Any
    ai_after: Any
    hall_end: Any
    rent_start: Any
    contract_end: Any
    mining_from: Any
    original_end: Any
    tail_kind: Any
    tail_end: Any
    refund_at_end: Any
    index: RentIndex  # the AI rent index as these leases meet it
    tail_factor: Any  # the factor of the market lease running at T (TAIL_OWN/SUCCESSOR)
    terminated: Any = None  # a cloud customer terminated at a late delivery (kernels/cloud.py)

    @property
    def signed(self) -> Any:
        """What the contract rent table is multiplied by (N,): the index at signing, or 1."""
        return self.index.signed

    def remark(self, rel: Any) -> Any:
        """The index's re-mark of the rent tables for a market lease signed at relative
        month ``rel`` (:meth:`rent_index.RentIndex.remark`)."""
        return self.index.remark(rel)

    def rented(self, months: int, xp: ModuleType) -> list[tuple[Any, Any]]:
        """Calendar spans [a, b) clipped to ``months`` in which the hall earns rent: the
        first contract, then each lease."""
        spans = [(self.rent_start, self.contract_end)]
        for lease in self.leases:
            spans.append(
                (
                    xp.minimum(self.start + lease.start, months),
                    xp.minimum(self.start + lease.end, months),
                )
            )
        return spans


RELET_CAPEX_SHARE = 0.05  # re-let capex per IT MW as a share of the build capex, by default


def relet_capex_usd_mw(contract: ContractParams, ai: SiteAIParams) -> float:
    """Fit-out a successor tenant needs from the landlord, per MW of IT, at today's prices
    [USD/MW]; by default a share of the build capex (of the landlord's share of it in a
    powered shell, whose successors fit out the rest)."""
    if contract.relet_capex_usd_mw is not None:
        return contract.relet_capex_usd_mw
    return RELET_CAPEX_SHARE * upkeep_share(contract) * ai.build_capex_usd_mw


def takes_improvements(contract: ContractParams) -> bool:
    """The first tenant funded part of the hall and takes it when it leaves, so that the
    landlord funds that share again for the first successor (never in a powered shell,
    whose successors fit out their own: kernels/shell.py)."""
    return (
        contract.tenant_funded_share > 0
        and not contract.improvements_revert
        and not is_powered_shell(contract)
    )


def refund_usd_mw(contract: ContractParams, ai: SiteAIParams) -> float:
    """What the landlord funds again per IT MW, at today's prices, for the first successor
    after a tenant that took its share of the hall (0 when it stays) [USD/MW]: that share
    of the site's whole build (:func:`full_build_capex_usd_mw`)."""
    if not takes_improvements(contract):
        return 0.0
    return contract.tenant_funded_share * full_build_capex_usd_mw(ai)


def refit_reserve_usd_mw_month(scenario: Portfolio, contract: ContractParams) -> float:
    """The landlord's refit spread over its cycle, at today's prices: what a buyer sets
    aside for it [USD/MW IT-month] (0 without refits; its share in a powered shell)."""
    b = scenario.build
    if b.refit_years <= 0:
        return 0.0
    return upkeep_share(contract) * b.refit_capex_usd_mw / (12.0 * b.refit_years)


def refit_months(scenario: Portfolio, site: SiteParams, build_year: int, end: int) -> range:
    """Calendar months before ``end`` a hall's refits fall due: every ``refit_years`` from
    energisation (none without refits)."""
    b = scenario.build
    if b.refit_years <= 0 or b.refit_capex_usd_mw <= 0:
        return range(0)
    step = max(1, round(12 * b.refit_years))
    on = energisation(scenario, site, build_year)
    return range(on + step, end, step)


def refit_share(contract: ContractParams, ten: Tenancy, due: int, xp: ModuleType) -> Any:
    """Per scenario, the share of a refit due in calendar month ``due`` the landlord pays:
    0 unless the hall is the equity's then; 1 - ``tenant_funded_share`` while the first
    tenant holds a hall whose funded share it takes, and always in a powered shell; else 1."""
    alive = (ten.start <= due) & (due < ten.start + ten.hall_end)
    share = upkeep_share(contract)
    if takes_improvements(contract):
        held = due - ten.start < ten.original_end
        share = xp.where(held, 1.0 - contract.tenant_funded_share, 1.0)
    return xp.where(alive, share, 0.0)


def tenancy(
    scenario: Portfolio,
    site_index: int,
    contract_index: int,
    build_year: int,
    draws: SiteDraws,
    margin: Any,
    ai_power: Any,
    asic_cost_usd_mw: Any,
    scenarios: Any,
    *,
    xp: ModuleType,
) -> Tenancy:
    """The tenancy timeline of converting a site in ``build_year`` for a contract.

    A renewal process to the horizon (docs/model.md, Tenancy): the first tenant pays
    contract rent until it exits or its term ends. At the end of a term the tenant renews
    with ``renewal_prob`` at market rent; otherwise, and after any exit, the hall stands
    empty ``relet_months`` and a successor pays market rent after the re-let capex (and,
    the first one after a tenant that took its funded share, that share again), or the
    hall's MW mine again where mining earns more that month. Every renewal and successor
    lasts ``relet_term_years``; a successor exits at ``successor_default_prob`` a year, a
    renewing tenant at its own rate. With non-recourse debt, at each exit or non-renewal
    while the loan runs the equity hands the hall to the lenders when keeping it is worth
    less than the loan it would still owe (:class:`_KeepValue`).

    Parameters
    ----------
    draws : SiteDraws
        The site's delay and overrun draws on ``scenarios``.
    margin : array (N, T) [USD/MW-month]
        Mining operating margin per grid MW (for the re-let choice).
    ai_power : array (N, T) [USD/IT MW-month]
        Grid power of one IT MW; read only when the contract leaves it with the miner.
    asic_cost_usd_mw : array (T,) or (N, T) [USD/MW]
        Price of the ASIC generation bought in each month.
    """
    site, contract = scenario.sites[site_index], scenario.contracts[contract_index]
    ai, t_end = site.ai, margin.shape[1]
    loan = Loan.of(scenario, contract)
    cs = construction_start(scenario, build_year)
    start = cs + ai.lead_time_months + draws.delay_months
    k_end = xp.clip(t_end - start, 0, t_end)
    sched = rent_schedule(contract, t_end)
    mrf = draws.memo(
        ("market rent", contract_index),
        lambda: market_rent_factor(scenario, contract_index, scenarios, xp=xp),
    )
    index = rent_index(scenario, contract, draws.rent_index, start, cs, start.shape[0], xp=xp)
    relet = Relet(scenario, contract, ai, site, sched, mrf, margin, ai_power, asic_cost_usd_mw,
                  start, xp, index)  # fmt: skip
    walk_away = loan.non_recourse and loan.borrows  # the equity holds that option
    keep = (
        _KeepValue(
            scenario,
            site,
            contract,
            build_year,
            loan,
            sched,
            mrf,
            ai_power,
            start,
            k_end,
            draws,
            xp,
            index,
        )  # fmt: skip
        if walk_away
        else None
    )
    takes = takes_improvements(contract)

    first_exit = draws.memo(
        ("exit", contract_index),
        lambda: exit_months(scenario, site_index, contract_index, scenarios, xp=xp, draws=draws),
    )
    terminated = draws.memo(
        ("milestone", contract_index),
        lambda: milestone_terminated(
            scenario, site_index, contract_index, draws.delay_months, scenarios, xp=xp
        ),
    )
    first_exit = xp.where(terminated, 0, first_exit)  # a cloud customer leaving at delivery
    exited = first_exit < sched.term_months
    end = xp.where(exited, first_exit, sched.term_months)  # of the tenancy running now
    c_end = end
    original = xp.ones(k_end.shape, dtype=bool)  # the first tenant holds the hall
    active = end < k_end  # a tenancy ends inside the horizon
    never = xp.full(k_end.shape, NEVER, dtype=xp.int64)
    vacant_at_end = xp.zeros(k_end.shape, dtype=bool)  # a successor is still to come at T
    vacant_after = xp.zeros(k_end.shape, dtype=xp.int64)  # months a vacancy runs past T
    refund_at_end = xp.zeros(k_end.shape, dtype=bool)
    lost, lost_at = xp.zeros(k_end.shape, dtype=bool), never
    to_mining, mining_at = xp.zeros(k_end.shape, dtype=bool), never
    original_end = never
    tail_kind = xp.full(k_end.shape, TAIL_CONTRACT, dtype=xp.int64)
    tail_end = xp.full(k_end.shape, sched.term_months, dtype=xp.int64)
    tail_factor = xp.ones(k_end.shape)
    entity = site_index * max(1, len(scenario.contracts)) + contract_index
    stream = entity_stream(STREAM_RENEWAL, entity)
    relet_term = max(1, int(round(12 * contract.relet_term_years)))
    leases: list[Lease] = []
    for k in range(t_end + 1):  # a tenancy lasts at least a month unless all exit at once
        if not bool(xp.any(active)):
            break
        u_renew, u_exit = draws.memo(
            ("renewal", contract_index, k),
            lambda k=k: _renewal_draws(scenario, draws, scenarios, k, stream, xp),
        )
        renews = active & ~exited & (u_renew < contract.renewal_prob)
        leaves = active & ~renews  # an exit or a non-renewal
        first_out = leaves & original  # the first tenant leaves now
        original_end = xp.where(first_out, end, original_end)
        refund = first_out & takes  # the successor needs the tenant's share again
        if keep is not None:
            walk = leaves & keep.walks(end, refund)
            lost, lost_at = lost | walk, xp.where(walk, end, lost_at)
            leaves, active = leaves & ~walk, active & ~walk
        nxt = xp.where(renews, end, end + contract.relet_months)
        back = leaves & (nxt < k_end) & relet.mining_beats_ai(nxt, refund)
        to_mining, mining_at = to_mining | back, xp.where(back, nxt, mining_at)
        active = active & ~back
        own = original & renews
        original = original & renews
        hazard_exit = xp.where(
            original,
            _exit_from(u_exit, contract.annual_default_prob, xp),
            _exit_from(u_exit, contract.successor_default_prob, xp),
        )
        exited = hazard_exit < relet_term
        end = nxt + xp.where(exited, hazard_exit, relet_term)
        a = xp.where(active, xp.minimum(nxt, k_end), k_end)
        b = xp.where(active, xp.minimum(end, k_end), k_end)
        fitout = active & leaves & (nxt < k_end)
        factor = mrf * index.remark(xp.minimum(nxt, k_end))
        leases.append(Lease(a, b, fitout, active & own, fitout & refund, factor))
        pending = active & leaves & (nxt >= k_end)
        vacant_at_end = vacant_at_end | pending
        vacant_after = xp.where(pending, nxt - k_end, vacant_after)
        refund_at_end = xp.where(pending, refund, refund_at_end)
        started = active & (nxt < k_end)
        tail_end = xp.where(started, nxt + relet_term, xp.where(pending, nxt, tail_end))
        tail_factor = xp.where(started, factor, tail_factor)
        kind = xp.where(own, TAIL_OWN, TAIL_SUCCESSOR)
        tail_kind = xp.where(started, kind, xp.where(pending, TAIL_VACANT, tail_kind))
        active = active & (end < k_end)
    hall_end = xp.where(lost, lost_at, xp.where(to_mining, mining_at, k_end))
    return Tenancy(
        schedule=sched,
        construction=cs,
        start=start,
        rent_months=k_end,
        contract_months=c_end,
        leases=tuple(leases),
        vacant_at_end=vacant_at_end,
        vacant_after=vacant_after,
        market_rent_factor=mrf,
        lost=lost,
        lost_at=lost_at,
        to_mining=to_mining,
        ai_after=~lost & ~to_mining,
        hall_end=xp.minimum(hall_end, k_end),
        rent_start=xp.minimum(start, t_end),
        contract_end=xp.minimum(start + c_end, t_end),
        mining_from=xp.where(to_mining, xp.minimum(start + mining_at, t_end), t_end),
        original_end=original_end,
        tail_kind=tail_kind,
        tail_end=tail_end,
        refund_at_end=refund_at_end,
        index=index,
        tail_factor=tail_factor,
        terminated=terminated,
    )


@dataclass(frozen=True)
class Relet:
    """The choice at a re-let: a successor tenant, or the hall's grid MW mine again."""

    scenario: Portfolio
    contract: ContractParams
    ai: SiteAIParams
    site: SiteParams
    sched: RentSchedule
    mrf: Any
    margin: Any
    ai_power: Any
    asic_cost_usd_mw: Any
    start: Any
    xp: ModuleType
    index: RentIndex  # the AI rent index: a re-let signs at the market then

    @cached_property
    def _successor_base(self) -> Any:
        return self.xp.asarray(self.sched.successor_base)  # once per tenancy, not per lease

    @cached_property
    def _asic_cost(self) -> Any:
        return self.xp.asarray(self.asic_cost_usd_mw)

    def mining_beats_ai(self, s: Any, refund: Any) -> Any:
        """At relative month ``s``, does a grid MW mining earn more this month than the hall
        re-let? The ASICs and the re-let capex (with the first tenant's share funded again
        where ``refund``) count spread over their lives; costs at that month's prices."""
        xp, ai, c = self.xp, self.ai, self.contract
        t = xp.clip(self.start + s, 0, self.margin.shape[1] - 1)
        s = xp.clip(s, 0, len(self.sched.successor_base) - 1)
        prices = (1.0 + self.scenario.market.cost_inflation) ** (t / 12.0)
        fit = relet_capex_usd_mw(c, ai) + xp.where(refund, refund_usd_mw(c, ai), 0.0)
        fitout = fit * prices / (12.0 * c.relet_term_years)
        opex = hall_upkeep_usd_mw_month(c, ai) * prices
        ai_noi = self.mrf * self.index.remark(s) * self._successor_base[s] - opex - fitout
        if not c.power_pass_through:
            ai_noi = ai_noi - gather(self.ai_power, t, xp=xp)
        refresh_months = 12.0 * self.site.mining.asic_refresh_years
        asic = gather(self._asic_cost, t, xp=xp) / refresh_months
        mining = ai.pue * (gather(self.margin, t, xp=xp) - asic)
        return mining > ai_noi


class _KeepValue:
    """The equity's walk-away test under non-recourse debt, per IT MW, on what is known.

    At relative month ``e`` (an exit or a non-renewal) while the loan runs, keeping the
    hall is worth, after income tax, its re-let at this scenario's successor rent from
    ``e + relet_months`` (no further exits), less its costs from ``e`` and the re-let
    capex, the grid power at its last 12 months' level where the miner pays it, plus its
    stabilised market value at T; handing it over saves the loan's balance then, per IT MW
    of the site's whole build. All discounted to the first rent at the unlevered rate. A
    refinancing is the sponsor's: after the term there is nothing to hand over.
    """

    def __init__(
        self, scenario, site, contract, build_year, loan, sched, mrf, ai_power, start, k_end,
        draws, xp, index,
    ):  # fmt: skip
        ai = site.ai
        self.index = index
        self.xp, self.loan, self.k_end, self.mrf, self.start = xp, loan, k_end, mrf, start
        self.v = contract.relet_months
        self.fit = relet_capex_usd_mw(contract, ai)
        self.refund = refund_usd_mw(contract, ai)
        self.multiple = scenario.financing.exit_multiple_ai
        self.after_tax = 1.0 - scenario.tax.income_rate
        t_end = ai_power.shape[1]
        g = 1.0 + scenario.market.cost_inflation
        self.prices = g ** (start.astype(xp.float64) / 12.0)  # at the first rent
        self.g_month = g ** (1.0 / 12.0)
        self.cost = hall_upkeep_usd_mw_month(contract, ai)
        self.reserve = refit_reserve_usd_mw_month(scenario, contract)
        d = (1.0 + scenario.discount_rate) ** (-np.arange(t_end + 1) / 12.0)
        grown = d * self.g_month ** np.arange(t_end + 1)
        self.d = xp.asarray(d)
        self.dsum = xp.asarray(prefix(d[:-1], xp=np))
        self.cost_pv = xp.asarray(prefix(grown[:-1], xp=np))
        self.rent_pv = xp.asarray(prefix(d[:-1] * sched.successor_base[:t_end], xp=np))
        self.base = xp.asarray(sched.successor_base)
        self.power = None if contract.power_pass_through else prefix(ai_power, xp=xp)
        cs = construction_start(scenario, build_year)
        spend = spend_months(cs, ai.lead_time_months, t_end)
        per_capex = loan_per_capex(scenario, site, contract, build_year, draws.overrun, xp=xp)
        drawn_per_mw = per_capex * full_build_capex_usd_mw(ai)
        self.balance = drawn_per_mw * loan.growth(spend, start, xp)

    def walks(self, e: Any, refund: Any) -> Any:
        """Does the equity hand the hall over at relative month ``e``? (Read only where a
        tenancy ends inside the horizon.)"""
        xp, k_end = self.xp, self.k_end
        e = xp.minimum(e, k_end)
        on = xp.minimum(e + self.v, k_end)
        market = self.mrf * self.index.remark(on)  # the re-let signs at the market then
        rent = market * (self.rent_pv[k_end] - self.rent_pv[on])
        level = 0.0
        if self.power is not None:
            t = xp.clip(self.start + e, 1, self.power.shape[1] - 1)
            lo = xp.maximum(t - 12, 0)
            level = (gather(self.power, t, xp=xp) - gather(self.power, lo, xp=xp)) / (t - lo)
            rent = rent - level * (self.dsum[k_end] - self.dsum[on])
        costs = self.cost * self.prices * (self.cost_pv[k_end] - self.cost_pv[e])
        fit = self.fit + xp.where(refund, self.refund, 0.0)
        prices_on = self.prices * self.g_month ** on.astype(xp.float64)
        fitout = xp.where(on < k_end, fit * prices_on * self.d[on], 0.0)
        # the hall at T, let at market: the multiple on its stabilised NOI less the reserve
        prices_t = self.prices * self.g_month ** k_end.astype(xp.float64)
        noi = market * self.base[k_end] - (self.cost + self.reserve) * prices_t - level
        wait = xp.maximum(e + self.v - k_end, 0)
        to_let = xp.where(e + self.v >= k_end, wait * noi + fit * prices_t, 0.0)
        terminal = self.d[k_end] * xp.maximum(12.0 * self.multiple * noi - to_let, 0.0)
        hall = self.after_tax * (rent - costs - fitout + terminal)
        debt = xp.where(
            e < self.loan.term_months, self.loan.balance_before(self.balance, e, xp), 0.0
        )
        return (debt > 0) & (hall < debt * self.d[e])
