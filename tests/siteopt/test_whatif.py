"""`siteopt whatif`: the same draws for base and changed, so deltas are the change's."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from siteopt.app.pipeline import SolveSettings
from siteopt.app.whatif import TOTAL_KEYS, whatif
from siteopt.model.load import load_scenario, with_simulation
from siteopt.output.summary import summary_of

from .support import REPO

TEXAS = REPO / "scenarios" / "texas.yaml"
SETTINGS = SolveSettings(backend="numpy")


@pytest.fixture(scope="module")
def texas():
    return with_simulation(load_scenario(TEXAS), 300, None)


def test_no_change_reports_zero_deltas_exactly(texas):
    result = whatif(texas, [], SETTINGS)
    assert result.sites_revalued == 0
    for key, d in result.totals.items():
        assert d["delta"] == 0.0 and d["base"] == d["changed"], key
    deltas = result.sites.filter(like="delta_")
    assert (deltas.to_numpy() == 0.0).all()
    assert not result.sites["changed"].any()
    base, changed = summary_of(result.base), summary_of(result.changed)
    for key in ("expected_npv_usd", "cvar_usd", "sites", "equity_capex_by_year_usd"):
        assert base[key] == changed[key]


def test_a_change_that_cannot_reach_a_site_leaves_its_numbers_bit_identical(texas):
    result = whatif(texas, ["sites.pecos-1.ai.build_capex_usd_mw=11000000"], SETTINGS)
    assert result.sites_revalued == 1
    a = result.base.valuation.options.table
    b = result.changed.valuation.options.table
    others = (a["site"] != "pecos-1").to_numpy()
    pd.testing.assert_frame_equal(a[others], b[others], check_exact=True)
    np.testing.assert_array_equal(
        result.base.valuation.options.risk_npv_usd[others],
        result.changed.valuation.options.risk_npv_usd[others],
    )
    # pecos-1 retrofits its first 60 MW (retrofit_mw), so new-build capex moves the levels
    # above that by their capex; every level's re-let capex (5% of the build capex by
    # default, r2) moves a little too
    above = ~others & (a["ai_it_mw"] > 60).to_numpy()
    within = ~others & (a["ai_it_mw"] <= 60).to_numpy() & (a["ai_it_mw"] > 0).to_numpy()
    drop = a["expected_npv_usd"] - b["expected_npv_usd"]
    assert (drop[above] > 0).all() and (drop[within] > 0).all()
    per_mw = drop / a["ai_it_mw"].where(a["ai_it_mw"] > 0)
    relet_capex_change = 0.05 * (11_000_000 - 9_500_000)  # per MW, per successor fit-out
    assert per_mw[within].max() < relet_capex_change  # discounted, and not every scenario
    for row in result.sites.to_dict("records"):
        if row["site"] != "pecos-1" and not row["changed"]:
            assert row["delta_expected_npv_usd"] == 0.0 and row["delta_cvar_usd"] == 0.0


def test_totals_are_changed_minus_base(texas):
    result = whatif(texas, ["contracts.hyperscaler-a.price_usd_kw_month=100"], SETTINGS)
    for key in TOTAL_KEYS:
        d = result.totals[key]
        assert d["delta"] == d["changed"] - d["base"]
        assert d["base"] == summary_of(result.base)[key]
        assert d["changed"] == summary_of(result.changed)[key]
    assert result.totals["expected_npv_usd"]["delta"] < 0  # a lower rent cannot help


def test_whatif_cli_writes_both_plans_and_the_diff(run_cli, tmp_path):
    run = run_cli(
        "whatif", str(TEXAS), "--scenarios", "300", "--out", str(tmp_path), "--quiet",
        "--set", "contracts.hyperscaler-a.price_usd_kw_month=120", "--no-report",
    )  # fmt: skip
    assert run.exit_code == 0, run.stderr
    assert "hyperscaler-a" in run.stdout and "delta" in run.stdout
    for which in ("base", "changed"):
        assert (tmp_path / which / "summary.json").exists()
        assert (tmp_path / which / "plan.csv").exists()
    diff = pd.read_csv(tmp_path / "diff.csv")
    assert list(diff["site"]) == [s.name for s in load_scenario(TEXAS).sites]
    payload = json.loads((tmp_path / "whatif.json").read_text())
    assert payload["changes"] == ["contracts.hyperscaler-a.price_usd_kw_month=120"]
    assert set(TOTAL_KEYS) <= payload["totals"].keys()
    assert not (tmp_path / "whatif.html").exists()  # --no-report


def test_whatif_html_compares_the_two_plans(tmp_path):
    from siteopt.output.compare import whatif_html

    document = {
        "scenario": "x<y",
        "changes": ["contracts.a.price_usd_kw_month=120"],
        "scenarios": 300, "seed": 7, "backend": "numpy",
        "status": {"base": "optimal", "changed": "optimal"},
        "totals": {
            "expected_npv_usd": {"base": 2e9, "changed": 2.1e9, "delta": 1e8},
            "ai_it_mw_total": {"base": 100.0, "changed": 140.0, "delta": 40.0},
            "equity_capex_2027_usd": {"base": 5e7, "changed": 7e7, "delta": 2e7},
        },
        "sites": [
            {"site": "s1", "changed": True, "base_ai_it_mw": 0.0, "base_contract": None,
             "base_build_year": None, "changed_ai_it_mw": 40.0, "changed_contract": "a",
             "changed_build_year": 2028.0, "delta_expected_npv_usd": 1e8, "delta_cvar_usd": -5e6},
        ],
        "sites_changed": 1, "sites_revalued": 1,
    }  # fmt: skip
    html = whatif_html(document)
    assert "<title>siteopt whatif: x&lt;y</title>" in html
    assert "<td>E[NPV]</td><td class=num>$2,000.0M</td><td class=num>$2,100.0M</td>" in html
    assert "<td class=num>+$100.0M</td>" in html and "<td class=num>+40</td>" in html
    assert "<td>equity capex 2027</td>" in html
    assert "<td>keep hashing</td><td>40 MW for a from 2028</td>" in html
    assert "<a href='changed/report.html'>changed</a>" in html


def test_whatif_json_without_a_change(run_cli, tmp_path):
    run = run_cli(
        "whatif", str(TEXAS), "--scenarios", "200", "--out", str(tmp_path), "--json", "--no-report"
    )
    assert run.exit_code == 0, run.stderr
    payload = json.loads(run.stdout)
    assert all(d["delta"] == 0 for d in payload["totals"].values())
    assert payload["sites_changed"] == 0 and payload["sites_revalued"] == 0


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ("contracts.hyperscaler-a.price_usd_kw_mnth=120", "price_usd_kw_month"),
        ("contracts.hyperscaler-z.price_usd_kw_month=120", "hyperscaler-a"),
        ("contracts.hyperscaler-a.price_usd_kw_month=-5", "greater than 0"),
        ("contracts.hyperscaler-a.price_usd_kw_month=!!python/object:os.system ls", "cannot read"),
    ],
)
def test_bad_change_is_exit_2_before_any_work(run_cli, tmp_path, change, needle):
    run = run_cli("whatif", str(TEXAS), "--set", change, "--out", str(tmp_path), "--quiet")
    assert run.exit_code == 2, run.output
    assert needle in run.stderr and "Traceback" not in run.stderr
    assert not any(tmp_path.iterdir())
