"""Month-by-month cash flows of one site option: the reference the fast path must equal.

Where :mod:`.coefficients` reads prefix sums, this module builds every line item as
an (N, T) array with explicit state per month (which MW mine, whether the hall earns
contract rent, stands empty, is re-let or mines again, the debt balance). It is
slower and simpler; the tests hold the two paths equal, and ``cashflows.csv`` comes
from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .backend import Backend
from .chunks import ChunkSize, KeptMarket, ordered_map, stream_chunks, usable_cores
from .coefficients import TERMINAL_WINDOW
from .hosting import (
    NEVER,
    Financing,
    annuity_due,
    capex_usd,
    construction_start,
    energisation,
    mining_left_mw,
    mining_while_built_mw,
    relet_capex_usd_mw,
    site_draws,
    spend_months,
    tenancy,
)
from .market import month_label
from .mining import per_month, ppa_settlement
from .params import Portfolio
from .sites import (
    ChunkMarket,
    SiteOption,
    ai_power_per_it_mw,
    chunk_market,
    market_rows,
    site_mining,
)

LINE_ITEMS = (
    "mining_revenue",
    "mining_power",
    "mining_opex",
    "mining_4cp",
    "asic_capex",
    "ppa_settlement",
    "ai_rent",
    "ai_opex",
    "ai_power",
    "ai_relet_capex",
    "equity_capex",
    "debt_service",
)
# Memo lines: the project debt behind equity_capex and debt_service, for the unlevered view
# (siteopt.app.finance). Not cash to the equity: they are never in the NPV or cashflows.csv.
MEMO_ITEMS = ("debt_draw", "debt_owed_at_end")


class OptionCashflows(NamedTuple):
    """One option's cash flows on a chunk of scenarios."""

    lines: dict[str, Any]  # LINE_ITEMS, each (N, T) [USD/month]
    terminal: Any  # (N,) [USD at month T], net of the debt owed then
    debt_draw: Any  # (N, T) [USD/month] drawn from the lenders (0 without AI)
    debt_owed: Any  # (N,) [USD at month T] netted out of ``terminal``


def option_cashflows(
    scenario: Portfolio, option: SiteOption, ctx: ChunkMarket, *, xp: ModuleType
) -> OptionCashflows:
    """Line items, terminal value and the project debt behind them (OptionCashflows)."""
    i = option.site_index
    site, cal = scenario.sites[i], ctx.cal
    power, fl, ms = site_mining(scenario, i, ctx, xp=xp)
    n, t_end = ctx.scenarios.shape[0], cal.months
    t = xp.arange(t_end)[None, :]
    zeros = xp.zeros((n, t_end))
    lines = {name: zeros for name in LINE_ITEMS}
    lines["ppa_settlement"] = ppa_settlement(site, power, cal, xp=xp)
    mining_mw = xp.full((n, t_end), site.mining.mw)
    terminal = xp.zeros(n)
    debt_draw, debt_owed = zeros, xp.zeros(n)
    window = t >= t_end - TERMINAL_WINDOW
    multiple_m = scenario.financing.exit_multiple_mining
    if option.contract_index is None:
        terminal += multiple_m * site.mining.mw * xp.maximum((ms.margin * window).sum(axis=1), 0.0)
    else:
        # all MW mine until construction starts, the retrofit MW stop then, the new-build
        # MW at energisation; from then on what the conversion leaves
        cs = construction_start(scenario, option.build_year)
        on = energisation(scenario, site, option.build_year)
        left = float(mining_left_mw(site, option.it_mw))
        built = float(mining_while_built_mw(site, option.it_mw))
        mining_mw = xp.where(t < cs, site.mining.mw, xp.where(t < on, built, left))
        mining_mw = mining_mw + xp.zeros((n, t_end))
        terminal += multiple_m * sum(
            mw * xp.maximum((ms.margin * (window & (t >= a) & (t < b))).sum(axis=1), 0.0)
            for mw, a, b in ((site.mining.mw, 0, cs), (built, cs, on), (left, on, t_end))
        )
        ai_lines, returned_mw, ai_terminal, (debt_draw, debt_owed) = _hosting(
            scenario, option, ctx, power, ms, fl, xp=xp
        )
        lines.update(ai_lines)
        mining_mw = mining_mw + returned_mw
        terminal += ai_terminal
    lines["mining_revenue"] = mining_mw * ms.revenue
    lines["mining_power"] = -mining_mw * ms.power
    lines["mining_opex"] = -mining_mw * ms.opex
    lines["mining_4cp"] = -mining_mw * ms.fourcp
    lines["asic_capex"] = lines["asic_capex"] - mining_mw * ms.refresh
    return OptionCashflows(lines, terminal, debt_draw, debt_owed)


def _hosting(scenario, option, ctx, power, ms, fl, *, xp):
    """AI line items, MW returned to mining, the AI terminal value net of debt, and the debt
    (drawn by month, owed at T)."""
    i, c_index, L = option.site_index, option.contract_index, option.it_mw
    site, contract, cal = scenario.sites[i], scenario.contracts[c_index], ctx.cal
    ai, fin = site.ai, Financing.of(scenario, contract)
    n, t_end = ctx.scenarios.shape[0], cal.months
    t = xp.arange(t_end)[None, :]
    draws = site_draws(scenario, i, ctx.scenarios, xp=xp)
    pays_power = not contract.power_pass_through
    ai_power = (
        ai_power_per_it_mw(scenario, i, power, cal, xp=xp) if pays_power else xp.zeros((n, t_end))
    )
    ten = tenancy(
        scenario, i, c_index, option.build_year, draws, ms.margin, ai_power,
        fl.asic_cost_usd_mw, ctx.scenarios, xp=xp,
    )  # fmt: skip
    cs, sched = ten.construction, ten.schedule
    start, mrf = ten.start[:, None], ten.market_rent_factor[:, None]
    to_mining, ai_after = ten.to_mining[:, None], ten.ai_after[:, None]
    s = t - start

    s_idx = xp.clip(s, 0, t_end - 1)
    contract_on = (s >= 0) & (s < ten.contract_months[:, None])
    market_on = xp.zeros((n, t_end), dtype=bool)
    fitouts = xp.zeros((n, t_end))  # successors fitted out in the month (one may exit at once)
    for lease in ten.leases:
        market_on |= (s >= lease.start[:, None]) & (s < lease.end[:, None])
        fitouts += lease.fitout[:, None] & (s == lease.start[:, None])
    alive = (s >= 0) & (s < ten.hall_end[:, None])
    rent = L * (
        contract_on * xp.asarray(sched.contract_rent)[s_idx]
        + market_on * mrf * xp.asarray(sched.market_base)[s_idx]
    )
    opex = -L * ai.opex_usd_mw_month * alive
    fit = relet_capex_usd_mw(contract, ai)
    relet_capex = -L * fit * fitouts
    power_line = -L * ai_power * (contract_on | market_on)
    mining_from = ten.mining_from[:, None]
    returned = L * ai.pue * (to_mining & (t >= mining_from))
    purchase = -L * ai.pue * per_month(fl.asic_cost_usd_mw, xp) * (to_mining & (t == mining_from))

    capex = float(capex_usd(ai, L)) * draws.overrun[:, None]
    spend = xp.asarray(spend_months(cs, ai.lead_time_months, t_end))[None, :]
    equity = -capex * fin.equity_share * spend
    lost_from = xp.where(ten.lost, ten.start + ten.lost_at, NEVER)[:, None]  # calendar month
    debt_draw = capex * fin.debt_share * spend
    service, owed = _debt(debt_draw, start, lost_from, fin, t_end, xp=xp)

    # the hall at T as a buyer prices it: months without a tenant at market rent (and its
    # power), less the rest of a vacancy past T and the successor's fit-out
    window = t >= t_end - TERMINAL_WINDOW
    vacant = alive & ~(contract_on | market_on)
    stabilised = rent + L * vacant * mrf * xp.asarray(sched.market_base)[s_idx]
    stabilised = stabilised + opex + power_line - L * ai_power * vacant
    noi = (stabilised * window).sum(axis=1)
    last = xp.clip(ten.rent_months - 1, 0, None)
    lost_noi = ten.market_rent_factor * xp.asarray(sched.market_base)[last] - ai_power[:, -1]
    to_let = L * (ten.vacant_after * lost_noi + ten.vacant_at_end * fit)
    multiple_m = scenario.financing.exit_multiple_mining
    back = (ms.margin * window * (t >= mining_from)).sum(axis=1)
    terminal = xp.where(
        ai_after[:, 0],
        xp.maximum(scenario.financing.exit_multiple_ai * noi - to_let, 0.0),
        0.0,
    )
    terminal += xp.where(to_mining[:, 0], multiple_m * L * ai.pue * xp.maximum(back, 0.0), 0.0)
    terminal -= owed
    lines = {
        "ai_rent": rent,
        "ai_opex": opex,
        "ai_power": power_line,
        "ai_relet_capex": relet_capex,
        "equity_capex": equity,
        "debt_service": -service,
        "asic_capex": purchase,
    }
    return lines, returned, terminal, (debt_draw, owed)


def _debt(draws, start, lost_from, fin, t_end, *, xp):
    """Debt service per month and the balance owed at T, simulated month by month.

    Interest is capitalised until the first rent; from then, payments at the start of each
    month: interest only (which keeps the balance) for ``fin.interest_only_months``, then
    level payments that repay it by the end of the term.
    """
    n = draws.shape[0]
    growth = 1.0 + fin.monthly_rate
    io = fin.interest_only_months
    balance = xp.zeros(n)
    payment = xp.zeros(n)
    interest = xp.zeros(n)
    service = xp.zeros((n, t_end))
    due_factor = annuity_due(fin.monthly_rate, fin.term_months - io)
    for t in range(t_end):
        balance = balance + draws[:, t]
        at_start = start[:, 0] == t
        payment = xp.where(at_start, balance / due_factor, payment)
        k = t - start[:, 0]
        due = payment
        if io:
            interest = xp.where(at_start, balance * (fin.monthly_rate / growth), interest)
            due = xp.where(k < io, interest, payment)
        gone = t >= lost_from[:, 0]  # the lenders hold the hall
        paying = (k >= 0) & (k < fin.term_months) & ~gone
        service[:, t] = xp.where(paying, due, 0.0)
        balance = (balance - service[:, t]) * growth
        balance = xp.where(gone, 0.0, balance)
    # the loop grew the balance one month past T-1: that is the balance owed at T
    owed = xp.where(lost_from[:, 0] < t_end, 0.0, xp.maximum(balance, 0.0))
    return service, owed


def option_npv(scenario: Portfolio, option: SiteOption, ctx: ChunkMarket, *, xp: ModuleType) -> Any:
    """NPV per scenario from the line items [USD]."""
    lines, terminal, _, _ = option_cashflows(scenario, option, ctx, xp=xp)
    df = xp.asarray(ctx.cal.discount)
    total = sum(lines.values())
    return (total * df[None, :-1]).sum(axis=1) + df[-1] * terminal


def expected_cashflows(
    scenario: Portfolio,
    options: list[SiteOption],
    *,
    xp: ModuleType = np,
    chunk_size: int = 2_000,
    markets: Sequence[KeptMarket] = (),
    threads: int | None = None,
    memo: bool = False,
) -> pd.DataFrame:
    """Mean monthly cash flows of the chosen options by site and line item [USD].

    Columns: ``site, month, line_item, usd``; the terminal value is a line item
    in the last month. With ``memo``, also the MEMO_ITEMS (the debt owed at T in the last
    month), which the caller must keep apart from the cash to the equity.

    The month-by-month reference path, on chunks of ``chunk_size`` scenarios: larger chunks
    are slower here (the line items of a chunk are large).

    ``markets``: the valuation's shared paths of the same scenarios (``xp`` arrays, in
    scenario order); the chunks read their rows instead of drawing them again, with the
    same numbers. A chunk they do not cover is drawn.

    On numpy the chunks run on ``threads`` threads (default: the cores this process may
    use) and their sums are added in chunk order, so the numbers do not depend on it; on
    CuPy one chunk at a time, halved on a CUDA out-of-memory error.
    """
    n_total = scenario.simulation.scenarios
    be = Backend(name="numpy" if xp is np else "cupy", xp=xp)
    sums: dict[int, dict[str, np.ndarray]] = {}
    kept = [(m.lo, m.market) for m in markets]
    covered = bool(kept) and kept[0][0] == 0 and markets[-1].hi >= n_total
    needed = {
        list(scenario.power_markets).index(scenario.sites[o.site_index].market) for o in options
    }

    def draw(lo: int, hi: int) -> ChunkMarket:
        ctx = market_rows(kept, lo, hi, xp=xp) if covered else None
        if ctx is None or any(ctx.power[k] is None for k in needed):
            ctx = chunk_market(scenario, xp.arange(lo, hi, dtype=xp.int64), xp=xp)
        return ctx

    def chunk_sums(lo: int, hi: int) -> list[tuple[dict[str, np.ndarray], float]]:
        """Per option: each line item summed over the chunk's scenarios, and the terminal value."""
        ctx, out = draw(lo, hi), []
        for opt in options:
            flows = option_cashflows(scenario, opt, ctx, xp=xp)
            by_line = {name: _host(values.sum(axis=0)) for name, values in flows.lines.items()}
            if memo:
                by_line["debt_draw"] = _host(flows.debt_draw.sum(axis=0))
                by_line["debt_owed_at_end"] = float(_host(flows.debt_owed.sum()))
            out.append((by_line, float(_host(flows.terminal.sum()))))
        return out

    if be.name == "numpy":
        ranges = [(lo, min(n_total, lo + chunk_size)) for lo in range(0, n_total, chunk_size)]
        parts = ordered_map(lambda r: chunk_sums(*r), ranges, threads or usable_cores())
    else:
        chunks = stream_chunks(n_total, ChunkSize(chunk_size), be, chunk_sums)
        parts = (part for _, _, part in chunks)
    for part in parts:  # in chunk order
        for k, (by_line, terminal) in enumerate(part):
            acc = sums.setdefault(k, {})
            for name, values in by_line.items():
                acc[name] = acc.get(name, 0.0) + values
            acc["terminal_value"] = acc.get("terminal_value", 0.0) + terminal
    names = (*LINE_ITEMS, "terminal_value", *(MEMO_ITEMS if memo else ()))
    return _frame(scenario, options, sums, n_total, names)


def _frame(scenario, options, sums, n_total, names) -> pd.DataFrame:
    months = [month_label(scenario, t) for t in range(scenario.months)]
    frames = []
    for k, opt in enumerate(options):
        site = scenario.sites[opt.site_index].name
        for name in names:
            values = np.zeros(scenario.months)
            if name in ("terminal_value", "debt_owed_at_end"):
                values[-1] = sums[k][name]
            else:
                values += np.broadcast_to(sums[k][name], values.shape)
            frames.append(
                pd.DataFrame(
                    {"site": site, "month": months, "line_item": name, "usd": values / n_total}
                )
            )
    if not frames:
        return pd.DataFrame({"site": [], "month": [], "line_item": [], "usd": []})
    return pd.concat(frames, ignore_index=True)


def _host(a: Any) -> np.ndarray:
    return a.get() if hasattr(a, "get") else np.asarray(a)
