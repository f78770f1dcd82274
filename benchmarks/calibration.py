"""The public AI-hosting deals rebuilt in siteopt, for docs/calibration.md.

    python benchmarks/calibration.py [--scenarios 4000] [--markdown]
    python benchmarks/calibration.py --plan out/texas-portfolio [--markdown]

Each deal becomes a one-site scenario: a powered pad with no mining, 100 MW of critical
IT built from January 2027 on the deal's terms (starting rent, escalator, term, capex and
the share the tenant funds, the NOI margin), a tenant of the deal's credit, no project debt
(unlevered), and siteopt's defaults for everything after the term (renewals, successors,
re-let capex, refits, cost inflation). The horizon runs to the end of the lease; the hall
is then sold as revision 3 prices it (the reversion at 12x market NOI less the refit
reserve). siteopt's month-by-month reference gives the expected cash flows, from which this
script reads figures each compared with a public figure of the same kind:

- the contract value per MW: the expected rent over the term, undiscounted, beside the
  deal's announced value per MW (both gross, before any cost);
- the NOI margin of the first full year, beside the public 80-90% (97% triple-net);
- the gross value per MW: the PV at the unlevered 12% of the NOI and the sale, before
  capex and tax (what the hall is worth let, to a buyer who owns it);
- E[NPV] per MW: after tax and net of the landlord's capex, unlevered: the equity value a
  contracted MW adds, beside JPMorgan's $8-17M of equity value per MW (a mark of the
  miners' equity, net of what the halls cost);
- the unlevered IRR before tax of the yearly flows, with the sale at the end and without
  it (the lease alone).

A yield on cost (NOI over capex) is not among them: it is derived from the capex the
scenario assumes, so it cannot check that assumption. The public figures are in
docs/sources.md ("Hosting AI deals").

``--plan OUT`` reads a solve's summary.json instead: the NOI and yields on cost siteopt
gives for each AI site of the plan (``sites[].yield_on_cost``), for information.
"""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from siteopt.app.params import kernel_inputs
from siteopt.app.valuation import value_options
from siteopt.kernels.cashflows import expected_cashflows
from siteopt.kernels.sites import site_options
from siteopt.model.schema import Scenario


@dataclass(frozen=True)
class Deal:
    """A public lease as siteopt inputs, with the public yield it is compared with."""

    name: str
    start_rent: float  # [USD/kW-month], the starting rent (docs/sources.md)
    term_average: float  # [USD/kW-month], the public term-average rent
    term_years: int
    capex_usd_mw: float  # total capex per MW of IT [USD]
    tenant_funded_share: float
    annual_default_prob: float
    opex_usd_mw_month: float
    public_value_usd_mw: float  # the announced contract value per MW of IT [USD]


DEALS = (
    Deal("Cipher - AWS", 82.0, 102.0, 15, 9_500_000.0, 0.0, 0.01, 20_000.0, 5.5e9 / 300),
    # the rent gap to landlord-funded deals fits a tenant share of ~20-40% (docs/sources.md)
    Deal(
        "Core Scientific - CoreWeave", 102.0, 121.0, 12, 7_500_000.0, 0.3, 0.008, 20_000.0,
        8.7e9 / 500,
    ),
    Deal("TeraWulf - Fluidstack", 135.0, 154.0, 10, 9_000_000.0, 0.0, 0.01, 20_000.0, 3.7e9 / 200),
    Deal("Applied Digital PF2", 112.0, 139.0, 15, 9_500_000.0, 0.0, 0.01, 20_000.0, 5.0e9 / 200),
    # triple-net: the tenant pays nearly all operating costs (NOI margin ~97%)
    Deal(
        "Hut 8 - Fluidstack/Anthropic", 128.0, 159.0, 15, 9_500_000.0, 0.0, 0.01, 4_000.0,
        7.0e9 / 245,
    ),
)  # fmt: skip

IT_MW = 100.0
LEAD_MONTHS = 12
START_YEAR = 2027
DISCOUNT = 0.12
TAX_RATE = 0.21  # the federal rate, the schema's default
LEASE_RATE = 0.07  # near the ~6% KBW capitalised existing leases at (docs/sources.md)


def deal_scenario(
    deal: Deal, scenarios: int, tax_rate: float = 0.0, discount: float = DISCOUNT
) -> Scenario:
    """The one-site scenario of ``deal``: a powered pad leasing 100 MW of IT; income tax at
    ``tax_rate`` (0: before tax), the unlevered flows discounted at ``discount``."""
    horizon = deal.term_years + 1  # a year of build, then the whole term
    data = {
        "name": "calibration",
        "start": f"{START_YEAR}-01",
        "horizon_years": horizon,
        "discount_rate": discount,
        "simulation": {"scenarios": scenarios, "seed": 3, "risk_sample": 64},
        "power_markets": {"grid": {"price_usd_mwh": 35.0}},
        "sites": [
            {
                "name": "pad",
                "market": "grid",
                "interconnect_mw": IT_MW * 1.2,
                "power": {"ppa_mw": 0},
                "mining": {"mw": 0, "efficiency_j_th": 17.5},
                "ai": {
                    "max_it_mw": IT_MW,
                    "pue": 1.2,
                    "build_capex_usd_mw": deal.capex_usd_mw,
                    "capex_overrun_volatility": 0.0,
                    "lead_time_months": LEAD_MONTHS,
                    "delay_mean_months": 0.0,
                    "opex_usd_mw_month": deal.opex_usd_mw_month,
                },
            }
        ],
        "contracts": [
            {
                "name": "deal",
                "price_usd_kw_month": deal.start_rent,
                "escalator": 0.03,
                "term_years": deal.term_years,
                "tenant_funded_share": deal.tenant_funded_share,
                "annual_default_prob": deal.annual_default_prob,
            }
        ],
        "financing": {"debt": {"loan_to_cost": 0.0}},
        "build": {"decision_years": [START_YEAR], "ai_step_mw": IT_MW},
        "tax": {"rate": tax_rate},
    }
    return Scenario.model_validate(copy.deepcopy(data))


def irr(flows: np.ndarray) -> float:
    """The yearly rate at which ``flows`` (year 0 first) have zero PV (bisection)."""
    lo, hi = -0.99, 10.0
    pv = lambda r: float(np.sum(flows / (1.0 + r) ** np.arange(len(flows))))  # noqa: E731
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if pv(mid) > 0 else (lo, mid)
    return 0.5 * (lo + hi)


def deal_metrics(deal: Deal, scenarios: int) -> dict[str, float]:
    """siteopt's figures for one deal (see the module docstring)."""
    s = deal_scenario(deal, scenarios)
    k = kernel_inputs(s)
    option = next(o for o in site_options(k, 0) if o.contract_index is not None)
    frame = expected_cashflows(k, [option])
    lines = frame.pivot_table(index="month", columns="line_item", values="usd", sort=True)
    months = len(lines)
    term = 12 * deal.term_years
    rent = lines["ai_rent"].to_numpy()
    noi = (lines["ai_rent"] + lines["ai_opex"] + lines["ai_power"]).to_numpy()
    first_year = slice(LEAD_MONTHS + 12, LEAD_MONTHS + 24)  # the first full year of rent
    cash = lines.drop(columns=["terminal_value"]).sum(axis=1).to_numpy()
    sale = float(lines["terminal_value"].to_numpy()[-1])
    yearly = cash.reshape(months // 12, 12).sum(axis=1)
    with_sale = np.concatenate([yearly, [sale]])  # the sale a year after the last year
    df = (1.0 + DISCOUNT) ** (-np.arange(months + 1) / 12.0)
    gross = float(np.sum(df[:-1] * noi) + df[-1] * sale) / IT_MW

    def npv(discount: float) -> float:
        taxed = deal_scenario(deal, scenarios, tax_rate=TAX_RATE, discount=discount)
        table = value_options(taxed, backend="numpy").options.table
        return float(table.loc[table["option"] != "hash", "expected_npv_usd"].iloc[0]) / IT_MW

    return {
        "contract_value_usd_mw": float(rent[LEAD_MONTHS : LEAD_MONTHS + term].sum()) / IT_MW,
        "noi_margin": float(noi[first_year].sum() / rent[first_year].sum()),
        "gross_value_usd_mw": gross,
        "npv_usd_mw": npv(DISCOUNT),
        "npv_lease_rate_usd_mw": npv(LEASE_RATE),
        "irr_with_sale": irr(with_sale),
        "irr_without_sale": irr(np.concatenate([yearly, [0.0]])),
    }


def markdown(rows: list[tuple[Deal, dict[str, float]]]) -> str:
    head = (
        "| deal | starting / term-average rent | term | capex per MW (landlord) "
        "| contract value per MW: siteopt / announced | NOI margin, first year "
        "| gross value per MW (before capex, tax) | E[NPV] per MW (after tax, net of capex): "
        "at 12% / at 7% "
        "| unlevered IRR before tax: with the sale / the lease alone |\n"
        "| --- | --- | ---: | --- | --- | ---: | ---: | --- | --- |\n"
    )
    body = ""
    for deal, m in rows:
        landlord = deal.capex_usd_mw * (1.0 - deal.tenant_funded_share)
        body += (
            f"| {deal.name} | ${deal.start_rent:.0f} / ${deal.term_average:.0f} "
            f"| {deal.term_years} yr | ${deal.capex_usd_mw / 1e6:.1f}M (${landlord / 1e6:.2f}M) "
            f"| ${m['contract_value_usd_mw'] / 1e6:.1f}M / "
            f"${deal.public_value_usd_mw / 1e6:.1f}M "
            f"| {m['noi_margin']:.0%} | ${m['gross_value_usd_mw'] / 1e6:.1f}M "
            f"| ${m['npv_usd_mw'] / 1e6:.1f}M / ${m['npv_lease_rate_usd_mw'] / 1e6:.1f}M "
            f"| {m['irr_with_sale']:.1%} / {m['irr_without_sale']:.1%} |\n"
        )
    return head + body


def plan_yields(out: Path) -> pd.DataFrame:
    """NOI and yields on cost of each AI site of a solve's plan (``out``: its folder), as its
    summary.json gives them (siteopt.app.finance.yield_on_cost)."""
    summary = json.loads((out / "summary.json").read_text())
    rows = []
    for site in summary["sites"]:
        y = site["yield_on_cost"]
        if y is None:
            continue
        rows.append(
            {
                "site": site["name"],
                "contract": site["contract"],
                "ai_it_mw": site["ai_it_mw"],
                "landlord_capex_usd_mw": y["noi_average_usd_mw_year"] / y["on_landlord_cost"],
                "total_capex_usd_mw": y["noi_average_usd_mw_year"] / y["on_total_cost"],
                "noi_first_year_usd_mw": y["noi_first_year_usd_mw"],
                "noi_average_usd_mw_year": y["noi_average_usd_mw_year"],
                "yield_on_landlord_cost": y["on_landlord_cost"],
                "yield_on_total_cost": y["on_total_cost"],
            }
        )
    return pd.DataFrame(rows)


def plan_markdown(table: pd.DataFrame) -> str:
    out = (
        "| site | contract | AI IT MW | capex per MW, total (landlord) "
        "| NOI per MW-year, first year / average | yield on landlord cost (on total) |\n"
        "| --- | --- | ---: | --- | --- | --- |\n"
    )
    for r in table.to_dict("records"):
        first, average = r["noi_first_year_usd_mw"] / 1e6, r["noi_average_usd_mw_year"] / 1e6
        out += (
            f"| {r['site']} | {r['contract']} | {r['ai_it_mw']:.0f} "
            f"| ${r['total_capex_usd_mw'] / 1e6:.2f}M (${r['landlord_capex_usd_mw'] / 1e6:.2f}M) "
            f"| ${first:.2f}M / ${average:.2f}M "
            f"| {r['yield_on_landlord_cost']:.1%} ({r['yield_on_total_cost']:.1%}) |\n"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=4000)
    parser.add_argument("--markdown", action="store_true", help="print the docs table")
    parser.add_argument("--plan", type=Path, help="a solve's output folder instead")
    args = parser.parse_args()
    if args.plan:
        table = plan_yields(args.plan)
        print(plan_markdown(table) if args.markdown else table.to_string(index=False))
        return
    rows = [(deal, deal_metrics(deal, args.scenarios)) for deal in DEALS]
    if args.markdown:
        print(markdown(rows), end="")
        return
    for deal, m in rows:
        print(deal.name, {k: round(v, 4) for k, v in m.items()})


if __name__ == "__main__":
    main()
