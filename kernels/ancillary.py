"""Mining as a grid resource: ancillary services and demand response (docs/model.md).

A curtailable site may enrol its mining load in a market's ancillary-service programme
(``power_markets.<name>.ancillary``; ERCOT's Responsive Reserve, ECRS and Non-Spin take
loads that drop on command). A load resource offers its reduction only in hours it would
be consuming, and is paid for every hour it offers, deployed or not: an enrolled MW earns
``capacity_usd_mw_month`` times the share of the month's hours it offers (the month's
hours, not its uptime's). The obligations that come with it:

* awards are made a day ahead, before the real-time price is known, so of the hours a
  free miner would curtail on price an enrolled MW must keep running the
  ``committed_share``;
* the grid operator deploys it (it drops its load) in ``deployed_hours_share`` of the
  hours it runs, spread over them.

The site enrols ``enrolled_share`` of its MW in a month where that earns more over the
power it buys than curtailing on price would, at the month's hashprice and price level
(no foresight); a month idled whole earns nothing, as a load that draws nothing has no
reduction to offer. Without the block nothing here runs and mining is as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .params import AncillaryParams
from .power import DurationCurve

__all__ = ["GridService", "grid_service", "enrolled_month"]


@dataclass(frozen=True)
class GridService:
    """A programme as one grid MW of curtailable mining meets it (host numbers).

    Attributes
    ----------
    capacity_usd_mw_month : float [USD per MW offered every hour of a month]
    enrolled_share : float [share of the site's mining MW the programme takes]
    deployed_share : float [share of the hours it runs in which it is deployed]
    committed_share : float [share of the hours priced above hashing it must run]
    price_total : float [multiple of the level]
        The duration curve's weighted multiple over all its hours (1: its mean).
    """

    capacity_usd_mw_month: float
    enrolled_share: float
    deployed_share: float
    committed_share: float
    price_total: float


def grid_service(params: AncillaryParams | None, curve: DurationCurve) -> GridService | None:
    """The programme of a market with ``params`` on its ``curve``; None without one."""
    if params is None:
        return None
    return GridService(
        params.capacity_usd_mw_month,
        params.enrolled_share,
        params.deployed_hours_share,
        params.committed_share,
        float(curve.cum_weighted_multiple[-1]),
    )


def enrolled_month(
    service: GridService,
    value: Any,
    level: Any,
    hours_up: Any,
    run: Any,
    price_share: Any,
    *,
    xp: ModuleType,
) -> tuple[Any, Any, Any]:
    """Run share, energy cost share and capacity earned per grid MW in a month the site
    may enrol, given the curtailing-on-price ``run`` and ``price_share``.

    An enrolled MW offers the hours it would run and the ``committed_share`` of those it
    would curtail: offered = run + c (1 - run), at price share p + c (total - p); it runs
    (1 - ``deployed_share``) of them and earns the capacity payment on all of them. It
    enrols where ``hours_up`` x (its run share x ``value`` - ``level`` x its price share)
    + its payment is above what curtailing on price earns over the power; then
    ``enrolled_share`` of the MW run as enrolled and the rest as before.
    """
    s = service
    on_price = hours_up * run * value - hours_up * level * price_share
    offered = run + s.committed_share * (1.0 - run)
    offered_price = price_share + s.committed_share * (s.price_total - price_share)
    run_e = offered * (1.0 - s.deployed_share)
    price_e = offered_price * (1.0 - s.deployed_share)
    paid = s.capacity_usd_mw_month * offered
    enrolled = hours_up * run_e * value - hours_up * level * price_e
    enrolled = enrolled + paid
    share = xp.where(enrolled > on_price, s.enrolled_share, 0.0)
    run = run + share * (run_e - run)
    price_share = price_share + share * (price_e - price_share)
    return run, price_share, share * paid
