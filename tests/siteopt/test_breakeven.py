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
