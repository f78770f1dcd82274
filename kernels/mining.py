"""Mining on a site (docs/model.md), per MW of grid power and month.

Energy accounting: the PPA is take-or-pay for ``ppa_mw`` at its price, unused PPA
power is sold at the bin price and load above the PPA buys at the bin price. Summed
over bins that is ppa_mw * (p_k - ppa_price) (a settlement independent of the load)
plus load_k * p_k, so each MW of load simply pays the bin price and the PPA is a
site-level settlement stream (:func:`ppa_settlement`). The settlement is the same for
every option of a site, so it moves no decision; it is taken to end with the horizon
and is not capitalised in the terminal value (which values mining at market prices).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .ancillary import GridService, enrolled_month
from .market import Calendar, MarketPaths
from .params import SiteParams, TaxParams
from .power import PowerPaths, curtailment
from .tax import assessed_share, property_rate_at

TH_PER_PH = 1000.0


@dataclass(frozen=True)
class Fleet:
    """The site's ASIC fleet per month: (T,) numpy arrays where it is the same in every
    scenario, (N, T) backend arrays where the refresh is decided per scenario.

    Attributes
    ----------
    ph_per_mw : array [PH/s per grid MW]
        1000 / (J/TH x PUE) of the fleet running that month.
    refresh_capex_usd_mw : array [USD per grid MW]
        ASIC purchase in the months the fleet is refreshed, else 0.
    asic_cost_usd_mw : array [USD per grid MW]
        Cost of buying the current-generation fleet that month (used when converted
        MW return to mining).
    generation : array (N, T) of int64, or None
        Month the running fleet was bought, where it differs by scenario.
    alive : float, or array as ``ph_per_mw``
        Share of the running fleet's machines still working (``mining.attrition``); 1.0
        without attrition.
    """

    ph_per_mw: Any
    refresh_capex_usd_mw: Any
    asic_cost_usd_mw: Any
    # (N, T) int64: the month the running fleet was bought, where that differs by
    # scenario (refresh: when_it_pays); None otherwise
    generation: Any = None
    alive: Any = 1.0

    @property
    def hashing_ph_per_mw(self) -> Any:
        """PH/s per grid MW of the machines still working: what the site hashes."""
        return self.ph_per_mw * self.alive


def fleet(site: SiteParams, months: int) -> Fleet:
    """Revision 1's mechanical fleet (``refresh: always``): refreshed every
    ``asic_refresh_years`` from the start at the constant ``asic_cost_usd_th``; refreshed
    fleets gain ``efficiency_gain_per_year``; the fleet at the start is taken as new."""
    m = site.mining
    t = np.arange(months)
    period = refresh_period(site)
    generation_start = refresh_starts(site, months)  # month the running fleet was bought
    efficiency = m.efficiency_j_th * (1.0 - m.efficiency_gain_per_year) ** (generation_start / 12.0)
    ph_per_mw = 1000.0 / (efficiency * m.pue)
    current_eff = m.efficiency_j_th * (1.0 - m.efficiency_gain_per_year) ** (t / 12.0)
    asic_cost = m.asic_cost_usd_th * TH_PER_PH * 1000.0 / (current_eff * m.pue)
    refresh = np.where((t > 0) & (t % period == 0), m.asic_cost_usd_th * TH_PER_PH * ph_per_mw, 0.0)
    alive = survival(site, generation_start, months, xp=np)
    return Fleet(ph_per_mw, refresh, asic_cost, alive=alive)


def fixed_ph_per_mw(site: SiteParams, months: int) -> np.ndarray | None:
    """The running fleet's PH/s per grid MW when it is the same in every scenario
    (``refresh: always`` or ``never``); None when the refresh is decided per scenario."""
    if site.mining.refresh == "always":
        return fleet(site, months).ph_per_mw
    if site.mining.refresh == "never":
        return np.full(months, generations(site, months)[0][0])
    return None


def fixed_hashing_ph_per_mw(site: SiteParams, months: int) -> np.ndarray | None:
    """:func:`fixed_ph_per_mw` times the share of its machines still working."""
    ph = fixed_ph_per_mw(site, months)
    if ph is None:
        return None
    if site.mining.refresh == "always":
        return ph * survival(site, refresh_starts(site, months), months, xp=np)
    return ph * survival(site, np.zeros(months, dtype=np.int64), months, xp=np)


def refresh_starts(site: SiteParams, months: int) -> np.ndarray:
    """Under ``refresh: always``, the month the running fleet was bought, by month."""
    t = np.arange(months)
    return (t // refresh_period(site)) * refresh_period(site)


def survival(site: SiteParams, bought: Any, months: int, *, xp: ModuleType) -> Any:
    """Share of a fleet bought in month ``bought`` ((T,) or (N, T)) still working in each
    month: it loses ``mining.attrition`` of its machines a year, (1 - a) ^ (age / 12); the
    fleet at the start counts as new. 1.0 (a float) without attrition."""
    if site.mining.attrition <= 0:
        return 1.0
    return alive_at(site, xp.arange(months), xp.asarray(bought))


def alive_at(site: SiteParams, month: Any, bought: Any) -> Any:
    """:func:`survival` in ``month`` of a fleet bought in ``bought`` (broadcast)."""
    a = site.mining.attrition
    if a <= 0:
        return 1.0
    return (1.0 - a) ** ((month - bought) / 12.0)


def refresh_period(site: SiteParams) -> int:
    """Months between refresh dates [months]."""
    return max(1, int(round(12 * site.mining.asic_refresh_years)))


def generations(site: SiteParams, months: int) -> tuple[np.ndarray, np.ndarray]:
    """PH/s per grid MW of the fleet bought in each month, and its cost at the start's ASIC
    price [USD per grid MW] (numpy, length T)."""
    m = site.mining
    t = np.arange(months)
    efficiency = m.efficiency_j_th * (1.0 - m.efficiency_gain_per_year) ** (t / 12.0)
    ph = 1000.0 / (efficiency * m.pue)
    return ph, m.asic_cost_usd_th * TH_PER_PH * ph


# what the subsidy is multiplied by at a halving: the hashprice after the next known
# halving, at this month's price, hashrate and fee share
HALVED = 0.5


@dataclass(frozen=True)
class RefreshWeights:
    """How ``refresh: when_it_pays`` weighs a month's margin gain over a new fleet's life,
    by the month it decides in (numpy, (T,) each).

    The fleet's life, one refresh period from the month it is bought, is cut at the next
    known halving (``market.halving_months`` after that month): ``before`` is the PV of 1
    a month up to it, ``after`` from it to the period's end (0 where no halving falls in
    the period), at whose months the gain is valued at ``ratio`` times the hashprice (the
    subsidy halved; a second halving inside one period, which only a period over four
    years can hold, is valued at the first one's). A month i of the life also counts
    (1 - ``attrition``) ^ (i / 12): the new fleet and the one it replaces both lose that
    share of their machines a year, and the gain with them. Without attrition ``before +
    after`` is the annuity of one refresh period, the first month now.
    """

    before: np.ndarray  # [months]
    after: np.ndarray  # [months]
    ratio: np.ndarray  # [-]


def refresh_weights(
    site: SiteParams, halvings: tuple[int, ...], discount_rate: float, months: int
) -> RefreshWeights:
    """:class:`RefreshWeights` of ``site`` with halvings at months ``halvings`` of the
    horizon (those past it count where the file lists them)."""
    period = refresh_period(site)
    # a month's gain shrinks as both fleets lose machines at the same rate
    v = (1.0 + discount_rate) ** (-1.0 / 12.0) * (1.0 - site.mining.attrition) ** (1.0 / 12.0)
    whole = float(np.sum(v ** np.arange(period, dtype=np.float64)))
    before = np.full(months, whole)
    after, ratio = np.zeros(months), np.ones(months)
    for t in range(months):
        ahead = [h - t for h in halvings if 0 < h - t < period]
        if ahead:
            k = min(ahead)
            before[t] = float(np.sum(v ** np.arange(k, dtype=np.float64)))
            after[t] = float(np.sum(v ** np.arange(k, period, dtype=np.float64)))
            ratio[t] = HALVED
    return RefreshWeights(before, after, ratio)


def fleet_path(
    site: SiteParams,
    hashprice: Any,
    power: PowerPaths,
    cal: Calendar,
    pool_fee: float,
    start_hashprice: float,
    asic_price_elasticity: float,
    discount_rate: float,
    *,
    xp: ModuleType,
    transmission_4cp_usd_kw_year: float = 0.0,
    halvings: tuple[int, ...] = (),
    service: GridService | None = None,
) -> Fleet:
    """The site's fleet under its ``refresh`` rule (docs/model.md, Mining).

    ``always`` is revision 1 (:func:`fleet`). Otherwise ASICs cost ``asic_cost_usd_th`` x
    (hashprice / ``start_hashprice``) ^ ``asic_price_elasticity`` per TH/s. ``never`` keeps
    the first fleet. ``when_it_pays`` refreshes at a refresh date iff the monthly margin the
    new generation gains over the running fleet (its machines still working), at this
    month's hashprice and power level (no foresight), over the fleet's life is at least the
    new fleet's cost: up to the next known halving (month indices ``halvings``) the gain at
    this month's hashprice, after it the gain at the halved subsidy, each weighted by
    :func:`refresh_weights`; a fleet not refreshed is looked at again 12 months later.
    ``service``: the site's market's ancillary programme (:mod:`.ancillary`), which the
    month's margin includes. Vectorised across scenarios, a loop over months (the fused
    site kernel has the same loop per scenario).
    """
    m, months = site.mining, cal.months
    opex = m.opex_usd_mw_month * cal.cost
    if m.refresh == "always":
        return fleet(site, months)
    ph_gen, _ = generations(site, months)
    asic_cost = asic_cost_path(site, hashprice, start_hashprice, asic_price_elasticity, xp=xp)
    if m.refresh == "never":
        alive = survival(site, np.zeros(months, dtype=np.int64), months, xp=np)
        return Fleet(fixed_ph_per_mw(site, months), np.zeros(months), asic_cost, alive=alive)
    n, period = hashprice.shape[0], refresh_period(site)
    weights = refresh_weights(site, halvings, discount_rate, months)
    fourcp = xp.broadcast_to(
        running_fourcp(site, power, transmission_4cp_usd_kw_year, xp=xp), hashprice.shape
    )
    ph_table = xp.asarray(ph_gen)
    bought = xp.zeros(n, dtype=xp.int64)  # month the running fleet was bought
    due_at = xp.full(n, period, dtype=xp.int64)  # next refresh date
    generation = xp.empty((n, months), dtype=xp.int64)
    refresh = xp.zeros((n, months))
    for t in range(months):
        due = due_at == t
        if t >= period and bool(xp.any(due)):
            month = (site, power.level[:, t], power.curve, cal.hours[t], pool_fee, opex[t])
            running = (ph_table[bought], fourcp[:, t], alive_at(site, t, bought), service)
            new = (ph_gen[t], fourcp[:, t], 1.0, service)

            def gain(hp: Any, month: tuple = month, running: tuple = running, new: tuple = new):
                return _hashing_over_power(*month, *new, hp=hp, xp=xp) - _hashing_over_power(
                    *month, *running, hp=hp, xp=xp
                )

            worth = weights.before[t] * gain(hashprice[:, t])
            if weights.after[t] > 0:
                worth = worth + weights.after[t] * gain(hashprice[:, t] * weights.ratio[t])
            pays = due & (worth >= asic_cost[:, t])
            refresh[:, t] = xp.where(pays, asic_cost[:, t], 0.0)
            bought = xp.where(pays, t, bought)
            due_at = xp.where(pays, t + period, xp.where(due, t + 12, due_at))
        generation[:, t] = bought
    alive = survival(site, generation, months, xp=xp)
    return Fleet(ph_table[generation], refresh, asic_cost, generation, alive)


def asic_cost_path(
    site: SiteParams,
    hashprice: Any,
    start_hashprice: float,
    asic_price_elasticity: float,
    *,
    xp: ModuleType,
) -> Any:
    """Cost of buying the current generation per grid MW in each month: (T,) at the
    constant price under ``refresh: always`` (revision 1), else (N, T) with the price per
    TH/s following hashprice [USD per grid MW]."""
    if site.mining.refresh == "always":
        return fleet(site, hashprice.shape[1]).asic_cost_usd_mw
    _, buy_gen = generations(site, hashprice.shape[1])
    factor = (hashprice / start_hashprice) ** asic_price_elasticity
    return xp.asarray(buy_gen)[None, :] * factor


def _hashing_over_power(
    site, level, curve, hours, pool_fee, opex, ph_per_mw, fourcp, alive, service, *, hp, xp
):
    """A month's revenue (its ancillary capacity payment with it) less the power it buys
    per grid MW at hashprice ``hp``, for a fleet of ``ph_per_mw`` of which ``alive`` still
    works, or where idling is better (mining_streams' rule) what an idle month saves, the
    opex (``opex`` that month) it avoids over the 4CP charge (``fourcp``) running would pay
    [USD]. Only differences between fleets are read."""
    m = site.mining
    value = value_per_mwh(hp, ph_per_mw, pool_fee)
    hours_up = hours * m.uptime
    earned = 0.0
    if site.curtailable:
        run, price_share = curtailment(value, level, curve, xp=xp)
        if service is not None:
            run, price_share, earned = enrolled_month(
                service, value, level, hours_up, run, price_share, xp=xp
            )
    else:
        run, price_share = 1.0, 1.0
    over_power = (hours_up * run * value - hours_up * level * price_share + earned) * alive
    over_power = over_power - fourcp * alive
    avoidable = idle_saving(site)
    if avoidable > 0:
        over_power = xp.maximum(over_power, avoidable * opex)
    return over_power


def running_fleet(
    site: SiteParams, fleet_: Fleet, months: int, *, xp: ModuleType
) -> tuple[Any, Any]:
    """The month the running fleet was bought and what it cost per grid MW, by month ((T,)
    where the same in every scenario, else (N, T)). The fleet at the start was bought at the
    start's price (``asic_cost_usd_th``), at month 0."""
    m = site.mining
    _, buy_gen = generations(site, months)
    if m.refresh == "always":
        bought = refresh_starts(site, months)
        return bought, buy_gen[bought]
    if m.refresh == "never" or fleet_.generation is None:
        return np.zeros(months, dtype=np.int64), np.full(months, buy_gen[0])
    bought = fleet_.generation
    paid = xp.take_along_axis(xp.asarray(fleet_.asic_cost_usd_mw), bought, axis=1)
    return bought, xp.where(bought > 0, paid, buy_gen[0])


def fleet_property_tax(
    site: SiteParams, fleet_: Fleet, tax: TaxParams, months: int, *, xp: ModuleType
) -> Any:
    """Property tax of the running fleet per grid MW and month: its cost less straight-line
    depreciation over ``asic_life_years``, at ``property_rate`` (abated in the first
    ``property_abatement_years`` of a fleet bought after the start) [USD/MW]."""
    bought, cost = running_fleet(site, fleet_, months, xp=xp)
    bought = xp.asarray(bought)
    age = xp.arange(months) - bought  # (T,) or (N, T), as the fleet is
    share = assessed_share(age, tax.asic_life_years, xp=xp)
    rate = property_rate_at(tax, age, bought > 0, xp=xp)
    return xp.asarray(cost) * share * rate * xp.asarray(fleet_.alive)


@dataclass(frozen=True)
class MiningStreams:
    """Cash flows per grid MW of mining, per scenario and month (backend arrays) [USD/MW].

    ``margin`` = revenue + ancillary - power - opex - fourcp - property_tax (operating;
    refresh capex apart). ``opex`` holds SG&A too; ``ancillary`` is the capacity payment
    of the MW enrolled in the market's ancillary services (:mod:`.ancillary`).
    """

    revenue: Any
    power: Any
    opex: Any
    fourcp: Any
    refresh: Any
    margin: Any
    run_share: Any
    property_tax: Any = 0.0
    ancillary: Any = 0.0


def value_per_mwh(hashprice: Any, ph_per_mw: Any, pool_fee: float) -> Any:
    """Value of a MWh of hashing [USD/MWh]: hashprice / 24 x PH/s per MW x (1 - pool fee)."""
    return hashprice / 24.0 * ph_per_mw * (1.0 - pool_fee)


def mining_streams(
    site: SiteParams,
    fleet_: Fleet,
    market: MarketPaths,
    power: PowerPaths,
    cal: Calendar,
    transmission_4cp_usd_kw_year: float,
    pool_fee: float,
    *,
    xp: ModuleType,
    tax: TaxParams | None = None,
    service: GridService | None = None,
) -> MiningStreams:
    """Revenue, ancillary payments, power, opex (with SG&A), 4CP and property tax of one
    grid MW of mining per month; opex and SG&A at each month's prices (``Calendar.cost``).

    A curtailable site runs the bins priced below the value of hashing, or where the
    market's ancillary programme (``service``) pays more, enrols in it (:mod:`.ancillary`);
    a month whose margin over the power it buys is below what idling would save
    (``opex_avoidable_share`` x opex, and the month's 4CP charge: an idle site draws
    nothing at the peaks) is idled whole: no revenue, no power bought (the PPA settlement
    sells its energy back), no capacity payment, the avoidable share of opex saved, no
    4CP. No foresight. Revenue, power, 4CP, capacity payments and property tax are those
    of the machines still working (``Fleet.alive``); opex, SG&A are per grid MW and paid
    every month, as is the fleet's property tax (``tax``; none without it).
    """
    m = site.mining
    value = value_per_mwh(market.hashprice, per_month(fleet_.ph_per_mw, xp), pool_fee)
    hours_up = xp.asarray(cal.hours)[None, :] * m.uptime
    fourcp = running_fourcp(site, power, transmission_4cp_usd_kw_year, xp=xp)
    earned = 0.0  # without a programme: no (N, T) array of zeros on the hot path
    if site.curtailable:
        run, price_share = curtailment(value, power.level, power.curve, xp=xp)
        if service is not None:
            run, price_share, earned = enrolled_month(
                service, value, power.level, hours_up, run, price_share, xp=xp
            )
    else:
        run = xp.ones_like(value)
        price_share = xp.ones_like(value)
        fourcp = xp.broadcast_to(fourcp, value.shape)
    alive = per_month(fleet_.alive, xp)
    revenue = hours_up * run * value * alive
    energy = hours_up * power.level * price_share * alive
    ancillary = earned * alive
    fourcp = fourcp * alive
    prices = xp.asarray(cal.cost[:-1])[None, :]
    opex_t = m.opex_usd_mw_month * prices
    opex = xp.broadcast_to(opex_t, value.shape)
    avoidable = idle_saving(site)
    if avoidable > 0:
        # a month that earns less over its power than idling saves (its avoidable opex and
        # its 4CP) is idled
        idle = revenue - energy + ancillary < avoidable * opex_t + fourcp
        revenue = xp.where(idle, 0.0, revenue)
        energy = xp.where(idle, 0.0, energy)
        ancillary = xp.where(idle, 0.0, ancillary)
        opex = xp.where(idle, opex_t * (1.0 - avoidable), opex)
        fourcp = xp.where(idle, 0.0, fourcp)
        run = xp.where(idle, 0.0, run)
    opex = opex + m.sga_usd_mw_month * prices
    refresh = xp.broadcast_to(per_month(fleet_.refresh_capex_usd_mw, xp), value.shape)
    ptax = xp.zeros_like(value)
    if tax is not None and tax.property_rate > 0:
        ptax = ptax + per_month(fleet_property_tax(site, fleet_, tax, cal.months, xp=xp), xp)
    margin = revenue + ancillary - energy - opex - fourcp - ptax
    return MiningStreams(revenue, energy, opex, fourcp, refresh, margin, run, ptax, ancillary)


def per_month(values: Any, xp: ModuleType) -> Any:
    """A fleet array as (N, T) or (1, T), to broadcast against (N, T) streams."""
    values = xp.asarray(values)
    return values[None, :] if values.ndim == 1 else values


def running_fourcp(
    site: SiteParams, power: PowerPaths, transmission_4cp_usd_kw_year: float, *, xp: ModuleType
) -> Any:
    """The 4CP transmission charge of a grid MW that runs the month [USD per MW-month]:
    (N, T) for a curtailable site, which misses the peaks where ``fourcp_avoided`` (then
    pays nothing), else the full charge as (1, 1)."""
    full = transmission_4cp_usd_kw_year * 1000.0 / 12.0
    if site.curtailable:
        return full * (1.0 - power.fourcp_avoided)
    return xp.full((1, 1), full)


def idle_saving(site: SiteParams) -> float:
    """Share of opex an idle month saves: the site's ``opex_avoidable_share``, or 0 for a
    site that may not curtail (it runs every month) [-]."""
    return site.mining.opex_avoidable_share if site.curtailable else 0.0


def ppa_settlement(site: SiteParams, power: PowerPaths, cal: Calendar, *, xp: ModuleType) -> Any:
    """SiteParams PPA settlement per month [USD]: ppa_mw x hours x (mean price - PPA price)."""
    p = site.power
    if p.ppa_mw <= 0:
        return xp.zeros_like(power.level)
    return p.ppa_mw * xp.asarray(cal.hours)[None, :] * (power.level - p.ppa_price_usd_mwh)


def hashrate_eh_per_mw(ph_per_mw: np.ndarray) -> np.ndarray:
    """Installed EH/s per grid MW of a fleet of ``ph_per_mw`` PH/s per grid MW."""
    return ph_per_mw / 1000.0
