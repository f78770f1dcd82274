"""solve --staged end to end: the policy's value against the closed form of its conditional
means, one state per stage equal to the static plan, non-anticipativity on the draws,
policy.csv read back by evaluate --policy, and the files a bad policy must be refused for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from siteopt import api
from siteopt.app.params import kernel_inputs
from siteopt.app.policy import POLICY_REQUIRED
from siteopt.app.staged import POLICY_COLUMNS
from siteopt.kernels.states import market_states
from siteopt.model.errors import InputError

from ..kernels.helpers import random_one_site_ai
from .support import REPO

HYDRO = REPO / "scenarios" / "stranded-hydro.yaml"


# One site, decisions in 2027 and 2028, rents where converting is about as good as hashing:
# converting next year pays in some market states and not in others.
MARGINAL = {
    "build.decision_years": [2027, 2028],
    "simulation.scenarios": 2000,
    "contracts.0.price_usd_kw_month": 101.0,
    "contracts.1.price_usd_kw_month": 119.0,
    "financing.capital_budget_usd": {2027: 1e9, 2028: 1e9},
}


@pytest.fixture(scope="module")
def marginal():
    scenario = random_one_site_ai(**MARGINAL)
    return scenario, api.solve(scenario, staged=2, explain=False)


def test_value_of_waiting_is_the_closed_form_of_the_state_means(marginal):
    """One site: the staged optimum is max(best option now, sum over states of P(state)
    x the best of keep hashing and next year's options in that state), the static one the
    best single option; their difference is the in-sample value of waiting."""
    _, run = marginal
    outcome, st = run.outcome, run.summary["staged"]
    table = outcome.valuation.options.table
    group = outcome.valuation.kernel.group_npv_usd
    tree = outcome.staged.tree
    p = tree.probability[tree.leaves]
    year = table["build_year"].fillna(0).astype(int).to_numpy()
    keep = np.flatnonzero(table["option"].to_numpy() == "hash")
    later = np.concatenate([keep, np.flatnonzero(year == 2028)])
    now = np.flatnonzero(year == 2027)
    mean = table["expected_npv_usd"].to_numpy()
    staged = max(mean[now].max(), float(p @ group[:, later].max(axis=1)))
    static = mean.max()
    waiting = st["value_of_waiting"]["in_sample"]["expected_npv_usd"]
    assert waiting == pytest.approx(staged - static, rel=1e-9)
    assert waiting > 1e5  # the states are told apart: waiting is worth money here
    # the MILP's value is the policy valued scenario by scenario
    assert outcome.staged.plan.expected_npv_usd == pytest.approx(
        st["in_sample"]["staged"]["expected_npv_usd"], rel=1e-12
    )
    # nothing is signed now; next year each state takes its own conversion
    assert st["first_stage"][0]["contract"] is None
    actions = outcome.staged.policy.query("decision_year == 2028")["action"]
    assert actions.nunique() == 2
    assert st["states_differing_from_static"] >= 1


def test_no_decision_differs_inside_a_state(marginal):
    """Non-anticipativity on the draws: put every scenario in its state by the policy's
    bins; all scenarios of one state take one action, and the state is fixed by the
    hashprice seen before the decision (a later market cannot move it)."""
    scenario, run = marginal
    policy = run.outcome.staged.policy
    tree = run.outcome.staged.tree
    states = market_states(kernel_inputs(scenario))
    leaf = tree.assign(states)
    np.testing.assert_array_equal(leaf, tree.leaf)
    names = [policy.query("state == @n") for n in ("A", "B")]
    first = tree.parent[tree.leaves[leaf]]
    for node, rows in zip((1, 2), names, strict=True):
        assert len(rows) == 1  # one site: one action per state
        inside = first == node
        hp = states.hashprice[inside, 0]
        assert np.all(hp >= tree.low[node]) and np.all(hp < tree.high[node])


def test_policy_reads_back_with_the_same_numbers(marginal, tmp_path):
    """evaluate --policy on the solve's draws gives its in-sample figures; on the fresh
    seed, its out-of-sample ones."""
    scenario, run = marginal
    path = tmp_path / "policy.csv"
    run.outcome.staged.policy.to_csv(path, index=False)
    st = run.summary["staged"]
    same = api.evaluate_policy(scenario, path)
    assert same.summary["expected_npv_usd"] == pytest.approx(
        st["in_sample"]["staged"]["expected_npv_usd"], rel=1e-12
    )
    assert same.summary["cvar_usd"] == pytest.approx(st["in_sample"]["staged"]["cvar_usd"])
    fresh = api.evaluate_policy(scenario, path, seed=st["fresh_seed"])
    assert fresh.summary["expected_npv_usd"] == pytest.approx(
        st["out_of_sample"]["staged"]["expected_npv_usd"], rel=1e-12
    )
    assert same.violations == () and fresh.violations == ()


def test_one_state_per_year_is_the_static_plan():
    scenario = api.load(HYDRO)
    run = api.solve(scenario, scenarios=1500, staged=1, explain=False)
    st = run.summary["staged"]
    assert st["value_of_waiting"]["in_sample"] == {"expected_npv_usd": 0.0, "cvar_usd": 0.0}
    assert st["states_differing_from_static"] == 0
    plan = {s["name"]: s for s in run.summary["sites"]}
    for first in st["first_stage"]:
        site = plan[first["site"]]
        now = site["build_year"] == 2027
        assert first["contract"] == (site["contract"] if now else None)


def test_solve_staged_writes_policy_csv(run_cli, tmp_path):
    out = tmp_path / "out"
    r = run_cli(
        "solve",
        str(HYDRO),
        "--scenarios",
        "1500",
        "--staged",
        "--clusters",
        "3",
        "--out",
        str(out),
        "--no-report",
        "--quiet",
    )
    assert r.exit_code == 0, r.output
    policy = pd.read_csv(out / "policy.csv", keep_default_na=False)
    assert list(policy.columns) == list(POLICY_COLUMNS)
    summary = json.loads((out / "summary.json").read_text())
    sites = len(summary["sites"])
    assert len(policy) == sites * (1 + 3)  # now, then three states in 2028
    assert policy.groupby(["site", "state"]).size().max() == 1
    assert set(policy["state"]) == {"now", "A", "B", "C"}
    assert summary["staged"]["states_by_year"] == {"2028": 3}
    states = summary["staged"]["states"]
    assert [x["state"] for x in states] == ["now", "A", "B", "C"]
    assert [x["decision_year"] for x in states] == [2027, 2028, 2028, 2028]
    assert sum(x["probability"] for x in states[1:]) == pytest.approx(1.0)
    assert "signed now" in r.stdout and "value of waiting" in r.stdout


def test_clusters_needs_staged(run_cli):
    r = run_cli("solve", str(HYDRO), "--clusters", "3")
    assert r.exit_code != 0 and "--staged" in r.stderr


def test_evaluate_takes_a_plan_or_a_policy_not_both(run_cli, tmp_path):
    r = run_cli("evaluate", str(HYDRO))
    assert r.exit_code != 0 and "--plan" in r.stderr and "--policy" in r.stderr


def _policy_file(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "policy.csv"
    pd.DataFrame(rows, columns=list(POLICY_REQUIRED)).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def hydro_policy():
    run = api.solve(api.load(HYDRO), scenarios=1000, staged=2, explain=False)
    return run.outcome.staged.policy


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.assign(site=f["site"].where(f.index != 0, "nowhere")), "unknown site"),
        (lambda f: f[f["state"] != "now"], "no 'now' state"),
        (lambda f: f[f["state"] != "B"], "do not cover every hashprice"),
        (lambda f: f.iloc[1:], "lacks site"),
        (
            lambda f: f.assign(option=f["option"].where(f.index != 0, "ai999-2027-x")),
            "has no option",
        ),
        (
            lambda f: f.assign(decision_year=f["decision_year"].where(f["state"] != "A", 2031)),
            "is decided in 2031",
        ),
    ],
)
def test_a_bad_policy_is_refused_with_its_line(hydro_policy, tmp_path, edit, message):
    path = tmp_path / "policy.csv"
    edit(hydro_policy.copy()).to_csv(path, index=False)
    with pytest.raises(InputError, match=message):
        api.evaluate_policy(api.load(HYDRO), path, scenarios=1000)


def test_a_site_that_converts_twice_on_a_path_is_refused(hydro_policy, tmp_path):
    frame = hydro_policy.copy()
    table = api.solve(api.load(HYDRO), scenarios=500, explain=False).outcome.valuation
    site = frame["site"].iloc[0]
    opts = table.options.table.query("site == @site")
    now = opts[opts["build_year"] == 2027]["option"].iloc[0]
    later = opts[opts["build_year"] == 2028]["option"].iloc[0]
    frame.loc[(frame["site"] == site) & (frame["state"] == "now"), "option"] = now
    frame.loc[(frame["site"] == site) & (frame["state"] == "A"), "option"] = later
    path = tmp_path / "policy.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InputError, match="converts in state now and again in state A"):
        api.evaluate_policy(api.load(HYDRO), path, scenarios=500)


def test_a_policy_that_breaks_a_budget_in_one_state_exits_3(hydro_policy, run_cli, tmp_path):
    frame = hydro_policy.copy()
    where = (frame["site"] == "lulea-north") & (frame["state"] == "A")
    frame.loc[where, "option"] = "ai60-2028-regional-neocloud"
    path = tmp_path / "policy.csv"
    frame.to_csv(path, index=False)
    r = run_cli(
        "evaluate",
        str(HYDRO),
        "--policy",
        str(path),
        "--scenarios",
        "1000",
        "--out",
        str(tmp_path / "out"),
        "--quiet",
    )
    assert r.exit_code == 3, r.output
    assert "in state A: budget_2028" in r.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["violations_detail"] and all(
        v.startswith("in state A:") for v in summary["violations_detail"]
    )
    shares = {s["state"]: s["share"] for s in summary["states"]}
    assert shares["now"] == 1.0 and shares["A"] + shares["B"] == pytest.approx(1.0)


def test_one_decision_year_leaves_nothing_to_wait_for(run_cli, tmp_path):
    out = tmp_path / "out"
    r = run_cli(
        "solve",
        str(HYDRO),
        "--scenarios",
        "800",
        "--staged",
        "--set",
        "build.decision_years=[2027]",
        "--out",
        str(out),
        "--no-report",
        "--quiet",
    )
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["staged"]["states_by_year"] == {}
    assert summary["staged"]["value_of_waiting"]["in_sample"]["expected_npv_usd"] == 0.0
    assert "nothing to wait for" in r.stdout
    policy = pd.read_csv(out / "policy.csv", keep_default_na=False)
    assert set(policy["state"]) == {"now"} and len(policy) == len(summary["sites"])


def test_the_cvar_floor_is_the_policys_not_each_paths(tmp_path):
    """A policy that meets the CVaR floor as the staged MILP states it (each risk scenario
    on its state's plan) passes evaluate --policy, although one state's plan alone, taken
    in every scenario, would not; a floor above the policy's CVaR is named once."""
    scenario = random_one_site_ai(**MARGINAL, **{"objective.cvar_floor_usd": -150e6})
    run = api.solve(scenario, staged=4, explain=False)
    staged = run.outcome.staged
    assert staged.plan.cvar_usd >= -150e6
    path = tmp_path / "policy.csv"
    staged.policy.to_csv(path, index=False)
    assert api.evaluate_policy(scenario, path).violations == ()
    higher = scenario.model_copy(
        update={
            "objective": scenario.objective.model_copy(
                update={"cvar_floor_usd": staged.plan.cvar_usd + 1e6}
            )
        }
    )
    broken = api.evaluate_policy(higher, path).violations
    assert len(broken) == 1 and broken[0].startswith("cvar_floor:")


def test_too_many_states_are_refused(run_cli):
    years = "build.decision_years=[2027, 2028, 2029, 2030, 2031]"
    r = run_cli("solve", str(HYDRO), "--staged", "--clusters", "5", "--set", years)
    assert r.exit_code == 2, r.output
    assert "gives up to 625 market states in 2031" in r.stderr
    assert "use fewer clusters, e.g. --clusters 4" in r.stderr
