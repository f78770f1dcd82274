"""Degenerate but valid scenarios give sensible plans (issue 8, part 2).

Each test starts from support.MINIMAL (sites alpha, which can host up to 70 MW of AI, and
beta, which cannot; one contract, tenant-a, on alpha), changes one thing to an edge of
what the schema allows, solves through the command line, and states what "sensible"
means for that edge. Every exit-0 run also passes test_fuzz's check that the output
folder holds no NaN or infinity.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from siteopt.optimizer.options import KEEP_HASHING

from .support import MINIMAL, Run
from .test_fuzz import assert_finite_outputs

RunCli = Callable[..., Run]
BASE: dict[str, Any] = yaml.safe_load(MINIMAL)
N = "128"
RUN_ARGS = ("--scenarios", N, "--no-report", "--quiet", "--time-limit", "20")
REL = 1e-9  # "equal" for sums of identical float64 values in a different order


def scenario(**changes: Any) -> dict[str, Any]:
    """MINIMAL with dotted-path changes, e.g. ``scenario(**{"market.btc_volatility": 0})``;
    a value of ``...`` deletes the key."""
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *head, last = dotted.split(".")
        node = data
        for part in head:
            node = node[part] if isinstance(node, dict) else _by_name(node, part)
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return data


def _by_name(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(item for item in items if item.get("name") == name)


@dataclass(frozen=True)
class Solved:
    run: Run
    out: Path

    @property
    def summary(self) -> dict[str, Any]:
        return json.loads((self.out / "summary.json").read_text(encoding="utf-8"))

    @property
    def plan(self) -> pd.DataFrame:
        return pd.read_csv(self.out / "plan.csv", keep_default_na=False).set_index("site")

    @property
    def options(self) -> pd.DataFrame:
        return pd.read_csv(self.out / "options.csv", keep_default_na=False)


@pytest.fixture
def solve(run_cli: RunCli, tmp_path: Path) -> Callable[..., Solved]:
    """Write a scenario, ``siteopt solve`` it, and check the finite-outputs property on exit 0."""
    count = iter(range(1_000))

    def run(data: dict[str, Any], *extra: str) -> Solved:
        k = next(count)
        path = tmp_path / f"scenario{k}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        out = tmp_path / f"out{k}"
        result = run_cli("solve", str(path), *RUN_ARGS, "--out", str(out), *extra)
        assert "Traceback" not in result.output
        if result.exit_code == 0:
            assert_finite_outputs(out)
        return Solved(result, out)

    return run


def _ok(solved: Solved) -> Solved:
    assert solved.run.exit_code == 0, solved.run.output
    assert solved.summary["status"] == "optimal"
    assert solved.summary["violations"] == []
    return solved


# ----------------------------------------------------------------- zero volatility

DETERMINISTIC = {
    "market.btc_volatility": 0.0,
    "market.hashrate_volatility": 0.0,
    "market.fee_share_volatility": 0.0,
    "power_markets.west.price_volatility": 0.0,
    "power_markets.west.fourcp_avoidance": 1.0,  # curtailable load always avoids 4CP
    "sites.alpha.ai.capex_overrun_volatility": 0.0,
    "sites.alpha.ai.delay_mean_months": 0.0,
    "contracts.tenant-a.annual_default_prob": 0.0,
    "contracts.tenant-a.market_rent_volatility": 0.0,
    "market.ai": {"rent_volatility": 0.0},  # the AI rent index on one path
}


def test_zero_volatility_makes_every_scenario_identical(solve) -> None:
    """Sensible: with every source of randomness switched off (volatilities 0, no random
    delay, no tenant exit, 4CP always avoided) all scenarios are the same path, so for every
    option the NPV's std is exactly 0 and its quantiles and CVaR equal its mean; the same
    holds for the portfolio in summary.json; and the seed changes nothing."""
    solved = _ok(solve(scenario(**DETERMINISTIC)))
    options = solved.options
    assert (options["std_npv_usd"] == 0.0).all()
    for column in ("p5_npv_usd", "p50_npv_usd", "p95_npv_usd", "cvar_usd"):
        assert options[column].to_numpy() == pytest.approx(
            options["expected_npv_usd"].to_numpy(), rel=REL, abs=1e-3
        ), column
    summary = solved.summary
    mean = summary["expected_npv_usd"]
    for key in ("p5_npv_usd", "p50_npv_usd", "p95_npv_usd", "cvar_usd"):
        assert summary[key] == pytest.approx(mean, rel=REL), key
    for name, baseline in summary["baselines"].items():
        assert baseline["cvar_usd"] == pytest.approx(baseline["expected_npv_usd"], rel=REL), name
    other_seed = _ok(solve(scenario(**DETERMINISTIC), "--seed", "12345"))
    assert other_seed.summary["expected_npv_usd"] == pytest.approx(mean, rel=REL)


# ------------------------------------------------------------ zero capital budget


@pytest.mark.parametrize(
    "budget", [{}, {2027: 0, 2028: 0}], ids=["no-budget-entries", "zero-every-year"]
)
def test_zero_capital_budget_keeps_every_site_hashing(budget: dict, solve) -> None:
    """Sensible: every AI option costs equity capex and none can be paid for, so the plan is
    all mining: no AI MW, no contract, no capex, every site at its mining MW, and the plan
    is exactly the all-mining baseline (the "most AI" baseline is all mining too)."""
    solved = _ok(solve(scenario(**{"financing.capital_budget_usd": budget})))
    plan, summary = solved.plan, solved.summary
    assert (plan["ai_it_mw"] == 0).all()
    assert (plan["contract"] == "").all()
    assert (plan["equity_capex_usd"] == 0).all()
    assert plan["mining_mw"].to_dict() == {"alpha": 90, "beta": 40}
    assert summary["equity_capex_by_year_usd"] == {}
    assert summary["ai_it_mw_total"] == 0
    all_mining = summary["baselines"]["all_mining"]
    assert summary["expected_npv_usd"] == pytest.approx(all_mining["expected_npv_usd"], rel=REL)
    assert summary["cvar_usd"] == pytest.approx(all_mining["cvar_usd"], rel=REL)
    max_ai = summary["baselines"]["max_ai"]
    assert max_ai["expected_npv_usd"] == pytest.approx(all_mining["expected_npv_usd"], rel=REL)


# ------------------------------------------------------------- no AI capacity


@pytest.mark.parametrize(
    "changes",
    [
        {"sites.alpha.ai": ...},
        {"sites.alpha.ai.max_it_mw": 0},
        {"sites.alpha.ai.max_it_mw": 10},  # below one ai_step_mw of 20: no level fits
    ],
    ids=["no-ai-block", "max-it-mw-0", "max-below-one-step"],
)
def test_a_site_without_ai_capacity_only_keeps_hashing(changes: dict, solve) -> None:
    """Sensible: a site that cannot host AI (no ``ai`` block, ``max_it_mw: 0``, or less than
    one ``ai_step_mw``) is offered exactly one option, keep hashing, and the plan keeps it
    hashing at its full mining MW. tenant-a then has no site and, not being must_sign,
    is not signed: the plan is all mining."""
    solved = _ok(solve(scenario(**changes)))
    options = solved.options
    alpha = options[options["site"] == "alpha"]
    assert list(alpha["option"]) == [KEEP_HASHING]
    assert alpha["equity_capex_usd"].tolist() == [0.0]
    plan = solved.plan
    assert plan.loc["alpha", "ai_it_mw"] == 0
    assert plan.loc["alpha", "mining_mw"] == 90
    assert (plan["contract"] == "").all()


# ------------------------------------------------ a contract nobody can host


@pytest.mark.parametrize("eligible", [["beta"], []], ids=["only-a-site-without-ai", "empty"])
def test_a_must_sign_contract_no_site_can_host_is_infeasible(eligible: list[str], solve) -> None:
    """Sensible: tenant-a must be signed for at least 20 MW, but no eligible site can host a
    single MW; no plan exists, so exit 3 and a reason that names the contract and the MW."""
    data = scenario(
        **{"contracts.tenant-a.eligible_sites": eligible, "contracts.tenant-a.must_sign": True}
    )
    solved = solve(data)
    assert solved.run.exit_code == 3, solved.run.output
    assert solved.run.stdout == ""
    errors = [ln for ln in solved.run.stderr.splitlines() if not ln.startswith("warning: ")]
    warnings = [ln for ln in solved.run.stderr.splitlines() if ln.startswith("warning: ")]
    assert any("contracts.tenant-a: can never be signed" in ln for ln in warnings), warnings
    assert errors == [
        "infeasible: no build plan satisfies the constraints",
        "  contract tenant-a needs at least 20 MW but eligible sites can host at most 0 MW "
        "in total",
    ]
    assert not (solved.out / "summary.json").exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"contracts.tenant-a.eligible_sites": ["beta"]},  # min_mw 20, but optional
        {"contracts.tenant-a.eligible_sites": []},
        {  # must_sign with min_mw 0: signing for 0 MW is vacuous
            "contracts.tenant-a.eligible_sites": ["beta"],
            "contracts.tenant-a.must_sign": True,
            "contracts.tenant-a.min_mw": 0,
        },
    ],
    ids=["optional", "optional-empty-list", "must-sign-min-0"],
)
def test_a_contract_no_site_can_host_is_otherwise_ignored(changes: dict, solve) -> None:
    """Sensible: a contract no site can host that does not force any MW is simply not used:
    the plan is found (exit 0), no site is on it, and the plan is all mining (alpha's only
    contract is gone)."""
    solved = _ok(solve(scenario(**changes)))
    assert "tenant-a" not in set(solved.options["contract"])
    plan = solved.plan
    assert (plan["contract"] == "").all()
    assert (plan["ai_it_mw"] == 0).all()


# ------------------------------------------------------------ one-year horizon


def test_a_one_year_horizon_values_a_hall_still_being_built_at_its_exit(solve) -> None:
    """Sensible: over one year (12 months) an AI hall with a 15-month lead time spends 12
    months of capex but never earns rent. Its lease is not lost at the horizon: a buyer
    at T pays the lease's value less the 3 months of capex still to spend (the paper model
    of tests/kernels/test_closed_form.py checks that value), so an AI option's terminal
    value grows with its MW. The cash flows cover exactly the 12 months of 2027."""
    data = scenario(
        **{
            "horizon_years": 1,
            "build.decision_years": [2027],
            "financing.capital_budget_usd": {2027: 100_000_000},
            "contracts.tenant-a.online_by": ...,
        }
    )
    solved = _ok(solve(data))
    options = solved.options
    ai = options[options["site"] == "alpha"].iloc[1:]
    assert len(ai) == 3  # 20, 40, 60 MW in 2027
    terminal = ai["expected_terminal_pv_usd"].to_numpy()
    assert (terminal > 0).all() and (np.diff(terminal) > 0).all()
    cashflows = pd.read_csv(solved.out / "cashflows.csv")
    assert sorted(cashflows["month"].unique()) == [f"2027-{m:02d}" for m in range(1, 13)]


def test_a_one_year_horizon_with_instant_ai_earns_rent(solve) -> None:
    """Sensible: with no lead time and no delay, AI rent starts in month 0 and the one-year
    horizon keeps a full year of NOI for the terminal value: at $130/kW-month the hall is
    worth building, and the plan converts alpha."""
    data = scenario(
        **{
            "horizon_years": 1,
            "build.decision_years": [2027],
            "financing.capital_budget_usd": {2027: 100_000_000},
            "contracts.tenant-a.online_by": ...,
            "sites.alpha.ai.lead_time_months": 0,
            "sites.alpha.ai.delay_mean_months": 0.0,
        }
    )
    solved = _ok(solve(data))
    assert solved.plan.loc["alpha", "ai_it_mw"] > 0
    assert solved.plan.loc["alpha", "contract"] == "tenant-a"


# ----------------------------------------------------- halving in the first month


def test_a_halving_in_the_first_month_halves_the_starting_hashprice(run_cli, tmp_path) -> None:
    """Sensible: a halving at the start month applies from month 0 (docs/scenario.md), so the
    first month's subsidy and hashprice (fees being a share of the subsidy) are exactly half
    of those without it; a halving listed before the start is the same."""

    def hashprice(halvings: list[str]) -> float:
        path = tmp_path / f"h{len(halvings)}{''.join(halvings)}.yaml"
        data = scenario(**{"market.halving_months": halvings})
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        result = run_cli("economics", str(path), "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["hashprice_usd_ph_day"]

    none = hashprice([])
    assert hashprice(["2027-01"]) == pytest.approx(none / 2, rel=1e-12)
    assert hashprice(["2026-06"]) == pytest.approx(none / 2, rel=1e-12)
    assert hashprice(["2027-01", "2028-04"]) == pytest.approx(none / 2, rel=1e-12)


def test_a_halving_in_the_first_month_lowers_mining_value(solve) -> None:
    """Sensible: on the same draws and without hashrate feedback (elasticity 0, so the
    hashrate path does not react), halving the subsidy from month 0 lowers every month's
    mining revenue, so each site's keep-hashing NPV is lower than with no halving at all;
    a halving listed before the start gives the very same valuation; the plan is found."""

    def hashing_npv(halvings: list[str]) -> pd.Series:
        data = scenario(**{"market.halving_months": halvings, "market.hashrate_elasticity": 0.0})
        options = _ok(solve(data)).options
        return options[options["option"] == KEEP_HASHING].set_index("site")["expected_npv_usd"]

    at_start = hashing_npv(["2027-01"])
    assert (at_start < hashing_npv([])).all()
    assert hashing_npv(["2026-06"]).to_dict() == at_start.to_dict()


# ------------------------------------------------------------ no risk sample


def test_no_risk_sample_solves_risk_neutrally(solve) -> None:
    """Sensible: ``simulation.risk_sample: 0`` hands the MILP no per-scenario NPVs, which a
    risk-neutral objective does not need: the plan is found, summary.json says the sample
    is empty, and the CVaRs reported (from all scenarios) are finite."""
    solved = _ok(solve(scenario(**{"simulation.risk_sample": 0})))
    summary = solved.summary
    assert summary["risk_sample"] == 0
    assert summary["cvar_risk_sample_usd"] is None
    assert summary["cvar_usd"] <= summary["expected_npv_usd"]


def test_no_risk_sample_with_a_frontier_is_bad_input(solve) -> None:
    """Sensible: every frontier point weighs the CVaR of the risk sample; with none there is
    no frontier to trace, which is the user's input to fix (exit 2), not a bug (exit 1)."""
    solved = solve(scenario(**{"simulation.risk_sample": 0}), "--frontier", "3")
    assert solved.run.exit_code == 2, solved.run.output
    assert "risk_sample" in solved.run.stderr
