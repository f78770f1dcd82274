"""Named cases (the scenario's ``cases:`` block, ``siteopt cases``, solve's report): each
case is the scenario with its changes, solved on the same draws as the base."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import siteopt
from siteopt.app import pipeline
from siteopt.app.pipeline import SolveSettings
from siteopt.app.sweep import BASE_CASE, cases
from siteopt.model.errors import InputError
from siteopt.model.load import (
    ScenarioError,
    apply_overrides,
    case_scenario,
    load_scenario,
    with_simulation,
)
from siteopt.output.summary import summary_of

from .support import MINIMAL, REPO

TEXAS = REPO / "scenarios" / "texas.yaml"
SETTINGS = SolveSettings(backend="numpy")


def test_a_case_is_the_scenario_with_its_changes():
    texas = load_scenario(TEXAS)
    assert list(texas.cases) == ["bear", "bull"]
    bear = case_scenario(texas, "bear")
    assert bear.market.btc_price_usd == 45000 and bear.market.btc_drift == 0.10
    assert bear.contracts[0].price_usd_kw_month == 95
    assert bear.cases == {}  # a case has no cases of its own
    changes = [f"{k}={json.dumps(v)}" for k, v in texas.cases["bear"].items()]
    assert bear == apply_overrides(texas, changes).model_copy(update={"cases": {}})


def _with_cases(write_scenario, block: str):
    return write_scenario(MINIMAL + "cases:\n" + block)


@pytest.mark.parametrize(
    ("block", "needle"),
    [
        ("  base:\n    market.btc_price_usd: 1\n", "'base' is the scenario as written"),
        ("  low: {}\n", "case 'low' changes nothing"),
        ("  low:\n    simulation.seed: 3\n", "a case cannot change simulation"),
        ("  low:\n    market.btc_pric: 3\n", "cases.low.market.btc_pric: unknown key"),
        ("  low:\n    market.btc_price_usd: -3\n", "cases.low.market.btc_price_usd: "),
        ("  low:\n    contracts.tenant-a.min_mw: 5000\n", "cases.low.contracts.tenant-a.min_mw"),
        ("  low:\n    market: 3\n", "cases.low.market: Input should be a valid dictionary"),
        ("  bad name:\n    market.btc_price_usd: 1\n", "cases.bad name"),
    ],
)
def test_every_bad_case_is_refused_at_load_with_its_line(write_scenario, block, needle):
    path = _with_cases(write_scenario, block)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    text = str(info.value)
    assert needle in text, text
    cases_line = MINIMAL.count("\n") + 1
    assert all(p.line is None or p.line >= cases_line for p in info.value.problems), text


def test_the_value_of_a_case_may_be_a_list_or_a_boolean(write_scenario):
    path = _with_cases(
        write_scenario,
        "  early:\n    contracts.tenant-a.must_sign: true\n    market.halving_months: [2028-06]\n",
    )
    scenario = load_scenario(path)
    early = case_scenario(scenario, "early")
    assert early.contracts[0].must_sign is True
    assert early.market.halving_months == ("2028-06",)


@pytest.fixture(scope="module")
def texas_cases():
    texas = with_simulation(load_scenario(TEXAS), 300, None)
    return texas, cases(texas, SETTINGS)


def test_each_case_is_solved_as_its_own_scenario_on_the_same_draws(texas_cases):
    texas, result = texas_cases
    assert [p.value for p in result.points] == [BASE_CASE, "bear", "bull"]
    for point in result.points:
        alone = texas if point.value == BASE_CASE else case_scenario(texas, point.value)
        solved = pipeline.solve(alone, SETTINGS)
        assert point.outcome.rows == solved.rows, point.value
        for key in ("expected_npv_usd", "cvar_usd", "sites"):
            assert summary_of(point.outcome)[key] == summary_of(solved)[key], (point.value, key)
    assert result.points[0].changes == ()
    assert "market.btc_price_usd=45000" in result.points[1].changes
    frame = result.frame()
    assert list(frame["case"]) == ["base", "bear", "bull"]
    bear, base, bull = (
        frame.set_index("case")["expected_npv_usd"][k] for k in ("bear", "base", "bull")
    )
    assert bear < base < bull  # BTC and rents down, BTC up: on the same draws


def test_cases_beside_a_solve_reuse_it_as_the_base(texas_cases):
    texas, result = texas_cases
    base = result.points[0].outcome
    beside = cases(texas, SETTINGS, base=base)
    assert beside.points[0].outcome is base
    assert [p.outcome.rows for p in beside.points] == [p.outcome.rows for p in result.points]


def test_unknown_cases_and_a_scenario_without_cases_are_input_errors(texas_cases, write_scenario):
    texas, _ = texas_cases
    with pytest.raises(InputError, match="no case 'bare' in the scenario \\(cases: bear, bull\\)"):
        cases(texas, SETTINGS, names=["bare"])
    plain = load_scenario(write_scenario(MINIMAL))
    with pytest.raises(InputError, match="no cases: block"):
        cases(plain, SETTINGS)


def test_cases_cli_writes_table_chart_plans_and_page(run_cli, tmp_path):
    run = run_cli(
        "cases", str(TEXAS), "--only", "bull", "--scenarios", "200", "--out", str(tmp_path),
        "--json",
    )  # fmt: skip
    assert run.exit_code == 0, run.stderr
    payload = json.loads(run.stdout)
    assert payload["cases"] == ["base", "bull"]
    assert payload["points"][1]["changes"] == [
        "market.btc_price_usd=135000",
        "market.btc_drift=0.2",
    ]
    table = pd.read_csv(tmp_path / "cases.csv")
    assert list(table["case"]) == ["base", "bull"]
    plans = pd.read_csv(tmp_path / "plans.csv")
    assert set(plans["case"]) == {"base", "bull"}
    assert (tmp_path / "cases.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (tmp_path / "cases.html").read_text()
    assert 'data-file="cases.png"' in html and "market.btc_price_usd=135000" in html
    assert json.loads((tmp_path / "cases.json").read_text()) == payload
    run = run_cli("cases", str(TEXAS), "--only", "nope", "--out", str(tmp_path / "x"))
    assert run.exit_code == 2 and "no case 'nope'" in run.stderr


def test_the_api_runs_the_cases():
    texas = siteopt.load(TEXAS)
    result = siteopt.cases(texas, names=["bear"], scenarios=200, backend="numpy")
    assert [p.value for p in result.points] == ["base", "bear"]
    assert result.frame()["status"].isin(["optimal", "feasible"]).all()
