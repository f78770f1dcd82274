"""The options a site offers (docs/model.md) and the per-chunk NPVs of all of them."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ._cuda import SiteInputs, site_stream_arrays
from ._cuda import market_paths as fused_market_paths
from ._cuda import power_paths as fused_power_paths
from .ancillary import GridService, grid_service
from .backend import fused_enabled
from .coefficients import (
    SiteStreams,
    ai_coefficients,
    bare_coefficients,
    leverage_coefficients,
    mining_segments,
    site_streams,
    stream_weights,
    unlevered,
)
from .debt import Loan
from .hosting import (
    Tenancy,
    capex_usd,
    construction_start,
    energisation,
    mining_left_mw,
    mining_while_built_mw,
    site_draws,
)
from .losses import (
    YearTables,
    carried_correction,
    group_income,
    mining_income,
    ppa_income,
)
from .market import (
    Calendar,
    MarketPaths,
    halving_indices,
    horizon_calendar,
    market_paths,
    start_hashprice,
)
from .mining import (
    Fleet,
    MiningStreams,
    asic_cost_path,
    fleet_path,
    generations,
    idle_saving,
    mining_streams,
    ppa_settlement,
    refresh_period,
    refresh_weights,
    survival,
)
from .params import ContractParams, Portfolio, month_index
from .power import PowerPaths, power_paths
from .sale import JV_SUFFIX, SELL, jv_share, offers_sale, sale_closes, sale_income, sold_npv
from .tranches import PLUS, Tranche, combinations, mining_cuts, tranche_capex_usd


@dataclass(frozen=True)
class SiteOption:
    """One option: ``it_mw`` of IT converted from January of ``build_year`` for a contract;
    keep hashing without a contract; or sell the site (:mod:`.sale`)."""

    site_index: int
    label: str
    it_mw: float
    build_year: int | None
    contract_index: int | None
    hall_share: float = 1.0  # the miner's share of the hall: 1 less a JV partner's
    sells: bool = False  # the option ``sell``: the site's sale
    # a phased site's tranches (:mod:`.tranches`), () for any other option; then it_mw is
    # their sum, build_year and contract_index the first's
    parts: tuple[Tranche, ...] = ()

    @property
    def hashes(self) -> bool:
        """Keep hashing: no contract, no sale."""
        return self.contract_index is None and not self.sells

    @property
    def tranches(self) -> tuple[Tranche, ...]:
        """The halls the option builds: its parts, or itself; () without a contract."""
        if self.parts:
            return self.parts
        if self.contract_index is None:
            return ()
        return (Tranche(self.it_mw, self.build_year, self.contract_index),)


@dataclass(frozen=True)
class OptionGroup:
    """Options of one site sharing a build year and contract (levels, and the miner's share
    of the hall in a joint venture, differ only)."""

    build_year: int
    contract_index: int
    columns: np.ndarray  # positions of these options in the site's option list
    it_mw: np.ndarray
    hall_share: np.ndarray  # the miner's share of each option's hall


def site_options(scenario: Portfolio, site_index: int) -> list[SiteOption]:
    """Keep hashing, sell where a buyer offers, then every (level, build year, contract)
    the site may take, each followed by its joint-venture twin where a partner offers one.

    Levels run from ``ai_step_mw`` to the site's AI limit in steps of
    ``ai_step_mw``; a level above a contract's ``max_mw`` is not offered for it, nor one
    above the site's ``retrofit_mw`` for a ``retrofit_only`` contract, nor one below its
    ``min_mw`` where its ``eligible_sites`` name this site alone (no plan could take it).
    """
    site = scenario.sites[site_index]
    options = [SiteOption(site_index, "hash", 0.0, None, None)]
    if offers_sale(site):
        options.append(SiteOption(site_index, SELL, 0.0, None, None, sells=True))
    partner = jv_share(site)
    eligible = scenario.contracts_for(site)
    if not eligible:
        return options
    step = scenario.build.ai_step_mw
    levels = step * np.arange(1, int(np.floor(site.ai.max_it_mw / step + 1e-9)) + 1)
    for contract in eligible:
        c_index = scenario.contracts.index(contract)
        most = contract_cap_mw(site, contract)
        least = contract.min_mw if one_site_only(contract) else 0.0  # here or nowhere
        offered = levels[(levels <= most + 1e-9) & (levels >= least - 1e-9)]
        for year in scenario.decision_years:
            if not open_in(scenario, contract, year):
                continue  # the offer lapsed before this build year starts
            for level in offered:
                label = option_label(level, year, contract.name)
                options.append(SiteOption(site_index, label, float(level), year, c_index))
                if partner is not None:
                    options.append(
                        SiteOption(site_index, label + JV_SUFFIX, float(level), year, c_index,
                                   hall_share=1.0 - partner)
                    )  # fmt: skip
    return options + phased_options(scenario, site_index, options)


def phased_options(
    scenario: Portfolio, site_index: int, singles: list[SiteOption]
) -> list[SiteOption]:
    """A site's conversions in 2 to ``build.max_tranches_per_site`` tranches (:mod:`.tranches`)
    on distinct (build year, contract) pairs of its single options (without a JV partner),
    labelled by their tranches' labels joined with ``+``."""
    most = scenario.build.max_tranches_per_site
    if most < 2:
        return []
    site = scenario.sites[site_index]
    groups: dict[tuple[int, int], list[float]] = {}
    for o in singles:
        if o.contract_index is not None and o.hall_share == 1.0:
            groups.setdefault((o.build_year, o.contract_index), []).append(o.it_mw)
    for levels in groups.values():
        levels.sort()

    def fits(tranches: tuple[Tranche, ...]) -> bool:
        rates = {Loan.of(scenario, scenario.contracts[t.contract_index]).market_rate
                 for t in tranches}  # fmt: skip
        if len(rates) > 1:
            return False  # one site, one financing rate
        done = 0.0
        by_contract: dict[int, float] = {}
        for t in tranches:
            contract = scenario.contracts[t.contract_index]
            by_contract[t.contract_index] = by_contract.get(t.contract_index, 0.0) + t.it_mw
            if by_contract[t.contract_index] > contract_cap_mw(site, contract) + 1e-9:
                return False
            if contract.retrofit_only and done + t.it_mw > site.ai.retrofit_mw + 1e-9:
                return False  # its hall must be a retrofit: the MW before it took them
            done += t.it_mw
        return True

    out = []
    for tranches in combinations(site, groups, most, fits):
        label = PLUS.join(
            option_label(t.it_mw, t.build_year, scenario.contracts[t.contract_index].name)
            for t in tranches
        )
        first = tranches[0]
        total = float(sum(t.it_mw for t in tranches))
        out.append(SiteOption(site_index, label, total, first.build_year, first.contract_index,
                              parts=tranches))  # fmt: skip
    return out


def option_label(it_mw: float, build_year: int, contract_name: str) -> str:
    """A conversion's label in options.csv and plan.csv: ``ai<MW>-<year>-<contract>``."""
    return f"ai{it_mw:g}-{build_year}-{contract_name}"


def contract_cap_mw(site: Any, contract: Any) -> float:
    """The most IT MW a contract may lease at a site: its ``max_mw``, and the site's
    ``retrofit_mw`` for a ``retrofit_only`` contract [MW]."""
    if contract.retrofit_only:
        return min(contract.max_mw, site.ai.retrofit_mw)
    return contract.max_mw


def one_site_only(contract: Any) -> bool:
    """The contract's ``eligible_sites`` name a single site: signed there or nowhere, at
    its ``min_mw`` at least."""
    return contract.eligible_sites is not None and len(set(contract.eligible_sites)) == 1


def open_in(scenario: Portfolio, contract: ContractParams, build_year: int) -> bool:
    """Whether ``contract`` can still be signed when construction starts in ``build_year``
    (its ``available_until``, the last month it can be signed)."""
    if contract.available_until is None:
        return True
    last = month_index(scenario.start, contract.available_until)
    return construction_start(scenario, build_year) <= last


def option_groups(options: list[SiteOption]) -> list[OptionGroup]:
    groups: dict[tuple[int, int], list[int]] = {}
    for j, opt in enumerate(options):
        if opt.contract_index is not None and not opt.parts:
            groups.setdefault((opt.build_year, opt.contract_index), []).append(j)
    return [
        OptionGroup(
            year,
            c,
            np.array(cols),
            np.array([options[j].it_mw for j in cols]),
            np.array([options[j].hall_share for j in cols]),
        )
        for (year, c), cols in groups.items()
    ]


@dataclass(frozen=True)
class ChunkMarket:
    """Everything shared by the sites of one chunk of scenarios."""

    scenarios: Any
    cal: Calendar
    market: MarketPaths
    power: list[PowerPaths | None]  # None: a market no site of the chunk uses


def chunk_market(
    scenario: Portfolio, scenarios: Any, *, xp: ModuleType, sites: list[int] | None = None
) -> ChunkMarket:
    """Market paths and the power paths of the markets of ``sites`` (default: all)."""
    cal = horizon_calendar(scenario)
    fused = fused_enabled(xp)  # the one place that picks a fused kernel over its xp twin
    market = (fused_market_paths if fused else market_paths)(scenario, scenarios, xp=xp)
    names = list(scenario.power_markets)
    wanted = (
        set(range(len(names)))
        if sites is None
        else {names.index(scenario.sites[i].market) for i in sites}
    )
    draw_power = fused_power_paths if fused else power_paths
    power = [
        draw_power(scenario, i, cal, scenarios, xp=xp) if i in wanted else None
        for i in range(len(names))
    ]
    return ChunkMarket(scenarios, cal, market, power)


def market_rows(parts: list[tuple[int, ChunkMarket]], lo: int, hi: int, *, xp: ModuleType):
    """Scenarios [lo, hi) of chunk markets kept in scenario order, as one ChunkMarket.

    ``parts`` are (first scenario, market) pairs that together cover [lo, hi) without gaps.
    Every per-scenario path is computed for its scenario alone, so these rows equal the
    ones :func:`chunk_market` would draw for [lo, hi). None when a part lacks a power
    market another part has (the caller then draws the chunk again).
    """
    pieces = []
    for first, ctx in parts:
        a, b = max(lo, first), min(hi, first + ctx.scenarios.shape[0])
        if a < b:
            pieces.append((a - first, b - first, ctx))
    drawn = {tuple(p is None for p in ctx.power) for _, _, ctx in pieces}
    if len(drawn) != 1:
        return None

    def rows(get):
        taken = [get(ctx)[a:b] for a, b, ctx in pieces]
        return taken[0] if len(taken) == 1 else xp.concatenate(taken, axis=0)

    first = pieces[0][2]
    market = MarketPaths(
        btc_usd=rows(lambda c: c.market.btc_usd),
        hashrate_eh=rows(lambda c: c.market.hashrate_eh),
        reward_btc=rows(lambda c: c.market.reward_btc),
        hashprice=rows(lambda c: c.market.hashprice),
        ai_rent_index=rows(lambda c: c.market.ai_rent_index),
    )
    power = [
        None
        if paths is None
        else PowerPaths(
            level=rows(lambda c, k=k: c.power[k].level),
            fourcp_avoided=rows(lambda c, k=k: c.power[k].fourcp_avoided),
            curve=paths.curve,
        )
        for k, paths in enumerate(first.power)
    ]
    return ChunkMarket(rows(lambda c: c.scenarios), first.cal, market, power)


# what SiteChunk.levers holds per option, in this order: the PV of the terminal value; what
# the project debt adds (E[NPV] less the E[NPV] without it); the part of that which is the
# tax its interest saves; and the part which is its rate below the market's
LEVERS = ("terminal", "leverage", "tax_shield", "rate_subsidy")


@dataclass(frozen=True)
class SiteChunk:
    """NPVs of every option of a site on one chunk, with what the expectations need."""

    npv: Any  # (N, O) [USD]
    events: dict[tuple[int, int], Tenancy]  # by (build year, contract)
    fleet: Fleet
    # (N, len(LEVERS) O) [USD]: each LEVERS figure of every option, a block of O per lever
    levers: Any = None


def ai_power_per_it_mw(
    scenario: Portfolio, site_index: int, power: PowerPaths, cal: Calendar, *, xp: ModuleType
) -> Any:
    """Grid power cost of one MW of IT per month when the miner pays it [USD/MW]."""
    site = scenario.sites[site_index]
    pm = scenario.power_markets[site.market]
    fourcp = pm.transmission_4cp_usd_kw_year * 1000.0 / 12.0
    return site.ai.pue * (xp.asarray(cal.hours)[None, :] * power.level + fourcp)


def site_mining(
    scenario: Portfolio, site_index: int, ctx: ChunkMarket, *, xp: ModuleType
) -> tuple[PowerPaths, Fleet, MiningStreams]:
    """The site's power market paths, fleet, and per-MW mining streams on the chunk."""
    site = scenario.sites[site_index]
    power = site_power(scenario, site_index, ctx)
    pm = scenario.power_markets[site.market]
    fl = site_fleet(scenario, site_index, ctx, power, xp=xp)
    mining = mining_streams(
        site, fl, ctx.market, power, ctx.cal, pm.transmission_4cp_usd_kw_year,
        scenario.market.pool_fee, xp=xp, tax=scenario.tax,
        service=site_service(scenario, site_index, power),
    )  # fmt: skip
    return power, fl, mining


def site_service(scenario: Portfolio, site_index: int, power: PowerPaths) -> GridService | None:
    """The ancillary programme the site's mining may enrol in: its market's, where it can
    curtail (:mod:`.ancillary`); else None."""
    site = scenario.sites[site_index]
    if not site.curtailable:
        return None
    return grid_service(scenario.power_markets[site.market].ancillary, power.curve)


def site_fleet(
    scenario: Portfolio, site_index: int, ctx: ChunkMarket, power: PowerPaths, *, xp: ModuleType
) -> Fleet:
    """The site's fleet on the chunk under its refresh rule (:func:`mining.fleet_path`)."""
    m = scenario.market
    site = scenario.sites[site_index]
    return fleet_path(
        site, ctx.market.hashprice, power, ctx.cal, m.pool_fee,
        start_hashprice(scenario), m.asic_price_elasticity, scenario.discount_rate, xp=xp,
        transmission_4cp_usd_kw_year=scenario.power_markets[site.market].transmission_4cp_usd_kw_year,
        halvings=halving_indices(scenario), service=site_service(scenario, site_index, power),
    )  # fmt: skip


def site_chunk(
    scenario: Portfolio,
    site_index: int,
    options: list[SiteOption],
    ctx: ChunkMarket,
    *,
    xp: ModuleType,
    levers: bool = False,
    streams: tuple[SiteStreams, Fleet] | None = None,
) -> SiteChunk:
    """NPV of each option of one site on the chunk's scenarios (the fast path).

    ``levers``: also each option's PV of terminal value and what its project debt adds
    (``SiteChunk.levers``); only the valuation's first pass wants them. ``streams``: the
    site's :func:`site_streams_of` on this chunk, when the caller has them already (they
    depend on the site's mining, the market paths and whether an option pays AI power, not
    on contract terms or AI capex)."""
    site, cal = scenario.sites[site_index], ctx.cal
    groups = option_groups(options)
    if streams is None:
        streams = site_streams_of(scenario, site_index, options, ctx, xp=xp)
    streams, fl = streams
    n, width = ctx.scenarios.shape[0], len(options)
    npv = xp.empty((n, width))
    # the levers (LEVERS), a block of ``width`` columns each
    lever = xp.zeros((n, len(LEVERS) * width)) if levers else None
    terminal, leverage, shield, subsidy = (
        (lever[:, k * width : (k + 1) * width] for k in range(len(LEVERS)))
        if levers
        else (None,) * 4
    )
    multiple, mw = scenario.financing.exit_multiple_mining, site.mining.mw
    after_tax = 1.0 - scenario.tax.income_rate
    pvs, tvs = mining_segments(streams, (0,), cal, multiple, after_tax, xp=xp)
    before_all, after_all = (pv + tv for pv, tv in zip(pvs, tvs, strict=True))
    carry = (
        _CarriedLosses(scenario, site_index, ctx, streams, fl, xp) if _carries(scenario) else None
    )
    hashing = streams.ppa_pv + mw * (before_all + after_all)
    if carry is not None:
        hashing = hashing + carry.hashing()
    for j, opt in enumerate(options):
        if opt.hashes:
            npv[:, j] = hashing
            if levers:
                terminal[:, j] = mw * (tvs[0] + tvs[1])
        elif opt.sells:
            sold = _Sold(scenario, site_index, ctx, streams, hashing, carry, xp)
            npv[:, j] = sold.npv
            if levers:
                terminal[:, j] = xp.where(sold.closed, mw * sold.terminal, mw * (tvs[0] + tvs[1]))
    events = {}
    phased = [j for j, opt in enumerate(options) if opt.parts]
    if groups or phased:
        draws = site_draws(
            scenario, site_index, ctx.scenarios, xp=xp, rent_index=ctx.market.ai_rent_index
        )
    coefs: dict[tuple[int, int], Any] = {}  # (build year, contract) -> its coefficients
    bares: dict[tuple[int, int], Any] = {}  # ... and without debt (with levers)

    def group_args(build_year: int, contract_index: int) -> tuple:
        return (scenario, site_index, contract_index, build_year, draws, streams, fl, cal,
                ctx.scenarios)  # fmt: skip

    def group_coef(build_year: int, contract_index: int) -> Any:
        key = (build_year, contract_index)
        if key not in coefs:
            coefs[key] = ai_coefficients(*group_args(*key), xp=xp)
            events[key] = coefs[key].tenancy
        return coefs[key]

    def group_bare(build_year: int, contract_index: int) -> Any:
        key = (build_year, contract_index)
        if key not in bares:
            bares[key] = bare_coefficients(*group_args(*key), xp=xp)
        return bares[key]

    for g in groups:
        cs = construction_start(scenario, g.build_year)
        cuts = (cs, energisation(scenario, site, g.build_year))
        pvs, tvs = mining_segments(streams, cuts, cal, multiple, after_tax, xp=xp)
        before, during, after = (pv + tv for pv, tv in zip(pvs, tvs, strict=True))
        coef = group_coef(g.build_year, g.contract_index)
        # the hall's sizes carry the miner's share of it (a JV partner takes the rest)
        share = xp.asarray(g.hall_share)[None, :]
        levels = share * xp.asarray(g.it_mw)[None, :]
        left = xp.asarray(mining_left_mw(site, g.it_mw))[None, :]
        built = xp.asarray(mining_while_built_mw(site, g.it_mw))[None, :]
        capex = share * xp.asarray(capex_usd(site.ai, g.it_mw))[None, :]
        base = streams.ppa_pv + mw * before
        npv[:, g.columns] = (
            base[:, None]
            + built * during[:, None]
            + left * after[:, None]
            + levels * coef.per_mw[:, None]
            + capex * coef.per_capex[:, None]
        )
        sizes = (levels, built, left, capex)
        if carry is not None:
            total, saving = carry.group(g, coef, draws, sizes)
            npv[:, g.columns] += total
        if not levers:
            continue
        terminal[:, g.columns] = (
            (mw * tvs[0])[:, None]
            + built * tvs[1][:, None]
            + left * tvs[2][:, None]
            + levels * coef.terminal_per_mw[:, None]
            + capex * coef.terminal_per_capex[:, None]
        )
        bare = group_bare(g.build_year, g.contract_index)
        per_mw_debt, per_capex_debt = leverage_coefficients(coef, bare)
        leverage[:, g.columns] = levels * _column(per_mw_debt, xp) + capex * _column(
            per_capex_debt, xp
        )
        shield[:, g.columns] = capex * _column(coef.shield_per_capex, xp)
        subsidy[:, g.columns] = capex * _column(coef.subsidy_per_capex, xp)
        if carry is not None:
            shield[:, g.columns] += saving
            leverage[:, g.columns] += carry.leverage(g, bare, draws, sizes, total, saving)
    for j in phased:
        parts = options[j].parts
        cuts, mining_mw = mining_cuts(scenario, site, parts)
        pvs, tvs = mining_segments(streams, cuts, cal, multiple, after_tax, xp=xp)
        capex_today = tranche_capex_usd(site.ai, parts)
        halls = [(t, cap, group_coef(t.build_year, t.contract_index))
                 for t, cap in zip(parts, capex_today, strict=True)]  # fmt: skip
        npv[:, j] = streams.ppa_pv + sum(
            m * (pv + tv) for m, pv, tv in zip(mining_mw, pvs, tvs, strict=True)
        )
        for t, cap, coef in halls:
            npv[:, j] += t.it_mw * coef.per_mw + cap * coef.per_capex
        if carry is not None:
            total, saving = carry.phased(halls, cuts, mining_mw, draws)
            npv[:, j] += total
        if not levers:
            continue
        terminal[:, j] = sum(m * tv for m, tv in zip(mining_mw, tvs, strict=True))
        for t, cap, coef in halls:
            terminal[:, j] += t.it_mw * coef.terminal_per_mw + cap * coef.terminal_per_capex
            bare = group_bare(t.build_year, t.contract_index)
            per_mw_debt, per_capex_debt = leverage_coefficients(coef, bare)
            leverage[:, j] += t.it_mw * per_mw_debt + cap * per_capex_debt
            shield[:, j] += cap * coef.shield_per_capex
            subsidy[:, j] += cap * coef.subsidy_per_capex
        if carry is not None:
            bare_halls = [(t, cap, group_bare(t.build_year, t.contract_index) or coef)
                          for t, cap, coef in halls]  # fmt: skip
            shield[:, j] += saving
            leverage[:, j] += carry.phased_leverage(halls, bare_halls, cuts, mining_mw, draws,
                                                    total, saving)  # fmt: skip
    return SiteChunk(npv, events, fl, lever)


class _Sold:
    """The option ``sell`` on the chunk (:mod:`.sale`): where the sale closes, the site's
    flows before closing and the proceeds; elsewhere ``hashing``, the site kept."""

    def __init__(self, scenario, site_index, ctx, streams, hashing, carry, xp):
        site, cal = scenario.sites[site_index], ctx.cal
        c = (site.sale.months_to_close,)
        multiple = scenario.financing.exit_multiple_mining
        after_tax = 1.0 - scenario.tax.income_rate
        pvs, tvs = mining_segments(streams, c, cal, multiple, after_tax, xp=xp)
        self.closed = sale_closes(scenario, site_index, ctx.scenarios, xp=xp)
        self.terminal = tvs[0]  # the terminal value of the months before closing, per MW
        ppa = ppa_settlement(site, site_power(scenario, site_index, ctx), cal, xp=xp)
        sold = sold_npv(scenario, site_index, pvs[0] + tvs[0], ppa, cal.discount, xp=xp)
        if carry is not None:  # the closed branch's correction (hashing has its own)
            sold = sold + carry.sold(ppa, c)
        self.npv = xp.where(self.closed, sold, hashing)


def _carries(scenario: Portfolio) -> bool:
    """Losses are carried forward (and there is a tax for them to change)."""
    return scenario.tax.losses == "carry_forward" and scenario.tax.income_rate > 0


class _CarriedLosses:
    """What carrying losses forward changes in a site's option values (kernels.losses)."""

    def __init__(self, scenario, site_index, ctx, streams, fl, xp):
        self.scenario, self.site_index, self.ctx = scenario, site_index, ctx
        self.streams, self.fl, self.xp = streams, fl, xp
        self.site = scenario.sites[site_index]
        self.years = YearTables.of(scenario)
        cal = ctx.cal
        self.rate = scenario.tax.income_rate
        self.unlevered_last = xp.asarray(cal.discount[self.years.last_months])
        power = site_power(scenario, site_index, ctx)
        self.ppa = ppa_income(ppa_settlement(self.site, power, cal, xp=xp), self.years, xp)
        multiple = scenario.financing.exit_multiple_mining
        whole = mining_income(streams, fl, (0,), cal, multiple, self.years, xp)
        self.hashing_income = self.ppa + self.site.mining.mw * (whole[0] + whole[1])

    def hashing(self) -> Any:
        return carried_correction(
            self.hashing_income, None, self.rate, self.unlevered_last, None, self.xp
        )[0]

    def sold(self, ppa: Any, cuts: tuple[int]) -> Any:
        """The correction where the site's sale closes at ``cuts[0]``: its flows before
        closing and the gain on the sale."""
        xp, cal, c = self.xp, self.ctx.cal, cuts[0]
        multiple = self.scenario.financing.exit_multiple_mining
        before = mining_income(self.streams, self.fl, cuts, cal, multiple, self.years, xp)[0]
        kept = xp.where(xp.arange(cal.months)[None, :] < c, ppa, 0.0)
        income = ppa_income(kept, self.years, xp) + self.site.mining.mw * before
        n = income.shape[0]
        income = income + sale_income(self.scenario, self.site_index, self.years.edges, n, xp=xp)
        return carried_correction(income, None, self.rate, self.unlevered_last, None, xp)[0]

    def _income(self, g, coef, draws, sizes, scenario):
        """(taxable income without interest, interest): (N, L, Y) each, or None."""
        xp, cal, site = self.xp, self.ctx.cal, self.site
        levels, built, left, capex = (a[..., None] for a in sizes)
        cuts = (
            construction_start(scenario, g.build_year),
            energisation(scenario, site, g.build_year),
        )
        multiple = scenario.financing.exit_multiple_mining
        segments = mining_income(self.streams, self.fl, cuts, cal, multiple, self.years, xp)
        group = group_income(scenario, self.site_index, g.contract_index, g.build_year, draws,
                             self.streams, self.fl, cal, coef, self.years, xp=xp)  # fmt: skip
        income = (
            (self.ppa + site.mining.mw * segments[0])[:, None, :]
            + built * segments[1][:, None, :]
            + left * segments[2][:, None, :]
            + levels * group.per_mw[:, None, :]
            + capex * group.per_capex[:, None, :]
        )
        interest = capex * group.interest_per_capex[:, None, :]
        if not isinstance(group.interest_per_mw, float):  # a cloud contract's GPU loan
            interest = interest + levels * group.interest_per_mw[:, None, :]
        rate = group.market_rate
        market_last = xp.asarray((1.0 + rate) ** (-self.years.last_months / 12.0))
        return income, interest, market_last

    def _phased_income(self, halls, cuts, mining_mw, draws, scenario):
        """A phased option's (taxable income without interest, interest, the debt's
        discount factors): (N, Y) each (:mod:`.tranches`)."""
        xp, cal = self.xp, self.ctx.cal
        multiple = scenario.financing.exit_multiple_mining
        segments = mining_income(self.streams, self.fl, cuts, cal, multiple, self.years, xp)
        income = self.ppa + sum(m * seg for m, seg in zip(mining_mw, segments, strict=True))
        interest, rate = 0.0, None
        for t, cap, coef in halls:
            args = (self.site_index, t.contract_index, t.build_year, draws, self.streams)
            group = group_income(scenario, *args, self.fl, cal, coef, self.years, xp=xp)
            income = income + t.it_mw * group.per_mw + cap * group.per_capex
            interest = interest + cap * group.interest_per_capex
            if not isinstance(group.interest_per_mw, float):  # a cloud contract's GPU loan
                interest = interest + t.it_mw * group.interest_per_mw
            rate = group.market_rate  # one rate for the site's tranches
        market_last = xp.asarray((1.0 + rate) ** (-self.years.last_months / 12.0))
        return income, interest, market_last

    def phased(self, halls, cuts, mining_mw, draws) -> tuple[Any, Any]:
        """:meth:`group` for a phased option: ``halls`` its (tranche, capex today,
        coefficients), ``cuts`` and ``mining_mw`` its mining segments."""
        income, interest, market_last = self._phased_income(
            halls, cuts, mining_mw, draws, self.scenario
        )
        return carried_correction(
            income, interest, self.rate, self.unlevered_last, market_last, self.xp
        )

    def phased_leverage(self, halls, bare_halls, cuts, mining_mw, draws, total, saving) -> Any:
        """:meth:`leverage` for a phased option: the change less the change of its halls
        without debt (``bare_halls``: each tranche's bare coefficients, or its own where
        the debt is recourse and the hall's flows do not depend on it)."""
        loans = [Loan.of(self.scenario, self.scenario.contracts[t.contract_index])
                 for t, _, _ in halls]  # fmt: skip
        if not any(loan.borrows for loan in loans):
            return 0.0
        bare_scenario = unlevered(self.scenario)
        income, _, _ = self._phased_income(bare_halls, cuts, mining_mw, draws, bare_scenario)
        bare_total, _ = carried_correction(
            income, None, self.rate, self.unlevered_last, None, self.xp
        )
        return total - bare_total

    def group(self, g, coef, draws, sizes) -> tuple[Any, Any]:
        """(the change in each option's NPV, the part of it that is the interest's saving)."""
        income, interest, market_last = self._income(g, coef, draws, sizes, self.scenario)
        return carried_correction(
            income, interest, self.rate, self.unlevered_last, market_last, self.xp
        )

    def leverage(self, g, bare, draws, sizes, total, saving) -> Any:
        """What carrying changes in the leverage: the interest's saving, or, where the debt
        is non-recourse (the hall's own flows depend on it), the change less the change of
        the option without debt (``bare``: its coefficients, :func:`bare_coefficients`)."""
        loan = Loan.of(self.scenario, self.scenario.contracts[g.contract_index])
        if not loan.borrows:
            return 0.0
        if bare is None:
            return saving
        bare_scenario = unlevered(self.scenario)
        income, _, _ = self._income(g, bare, draws, sizes, bare_scenario)
        bare_total, _ = carried_correction(
            income, None, self.rate, self.unlevered_last, None, self.xp
        )
        return total - bare_total


def site_streams_of(
    scenario: Portfolio,
    site_index: int,
    options: list[SiteOption],
    ctx: ChunkMarket,
    *,
    xp: ModuleType,
) -> tuple[SiteStreams, Fleet]:
    """The site's streams and fleet on the chunk for ``options`` (AI power is computed when
    one of their contracts leaves it with the miner)."""
    pays_power = any(
        o.contract_index is not None and not scenario.contracts[o.contract_index].power_pass_through
        for o in options
    )
    return _site_streams(scenario, site_index, ctx, pays_power, xp=xp)


def _column(values: Any, xp: ModuleType) -> Any:
    """Per-scenario values as a column, or a constant as is."""
    return values[:, None] if hasattr(values, "shape") and values.ndim == 1 else values


def _site_streams(
    scenario: Portfolio, site_index: int, ctx: ChunkMarket, pays_power: bool, *, xp: ModuleType
) -> tuple[SiteStreams, Fleet]:
    """The site's prefix-sum streams on the chunk: the fused kernel on CuPy, else xp code.

    ``pays_power``: some contract of the site leaves AI grid power with the miner, so
    ``ai_power`` is the cost of one IT MW (else zeros).
    """
    site, cal = scenario.sites[site_index], ctx.cal
    if fused_enabled(xp):
        inputs = fused_site_inputs(scenario, site_index, ctx, pays_power)
        power = site_power(scenario, site_index, ctx)
        arrays = site_stream_arrays(
            site, scenario.market.pool_fee, inputs, ctx.market.hashprice, power, xp=xp
        )
        generation = arrays.pop("fleet_gen")
        m = scenario.market
        asic = asic_cost_path(
            site, ctx.market.hashprice, start_hashprice(scenario), m.asic_price_elasticity, xp=xp
        )
        # the fleet as the fast path reads it: the running PH/s and the ASIC price (the
        # refresh capex is already inside mining_pv)
        if generation is None:
            fixed = site_fleet(scenario, site_index, ctx, power, xp=xp)
            ph, refresh, alive = fixed.ph_per_mw, fixed.refresh_capex_usd_mw, fixed.alive
        else:
            ph = xp.asarray(inputs.ph_gen)[generation]
            month = xp.arange(cal.months)[None, :]
            refresh = xp.where((generation == month) & (month > 0), asic, 0.0)
            alive = survival(site, generation, cal.months, xp=xp)
        return SiteStreams(**arrays), Fleet(ph, refresh, asic, generation, alive)
    power, fl, mining = site_mining(scenario, site_index, ctx, xp=xp)
    ai_power = (
        ai_power_per_it_mw(scenario, site_index, power, cal, xp=xp)
        if pays_power
        else xp.zeros_like(power.level)
    )
    ppa = ppa_settlement(site, power, cal, xp=xp)
    return site_streams(mining, ai_power, ppa, stream_weights(scenario, cal), xp=xp), fl


def site_power(scenario: Portfolio, site_index: int, ctx: ChunkMarket) -> PowerPaths:
    """The chunk's power paths of the site's market."""
    market = scenario.sites[site_index].market
    return ctx.power[list(scenario.power_markets).index(market)]


def fused_site_inputs(
    scenario: Portfolio, site_index: int, ctx: ChunkMarket, pays_power: bool
) -> SiteInputs:
    """The host-side facts the fused site kernel reads (kernels/_cuda.py)."""
    site, cal = scenario.sites[site_index], ctx.cal
    pm = scenario.power_markets[site.market]
    ph_gen, buy_gen = generations(site, cal.months)
    taxed, capex = stream_weights(scenario, cal)
    tax = scenario.tax
    return SiteInputs(
        ph_gen=ph_gen,
        buy_gen=buy_gen,
        hours=cal.hours,
        taxed=taxed,
        capex_weight=capex,
        prices=cal.cost[:-1],
        curve=site_power(scenario, site_index, ctx).curve,
        fourcp_usd_mw_month=pm.transmission_4cp_usd_kw_year * 1000.0 / 12.0,
        pays_power=pays_power,
        idle_saving=idle_saving(site),
        refresh=site.mining.refresh,
        period=refresh_period(site),
        weights=refresh_weights(
            site, halving_indices(scenario), scenario.discount_rate, cal.months
        ),
        start_hashprice=start_hashprice(scenario),
        asic_price_elasticity=scenario.market.asic_price_elasticity,
        property_tax_month=tax.property_rate / 12.0,
        asic_life_months=12.0 * tax.asic_life_years,
        abatement_months=12.0 * tax.property_abatement_years,
        abatement_share=tax.property_abatement_share,
        attrition=site.mining.attrition,
        service=site_service(scenario, site_index, site_power(scenario, site_index, ctx)),
    )
