"""Limits: a run too big for memory is refused up front (exit 2) with the estimate and the
setting to change; a MILP stopped by --time-limit reports its best plan as feasible with
its gap, or, with no plan found in time, exits 3 and suggests a longer limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import siteopt.app.breakeven
import siteopt.app.pipeline
from siteopt.app import limits
from siteopt.model.load import load_scenario, with_simulation

from .support import REPO

TEXAS = REPO / "scenarios" / "texas.yaml"
MIB = 1 << 20


@pytest.fixture
def texas():
    return with_simulation(load_scenario(TEXAS), 20_000, None)


@pytest.fixture
def no_work(monkeypatch):
    """The valuation must not start: the refusal comes first."""

    def started(*args, **kwargs):
        raise AssertionError("the work started before the memory check")

    monkeypatch.setattr(siteopt.app.pipeline, "solve", started)
    monkeypatch.setattr(siteopt.app.breakeven, "breakeven", started)


def free_memory(monkeypatch, n_bytes: int) -> None:
    monkeypatch.setattr(limits, "host_free_bytes", lambda: n_bytes)


def test_the_estimate_follows_what_the_run_holds(texas):
    texas = texas.model_copy(  # a risk sample of 256, set (the file leaves it to the default)
        update={"simulation": texas.simulation.model_copy(update={"risk_sample": 256})}
    )
    base = limits.estimate(texas)
    assert base.options == 542
    assert 400 * MIB < base.total_bytes < 2 * limits.GIB  # texas at 20,000 peaks near 0.6 GiB
    simulation = texas.simulation.model_copy(update={"risk_sample": 2560})
    more_risk = limits.estimate(texas.model_copy(update={"simulation": simulation}))
    assert more_risk.parts["the risk sample"] == 10 * base.parts["the risk sample"]
    more_scenarios = limits.estimate(with_simulation(texas, 2_000_000, None))
    assert more_scenarios.parts["the plan NPV samples"] == 100 * base.parts["the plan NPV samples"]
    frontier = limits.estimate(texas, frontier_points=10)
    assert frontier.parts["the MILP"] > base.parts["the MILP"]  # CVaR cuts


def test_a_normal_run_fits(texas):
    assert limits.check_memory(texas).total_bytes < limits.host_free_bytes()


def test_a_cgroup_limit_counts_as_the_free_memory(tmp_path, monkeypatch):
    limit, used = tmp_path / "memory.max", tmp_path / "memory.current"
    limit.write_text(f"{1024 * MIB}\n")
    used.write_text(f"{256 * MIB}\n")
    monkeypatch.setattr(limits, "CGROUP_FILES", (str(limit), str(used)))
    assert limits.host_free_bytes() <= 768 * MIB


def test_an_absurd_scenario_count_is_refused_before_the_valuation(run_cli, monkeypatch, no_work):
    free_memory(monkeypatch, 600 * MIB)
    run = run_cli("solve", str(TEXAS), "--scenarios", "10000000", "--quiet")
    assert run.exit_code == 2, run.output
    line = run.stderr.rstrip("\n")
    assert "\n" not in line
    assert line.startswith("10,000,000 scenarios of 542 site options need ~")
    assert "MiB for the plan NPV samples" in line
    assert line.endswith("this machine has 600 MiB free; lower --scenarios")


def test_a_large_risk_sample_is_named(run_cli, monkeypatch, no_work):
    free_memory(monkeypatch, 300 * MIB)
    run = run_cli(
        "solve", str(TEXAS), "--set", "simulation.risk_sample=10000", "--scenarios", "10000"
    )
    assert run.exit_code == 2, run.output
    assert "for the risk sample" in run.stderr
    assert "lower simulation.risk_sample" in run.stderr


def test_breakeven_holds_every_scenario_and_is_refused_too(run_cli, monkeypatch, no_work):
    free_memory(monkeypatch, 2 * limits.GIB)
    run = run_cli(
        "breakeven", str(TEXAS), "--site", "pecos-1", "--contract", "neocloud-b",
        "--scenarios", "10000000",
    )  # fmt: skip
    assert run.exit_code == 2, run.output
    assert "for the market paths of every scenario" in run.stderr
    assert run.stderr.rstrip().endswith("lower --scenarios")


# ------------------------------------------------------------------ --time-limit


def test_a_time_limited_milp_reports_its_best_plan_as_feasible(run_cli, tmp_path: Path):
    out = tmp_path / "out"
    args = ("--scenarios", "300", "--time-limit", "0.1", "--no-report", "--out", str(out))
    args += ("--set", "objective.risk_aversion=0.5")  # a CVaR in the objective: a harder MILP
    run = run_cli("solve", str(TEXAS), *args, "--json")
    assert run.exit_code == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary == json.loads((out / "summary.json").read_text())
    assert summary["status"] == "feasible"
    assert summary["mip_gap"] > 1e-4  # the requested gap was not reached
    assert summary["time_limit_s"] == 0.1
    assert any("time limit (0.1 s)" in note for note in summary["notes"])
    table = run_cli("solve", str(TEXAS), *args, "--quiet")
    assert table.stdout.startswith("texas-portfolio: feasible plan (gap ")


def test_no_plan_within_the_time_limit_is_exit_3_and_suggests_more_time(run_cli, tmp_path):
    # A CVaR floor just under the best reachable on a risk sample of 1,000 (-43.8M, with
    # garden-city sold) takes many cut rounds to meet; with a minute it is met.
    out = tmp_path / "out"
    run = run_cli(
        "solve", str(TEXAS), "--scenarios", "2000", "--time-limit", "0.1", "--quiet",
        "--set", "simulation.risk_sample=1000", "--set", "objective.cvar_floor_usd=-4.5e7",
        "--out", str(out),
    )  # fmt: skip
    assert run.exit_code == 3, run.output
    assert run.stderr == (
        "no build plan found within the time limit of 0.1 s; try a longer --time-limit\n"
    )
    assert not out.exists()
