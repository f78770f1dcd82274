"""Phased and multi-tenant sites in the plan (issue 28): the MILP against every plan of a
small portfolio whose sites may convert in tranches, under contract minimums, maximums and
dates; plan.csv's row per tranche, read back by evaluate; one tranche as before."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

import siteopt
from siteopt.app.plan import plan_problem
from siteopt.app.valuation import value_options
from siteopt.model.schema import Scenario
from siteopt.optimizer.solve import solve_plan

from ..kernels.helpers import random_one_site_ai
from ..optimizer.brute import check_milp_is_best


def portfolio(budget_usd: float, tranches: int = 2, **contract_terms) -> Scenario:
    """Three copies of the random one-site case, two contracts at one debt rate, two build
    years, a budget in the first."""
    base = random_one_site_ai().model_dump(mode="json", exclude_none=True)
    site = base["sites"][0]
    base["sites"] = [{**copy.deepcopy(site), "name": name} for name in ("a", "b", "c")]
    for key, value in contract_terms.items():
        index, field = key.split(".", 1)
        base["contracts"][int(index)][field] = value
    base["build"]["decision_years"] = [2027, 2028]
    base["build"]["max_tranches_per_site"] = tranches
    base["financing"]["capital_budget_usd"] = {2027: budget_usd}
    base["simulation"] = {"scenarios": 200, "seed": 5, "risk_sample": 30}
    return Scenario.model_validate(base)


CASES = {
    "budget-binds": (120.0, {}),
    "contract-limits": (400.0, {"0.min_mw": 40.0, "0.max_mw": 60.0, "1.max_mw": 60.0}),
    "online-by": (400.0, {"1.min_mw": 60.0, "1.online_by": "2027-12"}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_milp_is_the_best_plan_with_tranches(case):
    budget, terms = CASES[case]
    s = portfolio(budget * 1e6, **terms)
    table = value_options(s, backend="numpy").options
    assert table.table["option"].str.contains("+", regex=False).sum() > 0
    check_milp_is_best(table, plan_problem(s), _solve)


def _solve(table, problem):
    return solve_plan(table, problem, gap_rel=1e-9)


def test_more_tranches_only_add_options():
    """max_tranches_per_site 2 keeps every single option's figures and adds phased ones:
    the plan can only gain (1 reproduces revision 3's plans: the same options)."""
    one = value_options(portfolio(120e6, tranches=1), backend="numpy").options
    two = value_options(portfolio(120e6, tranches=2), backend="numpy").options
    singles = two.table[~two.table["option"].str.contains("+", regex=False)]
    pd.testing.assert_frame_equal(
        singles.reset_index(drop=True), one.table.reset_index(drop=True), check_exact=True
    )
    best_one = solve_plan(one, plan_problem(portfolio(120e6, tranches=1))).objective_usd
    best_two = solve_plan(two, plan_problem(portfolio(120e6, tranches=2))).objective_usd
    assert best_two >= best_one - 1e-6 * abs(best_one)


def test_plan_csv_has_a_row_per_tranche_and_evaluate_reads_it(tmp_path):
    s = portfolio(1e10)
    plan = pd.DataFrame(
        {
            "site": ["a", "a", "b"],
            "ai_it_mw": [20.0, 40.0, 40.0],
            "build_year": [2027, 2028, 2028],
            "contract": ["lease", "neo", "lease"],
        }
    )
    run = siteopt.evaluate(s, plan, backend="numpy")
    site_a = next(x for x in run.summary["sites"] if x["name"] == "a")
    assert site_a["option"] == "ai20-2027-lease+ai40-2028-neo"
    assert [t["contract"] for t in site_a["tranches"]] == ["lease", "neo"]
    assert site_a["why"]["text"].startswith(
        "converts 20 MW for lease from 2027 and 40 MW for neo from 2028"
    )
    rows = run.plan
    assert list(rows["site"]) == ["a", "a", "b", "c"]
    assert rows["tranche"].tolist() == [1, 2, 1, 0]
    assert rows["expected_npv_usd"].tolist()[1] == 0.0 and rows["why"].tolist()[1] == ""
    assert rows["equity_capex_usd"].sum() == pytest.approx(
        sum(x["equity_capex_usd"] for x in run.summary["sites"]), rel=1e-12
    )
    path = tmp_path / "plan.csv"
    rows.to_csv(path, index=False)
    again = siteopt.evaluate(s, path, backend="numpy")
    assert again.summary["expected_npv_usd"] == run.summary["expected_npv_usd"]
    wrong = plan.assign(ai_it_mw=[20.0, 20.0, 40.0], contract=["lease", "lease", "lease"])
    wrong.loc[1, "build_year"] = 2027
    with pytest.raises(siteopt.model.errors.InputError, match="no phased option"):
        siteopt.evaluate(s, wrong, backend="numpy")
