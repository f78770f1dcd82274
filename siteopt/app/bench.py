"""``siteopt bench``: time the valuation on numpy and, where a GPU answers, on CuPy.

On CuPy it also times each fused kernel alone and divides its flop rate and bandwidth
by the device's measured ceilings (kernels/gpubench.py), so a slow kernel shows
whether it is far from the hardware or already at it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from siteopt.app.params import kernel_inputs
from siteopt.app.valuation import value_options
from siteopt.kernels.backend import cupy_usable, select_backend
from siteopt.kernels.sites import site_options
from siteopt.model.load import load_scenario, with_simulation

DEFAULT_SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "texas.yaml"
KERNEL_SCENARIOS = 100_000  # scenarios of the chunk each fused kernel is timed on


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


@dataclass(frozen=True)
class BenchRun:
    """Everything one ``siteopt bench`` measured."""

    results: list[BenchResult]
    gpu: str  # the device, or why CuPy was not timed
    ceilings: dict[str, Any] | None = None
    kernels: list[dict[str, Any]] = field(default_factory=list)


def run_bench(
    file: Path | None,
    backend: str,
    scenarios: int,
    repeat: int = 1,
    kernel_scenarios: int = KERNEL_SCENARIOS,
) -> BenchRun:
    """Best-of-``repeat`` valuation time per backend on the same work.

    ``backend`` "auto" times numpy, and CuPy too when a CUDA device answers; on CuPy
    the fused kernels are also timed alone against the device's ceilings.
    """
    scenario = with_simulation(load_scenario(file or DEFAULT_SCENARIO), scenarios, None)
    portfolio = kernel_inputs(scenario)
    n_options = sum(len(site_options(portfolio, i)) for i in range(len(portfolio.sites)))
    ok, gpu = cupy_usable()
    names = [backend] if backend != "auto" else ["numpy"] + (["cupy"] if ok else [])
    results = []
    for name in names:
        be = select_backend(name)
        value_options(with_simulation(scenario, min(scenarios, 256), None), backend=be)  # warm-up
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            value_options(scenario, backend=be)
            be.synchronize()
            best = min(best, time.perf_counter() - t0)
        results.append(BenchResult(be.name, scenarios, n_options, scenario.months, best))
    if "cupy" not in names:
        return BenchRun(results, gpu)
    from siteopt.kernels import gpubench

    ceilings = gpubench.measure_ceilings()
    timings = gpubench.time_kernels(portfolio, kernel_scenarios, ceilings)
    return BenchRun(results, ceilings.gpu, asdict(ceilings), [t.as_dict() for t in timings])


def bench_payload(run: BenchRun) -> dict:
    """The ``--json`` document (CI compares ``cell_months_per_s`` with its baseline)."""
    rows = [{**asdict(r), "cell_months_per_s": r.cell_months_per_s} for r in run.results]
    by = {r.backend: r for r in run.results}
    ratio = by["numpy"].seconds / by["cupy"].seconds if {"numpy", "cupy"} <= by.keys() else None
    return {
        "results": rows,
        "cupy_over_numpy": ratio,
        "gpu": run.gpu,
        "ceilings": run.ceilings,
        "kernels": run.kernels,
    }


def bench_lines(payload: dict) -> list[str]:
    """What ``siteopt bench`` prints without ``--json``."""
    lines = [
        f"{row['backend']:>6}: {row['options']} options x {row['scenarios']:,} scenarios x "
        f"{row['months']} months in {row['seconds']:.2f} s = "
        f"{row['cell_months_per_s']:.3g} cell-months/s"
        for row in payload["results"]
    ]
    ratio = payload["cupy_over_numpy"]
    if ratio:
        lines.append(f"cupy / numpy speed-up: {ratio:.1f}x")
    elif not any(row["backend"] == "cupy" for row in payload["results"]):
        lines.append(f"cupy: not timed ({payload['gpu']})")
    ceilings = payload["ceilings"]
    if ceilings:
        lines.append(
            f"{ceilings['gpu']}: measured {ceilings['fp32_gflops'] / 1e3:.1f} TFLOP/s FP32, "
            f"{ceilings['fp64_gflops'] / 1e3:.1f} TFLOP/s FP64, {ceilings['dram_gbs']:.0f} GB/s"
        )
    for k in payload["kernels"]:
        lines.append(
            f"  {k['kernel']:<15} {k['cells']:,} cells in {k['seconds'] * 1e3:.2f} ms: "
            f"{k['gflops']:.0f} GFLOP/s ({k['fp32_fraction']:.0%} of FP32, "
            f"{k['fp64_fraction']:.0%} of FP64), {k['gbs']:.0f} GB/s "
            f"({k['bandwidth_fraction']:.0%} of DRAM): {k['bound']}-bound"
        )
    return lines
