"""An end-to-end solve of texas.yaml on CuPy against numpy (``make test-gpu``).

Both backends draw from the same Philox generator (kernels/rng.py and its CUDA twin),
so the scenarios are the same and the plan must be the same; the NPVs agree to the
kernels' float64 tolerance (tests/kernels/test_cuda.py: rtol 1e-9 of the scale), and
quantiles and CVaR to one histogram bin. The MILP reads the expected NPVs and the risk
sample, which agree to 1e-9, far inside the 0.01% MIP gap's reach on texas's margins
between plans, so the plan must be the same option for option.
"""

from __future__ import annotations

import csv
import json

import pytest

from siteopt.kernels.backend import cupy_usable

from .support import REPO

CUPY_OK, CUPY_REASON = cupy_usable()
N = "20000"
TEXAS = str(REPO / "scenarios" / "texas.yaml")

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not CUPY_OK, reason=CUPY_REASON)]


def _solve(run_cli, tmp_path, backend):
    out = tmp_path / backend
    run = run_cli("solve", TEXAS, "--scenarios", N, "--backend", backend, "--out", str(out),
                  "--no-report", "--quiet")  # fmt: skip
    assert run.exit_code == 0, run.stderr
    with open(out / "plan.csv", newline="") as fh:
        plan = list(csv.DictReader(fh))
    return plan, json.loads((out / "summary.json").read_text())


def test_texas_plan_on_cupy_equals_numpy(run_cli, tmp_path):
    cpu_plan, cpu = _solve(run_cli, tmp_path, "numpy")
    gpu_plan, gpu = _solve(run_cli, tmp_path, "cupy")
    assert gpu["backend"] == "cupy" and cpu["backend"] == "numpy"
    key = ("site", "ai_it_mw", "build_year", "contract")
    assert [[r[k] for k in key] for r in gpu_plan] == [[r[k] for k in key] for r in cpu_plan]
    scale = abs(cpu["expected_npv_usd"]) + 1.0
    assert abs(gpu["expected_npv_usd"] - cpu["expected_npv_usd"]) <= 1e-9 * scale
