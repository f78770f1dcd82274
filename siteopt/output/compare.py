"""whatif.html and sweep.html: the comparison commands' pages, in the style of report.html.

whatif.html shows the changes, the portfolio totals before and after, and every site's
decision and value in both plans, with links to the two full reports (base/ and changed/).
sweep.html shows the sweep's plot (a heat map for a two-way sweep), one row per point, and
each point's plan; cases.html the same for the scenario's named cases, with their changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from siteopt.app.sweep import CASE, Sweep
from siteopt.output.decisions import decision_text
from siteopt.output.files import prepare_out_dir, write_atomic
from siteopt.output.plots import mw_text, usd_m
from siteopt.output.report import _e, _img, _section, _table, page

TOTAL_LABELS = {
    "expected_npv_usd": "E[NPV]",
    "cvar_usd": "CVaR",
    "p5_npv_usd": "p5",
    "p50_npv_usd": "p50",
    "p95_npv_usd": "p95",
    "ai_it_mw_total": "AI IT [MW]",
    "mining_mw_total": "mining [MW]",
}


def _total_label(key: str) -> str:
    """A totals row's name in words (whatif.json's keys as docs/cli.md lists them)."""
    if key in TOTAL_LABELS:
        return TOTAL_LABELS[key]
    if key.startswith("equity_capex_") and key.endswith("_usd"):
        return f"equity capex {key[len('equity_capex_') : -len('_usd')]}"
    if key == "all_mining_expected_npv_usd":
        return "all mining: E[NPV]"
    if key == "max_ai_expected_npv_usd":
        return "AI by NPV per capex $ (greedy): E[NPV]"
    return key


def _money_or_mw(key: str, value: Any, *, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if key.endswith("_mw") or key.endswith("_mw_total"):
        text = mw_text(value)
        return f"+{text}" if signed and float(value) > 0 else text
    return usd_m(float(value), signed=signed)


def whatif_html(document: dict[str, Any]) -> str:
    """whatif.html from whatif.json's payload (siteopt.app.whatif.payload)."""
    changes = "".join(f"<li><code>{_e(c)}</code></li>" for c in document["changes"])
    head = (
        f"<p>{document['scenarios']:,} scenarios, seed {document['seed']}, backend "
        f"{_e(document['backend'])}; both plans solved on the same draws. Base plan "
        f"{_e(document['status']['base'])}, changed plan {_e(document['status']['changed'])}."
        f"</p><ul>{changes}</ul><p>The full reports: <a href='base/report.html'>base</a>, "
        f"<a href='changed/report.html'>changed</a> (when written).</p>"
    )
    totals = [
        [
            _total_label(key),
            _money_or_mw(key, t["base"]),
            _money_or_mw(key, t["changed"]),
            _money_or_mw(key, t["delta"], signed=True),
        ]
        for key, t in document["totals"].items()
    ]
    sites = [
        [
            str(r["site"]),
            "yes" if r["changed"] else "",
            _decision(r, "base"),
            _decision(r, "changed"),
            _money_or_mw("usd", r.get("delta_expected_npv_usd"), signed=True),
            _money_or_mw("usd", r.get("delta_cvar_usd"), signed=True),
        ]
        for r in document["sites"]
    ]
    sections = [
        _section("changes", "What changed", head),
        _section(
            "totals",
            "The portfolio, before and after",
            _table(["figure", "base", "changed", "change"], totals, numeric={1, 2, 3}),
        ),
        _section(
            "sites",
            "Every site",
            _table(
                ["site", "decision changed", "base", "changed", "E[NPV] change", "CVaR change"],
                sites,
                numeric={4, 5},
            )
            + f"<p class=caption>{document['sites_changed']} site(s) change their decision; "
            f"{document['sites_revalued']} site(s) were valued again (the change reached "
            "them), the others reused the base's valuation.</p>",
        ),
    ]
    return page(f"siteopt whatif: {document['scenario']}", sections)


def _decision(row: dict[str, Any], side: str) -> str:
    return decision_text(row, year=True, prefix=f"{side}_")


def sweep_html(result: Sweep, frame: pd.DataFrame, plans: pd.DataFrame, png: bytes) -> str:
    """sweep.html (cases.html): the plot, one row per point (sweep.csv) and each point's
    plan; for cases, what each case changes."""
    keys = result.keys
    heads = _key_heads(result)
    is_cases = result.param == CASE
    changes = {p.value: "; ".join(p.changes) or "the scenario as written" for p in result.points}
    points = [
        [
            *(str(r[k]) for k in keys),
            *([changes.get(str(r[CASE]), "")] if is_cases else []),
            str(r["status"]),
            _money_or_mw("usd", r["expected_npv_usd"]),
            _money_or_mw("usd", r["cvar_usd"]),
            _money_or_mw("ai_it_mw_total", r["ai_it_mw_total"]),
            _money_or_mw("usd", r["equity_capex_usd"]),
        ]
        for r in frame.to_dict("records")
    ]
    first = len(keys) + (1 if is_cases else 0) + 1
    plan_rows = [
        [
            *(str(r[k]) for k in keys),
            str(r["site"]),
            decision_text(r),
            _money_or_mw("usd", r.get("expected_npv_usd")),
        ]
        for r in plans.to_dict("records")
    ]
    if is_cases:
        title, alt = "The cases side by side", "Plan E[NPV], CVaR and AI MW of each case"
        caption = (
            "Each case solved on the same draws as the base case, the plan re-optimised: "
            "the differences are the cases', not sampling noise."
        )
    elif result.param2:
        title = f"The plan against {result.param} and {result.param2}"
        alt = f"Heat maps of the plan's E[NPV] and AI MW over {result.param} and {result.param2}"
        caption = (
            "Every pair of values solved on the same draws; a hatched cell has no feasible plan."
        )
    else:
        title, alt = (
            f"The plan against {result.param}",
            f"Plan E[NPV], CVaR and AI MW against {result.param}",
        )
        caption = (
            "Every point solved on the same draws, so differences between points are the "
            "parameter's, not sampling noise."
        )
    status = ["status", "E[NPV]", "CVaR", "AI IT [MW]", "equity capex"]
    sections = [
        _section(
            "sweep",
            title,
            _img(f"{'cases' if is_cases else 'sweep'}.png", png, alt)
            + f"<p class=caption>{_e(caption)}</p>",
        ),
        _section(
            "points",
            "Every case" if is_cases else "Every point",
            _table(
                [*heads, *(["changes"] if is_cases else []), *status],
                points,
                numeric=set(range(first, first + 4)),
            ),
        ),
        _section(
            "plans",
            "The plan of each case" if is_cases else "The plan at each point",
            _table([*heads, "site", "decision", "E[NPV]"], plan_rows, numeric={len(keys) + 2}),
        ),
    ]
    command = "cases" if is_cases else "sweep"
    return page(f"siteopt {command}: {result.scenario}", sections)


def _key_heads(result: Sweep) -> list[str]:
    if result.param == CASE:
        return [CASE]
    return [result.param, *([result.param2] if result.param2 else [])]


def write_whatif_html(document: dict[str, Any], out_dir: Path) -> Path:
    out = prepare_out_dir(Path(out_dir))
    return write_atomic(out / "whatif.html", whatif_html(document))


def write_sweep_html(
    result: Sweep, frame: pd.DataFrame, plans: pd.DataFrame, png: bytes, out_dir: Path
) -> Path:
    """sweep.html, or cases.html for a run of cases."""
    out = prepare_out_dir(Path(out_dir))
    name = "cases.html" if result.param == CASE else "sweep.html"
    return write_atomic(out / name, sweep_html(result, frame, plans, png))
