"""Finance views of the plan's expected cash flows: the annual table, each hall's NOI and
yield on cost, and the returns of each conversion over hashing (docs/cli.md: annual.csv,
summary.json ``sites[].yield_on_cost``, ``sites[].returns`` and ``returns``).

Both read cashflows.csv's frame (the month-by-month reference, expected over every
scenario), so they add up to what it says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from siteopt.kernels.cashflows import LINE_ITEMS

# a hall's net operating income (an AI cloud's: its revenue as billed, its operations)
NOI_LINES = ("ai_rent", "ai_opex", "ai_power", "cloud_prepayment", "cloud_operations")
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


# ------------------------------------------------ returns of a conversion over hashing


@dataclass(frozen=True)
class Increment:
    """A conversion's expected cash flows less the same site kept hashing, on the same
    draws [USD], so the mining it gives up counts against it. Index t < T is month t;
    index T (the last) holds the terminal values."""

    months: tuple[str, ...]  # the T month labels (YYYY-MM)
    equity: np.ndarray  # (T + 1,) to the equity; the terminal value is net of the debt owed
    unlevered: np.ndarray  # (T + 1,) the same without the project debt and its tax saving
    noi: np.ndarray  # (T,) the hall's net operating income (rent less its opex and power)
    debt_service: np.ndarray  # (T,) paid to the lenders less a refinancing's draw, >= 0
    first_rent: int = 0  # month index of the planned first rent (the loan's years from it)
    stable_from: int = 0  # month index the rent stabilises (the ramp over)
    refinancing_paydown: np.ndarray | None = None  # (T,) of a bullet the equity repays

    def __add__(self, other: Increment) -> Increment:
        paydown = [
            p for p in (self.refinancing_paydown, other.refinancing_paydown) if p is not None
        ]
        return Increment(
            self.months,
            self.equity + other.equity,
            self.unlevered + other.unlevered,
            self.noi + other.noi,
            self.debt_service + other.debt_service,
            min(self.first_rent, other.first_rent),
            max(self.stable_from, other.stable_from),
            sum(paydown) if paydown else None,
        )


def increment(
    converted: pd.DataFrame,
    hashing: pd.DataFrame,
    site: str,
    first_rent: int = 0,
    stable_from: int = 0,
) -> Increment:
    """``site``'s Increment from the expected cash flows of its planned conversion (with the
    memo lines: ``expected_cashflows(..., memo=True)``) and of keeping it hashing;
    ``first_rent``, ``stable_from``: the month indices of its planned first rent and of its
    rent's end of ramp."""
    conv, hash_ = site_lines(converted, site), site_lines(hashing, site)
    cash = [c for c in LINE_ITEMS if c in conv.columns]
    equity = np.append(
        conv[cash].sum(axis=1).to_numpy() - hash_[cash].sum(axis=1).to_numpy(),
        conv["terminal_value"].sum() - hash_["terminal_value"].sum(),
    )
    # paid to the lenders less what a refinancing lends when a bullet falls due: what the
    # NOI and the equity pay
    service = -conv["debt_service"].to_numpy() - line_of(conv, "refinancing_draw")
    # unlevered: without the debt's draws, service and balance owed, and the tax its
    # interest saved (adjusted present value's split)
    unlevered = equity.copy()
    unlevered[:-1] += service - line_of(conv, "debt_draw")
    unlevered[:-1] -= line_of(conv, "interest_tax_shield")
    unlevered[-1] += conv["debt_owed_at_end"].sum() if "debt_owed_at_end" in conv else 0.0
    noi = conv[list(NOI_LINES)].sum(axis=1).to_numpy()
    paydown = line_of(conv, "refinancing_paydown")
    return Increment(
        tuple(conv.index), equity, unlevered, noi, service, first_rent, stable_from, paydown
    )


def line_of(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A line (or memo line) of a site's frame by month (zeros where the frame has none)."""
    return frame[name].to_numpy() if name in frame else np.zeros(len(frame))


def site_lines(cashflows: pd.DataFrame, site: str) -> pd.DataFrame:
    """One site's cash flows: a row per month (in order), a column per line item."""
    mine = cashflows[cashflows["site"] == site]
    if mine.empty:
        raise ValueError(f"no cash flows for site {site!r}")
    return mine.pivot(index="month", columns="line_item", values="usd").sort_index()


def returns(inc: Increment) -> dict[str, Any]:
    """The finance metrics of an Increment (docs/cli.md, summary.json ``returns``):

    - ``equity_irr``, ``unlevered_irr``: annual rates, None where the flows have no unique
      rate (no outlay, never repaid, or several sign changes that give several rates);
    - ``equity_multiple``: what the equity gets back over what it puts in (the sums of the
      positive and of the negative monthly flows, the terminal value included);
    - ``payback_year``: the calendar year from which the cumulative equity flow, without the
      terminal value, stays at or above zero; ``payback_years`` from the first outlay;
      None where it is not repaid by the horizon;
    - ``min_dscr``: the lowest NOI over debt service in a loan year (12 months from the
      first rent, then each next 12) with debt service, ``min_dscr_from`` the month that
      loan year starts (YYYY-MM) and ``min_dscr_year`` its calendar year; None without debt;
    - ``stabilised_dscr``: the same over the 12 months from the month the rent stabilises
      (its ramp over); None without debt service then;
    - ``refinancing_paydown_usd``: what the equity repays of a bullet when it falls due
      (the part no lender refinances) [USD, undiscounted; 0 without].
    """
    payback = _payback(inc.equity[:-1])
    years = np.array([int(m[:4]) for m in inc.months])
    dscr = _min_dscr(inc.noi, inc.debt_service, inc.first_rent)
    stable = _dscr(inc.noi, inc.debt_service, inc.stable_from)
    paydown = inc.refinancing_paydown
    return {
        "equity_irr": irr(inc.equity),
        "unlevered_irr": irr(inc.unlevered),
        "equity_multiple": _multiple(inc.equity),
        "payback_year": None if payback is None else int(years[payback[1]]),
        "payback_years": None if payback is None else (payback[1] - payback[0] + 1) / 12.0,
        "min_dscr": None if dscr is None else dscr[0],
        "min_dscr_year": None if dscr is None else int(years[dscr[1]]),
        "min_dscr_from": None if dscr is None else inc.months[dscr[1]],
        "stabilised_dscr": stable,
        "refinancing_paydown_usd": 0.0 if paydown is None else float(paydown.sum()),
    }


def irr(flows: np.ndarray, *, per_year: int = 12) -> float | None:
    """The annual rate r with sum_t flows[t] (1 + r)^(-t / per_year) = 0, for flows at
    period t = 0, 1, ...; None unless exactly one such rate lies in (-99%, +10,000%).

    The present value is evaluated on a grid of ln(1 + r) and the one bracket where it
    changes sign is bisected to machine precision.
    """
    flows = np.asarray(flows, dtype=np.float64)
    t = np.arange(flows.size) / per_year
    grid = np.linspace(np.log(0.01), np.log(101.0), 2_001)

    def pv(x: np.ndarray) -> np.ndarray:
        return (flows[None, :] * np.exp(-np.multiply.outer(x, t))).sum(axis=1)

    sign = np.sign(pv(grid))
    nonzero = np.flatnonzero(sign)
    changes = np.flatnonzero(sign[nonzero][1:] != sign[nonzero][:-1])
    if changes.size != 1:
        return None
    lo, hi = grid[nonzero[changes[0]]], grid[nonzero[changes[0] + 1]]
    f_lo = pv(np.array([lo]))[0]
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        f_mid = pv(np.array([mid]))[0]
        if f_mid == 0.0:
            lo = hi = mid
            break
        if np.sign(f_mid) == np.sign(f_lo):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    return float(np.expm1(0.5 * (lo + hi)))


def _multiple(flows: np.ndarray) -> float | None:
    paid_in = -flows[flows < 0].sum()
    return float(flows[flows > 0].sum() / paid_in) if paid_in > 0 else None


def _payback(flows: np.ndarray) -> tuple[int, int] | None:
    """(first month with an outlay, first month from which the cumulative flow stays >= 0),
    or None without an outlay or when the cumulative flow ends below zero."""
    outlays = np.flatnonzero(flows < 0)
    cumulative = np.cumsum(flows)
    if outlays.size == 0 or cumulative[-1] < 0:
        return None
    below = np.flatnonzero(cumulative < 0)
    return int(outlays[0]), int(below[-1] + 1) if below.size else int(outlays[0])


LOAN_YEAR = 12  # months in a DSCR window


def _min_dscr(noi: np.ndarray, service: np.ndarray, first_rent: int) -> tuple[float, int] | None:
    """The lowest NOI / debt service over the loan years from ``first_rent`` (12-month
    windows; a last window cut by the horizon counts as it is) with debt service, and the
    month its window starts."""
    starts = range(max(first_rent, 0), len(noi), LOAN_YEAR)
    ratios = [(_dscr(noi, service, a), a) for a in starts]
    ratios = [(r, a) for r, a in ratios if r is not None]
    if not ratios:
        return None
    return min(ratios, key=lambda pair: pair[0])


def _dscr(noi: np.ndarray, service: np.ndarray, start: int) -> float | None:
    """NOI / debt service over the 12 months from ``start``; None without debt service."""
    if start >= len(noi):
        return None
    window = slice(max(start, 0), max(start, 0) + LOAN_YEAR)
    paid = float(service[window].sum())
    if paid <= 1e-6 * max(float(np.max(service)), 1.0):
        return None
    return float(noi[window].sum()) / paid
