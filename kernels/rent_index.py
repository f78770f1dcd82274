"""The AI rent index as one tenancy's leases meet it (docs/model.md, "The AI market").

The index I (``MarketPaths.ai_rent_index``, 1 at month 0) is where the market rent of AI
hosting stands against today's. Two things follow it:

- **A later signing.** A contract with ``price_follows_index`` signs, when its
  construction starts in month s, at its price x I[s] (and escalates from there); without
  it the price offered today holds whatever the build year.
- **Every market lease.** A renewal or a successor's lease starting at relative month j
  (calendar month a = first rent + j) signs at the market: the contract's (or the
  successor's) starting price x I[a], and escalates at the contract's escalator from
  there, times the contract's own market-rent factor. The escalator no longer carries the
  rent from one lease to the next: over leases the rent follows the index.

Past the horizon T the index is expected to grow at its mean rate: E[I[a]] = I[T-1] x
exp(mu (a - T + 1) / 12), which is what the buyer at T prices the reversion at.

The rent tables of :class:`hosting.RentSchedule` keep the escalated prices,
``base[j] = price x (1 + escalator)^floor(j/12)`` (a step on each anniversary of the first
rent); a lease starting at j multiplies them by :meth:`RentIndex.remark`
``(j) = I[a] x (1 + escalator)^-floor(j/12)``, so that its rent at j' >= j is
price x I[a] x (1 + escalator)^(floor(j'/12) - floor(j/12)): signed at the market, then
stepping up on the hall's anniversaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .params import ContractParams, Portfolio

__all__ = ["RentIndex", "rent_index"]


@dataclass(frozen=True)
class RentIndex:
    """The index seen from one tenancy (backend arrays).

    Attributes
    ----------
    path : array (N, T)
        The index by calendar month.
    start : array (N,) of int
        Calendar month of the tenancy's relative month 0 (its first rent).
    growth_month : float
        exp(mu / 12): the index's expected growth a month past the horizon.
    escalator : float
        The contract's escalator [share/yr]: the tables step up on each anniversary of the
        first rent.
    signed : array (N,)
        The contract's own rent over the tables': I at the month its construction starts
        with ``price_follows_index``, else 1.
    """

    path: Any
    start: Any
    growth_month: float
    escalator: float
    signed: Any
    xp: ModuleType

    def level(self, rel: Any) -> Any:
        """I at relative month ``rel`` (an array of whole months, one per scenario)."""
        xp = self.xp
        last = self.path.shape[1] - 1
        at = self.start + rel
        inside = xp.minimum(at, last)
        value = xp.take_along_axis(self.path, inside[:, None].astype(xp.int64), axis=1)[:, 0]
        beyond = xp.maximum(at - last, 0).astype(xp.float64)
        return value * self.growth_month**beyond

    def remark(self, rel: Any) -> Any:
        """What the rent tables at and after relative month ``rel`` are multiplied by for a
        market lease that starts then: I there, the tables' escalation to it undone."""
        steps = (rel // 12).astype(self.xp.float64)
        return self.level(rel) * (1.0 + self.escalator) ** (-steps)


def rent_index(
    scenario: Portfolio,
    contract: ContractParams,
    path: Any,
    start: Any,
    signing_month: int,
    n: int,
    *,
    xp: ModuleType,
) -> RentIndex:
    """The index for a tenancy of ``contract`` whose first rent is at calendar ``start`` and
    whose construction starts (the contract is signed) at ``signing_month``.

    ``path`` None stands for the index's expected path, exp(mu t / 12), in every scenario
    (callers without the market's draws).
    """
    ai = scenario.market.ai
    months = scenario.months
    if path is None:
        t = np.arange(months, dtype=np.float64)
        path = xp.broadcast_to(xp.asarray(np.exp(ai.rent_drift * t / 12.0)), (n, months))
    if contract.price_follows_index:
        signed = path[:, min(max(signing_month, 0), months - 1)]
    else:
        signed = xp.ones(n)
    return RentIndex(
        path=path,
        start=start,
        growth_month=float(np.exp(ai.rent_drift / 12.0)),
        escalator=float(contract.escalator),
        signed=signed,
        xp=xp,
    )
