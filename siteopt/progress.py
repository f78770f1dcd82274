"""Progress bars for long work: one bar per stage, driven by ``progress(stage, done, total)``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

STAGE_LABELS = {
    "valuation": "valuing options (pass 1: moments)",
    "quantiles": "valuing options (pass 2: quantiles)",
    "milp": "solving the build plan (MILP)",
    "plan": "valuing the plan and baselines",
}

Callback = Callable[[str, int, int], None]


@contextmanager
def progress_reporter(quiet: bool) -> Iterator[Callback | None]:
    """Yield a progress callback drawing to standard error, or None when quiet."""
    if quiet:
        yield None
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
