"""`siteopt solve` end to end through the CLI: every bundled scenario, outputs per docs/cli.md."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from siteopt.model.load import load_scenario

SCENARIOS = sorted(Path(__file__).resolve().parents[2].joinpath("scenarios").glob("*.yaml"))
SUMMARY_KEYS = {
    "terminal_value_share",
    "leverage_usd",
    "scenario",
    "status",
    "mip_gap",
    "backend",
    "engine",
    "solver",
    "scenarios",
    "seed",
    "expected_npv_usd",
    "cvar_usd",
    "cvar_alpha",
    "p5_npv_usd",
    "p50_npv_usd",
    "p95_npv_usd",
    "equity_capex_by_year_usd",
    "ai_it_mw_total",
    "mining_mw_total",
    "sites",
    "baselines",
    "constraints",
    "capital_value",
    "runner_up",
    "timings_s",
    "leverage_value_usd",
    "tax_shield_usd",
    "rate_subsidy_usd",
    "walk_away_value_usd",
}
SITE_KEYS = {
    "why",
    "npv_over_hashing_usd",
    "npv_over_hashing_se_usd",
    "terminal_value_share",
    "leverage_usd",
    "leverage_value_usd",
    "tax_shield_usd",
    "rate_subsidy_usd",
    "walk_away_value_usd",
    "name",
    "ai_it_mw",
    "mining_mw",
    "build_year",
    "contract",
    "equity_capex_usd",
    "expected_npv_usd",
    "cvar_usd",
}
PLAN_COLUMNS = [
    "site",
    "ai_it_mw",
    "mining_mw",
    "build_year",
    "contract",
    "equity_capex_usd",
    "debt_usd",
    "expected_npv_usd",
    "cvar_usd",
    "expected_terminal_pv_usd",
    "leverage_usd",
    "why_code",
    "why",
    "leverage_value_usd",
    "tax_shield_usd",
    "rate_subsidy_usd",
    "walk_away_value_usd",
    "option",
    "partner_share",
    "tranche",
]
OPTIONS_COLUMNS = [
    "site",
    "option",
    "ai_it_mw",
    "build_year",
    "contract",
    "expected_npv_usd",
    "std_npv_usd",
    "p5_npv_usd",
    "p50_npv_usd",
    "p95_npv_usd",
    "cvar_usd",
    "expected_terminal_pv_usd",
    "leverage_usd",
    "equity_capex_usd",
]
N = "400"


def _finite(value) -> bool:
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return not isinstance(value, float) or math.isfinite(value)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_solve_every_bundled_scenario(path, run_cli, tmp_path):
    out = tmp_path / "out"
    run = run_cli("solve", str(path), "--scenarios", N, "--out", str(out), "--quiet")
    assert run.exit_code == 0, run.stderr
    assert "Traceback" not in run.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["status"] in ("optimal", "feasible")
    assert summary["backend"] == "numpy" and summary["engine"] == "local"
    assert summary["scenarios"] == int(N) and _finite(summary)
    assert {"all_mining", "max_ai"} <= summary["baselines"].keys()
    assert "feasible" in summary["baselines"]["max_ai"]
    for site in summary["sites"]:
        assert SITE_KEYS <= site.keys()

    scenario = load_scenario(path)
    plan = pd.read_csv(out / "plan.csv")
    assert list(plan.columns) == PLAN_COLUMNS
    assert list(plan["site"]) == [s.name for s in scenario.sites]
    assert plan["expected_npv_usd"].sum() == pytest.approx(summary["expected_npv_usd"], rel=1e-9)
    assert plan["ai_it_mw"].sum() == pytest.approx(summary["ai_it_mw_total"])
    options = pd.read_csv(out / "options.csv")
    assert list(options.columns[: len(OPTIONS_COLUMNS)]) == OPTIONS_COLUMNS
    assert any(c.startswith("capex_") for c in options.columns)
    assert not options[OPTIONS_COLUMNS[5:]].isna().any().any()
    cashflows = pd.read_csv(out / "cashflows.csv")
    assert list(cashflows.columns) == ["site", "month", "line_item", "usd"]
    assert set(cashflows["site"]) == set(plan["site"])
    _budget_holds(scenario, summary)
    html = (out / "report.html").read_text()
    for section in ("headline", "plan", "distribution", "capex", "timeline", "tornado"):
        assert f'id="{section}"' in html
    for png in ("plan_sites", "npv_distribution", "capex", "timeline"):
        assert (out / f"{png}.png").exists()


def _budget_holds(scenario, summary) -> None:
    budget = scenario.financing.capital_budget_usd
    spent = {int(y): v for y, v in summary["equity_capex_by_year_usd"].items()}
    cum_budget = cum_spent = 0.0
    for year in scenario.years:
        cum_budget += budget.get(year, 0.0)
        cum_spent += spent.get(year, 0.0)
        assert cum_spent <= cum_budget * (1 + 1e-9) + 1e-6, year


def test_same_seed_same_plan(run_cli, tmp_path):
    texas = str(SCENARIOS[-1])
    outputs = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        assert (
            run_cli(
                "solve", texas, "--scenarios", N, "--out", str(out), "--quiet", "--no-report"
            ).exit_code
            == 0
        )
        summary = json.loads((out / "summary.json").read_text())
        summary.pop("timings_s")
        outputs.append(((out / "plan.csv").read_bytes(), summary))
    assert outputs[0] == outputs[1]


def test_json_prints_the_summary(run_cli, tmp_path):
    run = run_cli("solve", str(SCENARIOS[0]), "--scenarios", N, "--out", str(tmp_path), "--json")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout) == json.loads((tmp_path / "summary.json").read_text())


def test_infeasible_contract_exits_3_naming_it(run_cli, tmp_path):
    texas = next(p for p in SCENARIOS if p.stem == "texas")
    run = run_cli(
        "solve",
        str(texas),
        "--scenarios",
        N,
        "--out",
        str(tmp_path),
        "--quiet",
        "--set",
        "contracts.hyperscaler-a.must_sign=true",
        "--set",
        "contracts.hyperscaler-a.min_mw=400",
        "--set",
        "contracts.hyperscaler-a.online_by=2028-03",
    )
    assert run.exit_code == 3, run.stderr
    assert "hyperscaler-a" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "summary.json").exists()


def test_out_pointing_at_a_file_is_exit_2(run_cli, tmp_path):
    target = tmp_path / "afile"
    target.write_text("x")
    run = run_cli("solve", str(SCENARIOS[0]), "--scenarios", "50", "--out", str(target), "--quiet")
    assert run.exit_code == 2 and str(target) in run.stderr


def test_bad_set_path_is_exit_2(run_cli, tmp_path):
    run = run_cli(
        "solve", str(SCENARIOS[0]), "--set", "market.btc_prise_usd=1", "--out", str(tmp_path)
    )
    assert run.exit_code == 2 and "btc_price_usd" in run.stderr


def test_scenarios_below_the_risk_sample_are_accepted(run_cli, tmp_path):
    run = run_cli(
        "solve", str(SCENARIOS[0]), "--scenarios", "20", "--out", str(tmp_path), "--quiet"
    )
    assert run.exit_code == 0, run.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["risk_sample"] == 20


def test_frontier_traces_expected_npv_against_cvar(run_cli, tmp_path):
    hydro = next(p for p in SCENARIOS if p.stem == "stranded-hydro")
    run = run_cli(
        "solve", str(hydro), "--scenarios", N, "--frontier", "3", "--out", str(tmp_path),
        "--quiet", "--time-limit", "30",
    )  # fmt: skip
    assert run.exit_code == 0, run.stderr
    assert "Frontier" in run.stdout
    frontier = pd.read_csv(tmp_path / "frontier.csv")
    # w E[NPV] + (1 - w) CVaR, w from 1 (risk neutral) to 0 (the CVaR alone)
    assert list(frontier["weight"]) == [1.0, 0.5, 0.0]
    assert list(frontier["risk_aversion"].fillna(-1)) == [0.0, 1.0, -1]  # none at w = 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(summary["frontier"]) == 3 and summary["frontier"][2]["risk_aversion"] is None
    first = frontier.iloc[0]  # the scenario is risk neutral: w = 1 is its own plan
    assert bool(first["chosen"]) and first["expected_npv_usd"] == summary["expected_npv_usd"]
    # more weight on CVaR never buys expected NPV (each point within its 0.5 % gap)
    npv = frontier["expected_npv_usd"].to_numpy()
    assert all(b <= a + 0.01 * abs(a) for a, b in zip(npv, npv[1:], strict=False))
    html = (tmp_path / "report.html").read_text()
    assert 'id="frontier"' in html and (tmp_path / "frontier.png").exists()


def test_frontier_out_of_range_is_exit_2(run_cli, tmp_path):
    run = run_cli("solve", str(SCENARIOS[0]), "--frontier", "1", "--out", str(tmp_path))
    assert run.exit_code == 2 and "--frontier" in run.stderr


def test_near_optimal_alternatives_on_texas(run_cli, tmp_path):
    texas = next(p for p in SCENARIOS if p.stem == "texas")
    run = run_cli(
        "solve", str(texas), "--scenarios", N, "--alternatives", "2", "--within", "0.02",
        "--out", str(tmp_path), "--quiet",
    )  # fmt: skip
    assert run.exit_code == 0, run.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    alts = summary["alternatives"]
    assert [a["alternative"] for a in alts] == [0, 1, 2]
    assert alts[0]["expected_npv_usd"] == summary["expected_npv_usd"]
    assert alts[0]["cvar_usd"] == summary["cvar_usd"] and alts[0]["distance"] == 0
    for alt in alts[1:]:
        assert alt["expected_npv_usd"] >= 0.98 * summary["expected_npv_usd"] - 1.0
        assert alt["distance"] == len(alt["changes"]) > 0
    table = pd.read_csv(tmp_path / "alternatives.csv")
    assert list(table.columns) == [
        "alternative", "site", "ai_it_mw", "build_year", "contract", "expected_npv_usd",
        "cvar_usd",
    ]  # fmt: skip
    plan = pd.read_csv(tmp_path / "plan.csv")
    first = table[table["alternative"] == 0].reset_index(drop=True)
    assert list(first["site"]) == list(plan["site"])
    assert list(first["ai_it_mw"]) == list(plan["ai_it_mw"])
    for alt in alts[1:]:
        rows = table[table["alternative"] == alt["alternative"]]
        assert rows["expected_npv_usd"].sum() == pytest.approx(alt["expected_npv_usd"], rel=1e-9)
    html = (tmp_path / "report.html").read_text()
    assert '<section id="alternatives">' in html and "alternative 2" in html
    assert "alternative 1, USD millions" in run.stdout


def test_differ_by_without_alternatives_and_validate_with_deterministic_are_exit_2(
    run_cli, tmp_path
):
    alone = run_cli("solve", str(SCENARIOS[0]), "--differ-by", "sites", "--out", str(tmp_path))
    assert alone.exit_code == 2 and "add --alternatives N" in alone.stderr
    central = run_cli(
        "solve", str(SCENARIOS[0]), "--validate", "3", "--deterministic", "--out", str(tmp_path)
    )
    assert central.exit_code == 2 and "--deterministic run has one path" in central.stderr
