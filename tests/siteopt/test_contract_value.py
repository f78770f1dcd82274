"""A contract given by its stated value instead of its price (contracts[].contract_value_usd,
siteopt/model/contract_value.py): the price it gives earns the value over the first term,
as the kernels' rent schedule counts it; a price beside it is used, with a warning where
the two differ; and the bad inputs."""

from __future__ import annotations

import pytest
import yaml

from siteopt.app.params import kernel_inputs
from siteopt.kernels.hosting import term_revenue_usd_mw
from siteopt.model.load import ScenarioError, load_scenario
from siteopt.model.plausibility import plausibility_findings

from ..kernels.helpers import with_ai_dict


def _write(tmp_path, **contract) -> str:
    d = with_ai_dict()
    d["contracts"][0].update(contract)
    d["contracts"][0] = {k: v for k, v in d["contracts"][0].items() if v is not None}
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(d))
    return str(path)


def test_iren_s_contract_value_gives_its_price(tmp_path):
    """$9.7B over 5 years for 200 MW, flat: $808.33 per kW-month."""
    path = _write(tmp_path, price_usd_kw_month=None, contract_value_usd=9.7e9, max_mw=200.0,
                  term_years=5.0, escalator=0.0)  # fmt: skip
    contract = load_scenario(path).contracts[0]
    assert contract.price_usd_kw_month == pytest.approx(9.7e9 / (200 * 1000 * 60), rel=1e-12)


def test_the_price_earns_the_value_as_the_kernels_count_it(tmp_path):
    """Escalated 3% a year and ramped (half the MW for 7 months) over 6.5 years: the
    kernels' first-term revenue at max_mw is the value."""
    path = _write(tmp_path, price_usd_kw_month=None, contract_value_usd=1.2e9, max_mw=80.0,
                  term_years=6.5, escalator=0.03, ramp=[{"months": 7, "share": 0.5}])  # fmt: skip
    scenario = load_scenario(path)
    kernel = kernel_inputs(scenario).contracts[0]
    assert 80.0 * term_revenue_usd_mw(kernel) == pytest.approx(1.2e9, rel=1e-12)
    assert not [f for f in plausibility_findings(scenario) if f.code == "contract_value"]


def test_a_price_beside_a_value_is_used_and_a_difference_warned(tmp_path):
    path = _write(tmp_path, contract_value_usd=4.8e9, max_mw=100.0, term_years=5.0,
                  escalator=0.0, price_usd_kw_month=800.0)  # fmt: skip
    same = load_scenario(path)
    assert same.contracts[0].price_usd_kw_month == 800.0
    assert not [f for f in plausibility_findings(same) if f.code == "contract_value"]
    moved = load_scenario(path, ["contracts.lease.price_usd_kw_month=900"])  # as a sweep does
    assert moved.contracts[0].price_usd_kw_month == 900.0
    [warning] = [f for f in plausibility_findings(moved) if f.code == "contract_value"]
    assert "the price is used" in warning.message and "$5,400.0M" in warning.message


def test_a_value_needs_the_mw_it_is_for(tmp_path):
    d = with_ai_dict()
    contract = d["contracts"][0]
    del contract["price_usd_kw_month"], contract["max_mw"]
    contract["contract_value_usd"] = 1e9
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(d))
    with pytest.raises(ScenarioError, match="contract_value_usd needs max_mw"):
        load_scenario(path)
    contract["max_mw"] = 50.0
    del contract["contract_value_usd"]
    path.write_text(yaml.safe_dump(d))
    with pytest.raises(ScenarioError, match="price_usd_kw_month"):
        load_scenario(path)
