"""A held-out portfolio (tests/data/heldout.yaml, written after the model and never used
to tune it) with an AI cloud offer beside a lease, a buyer's bid and a partner's JV offer:
it solves, and the report says why each structure won or lost at each site."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

import siteopt

HELDOUT = Path(__file__).resolve().parents[1] / "data" / "heldout.yaml"


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    run = siteopt.solve(siteopt.load(HELDOUT), scenarios=1_000, backend="numpy")
    out = tmp_path_factory.mktemp("heldout")
    run.write(out, report=True)
    return run, html.unescape((out / "report.html").read_text())


def test_the_held_out_portfolio_solves_with_a_reason_for_every_site(heldout):
    run, page = heldout
    summary = run.summary
    assert summary["status"] == "optimal"
    for site in summary["sites"]:
        assert site["why"]["text"] and site["why"]["text"] in page


def test_the_report_sets_cloud_beside_colocation(heldout):
    run, page = heldout
    (lamesa,) = run.summary["structures"]
    assert lamesa["site"] == "lamesa-campus"
    assert lamesa["cloud"]["contract"] == "cloud-c"
    assert lamesa["colocation"]["contract"] == "lease-h"
    assert lamesa["text"] in page


def test_the_report_says_why_each_site_is_sold_shared_or_kept(heldout):
    run, page = heldout
    deals = {d["site"]: d for d in run.summary["deals"]}
    assert set(deals) == {"snyder-yard", "post-pad"}
    assert {d["deal"] for d in deals["snyder-yard"]["deals"]} == {"keep", "sell"}
    assert {d["deal"] for d in deals["post-pad"]["deals"]} == {"keep", "alone", "jv"}
    plan = {s["name"]: s["option"] for s in run.summary["sites"]}
    for name, comparison in deals.items():
        assert comparison["text"].startswith("the plan ") and comparison["text"] in page
        for deal in comparison["deals"]:
            assert deal["chosen"] == (deal["option"] == plan[name])


def test_the_phased_site_and_why_it_is_phased(heldout):
    """post-pad may build in two phases: the plan phases it, its reason names both
    tranches, plan.csv has a row for each, and its deals say why not in one go."""
    run, page = heldout
    post = next(s for s in run.summary["sites"] if s["name"] == "post-pad")
    assert "+" in post["option"] and len(post["tranches"]) == 2
    assert " and " in post["why"]["text"] and post["why"]["text"] in page
    assert (run.plan["site"] == "post-pad").sum() == 2
    deals = {d["site"]: d for d in run.summary["deals"]}
    assert deals["post-pad"]["text"].startswith("the plan is converting it (")
