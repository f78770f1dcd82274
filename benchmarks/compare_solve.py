"""Time one solve under two installs of siteopt, alternating, in one run: a ratio, not two
numbers from different moments of a shared, noisy machine.

    python benchmarks/compare_solve.py BEFORE_SITEOPT AFTER_SITEOPT [--scenario FILE]
        [--repeat 5] [--scenarios N] [--after-scenario FILE]

BEFORE_SITEOPT and AFTER_SITEOPT are ``siteopt`` console scripts (e.g. a worktree of an
earlier commit with its own venv, and this checkout's .venv/bin/siteopt). Each repeat runs
``solve --no-report --quiet`` once with each, in alternating order, and reads the run's
own ``timings_s.total`` from summary.json (the solve, without interpreter start-up); it
also checks that both wrote byte-identical plan.csv, options.csv and cashflows.csv.
``--after-scenario`` gives the after side a file of its own (a scenario that gained an
input the earlier install cannot read): the files then differ by design.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMPARED = ("plan.csv", "options.csv", "cashflows.csv")


def run_once(siteopt: str, scenario: Path, out: Path, scenarios: int | None) -> dict:
    """One solve; its summary.json's timings and the wall time of the process [s]."""
    args = [siteopt, "solve", str(scenario), "--out", str(out), "--no-report", "--quiet"]
    if scenarios:
        args += ["--scenarios", str(scenarios)]
    began = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    wall = time.perf_counter() - began
    timings = json.loads((out / "summary.json").read_text())["timings_s"]
    return {**timings, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--scenario", type=Path, default=REPO / "scenarios" / "texas.yaml")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scenarios", type=int, default=None)
    parser.add_argument("--after-scenario", type=Path, default=None)
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    files = {"before": args.scenario, "after": args.after_scenario or args.scenario}
    with tempfile.TemporaryDirectory() as tmp:
        outs = {name: Path(tmp) / name for name in runs}
        for k in range(args.repeat):
            order = ("before", "after") if k % 2 == 0 else ("after", "before")
            for name in order:
                runs[name].append(run_once(getattr(args, name), files[name], outs[name],
                                           args.scenarios))  # fmt: skip
        same = all(filecmp.cmp(outs["before"] / f, outs["after"] / f, shallow=False)
                   for f in COMPARED)  # fmt: skip
    names = " -> ".join(dict.fromkeys(f.name for f in files.values()))
    print(f"{names}, {args.repeat} alternating runs each; medians [s]:")
    for key in ("valuation", "milp", "total", "wall"):
        b = statistics.median(r[key] for r in runs["before"])
        a = statistics.median(r[key] for r in runs["after"])
        print(f"  {key:<10} before {b:7.2f}  after {a:7.2f}  after/before {a / b:5.2f}")
    print(f"  {', '.join(COMPARED)} byte-identical: {same}")


if __name__ == "__main__":
    main()
