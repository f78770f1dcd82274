"""`siteopt sweep`: one value over many points on the same draws, reusing what it can."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from siteopt.app import pipeline
from siteopt.app.pipeline import SolveSettings
from siteopt.app.sweep import MAX_POINTS, parse_points, sweep
from siteopt.app.sweep import payload as payload_of
from siteopt.model.errors import InputError
from siteopt.model.load import apply_overrides, load_scenario, with_simulation
from siteopt.output.summary import summary_of

from .support import REPO

TEXAS = REPO / "scenarios" / "texas.yaml"
SETTINGS = SolveSettings(backend="numpy")
PARAM = "contracts.neocloud-b.price_usd_kw_month"


@pytest.fixture(scope="module")
def texas():
    return with_simulation(load_scenario(TEXAS), 300, None)


@pytest.fixture(scope="module")
def swept(texas):
    return sweep(texas, PARAM, ["120", "150", "180"], SETTINGS)


def test_sweep_points_match_separate_solves(texas, swept):
    for point in swept.points:
        alone = pipeline.solve(apply_overrides(texas, [f"{PARAM}={point.value}"]), SETTINGS)
        assert point.outcome.rows == alone.rows, point.value
        for key in ("expected_npv_usd", "cvar_usd", "p5_npv_usd", "p95_npv_usd", "sites"):
            assert summary_of(point.outcome)[key] == summary_of(alone)[key], (point.value, key)
        pd.testing.assert_frame_equal(
            point.outcome.valuation.options.table, alone.valuation.options.table, check_exact=True
        )


def test_sweep_reuses_untouched_sites_and_warm_starts(texas, swept):
    eligible = [s for s in texas.sites if texas.contracts[1] in texas.contracts_for(s)]
    assert texas.contracts[1].name == "neocloud-b"
    first, *rest = swept.points
    assert first.sites_valued == len(texas.sites) and not first.warm_start
    for point in rest:
        assert point.sites_valued == len(eligible) < len(texas.sites)
        assert point.warm_start


def test_a_higher_rent_never_lowers_the_plan_value(swept):
    values = [summary_of(p.outcome)["expected_npv_usd"] for p in swept.points]
    # the MILP stops within a 0.01 % gap of the optimum, so allow that much
    assert all(b >= a * (1 - 2e-4) for a, b in zip(values, values[1:], strict=False))


def test_range_includes_stop_on_the_grid():
    assert parse_points(None, "100:160:20") == ["100", "120", "140", "160"]
    assert parse_points(None, "0.1:0.3:0.05") == ["0.1", "0.15", "0.2", "0.25", "0.3"]
    assert parse_points(None, "10:0:-5") == ["10", "5", "0"]
    assert parse_points("120, 140,true", None) == ["120", "140", "true"]


@pytest.mark.parametrize(
    ("values", "span", "needle"),
    [
        (None, None, "exactly one"),
        ("1,2", "1:2:1", "exactly one"),
        ("1,,2", None, "empty value"),
        (None, "1:2", "START:STOP:STEP"),
        (None, "1:2:0", "non-zero"),
        (None, "5:1:1", "away from STOP"),
        (None, "a:2:1", "three numbers"),
        (None, "0:1000:1", f"at most {MAX_POINTS}"),
        (None, "nan:1:1", "finite"),
    ],
)
def test_bad_points_are_input_errors(values, span, needle):
    with pytest.raises(InputError, match=needle):
        parse_points(values, span)


def test_sweep_cli_writes_table_plot_and_plans(run_cli, tmp_path):
    run = run_cli(
        "sweep", str(TEXAS), "--param", PARAM, "--values", "130,170", "--scenarios", "200",
        "--out", str(tmp_path), "--quiet",
    )  # fmt: skip
    assert run.exit_code == 0, run.stderr
    table = pd.read_csv(tmp_path / "sweep.csv")
    assert list(table["value"]) == [130, 170]
    assert set(table["status"]) <= {"optimal", "feasible"}
    plans = pd.read_csv(tmp_path / "plans.csv")
    assert len(plans) == 2 * len(load_scenario(TEXAS).sites)
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    payload = json.loads((tmp_path / "sweep.json").read_text())
    assert payload["param"] == PARAM and payload["values"] == ["130", "170"]
    html = (tmp_path / "sweep.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and 'data-file="sweep.png"' in html
    for value, npv in zip(table["value"], table["expected_npv_usd"], strict=True):
        assert f"<td>{value}</td>" in html and f"${npv / 1e6:,.1f}M" in html
    assert html.count("<tr>") == 2 + len(plans) + 2  # points, plans, two header rows
    assert payload["reuse"]["site_valuations"] < payload["reuse"]["site_valuations_without_reuse"]


def test_infeasible_point_is_recorded_not_fatal(run_cli, tmp_path):
    run = run_cli(
        "sweep", str(TEXAS), "--param", "contracts.hyperscaler-a.min_mw", "--values", "0,400",
        "--set", "contracts.hyperscaler-a.must_sign=true",
        "--set", "contracts.hyperscaler-a.online_by=2028-03", "--scenarios", "200",
        "--out", str(tmp_path), "--json", "--time-limit", "20",
    )  # fmt: skip
    assert run.exit_code == 0, run.stderr
    points = json.loads(run.stdout)["points"]
    assert points[0]["status"] in ("optimal", "feasible")
    assert points[1]["status"] == "infeasible" and "hyperscaler-a" in points[1]["message"]


def test_a_bad_value_fails_before_any_solve(run_cli, tmp_path):
    run = run_cli(
        "sweep", str(TEXAS), "--param", PARAM, "--values", "130,-1", "--out", str(tmp_path)
    )
    assert run.exit_code == 2 and "greater than 0" in run.stderr
    run = run_cli("sweep", str(TEXAS), "--param", "contracts.neocloud-b.prize", "--values", "1")
    assert run.exit_code == 2 and "price_usd_kw_month" in run.stderr


def test_a_sweep_of_the_scenario_count_values_each_point_at_its_count():
    """Run settings are applied once, at load: a swept simulation.scenarios is not
    overridden by the count the run started with."""
    hydro = with_simulation(load_scenario(REPO / "scenarios" / "stranded-hydro.yaml"), 1500, None)
    result = sweep(hydro, "simulation.scenarios", ["1000", "2000"], SETTINGS)
    assert [p.outcome.valuation.scenarios for p in result.points] == [1000, 2000]
    assert [p.outcome.samples["plan"].size for p in result.points] == [1000, 2000]


# ------------------------------------------------------------------ two-way sweeps

BTC = "market.btc_price_usd"


def test_a_two_way_sweep_solves_every_pair_as_its_own_scenario(texas):
    result = sweep(texas, PARAM, ["120", "180"], SETTINGS, param2=BTC, points2=["60000", "120000"])
    assert [(p.value, p.value2) for p in result.points] == [
        ("120", "60000"), ("120", "120000"), ("180", "60000"), ("180", "120000"),
    ]  # fmt: skip
    for point in (result.points[0], result.points[3]):
        changes = [f"{PARAM}={point.value}", f"{BTC}={point.value2}"]
        alone = pipeline.solve(apply_overrides(texas, changes), SETTINGS)
        assert point.outcome.rows == alone.rows
        assert (
            summary_of(point.outcome)["expected_npv_usd"] == summary_of(alone)["expected_npv_usd"]
        )
    frame = result.frame()
    assert list(frame.columns[:3]) == ["value", "value2", "status"]
    npv = frame.set_index(["value", "value2"])["expected_npv_usd"]
    # on the same draws: a higher BTC price and a higher rent each raise the plan's value
    assert npv["120", "120000"] > npv["120", "60000"] and npv["180", "60000"] > npv["120", "60000"]
    assert set(result.plans()["value2"]) == {"60000", "120000"}
    payload = payload_of(result)
    assert payload["param2"] == BTC and payload["values2"] == ["60000", "120000"]
    assert payload["values"] == ["120", "180"]


def test_the_grid_is_solved_in_snake_order():
    from siteopt.app.sweep import _serpentine

    assert _serpentine(3, 2) == [0, 1, 3, 2, 4, 5]
    assert _serpentine(1, 3) == [0, 1, 2]


@pytest.mark.parametrize(
    ("args", "axes"),
    [
        ((["a"], ["1,2"], []), [("a", ["1", "2"])]),
        ((["a", "b"], ["1,2", "3"], []), [("a", ["1", "2"]), ("b", ["3"])]),
        ((["a", "b"], [], ["0:1:1", "5:6:1"]), [("a", ["0", "1"]), ("b", ["5", "6"])]),
        ((["a"], ["1"], [], "b", None, "0:2:1"), [("a", ["1"]), ("b", ["0", "1", "2"])]),
        ((["a", "b"], ["1"], ["0:1:1"], None, None, None, "range"),
         [("a", ["0", "1"]), ("b", ["1"])]),
        ((["a", "b"], ["1"], ["0:1:1"], None, None, None, "values"),
         [("a", ["1"]), ("b", ["0", "1"])]),
    ],
)  # fmt: skip
def test_the_axes_of_a_sweep_from_the_command_line(args, axes):
    from siteopt.app.sweep import parse_axes

    assert parse_axes(*args) == axes


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ((["a", "b", "c"], ["1", "2", "3"], []), "one or two parameters"),
        ((["a"], ["1"], [], None, "2"), "give --param2"),
        ((["a"], ["1", "2"], []), "one --param takes one"),
        ((["a", "b"], ["1"], []), "give each of the two parameters its points"),
        ((["a", "b"], ["1"], ["0:1:1"]), "say which is the second parameter's"),
        ((["a"], ["1", "2"], [], "b", "3"), "give the first --param one"),
    ],
)
def test_bad_sweep_axes_are_input_errors(args, needle):
    from siteopt.app.sweep import parse_axes

    with pytest.raises(InputError, match=needle):
        parse_axes(*args)


def test_a_two_way_grid_over_the_limit_or_on_one_path_is_refused(texas):
    many = [str(v) for v in range(15)]
    with pytest.raises(InputError, match=f"at most {MAX_POINTS} points, got 15 x 15 = 225"):
        sweep(texas, PARAM, many, SETTINGS, param2=BTC, points2=many)
    with pytest.raises(InputError, match="the same path as --param"):
        sweep(texas, PARAM, ["1"], SETTINGS, param2=PARAM, points2=["2"])


def test_two_way_sweep_cli_writes_a_heat_map(run_cli, tmp_path):
    run = run_cli(
        "sweep", str(TEXAS), "--param", PARAM, "--range", "130:170:40",
        "--param", BTC, "--values", "60000,120000", "--scenarios", "150",
        "--out", str(tmp_path), "--quiet",
    )  # fmt: skip
    assert run.exit_code == 0, run.stderr
    table = pd.read_csv(tmp_path / "sweep.csv")
    assert list(zip(table["value"], table["value2"], strict=True)) == [
        (130, 60000), (130, 120000), (170, 60000), (170, 120000),
    ]  # fmt: skip
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (tmp_path / "sweep.html").read_text()
    assert f"The plan against {PARAM} and {BTC}" in html
    assert f"<th>{PARAM}</th><th>{BTC}</th>" in html
