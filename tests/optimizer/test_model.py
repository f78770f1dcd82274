"""Model details: data checks, names, the PuLP compatibility helpers."""

from __future__ import annotations

import warnings

import numpy as np
import pulp
import pytest

from siteopt.optimizer.data import plan_data, unique_names
from siteopt.optimizer.model import add_variable, add_variable_dict, build_model
from siteopt.optimizer.options import PlanProblem

from .conftest import table_from_rows


def test_variables_come_from_the_problem_when_pulp_offers_it():
    prob = pulp.LpProblem("t", pulp.LpMaximize)
    x = add_variable_dict(prob, "x", range(3), cat=pulp.LpBinary)
    theta = add_variable(prob, "theta", low=-1.0)
    assert [v.name for v in x.values()] == ["x_0", "x_1", "x_2"]
    assert x[0].cat == pulp.LpInteger and x[0].upBound == 1
    assert theta.lowBound == -1.0


def test_fallback_for_a_pulp_without_add_variable():
    class OldProblem:
        pass

    with warnings.catch_warnings():
        # PuLP 3.3 deprecates the constructor that older PuLP needs.
        warnings.simplefilter("ignore", DeprecationWarning)
        x = add_variable_dict(OldProblem(), "x", ["a", "b"], low=0.0, up=2.0)
        y = add_variable(OldProblem(), "y", cat=pulp.LpBinary)
    assert x["a"].name == "x_a" and x["b"].upBound == 2.0
    assert y.upBound == 1


def test_names_are_sanitised_and_unique():
    assert unique_names(["pecos-1", "pecos_1", "a b"]) == {
        "pecos-1": "pecos_1",
        "pecos_1": "pecos_1_2",
        "a b": "a_b",
    }
    table = table_from_rows(
        [dict(site="pecos-1", option="hash"), dict(site="pecos_1", option="hash")]
    )
    names = set(build_model(table, PlanProblem({})).prob._constraints)
    assert {"one_option_pecos_1", "one_option_pecos_1_2"} <= names


def test_bad_tables_are_refused():
    no_hash = table_from_rows([dict(site="a", option="ai", ai_it_mw=1.0)])
    with pytest.raises(ValueError, match="site a has 0 keep-hashing options"):
        plan_data(no_hash, PlanProblem({}))
    nan = table_from_rows([dict(site="a", option="hash")])
    nan.table.loc[0, "expected_npv_usd"] = np.nan
    with pytest.raises(ValueError, match="expected_npv_usd"):
        plan_data(nan, PlanProblem({}))


def test_model_money_is_in_millions():
    table = table_from_rows([dict(site="a", option="hash", npv=5e8)])
    model = build_model(table, PlanProblem({}))
    assert model.prob.objective.get(model.x[0]) == pytest.approx(500.0)


def test_cvar_needs_a_risk_sample():
    table = table_from_rows([dict(site="a", option="hash")], risk_npv_usd=np.zeros((1, 0)))
    with pytest.raises(ValueError, match="K = 0"):
        build_model(table, PlanProblem({}, risk_aversion=1.0))
    with pytest.raises(ValueError, match="cvar_method"):
        build_model(
            table_from_rows([dict(site="a", option="hash")]),
            PlanProblem({}, risk_aversion=1.0),
            cvar_method="magic",
        )
