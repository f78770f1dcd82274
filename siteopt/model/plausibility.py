"""Plausibility warnings: values that validate but are likely mistakes.

A warning is not an error: the run goes on, the warning is printed to standard error
as ``warning: FILE:LINE: field.path: message``, kept in summary.json under ``warnings``
and shown on report.html. ``--strict`` turns every warning into exit 2.

Four kinds, each with a ``code``:

``unit_slip``
    a number far outside any public figure in the direction of a unit mistake: a
    yearly budget written in USD millions, capex in USD millions per MW, rent per MW
    instead of per kW, a price per kWh instead of per MWh, ...
``contract_unsignable``
    a contract no plan can sign, with the reason: its minimum above what its eligible
    sites can host, no eligible site, an ``online_by`` earlier than any lead time
    allows, or a minimum whose cheapest equity capex exceeds the whole budget (checked in
    :mod:`siteopt.app.checks`, which knows the options a site offers)
``halving_missing``
    the horizon passes a Bitcoin halving that ``market.halving_months`` does not list
``few_scenarios``
    fewer than :data:`MIN_SCENARIOS` Monte Carlo scenarios; after a run the warning
    carries the standard error of the plan's expected NPV
``landlord_yield``
    a contract whose rent and tenant-funded share give the landlord a yield on its own
    capex above :data:`MAX_LANDLORD_YIELD` at one of its sites: public deals pair a tenant
    share with the rent cut it buys (docs/calibration.md)
``contract_value``
    a contract given both a price and a stated value (``contract_value_usd``) that the
    price does not earn over its first term at ``max_mw`` (within 0.5%): the price is used
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from siteopt.model.contract_value import value_from_price
from siteopt.model.generator import site_market
from siteopt.model.schema import Scenario, generated_halvings, year_month_index
from siteopt.model.source import PathKey, closest_line, under_any

MIN_SCENARIOS = 1_000
MAX_LANDLORD_YIELD = 0.30  # public halls yield ~10-20% on their cost (docs/calibration.md)
HOURS_PER_MONTH = 730.0
HALVING_MATCH_MONTHS = 12  # a listed halving this close to the expected one counts as it


@dataclass(frozen=True)
class Finding:
    """One likely mistake: where it is and what it looks like.

    Attributes
    ----------
    code : str
        ``unit_slip``, ``contract_unsignable``, ``halving_missing``, ``few_scenarios`` or
        ``landlord_yield``.
    loc : tuple
        The data path (``("sites", 0, "ai", "build_capex_usd_mw")``), list items by index.
    message : str
    """

    code: str
    loc: PathKey
    message: str


def plausibility_findings(scenario: Scenario) -> list[Finding]:
    """The warnings that read the scenario alone (run settings applied); contracts that
    can never be signed need the option table's rules: :mod:`siteopt.app.checks`."""
    return [
        *unit_slips(scenario),
        *missing_halvings(scenario),
        *few_scenarios(scenario),
        *landlord_yields(scenario),
        *contract_values(scenario),
    ]


# ------------------------------------------------------------------- unit slips


@dataclass(frozen=True)
class _Range:
    """Plausible values of one field; ``low``/``high`` None for no bound on that side."""

    low: float | None
    high: float | None
    below: str  # what a value under ``low`` looks like
    above: str = ""


_USD_M = "looks like USD millions"
_PLAUSIBLE = {
    "capital_budget": _Range(1e6, None, f"a yearly budget under $1M {_USD_M}; $80M is 80000000"),
    "capex": _Range(
        1e5,
        1e8,
        f"capex under $100k per MW {_USD_M} per MW; $9.5M/MW is 9500000",
        "capex above $100M per MW is ten times any public figure ($8-11M per MW of IT)",
    ),
    "rent": _Range(
        10.0,
        1_000.0,
        "rent under $10 per kW-month; public rents are $80-160 (per kW, not MW)",
        "rent above $1,000 per kW-month looks like USD per MW-month or per year; "
        "public rents are $80-160 per kW-month",
    ),
    "interconnect": _Range(
        None,
        5_000.0,
        "",
        "an interconnect above 5,000 MW is larger than any single site "
        "(the largest campuses are ~1-2 GW); written in kW?",
    ),
    "power_price": _Range(1.0, None, "a price under $1/MWh looks like USD per kWh"),
    "btc_price": _Range(1_000.0, None, "a BTC price under $1,000 looks like thousands of USD"),
    "hashrate": _Range(
        10.0,
        100_000.0,
        "network hashrate under 10 EH/s looks like ZH/s (1 ZH/s = 1,000 EH/s)",
        "network hashrate above 100,000 EH/s looks like PH/s",
    ),
    "opex": _Range(100.0, None, "opex under $100 per MW-month looks like thousands of USD"),
    "asic_cost": _Range(
        None,
        200.0,
        "",
        "ASIC price above $200/TH is above any public price ($15-26/TH in "
        "2025, ~$100/TH at the 2021 peak); USD per PH?",
    ),
    "efficiency": _Range(
        5.0,
        None,
        "fleet efficiency under 5 J/TH is better than any ASIC shipping (~9.5 J/TH in 2026)",
    ),
    "lead_time": _Range(
        6.0,
        None,
        "a lead time under 6 months looks like years; public "
        "first rents come 8-14 months after signing, 18+ greenfield",
    ),
    "term": _Range(
        None,
        30.0,
        "",
        "a lease term above 30 years looks like months; public terms are 10-15 years",
    ),
    "discount_rate": _Range(None, 0.5, "", "a discount rate above 50% a year; 12% is 0.12"),
}


def unit_slips(s: Scenario) -> list[Finding]:
    """Numbers far outside public figures in the direction of a unit mistake (zeros are
    left alone: a zero budget or capex is a deliberate choice, not a slip)."""
    checks: list[tuple[PathKey, float | None, str]] = [
        (("discount_rate",), s.discount_rate, "discount_rate"),
        (("market", "btc_price_usd"), s.market.btc_price_usd, "btc_price"),
        (("market", "hashrate_eh"), s.market.hashrate_eh, "hashrate"),
    ]
    for year, usd in s.financing.capital_budget_usd.items():
        checks.append((("financing", "capital_budget_usd", year), usd, "capital_budget"))
    for name, pm in s.power_markets.items():
        checks.append((("power_markets", name, "price_usd_mwh"), pm.price_usd_mwh, "power_price"))
    for i, site in enumerate(s.sites):
        checks += [
            (("sites", i, "interconnect_mw"), site.interconnect_mw, "interconnect"),
            (
                ("sites", i, "power", "ppa_price_usd_mwh"),
                site.power.ppa_price_usd_mwh,
                "power_price",
            ),
            (("sites", i, "mining", "opex_usd_mw_month"), site.mining.opex_usd_mw_month, "opex"),
            (("sites", i, "mining", "asic_cost_usd_th"), site.mining.asic_cost_usd_th, "asic_cost"),
            (("sites", i, "mining", "efficiency_j_th"), site.mining.efficiency_j_th, "efficiency"),
        ]
        if site.ai is not None and site.ai.max_it_mw > 0:
            ai = site.ai
            checks += [
                (("sites", i, "ai", "build_capex_usd_mw"), ai.build_capex_usd_mw, "capex"),
                (("sites", i, "ai", "opex_usd_mw_month"), ai.opex_usd_mw_month, "opex"),
                (("sites", i, "ai", "lead_time_months"), float(ai.lead_time_months), "lead_time"),
            ]
            if ai.retrofit_mw > 0:
                checks.append(
                    (("sites", i, "ai", "retrofit_capex_usd_mw"), ai.retrofit_capex_usd_mw, "capex")
                )
    for i, c in enumerate(s.contracts):
        checks += [
            (("contracts", i, "price_usd_kw_month"), c.price_usd_kw_month, "rent"),
            (("contracts", i, "term_years"), c.term_years, "term"),
        ]
    return [f for loc, value, kind in checks if (f := _check_range(loc, value, kind))]


def _check_range(loc: PathKey, value: float | None, kind: str) -> Finding | None:
    bounds = _PLAUSIBLE[kind]
    if value is None or value == 0:
        return None
    if bounds.low is not None and value < bounds.low:
        return Finding("unit_slip", loc, f"{format_number(value)}: {bounds.below}")
    if bounds.high is not None and value > bounds.high:
        return Finding("unit_slip", loc, f"{format_number(value)}: {bounds.above}")
    return None


def format_number(value: float) -> str:
    """``80``, ``0.035``, ``5,000``: whole numbers from 1,000 with thousands separators."""
    return f"{value:,.0f}" if abs(value) >= 1_000 and value == int(value) else f"{value:g}"


# ----------------------------------------------------------------------- halvings


def expected_halvings(s: Scenario) -> list[str]:
    """The generated halvings (``schema.generated_halvings``) inside the horizon."""
    return [h for h in generated_halvings(s.last_month) if year_month_index(s.start, h) >= 0]


def missing_halvings(s: Scenario) -> list[Finding]:
    """Generated halvings inside the horizon with no listed halving within a year (none
    when the list is omitted: the halvings are generated then)."""
    if s.market.halving_months is None:
        return []
    listed = [year_month_index(s.start, m) for m in s.market.halving_months]
    out = []
    for month in expected_halvings(s):
        at = year_month_index(s.start, month)
        if not any(abs(at - m) <= HALVING_MATCH_MONTHS for m in listed):
            out.append(
                Finding(
                    "halving_missing",
                    ("market", "halving_months"),
                    f"the horizon passes the halving expected in {month} (every 210,000 "
                    "blocks, ~4 years), which the list lacks; add it, or the subsidy "
                    "stays twice as high from then on",
                )
            )
    return out


# ---------------------------------------------------------------- landlord's yield


def landlord_yield(s: Scenario, contract_index: int, site_index: int) -> float | None:
    """A contract's stabilised NOI a year over the landlord's capex per IT MW at a site:
    the starting rent less the hall's opex and SG&A (and its grid power where the landlord
    pays it), over (1 - tenant_funded_share) of the capex of the MW it would lease (the
    site's retrofit MW for a retrofit_only contract, else its whole build); None where
    the landlord pays nothing or the contract leases nothing there [1/yr]."""
    c, site = s.contracts[contract_index], s.sites[site_index]
    ai = site.ai
    if ai is None or ai.max_it_mw <= 0:
        return None
    if c.retrofit_only:
        if ai.retrofit_mw <= 0:
            return None
        capex = ai.retrofit_capex_usd_mw
    else:
        retrofit = min(ai.retrofit_mw, ai.max_it_mw)
        capex = (
            retrofit * ai.retrofit_capex_usd_mw + (ai.max_it_mw - retrofit) * ai.build_capex_usd_mw
        ) / ai.max_it_mw
    landlord = (1.0 - c.tenant_funded_share) * capex
    if landlord <= 0:
        return None
    costs = ai.opex_usd_mw_month + ai.sga_usd_mw_month
    if c.kind == "powered_shell":  # the landlord keeps its share of the hall
        costs *= 1.0 - c.tenant_funded_share
    if not c.power_pass_through:
        pm = site_market(s, site)
        fourcp = pm.transmission_4cp_usd_kw_year * 1000.0 / 12.0
        costs += ai.pue * (pm.price_usd_mwh * HOURS_PER_MONTH + fourcp)
    return 12.0 * (1000.0 * c.price_usd_kw_month - costs) / landlord


def landlord_yields(s: Scenario) -> list[Finding]:
    """Contracts that would give the landlord more than MAX_LANDLORD_YIELD a year on its own
    capex at some eligible site (the highest named)."""
    out = []
    for j, c in enumerate(s.contracts):
        if c.kind == "cloud":  # its price buys GPU capacity, not a hall: no rent to weigh
            continue
        found = [
            (y, s.sites[i].name)
            for i, site in enumerate(s.sites)
            if c in s.contracts_for(site)
            if (y := landlord_yield(s, j, i)) is not None
        ]
        if not found:
            continue
        best, where = max(found)
        if best > MAX_LANDLORD_YIELD:
            out.append(
                Finding(
                    "landlord_yield",
                    ("contracts", j, "tenant_funded_share"),
                    f"at ${format_number(c.price_usd_kw_month)}/kW-month with "
                    f"{c.tenant_funded_share:.0%} of the hall funded by the tenant, the landlord "
                    f"earns {best:.0%} a year on its own capex at {where}, where public halls "
                    f"earn 10-20% on theirs: a tenant that funds the fit-out pays a lower rent "
                    "for it (public deals fit a share of ~20-40% with a rent $18-38 below "
                    "landlord-funded ones; docs/calibration.md); set the share and the rent "
                    "together",
                )
            )
    return out


def contract_values(s: Scenario) -> list[Finding]:
    """Contracts given both a price and a value the price does not earn (within 0.5%):
    the price is used, as a --set, a case or a sweep of the price expects."""
    out = []
    for j, c in enumerate(s.contracts):
        if c.contract_value_usd is None:
            continue
        earns = value_from_price(c.price_usd_kw_month, c.max_mw, c.escalator, c.term_years, c.ramp)
        if abs(earns - c.contract_value_usd) <= 0.005 * c.contract_value_usd:
            continue
        out.append(
            Finding(
                "contract_value",
                ("contracts", j, "contract_value_usd"),
                f"${c.contract_value_usd / 1e6:,.1f}M is not what price_usd_kw_month "
                f"${format_number(c.price_usd_kw_month)} earns over the first term at max_mw "
                f"(${earns / 1e6:,.1f}M): the price is used; drop one of the two",
            )
        )
    return out


# ---------------------------------------------------------------- sampling error


def few_scenarios(s: Scenario, plan_npv_se_usd: float | None = None) -> list[Finding]:
    """Fewer than MIN_SCENARIOS scenarios: statistics carry large sampling error."""
    n = s.simulation.scenarios
    if n >= MIN_SCENARIOS or s.simulation.deterministic:  # the central case is one path
        return []
    se = (
        f"; the standard error of the plan's E[NPV] is ${plan_npv_se_usd / 1e6:,.1f}M"
        if plan_npv_se_usd is not None and math.isfinite(plan_npv_se_usd)
        else "; summary.json gives the standard error of the plan's E[NPV]"
    )
    return [
        Finding(
            "few_scenarios",
            ("simulation", "scenarios"),
            f"{n:,} scenarios give quantiles and CVaR with large sampling error (use "
            f"{MIN_SCENARIOS:,} or more){se}",
        )
    ]


def with_sampling_error(findings: list[Finding], s: Scenario, se_usd: float) -> list[Finding]:
    """``findings`` with the few-scenarios warning restated with the run's standard error."""
    rest = [f for f in findings if f.code != "few_scenarios"]
    return rest + few_scenarios(s, se_usd)


# ------------------------------------------------------------- as users see them


@dataclass(frozen=True)
class SourceLines:
    """Where a scenario came from: its file and the line of each data path in it.

    Attributes
    ----------
    file : str
    lines : dict
        Line (1-based) of each data path, list items by index, as the loader saw them.
    overridden : tuple
        Data paths set by ``--set`` (they have no line in the file).
    """

    file: str
    lines: Mapping[PathKey, int] = field(default_factory=dict)
    overridden: tuple[PathKey, ...] = ()
    flags: Mapping[PathKey, str] = field(default_factory=dict)  # set by a flag: --scenarios

    def line_of(self, loc: PathKey) -> int | None:
        """Line of ``loc`` or of its closest ancestor in the file; None for a --set value."""
        if loc in self.flags or self.is_overridden(loc):
            return None
        return closest_line(self.lines, loc)

    def is_overridden(self, loc: PathKey) -> bool:
        """Whether ``loc`` or an ancestor of it was set by ``--set``."""
        return under_any(loc, self.overridden)


@dataclass(frozen=True)
class ScenarioWarning:
    """A plausibility warning placed in its file: ``warning: FILE:LINE: path: message``."""

    code: str
    file: str
    line: int | None
    path: str
    message: str

    def location(self) -> str:
        """``FILE:LINE: path: message``, the form of a validation error."""
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}"

    def __str__(self) -> str:
        return f"warning: {self.location()}"

    def as_dict(self) -> dict[str, Any]:
        """summary.json's form: code, path, line, message."""
        return {"code": self.code, "path": self.path, "line": self.line, "message": self.message}


def place(
    findings: list[Finding], scenario: Scenario, source: SourceLines | None = None
) -> list[ScenarioWarning]:
    """``findings`` placed in the scenario's file, as users see them."""
    source = source or SourceLines(file=scenario.name)
    return [
        ScenarioWarning(
            f.code,
            source.file,
            source.line_of(f.loc),
            display_path(scenario, f.loc, source),
            f.message,
        )
        for f in findings
    ]


def display_path(scenario: Scenario, loc: PathKey, source: SourceLines | None = None) -> str:
    """``sites.pecos-1.ai.build_capex_usd_mw``: sites and contracts by name; a value
    that came from ``--set`` is shown as ``--set path``."""
    parts: list[str] = []
    named = {"sites": scenario.sites, "contracts": scenario.contracts}
    for k, part in enumerate(loc):
        if isinstance(part, int) and k > 0 and loc[k - 1] in named:
            parts.append(named[str(loc[k - 1])][part].name)
        else:
            parts.append(str(part))
    shown = ".".join(parts)
    if source is not None and loc in source.flags:
        return source.flags[loc]
    overridden = source is not None and source.is_overridden(loc)
    return f"--set {shown}" if overridden else shown
