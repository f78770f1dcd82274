"""Fail when the GPU throughput of a ``siteopt bench --json`` run drops below its baseline.

Usage::

    siteopt bench --backend cupy --scenarios 200000 --json > bench.json
    python benchmarks/check_gpu_baseline.py bench.json                    # exit 1 on a drop
    python benchmarks/check_gpu_baseline.py bench.json --record           # update the baseline

benchmarks/gpu-baseline.json holds one entry per GPU model (the name CUDA reports),
with the valuation's cell-months per second on CuPy and each fused kernel's cells per
second. A run is compared only with the entry of its own GPU model: a figure more than
``--tolerance`` (default 20%) below the baseline fails; a GPU with no entry passes with
a warning that says how to record one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BASELINE = Path(__file__).resolve().parent / "gpu-baseline.json"


def figures(bench: dict) -> dict[str, float]:
    """Throughputs of one bench run, by name: valuation and one per fused kernel [1/s]."""
    out = {
        f"valuation_{row['backend']}_cell_months_per_s": row["cell_months_per_s"]
        for row in bench["results"]
    }
    for k in bench.get("kernels", []):
        out[f"{k['kernel']}_cells_per_s"] = k["cells"] / k["seconds"]
    return out


def compare(bench: dict, baseline: dict, tolerance: float) -> tuple[list[str], list[str]]:
    """(failures, report lines) of ``bench`` against the entry for its GPU."""
    entry = baseline.get("gpus", {}).get(bench["gpu"])
    if entry is None:
        return [], [f"::warning::no GPU baseline for {bench['gpu']!r}; record one with --record"]
    failures, lines = [], []
    for name, value in figures(bench).items():
        base = entry["figures"].get(name)
        if base is None:
            lines.append(f"{name}: {value:.4g} (no baseline)")
            continue
        ratio = value / base
        line = f"{name}: {value:.4g} vs baseline {base:.4g} ({ratio:.0%})"
        lines.append(line)
        if ratio < 1.0 - tolerance:
            failures.append(line)
    return failures, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench_json", type=Path)
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--tolerance", type=float, default=0.20)
    parser.add_argument("--record", action="store_true", help="write this run as the baseline")
    args = parser.parse_args(argv)
    bench = json.loads(args.bench_json.read_text())
    if not any(row["backend"] == "cupy" for row in bench["results"]):
        print(f"error: the bench run did not time CuPy ({bench['gpu']})", file=sys.stderr)
        return 2
    baseline = json.loads(args.baseline.read_text()) if args.baseline.exists() else {"gpus": {}}
    if args.record:
        baseline.setdefault("gpus", {})[bench["gpu"]] = {
            "ceilings": bench["ceilings"],
            "figures": figures(bench),
        }
        args.baseline.write_text(json.dumps(baseline, indent=2, sort_keys=True) + "\n")
        print(f"recorded the baseline of {bench['gpu']} in {args.baseline}")
        return 0
    failures, lines = compare(bench, baseline, args.tolerance)
    print("\n".join(lines))
    for line in failures:
        print(f"::error::throughput more than {args.tolerance:.0%} below baseline: {line}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
