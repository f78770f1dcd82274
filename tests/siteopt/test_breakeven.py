"""breakeven: bisection on the valuation with fixed draws."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from siteopt.app.breakeven import _SiteValuer, breakeven
from siteopt.kernels.backend import select_backend
from siteopt.model.load import load_scenario, with_simulation
from siteopt.output.summary import summary_of

from .support import MINIMAL, mutate

TEXAS = Path(__file__).resolve().parents[2] / "scenarios" / "texas.yaml"
HYDRO = Path(__file__).resolve().parents[2] / "scenarios" / "stranded-hydro.yaml"


def _gap(path: Path, site: str, contract: str, price: float, n: int) -> float:
    from siteopt.model.load import with_simulation

    s = with_simulation(load_scenario(path), n, None)
    i = [x.name for x in s.sites].index(site)
    c = [x.name for x in s.contracts].index(contract)
    valuer = _SiteValuer(s, i, c, select_backend("numpy"))
    v = valuer.npv(price)
    return float(v[:, 1:].mean(axis=0).max() - valuer.alternative_npv.mean(axis=0).max())


@pytest.mark.parametrize(
    ("path", "site", "contract"),
    [
        (TEXAS, "pecos-1", "hyperscaler-a"),
        (HYDRO, "lulea-north", "regional-neocloud"),
    ],
)
def test_breakeven_brackets_the_sign_change(path, site, contract):
    b = breakeven(load_scenario(path), site, contract, backend="numpy", scenarios=300)
    assert b.by_expected_npv is not None and b.by_expected_npv > 0
    assert _gap(path, site, contract, b.by_expected_npv + 0.05, 300) >= 0
    assert _gap(path, site, contract, b.by_expected_npv - 0.05, 300) < 0


def test_breakeven_uses_fixed_draws():
    s = load_scenario(TEXAS)
    a = breakeven(s, "denton-north", "neocloud-b", backend="numpy", scenarios=200)
    b = breakeven(s, "denton-north", "neocloud-b", backend="numpy", scenarios=200)
    assert a == b
    c = breakeven(s, "denton-north", "neocloud-b", backend="numpy", scenarios=200, seed=99)
    assert c.by_expected_npv != a.by_expected_npv


def test_gap_rises_with_price():
    gaps = [_gap(TEXAS, "midland-2", "hyperscaler-a", p, 200) for p in (20.0, 60.0, 120.0, 200.0)]
    assert np.all(np.diff(gaps) > 0)


def test_breakeven_cli_json_and_bad_names(run_cli):
    run = run_cli(
        "breakeven",
        str(TEXAS),
        "--site",
        "pecos-1",
        "--contract",
        "hyperscaler-a",
        "--scenarios",
        "200",
        "--json",
        "--site-only",
    )
    assert run.exit_code == 0, run.stderr
    assert {"by_expected_npv", "by_cvar", "site", "contract"} <= json.loads(run.stdout).keys()
    run = run_cli("breakeven", str(TEXAS), "--site", "pecos-9", "--contract", "hyperscaler-a")
    assert run.exit_code == 2 and "pecos-9" in run.stderr
    run = run_cli("breakeven", str(TEXAS), "--site", "garden-city", "--contract", "hyperscaler-a")
    assert run.exit_code == 2 and "not eligible" in run.stderr


ONE_SITE = mutate(
    MINIMAL,
    [
        (
            """  - name: beta
    market: west
    interconnect_mw: 50
    mining:
      mw: 40
""",
            "",
        ),
        ("    min_mw: 20\n", "    min_mw: 0\n"),
        ("    online_by: 2029-06\n", ""),
        ("    2027: 100000000\n    2028: 50000000\n", "    2027: 900000000\n"),
    ],
)


def test_breakeven_is_where_the_solver_flips_on_one_site(write_scenario):
    """Just above the breakeven rent the MILP converts the site, just below it hashes."""
    from siteopt.app.pipeline import SolveSettings, solve
    from siteopt.model.load import apply_overrides

    scenario = load_scenario(write_scenario(ONE_SITE))
    b = breakeven(scenario, "alpha", "tenant-a", backend="numpy", scenarios=300)
    assert b.by_expected_npv is not None
    settings = SolveSettings(backend="numpy", gap_rel=1e-9)
    ai_mw = {}
    for side, price in (("above", b.by_expected_npv + 0.05), ("below", b.by_expected_npv - 0.05)):
        changed = apply_overrides(
            with_simulation(scenario, 300, None),
            [f"contracts.tenant-a.price_usd_kw_month={price!r}"],
        )
        ai_mw[side] = summary_of(solve(changed, settings))["ai_it_mw_total"]
    assert ai_mw["above"] > 0 and ai_mw["below"] == 0


def test_breakeven_is_against_the_best_alternative_and_respects_the_minimum():
    """midland-2 (80 MW of AI at most) on hyperscaler-a (100 MW minimum): its rival is its
    best neocloud-b option, not hashing, and no option alone signs the contract, which the
    result says. pecos-1 on hyperscaler-a: only options of 100 MW or more are candidates."""
    s = load_scenario(TEXAS)
    b = breakeven(s, "midland-2", "hyperscaler-a", backend="numpy", scenarios=300)
    assert b.alternative.endswith("-neocloud-b")
    assert b.min_mw == 100 and not b.alone_meets_minimum
    assert _gap(TEXAS, "midland-2", "hyperscaler-a", b.by_expected_npv + 0.05, 300) >= 0
    against_hashing = _hash_gap(TEXAS, "midland-2", "hyperscaler-a", b.by_expected_npv, 300)
    assert against_hashing > 0  # hashing was beaten long before: the rival raised the price
    p = breakeven(s, "pecos-1", "hyperscaler-a", backend="numpy", scenarios=300)
    assert p.alone_meets_minimum
    assert int(p.best_option_at_breakeven.split("-")[0][2:]) >= 100


def _hash_gap(path: Path, site: str, contract: str, price: float, n: int) -> float:
    s = with_simulation(load_scenario(path), n, None)
    i = [x.name for x in s.sites].index(site)
    c = [x.name for x in s.contracts].index(contract)
    v = _SiteValuer(s, i, c, select_backend("numpy")).npv(price)
    return float(v[:, 1:].mean(axis=0).max() - v[:, 0].mean())


def test_on_one_site_the_plan_signs_at_the_site_breakeven(write_scenario):
    """Without other sites or binding constraints the build plan signs the site exactly
    when converting beats hashing in E[NPV]: the two searches agree to their tolerance."""
    from siteopt.app.breakeven import PLAN_TOLERANCE_USD_KW_MONTH
    from siteopt.app.pipeline import SolveSettings

    scenario = load_scenario(write_scenario(ONE_SITE))
    settings = SolveSettings(backend="numpy", gap_rel=1e-9)
    b = breakeven(scenario, "alpha", "tenant-a", backend="numpy", scenarios=300, plan=settings)
    assert b.plan_searched and b.in_plan is not None
    assert abs(b.in_plan - b.by_expected_npv) <= PLAN_TOLERANCE_USD_KW_MONTH + 0.02
    assert b.in_plan_option.endswith("-tenant-a")
    assert b.in_plan_at_price == (b.in_plan <= scenario.contracts[0].price_usd_kw_month)


def test_the_plan_rent_is_where_the_whole_plan_signs_the_site():
    """abilene-legacy on hyperscaler-a: the plan signs it at the rent found and not just
    below; the site alone would need more (its rival, hyperscaler-tf, has no room left in
    the plan), which only the whole plan shows."""
    from siteopt.app.breakeven import PLAN_TOLERANCE_USD_KW_MONTH
    from siteopt.app.pipeline import SolveSettings, plan_only
    from siteopt.model.load import apply_overrides

    texas = with_simulation(load_scenario(TEXAS), 300, None)
    settings = SolveSettings(backend="numpy")
    b = breakeven(texas, "abilene-legacy", "hyperscaler-a", backend="numpy", plan=settings)
    assert b.in_plan is not None and b.in_plan < b.by_expected_npv

    def contract_at(price: float) -> str:
        changed = apply_overrides(texas, [f"contracts.hyperscaler-a.price_usd_kw_month={price}"])
        valuation, result = plan_only(changed, settings)
        return valuation.options.table.loc[result.chosen["abilene-legacy"], "contract"]

    assert contract_at(b.in_plan) == "hyperscaler-a"
    assert contract_at(b.in_plan - PLAN_TOLERANCE_USD_KW_MONTH - 0.01) != "hyperscaler-a"


def test_breakeven_cli_reports_the_plan_rent_unless_site_only(run_cli, tmp_path):
    args = ["breakeven", str(TEXAS), "--site", "denton-north", "--contract", "hyperscaler-a"]
    common = ["--scenarios", "200", "--json", "--out", str(tmp_path)]
    searched = json.loads(run_cli(*args, *common).stdout)
    assert searched["plan_searched"] and searched["in_plan_at_price"] is not None
    assert searched["in_plan"] is None or searched["in_plan"] > 0
    skipped = json.loads(run_cli(*args, *common, "--site-only").stdout)
    assert not skipped["plan_searched"] and skipped["in_plan"] is None
    assert skipped["by_expected_npv"] == searched["by_expected_npv"]
