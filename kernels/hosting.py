"""Hosted AI on a site (docs/model.md) and its financing (§5).

Timing, in months of the horizon: construction starts in January of the build
year (``cs``); capex is spent evenly over ``lead_time_months`` from then; rent starts
at ``S = cs + lead + delay`` with a random whole-month delay. Relative month
``s = t - S`` counts from first rent.

The tenancy is a renewal process to the horizon (:func:`tenancy`): the first tenant
pays contract rent until it exits (geometric, from ``annual_default_prob``) or its term
ends; renewals and successors pay the scenario's market rent for ``relet_term_years``
each, with vacancies, re-let capex and further exits between them, and at a re-let the
operator may return the hall's grid MW to mining instead. With ``non_recourse`` debt
the equity may hand the hall to the lenders at an exit or non-renewal: debt service
stops, nothing is owed at T, and the equity loses the hall's later income and terminal
value. MW returned to mining buy the ASIC generation of that month
(:attr:`Fleet.asic_cost_usd_mw`) but are then counted at the site's running-fleet
efficiency, a simplification that slightly understates them.

Everything here is per MW of critical IT or per USD of nominal capex, so the NPV
of an option is a linear combination of these per-scenario coefficients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from .params import ContractParams, Portfolio, SiteAIParams, SiteParams
from .prefix import gather, prefix
from .rng import (
    STREAM_DELAY,
    STREAM_EXIT,
    STREAM_OVERRUN,
    STREAM_RELET,
    STREAM_RENEWAL,
    entity_stream,
    uniforms4,
)

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
    # the tenancy draws of the site's contracts, made once per chunk and shared by the
    # build years (:meth:`memo`); they depend on the site, contract and scenario only
    _memo: dict = field(default_factory=dict, compare=False, repr=False)

    def memo(self, key: tuple, make: Callable[[], Any]) -> Any:
        """``make()`` the first time ``key`` is asked for on these scenarios, then kept."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]


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
    return _exit_from(u, c.annual_default_prob, xp)


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

    def balance_at_first_rent(
        self, construction: int, lead: int, overrun: Any, start: Any, months: int, xp: ModuleType
    ) -> Any:
        """Debt per USD of nominal capex just before the first payment: drawn with the
        capex, its interest capitalised until the first rent (``start``, calendar)."""
        spend = spend_months(construction, lead, months)
        growth = 1.0 + self.monthly_rate
        draw_weight = float(np.sum(spend * growth ** (-np.arange(months, dtype=np.float64))))
        return self.debt_share * overrun * draw_weight * growth ** start.astype(xp.float64)

    def payments(self, balance: Any) -> tuple[Any, Any]:
        """The level payment and the interest-only payment on ``balance`` at the first rent."""
        r = self.monthly_rate
        payment = balance / annuity_due(r, self.term_months - self.interest_only_months)
        return payment, balance * (r / (1.0 + r))  # paid at a month's start: the balance holds

    def service_pv(self, balance: Any, a: Any, b: Any, dsum: Any, xp: ModuleType) -> Any:
        """PV at the first rent of the payments due in relative months [a, b) (within the
        term); ``dsum`` is the prefix sum of the discount factors by relative month."""
        io, term = self.interest_only_months, self.term_months
        payment, interest = self.payments(balance)
        a, b = xp.minimum(a, term), xp.minimum(xp.maximum(a, b), term)
        pv = interest * (dsum[xp.minimum(b, io)] - dsum[xp.minimum(a, io)])
        return pv + payment * (dsum[b] - dsum[xp.minimum(xp.maximum(a, io), b)])

    def balance_before(self, balance: Any, k: Any, xp: ModuleType) -> Any:
        """Balance owed just before relative month ``k``'s payment (0 from the term on)."""
        k = xp.minimum(k, self.term_months)
        payment, _ = self.payments(balance)
        rest = payment * annuity_due(self.monthly_rate, self.term_months - k)
        return xp.where(k <= self.interest_only_months, balance, rest)

    def debt_left_pv(
        self, balance: Any, e: Any, k_end: Any, dsum: Any, d: Any, xp: ModuleType
    ) -> Any:
        """PV at the first rent of the service due from relative month ``e`` to the horizon
        (``k_end``) and of the balance then owed."""
        owed = xp.where(k_end < self.term_months, self.balance_before(balance, k_end, xp), 0.0)
        return self.service_pv(balance, e, k_end, dsum, xp) + d[k_end] * xp.maximum(owed, 0.0)


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
class Lease:
    """One tenancy after the first: market rent over relative months [start, end).

    Both are clipped to the horizon (``start == end == rent_months`` when there is none);
    ``fitout`` marks a successor tenant, whose hall paid the re-let capex at ``start``
    (a renewal pays none).
    """

    start: Any
    end: Any
    fitout: Any


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
        Market rent as a multiple of the contract price (mean 1).
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
    """Fit-out a successor tenant needs, per MW of IT [USD/MW]."""
    if contract.relet_capex_usd_mw is not None:
        return contract.relet_capex_usd_mw
    return RELET_CAPEX_SHARE * ai.build_capex_usd_mw


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

    A renewal process to the horizon (docs/model.md section 4): the first tenant pays
    contract rent until it exits or its term ends. At the end of a term the tenant renews
    with ``renewal_prob`` at market rent; otherwise, and after any exit, the hall stands
    empty ``relet_months`` and a successor pays market rent after the re-let capex, or the
    hall's MW mine again where mining earns more that month. Every renewal and successor
    lasts ``relet_term_years``; a successor exits at ``successor_default_prob`` a year, a
    renewing tenant at its own rate. With non-recourse debt, at each exit or non-renewal
    the equity hands the hall to the lenders when keeping it is worth less than the debt
    it would still service (:func:`_keep_value`).

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
    fin = Financing.of(scenario, contract)
    cs = construction_start(scenario, build_year)
    start = cs + ai.lead_time_months + draws.delay_months
    k_end = xp.clip(t_end - start, 0, t_end)
    sched = rent_schedule(contract, t_end)
    mrf = draws.memo(
        ("market rent", contract_index),
        lambda: market_rent_factor(scenario, contract_index, scenarios, xp=xp),
    )
    relet = Relet(contract, ai, site, sched, mrf, margin, ai_power, asic_cost_usd_mw, start, xp)
    walk_away = fin.non_recourse and fin.debt_share > 0  # the equity holds that option
    keep = (
        _KeepValue(scenario, contract, ai, fin, sched, mrf, ai_power, cs, start, k_end, draws, xp)
        if walk_away
        else None
    )

    first_exit = draws.memo(
        ("exit", contract_index),
        lambda: exit_months(scenario, site_index, contract_index, scenarios, xp=xp),
    )
    exited = first_exit < sched.term_months
    end = xp.where(exited, first_exit, sched.term_months)  # of the tenancy running now
    c_end = end
    original = xp.ones(k_end.shape, dtype=bool)  # the first tenant holds the hall
    active = end < k_end  # a tenancy ends inside the horizon
    never = xp.full(k_end.shape, NEVER, dtype=xp.int64)
    vacant_at_end = xp.zeros(k_end.shape, dtype=bool)  # a successor is still to come at T
    vacant_after = xp.zeros(k_end.shape, dtype=xp.int64)  # months a vacancy runs past T
    lost, lost_at = xp.zeros(k_end.shape, dtype=bool), never
    to_mining, mining_at = xp.zeros(k_end.shape, dtype=bool), never
    entity = site_index * max(1, len(scenario.contracts)) + contract_index
    stream = entity_stream(STREAM_RENEWAL, entity)
    relet_term = max(1, int(round(12 * contract.relet_term_years)))
    leases: list[Lease] = []
    for k in range(t_end + 1):  # a tenancy lasts at least a month unless all exit at once
        if not bool(xp.any(active)):
            break
        u_renew, u_exit, _, _ = draws.memo(
            ("renewal", contract_index, k),
            lambda k=k: uniforms4(scenario.simulation.seed, scenarios, k, stream, xp=xp),
        )
        renews = active & ~exited & (u_renew < contract.renewal_prob)
        leaves = active & ~renews  # an exit or a non-renewal
        if keep is not None:
            walk = leaves & keep.walks(end)
            lost, lost_at = lost | walk, xp.where(walk, end, lost_at)
            leaves, active = leaves & ~walk, active & ~walk
        nxt = xp.where(renews, end, end + contract.relet_months)
        back = leaves & (nxt < k_end) & relet.mining_beats_ai(nxt)
        to_mining, mining_at = to_mining | back, xp.where(back, nxt, mining_at)
        active = active & ~back
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
        leases.append(Lease(a, b, active & leaves & (nxt < k_end)))
        pending = active & leaves & (nxt >= k_end)
        vacant_at_end = vacant_at_end | pending
        vacant_after = xp.where(pending, nxt - k_end, vacant_after)
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
    )


@dataclass(frozen=True)
class Relet:
    """The choice at a re-let: a successor tenant, or the hall's grid MW mine again."""

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

    def mining_beats_ai(self, s: Any) -> Any:
        """At relative month ``s``, does a grid MW mining earn more this month than the hall
        re-let? The ASICs and the re-let capex count spread over their lives."""
        xp, ai = self.xp, self.ai
        t = xp.clip(self.start + s, 0, self.margin.shape[1] - 1)
        s = xp.clip(s, 0, len(self.sched.market_base) - 1)
        fitout = relet_capex_usd_mw(self.contract, ai) / (12.0 * self.contract.relet_term_years)
        ai_noi = self.mrf * xp.asarray(self.sched.market_base)[s] - ai.opex_usd_mw_month - fitout
        if not self.contract.power_pass_through:
            ai_noi = ai_noi - gather(self.ai_power, t, xp=xp)
        refresh_months = 12.0 * self.site.mining.asic_refresh_years
        asic = gather(xp.asarray(self.asic_cost_usd_mw), t, xp=xp) / refresh_months
        mining = ai.pue * (gather(self.margin, t, xp=xp) - asic)
        return mining > ai_noi


class _KeepValue:
    """The equity's walk-away test under non-recourse debt, per IT MW, on what is known.

    At relative month ``e`` (an exit or a non-renewal), keeping the hall is worth its
    re-let at this scenario's market rent from ``e + relet_months`` (no further exits),
    less opex from ``e``, the re-let capex, the grid power at its last 12 months' level
    where the miner pays it, plus its terminal value; handing it over is worth the debt
    service still due from ``e`` and the balance owed at T, per IT MW of the site's full
    build (its retrofit and new-build mix). All discounted to the first rent.
    """

    def __init__(
        self, scenario, contract, ai, fin, sched, mrf, ai_power, cs, start, k_end, draws, xp
    ):
        self.xp, self.fin, self.k_end, self.mrf = xp, fin, k_end, mrf
        self.v = contract.relet_months
        self.opex = ai.opex_usd_mw_month
        self.fit = relet_capex_usd_mw(contract, ai)
        self.multiple = scenario.financing.exit_multiple_ai
        t_end = ai_power.shape[1]
        d = (1.0 + scenario.discount_rate) ** (-np.arange(t_end + 1) / 12.0)
        self.d = xp.asarray(d)
        self.dsum = xp.asarray(prefix(d[:-1], xp=np))
        self.rent_pv = xp.asarray(prefix(d[:-1] * sched.market_base, xp=np))
        self.rent_raw = xp.asarray(prefix(sched.market_base, xp=np))
        self.start = start
        self.power = None if contract.power_pass_through else prefix(ai_power, xp=xp)
        capex_mw = float(capex_usd(ai, ai.max_it_mw)) / max(ai.max_it_mw, 1e-12)
        self.balance = capex_mw * fin.balance_at_first_rent(
            cs, ai.lead_time_months, draws.overrun, start, t_end, xp
        )

    def walks(self, e: Any) -> Any:
        """Does the equity hand the hall over at relative month ``e``? (Read only where a
        tenancy ends inside the horizon.)"""
        xp, k_end = self.xp, self.k_end
        e = xp.minimum(e, k_end)
        on = xp.minimum(e + self.v, k_end)
        rent = self.mrf * (self.rent_pv[k_end] - self.rent_pv[on])
        level = 0.0
        if self.power is not None:
            t = xp.clip(self.start + e, 1, self.power.shape[1] - 1)
            lo = xp.maximum(t - 12, 0)
            level = (gather(self.power, t, xp=xp) - gather(self.power, lo, xp=xp)) / (t - lo)
            rent = rent - level * (self.dsum[k_end] - self.dsum[on])
        opex = self.opex * (self.dsum[k_end] - self.dsum[xp.minimum(e, k_end)])
        fitout = xp.where(on < k_end, self.fit * self.d[on], 0.0)
        # the hall at T as a buyer prices it (coefficients._terminal_ai): let at market rent,
        # less the rest of a vacancy past T and its fit-out
        w0 = xp.maximum(k_end - 12, 0)
        last = xp.maximum(k_end - 1, 0)
        rate = self.mrf * (self.rent_raw[last + 1] - self.rent_raw[last]) - level
        noi = self.mrf * (self.rent_raw[k_end] - self.rent_raw[w0])
        noi = noi - (self.opex + level) * (k_end - w0)
        wait = xp.maximum(e + self.v - k_end, 0)
        to_let = xp.where(e + self.v >= k_end, wait * rate + self.fit, 0.0)
        terminal = self.d[k_end] * xp.maximum(self.multiple * noi - to_let, 0.0)
        hall = rent - opex - fitout + terminal
        debt = self.fin.debt_left_pv(self.balance, e, k_end, self.dsum, self.d, xp)
        return (debt > 0) & (hall < debt)
