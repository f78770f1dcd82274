"""How much each contract term, each exit multiple, and each market, cost and finance
assumption moves the plan's expected NPV (the report's tornado).

The plan is held fixed; one term of one signed contract is set to a low and a high
value and only the sites on that contract are valued again, on the same draws (a
contract's terms enter no random stream), so each bar is a difference of common
random numbers, not of noise. The exit multiples (``financing.exit_multiple_ai`` and
``exit_multiple_mining``) capitalise the last year of every site, and the market, cost
and finance assumptions (MARKET_TERMS) reach every site too, so for them every site of
the plan is valued again (the row's ``contract`` is ``all sites``). The plan stays the
one chosen at the base assumptions: a bar is what the plan is worth if the assumption is
wrong, not what a re-optimised plan would be worth. The differences are
averaged over the first MAX_SCENARIOS scenarios at most (the base NPV over all of them):
on texas.yaml the largest bar moves by ~$35M of ~$740M between 5,000 and 20,000
scenarios, and 20,000 would double the time of ``solve``. A market, power-price or
discount-rate variant draws its market paths and site streams again, so it is averaged over
the first MARKET_SCENARIOS: on texas.yaml those bars then lie within $12M of their values at
10,000 scenarios (swings of $0.6-1.9B), and the whole tornado takes ~9 s instead of ~31 s
(the other variants also reuse the base's site streams).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from siteopt.app.params import kernel_inputs
from siteopt.kernels.backend import Backend
from siteopt.kernels.chunks import ChunkSize, chunk_size_for, stream_chunks
from siteopt.kernels.forward import btc_log_drift
from siteopt.kernels.params import Portfolio
from siteopt.kernels.sites import SiteOption, chunk_market, site_chunk, site_streams_of
from siteopt.model.schema import Contract, Scenario

Progress = Callable[[str, int, int], None]
MAX_SCENARIOS = 10_000
MARKET_SCENARIOS = 2_500  # the market variants draw paths again: fewer scenarios (see below)


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


@dataclass(frozen=True)
class MarketTerm:
    """A market, cost or finance assumption the tornado moves for every site: ``get`` reads
    it (a factor of 1 for a scaling of several keys), ``put`` writes it; ``redraw``: the
    market paths or the calendar change, so the variant draws them again (same seed, so the
    same random numbers)."""

    field: str
    get: Callable[[Scenario], float]
    put: Callable[[Scenario, float], Scenario]
    low: Callable[[float], float]
    high: Callable[[float], float]
    label: Callable[[float], str]
    redraw: bool


def _market(field: str) -> tuple[Callable, Callable]:
    def get(s: Scenario) -> float:
        if field == "btc_drift":  # omitted: s^2/2, the flat median
            return btc_log_drift(s.market.btc_drift, s.market.btc_volatility)
        return float(getattr(s.market, field))

    def put(s: Scenario, value: float) -> Scenario:
        return s.model_copy(update={"market": s.market.model_copy(update={field: value})})

    return get, put


def _power_scaled(s: Scenario, factor: float) -> Scenario:
    def forward(m):  # a forward moves with the price it replaces
        if m.forward_usd_mwh is None:
            return None
        return {k: v * factor for k, v in m.forward_usd_mwh.items()}

    markets = {
        name: m.model_copy(
            update={"price_usd_mwh": m.price_usd_mwh * factor, "forward_usd_mwh": forward(m)}
        )
        for name, m in s.power_markets.items()
    }

    def own(g):  # a generator's cost per MWh moves as a market's price does
        return g.model_copy(
            update={
                "gas_price_usd_mmbtu": g.gas_price_usd_mmbtu * factor,
                "variable_om_usd_mwh": g.variable_om_usd_mwh * factor,
            }
        )

    sites = tuple(
        site.model_copy(update={"generator": own(site.generator)}) if site.generator else site
        for site in s.sites
    )
    return s.model_copy(update={"power_markets": markets, "sites": sites})


def _ai_scaled(*fields: str) -> Callable[[Scenario, float], Scenario]:
    def put(s: Scenario, factor: float) -> Scenario:
        sites = tuple(
            site
            if site.ai is None
            else site.model_copy(
                update={
                    "ai": site.ai.model_copy(
                        update={f: getattr(site.ai, f) * factor for f in fields}
                    )
                }
            )
            for site in s.sites
        )
        return s.model_copy(update={"sites": sites})

    return put


def _one(_: Scenario) -> float:
    return 1.0


MARKET_TERMS = (
    MarketTerm(
        "btc_price_usd", *_market("btc_price_usd"), lambda v: 0.5 * v, lambda v: 1.5 * v,
        lambda v: f"BTC ${v:,.0f}", True,
    ),
    MarketTerm(
        "btc_drift", *_market("btc_drift"), lambda v: v - 0.15, lambda v: v + 0.15,
        lambda v: f"BTC drift {v:+.0%}/yr", True,
    ),
    MarketTerm(
        "hashrate_growth", *_market("hashrate_growth"), lambda v: max(-1.0, v - 0.1),
        lambda v: min(3.0, v + 0.1), lambda v: f"hashrate {v:+.0%}/yr", True,
    ),
    MarketTerm(
        "power_price", _one, _power_scaled, lambda v: 0.75 * v, lambda v: 1.25 * v,
        lambda v: f"power x{v:g}", True,
    ),
    MarketTerm(
        "ai_capex", _one, _ai_scaled("build_capex_usd_mw", "retrofit_capex_usd_mw"),
        lambda v: 0.85 * v, lambda v: 1.15 * v, lambda v: f"AI capex x{v:g}", False,
    ),
    MarketTerm(
        "capex_overrun_volatility", _one, _ai_scaled("capex_overrun_volatility"),
        lambda v: 0.5 * v, lambda v: 2.0 * v, lambda v: f"overrun sigma x{v:g}", False,
    ),
    MarketTerm(
        "discount_rate", lambda s: float(s.discount_rate),
        lambda s, v: s.model_copy(update={"discount_rate": v}), lambda v: max(0.0, v - 0.02),
        lambda v: v + 0.02, lambda v: f"discount {v:.0%}", True,
    ),
)  # fmt: skip
"""Market, cost and finance assumptions, each moved for every site of the plan: BTC price
halved and +50%, BTC drift and hashrate growth -/+ 15 and 10 points, every power market's
price x0.75 and x1.25, AI capex x0.85 and x1.15, the overrun's sigma halved and doubled, the
discount rate -/+ 2 points."""


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
    signed = sorted({t.contract_index for o in plan for t in o.tranches})
    variants = []  # (who, term, label, side, value, options valued again, moved, redraw)
    for c in signed:
        contract = scenario.contracts[c]
        on = [o for o in plan if any(t.contract_index == c for t in o.tranches)]
        for term in TERMS:
            base = float(getattr(contract, term.field))
            for side, move in (("low", term.low), ("high", term.high)):
                value = move(base)
                moved = _with_term(scenario, c, term.field, value)
                variants.append((contract.name, term.field, term.label, side, value, on, moved,
                                 False))  # fmt: skip
    if not variants:
        return pd.DataFrame(columns=COLUMNS)
    for term in EXIT_TERMS:
        base = float(getattr(scenario.financing, term.field))
        for side, move in (("low", term.low), ("high", term.high)):
            value = move(base)
            moved = _with_financing(scenario, term.field, value)
            variants.append((ALL_SITES, term.field, term.label, side, value, list(plan), moved,
                             False))  # fmt: skip
    for lever in MARKET_TERMS:
        base = lever.get(scenario)
        for side, move in (("low", lever.low), ("high", lever.high)):
            value = move(base)
            moved = lever.put(scenario, value)
            variants.append((ALL_SITES, lever.field, lever.label, side, value, list(plan), moved,
                             lever.redraw))  # fmt: skip
    delta = _mean_deltas(scenario, plan, variants, backend, progress)
    rows = {}
    for (who, field, label, side, value, _, _, _), d in zip(variants, delta, strict=True):
        row = rows.setdefault((who, field), {"contract": who, "term": field})
        row[f"{side}_value"] = value
        row[f"{side}_label"] = label(value)
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


def _with_financing(scenario: Scenario, field: str, value: float) -> Scenario:
    financing = scenario.financing.model_copy(update={field: value})
    return scenario.model_copy(update={"financing": financing})


def _with_term(scenario: Scenario, c: int, field: str, value: float) -> Scenario:
    contracts = list(scenario.contracts)
    moved: Contract = contracts[c].model_copy(update={field: value})
    contracts[c] = moved
    return scenario.model_copy(update={"contracts": tuple(contracts)})


def _mean_deltas(scenario, plan, variants, backend: Backend, progress) -> list[float]:
    """Mean over the scenarios of (plan NPV with the variant - plan NPV as is) [USD]: the
    first MAX_SCENARIOS, or MARKET_SCENARIOS for a variant that moves the market, the power
    prices or the discount rate (it draws its paths and calendar again, with the same seed:
    the same random numbers)."""
    scenario = kernel_inputs(scenario)
    moved = [(v[5], kernel_inputs(v[6]), v[7]) for v in variants]
    n_all = min(scenario.simulation.scenarios, MAX_SCENARIOS)
    n_market = min(n_all, MARKET_SCENARIOS)
    out = [0.0] * len(moved)
    for redraw, n in ((False, n_all), (True, n_market)):
        picked = [k for k, m in enumerate(moved) if m[2] == redraw]
        if picked:
            means = _pass(scenario, plan, [moved[k] for k in picked], n, backend, progress)
            for k, mean in zip(picked, means, strict=True):
                out[k] = mean
    return out


def _pass(scenario, plan, moved, n: int, backend: Backend, progress) -> list[float]:
    """:func:`_mean_deltas` of ``moved`` over the first ``n`` scenarios."""
    xp = backend.xp
    valued = sorted({o for on, _, _ in moved for o in on}, key=plan.index)
    sites = sorted({o.site_index for o in valued})
    size = ChunkSize(chunk_size_for(scenario, backend, None))

    def chunk_sums(lo: int, hi: int) -> np.ndarray:
        """Per variant, the sum over scenarios [lo, hi) of the plan's NPV change [USD].

        A variant that keeps the market paths reuses each option's site streams (a
        contract term, an exit multiple or AI capex does not change them)."""
        idx = xp.arange(lo, hi, dtype=xp.int64)
        ctx = chunk_market(scenario, idx, xp=xp, sites=sites)
        streams = {o: site_streams_of(scenario, o.site_index, [o], ctx, xp=xp) for o in valued}
        base = {o: _npv(scenario, o, ctx, xp, streams[o]) for o in valued}
        sums = []
        for on, variant, redraw in moved:
            here = chunk_market(variant, idx, xp=xp, sites=sites) if redraw else ctx
            change = sum(
                _npv(variant, o, here, xp, None if redraw else streams[o]) - base[o] for o in on
            )
            sums.append(float(backend.to_numpy(change).sum()))
        return np.array(sums)

    totals = np.zeros(len(moved))
    for _, hi, sums in stream_chunks(n, size, backend, chunk_sums):
        totals += sums
        if progress is not None:
            progress("tornado", hi, n)
    return list(totals / n)


def _npv(scenario: Portfolio, option: SiteOption, ctx, xp, streams=None):
    return site_chunk(scenario, option.site_index, [option], ctx, xp=xp, streams=streams).npv[:, 0]
