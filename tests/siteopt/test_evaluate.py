"""`siteopt evaluate`: a plan the user fixed, valued exactly as solve values its own."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from siteopt.model.load import load_scenario

from .support import REPO

TEXAS = REPO / "scenarios" / "texas.yaml"
HYDRO = REPO / "scenarios" / "stranded-hydro.yaml"
SAME_KEYS = (
    "expected_npv_usd",
    "cvar_usd",
    "p5_npv_usd",
    "p50_npv_usd",
    "p95_npv_usd",
    "equity_capex_by_year_usd",
    "ai_it_mw_total",
    "mining_mw_total",
    "sites",
    "baselines",
    "scenarios",
    "seed",
)


@pytest.mark.parametrize("path", [TEXAS, HYDRO], ids=["texas", "stranded-hydro"])
def test_evaluate_on_solves_plan_reproduces_solve(run_cli, tmp_path, path):
    solved, evaluated = tmp_path / "solve", tmp_path / "evaluate"
    args = ("--scenarios", "300", "--quiet", "--no-report")
    assert run_cli("solve", str(path), "--out", str(solved), *args).exit_code == 0
    run = run_cli(
        "evaluate", str(path), "--plan", str(solved / "plan.csv"), "--out", str(evaluated), *args
    )
    assert run.exit_code == 0, run.stderr
    a = json.loads((solved / "summary.json").read_text())
    b = json.loads((evaluated / "summary.json").read_text())
    for key in SAME_KEYS:
        assert a[key] == b[key], key
    assert b["violations"] == [] and b["status"] == "feasible" and b["evaluated"] is True
    assert b["mip_gap"] is None and b["solver"] is None
    assert (solved / "plan.csv").read_bytes() == (evaluated / "plan.csv").read_bytes()
    assert (solved / "cashflows.csv").read_bytes() == (evaluated / "cashflows.csv").read_bytes()


def _plan(tmp_path, rows, header="site,ai_it_mw,build_year,contract"):
    path = tmp_path / "plan.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_a_plan_that_breaks_the_budget_is_valued_and_named(run_cli, tmp_path):
    plan = _plan(
        tmp_path,
        [
            "odessa-campus,200,2027,hyperscaler-a",
            "pecos-1,200,2027,hyperscaler-a",
            "big-spring,140,2027,hyperscaler-a",
        ],
    )
    run = run_cli(
        "evaluate", str(TEXAS), "--plan", str(plan), "--scenarios", "200",
        "--out", str(tmp_path / "out"), "--json", "--no-report",
    )  # fmt: skip
    assert run.exit_code == 3, run.stderr  # a plan that breaks a constraint: valued, exit 3
    summary = json.loads(run.stdout)
    assert summary["status"] == "infeasible"
    assert "budget_2027" in summary["violations"]
    detail = next(d for d in summary["violations_detail"] if d.startswith("budget_2027: "))
    budget = load_scenario(TEXAS).financing.capital_budget_usd[2027]
    spent = summary["equity_capex_by_year_usd"]["2027"]
    assert detail == (
        f"budget_2027: cumulative equity capex ${spent / 1e6:,.1f}M against cumulative "
        f"budget ${budget / 1e6:,.1f}M"
    )
    assert detail in run.stderr
    assert summary["ai_it_mw_total"] == 540
    assert any("keep hashing" in note for note in summary["notes"])
    frame = pd.read_csv(tmp_path / "out" / "plan.csv")
    assert frame.set_index("site").loc["garden-city", "ai_it_mw"] == 0


def test_evaluate_prints_what_the_plan_breaks(run_cli, tmp_path):
    plan = _plan(tmp_path, ["pecos-1,200,2027,hyperscaler-a", "big-spring,140,2027,hyperscaler-a"])
    run = run_cli(
        "evaluate", str(TEXAS), "--plan", str(plan), "--scenarios", "200",
        "--out", str(tmp_path / "out"), "--quiet", "--no-report",
    )  # fmt: skip
    assert run.exit_code == 3, run.stderr
    assert "this plan breaks budget_2027: cumulative equity capex $" in run.stdout
    errors = [ln for ln in run.stderr.splitlines() if not ln.startswith("warning: ")]
    assert re.match(r"this plan breaks \d+ constraints? \(outputs written to ", errors[0])
    assert "  budget_2027: cumulative equity capex $" in run.stderr
    assert (tmp_path / "out" / "summary.json").exists()  # outputs written before exit 3


@pytest.mark.parametrize(
    ("rows", "header", "needle"),
    [
        (["pecos-9,20,2027,hyperscaler-a"], None, "no site named 'pecos-9'"),
        (["pecos-1,20,2027,hyperscaler-a", "pecos-1,0,,"], None, "listed twice"),
        (["pecos-1,25,2027,hyperscaler-a"], None, "offers no option of 25 MW"),
        (["pecos-1,20,2031,hyperscaler-a"], None, "build years 2027, 2028, 2029"),
        (["pecos-1,20,2027,nobody"], None, "contracts"),
        (["garden-city,20,2027,hyperscaler-a"], None, "cannot host AI"),
        (["pecos-1,twenty,2027,hyperscaler-a"], None, "must be a number"),
        (["pecos-1,-20,2027,hyperscaler-a"], None, ">= 0"),
        (["pecos-1,20,,hyperscaler-a"], None, "build_year is empty"),
        (["pecos-1,0,2027,hyperscaler-a"], None, "keep hashing"),
        (["pecos-1,20,2027"], None, "3 fields"),
        (["pecos-1,20"], "site,ai_it_mw", "lacks column(s) build_year, contract"),
        ([], "", "empty"),
    ],
)
def test_bad_plan_files_are_exit_2_with_the_line(run_cli, tmp_path, rows, header, needle):
    plan = _plan(tmp_path, rows, **({} if header is None else {"header": header}))
    run = run_cli(
        "evaluate", str(TEXAS), "--plan", str(plan), "--scenarios", "50",
        "--out", str(tmp_path / "out"), "--quiet",
    )  # fmt: skip
    assert run.exit_code == 2, run.output
    assert needle in run.stderr and "Traceback" not in run.stderr


def test_missing_and_binary_plan_files(run_cli, tmp_path):
    run = run_cli("evaluate", str(TEXAS), "--plan", str(tmp_path / "nope.csv"))
    assert run.exit_code == 2 and "not found" in run.stderr
    binary = tmp_path / "plan.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    run = run_cli("evaluate", str(TEXAS), "--plan", str(binary))
    assert run.exit_code == 2 and "UTF-8" in run.stderr
