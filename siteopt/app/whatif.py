"""``siteopt whatif``: the base scenario and a changed one, solved on the same draws.

Both runs share one :class:`~siteopt.kernels.valuation.ValuationCache`: a site whose
inputs the change does not reach is valued once and its numbers are reused, so they are
bit-identical in both runs; the draws are keyed by (seed, scenario, month, stream), so
a changed site sees the same BTC paths, power prices, delays and exits as before. The
deltas reported are therefore the effect of the change, not sampling noise. Both MILPs
start cold, so "no change" reproduces the base plan exactly.

With ``--engine dask`` the base and the changed solve are two tasks on the cluster, side
by side (siteopt.app.engines); each values every site on its worker, so nothing is
reused, but the numbers are the same as the local engine's and ``sites_revalued``
still counts the sites whose valuation inputs the change reached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from siteopt.app import pipeline
from siteopt.app.params import kernel_inputs
from siteopt.app.pipeline import (
    PORTFOLIO_KEYS,
    PortfolioFigures,
    Progress,
    SolveOutcome,
    SolveSettings,
)
from siteopt.kernels.valuation import ValuationCache, site_key
from siteopt.model.errors import InfeasibleError
from siteopt.model.load import apply_overrides
from siteopt.model.schema import Scenario

TOTAL_KEYS = PORTFOLIO_KEYS
SITE_KEYS = (
    "ai_it_mw",
    "mining_mw",
    "build_year",
    "contract",
    "expected_npv_usd",
    "cvar_usd",
    "option",  # issue 28: a sale or a JV twin changes the decision at the same MW
    "partner_share",
)
_LABELS = ("build_year", "contract", "option")  # compared, not subtracted


@dataclass(frozen=True)
class WhatIf:
    """Base and changed plans and what differs between them.

    Attributes
    ----------
    sites : pandas.DataFrame
        One row per site: ``site``, ``changed`` (plan decision differs), and for each of
        SITE_KEYS the ``base_``, ``changed_`` value (and ``delta_`` for numbers).
    totals : dict
        For each of TOTAL_KEYS and each capex year: {"base", "changed", "delta"}.
    sites_revalued : int
        Sites whose valuation the change reached (the rest were reused).
    """

    changes: tuple[str, ...]
    base: SolveOutcome
    changed: SolveOutcome
    sites: pd.DataFrame
    totals: dict[str, dict[str, Any]]
    sites_revalued: int


def whatif(
    scenario: Scenario,
    changes: Sequence[str],
    settings: SolveSettings,
    progress: Progress | None = None,
) -> WhatIf:
    """Solve ``scenario`` and ``scenario`` with ``changes`` (``PATH=VALUE``) applied.

    Raises
    ------
    ScenarioError
        A change names no valid path or makes the scenario invalid (checked first).
    InfeasibleError
        Either scenario has no feasible plan (the message says which).
    """
    changed_scenario = apply_overrides(scenario, changes)  # a bad change fails before work
    if settings.engine == "dask":
        return _whatif_on_cluster(scenario, changed_scenario, changes, settings, progress)
    cache = ValuationCache()
    base = _solve("base", scenario, settings, progress, cache)
    before = cache.misses
    changed = _solve("changed", changed_scenario, settings, progress, cache)
    return WhatIf(
        tuple(changes),
        base,
        changed,
        site_diff(base.figures, changed.figures),
        total_diff(base.figures, changed.figures),
        cache.misses - before,
    )


def _whatif_on_cluster(
    scenario: Scenario,
    changed_scenario: Scenario,
    changes: Sequence[str],
    settings: SolveSettings,
    progress: Progress | None,
) -> WhatIf:
    """Base and changed solved as two tasks on the Dask cluster."""
    from siteopt.app.distributed import solve_on_cluster

    solved = solve_on_cluster([scenario, changed_scenario], settings, "whatif", progress)
    for which, point in zip(("base", "changed"), solved, strict=True):
        if point.infeasible is not None:
            exc = point.infeasible
            raise InfeasibleError(f"the {which} scenario: {exc.message}", exc.conflicts)
    base, changed = solved[0].outcome, solved[1].outcome
    return WhatIf(
        tuple(changes),
        base,
        changed,
        site_diff(base.figures, changed.figures),
        total_diff(base.figures, changed.figures),
        sites_reached(base.scenario, changed.scenario),
    )


def sites_reached(base: Scenario, changed: Scenario) -> int:
    """Sites whose valuation inputs (:func:`site_key`) differ between two scenarios."""
    kb, kc = kernel_inputs(base), kernel_inputs(changed)
    return sum(site_key(kb, i, "", 0) != site_key(kc, i, "", 0) for i in range(len(base.sites)))


def _solve(which, scenario, settings, progress, cache) -> SolveOutcome:
    try:
        return pipeline.solve(scenario, settings, progress, cache=cache)
    except InfeasibleError as exc:
        raise InfeasibleError(f"the {which} scenario: {exc.message}", exc.conflicts) from None


def site_diff(base: PortfolioFigures, changed: PortfolioFigures) -> pd.DataFrame:
    """Per-site comparison of two plans (same sites, same order)."""
    records = []
    for b, c in zip(base.sites, changed.sites, strict=True):
        row: dict[str, Any] = {"site": b["name"]}
        row["changed"] = any(b[k] != c[k] for k in ("ai_it_mw", "build_year", "contract", "option"))
        for key in SITE_KEYS:
            row[f"base_{key}"] = b[key]
            row[f"changed_{key}"] = c[key]
            if key not in _LABELS:
                row[f"delta_{key}"] = c[key] - b[key]
        records.append(row)
    frame = pd.DataFrame.from_records(records)
    for side in ("base", "changed"):  # keep hashing: no year, no contract (as in plan.csv)
        frame[f"{side}_build_year"] = frame[f"{side}_build_year"].astype("Int64")
        frame[f"{side}_contract"] = frame[f"{side}_contract"].fillna("")
    return frame


def total_diff(base: PortfolioFigures, changed: PortfolioFigures) -> dict[str, dict[str, Any]]:
    """Portfolio totals and capex by year: base, changed and delta (changed - base)."""
    b_totals, c_totals = base.portfolio(), changed.portfolio()
    out = {k: _delta(b_totals[k], c_totals[k]) for k in TOTAL_KEYS}
    b_capex, c_capex = base.equity_capex_by_year_usd, changed.equity_capex_by_year_usd
    for year in sorted(set(b_capex) | set(c_capex)):
        out[f"equity_capex_{year}_usd"] = _delta(b_capex.get(year, 0.0), c_capex.get(year, 0.0))
    for name in ("all_mining", "max_ai"):
        out[f"{name}_expected_npv_usd"] = _delta(
            base.baselines[name]["expected_npv_usd"], changed.baselines[name]["expected_npv_usd"]
        )
    return out


def _delta(b: float, c: float) -> dict[str, float]:
    return {"base": b, "changed": c, "delta": c - b}


def payload(result: WhatIf) -> dict[str, Any]:
    """whatif.json: the changes, the totals and per-site rows (scriptable)."""
    sites = result.sites.astype(object).where(result.sites.notna(), None)
    return {
        "scenario": result.base.scenario.name,
        "changes": list(result.changes),
        "scenarios": result.base.valuation.scenarios,
        "seed": result.base.valuation.seed,
        "backend": result.base.valuation.backend,
        "status": {
            "base": result.base.decision.status,
            "changed": result.changed.decision.status,
        },
        "totals": result.totals,
        "sites": sites.to_dict("records"),
        "sites_changed": int(result.sites["changed"].sum()),
        "sites_revalued": result.sites_revalued,
    }
