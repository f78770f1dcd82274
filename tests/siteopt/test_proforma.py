"""proforma.xlsx recalculated by an Excel engine (the ``formulas`` library): its formulas
give siteopt's figures, and an edited line moves EBITDA, CFADS, the NPV and the IRR as the
formulas say."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

import siteopt
from siteopt.app.finance import irr
from siteopt.output.proforma import PLAN_SHEET, SOURCES_SHEET, Layout, year_months

formulas = pytest.importorskip("formulas")

TEXAS = Path(__file__).resolve().parents[2] / "scenarios" / "texas.yaml"


def recalculate(path: Path) -> dict[tuple[str, str], object]:
    """Every formula cell's value, by (sheet in lower case, cell), as the engine computes it."""
    model = formulas.ExcelModel().loads(str(path)).finish()
    values = {}
    for key, solution in model.calculate().items():
        found = re.match(r"'\[.+?\](.+?)'!([A-Z]+\d+)$", key)
        if found:
            value = solution.value[0][0] if hasattr(solution, "value") else solution
            values[(found.group(1).lower(), found.group(2))] = value
    return values


@pytest.fixture(scope="module")
def texas(tmp_path_factory):
    run = siteopt.solve(siteopt.load(TEXAS), scenarios=300, seed=7, backend="numpy", explain=False)
    out = tmp_path_factory.mktemp("proforma")
    run.write(out, report=False)
    return run, out / "proforma.xlsx", recalculate(out / "proforma.xlsx")


def _cell(values, sheet: str, key: str, col: str, lay: Layout):
    return values[(sheet.lower(), lay.at(key, col))]


def test_the_recalculated_npvs_and_lines_are_siteopt_s(texas):
    run, path, values = texas
    portfolio = run.outcome.valuation.portfolio
    lay = Layout(portfolio)
    book = openpyxl.load_workbook(path)
    converted = [s for s in run.summary["sites"] if s["option"] != "hash"]  # or sold
    assert book.sheetnames[: len(converted) + 1] == [
        PLAN_SHEET, *(s["name"] for s in converted)
    ]  # fmt: skip
    cashflows = pd.read_csv(path.parent / "cashflows.csv")
    first = lay.year_cols[0]
    for site in converted:
        name = site["name"]
        npv = _cell(values, name, "npv", first, lay)
        assert npv == pytest.approx(site["expected_npv_usd"], rel=1e-9), name
        # EBITDA and the tax of each year: cashflows.csv's lines summed (losses offset)
        mine = cashflows[cashflows["site"] == name]
        wide = mine.pivot_table(index="month", columns="line_item", values="usd", sort=True)
        months = year_months(portfolio)
        operating = [c for c in wide.columns if c.startswith(("mining_", "ai_rent", "ai_opex",
                     "ai_power", "ai_property", "ppa"))]  # fmt: skip
        ebitda = wide[operating].sum(axis=1).to_numpy()
        for k, col in enumerate(lay.year_cols):
            want = float(ebitda[months[k]].sum())
            assert _cell(values, name, "ebitda", col, lay) == pytest.approx(want, abs=1e-3)
            tax = float(wide["income_tax"].to_numpy()[months[k]].sum())
            if k < len(lay.year_cols) - 1:  # the last year's holds the exit's tax too
                got = _cell(values, name, "income_tax", col, lay)
                assert got == pytest.approx(tax, rel=1e-9, abs=1e-3)
        if not site["contract"]:
            continue  # a site sold: no debt, and no returns over hashing
        # the debt's balance at the end is what siteopt says is owed at T
        owed = float(run.outcome.memo.query("site == @name and line_item == 'debt_owed_at_end'")
                     ["usd"].sum())  # fmt: skip
        assert _cell(values, name, "balance", lay.year_cols[-1], lay) == pytest.approx(
            owed, rel=1e-9, abs=1e-3
        )
        # the IRR over hashing of the yearly flows, as siteopt's irr computes it
        flows = [_cell(values, name, "equity_year", c, lay) for c in lay.year_cols]
        assert _cell(values, name, "equity_irr", first, lay) == pytest.approx(
            irr(np.array(flows), per_year=1), rel=1e-6
        )
    plan_npv = _cell(values, PLAN_SHEET, "npv", first, lay)
    assert plan_npv == pytest.approx(run.summary["expected_npv_usd"], rel=1e-9)
    # sources equal uses for every conversion
    sources = book[SOURCES_SHEET]
    for row in range(2, sources.max_row + 1):
        assert values[(SOURCES_SHEET, f"I{row}")] == pytest.approx(0.0, abs=1e-3)


def test_an_edited_rent_moves_ebitda_cfads_npv_and_irr(texas, tmp_path):
    """$10M more rent in a site's third year: EBITDA and revenue +$10M that year, the tax
    -21% of it, CFADS and the equity flow +79%, the NPV +79% at that year's discount
    factor, and the equity IRR up; the plan's NPV by the same."""
    run, path, values = texas
    lay = Layout(run.outcome.valuation.portfolio)
    name = next(s["name"] for s in run.summary["sites"] if s["contract"])
    col, first = lay.year_cols[2], lay.year_cols[0]
    book = openpyxl.load_workbook(path)
    cell = book[name][lay.at("rent", col)]
    cell.value = float(cell.value) + 10e6
    edited = tmp_path / "edited.xlsx"
    book.save(edited)
    after = recalculate(edited)
    rate = run.outcome.valuation.portfolio.tax.income_rate

    def moved(key, col_=col, sheet=name):
        return _cell(after, sheet, key, col_, lay) - _cell(values, sheet, key, col_, lay)

    assert moved("ebitda") == pytest.approx(10e6)
    assert moved("income_tax") == pytest.approx(-rate * 10e6)
    assert moved("cfads") == pytest.approx((1 - rate) * 10e6)
    factor = _cell(values, name, "factor_u", col, lay)
    assert moved("npv", first) == pytest.approx((1 - rate) * 10e6 * factor, rel=1e-9)
    assert moved("npv", first, PLAN_SHEET) == pytest.approx(moved("npv", first), rel=1e-9)
    assert moved("equity_irr", first) > 0


def test_with_losses_carried_forward_the_npv_is_still_siteopt_s(tmp_path):
    """Carried losses: the sheet's tax runs the carry-forward on the mean income, siteopt on
    each scenario's; the adjustment row holds the difference, so the NPV is siteopt's."""
    scenario = siteopt.override(
        siteopt.load(TEXAS),
        {"tax.losses": "carry_forward"},
    )
    run = siteopt.solve(scenario, scenarios=100, seed=7, backend="numpy", explain=False)
    run.write(tmp_path, report=False)
    values = recalculate(tmp_path / "proforma.xlsx")
    lay = Layout(run.outcome.valuation.portfolio)
    assert values[(PLAN_SHEET, lay.at("npv", lay.year_cols[0]))] == pytest.approx(
        run.summary["expected_npv_usd"], rel=1e-9
    )


def _frame(months, sites):
    """cashflows.csv's long format from {site: {line: by month}}."""
    rows = [
        (site, month, line, float(v))
        for site, lines in sites.items()
        for line, values in lines.items()
        for month, v in zip(months, values, strict=True)
    ]
    return pd.DataFrame(rows, columns=["site", "month", "line_item", "usd"])


def test_a_sheet_of_several_sites_values_each_debt_at_its_own_rate():
    """Two sites' debts at 6% and 10%: the sheet shows the mean rate, and its PV of the
    debt's flows is each site's at its own (what the adjustments reconcile to); the
    tenant-funded capex is the memo line's, even where the tenant funds it all."""
    from siteopt.app.params import kernel_inputs
    from siteopt.output.proforma import sheet_flows

    from ..kernels.helpers import one_site_ai

    portfolio = kernel_inputs(one_site_ai())  # 2027-01, 4 years
    months = [f"{2027 + m // 12}-{m % 12 + 1:02d}" for m in range(48)]
    draw, pay = np.zeros(48), np.zeros(48)
    draw[0], pay[30] = 100.0, -150.0
    tenant = np.zeros(48)
    tenant[3] = 40.0
    frame = _frame(
        months,
        {
            "a": {"debt_draw": draw, "debt_service": pay, "tenant_capex": tenant},
            "b": {"debt_draw": 2 * draw, "debt_service": 2 * pay},
        },
    )
    flows = sheet_flows(portfolio, frame, ["a", "b"], "others", [0.06, 0.10], 0.0)
    assert flows.market_rate == pytest.approx(0.08)
    pv = lambda rate, k: 1.0 / (1.0 + rate) ** (k / 12.0)  # noqa: E731
    want = 100.0 - 150.0 * pv(0.06, 30) + 200.0 - 300.0 * pv(0.10, 30)
    assert flows.financing_pv.sum() == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(flows.tenant_capex, [40.0, 0.0, 0.0, 0.0])


def test_a_plan_that_converts_nothing_has_no_returns_over_hashing(tmp_path):
    """Every site keeps hashing: the plan sheet writes no IRR of zero flows (#NUM!), and
    its NPV is still siteopt's."""
    from ..kernels.helpers import build, zero_volatility_dict

    scenario = build(zero_volatility_dict(), {"start": "2027-07", "horizon_years": 2})
    run = siteopt.solve(scenario, scenarios=50, seed=7, backend="numpy", explain=False)
    assert not any(s["contract"] for s in run.summary["sites"])
    run.write(tmp_path, report=False)
    values = recalculate(tmp_path / "proforma.xlsx")
    lay = Layout(run.outcome.valuation.portfolio)
    first = lay.year_cols[0]
    assert (PLAN_SHEET, lay.at("equity_irr", first)) not in values
    assert values[(PLAN_SHEET, lay.at("npv", first))] == pytest.approx(
        run.summary["expected_npv_usd"], rel=1e-9
    )
    assert not any(str(v).startswith("#") for v in values.values())


def test_an_ai_cloud_and_a_powered_shell_recalculate_to_siteopt_s_npv(tmp_path):
    """Budgets that bind nowhere: odessa-campus takes the cloud contract (GPUs, their loan,
    the prepayment) and sweetwater-pad the powered shell; each sheet's NPV is still
    siteopt's, and its sources (the GPU loan among them) still pay for its uses."""
    budgets = {f"financing.capital_budget_usd.{y}": 1e10 for y in (2027, 2028, 2029)}
    scenario = siteopt.override(siteopt.load(TEXAS), budgets)
    run = siteopt.solve(scenario, scenarios=300, seed=7, backend="numpy", explain=False)
    taken = dict(zip(run.plan["site"], run.plan["contract"], strict=True))
    assert taken["odessa-campus"] == "cloud-gb300" and taken["sweetwater-pad"] == "shell-e"
    run.write(tmp_path, report=False)
    values = recalculate(tmp_path / "proforma.xlsx")
    lay = Layout(run.outcome.valuation.portfolio)
    for site in run.summary["sites"]:
        if site["contract"]:
            npv = _cell(values, site["name"], "npv", lay.year_cols[0], lay)
            assert npv == pytest.approx(site["expected_npv_usd"], rel=1e-9), site["name"]
    book = openpyxl.load_workbook(tmp_path / "proforma.xlsx")
    for row in range(2, book[SOURCES_SHEET].max_row + 1):
        assert values[(SOURCES_SHEET, f"I{row}")] == pytest.approx(0.0, abs=1e-3)
    cloud = next(r for r in range(2, 20) if "cloud-gb300" in book[SOURCES_SHEET][f"A{r}"].value)
    uses = values[(SOURCES_SHEET, f"B{cloud}")]
    assert uses > 29e6 * 100  # the GPUs are among the uses
