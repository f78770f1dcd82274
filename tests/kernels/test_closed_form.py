"""Hand-checkable valuations: one site, every random source off, NPV computed on paper.

The paper model below is written from docs/model.md and the module docstrings with plain
Python floats and loops; it calls no kernel function. value_options must match it
within 0.1 % (the brief's tolerance; with every volatility at zero the two agree to
~1e-12, so any convention slip - an off-by-one month, a missing uptime, a PUE in the
wrong place - shows far above it).
"""

from __future__ import annotations

import calendar
import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pytest

from siteopt.app.economics import unit_economics
from siteopt.app.params import kernel_inputs
from siteopt.app.valuation import value_options
from siteopt.kernels import ancillary, power
from siteopt.kernels.hosting import mining_left_mw, mining_while_built_mw
from siteopt.kernels.market import hashprice_usd_ph_day
from siteopt.kernels.params import AncillaryParams
from siteopt.model.schema import Contract, Scenario

from .helpers import DELETE, expected_npv, one_site, one_site_ai

REL = 1e-3  # 0.1 %


# --------------------------------------------------------------------------- paper model


@dataclass
class Paper:
    """Month-by-month deterministic cash flows, all in USD, computed with floats."""

    cash: list[float]
    terminal: float
    npv: float
    run_share: list[float]  # share of hours mining runs, per month
    idle_months: tuple[int, ...] = ()  # months the site idles whole
    refreshed: tuple[int, ...] = ()  # months the fleet is refreshed
    exit_after_tax: float = 0.0  # the exit value at T after its tax [USD]
    owed: float = 0.0  # the debt owed at T [USD]
    debt_rate: float = 0.0  # the debt's flows are discounted at it [1/yr]
    interest: tuple[float, ...] = ()  # the debt's interest by month [USD]


def _months_from(start: str, month: str) -> int:
    (y0, m0), (y1, m1) = ((int(p) for p in x.split("-")) for x in (start, month))
    return (y1 - y0) * 12 + (m1 - m0)


def paper_npv(
    s: Scenario,
    it_mw: float = 0.0,
    build_year: int | None = None,
    contract: Contract | None = None,
    *,
    ppa_in_terminal: bool = False,
    relet_to_mining: bool = False,
    renewals: tuple[bool, ...] | None = None,
    walks: bool = False,
) -> Paper:
    """NPV of one deterministic site option, from docs/model.md sections 1-5.

    ``ppa_in_terminal``: whether the PPA settlement counts in the mining margin that
    the exit multiple capitalises (docs/model.md read literally: "mining margin";
    see test_mining_terminal_value_includes_ppa_settlement).

    Tenant exits are deterministic only at ``annual_default_prob`` 0 (never) or 1 (at
    the first rent month). After that exit the hall stands empty ``relet_months``, then
    a successor pays market rent (r2: after the re-let capex) or, with ``relet_to_mining``
    (the caller picks a case where the better choice is obvious), its grid MW (IT x AI
    PUE) mine again on ASICs bought that month at the current generation's price.

    r2's renewal process, deterministically: successors never exit; at the end of each
    term the tenant renews (no gap) or not as ``renewals`` says in order (default: as
    ``renewal_prob``, which must then be 0 or 1); a successor follows a vacancy of
    ``relet_months`` and pays ``relet_capex_usd_mw`` per IT MW in its first month. Every
    renewal and successor lasts ``relet_term_years``. With ``walks`` the equity hands the
    hall to the lender at the first exit or non-renewal: debt service stops, nothing is
    owed, the hall earns nothing more.
    """
    m, site, tax = s.market, s.sites[0], s.tax
    pm = s.power_markets[site.market]
    mine, ppa = site.mining, site.power
    T, r = 12 * s.horizon_years, s.discount_rate
    y0, m0 = (int(p) for p in s.start.split("-"))
    df = [(1.0 + r) ** (-t / 12.0) for t in range(T + 1)]
    hours = []
    for t in range(T):
        year, month = y0 + (m0 - 1 + t) // 12, (m0 - 1 + t) % 12 + 1
        hours.append(calendar.monthrange(year, month)[1] * 24.0)
    halvings = [_months_from(s.start, h) for h in m.halving_months]

    # --- mining per grid MW (section 3): bins of the duration curve (weights, price multiples)
    curve = [(w, mult) for w, mult in pm.duration_curve]
    mean_mult = sum(w * mult for w, mult in curve)
    curve = [(w, mult / mean_mult) for w, mult in curve]  # the level is the month's mean price
    period = round(12 * mine.asic_refresh_years)
    fourcp_full = pm.transmission_4cp_usd_kw_year * 1000.0 / 12.0  # [USD/MW-month]
    # curtailable load misses the 4CP peaks with probability fourcp_avoidance (0 or 1 here)
    fourcp_mining = fourcp_full * (1.0 - pm.fourcp_avoidance) if site.curtailable else fourcp_full
    level = pm.price_usd_mwh
    revenue_mw, load_mw, margin_mw, refresh_mw, opex_mw = [], [], [], [], []
    # r2: a curtailable site idles a month whose margin over the power it buys is below the
    # opex idling saves: no revenue, no load, that share of opex saved; r3: and no 4CP (an
    # idle site draws nothing at the peaks), which idling saves too
    avoidable = mine.opex_avoidable_share if site.curtailable else 0.0
    idle_months = []
    hashprices = []
    # r3: costs at each month's prices, cost_inflation a year compounded monthly
    prices = [(1.0 + m.cost_inflation) ** (t / 12.0) for t in range(T + 1)]
    for t in range(T):
        subsidy = m.subsidy_btc * 0.5 ** sum(1 for h in halvings if t >= h)
        btc = m.btc_price_usd * math.exp(m.btc_drift * t / 12.0)  # zero vol: drift only
        network_eh = m.hashrate_eh * math.exp(m.hashrate_growth * t / 12.0)
        hashprices.append(144.0 * subsidy * (1.0 + m.fee_share) * btc / (network_eh * 1000.0))

    def ph_of(bought: int) -> float:
        """PH/s per grid MW of the fleet bought in month ``bought``."""
        j_th = mine.efficiency_j_th * (1.0 - mine.efficiency_gain_per_year) ** (bought / 12.0)
        return 1000.0 / (j_th * mine.pue)

    # r3: an ancillary programme (a curtailable site only): an enrolled MW offers the bins
    # it runs and the committed share of those it would curtail, is paid on all of them,
    # and drops the deployed share of each
    anc = pm.ancillary if site.curtailable else None

    def alive_of(bought: int, t: int) -> float:
        """r3: share of the fleet bought in ``bought`` still working in month ``t``."""
        return (1.0 - mine.attrition) ** ((t - bought) / 12.0)

    def month(
        t: int, ph: float, alive: float = 1.0, hp: float | None = None
    ) -> tuple[list[float], float, float, float, bool, float, float]:
        """Loads per bin, revenue, energy and opex of a grid MW of this fleet; idled?; 4CP;
        the ancillary capacity payment"""
        hp = hashprices[t] if hp is None else hp
        value_mwh = hp / 24.0 * ph * (1.0 - m.pool_fee)
        # per bin: load in MWh per grid MW (0 where curtailed: value not above the price)
        loads = [
            w * hours[t] * mine.uptime
            if (not site.curtailable or value_mwh > mult * level)
            else 0.0
            for w, mult in curve
        ]
        earned = 0.0
        if anc is not None:

            def over(xs: list[float]) -> float:
                return sum(
                    x * (value_mwh - mult * level) for x, (_, mult) in zip(xs, curve, strict=True)
                )

            offered = [
                w * (1.0 if x > 0 else anc.committed_share)
                for x, (w, _) in zip(loads, curve, strict=True)
            ]
            paid = anc.capacity_usd_mw_month * sum(offered)
            enrolled = [
                o * hours[t] * mine.uptime * (1.0 - anc.deployed_hours_share) for o in offered
            ]
            if over(enrolled) + paid > over(loads):
                e = anc.enrolled_share
                loads = [x + e * (y - x) for x, y in zip(loads, enrolled, strict=True)]
                earned = e * paid
        loads = [x * alive for x in loads]  # the machines still working
        earned *= alive
        revenue = sum(loads) * value_mwh
        energy_at_market = sum(x * mult * level for x, (_, mult) in zip(loads, curve, strict=True))
        opex_t = mine.opex_usd_mw_month * prices[t]
        fourcp_t = fourcp_mining * alive
        if avoidable > 0 and revenue + earned - energy_at_market < avoidable * opex_t + fourcp_t:
            return [0.0] * len(loads), 0.0, 0.0, opex_t * (1.0 - avoidable), True, 0.0, 0.0
        return loads, revenue, energy_at_market, opex_t, False, fourcp_t, earned

    # r2: the ASIC price follows hashprice (except revision 1's mechanical refresh), and
    # `when_it_pays` refreshes at a due date iff the margin the new fleet gains this month,
    # over one refresh period's annuity, pays for it; else it looks again in 12 months
    fixed_price = mine.refresh == "always"
    asic_factor = [
        1.0 if fixed_price else (hp / hashprices[0]) ** m.asic_price_elasticity for hp in hashprices
    ]
    v = (1.0 + r) ** (-1.0 / 12.0)
    bought, due = 0, period
    refreshed = []
    fleet_cost = mine.asic_cost_usd_th * 1000.0 * ph_of(0)  # the fleet at the start, as new
    ptax_mw = []  # r3: the running fleet's property tax per grid MW
    fourcp_mw = []  # r3: the 4CP per grid MW, none in an idle month
    anc_mw = []  # r3: the ancillary capacity payment per grid MW
    alive_mw = []  # r3: the share of the running fleet still working

    def worth(new: tuple, cur: tuple) -> float:
        """The margin a month gains with the new fleet"""
        return (new[1] + new[6] - new[2] - new[3] - new[5]) - (
            cur[1] + cur[6] - cur[2] - cur[3] - cur[5]
        )

    for t in range(T):
        cost = mine.asic_cost_usd_th * asic_factor[t] * 1000.0 * ph_of(t)  # USD/TH x TH/MW
        if mine.refresh == "always" and t > 0 and t % period == 0:
            bought = t
            refreshed.append(t)
        elif mine.refresh == "when_it_pays" and t == due:
            old = alive_of(bought, t)
            # r3: the fleet's life, one period, cut at the next known halving: the months
            # after it gain at the halved subsidy
            nxt = min((h for h in halvings if 0 < h - t < period), default=t + period)
            gain = sum(
                (v * (1.0 - mine.attrition) ** (1.0 / 12.0)) ** (i - t)  # both fleets decay
                * worth(
                    month(t, ph_of(t), 1.0, hashprices[t] * (0.5 if i >= nxt else 1.0)),
                    month(t, ph_of(bought), old, hashprices[t] * (0.5 if i >= nxt else 1.0)),
                )
                for i in range(t, t + period)
            )
            if gain >= cost:
                bought, due = t, t + period
                refreshed.append(t)
            else:
                due = t + 12
        if refreshed and refreshed[-1] == t:
            fleet_cost = cost
        alive = alive_of(bought, t)
        loads, revenue, energy_at_market, opex_t, idle, fourcp_t, earned = month(
            t, ph_of(bought), alive
        )
        alive_mw.append(alive)
        anc_mw.append(earned)
        if idle:
            idle_months.append(t)
        load_mw.append(loads)
        revenue_mw.append(revenue)
        opex_mw.append(opex_t)
        age = t - bought  # assessed at cost less straight line over the ASICs' class life
        assessed = fleet_cost * min(max(1.0 - age / (12.0 * tax.asic_life_years), 0.0), 1.0)
        abated = bought > 0 and age < 12.0 * tax.property_abatement_years
        ptax = (
            assessed
            * tax.property_rate
            / 12.0
            * (1.0 - (tax.property_abatement_share if abated else 0.0))
            * alive  # r3: the machines lost are written off
        )
        ptax_mw.append(ptax)
        sga = mine.sga_usd_mw_month * prices[t]
        opex_mw[-1] = opex_t + sga
        margin_mw.append(revenue + earned - energy_at_market - opex_t - sga - fourcp_t - ptax)
        fourcp_mw.append(fourcp_t)
        refresh_mw.append(cost if refreshed and refreshed[-1] == t else 0.0)

    # --- AI timing, capex and debt (sections 4-5)
    cs = on = T
    left = built = mine.mw
    rent, ai_opex, ai_power_mwh, ai_fourcp = [0.0] * T, [0.0] * T, [0.0] * T, [0.0] * T
    landlord_capex, draws, service, interest, owed = [0.0] * T, [0.0] * T, [0.0] * T, [0.0] * T, 0.0
    refi_draws = [0.0] * T
    returned_mw, asic_purchase, returned_from = 0.0, [0.0] * T, T
    fitout, refit, hall_ptax = [0.0] * T, [0.0] * T, [0.0] * T
    placed_equipment, placed_building = [0.0] * T, [0.0] * T  # capex by tax class
    hall_exit = 0.0
    debt_rate = s.financing.debt.rate
    if contract is not None:
        ai = site.ai
        cs = max(0, (build_year - y0) * 12 - (m0 - 1))  # January of the build year
        left = max(0.0, min(mine.mw, site.interconnect_mw - it_mw * ai.pue))
        # r2: the retrofit MW (their building) stop mining when construction starts, the
        # new-build MW when the hall is energised, at the end of the lead time
        on = cs + ai.lead_time_months
        built = max(left, mine.mw - min(it_mw, ai.retrofit_mw) * ai.pue)
        first_rent = cs + ai.lead_time_months  # no delay
        term = round(12 * contract.term_years)
        ramp = []
        for phase in contract.ramp:
            ramp += [phase.share] * phase.months
        assert contract.annual_default_prob in (0.0, 1.0), "deterministic exits only"
        assert contract.successor_default_prob == 0.0, "successors never exit here"
        if renewals is None:
            assert contract.renewal_prob in (0.0, 1.0), "deterministic renewals only"
            renewals = (contract.renewal_prob == 1.0,) * T
        exits = contract.annual_default_prob == 1.0  # at relative month 0
        K = T - first_rent  # relative months inside the horizon
        R = round(12 * contract.relet_term_years)
        # each relative month: "contract", "own" (the first tenant renewed), "market" (a
        # successor) or "empty"
        state = ["contract" if k < term and not exits else "empty" for k in range(max(K, 0))]
        fitouts, refunds = set(), set()
        renewing = iter(renewals)
        end, expired = (0, False) if exits else (term, True)  # the tenancy running now
        hall_end, lost_from = K, T  # relative month the hall stops; calendar month of a walk
        vacant_after = 0
        original, original_end = True, 10**6  # the first tenant (and its renewals) holds
        takes = contract.tenant_funded_share > 0 and not contract.improvements_revert
        tail, tail_start = "contract", 0  # what runs at T, and since when
        refund_at_end = False
        # r3: the relative month each market lease was signed: it signs at the market (the
        # AI rent index, 1 here) and steps up with the escalator from there
        signed_at = [0] * max(K, 0)
        while end < K:
            renews = expired and next(renewing)
            nxt = end if renews else end + contract.relet_months
            first_out = original and not renews
            if first_out:
                original_end = end
            if not renews and walks:
                hall_end, lost_from = end, first_rent + end
                break
            if not renews and relet_to_mining:
                hall_end = min(nxt, K)
                if nxt < K:
                    returned_from = first_rent + nxt
                break
            if not renews and nxt < K:
                fitouts.add(nxt)
                if first_out and takes:
                    refunds.add(nxt)
            if not renews and nxt >= K:  # still empty at T: a buyer must let it
                vacant_after, tail = nxt - K, "vacant"
                refund_at_end = first_out and takes
            kind = "own" if (renews and original) else "market"
            original = original and renews
            for k in range(nxt, min(nxt + R, K)):
                state[k] = kind
                signed_at[k] = nxt
            if nxt < K:
                tail, tail_start = kind, nxt
            end, expired = nxt + R, True
        lost = lost_from < T
        relet_capex = (
            contract.relet_capex_usd_mw
            if contract.relet_capex_usd_mw is not None
            else 0.05 * ai.build_capex_usd_mw
        )
        successor_price = contract.successor_price_usd_kw_month or contract.price_usd_kw_month
        capex_now = (
            min(it_mw, ai.retrofit_mw) * ai.retrofit_capex_usd_mw
            + max(0.0, it_mw - ai.retrofit_mw) * ai.build_capex_usd_mw
        )  # at today's prices
        full_mw = (
            min(ai.max_it_mw, ai.retrofit_mw) * ai.retrofit_capex_usd_mw
            + max(0.0, ai.max_it_mw - ai.retrofit_mw) * ai.build_capex_usd_mw
        ) / ai.max_it_mw
        upkeep = ai.opex_usd_mw_month + ai.sga_usd_mw_month

        def price_of(kind: str, k: int, since: int = 0) -> float:
            """Rent per IT MW in relative month k by the tenancy's kind (factor 1); a market
            lease (own, market) signed at relative month ``since`` at the price x the index
            (1), stepping up on the hall's anniversaries from there."""
            if kind == "contract":
                share = ramp[k] if k < len(ramp) else 1.0
                growth = (1 + contract.escalator) ** (k // 12)
                return 1000.0 * contract.price_usd_kw_month * growth * share
            growth = (1 + contract.escalator) ** (k // 12 - since // 12)
            if kind == "own":
                return 1000.0 * contract.price_usd_kw_month * growth
            return 1000.0 * successor_price * growth

        power_usd_mw = 0.0  # a month's grid power of an IT MW where the landlord pays it
        for t in range(first_rent, T):
            k = t - first_rent
            if k >= hall_end:
                continue  # the hall is the lender's, or its MW mine again
            ai_opex[t] = it_mw * upkeep * prices[t]  # the hall costs opex, empty or not
            if k in fitouts:
                fitout[t] = it_mw * relet_capex * prices[t]  # the successor's fit-out
            if k in refunds:  # r3: the first tenant's share of the hall, funded again
                fitout[t] += contract.tenant_funded_share * capex_now * prices[t]
            if state[k] == "empty":
                continue  # empty: no rent, no power
            rent[t] = it_mw * price_of(state[k], k, signed_at[k])
            if not contract.power_pass_through:  # AI runs through every bin, pays 4CP
                ai_power_mwh[t] = it_mw * ai.pue * hours[t]
                ai_fourcp[t] = it_mw * ai.pue * fourcp_full
        if not contract.power_pass_through:
            power_usd_mw = (
                sum(ai.pue * (hours[t] * level + fourcp_full) for t in range(T - 12, T)) / 12.0
            )
        # r3: refits every refit_years from energisation while the hall is the equity's
        step = round(12 * s.build.refit_years)
        if step > 0:
            for due in range(on + step, T, step):
                k = due - first_rent
                if 0 <= k < hall_end:
                    held = takes and k < original_end
                    share = 1.0 - contract.tenant_funded_share if held else 1.0
                    refit[due] = it_mw * s.build.refit_capex_usd_mw * prices[due] * share
        if returned_from < T:
            returned_mw = it_mw * ai.pue
            j_th_now = mine.efficiency_j_th * (1.0 - mine.efficiency_gain_per_year) ** (
                returned_from / 12.0
            )
            asic_purchase[returned_from] = (
                returned_mw
                * mine.asic_cost_usd_th
                * asic_factor[returned_from]
                * 1e6
                / (j_th_now * mine.pue)
            )
        build_price = prices[cs]
        funded = capex_now * build_price * (1.0 - contract.tenant_funded_share)
        # the tenant's own debt terms, where its contract gives them (docs/model.md, r2)
        debt = s.financing.debt.model_dump()
        if contract.financing is not None:
            debt.update({k: v for k, v in contract.financing.model_dump().items() if v is not None})
        debt_rate = debt["market_rate"] if debt["market_rate"] is not None else debt["rate"]
        ltc = debt["loan_to_cost"]
        lead = max(ai.lead_time_months, 1)
        for t in range(cs, min(T, cs + lead)):
            landlord_capex[t] = funded / lead
            draws[t] = funded * ltc / lead
        if on < T:  # placed in service at energisation; else deducted with the exit
            placed = on
        else:
            placed = T - 1
        q = tax.ai_equipment_share
        placed_equipment[placed] += q * sum(landlord_capex)
        placed_building[placed] += (1.0 - q) * sum(landlord_capex)
        for t in range(T):
            placed_equipment[t] += fitout[t] + refit[t]
            # the landlord's share of a hall while let: property tax from energisation
            age = t - on
            if age >= 0 and t < first_rent + hall_end:
                assessed = sum(landlord_capex) * (
                    q * min(max(1.0 - age / (12 * tax.ai_equipment_life_years), 0.0), 1.0)
                    + (1 - q) * min(max(1.0 - age / (12 * tax.building_life_years), 0.0), 1.0)
                )
                abated = age < 12 * tax.property_abatement_years
                hall_ptax[t] = (
                    assessed
                    * tax.property_rate
                    / 12.0
                    * (1.0 - (tax.property_abatement_share if abated else 0.0))
                )
        # the debt: interest capitalised monthly until first rent; then interest only while
        # the rent ramps and for the interest-only months (a bullet: all but the last),
        # then an annuity-due; a bullet due inside the horizon refinanced (r3)
        i = (1.0 + debt["rate"]) ** (1.0 / 12.0) - 1.0
        n = round(12 * debt["term_years"])
        bullet = debt["amortization"] == "bullet"
        io = n - 1 if bullet else min(max(debt["interest_only_months"], len(ramp)), n - 1)
        refinance = bullet and debt["refinance"]
        balance, payment, io_payment = 0.0, 0.0, 0.0
        refi_balance, refi_payment = 0.0, 0.0
        ri = (1.0 + (debt["refinance_rate"] or debt["rate"])) ** (1.0 / 12.0) - 1.0
        rn = round(12 * debt["refinance_term_years"])
        for t in range(T):
            balance += draws[t]
            k = t - first_rent
            if k == 0:
                v = 1.0 / (1.0 + i)
                # interest for the month, paid at its start, leaves the balance unchanged
                io_payment = balance * (1.0 - v)
                # PV at the first payment of m payments, the first one now: (1 - v^m) / (1 - v)
                mm = n - io
                payment = balance * ((1.0 - v) / (1.0 - v**mm) if i > 0 else 1.0 / mm)
            pay = 0.0
            if 0 <= k < n and t < lost_from:
                pay = io_payment if k < io else payment
            if refinance and k == n - 1 and t < lost_from:
                # what the hall's last 12 months of NOI per IT MW carry at refinance_dscr,
                # over the balance per IT MW of the whole build, at most all of it
                window = range(first_rent + max(k - 12, 0), first_rent + k)
                noi = (
                    sum(
                        rent[u] - ai_opex[u] - (ai_power_mwh[u] * level + ai_fourcp[u])
                        for u in window
                    )
                    / it_mw
                    / max(len(window), 1)
                )
                vr = 1.0 / (1.0 + ri)
                carried = max(noi, 0.0) / debt["refinance_dscr"] * (1 - vr**rn) / (1 - vr) * vr
                per_mw = balance / capex_now * full_mw
                drawn = min(carried / per_mw, 1.0) * balance if per_mw > 0 else 0.0
                refi_draws[t] = drawn
                refi_balance = drawn
                refi_payment = drawn * (1 + ri) * (1 - vr) / (1 - vr**rn)
            j = k - n
            refi_pay = refi_payment if 0 <= j < rn else 0.0
            service[t] = pay + refi_pay
            own_interest = 0.0 if t >= lost_from else i * (balance - pay)
            interest[t] = own_interest + ri * (refi_balance - refi_pay)
            balance = (balance - pay) * (1.0 + i)
            refi_balance = (refi_balance - refi_pay) * (1.0 + ri)
            if t >= lost_from:
                balance = 0.0
        owed = (0.0 if lost else max(balance, 0.0)) + refi_balance  # at T

        # r3: the hall at T as a buyer prices it (exit_value.py's docstring, by hand)
        if not lost and returned_from >= T:
            lease_rate = contract.lease_discount_rate
            if lease_rate is None:
                lease_rate = s.discount_rate
            u = (1.0 + lease_rate) ** (-1.0 / 12.0)
            vu = (1.0 + s.discount_rate) ** (-1.0 / 12.0)
            g = (1.0 + m.cost_inflation) ** (1.0 / 12.0)
            step = round(12 * s.build.refit_years)
            reserve = s.build.refit_capex_usd_mw / (12 * s.build.refit_years) if step else 0.0
            multiple = s.financing.exit_multiple_ai
            first_holds = tail in ("contract", "own")
            refund = takes * contract.tenant_funded_share * full_mw

            def let_value(kind: str, k: int) -> float:
                """12 x the multiple x a let month's market NOI, in relative month k."""
                noi = (
                    price_of(kind, k, k) - (upkeep + reserve) * g ** (first_rent + k) - power_usd_mw
                )
                return 12.0 * multiple * noi

            def relet(k: int, with_refund: bool) -> float:
                """An empty hall from relative month k: vacancy, fit-out, then let."""
                vac = contract.relet_months
                empty = sum(upkeep * g ** (first_rent + k + j) * vu**j for j in range(vac))
                fit = (relet_capex + (refund if with_refund else 0.0)) * g ** (first_rent + k + vac)
                return vu**vac * (let_value("market", k + vac) - fit) - empty

            if tail == "vacant":
                w = vacant_after
                empty = sum(upkeep * g ** (T + j) * vu**j for j in range(w))
                fit = (relet_capex + (refund if refund_at_end else 0.0)) * g ** (T + w)
                value = vu**w * (let_value("market", K + w) - fit) - empty
            else:
                k0 = max(K, 0)  # a hall let only after T: its lease from first rent
                off = first_rent + k0 - T  # months from T to relative month k0
                lease_end = max(end if tail != "contract" else term, k0)
                value = sum(
                    (price_of(tail, k, tail_start) - upkeep * g ** (first_rent + k) - power_usd_mw)
                    * u ** (off + k - k0)
                    for k in range(k0, lease_end)
                )
                p = contract.renewal_prob
                renew_kind = "own" if first_holds else "market"
                after = p * let_value(renew_kind, lease_end) + (1 - p) * relet(
                    lease_end, first_holds and takes
                )
                value += vu ** (off + lease_end - k0) * after
                if step:
                    for due in range(on + step, first_rent + lease_end, step):
                        if due >= T:
                            share = 1 - contract.tenant_funded_share if first_holds and takes else 1
                            value -= share * s.build.refit_capex_usd_mw * g**due * vu ** (due - T)
            hall_exit = it_mw * max(value, 0.0)
        # a hall still being built at T: a buyer pays its lease's value less the capex to come
        hall_exit -= funded * max(0.0, 1.0 - sum(landlord_capex) / funded)

    # --- site cash flows, before tax
    operating = []
    mining_mw = [
        (mine.mw if t < cs else built if t < on else left)
        + (returned_mw if t >= returned_from else 0.0)
        for t in range(T)
    ]
    ppa_price = ppa.ppa_price_usd_mwh or 0.0
    asic_capex = []
    for t in range(T):
        # take-or-pay PPA: ppa_mw every hour at its price; in each bin the surplus over the
        # load is sold back at the bin price and load above the PPA is bought at it
        energy = ppa.ppa_mw * hours[t] * ppa_price
        for k, (w, mult) in enumerate(curve):
            load = mining_mw[t] * load_mw[t][k] + ai_power_mwh[t] * w  # MWh in bin k
            energy += (load - ppa.ppa_mw * w * hours[t]) * mult * level
        fixed = mining_mw[t] * (opex_mw[t] + fourcp_mw[t] + ptax_mw[t])
        operating.append(
            mining_mw[t] * (revenue_mw[t] + anc_mw[t]) - energy - fixed + rent[t] - ai_opex[t]
            - ai_fourcp[t]
            - hall_ptax[t]
        )  # fmt: skip
        asic_capex.append(mining_mw[t] * refresh_mw[t] + asic_purchase[t])

    # --- income tax (offset): taxable operations less depreciation, less the interest
    rate = tax.rate + tax.state_rate * (1.0 - tax.rate)
    depreciation = [0.0] * T
    macrs = {5: [0.20, 0.32, 0.192, 0.1152, 0.1152, 0.0576]}  # IRS Pub. 946, table A-1
    sl39 = [0.5 / 39.0] + [1.0 / 39.0] * 38 + [0.5 / 39.0]  # half-year straight line

    def deduct(amount: float, month: int, life: float) -> None:
        fractions = sl39 if life == 39 else macrs[int(life)]
        if life <= 20:
            fractions = [tax.bonus_depreciation + (1 - tax.bonus_depreciation) * fractions[0]] + [
                (1 - tax.bonus_depreciation) * f for f in fractions[1:]
            ]
        left_over = amount
        for y, f in enumerate(fractions):
            if month + 12 * y < T:
                depreciation[month + 12 * y] += amount * f
                left_over -= amount * f
        depreciation[T - 1] += left_over  # the basis left, deducted with the exit

    for t in range(T):
        deduct(asic_capex[t], t, tax.asic_life_years)
        deduct(placed_equipment[t], t, tax.ai_equipment_life_years)
        deduct(placed_building[t], t, tax.building_life_years)
    unlevered_tax = [rate * (operating[t] - depreciation[t]) for t in range(T)]
    shield = [rate * interest[t] for t in range(T)]

    # --- terminal value (r3): mining on its last 12 months' margin, the hall as a buyer
    # prices it; taxed in full at T (the basis left was deducted in the last month)
    window = range(T - 12, T)
    mining_before = sum(margin_mw[t] for t in window if t < cs)
    mining_during = sum(margin_mw[t] for t in window if cs <= t < on)
    mining_after = sum(margin_mw[t] for t in window if t >= on)
    mining_returned = sum(margin_mw[t] for t in window if t >= returned_from)
    ppa_12 = sum(ppa.ppa_mw * hours[t] * (level - ppa_price) for t in window)
    if ppa_in_terminal:
        mining_12 = mine.mw * mining_before + built * mining_during + left * mining_after + ppa_12
        terminal_mining = max(mining_12, 0.0)
    else:
        terminal_mining = (
            mine.mw * max(mining_before, 0.0)
            + built * max(mining_during, 0.0)
            + left * max(mining_after, 0.0)
        )
    terminal_mining += returned_mw * max(mining_returned, 0.0)
    exit_value = s.financing.exit_multiple_mining * terminal_mining + hall_exit
    exit_after_tax = (1.0 - rate) * exit_value

    # --- adjusted present value: the unlevered flows at discount_rate, the debt's flows
    # and the tax its interest saves at the debt's (market) rate
    dd = [(1.0 + debt_rate) ** (-t / 12.0) for t in range(T + 1)]
    unlevered = [
        operating[t] - unlevered_tax[t] - asic_capex[t] - landlord_capex[t] - fitout[t] - refit[t]
        for t in range(T)
    ]
    financing = [draws[t] + refi_draws[t] - service[t] + shield[t] for t in range(T)]
    npv = (
        sum(df[t] * unlevered[t] for t in range(T))
        + df[T] * exit_after_tax
        + sum(dd[t] * financing[t] for t in range(T))
        - dd[T] * owed
    )
    cash = [unlevered[t] + financing[t] for t in range(T)]  # to the equity
    terminal = exit_after_tax - owed
    run_share = [sum(x) / (hours[t] * mine.uptime * alive_mw[t]) for t, x in enumerate(load_mw)]
    return Paper(
        cash, terminal, npv, run_share, tuple(idle_months), tuple(refreshed),
        exit_after_tax, owed, debt_rate, tuple(interest),
    )  # fmt: skip


# --------------------------------------------------------------------------- (a) mining


MINING_CASE = {
    "sites.0.power": {"ppa_mw": 60.0, "ppa_price_usd_mwh": 14.0},  # covers 60 of 95 MW of load
    "power_markets.grid.transmission_4cp_usd_kw_year": 50.0,
    "market.hashrate_growth": 0.05,
    "market.halving_months": ["2028-04"],  # month 15 of 48
    "sites.0.mining.asic_refresh_years": 2.0,  # one refresh, in month 24
}


@pytest.mark.parametrize("price_usd_mwh", [18.0, 75.0], ids=["profitable", "loss-floored-tv"])
def test_mining_only_across_a_halving(price_usd_mwh):
    s = one_site(**MINING_CASE, **{"power_markets.grid.price_usd_mwh": price_usd_mwh})
    paper = paper_npv(s)
    if price_usd_mwh > 50:
        assert paper.terminal == 0.0  # the loss-making fleet sells for nothing
    else:
        assert paper.terminal > 0.0
    assert expected_npv(s) == pytest.approx(paper.npv, rel=REL)


def test_mining_without_the_halving_is_worth_more():
    """Same site with no halving in the horizon: paper and kernel agree, and value is higher."""
    s = one_site(**MINING_CASE)
    no_halving = one_site(**{**MINING_CASE, "market.halving_months": []})
    # the halving costs value: with it, NPV is lower by far more than 0.1 %
    assert expected_npv(s) < 0.9 * expected_npv(no_halving)
    assert expected_npv(no_halving) == pytest.approx(paper_npv(no_halving).npv, rel=REL)


def test_halving_listed_before_start_applies_from_month_0():
    s = one_site(**{"market.halving_months": ["2024-04"]})
    assert expected_npv(s) == pytest.approx(paper_npv(s).npv, rel=REL)


def test_mining_terminal_value_leaves_out_the_ppa_settlement():
    """The PPA is a site-level hedge assumed to end with the horizon (kernels/mining.py):
    the terminal value capitalises mining at market prices only, so the PPA case here
    differs from one that would capitalise the settlement too."""
    s = one_site(**MINING_CASE)
    assert expected_npv(s) == pytest.approx(paper_npv(s, ppa_in_terminal=False).npv, rel=REL)
    assert expected_npv(s) != pytest.approx(paper_npv(s, ppa_in_terminal=True).npv, rel=REL)


TWO_BINS = [[0.85, 0.6], [0.15, 3.8]]  # normalised to mean 1: $10 and $63/MWh at $18


@pytest.mark.parametrize("avoidance", [0.0, 1.0], ids=["pays-4cp", "avoids-4cp"])
def test_curtailable_mining_on_a_two_bin_curve(avoidance):
    """The spike bin runs while hashing is worth more than it; curtailed after the halving."""
    s = one_site(
        **MINING_CASE,
        **{
            "sites.0.curtailable": True,
            "power_markets.grid.price_usd_mwh": 18.0,
            "power_markets.grid.duration_curve": TWO_BINS,
            "power_markets.grid.fourcp_avoidance": avoidance,
        },
    )
    paper = paper_npv(s)
    assert paper.run_share[0] == pytest.approx(1.0) and paper.run_share[-1] == pytest.approx(0.85)
    assert expected_npv(s) == pytest.approx(paper.npv, rel=REL)


def test_hashprice_from_public_figures():
    # 3.125 BTC subsidy + 0.55 % fees, BTC $91,132, 1,024 EH/s: public ~$39.53/PH/day
    assert hashprice_usd_ph_day(3.125 * 1.0055, 91_132.0, 1_024.0) == pytest.approx(39.53, rel=0.02)
    # docs/model.md's own example: $90,000, 1,000 EH/s, no fees -> $40.50
    assert hashprice_usd_ph_day(3.125, 90_000.0, 1_000.0) == pytest.approx(40.50, rel=1e-12)


# --------------------------------------------------------------------------- (b) hosted AI

AI_CASE = {
    "sites.0.ai.retrofit_mw": 20.0,  # 20 MW at $2M, then 40 MW at $9M
    "sites.0.power": {"ppa_mw": 40.0, "ppa_price_usd_mwh": 26.0},
    "power_markets.grid.transmission_4cp_usd_kw_year": 40.0,
    "contracts.0.ramp": [{"months": 6, "share": 0.5}],
    "build.decision_years": [2027, 2028],
}


@pytest.mark.parametrize("start", ["2027-01", "2027-07"])
@pytest.mark.parametrize("pass_through", [True, False], ids=["pass-through", "miner-pays-power"])
def test_hosted_ai_without_debt(start, pass_through):
    s = one_site_ai(**AI_CASE, start=start, **{"contracts.0.power_pass_through": pass_through})
    contract = s.contracts[0]
    for year in (2027, 2028):
        paper = paper_npv(s, 60.0, year, contract)
        assert expected_npv(s, f"ai60-{year}-lease") == pytest.approx(paper.npv, rel=REL)
    # the retrofit tier alone (20 MW at the retrofit price)
    paper20 = paper_npv(s, 20.0, 2028, contract)
    assert expected_npv(s, "ai20-2028-lease") == pytest.approx(paper20.npv, rel=REL)


def test_hosted_ai_paying_power_through_spikes_on_a_curtailable_site():
    """AI load runs through the spike bin (pays the mean price) while mining curtails it."""
    s = one_site_ai(
        **AI_CASE,
        **{
            "contracts.0.power_pass_through": False,
            "sites.0.curtailable": True,
            "power_markets.grid.price_usd_mwh": 18.0,
            "power_markets.grid.duration_curve": TWO_BINS,
            "power_markets.grid.fourcp_avoidance": 1.0,
        },
    )
    for level in (20.0, 60.0):
        paper = paper_npv(s, level, 2028, s.contracts[0])
        assert expected_npv(s, f"ai{level:g}-2028-lease") == pytest.approx(paper.npv, rel=REL)


RENEWAL_CASE = {
    **AI_CASE,
    "contracts.0.term_years": 1.5,  # first rent in month 9 of 48: the term ends at month 27
    "contracts.0.relet_months": 5,
    "contracts.0.relet_term_years": 1.0,
    "contracts.0.relet_capex_usd_mw": 400_000.0,
}


def test_without_renewals_every_term_end_costs_a_vacancy_and_a_fit_out():
    """renewal_prob 0: at the term's end (relative month 18) the hall stands empty 5
    months, a successor pays 40 MW x $0.4M in month 23 and market rent for 12 months, then
    the hall stands empty again past the horizon (relative month 39)."""
    s = one_site_ai(**RENEWAL_CASE, **{"contracts.0.renewal_prob": 0.0})
    renewing = one_site_ai(**RENEWAL_CASE)
    paper = paper_npv(s, 40.0, 2027, s.contracts[0])
    assert expected_npv(s, "ai40-2027-lease") == pytest.approx(paper.npv, rel=REL)
    vacancies_and_fit_out = paper_npv(renewing, 40.0, 2027, renewing.contracts[0]).npv - paper.npv
    assert vacancies_and_fit_out > 40 * 400_000.0 * 0.8  # the fit-out alone, discounted


def test_renewal_process_matches_its_closed_form_expectation():
    """With no exits, the expected NPV is the sum over the renew-or-not outcomes at each
    term end (at most three in this horizon) of their probability times the paper NPV of
    that deterministic timeline. The Monte Carlo mean is within four standard errors of
    it, the standard error also from the closed form."""
    p, n = 0.6, 20_000
    s = one_site_ai(
        **RENEWAL_CASE,
        **{"contracts.0.renewal_prob": p, "simulation.scenarios": n, "simulation.risk_sample": 64},
    )
    outcomes = []
    for bits in range(8):
        renewals = tuple(bool(bits >> i & 1) for i in range(3))
        weight = math.prod(p if r else 1.0 - p for r in renewals)
        outcomes.append((weight, paper_npv(s, 40.0, 2027, s.contracts[0], renewals=renewals).npv))
    mean = sum(w * x for w, x in outcomes)
    sd = math.sqrt(sum(w * (x - mean) ** 2 for w, x in outcomes))
    assert sd > 1e6  # the outcomes differ
    assert expected_npv(s, "ai40-2027-lease") == pytest.approx(mean, abs=4.0 * sd / math.sqrt(n))


def test_hosted_ai_after_the_term_relets_at_market_rent():
    """Term ends inside the horizon; at zero rent volatility market rent = escalated price."""
    s = one_site_ai(**AI_CASE, **{"contracts.0.term_years": 1.5, "contracts.0.relet_months": 5})
    paper = paper_npv(s, 40.0, 2027, s.contracts[0])
    assert expected_npv(s, "ai40-2027-lease") == pytest.approx(paper.npv, rel=REL)


def test_tenant_funded_share_cuts_equity_capex():
    s = one_site_ai(**AI_CASE, **{"contracts.0.tenant_funded_share": 0.4})
    paper = paper_npv(s, 60.0, 2028, s.contracts[0])
    assert expected_npv(s, "ai60-2028-lease") == pytest.approx(paper.npv, rel=REL)


# --------------------------------------------------------------------------- (c) with debt


@pytest.mark.parametrize("term_years", [10.0, 1.5], ids=["owed-at-horizon", "repaid-before"])
@pytest.mark.parametrize("rate", [0.08, 0.0])
def test_hosted_ai_with_debt(term_years, rate):
    s = one_site_ai(
        **AI_CASE,
        **{
            "financing.debt.loan_to_cost": 0.8,
            "financing.debt.rate": rate,
            "financing.debt.term_years": term_years,
        },
    )
    for year in (2027, 2028):
        paper = paper_npv(s, 60.0, year, s.contracts[0])
        assert expected_npv(s, f"ai60-{year}-lease") == pytest.approx(paper.npv, rel=REL)


def test_debt_annuity_due_repays_the_capitalised_balance():
    """Paper check of the debt arithmetic itself: the payments' PV at the loan rate from
    the first rent month equals the balance then; nothing is owed once all are paid."""
    s = one_site_ai(
        **AI_CASE, **{"financing.debt.loan_to_cost": 0.8, "financing.debt.term_years": 1.5}
    )
    ai = s.sites[0].ai
    paper = paper_npv(s, 60.0, 2027, s.contracts[0])
    no_debt = one_site_ai(**AI_CASE)
    paper0 = paper_npv(no_debt, 60.0, 2027, no_debt.contracts[0])
    i = 1.08 ** (1 / 12) - 1
    service = [
        a - b for a, b in zip(paper0.cash, paper.cash, strict=True)
    ]  # debt service less the equity saved
    capex = 20 * 2e6 + 40 * 9e6
    lead = ai.lead_time_months
    first = lead  # construction starts in month 0
    drawn_at_start = sum(0.8 * capex / lead * (1 + i) ** (first - m) for m in range(lead))
    pv_payments = sum(service[t] * (1 + i) ** (-(t - first)) for t in range(first, first + 18))
    assert pv_payments == pytest.approx(drawn_at_start, rel=1e-12)
    assert paper.terminal == pytest.approx(paper0.terminal, rel=1e-12)  # nothing left owed


@pytest.mark.parametrize(
    ("own", "term_years"),
    [
        ({"interest_only_months": 24, "term_years": 5.0}, 5.0),
        ({"interest_only_months": 24, "term_years": 2.5, "amortization": "bullet"}, 2.5),
        ({"interest_only_months": 6, "rate": 0.0, "term_years": 1.5}, 1.5),
        ({"amortization": "bullet", "term_years": 20.0}, 20.0),  # owed at the horizon
    ],
    ids=["io-then-annuity", "bullet", "io-at-rate-0", "bullet-past-the-horizon"],
)
def test_a_tenant_s_own_debt_with_interest_only_months(own, term_years):
    """docs/model.md r2, debt per tenant: the contract's block over financing.debt; interest only
    from the first rent, then an annuity-due or one bullet payment."""
    s = one_site_ai(
        **AI_CASE,
        **{
            "financing.debt.loan_to_cost": 0.8,
            "contracts.0.financing": {"loan_to_cost": 0.5, **own},
        },
    )
    for year in (2027, 2028):
        paper = paper_npv(s, 60.0, year, s.contracts[0])
        assert expected_npv(s, f"ai60-{year}-lease") == pytest.approx(paper.npv, rel=REL)


def test_interest_only_then_bullet_by_hand():
    """The payments themselves: interest B i/(1+i) at the start of each month keeps the
    balance B; the bullet repays B in the term's last month, nothing is owed after."""
    own = {"loan_to_cost": 0.5, "rate": 0.12, "term_years": 2.0, "amortization": "bullet"}
    s = one_site_ai(**AI_CASE, **{"contracts.0.financing": own})
    no_debt = one_site_ai(**AI_CASE, **{"financing.debt.loan_to_cost": 0.0})
    paper = paper_npv(s, 60.0, 2027, s.contracts[0])
    paper0 = paper_npv(no_debt, 60.0, 2027, no_debt.contracts[0])
    ai = s.sites[0].ai
    lead, i = ai.lead_time_months, 1.12 ** (1 / 12) - 1
    capex = 20 * 2e6 + 40 * 9e6
    balance = sum(0.5 * capex / lead * (1 + i) ** (lead - m) for m in range(lead))
    service = [a - b for a, b in zip(paper0.cash, paper.cash, strict=True)]
    first = lead
    for k in range(23):
        assert service[first + k] == pytest.approx(balance * i / (1 + i), rel=1e-12)
    assert service[first + 23] == pytest.approx(balance, rel=1e-12)
    assert service[first + 24] == pytest.approx(0.0, abs=1e-6)
    assert paper.terminal == pytest.approx(paper0.terminal, rel=1e-12)  # nothing owed at T
    assert expected_npv(s, "ai60-2027-lease") == pytest.approx(paper.npv, rel=REL)


def test_the_portfolio_debt_is_the_default_of_a_tenant_s_own():
    """A contract block that sets only the loan-to-cost is financing.debt with that share."""
    own = one_site_ai(**AI_CASE, **{"contracts.0.financing": {"loan_to_cost": 0.55}})
    shared = one_site_ai(**AI_CASE, **{"financing.debt.loan_to_cost": 0.55})
    for year in (2027, 2028):
        label = f"ai60-{year}-lease"
        assert expected_npv(own, label) == expected_npv(shared, label)


# --------------------------------------------------------------------------- (d) annuity


@pytest.mark.parametrize("start", ["2027-01", "2027-10"])
def test_constant_rent_is_a_textbook_annuity(start):
    """Rent only (no mining, capex, opex): PV = rent x sum_t v^t, v = (1+r)^(-1/12), to the
    end of the lease running at T. A buyer at T pays the rest of that lease at the lease
    rate (here discount_rate) and, with the multiple 0, nothing for what follows it: the
    first term of 5 years and the renewals of 5 end at relative months 60, 120, 180."""
    s = one_site_ai(
        start=start,
        horizon_years=12,
        **{
            "sites.0.mining.mw": 0.0,
            "sites.0.ai.build_capex_usd_mw": 0.0,
            "sites.0.ai.opex_usd_mw_month": 0.0,
            "sites.0.ai.lead_time_months": 7,
            "contracts.0.escalator": 0.0,
            "contracts.0.term_years": 5.0,  # market rent after the term equals the price too
            "financing.exit_multiple_ai": 0.0,
            "financing.exit_multiple_mining": 0.0,
            "build.decision_years": [2028],
        },
    )
    r, T = s.discount_rate, 144
    first = (2028 - 2027) * 12 - (int(start[5:]) - 1) + 7
    rent = 40.0 * 1000.0 * 130.0  # 40 MW x 1000 kW x $130/kW-month
    v = (1 + r) ** (-1 / 12)
    lease_end = 60 * -(-(T - first) // 60)  # the first renewal end at or after T
    closed_form = rent * v**first * (1 - v**lease_end) / (1 - v)
    assert expected_npv(s, "ai40-2028-lease") == pytest.approx(closed_form, rel=REL)
    assert expected_npv(s, "hash") == 0.0


@pytest.mark.parametrize(
    ("build_year", "lead"),
    [(2027, 0), (2028, 30), (2030, 9), (2030, 18)],
    ids=["lead-0", "rent-in-last-6-months", "rent-in-last-3-months", "rent-after-horizon"],
)
def test_hosted_ai_timing_edges_with_debt(build_year, lead):
    """Lead time 0 (capex, draw and first payment in one month); rent starting inside the
    terminal window (partial NOI); and a hall still unfinished at T (capex spent after T
    is outside the horizon; the drawn debt with capitalised interest is owed at T)."""
    s = one_site_ai(
        **{
            **AI_CASE,
            "sites.0.ai.lead_time_months": lead,
            "build.decision_years": [build_year],
            "financing.debt.loan_to_cost": 0.8,
        }
    )
    paper = paper_npv(s, 40.0, build_year, s.contracts[0])
    assert expected_npv(s, f"ai40-{build_year}-lease") == pytest.approx(paper.npv, rel=REL)


# --------------------------------------------------------------------------- (e) exits


@pytest.mark.parametrize("pass_through", [True, False], ids=["pass-through", "miner-pays-power"])
def test_tenant_exit_at_first_rent_relets_at_market(pass_through):
    """annual_default_prob 1: the tenant leaves in the first rent month (deterministic);
    the hall stands empty (opex, no rent), then earns market rent, escalated from first rent."""
    s = one_site_ai(
        **AI_CASE,
        **{
            "contracts.0.annual_default_prob": 1.0,
            "contracts.0.relet_months": 7,
            "contracts.0.power_pass_through": pass_through,
            "financing.debt.loan_to_cost": 0.8,
        },
    )
    for year in (2027, 2028):
        paper = paper_npv(s, 40.0, year, s.contracts[0])
        assert expected_npv(s, f"ai40-{year}-lease") == pytest.approx(paper.npv, rel=REL)


def test_tenant_exit_returns_the_mw_to_mining_when_mining_pays_more():
    """AI opex far above market rent and a profitable fleet: at re-let the hall's grid MW
    go back to mining (ASICs bought at that month's price), and stay there to T."""
    s = one_site_ai(
        **AI_CASE,
        **{
            "contracts.0.annual_default_prob": 1.0,
            "contracts.0.relet_months": 4,
            "sites.0.ai.opex_usd_mw_month": 400_000.0,  # > $130/kW-month x 1000 kW
            "power_markets.grid.price_usd_mwh": 15.0,
        },
    )
    paper = paper_npv(s, 40.0, 2027, s.contracts[0], relet_to_mining=True)
    assert paper.terminal > 0
    assert expected_npv(s, "ai40-2027-lease") == pytest.approx(paper.npv, rel=REL)


@pytest.mark.parametrize(
    "relet_months, walks", [(12, False), (200, True)], ids=["keeps-a-hall-that-re-lets", "walks"]
)
def test_non_recourse_equity_takes_the_better_of_keeping_and_walking(relet_months, walks):
    """r2: at the exit the equity compares keeping the hall (re-let after the vacancy, debt
    still serviced) with handing it to the lender, and takes the better. Re-let within a
    year the hall is worth far more than its debt; empty past the horizon it is worth
    only its opex, so the equity walks."""
    s = one_site_ai(
        **AI_CASE,
        **{
            "contracts.0.annual_default_prob": 1.0,
            "contracts.0.relet_months": relet_months,
            "financing.debt.loan_to_cost": 0.8,
            "financing.debt.non_recourse": True,
        },
    )
    keep = paper_npv(s, 60.0, 2028, s.contracts[0], walks=False).npv
    walk = paper_npv(s, 60.0, 2028, s.contracts[0], walks=True).npv
    assert (walk > keep) == walks
    assert expected_npv(s, "ai60-2028-lease") == pytest.approx(max(keep, walk), rel=REL)
    recourse = one_site_ai(
        **AI_CASE,
        **{
            "contracts.0.annual_default_prob": 1.0,
            "contracts.0.relet_months": relet_months,
            "financing.debt.loan_to_cost": 0.8,
        },
    )
    assert expected_npv(recourse, "ai60-2028-lease") == pytest.approx(keep, rel=REL)


# --------------------------------------------------------------------------- table columns


def test_option_table_per_year_columns():
    """Start 2027-01, build 2028 (construction from month 12), lead 9: first rent 2028-10.
    EH/s per grid MW = 1e6 W / (J/TH x PUE) TH/s = 1 / (J/TH x PUE) EH/s.
    Capex in 2028 only; 60 MW online 3 of 12 months of 2028. Mining (r2): from January 2028
    the 20 retrofit MW stop (100 - 20 x 1.25 = 75 MW mine on), at energisation in October
    the 40 new-build MW too, down to the 45 MW the conversion leaves (120 MW interconnect
    - 60 x 1.25): 2028 averages (9 x 75 + 3 x 45) / 12 = 67.5 MW."""
    s = one_site_ai(
        **{**AI_CASE, "financing.debt.loan_to_cost": 0.8, "sites.0.mining.attrition": 0.0}
    )
    table = value_options(s, backend="numpy").options.table
    row = table[table["option"] == "ai60-2028-lease"].iloc[0]
    capex = 20 * 2e6 + 40 * 9e6
    assert row["online_month"] == "2028-10"
    assert row["equity_capex_usd"] == pytest.approx(0.2 * capex)
    assert row["debt_usd"] == pytest.approx(0.8 * capex)
    assert row["capex_2027_usd"] == 0 and row["capex_2028_usd"] == pytest.approx(0.2 * capex)
    assert row["ai_mw_online_2027"] == 0
    assert row["ai_mw_online_2028"] == pytest.approx(60 * 3 / 12)
    assert row["ai_mw_online_2029"] == pytest.approx(60.0)
    mine = s.sites[0].mining
    eh_per_mw = lambda month: 1.0 / (mine.efficiency_j_th * 0.92 ** ((month // 24) * 2) * mine.pue)  # noqa: E731
    assert row["mining_eh_2027"] == pytest.approx(100 * eh_per_mw(0))
    assert row["mining_eh_2028"] == pytest.approx(67.5 * eh_per_mw(12))
    assert row["mining_eh_2029"] == pytest.approx(45 * eh_per_mw(24))  # refreshed fleet
    hash_row = table[table["option"] == "hash"].iloc[0]
    assert hash_row["equity_capex_usd"] == 0 and hash_row["online_month"] == ""
    assert hash_row["mining_eh_2028"] == pytest.approx(100 * eh_per_mw(12))


@pytest.mark.parametrize(
    ("retrofit_mw", "built_mw"),
    [(0.0, 100.0), (20.0, 75.0), (60.0, 45.0)],
    ids=["new-build: all mine on", "mixed", "retrofit: stops at construction"],
)
def test_mining_while_the_hall_is_built(retrofit_mw, built_mw):
    """r2: between construction start and energisation the retrofit MW (x AI PUE 1.25) stop,
    the new-build MW mine on; never below the 45 MW a 60 MW conversion leaves for good."""

    s = one_site_ai(**{**AI_CASE, "sites.0.ai.retrofit_mw": retrofit_mw})
    site = kernel_inputs(s).sites[0]
    assert mining_left_mw(site, 60.0) == pytest.approx(45.0)
    assert mining_while_built_mw(site, 60.0) == pytest.approx(built_mw)


@pytest.mark.parametrize("share", [0.3, 0.9])
def test_an_idle_month(share):
    """r2: a curtailable site idles a month whose margin over the power it buys is below the
    opex idling saves; the halving in month 15 halves the hashprice, and with it the margin
    that keeps the site running. Idling is an option: it never lowers the value."""
    case = {
        **MINING_CASE,
        "sites.0.curtailable": True,
        "power_markets.grid.price_usd_mwh": 45.0,
        "power_markets.grid.duration_curve": TWO_BINS,
        "sites.0.mining.opex_usd_mw_month": 40_000.0,
        "power_markets.grid.fourcp_avoidance": 1.0,  # no 4CP to save: the opex alone decides
    }
    s = one_site(**case, **{"sites.0.mining.opex_avoidable_share": share})
    paper = paper_npv(s)
    assert 0 < len(paper.idle_months) < 48  # some months idle, not all
    if share == 0.3:
        assert min(paper.idle_months) >= 15  # only after the halving
    else:  # saving 90% of opex also idles short months before it (February: 28 days)
        assert min(paper.idle_months) < 15
    assert all(paper.run_share[t] == 0.0 for t in paper.idle_months)
    assert expected_npv(s) == pytest.approx(paper.npv, rel=REL)
    always = one_site(**case, **{"sites.0.mining.opex_avoidable_share": 0.0})
    assert paper_npv(always).idle_months == ()  # revision 1: it never idles
    assert expected_npv(always) == pytest.approx(paper_npv(always).npv, rel=REL)
    assert expected_npv(s) > expected_npv(always)


def test_an_idle_month_pays_no_4cp():
    """r3: an idle site draws nothing at the 4CP peaks, so an idle month pays no 4CP and
    idling saves it: with a 4CP charge the site idles every month it idled without one, and
    more; the kernel matches the paper month by month."""
    case = {
        **MINING_CASE,
        "sites.0.curtailable": True,
        "power_markets.grid.price_usd_mwh": 45.0,
        "power_markets.grid.duration_curve": TWO_BINS,
        "sites.0.mining.opex_usd_mw_month": 40_000.0,
        "sites.0.mining.opex_avoidable_share": 0.3,
        "power_markets.grid.fourcp_avoidance": 0.0,
    }
    free = one_site(**{**case, "power_markets.grid.transmission_4cp_usd_kw_year": 0.0})
    charged = one_site(**{**case, "power_markets.grid.transmission_4cp_usd_kw_year": 150.0})
    idle_free, idle_charged = paper_npv(free).idle_months, paper_npv(charged).idle_months
    assert set(idle_free) < set(idle_charged) and len(idle_charged) < 48
    assert expected_npv(charged) == pytest.approx(paper_npv(charged).npv, rel=REL)
    assert expected_npv(free) == pytest.approx(paper_npv(free).npv, rel=REL)


ANCILLARY = {
    "capacity_usd_mw_month": 10_000.0,
    "deployed_hours_share": 0.1,
    "enrolled_share": 0.5,
    "committed_share": 0.5,
}


def test_an_ancillary_month_by_hand():
    """r3: one month of a curtailable MW offered an ancillary programme, by hand. On the
    two-bin curve (85% of hours at 0.5556 x the level, 15% at 3.5185 x), hashing worth
    $100/MWh against a $45 level runs the cheap bin only (the dear bin costs $158), price
    share 0.4722. Enrolled, it also offers half the dear hours (committed a day ahead):
    0.925 of the hours at price share 0.4722 + 0.5 x (1 - 0.4722) = 0.7361, is paid
    $10,000 x 0.925 = $9,250 on them and runs 90% of them (10% deployed). Over 700 hours
    curtailing on price earns 700 x (0.85 x 100 - 45 x 0.4722) = $44,625, enrolled
    700 x 0.9 x (92.5 - 45 x 0.7361) + $9,250 = $46,656: it enrols, half its MW."""
    curve = power.duration_curve(
        kernel_inputs(one_site(**{"power_markets.grid.duration_curve": TWO_BINS})).power_markets[
            "grid"
        ]
    )
    low = 0.6 / 1.08
    service = ancillary.grid_service(AncillaryParams(**ANCILLARY), curve)
    assert service.price_total == pytest.approx(1.0, rel=1e-14)
    value, level, hours_up = np.array([100.0]), np.array([45.0]), 700.0
    run, share = power.curtailment(value, level, curve, xp=np)
    assert (run[0], share[0]) == pytest.approx((0.85, 0.85 * low))
    run, share, earned = ancillary.enrolled_month(
        service, value, level, hours_up, run, share, xp=np
    )
    offered, offered_price = 0.925, 0.85 * low + 0.5 * (1.0 - 0.85 * low)
    assert run[0] == pytest.approx(0.5 * 0.85 + 0.5 * 0.9 * offered)
    assert share[0] == pytest.approx(0.5 * 0.85 * low + 0.5 * 0.9 * offered_price)
    assert earned[0] == pytest.approx(0.5 * 9_250.0)
    on_price = 700 * (0.85 * 100 - 45 * 0.85 * low)
    enrolled = 700 * 0.9 * (offered * 100 - 45 * offered_price) + 9_250
    assert (on_price, enrolled) == pytest.approx((44_625.0, 46_656.25), abs=0.01)
    margin = 700 * (run[0] * 100 - 45 * share[0]) + earned[0]
    assert margin == pytest.approx(0.5 * on_price + 0.5 * enrolled, rel=1e-14)
    # $6,000 a month does not pay for the committed dear hours: it stays off the programme
    cheap = dataclasses.replace(service, capacity_usd_mw_month=6_000.0)
    run2, _, earned2 = ancillary.enrolled_month(
        cheap, value, level, hours_up, *power.curtailment(value, level, curve, xp=np), xp=np
    )
    assert (run2[0], earned2[0]) == (0.85, 0.0)
    # with nothing committed and nothing deployed the payment is pure gain: it enrols
    free = dataclasses.replace(cheap, committed_share=0.0, deployed_share=0.0)
    run3, share3, earned3 = ancillary.enrolled_month(
        free, value, level, hours_up, *power.curtailment(value, level, curve, xp=np), xp=np
    )
    assert (run3[0], share3[0], earned3[0]) == pytest.approx((0.85, 0.85 * low, 0.5 * 6_000 * 0.85))


@pytest.mark.parametrize("capacity", [2_000.0, 10_000.0, 30_000.0])
def test_mining_enrolled_in_ancillary_services(capacity):
    """r3: over four years across a halving, a curtailable site enrols in the months the
    programme pays more than curtailing on price; the kernel equals the paper month by
    month, and the programme is an option: it never lowers the value."""
    case = {
        **MINING_CASE,
        "sites.0.curtailable": True,
        "power_markets.grid.price_usd_mwh": 45.0,
        "power_markets.grid.duration_curve": TWO_BINS,
        "sites.0.mining.opex_usd_mw_month": 20_000.0,
        "sites.0.mining.opex_avoidable_share": 0.3,
        "power_markets.grid.fourcp_avoidance": 1.0,
    }
    bare = one_site(**case)
    s = one_site(
        **case,
        **{"power_markets.grid.ancillary": {**ANCILLARY, "capacity_usd_mw_month": capacity}},
    )
    paper = paper_npv(s)
    assert expected_npv(s) == pytest.approx(paper.npv, rel=REL)
    assert expected_npv(s) >= expected_npv(bare) - 1e-6 * abs(expected_npv(bare))
    if capacity >= 10_000.0:
        assert expected_npv(s) > expected_npv(bare) + 1e5


GENERATOR = {
    "gas_price_usd_mmbtu": 1.5,
    "gas_price_volatility": 0.0,
    "heat_rate_mmbtu_mwh": 9.0,
    "variable_om_usd_mwh": 18.0,
    "availability": 0.9,
}


@pytest.mark.parametrize("curtailable", [False, True])
def test_a_generator_site_by_hand(curtailable):
    """r3: a site on its own gas gensets buys its power at 1.5 x 9 + 18 = $31.5/MWh in every
    hour, pays no 4CP, has no PPA, and runs 90% of the hours its uptime allows. The paper's
    market site at that flat price (one bin), without 4CP and with an uptime of 0.95 x 0.9,
    is worth what the kernel values the generator site at; siteopt economics prices its
    power at $31.5 over 0.855 of the day's hours."""
    case = {**MINING_CASE, "sites.0.power": {}, "sites.0.curtailable": curtailable}
    gen = one_site(**case, **{"sites.0.market": DELETE, "sites.0.generator": GENERATOR})
    uptime = gen.sites[0].mining.uptime * 0.9
    flat = one_site(
        **{
            **case,
            "power_markets.grid.price_usd_mwh": 31.5,
            "power_markets.grid.duration_curve": [[1.0, 1.0]],
            "power_markets.grid.transmission_4cp_usd_kw_year": 0.0,
            "sites.0.mining.uptime": uptime,
        },
    )
    own = kernel_inputs(gen).power_markets["site:generator"]
    assert (own.price_usd_mwh, own.transmission_4cp_usd_kw_year) == (31.5, 0.0)
    assert expected_npv(gen) == pytest.approx(paper_npv(flat).npv, rel=REL)
    site = unit_economics(gen).sites[0]
    assert site.power_price_usd_mwh == pytest.approx(31.5)
    assert site.mining.power_cost_usd_mw_day == pytest.approx(24 * uptime * 31.5)


def test_a_site_that_may_not_curtail_never_idles():
    s = one_site(**MINING_CASE, **{"power_markets.grid.price_usd_mwh": 75.0})
    assert not s.sites[0].curtailable and s.sites[0].mining.opex_avoidable_share > 0
    assert paper_npv(s).idle_months == ()
    assert expected_npv(s) == pytest.approx(paper_npv(s).npv, rel=REL)


REFRESH_CASE = {
    **MINING_CASE,  # refresh every 2 years: the one due date in 3 years is month 24
    "horizon_years": 3,
    "sites.0.mining.refresh": "when_it_pays",
    "market.asic_price_elasticity": 0.8,
    "sites.0.mining.efficiency_gain_per_year": 0.2,
}


def _refresh_threshold_usd_th(s: Scenario, t: int = 24, *, halving_aware: bool = True) -> float:
    """The ASIC price at which refreshing in month ``t`` exactly pays, by hand: a site that
    runs every hour gains hours x uptime x hashprice / 24 x (1 - pool fee) x the PH/s the
    new fleet adds, a month, over one refresh period's annuity; the fleet costs 1000 x its
    PH/s in TH/s at the price x (hashprice / start hashprice)^0.8. r3: the first fleet has
    lost 5% of its machines a year, so the new one also buys the power and pays the 4CP
    they no longer drew; and the months of the period from the next listed halving on
    gain at half this month's hashprice (``halving_aware``; revision 2 did not); each
    month of the new fleet's life counts 0.95 ^ (months / 12) (both fleets keep losing
    machines)."""
    m, mine = s.market, s.sites[0].mining
    r, period = s.discount_rate, round(12 * mine.asic_refresh_years)
    halvings = [_months_from(s.start, h) for h in m.halving_months]

    def hashprice(month: int) -> float:
        subsidy = m.subsidy_btc * 0.5 ** sum(month >= h for h in halvings)
        btc = m.btc_price_usd * math.exp(m.btc_drift * month / 12.0)
        network = m.hashrate_eh * math.exp(m.hashrate_growth * month / 12.0)
        return 144.0 * subsidy * (1.0 + m.fee_share) * btc / (network * 1000.0)

    def ph(bought: int) -> float:
        j_th = mine.efficiency_j_th * (1.0 - mine.efficiency_gain_per_year) ** (bought / 12.0)
        return 1000.0 / (j_th * mine.pue)

    hp = hashprice(t)
    year, month = divmod(int(s.start[5:7]) - 1 + t, 12)
    hours = calendar.monthrange(int(s.start[:4]) + year, month + 1)[1] * 24.0
    alive = (1.0 - mine.attrition) ** (t / 12.0)  # r3: of the first fleet, still working
    pm = s.power_markets["grid"]
    fourcp = pm.transmission_4cp_usd_kw_year * 1000.0 / 12.0  # paid by the machines running

    def gain(h: float) -> float:
        return hours * mine.uptime * (
            h / 24.0 * (1.0 - m.pool_fee) * (ph(t) - alive * ph(0))
            - pm.price_usd_mwh * (1.0 - alive)
        ) - fourcp * (1.0 - alive)

    ahead = [h for h in halvings if t < h < t + period] if halving_aware else []
    cut = min(ahead, default=t + period)
    worth = sum(
        ((1.0 + r) ** (-1.0 / 12.0) * (1.0 - mine.attrition) ** (1.0 / 12.0)) ** k
        * gain(hp * (0.5 if t + k >= cut else 1.0))
        for k in range(period)
    )
    factor = (hp / hashprice(0)) ** m.asic_price_elasticity
    return worth / (1000.0 * ph(t) * factor)


@pytest.mark.parametrize("side", [-1, 1], ids=["just-below-refreshes", "just-above-skips"])
def test_the_refresh_threshold(side):
    """r2: `when_it_pays` refreshes iff the margin gained over the fleet's life pays for
    it. One part in a million below the price found by hand it refreshes in month 24;
    as far above it skips (and the next look, month 36, is past the horizon)."""
    probe = one_site(**REFRESH_CASE)
    price = _refresh_threshold_usd_th(probe) * (1.0 + side * 1e-6)
    s = one_site(**REFRESH_CASE, **{"sites.0.mining.asic_cost_usd_th": price})
    assert not s.sites[0].curtailable  # runs every hour
    paper = paper_npv(s)
    assert paper.refreshed == ((24,) if side < 0 else ())
    assert expected_npv(s) == pytest.approx(paper.npv, rel=REL)
    fleet_2029 = value_options(s, backend="numpy").options.table["mining_eh_2029"].iloc[0]
    never = one_site(**{**REFRESH_CASE, "sites.0.mining.refresh": "never"})
    first = value_options(never, backend="numpy").options.table["mining_eh_2029"].iloc[0]
    assert (fleet_2029 > first * 1.1) == (side < 0)  # the table's EH/s see the new fleet


# a yearly refresh: due in month 12, January 2028, three months before the halving
HALVING_REFRESH = {**REFRESH_CASE, "sites.0.mining.asic_refresh_years": 1.0}


@pytest.mark.parametrize("side", [-1, 1], ids=["just-below-refreshes", "just-above-skips"])
def test_the_refresh_values_the_months_after_the_known_halving_at_the_halved_subsidy(side):
    """r3: nine of the twelve months a fleet bought in January 2028 runs fall after the
    April halving; the rule values them at half this month's hashprice, so it pays less
    for the fleet than revision 2's rule would have, at the threshold found by hand; and
    at a price between the two it does not refresh."""
    probe = one_site(**HALVING_REFRESH)
    aware = _refresh_threshold_usd_th(probe, 12)
    naive = _refresh_threshold_usd_th(probe, 12, halving_aware=False)
    assert aware < 0.7 * naive
    for price, refreshes in (
        (aware * (1.0 + side * 1e-6), side < 0),
        (0.5 * (aware + naive), False),
    ):
        s = one_site(**HALVING_REFRESH, **{"sites.0.mining.asic_cost_usd_th": price})
        paper = paper_npv(s)
        assert (12 in paper.refreshed) == refreshes
        assert expected_npv(s) == pytest.approx(paper.npv, rel=REL)


def test_attrition_by_hand():
    """r3: a fleet that is never refreshed loses 5% of its machines a year: the table's EH/s
    in 2028 (months 12-23) is the first fleet's times the mean of 0.95 ^ (month / 12); the
    kernel equals the paper, and the same site without attrition is worth more."""
    case = {**MINING_CASE, "sites.0.mining.refresh": "never"}
    s = one_site(**case)
    table = value_options(s, backend="numpy").options.table
    mine = s.sites[0].mining
    eh = mine.mw / (mine.efficiency_j_th * mine.pue)
    alive = sum(0.95 ** (t / 12.0) for t in range(12, 24)) / 12.0
    assert table["mining_eh_2028"].iloc[0] == pytest.approx(eh * alive, rel=1e-12)
    assert expected_npv(s) == pytest.approx(paper_npv(s).npv, rel=REL)
    whole = one_site(**case, **{"sites.0.mining.attrition": 0.0})
    assert expected_npv(whole) == pytest.approx(paper_npv(whole).npv, rel=REL)
    assert expected_npv(whole) > expected_npv(s)


def test_refresh_when_it_pays_skips_then_looks_again_a_year_later():
    """Over 8 years with halvings in months 15 and 63: at $6/TH the refresh due in month 24
    does not pay, the look 12 months later does (month 36); the next, due a refresh period
    on (month 72), does not pay either (the fleet's life is worth less as both fleets lose
    machines), the look a year later does (month 84). The kernel equals the paper for all
    three rules, and the decision is worth more than either fixed rule."""
    case = {
        **MINING_CASE,
        "horizon_years": 8,
        "market.halving_months": ["2028-04", "2032-04"],
        "sites.0.mining.efficiency_gain_per_year": 0.15,
        "sites.0.mining.asic_cost_usd_th": 6.0,
    }
    npv = {}
    for rule in ("always", "never", "when_it_pays"):
        s = one_site(**case, **{"sites.0.mining.refresh": rule})
        paper = paper_npv(s)
        assert expected_npv(s) == pytest.approx(paper.npv, rel=REL), rule
        npv[rule] = paper
    assert npv["always"].refreshed == (24, 48, 72)
    assert npv["never"].refreshed == ()
    assert npv["when_it_pays"].refreshed == (36, 84)
    assert npv["when_it_pays"].npv > max(npv["always"].npv, npv["never"].npv)


def test_revision_1_mining_is_refresh_always_without_idling():
    """`refresh: always`, `opex_avoidable_share: 0` and (r3) `attrition: 0` reproduce
    revision 1's mining: the mechanical refresh at the constant price, whatever the ASIC
    price elasticity, every month run: equal to the paper's revision-1 arithmetic and blind
    to the elasticity."""
    case = {
        **MINING_CASE,
        "horizon_years": 6,
        "sites.0.mining.refresh": "always",
        "sites.0.mining.opex_avoidable_share": 0.0,
        "sites.0.mining.attrition": 0.0,
    }
    s = one_site(**case)
    paper = paper_npv(s)
    assert paper.refreshed == (24, 48) and paper.idle_months == ()
    assert expected_npv(s) == pytest.approx(paper.npv, rel=REL)
    elastic = one_site(**case, **{"market.asic_price_elasticity": 2.0})
    assert expected_npv(elastic) == expected_npv(s)


@pytest.mark.parametrize("non_recourse", [False, True])
def test_the_levers_by_hand(non_recourse):
    """Per option: the terminal value's PV is the paper's exit value after tax at df[T]
    less the debt owed then at the debt's rate; the leverage is the paper's NPV with the
    debt less its NPV without (no loan, no lender). Pre-tax, a recourse loan at its own
    rate adds nothing (revision 3's adjusted present value)."""
    debt = {"financing.debt.loan_to_cost": 0.8, "financing.debt.non_recourse": non_recourse}
    s = one_site_ai(**AI_CASE, **debt)
    bare = one_site_ai(**AI_CASE, **{"financing.debt.loan_to_cost": 0.0})
    table = value_options(s, backend="numpy").options.table.set_index("option")
    T, r = 12 * s.horizon_years, s.discount_rate
    for year in (2027, 2028):
        label = f"ai60-{year}-lease"
        paper = paper_npv(s, 60.0, year, s.contracts[0])
        row = table.loc[label]
        tv = (1.0 + r) ** (-T / 12.0) * paper.exit_after_tax
        tv -= (1.0 + paper.debt_rate) ** (-T / 12.0) * paper.owed
        assert row["expected_terminal_pv_usd"] == pytest.approx(tv, rel=REL)
        unlevered = paper_npv(bare, 60.0, year, bare.contracts[0]).npv
        assert row["leverage_usd"] == pytest.approx(paper.npv - unlevered, rel=1e-6, abs=1.0)
        if not non_recourse:
            assert abs(row["leverage_usd"]) < 1e-6 * abs(unlevered)
    hashing = table.loc["hash"]
    assert hashing["leverage_usd"] == 0.0
    assert hashing["expected_terminal_pv_usd"] == pytest.approx(
        (1.0 + r) ** (-T / 12.0) * paper_npv(s).terminal, rel=REL
    )


# --------------------------------------------------------------------------- (g) revision 3

# Each case turns on one piece of revision 3's finance in the paper model above: income tax
# with bonus depreciation and without, property tax with an abatement, cost inflation and
# SG&A, debt with its interest deducted, a bullet refinanced when it falls due, a loan
# below its market rate, a tenant that takes the share of the hall it funded, refits, and
# a buyer at T who discounts the lease at the tenant's rate.
REVISION_3 = {
    "income-tax": {"tax.rate": 0.21, "tax.state_rate": 0.01},
    "no-bonus": {"tax.rate": 0.21, "tax.bonus_depreciation": 0.0},
    "property-tax": {
        "tax.rate": 0.21,
        "tax.property_rate": 0.02,
        "tax.property_abatement_years": 2.0,
        "tax.property_abatement_share": 0.5,
    },
    "cost-inflation": {
        "market.cost_inflation": 0.04,
        "sites.0.mining.sga_usd_mw_month": 1_000.0,
        "sites.0.ai.sga_usd_mw_month": 2_000.0,
    },
    "debt-after-tax": {
        "tax.rate": 0.21,
        "financing.debt.loan_to_cost": 0.7,
        "financing.debt.term_years": 3.0,
    },
    "bullet-refinanced": {
        "tax.rate": 0.21,
        "financing.debt.loan_to_cost": 0.7,
        "financing.debt.term_years": 2.0,
        "financing.debt.amortization": "bullet",
        "financing.debt.refinance": True,
        "financing.debt.refinance_dscr": 1.8,
    },
    "below-market-rate": {"financing.debt.loan_to_cost": 0.7, "financing.debt.market_rate": 0.1},
    "tenant-takes-its-share": {
        "tax.rate": 0.21,
        "contracts.0.tenant_funded_share": 0.5,
        "contracts.0.term_years": 1.5,
        "contracts.0.renewal_prob": 0.0,
        "contracts.0.successor_price_usd_kw_month": 150.0,
        "contracts.0.relet_months": 3,
    },
    "refits": {
        "build.refit_years": 1.0,
        "build.refit_capex_usd_mw": 300_000.0,
        "contracts.0.tenant_funded_share": 0.3,
        "contracts.0.lease_discount_rate": 0.06,
    },
    "lease-rate": {"contracts.0.lease_discount_rate": 0.06, "contracts.0.renewal_prob": 0.0},
}


@pytest.mark.parametrize("case", list(REVISION_3))
def test_revision_3_by_hand(case):
    """The paper model, month by month with floats, equals the valuation to 1e-10 with each
    piece of revision 3 on: the AI options of both build years, and the site hashing."""
    changes = REVISION_3[case]
    s = one_site_ai(**AI_CASE, **changes)
    for year in (2027, 2028):
        paper = paper_npv(s, 40.0, year, s.contracts[0])
        assert expected_npv(s, f"ai40-{year}-lease") == pytest.approx(paper.npv, rel=1e-10)
    mining = {k: v for k, v in changes.items() if not k.startswith(("contracts", "sites.0.ai"))}
    m = one_site(**MINING_CASE, **mining)
    assert expected_npv(m) == pytest.approx(paper_npv(m).npv, rel=1e-10)


# --------------------------------------------------------------------------- AI cloud

CLOUD = {
    "name": "cloud",
    "kind": "cloud",
    "price_usd_kw_month": 800.0,
    "escalator": 0.0,
    "term_years": 3.0,
    "annual_default_prob": 0.0,
    "market_rent_volatility": 0.0,
    "renewal_prob": 1.0,
    "successor_default_prob": 0.0,
    "relet_capex_usd_mw": 0.0,
    "successor_price_usd_kw_month": 120.0,
    "gpu_capex_usd_mw": 29_000_000.0,
    "gpu_residual_curve": [0.7, 0.5, 0.35, 0.2, 0.1],
    "prepayment_share": 0.2,
    "prepayment_months": 2,
    "operations_usd_mw_month": 85_000.0,
}

CLOUD_CASE = {
    "horizon_years": 6,
    "sites.0.mining.mw": 0.0,
    "sites.0.ai.build_capex_usd_mw": 0.0,
    "sites.0.ai.opex_usd_mw_month": 0.0,
    "sites.0.ai.lead_time_months": 7,
    "power_markets.grid.price_usd_mwh": 0.0,  # the AI power the landlord pays costs nothing
    "financing.exit_multiple_ai": 0.0,
    "financing.exit_multiple_mining": 0.0,
    "contracts": [CLOUD],
}


def test_a_cloud_contract_by_hand():
    """40 MW of GPU cloud for 3 years from month 7, then the customer renews as a colocation
    tenant at $120/kW-month for 5 years (past T = 72; a buyer at T pays the rest of that
    lease at discount_rate, and nothing after it with the multiple 0). The GPUs ($29M/MW)
    are bought at month 7 and sold at month 43 at 35% of cost (the curve at 3 years); 20% of
    the term's revenue arrives 2 months after signing (month 2) and is credited against
    each bill; operations cost $85k/MW-month while the cloud contract runs."""
    s = one_site_ai(**CLOUD_CASE)
    v = (1 + s.discount_rate) ** (-1 / 12)

    def pv(a: int, b: int) -> float:  # sum of v^t over months [a, b)
        return sum(v**t for t in range(a, b))

    cloud, colo = 1000.0 * 800.0, 1000.0 * 120.0
    per_mw = (
        cloud * pv(7, 43)
        + colo * pv(43, 103)
        + 0.2 * cloud * 36 * v**2  # the prepayment
        - 0.2 * cloud * pv(7, 43)  # its credits
        - 85_000.0 * pv(7, 43)
        - 29_000_000.0 * v**7
        + 0.35 * 29_000_000.0 * v**43
    )
    assert expected_npv(s, "ai40-2027-cloud") == pytest.approx(40.0 * per_mw, rel=1e-10)


def test_a_cloud_contract_running_at_the_horizon_by_hand():
    """The same contract built in 2030: first revenue at month 43, so at T = 72 it has 14
    months to run. A buyer at T takes over its revenue (less the credits) and operations to
    month 79, and the GPUs' sale then; the renewal after it is worth nothing (multiple 0)."""
    s = one_site_ai(**{**CLOUD_CASE, "build.decision_years": [2030]})
    v = (1 + s.discount_rate) ** (-1 / 12)
    cs, first = 36, 43
    net = 1000.0 * 800.0 * 0.8 - 85_000.0
    per_mw = (
        net * sum(v**t for t in range(first, first + 36))
        + 0.2 * 1000.0 * 800.0 * 36 * v ** (cs + 2)
        - 29_000_000.0 * v**first
        + 0.35 * 29_000_000.0 * v ** (first + 36)
    )
    assert expected_npv(s, "ai40-2030-cloud") == pytest.approx(40.0 * per_mw, rel=1e-10)


@pytest.mark.parametrize("rate", [0.08, 0.05], ids=["at-market", "below-market"])
def test_a_gpu_loan_by_hand(rate):
    """60% of the GPUs borrowed at month 7, 36 level payments from then (the first at once).
    Pre-tax, at the market rate (the debt's 8%) the loan is worth nothing; at 5% it is worth
    the draw less its payments discounted at 8%."""
    base = one_site_ai(**CLOUD_CASE)
    s = one_site_ai(
        **{**CLOUD_CASE, "contracts": [{**CLOUD, "gpu_loan_to_cost": 0.6, "gpu_debt_rate": rate}]}
    )
    m = (1.08 ** (1 / 12)) ** -1
    r = (1 + rate) ** (1 / 12) - 1
    drawn = 0.6 * 29_000_000.0
    payment = drawn / sum((1 + r) ** -k for k in range(36))
    value = drawn * m**7 - payment * sum(m ** (7 + k) for k in range(36))
    got = expected_npv(s, "ai40-2027-cloud") - expected_npv(base, "ai40-2027-cloud")
    assert got == pytest.approx(40.0 * value, abs=1e-6 * 40.0 * drawn)
    if rate == 0.08:
        assert abs(got) < 1e-6 * 40.0 * drawn


# --------------------------------------------------------------------------- powered shell

SHELL_CASE = {
    "horizon_years": 6,
    "sites.0.mining.mw": 0.0,
    "sites.0.ai.build_capex_usd_mw": 9_000_000.0,
    "sites.0.ai.opex_usd_mw_month": 20_000.0,
    "sites.0.ai.lead_time_months": 7,
    "financing.exit_multiple_ai": 0.0,
    "financing.exit_multiple_mining": 0.0,
    "build.refit_years": 1.0,
    "build.refit_capex_usd_mw": 300_000.0,
    "contracts.0.escalator": 0.0,
    "contracts.0.price_usd_kw_month": 40.0,
    "contracts.0.tenant_funded_share": 0.7,
    "contracts.0.annual_default_prob": 1.0,  # the tenant leaves in its first month
    "contracts.0.relet_months": 7,
}


@pytest.mark.parametrize("kind", ["powered_shell", "colocation"])
def test_a_powered_shell_by_hand(kind):
    """The landlord builds 30% of a $9M/MW hall over months 0-6; its tenant leaves at first
    rent (month 7), and after 7 empty months a successor pays $40/kW-month from month 14
    for 5 years (to 74, past T = 72: a buyer pays the rest at discount_rate). A powered
    shell's landlord pays 30% of the hall's opex and of each refit (months 19, 31, ..., 67),
    and the successor fits out its own hall. A colocation lease whose tenant leaves its 70%
    behind (improvements_revert) pays the whole opex and every refit."""
    revert = {"contracts.0.improvements_revert": True} if kind == "colocation" else {}
    s = one_site_ai(**{**SHELL_CASE, "contracts.0.kind": kind, **revert})
    v = (1 + s.discount_rate) ** (-1 / 12)

    def pv(a: int, b: int) -> float:
        return sum(v**t for t in range(a, b))

    own = 0.3 if kind == "powered_shell" else 1.0  # of the opex and refits
    per_mw = (
        -0.3 * 9_000_000.0 / 7 * pv(0, 7)
        + 1000.0 * 40.0 * pv(14, 74)
        - own * 20_000.0 * pv(7, 74)
        - own * 300_000.0 * sum(v**t for t in (19, 31, 43, 55, 67))
    )
    assert expected_npv(s, "ai40-2027-lease") == pytest.approx(40.0 * per_mw, rel=1e-10)
