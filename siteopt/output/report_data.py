"""From a run's outcome to the report: the inputs report.html shows, and its manifest.

:mod:`siteopt.output.report` draws; this module gathers what it draws from a
:class:`~siteopt.app.pipeline.SolveOutcome` (plan, samples, per-year columns of the option
table, the scenario's key inputs) and computes the contract-terms tornado.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from siteopt.app.economics import market_fan
from siteopt.app.pipeline import Progress, SolveOutcome, SolveSettings
from siteopt.app.sweep import cases, plan_changes, point_row
from siteopt.app.tornado import contract_tornado
from siteopt.kernels.backend import select_backend
from siteopt.kernels.forward import breakeven_level, btc_log_drift
from siteopt.kernels.params import TaxParams
from siteopt.model.generator import generator_cost_usd_mwh
from siteopt.model.load import risk_sample_of
from siteopt.model.schema import PowerMarket, Scenario
from siteopt.optimizer.options import ai_online_column, mining_eh_column
from siteopt.output.report import ReportData, write_report

PACKAGES = ("numpy", "pandas", "pulp", "highspy", "pydantic", "matplotlib", "cupy-cuda12x")


def write_run_report(
    outcome: SolveOutcome,
    summary: dict,
    command: str,
    scenario_path: Path,
    out_dir: Path,
    progress: Progress | None = None,
) -> list[Path]:
    """report.html and its PNGs for one run (the tornado, and for a solve the scenario's
    cases, are computed here)."""
    plan = outcome.chosen
    tornado = contract_tornado(
        outcome.scenario,
        plan,
        float(outcome.samples["plan"].mean()),
        select_backend(outcome.valuation.backend),
    )
    data = report_data(outcome, summary, command, scenario_path, tornado)
    if command == "solve" and outcome.scenario.cases:
        data = dataclasses.replace(data, cases=case_rows(outcome, progress))
    return write_report(data, out_dir)


def case_rows(
    outcome: SolveOutcome, progress: Progress | None = None
) -> tuple[dict[str, Any], ...]:
    """The scenario's cases solved beside ``outcome`` (its base) on the same draws, a row
    each: ``case``, ``changes``, cases.csv's columns (siteopt.app.sweep.point_row) and,
    when feasible, ``plan_changes`` against the base plan."""
    settings = SolveSettings(
        backend=outcome.valuation.backend,
        solver=outcome.decision.solver,
        time_limit_s=outcome.time_limit_s,
    )
    result = cases(outcome.scenario, settings, progress, base=outcome)
    rows = []
    for point in result.points:
        row: dict[str, Any] = {"case": point.value, "changes": list(point.changes)}
        row |= point_row(point)
        if point.outcome is not None:
            row["plan_changes"] = plan_changes(outcome, point.outcome)
        rows.append(row)
    return tuple(rows)


def report_data(
    outcome: SolveOutcome,
    summary: dict,
    command: str,
    scenario_path: Path,
    tornado: pd.DataFrame | None,
) -> ReportData:
    """What report.html shows of one run; ``summary`` is its summary.json document."""
    s, scenario = summary, outcome.scenario
    fan = outcome.market if outcome.market is not None else market_fan(scenario)
    years = list(outcome.valuation.options.years)
    picked = outcome.valuation.options.table.loc[list(outcome.rows)]
    budget = outcome.problem.budget_usd_by_year
    return ReportData(
        scenario=scenario.name,
        command=command,
        summary=s,
        plan=outcome.plan_frame,
        npv_samples_usd=outcome.samples,
        capex_by_year_usd={int(y): float(v) for y, v in s["equity_capex_by_year_usd"].items()},
        budget_by_year_usd={int(y): float(v) for y, v in budget.items()},
        budget_carry_over=outcome.problem.carry_over,
        timeline=_timeline(outcome, years, picked),
        assumptions=assumptions(scenario),
        manifest=manifest(outcome, summary, command, scenario_path),
        frontier=outcome.frontier,
        market_months=fan.months,
        market_paths=fan.paths,
        market_scenarios=fan.scenarios,
        tornado=tornado,
        tornado_base_npv_usd=float(outcome.samples["plan"].mean()),
        violations=tuple(s.get("violations_detail") or s.get("violations", ())),
        warnings=tuple(
            f"{w['path']}: {w['message']}" + (f" (line {w['line']})" if w.get("line") else "")
            for w in s.get("warnings", ())
        ),
        notes=tuple(s.get("notes", ())),
    )


def _timeline(outcome: SolveOutcome, years: list[int], picked: pd.DataFrame) -> pd.DataFrame:
    table = outcome.valuation.options.table
    hashing = table[table["contract"] == ""]
    return pd.DataFrame(
        {
            "year": years,
            "ai_it_mw_online": [float(picked[ai_online_column(y)].sum()) for y in years],
            "mining_eh": [float(picked[mining_eh_column(y)].sum()) for y in years],
            "all_mining_eh": [float(hashing[mining_eh_column(y)].sum()) for y in years],
        }
    )


def _drift(m) -> str:
    drift = f"{btc_log_drift(m.btc_drift, m.btc_volatility):.0%}"
    return f"{drift} (omitted: the median stays flat)" if m.btc_drift is None else drift


def _breakeven(m) -> str:
    if m.breakeven_efficiency_j_th is None:
        where = "the start hashprice"
    else:
        hp = breakeven_level(m.breakeven_efficiency_j_th, m.breakeven_power_usd_mwh)
        where = (
            f"{m.breakeven_efficiency_j_th:g} J/TH at ${m.breakeven_power_usd_mwh:,.0f}/MWh "
            f"(${hp:,.1f}/PH/day)"
        )
    return (
        f"{where}, {m.fleet_efficiency_gain:.0%}/yr more efficient, "
        f"{m.hashrate_to_ai_per_year:.1%}/yr of the network to AI, elasticity "
        f"{m.hashrate_elasticity:g}/yr after {m.hashrate_lag_months} months"
    )


def _forwards(scenario: Scenario) -> str:
    f = scenario.market.forward
    named = [] if f is None else [k for k in ("btc_price_usd", "hashrate_eh", "fee_share")
                                  if getattr(f, k) is not None]  # fmt: skip
    named += [
        f"power {name}" for name, pm in scenario.power_markets.items()
        if pm.forward_usd_mwh is not None
    ]  # fmt: skip
    if not named:
        return "none: the drift rules"
    return f"{', '.join(named)} (the {scenario.market.forward_is} of the paths)"


def _ancillary(pm: PowerMarket) -> str:
    a = pm.ancillary
    if a is None:
        return ""
    return (
        f"; ancillary services ${a.capacity_usd_mw_month:,.0f}/MW-month offered, "
        f"{a.enrolled_share:.0%} of MW, {a.committed_share:.0%} of curtailed hours committed"
    )


def assumptions(scenario: Scenario) -> list[tuple[str, str, str]]:
    """The inputs that drive the answer, as (section, item, value with unit) rows."""
    m, fin, obj, sim = scenario.market, scenario.financing, scenario.objective, scenario.simulation
    rows = [
        ("Horizon", "start, length", f"{scenario.start}, {scenario.horizon_years} years"),
        (
            "Horizon",
            "discount rate (unlevered; the debt at its own rate)",
            f"{scenario.discount_rate:.1%}/yr",
        ),  # fmt: skip
        ("Horizon", "cost inflation", f"{m.cost_inflation:.1%}/yr"),
        ("Market", "BTC price at start", f"${m.btc_price_usd:,.0f}"),
        ("Market", "BTC drift, volatility", f"{_drift(m)}, {m.btc_volatility:.0%}/yr"),
        ("Market", "network hashrate at start", f"{m.hashrate_eh:,.0f} EH/s"),
        (
            "Market",
            "hashrate growth beside break-even, volatility",
            f"{m.hashrate_growth:.0%}, {m.hashrate_volatility:.0%}/yr",
        ),  # fmt: skip
        ("Market", "break-even fleet", _breakeven(m)),
        ("Market", "forwards", _forwards(scenario)),
        ("Market", "halvings", _halvings(scenario)),
        ("Market", "fees", f"{m.fee_share:.1%} of subsidy"),
    ]
    if scenario.simulation.deterministic:
        rows.append(("Market", "run", "deterministic: one path at the central view"))
    for name, pm in scenario.power_markets.items():
        rows.append(
            (
                "Power",
                name,
                f"${pm.price_usd_mwh:,.1f}/MWh mean, {pm.spike_hours_share:.1%} of hours at "
                f"${pm.spike_price_usd_mwh:,.0f}, 4CP ${pm.transmission_4cp_usd_kw_year:,.0f}"
                "/kW-yr" + _ancillary(pm),
            )
        )
    for site in scenario.sites:
        if site.generator is not None:
            g = site.generator
            rows.append(
                (
                    "Power",
                    f"{site.name} (own generator)",
                    f"${generator_cost_usd_mwh(g):,.2f}/MWh (gas ${g.gas_price_usd_mmbtu:,.2f}"
                    f"/MMBtu x {g.heat_rate_mmbtu_mwh:g} MMBtu/MWh + ${g.variable_om_usd_mwh:g} "
                    f"O&M), available {g.availability:.0%} of hours, no 4CP",
                )
            )
    lost = sorted({site.mining.attrition for site in scenario.sites})
    rows.append(("Mining", "machines lost a year", ", ".join(f"{a:.1%}" for a in lost)))
    for c in scenario.contracts:
        rows.append(
            (
                "Contracts",
                c.name,
                f"${c.price_usd_kw_month:,.1f}/kW-month, {c.term_years:g} yr, "
                f"escalator {c.escalator:.1%}, tenant funds {c.tenant_funded_share:.0%}, "
                f"exit {c.annual_default_prob:.1%}/yr, MW {c.min_mw:g}-{c.max_mw:g}"
                + (f", online by {c.online_by}" if c.online_by else "")
                + (", must sign" if c.must_sign else ""),
            )
        )
    budget = ", ".join(f"{y}: ${v / 1e6:,.0f}M" for y, v in sorted(fin.capital_budget_usd.items()))
    rows += [
        (
            "Financing",
            "equity budget",
            (budget or "none") + (" (carries over)" if fin.carry_over else ""),
        ),  # fmt: skip
        (
            "Financing",
            "project debt",
            f"{fin.debt.loan_to_cost:.0%} of cost at "
            f"{fin.debt.rate:.1%}, {fin.debt.term_years:g} yr",
        ),  # fmt: skip
        (
            "Financing",
            "exit multiples",
            f"AI {fin.exit_multiple_ai:g}x a let hall's market NOI at its next re-let, "
            f"mining {fin.exit_multiple_mining:g}x",
        ),  # fmt: skip
        *_tax_rows(scenario),
        ("Risk", "CVaR level", f"{obj.cvar_alpha:.0%}"),
        ("Risk", "risk aversion", f"{obj.risk_aversion:g}"),
        (
            "Risk",
            "CVaR floor",
            "none" if obj.cvar_floor_usd is None else f"${obj.cvar_floor_usd / 1e6:,.0f}M",
        ),  # fmt: skip
        (
            "Simulation",
            "scenarios, risk sample",
            f"{sim.scenarios:,}, {risk_sample_of(scenario):,}",
        ),
    ]
    return rows


def _tax_rows(scenario: Scenario) -> list[tuple[str, str, str]]:
    """The tax assumptions, as rows."""
    tax = scenario.tax
    rate = TaxParams(rate=tax.rate, state_rate=tax.state_rate).income_rate
    losses = "carried forward (80% limit)" if tax.losses == "carry_forward" else "offset at once"
    rows = [
        (
            "Taxes",
            "income tax",
            f"{rate:.1%} (federal {tax.rate:.0%}, state {tax.state_rate:.1%}); losses {losses}",
        ),
        (
            "Taxes",
            "depreciation",
            f"bonus {tax.bonus_depreciation:.0%}; ASICs {tax.asic_life_years:g} yr; halls "
            f"{tax.ai_equipment_share:.0%} equipment ({tax.ai_equipment_life_years:g} yr), the "
            f"rest building ({tax.building_life_years:g} yr)",
        ),
    ]
    if tax.property_rate > 0:
        rows.append(
            (
                "Taxes",
                "property tax",
                f"{tax.property_rate:.1%}/yr of assessed value, {tax.property_abatement_share:.0%} "
                f"abated for {tax.property_abatement_years:g} yr",
            )
        )
    return rows


def _halvings(scenario: Scenario) -> str:
    listed = ", ".join(scenario.halvings) or "none"
    return listed if scenario.market.halving_months is not None else f"{listed} (generated)"


def manifest(
    outcome: SolveOutcome, summary: dict, command: str, scenario_path: Path
) -> dict[str, str]:
    """What reproduces the run: command, inputs (with a hash), seed, backend, versions."""
    s = summary
    try:
        digest = hashlib.sha256(Path(scenario_path).read_bytes()).hexdigest()
    except OSError:
        digest = "unreadable"
    out = {
        "command": " ".join(["siteopt", *sys.argv[1:]]) if sys.argv[1:] else f"siteopt {command}",
        "scenario file": str(scenario_path),
        "scenario sha256": digest,
        "scenario": s["scenario"],
        "seed": str(s["seed"]),
        "scenarios": f"{s['scenarios']:,}",
        "risk sample": f"{s.get('risk_sample', '')}",
        "backend": outcome.backend_note,
        "engine": s["engine"],
        "solver": s["solver"] or "none (plan evaluated)",
        "status": s["status"],
        "mip gap": "n/a" if s["mip_gap"] is None else f"{s['mip_gap']:.4%}",
        "time limit": f"{s.get('time_limit_s', 0):g} s",
        "siteopt": s.get("version", ""),
        "python": platform.python_version(),
        "written": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out
