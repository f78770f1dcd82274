"""Halvings generated for the whole horizon when ``market.halving_months`` is omitted
(docs/model.md, revision 2): every 210,000 blocks after April 2024, at 600 s a block."""

from __future__ import annotations

import numpy as np
import pytest

from siteopt.app.economics import subsidy_btc_at
from siteopt.app.params import kernel_inputs
from siteopt.kernels.market import subsidy_schedule
from siteopt.model.load import apply_overrides, load_scenario
from siteopt.model.plausibility import plausibility_findings
from siteopt.model.schema import Market, generated_halvings, year_month_index

from .support import REPO

HYDRO = REPO / "scenarios" / "stranded-hydro.yaml"


def test_the_generated_months_by_hand():
    # 210,000 blocks x 600 s = 1,458.3 days: four years, to the month
    assert generated_halvings("2028-03") == ()
    assert generated_halvings("2028-04") == ("2028-04",)
    assert generated_halvings("2036-03") == ("2028-04", "2032-04")
    assert generated_halvings("2041-12") == ("2028-04", "2032-04", "2036-04", "2040-04")


@pytest.fixture(scope="module")
def omitted():
    scenario = load_scenario(HYDRO)
    assert scenario.market.halving_months is None  # the bundled file leaves them out
    return scenario


def test_omitted_halvings_cover_the_whole_horizon(omitted):
    long = apply_overrides(omitted, ["start=2027-01", "horizon_years=15"])
    assert long.last_month == "2041-12"
    assert long.halvings == ("2028-04", "2032-04", "2036-04", "2040-04")
    subsidy = subsidy_schedule(kernel_inputs(long))
    at = {h: year_month_index(long.start, h) for h in long.halvings}
    assert subsidy[at["2028-04"] - 1] == 3.125 and subsidy[at["2028-04"]] == 1.5625
    assert subsidy[at["2040-04"] - 1] == 3.125 / 8 and subsidy[-1] == 3.125 / 16


def test_a_halving_before_a_later_start_is_generated_too(omitted):
    later = omitted.model_copy(update={"start": "2030-01"})  # budgets aside: not validated
    assert later.halvings[0] == "2028-04"
    assert subsidy_schedule(kernel_inputs(later))[0] == 1.5625
    assert subsidy_btc_at(later.market, "2030-01") == 1.5625


def test_a_given_list_is_used_as_written(omitted):
    none = apply_overrides(omitted, ["market.halving_months=[]"])
    assert none.halvings == ()
    assert np.all(subsidy_schedule(kernel_inputs(none)) == 3.125)
    one = apply_overrides(omitted, ["market.halving_months=[2029-01]"])
    assert one.halvings == ("2029-01",)
    assert subsidy_btc_at(Market(halving_months=("2029-01",)), "2034-01") == 1.5625


def test_only_a_given_list_can_lack_a_halving(omitted):
    def codes(scenario):
        return [f.code for f in plausibility_findings(scenario)]

    assert "halving_missing" not in codes(omitted)
    short = apply_overrides(omitted, ["market.halving_months=[2028-04]"])
    assert "halving_missing" in codes(short)  # the horizon passes 2032-04


def test_generated_halvings_are_the_numbers_of_the_listed_ones(omitted):
    listed = apply_overrides(omitted, ["market.halving_months=[2028-04, 2032-04]"])
    np.testing.assert_array_equal(
        subsidy_schedule(kernel_inputs(omitted)), subsidy_schedule(kernel_inputs(listed))
    )
