"""The report's tornado: the plan held fixed, one contract term or exit multiple moved, same
draws."""

from __future__ import annotations

import numpy as np
import pytest

from siteopt.app import pipeline
from siteopt.app.tornado import ALL_SITES, EXIT_TERMS, MARKET_TERMS, TERMS, contract_tornado
from siteopt.app.valuation import plan_npv_samples
from siteopt.kernels.backend import select_backend
from siteopt.model.load import apply_overrides, load_scenario, with_simulation

from .support import REPO

N = 300


@pytest.fixture(scope="module")
def solved():
    texas = load_scenario(REPO / "scenarios" / "texas.yaml")
    outcome = pipeline.solve(
        with_simulation(texas, N, None), pipeline.SolveSettings(backend="numpy")
    )
    base = float(outcome.samples["plan"].mean())
    frame = contract_tornado(outcome.scenario, outcome.chosen, base, select_backend("numpy"))
    return outcome, base, frame


def test_each_bar_is_the_plan_revalued_with_the_term_moved(solved):
    outcome, _, frame = solved
    signed = {outcome.scenario.contracts[o.contract_index].name for o in outcome.chosen
              if o.contract_index is not None}  # fmt: skip
    assert set(frame["contract"]) == signed | {ALL_SITES}
    assert len(frame) == len(signed) * len(TERMS) + len(EXIT_TERMS) + len(MARKET_TERMS)
    levers = {t.field: t for t in MARKET_TERMS}
    portfolio_wide = frame[frame["contract"] == ALL_SITES]
    checked = frame[frame["contract"] != ALL_SITES].head(3)  # the largest contract swings
    for row in [*checked.to_dict("records"), *portfolio_wide.to_dict("records")]:  # in full
        for side in ("low", "high"):
            value = row[f"{side}_value"]
            if row["term"] in levers:  # market, cost and finance: drawn again, same seed
                moved = levers[row["term"]].put(outcome.scenario, value)
            else:
                where = (
                    f"financing.{row['term']}"
                    if row["contract"] == ALL_SITES
                    else f"contracts.{row['contract']}.{row['term']}"
                )
                moved = apply_overrides(outcome.scenario, [f"{where}={value!r}"])
            want = plan_npv_samples(moved, {"p": outcome.chosen}, backend="numpy")["p"].mean()
            assert row[f"{side}_npv_usd"] == pytest.approx(want, rel=1e-9), (row["term"], side)


def test_directions_a_deal_team_expects(solved):
    _, base, frame = solved
    rows = {(r["contract"], r["term"]): r for r in frame.to_dict("records")}
    for (_, term), r in rows.items():
        if term == "price_usd_kw_month":
            assert r["low_npv_usd"] < base < r["high_npv_usd"]
        if term == "annual_default_prob":
            assert r["high_npv_usd"] < base
        if term == "exit_multiple_ai":  # every AI hall's terminal value scales with it
            assert r["low_npv_usd"] < base < r["high_npv_usd"]
        if term in ("btc_price_usd", "btc_drift"):  # the hashing MW earn more
            assert r["low_npv_usd"] < base < r["high_npv_usd"]
        if term in ("ai_capex", "discount_rate", "hashrate_growth"):
            assert r["high_npv_usd"] < base < r["low_npv_usd"]
        # power prices go either way: texas's fixed-price PPAs gain when the market rises
    swing = (frame["high_npv_usd"] - frame["low_npv_usd"]).abs().to_numpy()
    assert np.all(np.diff(swing) <= 0)  # largest first


def test_a_plan_without_a_contract_has_no_bars(solved):
    outcome, base, _ = solved
    flat = [o for opts in outcome.valuation.site_options for o in opts]
    hashing = [o for o in flat if o.contract_index is None]
    frame = contract_tornado(outcome.scenario, hashing, base, select_backend("numpy"))
    assert frame.empty and "low_npv_usd" in frame.columns
