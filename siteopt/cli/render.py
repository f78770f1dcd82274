"""Turn results into what the command line prints: JSON payloads and rich tables.

The JSON key names are the public interface of docs/cli.md; keys may be added, never renamed.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from siteopt.app.economics import AIEconomics, Economics, MarketFan, MiningEconomics
from siteopt.output.decisions import decision_text

__all__ = [
    "economics_payload",
    "print_breakeven",
    "print_economics",
    "print_solve",
    "print_sweep",
    "print_whatif",
]


def economics_payload(econ: Economics, fan: MarketFan | None = None) -> dict[str, Any]:
    """``economics --json``: docs/cli.md's keys, plus a few documented extras."""
    payload = {
        "scenario": econ.scenario,
        "month": econ.month,
        "hashprice_usd_ph_day": econ.hashprice_usd_ph_day,
        "btc_price_usd": econ.btc_price_usd,
        "hashrate_eh": econ.hashrate_eh,
        "subsidy_btc": econ.subsidy_btc,
        "fees_btc": econ.fees_btc,
        "cash_cost_usd_btc": econ.cash_cost_usd_btc,
        "sites": [
            {
                "name": site.name,
                "mining_mw": site.mining_mw,
                "power_price_usd_mwh": site.power_price_usd_mwh,
                "mining": {
                    **_mining_payload(site.mining),
                    "margin_usd_it_mw_day": site.mining_margin_usd_it_mw_day,
                },
                "ai": None
                if site.ai is None
                else {
                    **_ai_payload(site.ai),
                    "margin_usd_grid_mw_day": site.ai_margin_usd_grid_mw_day,
                },
                "ai_pue": site.ai_pue,
            }
            for site in econ.sites
        ],
    }
    if fan is not None:
        payload["market_paths"] = {
            "scenarios": fan.scenarios,
            "seed": fan.seed,
            "years": list(fan.years),
            "months": list(fan.months),
            **{name: {k: list(v) for k, v in stats.items()} for name, stats in fan.paths.items()},
        }
    return payload


def _mining_payload(m: MiningEconomics) -> dict[str, Any]:
    return {
        "ph_per_mw": m.ph_per_mw,
        "revenue_usd_mw_day": m.revenue_usd_mw_day,
        "power_cost_usd_mw_day": m.power_cost_usd_mw_day,
        "opex_usd_mw_day": m.opex_usd_mw_day,
        "margin_usd_mw_day": m.margin_usd_mw_day,
        "breakeven_power_usd_mwh": m.breakeven_power_usd_mwh,
        "btc_mw_day": m.btc_mw_day,
        "cash_cost_usd_btc": m.cash_cost_usd_btc,
    }


def _ai_payload(ai: AIEconomics | None) -> dict[str, Any] | None:
    if ai is None:
        return None
    return {
        "contract": ai.contract,
        "revenue_usd_mw_day": ai.revenue_usd_mw_day,
        "power_cost_usd_mw_day": ai.power_cost_usd_mw_day,
        "opex_usd_mw_day": ai.opex_usd_mw_day,
        "margin_usd_mw_day": ai.margin_usd_mw_day,
    }


def print_economics(
    econ: Economics, fan: MarketFan | None = None, console: Console | None = None
) -> None:
    """Mining per MW of grid power, hosted AI per MW of critical IT (each also in the other's
    unit), and the market paths by year."""
    console = console or Console(highlight=False)
    console.print(f"[bold]{econ.scenario}[/bold], first month {econ.month}")
    console.print(
        f"hashprice ${econ.hashprice_usd_ph_day:,.2f} per PH/s-day: BTC "
        f"${econ.btc_price_usd:,.0f}, {econ.hashrate_eh:,.0f} EH/s, "
        f"{econ.subsidy_btc + econ.fees_btc:.4g} BTC per block"
    )
    mining = _table(
        "Mining, USD per MW of grid power per day",
        [
            "MW",
            "PH/s\nper MW",
            "power\n$/MWh",
            "revenue",
            "power",
            "opex",
            "margin",
            "b/even\n$/MWh",
            "cash\n$/BTC",
        ],
    )
    for site in econ.sites:
        m = site.mining
        breakeven = m.breakeven_power_usd_mwh
        mining.add_row(
            site.name,
            f"{site.mining_mw:,.0f}",
            f"{m.ph_per_mw:,.1f}",
            f"{site.power_price_usd_mwh:,.2f}",
            *(_usd(v) for v in (m.revenue_usd_mw_day, m.power_cost_usd_mw_day, m.opex_usd_mw_day)),
            _usd(m.margin_usd_mw_day),
            "-" if breakeven is None else f"{breakeven:,.0f}",
            "-" if m.cash_cost_usd_btc is None else f"{m.cash_cost_usd_btc / 1000:,.1f}k",
        )
    console.print(mining)
    if econ.cash_cost_usd_btc is not None:
        console.print(
            f"cash cost (power and opex) per BTC mined, portfolio: ${econ.cash_cost_usd_btc:,.0f}"
        )
    console.print()
    ai = _table(
        "Hosted AI, USD per MW of critical IT per day",
        ["contract", "rent", "power", "opex", "margin"],
    )
    for site in econ.sites:
        a = site.ai
        if a is None:
            ai.add_row(site.name, "no AI option", "-", "-", "-", "-")
            continue
        ai.add_row(
            site.name,
            a.contract,
            *(_usd(v) for v in (a.revenue_usd_mw_day, a.power_cost_usd_mw_day, a.opex_usd_mw_day)),
            _usd(a.margin_usd_mw_day),
        )
    console.print(ai)
    console.print()
    both = _table(
        "Margins side by side, USD per day (1 MW of IT takes AI PUE MW of grid)",
        ["AI PUE", "mining per\ngrid MW", "AI per\ngrid MW", "mining per\nIT MW", "AI per\nIT MW"],
    )
    for site in econ.sites:
        if site.ai is None:
            both.add_row(site.name, "-", _usd(site.mining.margin_usd_mw_day), "-", "-", "-")
            continue
        both.add_row(
            site.name,
            f"{site.ai_pue:.2f}",
            _usd(site.mining.margin_usd_mw_day),
            _usd(site.ai_margin_usd_grid_mw_day),
            _usd(site.mining_margin_usd_it_mw_day),
            _usd(site.ai.margin_usd_mw_day),
        )
    console.print(both)
    if fan is not None:
        console.print()
        print_market_fan(fan, console)


def print_market_fan(fan: MarketFan, console: Console) -> None:
    """p50 [p10-p90] and mean of BTC, network hashrate and hashprice at each year's end."""
    table = Table(
        title=(
            f"Market paths, {fan.scenarios:,} scenarios (seed {fan.seed}): "
            "median \\[p10-p90] mean at each year's end"
        ),
        title_justify="left",
        box=None,
        pad_edge=False,
        header_style="bold",
    )
    for header in ("month", "BTC $k", "hashrate EH/s", "hashprice $/PH/s-day"):
        table.add_column(header, no_wrap=True, justify="left" if header == "month" else "right")
    formats = {"btc_usd": (1e-3, "{:,.0f}"), "hashrate_eh": (1.0, "{:,.0f}"),
               "hashprice_usd_ph_day": (1.0, "{:,.1f}")}  # fmt: skip
    for k, month in enumerate(fan.months):
        cells = []
        for name, (scale, fmt) in formats.items():
            st = fan.paths[name]
            q = [fmt.format(st[key][k] * scale) for key in ("p50", "p10", "p90", "mean")]
            cells.append(f"{q[0]} [{q[1]}-{q[2]}] {q[3]}")
        table.add_row(month, *cells)
    console.print(table)
    console.print(
        "the median BTC path follows market.forward or btc_drift (omitted: flat); with high "
        "volatility the mean rises far above it"
    )


def _table(title: str, headers: list[str]) -> Table:
    # no box: two spaces between columns keep both tables within 80 columns
    table = Table(title=title, title_justify="left", box=None, pad_edge=False, header_style="bold")
    table.add_column("site", no_wrap=True)
    for header in headers:
        textual = header == "contract"
        table.add_column(
            header,
            justify="left" if textual else "right",
            no_wrap=True,
            style="bold" if header == "margin" else None,
        )
    return table


def _usd(value: float) -> str:
    return f"{value:,.0f}"


def _musd(value: float) -> str:
    return f"{value / 1e6:,.1f}"


def _print_staged(console: Console, staged: dict[str, Any]) -> None:
    """``solve --staged``: what is signed now, the policy in words, the value of waiting."""
    by_year = ", ".join(f"{n} in {y}" for y, n in staged["states_by_year"].items())
    console.print(
        f"staged plan: up to {staged['clusters']} market states per state and later year, "
        f"by hashprice ({by_year or 'no later decision year'})"
    )
    now = [f for f in staged["first_stage"] if f["option"] != "hash"]  # a sale too
    signed = ", ".join(f"{f['site']}: {f['action']}" for f in now)
    console.print(escape(f"signed now: {signed or 'nothing; every site keeps hashing for now'}"))
    for line in staged["policy_words"]:
        console.print(escape(f"  then {line}"))
    if not staged["states_by_year"]:
        console.print("  one decision year only (build.decision_years): nothing to wait for")
    elif not staged["policy_words"]:
        console.print("  then nothing is converted in any later state")
    w = staged["value_of_waiting"]
    console.print(
        "value of waiting, USD millions (staged minus static, same draws): "
        f"E[NPV] {_signed(w['in_sample']['expected_npv_usd'])} in sample, "
        f"{_signed(w['out_of_sample']['expected_npv_usd'])} on fresh draws "
        f"(seed {staged['fresh_seed']}); CVaR {_signed(w['in_sample']['cvar_usd'])} / "
        f"{_signed(w['out_of_sample']['cvar_usd'])}"
    )
    by_stage = (staged.get("cvar_by_stage") or {}).get("out_of_sample")
    if by_stage:
        console.print(
            "CVaR by decision stage on fresh draws, USD millions (staged / static): "
            + ", ".join(
                f"{a['year']} {_musd(a['cvar_usd'])} / {_musd(b['cvar_usd'])}"
                for a, b in zip(by_stage["staged"], by_stage["static"], strict=True)
            )
        )
    milp = staged["milp"]
    if milp["status"] != "optimal":
        gap = "unknown" if milp["mip_gap"] is None else f"{100 * milp['mip_gap']:.2f}%"
        console.print(
            f"note: the staged MILP stopped at the time limit ({milp['solve_s']:.0f} s); the "
            f"policy is the best found, gap {gap} (--time-limit)"
        )
    for note in staged.get("notes", []):
        console.print(escape(f"note: {note}"))
    differs, states = staged["states_differing_from_static"], len(staged["states"]) - 1
    if states == 0:
        return
    if differs == 0:
        console.print(
            f"the policy builds what the static plan builds in all {states} later states: "
            "no market state seen then changes the decision (policy.csv)"
        )
    else:
        console.print(
            f"the policy departs from the static plan in {differs} of {states} "
            "later states (policy.csv)"
        )


def _plain_table(title: str, headers: list[str]) -> Table:
    table = Table(title=title, title_justify="left", box=None, pad_edge=False, header_style="bold")
    for k, header in enumerate(headers):
        table.add_column(
            header, justify="left" if k == 0 or header == "contract" else "right", no_wrap=True
        )
    return table


MAX_AI_LABEL = "AI by NPV per capex $ (greedy)"


def print_policy(summary: dict, written: list[Any], console: Console | None = None) -> None:
    """``evaluate --policy``: the policy's figures on this run's draws, each state's share,
    then where the files went."""
    console = console or Console(highlight=False, width=None if Console().is_terminal else 110)
    s = summary
    console.print(
        escape(
            f"{s['scenario']}: policy {s['evaluated_policy']} evaluated on {s['scenarios']:,} "
            f"scenarios (seed {s['seed']}), no MILP"
        )
    )
    console.print(
        f"E[NPV] {_musd(s['expected_npv_usd'])}, CVaR{round(100 * s['cvar_alpha'])} "
        f"{_musd(s['cvar_usd'])}, p5 {_musd(s['p5_npv_usd'])}, p50 {_musd(s['p50_npv_usd'])}, "
        f"p95 {_musd(s['p95_npv_usd'])} (USD millions)"
    )
    shares = ", ".join(f"{x['state']} {100 * x['share']:.0f}%" for x in s["states"][1:])
    if shares:
        console.print(f"share of the draws in each state: {shares}")
    for broken in s["violations_detail"]:
        console.print(escape(f"this policy breaks {broken}"), style="bold red")
    console.print(escape("wrote " + ", ".join(str(p) for p in written)))


def print_solve(
    outcome: Any,
    summary: dict,
    written: list[Any],
    console: Console | None = None,
    verbose: bool = False,
) -> None:
    """The plan per site beside the baselines, then where the files went; ``verbose``
    adds why the backend was chosen (e.g. the CUDA error behind "no NVIDIA GPU found")."""
    console = console or Console(highlight=False, width=None if Console().is_terminal else 110)
    s = summary
    if s.get("evaluated"):
        how = "plan evaluated (no MILP)"
    else:
        gap = "gap unknown" if s["mip_gap"] is None else f"gap {s['mip_gap']:.2%}"
        how = f"plan ({gap}), solver {s['solver']}"
    console.print(
        escape(
            f"{s['scenario']}: {s['status']} {how}, {s['scenarios']:,} scenarios, "
            f"seed {s['seed']}, backend "
            f"{s.get('backend_detail', outcome.backend_note) if verbose else outcome.backend_note}"
        )
    )
    alpha = f"CVaR{s['cvar_alpha'] * 100:g}"
    table = _plain_table(
        "Build plan, USD millions",
        ["site", "AI IT MW", "mining MW", "build", "contract", "equity capex", "E[NPV]", alpha],
    )
    for site in s["sites"]:
        table.add_row(
            site["name"],
            f"{site['ai_it_mw']:g}",
            f"{site['mining_mw']:g}",
            str(site["build_year"] or "-"),
            decision_text(site, mw=False),
            _musd(site["equity_capex_usd"]),
            _musd(site["expected_npv_usd"]),
            _musd(site["cvar_usd"]),
        )
    console.print(table)
    compare = _plain_table("Portfolio, USD millions", ["plan", "E[NPV]", alpha, "p5", "p50", "p95"])
    compare.add_row(
        "this plan",
        _musd(s["expected_npv_usd"]),
        _musd(s["cvar_usd"]),
        _musd(s["p5_npv_usd"]),
        _musd(s["p50_npv_usd"]),
        _musd(s["p95_npv_usd"]),
    )
    for name, label in (("all_mining", "all mining"), ("max_ai", MAX_AI_LABEL)):
        b = s["baselines"][name]
        note = "" if b.get("feasible", True) else " (breaks a contract or floor)"
        compare.add_row(
            label + note, _musd(b["expected_npv_usd"]), _musd(b["cvar_usd"]), "", "", ""
        )
    console.print(compare)
    capex = (
        ", ".join(f"{y}: {_musd(v)}" for y, v in s["equity_capex_by_year_usd"].items()) or "none"
    )
    console.print(f"equity capex by year, USD millions: {capex}")
    weight = s.get("risk_aversion") or 0.0
    objective = f"objective (E[NPV] + {weight:g} x CVaR)" if weight > 0 else "E[NPV]"
    if s.get("capital_value"):
        by_step: dict[float, list[str]] = {}
        for v in s["capital_value"]:
            beside = (
                f" (E[NPV] {_musd(v['expected_npv_gain_usd'])}, CVaR {_musd(v['cvar_gain_usd'])})"
                if weight > 0 and v["changes"] and v["cvar_gain_usd"] is not None
                else ""
            )
            by_step.setdefault(v["extra_usd"], []).append(
                f"{v['year']}: +{_musd(v['objective_gain_usd'])}{beside}"
            )
        for step, gains in by_step.items():
            console.print(
                escape(
                    f"{objective} gained with ${step / 1e6:,.0f}M more equity in one year, "
                    f"USD millions: {', '.join(gains)}"
                )
            )
    runner = s.get("runner_up")
    if runner:
        se = runner["objective_margin_se_usd"]
        error = f" (standard error {_musd(se)})" if se else ""
        beside = (
            f": E[NPV] {_musd(runner['margin_usd'])}, CVaR {_musd(runner['cvar_margin_usd'])}"
            if weight > 0
            else ""
        )
        lead = runner["objective_margin_usd"]
        console.print(
            escape(
                f"runner-up plan, USD millions: E[NPV] {_musd(runner['expected_npv_usd'])}, CVaR "
                f"{_musd(runner['cvar_usd'])}; this plan is {_musd(abs(lead))} "
                f"{'ahead' if lead >= 0 else 'behind'} in {objective}{error}{beside}; it "
                f"differs at {', '.join(runner['changes'])}"
            )
        )
    for alt in (s.get("alternatives") or [])[1:]:
        console.print(
            escape(
                f"alternative {alt['alternative']}, USD millions: E[NPV] "
                f"{_musd(alt['expected_npv_usd'])}, CVaR {_musd(alt['cvar_usd'])}; "
                f"{alt['distance']} sites differ, {alt['distance_mw']:g} MW apart by contract "
                f"and build year: {', '.join(alt['changes'])}"
            )
        )
    if s.get("validation"):
        _print_validation(console, s["validation"])
    if s.get("staged"):
        _print_staged(console, s["staged"])
    if outcome.frontier is not None:
        _print_frontier(console, outcome.frontier, alpha)
    for note in s.get("notes", []):
        console.print(escape(f"note: {note}"))
    for broken in s.get("violations_detail") or s.get("violations", []):
        console.print(escape(f"this plan breaks {broken}"), style="bold red")
    t = s["timings_s"]
    staged_s = f", staged {t['staged']:.1f} s" if "staged" in t else ""
    staged_s += f", validation {t['validation']:.1f} s" if "validation" in t else ""
    console.print(
        f"time: valuation {t['valuation']:.1f} s, MILP {t['milp']:.1f} s{staged_s}, "
        f"total {t['total']:.1f} s"
    )
    console.print(escape("wrote " + ", ".join(str(p) for p in written)))


def _print_validation(console: Console, v: dict[str, Any]) -> None:
    """summary.json's ``validation``: the plan and the risk-neutral plan on fresh draws."""

    def figures(f: dict[str, Any]) -> str:
        def one(key: str) -> str:
            se = f[f"{key}_se_usd"]
            return _musd(f[f"{key}_usd"]) + (f" ± {_musd(se)}" if se else "")

        return f"E[NPV] {one('expected_npv')}, CVaR {one('cvar')}"

    where = f"fresh draws (seed {v['seed']}, {v['scenarios']:,} scenarios), USD millions"
    if v["same_plan"]:
        console.print(f"{where}: {figures(v['plan'])}; the risk-neutral plan is this plan")
    else:
        console.print(
            f"{where}: this plan {figures(v['plan'])}; "
            f"risk-neutral plan {figures(v['risk_neutral'])}"
        )
    if v["dominated"]:
        console.print(
            "on fresh draws the risk-neutral plan has both the higher E[NPV] and the higher "
            "CVaR: the risk-averse plan is dominated out of sample",
            style="bold red",
        )
    gap = v.get("optimality_gap")
    if gap:
        upper = "" if gap["upper_usd"] is None else f", 95% bound {_musd(gap['upper_usd'])}"
        console.print(
            f"optimality gap over {gap['replications']} replications, USD millions: mean "
            f"{_musd(gap['mean_usd'])}{upper}"
        )


def _print_frontier(console: Console, frontier: Any, alpha: str) -> None:
    table = _plain_table(
        "Frontier: w E[NPV] + (1 - w) CVaR for each w, USD millions",
        ["w", "E[NPV]", alpha, "AI IT MW", "status", ""],
    )
    for row in frontier.to_dict("records"):
        known = pd.notna(row["expected_npv_usd"])
        table.add_row(
            f"{row['weight']:.3g}",
            _musd(row["expected_npv_usd"]) if known else "-",
            _musd(row["cvar_usd"]) if known else "-",
            f"{row['ai_it_mw_total']:g}" if known else "-",
            row["status"],
            "<- this plan" if row["chosen"] else "",
        )
    console.print(table)


def print_whatif(result: Any, out: Any, console: Console | None = None) -> None:
    """Per-site changes, then portfolio deltas (changed - base)."""
    console = console or Console(highlight=False, width=None if Console().is_terminal else 110)
    base = result.base
    console.print(
        escape(
            f"{base.scenario.name}: what if {', '.join(result.changes) or '(no change)'}; "
            f"{base.valuation.scenarios:,} scenarios, seed {base.valuation.seed}, same draws for "
            f"both; {result.sites_revalued} of {len(base.figures.sites)} sites valued again"
        )
    )
    sites = _plain_table(
        "Per site: base -> changed, USD millions",
        ["site", "AI IT MW", "build", "contract", "E[NPV] delta", "CVaR delta"],
    )
    for row in result.sites.to_dict("records"):
        sites.add_row(
            row["site"] + (" *" if row["changed"] else ""),
            _arrow(row["base_ai_it_mw"], row["changed_ai_it_mw"], "{:g}"),
            _arrow(row["base_build_year"], row["changed_build_year"], "{}"),
            _arrow(row["base_contract"], row["changed_contract"], "{}"),
            _signed(row["delta_expected_npv_usd"]),
            _signed(row["delta_cvar_usd"]),
        )
    console.print(sites)
    totals = _plain_table("Portfolio, USD millions (MW as is)", ["", "base", "changed", "delta"])
    for key, d in result.totals.items():
        mw = key.endswith("_total")
        fmt = (lambda v: f"{v:,.0f}") if mw else _musd
        delta = f"{d['delta']:+,.0f}" if mw else _signed(d["delta"])
        totals.add_row(key.removesuffix("_usd"), fmt(d["base"]), fmt(d["changed"]), delta)
    console.print(totals)
    changed = int(result.sites["changed"].sum())
    console.print(f"{changed} site decision(s) changed (marked *)")
    console.print(escape(f"wrote {out}/base, {out}/changed, {out}/diff.csv, {out}/whatif.json"))


def _arrow(before: Any, after: Any, fmt: str) -> str:
    def show(v: Any) -> str:
        return "-" if v is None or v == "" or v is pd.NA else fmt.format(v)

    return show(before) if before == after else f"{show(before)} -> {show(after)}"


def _signed(value: float) -> str:
    return f"{value / 1e6:+,.1f}"


def print_sweep(result: Any, payload: dict[str, Any], written: list[Any]) -> None:
    """One row per point (per case), then what was reused between points."""
    from siteopt.app.sweep import CASE

    console = Console(highlight=False, width=None if Console().is_terminal else 110)
    cases = result.param == CASE
    what = (
        f"{len(result.points)} cases"
        if cases
        else f"sweep of {result.param}"
        + (f" and {result.param2}" if result.param2 else "")
        + f" over {len(result.points)} points"
    )
    console.print(
        escape(
            f"{result.scenario}: {what}, {payload['scenarios']:,} scenarios, seed "
            f"{payload['seed']}, same draws at every point"
            if payload["scenarios"]
            else f"{result.scenario}: {what}: none has a feasible plan"
        )
    )
    heads = (
        result.keys if cases else [p.rsplit(".", 1)[-1] for p in (result.param, result.param2) if p]
    )
    table = _plain_table(
        "USD millions", [*heads, "status", "E[NPV]", "CVaR", "AI IT MW", "capex", "s"]
    )
    for row in result.frame().to_dict("records"):
        ok = row["status"] != "infeasible"
        table.add_row(
            *(str(row[k]) for k in result.keys),
            row["status"],
            _musd(row["expected_npv_usd"]) if ok else "-",
            _musd(row["cvar_usd"]) if ok else "-",
            f"{row['ai_it_mw_total']:g}" if ok else "-",
            _musd(row["equity_capex_usd"]) if ok else "-",
            f"{row['seconds']:.1f}",
        )
    console.print(table)
    if cases:
        for point in result.points[1:]:
            console.print(escape(f"{point.value}: " + "; ".join(point.changes)))
    reuse = payload["reuse"]
    valued, needed = reuse["site_valuations"], reuse["site_valuations_without_reuse"]
    console.print(
        f"site valuations: {valued} computed, {needed - valued} reused of {needed}; "
        f"MILP warm starts: {reuse['warm_starts']} of {len(result.points) - 1}; "
        f"total {payload['seconds']:.1f} s"
    )
    console.print(escape("wrote " + ", ".join(str(p) for p in written)))


def print_breakeven(result: Any, path: Any) -> None:
    def price(v: float | None) -> str:
        return "never, up to $10,000" if v is None else f"${v:,.2f} per kW-month"

    console = Console(highlight=False)
    console.print(
        escape(
            f"{result.site} on {result.contract} ({result.scenarios:,} scenarios, "
            f"seed {result.seed}):"
        )
    )
    best = f" ({result.best_option_at_breakeven})" if result.best_option_at_breakeven else ""
    rival = (
        "keeping it hashing"
        if result.alternative == "hash"
        else f"its best option off this contract, {result.alternative}"
    )
    console.print(escape(f"  against {rival}:"))
    console.print(
        escape(f"  converting wins in expected NPV from {price(result.by_expected_npv)}")
        + escape(best)
    )
    console.print(escape(f"  converting wins in CVaR from {price(result.by_cvar)}"))
    if result.plan_searched:
        where = (
            "it signs it at the scenario's price"
            if result.in_plan_at_price
            else "it does not at the scenario's price"
        )
        option = f" ({result.in_plan_option})" if result.in_plan_option else ""
        text = (
            f"signs it from {price(result.in_plan)}{option}; {where}"
            if result.in_plan is not None
            else "signs it at no price up to $10,000 per kW-month (a higher rent raises "
            "every site this contract reaches)"
        )
        console.print(escape(f"  the build plan, every site and constraint considered, {text}"))
    if not result.alone_meets_minimum:
        console.print(
            escape(
                f"  note: no option of {result.site} alone reaches the contract's minimum of "
                f"{result.min_mw:g} MW; the prices assume other sites sign the rest"
            )
        )
    console.print(escape(f"wrote {path}"))
