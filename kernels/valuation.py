"""The valuation: NPV distributions of every site option, streamed over scenario chunks.

Takes a :class:`~siteopt.kernels.params.Portfolio` and returns, per site, its options'
statistics, risk-sample NPVs and AI event totals; the app layer turns them into the MILP's
option table (siteopt.app.valuation).

The two passes over the chunks are written once, here, against a
:class:`~siteopt.kernels.chunks.ChunkExecutor`: in this process
(:class:`~siteopt.kernels.chunks.LocalChunks`) or on a Dask cluster
(:class:`~siteopt.kernels.dask_chunks.DaskChunks`).

* Pass 1 (moments). The shift is scenario 0's NPV row, computed by a one-scenario task.
  Each chunk task returns per-block count, shifted sums and squares, minimum and maximum;
  they are folded in block order exactly as a streaming ``reduce.Moments`` adds them, so
  the mean, the standard deviation and the histogram ranges do not depend on the chunks or
  the executor. The risk sample (the first ``risk_sample`` scenarios) comes from the chunks
  that hold it; the AI event totals are whole numbers and add exactly.
* Pass 2 (histograms) bins each piece of NPVs over the ranges pass 1 set, and the pieces'
  per-bin counts and sums are added in a fixed pairwise tree. When pass 1's NPVs all fit
  in ``PASS_CACHE_BYTES`` they are kept and pass 2 reads them: in this process as one piece
  (and the plan's per-scenario NPVs are read from them after the MILP), on a cluster as
  one piece per chunk in the workers' memory. Otherwise pass 2 recomputes each chunk.
  Counts are exact; per-bin sums, and so CVaR, depend on the pieces only through the
  floating-point order of that tree (measured at ~1e-14 relative).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import Backend, select_backend
from .chunks import (
    ChunkExecutor,
    ChunkJob,
    KeptMarket,
    LocalChunks,
    Progress,
    add_histograms,
    chunk_values,
    joined_values,
    pass_one,
    pass_one_job,
    pass_two,
    pass_two_job,
    plan_values,
    shift_rows,
)
from .params import Portfolio
from .reduce import (
    DEFAULT_BINS,
    EventTotals,
    Grouping,
    GroupTotals,
    Histograms,
    MeanTotals,
    Moments,
)
from .sites import LEVERS, SiteOption, site_options

PASS_CACHE_BYTES = 256 << 20  # pass 2 reuses pass 1's NPVs when all of them fit here
MARKET_CACHE_BYTES = 256 << 20  # the cash flows reuse pass 1's shared paths when they fit


@dataclass(frozen=True)
class Valuation:
    """What the valuation hands on: every site's part, in site order.

    Attributes
    ----------
    site_options : list of list of SiteOption
        Options per site, in table order.
    parts : list of SiteValues
        Per site: its options' statistics, risk-sample NPVs and AI event totals.
    chunk_size : int
        Scenarios per chunk it ended with (a CUDA out-of-memory error halves it).
    markets : list of KeptMarket
        Pass 1's shared paths (market and power markets) by chunk, when they fit in
        MARKET_CACHE_BYTES on the numpy backend in this process; the cash flows take them
        (:meth:`take_markets`) instead of drawing them again. Empty otherwise.
    """

    site_options: list[list[SiteOption]]
    parts: list[SiteValues]
    backend: str
    chunk_size: int
    timings_s: dict[str, float] = field(default_factory=dict)
    markets: list[KeptMarket] = field(default_factory=list, repr=False)

    def take_markets(self) -> list[KeptMarket]:
        """The kept shared paths, handed over once (the valuation lets go of them)."""
        kept = list(self.markets)
        self.markets.clear()
        return kept

    @property
    def stats(self) -> dict[str, np.ndarray]:
        """STAT_COLUMNS over every option, in site order [USD]."""
        return {k: np.concatenate([p.stats[k] for p in self.parts]) for k in STAT_COLUMNS}

    @property
    def risk_npv_usd(self) -> np.ndarray:
        """(options, risk_sample) NPVs of the first scenarios [USD]."""
        return np.vstack([p.risk for p in self.parts])

    @property
    def group_npv_usd(self) -> np.ndarray | None:
        """(groups, options) mean NPV of every option in each scenario group [USD]; None
        when the valuation had no grouping."""
        if not self.parts or any(p.group_npv_usd is None for p in self.parts):
            return None
        return np.hstack([p.group_npv_usd for p in self.parts])

    @property
    def quantile_error_usd(self) -> np.ndarray:
        """Per option bound on the error of quantiles and CVaR (one histogram bin) [USD]."""
        return np.concatenate([p.quantile_error_usd for p in self.parts])

    def plan_npvs(self, plans: dict[str, list[SiteOption]]) -> dict[str, np.ndarray] | None:
        """Portfolio NPV per scenario of each plan [USD], read from the NPVs pass 1 kept;
        None when a site of some plan has none kept (read from a cache, or too many to
        keep): then :func:`plan_npv_samples` computes them. The numbers are the same."""
        where = {o: (i, j) for i, opts in enumerate(self.site_options) for j, o in enumerate(opts)}
        needed = {where[o][0] for plan in plans.values() for o in plan}
        if any(self.parts[i].npv_usd is None for i in needed):
            return None
        n = next((self.parts[i].npv_usd.shape[0] for i in needed), 0)
        return {
            name: sum((self.parts[where[o][0]].npv_usd[:, where[o][1]] for o in plan), np.zeros(n))
            for name, plan in plans.items()
        }

    def events(self, months: int) -> EventTotals:
        """The AI event totals of every site."""
        if not self.parts:
            return EventTotals(months)
        return EventTotals.merged([part.events for part in self.parts])


def value_options(
    scenario: Portfolio,
    *,
    backend: Backend | str = "auto",
    chunk_size: int | None = None,
    memory_budget_bytes: int | None = None,
    bins: int = DEFAULT_BINS,
    progress: Progress | None = None,
    cache: ValuationCache | None = None,
    executor: ChunkExecutor | None = None,
    grouping: Grouping | None = None,
) -> Valuation:
    """Monte Carlo NPV statistics of every site option.

    Parameters
    ----------
    scenario : Portfolio
        With its run settings (``simulation``) applied.
    backend : Backend or {"auto", "numpy", "cupy"}
    chunk_size : int, optional
        Scenarios per chunk; by default from the memory budget (about 1 GiB on the
        CPU, half the free device memory on CuPy). The results do not depend on it.
        A CUDA out-of-memory error halves it and the run goes on
        (``Valuation.chunk_size`` is the size it ended with).
    memory_budget_bytes : int, optional
        The budget the default chunk size is taken from, in this process.
    bins : int
        Histogram bins per option for quantiles and CVaR.
    progress : callable, optional
        Called as ``progress(stage, done, total)`` after each chunk.
    cache : ValuationCache, optional
        Sites whose inputs (:func:`site_key`) are in the cache are not valued again;
        the sites valued here are added to it. The numbers are the same either way.
    executor : ChunkExecutor, optional
        Where the chunks run (e.g. :class:`~siteopt.kernels.dask_chunks.DaskChunks`);
        by default in this process (:class:`~siteopt.kernels.chunks.LocalChunks`). The
        results agree to the floating-point order of the histogram sums.
    grouping : Grouping, optional
        Also every option's mean NPV in each group of scenarios (``Valuation.group_npv_usd``),
        reduced in the same first pass: the market states of a staged plan.
    """
    t0 = time.perf_counter()
    be = backend if isinstance(backend, Backend) else select_backend(backend)
    executor = executor or LocalChunks(memory_budget_bytes)
    options = [site_options(scenario, i) for i in range(len(scenario.sites))]
    if cache is None:
        keys, known = [], [None] * len(options)
    else:
        keys = [site_key(scenario, i, be.name, bins, grouping) for i in range(len(options))]
        known = cache.get(keys)
    todo = [i for i, hit in enumerate(known) if hit is None]
    jobs = executor.jobs(scenario, {i: options[i] for i in todo}, todo, be, chunk_size)
    timings = {"pass1": 0.0, "pass2": 0.0}
    if executor.in_process and be.name == "numpy" and keeps_markets(scenario, options, todo):
        jobs = [dataclasses.replace(job, keep_markets=True) for job in jobs]
    fresh, markets = value_sites(
        scenario, options, todo, jobs, executor, bins, progress, timings, grouping
    )
    if cache is not None:
        cache.put({keys[i]: fresh[i] for i in todo})
    parts = [fresh[i] if hit is None else hit for i, hit in enumerate(known)]
    timings.update(total=time.perf_counter() - t0, sites_valued=float(len(todo)))
    return Valuation(options, parts, be.name, executor.chunk_size, timings, list(markets))


STAT_COLUMNS = (
    "expected_npv_usd",
    "std_npv_usd",
    "p5_npv_usd",
    "p50_npv_usd",
    "p95_npv_usd",
    "cvar_usd",
    "expected_terminal_pv_usd",  # the part of E[NPV] that is the terminal value's PV
    "leverage_usd",  # E[NPV] less the E[NPV] without project debt, on the same draws
    "tax_shield_usd",  # of leverage_usd, the PV of the tax the debt's interest saves
    "rate_subsidy_usd",  # of leverage_usd, what the debt's rate below the market's is worth
)


@dataclass(frozen=True)
class SiteValues:
    """One site's part of the valuation: what its options contribute to the table."""

    stats: dict[str, np.ndarray]  # STAT_COLUMNS, one value per option [USD]
    risk: np.ndarray  # (options, risk_sample) NPVs of the first scenarios [USD]
    events: EventTotals  # the site's AI event and fleet totals
    quantile_error_usd: np.ndarray
    # (groups, options) conditional mean NPVs by scenario group [USD] (valued with a grouping)
    group_npv_usd: np.ndarray | None = None
    # (scenarios, options) NPVs of every scenario [USD], kept from pass 1 when they fit in
    # PASS_CACHE_BYTES; the chosen plan's per-scenario NPVs are then read, not recomputed
    npv_usd: np.ndarray | None = None


class ValuationCache:
    """Site valuations by their inputs, shared by the solves of a what-if or a sweep.

    A site's valuation depends on its own entry, its power market, the contracts it is
    eligible for, and the scenario-wide market, simulation, financing terms and build
    rules (:func:`site_key`); a change elsewhere leaves it as it was, so it is reused.
    """

    def __init__(self) -> None:
        self._sites: dict[str, SiteValues] = {}
        self.hits = 0
        self.misses = 0

    def get(self, keys: list[str]) -> list[SiteValues | None]:
        found = [self._sites.get(k) for k in keys]
        self.hits += sum(f is not None for f in found)
        self.misses += sum(f is None for f in found)
        return found

    def put(self, values: dict[str, SiteValues]) -> None:
        """Keep ``values`` without their per-scenario NPVs (a sweep would hold one copy
        per point; a site read from the cache has its plan NPVs recomputed instead)."""
        self._sites.update({k: dataclasses.replace(v, npv_usd=None) for k, v in values.items()})

    def __len__(self) -> int:
        return len(self._sites)


# Contract fields only the MILP reads: a change to them does not change a site's NPVs.
_PLAN_ONLY_CONTRACT_FIELDS = ("min_mw", "online_by", "must_sign", "eligible_sites")


def site_key(
    scenario: Portfolio, site_index: int, backend: str, bins: int, grouping: Grouping | None = None
) -> str:
    """Everything the valuation of one site reads, as a canonical JSON string.

    Budgets, carry-over, contract minimums and dates, and the objective's weights and
    floors only enter the MILP; other sites and the contracts this one cannot sign do
    not enter its NPVs at all. Indices are part of the key because the random streams
    are keyed by site, market and contract index.
    """
    site = scenario.sites[site_index]
    eligible = {c.name for c in scenario.contracts_for(site)}
    contracts = [
        [j, _plain(c, exclude=_PLAN_ONLY_CONTRACT_FIELDS)]
        for j, c in enumerate(scenario.contracts)
        if c.name in eligible
    ]
    key = {
        "backend": backend,
        "bins": bins,
        "site_index": site_index,
        "site": _plain(site),
        "market_index": list(scenario.power_markets).index(site.market),
        "power_market": _plain(scenario.power_markets[site.market]),
        "contracts": contracts,
        "start": scenario.start,
        "horizon_years": scenario.horizon_years,
        "discount_rate": scenario.discount_rate,
        "simulation": _plain(scenario.simulation),
        "market": _plain(scenario.market),
        "financing": _plain(scenario.financing),
        "build": _plain(scenario.build),
        "tax": _plain(scenario.tax),
        "cvar_alpha": scenario.objective.cvar_alpha,
        "grouping": None if grouping is None else grouping.key,
    }
    return json.dumps(key, sort_keys=True)


def _plain(params: Any, exclude: Sequence[str] = ()) -> dict[str, Any]:
    """A parameter struct as JSON-ready data, without the fields in ``exclude``."""
    data = dataclasses.asdict(params)
    return {k: v for k, v in data.items() if k not in exclude}


class SiteAccumulator:
    """Both passes' accumulators for one site's options, fed by the chunk tasks' parts."""

    def __init__(self, shift: np.ndarray, months: int, risk_n: int, groups: int = 0) -> None:
        self.moments = Moments(shift=shift)
        self.groups = GroupTotals(groups, shift.shape[0]) if groups else None
        self.levers = MeanTotals(len(LEVERS) * shift.shape[0])
        self.risk = np.empty((shift.shape[0], risk_n))
        self.events = EventTotals(months)
        self.hist: Histograms | None = None

    def add_pass_one(self, part: Any, lo: int) -> None:
        """Fold a chunk's :class:`~siteopt.kernels.chunks.SitePassOne` starting at ``lo``."""
        for block in part.blocks:
            self.moments.fold(block)
        for block in part.lever_blocks:
            self.levers.fold(block)
        for block in part.group_blocks:
            self.groups.fold(block)
        risk_n = self.risk.shape[1]
        take = min(risk_n - lo, part.risk_rows.shape[0])
        if take > 0:
            self.risk[:, lo : lo + take] = part.risk_rows[:take].T
        self.events = EventTotals.merged([self.events, part.events])

    def values(self, alpha: float, npv_usd: np.ndarray | None = None) -> SiteValues:
        m, h = self.moments, self.hist
        levers, width = self.levers.mean, self.moments.shift.shape[0]
        stats = {
            "expected_npv_usd": m.mean,
            "std_npv_usd": m.std,
            "p5_npv_usd": h.quantile(0.05),
            "p50_npv_usd": h.quantile(0.50),
            "p95_npv_usd": h.quantile(0.95),
            "cvar_usd": h.cvar(alpha),
            "expected_terminal_pv_usd": levers[:width],
            "leverage_usd": levers[width : 2 * width],
            "tax_shield_usd": levers[2 * width : 3 * width],
            "rate_subsidy_usd": levers[3 * width :],
        }
        grouped = None if self.groups is None else self.groups.mean
        return SiteValues(stats, self.risk, self.events, h.width.copy(), grouped, npv_usd)


def keeps_pass_one(scenario: Portfolio, options: list[list[SiteOption]], todo: list[int]) -> bool:
    """Whether pass 2 reuses pass 1's NPVs (all of them fit in PASS_CACHE_BYTES)."""
    width = sum(len(options[i]) for i in todo)
    return width * scenario.simulation.scenarios * 8 <= PASS_CACHE_BYTES


def keeps_markets(scenario: Portfolio, options: list[list[SiteOption]], todo: list[int]) -> bool:
    """Whether pass 1's shared paths are kept for the cash flows: pass 1's NPVs are kept
    too, and the market's and power markets' (N, T) paths fit in MARKET_CACHE_BYTES."""
    size = market_cache_bytes(
        scenario.months, len(scenario.power_markets), scenario.simulation.scenarios
    )
    return keeps_pass_one(scenario, options, todo) and size <= MARKET_CACHE_BYTES


def market_cache_bytes(months: int, power_markets: int, scenarios: int) -> int:
    """Bytes of the shared (N, T) paths: the market's four, two per power market [B]."""
    return 8 * (4 + 2 * power_markets) * months * scenarios


def value_sites(
    scenario: Portfolio,
    options: list[list[SiteOption]],
    todo: list[int],
    jobs: list[ChunkJob],
    executor: ChunkExecutor,
    bins: int,
    progress: Progress | None,
    timings: dict[str, float],
    grouping: Grouping | None = None,
) -> tuple[dict[int, SiteValues], tuple[KeptMarket, ...]]:
    """Value the sites ``todo`` in two passes over ``jobs`` (see the module docstring);
    also the shared paths the jobs kept (``ChunkJob.keep_markets``), in scenario order."""
    if not todo:
        return {}, ()
    t0 = time.perf_counter()
    risk_n, alpha = scenario.simulation.risk_sample, scenario.objective.cvar_alpha
    submit = executor.submit
    shifts = submit(shift_rows, jobs[0])
    groups = 0 if grouping is None else grouping.groups

    def labels(job: ChunkJob) -> np.ndarray | None:
        return None if grouping is None else grouping.labels[job.lo : job.hi]

    if keeps_pass_one(scenario, options, todo):
        values = [submit(chunk_values, job) for job in jobs]
        firsts = [
            submit(pass_one, v, shifts, j.lo, risk_n, labels(j), groups)
            for v, j in zip(values, jobs, strict=True)
        ]
    else:
        values = None
        firsts = [submit(pass_one_job, job, shifts, risk_n, labels(job), groups) for job in jobs]
    acc = {
        i: SiteAccumulator(shift, scenario.months, risk_n, groups)
        for i, shift in shifts.result().items()
    }
    for k, part in executor.in_order(firsts, jobs, "valuation", progress):
        for i, p in part.items():
            acc[i].add_pass_one(p, jobs[k].lo)
    del shifts
    del firsts
    t1 = time.perf_counter()
    ranges = {}
    for i, a in acc.items():
        a.hist = Histograms.from_moments(a.moments, bins, alpha)
        ranges[i] = (a.hist.lo, a.hist.width)
    kept: dict[int, np.ndarray | None] = dict.fromkeys(acc)
    markets: tuple[KeptMarket, ...] = ()
    if values is None:
        seconds = [submit(pass_two_job, job, ranges, bins) for job in jobs]
    elif executor.in_process:  # one piece: the plan's NPVs are read from it after the MILP
        whole = submit(joined_values, *values)
        seconds = [submit(pass_two, whole, ranges, bins)]
        jobs = [dataclasses.replace(jobs[0], hi=jobs[-1].hi)]
        kept = {i: v.npv for i, v in whole.result().sites.items()}
        markets = whole.result().markets
    else:
        seconds = [submit(pass_two, v, ranges, bins) for v in values]
    del values
    total = executor.total(seconds, add_histograms, jobs, "quantiles", progress)
    for i, (counts, sums) in total.items():  # zeros + the total: exact
        acc[i].hist.counts += counts
        acc[i].hist.sums += sums
    out = {i: a.values(alpha, kept[i]) for i, a in acc.items()}
    timings.update(pass1=t1 - t0, pass2=time.perf_counter() - t1)
    return out, markets


def plan_npv_samples(
    scenario: Portfolio,
    plans: dict[str, list[SiteOption]],
    *,
    backend: Backend | str = "auto",
    chunk_size: int | None = None,
    progress: Progress | None = None,
    executor: ChunkExecutor | None = None,
) -> dict[str, np.ndarray]:
    """Portfolio NPV per scenario of each plan (one option per site), on all scenarios [USD].

    The same draws as :func:`value_options` with the same scenario (seed, count),
    so a plan's mean here equals the sum of its options' expected NPVs. Each
    scenario's value is computed alone, so it is the same number wherever its chunk
    runs (``executor``: see :func:`value_options`).
    """
    be = backend if isinstance(backend, Backend) else select_backend(backend)
    executor = executor or LocalChunks()
    jobs = executor.jobs(scenario, {}, (), be, chunk_size)
    parts = [executor.submit(plan_values, job, plans) for job in jobs]
    out = {name: np.empty(scenario.simulation.scenarios) for name in plans}
    for k, part in executor.in_order(parts, jobs, "plan", progress):
        for name, values in part.items():
            out[name][jobs[k].lo : jobs[k].hi] = values
    return out
