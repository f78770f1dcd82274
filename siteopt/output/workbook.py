"""plan.xlsx: the run's tables as one workbook (docs/cli.md): plan, options, annual cash
flows, assumptions (every input of the scenario, defaults filled in) and warnings, one sheet
each, with the unit of every column in its
header ("equity_capex_usd [USD]"), the header frozen and money in whole dollars.

The numbers are the CSVs' and summary.json's; nothing here computes a statistic.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet

# returns columns of the plan sheet, from summary.json sites[].returns and yield_on_cost
RETURN_COLUMNS = (
    "equity_irr",
    "unlevered_irr",
    "equity_multiple",
    "payback_year",
    "min_dscr",
    "min_dscr_year",
    "yield_on_total_cost",
    "yield_on_landlord_cost",
)
PORTFOLIO_ROW = "(portfolio)"

_UNITS = {  # exact names first, then the suffix rules of _unit
    "ai_it_mw": "MW IT",
    "mining_mw": "MW grid",
    "build_year": "year",
    "year": "year",
    "payback_year": "year",
    "min_dscr_year": "year",
    "online_month": "month index",
    "equity_irr": "1/yr",
    "unlevered_irr": "1/yr",
    "equity_multiple": "x",
    "min_dscr": "x",
    "yield_on_total_cost": "1/yr",
    "yield_on_landlord_cost": "1/yr",
}
_RATES = {"equity_irr", "unlevered_irr", "yield_on_total_cost", "yield_on_landlord_cost"}
_HEADER_FILL = PatternFill("solid", fgColor="F2F4F8")


def _unit(column: str, money_columns: Sequence[str] = ()) -> str | None:
    """The unit of a column by its name: plan.csv's and options.csv's conventions."""
    if column in _UNITS:
        return _UNITS[column]
    if column.endswith("_usd") or column in money_columns:
        return "USD"
    if re.fullmatch(r".*_usd_mw(_\w+)?", column):
        return "USD/MW"
    return None


def plan_sheet(plan: pd.DataFrame, summary: dict[str, Any]) -> pd.DataFrame:
    """plan.csv with each site's returns, then a portfolio row (totals; the plan's CVaR and
    returns, which are not sums)."""
    frame = plan.copy()
    sites = summary["sites"]
    for column in RETURN_COLUMNS:
        frame[column] = [_return_of(site, column) for site in sites]
    total: dict[str, Any] = dict.fromkeys(frame.columns)
    total["site"] = PORTFOLIO_ROW
    for column in ("ai_it_mw", "mining_mw", "equity_capex_usd", "debt_usd", "leverage_usd"):
        if column in frame:
            total[column] = float(frame[column].sum())
    total["expected_npv_usd"] = summary["expected_npv_usd"]
    total["cvar_usd"] = summary["cvar_usd"]
    if "expected_terminal_pv_usd" in frame:
        total["expected_terminal_pv_usd"] = float(frame["expected_terminal_pv_usd"].sum())
    for column in RETURN_COLUMNS:
        if column in (summary.get("returns") or {}):
            total[column] = summary["returns"][column]
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)


def _return_of(site: dict[str, Any], column: str) -> Any:
    if column.startswith("yield_on_"):
        return (site.get("yield_on_cost") or {}).get(column.removeprefix("yield_"))
    return (site.get("returns") or {}).get(column)


def scenario_inputs(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every input of a scenario (``model_dump(mode="json")``) as (path, value) rows, every
    default filled in; the paths are those ``--set`` takes (list items by ``name``), and a
    list of plain values or unnamed items is one cell of JSON."""
    if isinstance(data, dict):
        rows = []
        for key, value in data.items():
            rows += scenario_inputs(value, f"{prefix}.{key}" if prefix else str(key))
        return rows
    named = (
        isinstance(data, list) and data and all(isinstance(v, dict) and "name" in v for v in data)
    )
    if named:
        rows = []
        for item in data:
            rest = {k: v for k, v in item.items() if k != "name"}
            rows += scenario_inputs(rest, f"{prefix}.{item['name']}")
        return rows
    if isinstance(data, list | dict):
        return [(prefix, json.dumps(data))]
    return [(prefix, data)]


def workbook_bytes(
    plan: pd.DataFrame,
    options: pd.DataFrame,
    annual: pd.DataFrame,
    inputs: Sequence[tuple[str, Any]],
    summary: dict[str, Any],
) -> bytes:
    """The .xlsx file's bytes; ``inputs`` from scenario_inputs."""
    book = Workbook()
    line_items = [c for c in annual.columns if c not in ("site", "year")]
    sheets = [
        ("plan", plan_sheet(plan, summary), ()),
        ("options", options, ()),
        ("annual cash flows", annual, line_items),
    ]
    first = True
    for title, frame, money in sheets:
        ws = book.active if first else book.create_sheet()
        first = False
        ws.title = title
        _write_frame(ws, frame, money)
    _write_rows(book.create_sheet("assumptions"), ["input", "value"], [list(r) for r in inputs])
    _write_rows(
        book.create_sheet("warnings"),
        ["kind", "code", "path", "line", "message"],
        _notices(summary),
    )
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _notices(summary: dict[str, Any]) -> list[list[Any]]:
    """Every warning, broken constraint and note of the run, a row each."""
    rows: list[list[Any]] = [
        ["warning", w["code"], w["path"], w["line"], w["message"]] for w in summary["warnings"]
    ]
    rows += [["violation", None, None, None, v] for v in summary.get("violations_detail", [])]
    rows += [["note", None, None, None, n] for n in summary.get("notes", [])]
    return rows


def _write_frame(ws: Worksheet, frame: pd.DataFrame, money: Sequence[str]) -> None:
    headers = []
    for column in frame.columns:
        unit = _unit(str(column), money)
        headers.append(f"{column} [{unit}]" if unit else str(column))
    rows = [[_cell(v) for v in record] for record in frame.itertuples(index=False)]
    _write_rows(ws, headers, rows)
    for j, column in enumerate(frame.columns, start=1):
        unit = _unit(str(column), money)
        fmt = "0.0%" if column in _RATES else "#,##0" if unit in ("USD", "USD/MW") else None
        if column in ("equity_multiple", "min_dscr"):
            fmt = "0.00"
        if fmt:
            for (cell,) in ws.iter_rows(min_row=2, min_col=j, max_col=j):
                cell.number_format = fmt


def _write_rows(ws: Worksheet, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    ws.append(list(headers))
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for row in rows:
        ws.append(list(row))
    ws.freeze_panes = "A2"
    for j, header in enumerate(headers, start=1):
        longest = max([len(str(header)), *(len(str(r[j - 1])) for r in rows[:200])])
        ws.column_dimensions[get_column_letter(j)].width = min(max(10, longest + 2), 60)


def _cell(value: Any) -> Any:
    """A value openpyxl writes: None for NA/NaN, Python scalars for numpy ones."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and value != value:
        return None
    return value.item() if hasattr(value, "item") else value
