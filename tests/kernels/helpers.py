"""Scenario builders for the valuation-kernel tests (plain functions, no fixtures).

``one_site(**overrides)`` returns a validated one-site :class:`Scenario` whose every
random source is switched off (zero volatilities, no delay, no defaults, a flat
one-bin duration curve), so its NPV can be computed on paper. Overrides are dotted
paths into the scenario dict: ``one_site(**{"sites.0.mining.mw": 50})``; a value of
``DELETE`` removes the key.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from siteopt.app.valuation import value_options
from siteopt.model.schema import Scenario

REPO = Path(__file__).resolve().parents[2]
SCENARIO_FILES = {p.stem: p for p in sorted((REPO / "scenarios").glob("*.yaml"))}
DELETE = object()

AI_SITE = {
    "max_it_mw": 60.0,
    "pue": 1.25,
    "retrofit_mw": 0.0,
    "retrofit_capex_usd_mw": 2_000_000.0,
    "build_capex_usd_mw": 9_000_000.0,
    "capex_overrun_volatility": 0.0,
    "lead_time_months": 9,
    "delay_mean_months": 0.0,
    "opex_usd_mw_month": 18_000.0,
}

CONTRACT = {
    "name": "lease",
    "price_usd_kw_month": 130.0,
    "escalator": 0.03,
    "term_years": 20.0,
    "min_mw": 0.0,
    "max_mw": 1_000.0,
    "tenant_funded_share": 0.0,
    "power_pass_through": True,
    "annual_default_prob": 0.0,
    "relet_months": 12,
    "market_rent_volatility": 0.0,
    # deterministic tenancies after the first: the tenant renews, successors never exit,
    # re-letting is free; tests that exercise these set them
    "renewal_prob": 1.0,
    "successor_default_prob": 0.0,
    "relet_capex_usd_mw": 0.0,
}


def zero_volatility_dict() -> dict[str, Any]:
    """A one-site, deterministic scenario as a plain dict (mining only, no contract)."""
    return {
        "name": "closed-form",
        "start": "2027-01",
        "horizon_years": 4,
        "discount_rate": 0.12,
        "simulation": {"scenarios": 8, "seed": 5, "risk_sample": 8},
        "market": {
            "btc_price_usd": 90_000.0,
            "btc_drift": 0.05,
            "btc_volatility": 0.0,
            "hashrate_eh": 1_200.0,
            "hashrate_growth": 0.10,
            "hashrate_volatility": 0.0,
            "hashrate_price_correlation": 0.5,
            "hashrate_elasticity": 0.0,
            "hashrate_lag_months": 6,
            # revision 2's hashrate rule (the start hashprice is break-even): the hand cases
            # are computed against it; tests of the break-even market set these keys
            "breakeven_efficiency_j_th": None,
            "fleet_efficiency_gain": 0.0,
            "hashrate_to_ai_per_year": 0.0,
            # a still AI rent index (1 throughout) and independent draws: the hand cases'
            # market rents are the contract's prices; tests of the AI market set these
            "ai": {"rent_drift": 0.0, "rent_volatility": 0.0},
            "factor": {"btc": 0.0, "ai_rent": 0.0, "tenant_exit": 0.0, "capex_overrun": 0.0},
            "subsidy_btc": 3.125,
            "halving_months": ["2028-04"],
            "fee_share": 0.01,
            "fee_share_volatility": 0.0,
            "pool_fee": 0.02,
            "cost_inflation": 0.0,  # revision 3 adds it; tests that exercise it set it
        },
        "power_markets": {
            "grid": {
                "price_usd_mwh": 30.0,
                "price_volatility": 0.0,
                "spike_hours_share": 0.0,
                "spike_price_usd_mwh": 0.0,
                "duration_curve": [[1.0, 1.0]],
                "transmission_4cp_usd_kw_year": 0.0,
                "fourcp_avoidance": 0.0,
            }
        },
        "sites": [
            {
                "name": "site",
                "market": "grid",
                "interconnect_mw": 120.0,
                "curtailable": False,
                "power": {"ppa_mw": 0.0},
                "mining": {
                    "mw": 100.0,
                    "efficiency_j_th": 15.0,
                    "pue": 1.05,
                    "uptime": 0.95,
                    "opex_usd_mw_month": 8_000.0,
                    "asic_cost_usd_th": 15.0,
                    "asic_refresh_years": 2.0,
                    "efficiency_gain_per_year": 0.08,
                    # revision 1's mechanical refresh, which the paper model computes;
                    # the refresh decision has tests of its own
                    "refresh": "always",
                },
            }
        ],
        "contracts": [],
        "financing": {
            "debt": {
                "loan_to_cost": 0.0,
                "rate": 0.08,
                "term_years": 10.0,
                "non_recourse": False,
                # a bullet repaid by the equity; the refinancing's tests set it
                "refinance": False,
            },
            "exit_multiple_ai": 12.0,
            "exit_multiple_mining": 3.0,
        },
        "build": {"decision_years": [2027], "ai_step_mw": 20.0, "refit_years": 0.0},
        # revision 3's taxes off: the hand cases are pre-tax unless a test sets them
        "tax": {"rate": 0.0},
    }


def with_ai_dict() -> dict[str, Any]:
    """The zero-volatility dict plus an AI section and one deterministic contract."""
    d = zero_volatility_dict()
    d["sites"][0]["ai"] = copy.deepcopy(AI_SITE)
    d["contracts"] = [copy.deepcopy(CONTRACT)]
    return d


def set_path(d: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``d[a][b][0][c] = value`` for ``dotted = "a.b.0.c"`` (creating dicts on the way)."""
    keys = dotted.split(".")
    node: Any = d
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value


def build(base: dict[str, Any], overrides: dict[str, Any]) -> Scenario:
    d = copy.deepcopy(base)
    for dotted, value in overrides.items():
        set_path(d, dotted, value)
    return Scenario.model_validate(d)


def one_site(**overrides: Any) -> Scenario:
    """Deterministic mining-only one-site scenario with dotted-path overrides."""
    return build(zero_volatility_dict(), overrides)


def one_site_ai(**overrides: Any) -> Scenario:
    """Deterministic one-site scenario with AI and one contract, dotted-path overrides."""
    return build(with_ai_dict(), overrides)


def random_one_site_ai(**overrides: Any) -> Scenario:
    """The AI one-site scenario with every random source switched back on (defaults)."""
    d = with_ai_dict()
    for dotted in (
        "market.btc_volatility",
        "market.hashrate_volatility",
        "market.hashrate_elasticity",
        "market.fee_share_volatility",
        "power_markets.grid.price_volatility",
        "power_markets.grid.duration_curve",
        "power_markets.grid.spike_hours_share",
        "power_markets.grid.spike_price_usd_mwh",
        "sites.0.ai.capex_overrun_volatility",
        "sites.0.ai.delay_mean_months",
        "sites.0.mining.refresh",
    ):
        set_path(d, dotted, DELETE)
    d["power_markets"]["grid"].update(
        {"transmission_4cp_usd_kw_year": 55.0, "fourcp_avoidance": 0.9}
    )
    d["sites"][0].update(
        {"curtailable": True, "power": {"ppa_mw": 60.0, "ppa_price_usd_mwh": 28.0}}
    )
    d["contracts"][0].update(
        {"annual_default_prob": 0.05, "market_rent_volatility": 0.25, "term_years": 2.0}
    )
    d["contracts"].append(
        {
            **CONTRACT,
            "name": "neo",
            "price_usd_kw_month": 150.0,
            "term_years": 3.0,
            "power_pass_through": False,
            "annual_default_prob": 0.2,
            "relet_months": 6,
            "market_rent_volatility": 0.3,
            "tenant_funded_share": 0.25,
            "ramp": [{"months": 4, "share": 0.5}],
        }
    )
    for contract in d["contracts"]:  # the renewal process at its defaults
        for key in ("renewal_prob", "successor_default_prob", "relet_capex_usd_mw"):
            del contract[key]
    d["financing"]["debt"].update({"loan_to_cost": 0.7, "term_years": 3.0})
    d["build"]["decision_years"] = [2027, 2028, 2029]
    d["simulation"] = {"scenarios": 200, "seed": 17, "risk_sample": 64}
    return build(d, overrides)


def expected_npv(scenario: Scenario, option: str = "hash", **kwargs: Any) -> float:
    """``expected_npv_usd`` of one option label from value_options on numpy."""
    table = value_options(scenario, backend="numpy", **kwargs).options.table
    row = table[table["option"] == option]
    assert len(row) == 1, f"option {option!r} not in {list(table['option'])}"
    return float(row["expected_npv_usd"].iloc[0])


def rel_err(got: np.ndarray, want: np.ndarray, scale: float | np.ndarray) -> float:
    """Largest |got - want| as a share of ``scale`` (0 when both are 0)."""
    diff = np.max(np.abs(np.asarray(got) - np.asarray(want)))
    scale = float(np.max(scale))
    return 0.0 if diff == 0 else diff / scale
