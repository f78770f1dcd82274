"""Turn results into what the command line prints: JSON payloads and rich tables.

The JSON key names are the public interface of CLI.md; keys may be added, never renamed.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .economics import AIEconomics, Economics, MiningEconomics

__all__ = ["economics_payload", "print_economics"]


def economics_payload(econ: Economics) -> dict[str, Any]:
    """``economics --json``: CLI.md's keys, plus a few documented extras."""
    return {
        "scenario": econ.scenario,
        "month": econ.month,
        "hashprice_usd_ph_day": econ.hashprice_usd_ph_day,
        "btc_price_usd": econ.btc_price_usd,
        "hashrate_eh": econ.hashrate_eh,
        "subsidy_btc": econ.subsidy_btc,
        "fees_btc": econ.fees_btc,
        "sites": [
            {
                "name": site.name,
                "mining_mw": site.mining_mw,
                "power_price_usd_mwh": site.power_price_usd_mwh,
                "mining": _mining_payload(site.mining),
                "ai": _ai_payload(site.ai),
            }
            for site in econ.sites
        ],
    }


def _mining_payload(m: MiningEconomics) -> dict[str, Any]:
    return {
        "ph_per_mw": m.ph_per_mw,
        "revenue_usd_mw_day": m.revenue_usd_mw_day,
        "power_cost_usd_mw_day": m.power_cost_usd_mw_day,
        "opex_usd_mw_day": m.opex_usd_mw_day,
        "margin_usd_mw_day": m.margin_usd_mw_day,
        "breakeven_power_usd_mwh": m.breakeven_power_usd_mwh,
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


def print_economics(econ: Economics, console: Console | None = None) -> None:
    """Two tables: mining per MW of grid power, hosted AI per MW of critical IT."""
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
        )
    console.print(mining)
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


def _plain_table(title: str, headers: list[str]) -> Table:
    table = Table(title=title, title_justify="left", box=None, pad_edge=False, header_style="bold")
    for k, header in enumerate(headers):
        table.add_column(
            header, justify="left" if k == 0 or header == "contract" else "right", no_wrap=True
        )
    return table


def print_solve(outcome: Any, written: list[Any], console: Console | None = None) -> None:
    """The plan per site beside the baselines, then where the files went."""
    console = console or Console(highlight=False, width=None if Console().is_terminal else 110)
    s = outcome.summary
    gap = "gap unknown" if s["mip_gap"] is None else f"gap {s['mip_gap']:.2%}"
    console.print(
        escape(
            f"{s['scenario']}: {s['status']} plan ({gap}), {s['scenarios']:,} scenarios, "
            f"seed {s['seed']}, "
            f"backend {outcome.backend_note}, solver {s['solver']}"
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
            site["contract"] or "keep hashing",
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
    for name, label in (("all_mining", "all mining"), ("max_ai", "most AI the budget allows")):
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
    t = s["timings_s"]
    console.print(
        f"time: valuation {t['valuation']:.1f} s, MILP {t['milp']:.1f} s, total {t['total']:.1f} s"
    )
    console.print(escape("wrote " + ", ".join(str(p) for p in written)))
