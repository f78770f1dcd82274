"""Whole solves as Dask tasks: whatif's two solves, sweep's points, breakeven's bisection.

Each point's valuation runs locally on its worker (the local engine), so a point's numbers
are those of ``siteopt solve --set`` here; this module sits above the pipeline, and the
cluster itself comes from :mod:`siteopt.app.engines`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from siteopt.app import pipeline
from siteopt.app.engines import connect
from siteopt.app.pipeline import SolveOutcome, SolveSettings
from siteopt.model.errors import InfeasibleError
from siteopt.model.schema import Scenario


@dataclass(frozen=True)
class PointSolve:
    """A solve that ran as a task: its outcome, or why it has no plan."""

    outcome: SolveOutcome | None
    infeasible: InfeasibleError | None
    seconds: float  # on the worker [s]


def _solve_task(scenario: Scenario, settings: SolveSettings) -> tuple[Any, ...]:
    """``pipeline.solve`` on a worker, local engine; infeasibility returned, not raised
    (an exception crossing the wire would lose its list of conflicts)."""
    began = time.perf_counter()
    try:
        return pipeline.solve(scenario, settings), None, (), time.perf_counter() - began
    except InfeasibleError as exc:
        return None, exc.message, exc.conflicts, time.perf_counter() - began


def solve_on_cluster(
    scenarios: Sequence[Scenario],
    settings: SolveSettings,
    stage: str,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[PointSolve]:
    """Solve each scenario as one task (valuation on its worker, then the MILP), in order.

    Each result is what ``pipeline.solve`` gives on the local engine for that scenario.
    """
    from distributed import as_completed

    client = connect(settings.scheduler, settings.backend)
    local = replace(settings, engine="local", scheduler=None)
    futures = [client.submit(_solve_task, s, local, pure=False) for s in scenarios]
    where = {f.key: k for k, f in enumerate(futures)}
    results: list[PointSolve | None] = [None] * len(futures)
    for done, future in enumerate(as_completed(futures, loop=client.loop), start=1):
        outcome, message, conflicts, seconds = future.result()
        if outcome is not None:  # the worker's solve ran "local"
            outcome = replace(outcome, engine=settings.engine)
        infeasible = None if message is None else InfeasibleError(message, conflicts)
        results[where[future.key]] = PointSolve(outcome, infeasible, seconds)
        if progress is not None:
            progress(stage, done, len(futures))
    return results  # type: ignore[return-value]


def run_on_cluster(
    scheduler: str | None, backend: str, function: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """``function(*args, **kwargs)`` as one task on the cluster; its result, or its
    exception raised here."""
    client = connect(scheduler, backend)
    return client.submit(function, *args, pure=False, **kwargs).result()
