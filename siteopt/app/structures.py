"""Colocation beside AI cloud at each site that could take either (docs/model.md, AI cloud).

For every site with options of both kinds (a powered shell counts as a lease, on the
colocation side), the best of each by E[NPV] (any MW level and
build year), valued from the same expected cash flows as cashflows.csv: the capex of the
hall and of the GPUs, the AI revenue and its margin, the payback, E[NPV] and CVaR, and
what drives the difference, as the PV at ``discount_rate`` of each group of line items
(the debt, discounted at its own rate, and the tax its interest saves as the rest of
E[NPV]). summary.json's ``structures`` and report.html's "Colocation or cloud" show it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from siteopt.app.finance import line_of, site_lines
from siteopt.kernels.cashflows import expected_cashflows
from siteopt.kernels.chunks import KeptMarket
from siteopt.kernels.cloud import CLOUD
from siteopt.kernels.hosting import construction_start
from siteopt.kernels.params import Portfolio
from siteopt.kernels.sites import SiteOption

KINDS = ("colocation", CLOUD)
# a powered shell is a lease too: it stands on the colocation side
FAMILY = {"colocation": "colocation", "powered_shell": "colocation", CLOUD: CLOUD}

# the PV groups of the difference, each a sum of cashflows.csv lines (the memo line
# debt_draw taken back from equity_capex: the hall's whole capex, whoever funds it)
DRIVERS: dict[str, tuple[tuple[str, float], ...]] = {
    "AI revenue": (("ai_rent", 1.0), ("cloud_prepayment", 1.0)),
    "GPUs, net of their sale": (("gpu_capex", 1.0), ("gpu_residual", 1.0)),
    "AI opex, power and operations": (
        ("ai_opex", 1.0),
        ("ai_power", 1.0),
        ("cloud_operations", 1.0),
        ("ai_property_tax", 1.0),
    ),
    "hall capex": (
        ("equity_capex", 1.0),
        ("debt_draw", -1.0),
        ("ai_relet_capex", 1.0),
        ("ai_refit_capex", 1.0),
    ),
    "mining on the site's other MW": (
        ("mining_revenue", 1.0),
        ("mining_ancillary", 1.0),
        ("mining_power", 1.0),
        ("mining_opex", 1.0),
        ("mining_4cp", 1.0),
        ("mining_property_tax", 1.0),
        ("asic_capex", 1.0),
        ("ppa_settlement", 1.0),
    ),
    "income tax": (("income_tax", 1.0), ("interest_tax_shield", -1.0)),
    "exit value at T": (("exit_value", 1.0), ("exit_tax", 1.0)),
}
DEBT_DRIVER = "debt and the tax its interest saves"  # the rest of E[NPV]

# the pre-tax cash of the AI side the payback is counted on
_AI_CASH = (
    "ai_rent",
    "cloud_prepayment",
    "gpu_residual",
    "ai_opex",
    "ai_power",
    "cloud_operations",
    "ai_property_tax",
    "equity_capex",
    "gpu_capex",
    "ai_relet_capex",
    "ai_refit_capex",
    "debt_service",
    "refinancing_draw",
)
_OPERATING = ("ai_opex", "ai_power", "cloud_operations", "ai_property_tax")


@dataclass(frozen=True)
class Structure:
    """One kind's best option at a site, its figures from the expected cash flows.

    ``hall_capex_usd`` the landlord's capex of the hall (debt-funded part included),
    ``gpu_capex_usd`` the GPUs bought, ``equity_capex_usd`` the equity the plan's budgets
    see (options.csv's: net of debt and of a prepayment); ``revenue_usd`` the AI revenue
    over the horizon (rent, or the cloud's revenue with its prepayment), ``margin`` its
    share left after the AI opex, power, operations and property tax; ``payback_years``
    from construction start to the month from which the AI side's pre-tax cash after debt
    service, summed from the start, stays at or above 0 (None: not by T).
    """

    kind: str
    option: str
    contract: str
    ai_it_mw: float
    build_year: int
    hall_capex_usd: float
    gpu_capex_usd: float
    equity_capex_usd: float
    revenue_usd: float
    margin: float | None
    payback_years: float | None
    expected_npv_usd: float
    cvar_usd: float
    chosen: bool


@dataclass(frozen=True)
class StructureComparison:
    """Colocation and cloud at one site; ``drivers`` cloud less colocation by group [USD]."""

    site: str
    colocation: Structure
    cloud: Structure
    drivers: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "colocation": vars(self.colocation).copy(),
            "cloud": vars(self.cloud).copy(),
            "drivers_usd": dict(self.drivers),
        }


def compare_structures(
    portfolio: Portfolio,
    table: pd.DataFrame,
    site_options: Sequence[Sequence[SiteOption]],
    rows: Sequence[int],
    markets: Sequence[KeptMarket] = (),
) -> tuple[StructureComparison, ...]:
    """The comparison at each site whose options include both kinds (the option table's
    rows, flat over sites; ``rows`` the plan's row per site). A JV twin is not a kind of its
    own: each kind's best is the miner's alone."""
    kinds = {c.name: FAMILY.get(c.kind, c.kind) for c in portfolio.contracts}
    kind_of = table["contract"].map(lambda c: kinds.get(c, ""))
    if "partner_share" in table:
        kind_of = kind_of.where(table["partner_share"].to_numpy() == 0.0, "")
    picks: list[tuple[int, dict[str, int]]] = []
    offset = 0
    for i, options in enumerate(site_options):
        rows_i = range(offset, offset + len(options))
        offset += len(options)
        best = {}
        for kind in KINDS:
            mine = [r for r in rows_i if kind_of.iloc[r] == kind]
            if mine:
                best[kind] = max(mine, key=lambda r: float(table["expected_npv_usd"].iloc[r]))
        if len(best) == len(KINDS):
            picks.append((i, best))
    if not picks:
        return ()
    flat = [o for options in site_options for o in options]
    flows = {
        kind: expected_cashflows(
            portfolio, [flat[b[kind]] for _, b in picks], markets=markets, memo=True
        )
        for kind in KINDS
    }
    discount = portfolio.discount_rate
    out = []
    for i, best in picks:
        site = portfolio.sites[i].name
        lines = {kind: site_lines(flows[kind], site) for kind in KINDS}
        figures = {
            kind: _structure(
                portfolio, table, flat[best[kind]], best[kind], lines[kind], best[kind] in rows
            )
            for kind in KINDS
        }
        groups = {kind: _drivers(lines[kind], figures[kind], discount) for kind in KINDS}
        drivers = {k: groups[CLOUD][k] - groups["colocation"][k] for k in groups[CLOUD]}
        out.append(StructureComparison(site, figures["colocation"], figures[CLOUD], drivers))
    return tuple(out)


def _structure(portfolio, table, option, row, flows, chosen) -> Structure:
    """The figures of one side's option (the Structure names its contract's own kind)."""
    revenue = float((line_of(flows, "ai_rent") + line_of(flows, "cloud_prepayment")).sum())
    costs = float(sum(line_of(flows, name).sum() for name in _OPERATING))
    hall = float(-line_of(flows, "equity_capex").sum() + line_of(flows, "debt_draw").sum())
    cash = np.cumsum(sum(line_of(flows, name) for name in _AI_CASH))
    cs = construction_start(portfolio, option.build_year)
    return Structure(
        kind=portfolio.contracts[option.contract_index].kind,
        option=str(table["option"].iloc[row]),
        contract=str(table["contract"].iloc[row]),
        ai_it_mw=float(option.it_mw),
        build_year=int(option.build_year),
        hall_capex_usd=hall,
        gpu_capex_usd=0.0 - float(line_of(flows, "gpu_capex").sum()),
        equity_capex_usd=float(table["equity_capex_usd"].iloc[row]),
        revenue_usd=revenue,
        margin=(revenue + costs) / revenue if revenue > 0 else None,
        payback_years=_payback(cash, cs),
        expected_npv_usd=float(table["expected_npv_usd"].iloc[row]),
        cvar_usd=float(table["cvar_usd"].iloc[row]),
        chosen=bool(chosen),
    )


def _payback(cumulative: np.ndarray, start: int) -> float | None:
    """Years from ``start`` to the month from which the cumulative cash stays at or above
    0 to T (None: below 0 at T)."""
    below = np.flatnonzero(cumulative < 0)
    if below.size == 0:
        return 0.0
    if below[-1] == len(cumulative) - 1:
        return None
    return float(below[-1] + 1 - start) / 12.0


def _drivers(flows, structure: Structure, rate: float) -> dict[str, float]:
    """PV at ``rate`` of each DRIVERS group, and the rest of E[NPV] (the debt) [USD]."""
    months = len(flows)
    d = (1.0 + rate) ** (-np.arange(months) / 12.0)
    end = (1.0 + rate) ** (-months / 12.0)
    out = {}
    for group, lines in DRIVERS.items():
        value = 0.0
        for name, sign in lines:
            series = line_of(flows, name)
            if name in ("exit_value", "exit_tax"):
                value += sign * end * float(series.sum())
            else:
                value += sign * float(series @ d)
        out[group] = value
    out[DEBT_DRIVER] = structure.expected_npv_usd - sum(out.values())
    return out
