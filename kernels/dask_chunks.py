"""Scenario chunks as tasks on a Dask cluster (``--engine dask``).

:class:`DaskChunks` is the :class:`~siteopt.kernels.chunks.ChunkExecutor` of a
``distributed.Client``: the valuation's two passes (written once, in
siteopt.kernels.valuation) submit the same chunk tasks (siteopt.kernels.chunks) that run in
this process with ``--engine local``; here each is a Dask task.

* Jobs are multiples of ``reduce.BLOCK`` scenarios, about ``tasks_per_worker`` per worker
  thread, each evaluated whole (halved inside the task on a CUDA out-of-memory error).
* Results stay on the workers until the client asks for them. Pass 1's parts are fetched
  and folded in job order, whichever task finished first; pass 2's histogram parts are
  added pairwise on the workers in the fixed tree ((0 + 1) + (2 + 3)) + ..., so the client
  receives one pair whatever the number of chunks.
* When pass 1's NPVs are kept, they stay in the workers' memory as futures (one piece per
  chunk) and pass 2 reads them there.

Retries
-------
Every task is a pure function of its job. A task lost with its worker is rerun by Dask on
another worker with the same result, and NPVs kept on a lost worker are recomputed from
their chunk. The inputs go into the task graph, never ``scatter``-ed, because scattered
data cannot be recomputed.

``distributed`` is imported only inside these functions, so this module loads without it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .backend import Backend
from .chunks import (
    CPU_MEMORY_BUDGET_BYTES,
    ChunkJob,
    Progress,
    bytes_per_scenario,
)
from .params import Portfolio
from .reduce import BLOCK
from .sites import SiteOption

TASKS_PER_WORKER = 4  # chunks per worker thread: enough to balance, few enough to be cheap


class DaskChunks:
    """A :class:`~siteopt.kernels.chunks.ChunkExecutor` on a ``distributed.Client``.

    Parameters
    ----------
    client : distributed.Client
        Connected to the cluster the chunks run on; the workers need siteopt installed.
    tasks_per_worker : int
        Chunks per worker thread when the chunk size is not given.
    """

    in_process = False

    def __init__(self, client: Any, tasks_per_worker: int = TASKS_PER_WORKER) -> None:
        self.client = client
        self.tasks_per_worker = tasks_per_worker
        self.size = 0
        self._tag = uuid.uuid4().hex
        self._count = 0

    @property
    def chunk_size(self) -> int:
        return self.size

    def jobs(
        self,
        scenario: Portfolio,
        options: dict[int, list[SiteOption]],
        todo: Sequence[int],
        be: Backend,
        requested: int | None,
    ) -> list[ChunkJob]:
        """One job per chunk of :meth:`size_for` scenarios, for the sites ``todo``."""
        self.size = self.size_for(scenario, requested)
        n = scenario.simulation.scenarios
        return [
            ChunkJob(scenario, options, tuple(todo), be.name, lo, min(n, lo + self.size))
            for lo in range(0, n, self.size)
        ]

    def size_for(self, scenario: Portfolio, requested: int | None) -> int:
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

    def submit(self, task: Callable[..., Any], *args: Any) -> Any:
        """A future of ``task(*args)``, under a key of its own (the tasks are pure, but
        two runs' keys must not meet in the scheduler)."""
        self._count += 1
        key = f"siteopt-{task.__name__}-{self._tag}-{self._count}"
        return self.client.submit(task, *args, key=key)

    def total(
        self,
        handles: Sequence[Any],
        add: Callable[[Any, Any], Any],
        jobs: Sequence[ChunkJob],
        stage: str,
        progress: Progress | None,
    ) -> Any:
        """The results added pairwise on the workers, level by level: (0 + 1) + (2 + 3)...

        A fixed tree, so the sums do not depend on which task finished first, and the
        client receives one result instead of one per chunk.
        """
        parts = list(handles)
        while len(parts) > 1:
            parts = [
                self.submit(add, parts[k], parts[k + 1]) if k + 1 < len(parts) else parts[k]
                for k in range(0, len(parts), 2)
            ]
        for _ in self._finished(handles, jobs, stage, progress):
            pass
        return parts[0].result()

    def in_order(
        self,
        handles: Sequence[Any],
        jobs: Sequence[ChunkJob],
        stage: str,
        progress: Progress | None,
    ) -> Iterator[tuple[int, Any]]:
        """Yield ``(k, result of handles[k])`` in k order, drawing progress as tasks finish.

        Results are folded in chunk order so that the client's sums do not depend on
        which worker finished first; a result is held only until the ones before it
        arrive.
        """
        ready: dict[int, Any] = {}
        following = 0
        for k, future in self._finished(handles, jobs, stage, progress):
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


def _round_up(n: int, step: int) -> int:
    return max(step, -(-int(n) // step) * step)
