"""``report.html``: one self-contained page a person reads, and its plots as PNG files.

The page has no external resource of any kind (no script, style sheet, font or image
fetched from anywhere): CSS sits in a ``<style>`` block and every plot is inlined as a
base64 PNG data URI whose bytes equal the PNG file written beside the page. Every string
that comes from the data is HTML-escaped. The same data gives byte-identical files.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from siteopt.kernels.sale import JV_SUFFIX, SELL
from siteopt.kernels.tranches import PLUS
from siteopt.output import plots as plots
from siteopt.output.decisions import decision_text
from siteopt.output.files import prepare_out_dir, write_atomic
from siteopt.output.plots import mw_text, usd_m

__all__ = ["ReportData", "usd_m", "write_report"]

SECTIONS = (
    "headline",
    "plan",
    "why",
    "structures",
    "deals",
    "capital",
    "returns",
    "distribution",
    "capex",
    "timeline",
    "market",
    "frontier",
    "validation",
    "alternatives",
    "staged",
    "tornado",
    "cases",
    "assumptions",
    "manifest",
)
NO_CONTRACT = "No contract is signed in the plan, so there are no contract terms to vary."


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows; the pipeline fills it (see the fields' comments)."""

    scenario: str  # scenario name, e.g. "texas-portfolio"
    command: str  # "solve" | "evaluate" | "whatif" | "sweep"
    summary: dict  # the summary.json payload (docs/cli.md's keys)
    plan: pd.DataFrame  # plan.csv's columns
    npv_samples_usd: dict[str, np.ndarray]  # "plan", "all_mining", "max_ai" [USD]
    capex_by_year_usd: dict[int, float]  # the plan's equity capex per year [USD]
    budget_by_year_usd: dict[int, float]  # capital budget per year [USD]
    budget_carry_over: bool  # unspent budget carries into later years
    timeline: pd.DataFrame  # year, ai_it_mw_online [MW], mining_eh, all_mining_eh [EH/s]
    assumptions: list[tuple[str, str, str]]  # (section, item, value with unit)
    manifest: dict[str, str]  # run manifest, key -> text
    frontier: pd.DataFrame | None = None  # risk_aversion, expected_npv_usd, cvar_usd, ...
    tornado: pd.DataFrame | None = None  # contract, term, low/high label, low/high npv
    tornado_base_npv_usd: float | None = None  # the tornado's centre line [USD]
    # BTC, hashrate and hashprice by year: months [YYYY-MM], and per name p10/p50/p90/mean
    # (siteopt.app.economics.MarketFan); None when not computed
    market_months: tuple[str, ...] = ()
    market_paths: dict | None = None
    market_scenarios: int = 0
    violations: tuple[str, ...] = ()  # constraints the evaluated plan breaks, with amounts
    warnings: tuple[str, ...] = ()  # plausibility warnings: "path: message (line N)"
    notes: tuple[str, ...] = ()  # free-text lines under the headline
    # solve with a cases: block: each case re-optimised on the same draws, base first
    # (siteopt.output.report_data.case_rows); empty when none
    cases: tuple[dict[str, Any], ...] = ()


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.0f}%"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _blank(value: object) -> str:
    """Text of a nullable cell: ``""`` for None, NA and NaN."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Collection[int] = ()
) -> str:
    """An HTML table from raw text cells (escaped here); columns ``numeric`` align right."""

    def cells(tag: str, values: Sequence[str]) -> str:
        return "".join(
            f"<{tag}{' class=num' if i in numeric else ''}>{_e(v)}</{tag}>"
            for i, v in enumerate(values)
        )

    body = "\n".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return (
        f"<table>\n<thead><tr>{cells('th', headers)}</tr></thead>\n"
        f"<tbody>\n{body}\n</tbody>\n</table>"
    )


def _img(name: str, png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(alt)}" '
        f'data-file="{_e(name)}"></figure>'
    )


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}">\n<h2>{_e(title)}</h2>\n{body}\n</section>'


def _check(data: ReportData) -> None:
    lengths = {len(v) for v in data.npv_samples_usd.values()}
    if "plan" not in data.npv_samples_usd or len(lengths) != 1 or 0 in lengths:
        raise ValueError("npv_samples_usd needs a non-empty 'plan' array, all of one length")
    for key, values in data.npv_samples_usd.items():
        if not np.all(np.isfinite(values)):
            raise ValueError(f"npv_samples_usd[{key!r}] holds a non-finite value")


def _headline(data: ReportData) -> str:
    s = data.summary
    alpha = float(s["cvar_alpha"])
    gap = "" if s.get("mip_gap") is None else f", MIP gap {s['mip_gap']:.2%}"
    solver = "" if s.get("solver") is None else f", solver {s['solver']}"
    status = (
        f"<p class=status>Command <b>{_e(data.command)}</b>, status "
        f"<b>{_e(s['status'])}</b>{_e(gap)}{_e(solver)}; {s['scenarios']:,} Monte Carlo "
        f"scenarios, seed {_e(s['seed'])}, backend {_e(s['backend'])}.</p>"
    )
    cards = [
        ("expected NPV", usd_m(s["expected_npv_usd"])),
        (f"CVaR {_pct(alpha)}", usd_m(s["cvar_usd"])),
        (
            "P5 / P50 / P95",
            " / ".join(usd_m(s[k]) for k in ("p5_npv_usd", "p50_npv_usd", "p95_npv_usd")),
        ),
        (
            "AI IT / mining",
            f"{mw_text(s['ai_it_mw_total'])} MW / {mw_text(s['mining_mw_total'])} MW",
        ),
    ]
    central = s.get("central_case")
    if central is not None:
        cards.insert(1, ("central case (one path, no noise)", usd_m(central["npv_usd"])))
        cards.insert(2, ("value of the risk", usd_m(central["value_of_risk_usd"], signed=True)))
    if s.get("deterministic"):
        cards[0] = ("NPV on the central path (deterministic)", usd_m(s["expected_npv_usd"]))
    grid = (
        "<div class=cards>"
        + "".join(
            f"<div class=card><div class=label>{_e(k)}</div><div class=value>{_e(v)}</div></div>"
            for k, v in cards
        )
        + "</div>"
    )
    parts = [_violations(data.violations), _warnings(data.warnings), status, grid, _baselines(s)]
    if data.notes:
        parts.append(
            "<ul class=notes>" + "".join(f"<li>{_e(n)}</li>" for n in data.notes) + "</ul>"
        )
    return _section(
        "headline", f"Summary: {data.scenario} ({data.command})", "\n".join(p for p in parts if p)
    )


def _warnings(warnings: Sequence[str]) -> str:
    if not warnings:
        return ""
    items = "".join(f"<li>{_e(w)}</li>" for w in warnings)
    n = len(warnings)
    return (
        f"<div class=warning role=note id=warnings><strong>{n} plausibility "
        f"warning{'s' if n != 1 else ''} (likely mistakes in the inputs; --strict makes "
        f"them errors):</strong><ul>{items}</ul></div>"
    )


def _violations(violations: Sequence[str]) -> str:
    if not violations:
        return ""
    items = "".join(f"<li><code>{_e(v)}</code></li>" for v in violations)
    return (
        f"<div class=warning role=alert><strong>This plan breaks {len(violations)} "
        f"constraint{'s' if len(violations) != 1 else ''}:</strong><ul>{items}</ul></div>"
    )


def _baselines(s: dict) -> str:
    plan_e, plan_c = float(s["expected_npv_usd"]), float(s["cvar_usd"])
    rows = [["plan", usd_m(plan_e), usd_m(plan_c), "", ""]]
    for key, label in (("all_mining", "all mining"), ("max_ai", "AI by NPV per capex $ (greedy)")):
        b = s["baselines"][key]
        if b.get("feasible") is False:
            label += " (infeasible)"
        e, c = float(b["expected_npv_usd"]), float(b["cvar_usd"])
        rows.append(
            [
                label,
                usd_m(e),
                usd_m(c),
                usd_m(plan_e - e, signed=True),
                usd_m(plan_c - c, signed=True),
            ]
        )
    alpha = _pct(float(s["cvar_alpha"]))
    return (
        "<p>The plan against the two baselines (difference: plan minus baseline):</p>\n"
        + _table(
            [
                "",
                "E[NPV]",
                f"CVaR {alpha}",
                "plan − baseline E[NPV]",
                f"plan − baseline CVaR {alpha}",
            ],
            rows,
            numeric=range(1, 5),
        )
    )


def _plan_section(data: ReportData, png: bytes) -> str:
    p = data.plan
    rows = [
        [
            str(r.site),
            mw_text(r.ai_it_mw),
            mw_text(r.mining_mw),
            _blank(r.build_year),
            _blank(r.contract),
            usd_m(r.equity_capex_usd),
            usd_m(r.debt_usd),
            usd_m(r.expected_npv_usd),
            usd_m(r.cvar_usd),
        ]
        for r in p.itertuples(index=False)
    ]
    headers = [
        "site",
        "AI IT [MW]",
        "mining [MW]",
        "build year",
        "contract",
        "equity capex",
        "debt",
        "E[NPV]",
        "CVaR",
    ]
    alt = "Per-site stacked bars: MW kept hashing and MW converted to hosted AI"
    caption = (
        "<p class=caption>Hashing in MW of grid power, AI in MW of critical IT; a blank "
        "build year means the site keeps hashing.</p>"
    )
    return _section(
        "plan",
        "Build plan",
        "\n".join(
            [
                _img("plan_sites.png", png, alt),
                caption,
                _table(headers, rows, numeric={1, 2, 3, 5, 6, 7, 8}),
            ]
        ),
    )


def _why_section(data: ReportData) -> str:
    """A reason for every site, and the constraints with their slack."""
    reasons = [
        [
            str(site["name"]),
            decision_text(site),
            str((site.get("why") or {}).get("text", "")),
        ]
        for site in data.summary["sites"]
    ]
    body = [_table(["site", "decision", "why"], reasons)]
    runner = data.summary.get("runner_up")
    if runner:
        weight = data.summary.get("risk_aversion") or 0.0
        se = runner["objective_margin_se_usd"]
        sampling = f" (standard error {usd_m(se)} on the same draws)" if se else ""
        lead = runner["objective_margin_usd"]
        where = f"{usd_m(abs(lead))} {'ahead of' if lead >= 0 else 'behind'} it"
        if weight > 0:
            margin = (
                f"The plan is {where} in the objective, E[NPV] + {weight:g} x CVaR{sampling}: "
                f"{usd_m(runner['margin_usd'], signed=True)} of E[NPV] and "
                f"{usd_m(runner['cvar_margin_usd'], signed=True)} of CVaR"
            )
        else:
            margin = f"The plan is {where}{sampling}"
        body.append(
            f"<p>The runner-up plan, the best other plan the MILP finds, has E[NPV] "
            f"{_e(usd_m(runner['expected_npv_usd']))} and CVaR {_e(usd_m(runner['cvar_usd']))}. "
            f"{_e(margin)}. It differs at {_e('; '.join(runner['changes']))}.</p>"
        )
    constraints = data.summary.get("constraints") or []
    if constraints:
        rows = [
            [
                str(c["name"]),
                _amount(c["value"], c["unit"]),
                _amount(c["limit"], c["unit"]),
                _amount(c["slack"], c["unit"]),
                "binds" if c["binding"] else "",
            ]
            for c in constraints
        ]
        body.append(
            "<p class=caption>Each constraint of the plan. A budget year binds when more of it "
            "would buy E[NPV] (below); a contract or floor when no slack is left.</p>"
        )
        body.append(_table(["constraint", "plan", "limit", "slack", ""], rows, numeric={1, 2, 3}))
    return _section("why", "Why this plan", "\n".join(body))


def _structures_section(data: ReportData) -> str:
    """Colocation beside cloud at each site that could take either (summary.json
    ``structures``)."""
    title = "Colocation or cloud"
    comparisons = data.summary.get("structures") or []
    if not comparisons:
        return _section(
            "structures",
            title,
            "<p class=empty>No site has both a colocation and an AI cloud offer: nothing to "
            "set side by side.</p>",
        )

    def years(value: float | None) -> str:
        return "not by T" if value is None else f"{value:.1f} y"

    body = []
    for c in comparisons:
        kinds = (c["colocation"], c["cloud"])
        rows = [
            ["option", *(f"{mw_text(k['ai_it_mw'])} MW {k['contract']} {k['build_year']}"
                         for k in kinds)],
            ["in the plan", *("yes" if k["chosen"] else "" for k in kinds)],
            ["hall capex", *(usd_m(k["hall_capex_usd"]) for k in kinds)],
            ["GPU capex", *(usd_m(k["gpu_capex_usd"]) for k in kinds)],
            ["equity capex (the budgets')", *(usd_m(k["equity_capex_usd"]) for k in kinds)],
            ["AI revenue over the horizon", *(usd_m(k["revenue_usd"]) for k in kinds)],
            ["margin after opex, power and operations",
             *("" if k["margin"] is None else _pct(k["margin"]) for k in kinds)],
            ["payback from construction start", *(years(k["payback_years"]) for k in kinds)],
            ["E[NPV] of the site", *(usd_m(k["expected_npv_usd"]) for k in kinds)],
            ["CVaR of the site", *(usd_m(k["cvar_usd"]) for k in kinds)],
        ]  # fmt: skip
        drivers = [[name, usd_m(value, signed=True)] for name, value in c["drivers_usd"].items()]
        body += [
            f"<h3>{_e(c['site'])}</h3>",
            f"<p>{_e(c['text'])}.</p>",
            _table(["", "colocation", "cloud"], rows, numeric={1, 2}),
            _table(["PV, cloud less colocation", ""], drivers, numeric={1}),
        ]
    body.append(
        "<p class=caption>The best option of each kind at the site by E[NPV], any MW and "
        "build year, on the same draws. Figures from the expected cash flows: revenue and "
        "margin undiscounted over the horizon, payback on the AI side's pre-tax cash after "
        "debt service. The differences are PVs at the discount rate by group of "
        "cashflows.csv's lines; the debt, at its own rate, and the tax its interest saves "
        "are the rest of E[NPV].</p>"
    )
    return _section("structures", title, "\n".join(body))


def _deals_section(data: ReportData) -> str:
    """Sell, share or keep at each site a buyer or partner made an offer for (summary.json
    ``deals``)."""
    title = "Sell, share or keep"
    comparisons = data.summary.get("deals") or []
    if not comparisons:
        return _section(
            "deals",
            title,
            "<p class=empty>No site has a buyer's or a partner's offer (<code>sites[].sale"
            "</code>): nothing to set side by side.</p>",
        )
    names = {"keep": "keep hashing", "sell": "sell", "alone": "convert alone",
             "jv": "joint venture"}  # fmt: skip
    body = []
    for c in comparisons:
        rows = [
            [
                names[d["deal"]],
                _option_text(d["option"]),
                usd_m(d["expected_npv_usd"]),
                usd_m(d["cvar_usd"]),
                usd_m(d["equity_capex_usd"]),
                "yes" if d["chosen"] else "",
            ]
            for d in c["deals"]
        ]
        body += [
            f"<h3>{_e(c['site'])}</h3>",
            f"<p>{_e(c['text'])}.</p>",
            _table(
                ["deal", "option", "E[NPV] of the site", "CVaR", "equity capex", "in the plan"],
                rows,
                numeric={2, 3, 4},
            ),
        ]
    body.append(
        "<p class=caption>Each deal's best option at the site by E[NPV], on the same draws. "
        "A sale's equity capex is minus its expected proceeds after the gain's tax, which "
        "fund the budget of the year it closes; a joint venture's is the miner's share.</p>"
    )
    return _section("deals", title, "\n".join(body))


def _capital_section(data: ReportData) -> str:
    """What $10M more in each budget year buys: the MILP solved again on the same draws."""
    values = data.summary.get("capital_value") or []
    if not values:
        return _section(
            "capital",
            "What more capital buys",
            "<p class=empty>Not computed for this run (a solve computes it; a fixed plan, "
            "what-if or sweep does not).</p>",
        )
    weight = data.summary.get("risk_aversion") or 0.0
    heads = ["budget year", "more equity", "E[NPV] gained", "plan changes"]
    if weight > 0:
        heads[2:2] = ["objective gained"]
        heads[4:4] = ["CVaR gained"]
    rows = []
    for v in values:
        row = [
            str(v["year"]),
            usd_m(v["extra_usd"], signed=True),
            usd_m(v["expected_npv_gain_usd"], signed=True),
            "; ".join(v["changes"]) or "the plan stays the same",
        ]
        if weight > 0:
            row[2:2] = [usd_m(v["objective_gain_usd"], signed=True)]
            cvar = v["cvar_gain_usd"]
            row[4:4] = ["" if cvar is None else usd_m(cvar, signed=True)]
        rows.append(row)
    objective = (
        f"the objective (E[NPV] + {weight:g} x CVaR over the risk sample) gained, with its "
        "E[NPV] and CVaR beside"
        if weight > 0
        else "the E[NPV] gained"
    )
    caption = (
        "<p class=caption>The build plan solved again on the same draws with more equity in "
        f"one budget year (with carry-over, every later year gains it too); {objective}, and "
        "the sites whose option changes.</p>"
    )
    numeric = set(range(1, len(heads) - 1))
    return _section(
        "capital", "What more capital buys", _table(heads, rows, numeric=numeric) + caption
    )


def _alternatives_section(data: ReportData) -> str:
    """The plan beside its near-optimal alternatives (summary.json ``alternatives``)."""
    title = "Near-optimal alternatives"
    alts = data.summary.get("alternatives") or []
    if not alts:
        return _section(
            "alternatives",
            title,
            "<p class=empty>Not asked for: <code>siteopt solve --alternatives N</code> finds "
            "N plans within 1% (<code>--within</code>) of this plan's E[NPV], each as "
            "different from it as the constraints allow.</p>",
        )
    base = alts[0]["expected_npv_usd"]
    summary_rows = [
        [
            "the plan" if a["alternative"] == 0 else str(a["alternative"]),
            usd_m(a["expected_npv_usd"]),
            usd_m(a["expected_npv_usd"] - base, signed=True) if a["alternative"] else "",
            usd_m(a["cvar_usd"]),
            str(a["distance"]),
            mw_text(a.get("distance_mw", 0.0)),
        ]
        for a in alts
    ]
    heads = ["alternative", "E[NPV]", "vs the plan", "CVaR", "sites that differ", "MW apart"]
    # site by site: the plan's decision, then each alternative's where it differs
    sites = [str(s["name"]) for s in data.summary["sites"]]
    plan = {str(s["name"]): decision_text(s, year=True) for s in data.summary["sites"]}
    changed = [dict(c.split(": ", 1) for c in a["changes"]) for a in alts[1:]]
    grid = [[site, plan[site], *(_option_text(c.get(site, "")) for c in changed)] for site in sites]
    caption = (
        "<p class=caption>Each alternative is as far as it can be from the plan and from the "
        "alternatives before it (by default in AI MW per contract and per build year, "
        "<code>--differ-by totals</code>; or in sites changed, <code>--differ-by sites</code>), "
        "under every constraint, with its E[NPV] within the share asked of the plan's; valued "
        "on the same draws. MW apart: the AI MW by contract and by build year that differ from "
        "the plan's, summed. A blank cell: as in the plan. alternatives.csv has every site of "
        "each.</p>"
    )
    return _section(
        "alternatives",
        title,
        _table(heads, summary_rows, numeric={1, 2, 3, 4, 5})
        + _table(["site", "the plan", *(f"alternative {k}" for k in range(1, len(alts)))], grid)
        + caption,
    )


def _validation_section(data: ReportData) -> str:
    """The plan and the risk-neutral plan on fresh draws (summary.json ``validation``), and
    the optimality gap of ``--validate``."""
    title = "Out of sample: fresh draws"
    v = data.summary.get("validation")
    if not v:
        return _section(
            "validation",
            title,
            "<p class=empty>Not computed: a solve with a CVaR weight or floor values its plan "
            "and the risk-neutral plan on fresh draws; <code>siteopt solve --validate R</code> "
            "also bounds the plan's optimality gap.</p>",
        )

    def cell(figures: dict, key: str) -> str:
        se = figures[f"{key}_se_usd"]
        return usd_m(figures[f"{key}_usd"]) + (f" ± {usd_m(se)}" if se else "")

    p, r = v["plan"], v["risk_neutral"]
    rows = [["this plan", cell(p, "expected_npv"), cell(p, "cvar")]]
    if not v["same_plan"]:
        rows.append(["risk-neutral plan", cell(r, "expected_npv"), cell(r, "cvar")])
    alpha = f"CVaR{100 * v['cvar_alpha']:g}"
    intro = (
        f"<p class=caption>{v['scenarios']:,} scenarios drawn with seed {v['seed']}, independent "
        "of the draws the plan was chosen on (± one standard error). "
        f"<code>siteopt evaluate --seed {v['seed']}</code> gives the same figures.</p>"
    )
    body = intro + _table(["plan", "E[NPV]", alpha], rows, numeric={1, 2})
    if v["same_plan"]:
        body += "<p>The risk term leaves the plan as it is: it is the risk-neutral plan.</p>"
    elif v["dominated"]:
        body += (
            "<p class=warning>On fresh draws the risk-averse plan is dominated: the risk-neutral "
            f"plan has both the higher E[NPV] ({_e(usd_m(r['expected_npv_usd']))} against "
            f"{_e(usd_m(p['expected_npv_usd']))}) and the higher {alpha} "
            f"({_e(usd_m(r['cvar_usd']))} against {_e(usd_m(p['cvar_usd']))}). The CVaR the "
            "plan was fitted to does not hold out of sample; raise simulation.risk_sample or "
            "revisit the weight or floor.</p>"
        )
    else:
        npv = p["expected_npv_usd"] - r["expected_npv_usd"]
        cvar = p["cvar_usd"] - r["cvar_usd"]
        body += (
            f"<p>On fresh draws, against the risk-neutral plan, the plan has "
            f"{_e(usd_m(npv, signed=True))} of E[NPV] and {_e(usd_m(cvar, signed=True))} of "
            f"{alpha}.</p>"
        )
    gap = v.get("optimality_gap")
    if gap:
        upper = gap["upper_usd"]
        body += (
            f"<p>Optimality gap (Mak-Morton-Wood, {gap['replications']} replications of "
            f"{gap['scenarios']:,} scenarios): {_e(usd_m(gap['mean_usd']))} on average"
            + (
                f", at most {_e(usd_m(upper))} with {100 * gap['confidence']:g}% confidence"
                if upper is not None
                else ""
            )
            + ". It is in the objective's terms (E[NPV] plus the risk weight times the CVaR) "
            "and bounds what a better plan could add on the true distribution.</p>"
        )
    return _section("validation", title, body)


def _staged_section(data: ReportData) -> str:
    """The wait-and-see policy (summary.json ``staged``): what is signed now, what each
    later market state builds, in words, and the value of waiting in and out of sample."""
    title = "Waiting: the staged plan"
    st = data.summary.get("staged")
    if not st:
        return _section(
            "staged",
            title,
            "<p class=empty>Not asked for: <code>siteopt solve --staged</code> decides each "
            "later decision year's conversions after seeing that year's market (hashprice), "
            "and says what keeping those decisions open is worth.</p>",
        )
    now = [f for f in st["first_stage"] if f["option"] != "hash"]  # a sale too
    signed = "; ".join(f"{f['site']}: {f['action']}" for f in now)
    words = st["policy_words"] or ["nothing is converted in any later state"]
    value_rows = []
    for key, label in (("in_sample", "in sample"), ("out_of_sample", "fresh draws")):
        values = st[key]
        value_rows.append(
            [
                label,
                usd_m(values["staged"]["expected_npv_usd"]),
                usd_m(values["static"]["expected_npv_usd"]),
                usd_m(st["value_of_waiting"][key]["expected_npv_usd"], signed=True),
                usd_m(values["staged"]["cvar_usd"]),
                usd_m(values["static"]["cvar_usd"]),
                usd_m(st["value_of_waiting"][key]["cvar_usd"], signed=True),
            ]
        )
    heads = [
        "draws",
        "staged E[NPV]",
        "static E[NPV]",
        "waiting",
        "staged CVaR",
        "static CVaR",
        "waiting",
    ]
    states = [
        [
            x["state"],
            str(x["decision_year"]),
            x["rule"],
            _pct(x["probability"]),
            f"${x['hashprice_p50_usd_ph_day']:,.2f}",
            f"${x['btc_p50_usd']:,.0f}",
        ]
        for x in st["states"][1:]
    ]
    differs = st["states_differing_from_static"]
    verdict = (
        "The scenario has one decision year (build.decision_years), so nothing is decided "
        "later: the staged plan is the static plan."
        if not states
        else f"In every one of the {len(states)} later states the policy builds what the static "
        "plan builds: no market state seen by then changes the decision, so waiting is worth "
        "nothing here beyond sampling noise. That is a finding, not a fault: it says the "
        "static plan's later builds are robust to what the market does before them."
        if differs == 0
        else f"The policy departs from the static plan in {differs} of the {len(states)} "
        "later states; the value of waiting is what those departures are worth."
    )
    body = (
        "<p><b>Signed now:</b> "
        + _e(signed or "nothing; every site keeps hashing for now")
        + "</p><p>Then, as the market turns out:</p>"
    )
    body += "<ul>" + "".join(f"<li>{_e(w)}</li>" for w in words) + "</ul>"
    body += _table(heads, value_rows, numeric={1, 2, 3, 4, 5, 6})
    by_stage = (st.get("cvar_by_stage") or {}).get("out_of_sample")
    if by_stage:
        stage_rows = [
            [str(a["year"]), usd_m(a["cvar_usd"]), usd_m(b["cvar_usd"])]
            for a, b in zip(by_stage["staged"], by_stage["static"], strict=True)
        ]
        body += (
            "<p class=caption>CVaR by decision stage, on fresh draws: at each later decision "
            "year, the CVaR of the state's mean NPV (how bad the plan's value can look when "
            "that decision is taken); at the horizon, the NPV's own.</p>"
            + _table(["stage", "staged CVaR", "static CVaR"], stage_rows, numeric={1, 2})
        )
    for note in st.get("notes", []):
        body += f"<p class=warning>{_e(note)}</p>"
    milp = st["milp"]
    if milp["status"] != "optimal":
        gap = "unknown" if milp["mip_gap"] is None else f"{100 * milp['mip_gap']:.2f}%"
        body += (
            f"<p class=warning>The staged MILP stopped at the time limit: the policy is the best "
            f"found, within {_e(gap)} of the best possible.</p>"
        )
    body += (
        f"<p>{_e(verdict)}</p><p class=caption>States: every state splits into up to "
        f"{st['clusters']} equally likely hashprice bins at each later decision year, seen "
        "in the December before (hashprice carries what the BTC price and the network "
        "hashrate say about later mining; power prices are drawn month by month and tell "
        "nothing about later years). In sample: the draws the states and the policy were "
        f"chosen on, which overstate what flexibility is worth; fresh draws: seed "
        f"{st['fresh_seed']}, each scenario put in its state by the same bins. "
        "policy.csv has every site's action in every state.</p>"
    )
    body += _table(
        ["state", "year", "seen as", "share", "hashprice p50", "BTC p50"], states, numeric={3, 4, 5}
    )
    return _section("staged", title, body)


def _option_text(label: str) -> str:
    """``ai80-2028-hyperscaler-a`` as ``80 MW hyperscaler-a 2028``; ``hash`` as keep hashing."""
    if not label:
        return ""
    if label == "hash":
        return "keep hashing"
    if label == SELL:
        return "sell the site"
    if PLUS in label:  # a phased site: each tranche
        return " + ".join(_option_text(part) for part in label.split(PLUS))
    size, year, contract = label.split("-", 2)
    if contract.endswith(JV_SUFFIX):
        return f"{size.removeprefix('ai')} MW {contract.removesuffix(JV_SUFFIX)} {year} in a JV"
    return f"{size.removeprefix('ai')} MW {contract} {year}"


def _cases_section(data: ReportData) -> str:
    """The scenario's named cases beside the base plan, each re-optimised on the same draws."""
    title = "Cases, each plan re-optimised"
    if not data.cases:
        return _section(
            "cases",
            title,
            "<p class=empty>The scenario has no cases: block (a solve shows its cases here; "
            "docs/scenario.md, <code>cases</code>).</p>",
        )
    base = data.cases[0].get("expected_npv_usd")
    rows = []
    for c in data.cases:
        ok = c["status"] != "infeasible"
        npv = c.get("expected_npv_usd")
        rows.append(
            [
                str(c["case"]),
                "; ".join(c["changes"]) or "the scenario as written",
                usd_m(npv) if ok else "infeasible",
                usd_m(npv - base, signed=True) if ok and base is not None else "",
                usd_m(c["cvar_usd"]) if ok else "",
                mw_text(c["ai_it_mw_total"]) if ok else "",
                ("; ".join(c["plan_changes"]) or "the same plan") if ok else "",
            ]
        )
    caption = (
        "<p class=caption>Each case is the scenario with the changes shown, solved again on "
        "the same draws: the build plan is re-optimised for it (the tornado above holds the "
        "plan fixed). <code>siteopt cases</code> writes the same as cases.csv with each "
        "case's plan.</p>"
    )
    headers = ["case", "changes", "E[NPV]", "vs base", "CVaR", "AI IT [MW]", "plan changes"]
    return _section("cases", title, _table(headers, rows, numeric={2, 3, 4, 5}) + caption)


def _returns_section(data: ReportData) -> str:
    """Each conversion's returns over hashing, and the plan's (summary.json ``returns``)."""
    title = "Returns over hashing"
    converted = [site for site in data.summary["sites"] if site.get("returns")]
    if not converted:
        return _section(
            "returns", title, "<p class=empty>No site converts: nothing to compare.</p>"
        )

    def rate(value: float | None) -> str:
        return "" if value is None else f"{value * 100:.1f}%"

    def row(name: str, decision: str, r: dict, yields: dict | None) -> list[str]:
        dscr = r["min_dscr"]
        return [
            name,
            decision,
            rate(r["equity_irr"]),
            rate(r["unlevered_irr"]),
            "" if r["equity_multiple"] is None else f"{r['equity_multiple']:.1f}x",
            ""
            if r["payback_year"] is None
            else f"{r['payback_year']} ({r['payback_years']:.1f} y)",
            "" if dscr is None else f"{dscr:.2f} ({r.get('min_dscr_from') or r['min_dscr_year']})",
            "" if r.get("stabilised_dscr") is None else f"{r['stabilised_dscr']:.2f}",
            usd_m(r["refinancing_paydown_usd"]) if r.get("refinancing_paydown_usd") else "",
            rate((yields or {}).get("on_total_cost")),
        ]

    rows = [
        row(
            str(s["name"]),
            f"{mw_text(s['ai_it_mw'])} MW {s['contract']} {s['build_year']}",
            s["returns"],
            s.get("yield_on_cost"),
        )
        for s in converted
    ]
    if data.summary.get("returns"):
        rows.append(row("plan", "every conversion", data.summary["returns"], None))
    headers = [
        "site",
        "conversion",
        "equity IRR",
        "unlevered IRR",
        "equity multiple",
        "payback",
        "min DSCR (loan year from)",
        "stabilised DSCR",
        "equity repays at refinancing",
        "yield on cost",
    ]
    caption = (
        "<p class=caption>On expected cash flows: each conversion less the same site kept "
        "hashing on the same draws, so the mining it gives up counts against it. Payback: "
        "the year from which the cumulative equity flow stays positive without the terminal "
        "value. Min DSCR: the lowest hall NOI over debt service in a loan year (12 months "
        "from the first rent, then each next 12); stabilised: the 12 months from the end of "
        "the rent ramp. Equity repays at refinancing: the part of a bullet no lender "
        "refinances. Yield on cost: average NOI over the hall's total capex. All after tax. "
        "annual.csv has the cash flows by year; proforma.xlsx has them as a model with "
        "formulas.</p>"
    )
    numeric = {2, 3, 4, 5, 6, 7, 8, 9}
    return _section("returns", title, _table(headers, rows, numeric=numeric) + caption)


def _amount(value: float, unit: str) -> str:
    if unit == "USD":
        return usd_m(value)
    if unit == "MW":
        return f"{mw_text(value)} MW"
    return f"{value:,.2f} {unit}"


def _market_section(data: ReportData, png: bytes | None) -> str:
    if png is None or not data.market_paths:
        return _section("market", "Market paths", "<p class=empty>Not computed for this run.</p>")
    btc = data.market_paths["btc_usd"]
    first, last = data.market_months[0], data.market_months[-1]
    caption = (
        f"<p class=caption>{data.market_scenarios:,} of the run's scenarios, at each year's "
        f"end, log scale. The median BTC price goes from ${btc['p50'][0]:,.0f} ({first}) to "
        f"${btc['p50'][-1]:,.0f} ({last}) while the mean goes from ${btc['mean'][0]:,.0f} to "
        f"${btc['mean'][-1]:,.0f}: the median follows the forward or market.btc_drift "
        "(omitted: flat), and with a high volatility the mean rises far above it. The network "
        "hashrate moves toward the hashrate at which the marginal fleet breaks even; halvings "
        "cut the hashprice.</p>"
    )
    alt = "BTC price, network hashrate and hashprice by year: p10-p90 band, median and mean"
    return _section("market", "Market paths", _img("market_paths.png", png, alt) + caption)


def _frontier_section(frontier: pd.DataFrame, png: bytes) -> str:
    f = frontier.sort_values("cvar_usd", kind="stable")
    rows = [
        [
            f"{float(r.weight):.3g}",
            usd_m(r.expected_npv_usd),
            usd_m(r.cvar_usd),
            mw_text(r.ai_it_mw_total),
            "reported" if bool(r.chosen) else "",
        ]
        for r in f.itertuples(index=False)
    ]
    table = _table(["w", "E[NPV]", "CVaR", "AI IT [MW]", "plan"], rows, numeric=range(4))
    table += (
        "<p class=caption>Each point maximises w E[NPV] + (1 - w) CVaR over the risk sample "
        "(w = 1: risk neutral; w = 0: the best CVaR, then the best E[NPV] within the MIP gap "
        "of it); both figures are over every scenario.</p>"
    )
    alt = "Risk-return frontier: expected NPV against CVaR, the reported plan highlighted"
    return _section("frontier", "Risk-return frontier", _img("frontier.png", png, alt) + table)


def _tornado_section(data: ReportData, png: bytes | None) -> str:
    t = data.tornado
    if png is None or t is None:
        return _section("tornado", "Sensitivities", f"<p class=empty>{_e(NO_CONTRACT)}</p>")
    rows = [
        [
            str(r.contract),
            str(r.term),
            str(r.low_label),
            usd_m(r.low_npv_usd),
            str(r.high_label),
            usd_m(r.high_npv_usd),
        ]
        for r in t.itertuples(index=False)
    ]
    table = _table(
        ["contract", "term", "low", "E[NPV] at low", "high", "E[NPV] at high"],
        rows,
        numeric=range(2, 6),
    )
    alt = (
        "Tornado chart: plan expected NPV with each contract term, exit multiple and market, "
        "cost and finance assumption at its low and high value"
    )
    caption = (
        "<p class=caption>The plan held fixed and valued again on the same draws with one "
        "assumption moved: each signed contract's terms, the exit multiples, BTC (price "
        "halved or +50%, drift), hashrate growth, power prices, AI capex and its overrun, "
        "and the discount rate. A bar is what this plan is worth if the assumption is wrong, "
        "not what a plan re-optimised for it would be worth.</p>"
    )
    return _section(
        "tornado",
        "Sensitivities: contract terms, market, costs",
        _img("tornado.png", png, alt) + caption + table,
    )


def _assumptions(rows: Sequence[tuple[str, str, str]]) -> str:
    groups: dict[str, list[tuple[str, str]]] = {}
    for section, item, value in rows:
        groups.setdefault(section, []).append((item, value))
    body = "\n".join(
        f'<tr class=group><th colspan="2">{_e(section)}</th></tr>\n'
        + "\n".join(f"<tr><td>{_e(i)}</td><td class=num>{_e(v)}</td></tr>" for i, v in items)
        for section, items in groups.items()
    )
    table = f"<table>\n<tbody>\n{body}\n</tbody>\n</table>" if rows else "<p>None recorded.</p>"
    return _section("assumptions", "Assumptions", table)


def _manifest(manifest: dict[str, str]) -> str:
    body = "\n".join(
        f"<tr><th>{_e(k)}</th><td><code>{_e(v)}</code></td></tr>" for k, v in manifest.items()
    )
    return _section(
        "manifest", "Run manifest", f"<table class=manifest>\n<tbody>\n{body}\n</tbody>\n</table>"
    )


def _figures(data: ReportData) -> dict[str, bytes]:
    """Every plot the data allows, by file name, in page order."""
    p, s = data.plan, data.summary
    figs = {
        "plan_sites.png": plots.plan_sites_png(
            [str(x) for x in p["site"]],
            p["mining_mw"].to_numpy(dtype=float),
            p["ai_it_mw"].to_numpy(dtype=float),
        )
    }
    samples = {
        k: data.npv_samples_usd[k]
        for k in ("plan", "all_mining", "max_ai")
        if k in data.npv_samples_usd
    }
    figs["npv_distribution.png"] = plots.npv_distribution_png(
        samples, float(s["cvar_alpha"]), float(s["cvar_usd"])
    )
    figs["capex.png"] = plots.capex_png(
        data.capex_by_year_usd, data.budget_by_year_usd, data.budget_carry_over
    )
    if len(data.timeline):
        figs["timeline.png"] = plots.timeline_png(data.timeline)
    if data.market_paths:
        figs["market_paths.png"] = plots.market_paths_png(
            list(data.market_months), data.market_paths
        )
    if data.frontier is not None and len(data.frontier):
        figs["frontier.png"] = plots.frontier_png(data.frontier)
    if data.tornado is not None and len(data.tornado):
        base = data.tornado_base_npv_usd
        figs["tornado.png"] = plots.tornado_png(
            data.tornado, float(s["expected_npv_usd"] if base is None else base)
        )
    return figs


def _body(data: ReportData, figs: dict[str, bytes]) -> list[str]:
    alpha = _pct(float(data.summary["cvar_alpha"]))
    dist_alt = "NPV distribution of the plan against the all-mining and max-AI baselines"
    timeline = (
        _img(
            "timeline.png",
            figs["timeline.png"],
            "AI MW online and hashrate (plan and all mining) by year",
        )
        if "timeline.png" in figs
        else "<p class=empty>No years in the timeline.</p>"
    )
    out = [
        _headline(data),
        _plan_section(data, figs["plan_sites.png"]),
        _why_section(data),
        _structures_section(data),
        _deals_section(data),
        _capital_section(data),
        _returns_section(data),
        _section(
            "distribution",
            "NPV distribution",
            _img("npv_distribution.png", figs["npv_distribution.png"], dist_alt)
            + f"<p class=caption>Shared bins; dashed lines at each mean; the shaded band is "
            f"the plan's tail whose mean is its CVaR {alpha}.</p>",
        ),
        _section(
            "capex",
            "Capital spending",
            _img("capex.png", figs["capex.png"], "Equity capex by year against the capital budget")
            + (
                "<p class=caption>Unspent budget carries over: the test is cumulative capex "
                "against cumulative budget.</p>"
                if data.budget_carry_over
                else ""
            ),
        ),
        _section("timeline", "AI MW and hashrate over time", timeline),
        _market_section(data, figs.get("market_paths.png")),
    ]
    if "frontier.png" in figs and data.frontier is not None:
        out.append(_frontier_section(data.frontier, figs["frontier.png"]))
    out += [
        _validation_section(data),
        _alternatives_section(data),
        _staged_section(data),
        _tornado_section(data, figs.get("tornado.png")),
        _cases_section(data),
        _assumptions(data.assumptions),
        _manifest(data.manifest),
    ]
    return out


_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
  color: #1d2330; max-width: 62rem; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.6rem; margin: 0.5rem 0 0.2rem; }
h2 { font-size: 1.25rem; border-bottom: 2px solid #d9dee7; padding-bottom: 0.2rem;
  margin-top: 2rem; }
section { break-inside: avoid-page; }
figure { margin: 0.8rem 0; }
img { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #e3e6ec; padding: 0.25rem 0.6rem; text-align: left;
  vertical-align: top; }
thead th { background: #f2f4f8; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.group th { background: #eef1f6; padding-top: 0.5rem; }
table.manifest code { white-space: pre-wrap; word-break: break-all; }
.cards { display: flex; flex-wrap: wrap; gap: 0.6rem; margin: 0.8rem 0; }
.card { border: 1px solid #d9dee7; border-radius: 6px; padding: 0.5rem 0.8rem; }
.card .label { font-size: 0.8rem; color: #5a6272; }
.card .value { font-size: 1.15rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.warning { border: 2px solid #b3261e; background: #fdecea; color: #6b0f0a;
  border-radius: 6px; padding: 0.6rem 1rem; margin: 0.8rem 0; }
.caption, .empty { color: #5a6272; font-size: 0.9rem; }
@media print { body { max-width: none; font-size: 11pt; } h2 { break-after: avoid; } }
"""


def render_html(data: ReportData, figs: dict[str, bytes]) -> str:
    """The page as text, given the PNG bytes by file name (from ``_figures``)."""
    return page(f"siteopt {data.command}: {data.scenario}", _body(data, figs))


def page(title: str, sections: Sequence[str]) -> str:
    """A self-contained HTML page in the report's style around ``sections``."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            f"<header><h1>{_e(title)}</h1></header>",
            "<main>",
            *sections,
            "</main>",
            "</body>",
            "</html>",
            "",
        ]
    )


def write_report(data: ReportData, out_dir: Path) -> list[Path]:
    """Write ``report.html`` and each plot as a PNG beside it.

    The PNGs are written first, so the page never names a file that is not there yet.

    Parameters
    ----------
    data : ReportData
    out_dir : pathlib.Path
        Output folder, created if missing.

    Returns
    -------
    list of pathlib.Path
        The files written: the PNGs in page order, then ``report.html``.
    """
    _check(data)
    out = prepare_out_dir(Path(out_dir))
    figs = _figures(data)
    paths = [write_atomic(out / name, png) for name, png in figs.items()]
    paths.append(write_atomic(out / "report.html", render_html(data, figs)))
    return paths
