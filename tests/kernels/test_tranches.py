"""Phased and multi-tenant sites (kernels/tranches.py): the tranches' capex and mining by
hand, a greenfield site's tranches as the sum of their halls, the options offered and the
bad inputs. The fast path equals the monthly reference on the phased variants of
test_invariance.py."""

from __future__ import annotations

import numpy as np
import pytest

from siteopt.app.params import kernel_inputs
from siteopt.app.valuation import value_options
from siteopt.kernels.sites import site_options
from siteopt.kernels.tranches import Tranche, mining_mw_at, tranche_capex_usd
from siteopt.model.load import check_option_count

from .helpers import one_site_ai, random_one_site_ai

PHASED = {"build.max_tranches_per_site": 2, "build.decision_years": [2027, 2028, 2029]}


def test_the_retrofit_mw_go_to_the_first_tranche():
    """30 MW of retrofit at $2M, then new build at $9M: 20 MW then 40 MW cost 20 x 2 and
    10 x 2 + 30 x 9 [$M]."""
    s = kernel_inputs(one_site_ai(**{"sites.0.ai.retrofit_mw": 30.0}))
    parts = (Tranche(20.0, 2027, 0), Tranche(40.0, 2028, 0))
    assert tranche_capex_usd(s.sites[0].ai, parts) == pytest.approx([40e6, 290e6], rel=1e-15)


def test_the_mining_each_month_leaves():
    """100 MW mining on a 100 MW interconnect, AI at PUE 1.25, 30 MW of retrofit, lead 9
    months: 20 MW from 2027 (months 0-8) and 40 MW from 2028 (months 12-20)."""
    s = kernel_inputs(
        one_site_ai(**{"sites.0.ai.retrofit_mw": 30.0, "sites.0.interconnect_mw": 100.0})
    )
    site = s.sites[0]
    parts = (Tranche(20.0, 2027, 0), Tranche(40.0, 2028, 0))

    def at(month: int) -> float:
        return mining_mw_at(s, site, parts, month)

    assert at(0) == 100.0 - 20 * 1.25  # its 20 retrofit MW stop at construction start
    assert at(9) == 100.0 - 20 * 1.25  # energised: what 20 MW leave
    assert at(12) == 100.0 - 30 * 1.25  # the other 10 retrofit MW stop: 62.5
    assert at(21) == 100.0 - 60 * 1.25  # both energised: 25
    # one tranche: the single conversion's rule (mining_while_built_mw, mining_left_mw)
    single = (Tranche(60.0, 2027, 0),)
    assert [mining_mw_at(s, site, single, m) for m in (0, 9)] == [62.5, 25.0]


def test_a_greenfield_site_s_tranches_are_the_sum_of_their_halls():
    """No mining and no retrofit: the tranches share nothing but the draws, so a phased
    option is worth its tranches' single options, scenario by scenario (losses offset)."""
    s = random_one_site_ai(
        **PHASED,
        **{"sites.0.mining.mw": 0.0, "sites.0.power": {"ppa_mw": 0.0}, "tax.rate": 0.21},
    )
    table = value_options(s, backend="numpy").options
    frame = table.table.set_index("option")
    phased = "ai20-2027-lease+ai40-2029-neo"
    alone = frame.loc["ai20-2027-lease", "expected_npv_usd"]
    alone += frame.loc["ai40-2029-neo", "expected_npv_usd"]
    assert frame.loc[phased, "expected_npv_usd"] == pytest.approx(alone, rel=1e-12)
    rows = {label: i for i, label in enumerate(table.table["option"])}
    risk = table.risk_npv_usd
    np.testing.assert_allclose(
        risk[rows[phased]],
        risk[rows["ai20-2027-lease"]] + risk[rows["ai40-2029-neo"]],
        rtol=1e-12,
        atol=1e-3,
    )
    # the equity, the debt and each tranche's MW on its contract add up too
    for column in ("equity_capex_usd", "debt_usd", "capex_2027_usd", "capex_2029_usd"):
        want = frame.loc["ai20-2027-lease", column] + frame.loc["ai40-2029-neo", column]
        assert frame.loc[phased, column] == pytest.approx(want, rel=1e-12)
    halls = table.tranches[table.tranches["row"] == rows[phased]]
    assert halls[["contract", "ai_it_mw", "build_year"]].values.tolist() == [
        ["lease", 20.0, 2027],
        ["neo", 40.0, 2029],
    ]


def test_the_phased_options_a_site_offers():
    """Three levels (20-60 MW), one contract, three years: two tranches on distinct years
    whose MW sum to at most 60: 3 pairs of years x 3 pairs of levels."""
    one = kernel_inputs(one_site_ai(**PHASED))
    labels = [o.label for o in site_options(one, 0)]
    phased = [label for label in labels if "+" in label]
    assert len(phased) == 9
    assert "ai20-2027-lease+ai40-2028-lease" in phased
    assert "ai40-2027-lease+ai40-2028-lease" not in phased  # 80 MW: above the site's 60
    three = kernel_inputs(one_site_ai(**{**PHASED, "build.max_tranches_per_site": 3}))
    assert "ai20-2027-lease+ai20-2028-lease+ai20-2029-lease" in [
        o.label for o in site_options(three, 0)
    ]
    # a contract whose debt another rate prices is not combined with the lease
    other = random_one_site_ai(**PHASED, **{"contracts.1.financing": {"rate": 0.11}})
    labels = [o.label for o in site_options(kernel_inputs(other), 0)]
    assert not any("lease" in label and "neo" in label for label in labels)
    assert any(label.count("neo") == 2 for label in labels)  # neo in two phases still


def test_one_tranche_offers_what_revision_3_offered():
    base = kernel_inputs(random_one_site_ai())
    once = kernel_inputs(random_one_site_ai(**{"build.max_tranches_per_site": 1}))
    assert site_options(base, 0) == site_options(once, 0)
    assert all(not o.parts for o in site_options(base, 0))


def test_too_many_phased_options_are_refused_with_the_key_to_change():
    s = one_site_ai(
        **{
            **PHASED,
            "build.max_tranches_per_site": 3,
            "build.ai_step_mw": 1.0,
            "sites.0.ai.max_it_mw": 60.0,
        }
    )
    [(path, message)] = check_option_count(s)
    assert path == ("build", "max_tranches_per_site")
    assert "lower build.max_tranches_per_site" in message
