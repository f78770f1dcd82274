"""Scenario chunks as tasks on a Dask cluster (``--engine dask``).

The unit of work is a chunk of scenarios [lo, hi): a task draws its own random numbers
(the generator is keyed by seed and global scenario index, siteopt.kernels.rng), values
every option of the sites being valued on its chunk, and returns partial reductions
small enough to send back. The client combines them into the numbers the local loop
(siteopt.kernels.valuation) computes.

How the partial reductions combine
----------------------------------
Chunk boundaries are multiples of ``reduce.BLOCK``, so every reduction block lies in one
task.

* Pass 1 (moments). The shift is scenario 0's NPV row, as in the local loop. A task of
  one scenario computes it and every pass-1 task takes its result as an argument (the
  scheduler hands it over; the client does not wait). Each task returns, per block, the
  count, shifted sums and squares, minimum and maximum; the client adds the blocks in
  block order exactly as ``reduce.Moments`` does, so the mean, the standard deviation
  and the histogram ranges are bit-identical to the local engine's.
* Pass 2 (histograms). Each task bins its chunk over the ranges pass 1 set, and the
  per-bin counts and sums (options x bins + 2 each) are added pairwise on the workers
  in a fixed tree, ((0 + 1) + (2 + 3)) + ..., so the client receives one pair whatever
  the number of chunks. Counts are whole numbers and add exactly; the per-bin sums, and
  so CVaR and the under/overflow quantiles, differ from the local engine's by summation
  order only, and do not depend on which task finished first.
* The risk sample (the first ``risk_sample`` scenarios) comes from the chunks that hold
  it; the AI event totals are whole numbers of scenario-months and add exactly.
* When pass 1's NPVs all fit in ``PASS_CACHE_BYTES`` (the local loop's rule), they stay in
  the workers' memory as futures and pass 2 reads them there; else pass 2 recomputes
  each chunk.

Retries
-------
Every task is a pure function of (scenario, options, backend, chunk). A task lost with
its worker is rerun by Dask on another worker with the same result, and NPVs kept on a
lost worker are recomputed from their chunk. The inputs go into the task graph, never
``scatter``-ed, because scattered data cannot be recomputed. A CUDA out-of-memory error
inside a task halves the task's sub-chunks, as in the local loop.

``distributed`` is imported only inside these functions, so this module loads without it.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .backend import Backend, select_backend
from .params import Portfolio
from .reduce import BLOCK, Histograms, Moments
from .sites import SiteOption
from .valuation import (
    CPU_MEMORY_BUDGET_BYTES,
    ChunkSize,
    EventTotals,
    Progress,
    SiteAccumulator,
    SiteValues,
    bytes_per_scenario,
    evaluate_chunk,
    keeps_pass_one,
    plan_chunk,
    stream_chunks,
)

TASKS_PER_WORKER = 4  # chunks per worker thread: enough to balance, few enough to be cheap


@dataclass(frozen=True)
class ChunkJob:
    """One task's inputs: plain, picklable data, so a rerun computes the same chunk."""

    scenario: Portfolio
    options: dict[int, list[SiteOption]]  # of the sites in todo only
    todo: tuple[int, ...]
    backend: str  # the backend name the client selected ("numpy" or "cupy")
    lo: int
    hi: int


@dataclass(frozen=True)
class SiteChunkValues:
    """One site's NPVs on a chunk (host memory) and its AI event totals there."""

    npv: np.ndarray  # (hi - lo, options) [USD]
    online: dict[tuple, np.ndarray]
    returned: dict[tuple, np.ndarray]


@dataclass(frozen=True)
class BlockMoments:
    """Pass 1's accumulators over one reduction block (see ``reduce.Moments``)."""

    count: int
    total: np.ndarray  # sum of NPV - shift [USD]
    squares: np.ndarray  # sum of (NPV - shift)^2 [USD^2]
    low: np.ndarray  # [USD]
    high: np.ndarray  # [USD]


@dataclass(frozen=True)
class SitePassOne:
    """One site's pass-1 part of a chunk."""

    blocks: list[BlockMoments]
    risk_rows: np.ndarray  # (rows of the chunk inside the risk sample, options) [USD]
    online: dict[tuple, np.ndarray]
    returned: dict[tuple, np.ndarray]


# --------------------------------------------------------------------------- tasks


def chunk_values(job: ChunkJob) -> dict[int, SiteChunkValues]:
    """NPVs and event totals of the job's sites on its chunk (a task)."""
    be = select_backend(job.backend)
    npv: dict[int, list[np.ndarray]] = {i: [] for i in job.todo}
    totals = {i: EventTotals(job.scenario.months) for i in job.todo}
    for _, _, out in _sub_chunks(job, be):
        for i, (values, events) in out.items():
            npv[i].append(be.to_numpy(values))
            totals[i].add(events, be)
    return {
        i: SiteChunkValues(_joined(npv[i]), totals[i].online, totals[i].returned) for i in job.todo
    }


def shift_rows(job: ChunkJob) -> dict[int, np.ndarray]:
    """Scenario ``job.lo``'s NPV row per site: pass 1's shift when ``job.lo`` is 0 (a task)."""
    return {i: v.npv[0].copy() for i, v in chunk_values(replace(job, hi=job.lo + 1)).items()}


def pass_one(
    values: dict[int, SiteChunkValues], shifts: dict[int, np.ndarray], lo: int, risk_n: int
) -> dict[int, SitePassOne]:
    """Per-block moments, risk-sample rows and event totals of a chunk starting at ``lo``."""
    return {
        i: SitePassOne(
            block_moments(v.npv, shifts[i]),
            v.npv[: max(0, risk_n - lo)].copy(),
            v.online,
            v.returned,
        )
        for i, v in values.items()
    }


def pass_one_job(job: ChunkJob, shifts: dict[int, np.ndarray], risk_n: int) -> dict:
    """:func:`pass_one` of a chunk computed here (a task; pass 2 will recompute it)."""
    return pass_one(chunk_values(job), shifts, job.lo, risk_n)


def pass_two(
    values: dict[int, SiteChunkValues], ranges: dict[int, tuple[np.ndarray, np.ndarray]], bins: int
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per-bin counts and sums of a chunk's kept NPVs (a task)."""
    out = {}
    for i, v in values.items():
        hist = Histograms(*ranges[i], bins)
        hist.add(v.npv, xp=np)
        hist.flush()
        out[i] = (hist.counts, hist.sums)
    return out


def pass_two_job(
    job: ChunkJob, ranges: dict[int, tuple[np.ndarray, np.ndarray]], bins: int
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per-bin counts and sums of a chunk computed here, binned on the job's backend (a task)."""
    be = select_backend(job.backend)
    hists = {i: Histograms(*ranges[i], bins) for i in job.todo}
    for _, _, out in _sub_chunks(job, be):
        for i, (values, _) in out.items():
            hists[i].add(values, xp=be.xp)
    for hist in hists.values():
        hist.flush()
    return {i: (h.counts, h.sums) for i, h in hists.items()}


def plan_values(job: ChunkJob, plans: dict[str, list[SiteOption]]) -> dict[str, np.ndarray]:
    """Portfolio NPV of each plan on the job's chunk [USD] (a task)."""
    be = select_backend(job.backend)
    n = job.hi - job.lo
    parts: dict[str, list[np.ndarray]] = {name: [] for name in plans}

    def evaluate(lo: int, hi: int) -> dict[str, np.ndarray]:
        return plan_chunk(job.scenario, plans, be, job.lo + lo, job.lo + hi)

    for _, _, out in stream_chunks(n, ChunkSize(n), be, evaluate):
        for name, values in out.items():
            parts[name].append(values)
    return {name: _joined(p) for name, p in parts.items()}


def add_histograms(a: dict, b: dict) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Two chunks' pass-2 parts added (a task of the fixed summation tree)."""
    with np.errstate(over="ignore", invalid="ignore"):  # as reduce.py: check_finite reports
        return {i: (a[i][0] + b[i][0], a[i][1] + b[i][1]) for i in a}


def block_moments(npv: np.ndarray, shift: np.ndarray) -> list[BlockMoments]:
    """``reduce.Moments`` over each block of BLOCK rows of ``npv`` on its own.

    Each block is reduced by a fresh ``Moments`` (zeros plus the block's sums), so the
    client adding the blocks in order repeats the local loop's arithmetic exactly.
    """
    out = []
    o = npv.shape[1]
    for b in range(0, npv.shape[0], BLOCK):
        m = Moments(
            shift=shift,
            total=np.zeros(o),
            squares=np.zeros(o),
            low=np.full(o, np.inf),
            high=np.full(o, -np.inf),
        )
        m.add(npv[b : b + BLOCK])
        m.flush()
        out.append(BlockMoments(m.count, m.total, m.squares, m.low, m.high))
    return out


def _sub_chunks(job: ChunkJob, be: Backend) -> Iterator[tuple[int, int, dict]]:
    """The job's chunk in one piece, or halves of it after a CUDA out-of-memory error."""
    n = job.hi - job.lo

    def evaluate(lo: int, hi: int) -> dict:
        return evaluate_chunk(
            job.scenario, job.options, list(job.todo), be, job.lo + lo, job.lo + hi
        )

    return stream_chunks(n, ChunkSize(n), be, evaluate)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)


# --------------------------------------------------------------------------- client side


def fold_block(m: Moments, block: BlockMoments) -> None:
    """Add one block to ``m`` as ``Moments._reduce`` adds it (``m.shift`` already set)."""
    if m.total is None:
        o = block.total.shape[0]
        m.total, m.squares = np.zeros(o), np.zeros(o)
        m.low, m.high = np.full(o, np.inf), np.full(o, -np.inf)
    m.count += block.count
    with np.errstate(over="ignore", invalid="ignore"):  # as reduce.py: check_finite reports
        m.total += block.total
        m.squares += block.squares
    np.minimum(m.low, block.low, out=m.low)
    np.maximum(m.high, block.high, out=m.high)


class DaskChunks:
    """A :class:`~siteopt.kernels.valuation.ChunkExecutor` on a ``distributed.Client``.

    Parameters
    ----------
    client : distributed.Client
        Connected to the cluster the chunks run on; the workers need siteopt installed.
    tasks_per_worker : int
        Chunks per worker thread when the chunk size is not given.
    """

    def __init__(self, client: Any, tasks_per_worker: int = TASKS_PER_WORKER) -> None:
        self.client = client
        self.tasks_per_worker = tasks_per_worker

    def chunk_size(self, scenario: Portfolio, requested: int | None) -> int:
        """Scenarios per task, a multiple of BLOCK.

        ``requested`` is rounded up to a multiple of BLOCK; by default about
        ``tasks_per_worker`` chunks per worker thread, capped so that a chunk fits in
        half a worker thread's memory limit (at most ``CPU_MEMORY_BUDGET_BYTES``).
        """
        if requested:
            return _round_up(requested, BLOCK)
        threads, memory = self._worker_capacity()
        n = scenario.simulation.scenarios
        target = _round_up(math.ceil(n / (self.tasks_per_worker * threads)), BLOCK)
        budget = min(CPU_MEMORY_BUDGET_BYTES, memory // 2) if memory else CPU_MEMORY_BUDGET_BYTES
        cap = budget // bytes_per_scenario(scenario) // BLOCK * BLOCK
        return max(BLOCK, min(target, cap))

    def _worker_capacity(self) -> tuple[int, int]:
        """Worker threads in the cluster and the smallest memory limit per thread [B]."""
        workers = self.client.scheduler_info().get("workers", {}).values()
        threads = sum(int(w.get("nthreads", 1)) for w in workers)
        per_thread = [
            int(w["memory_limit"]) // max(1, int(w.get("nthreads", 1)))
            for w in workers
            if w.get("memory_limit")
        ]
        return max(1, threads), min(per_thread, default=0)

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
    ) -> dict[int, SiteValues]:
        """Both passes over the chunks as tasks; see the module docstring."""
        if not todo:
            return {}
        t0 = time.perf_counter()
        sim, alpha = scenario.simulation, scenario.objective.cvar_alpha
        jobs = self._jobs(scenario, options, todo, be, chunks.size)
        tag = uuid.uuid4().hex
        keep = keeps_pass_one(scenario, options, todo)  # NPVs stay on the workers for pass 2
        shifts, values, firsts = self._submit_pass_one(jobs, keep, sim.risk_sample, tag)
        acc = {}
        for i, shift in shifts.result().items():
            acc[i] = SiteAccumulator(scenario.months, sim.risk_sample, len(options[i]), False)
            acc[i].moments.shift = shift
        for k, part in self.in_order(firsts, jobs, "valuation", progress):
            _fold_pass_one(acc, part, jobs[k].lo)
        del firsts, shifts
        t1 = time.perf_counter()
        ranges = {}
        for i, a in acc.items():
            a.hist = Histograms.from_moments(a.moments, bins, alpha)
            ranges[i] = (a.hist.lo, a.hist.width)
        seconds = self._submit_pass_two(jobs, values, ranges, bins, tag)
        del values  # the pass-2 tasks hold the kept NPVs now; released once they are done
        total = self._tree_sum(seconds, tag)
        self.follow(seconds, jobs, "quantiles", progress)
        for i, (counts, sums) in total.result().items():  # zeros + the total: exact
            acc[i].hist.counts += counts
            acc[i].hist.sums += sums
        out = {i: a.values(alpha) for i, a in acc.items()}
        timings.update(pass1=t1 - t0, pass2=time.perf_counter() - t1)
        return out

    def _submit_pass_one(
        self, jobs: list[ChunkJob], keep: bool, risk_n: int, tag: str
    ) -> tuple[Any, list[Any] | None, list[Any]]:
        """The shift task, the kept NPVs (None unless ``keep``) and the pass-1 tasks."""
        submit = self.client.submit
        shifts = submit(shift_rows, jobs[0], key=f"siteopt-shift-{tag}")
        if not keep:
            firsts = [
                submit(pass_one_job, j, shifts, risk_n, key=f"siteopt-p1-{tag}-{k}")
                for k, j in enumerate(jobs)
            ]
            return shifts, None, firsts
        values = [submit(chunk_values, j, key=f"siteopt-npv-{tag}-{k}") for k, j in enumerate(jobs)]
        firsts = [
            submit(pass_one, v, shifts, j.lo, risk_n, key=f"siteopt-p1-{tag}-{k}")
            for k, (v, j) in enumerate(zip(values, jobs, strict=True))
        ]
        return shifts, values, firsts

    def _submit_pass_two(
        self, jobs: list[ChunkJob], values: list[Any] | None, ranges: dict, bins: int, tag: str
    ) -> list[Any]:
        """The pass-2 tasks: over the kept NPVs, or over chunks computed again."""
        submit = self.client.submit
        if values is not None:
            return [
                submit(pass_two, v, ranges, bins, key=f"siteopt-p2-{tag}-{k}")
                for k, v in enumerate(values)
            ]
        return [
            submit(pass_two_job, j, ranges, bins, key=f"siteopt-p2-{tag}-{k}")
            for k, j in enumerate(jobs)
        ]

    def plan_npvs(
        self,
        scenario: Portfolio,
        plans: dict[str, list[SiteOption]],
        be: Backend,
        chunks: ChunkSize,
        progress: Progress | None,
    ) -> dict[str, np.ndarray]:
        """Each plan's portfolio NPV per scenario, a task per chunk [USD]."""
        jobs = self._jobs(scenario, [], [], be, chunks.size)
        tag = uuid.uuid4().hex
        futures = [
            self.client.submit(plan_values, j, plans, key=f"siteopt-plan-{tag}-{k}")
            for k, j in enumerate(jobs)
        ]
        n = scenario.simulation.scenarios
        out = {name: np.empty(n) for name in plans}
        for k, part in self.in_order(futures, jobs, "plan", progress):
            for name, values in part.items():
                out[name][jobs[k].lo : jobs[k].hi] = values
        return out

    @staticmethod
    def _jobs(
        scenario: Portfolio,
        options: list[list[SiteOption]],
        todo: list[int],
        be: Backend,
        size: int,
    ) -> list[ChunkJob]:
        """One job per chunk [lo, lo + size) of the scenarios, for the sites ``todo``."""
        n = scenario.simulation.scenarios
        wanted = {i: options[i] for i in todo}
        return [
            ChunkJob(scenario, wanted, tuple(todo), be.name, lo, min(n, lo + size))
            for lo in range(0, n, size)
        ]

    def _tree_sum(self, parts: list[Any], tag: str) -> Any:
        """One future: the histogram parts added pairwise on the workers, (0 + 1) + (2 + 3)...

        A fixed tree, so the sums do not depend on which task finished first, and the
        client receives one options x bins array pair instead of one per chunk.
        """
        level = 0
        while len(parts) > 1:
            parts = [
                self.client.submit(
                    add_histograms, parts[k], parts[k + 1], key=f"siteopt-sum-{tag}-{level}-{k}"
                )
                if k + 1 < len(parts)
                else parts[k]
                for k in range(0, len(parts), 2)
            ]
            level += 1
        return parts[0]

    def follow(
        self,
        futures: Sequence[Any],
        jobs: Sequence[ChunkJob],
        stage: str,
        progress: Progress | None,
    ) -> None:
        """Draw progress as the chunk tasks ``futures`` finish (their results stay put)."""
        for _ in self._finished(futures, jobs, stage, progress):
            pass

    def in_order(
        self,
        futures: Sequence[Any],
        jobs: Sequence[ChunkJob],
        stage: str,
        progress: Progress | None,
    ) -> Iterator[tuple[int, Any]]:
        """Yield ``(k, result of futures[k])`` in k order, drawing progress as tasks finish.

        Results are folded in chunk order so that the client's sums do not depend on
        which worker finished first; a result is held only until the ones before it
        arrive.
        """
        ready: dict[int, Any] = {}
        following = 0
        for k, future in self._finished(futures, jobs, stage, progress):
            ready[k] = future.result()
            while following in ready:
                yield following, ready.pop(following)
                following += 1

    def _finished(
        self,
        futures: Sequence[Any],
        jobs: Sequence[ChunkJob],
        stage: str,
        progress: Progress | None,
    ) -> Iterator[tuple[int, Any]]:
        """Yield ``(k, futures[k])`` as each finishes; ``progress(stage, scenarios done, N)``."""
        from distributed import as_completed

        where = {f.key: k for k, f in enumerate(futures)}
        total = sum(j.hi - j.lo for j in jobs)
        done = 0
        for future in as_completed(futures, loop=self.client.loop):
            k = where[future.key]
            done += jobs[k].hi - jobs[k].lo
            if progress is not None:
                progress(stage, done, total)
            yield k, future


def _fold_pass_one(acc: dict[int, SiteAccumulator], part: dict[int, SitePassOne], lo: int) -> None:
    for i, p in part.items():
        a = acc[i]
        for block in p.blocks:
            fold_block(a.moments, block)
        a.take_risk(lo, p.risk_rows)
        for key, online in p.online.items():
            a.events.online[key] = a.events.online.get(key, 0.0) + online
        for key, returned in p.returned.items():
            a.events.returned[key] = a.events.returned.get(key, 0.0) + returned


def _round_up(n: int, step: int) -> int:
    return max(step, -(-int(n) // step) * step)
