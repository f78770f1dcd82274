"""The valuation: NPV distributions of every site option, streamed over scenario chunks.

>>> result = value_options(load_scenario("scenarios/texas.yaml"), scenarios=2000)  # doctest: +SKIP
>>> result.options.table[["site", "option", "expected_npv_usd", "cvar_usd"]]        # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from siteopt.optimizer.options import (
    KEEP_HASHING,
    OptionTable,
    ai_online_column,
    capex_column,
    mining_eh_column,
)

from siteopt.schema import Scenario

from .backend import Backend, select_backend
from .coefficients import construction_start
from .hosting import Financing, capex_usd, mining_left_mw, spend_months
from .market import horizon_calendar
from .mining import fleet, hashrate_eh_per_mw
from .options import SiteOption, chunk_market, site_chunk, site_options
from .reduce import DEFAULT_BINS, Histograms, Moments

CPU_MEMORY_BUDGET_BYTES = 1 << 30
PASS_CACHE_BYTES = 256 << 20  # pass 2 reuses pass 1's NPVs when all of them fit here
GPU_MEMORY_SHARE = 0.5

# progress(stage, scenarios done in this stage, scenarios in this stage)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ValuationResult:
    """What the valuation hands on.

    Attributes
    ----------
    options : OptionTable
        The MILP's input (see siteopt.optimizer.options).
    site_options : list of list of SiteOption
        Options per site, in table order.
    quantile_error_usd : ndarray [USD]
        Per option bound on the error of quantiles and CVaR (one histogram bin).
    """

    options: OptionTable
    site_options: list[list[SiteOption]]
    backend: str
    scenarios: int
    seed: int
    chunk_size: int
    quantile_error_usd: np.ndarray
    timings_s: dict[str, float] = field(default_factory=dict)


def with_simulation(scenario: Scenario, scenarios: int | None, seed: int | None) -> Scenario:
    """The scenario with ``--scenarios``/``--seed`` applied (risk sample capped at N)."""
    sim = scenario.simulation
    n = scenarios if scenarios is not None else sim.scenarios
    update = {
        "scenarios": n,
        "seed": sim.seed if seed is None else seed,
        "risk_sample": min(sim.risk_sample, n),
    }
    return scenario.model_copy(update={"simulation": sim.model_copy(update=update)})


def bytes_per_scenario(scenario: Scenario) -> int:
    """Rough peak bytes per scenario of one chunk (float64 month arrays per site) [B]."""
    months = scenario.months
    widest = max(len(site_options(scenario, i)) for i in range(len(scenario.sites)))
    return 8 * (months * (48 + 3 * len(scenario.power_markets)) + 4 * widest + 64)


def chunk_size_for(scenario: Scenario, backend: Backend, memory_budget_bytes: int | None) -> int:
    if memory_budget_bytes is None:
        if backend.name == "cupy":
            memory_budget_bytes = int(GPU_MEMORY_SHARE * backend.free_memory_bytes())
        else:
            memory_budget_bytes = min(CPU_MEMORY_BUDGET_BYTES, backend.free_memory_bytes() // 2)
    return int(
        max(
            1,
            min(scenario.simulation.scenarios, memory_budget_bytes // bytes_per_scenario(scenario)),
        )
    )


def value_options(
    scenario: Scenario,
    *,
    backend: Backend | str = "auto",
    scenarios: int | None = None,
    seed: int | None = None,
    chunk_size: int | None = None,
    memory_budget_bytes: int | None = None,
    bins: int = DEFAULT_BINS,
    progress: Progress | None = None,
) -> ValuationResult:
    """Monte Carlo NPV statistics of every site option.

    Parameters
    ----------
    scenario : Scenario
    backend : Backend or {"auto", "numpy", "cupy"}
    scenarios, seed : int, optional
        Override ``simulation.scenarios`` / ``simulation.seed``.
    chunk_size : int, optional
        Scenarios per chunk; by default from the memory budget (about 1 GiB on the
        CPU, half the free device memory on CuPy).
    bins : int
        Histogram bins per option for quantiles and CVaR.
    progress : callable, optional
        Called as ``progress(stage, done, total)`` after each chunk.
    """
    t0 = time.perf_counter()
    scenario = with_simulation(scenario, scenarios, seed)
    be = backend if isinstance(backend, Backend) else select_backend(backend)
    size = chunk_size or chunk_size_for(scenario, be, memory_budget_bytes)
    options = [site_options(scenario, i) for i in range(len(scenario.sites))]
    offsets = np.cumsum([0] + [len(o) for o in options])
    n_total, alpha = scenario.simulation.scenarios, scenario.objective.cvar_alpha
    risk_n = scenario.simulation.risk_sample
    moments = Moments()
    risk = np.empty((offsets[-1], risk_n))
    events = EventTotals(scenario.months)
    cache: list[np.ndarray] | None = [] if offsets[-1] * n_total * 8 <= PASS_CACHE_BYTES else None
    for lo, npv, chunk_events in _chunks(
        scenario, options, offsets, be, size, "valuation", progress
    ):
        host = be.to_numpy(npv)
        moments.add(host)
        if cache is not None:
            cache.append(host)
        if lo < risk_n:
            take = min(risk_n - lo, npv.shape[0])
            risk[:, lo : lo + take] = be.to_numpy(npv[:take]).T
        events.add(chunk_events, be)
    t1 = time.perf_counter()
    hist = Histograms.from_moments(moments, bins, alpha)
    if cache is not None:  # the same numbers pass 2 would recompute
        for host in cache:
            hist.add(host, xp=np)
        if progress is not None:
            progress("quantiles", n_total, n_total)
    else:
        for _, npv, _ in _chunks(scenario, options, offsets, be, size, "quantiles", progress):
            hist.add(npv, xp=be.xp)
    t2 = time.perf_counter()
    stats = {
        "expected_npv_usd": moments.mean,
        "std_npv_usd": moments.std,
        "p5_npv_usd": hist.quantile(0.05),
        "p50_npv_usd": hist.quantile(0.50),
        "p95_npv_usd": hist.quantile(0.95),
        "cvar_usd": hist.cvar(alpha),
    }
    table = option_table(scenario, options, stats, events, n_total)
    result_options = OptionTable(table, risk, scenario.years, alpha)
    timings = {"pass1": t1 - t0, "pass2": t2 - t1, "total": time.perf_counter() - t0}
    return ValuationResult(
        result_options,
        options,
        be.name,
        n_total,
        scenario.simulation.seed,
        size,
        hist.width.copy(),
        timings,
    )


def _chunks(
    scenario: Scenario,
    options: list[list[SiteOption]],
    offsets: np.ndarray,
    be: Backend,
    size: int,
    stage: str,
    progress: Progress | None,
) -> Iterator[tuple[int, Any, dict]]:
    """Yield (first scenario, NPV matrix (N, all options), AI events) per chunk."""
    xp, n_total = be.xp, scenario.simulation.scenarios
    for lo in range(0, n_total, size):
        idx = xp.arange(lo, min(n_total, lo + size), dtype=xp.int64)
        ctx = chunk_market(scenario, idx, xp=xp)
        npv = xp.empty((idx.shape[0], int(offsets[-1])))
        events = {}
        for i, site_opts in enumerate(options):
            sc = site_chunk(scenario, i, site_opts, ctx, xp=xp)
            npv[:, offsets[i] : offsets[i + 1]] = sc.npv
            for key, ev in sc.events.items():
                events[(i, *key)] = ev
        if progress is not None:
            progress(stage, int(lo + idx.shape[0]), n_total)
        yield lo, npv, events


class EventTotals:
    """Sums over scenarios of per-month AI state, per (site, build year, contract)."""

    def __init__(self, months: int) -> None:
        self.months = months
        self.online: dict[tuple, np.ndarray] = {}
        self.returned: dict[tuple, np.ndarray] = {}

    def add(self, events: dict, be: Backend) -> None:
        xp, t = be.xp, self.months
        for key, ev in events.items():
            bump = xp.bincount(ev.rent_start, minlength=t + 1) - xp.bincount(
                ev.contract_end, minlength=t + 1
            )
            bump = bump + xp.bincount(
                ev.relet, weights=ev.ai_after.astype(xp.float64), minlength=t + 1
            )
            back = xp.bincount(ev.relet, weights=ev.to_mining.astype(xp.float64), minlength=t + 1)
            online = be.to_numpy(xp.cumsum(bump)[:t]).astype(np.float64)
            returned = be.to_numpy(xp.cumsum(back)[:t]).astype(np.float64)
            self.online[key] = self.online.get(key, 0.0) + online
            self.returned[key] = self.returned.get(key, 0.0) + returned


def option_table(
    scenario: Scenario,
    options: list[list[SiteOption]],
    stats: dict[str, np.ndarray],
    events: EventTotals,
    n_total: int,
) -> pd.DataFrame:
    """The valuation table of CLI.md's options.csv plus the MILP's per-year columns."""
    cal = horizon_calendar(scenario)
    years = np.array(scenario.years)
    rows = []
    for i, site_opts in enumerate(options):
        site = scenario.sites[i]
        eh_per_mw = hashrate_eh_per_mw(fleet(site, scenario.months))
        for opt in site_opts:
            rows.append(_option_row(scenario, site, opt, cal, years, eh_per_mw, events, n_total))
    table = pd.DataFrame(rows)
    for key, values in stats.items():
        table[key] = values
    table["build_year"] = table["build_year"].astype("Int64")
    return table


def _option_row(scenario, site, opt, cal, years, eh_per_mw, events, n_total) -> dict[str, Any]:
    months = scenario.months
    row: dict[str, Any] = {
        "site": site.name,
        "option": KEEP_HASHING if opt.contract_index is None else opt.label,
        "ai_it_mw": opt.it_mw,
        "build_year": opt.build_year,
        "contract": ""
        if opt.contract_index is None
        else scenario.contracts[opt.contract_index].name,
        "online_month": "",
    }
    mining_mw = np.full(months, site.mining.mw)
    online = np.zeros(months)
    capex_by_month = np.zeros(months)
    debt = 0.0
    if opt.contract_index is not None:
        contract = scenario.contracts[opt.contract_index]
        fin = Financing.of(scenario, contract)
        cs = construction_start(scenario, opt.build_year)
        key = (opt.site_index, opt.build_year, opt.contract_index)
        returned = events.returned[key] / n_total
        mining_mw[cs:] = mining_left_mw(site, opt.it_mw) + opt.it_mw * site.ai.pue * returned[cs:]
        online = opt.it_mw * events.online[key] / n_total
        spend = spend_months(cs, site.ai.lead_time_months, months) * float(
            capex_usd(site.ai, opt.it_mw)
        )
        capex_by_month = fin.equity_share * spend
        debt = fin.debt_share * float(spend.sum())
        first_rent = cs + site.ai.lead_time_months
        row["online_month"] = _month_label(scenario, first_rent)
    row["equity_capex_usd"] = float(capex_by_month.sum())
    row["debt_usd"] = debt
    for y in years:
        in_year = cal.year == y
        row[capex_column(int(y))] = float(capex_by_month[in_year].sum())
        row[mining_eh_column(int(y))] = float((mining_mw * eh_per_mw)[in_year].mean())
        row[ai_online_column(int(y))] = float(online[in_year].mean())
    return row


def _month_label(scenario: Scenario, month_index: int) -> str:
    first = int(scenario.start[:4]) * 12 + int(scenario.start[5:]) - 1 + month_index
    return f"{first // 12:04d}-{first % 12 + 1:02d}"


def plan_npv_samples(
    scenario: Scenario,
    plans: dict[str, list[SiteOption]],
    *,
    backend: Backend | str = "auto",
    chunk_size: int | None = None,
    progress: Progress | None = None,
) -> dict[str, np.ndarray]:
    """Portfolio NPV per scenario of each plan (one option per site), on all scenarios [USD].

    The same draws as :func:`value_options` with the same scenario (seed, count),
    so a plan's mean here equals the sum of its options' expected NPVs.
    """
    be = backend if isinstance(backend, Backend) else select_backend(backend)
    size = chunk_size or chunk_size_for(scenario, be, None)
    n_total, xp = scenario.simulation.scenarios, be.xp
    out = {name: np.empty(n_total) for name in plans}
    by_site: list[list[SiteOption]] = [[] for _ in scenario.sites]
    for plan in plans.values():
        for opt in plan:
            if opt not in by_site[opt.site_index]:
                by_site[opt.site_index].append(opt)
    for lo in range(0, n_total, size):
        idx = xp.arange(lo, min(n_total, lo + size), dtype=xp.int64)
        ctx = chunk_market(scenario, idx, xp=xp)
        columns = {}
        for i, opts in enumerate(by_site):
            if opts:
                npv = be.to_numpy(site_chunk(scenario, i, opts, ctx, xp=xp).npv)
                columns.update({opt: npv[:, j] for j, opt in enumerate(opts)})
        for name, plan in plans.items():
            out[name][lo : lo + len(idx)] = sum((columns[o] for o in plan), np.zeros(len(idx)))
        if progress is not None:
            progress("plan", int(lo + len(idx)), n_total)
    return out
