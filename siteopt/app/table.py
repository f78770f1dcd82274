"""The option table handed to the MILP: one row per site option (docs/cli.md's options.csv)
plus per-year capex, mining EH/s and AI MW online columns, built from the kernels' numbers.

This is where the valuation's output meets the optimizer's input format
(siteopt.optimizer.options), so neither of them imports the other.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from siteopt.kernels.cloud import GpuLoan, planned_flows_usd
from siteopt.kernels.forward import btc_log_drift
from siteopt.kernels.hosting import (
    construction_start,
    equity_per_capex,
    loan_per_capex,
    spend_months,
    term_revenue_usd_mw,
)
from siteopt.kernels.market import horizon_calendar, month_label
from siteopt.kernels.mining import fixed_hashing_ph_per_mw, hashrate_eh_per_mw
from siteopt.kernels.params import Portfolio
from siteopt.kernels.sale import after_tax_proceeds_usd, close_month
from siteopt.kernels.sites import SiteOption
from siteopt.kernels.tranches import PLUS, mining_mw_by_month, tranche_capex_usd
from siteopt.kernels.valuation import EventTotals, Valuation
from siteopt.model.errors import InputError
from siteopt.optimizer.options import (
    KEEP_HASHING,
    TRANCHE_COLUMNS,
    OptionTable,
    ai_online_column,
    capex_column,
    mining_eh_column,
)


def option_table(scenario: Portfolio, valuation: Valuation) -> OptionTable:
    """The MILP's input: the valuation's statistics per option, its risk sample, and the
    per-year capex, mining and AI columns."""
    table = option_frame(
        scenario,
        valuation.site_options,
        valuation.stats,
        valuation.events(scenario.months),
        scenario.simulation.scenarios,
    )
    return OptionTable(
        table,
        valuation.risk_npv_usd,
        scenario.years,
        scenario.objective.cvar_alpha,
        tranches=option_tranches(scenario, valuation.site_options),
    )


def option_tranches(scenario: Portfolio, options: list[list[SiteOption]]) -> pd.DataFrame:
    """OptionTable.tranches: each hall each option builds (a phased option's tranches, a
    single conversion's one hall), with its contract, MW, build year and first rent."""
    records = []
    row = 0
    for site_opts in options:
        for opt in site_opts:
            site = scenario.sites[opt.site_index]
            for t in opt.tranches:
                first_rent = construction_start(scenario, t.build_year) + site.ai.lead_time_months
                records.append(
                    (row, scenario.contracts[t.contract_index].name, t.it_mw, t.build_year,
                     month_label(scenario, first_rent))
                )  # fmt: skip
            row += 1
    return pd.DataFrame.from_records(records, columns=list(TRANCHE_COLUMNS))


def option_frame(
    scenario: Portfolio,
    options: list[list[SiteOption]],
    stats: dict[str, np.ndarray],
    events: EventTotals,
    n_total: int,
) -> pd.DataFrame:
    """The valuation table of docs/cli.md's options.csv plus the MILP's per-year columns."""
    cal = horizon_calendar(scenario)
    years = np.array(scenario.years)
    rows = []
    for i, site_opts in enumerate(options):
        site = scenario.sites[i]
        ph = fixed_hashing_ph_per_mw(site, scenario.months)
        if ph is None:  # refreshed when it pays: the mean over the scenarios
            ph = events.mean_fleet((i,), n_total)
        eh_per_mw = hashrate_eh_per_mw(ph)
        for opt in site_opts:
            rows.append(_option_row(scenario, site, opt, cal, years, eh_per_mw, events, n_total))
    table = pd.DataFrame(rows)
    for key, values in stats.items():
        table[key] = values
    if "leverage_usd" in table:
        # what debt adds, split: its tax shield and rate subsidy (the leverage's value), and
        # the non-recourse walk-away, the equity's option (the rest)
        table["leverage_value_usd"] = table["tax_shield_usd"] + table["rate_subsidy_usd"]
        table["walk_away_value_usd"] = table["leverage_usd"] - table["leverage_value_usd"]
    table["build_year"] = table["build_year"].astype("Int64")
    check_finite(scenario, table)
    return table


# Beyond this an NPV means the scenario's numbers are out of any real range (world GDP is
# ~1e14 USD), and the MILP's coefficients (in MUSD) would near its solvers' "infinity" (1e20).
MAX_ABS_USD = 1e18


def check_finite(scenario: Portfolio, table: pd.DataFrame) -> None:
    """Refuse an option table with a NaN, an infinity or an absurd amount of money.

    Each field of a scenario is bounded by the schema, but extremes multiply (a negative
    discount rate over 50 years, a near-zero hashrate with a high BTC drift): rather
    than hand the MILP NaN or 1e25, say which site and statistic left the range.

    Raises
    ------
    InputError
        Naming the site, the option and the column (exit 2).
    """
    numeric = table.select_dtypes(include="number").drop(columns=["build_year"])
    values = numeric.to_numpy(dtype=np.float64)
    limit = np.where(numeric.columns.str.endswith("_usd"), MAX_ABS_USD, np.inf)
    bad = ~(np.abs(values) <= limit[None, :])  # NaN compares False: bad too
    if not bad.any():
        return
    row, col = (int(i[0]) for i in np.nonzero(bad))
    value, column = float(values[row, col]), str(numeric.columns[col])
    what = "is not a number" if np.isnan(value) else f"reaches {value:.3g}"
    drift = btc_log_drift(scenario.market.btc_drift, scenario.market.btc_volatility)
    raise InputError(
        f"{scenario.name}: site '{table['site'].iloc[row]}', option "
        f"'{table['option'].iloc[row]}': {column} {what}, beyond what can be valued "
        f"(|USD| <= {MAX_ABS_USD:.0e}); the scenario's extremes compound over "
        f"{scenario.horizon_years} years (discount_rate {scenario.discount_rate:g}, "
        f"market.btc_drift {drift:g}, market.hashrate_eh "
        f"{scenario.market.hashrate_eh:g}, and the site's mining and ai values): bring them "
        "into a realistic range"
    )


def _option_row(scenario, site, opt, cal, years, eh_per_mw, events, n_total) -> dict[str, Any]:
    months = scenario.months
    row: dict[str, Any] = {
        "site": site.name,
        "option": KEEP_HASHING if opt.hashes else opt.label,
        "ai_it_mw": opt.it_mw,
        "build_year": opt.build_year,
        "contract": PLUS.join(scenario.contracts[t.contract_index].name for t in opt.tranches),
        "online_month": "",
        "partner_share": 1.0 - opt.hall_share,
    }
    mining_mw = np.full(months, site.mining.mw)
    online = np.zeros(months)
    capex_by_month = np.zeros(months)
    debt = 0.0
    if opt.sells:
        # expected: the site mines on where the sale fails; the proceeds after the gain's
        # tax fund the budget of the year it closes (a negative capex)
        c, p = close_month(site), site.sale.close_prob
        mining_mw[c:] *= 1.0 - p
        capex_by_month[c] = -p * after_tax_proceeds_usd(scenario, site)
    halls = opt.tranches
    if halls:  # the mining the option's halls leave, month by month
        mining_mw = mining_mw_by_month(scenario, site, halls, months)
    for t, today in zip(halls, tranche_capex_usd(site.ai, halls), strict=True):
        contract = scenario.contracts[t.contract_index]
        cs = construction_start(scenario, t.build_year)
        key = (opt.site_index, t.build_year, t.contract_index)
        returned = events.returned[key] / n_total
        mining_mw[cs:] += t.it_mw * site.ai.pue * returned[cs:]
        online = online + t.it_mw * events.online[key] / n_total
        spend = spend_months(cs, site.ai.lead_time_months, months) * today
        capex_by_month = capex_by_month + (
            equity_per_capex(scenario, site, contract, t.build_year) * spend
        )
        loan = float(loan_per_capex(scenario, site, contract, t.build_year, 1.0))
        debt += loan * float(spend.sum())
        first_rent = cs + site.ai.lead_time_months
        capex_by_month = capex_by_month + planned_flows_usd(
            scenario, contract, cs, first_rent, t.it_mw, term_revenue_usd_mw(contract)
        )
        gpu_loan = GpuLoan.of(scenario, contract)
        if gpu_loan is not None and first_rent < months:
            debt += t.it_mw * gpu_loan.drawn
        if not row["online_month"]:
            row["online_month"] = month_label(scenario, first_rent)  # the first tranche's
    if halls:
        # a JV partner funds and borrows its share of the hall (the tenant's MW stay whole)
        capex_by_month, debt = opt.hall_share * capex_by_month, opt.hall_share * debt
    row["equity_capex_usd"] = float(capex_by_month.sum())
    row["debt_usd"] = debt
    for y in years:
        in_year = cal.year == y
        row[capex_column(int(y))] = float(capex_by_month[in_year].sum())
        row[mining_eh_column(int(y))] = float((mining_mw * eh_per_mw)[in_year].mean())
        row[ai_online_column(int(y))] = float(online[in_year].mean())
    return row
