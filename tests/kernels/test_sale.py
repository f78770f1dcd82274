"""Selling or sharing a site (kernels/sale.py): a sale and a joint venture by hand, the
sale's draw, and the bad inputs. The fast path equals the monthly reference on the sale
variants of test_invariance.py."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from siteopt.app.params import kernel_inputs
from siteopt.app.valuation import value_options
from siteopt.kernels.sale import sale_closes
from siteopt.kernels.sites import site_options
from siteopt.model.load import ScenarioError, load_scenario

from .helpers import expected_npv, one_site, one_site_ai, with_ai_dict
from .test_closed_form import MINING_CASE, paper_npv

SALE = {"price_usd_mw": 300_000.0, "months_to_close": 10, "tax_basis_usd_mw": 100_000.0}
TAXED = {"tax.rate": 0.21, "tax.state_rate": 0.0}


@pytest.mark.parametrize("close_prob", [1.0, 0.5])
def test_a_sale_by_hand(close_prob):
    """A buyer pays $300k per MW of the 120 MW interconnect in month 10; the gain over a
    $100k/MW basis is taxed at 21% then. Where the sale closes the site is worth its first
    10 months of flows (PPA included, after tax) and the proceeds; elsewhere, hashing."""
    s = one_site(**MINING_CASE, **TAXED, **{"sites.0.sale": {**SALE, "close_prob": close_prob}})
    hashing = paper_npv(s)
    v = (1.0 + s.discount_rate) ** (-1.0 / 12.0)
    proceeds = 300_000.0 * 120.0 - 0.21 * (300_000.0 - 100_000.0) * 120.0
    sold = sum(hashing.cash[t] * v**t for t in range(10)) + v**10 * proceeds
    n = s.simulation.scenarios
    closes = sale_closes(kernel_inputs(s), 0, np.arange(n), xp=np)
    share = float(closes.mean())
    if close_prob == 1.0:
        assert share == 1.0
    else:
        assert 0.0 < share < 1.0  # both branches are taken on these 8 scenarios
    want = share * sold + (1.0 - share) * hashing.npv
    assert expected_npv(s, "sell") == pytest.approx(want, rel=1e-10)
    assert expected_npv(s, "hash") == pytest.approx(hashing.npv, rel=1e-10)


def test_a_sale_that_closes_in_the_terminal_window_keeps_that_share_of_the_exit():
    """Closing in month 40 of 48: the buyer takes the site, and the exit value the miner
    keeps is the months before closing's share of the last year's margin."""
    s = one_site(**MINING_CASE, **{"sites.0.sale": {**SALE, "months_to_close": 40,
                                                    "close_prob": 1.0}})  # fmt: skip
    hashing = paper_npv(s)
    v = (1.0 + s.discount_rate) ** (-1.0 / 12.0)
    # the monthly margin of months 36-39 times the exit multiple, at T (pre-tax case)
    sold = sum(hashing.cash[t] * v**t for t in range(40)) + v**40 * 300_000.0 * 120.0
    tv = expected_npv(s, "sell") - sold
    assert 0.0 < tv < hashing.terminal  # a share of the exit value, not all of it


def test_the_sale_closes_at_its_probability():
    """Over 20,000 scenarios the share that closes is within 4 standard errors of 0.3."""
    s = kernel_inputs(one_site(**{"sites.0.sale": {**SALE, "close_prob": 0.3}}))
    closes = sale_closes(s, 0, np.arange(20_000), xp=np)
    se = np.sqrt(0.3 * 0.7 / 20_000)
    assert abs(closes.mean() - 0.3) < 4 * se


GREENFIELD = {
    "sites.0.mining.mw": 0.0,
    "sites.0.power": {"ppa_mw": 0.0},
    "contracts.0.annual_default_prob": 0.2,
    "financing.debt.loan_to_cost": 0.6,
}


@pytest.mark.parametrize(
    "tax",
    [{}, {**TAXED, "tax.losses": "carry_forward", "financing.debt.non_recourse": True}],
    ids=["pre-tax", "carried-non-recourse"],
)
def test_a_joint_venture_of_a_greenfield_hall_is_the_miner_s_share_of_it(tax):
    """No mining at the site: the JV twin is worth (1 - jv_share) of the option alone, in
    every scenario (each flow, the debt and the tax scale with the share; a carried loss
    too, as it is proportional), and its capex and debt are that share of the option's."""
    s = one_site_ai(**GREENFIELD, **tax, **{"sites.0.sale": {"jv_share": 0.49}})
    result = value_options(s, backend="numpy")
    table = result.options.table.set_index("option")
    alone, jv = table.loc["ai40-2027-lease"], table.loc["ai40-2027-lease-jv"]
    assert jv["expected_npv_usd"] == pytest.approx(0.51 * alone["expected_npv_usd"], rel=1e-10)
    assert jv["cvar_usd"] == pytest.approx(0.51 * alone["cvar_usd"], rel=1e-10)
    assert jv["equity_capex_usd"] == pytest.approx(0.51 * alone["equity_capex_usd"], rel=1e-12)
    assert jv["debt_usd"] == pytest.approx(0.51 * alone["debt_usd"], rel=1e-12)
    assert jv["ai_it_mw"] == alone["ai_it_mw"] == 40.0  # the tenant leases the whole hall
    assert jv["partner_share"] == pytest.approx(0.49) and alone["partner_share"] == 0.0


def test_a_joint_venture_leaves_the_site_s_mining_whole():
    """With mining on the site, JV = (1 - s) x option + s x (the mining the option leaves):
    the partner shares the hall, not the site's mining. The mining part is the option's
    value with a hall that earns and costs nothing (capex and opex 0, a rent of 1e-9)."""
    nothing = {
        "contracts.0.price_usd_kw_month": 1e-9,  # above 0, and worth nothing
        "contracts.0.escalator": 0.0,
        "sites.0.ai.build_capex_usd_mw": 0.0,
        "sites.0.ai.opex_usd_mw_month": 0.0,
        "financing.exit_multiple_ai": 0.0,
    }
    sale = {"sites.0.sale": {"jv_share": 0.25}}
    s = one_site_ai(**sale)
    mining_part = expected_npv(one_site_ai(**sale, **nothing), "ai40-2027-lease")
    alone, jv = expected_npv(s, "ai40-2027-lease"), expected_npv(s, "ai40-2027-lease-jv")
    assert jv == pytest.approx(0.75 * alone + 0.25 * mining_part, rel=1e-10)
    assert alone != pytest.approx(mining_part, rel=1e-3)  # the hall is worth something


def test_the_options_a_sale_block_adds():
    s = kernel_inputs(one_site_ai(**{"sites.0.sale": {**SALE, "jv_share": 0.4}}))
    labels = [o.label for o in site_options(s, 0)]
    assert labels[:4] == ["hash", "sell", "ai20-2027-lease", "ai20-2027-lease-jv"]
    assert len(labels) == 2 + 2 * 3  # hash, sell, and 3 levels with their JV twins
    plain = kernel_inputs(one_site_ai())
    levels = ["ai20-2027-lease", "ai40-2027-lease", "ai60-2027-lease"]
    assert [o.label for o in site_options(plain, 0)] == ["hash", *levels]


def _problems(tmp_path, **site_changes) -> list[str]:
    d = with_ai_dict()
    d["sites"][0].update(site_changes)
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(d))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    return [str(p) for p in err.value.problems]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sale": {}}, "offers nothing"),
        ({"sale": {"price_usd_mw": 1e5, "months_to_close": 48}}, "must close within"),
        ({"sale": {"price_usd_mw": -1.0}}, "greater than 0"),
        ({"sale": {"price_usd_mw": 1e5, "close_prob": 0.0}}, "greater than 0"),
        ({"sale": {"price_usd_mw": 1e5, "close_prob": 1.2}}, "less than or equal to 1"),
        ({"sale": {"jv_share": 1.0}}, "less than 1"),
        ({"sale": {"jv_share": 0.0}}, "greater than 0"),
        ({"sale": {"jv_share": 0.5}, "ai": None}, "has no ai block"),
        ({"sale": {"price_usd_mw": 1e5, "buyer": "x"}}, "buyer"),
    ],
)
def test_bad_sale_inputs(tmp_path, changes, message):
    problems = _problems(tmp_path, **changes)
    assert any(message in p for p in problems), problems
