"""The value of a hall at the horizon as a buyer prices it (docs/model.md, Exit value).

A buyer at T sees the lease running then by its terms, not the exit a scenario draws
later. The hall is worth:

* the lease's remaining NOI to the end of its term (rent less opex and SG&A at the
  prices of each month, and the grid power at its last 12 months' level where the
  landlord pays it), discounted at the contract's ``lease_discount_rate`` (the tenant's
  credit);
* plus the reversion at the lease's end, discounted at ``discount_rate``: with
  ``renewal_prob`` the tenant renews at market rent, else the hall stands empty
  ``relet_months`` and a successor pays the successor rent after the re-let capex (and
  the first tenant's share of the hall again where it took it); a let hall is worth
  ``exit_multiple_ai`` times its annual market NOI less a refit reserve;
* less the refits that fall due before the lease ends.

A hall empty at T is the reversion of the successor to come. Never below 0; 0 unless the
hall is the equity's AI hall at T. Everything is per IT MW, in the money of the month it
is paid, and the scenario's market rent factor multiplies every market rent.

This is the fast path: sums over months are read from prefix tables and geometric series.
The month-by-month reference (siteopt.kernels.cashflows) sums the same months one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .hosting import (
    TAIL_CONTRACT,
    TAIL_OWN,
    TAIL_VACANT,
    Tenancy,
    refit_months,
    refit_reserve_usd_mw_month,
    refund_usd_mw,
    relet_capex_usd_mw,
    takes_improvements,
)
from .params import Portfolio
from .prefix import gather, geometric
from .shell import hall_upkeep_usd_mw_month, upkeep_share


@dataclass(frozen=True)
class ExitTerms:
    """The numbers a buyer at T uses for one (site, build year, contract) (floats).

    Attributes
    ----------
    lease_month, unlevered_month : float
        Monthly discount factors at the lease's rate and at ``discount_rate`` [-].
    price_month : float
        Monthly growth of costs (``cost_inflation``) [-].
    cost_usd_mw_month : float
        Opex and SG&A of an IT MW at today's prices [USD/MW-month].
    reserve_usd_mw_month : float
        The refit reserve at today's prices [USD/MW-month].
    multiple : float
        ``exit_multiple_ai`` on annual market NOI [x].
    renewal_prob : float
    relet_months : int
    fit_usd_mw, refund_usd_mw : float
        Re-let capex, and the first tenant's share funded again, at today's prices [USD/MW].
    takes : bool
        The first tenant takes its share of the hall when it leaves.
    landlord_share : float
        1 - tenant_funded_share: the landlord's part of a refit while the first tenant
        holds a hall whose funded share it takes.
    refits : tuple of int
        Calendar months refits fall due (every ``refit_years`` from energisation) [month].
    refit_usd_mw : float
        A refit at today's prices [USD/MW].
    """

    lease_month: float
    unlevered_month: float
    price_month: float
    cost_usd_mw_month: float
    reserve_usd_mw_month: float
    multiple: float
    renewal_prob: float
    relet_months: int
    fit_usd_mw: float
    refund_usd_mw: float
    takes: bool
    landlord_share: float
    refits: tuple[int, ...]
    refit_usd_mw: float


def exit_terms(scenario: Portfolio, site_index: int, contract_index: int, build_year: int,
               horizon_extra: int) -> ExitTerms:  # fmt: skip
    """The ExitTerms of a conversion; refits up to ``horizon_extra`` months past T."""
    site, contract = scenario.sites[site_index], scenario.contracts[contract_index]
    ai, b = site.ai, scenario.build
    lease_rate = contract.lease_discount_rate
    if lease_rate is None:
        lease_rate = scenario.discount_rate
    refits = tuple(refit_months(scenario, site, build_year, scenario.months + horizon_extra))
    return ExitTerms(
        lease_month=(1.0 + lease_rate) ** (-1.0 / 12.0),
        unlevered_month=(1.0 + scenario.discount_rate) ** (-1.0 / 12.0),
        price_month=(1.0 + scenario.market.cost_inflation) ** (1.0 / 12.0),
        cost_usd_mw_month=hall_upkeep_usd_mw_month(contract, ai),
        reserve_usd_mw_month=refit_reserve_usd_mw_month(scenario, contract),
        multiple=scenario.financing.exit_multiple_ai,
        renewal_prob=contract.renewal_prob,
        relet_months=contract.relet_months,
        fit_usd_mw=relet_capex_usd_mw(contract, ai),
        refund_usd_mw=refund_usd_mw(contract, ai),
        takes=takes_improvements(contract),
        landlord_share=1.0 - contract.tenant_funded_share,
        refits=refits,
        refit_usd_mw=upkeep_share(contract) * b.refit_capex_usd_mw,
    )


def reversion(terms: ExitTerms, renew_base: Any, successor_base: Any, prices: Any, mrf: Any,
              power: Any, refund: Any, xp: ModuleType) -> Any:  # fmt: skip
    """Value, in the month a lease ends, of what follows it: a renewal at market rent with
    ``renewal_prob``, else a vacancy and a successor [USD/MW].

    ``renew_base``: the market base then (the first tenant's own, or the successor's);
    ``successor_base``: the successor base when the vacancy ends; ``prices``: the cost
    index when the lease ends; ``refund``: the successor needs the first tenant's share
    funded again."""
    upkeep = terms.cost_usd_mw_month + terms.reserve_usd_mw_month
    renew = mrf * renew_base - upkeep * prices - power
    relet = relet_value(terms, successor_base, prices, terms.relet_months, mrf, power, refund,
                        xp)  # fmt: skip
    p = terms.renewal_prob
    return p * 12.0 * terms.multiple * renew + (1.0 - p) * relet


def relet_value(terms: ExitTerms, successor_base: Any, prices: Any, wait: Any, mrf: Any,
                power: Any, refund: Any, xp: ModuleType) -> Any:  # fmt: skip
    """Value, in the month a hall stands empty, of ``wait`` empty months (its opex and
    SG&A paid) and then a successor: the multiple on its stabilised NOI (rent at
    ``successor_base``, costs and the refit reserve at the prices then) less its re-let
    capex (and the first tenant's share again where ``refund``) [USD/MW]. ``prices``: the
    cost index in the month it stands empty."""
    g, v = terms.price_month, terms.unlevered_month
    upkeep = terms.cost_usd_mw_month + terms.reserve_usd_mw_month
    then = prices * g**wait
    noi = mrf * successor_base - upkeep * then - power
    fit = (terms.fit_usd_mw + xp.where(refund, terms.refund_usd_mw, 0.0)) * then
    empty = terms.cost_usd_mw_month * prices * geometric(g * v, wait, xp)
    return v**wait * (12.0 * terms.multiple * noi - fit) - empty


def hall_exit_value(
    scenario: Portfolio,
    terms: ExitTerms,
    ten: Tenancy,
    power: Any,
    *,
    xp: ModuleType,
    tail_extra: Any = 0.0,
) -> Any:
    """The hall's value at T per IT MW, pre-tax, as the module docstring prices it: 0 unless
    it is the equity's AI hall then, never below 0 [USD/MW].

    ``power``: the grid power of an IT MW a month at its last 12 months' level where the
    landlord pays it, else 0 [USD/MW-month]. ``tail_extra``: the value at T of what a
    buyer takes over with the first contract where it runs then (a cloud contract's
    flows, kernels.cloud.tail_value).
    """
    sched, months = ten.schedule, scenario.months
    u, v, g = terms.lease_month, terms.unlevered_month, terms.price_month
    k, start, mrf = ten.rent_months, ten.start, ten.market_rent_factor
    offset = (start + k - months).astype(xp.float64)  # months from T to relative month k
    kind = ten.tail_kind
    end = xp.maximum(ten.tail_end, k)
    prices_k = g ** (start + k).astype(xp.float64)
    tables = sched.prefixes(u ** np.arange(len(sched.contract_rent), dtype=np.float64), xp)
    own = xp.asarray(sched.market_base)
    successor = xp.asarray(sched.successor_base)
    # the lease's remaining NOI at the tenant's rate, from k to its end
    contract_part = gather(tables[0], end, xp=xp) - gather(tables[0], k, xp=xp)
    own_part = gather(tables[1], end, xp=xp) - gather(tables[1], k, xp=xp)
    succ_part = gather(tables[2], end, xp=xp) - gather(tables[2], k, xp=xp)
    rent = xp.where(
        kind == TAIL_CONTRACT,
        ten.signed * contract_part,
        ten.tail_factor * xp.where(kind == TAIL_OWN, own_part, succ_part),
    ) / u ** k.astype(xp.float64)
    left = end - k
    costs = terms.cost_usd_mw_month * prices_k * geometric(g * u, left, xp)
    lease = u**offset * (rent - costs - power * geometric(u, left, xp))
    # what follows the lease, and the refits due before it ends
    first = kind <= TAIL_OWN  # the first tenant holds the hall at T
    prices_end = prices_k * g ** left.astype(xp.float64)
    last = len(sched.successor_base) - 1
    at = xp.minimum(end, last)
    # a renewal or a successor signs at the market then: the index's re-mark of the table
    renew_base = xp.where(first, own[at], successor[at]) * ten.remark(at)
    then = xp.minimum(end + terms.relet_months, last)
    successor_then = successor[then] * ten.remark(then)
    after = reversion(terms, renew_base, successor_then, prices_end, mrf, power,
                      first & terms.takes, xp)  # fmt: skip
    running = lease + v ** (offset + left) * after - _refits(terms, ten, first, end, months, xp)
    running = running + xp.where(kind == TAIL_CONTRACT, tail_extra, 0.0)
    # a hall empty at T: the successor to come
    wait = ten.vacant_after.astype(xp.float64)
    due = xp.minimum(k + ten.vacant_after, last)
    coming = successor[due] * ten.remark(due)
    vacant = v**offset * relet_value(terms, coming, prices_k, wait, mrf, power,
                                     ten.refund_at_end, xp)  # fmt: skip
    value = xp.where(kind == TAIL_VACANT, vacant, running)
    return xp.where(ten.ai_after, xp.maximum(value, 0.0), 0.0)


def _refits(terms: ExitTerms, ten: Tenancy, first: Any, end: Any, months: int,
            xp: ModuleType) -> Any:  # fmt: skip
    """PV at T of the refits due from T until the lease running at T ends [USD/MW]."""
    total = 0.0
    share = xp.where(first & terms.takes, terms.landlord_share, 1.0)
    for due in terms.refits:
        if due < months:
            continue
        inside = due < ten.start + end
        cost = terms.refit_usd_mw * terms.price_month**due * terms.unlevered_month ** (due - months)
        total = total + xp.where(inside, share * cost, 0.0)
    return total
