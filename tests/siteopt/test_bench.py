"""``siteopt bench`` output and the nightly GPU baseline check (no GPU needed)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from siteopt.app.bench import BenchResult, BenchRun, bench_lines, bench_payload

from .support import REPO

spec = importlib.util.spec_from_file_location(
    "check_gpu_baseline", REPO / "benchmarks" / "check_gpu_baseline.py"
)
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)

GPU = "NVIDIA H100 80GB HBM3"


def gpu_run(cupy_seconds=0.5, site_seconds=0.002) -> BenchRun:
    """A bench run as a GPU machine would produce it (figures made up, shapes real)."""
    cells = 100_000 * 120
    kernel = {
        "kernel": "siteopt_site", "cells": cells, "seconds": site_seconds,
        "gflops": cells * 35 / site_seconds / 1e9, "gbs": cells * 72 / site_seconds / 1e9,
        "fp32_fraction": 0.004, "fp64_fraction": 0.008, "bandwidth_fraction": 0.13,
        "bound": "memory",
    }  # fmt: skip
    return BenchRun(
        [
            BenchResult("numpy", 20_000, 471, 120, 50.0),
            BenchResult("cupy", 20_000, 471, 120, cupy_seconds),
        ],
        GPU,
        {"gpu": GPU, "fp32_gflops": 60_000.0, "fp64_gflops": 30_000.0, "dram_gbs": 3000.0},
        [kernel],
    )  # fmt: skip


def test_payload_and_lines_report_ratio_and_fractions():
    payload = bench_payload(gpu_run())
    assert payload["cupy_over_numpy"] == pytest.approx(100.0)
    lines = bench_lines(payload)
    assert lines[2] == "cupy / numpy speed-up: 100.0x"
    assert "60.0 TFLOP/s FP32, 30.0 TFLOP/s FP64, 3000 GB/s" in lines[3]
    assert "13% of DRAM" in lines[4] and "memory-bound" in lines[4]
    json.dumps(payload)  # --json must serialise


def test_cpu_only_payload_says_why_cupy_was_not_timed():
    run = BenchRun([BenchResult("numpy", 100, 10, 120, 1.0)], "CuPy is not installed")
    lines = bench_lines(bench_payload(run))
    assert lines[-1] == "cupy: not timed (CuPy is not installed)"


def test_bench_runs_numpy_from_the_cli(run_cli):
    run = run_cli("bench", "--backend", "numpy", "--scenarios", "200", "--json")
    assert run.exit_code == 0, run.stderr
    payload = json.loads(run.stdout)
    assert [r["backend"] for r in payload["results"]] == ["numpy"]
    assert payload["results"][0]["cell_months_per_s"] > 0 and payload["kernels"] == []


def _baseline(tmp_path, run: BenchRun):
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(bench_payload(run)))
    base = tmp_path / "baseline.json"
    assert check.main([str(bench), "--baseline", str(base), "--record"]) == 0
    return base


def test_baseline_check_passes_within_20_percent_and_fails_beyond(tmp_path, capsys):
    base = _baseline(tmp_path, gpu_run())
    slower = tmp_path / "slower.json"
    slower.write_text(json.dumps(bench_payload(gpu_run(cupy_seconds=0.5 / 0.85))))
    assert check.main([str(slower), "--baseline", str(base)]) == 0
    slowest = tmp_path / "slowest.json"
    slowest.write_text(json.dumps(bench_payload(gpu_run(site_seconds=0.002 / 0.7))))
    assert check.main([str(slowest), "--baseline", str(base)]) == 1
    assert "::error::" in capsys.readouterr().out


def test_baseline_check_warns_for_an_unrecorded_gpu(tmp_path, capsys):
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(bench_payload(gpu_run())))
    empty = tmp_path / "empty.json"
    empty.write_text('{"gpus": {}}')
    assert check.main([str(bench), "--baseline", str(empty)]) == 0
    assert "::warning::no GPU baseline" in capsys.readouterr().out


def test_baseline_check_refuses_a_run_without_cupy(tmp_path):
    bench = tmp_path / "bench.json"
    bench.write_text(
        json.dumps(bench_payload(BenchRun([BenchResult("numpy", 1, 1, 1, 1.0)], "no")))
    )
    assert check.main([str(bench), "--baseline", str(tmp_path / "b.json")]) == 2


def test_bundled_baseline_file_is_valid():
    data = json.loads((REPO / "benchmarks" / "gpu-baseline.json").read_text())
    assert isinstance(data["gpus"], dict)
