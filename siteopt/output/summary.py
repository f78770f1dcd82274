"""summary.json: built once, from a finished run's outcome.

Every key docs/cli.md lists, plus documented extras, in a fixed order. The numbers come
from :class:`siteopt.app.pipeline.SolveOutcome` (its portfolio figures, decision, timings
and frontier); nothing here computes a statistic, and nothing patches the dict afterwards.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from siteopt.app.staged import staged_summary
from siteopt.output.plots import usd_m
from siteopt.version import __version__

if TYPE_CHECKING:
    from siteopt.app.economics import MarketFan
    from siteopt.app.pipeline import SolveOutcome
    from siteopt.app.structures import StructureComparison


def summary_of(outcome: SolveOutcome) -> dict[str, Any]:
    """The summary.json document of ``outcome``."""
    fig, decision, valuation = outcome.figures, outcome.decision, outcome.valuation
    summary: dict[str, Any] = {
        "scenario": outcome.scenario.name,
        "status": decision.status,
        "mip_gap": decision.mip_gap,  # null when no bound was proven in time, or no MILP ran
        "backend": valuation.backend,
        "backend_detail": outcome.backend_detail,
        "engine": outcome.engine,
        "solver": decision.solver,
        "scenarios": valuation.scenarios,
        "seed": valuation.seed,
        "expected_npv_usd": fig.expected_npv_usd,
        "expected_npv_se_usd": fig.expected_npv_se_usd,
        "cvar_usd": fig.cvar_usd,
        "cvar_alpha": fig.cvar_alpha,
        # the objective: E[NPV] + risk_aversion x CVaR (capital_value, runner_up speak in it)
        "risk_aversion": outcome.problem.risk_aversion,
        "p5_npv_usd": fig.p5_npv_usd,
        "p50_npv_usd": fig.p50_npv_usd,
        "p95_npv_usd": fig.p95_npv_usd,
        "terminal_value_share": fig.terminal_value_share,
        "leverage_usd": fig.leverage_usd,
        "leverage_value_usd": fig.leverage_value_usd,
        "tax_shield_usd": fig.tax_shield_usd,
        "rate_subsidy_usd": fig.rate_subsidy_usd,
        "walk_away_value_usd": fig.walk_away_value_usd,
        "equity_capex_by_year_usd": dict(fig.equity_capex_by_year_usd),
        "ai_it_mw_total": fig.ai_it_mw_total,
        "mining_mw_total": fig.mining_mw_total,
        "returns": fig.returns,  # the conversions over hashing; null when none converts
        "sites": [dict(site) for site in fig.sites],
        "baselines": {name: dict(b) for name, b in fig.baselines.items()},
        "constraints": [dataclasses.asdict(c) for c in outcome.constraints],
        "capital_value": [
            {**dataclasses.asdict(c), "changes": list(c.changes)} for c in outcome.capital
        ],
        "alternatives": alternatives_of(outcome),
        "runner_up": None
        if outcome.runner_up is None
        else {**dataclasses.asdict(outcome.runner_up), "changes": list(outcome.runner_up.changes)},
        "timings_s": {k: round(v, 3) for k, v in outcome.timings_s.items()},
        "violations": list(decision.violations),
        "violations_detail": list(decision.violation_details),
        "warnings": [w.as_dict() for w in fig.warnings],
        "notes": list(decision.notes),
        "cvar_in_model_usd": fig.cvar_in_model_usd,
        "cvar_risk_sample_usd": fig.cvar_risk_sample_usd,
        "risk_sample": fig.risk_sample,
        "time_limit_s": outcome.time_limit_s,
        "version": __version__,
    }
    summary["deterministic"] = outcome.scenario.simulation.deterministic
    if outcome.central_npv_usd is not None:
        summary["central_case"] = {
            "npv_usd": outcome.central_npv_usd,
            # E[NPV] less the central path's NPV: what the distribution adds or takes away
            "value_of_risk_usd": fig.expected_npv_usd - outcome.central_npv_usd,
        }
    if outcome.market is not None:
        summary["market"] = market_block(outcome.market)
    # colocation beside cloud at each site that could take either ([] when none could)
    summary["structures"] = [{**s.as_dict(), "text": structure_text(s)} for s in outcome.structures]
    # sell, share or keep at each site a buyer or partner made an offer for ([] when none)
    summary["deals"] = [d.as_dict() for d in outcome.deals]
    if outcome.frontier is not None:
        summary["frontier"] = [dict(r) for r in outcome.frontier_records]
    if outcome.staged is not None:
        summary["staged"] = staged_summary(outcome.staged)
    if outcome.validation is not None:
        summary["validation"] = outcome.validation.as_dict()
    if outcome.evaluated:
        summary["evaluated"] = True
    return summary


def structure_text(s: StructureComparison) -> str:
    """Which structure is worth more at a site, and the three largest drivers of the gap."""
    lead = s.cloud.expected_npv_usd - s.colocation.expected_npv_usd
    winner, loser = ("cloud", "colocation") if lead >= 0 else ("colocation", "cloud")
    top = sorted(s.drivers.items(), key=lambda kv: -abs(kv[1]))[:3]
    parts = "; ".join(f"{name} {usd_m(value, signed=True)}" for name, value in top)
    return (
        f"{winner} is worth {usd_m(abs(lead))} more in E[NPV] than {loser} (CVaR: cloud "
        f"{usd_m(s.cloud.cvar_usd)}, colocation {usd_m(s.colocation.cvar_usd)}); cloud less "
        f"colocation, the largest differences: {parts}"
    )


def market_block(fan: MarketFan) -> dict[str, Any]:
    """The market the valuation drew, by year (economics.market_fan): for each series its
    p5, p10, p50, p90, p95 and mean, one value per year (each year's last month)."""
    return {
        "scenarios": fan.scenarios,
        "years": list(fan.years),
        "months": list(fan.months),
        **{name: {k: list(v) for k, v in stats.items()} for name, stats in fan.paths.items()},
    }


def alternatives_of(outcome: SolveOutcome) -> list[dict[str, Any]]:
    """summary.json's ``alternatives``: the plan (alternative 0), then each near-optimal
    plan; empty without ``--alternatives``."""
    if not outcome.alternatives:
        return []
    fig = outcome.figures
    first = {
        "alternative": 0,
        "expected_npv_usd": fig.expected_npv_usd,
        "cvar_usd": fig.cvar_usd,
        "distance": 0,
        "distance_mw": 0.0,
        "changes": [],
    }
    return [first] + [
        {
            "alternative": k,
            "expected_npv_usd": a.expected_npv_usd,
            "cvar_usd": a.cvar_usd,
            "distance": a.distance,
            "distance_mw": a.distance_mw,
            "changes": list(a.changes),
        }
        for k, a in enumerate(outcome.alternatives, start=1)
    ]
