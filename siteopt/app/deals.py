"""Sell, share or keep: each site a buyer or a partner made an offer for (docs/model.md,
Sale and joint venture), its deals side by side.

For every site with a ``sale`` block: keeping it hashing, its sale (where a buyer bids),
its best conversion alone and its best joint venture (where a partner offers one), each
with its E[NPV], CVaR and the equity the budgets see (a sale's is minus its expected
proceeds after tax), the plan's choice, and a sentence on why the plan took it: the most
E[NPV] of the site, or what the budgets get from the sale's cash or the JV's smaller
equity. summary.json's ``deals`` and report.html's "Sell, share or keep" show it; all of it
is read from the option table, on the same draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from siteopt.kernels.params import Portfolio
from siteopt.kernels.sites import SiteOption

DEALS = ("keep", "sell", "alone", "jv")  # keep hashing, the sale, a conversion, a JV


@dataclass(frozen=True)
class Deal:
    """One deal of a site: its option and figures."""

    deal: str  # one of DEALS
    option: str
    expected_npv_usd: float
    cvar_usd: float
    equity_capex_usd: float  # the budgets': minus the expected proceeds after tax for a sale
    chosen: bool


@dataclass(frozen=True)
class DealComparison:
    site: str
    deals: tuple[Deal, ...]  # in DEALS order, those the site has
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"site": self.site, "deals": [asdict(d) for d in self.deals], "text": self.text}


def compare_deals(
    portfolio: Portfolio,
    table: pd.DataFrame,
    site_options: Sequence[Sequence[SiteOption]],
    rows: Sequence[int],
) -> tuple[DealComparison, ...]:
    """The deals of each site with a sale block (the option table's rows, flat over sites;
    ``rows`` the plan's row per site)."""
    out = []
    offset = 0
    for i, options in enumerate(site_options):
        mine = range(offset, offset + len(options))
        offset += len(options)
        if portfolio.sites[i].sale is None:
            continue
        best: dict[str, int] = {"keep": mine[0]}
        for deal, pick in (
            ("sell", lambda o: o.sells),
            ("alone", lambda o: o.contract_index is not None and o.hall_share == 1.0),
            ("jv", lambda o: o.contract_index is not None and o.hall_share < 1.0),
        ):
            candidates = [r for r, o in zip(mine, options, strict=True) if pick(o)]
            if candidates:
                best[deal] = max(candidates, key=lambda r: float(table["expected_npv_usd"].iat[r]))
        chosen = rows[i]
        deals = tuple(_deal(table, deal, r, chosen) for deal, r in best.items())
        taken = next((d for d in deals if d.chosen), None)
        if taken is None:  # another option of its kind (a smaller hall, another year)
            option = options[chosen - mine[0]]
            kind = "sell" if option.sells else "keep" if option.hashes else "alone"
            kind = "jv" if option.hall_share < 1.0 else kind
            taken = _deal(table, kind, chosen, chosen)
        site = portfolio.sites[i].name
        out.append(DealComparison(site, deals, _text(deals, taken)))
    return tuple(out)


def _deal(table: pd.DataFrame, deal: str, row: int, chosen: int) -> Deal:
    """The option table's ``row`` as a deal (``chosen``: the plan's row of the site)."""
    return Deal(
        deal=deal,
        option=str(table["option"].iat[row]),
        expected_npv_usd=float(table["expected_npv_usd"].iat[row]),
        cvar_usd=float(table["cvar_usd"].iat[row]),
        equity_capex_usd=float(table["equity_capex_usd"].iat[row]),
        chosen=row == chosen,
    )


_WORDS = {
    "keep": "keeping it hashing",
    "sell": "selling it",
    "alone": "converting it alone",
    "jv": "a joint venture",
}


def _text(deals: tuple[Deal, ...], taken: Deal) -> str:
    """What the plan does with the site (``taken``), and why against the deal worth most."""
    top = max(deals, key=lambda d: d.expected_npv_usd)
    doing = _WORDS[taken.deal] if taken.deal != "alone" else f"converting it ({taken.option})"
    if taken.deal == "jv":
        doing = f"a joint venture ({taken.option})"
    if taken.option == top.option:
        return f"the plan is {doing}: the most E[NPV] of the site's deals"
    gap = top.expected_npv_usd - taken.expected_npv_usd
    better = f"{_WORDS[top.deal]} ({top.option}) is worth ${gap / 1e6:,.1f}M more at the site"
    saved = top.equity_capex_usd - taken.equity_capex_usd
    if taken.deal == "sell":
        reason = (
            f"but the sale's ${-taken.equity_capex_usd / 1e6:,.1f}M of expected proceeds after "
            "tax fund the rest of the plan, which earns more with them"
        )
    elif saved > 0:
        reason = (
            f"but needs ${saved / 1e6:,.1f}M more equity, which the budgets spend better "
            "elsewhere or do not have"
        )
    else:
        reason = "but it breaks a constraint of the plan"
    return f"the plan is {doing}: {better}, {reason}"
