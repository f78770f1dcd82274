"""The valuation: NPV distributions of every site option, streamed over scenario chunks.

Takes a :class:`~siteopt.kernels.params.Portfolio` and returns, per site, its options'
statistics, risk-sample NPVs and AI event totals; the app layer turns them into the MILP's
option table (siteopt.app.valuation).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

from .backend import Backend, select_backend
from .params import Portfolio
from .reduce import DEFAULT_BINS, Histograms, Moments
from .sites import SiteOption, chunk_market, site_chunk, site_options

CPU_MEMORY_BUDGET_BYTES = 1 << 30
PASS_CACHE_BYTES = 256 << 20  # pass 2 reuses pass 1's NPVs when all of them fit here
GPU_MEMORY_SHARE = 0.5

# progress(stage, scenarios done in this stage, scenarios in this stage)
Progress = Callable[[str, int, int], None]
T = TypeVar("T")


class ChunkExecutor(Protocol):
    """Runs a valuation's scenario chunks somewhere else than this process's loop.

    :class:`siteopt.kernels.dask_chunks.DaskChunks` is the one implementation: chunks as
    tasks on a Dask cluster. Its results equal the local loop's to floating-point
    summation order (see that module for how the partial reductions combine).
    """

    def chunk_size(self, scenario: Portfolio, requested: int | None) -> int: ...

    def value_sites(
        self,
        scenario: Portfolio,
        options: list[list[SiteOption]],
        todo: list[int],
        be: Backend,
        chunks: ChunkSize,
        bins: int,
        progress: Progress | None,
        timings: dict[str, float],
    ) -> dict[int, SiteValues]: ...

    def plan_npvs(
        self,
        scenario: Portfolio,
        plans: dict[str, list[SiteOption]],
        be: Backend,
        chunks: ChunkSize,
        progress: Progress | None,
    ) -> dict[str, np.ndarray]: ...


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
    """

    site_options: list[list[SiteOption]]
    parts: list[SiteValues]
    backend: str
    chunk_size: int
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def stats(self) -> dict[str, np.ndarray]:
        """STAT_COLUMNS over every option, in site order [USD]."""
        return {k: np.concatenate([p.stats[k] for p in self.parts]) for k in STAT_COLUMNS}

    @property
    def risk_npv_usd(self) -> np.ndarray:
        """(options, risk_sample) NPVs of the first scenarios [USD]."""
        return np.vstack([p.risk for p in self.parts])

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
        events = EventTotals(months)
        for part in self.parts:
            events.online.update(part.online)
            events.returned.update(part.returned)
        return events


def bytes_per_scenario(scenario: Portfolio) -> int:
    """Rough peak bytes per scenario of one chunk (float64 month arrays per site) [B]."""
    months = scenario.months
    widest = max(len(site_options(scenario, i)) for i in range(len(scenario.sites)))
    return 8 * (months * (48 + 3 * len(scenario.power_markets)) + 4 * widest + 64)


def chunk_size_for(scenario: Portfolio, backend: Backend, memory_budget_bytes: int | None) -> int:
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
    scenario: Portfolio,
    *,
    backend: Backend | str = "auto",
    chunk_size: int | None = None,
    memory_budget_bytes: int | None = None,
    bins: int = DEFAULT_BINS,
    progress: Progress | None = None,
    cache: ValuationCache | None = None,
    executor: ChunkExecutor | None = None,
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
    bins : int
        Histogram bins per option for quantiles and CVaR.
    progress : callable, optional
        Called as ``progress(stage, done, total)`` after each chunk.
    cache : ValuationCache, optional
        Sites whose inputs (:func:`site_key`) are in the cache are not valued again;
        the sites valued here are added to it. The numbers are the same either way.
    executor : ChunkExecutor, optional
        Where the chunks run (e.g. :class:`~siteopt.kernels.dask_chunks.DaskChunks`);
        by default in this process, one chunk after the other. The results agree to
        floating-point summation order.
    """
    t0 = time.perf_counter()
    be = backend if isinstance(backend, Backend) else select_backend(backend)
    chunks = ChunkSize(
        executor.chunk_size(scenario, chunk_size)
        if executor is not None
        else chunk_size or chunk_size_for(scenario, be, memory_budget_bytes)
    )
    options = [site_options(scenario, i) for i in range(len(scenario.sites))]
    if cache is None:
        keys, known = [], [None] * len(options)
    else:
        keys = [site_key(scenario, i, be.name, bins) for i in range(len(options))]
        known = cache.get(keys)
    todo = [i for i, hit in enumerate(known) if hit is None]
    timings = {"pass1": 0.0, "pass2": 0.0}
    value_sites = _value_sites if executor is None else executor.value_sites
    fresh = value_sites(scenario, options, todo, be, chunks, bins, progress, timings)
    if cache is not None:
        cache.put({keys[i]: fresh[i] for i in todo})
    parts = [fresh[i] if hit is None else hit for i, hit in enumerate(known)]
    timings.update(total=time.perf_counter() - t0, sites_valued=float(len(todo)))
    return Valuation(options, parts, be.name, chunks.size, timings)


STAT_COLUMNS = (
    "expected_npv_usd",
    "std_npv_usd",
    "p5_npv_usd",
    "p50_npv_usd",
    "p95_npv_usd",
    "cvar_usd",
)


@dataclass(frozen=True)
class SiteValues:
    """One site's part of the valuation: what its options contribute to the table."""

    stats: dict[str, np.ndarray]  # STAT_COLUMNS, one value per option [USD]
    risk: np.ndarray  # (options, risk_sample) NPVs of the first scenarios [USD]
    online: dict[tuple, np.ndarray]  # EventTotals entries of the site
    returned: dict[tuple, np.ndarray]
    quantile_error_usd: np.ndarray
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


def site_key(scenario: Portfolio, site_index: int, backend: str, bins: int) -> str:
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
        "cvar_alpha": scenario.objective.cvar_alpha,
    }
    return json.dumps(key, sort_keys=True)


def _plain(params: Any, exclude: Sequence[str] = ()) -> dict[str, Any]:
    """A parameter struct as JSON-ready data, without the fields in ``exclude``."""
    data = dataclasses.asdict(params)
    return {k: v for k, v in data.items() if k not in exclude}


class SiteAccumulator:
    """Both passes' accumulators for one site's options.

    The local loop feeds it whole chunks (:meth:`first_pass`); the Dask engine fills the
    same fields from the partial reductions its tasks return (siteopt.kernels.dask_chunks).
    """

    def __init__(self, months: int, risk_n: int, n_options: int, keep: bool) -> None:
        self.moments = Moments()
        self.risk = np.empty((n_options, risk_n))
        self.events = EventTotals(months)
        self.kept: list[np.ndarray] | None = [] if keep else None
        self.hist: Histograms | None = None

    def first_pass(self, lo: int, npv: Any, events: dict, be: Backend) -> None:
        host = be.to_numpy(npv)
        self.moments.add(host)
        if self.kept is not None:
            self.kept.append(host)
        self.take_risk(lo, host)
        self.events.add(events, be)

    def take_risk(self, lo: int, host: np.ndarray) -> None:
        """Keep the rows of ``host`` (scenarios ``lo``, ``lo + 1``, ...) in the risk sample."""
        risk_n = self.risk.shape[1]
        if lo < risk_n:
            take = min(risk_n - lo, host.shape[0])
            self.risk[:, lo : lo + take] = host[:take].T

    def values(self, alpha: float, npv_usd: np.ndarray | None = None) -> SiteValues:
        m, h = self.moments, self.hist
        stats = {
            "expected_npv_usd": m.mean,
            "std_npv_usd": m.std,
            "p5_npv_usd": h.quantile(0.05),
            "p50_npv_usd": h.quantile(0.50),
            "p95_npv_usd": h.quantile(0.95),
            "cvar_usd": h.cvar(alpha),
        }
        return SiteValues(
            stats, self.risk, self.events.online, self.events.returned, h.width.copy(), npv_usd
        )


def keeps_pass_one(scenario: Portfolio, options: list[list[SiteOption]], todo: list[int]) -> bool:
    """Whether pass 2 reuses pass 1's NPVs (all of them fit in PASS_CACHE_BYTES)."""
    width = sum(len(options[i]) for i in todo)
    return width * scenario.simulation.scenarios * 8 <= PASS_CACHE_BYTES


def _value_sites(
    scenario: Portfolio,
    options: list[list[SiteOption]],
    todo: list[int],
    be: Backend,
    chunks: ChunkSize,
    bins: int,
    progress: Progress | None,
    timings: dict[str, float],
) -> dict[int, SiteValues]:
    """Value the sites ``todo`` in two passes over the scenario chunks."""
    if not todo:
        return {}
    t0 = time.perf_counter()
    n_total, alpha = scenario.simulation.scenarios, scenario.objective.cvar_alpha
    keep = keeps_pass_one(scenario, options, todo)
    acc = {
        i: SiteAccumulator(scenario.months, scenario.simulation.risk_sample, len(options[i]), keep)
        for i in todo
    }
    for lo, site_npv in _chunks(scenario, options, todo, be, chunks, "valuation", progress):
        for i, (npv, events) in site_npv.items():
            acc[i].first_pass(lo, npv, events, be)
    t1 = time.perf_counter()
    for a in acc.values():
        a.hist = Histograms.from_moments(a.moments, bins, alpha)
    kept: dict[int, np.ndarray | None] = dict.fromkeys(acc)
    if keep:  # the same numbers pass 2 would recompute
        for i, a in acc.items():
            for host in a.kept:
                a.hist.add(host, xp=np)
            kept[i] = np.concatenate(a.kept, axis=0)
            a.kept = None
        if progress is not None:
            progress("quantiles", n_total, n_total)
    else:
        for _, site_npv in _chunks(scenario, options, todo, be, chunks, "quantiles", progress):
            for i, (npv, _) in site_npv.items():
                acc[i].hist.add(npv, xp=be.xp)
    values = {i: a.values(alpha, kept[i]) for i, a in acc.items()}
    timings.update(pass1=t1 - t0, pass2=time.perf_counter() - t1)
    return values


class ChunkSize:
    """The scenarios per chunk of a run; halved when the device runs out of memory."""

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self.halvings = 0

    def halve(self) -> None:
        self.size //= 2
        self.halvings += 1


def stream_chunks(
    n_total: int, chunks: ChunkSize, be: Backend, evaluate: Callable[[int, int], T]
) -> Iterator[tuple[int, int, T]]:
    """Yield ``(lo, hi, evaluate(lo, hi))`` over scenarios [0, n_total) in chunk order.

    A CUDA out-of-memory error (:meth:`Backend.is_out_of_memory`) in ``evaluate``
    halves ``chunks.size`` and retries the same ``lo`` with the smaller chunk; the
    size stays halved for the rest of the run. The results do not change, because the
    reductions run over fixed blocks of scenarios whatever the chunking
    (siteopt.kernels.reduce). At one scenario per chunk the error is raised.
    """
    lo = 0
    while lo < n_total:
        hi = min(n_total, lo + chunks.size)
        try:
            out = evaluate(lo, hi)
        except Exception as exc:
            if chunks.size <= 1 or not be.is_out_of_memory(exc):
                raise
            chunks.halve()
            continue
        yield lo, hi, out
        lo = hi


def evaluate_chunk(
    scenario: Portfolio,
    options: Sequence[list[SiteOption]] | Mapping[int, list[SiteOption]],
    todo: list[int],
    be: Backend,
    lo: int,
    hi: int,
) -> dict[int, tuple[Any, dict]]:
    """{site: (NPVs (hi - lo, site options) [USD], AI events)} on scenarios [lo, hi).

    ``options[i]`` are site i's options, for each i in ``todo``.
    """
    xp = be.xp
    idx = xp.arange(lo, hi, dtype=xp.int64)
    ctx = chunk_market(scenario, idx, xp=xp, sites=todo)
    out = {}
    for i in todo:
        sc = site_chunk(scenario, i, options[i], ctx, xp=xp)
        out[i] = (sc.npv, {(i, *key): ev for key, ev in sc.events.items()})
    return out


def _chunks(
    scenario: Portfolio,
    options: list[list[SiteOption]],
    todo: list[int],
    be: Backend,
    chunks: ChunkSize,
    stage: str,
    progress: Progress | None,
) -> Iterator[tuple[int, dict[int, tuple[Any, dict]]]]:
    """Yield (first scenario, {site: (NPVs (N, site options), AI events)}) per chunk."""
    n_total = scenario.simulation.scenarios

    def evaluate(lo: int, hi: int) -> dict[int, tuple[Any, dict]]:
        return evaluate_chunk(scenario, options, todo, be, lo, hi)

    for lo, hi, out in stream_chunks(n_total, chunks, be, evaluate):
        if progress is not None:
            progress(stage, hi, n_total)
        yield lo, out


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
    if executor is not None:
        chunks = ChunkSize(executor.chunk_size(scenario, chunk_size))
        return executor.plan_npvs(scenario, plans, be, chunks, progress)
    chunks = ChunkSize(chunk_size or chunk_size_for(scenario, be, None))
    n_total = scenario.simulation.scenarios
    out = {name: np.empty(n_total) for name in plans}

    def evaluate(lo: int, hi: int) -> dict[str, np.ndarray]:
        return plan_chunk(scenario, plans, be, lo, hi)

    for lo, hi, part in stream_chunks(n_total, chunks, be, evaluate):
        for name, values in part.items():
            out[name][lo:hi] = values
        if progress is not None:
            progress("plan", hi, n_total)
    return out


def plan_chunk(
    scenario: Portfolio, plans: dict[str, list[SiteOption]], be: Backend, lo: int, hi: int
) -> dict[str, np.ndarray]:
    """Portfolio NPV of each plan on scenarios [lo, hi) [USD], on the host."""
    xp = be.xp
    by_site: list[list[SiteOption]] = [[] for _ in scenario.sites]
    for plan in plans.values():
        for opt in plan:
            if opt not in by_site[opt.site_index]:
                by_site[opt.site_index].append(opt)
    idx = xp.arange(lo, hi, dtype=xp.int64)
    ctx = chunk_market(scenario, idx, xp=xp)
    columns = {}
    for i, opts in enumerate(by_site):
        if opts:
            npv = be.to_numpy(site_chunk(scenario, i, opts, ctx, xp=xp).npv)
            columns.update({opt: npv[:, j] for j, opt in enumerate(opts)})
    n = hi - lo
    return {name: sum((columns[o] for o in plan), np.zeros(n)) for name, plan in plans.items()}
