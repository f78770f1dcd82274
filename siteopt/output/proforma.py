"""proforma.xlsx: the plan's expected cash flows as a model an analyst recalculates
(docs/cli.md, proforma.xlsx).

A sheet per converted site, one for the sites that keep hashing, and one for the plan, with
the calendar years across and a last column for the exit at the horizon; then sources and
uses, and the inputs. The operations' lines, the capex, the depreciation and the debt's
draws, interest and service are the expected cash flows of cashflows.csv and its memo
lines, summed by year (values); everything built on them is an Excel formula over the rows
above: revenue, costs, EBITDA, taxable income, losses carried, the tax, the debt's balance,
CFADS and DSCR, the unlevered and the equity cash flows, their NPV and IRR. Edit a line
and the totals move.

The NPV is siteopt's adjusted present value: the unlevered cash flows at the unlevered
rate, the debt's flows and the tax its interest saves at the debt's market rate. siteopt
values each scenario month by month; here a year's column is discounted at the mean of its
months' discount factors, and a row of adjustments (values) adds what that leaves out: the
months inside each year, and, with losses carried forward, each scenario's own losses
(the tax of the mean income is not the mean tax). As written, the sheet's NPV is siteopt's
E[NPV]. The IRRs are of the yearly flows with the exit at the last year's end
(summary.json's are of the monthly flows).
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from siteopt.kernels.cashflows import (
    FINANCING_ITEMS,
    LINE_ITEMS,
    MEMO_ITEMS,
    TERMINAL_MEMOS,
    financing_flows,
    unlevered_flows,
)
from siteopt.kernels.debt import Loan
from siteopt.kernels.params import Portfolio
from siteopt.kernels.sites import SiteOption
from siteopt.kernels.tax import NOL_USE_LIMIT, carried_forward, year_edges

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet

    from siteopt.app.pipeline import SolveOutcome

PLAN_SHEET = "plan"
HASHING_SHEET = "hashing sites"
OTHERS_SHEET = "other conversions"
SOURCES_SHEET = "sources and uses"
INPUTS_SHEET = "inputs"
MAX_SITE_SHEETS = 100  # converted sites past this share one sheet
FIRST_COLUMN = 3  # C: the first year (A: the line, B: a note or a rate)
_SECTION_FILL = PatternFill("solid", fgColor="F2F4F8")
_MONEY = "#,##0;-#,##0"

# the cells of the inputs sheet the formulas read: key -> (label, row)
INPUTS = {
    "tax_rate": ("income tax rate, federal and state net of its federal deduction", 2),
    "carry": ("losses carried forward (1) or offset at once by the group (0)", 3),
    "nol_limit": ("share of a year's taxable income a carried loss may offset", 4),
    "discount_rate": ("discount rate of the unlevered flows (unlevered cost of capital)", 5),
}

# the cash-flow lines and memo lines each value row sums, with its sign
VALUE_ROWS: dict[str, tuple[str, tuple[tuple[str, float], ...]]] = {
    "rent": ("AI rent", (("ai_rent", 1.0),)),
    "mining_revenue": ("mining revenue", (("mining_revenue", 1.0),)),
    "mining_ancillary": ("mining ancillary services", (("mining_ancillary", 1.0),)),
    "cloud_prepayment": (
        "AI cloud prepayment, less its credits",
        (("cloud_prepayment", 1.0),),
    ),
    "gpu_residual": ("GPUs sold", (("gpu_residual", 1.0),)),
    "site_sale": ("the site sold (its price at closing)", (("site_sale", 1.0),)),
    "ppa": ("PPA settlement", (("ppa_settlement", 1.0),)),
    "mining_power": ("mining power", (("mining_power", 1.0),)),
    "mining_opex": ("mining opex and SG&A", (("mining_opex", 1.0),)),
    "mining_4cp": ("mining 4CP charge", (("mining_4cp", 1.0),)),
    "ai_opex": ("AI opex and SG&A", (("ai_opex", 1.0),)),
    "ai_power": ("AI power (where the landlord pays it)", (("ai_power", 1.0),)),
    "cloud_operations": ("AI cloud operations", (("cloud_operations", 1.0),)),
    "property_tax": (
        "property tax",
        (("mining_property_tax", 1.0), ("ai_property_tax", 1.0)),
    ),
    "depreciation": ("depreciation", (("depreciation", -1.0),)),
    "interest": ("interest (capitalised or paid)", (("debt_interest", -1.0),)),
    "landlord_capex": ("landlord's capex", (("equity_capex", 1.0), ("debt_draw", -1.0))),
    "asic_capex": ("ASIC capex", (("asic_capex", 1.0),)),
    "gpu_capex": ("GPU capex", (("gpu_capex", 1.0),)),
    "other_capex": ("re-let and refit capex", (("ai_relet_capex", 1.0), ("ai_refit_capex", 1.0))),
    "draws": ("debt drawn", (("debt_draw", 1.0), ("refinancing_draw", 1.0))),
    "refinancing": ("of which a refinancing of a bullet", (("refinancing_draw", 1.0),)),
    "service": ("debt service", (("debt_service", -1.0),)),
    "written_off": ("balance the lenders took with a hall", (("debt_written_off", 1.0),)),
}


@dataclass(frozen=True)
class SheetFlows:
    """One sheet's expected flows: its value rows by year, and what the adjustments read.

    Attributes
    ----------
    title : str
    rows : dict of ndarray
        VALUE_ROWS by key, a value per year [USD].
    tenant_capex : ndarray
        By year, the capex the tenant funds (not a flow of the landlord's) [USD].
    exit_value, owed : float
        The exit value before tax and the debt owed, at T [USD].
    capex_debt, equity : float
        The debt drawn for the build and the equity's capex, undiscounted [USD].
    market_rate : float
        The sheet discounts the debt's flows at it: the mean of its sites' debts' market
        rates (the adjustments add what each site's own rate changes) [1/yr].
    unlevered_pv, financing_pv : ndarray
        siteopt's PV by year of the unlevered flows (the exit's tax in the last year) and of
        the debt's flows with the tax its interest saves [USD].
    siteopt_npv : float
        summary.json's E[NPV] of the sheet's sites [USD].
    hashing : ndarray or None
        A converted site's equity cash flow by year had it kept hashing, then its terminal
        value at T [USD] (None for the sites that keep hashing).
    """

    title: str
    rows: dict[str, np.ndarray]
    tenant_capex: np.ndarray
    exit_value: float
    owed: float
    capex_debt: float
    equity: float
    market_rate: float
    unlevered_pv: np.ndarray
    financing_pv: np.ndarray
    siteopt_npv: float
    hashing: np.ndarray | None = None  # the site kept hashing: equity flow by year, then T


def sheet_flows(
    portfolio: Portfolio,
    frame: pd.DataFrame,
    sites: Sequence[str],
    title: str,
    market_rates: Sequence[float],
    siteopt_npv: float,
    hashing: pd.DataFrame | None = None,
) -> SheetFlows:
    """``sites``' expected flows (summed), from cashflows.csv's frame with its memo lines;
    ``market_rates``: each site's debt's market rate (the sheet shows their mean; each
    site's debt is valued at its own); ``hashing``: the same sites' cash flows had they
    kept hashing (cashflows.csv's format), or None."""
    monthly = _monthly(frame, sites, portfolio.months)
    ends = {name: float(monthly[name][-1]) for name in TERMINAL_MEMOS}
    years = year_months(portfolio)

    def by_year(values: np.ndarray) -> np.ndarray:
        return np.array([values[m].sum() for m in years])

    rows = {
        key: by_year(sum(sign * monthly[line] for line, sign in lines))
        for key, (_, lines) in VALUE_ROWS.items()
    }
    d = (1.0 + portfolio.discount_rate) ** (-np.arange(portfolio.months + 1) / 12.0)
    flows_u = unlevered_flows(monthly)
    financing_pv = by_year(_financing_pv(frame, sites, market_rates, portfolio.months))
    unlevered_pv = by_year(flows_u * d[:-1])
    unlevered_pv[-1] += ends["exit_tax"] * d[-1]  # this sheet taxes the exit in the last year
    return SheetFlows(
        title=title,
        rows=rows,
        tenant_capex=by_year(monthly["tenant_capex"]),
        exit_value=ends["exit_value"],
        owed=ends["debt_owed_at_end"],
        capex_debt=float(monthly["debt_draw"].sum()),
        # the GPUs' loan is in equity_capex: the equity is the hall's and the GPUs' less debt
        equity=float(-monthly["equity_capex"].sum() - monthly["gpu_capex"].sum()),
        market_rate=float(np.mean(market_rates)),
        unlevered_pv=unlevered_pv,
        financing_pv=financing_pv,
        siteopt_npv=siteopt_npv,
        hashing=None if hashing is None else _equity_by_year(hashing, sites, portfolio),
    )


def _financing_pv(
    frame: pd.DataFrame, sites: Sequence[str], rates: Sequence[float], months: int
) -> np.ndarray:
    """By month, the PV of the sites' debt flows and the tax their interest saves
    (:func:`financing_flows`), each site's at its debt's market rate (``rates``)."""
    mine = frame[frame["site"].isin(list(sites)) & frame["line_item"].isin(FINANCING_ITEMS)]
    wide = mine.pivot_table(index="site", columns=["line_item", "month"], values="usd",
                            aggfunc="sum")  # fmt: skip
    labels = sorted(frame["month"].unique())[:months]
    by_line = {
        name: wide[name].reindex(index=list(sites), columns=labels).fillna(0.0).to_numpy()
        if name in wide.columns.get_level_values(0)
        else np.zeros((len(sites), months))
        for name in FINANCING_ITEMS
    }
    t = np.arange(months) / 12.0
    factors = (1.0 + np.asarray(rates, dtype=float))[:, None] ** (-t[None, :])
    return (financing_flows(by_line) * factors).sum(axis=0)


def _equity_by_year(frame: pd.DataFrame, sites: Sequence[str], portfolio: Portfolio) -> np.ndarray:
    """The equity's cash flow by year (cashflows.csv's lines), then its terminal value."""
    monthly = _monthly(frame, sites, portfolio.months)
    lines = sum(monthly[c] for c in LINE_ITEMS)
    years = [lines[m].sum() for m in year_months(portfolio)]
    return np.array([*years, float(monthly["terminal_value"].sum())])


_REVENUE = (
    "rent",
    "mining_revenue",
    "mining_ancillary",
    "cloud_prepayment",
    "gpu_residual",
    "ppa",
)
_COSTS = ("mining_power", "mining_opex", "mining_4cp", "ai_opex", "ai_power", "cloud_operations")
_OPERATING = (*_REVENUE, *_COSTS, "property_tax")
_CAPEX = ("landlord_capex", "asic_capex", "gpu_capex", "other_capex")  # the capex formula's span


def _monthly(frame: pd.DataFrame, sites: Sequence[str], months: int) -> dict[str, np.ndarray]:
    """Line item -> the sites' sum by month (length T; a terminal memo in the last month);
    a line the frame lacks is zeros."""
    mine = frame[frame["site"].isin(list(sites))]
    table = mine.pivot_table(
        index="month", columns="line_item", values="usd", aggfunc="sum", sort=True
    )
    names = {*table.columns, *MEMO_ITEMS, *TERMINAL_MEMOS, *LINE_ITEMS, "terminal_value"}
    return {name: table[name].to_numpy() if name in table else np.zeros(months) for name in names}


def year_months(portfolio: Portfolio) -> list[np.ndarray]:
    """The month indices of each calendar year of the horizon."""
    edges = year_edges(portfolio)
    return [np.arange(a, b) for a, b in itertools.pairwise(edges)]


# ------------------------------------------------------------ the sheet's rows and formulas


@dataclass(frozen=True)
class Row:
    """A row of a site sheet: ``kind`` "section", "value", "formula" or "result" (one cell,
    in the first year's column)."""

    key: str
    label: str
    kind: str
    note: str = ""


ROWS: tuple[Row, ...] = (
    Row("h_revenue", "revenue", "section"),
    *(Row(k, VALUE_ROWS[k][0], "value") for k in _REVENUE),
    Row("revenue", "revenue", "formula"),
    Row("h_costs", "operating costs", "section"),
    *(Row(k, VALUE_ROWS[k][0], "value") for k in _COSTS),
    Row("property_tax", VALUE_ROWS["property_tax"][0], "value"),
    Row("costs", "operating costs", "formula"),
    Row("ebitda", "EBITDA", "formula"),
    Row("h_tax", "income tax", "section"),
    Row("depreciation", VALUE_ROWS["depreciation"][0], "value"),
    Row("interest", VALUE_ROWS["interest"][0], "value"),
    Row("site_sale", VALUE_ROWS["site_sale"][0], "value", "not operating: after EBITDA"),
    Row("exit_value", "exit value before tax (at T)", "value", "taxed in the last year"),
    Row("taxable", "taxable income", "formula", "the exit in the last year"),
    Row("used", "carried loss used", "formula"),
    Row("carried", "loss carried, end of year", "formula"),
    Row("income_tax", "income tax", "formula"),
    Row("taxable_u", "taxable income without the interest", "formula"),
    Row("used_u", "carried loss used, without the interest", "formula"),
    Row("carried_u", "loss carried without the interest, end of year", "formula"),
    Row("tax_u", "income tax without the interest", "formula"),
    Row("shield", "tax the interest saves", "formula"),
    Row("h_capex", "capex", "section"),
    *(Row(k, VALUE_ROWS[k][0], "value") for k in _CAPEX),
    Row("capex", "capex", "formula"),
    Row("tenant_capex", "tenant-funded capex", "value", "the tenant's, not a flow here"),
    Row("h_debt", "project debt", "section"),
    *(Row(k, VALUE_ROWS[k][0], "value") for k in ("draws", "refinancing", "service")),
    Row("written_off", VALUE_ROWS["written_off"][0], "value"),
    Row("principal", "principal repaid (capitalised interest below 0)", "formula"),
    Row("balance", "balance owed, end of year", "formula"),
    Row("cfads", "cash flow available for debt service", "formula"),
    Row("dscr", "DSCR (CFADS / debt service less a refinancing)", "formula"),
    Row("h_flows", "cash flows", "section"),
    Row("unlevered", "unlevered cash flow, after tax", "formula"),
    Row("financing", "the debt's flows", "formula"),
    Row("equity", "equity cash flow", "formula"),
    Row("h_value", "value", "section"),
    Row("first_month", "first month of the year (month 0 is the start)", "value"),
    Row("months", "months in the year", "value"),
    Row("factor_u", "discount factor, unlevered rate (mean of the months)", "formula"),
    Row("market_rate", "the debt's market rate [1/yr] (column B)", "value"),
    Row("factor_m", "discount factor, the debt's rate (mean of the months)", "formula"),
    Row("adjust_u", "adjustment to siteopt's PV, unlevered", "value", "months; each scenario"),
    Row("adjust_m", "adjustment to siteopt's PV, debt", "value", "months; each scenario"),
    Row("pv_u", "PV of the unlevered flows", "result"),
    Row("pv_m", "PV of the debt's flows and its interest's tax saving", "result"),
    Row("npv", "NPV (adjusted present value)", "result"),
    Row("siteopt_npv", "siteopt's E[NPV], as reported", "result"),
    Row("h_returns", "returns over keeping the site hashing", "section"),
    Row("hashing", "equity cash flow had the site kept hashing", "value", "no debt: unlevered"),
    Row("equity_over", "equity cash flow over hashing", "formula"),
    Row("unlevered_over", "unlevered cash flow over hashing", "formula"),
    Row("equity_year", "equity over hashing, the exit at the last year's end", "formula"),
    Row("unlevered_year", "unlevered over hashing, the exit at the last year's end", "formula"),
    Row("equity_irr", "equity IRR over hashing, of the yearly flows", "result"),
    Row("unlevered_irr", "unlevered IRR over hashing, of the yearly flows", "result"),
)
FIRST_ROW = 3  # rows 1-2: the title and the header


class Layout:
    """Where each row and year sits: the same on every sheet, so the plan adds cells."""

    def __init__(self, portfolio: Portfolio) -> None:
        self.years = [portfolio.start_year + k for k in range(len(year_months(portfolio)))]
        self.months = portfolio.months
        self.row = {r.key: FIRST_ROW + k for k, r in enumerate(ROWS)}
        self.year_cols = [get_column_letter(FIRST_COLUMN + k) for k in range(len(self.years))]
        self.exit_col = get_column_letter(FIRST_COLUMN + len(self.years))
        self.total_col = get_column_letter(FIRST_COLUMN + len(self.years) + 1)

    def at(self, key: str, col: str) -> str:
        return f"{col}{self.row[key]}"

    def span(self, key: str, with_exit: bool = False) -> str:
        last = self.exit_col if with_exit else self.year_cols[-1]
        return f"{self.year_cols[0]}{self.row[key]}:{last}{self.row[key]}"


def _input(key: str) -> str:
    return f"'{INPUTS_SHEET}'!$B${INPUTS[key][1]}"


def year_formula(key: str, lay: Layout, k: int) -> str | None:
    """The formula of row ``key`` in the k-th year's column."""
    c = lay.year_cols[k]
    prev = lay.year_cols[k - 1] if k > 0 else None
    last = k == len(lay.year_cols) - 1
    at = lambda name: lay.at(name, c)  # noqa: E731
    rate, carry, limit = _input("tax_rate"), _input("carry"), _input("nol_limit")
    exit_cell = lay.at("exit_value", lay.exit_col)

    def before(name: str) -> str:
        return lay.at(name, prev) if prev else "0"

    def taxes(taxable: str, used: str, carried: str) -> dict[str, str]:
        return {
            used: f"=IF({carry}=1,MIN({before(carried)},{limit}*MAX({at(taxable)},0)),0)",
            carried: f"=IF({carry}=1,{before(carried)}-{at(used)}+MAX(-{at(taxable)},0),0)",
        }

    exit_part = f"+{exit_cell}" if last else ""
    formulas = {
        "revenue": f"=SUM({at('rent')}:{at('ppa')})",
        "costs": f"=SUM({at('mining_power')}:{at('property_tax')})",
        "ebitda": f"={at('revenue')}+{at('costs')}",
        "taxable": (
            f"={at('ebitda')}+{at('site_sale')}+{at('depreciation')}+{at('interest')}{exit_part}"
        ),
        "income_tax": (
            f"=IF({carry}=1,-{rate}*MAX({at('taxable')}-{at('used')},0),-{rate}*{at('taxable')})"
        ),
        "taxable_u": f"={at('ebitda')}+{at('site_sale')}+{at('depreciation')}{exit_part}",
        "tax_u": (
            f"=IF({carry}=1,-{rate}*MAX({at('taxable_u')}-{at('used_u')},0),"
            f"-{rate}*{at('taxable_u')})"
        ),
        "shield": f"={at('income_tax')}-{at('tax_u')}",
        "capex": f"=SUM({at('landlord_capex')}:{at('other_capex')})",
        "principal": f"={at('service')}+{at('interest')}",
        "balance": (
            f"={before('balance')}+{at('draws')}-{at('interest')}-{at('service')}"
            f"-{at('written_off')}"
        ),
        "cfads": f"={at('ebitda')}+{at('income_tax')}+{at('asic_capex')}+{at('other_capex')}",
        "dscr": (
            f"=IF({at('service')}-{at('refinancing')}>0,"
            f'{at("cfads")}/({at("service")}-{at("refinancing")}),"")'
        ),
        "unlevered": f"={at('ebitda')}+{at('site_sale')}+{at('tax_u')}+{at('capex')}",
        "financing": f"={at('draws')}-{at('service')}",
        "equity": f"={at('unlevered')}+{at('financing')}+{at('shield')}",
        "factor_u": _factor(_input("discount_rate"), at("first_month"), at("months")),
        "factor_m": _factor(f"$B${lay.row['market_rate']}", at("first_month"), at("months")),
        "equity_over": f"={at('equity')}-{at('hashing')}",
        "unlevered_over": f"={at('unlevered')}-{at('hashing')}",
        "equity_year": f"={at('equity_over')}"
        + (f"+{lay.at('equity_over', lay.exit_col)}" if last else ""),
        "unlevered_year": f"={at('unlevered_over')}"
        + (f"+{lay.at('unlevered_over', lay.exit_col)}" if last else ""),
    }
    formulas |= taxes("taxable", "used", "carried") | taxes("taxable_u", "used_u", "carried_u")
    return formulas.get(key)


def _factor(rate: str, first: str, months: str) -> str:
    """Mean over the year's months of (1 + rate)^(-t / 12), t = first .. first + months - 1
    (1 at a rate of 0)."""
    v = f"(1+{rate})^(-1/12)"
    return f"=IF({rate}=0,1,{v}^{first}*(1-{v}^{months})/({months}*(1-{v})))"


def exit_formula(key: str, lay: Layout) -> str | None:
    """The formula of row ``key`` in the exit column."""
    x, last = lay.exit_col, lay.year_cols[-1]
    return {
        "unlevered": f"={lay.at('exit_value', x)}",
        "financing": f"=-{lay.at('balance', last)}",
        "equity": f"={lay.at('unlevered', x)}+{lay.at('financing', x)}",
        "equity_over": f"={lay.at('equity', x)}-{lay.at('hashing', x)}",
        "unlevered_over": f"={lay.at('unlevered', x)}-{lay.at('hashing', x)}",
        "factor_u": f"=(1+{_input('discount_rate')})^(-{lay.months}/12)",
        "factor_m": f"=(1+$B${lay.row['market_rate']})^(-{lay.months}/12)",
    }.get(key)


def result_formula(key: str, lay: Layout) -> str | None:
    """The formula of a result row (in the first year's column)."""
    at0 = lay.year_cols[0]
    return {
        "pv_u": (
            f"=SUMPRODUCT({lay.span('unlevered', True)},{lay.span('factor_u', True)})"
            f"+SUM({lay.span('adjust_u')})"
        ),
        "pv_m": (
            f"=SUMPRODUCT({lay.span('financing', True)},{lay.span('factor_m', True)})"
            f"+SUMPRODUCT({lay.span('shield')},{lay.span('factor_m')})"
            f"+SUM({lay.span('adjust_m')})"
        ),
        "npv": f"={lay.at('pv_u', at0)}+{lay.at('pv_m', at0)}",
        "equity_irr": f"=IRR({lay.span('equity_year')})",
        "unlevered_irr": f"=IRR({lay.span('unlevered_year')})",
    }.get(key)


# ------------------------------------------------------------ the same, in Python


def evaluate(flows: SheetFlows, portfolio: Portfolio) -> dict[str, np.ndarray]:
    """The formula rows of a sheet at its values, as the workbook computes them (by year;
    the exit column apart): what the adjustments are measured against."""
    r = dict(flows.rows)
    tax = portfolio.tax
    rate, carry = tax.income_rate, tax.losses == "carry_forward"
    ebitda = sum(r[k] for k in _OPERATING)
    exit_last = np.zeros_like(ebitda)
    exit_last[-1] = flows.exit_value

    def income_tax(taxable: np.ndarray) -> np.ndarray:
        if carry:
            return -carried_forward(taxable, rate)
        return -rate * taxable

    sale = r["site_sale"]  # not operating: after EBITDA, taxed with it
    income = income_tax(ebitda + sale + r["depreciation"] + r["interest"] + exit_last)
    unlevered_tax = income_tax(ebitda + sale + r["depreciation"] + exit_last)
    capex = sum(r[k] for k in _CAPEX)
    return {
        "ebitda": ebitda,
        "income_tax": income,
        "shield": income - unlevered_tax,
        "unlevered": ebitda + sale + unlevered_tax + capex,
        "financing": r["draws"] - r["service"],
    }


def year_factors(rate: float, portfolio: Portfolio) -> np.ndarray:
    """The mean discount factor of each year's months at ``rate``."""
    d = (1.0 + rate) ** (-np.arange(portfolio.months) / 12.0)
    return np.array([d[m].mean() for m in year_months(portfolio)])


def adjustments(flows: SheetFlows, portfolio: Portfolio) -> tuple[np.ndarray, np.ndarray]:
    """What siteopt's PV of each year adds to the sheet's: (unlevered, debt)."""
    rows = evaluate(flows, portfolio)
    unlevered = flows.unlevered_pv - rows["unlevered"] * year_factors(
        portfolio.discount_rate, portfolio
    )
    debt = flows.financing_pv - (rows["financing"] + rows["shield"]) * year_factors(
        flows.market_rate, portfolio
    )
    return unlevered, debt


# ------------------------------------------------------------ the workbook


def plan_sheets(outcome: SolveOutcome, summary: dict[str, Any]) -> list[SheetFlows]:
    """A SheetFlows per converted or sold site (past MAX_SITE_SHEETS, the rest together),
    then one for the sites that keep hashing."""
    portfolio = outcome.valuation.portfolio
    frame = pd.concat([outcome.cashflows, outcome.memo], ignore_index=True)
    npv = {s["name"]: s["expected_npv_usd"] for s in summary["sites"]}
    sheets, hashing, others = [], [], []
    for option in outcome.chosen:
        site = portfolio.sites[option.site_index]
        if option.hashes:
            hashing.append(site.name)
            continue
        if len(sheets) == MAX_SITE_SHEETS:
            others.append(option)
            continue
        sheets.append(
            sheet_flows(
                portfolio,
                frame,
                [site.name],
                f"{site.name}: {option.label}",
                [_market_rate(portfolio, option)],
                npv[site.name],
                None if option.sells else outcome.hashing_cashflows,
            )
        )
    if others:
        names = [portfolio.sites[o.site_index].name for o in others]
        rates = [_market_rate(portfolio, o) for o in others]
        sheets.append(
            sheet_flows(
                portfolio,
                frame,
                names,
                OTHERS_SHEET,
                rates,
                sum(npv[n] for n in names),
                outcome.hashing_cashflows,
            )
        )
    if hashing:
        sheets.append(
            sheet_flows(
                portfolio,
                frame,
                hashing,
                HASHING_SHEET,
                [portfolio.financing.debt.rate] * len(hashing),
                sum(npv[n] for n in hashing),
            )
        )
    return sheets


def _market_rate(portfolio: Portfolio, option: SiteOption) -> float:
    """The market rate of an option's debt (a sale has none: the portfolio's)."""
    if option.contract_index is None:
        return portfolio.financing.debt.rate
    return Loan.of(portfolio, portfolio.contracts[option.contract_index]).market_rate


def proforma_bytes(outcome: SolveOutcome, summary: dict[str, Any], inputs: list) -> bytes:
    """The .xlsx file's bytes; ``inputs``: the scenario's (path, value) rows."""
    portfolio = outcome.valuation.portfolio
    sheets = plan_sheets(outcome, summary)
    lay = Layout(portfolio)
    book = Workbook()
    plan = book.active
    plan.title = PLAN_SHEET
    names = sheet_names([s.title.split(":")[0] for s in sheets])
    for flows, name in zip(sheets, names, strict=True):
        write_site(book.create_sheet(name), flows, lay, portfolio)
    write_plan(plan, names, lay, summary, any(s.hashing is not None for s in sheets))
    write_sources(book.create_sheet(SOURCES_SHEET), sheets, names, lay)
    write_inputs(book.create_sheet(INPUTS_SHEET), portfolio, inputs)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def sheet_names(titles: Sequence[str]) -> list[str]:
    """Excel sheet names for ``titles``: at most 31 characters, none of the reserved ones,
    unique ignoring case."""
    taken = {n.lower() for n in (PLAN_SHEET, SOURCES_SHEET, INPUTS_SHEET, "history")}
    out = []
    for title in titles:
        name, k = title[:31], 1
        while name.lower() in taken:
            k += 1
            name = f"{title[: 31 - len(str(k)) - 1]}~{k}"
        taken.add(name.lower())
        out.append(name)
    return out


def _header(ws: Worksheet, title: str, lay: Layout) -> None:
    ws["A1"] = title
    ws["A1"].font = Font(bold=True, size=12)
    header = ["line [USD, nominal, expected]", "note", *lay.years, "exit at T", "total"]
    for j, value in enumerate(header, start=1):
        cell = ws.cell(row=2, column=j, value=value)
        cell.font = Font(bold=True)
        cell.fill = _SECTION_FILL
    ws.freeze_panes = f"{lay.year_cols[0]}3"
    ws.column_dimensions["A"].width = 52
    ws.column_dimensions["B"].width = 22


def write_site(ws: Worksheet, flows: SheetFlows, lay: Layout, portfolio: Portfolio) -> None:
    """One site's sheet (or the hashing sites' together)."""
    _header(ws, flows.title, lay)
    adjust_u, adjust_m = adjustments(flows, portfolio)
    years = year_months(portfolio)
    values = dict(flows.rows) | {
        "hashing": flows.hashing[:-1] if flows.hashing is not None else None,
        "tenant_capex": flows.tenant_capex,
        "first_month": np.array([float(m[0]) for m in years]),
        "months": np.array([float(len(m)) for m in years]),
        "adjust_u": adjust_u,
        "adjust_m": adjust_m,
    }
    results = {"siteopt_npv": flows.siteopt_npv}
    for row in ROWS:
        if flows.hashing is None and row.key in _RETURN_ROWS:
            continue  # the sites that keep hashing have no returns over hashing
        r = lay.row[row.key]
        ws.cell(row=r, column=1, value=row.label)
        if row.note:
            ws.cell(row=r, column=2, value=row.note)
        if row.kind == "section":
            ws.cell(row=r, column=1).font = Font(bold=True)
            ws.cell(row=r, column=1).fill = _SECTION_FILL
            continue
        if row.key == "market_rate":
            ws.cell(row=r, column=2, value=flows.market_rate)
            continue
        if row.kind == "result":
            formula = result_formula(row.key, lay)
            ws[lay.at(row.key, lay.year_cols[0])] = (
                formula if formula is not None else results[row.key]
            )
            _format(ws[lay.at(row.key, lay.year_cols[0])], row.key)
            continue
        for k, col in enumerate(lay.year_cols):
            value = None
            if row.kind == "value" and values.get(row.key) is not None:
                value = float(values[row.key][k])
            if row.kind == "formula":
                value = year_formula(row.key, lay, k)
            if value is not None:
                ws[lay.at(row.key, col)] = value
                _format(ws[lay.at(row.key, col)], row.key)
        exits = {"exit_value": flows.exit_value}
        if flows.hashing is not None:
            exits["hashing"] = float(flows.hashing[-1])
        exit_value = exits.get(row.key)
        if exit_value is None and row.kind == "formula":
            exit_value = exit_formula(row.key, lay)
        if exit_value is not None:
            ws[lay.at(row.key, lay.exit_col)] = exit_value
            _format(ws[lay.at(row.key, lay.exit_col)], row.key)
        if row.kind in ("value", "formula") and row.key not in _NO_TOTAL:
            span = lay.span(row.key, with_exit=row.key in _WITH_EXIT)
            ws[lay.at(row.key, lay.total_col)] = f"=SUM({span})"
            _format(ws[lay.at(row.key, lay.total_col)], row.key)


_NO_TOTAL = {
    "carried", "carried_u", "balance", "dscr", "first_month", "months", "factor_u", "factor_m",
    "market_rate",
}  # fmt: skip
_WITH_EXIT = {
    "exit_value", "unlevered", "financing", "equity", "hashing", "equity_over", "unlevered_over",
}  # fmt: skip
_RETURN_ROWS = {
    "h_returns", "hashing", "equity_over", "unlevered_over", "equity_year", "unlevered_year",
    "equity_irr", "unlevered_irr",
}  # fmt: skip


def _format(cell: Any, key: str) -> None:
    if key in ("dscr",):
        cell.number_format = "0.00"
    elif key in ("equity_irr", "unlevered_irr"):
        cell.number_format = "0.0%"
    elif key in ("factor_u", "factor_m"):
        cell.number_format = "0.000000"
    elif key in ("first_month", "months"):
        cell.number_format = "0"
    else:
        cell.number_format = _MONEY


def write_plan(
    ws: Worksheet,
    names: Sequence[str],
    lay: Layout,
    summary: dict[str, Any],
    converted: bool = True,
) -> None:
    """The plan: each line the sum of the sheets' (their taxes each the sheet's own), its
    DSCR, IRRs and NPV over them; without a ``converted`` site, no returns over hashing."""
    _header(ws, f"{summary['scenario']}: the plan", lay)
    sheets = [f"'{n}'!" for n in names]
    own = {"dscr", "equity_year", "unlevered_year", "equity_irr", "unlevered_irr", "siteopt_npv"}
    for row in ROWS:
        if not converted and row.key in _RETURN_ROWS:
            continue  # nothing converted: no returns over hashing (an IRR of zeros)
        r = lay.row[row.key]
        ws.cell(row=r, column=1, value=row.label)
        if row.kind == "section":
            ws.cell(row=r, column=1).font = Font(bold=True)
            ws.cell(row=r, column=1).fill = _SECTION_FILL
            continue
        if row.key in ("first_month", "months", "factor_u", "factor_m", "market_rate",
                       "adjust_u", "adjust_m", "pv_u", "pv_m"):  # fmt: skip
            continue
        if row.kind == "result":
            cell = lay.at(row.key, lay.year_cols[0])
            if row.key == "npv":
                ws[cell] = "=" + "+".join(f"{s}{cell}" for s in sheets)
            elif row.key == "siteopt_npv":
                ws[cell] = float(summary["expected_npv_usd"])
            else:
                ws[cell] = result_formula(row.key, lay)
            _format(ws[cell], row.key)
            continue
        cols = [*lay.year_cols, lay.exit_col]
        for k, col in enumerate(cols):
            cell = lay.at(row.key, col)
            if row.key in own:
                formula = year_formula(row.key, lay, k) if col != lay.exit_col else None
            else:
                formula = "=" + "+".join(f"{s}{cell}" for s in sheets)
            if formula is not None:
                ws[cell] = formula
                _format(ws[cell], row.key)


def write_sources(
    ws: Worksheet, sheets: Sequence[SheetFlows], names: Sequence[str], lay: Layout
) -> None:
    """Sources and uses of each conversion's build: the uses (the landlord's capex with an
    AI cloud's GPUs, and the tenant's), the sources (equity, project debt and a GPU loan,
    the tenant), and their difference."""
    ws.append(["conversion", "uses: landlord's capex and GPUs", "uses: tenant-funded capex",
               "uses",
               "sources: equity", "sources: project debt", "sources: tenant", "sources",
               "sources less uses"])  # fmt: skip
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = _SECTION_FILL
    total = lay.total_col
    for flows, name in zip(sheets, names, strict=True):
        if flows.title == HASHING_SHEET:
            continue
        k = ws.max_row + 1
        ws.append([
            flows.title,
            f"=-'{name}'!{lay.at('landlord_capex', total)}-'{name}'!{lay.at('gpu_capex', total)}",
            f"='{name}'!{lay.at('tenant_capex', total)}",
            f"=B{k}+C{k}",
            flows.equity,
            flows.capex_debt,
            f"=C{k}",
            f"=E{k}+F{k}+G{k}",
            f"=H{k}-D{k}",
        ])  # fmt: skip
        for cell in ws[ws.max_row][1:]:
            cell.number_format = _MONEY
    ws.column_dimensions["A"].width = 48
    for j in range(2, 10):
        ws.column_dimensions[get_column_letter(j)].width = 20


def write_inputs(ws: Worksheet, portfolio: Portfolio, inputs: list) -> None:
    """The cells the formulas read, then every input of the scenario."""
    ws.append(["input", "value"])
    tax = portfolio.tax
    values = {
        "tax_rate": tax.income_rate,
        "carry": 1 if tax.losses == "carry_forward" else 0,
        "nol_limit": NOL_USE_LIMIT,
        "discount_rate": portfolio.discount_rate,
    }
    for key, (label, row) in INPUTS.items():
        ws.cell(row=row, column=1, value=label)
        ws.cell(row=row, column=2, value=values[key])
    ws.append([])
    ws.append(["the scenario's inputs (as --set takes them)", None])
    for path, value in inputs:
        ws.append([path, value])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = _SECTION_FILL
    ws.column_dimensions["A"].width = 64
    ws.column_dimensions["B"].width = 24
