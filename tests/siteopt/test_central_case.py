"""--deterministic: one path at the central view follows the forward exactly; a stochastic
run reports its plan's NPV on that path (the central case) and the value of the risk."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from siteopt import api
from siteopt.app.params import kernel_inputs
from siteopt.kernels.forward import monthly_curve
from siteopt.model.load import load_scenario, with_simulation

from .support import REPO

FORWARD = {
    "btc_price_usd": {2027: 90_000, 2029: 130_000, 2032: 150_000},
    "hashrate_eh": {2027: 1_200, 2030: 1_800, 2036: 2_600},
    "fee_share": {2027: 0.01, 2036: 0.03},
}


@pytest.fixture(scope="module")
def viewed(tmp_path_factory):
    """texas with a house view: forwards for BTC, the hashrate, fees and West power."""
    data = yaml.safe_load((REPO / "scenarios" / "texas.yaml").read_text())
    data["market"]["forward"] = FORWARD
    data["market"]["forward_is"] = "mean"
    data["power_markets"]["ercot-west"]["forward_usd_mwh"] = {2027: 36, 2031: 44}
    data["simulation"]["scenarios"] = 2000
    path = tmp_path_factory.mktemp("view") / "texas-view.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_scenario(path)


def test_deterministic_follows_the_forward_exactly(viewed):
    central = with_simulation(viewed, None, None, deterministic=True)
    run = api.solve(central, explain=False)
    s = run.summary
    assert s["deterministic"] is True and s["scenarios"] == 1
    assert "central_case" not in s  # the run is the central case
    assert s["p5_npv_usd"] == s["expected_npv_usd"] == s["cvar_usd"]
    portfolio = kernel_inputs(central)
    months = [12 * (int(m[:4]) - 2027) + int(m[5:]) - 1 for m in s["market"]["months"]]
    market = portfolio.market
    for name, points in (("btc_usd", market.btc_forward), ("hashrate_eh", market.hashrate_forward)):
        want = monthly_curve(points, portfolio.months)[months]
        for stat in ("p5", "p50", "p95", "mean"):  # one path: every statistic is the forward
            np.testing.assert_allclose(s["market"][name][stat], want, rtol=1e-12)
    fees = monthly_curve(market.fee_forward, portfolio.months)[months]
    np.testing.assert_allclose(s["market"]["fee_share"]["p50"], fees, rtol=1e-12)


def test_a_stochastic_run_reports_its_plan_on_the_central_path(viewed, tmp_path):
    run = api.solve(viewed, explain=False)
    central = run.summary["central_case"]
    assert run.summary["deterministic"] is False
    assert central["value_of_risk_usd"] == pytest.approx(
        run.summary["expected_npv_usd"] - central["npv_usd"], rel=1e-12
    )
    # the same plan valued by --deterministic
    plan = tmp_path / "plan.csv"
    run.outcome.plan_frame.to_csv(plan, index=False)
    same = api.evaluate(with_simulation(viewed, None, None, deterministic=True), plan)
    assert same.summary["expected_npv_usd"] == pytest.approx(central["npv_usd"], rel=1e-9)


def test_cli_deterministic_flag(run_cli, tmp_path):
    out = tmp_path / "out"
    r = run_cli(
        "solve", str(REPO / "scenarios" / "stranded-hydro.yaml"), "--deterministic",
        "--no-report", "--quiet", "--json", "--out", str(out),
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["deterministic"] is True and summary["scenarios"] == 1
    assert "few_scenarios" not in {w["code"] for w in summary["warnings"]}
