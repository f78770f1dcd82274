"""Progress bars for long work: one bar per stage, driven by ``progress(stage, done, total)``.

Bars are drawn on a terminal only. ``SITEOPT_PROGRESS=lines`` prints one plain line per
stage as it starts instead, terminal or not (for logs, and for tests that act on a
stage); ``SITEOPT_PROGRESS=off`` is the same as ``--quiet``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

STAGE_LABELS = {
    "valuation": "valuing options (pass 1: moments)",
    "quantiles": "valuing options (pass 2: quantiles)",
    "milp": "solving the build plan (MILP)",
    "plan": "valuing the plan and baselines",
    "whatif": "solving base and changed (Dask cluster)",
    "sweep": "solving every point",
    "cases": "solving the scenario's cases",
    "alternatives": "finding near-optimal alternatives",
    "staged": "deciding later years per market state (staged MILP)",
    "fresh": "valuing the staged policy on fresh draws",
    "validation": "valuing the plan and the risk-neutral plan on fresh draws",
    "replications": "solving independent replications (optimality gap)",
    "breakeven (build plan)": "breakeven: solving whole plans",
}

Callback = Callable[[str, int, int], None]
PROGRESS_ENV = "SITEOPT_PROGRESS"


def _stage_lines() -> Callback:
    """A callback that prints ``siteopt: <stage label> ...`` when a stage starts."""
    started: set[str] = set()

    def update(stage: str, done: int, total: int) -> None:
        if stage not in started:
            started.add(stage)
            print(f"siteopt: {STAGE_LABELS.get(stage, stage)} ...", file=sys.stderr, flush=True)

    return update


@contextmanager
def progress_reporter(quiet: bool) -> Iterator[Callback | None]:
    """Yield a progress callback drawing to standard error, or None when quiet."""
    mode = os.environ.get(PROGRESS_ENV, "bars")
    if quiet or mode == "off":
        yield None
        return
    if mode == "lines":
        yield _stage_lines()
        return
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(
        *columns, console=console, transient=False, disable=not console.is_terminal
    ) as bars:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(STAGE_LABELS.get(stage, stage), total=total)
            bars.update(tasks[stage], completed=done, total=total)

        yield update
