"""Benchmark of the valuation (siteopt.kernels.valuation.value_options).

Usage::

    .venv/bin/python benchmarks/bench_valuation.py                 # the full benchmark
    .venv/bin/python benchmarks/bench_valuation.py --profile out.prof   # + cProfile of the main run
    .venv/bin/python benchmarks/bench_valuation.py --backend cupy --scenarios 200000

Each measurement runs in a fresh subprocess so that its peak RSS is its own. Reported:

* the main run: texas.yaml at 20,000 scenarios, default chunking: wall time of each
  pass (pass 1: NPVs, moments, risk sample, events; pass 2: recompute + histograms),
  cell-months per second (cells = total options x scenarios; x months; each cell-month
  is computed twice, once per pass, and the rate counts it once), peak RSS;
* the 8x scaling check: 2,500 vs 20,000 scenarios at a fixed chunk size, the time
  ratio (ideal 8) and the peak RSS of each (ideal: equal).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SCENARIO = REPO / "scenarios" / "texas.yaml"


def measure(
    scenario_path: Path, scenarios: int, chunk_size: int | None, backend: str, profile: str | None
) -> dict:
    """One valuation in this process; returns timings, sizes and peak RSS."""
    from siteopt.app.valuation import value_options
    from siteopt.kernels.backend import select_backend
    from siteopt.kernels.chunks import chunk_size_for
    from siteopt.model.load import load_scenario, with_simulation

    scenario = load_scenario(scenario_path)
    be = select_backend(backend)
    # warm-up: imports, CuPy kernel compilation, page faults of the allocator
    value_options(scenario, backend=be, scenarios=min(scenarios, 256), chunk_size=chunk_size)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    default_chunk = chunk_size_for(with_simulation(scenario, scenarios, None), be, None)
    t0 = time.perf_counter()
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(
            value_options, scenario, backend=be, scenarios=scenarios, chunk_size=chunk_size
        )
        profiler.dump_stats(profile)
    else:
        result = value_options(scenario, backend=be, scenarios=scenarios, chunk_size=chunk_size)
    be.synchronize()
    wall = time.perf_counter() - t0
    options = len(result.options.table)
    months = scenario.months
    cells = options * scenarios
    out = {
        "scenario": scenario_path.name,
        "backend": result.backend,
        "scenarios": scenarios,
        "chunk_size": result.chunk_size,
        "default_chunk_size": default_chunk,
        "chunks": -(-scenarios // result.chunk_size),
        "sites": len(scenario.sites),
        "options": options,
        "months": months,
        "cells": cells,
        "cell_months": cells * months,
        "pass1_s": result.timings_s["pass1"],
        "pass2_s": result.timings_s["pass2"],
        "total_s": result.timings_s["total"],
        "wall_s": wall,
        "cell_months_per_s": cells * months / wall,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "rss_before_bytes": rss_before,
    }
    if be.name == "cupy":
        out["gpu_pool_bytes"] = int(be.xp.get_default_memory_pool().total_bytes())
    return out


def run_child(
    args: argparse.Namespace, scenarios: int, chunk_size: int | None, profile: str | None = None
) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--scenario",
        str(args.scenario),
        "--scenarios",
        str(scenarios),
        "--backend",
        args.backend,
    ]
    if chunk_size:
        cmd += ["--chunk-size", str(chunk_size)]
    if profile:
        cmd += ["--profile", profile]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO)
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=True
        ).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def report_main(r: dict) -> None:
    print(
        f"\n{r['scenario']}: {r['sites']} sites, {r['options']} options, {r['months']} months, "
        f"{r['scenarios']:,} scenarios, backend {r['backend']}"
    )
    print(
        f"  chunk size {r['chunk_size']:,} ({r['chunks']} chunk(s)); default for this run "
        f"{r['default_chunk_size']:,}"
    )
    print(
        f"  pass 1 {r['pass1_s']:.2f} s   pass 2 {r['pass2_s']:.2f} s   total {r['total_s']:.2f} s"
    )
    print(
        f"  {r['cell_months']:.3e} cell-months -> {r['cell_months_per_s']:.3e} cell-months/s "
        f"(each computed in both passes)"
    )
    before = mib(r["rss_before_bytes"])
    print(f"  peak RSS {mib(r['peak_rss_bytes'])} (after warm-up, before the run: {before})")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    p.add_argument("--scenarios", type=int, default=20_000)
    p.add_argument("--chunk-size", type=int, default=None, help="default: from the memory budget")
    p.add_argument(
        "--scaling-chunk", type=int, default=2_500, help="fixed chunk size of the 8x check"
    )
    p.add_argument("--backend", default="numpy", choices=["numpy", "cupy", "auto"])
    p.add_argument("--profile", default=None, help="write a cProfile of the main run to this file")
    p.add_argument("--skip-scaling", action="store_true")
    p.add_argument("--json", type=Path, default=None, help="also write all results to this file")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.child:
        print(
            json.dumps(
                measure(args.scenario, args.scenarios, args.chunk_size, args.backend, args.profile)
            )
        )
        return

    print(f"machine: {machine()}")
    results: dict = {"machine": machine()}
    main_run = run_child(args, args.scenarios, args.chunk_size, args.profile)
    results["main"] = main_run
    report_main(main_run)
    if args.profile:
        print(f"  cProfile written to {args.profile}")

    if not args.skip_scaling:
        small_n = args.scenarios // 8
        small = run_child(args, small_n, args.scaling_chunk)
        large = run_child(args, args.scenarios, args.scaling_chunk)
        results["scaling"] = {"small": small, "large": large}
        print(f"\n8x scaling at a fixed chunk size of {args.scaling_chunk:,}:")
        for r in (small, large):
            print(
                f"  {r['scenarios']:>7,} scenarios ({r['chunks']} chunks): {r['total_s']:.2f} s, "
                f"{r['cell_months_per_s']:.3e} cell-months/s, peak RSS {mib(r['peak_rss_bytes'])}"
            )
        print(
            f"  time ratio {large['total_s'] / small['total_s']:.2f} (ideal 8.00); "
            f"peak RSS ratio {large['peak_rss_bytes'] / small['peak_rss_bytes']:.3f} (ideal 1.00)"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
