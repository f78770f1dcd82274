"""The scenario schema: pydantic models whose key names are the interface.

Every field carries a description with its unit and its bounds; defaults are the
typical values of docs/scenario.md, sourced in docs/sources.md. Cross-field
checks live in :mod:`siteopt.model.load` (they need the file's line numbers).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from siteopt.model.contract_value import price_from_value

YearMonth = Annotated[
    str,
    StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$"),
    Field(description="a month, written YYYY-MM"),
]
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$"),
    Field(
        description="letters, digits, '-' or '_', starting with a letter or digit "
        "('.' would break --set paths)"
    ),
]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
# power markets and generators together: each has a random stream of its own
# (kernels/rng.py N_POWER_MARKETS_MAX; a test keeps the two equal)
MAX_POWER_SOURCES = 16
# a case's change: what --set takes (a scalar or a list); validated when the case is applied
CaseValue = bool | int | float | str | list[Any] | None
CASE_FIXED = ("name", "simulation", "cases")  # what a case may not change
MAX_CASES = 50


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """Refuse ``true``/``yes``/``on`` where a number is due.

        Lax validation would read ``pool_fee: yes`` as 1.0 (a 100 % pool fee); YAML
        1.1 makes yes/no/on/off booleans, so this mistake is easy to make.
        """
        annotation = cls.model_fields[info.field_name].annotation
        if _mentions(annotation, bool) or _mentions_model(annotation):
            return value
        if _holds_bool(value):
            raise ValueError("expected a number, not true/false (yes/no/on/off are booleans)")
        return value


def _mentions(annotation: Any, target: type) -> bool:
    return annotation is target or any(_mentions(a, target) for a in get_args(annotation))


def _mentions_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_mentions_model(a) for a in get_args(annotation))


def _holds_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, list | tuple):
        return any(_holds_bool(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_bool(v) for v in value.values())
    return False


def year_month_index(start: str, month: str) -> int:
    """Months from ``start`` to ``month`` (both ``YYYY-MM``); negative if earlier."""
    sy, sm = (int(p) for p in start.split("-"))
    y, m = (int(p) for p in month.split("-"))
    return (y - sy) * 12 + (m - sm)


FIRST_GENERATED_HALVING = "2028-04"  # block 1,050,000: 210,000 blocks after April 2024's
HALVING_MONTHS_APART = 48  # 210,000 blocks at the 600 s target: about four years


def generated_halvings(through: str) -> tuple[str, ...]:
    """Bitcoin halvings from April 2028 up to and including ``through``, four years apart
    [YYYY-MM] (the subsidy before them, ``subsidy_btc``, is 3.125 BTC)."""
    out = []
    k = 0
    while year_month_index(FIRST_GENERATED_HALVING, through) >= k * HALVING_MONTHS_APART:
        year = int(FIRST_GENERATED_HALVING[:4]) + k * HALVING_MONTHS_APART // 12
        out.append(f"{year:04d}{FIRST_GENERATED_HALVING[4:]}")
        k += 1
    return tuple(out)


class Simulation(_Model):
    scenarios: int = Field(20_000, ge=1, le=10_000_000, description="Monte Carlo scenarios [count]")
    seed: int = Field(7, ge=0, le=2**63 - 1, description="random seed [integer]")
    risk_sample: int | None = Field(
        None,
        ge=0,
        le=10_000,
        description=(
            "scenarios whose per-option NPVs go to the MILP risk constraint [count]; omitted: "
            "enough that the CVaR's tail holds 250 of them (5,000 at cvar_alpha 0.95), at "
            "most the scenarios, 10,000 and a 256 MB risk matrix"
        ),
    )
    deterministic: bool = Field(
        False,
        description=(
            "value one path at the central view with no noise (docs/model.md, 'The central "
            "case'); scenarios and risk_sample count as 1; --deterministic sets it"
        ),
    )


Refresh = Literal["when_it_pays", "always", "never"]


FORWARD_POINT_PATTERN = r"^\d{4}(-(0[1-9]|1[0-2]))?$"  # a forward's key: YYYY or YYYY-MM


def forward_month(key: str) -> str:
    """A forward's key as the month it stands for: ``YYYY`` is its January."""
    return key if len(key) == 7 else f"{key}-01"


ForwardPoint = Annotated[
    str,
    StringConstraints(pattern=FORWARD_POINT_PATTERN),
    Field(description="a year (its January) or a month, YYYY or YYYY-MM"),
]
MAX_FORWARD_POINTS = 1_200


def _forward_keys(value: Any) -> Any:
    """Year keys arrive from YAML as integers: read them as the text ``YYYY``."""
    if isinstance(value, dict):
        return {
            (f"{k:04d}" if isinstance(k, int) and not isinstance(k, bool) else k): v
            for k, v in value.items()
        }
    if isinstance(value, str):
        raise ValueError(
            "a forward's CSV file is read when the scenario file is loaded; give the file's "
            "path in the scenario (relative to it), or a map of year -> value"
        )
    return value


class Forward(_Model):
    btc_price_usd: dict[ForwardPoint, Annotated[float, Field(ge=1, le=1e9)]] | None = Field(
        None,
        min_length=1,
        max_length=MAX_FORWARD_POINTS,
        description="BTC price by year or month [USD]; or a CSV (month,value)",
    )
    hashrate_eh: dict[ForwardPoint, Annotated[float, Field(ge=0.001, le=1e7)]] | None = Field(
        None,
        min_length=1,
        max_length=MAX_FORWARD_POINTS,
        description="network hashrate by year or month [EH/s]; or a CSV (month,value)",
    )
    fee_share: dict[ForwardPoint, Annotated[float, Field(ge=0, le=10)]] | None = Field(
        None,
        min_length=1,
        max_length=MAX_FORWARD_POINTS,
        description="fees as a share of the subsidy by year or month [-]; or a CSV",
    )

    @field_validator("btc_price_usd", "hashrate_eh", "fee_share", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        return _forward_keys(value)


Loading = Annotated[float, Field(ge=-1, le=1)]


class Factor(_Model):
    btc: Loading = Field(
        0.4,
        description=(
            "loading of BTC's monthly log return on the common factor [-] (BTC's correlation "
            "with US equities ~0.3-0.5 in 2022-25; est.)"
        ),
    )
    ai_rent: Loading = Field(
        0.5, description="loading of the AI rent index's monthly log return [-] (est.)"
    )
    tenant_exit: Loading = Field(
        0.3,
        description=(
            "loading of each tenant's exit on the factor's level: exits cluster where BTC and "
            "AI rents fall (a one-factor Gaussian copula) [-] (est.)"
        ),
    )
    capex_overrun: Loading = Field(
        0.0, description="loading of each site's capex overrun (larger where it is low) [-]"
    )


class AIMarket(_Model):
    rent_drift: float = Field(
        0.025,
        ge=-1,
        le=1,
        description=(
            "expected annual growth of the AI rent index (its mean) [1/yr]: what market rents "
            "of later signings and re-lets follow (est.)"
        ),
    )
    rent_volatility: float = Field(
        0.15, ge=0, le=2, description="annual volatility of ln(AI rent index) [1/sqrt(yr)] (est.)"
    )
    capex_inflation: float | None = Field(
        None,
        ge=-0.1,
        le=0.5,
        description=(
            "annual growth of AI build capex for later build years [1/yr]; omitted: cost_inflation"
        ),
    )


class Market(_Model):
    btc_price_usd: float = Field(90_000.0, ge=1, le=1e8, description="BTC price at start [USD]")
    btc_drift: float | None = Field(
        None,
        ge=-2,
        le=2,
        description=(
            "annual expected log-return before -s^2/2 [1/yr]; omitted: s^2/2, so the median "
            "BTC price stays at the start price (the mean grows at s^2/2)"
        ),
    )
    btc_volatility: float = Field(
        0.55, ge=0, le=3, description="annual volatility of ln BTC [1/sqrt(yr)]"
    )
    hashrate_eh: float = Field(
        1200.0, ge=0.001, le=1e6, description="network hashrate at start [EH/s]"
    )
    hashrate_growth: float = Field(
        0.0,
        ge=-2,
        le=5,
        description=(
            "annual log growth of the network hashrate besides its pull toward the "
            "break-even hashrate, g0 [1/yr] (revision 2: 0.20 with the start hashprice as "
            "break-even)"
        ),
    )
    hashrate_volatility: float = Field(
        0.12, ge=0, le=3, description="annual volatility of ln H [1/sqrt(yr)]"
    )
    hashrate_price_correlation: float = Field(
        0.5, ge=-1, le=1, description="corr(Z_btc, Z_hashrate) [-]"
    )
    hashrate_elasticity: float = Field(
        0.3,
        ge=0,
        le=10,
        description="growth response to ln(hashprice / break-even hashprice) [1/yr]",
    )
    hashrate_lag_months: int = Field(6, ge=0, le=60, description="lag of that response [months]")
    breakeven_efficiency_j_th: float | None = Field(
        28.2,
        gt=1,
        le=200,
        description=(
            "efficiency of the network's marginal fleet at the start [J/TH] (the surveyed "
            "average, 28.2 in 2025): it breaks even at "
            "0.024 x this x breakeven_power_usd_mwh USD/PH/day; null: the start hashprice is "
            "the break-even one (revision 2)"
        ),
    )
    breakeven_power_usd_mwh: float = Field(
        45.0,
        gt=0,
        le=5_000,
        description="the marginal fleet's power price [USD/MWh] (surveyed median $45 in 2025)",
    )
    fleet_efficiency_gain: float = Field(
        0.15,
        ge=0,
        lt=1,
        description=(
            "annual fall of the marginal fleet's J/TH [share/yr] (new models ~19%/yr "
            "2020-2026, the network's average ~24% in 2024; est.)"
        ),
    )
    hashrate_to_ai_per_year: float = Field(
        0.01,
        ge=0,
        lt=1,
        description=(
            "share of the network's hashrate whose power moves to AI each year (listed "
            "miners converting sites), raising the break-even hashprice [share/yr] (est.)"
        ),
    )
    forward: Forward | None = Field(
        None,
        description=(
            "house view: forward curves of BTC, network hashrate and the fee share; the "
            "paths disperse around them (forward_is); a forward's first month replaces the "
            "start value"
        ),
    )
    forward_is: Literal["median", "mean"] = Field(
        "median", description="what every forward is of the paths: their median or their mean"
    )
    factor: Factor = Field(
        default_factory=Factor,
        description=(
            "the common factor's loadings: shocks that move together (0 everywhere: "
            "independent draws, as before)"
        ),
    )
    ai: AIMarket = Field(
        default_factory=AIMarket,
        description="the AI rent index and AI capex inflation",
    )
    subsidy_btc: float = Field(
        3.125,
        ge=1e-8,
        le=50,
        description=(
            "block subsidy before the halvings [BTC] (3.125 since April 2024); a halving at "
            "or before the start applies from the first month; at least 1 satoshi"
        ),
    )
    halving_months: tuple[YearMonth, ...] | None = Field(
        None,
        max_length=20,
        description=(
            "months from which the subsidy halves [YYYY-MM]; omitted: generated for the "
            "whole horizon (2028-04, 2032-04, 2036-04, ...; 210,000 blocks at 600 s apart)"
        ),
    )
    fee_share: float = Field(
        0.01, ge=0, le=10, description="mean fees as a share of the subsidy [-]"
    )
    fee_share_volatility: float = Field(
        0.5, ge=0, le=5, description="lognormal sigma of the fee share [-]"
    )
    pool_fee: Share = Field(0.02, description="mining pool fee [share of revenue, 0-1]")
    asic_price_elasticity: float = Field(
        0.8,
        ge=0,
        le=5,
        description="ASIC $/TH follows (hashprice / start hashprice) ^ this (est.) [-]",
    )
    cost_inflation: float = Field(
        0.025,
        ge=-0.1,
        le=0.5,
        description=(
            "annual growth of mining and AI opex and SG&A, of the capex of later build years, "
            "re-let and refit capex [1/yr] (US CPI ~2.7-3% in 2025, Fed target 2%; est.)"
        ),
    )

    def halvings(self, through: str) -> tuple[str, ...]:
        """The halving months in effect up to ``through`` [YYYY-MM]: ``halving_months`` as
        written, or when omitted every halving from 2028-04 to ``through``."""
        if self.halving_months is not None:
            return self.halving_months
        return generated_halvings(through)


class Ancillary(_Model):
    capacity_usd_mw_month: float = Field(
        ge=0,
        le=1e6,
        description=(
            "what a MW of mining load offered in the market's ancillary services every hour "
            "of a month earns, paid on the hours it offers (those it runs, those it is "
            "deployed in, and the committed ones) [USD/MW-month] (ERCOT ECRS averaged "
            "~$7,000 in 2024, ~$56,000 in 2023)"
        ),
    )
    deployed_hours_share: Share = Field(
        0.002,
        description=(
            "share of the hours an enrolled load runs in which it is deployed (drops its "
            "load on command) [0-1] (est.)"
        ),
    )
    enrolled_share: Share = Field(
        1.0,
        description=(
            "share of a curtailable site's mining MW the programme takes [0-1], in the "
            "months where enrolling earns more than curtailing on price"
        ),
    )
    committed_share: Share = Field(
        0.5,
        description=(
            "share of the hours priced above the value of hashing in which an enrolled MW "
            "must keep running: offered a day ahead, before the real-time price is known "
            "[0-1] (est.)"
        ),
    )


class PowerMarket(_Model):
    price_usd_mwh: float = Field(35.0, ge=0, le=5_000, description="mean wholesale price [USD/MWh]")
    price_volatility: float = Field(
        0.25, ge=0, le=5, description="monthly lognormal noise of the level [-]"
    )
    seasonality: tuple[Annotated[float, Field(gt=0, le=20)], ...] | None = Field(
        None,
        min_length=12,
        max_length=12,
        description="price multiple by calendar month, Jan..Dec [-]",
    )
    spike_hours_share: Share = Field(0.03, description="share of hours at the spike price [0-1]")
    spike_price_usd_mwh: float = Field(
        350.0, ge=0, le=20_000, description="price in spike hours [USD/MWh]"
    )
    duration_curve: tuple[tuple[Share, Annotated[float, Field(ge=-20, le=1_000)]], ...] | None = (
        Field(
            None,
            min_length=1,
            max_length=256,
            description="price-duration curve: [share of hours, multiple of the monthly level] [-]",
        )
    )
    duration_bins: int = Field(
        16, ge=2, le=256, description="bins of the default duration curve [count]"
    )
    transmission_4cp_usd_kw_year: float = Field(
        55.0, ge=0, le=2_000, description="4CP transmission charge [USD/kW-year]"
    )
    fourcp_avoidance: Share = Field(
        0.9, description="probability curtailable load avoids 4CP [0-1]"
    )
    forward_usd_mwh: dict[ForwardPoint, Annotated[float, Field(ge=0, le=5_000)]] | None = Field(
        None,
        min_length=1,
        max_length=MAX_FORWARD_POINTS,
        description=(
            "power forward by year or month, before seasonality [USD/MWh]; or a CSV "
            "(month,value); replaces price_usd_mwh (market.forward_is says median or mean)"
        ),
    )

    ancillary: Ancillary | None = Field(
        None,
        description=(
            "ancillary services and demand response that curtailable mining may enrol in; "
            "omitted: none"
        ),
    )

    @field_validator("forward_usd_mwh", mode="before")
    @classmethod
    def _forward_keys(cls, value: Any) -> Any:
        return _forward_keys(value)


class SitePower(_Model):
    ppa_mw: float = Field(0.0, ge=0, le=100_000, description="fixed-price take-or-pay supply [MW]")
    ppa_price_usd_mwh: float | None = Field(None, ge=0, le=5_000, description="PPA price [USD/MWh]")


class SiteMining(_Model):
    mw: float = Field(ge=0, le=100_000, description="grid MW of mining load today [MW]")
    efficiency_j_th: float = Field(17.5, gt=1, le=200, description="fleet efficiency [J/TH]")
    pue: float = Field(1.05, ge=1, le=3, description="mining power usage effectiveness [-]")
    uptime: Share = Field(0.95, description="share of hours running outside curtailment [0-1]")
    opex_usd_mw_month: float = Field(9_000.0, ge=0, le=1e7, description="fixed opex [USD/MW-month]")
    asic_cost_usd_th: float = Field(15.0, ge=0, le=1_000, description="ASIC price [USD/TH]")
    asic_refresh_years: float = Field(
        4.0, ge=0.1, le=30, description="fleet refresh interval [years]"
    )
    efficiency_gain_per_year: float = Field(
        0.08,
        ge=0,
        le=0.5,
        description="annual efficiency gain of refreshed fleets [share/yr]",
    )
    opex_avoidable_share: Share = Field(
        0.3,
        description=(
            "share of opex saved in a month a curtailable site idles [0-1]; it idles when "
            "hashing earns less than that and the month's 4CP over the power it buys, and an "
            "idle month pays no 4CP (est.)"
        ),
    )
    sga_usd_mw_month: float = Field(
        0.0,
        ge=0,
        le=1e7,
        description=("overhead (SG&A) per grid MW mining, never saved by idling [USD/MW-month]"),
    )
    attrition: Share = Field(
        0.05,
        description=(
            "share of a fleet's machines that fail for good a year [1/yr] (~5%/yr is normal "
            "per Bitmain, 2020); a refresh brings the fleet back to whole"
        ),
    )
    refresh: Refresh = Field(
        "when_it_pays",
        description=(
            "ASIC refresh at each refresh date: when_it_pays (if the margin gained over "
            "asic_refresh_years pays for the fleet, else look again in 12 months), always "
            "(revision 1: on schedule at the constant asic_cost_usd_th) or never"
        ),
    )


class SiteAI(_Model):
    max_it_mw: float = Field(ge=0, le=100_000, description="critical-IT MW the site can host [MW]")
    pue: float = Field(1.2, ge=1, le=3, description="AI power usage effectiveness [-]")
    retrofit_mw: float = Field(
        0.0, ge=0, le=100_000, description="IT MW that retrofit mining buildings [MW]"
    )
    retrofit_capex_usd_mw: float = Field(
        7_500_000.0,
        ge=0,
        le=1e9,
        description=(
            "total capex of retrofitting a mining building [USD/MW IT]; a tenant that funds "
            "the fit-out is tenant_funded_share"
        ),
    )
    build_capex_usd_mw: float = Field(
        9_500_000.0, ge=0, le=1e9, description="new-build capex [USD/MW IT]"
    )
    capex_overrun_volatility: float = Field(
        0.15, ge=0, le=3, description="lognormal sigma of overrun [-]"
    )
    lead_time_months: int = Field(
        15, ge=0, le=120, description="construction start to first rent [months]"
    )
    delay_mean_months: float = Field(
        3.0, ge=0, le=120, description="mean random extra delay [months]"
    )
    opex_usd_mw_month: float = Field(
        20_000.0, ge=0, le=1e7, description="AI opex [USD/MW IT-month]"
    )
    sga_usd_mw_month: float = Field(
        0.0, ge=0, le=1e7, description="overhead (SG&A) per IT MW of a hall [USD/MW IT-month]"
    )


class Generator(_Model):
    gas_price_usd_mmbtu: float = Field(
        ge=0,
        le=100,
        description=(
            "fuel price delivered to the site [USD/MMBtu] (Waha hub averaged $0.77 in 2024, "
            "$1.66 in 2025 to September; flare gas that would be burnt for nothing, less)"
        ),
    )
    gas_price_volatility: float = Field(
        0.3, ge=0, le=5, description="monthly lognormal noise of the generator's cost [-] (est.)"
    )
    heat_rate_mmbtu_mwh: float = Field(
        9.0,
        gt=0,
        le=30,
        description="fuel burnt per MWh generated [MMBtu/MWh] (gas engines ~8.5-10, est.)",
    )
    variable_om_usd_mwh: float = Field(
        18.0,
        ge=0,
        le=1_000,
        description=(
            "operation and maintenance per MWh generated, the gensets' rental or fixed costs "
            "spread over their output [USD/MWh] (est.)"
        ),
    )
    availability: Share = Field(
        0.9, description="share of hours the generator can run [0-1] (est.)"
    )


class Sale(_Model):
    price_usd_mw: float | None = Field(
        None,
        gt=0,
        le=50_000_000,
        description=(
            "a buyer's price for the whole site, per MW of interconnect, net of fees "
            "[USD/MW]: powered land ~$100-550k (B. Riley, Dec 2025; Cipher $225k, "
            "CleanSpark $430k), a site with its lease far more; null: no sale offered"
        ),
    )
    months_to_close: int = Field(
        6, ge=0, le=600, description="months from the start until the sale closes [months]"
    )
    close_prob: float = Field(
        0.8,
        gt=0,
        le=1,
        description="chance the sale closes; else the site goes on as it is [0-1] (est.)",
    )
    tax_basis_usd_mw: float = Field(
        0.0,
        ge=0,
        le=50_000_000,
        description=(
            "the site's tax basis (land, interconnect, buildings) per MW of interconnect, "
            "deducted from the price at closing [USD/MW]; the gain is taxed at "
            "tax.income_rate"
        ),
    )
    jv_share: float | None = Field(
        None,
        gt=0,
        lt=1,
        description=(
            "a partner's share of a conversion's capex and cash flows, debt and exit value "
            "included, offered beside each AI option as its '-jv' twin [0-1] (TeraWulf-"
            "Fluidstack, Abernathy 2025: 49%); null: no JV"
        ),
    )


class Site(_Model):
    name: Name
    market: Name | None = Field(
        None, description="a key of power_markets; omitted where the site has a generator"
    )
    generator: Generator | None = Field(
        None,
        description=(
            "behind-the-meter generation (a gas or flare-gas site) instead of a market: no "
            "grid price, spikes or 4CP"
        ),
    )
    interconnect_mw: float = Field(
        gt=0, le=100_000, description="grid interconnect, or the generator's capacity [MW]"
    )
    curtailable: bool = Field(True, description="mining may curtail in price spikes")
    power: SitePower = Field(default_factory=SitePower, description="the site's power supply")
    mining: SiteMining = Field(description="the mining load the site runs today")
    ai: SiteAI | None = Field(None, description="absent: the site cannot host AI")
    sale: Sale | None = Field(
        None, description="a buyer's offer for the site, or a partner's for a joint venture"
    )


class RampPhase(_Model):
    months: int = Field(ge=1, le=600, description="length of the phase from first rent [months]")
    share: Share = Field(description="share of the contracted MW paying rent in this phase [0-1]")


Amortization = Literal["annuity", "bullet"]
ContractKind = Literal["colocation", "cloud", "powered_shell"]
AMORTIZATION_HELP = (
    "annuity: level payments after the interest-only months (never before the rent ramp "
    "ends); bullet: interest only, the balance due in the term's last month"
)
MARKET_RATE_HELP = (
    "the rate the market lends this borrower at [1/yr]: the loan's flows are discounted at "
    "it, so a loan below it is worth the difference (a rate subsidy); null: rate"
)
TARGET_DSCR_HELP = (
    "size the loan to at most what the stabilised contract NOI carries at this debt service "
    "coverage [x], and never above loan_to_cost; null: loan_to_cost alone"
)
REFINANCE_HELP = (
    "a bullet is refinanced when it falls due, up to what the hall's trailing NOI carries at "
    "refinance_dscr; the equity repays only the rest (false: the equity repays it all)"
)
REFINANCE_DSCR_HELP = "debt service coverage a refinancing is sized to [x] (est.)"
REFINANCE_RATE_HELP = "annual rate of the refinancing [1/yr]; null: rate"
REFINANCE_TERM_HELP = "the refinancing amortises over this [years]"


class Debt(_Model):
    loan_to_cost: float = Field(
        0.8, ge=0, le=0.95, description="project debt share of equity-side capex [-]"
    )
    rate: float = Field(0.08, ge=0, le=1, description="annual interest rate [1/yr]")
    term_years: float = Field(12.0, gt=0, le=40, description="term from the first rent [years]")
    non_recourse: bool = Field(
        False, description="the equity may hand a hall to the lenders when its tenant leaves"
    )
    interest_only_months: int = Field(
        0, ge=0, le=480, description="months of interest only from the first rent [months]"
    )
    amortization: Amortization = Field("annuity", description=AMORTIZATION_HELP)
    market_rate: float | None = Field(None, ge=0, le=1, description=MARKET_RATE_HELP)
    target_dscr: float | None = Field(None, ge=1, le=10, description=TARGET_DSCR_HELP)
    refinance: bool = Field(True, description=REFINANCE_HELP)
    refinance_dscr: float = Field(1.3, ge=1, le=10, description=REFINANCE_DSCR_HELP)
    refinance_rate: float | None = Field(None, ge=0, le=1, description=REFINANCE_RATE_HELP)
    refinance_term_years: float = Field(10.0, gt=0, le=40, description=REFINANCE_TERM_HELP)


class ContractDebt(_Model):
    """A tenant's own project debt; a key left out takes ``financing.debt``'s value."""

    loan_to_cost: float | None = Field(
        None, ge=0, le=0.95, description="project debt share of equity-side capex [-]"
    )
    rate: float | None = Field(None, ge=0, le=1, description="annual interest rate [1/yr]")
    term_years: float | None = Field(
        None, gt=0, le=40, description="term from the first rent [years]"
    )
    interest_only_months: int | None = Field(
        None, ge=0, le=480, description="months of interest only from the first rent [months]"
    )
    amortization: Amortization | None = Field(None, description=AMORTIZATION_HELP)
    market_rate: float | None = Field(None, ge=0, le=1, description=MARKET_RATE_HELP)
    target_dscr: float | None = Field(None, ge=1, le=10, description=TARGET_DSCR_HELP)
    refinance: bool | None = Field(None, description=REFINANCE_HELP)
    refinance_dscr: float | None = Field(None, ge=1, le=10, description=REFINANCE_DSCR_HELP)
    refinance_rate: float | None = Field(None, ge=0, le=1, description=REFINANCE_RATE_HELP)
    refinance_term_years: float | None = Field(None, gt=0, le=40, description=REFINANCE_TERM_HELP)


class Contract(_Model):
    name: Name
    price_usd_kw_month: float = Field(
        gt=0,
        le=10_000,
        description=(
            "starting rent, a cloud contract's revenue [USD/kW IT-month]; omitted where "
            "contract_value_usd gives it"
        ),
    )
    contract_value_usd: float | None = Field(
        None,
        gt=0,
        le=1e13,
        description=(
            "the contract's stated value, its first term's rent at max_mw (IREN-Microsoft: "
            "$9.7B for ~200 MW over 5 years), instead of price_usd_kw_month: the starting "
            "price that earns it, escalator and ramp included [USD]; with both, the price "
            "is used (a warning says when they differ)"
        ),
    )
    escalator: float = Field(0.03, ge=-0.5, le=1, description="annual rent escalator [share/yr]")
    term_years: float = Field(15.0, gt=0, le=50, description="lease term [years]")
    min_mw: float = Field(0.0, ge=0, le=100_000, description="minimum IT MW if signed [MW]")
    max_mw: float = Field(100_000.0, ge=0, le=100_000, description="maximum IT MW [MW]")
    tenant_funded_share: Share = Field(0.0, description="share of capex the tenant funds [0-1]")
    power_pass_through: bool = Field(True, description="tenant pays the AI power")
    annual_default_prob: Share = Field(0.01, description="annual tenant exit probability [0-1]")
    relet_months: int = Field(
        12, ge=0, le=240, description="empty months before a successor tenant [months]"
    )
    renewal_prob: Share = Field(
        0.75, description="chance a tenant renews at the end of its term, at market rent [0-1]"
    )
    relet_capex_usd_mw: float | None = Field(
        None,
        ge=0,
        le=1e9,
        description="the landlord's fit-out for a successor tenant; default 5% of the site's "
        "build capex (of the landlord's share in a powered shell) [USD/MW IT]",
    )
    relet_term_years: float = Field(
        5.0, gt=0, le=50, description="term of every renewal and successor tenancy [years]"
    )
    successor_default_prob: Share = Field(
        0.04, description="annual exit probability of a successor tenant [0-1]"
    )
    market_rent_volatility: float = Field(
        0.2, ge=0, le=3, description="lognormal sigma of market rent [-]"
    )
    eligible_sites: tuple[Name, ...] | None = Field(
        None, description="sites that may host it; default all"
    )
    online_by: YearMonth | None = Field(None, description="min_mw must be earning by this month")
    must_sign: bool = Field(False, description="the plan must sign this contract")
    ramp: tuple[RampPhase, ...] = Field(
        (), max_length=24, description="rent phases from first rent"
    )
    financing: ContractDebt | None = Field(
        None, description="this tenant's project debt; overrides financing.debt for its halls"
    )
    lease_discount_rate: float | None = Field(
        None,
        ge=0,
        le=1,
        description=(
            "rate a buyer at the horizon discounts the lease's remaining NOI at, for this "
            "tenant's credit [1/yr] (KBW capitalised existing leases at ~6%); null: "
            "discount_rate"
        ),
    )
    retrofit_only: bool = Field(
        False,
        description=(
            "the contract leases only the MW that retrofit a mining building (each site's "
            "retrofit_mw), as a tenant that funds the fit-out of an existing building"
        ),
    )
    improvements_revert: bool = Field(
        False,
        description=(
            "the tenant-funded share of the hall stays with it when the tenant leaves (false: "
            "it is the tenant's, and the landlord funds it again for a successor)"
        ),
    )
    successor_price_usd_kw_month: float | None = Field(
        None,
        gt=0,
        le=10_000,
        description=(
            "starting rent of a successor tenant in a hall the landlord fits out "
            "[USD/kW IT-month], escalated like the contract and times the market factor; "
            "null: price_usd_kw_month (set it where the tenant funds part of the hall)"
        ),
    )
    price_follows_index: bool = Field(
        False,
        description=(
            "a later build signs at the price moved by the AI rent index since the start "
            "(market.ai); false: the price as offered today, whatever the build year"
        ),
    )
    available_until: YearMonth | None = Field(
        None,
        description=(
            "the last month the offer can be signed [YYYY-MM]: a build year whose "
            "construction starts later is not offered; null: open over the horizon"
        ),
    )
    kind: ContractKind = Field(
        "colocation",
        description=(
            "colocation: the tenant brings its GPUs and pays rent for the hall; cloud: the "
            "miner buys and runs the GPUs and sells their capacity, price_usd_kw_month being "
            "the revenue per kW IT-month (the landlord pays the power, the term defaults to "
            "gpu_life_years; the keys gpu_* to milestone_* apply); powered_shell: the "
            "landlord delivers land, power and the shell, each tenant funds its own fit-out "
            "(tenant_funded_share: its share of the site's AI capex) and pays the shell's "
            "rent, and the landlord pays its share of the hall's opex and refits"
        ),
    )
    gpu_capex_usd_mw: float | None = Field(
        None,
        ge=0,
        le=1e9,
        description=(
            "cloud: GPUs, servers and network per MW IT, bought at first revenue [USD/MW IT] "
            "(IREN bought ~$5.8B for ~200 MW: ~$29M)"
        ),
    )
    gpu_life_years: float = Field(
        5.0,
        gt=0,
        le=15,
        description="cloud: the GPUs' useful life; the term may not outlast it [years]",
    )
    gpu_residual_curve: tuple[Share, ...] = Field(
        (0.6, 0.4, 0.25, 0.15, 0.1),
        min_length=1,
        max_length=15,
        description=(
            "cloud: resale value of the GPUs at the end of each year of age, as a share of "
            "their cost [0-1]; linear within a year, the last share held after; they are "
            "sold when the cloud contract ends"
        ),
    )
    prepayment_share: Share = Field(
        0.0,
        description=(
            "cloud: share of the first term's contract revenue the customer prepays, credited "
            "against its monthly bills over the term [0-1] (IREN-Microsoft: 20%)"
        ),
    )
    prepayment_months: int = Field(
        0,
        ge=0,
        le=120,
        description="cloud: months from signing (construction start) to the prepayment [months]",
    )
    gpu_loan_to_cost: float = Field(
        0.0,
        ge=0,
        le=0.95,
        description=(
            "cloud: share of the GPUs' cost borrowed when they are bought, repaid in level "
            "monthly payments over the term and at once if the contract ends early; its flows "
            "are discounted at the contract's debt's market rate [-] (IREN borrowed $3.6B "
            "against $5.8B of GPUs)"
        ),
    )
    gpu_debt_rate: float | None = Field(
        None,
        ge=0,
        le=1,
        description="cloud: the GPU loan's rate [1/yr]; null: the rate of the contract's debt",
    )
    operations_usd_mw_month: float = Field(
        0.0,
        ge=0,
        le=1e7,
        description=(
            "cloud: running the GPU service (staff, network, software, support, insurance) "
            "per MW IT-month at today's prices, beside the site's ai opex [USD/MW IT-month]"
        ),
    )
    milestone_months: int | None = Field(
        None,
        ge=0,
        le=120,
        description=(
            "cloud: months delivery may slip past plan before the customer may terminate "
            "[months]; null: no delivery milestone"
        ),
    )
    milestone_termination_prob: Share = Field(
        0.0,
        description=(
            "cloud: chance the customer terminates at a delivery later than milestone_months: "
            "no revenue, the prepayment refunded, no GPUs bought, the hall re-let [0-1]"
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults_of_other_keys(cls, data: Any) -> Any:
        """A cloud contract's power is the landlord's unless the file says otherwise (a
        contradiction load.check_contracts reports), and its term is its GPUs' life unless
        given; a contract given by its value gets the price that earns it."""
        if isinstance(data, dict) and data.get("kind") == "cloud":
            life = data.get("gpu_life_years", 5.0)
            data = {"power_pass_through": False, "term_years": life, **data}
        return _price_of_value(data)


def _price_of_value(data: Any) -> Any:
    """A contract given by ``contract_value_usd`` and no price: the price that earns it
    (siteopt.model.contract_value), where its terms are numbers (else the field checks
    report them)."""
    if not isinstance(data, dict) or data.get("contract_value_usd") is None:
        return data
    if data.get("price_usd_kw_month") is not None:
        return data  # the price is used; plausibility warns where the two differ
    if "max_mw" not in data:
        raise ValueError("contract_value_usd needs max_mw: the MW the value is for")
    terms = (
        data["contract_value_usd"],
        data["max_mw"],
        data.get("escalator", 0.03),
        data.get("term_years", 15.0),
    )
    ramp = data.get("ramp") or []
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in terms)
    ramp_ok = isinstance(ramp, list) and all(
        isinstance(p, dict) and isinstance(p.get("months"), int) and
        isinstance(p.get("share"), int | float) for p in ramp
    )  # fmt: skip
    if not (numbers and ramp_ok) or terms[1] <= 0 or terms[3] <= 0:
        return data
    return {**data, "price_usd_kw_month": price_from_value(*terms, ramp)}


class Financing(_Model):
    capital_budget_usd: dict[int, Annotated[float, Field(ge=0, le=1e13)]] = Field(
        default_factory=dict, description="equity capital available per calendar year [USD]"
    )
    carry_over: bool = Field(True, description="unspent budget carries into later years")
    debt: Debt = Field(default_factory=Debt, description="project debt of AI halls")
    exit_multiple_ai: float = Field(
        12.0,
        ge=0,
        le=100,
        description=(
            "multiple a buyer pays for a hall's stabilised market NOI, less a refit reserve, "
            "at its next re-let [x] (the reversion of the exit value; 1 / the cap rate)"
        ),
    )
    exit_multiple_mining: float = Field(
        3.0, ge=0, le=100, description="terminal multiple of mining margin [x]"
    )


class Build(_Model):
    decision_years: tuple[int, ...] = Field(
        (),
        max_length=50,
        description="years in which construction may start; default the first three",
    )
    ai_step_mw: float = Field(
        20.0, gt=0, le=100_000, description="step between AI IT MW levels [MW]"
    )
    refit_capex_usd_mw: float = Field(
        1_500_000.0,
        ge=0,
        le=1e9,
        description=(
            "mid-life refit of a hall's mechanical and electrical plant, at today's prices "
            "[USD/MW IT] (est.: ~15% of a new hall)"
        ),
    )
    refit_years: float = Field(
        12.0,
        ge=0,
        le=50,
        description=(
            "years between refits from energisation; 0: none [years] (M&E lasts 10-20 years; est.)"
        ),
    )
    max_tranches_per_site: int = Field(
        1,
        ge=1,
        le=3,
        description=(
            "a site may convert in up to this many tranches, each its own build year and "
            "contract (1: one conversion per site, revision 3's plans); tranches whose "
            "contracts' debts differ in market rate are not combined"
        ),
    )


Losses = Literal["offset", "carry_forward"]


class Tax(_Model):
    rate: Share = Field(
        0.21, description="federal corporate income tax [share of taxable income] (IRC 11(b))"
    )
    state_rate: Share = Field(
        0.0,
        description=(
            "state income tax, deductible federally [share]; a margin tax as its income "
            "equivalent (Texas: 0.75% of 70% of revenue, about 1% of taxable income; est.)"
        ),
    )
    losses: Losses = Field(
        "offset",
        description=(
            "offset: losses offset the group's other income at once; carry_forward: a "
            "project's losses are carried forward and used against at most 80% of a later "
            "year's taxable income (IRC 172)"
        ),
    )
    bonus_depreciation: Share = Field(
        1.0,
        description=(
            "share of ASICs' and hall equipment's cost expensed when placed in service [0-1] "
            "(100% for property acquired after 2025-01-19, OBBBA 2025); never buildings"
        ),
    )
    asic_life_years: float = Field(
        5.0, ge=1, le=50, description="MACRS class of ASICs [years] (computers: 5)"
    )
    ai_equipment_share: Share = Field(
        0.5,
        description=(
            "share of the landlord's hall capex that is equipment (UPS, PDUs, cooling), the "
            "rest building [0-1] (cost segregation: 30-60% of a data center; est.)"
        ),
    )
    ai_equipment_life_years: float = Field(
        5.0, ge=1, le=50, description="MACRS class of a hall's equipment [years] (5: class 57.0)"
    )
    building_life_years: float = Field(
        39.0, ge=1, le=100, description="straight-line life of a hall's building [years]"
    )
    property_rate: float = Field(
        0.0,
        ge=0,
        le=0.2,
        description=(
            "property tax on the assessed value of halls and ASICs (cost less straight-line "
            "depreciation over the class life) [1/yr]; 0: none"
        ),
    )
    property_abatement_years: float = Field(
        0.0,
        ge=0,
        le=50,
        description="years from an asset's purchase its property tax is cut [years]",
    )
    property_abatement_share: Share = Field(
        0.0, description="share of the property tax cut in those years [0-1]"
    )


class Objective(_Model):
    cvar_alpha: float = Field(0.95, gt=0, lt=1, description="CVaR tail level [-]")
    risk_aversion: float = Field(
        0.0, ge=0, le=1_000, description="weight of CVaR in the objective [-]"
    )
    cvar_floor_usd: float | None = Field(
        None, ge=-1e14, le=1e14, description="portfolio CVaR floor [USD]"
    )
    min_hashrate_eh: float | None = Field(
        None, ge=0, le=1e6, description="mining hashrate floor [EH/s]"
    )


class Scenario(_Model):
    name: Name
    start: YearMonth = Field(description="first month of the horizon [YYYY-MM]")
    horizon_years: int = Field(10, ge=1, le=50, description="length of the horizon [years]")
    discount_rate: float = Field(
        0.12,
        gt=-0.5,
        le=1,
        description=(
            "unlevered cost of capital [1/yr]: operating cash flows, capex and taxes are "
            "discounted at it; the project debt's flows at the debt's own rate"
        ),
    )
    simulation: Simulation = Field(default_factory=Simulation, description="Monte Carlo settings")
    market: Market = Field(
        default_factory=Market, description="BTC, network hashrate, subsidy and fees"
    )
    power_markets: dict[Name, PowerMarket] = Field(
        min_length=1,
        max_length=MAX_POWER_SOURCES,
        description="wholesale power markets, by name (with the generators, at most 16)",
    )
    sites: tuple[Site, ...] = Field(
        min_length=1, max_length=5_000, description="the sites: mining today, AI possible"
    )
    contracts: tuple[Contract, ...] = Field(
        (), max_length=1_000, description="AI hosting contracts a site may sign"
    )
    financing: Financing = Field(
        default_factory=Financing, description="budgets, project debt, exit multiples"
    )
    tax: Tax = Field(default_factory=Tax, description="income and property taxes")
    build: Build = Field(default_factory=Build, description="build years and AI MW steps")
    objective: Objective = Field(
        default_factory=Objective, description="risk settings and floors of the build plan"
    )
    cases: dict[Name, dict[str, CaseValue]] = Field(
        default_factory=dict,
        max_length=MAX_CASES,
        description="named sets of changes, `PATH: VALUE` as `--set` takes them (e.g. "
        "`bear: {market.btc_price_usd: 45000}`), solved side by side with the scenario as "
        "written (`base`) on the same draws by `siteopt cases`",
    )

    @field_validator("cases")
    @classmethod
    def _case_paths(cls, cases: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, changes in cases.items():
            if name == "base":
                raise ValueError("'base' is the scenario as written; give the case another name")
            if not changes:
                raise ValueError(f"case {name!r} changes nothing")
            for path in changes:
                head = path.split(".", 1)[0]
                if head in CASE_FIXED:
                    raise ValueError(
                        f"case {name!r}: {path}: a case cannot change {head} "
                        "(every case runs on the scenario's draws)"
                    )
        return cases

    @property
    def months(self) -> int:
        """Months in the horizon."""
        return 12 * self.horizon_years

    @property
    def start_year(self) -> int:
        return int(self.start[:4])

    @property
    def years(self) -> tuple[int, ...]:
        """Calendar years the horizon touches."""
        last = year_month_index("0000-01", self.start) + self.months - 1
        return tuple(range(self.start_year, last // 12 + 1))

    @property
    def last_month(self) -> str:
        """The horizon's last month [YYYY-MM]."""
        index = year_month_index("0000-01", self.start) + self.months - 1
        return f"{index // 12:04d}-{index % 12 + 1:02d}"

    @property
    def halvings_known(self) -> tuple[str, ...]:
        """The halvings a refresh decision knows of: ``market.halving_months`` as written, or
        generated for the horizon and the longest fleet life beyond it (a fleet bought in
        the last month runs ``asic_refresh_years`` more)."""
        years = max(site.mining.asic_refresh_years for site in self.sites)
        index = year_month_index("0000-01", self.last_month) + math.ceil(12 * years)
        return self.market.halvings(f"{index // 12:04d}-{index % 12 + 1:02d}")

    @property
    def halvings(self) -> tuple[str, ...]:
        """Halving months in effect: ``market.halving_months`` as written, or generated for
        the whole horizon when omitted."""
        return self.market.halvings(self.last_month)

    @property
    def decision_years(self) -> tuple[int, ...]:
        """Build years in effect (the first three of the horizon when not given)."""
        return self.build.decision_years or self.years[:3]

    def debt_of(self, contract: Contract) -> Debt:
        """The debt of the halls ``contract`` leases: ``financing.debt`` with the keys the
        contract's own ``financing`` block sets."""
        if contract.financing is None:
            return self.financing.debt
        own = {k: v for k, v in contract.financing.model_dump().items() if v is not None}
        return self.financing.debt.model_copy(update=own)

    def site(self, name: str) -> Site:
        return next(s for s in self.sites if s.name == name)

    def contracts_for(self, site: Site) -> tuple[Contract, ...]:
        """Contracts the site may sign (none when it has no AI section)."""
        if site.ai is None or site.ai.max_it_mw <= 0:
            return ()
        return tuple(
            c for c in self.contracts if c.eligible_sites is None or site.name in c.eligible_sites
        )
