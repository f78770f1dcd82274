"""Phased and multi-tenant sites (docs/model.md, Tranches): a site converted in tranches.

With ``build.max_tranches_per_site`` K above 1, a site offers, besides its single
conversions, every combination of 2 to K of them on different (build year, contract)
pairs: a phased build (one contract, several years) or a multi-tenant site (several
contracts). Each tranche is a hall of its own, with its tenancy, its debt, its exit value,
as the single option of its level, year and contract would be. What they share is the site:

* the capex: the retrofit MW go to the tranches in order (build year, then the contract's
  place in the file), then new build (:func:`tranche_capex_usd`);
* the mining: at each month the MW the tranches started and energised by then leave
  mining, by the single conversion's rule applied to their sums (:func:`mining_mw_at`);
* the interconnect and the site's AI limit: the tranches' MW sum to at most ``max_it_mw``,
  and a contract's tranches to at most what it may lease there.

The tranches of one site borrow at one market rate (their contracts' debts differ in it
nowhere), so the site's debt is valued at one rate, as a single conversion's is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .hosting import capex_usd, construction_start, energisation, mining_left_mw
from .params import Portfolio, SiteAIParams, SiteParams

PLUS = "+"  # joins the tranches' labels in a phased option's label


@dataclass(frozen=True)
class Tranche:
    """One hall of a site's conversion: ``it_mw`` built from ``build_year`` for a contract."""

    it_mw: float
    build_year: int
    contract_index: int


def tranche_capex_usd(ai: SiteAIParams, tranches: tuple[Tranche, ...]) -> list[float]:
    """Each tranche's capex at today's prices, the retrofit MW going to the tranches in
    their order [USD]."""
    out, done = [], 0.0
    for t in tranches:
        out.append(float(capex_usd(ai, done + t.it_mw) - capex_usd(ai, done)))
        done += t.it_mw
    return out


def _retrofit_mw(site: SiteParams, it_mw: float) -> float:
    return min(it_mw, site.ai.retrofit_mw)


def mining_mw_at(
    scenario: Portfolio, site: SiteParams, tranches: tuple[Tranche, ...], month: int
) -> float:
    """Grid MW mining in ``month``: the MW of the tranches whose construction has started
    stop by the single conversion's rule (the retrofit MW at construction start, the rest
    when the AI load needs the power), and those energised leave what a conversion of their
    sum leaves [MW]."""
    started = sum(t.it_mw for t in tranches if construction_start(scenario, t.build_year) <= month)
    energised = sum(
        t.it_mw for t in tranches if energisation(scenario, site, t.build_year) <= month
    )
    while_built = max(
        float(mining_left_mw(site, started)),
        site.mining.mw - _retrofit_mw(site, started) * site.ai.pue,
    )
    return min(while_built, float(mining_left_mw(site, energised)))


def mining_cuts(
    scenario: Portfolio, site: SiteParams, tranches: tuple[Tranche, ...]
) -> tuple[tuple[int, ...], list[float]]:
    """The months at which a phased site's mining MW change (ascending, each tranche's
    construction start and energisation), and the MW of each segment [0, c1), [c1, c2),
    ..., [ck, T) they cut (:func:`mining_mw_at` at its first month) [MW]."""
    cuts = sorted(
        {construction_start(scenario, t.build_year) for t in tranches}
        | {energisation(scenario, site, t.build_year) for t in tranches}
    )
    starts = [0, *cuts]
    return tuple(cuts), [mining_mw_at(scenario, site, tranches, a) for a in starts]


def mining_mw_by_month(
    scenario: Portfolio, site: SiteParams, tranches: tuple[Tranche, ...], months: int
) -> np.ndarray:
    """(T,) the grid MW mining in each month of the horizon [MW]."""
    cuts, mw = mining_cuts(scenario, site, tranches)
    out = np.empty(months)
    for a, b, value in zip([0, *cuts], [*cuts, months], mw, strict=True):
        out[min(a, months) : min(b, months)] = value
    return out


def combinations(
    site: SiteParams,
    groups: dict[tuple[int, int], list[float]],
    most: int,
    fits: Any,
) -> list[tuple[Tranche, ...]]:
    """Every combination of 2 to ``most`` tranches on distinct (build year, contract)
    ``groups`` (each with the levels it offers), in the groups' order, whose MW sum to at
    most the site's AI limit and which ``fits(tranches)`` accepts (a contract's cap, the
    retrofit MW of a retrofit-only contract, one market rate)."""
    keys = sorted(groups)
    limit = site.ai.max_it_mw + 1e-9
    out: list[tuple[Tranche, ...]] = []

    def extend(chosen: tuple[Tranche, ...], first: int, total: float) -> None:
        for k in range(first, len(keys)):
            year, c = keys[k]
            for level in groups[keys[k]]:
                if total + level > limit:
                    break  # levels ascend
                more = (*chosen, Tranche(float(level), year, c))
                if not fits(more):
                    continue
                if len(more) >= 2:
                    out.append(more)
                if len(more) < most:
                    extend(more, k + 1, total + level)

    extend((), 0, 0.0)
    return out
