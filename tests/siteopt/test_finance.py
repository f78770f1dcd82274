"""Finance metrics (siteopt/app/finance.py): IRR, payback, equity multiple and DSCR on
hand-computed flows, the increment of a conversion over hashing, and texas end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import siteopt
from siteopt.app.finance import Increment, increment, irr, returns
from siteopt.kernels.cashflows import LINE_ITEMS

TEXAS = Path(__file__).resolve().parents[2] / "scenarios" / "texas.yaml"


def test_irr_of_hand_computed_flows():
    assert irr(np.array([-100.0, 110.0]), per_year=1) == pytest.approx(0.10, abs=1e-12)
    # 1,000 lent for a year, repaid by 12 level payments at 1% a month: 12.68% a year
    payment = 1000.0 * 0.01 / (1.0 - 1.01**-12)
    flows = np.array([-1000.0, *[payment] * 12])
    assert irr(flows) == pytest.approx(1.01**12 - 1.0, abs=1e-12)
    # a loss: -40% a year
    assert irr(np.array([-100.0, 60.0]), per_year=1) == pytest.approx(-0.4, abs=1e-12)


def test_irr_is_none_where_no_single_rate_exists():
    assert irr(np.array([100.0, 10.0])) is None  # no outlay
    assert irr(np.array([-100.0, -10.0])) is None  # never repaid
    # -100, +230, -132 has two rates, 10% and 20%: neither is "the" IRR
    two = np.array([-100.0, 230.0, -132.0])
    assert np.polyval(two[::-1], 1 / 1.1) == pytest.approx(0.0, abs=1e-9)
    assert irr(two, per_year=1) is None


def _increment(equity, noi=None, service=None, months=None):
    equity = np.asarray(equity, dtype=float)
    t = equity.size - 1
    months = months or tuple(f"{2027 + m // 12}-{m % 12 + 1:02d}" for m in range(t))
    zeros = np.zeros(t)
    return Increment(
        months,
        equity,
        equity.copy(),
        zeros if noi is None else np.asarray(noi, float),
        zeros if service is None else np.asarray(service, float),
    )


def test_payback_multiple_and_dscr_by_hand():
    # 24 months: 6 months of -10, then +5 a month; terminal 30
    monthly = [-10.0] * 6 + [5.0] * 18
    inc = _increment([*monthly, 30.0])
    r = returns(inc)
    # the cumulative flow is -60 after month 5 and back to 0 after month 17 (2028-06)
    assert r["payback_year"] == 2028
    assert r["payback_years"] == pytest.approx(18 / 12)
    assert r["equity_multiple"] == pytest.approx((18 * 5.0 + 30.0) / 60.0)
    assert r["min_dscr"] is None  # no debt
    # never repaid by the horizon: no payback year, and the terminal value does not count
    assert returns(_increment([-10.0] * 6 + [1.0] * 18 + [1e6]))["payback_year"] is None
    # DSCR: 2027 NOI 120 against 100 of debt service, 2028 NOI 90 against 100
    noi = [10.0] * 12 + [7.5] * 12
    service = [100.0 / 12] * 24
    r = returns(_increment([*monthly, 30.0], noi=noi, service=service))
    assert r["min_dscr"] == pytest.approx(0.9)
    assert r["min_dscr_year"] == 2028 and r["min_dscr_from"] == "2028-01"
    assert r["refinancing_paydown_usd"] == 0.0


def test_dscr_by_loan_year_from_the_first_rent_and_when_stabilised():
    """First rent in month 3 at half rent for 3 months (the ramp), interest only: the loan
    years run from month 3, not the calendar year; the first holds the ramp's half months,
    the stabilised window starts when the ramp ends (month 6)."""
    t = 30
    noi = np.array([0.0] * 3 + [5.0] * 3 + [10.0] * (t - 6))
    service = np.array([0.0] * 3 + [8.0] * (t - 3))
    inc = Increment(
        tuple(f"{2027 + m // 12}-{m % 12 + 1:02d}" for m in range(t)),
        np.zeros(t + 1),
        np.zeros(t + 1),
        noi,
        service,
        first_rent=3,
        stable_from=6,
        refinancing_paydown=np.array([0.0] * 20 + [12.5] + [0.0] * (t - 21)),
    )
    r = returns(inc)
    assert r["min_dscr"] == pytest.approx((3 * 5.0 + 9 * 10.0) / (12 * 8.0))
    assert r["min_dscr_from"] == "2027-04"
    assert r["stabilised_dscr"] == pytest.approx(10.0 / 8.0)
    assert r["refinancing_paydown_usd"] == pytest.approx(12.5)


def _frame(site: str, months: list[str], values: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    extra = [k for k in values if k not in (*LINE_ITEMS, "terminal_value")]
    for line in (*LINE_ITEMS, "terminal_value", *extra):
        series = values.get(line, [0.0] * len(months))
        rows += [(site, m, line, v) for m, v in zip(months, series, strict=True)]
    return pd.DataFrame(rows, columns=["site", "month", "line_item", "usd"])


def test_increment_is_the_conversion_less_hashing_and_unlevered_adds_the_debt_back():
    months = ["2027-01", "2027-02", "2027-03"]
    conv = _frame(
        "s",
        months,
        {
            "mining_revenue": [5.0, 0.0, 0.0],
            "equity_capex": [-20.0, 0.0, 0.0],
            "ai_rent": [0.0, 50.0, 50.0],
            "ai_opex": [0.0, -5.0, -5.0],
            "debt_service": [0.0, -30.0, -30.0],
            "terminal_value": [0.0, 0.0, 100.0],
            "debt_draw": [80.0, 0.0, 0.0],
            "debt_owed_at_end": [0.0, 0.0, 25.0],
        },
    )
    hashing = _frame(
        "s", months, {"mining_revenue": [5.0, 5.0, 5.0], "terminal_value": [0.0, 0.0, 40.0]}
    )
    inc = increment(conv, hashing, "s")
    np.testing.assert_allclose(inc.equity, [-20.0, 10.0, 10.0, 60.0])
    np.testing.assert_allclose(inc.unlevered, [-100.0, 40.0, 40.0, 85.0])
    np.testing.assert_allclose(inc.noi, [0.0, 45.0, 45.0])
    np.testing.assert_allclose(inc.debt_service, [0.0, 30.0, 30.0])
    with pytest.raises(ValueError, match="no cash flows"):
        increment(conv, hashing, "elsewhere")


@pytest.fixture(scope="module")
def texas_returns():
    texas = siteopt.load(TEXAS)
    return siteopt.solve(texas, scenarios=300, seed=7, backend="numpy", explain=False).summary


def test_texas_returns_per_site_and_for_the_portfolio(texas_returns):
    summary = texas_returns
    converted = [s for s in summary["sites"] if s["contract"]]
    assert converted
    assert all(s["returns"] is None for s in summary["sites"] if not s["contract"])
    irrs = []
    for site in converted:
        r = site["returns"]
        # every hall borrows at 8-9.25% and earns more unlevered: debt lifts the equity's rate
        assert r["unlevered_irr"] > 0.0925, site["name"]
        assert r["equity_irr"] > r["unlevered_irr"], site["name"]
        assert r["equity_multiple"] > 1.0
        assert 2027 <= r["payback_year"] <= 2045
        assert r["min_dscr"] > 0 and r["min_dscr_year"] >= int(site["build_year"])
        irrs.append(r["equity_irr"])
    # each increment is conventional (outlays, then income), so the portfolio's rate lies
    # between its sites'
    portfolio = summary["returns"]
    assert min(irrs) <= portfolio["equity_irr"] <= max(irrs)
    assert portfolio["payback_year"] >= min(s["returns"]["payback_year"] for s in converted)


def test_without_debt_the_equity_and_unlevered_returns_agree():
    texas = siteopt.override(
        siteopt.load(TEXAS),
        {
            "financing.debt.loan_to_cost": 0.0,
            "contracts.neocloud-b.financing.loan_to_cost": 0.0,
            "contracts.hyperscaler-tf.financing.loan_to_cost": 0.0,
        },
    )
    summary = siteopt.solve(texas, scenarios=200, seed=7, backend="numpy", explain=False).summary
    converted = [s for s in summary["sites"] if s["contract"]]
    assert converted
    for site in converted:
        r = site["returns"]
        assert r["equity_irr"] == pytest.approx(r["unlevered_irr"], rel=1e-9)
        assert r["min_dscr"] is None


def test_plan_xlsx_holds_the_csvs_and_the_returns_with_units(tmp_path):
    texas = siteopt.load(TEXAS)
    run = siteopt.solve(texas, scenarios=200, seed=7, backend="numpy", explain=False)
    run.write(tmp_path, report=False)
    book = pd.read_excel(tmp_path / "plan.xlsx", sheet_name=None)
    assert list(book) == ["plan", "options", "annual cash flows", "assumptions", "warnings"]
    plan, csv = book["plan"], pd.read_csv(tmp_path / "plan.csv")
    # every plan.csv column, its unit in the header, then the returns; a portfolio row
    assert [h.split(" [")[0] for h in plan.columns[: len(csv.columns)]] == list(csv.columns)
    assert "equity_capex_usd [USD]" in plan.columns and "ai_it_mw [MW IT]" in plan.columns
    assert "equity_irr [1/yr]" in plan.columns and "min_dscr [x]" in plan.columns
    sites, total = plan.iloc[:-1], plan.iloc[-1]
    assert total["site"] == "(portfolio)"
    np.testing.assert_allclose(sites["expected_npv_usd [USD]"], csv["expected_npv_usd"])
    assert total["expected_npv_usd [USD]"] == pytest.approx(run.summary["expected_npv_usd"])
    assert total["equity_irr [1/yr]"] == pytest.approx(run.summary["returns"]["equity_irr"])
    for site, row in zip(run.summary["sites"], sites.to_dict("records"), strict=True):
        want = (site["returns"] or {}).get("equity_irr")
        got = row["equity_irr [1/yr]"]
        assert (want is None and np.isnan(got)) or got == pytest.approx(want), site["name"]
    annual = pd.read_csv(tmp_path / "annual.csv")
    assert len(book["annual cash flows"]) == len(annual)
    np.testing.assert_allclose(book["annual cash flows"]["net [USD]"], annual["net"])
    assert len(book["options"]) == len(pd.read_csv(tmp_path / "options.csv"))
    inputs = dict(zip(book["assumptions"]["input"], book["assumptions"]["value"], strict=True))
    hyperscaler = texas.contracts[0]
    assert inputs[f"contracts.{hyperscaler.name}.price_usd_kw_month"] == pytest.approx(
        hyperscaler.price_usd_kw_month
    )
    assert inputs["simulation.scenarios"] == 200
    assert list(book["warnings"].columns) == ["kind", "code", "path", "line", "message"]


def _flows(scenario, label):
    """An option's expected cash flows with their memo lines, and keep-hashing's."""
    from siteopt.app.params import kernel_inputs
    from siteopt.kernels.cashflows import expected_cashflows
    from siteopt.kernels.sites import site_options

    k = kernel_inputs(scenario)
    opts = site_options(k, 0)
    option = next(o for o in opts if o.label == label)
    conv = expected_cashflows(k, [option], chunk_size=64, memo=True)
    hashing = expected_cashflows(k, [opts[0]], chunk_size=64)
    return conv, hashing


def test_a_refinanced_bullet_is_cash_in_the_lines_and_out_of_the_unlevered_flows():
    """A 2-year bullet, refinanced when it falls due (recourse, 21% tax): in that month the
    debt service less the new loan's draw is what the equity repays, and the unlevered
    flows are those of the same conversion without debt."""
    from ..kernels.helpers import one_site_ai

    debt = {
        "financing.debt.loan_to_cost": 0.6,
        "financing.debt.amortization": "bullet",
        "financing.debt.term_years": 2.0,
        "financing.debt.refinance": True,
        "tax.rate": 0.21,
        "simulation.scenarios": 64,
    }
    label = "ai40-2027-lease"
    conv, hashing = _flows(one_site_ai(**debt), label)
    wide = conv.pivot_table(index="month", columns="line_item", values="usd", sort=True)
    due = int(np.argmax(wide["refinancing_draw"].to_numpy()))
    assert wide["refinancing_draw"].iloc[due] > 0.0
    assert wide["debt_service"].iloc[due] + wide["refinancing_draw"].iloc[due] == pytest.approx(
        -wide["refinancing_paydown"].iloc[due], rel=1e-12
    )
    inc = increment(conv, hashing, "site")
    gross = -wide["debt_service"].to_numpy()
    assert inc.debt_service[due] == pytest.approx(gross[due] - wide["refinancing_draw"].iloc[due])
    unlevered = {**debt, "financing.debt.loan_to_cost": 0.0}
    plain = increment(*_flows(one_site_ai(**unlevered), label), "site")
    np.testing.assert_allclose(inc.unlevered, plain.unlevered, rtol=1e-9, atol=1e-3)
    np.testing.assert_allclose(plain.unlevered, plain.equity, rtol=1e-12, atol=1e-6)


def test_the_docs_name_every_cash_flow_line_and_memo_line():
    """docs/cli.md's cashflows.csv table has a row for each line item (and the terminal
    value), and its text names each memo line the finance views read."""
    import re

    from siteopt.kernels.cashflows import MEMO_ITEMS, TERMINAL_MEMOS

    text = (TEXAS.parents[1] / "docs" / "cli.md").read_text()
    section = text[text.index("### cashflows.csv") : text.index("### annual.csv")]
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| [-+/]+ \|", section, flags=re.MULTILINE)
    assert sorted(rows) == sorted([*LINE_ITEMS, "terminal_value"])
    for name in (*MEMO_ITEMS, *TERMINAL_MEMOS):
        assert f"`{name}`" in section, name
