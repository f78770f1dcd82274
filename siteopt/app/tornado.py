"""How much each contract term, and each exit multiple, moves the plan's expected NPV (the
report's tornado).

The plan is held fixed; one term of one signed contract is set to a low and a high
value and only the sites on that contract are valued again, on the same draws (a
contract's terms enter no random stream), so each bar is a difference of common
random numbers, not of noise. The exit multiples (``financing.exit_multiple_ai`` and
``exit_multiple_mining``) capitalise the last year of every site, so for them every site
of the plan is valued again (the row's ``contract`` is ``all sites``). The differences are
averaged over the first MAX_SCENARIOS scenarios at most (the base NPV over all of them):
on texas.yaml the largest bar moves by ~$35M of ~$740M between 5,000 and 20,000
scenarios, and 20,000 would double the time of ``solve``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from siteopt.app.params import kernel_inputs
from siteopt.kernels.backend import Backend
from siteopt.kernels.chunks import ChunkSize, chunk_size_for, stream_chunks
from siteopt.kernels.params import Portfolio
from siteopt.kernels.sites import SiteOption, chunk_market, site_chunk
from siteopt.model.schema import Contract, Scenario

Progress = Callable[[str, int, int], None]
MAX_SCENARIOS = 10_000


@dataclass(frozen=True)
class Term:
    """A contract field and how far the tornado moves it."""

    field: str
    low: Callable[[float], float]
    high: Callable[[float], float]
    label: Callable[[float], str]


TERMS = (
    Term("price_usd_kw_month", lambda v: 0.9 * v, lambda v: 1.1 * v, lambda v: f"${v:,.1f}/kW-mo"),
    Term(
        "term_years",
        lambda v: max(1.0, v - 5.0),
        lambda v: min(50.0, v + 5.0),
        lambda v: f"{v:g} yr",
    ),
    Term(
        "escalator",
        lambda v: max(-0.5, v - 0.01),
        lambda v: min(1.0, v + 0.01),
        lambda v: f"{v:.1%}/yr",
    ),
    Term(
        "tenant_funded_share",
        lambda v: max(0.0, v - 0.1),
        lambda v: min(1.0, v + 0.1),
        lambda v: f"{v:.0%} funded",
    ),
    Term(
        "annual_default_prob",
        lambda v: v / 2.0,
        lambda v: min(1.0, max(2.0 * v, 0.01)),
        lambda v: f"{v:.1%}/yr exit",
    ),
)
"""Low and high values: rent +-10 %, term +-5 years, escalator +-1 point, tenant-funded
share +-10 points, tenant exit probability halved and doubled."""

EXIT_TERMS = (
    Term("exit_multiple_ai", lambda v: 0.75 * v, lambda v: 1.25 * v, lambda v: f"{v:g}x AI NOI"),
    Term(
        "exit_multiple_mining",
        lambda v: 0.75 * v,
        lambda v: 1.25 * v,
        lambda v: f"{v:g}x mining margin",
    ),
)
"""The terminal value's multiples, each -25 % and +25 %."""
ALL_SITES = "all sites"


def contract_tornado(
    scenario: Scenario,
    plan: list[SiteOption],
    base_npv_usd: float,
    backend: Backend,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """One row per (signed contract, term): the plan's E[NPV] at the low and high value.

    Columns: contract, term, low_value, high_value, low_label, high_label,
    low_npv_usd, high_npv_usd (sorted by swing, largest first). Empty when the plan
    signs no contract.
    """
    signed = sorted({o.contract_index for o in plan if o.contract_index is not None})
    variants = []  # (who, term, side, options valued again, scenario with the term moved)
    for c in signed:
        contract = scenario.contracts[c]
        on = [o for o in plan if o.contract_index == c]
        for term in TERMS:
            base = float(getattr(contract, term.field))
            for side, move in (("low", term.low), ("high", term.high)):
                moved = _with_term(scenario, c, term.field, move(base))
                variants.append((contract.name, term, side, on, moved))
    if not variants:
        return pd.DataFrame(columns=COLUMNS)
    for term in EXIT_TERMS:
        base = float(getattr(scenario.financing, term.field))
        for side, move in (("low", term.low), ("high", term.high)):
            moved = _with_financing(scenario, term.field, move(base))
            variants.append((ALL_SITES, term, side, list(plan), moved))
    delta = _mean_deltas(scenario, plan, variants, backend, progress)
    rows = {}
    for (who, term, side, _, moved), d in zip(variants, delta, strict=True):
        value = _value_of(moved, who, term.field)
        row = rows.setdefault((who, term.field), {"contract": who, "term": term.field})
        row[f"{side}_value"] = value
        row[f"{side}_label"] = term.label(value)
        row[f"{side}_npv_usd"] = base_npv_usd + d
    frame = pd.DataFrame(list(rows.values()), columns=COLUMNS)
    swing = (frame["high_npv_usd"] - frame["low_npv_usd"]).abs()
    return frame.iloc[np.argsort(-swing.to_numpy(), kind="stable")].reset_index(drop=True)


COLUMNS = [
    "contract",
    "term",
    "low_value",
    "high_value",
    "low_label",
    "high_label",
    "low_npv_usd",
    "high_npv_usd",
]


def _value_of(scenario: Scenario, who: str, field: str) -> float:
    """The moved term's value in a variant (a contract's, or the financing block's)."""
    if who == ALL_SITES:
        return float(getattr(scenario.financing, field))
    return float(getattr(next(c for c in scenario.contracts if c.name == who), field))


def _with_financing(scenario: Scenario, field: str, value: float) -> Scenario:
    financing = scenario.financing.model_copy(update={field: value})
    return scenario.model_copy(update={"financing": financing})


def _with_term(scenario: Scenario, c: int, field: str, value: float) -> Scenario:
    contracts = list(scenario.contracts)
    moved: Contract = contracts[c].model_copy(update={field: value})
    contracts[c] = moved
    return scenario.model_copy(update={"contracts": tuple(contracts)})


def _mean_deltas(scenario, plan, variants, backend: Backend, progress) -> list[float]:
    """Mean over every scenario of (plan NPV with the variant - plan NPV as is) [USD]."""
    scenario = kernel_inputs(scenario)
    variants = [(on, kernel_inputs(moved)) for _, _, _, on, moved in variants]
    xp, n = backend.xp, min(scenario.simulation.scenarios, MAX_SCENARIOS)
    valued = sorted({o for on, _ in variants for o in on}, key=plan.index)
    sites = sorted({o.site_index for o in valued})
    size = ChunkSize(chunk_size_for(scenario, backend, None))

    def chunk_sums(lo: int, hi: int) -> np.ndarray:
        """Per variant, the sum over scenarios [lo, hi) of the plan's NPV change [USD]."""
        ctx = chunk_market(scenario, xp.arange(lo, hi, dtype=xp.int64), xp=xp, sites=sites)
        base = {o: _npv(scenario, o, ctx, xp) for o in valued}
        return np.array(
            [
                float(backend.to_numpy(sum(_npv(moved, o, ctx, xp) - base[o] for o in on)).sum())
                for on, moved in variants
            ]
        )

    totals = np.zeros(len(variants))
    for _, hi, sums in stream_chunks(n, size, backend, chunk_sums):
        totals += sums
        if progress is not None:
            progress("tornado", hi, n)
    return list(totals / n)


def _npv(scenario: Portfolio, option: SiteOption, ctx, xp):
    return site_chunk(scenario, option.site_index, [option], ctx, xp=xp).npv[:, 0]
