"""A contract given by its stated value (``contracts[].contract_value_usd``) instead of its
price: the starting price that earns that value over the first term at ``max_mw``.

Public deals are quoted as a total (IREN-Microsoft: ~$9.7B over five years for ~200 MW),
and the rent schedule turns a starting price into that total (docs/model.md, Hosted AI):
rent per IT MW in month s of the term is ``1000 x price x (1 + escalator)^(s // 12) x
ramp(s)``. This is that schedule's first term summed, so the price it gives earns the
value exactly (tested against kernels.hosting.term_revenue_usd_mw).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def rent_factor(escalator: float, term_years: float, ramp: Sequence[Any]) -> float:
    """The first term's rent per kW of IT at a starting price of 1 USD/kW-month [kW-month]:
    the months of the term, each escalated by whole years and at its ramp share."""
    months = int(round(12 * term_years))
    shares = []
    for phase in ramp:
        months_of, share = (
            (phase["months"], phase["share"])
            if isinstance(phase, dict)
            else (phase.months, phase.share)
        )
        shares += [float(share)] * int(months_of)
    total = 0.0
    for s in range(months):
        share = shares[s] if s < len(shares) else 1.0
        total += (1.0 + escalator) ** (s // 12) * share
    return total


def price_from_value(
    value_usd: float, max_mw: float, escalator: float, term_years: float, ramp: Sequence[Any]
) -> float:
    """The starting price that earns ``value_usd`` over the first term at ``max_mw``
    [USD/kW-month]."""
    return value_usd / (1000.0 * max_mw * rent_factor(escalator, term_years, ramp))


def value_from_price(
    price: float, max_mw: float, escalator: float, term_years: float, ramp: Sequence[Any]
) -> float:
    """What ``price`` earns over the first term at ``max_mw`` [USD]."""
    return 1000.0 * price * max_mw * rent_factor(escalator, term_years, ramp)
