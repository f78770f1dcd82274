"""Benchmark of ``--engine dask``: the valuation on the local engine against Dask clusters.

Usage::

    .venv/bin/python benchmarks/dask_scaling.py                       # texas, 40,000 scenarios
    .venv/bin/python benchmarks/dask_scaling.py --workers 2,4,8 --scenarios 100000
    .venv/bin/python benchmarks/dask_scaling.py --scheduler tcp://host:8786   # a real cluster

Times ``siteopt.kernels.valuation.value_options`` (both passes, all options of every site)
on the local engine, then on a ``distributed.LocalCluster`` of W single-threaded worker
processes for each W in ``--workers`` (or on the cluster at ``--scheduler``), each after a
warm-up run that makes every worker import siteopt. Prints one row per run: chunk size,
tasks per pass, pass 1 and pass 2 wall time, total, speed-up over local, and the largest
relative difference of the option table from the local one (the results must agree to
floating-point summation order).

The local engine runs in this process with NumPy's default threading; Dask's workers run
one thread each (its nannies set OMP_NUM_THREADS=1). On a machine with fewer cores than
workers the workers share the cores, so expect no gain there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SCENARIO = REPO / "scenarios" / "texas.yaml"
STATS = ["expected_npv_usd", "std_npv_usd", "p5_npv_usd", "p50_npv_usd", "p95_npv_usd", "cvar_usd"]


def timed(scenario, scenarios: int, executor=None, chunk_size: int | None = None) -> dict:
    """One valuation; its timings and result."""
    from siteopt.app.valuation import value_options

    t0 = time.perf_counter()
    result = value_options(
        scenario, backend="numpy", scenarios=scenarios, executor=executor, chunk_size=chunk_size
    )
    wall = time.perf_counter() - t0
    return {
        "result": result,
        "chunk_size": result.chunk_size,
        "tasks": -(-scenarios // result.chunk_size),
        "pass1_s": result.timings_s["pass1"],
        "pass2_s": result.timings_s["pass2"],
        "total_s": wall,
    }


def largest_difference(got, want) -> float:
    """Largest |got - want| / max(|want|, 1 USD) over the option table's statistics."""
    a, b = got.options.table, want.options.table
    return max(float(np.max(np.abs(a[c] - b[c]) / np.maximum(np.abs(b[c]), 1.0))) for c in STATS)


def on_cluster(client, scenario, scenarios: int, chunk_size: int | None) -> dict:
    from siteopt.kernels.dask_chunks import DaskChunks
    from siteopt.kernels.reduce import BLOCK

    executor = DaskChunks(client)
    threads = sum(w["nthreads"] for w in client.scheduler_info()["workers"].values())
    timed(scenario, 2 * BLOCK * threads, executor, BLOCK)  # warm-up: every worker imports
    return timed(scenario, scenarios, executor, chunk_size)


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        lines = ""
    for line in lines.splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{model}, {os.cpu_count()} cores, load average {load:.1f} at start, "
        f"Python {platform.python_version()}"
    )


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    p.add_argument("--scenarios", type=int, default=40_000)
    p.add_argument("--workers", default="2,4", help="LocalCluster sizes, comma-separated")
    p.add_argument("--scheduler", default=None, help="time this cluster instead of LocalClusters")
    p.add_argument("--chunk-size", type=int, default=None, help="default: the engine's own")
    p.add_argument("--json", type=Path, default=None, help="also write the rows to this file")
    args = p.parse_args()

    import distributed

    from siteopt.app.engines import start_local_cluster
    from siteopt.model.load import load_scenario

    scenario = load_scenario(args.scenario)
    print(f"machine: {machine()}, distributed {distributed.__version__}")
    timed(scenario, 256)  # warm-up of the local engine
    local = timed(scenario, args.scenarios)
    rows = [{"engine": "local", "workers": "-", **local}]
    if args.scheduler:
        with distributed.Client(args.scheduler, set_as_default=False) as client:
            workers = len(client.scheduler_info()["workers"])
            row = on_cluster(client, scenario, args.scenarios, args.chunk_size)
            rows.append({"engine": "dask", "workers": f"{workers} (remote)", **row})
    else:
        for w in (int(x) for x in args.workers.split(",")):
            with (
                start_local_cluster(w) as cluster,
                distributed.Client(cluster, set_as_default=False) as client,
            ):
                row = on_cluster(client, scenario, args.scenarios, args.chunk_size)
            rows.append({"engine": "dask", "workers": str(w), **row})
    report(scenario, args.scenarios, rows, local)
    if args.json:
        keep = [{k: v for k, v in r.items() if k != "result"} for r in rows]
        args.json.write_text(json.dumps(keep, indent=2))


def report(scenario, scenarios: int, rows: list[dict], local: dict) -> None:
    options = len(local["result"].options.table)
    print(
        f"\n{scenario.name}: {len(scenario.sites)} sites, {options} options, "
        f"{scenario.months} months, {scenarios:,} scenarios, backend numpy\n"
    )
    header = (
        "| engine | workers | chunk | tasks/pass | pass 1 | pass 2 | total | vs local | rel diff |"
    )
    print(header)
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        ratio = local["total_s"] / r["total_s"]
        diff = largest_difference(r["result"], local["result"])
        print(
            f"| {r['engine']} | {r['workers']} | {r['chunk_size']:,} | {r['tasks']} | "
            f"{r['pass1_s']:.2f} s | {r['pass2_s']:.2f} s | {r['total_s']:.2f} s | "
            f"{ratio:.2f}x | {diff:.1e} |"
        )


if __name__ == "__main__":
    main()
