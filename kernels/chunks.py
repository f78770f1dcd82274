"""Scenario chunks and where they run: the chunk loop, a valuation's chunk tasks, and the
executor that runs them in this process.

A valuation's work is cut into jobs, each a chunk of scenarios [lo, hi) whose boundaries
are multiples of ``reduce.BLOCK``, so every reduction block lies in one job. A task is a
pure function of its job: it draws its own random numbers (keyed by seed and global
scenario index, siteopt.kernels.rng), so a chunk computed twice, or anywhere, is the same
chunk. The two passes (siteopt.kernels.valuation) are written once against
:class:`ChunkExecutor`; :class:`LocalChunks` runs the tasks here, one after the other, and
:class:`siteopt.kernels.dask_chunks.DaskChunks` runs them on a Dask cluster.

Inside a job, :func:`stream_chunks` evaluates sub-chunks of ``ChunkSize.size`` scenarios;
a CUDA out-of-memory error halves that size and retries, without changing any number.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

import numpy as np

from .backend import Backend, select_backend
from .params import Portfolio
from .reduce import (
    BLOCK,
    BlockGroups,
    BlockMoments,
    BlockTotals,
    EventTotals,
    Histograms,
    block_group_totals,
    block_moments,
    block_totals,
)
from .sites import ChunkMarket, SiteOption, chunk_market, site_chunk, site_options

CPU_MEMORY_BUDGET_BYTES = 1 << 30
GPU_MEMORY_SHARE = 0.5

# progress(stage, scenarios done in this stage, scenarios in this stage)
Progress = Callable[[str, int, int], None]
T = TypeVar("T")


# --------------------------------------------------------------------------- threads


def usable_cores() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def ordered_map(function: Callable[[Any], T], items: Iterable[Any], threads: int) -> Iterator[T]:
    """``map(function, items)`` on ``threads`` threads, results in the order of ``items``.

    NumPy releases the GIL inside its array operations, so the sites of a chunk, or the
    chunks of the cash flows, run side by side on the cores; every result is computed
    alone and the caller adds them in order, so the numbers do not depend on ``threads``.
    """
    if threads <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(threads) as pool:
        yield from pool.map(function, items)


# --------------------------------------------------------------------------- chunk sizes


class ChunkSize:
    """Scenarios per evaluated chunk; halved when the device runs out of memory."""

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self.halvings = 0

    def halve(self) -> None:
        self.size //= 2
        self.halvings += 1


def bytes_per_scenario(scenario: Portfolio) -> int:
    """Rough peak bytes per scenario of one chunk (float64 month arrays per site) [B]."""
    months = scenario.months
    widest = max(len(site_options(scenario, i)) for i in range(len(scenario.sites)))
    return 8 * (months * (48 + 3 * len(scenario.power_markets)) + 4 * widest + 64)


def chunk_size_for(scenario: Portfolio, backend: Backend, memory_budget_bytes: int | None) -> int:
    """Scenarios per chunk that fit the memory budget (about 1 GiB on the CPU, half the
    free device memory on CuPy by default)."""
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


# --------------------------------------------------------------------------- jobs and tasks


@dataclass(frozen=True)
class ChunkJob:
    """One task's inputs: plain, picklable data, so a rerun computes the same chunk."""

    scenario: Portfolio
    options: dict[int, list[SiteOption]]  # of the sites in todo only
    todo: tuple[int, ...]
    backend: str  # the backend name the client selected ("numpy" or "cupy")
    lo: int
    hi: int
    # sub-chunk size inside the job; LocalChunks shares one across its jobs, so a halving
    # lasts for the rest of the run; None: the whole job at once
    sizes: ChunkSize | None = None
    keep_markets: bool = False  # hand back the chunk's shared paths (ChunkValues.markets)
    threads: int = 1  # threads for the sites of a chunk (LocalChunks on numpy: the cores)


def evaluate_chunk(
    scenario: Portfolio,
    options: Sequence[list[SiteOption]] | Mapping[int, list[SiteOption]],
    todo: list[int],
    be: Backend,
    lo: int,
    hi: int,
    *,
    markets: list[KeptMarket] | None = None,
    threads: int = 1,
    levers: bool = False,
) -> dict[int, tuple[Any, dict, Any, Any]]:
    """{site: (NPVs (hi - lo, site options) [USD], tenancy timelines, levers (hi - lo,
    2 x site options) [USD], the running fleet's PH/s per MW)} on scenarios [lo, hi); see
    ``sites.SiteChunk``.

    ``options[i]`` are site i's options, for each i in ``todo``, valued on ``threads``
    threads. The chunk's shared paths are appended to ``markets`` when it is given; the
    levers are None unless ``levers``.
    """
    xp = be.xp
    idx = xp.arange(lo, hi, dtype=xp.int64)
    ctx = chunk_market(scenario, idx, xp=xp, sites=todo)
    if markets is not None:
        markets.append(KeptMarket(lo, hi, ctx))

    def value(i: int) -> tuple[Any, dict, Any, Any]:
        sc = site_chunk(scenario, i, options[i], ctx, xp=xp, levers=levers)
        timelines = {(i, *key): ev for key, ev in sc.events.items()}
        return sc.npv, timelines, sc.levers, sc.fleet.hashing_ph_per_mw

    return dict(zip(todo, ordered_map(value, todo, threads), strict=True))


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


@dataclass(frozen=True)
class KeptMarket:
    """The shared paths of scenarios [lo, hi), kept for the cash flows after the MILP."""

    lo: int
    hi: int
    market: ChunkMarket


@dataclass(frozen=True)
class ChunkValues:
    """A chunk's per-site values, and its shared paths when the job keeps them."""

    sites: dict[int, SiteChunkValues]
    markets: tuple[KeptMarket, ...] = ()


@dataclass(frozen=True)
class SiteChunkValues:
    """One site's NPVs on a chunk (host memory), its AI event totals and levers there."""

    npv: np.ndarray  # (hi - lo, options) [USD]
    events: EventTotals
    # sums by reduction block of the levers (sites.LEVERS, a block of options each) [USD]:
    # only their means are wanted, so the per-scenario values are not kept
    lever_blocks: list[BlockTotals]


@dataclass(frozen=True)
class SitePassOne:
    """One site's pass-1 part of a chunk."""

    blocks: list[BlockMoments]
    risk_rows: np.ndarray  # (rows of the chunk inside the risk sample, options) [USD]
    events: EventTotals
    lever_blocks: list[BlockTotals]  # sums of the levers by block
    group_blocks: list[BlockGroups]  # sums by block and scenario group (empty: no groups)


def _sub_chunks(job: ChunkJob, be: Backend, evaluate: Callable[[int, int], T]):
    """``evaluate`` over the job's scenarios in sub-chunks (offsets within the job)."""
    n = job.hi - job.lo
    return stream_chunks(n, job.sizes or ChunkSize(n), be, evaluate)


def _evaluated(job: ChunkJob, be: Backend, **kwargs: Any):
    """:func:`evaluate_chunk` of the job's sites over its sub-chunks (``kwargs``: its
    ``markets`` and ``levers``)."""

    def evaluate(lo: int, hi: int) -> dict:
        return evaluate_chunk(
            job.scenario, job.options, list(job.todo), be, job.lo + lo, job.lo + hi,
            threads=job.threads, **kwargs,
        )  # fmt: skip

    return _sub_chunks(job, be, evaluate)


def chunk_values(job: ChunkJob) -> ChunkValues:
    """NPVs and event totals of the job's sites on its chunk (a task)."""
    be = select_backend(job.backend)
    npv: dict[int, list[np.ndarray]] = {i: [] for i in job.todo}
    levers: dict[int, list[np.ndarray]] = {i: [] for i in job.todo}
    totals = {i: EventTotals(job.scenario.months) for i in job.todo}
    markets: list[KeptMarket] | None = [] if job.keep_markets else None
    for _, _, out in _evaluated(job, be, markets=markets, levers=True):
        for i, (values, events, lever, ph_per_mw) in out.items():
            npv[i].append(be.to_numpy(values))
            levers[i].append(be.to_numpy(lever))
            totals[i].add(events, be)
            totals[i].add_fleet((i,), ph_per_mw, be)
    sites = {
        i: SiteChunkValues(_joined(npv[i]), totals[i], _block_sums(levers[i])) for i in job.todo
    }
    return ChunkValues(sites, tuple(markets or ()))


def joined_values(*parts: ChunkValues) -> ChunkValues:
    """Consecutive chunks' values as one (a task)."""
    sites = {
        i: SiteChunkValues(
            _joined([p.sites[i].npv for p in parts]),
            EventTotals.merged([p.sites[i].events for p in parts]),
            [block for p in parts for block in p.sites[i].lever_blocks],
        )
        for i in parts[0].sites
    }
    return ChunkValues(sites, tuple(m for p in parts for m in p.markets))


def shift_rows(job: ChunkJob) -> dict[int, np.ndarray]:
    """Scenario ``job.lo``'s NPV row per site: pass 1's shift when ``job.lo`` is 0 (a task)."""
    one = chunk_values(replace(job, hi=job.lo + 1, keep_markets=False))
    return {i: v.npv[0].copy() for i, v in one.sites.items()}


def pass_one(
    values: ChunkValues,
    shifts: dict[int, np.ndarray],
    lo: int,
    risk_n: int,
    labels: np.ndarray | None = None,
    groups: int = 0,
) -> dict[int, SitePassOne]:
    """Per-block moments, risk-sample rows and event totals of a chunk starting at ``lo``;
    with ``labels`` (the chunk's scenarios' groups), also the sums by block and group."""
    return {
        i: SitePassOne(
            block_moments(v.npv, shifts[i]),
            v.npv[: max(0, risk_n - lo)].copy(),
            v.events,
            v.lever_blocks,
            [] if labels is None else block_group_totals(v.npv, labels, groups),
        )
        for i, v in values.sites.items()
    }


def pass_one_job(
    job: ChunkJob,
    shifts: dict[int, np.ndarray],
    risk_n: int,
    labels: np.ndarray | None = None,
    groups: int = 0,
) -> dict:
    """:func:`pass_one` of a chunk computed here (a task; pass 2 will recompute it)."""
    return pass_one(chunk_values(job), shifts, job.lo, risk_n, labels, groups)


HistogramParts = dict[int, tuple[np.ndarray, np.ndarray]]  # site: (counts, sums)


def pass_two(
    values: ChunkValues, ranges: dict[int, tuple[np.ndarray, np.ndarray]], bins: int
) -> HistogramParts:
    """Per-bin counts and sums of a chunk's kept NPVs (a task)."""
    out = {}
    for i, v in values.sites.items():
        hist = Histograms(*ranges[i], bins)
        hist.add(v.npv, xp=np)
        hist.flush()
        out[i] = (hist.counts, hist.sums)
    return out


def pass_two_job(
    job: ChunkJob, ranges: dict[int, tuple[np.ndarray, np.ndarray]], bins: int
) -> HistogramParts:
    """Per-bin counts and sums of a chunk computed here, binned on the job's backend (a task)."""
    be = select_backend(job.backend)
    hists = {i: Histograms(*ranges[i], bins) for i in job.todo}
    for _, _, out in _evaluated(job, be):
        for i, (values, _, _, _) in out.items():
            hists[i].add(values, xp=be.xp)
    for hist in hists.values():
        hist.flush()
    return {i: (h.counts, h.sums) for i, h in hists.items()}


def add_histograms(a: HistogramParts, b: HistogramParts) -> HistogramParts:
    """Two chunks' pass-2 parts added (a node of the fixed summation tree)."""
    with np.errstate(over="ignore", invalid="ignore"):  # as reduce.py: check_finite reports
        return {i: (a[i][0] + b[i][0], a[i][1] + b[i][1]) for i in a}


def plan_values(job: ChunkJob, plans: dict[str, list[SiteOption]]) -> dict[str, np.ndarray]:
    """Portfolio NPV of each plan on the job's chunk [USD] (a task)."""
    be = select_backend(job.backend)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in plans}

    def evaluate(lo: int, hi: int) -> dict[str, np.ndarray]:
        return plan_chunk(job.scenario, plans, be, job.lo + lo, job.lo + hi)

    for _, _, out in _sub_chunks(job, be, evaluate):
        for name, values in out.items():
            parts[name].append(values)
    return {name: _joined(p) for name, p in parts.items()}


def _block_sums(parts: list[np.ndarray]) -> list[BlockTotals]:
    """Sums by reduction block of consecutive row chunks (means only)."""
    return block_totals(_joined(parts))


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)


# --------------------------------------------------------------------------- executors


class ChunkExecutor(Protocol):
    """Where a valuation's chunk tasks run. Handles stand for results that stay where
    they were computed until asked for.

    Attributes
    ----------
    in_process : bool
        Results live in this process, so pass 1's kept NPVs can be handed on whole (the
        plan's per-scenario NPVs are then read, not recomputed).
    chunk_size : int
        Scenarios per evaluated chunk, as the run ended (after any halving).
    """

    in_process: bool

    @property
    def chunk_size(self) -> int: ...

    def jobs(
        self,
        scenario: Portfolio,
        options: dict[int, list[SiteOption]],
        todo: Sequence[int],
        be: Backend,
        requested: int | None,
    ) -> list[ChunkJob]:
        """The run's jobs, in scenario order, each a multiple of BLOCK scenarios but the
        last; ``requested`` scenarios per chunk, or a size from the memory budget."""
        ...

    def submit(self, task: Callable[..., Any], *args: Any) -> Any:
        """A handle on ``task(*args)``; handles among ``args`` stand for their results,
        and ``handle.result()`` brings the result here."""
        ...

    def in_order(
        self,
        handles: Sequence[Any],
        jobs: Sequence[ChunkJob],
        stage: str,
        progress: Progress | None,
    ) -> Iterator[tuple[int, Any]]:
        """Yield ``(k, result of handles[k])`` in k order, drawing progress per job."""
        ...

    def total(
        self,
        handles: Sequence[Any],
        add: Callable[[Any, Any], Any],
        jobs: Sequence[ChunkJob],
        stage: str,
        progress: Progress | None,
    ) -> Any:
        """The results added pairwise in a fixed tree, ((0 + 1) + (2 + 3)) + ..., whatever
        finished first, so the sum has one floating-point order."""
        ...


class _Task:
    """A task of :class:`LocalChunks`: run when its result is first asked for, then kept."""

    __slots__ = ("_args", "_task", "_value")

    def __init__(self, task: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._task, self._args, self._value = task, args, None

    def result(self) -> Any:
        if self._task is not None:
            args = [a.result() if isinstance(a, _Task) else a for a in self._args]
            self._value = self._task(*args)
            self._task, self._args = None, ()
        return self._value


class LocalChunks:
    """The :class:`ChunkExecutor` of this process: tasks run one after the other, in job
    order, when their results are needed.

    Jobs are whole reduction blocks (``chunk_size`` rounded down to BLOCK, at least one
    block); inside a job the scenarios are evaluated ``chunk_size`` at a time, a size
    shared by every job of the run, so a CUDA out-of-memory halving lasts.

    On numpy the sites of a chunk are valued on ``threads`` threads (default: the cores
    this process may use), each with its share of the memory budget; on CuPy one thread.
    """

    in_process = True

    def __init__(self, memory_budget_bytes: int | None = None, threads: int | None = None) -> None:
        self.memory_budget_bytes = memory_budget_bytes
        self.threads = threads
        self.sizes: ChunkSize | None = None

    @property
    def chunk_size(self) -> int:
        return self.sizes.size if self.sizes is not None else 0

    def jobs(
        self,
        scenario: Portfolio,
        options: dict[int, list[SiteOption]],
        todo: Sequence[int],
        be: Backend,
        requested: int | None,
    ) -> list[ChunkJob]:
        threads = 1 if be.name != "numpy" else self.threads or usable_cores()
        threads = max(1, min(threads, len(todo)))
        default = max(1, chunk_size_for(scenario, be, self.memory_budget_bytes) // threads)
        self.sizes = ChunkSize(requested or default)
        step = max(BLOCK, self.sizes.size // BLOCK * BLOCK)
        n = scenario.simulation.scenarios
        return [
            ChunkJob(
                scenario,
                options,
                tuple(todo),
                be.name,
                lo,
                min(n, lo + step),
                self.sizes,
                threads=threads,
            )  # fmt: skip
            for lo in range(0, n, step)
        ]

    def submit(self, task: Callable[..., Any], *args: Any) -> _Task:
        return _Task(task, args)

    def in_order(
        self,
        handles: Sequence[_Task],
        jobs: Sequence[ChunkJob],
        stage: str,
        progress: Progress | None,
    ) -> Iterator[tuple[int, Any]]:
        total = jobs[-1].hi if jobs else 0
        for k, handle in enumerate(handles):
            value = handle.result()
            if progress is not None:
                progress(stage, jobs[k].hi, total)
            yield k, value

    def total(
        self,
        handles: Sequence[_Task],
        add: Callable[[Any, Any], Any],
        jobs: Sequence[ChunkJob],
        stage: str,
        progress: Progress | None,
    ) -> Any:
        """The pairwise tree, built as the results come: like a binary counter, two
        partial sums of the same level are added at once, so at most log2(jobs) wait."""
        stack: list[tuple[int, Any]] = []  # (level, partial sum)
        for _, value in self.in_order(handles, jobs, stage, progress):
            level = 0
            while stack and stack[-1][0] == level:
                value = add(stack.pop()[1], value)
                level += 1
            stack.append((level, value))
        value = stack.pop()[1]
        while stack:  # the odd ones out, right to left, as the level-by-level tree adds them
            value = add(stack.pop()[1], value)
        return value
