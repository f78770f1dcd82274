"""Selling or sharing a site in the plan (issue 28): the MILP against every plan of a small
portfolio with a sale and a joint venture, and what plan.csv, the reasons and evaluate
make of a site sold."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

import siteopt
from siteopt.app.plan import plan_problem
from siteopt.app.valuation import value_options
from siteopt.model.errors import InputError
from siteopt.model.schema import Scenario
from siteopt.optimizer.solve import solve_plan

from ..kernels.helpers import random_one_site_ai
from ..optimizer.brute import check_milp_is_best


def portfolio(budget_usd: float, price_usd_mw: float = 900_000.0) -> Scenario:
    """Three copies of the random one-site case: one a buyer bids for, one a partner
    offers a JV at, one plain; a budget in the first build year only."""
    base = random_one_site_ai().model_dump(mode="json", exclude_none=True)
    site = base["sites"][0]
    sold = {
        **copy.deepcopy(site),
        "name": "bid",
        "sale": {"price_usd_mw": price_usd_mw, "months_to_close": 6, "close_prob": 0.9},
    }
    jv = {**copy.deepcopy(site), "name": "partner", "sale": {"jv_share": 0.5}}
    plain = {**copy.deepcopy(site), "name": "plain"}  # fmt: skip
    base["sites"] = [sold, jv, plain]
    base["contracts"] = base["contracts"][:1]
    base["build"]["decision_years"] = [2027, 2028]
    base["financing"]["capital_budget_usd"] = {2027: budget_usd, 2028: 0.0}
    base["simulation"] = {"scenarios": 300, "seed": 3, "risk_sample": 40}
    return Scenario.model_validate(base)


@pytest.mark.parametrize("budget_musd", [0.0, 60.0, 150.0, 600.0])
def test_the_milp_is_the_best_plan_with_sales_and_joint_ventures(budget_musd):
    s = portfolio(budget_musd * 1e6)
    table = value_options(s, backend="numpy").options
    labels = set(table.table["option"])
    assert "sell" in labels and any(label.endswith("-jv") for label in labels)
    check_milp_is_best(table, plan_problem(s), _solve)


def _solve(table, problem):
    return solve_plan(table, problem, gap_rel=1e-9)


def test_the_sale_s_proceeds_fund_the_budget():
    """Without a budget no conversion fits alone; the sale's proceeds, in the year it
    closes, let the plan build elsewhere (a negative capex)."""
    s = portfolio(0.0)
    table = value_options(s, backend="numpy").options.table.set_index(["site", "option"])
    sell = table.loc[("bid", "sell")]
    rate = s.tax.rate + s.tax.state_rate * (1 - s.tax.rate)
    after_tax = 900_000.0 * 120.0 * (1 - rate)
    assert sell["capex_2027_usd"] == pytest.approx(-0.9 * after_tax, rel=1e-12)
    assert sell["ai_it_mw"] == 0.0 and sell["contract"] == ""


@pytest.fixture(scope="module")
def sold_run():
    s = portfolio(1e10, price_usd_mw=6_000_000.0)  # a price no option matches
    return s, siteopt.solve(s, backend="numpy", explain=False)


def test_a_site_sold_in_plan_csv_and_its_reason(sold_run):
    _, run = sold_run
    plan = run.plan.set_index("site")
    row = plan.loc["bid"]
    assert row["option"] == "sell" and row["why_code"] == "sold"
    assert row["ai_it_mw"] == 0.0 and row["mining_mw"] == 0.0 and pd.isna(row["build_year"])
    assert (
        row["why"].startswith("sells the site") and "above its runner-up, ai60-2028" in row["why"]
    )
    site = next(x for x in run.summary["sites"] if x["name"] == "bid")
    assert site["option"] == "sell" and site["npv_over_hashing_usd"] > 0


def test_evaluate_reads_the_option_column(sold_run, tmp_path):
    """plan.csv's option column names the sale (its MW, year and contract are those of
    keep hashing); without it the same row keeps hashing."""
    s, run = sold_run
    path = tmp_path / "plan.csv"
    run.plan.to_csv(path, index=False)
    again = siteopt.evaluate(s, path, backend="numpy")
    assert again.summary["expected_npv_usd"] == pytest.approx(
        run.summary["expected_npv_usd"], rel=1e-12
    )
    without = run.plan.drop(columns=["option"])
    hashing = siteopt.evaluate(s, without, backend="numpy")
    bid = next(x for x in hashing.summary["sites"] if x["name"] == "bid")
    assert bid["option"] == "hash"
    wrong = run.plan.assign(option=run.plan["option"].replace("sell", "sel"))
    with pytest.raises(InputError, match="offers no option .sel."):
        siteopt.evaluate(s, wrong, backend="numpy")


def test_sell_share_or_keep_in_summary_and_report(sold_run, tmp_path):
    """summary.json's deals: at the site a buyer bid for, keeping, selling and converting
    alone, the sale taken; at the partner's site, keeping, alone and the JV."""
    _, run = sold_run
    deals = {d["site"]: d for d in run.summary["deals"]}
    assert set(deals) == {"bid", "partner"}  # "plain" has no sale block
    bid = {d["deal"]: d for d in deals["bid"]["deals"]}
    assert list(bid) == ["keep", "sell", "alone"]
    assert bid["sell"]["chosen"] and not bid["keep"]["chosen"]
    assert bid["sell"]["equity_capex_usd"] < 0  # the proceeds
    assert deals["bid"]["text"].startswith("the plan is selling it")
    partner = {d["deal"]: d for d in deals["partner"]["deals"]}
    assert list(partner) == ["keep", "alone", "jv"]
    assert partner["jv"]["option"].endswith("-jv")
    assert sum(d["chosen"] for d in partner.values()) <= 1  # or a smaller hall, not listed
    run.write(tmp_path, report=True)
    page = (tmp_path / "report.html").read_text()
    section = page[page.index('id="deals"') :]
    assert "Sell, share or keep" in section and "joint venture" in section
    assert deals["bid"]["text"] in page.replace("&#x27;", "'")
