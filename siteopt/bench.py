"""``siteopt bench``: time the valuation on numpy and, where a GPU answers, on CuPy."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from siteopt.kernels.backend import cupy_usable, select_backend
from siteopt.kernels.options import site_options
from siteopt.kernels.valuation import value_options, with_simulation

from .scenario import load_scenario

DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "texas.yaml"


@dataclass(frozen=True)
class BenchResult:
    backend: str
    scenarios: int
    options: int
    months: int
    seconds: float

    @property
    def cell_months_per_s(self) -> float:
        """(site options x scenarios x months) per second of valuation [1/s]."""
        return self.options * self.scenarios * self.months / self.seconds


def run_bench(
    file: Path | None, backend: str, scenarios: int, repeat: int = 1
) -> list[BenchResult]:
    """Best-of-``repeat`` valuation time per backend on the same work.

    ``backend`` "auto" times numpy, and CuPy too when a CUDA device answers.
    """
    scenario = with_simulation(load_scenario(file or DEFAULT_SCENARIO), scenarios, None)
    n_options = sum(len(site_options(scenario, i)) for i in range(len(scenario.sites)))
    names = [backend] if backend != "auto" else ["numpy"] + (["cupy"] if cupy_usable()[0] else [])
    results = []
    for name in names:
        be = select_backend(name)
        value_options(
            with_simulation(scenario, min(scenarios, 256), None), backend=be
        )  # warm-up, compile
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            value_options(scenario, backend=be)
            be.synchronize()
            best = min(best, time.perf_counter() - t0)
        results.append(BenchResult(be.name, scenarios, n_options, scenario.months, best))
    return results


def bench_payload(results: list[BenchResult]) -> dict:
    rows = [{**asdict(r), "cell_months_per_s": r.cell_months_per_s} for r in results]
    by = {r.backend: r for r in results}
    ratio = by["numpy"].seconds / by["cupy"].seconds if {"numpy", "cupy"} <= by.keys() else None
    return {"results": rows, "cupy_over_numpy": ratio, "gpu": cupy_usable()[1] or "usable"}
