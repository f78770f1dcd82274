"""Validation on fresh draws and the optimality gap (issue 27): a solve with a risk term
values its plan and the risk-neutral plan on independent draws, as ``evaluate --seed`` would;
``--validate R`` estimates the gap from R replications (Mak-Morton-Wood)."""

from __future__ import annotations

import numpy as np
import pytest

from siteopt import api
from siteopt.app.validation import (
    DrawValue,
    GapEstimate,
    Validation,
    replicate_gaps,
    t_quantile,
    valued,
)
from siteopt.model.errors import InputError
from siteopt.optimizer.results import cvar_terms, portfolio_cvar

from ..kernels.helpers import random_one_site_ai
from .test_floor_over_all import SMALL_SAMPLE

SMALL = {**SMALL_SAMPLE, "simulation.risk_sample": 400}  # one site, 2,000 scenarios
FLOOR = {"objective.cvar_floor_usd": -45e6}


@pytest.fixture(scope="module")
def floor_run():
    return api.solve(random_one_site_ai(**SMALL, **FLOOR), explain=False)


def _plan_of(run):
    return run.outcome.plan_frame[["site", "ai_it_mw", "build_year", "contract"]]


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-12 * max(1.0, abs(b))


def test_fresh_draws_reproduce_evaluate_with_their_seed(floor_run):
    v = floor_run.summary["validation"]
    assert v["seed"] == floor_run.summary["seed"] + 1 and v["scenarios"] == 2000
    scenario = random_one_site_ai(**SMALL, **FLOOR)
    again = api.evaluate(scenario, _plan_of(floor_run), seed=v["seed"]).summary
    assert _same(v["plan"]["expected_npv_usd"], again["expected_npv_usd"])
    assert _same(v["plan"]["cvar_usd"], again["cvar_usd"])
    assert _same(v["plan"]["expected_npv_se_usd"], again["expected_npv_se_usd"])
    # the risk-neutral plan is the MILP's without the floor: evaluated on the same seed
    neutral = api.solve(random_one_site_ai(**SMALL), explain=False)
    assert "validation" not in neutral.summary  # no risk term, no --validate: not computed
    valued_again = api.evaluate(scenario, _plan_of(neutral), seed=v["seed"]).summary
    assert _same(v["risk_neutral"]["expected_npv_usd"], valued_again["expected_npv_usd"])
    assert _same(v["risk_neutral"]["cvar_usd"], valued_again["cvar_usd"])
    assert v["same_plan"] == (
        floor_run.summary["sites"][0]["contract"] == neutral.summary["sites"][0]["contract"]
        and floor_run.summary["ai_it_mw_total"] == neutral.summary["ai_it_mw_total"]
    )


def test_the_report_and_summary_carry_the_comparison(floor_run, tmp_path):
    paths = floor_run.write(tmp_path, command="solve")
    page = (tmp_path / "report.html").read_text()
    assert any(p.name == "report.html" for p in paths)
    assert 'id="validation"' in page and f"seed {floor_run.summary['validation']['seed']}" in page


def _value(e: float, c: float) -> DrawValue:
    return DrawValue(e, 1.0, c, 1.0)


def test_dominated_means_lower_on_both_and_not_the_same_plan():
    def v(plan, neutral, same=False):
        return Validation(8, 100, 0.95, plan, neutral, same)

    assert v(_value(1.0, -5.0), _value(2.0, -4.0)).dominated
    assert not v(_value(1.0, -3.0), _value(2.0, -4.0)).dominated  # a trade: CVaR bought
    assert not v(_value(3.0, -5.0), _value(2.0, -4.0)).dominated
    assert not v(_value(1.0, -5.0), _value(1.0, -5.0), same=True).dominated


def test_student_t_quantiles_match_the_tables():
    for df, table in [(1, 6.3138), (2, 2.9200), (4, 2.1318), (9, 1.8331), (29, 1.6991)]:
        assert t_quantile(0.95, df) == pytest.approx(table, abs=5e-5)
    assert t_quantile(0.975, 10) == pytest.approx(2.2281, abs=5e-5)
    assert t_quantile(0.95, 100_000) == pytest.approx(1.6449, abs=5e-4)


def test_cvar_terms_average_to_the_cvar_and_carry_its_standard_error():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(600, 2000))
    estimates = portfolio_cvar(x, 0.95)
    terms = np.array([cvar_terms(row, 0.95) for row in x])
    np.testing.assert_allclose(terms.mean(axis=1), estimates, rtol=0, atol=1e-12)
    se = terms.std(axis=1, ddof=1) / np.sqrt(2000)
    # the spread of 600 independent CVaR estimates against the mean standard error: the
    # ratio's own sampling error over 600 replications is ~3%; 15% allows for the
    # estimator's small-sample bias at a 100-scenario tail
    assert estimates.std(ddof=1) == pytest.approx(se.mean(), rel=0.15)


def test_valued_gives_mean_cvar_and_their_errors():
    x = np.arange(1.0, 101.0)
    v = valued(x, 0.9)
    assert v.expected_npv_usd == 50.5 and v.cvar_usd == pytest.approx(5.5)
    assert v.expected_npv_se_usd == pytest.approx(x.std(ddof=1) / 10)
    assert v.cvar_se_usd is not None and v.cvar_se_usd > 0


def _saa_gap(n: int):
    """A hand SAA problem: pick A or B, NPV ~ N(1.0, 1) and N(0.9, 1); the plan is A. On
    replication r (n draws each) the SAA optimum is the larger sample mean, found by
    enumeration, and the gap is that optimum less A's sample mean."""

    def gap_of(r: int) -> float:
        draws = np.random.default_rng(1000 + r).normal(size=(2, n))
        means = draws.mean(axis=1) + np.array([1.0, 0.9])
        return float(means.max() - means[0])

    return gap_of


def test_the_gap_estimate_is_not_negative_and_tightens_with_replications():
    bounds = []
    for r in (4, 16, 48):
        gaps, skipped = replicate_gaps(r, _saa_gap(200))
        assert skipped == 0 and min(gaps) >= 0.0
        estimate = GapEstimate(r, 200, tuple(range(r)), gaps)
        assert estimate.mean_usd >= 0.0 and estimate.upper_usd >= estimate.mean_usd
        bounds.append(estimate.upper_usd)
    assert bounds[0] > bounds[1] > bounds[2]
    # the true gap of A is 0 (A is best): the bound covers it and closes on the SAA bias
    assert bounds[2] < 0.05


def test_replications_outside_the_range_are_refused():
    with pytest.raises(InputError, match="between 2 and 50"):
        replicate_gaps(1, _saa_gap(10))
    with pytest.raises(InputError, match="between 2 and 50"):
        replicate_gaps(51, _saa_gap(10))


def test_validate_replications_give_a_gap_in_the_summary():
    scenario = random_one_site_ai(**{**SMALL, "simulation.scenarios": 600})
    run = api.solve(scenario, explain=False, validate=3)
    v = run.summary["validation"]
    gap = v["optimality_gap"]
    assert v["same_plan"]  # risk neutral: the plan is the risk-neutral plan
    seed = run.summary["seed"]  # fresh draws seed + 1, replications seed + 2, ...
    assert gap["replications"] == 3 and gap["seeds"] == [seed + 2, seed + 3, seed + 4]
    assert len(gap["gaps_usd"]) == 3 and min(gap["gaps_usd"]) >= 0.0
    assert gap["upper_usd"] >= gap["mean_usd"] >= 0.0
    assert run.summary["timings_s"]["validation"] > 0


def test_a_risk_averse_plan_has_a_gap_with_its_eta_fixed():
    scenario = random_one_site_ai(**{**SMALL, "simulation.scenarios": 600})
    weighted = scenario.model_copy(
        update={"objective": scenario.objective.model_copy(update={"risk_aversion": 0.5})}
    )
    run = api.solve(weighted, explain=False, validate=3)
    v = run.summary["validation"]
    gap = v["optimality_gap"]
    assert len(gap["gaps_usd"]) + gap["skipped"] == 3
    assert min(gap["gaps_usd"]) >= 0.0
    # the plan's VaR on the fresh draws is its CVaR's eta on every replication
    assert run.outcome.validation.plan_var_usd >= v["plan"]["cvar_usd"]


def test_validate_is_refused_before_any_work():
    scenario = random_one_site_ai(**SMALL)
    with pytest.raises(InputError, match="between 2 and 50"):
        api.solve(scenario, validate=1)
    central = scenario.model_copy(
        update={"simulation": scenario.simulation.model_copy(update={"deterministic": True})}
    )
    with pytest.raises(InputError, match="deterministic"):
        api.solve(central, validate=3)
    # a deterministic run with a floor values one path: no fresh draws to take
    floored = central.model_copy(
        update={"objective": central.objective.model_copy(update={"cvar_floor_usd": -1e12})}
    )
    assert "validation" not in api.solve(floored, explain=False).summary


def test_sweeps_and_what_ifs_leave_validation_off():
    from siteopt.app.pipeline import SolveSettings, solve

    outcome = solve(random_one_site_ai(**SMALL, **FLOOR), SolveSettings())
    assert outcome.validation is None


def test_hold_floor_raises_the_sample_floor_by_each_shortfall():
    """A hand case: a "solution" is the floor it was solved under, and its CVaR over all
    scenarios is that less 3 (the sample flatters by 3). The first misses the floor of 10
    by 3, the floor on the sample rises to 13 and the re-solve keeps 10 exactly."""
    from siteopt.app.validation import hold_floor

    held = hold_floor(10.0, 10.0, lambda s: s - 3.0, lambda target: target)
    assert held.kept and held.solution == 13.0 and held.target_usd == 13.0
    assert held.first_short_usd == 3.0 and held.cvar_usd == 10.0
    at_once = hold_floor(10.0, 20.0, lambda s: s - 3.0, lambda target: target)
    assert at_once.kept and at_once.solution == 20.0 and at_once.first_short_usd == 0.0
    # nothing keeps a raised floor: the first solution stands, missing the floor
    none = hold_floor(10.0, 10.0, lambda s: s - 3.0, lambda target: None)
    assert not none.kept and none.solution == 10.0 and none.cvar_usd == 7.0
    # the sample flatters more the higher the floor: four rounds do not catch up
    calls = []
    short = hold_floor(10.0, 10.0, lambda s: s / 2, lambda t: calls.append(t) or t)
    assert not short.kept and len(calls) == 4 and short.cvar_usd < 10.0
