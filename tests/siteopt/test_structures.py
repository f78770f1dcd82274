"""Colocation beside AI cloud (siteopt.app.structures): summary.json's ``structures`` and
report.html's section, on a small portfolio whose site could take either."""

from __future__ import annotations

import pytest
import yaml

import siteopt
from siteopt.model.schema import Scenario
from siteopt.output.report import SECTIONS

from .support import MINIMAL

CLOUD = {
    "name": "cloud-x",
    "kind": "cloud",
    "price_usd_kw_month": 700,
    "term_years": 3,
    "min_mw": 0,
    "max_mw": 100,
    "eligible_sites": ["alpha"],
    "successor_price_usd_kw_month": 130,
    "gpu_capex_usd_mw": 20_000_000,
    "prepayment_share": 0.2,
    "operations_usd_mw_month": 60_000,
    "gpu_loan_to_cost": 0.5,
}


@pytest.fixture(scope="module")
def run():
    d = yaml.safe_load(MINIMAL)
    d["contracts"][0].pop("online_by")
    d["contracts"][0]["min_mw"] = 0
    d["contracts"].append(CLOUD)
    d["financing"]["capital_budget_usd"] = {2027: 1e10, 2028: 1e10}
    d["simulation"] = {"scenarios": 400, "seed": 3, "risk_sample": 100}
    return siteopt.solve(Scenario.model_validate(d), backend="numpy")


def test_the_site_that_could_take_either_is_compared(run):
    (entry,) = run.summary["structures"]
    colo, cloud = entry["colocation"], entry["cloud"]
    assert entry["site"] == "alpha"
    assert (colo["kind"], colo["contract"]) == ("colocation", "tenant-a")
    assert (cloud["kind"], cloud["contract"]) == ("cloud", "cloud-x")
    assert colo["gpu_capex_usd"] == 0.0 < cloud["gpu_capex_usd"]
    # each is its kind's best option at the site, as options.csv values it
    options = run.options[run.options["site"] == "alpha"]
    for k in (colo, cloud):
        mine = options[options["contract"] == k["contract"]]
        assert k["expected_npv_usd"] == pytest.approx(mine["expected_npv_usd"].max(), rel=1e-12)
        assert k["option"] == mine.loc[mine["expected_npv_usd"].idxmax(), "option"]
    chosen = run.plan.set_index("site").loc["alpha"]
    for k in (colo, cloud):
        assert k["chosen"] == (k["contract"] == chosen["contract"]
                               and k["ai_it_mw"] == chosen["ai_it_mw"]
                               and k["build_year"] == chosen["build_year"])  # fmt: skip
    assert 0 < cloud["margin"] < 1 and 0 < colo["margin"] < 1


def test_the_drivers_add_up_to_the_difference_in_e_npv(run):
    (entry,) = run.summary["structures"]
    gap = entry["cloud"]["expected_npv_usd"] - entry["colocation"]["expected_npv_usd"]
    assert sum(entry["drivers_usd"].values()) == pytest.approx(gap, rel=1e-9, abs=1.0)
    assert entry["drivers_usd"]["GPUs, net of their sale"] < 0
    winner = "cloud" if gap >= 0 else "colocation"
    assert entry["text"].startswith(f"{winner} is worth")


def test_the_report_sets_them_side_by_side(run, tmp_path):
    assert "structures" in SECTIONS
    run.write(tmp_path)
    page = (tmp_path / "report.html").read_text()
    section = page[page.index('id="structures"') :]
    section = section[: section.index("</section>")]
    assert "alpha" in section and "cloud-x" in section and "GPU capex" in section
