"""Finance views of the plan's expected cash flows: the annual table, and each hall's NOI
and yield on cost (docs/cli.md: annual.csv, summary.json ``sites[].yield_on_cost``).

Both read cashflows.csv's frame (the month-by-month reference, expected over every
scenario), so they add up to what it says.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from siteopt.kernels.cashflows import LINE_ITEMS

NOI_LINES = ("ai_rent", "ai_opex", "ai_power")  # a hall's net operating income
PORTFOLIO = "(portfolio)"


def annual_cashflows(cashflows: pd.DataFrame) -> pd.DataFrame:
    """annual.csv: expected cash flows by site and calendar year, one column per line item
    and ``net`` (their sum; the terminal value in the last year), then the portfolio's rows
    (site ``(portfolio)``) [USD, undiscounted]."""
    frame = cashflows.assign(year=cashflows["month"].str[:4].astype(int))
    wide = frame.pivot_table(
        index=["site", "year"], columns="line_item", values="usd", aggfunc="sum", sort=False
    )
    columns = [c for c in (*LINE_ITEMS, "terminal_value") if c in wide.columns]
    wide = wide[columns].fillna(0.0)
    wide["net"] = wide.sum(axis=1)
    sites = wide.reset_index()
    portfolio = wide.groupby(level="year").sum().reset_index().assign(site=PORTFOLIO)
    return pd.concat([sites, portfolio[sites.columns]], ignore_index=True)


def yield_on_cost(
    cashflows: pd.DataFrame,
    site: str,
    ai_it_mw: float,
    first_rent: int,
    landlord_capex_usd: float,
    tenant_funded_share: float,
) -> dict[str, Any]:
    """A converted site's hall: NOI per MW-year in its first full year after first rent and
    on average from first rent to the horizon, and the unlevered yield on cost (average NOI
    over the capex per MW, the landlord's and the hall's total, which differ where the
    tenant funds part of the fit-out). ``first_rent``: the planned month index of the first
    rent; ``landlord_capex_usd``: equity plus debt (plan.csv)."""
    mine = cashflows[(cashflows["site"] == site) & cashflows["line_item"].isin(NOI_LINES)]
    noi = mine.groupby("month", sort=True)["usd"].sum().to_numpy()
    rest = noi[first_rent:]
    first_year = float(noi[first_rent + 12 : first_rent + 24].sum()) / ai_it_mw
    average = float(rest.sum()) / ai_it_mw / (len(rest) / 12.0) if len(rest) else 0.0
    landlord = landlord_capex_usd / ai_it_mw
    total = landlord / (1.0 - tenant_funded_share) if tenant_funded_share < 1 else 0.0
    return {
        "noi_first_year_usd_mw": first_year if len(noi) >= first_rent + 24 else None,
        "noi_average_usd_mw_year": average,
        "on_landlord_cost": _ratio(average, landlord),
        "on_total_cost": _ratio(average, total),
    }


def _ratio(part: float, whole: float) -> float | None:
    """``part / whole``; None for a capex of 0 or one so small the yield is not a number."""
    if whole <= 0:
        return None
    with np.errstate(over="ignore"):
        value = np.float64(part) / np.float64(whole)
    return float(value) if np.isfinite(value) else None
