"""The numbers the valuation reads: small frozen parameter structs, one per concept.

The kernels never see the scenario file's pydantic models; the app layer builds these
from a validated scenario in one adapter (:func:`siteopt.app.params.kernel_inputs`).
Field names and units are those of the scenario keys (docs/scenario.md), so a key means
the same thing in a file, in ``--set`` and here. Everything is already validated: no
checks here, only numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def derived() -> Any:
    """A field the app's adapter computes from the scenario (not copied from a key)."""
    return field(default=None, metadata={"derived": True})


__all__ = [
    "AIMarketParams",
    "AncillaryParams",
    "BuildParams",
    "ContractParams",
    "DebtParams",
    "FactorParams",
    "FinancingParams",
    "MarketParams",
    "ObjectiveParams",
    "Portfolio",
    "PowerMarketParams",
    "RampPhaseParams",
    "SaleParams",
    "SimulationParams",
    "SiteAIParams",
    "SiteMiningParams",
    "SiteParams",
    "SitePowerParams",
    "TaxParams",
    "month_index",
]


def month_index(start: str, month: str) -> int:
    """Months from ``start`` to ``month`` (both ``YYYY-MM``); negative if earlier."""
    sy, sm = (int(p) for p in start.split("-"))
    y, m = (int(p) for p in month.split("-"))
    return (y - sy) * 12 + (m - sm)


@dataclass(frozen=True)
class SimulationParams:
    scenarios: int  # Monte Carlo scenarios [count]
    seed: int
    risk_sample: int  # scenarios whose per-option NPVs go to the MILP [count]
    deterministic: bool = False  # one path at the central view (app.central)


@dataclass(frozen=True)
class FactorParams:
    """Loadings on the common factor (kernels/factor.py), each in [-1, 1]."""

    btc: float = 0.0  # BTC's monthly log return
    ai_rent: float = 0.0  # the AI rent index's monthly log return
    tenant_exit: float = 0.0  # each tenant's exit (a Gaussian copula on the level)
    capex_overrun: float = 0.0  # each site's capex overrun


@dataclass(frozen=True)
class AIMarketParams:
    """The AI market (docs/model.md, "The AI market")."""

    rent_drift: float = 0.0  # expected annual growth of the rent index (mean) [1/yr]
    rent_volatility: float = 0.0  # [1/sqrt(yr)]
    capex_inflation: float | None = None  # AI build capex growth; None: cost_inflation [1/yr]


@dataclass(frozen=True)
class MarketParams:
    btc_price_usd: float  # [USD]
    btc_drift: float | None  # annual expected log-return before -s^2/2; None: s^2/2 [1/yr]
    btc_volatility: float  # [1/sqrt(yr)]
    hashrate_eh: float  # network hashrate at start [EH/s]
    hashrate_growth: float  # annual log drift [1/yr]
    hashrate_volatility: float  # [1/sqrt(yr)]
    hashrate_price_correlation: float  # [-]
    hashrate_elasticity: float  # [1/yr]
    hashrate_lag_months: int  # [months]
    subsidy_btc: float  # [BTC]
    halving_months: tuple[str, ...]  # [YYYY-MM]
    fee_share: float  # [-]
    fee_share_volatility: float  # [-]
    pool_fee: float  # [share of revenue]
    asic_price_elasticity: float = 0.0  # ASIC $/TH ~ (hashprice / start)^this [-]
    cost_inflation: float = 0.0  # opex and later capex grow at this a year [1/yr]
    breakeven_efficiency_j_th: float | None = None  # marginal fleet; None: start hashprice
    breakeven_power_usd_mwh: float = 45.0  # the marginal fleet's power price [USD/MWh]
    fleet_efficiency_gain: float = 0.0  # the marginal fleet's J/TH falls this a year [1/yr]
    hashrate_to_ai_per_year: float = 0.0  # network hashrate's power moving to AI [1/yr]
    forward_is: str = "median"  # "median" or "mean": what the forwards are
    # forwards as ((month of the horizon, value), ...); None: the drift rules
    btc_forward: tuple[tuple[int, float], ...] | None = derived()  # [USD]
    hashrate_forward: tuple[tuple[int, float], ...] | None = derived()  # [EH/s]
    fee_forward: tuple[tuple[int, float], ...] | None = derived()  # [share of the subsidy]
    factor: FactorParams = FactorParams()
    ai: AIMarketParams = AIMarketParams()
    factor_months: int | None = derived()  # the common factor's span: the horizon [months]


@dataclass(frozen=True)
class AncillaryParams:
    """A market's ancillary-service programme for curtailable load (kernels/ancillary.py)."""

    capacity_usd_mw_month: float  # a MW offered every hour of a month [USD/MW-month]
    deployed_hours_share: float = 0.002  # of the hours it runs, deployed (dropped) [share]
    enrolled_share: float = 1.0  # of a curtailable site's mining MW [share]
    committed_share: float = 0.5  # of the hours priced above hashing, still run [share]


@dataclass(frozen=True)
class PowerMarketParams:
    price_usd_mwh: float  # mean wholesale price [USD/MWh]
    price_volatility: float  # [-]
    seasonality: tuple[float, ...] | None  # multiple by calendar month [-]
    spike_hours_share: float  # [share of hours]
    spike_price_usd_mwh: float  # [USD/MWh]
    duration_curve: tuple[tuple[float, float], ...] | None  # (share of hours, multiple)
    duration_bins: int  # [count]
    transmission_4cp_usd_kw_year: float  # [USD/kW-year]
    fourcp_avoidance: float  # [probability]
    forward_usd_mwh: tuple[tuple[int, float], ...] | None = derived()  # ((month, USD/MWh), ...)
    ancillary: AncillaryParams | None = None  # None: no ancillary services


@dataclass(frozen=True)
class SitePowerParams:
    ppa_mw: float  # [MW]
    ppa_price_usd_mwh: float | None  # [USD/MWh]


@dataclass(frozen=True)
class SiteMiningParams:
    mw: float  # grid MW of mining load today [MW]
    efficiency_j_th: float  # [J/TH]
    pue: float  # [-]
    uptime: float  # [share of hours]
    opex_usd_mw_month: float  # [USD/MW-month]
    asic_cost_usd_th: float  # [USD/TH]
    asic_refresh_years: float  # [years]
    efficiency_gain_per_year: float  # [share/yr]
    opex_avoidable_share: float = 0.0  # [share of opex saved in an idle month]
    refresh: str = "always"  # "when_it_pays", "always" (revision 1) or "never"
    sga_usd_mw_month: float = 0.0  # overhead per grid MW, never saved by idling [USD/MW-month]
    attrition: float = 0.0  # share of a fleet's machines lost a year [1/yr]


@dataclass(frozen=True)
class SiteAIParams:
    max_it_mw: float  # [MW IT]
    pue: float  # [-]
    retrofit_mw: float  # [MW IT]
    retrofit_capex_usd_mw: float  # [USD/MW IT]
    build_capex_usd_mw: float  # [USD/MW IT]
    capex_overrun_volatility: float  # [-]
    lead_time_months: int  # [months]
    delay_mean_months: float  # [months]
    opex_usd_mw_month: float  # [USD/MW IT-month]
    sga_usd_mw_month: float = 0.0  # overhead per IT MW [USD/MW IT-month]


@dataclass(frozen=True)
class SaleParams:
    price_usd_mw: float | None  # a buyer's price per MW of interconnect; None: no sale [USD/MW]
    months_to_close: int  # [months from the start]
    close_prob: float  # [-]
    tax_basis_usd_mw: float  # deducted from the price at closing [USD/MW of interconnect]
    jv_share: float | None  # a partner's share of a conversion; None: no JV [-]


@dataclass(frozen=True)
class SiteParams:
    name: str
    market: str  # a key of Portfolio.power_markets
    interconnect_mw: float  # [MW]
    curtailable: bool
    power: SitePowerParams
    mining: SiteMiningParams
    ai: SiteAIParams | None  # None: the site cannot host AI
    sale: SaleParams | None = None  # None: no buyer or partner


@dataclass(frozen=True)
class RampPhaseParams:
    months: int  # [months from first rent]
    share: float  # [share of the contracted MW paying rent]


@dataclass(frozen=True)
class DebtParams:
    loan_to_cost: float  # [share of equity-side capex]
    rate: float  # [1/yr]
    term_years: float  # [years from the first rent]
    non_recourse: bool
    interest_only_months: int = 0  # [months from the first rent]
    amortization: str = "annuity"  # "annuity" or "bullet"
    market_rate: float | None = None  # the loan's flows are discounted at it; None: rate [1/yr]
    target_dscr: float | None = None  # the loan is at most stabilised NOI / this can carry [x]
    refinance: bool = False  # a bullet is refinanced at maturity (else the equity repays it)
    refinance_dscr: float = 1.3  # the refinancing is sized to the trailing NOI / this [x]
    refinance_rate: float | None = None  # the rate then; None: rate [1/yr]
    refinance_term_years: float = 10.0  # the refinancing amortises over this [years]


@dataclass(frozen=True)
class ContractParams:
    name: str
    price_usd_kw_month: float  # starting rent [USD/kW IT-month]
    escalator: float  # [share/yr]
    term_years: float  # [years]
    min_mw: float  # [MW]
    max_mw: float  # [MW]
    tenant_funded_share: float  # [share of capex]
    power_pass_through: bool
    annual_default_prob: float  # [probability/yr]
    relet_months: int  # [months]
    renewal_prob: float  # [probability at the end of a term]
    relet_capex_usd_mw: float | None  # [USD/MW IT]; None: 5% of the site's build capex
    relet_term_years: float  # [years]
    successor_default_prob: float  # [probability/yr]
    market_rent_volatility: float  # [-]
    eligible_sites: tuple[str, ...] | None  # None: every site
    online_by: str | None  # [YYYY-MM]
    must_sign: bool
    ramp: tuple[RampPhaseParams, ...] = ()
    lease_discount_rate: float | None = None  # a buyer at T discounts the lease at it [1/yr]
    improvements_revert: bool = False  # the tenant-funded share stays with the hall
    retrofit_only: bool = False  # leases only a site's retrofit MW
    successor_price_usd_kw_month: float | None = None  # successors' starting rent; None: price
    price_follows_index: bool = False  # a later build signs at the AI rent index's move
    available_until: str | None = None  # [YYYY-MM] the last month it can be signed
    # the debt of its halls when the contract has its own (resolved over the portfolio's by
    # the adapter); None: the portfolio's (FinancingParams.debt)
    financing: DebtParams | None = None
    # an AI cloud contract (kernels/cloud.py): the miner runs the GPUs; colocation: the tenant
    kind: str = "colocation"  # colocation | cloud | powered_shell
    gpu_capex_usd_mw: float | None = None  # [USD/MW IT]
    gpu_life_years: float = 5.0  # [years]
    gpu_residual_curve: tuple[float, ...] = (0.6, 0.4, 0.25, 0.15, 0.1)  # [share of cost]
    prepayment_share: float = 0.0  # [share of the first term's revenue]
    prepayment_months: int = 0  # [months from construction start]
    gpu_loan_to_cost: float = 0.0  # [share of the GPUs' cost]
    gpu_debt_rate: float | None = None  # [1/yr]; None: the contract's debt rate
    operations_usd_mw_month: float = 0.0  # [USD/MW IT-month at today's prices]
    milestone_months: int | None = None  # [months past plan]; None: no milestone
    milestone_termination_prob: float = 0.0  # [probability]


@dataclass(frozen=True)
class FinancingParams:
    """The financing terms the valuation reads (budgets are the MILP's alone)."""

    debt: DebtParams
    exit_multiple_ai: float  # [x stabilised market NOI of a hall at its re-let]
    exit_multiple_mining: float  # [x mining margin]


@dataclass(frozen=True)
class TaxParams:
    """Income and property taxes (docs/model.md, Taxes). ``rate`` 0 and ``state_rate`` 0
    leave no income tax; ``property_rate`` 0 no property tax."""

    rate: float = 0.0  # federal corporate income tax [share of taxable income]
    state_rate: float = 0.0  # state income tax, deductible federally [share]
    losses: str = "offset"  # "offset" (the group uses them at once) or "carry_forward"
    bonus_depreciation: float = 1.0  # share of eligible capex expensed when in service [-]
    asic_life_years: float = 5.0  # MACRS class of ASICs [years]
    ai_equipment_share: float = 0.5  # of the landlord's hall capex, the rest is building [-]
    ai_equipment_life_years: float = 5.0  # MACRS class of the hall's equipment [years]
    building_life_years: float = 39.0  # straight line, no bonus [years]
    property_rate: float = 0.0  # property tax on assessed value [1/yr]
    property_abatement_years: float = 0.0  # from an asset's purchase [years]
    property_abatement_share: float = 0.0  # of the property tax abated then [-]

    @property
    def income_rate(self) -> float:
        """Federal and state together, the state tax deducted federally [-]."""
        return self.rate + self.state_rate * (1.0 - self.rate)


@dataclass(frozen=True)
class BuildParams:
    decision_years: tuple[int, ...]  # years construction may start (defaults resolved)
    ai_step_mw: float  # [MW]
    refit_capex_usd_mw: float = 0.0  # mid-life refit of a hall's equipment [USD/MW IT]
    refit_years: float = 0.0  # between refits, from energisation; 0: none [years]
    max_tranches_per_site: int = 1  # a site converts in up to this many tranches


@dataclass(frozen=True)
class ObjectiveParams:
    cvar_alpha: float  # tail level of the CVaR [-]


@dataclass(frozen=True)
class Portfolio:
    """Everything one valuation reads: the horizon, the market, power markets, sites,
    contracts, financing terms, build rules and the CVaR level."""

    name: str
    start: str  # first month [YYYY-MM]
    horizon_years: int  # [years]
    discount_rate: float  # annual, unlevered cost of capital [1/yr]
    simulation: SimulationParams
    market: MarketParams
    power_markets: dict[str, PowerMarketParams]
    sites: tuple[SiteParams, ...]
    contracts: tuple[ContractParams, ...]
    financing: FinancingParams
    build: BuildParams
    objective: ObjectiveParams
    tax: TaxParams = TaxParams()

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
        last = month_index("0000-01", self.start) + self.months - 1
        return tuple(range(self.start_year, last // 12 + 1))

    @property
    def decision_years(self) -> tuple[int, ...]:
        """Build years in effect."""
        return self.build.decision_years

    def site(self, name: str) -> SiteParams:
        return next(s for s in self.sites if s.name == name)

    def contracts_for(self, site: SiteParams) -> tuple[ContractParams, ...]:
        """Contracts the site may sign (none when it has no AI section)."""
        if site.ai is None or site.ai.max_it_mw <= 0:
            return ()
        return tuple(
            c for c in self.contracts if c.eligible_sites is None or site.name in c.eligible_sites
        )
