"""Selling or sharing a site (docs/model.md, Sale and joint venture).

A site's ``sale`` block may offer two deals besides the site's own options:

* **a sale**: the option ``sell``, signed at the start. The sale closes
  ``months_to_close`` later with ``close_prob`` (one draw per site and scenario,
  :data:`.rng.STREAM_SALE`); then the buyer pays ``price_usd_mw`` per MW of
  interconnect and takes the whole site with its fleet and its PPA, and the miner's flows
  there stop. The gain over ``tax_basis_usd_mw`` is taxed at closing. If it does not close,
  the site keeps hashing as it is. The ASICs bought before closing keep their deductions
  on their schedule, as the MW a conversion stops do.
* **a joint venture**: each AI option has a ``-jv`` twin in which a partner takes
  ``jv_share`` of the hall: its capex, its debt, its flows and its exit value. The mining
  the conversion leaves stays the miner's alone.

The fast path (:func:`sold_npv`) and the monthly reference (:func:`sale_monthly`) read the
same draw and the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .losses import in_year
from .params import Portfolio, SiteParams
from .rng import STREAM_SALE, entity_stream, uniforms4

SELL = "sell"  # the option label of a site's sale
JV_SUFFIX = "-jv"  # appended to an AI option's label for its joint-venture twin


def offers_sale(site: SiteParams) -> bool:
    """A buyer offers a price for the site."""
    return site.sale is not None and site.sale.price_usd_mw is not None


def jv_share(site: SiteParams) -> float | None:
    """The partner's share of a conversion in the site's joint venture; None: no JV."""
    return None if site.sale is None else site.sale.jv_share


def close_month(site: SiteParams) -> int:
    """The month of the horizon in which the site's sale closes."""
    return site.sale.months_to_close


def proceeds_usd(site: SiteParams) -> float:
    """What the buyer pays at closing [USD]."""
    return site.sale.price_usd_mw * site.interconnect_mw


def taxable_gain_usd(site: SiteParams) -> float:
    """The price less the site's tax basis [USD] (a loss where negative)."""
    return (site.sale.price_usd_mw - site.sale.tax_basis_usd_mw) * site.interconnect_mw


def after_tax_proceeds_usd(scenario: Portfolio, site: SiteParams) -> float:
    """The proceeds less the tax on the gain, as if the gain were taxed alone [USD]."""
    return proceeds_usd(site) - scenario.tax.income_rate * taxable_gain_usd(site)


def sale_closes(scenario: Portfolio, site_index: int, scenarios: Any, *, xp: ModuleType) -> Any:
    """Whether the site's sale closes, per scenario ((N,) bool)."""
    site = scenario.sites[site_index]
    u = uniforms4(
        scenario.simulation.seed, scenarios, 0, entity_stream(STREAM_SALE, site_index), xp=xp
    )[0]
    return u < site.sale.close_prob


def sold_npv(
    scenario: Portfolio,
    site_index: int,
    before: Any,
    ppa: Any,
    discount: Any,
    *,
    xp: ModuleType,
) -> Any:
    """The NPV of the option ``sell`` where the sale closes, per scenario (the fast path;
    where it does not, the option is worth keeping the site) [USD].

    ``before`` (N,): the PV of one grid MW of mining before closing
    (:func:`.coefficients.mining_segments` cut there); ``ppa`` (N, T): the site's PPA
    settlement by month; ``discount`` (T + 1,) the discount factors.
    """
    site = scenario.sites[site_index]
    c = close_month(site)
    after_tax = 1.0 - scenario.tax.income_rate
    ppa_before = after_tax * (ppa[:, :c] * xp.asarray(discount[:c])[None, :]).sum(axis=1)
    sold = ppa_before + site.mining.mw * before
    return sold + float(discount[c]) * after_tax_proceeds_usd(scenario, site)


@dataclass(frozen=True)
class SaleMonthly:
    """A sale's effect on the monthly reference ((N, T) each)."""

    keep: Any  # 1.0 where the miner still owns the site, else 0.0
    proceeds: Any  # the price, paid in the month of closing [USD]
    basis: Any  # the tax basis deducted then [USD]


def sale_monthly(
    scenario: Portfolio, site_index: int, scenarios: Any, months: int, *, xp: ModuleType
) -> SaleMonthly:
    """Which months the miner still owns the site, and the sale's proceeds and basis."""
    site = scenario.sites[site_index]
    closed = sale_closes(scenario, site_index, scenarios, xp=xp)[:, None]
    t = xp.arange(months)[None, :]
    c = close_month(site)
    keep = xp.where(closed & (t >= c), 0.0, 1.0)
    at_close = xp.where(closed & (t == c), 1.0, 0.0)
    basis = site.sale.tax_basis_usd_mw * site.interconnect_mw
    return SaleMonthly(keep, at_close * proceeds_usd(site), at_close * basis)


def sale_income(scenario: Portfolio, site_index: int, edges: Any, n: int, *, xp: ModuleType) -> Any:
    """The sale's taxable gain by tax year ((N, Y): in the year of closing) [USD]."""
    site = scenario.sites[site_index]
    return in_year(xp.full(n, taxable_gain_usd(site)), xp.full(n, close_month(site)), edges, xp)
