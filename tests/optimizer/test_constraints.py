"""(b) Each constraint group binds in a case built for it, with the expected plan."""

from __future__ import annotations

import numpy as np
import pytest

from siteopt.optimizer.model import build_model
from siteopt.optimizer.options import ContractTerms, PlanProblem
from siteopt.optimizer.solve import SolveStatus, solve_plan

from .conftest import table_from_rows

M = 1.0e6
HASH = dict(option="hash", npv=100 * M)


def _plan(table, problem, **kwargs) -> dict[str, str]:
    result = solve_plan(table, problem, gap_rel=1e-9, **kwargs)
    assert result.status == SolveStatus.OPTIMAL, result.diagnosis
    options = table.table["option"].to_numpy()
    return {site: options[row] for site, row in result.chosen.items()}


def _ai(site, option, gain_musd, **fields):
    return dict(site=site, option=option, npv=(100 + gain_musd) * M, **fields)


def test_budget_carry_over_permits_what_per_year_forbids():
    # The conversion spends 12 in 2028; 2027's unspent 10 carries into 2028 (budget 5).
    table = table_from_rows(
        [
            dict(site="a", **HASH),
            _ai("a", "ai", 5, ai_it_mw=10, capex={2028: 12 * M}),
        ]
    )
    budget = {2027: 10 * M, 2028: 5 * M}
    assert _plan(table, PlanProblem(budget, carry_over=True)) == {"a": "ai"}
    assert _plan(table, PlanProblem(budget, carry_over=False)) == {"a": "hash"}


def test_budget_year_without_entry_is_constrained():
    # 2029 has no budget entry: per year it adds 0 and forbids any 2029 spend.
    table = table_from_rows(
        [
            dict(site="a", **HASH),
            _ai("a", "ai", 5, ai_it_mw=10, capex={2029: 1 * M}),
        ],
        years=(2027, 2028, 2029),
    )
    assert _plan(table, PlanProblem({2027: 50 * M}, carry_over=False)) == {"a": "hash"}
    assert _plan(table, PlanProblem({2027: 50 * M}, carry_over=True)) == {"a": "ai"}
    model = build_model(table, PlanProblem({2027: 50 * M}, carry_over=False))
    assert model.prob.get_constraint_by_name("budget_2029") is not None


def test_budget_picks_best_pair_within_cumulative_limit():
    table = table_from_rows(
        [
            dict(site="a", **HASH),
            _ai("a", "ai", 6, ai_it_mw=10, capex={2027: 6 * M}),
            dict(site="b", **HASH),
            _ai("b", "ai", 5, ai_it_mw=10, capex={2027: 5 * M}),
            dict(site="c", **HASH),
            _ai("c", "ai", 4, ai_it_mw=10, capex={2027: 4.5 * M}),
        ]
    )
    # 10 buys b + c (gain 9) rather than a alone (6) or a + c (over budget).
    assert _plan(table, PlanProblem({2027: 10 * M})) == {"a": "hash", "b": "ai", "c": "ai"}


def _two_sites(gain_a, mw_a, gain_b, mw_b, **fields):
    return table_from_rows(
        [
            dict(site="a", **HASH),
            _ai("a", "ai", gain_a, ai_it_mw=mw_a, contract="hx", **fields),
            dict(site="b", **HASH),
            _ai("b", "ai", gain_b, ai_it_mw=mw_b, contract="hx", **fields),
        ]
    )


def test_contract_min_pulls_in_a_second_site():
    table = _two_sites(5, 10, -1, 15)
    free = PlanProblem({}, contracts=(ContractTerms("hx", 0, 100),))
    assert _plan(table, free) == {"a": "ai", "b": "hash"}
    bound = PlanProblem({}, contracts=(ContractTerms("hx", 20, 100),))
    assert _plan(table, bound) == {"a": "ai", "b": "ai"}


def test_contract_min_not_worth_signing():
    table = _two_sites(5, 10, -9, 15)
    bound = PlanProblem({}, contracts=(ContractTerms("hx", 20, 100),))
    assert _plan(table, bound) == {"a": "hash", "b": "hash"}


def test_contract_max_caps_the_mw():
    table = _two_sites(5, 10, 6, 15)
    assert _plan(table, PlanProblem({}, contracts=(ContractTerms("hx", 0, 30),))) == {
        "a": "ai",
        "b": "ai",
    }
    assert _plan(table, PlanProblem({}, contracts=(ContractTerms("hx", 0, 20),))) == {
        "a": "hash",
        "b": "ai",
    }


def test_online_by_forces_the_early_build():
    table = table_from_rows(
        [
            dict(site="a", **HASH),
            _ai(
                "a", "early", 1, ai_it_mw=10, contract="hx", build_year=2027, online_month="2028-01"
            ),
            _ai(
                "a", "late", 5, ai_it_mw=10, contract="hx", build_year=2028, online_month="2029-01"
            ),
        ]
    )
    late = PlanProblem({}, contracts=(ContractTerms("hx", 10, 20, must_sign=True),))
    assert _plan(table, late) == {"a": "late"}
    early = PlanProblem({}, contracts=(ContractTerms("hx", 10, 20, "2028-06", True),))
    assert _plan(table, early) == {"a": "early"}
    # Without must_sign the date only binds a signed contract: not signing is better.
    optional = PlanProblem({}, contracts=(ContractTerms("hx", 10, 20, "2027-06"),))
    assert _plan(table, optional) == {"a": "hash"}


def test_must_sign_takes_an_unprofitable_conversion():
    table = table_from_rows(
        [
            dict(site="a", **HASH),
            _ai("a", "ai", -2, ai_it_mw=10, contract="hx"),
        ]
    )
    assert _plan(table, PlanProblem({}, contracts=(ContractTerms("hx", 10, 20),))) == {"a": "hash"}
    signed = PlanProblem({}, contracts=(ContractTerms("hx", 10, 20, must_sign=True),))
    assert _plan(table, signed) == {"a": "ai"}


def test_hashrate_floor_keeps_one_site_hashing():
    eh_ai = {2027: 0.2, 2028: 0.2}
    table = table_from_rows(
        [
            dict(site="a", **HASH),
            _ai("a", "ai", 5, ai_it_mw=10, eh=eh_ai),
            dict(site="b", **HASH),
            _ai("b", "ai", 3, ai_it_mw=10, eh=eh_ai),
        ]
    )
    assert _plan(table, PlanProblem({})) == {"a": "ai", "b": "ai"}
    assert _plan(table, PlanProblem({}, min_hashrate_eh=1.1)) == {"a": "ai", "b": "hash"}
    assert _plan(table, PlanProblem({}, min_hashrate_eh=2.0)) == {"a": "hash", "b": "hash"}


def _risky_table():
    """Site a: a safe AI option and a risky one with the higher mean (K = 4)."""
    risk = (
        np.array(
            [
                [100, 100, 100, 100],
                [103, 103, 103, 103],  # safe: mean 103, CVaR 103
                [140, 140, 140, 70],  # risky: mean 122.5, worst 70
            ]
        )
        * M
    )
    table = table_from_rows(
        [
            dict(site="a", **HASH),
            dict(site="a", option="safe", ai_it_mw=10),
            dict(site="a", option="risky", ai_it_mw=10),
        ],
        risk_npv_usd=risk,
        cvar_alpha=0.75,
    )
    return table


def test_cvar_floor_chooses_the_safe_option():
    table = _risky_table()
    assert _plan(table, PlanProblem({}, cvar_alpha=0.75)) == {"a": "risky"}
    for method in ("cuts", "full", "lazy"):
        floor = PlanProblem({}, cvar_alpha=0.75, cvar_floor_usd=80 * M)
        assert _plan(table, floor, cvar_method=method) == {"a": "safe"}


@pytest.mark.parametrize("method", ["cuts", "full", "lazy"])
def test_cvar_weight_trades_mean_for_tail(method):
    table = _risky_table()
    # risky: 122.5 + w 70 vs safe: 103 + w 103 -> safe once w > 19.5 / 33 = 0.59
    low = PlanProblem({}, cvar_alpha=0.75, risk_aversion=0.5)
    high = PlanProblem({}, cvar_alpha=0.75, risk_aversion=0.7)
    assert _plan(table, low, cvar_method=method) == {"a": "risky"}
    assert _plan(table, high, cvar_method=method) == {"a": "safe"}


def test_constraint_names_read_like_the_math():
    table = table_from_rows(
        [
            dict(site="pecos-1", **HASH),
            _ai(
                "pecos-1",
                "ai",
                5,
                ai_it_mw=10,
                contract="hyperscaler-a",
                capex={2028: M},
                online_month="2028-01",
            ),
        ],
        risk_npv_usd=np.full((2, 4), 100 * M),
    )
    problem = PlanProblem(
        {2028: 10 * M},
        contracts=(ContractTerms("hyperscaler-a", 5, 20, "2028-06", must_sign=True),),
        min_hashrate_eh=0.5,
        cvar_floor_usd=0.0,
    )
    for method, rows in (("full", ["cvar_tail_0", "cvar_tail_3"]), ("cuts", ["cvar_cut_0"])):
        names = set(build_model(table, problem, cvar_method=method).prob._constraints)
        assert {
            "one_option_pecos_1",
            "budget_2028",
            "contract_min_hyperscaler_a",
            "contract_max_hyperscaler_a",
            "contract_online_by_hyperscaler_a",
            "must_sign_hyperscaler_a",
            "hashrate_floor_2027",
            "hashrate_floor_2028",
            "cvar_floor",
            *rows,
        } <= names
        assert all(n.replace("_", "").isalnum() for n in names)
