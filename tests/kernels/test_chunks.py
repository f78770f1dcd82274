"""The local chunk executor: jobs of whole reduction blocks, tasks run once when needed,
and the pairwise summation tree the Dask executor also uses."""

from __future__ import annotations

import numpy as np
import pandas as pd

from siteopt.app.params import kernel_inputs
from siteopt.kernels.backend import select_backend
from siteopt.kernels.chunks import ChunkJob, LocalChunks
from siteopt.kernels.reduce import BLOCK
from siteopt.model.load import load_scenario, with_simulation

from .helpers import SCENARIO_FILES


def _level_by_level(parts: list[str]) -> str:
    """((0 + 1) + (2 + 3)) + ...: pairs added level by level, an odd one carried up."""
    while len(parts) > 1:
        parts = [
            f"({parts[k]}+{parts[k + 1]})" if k + 1 < len(parts) else parts[k]
            for k in range(0, len(parts), 2)
        ]
    return parts[0]


def _recorder(seen: list[tuple]):
    return lambda *args: seen.append(args)


def test_the_local_total_adds_in_the_fixed_tree():
    for n in range(1, 40):
        executor = LocalChunks()
        jobs = [ChunkJob(None, {}, (), "numpy", k, k + 1) for k in range(n)]
        seen: list[tuple] = []
        total = executor.total(
            [executor.submit(str, k) for k in range(n)],
            lambda a, b: f"({a}+{b})",
            jobs,
            "sum",
            _recorder(seen),
        )
        assert total == _level_by_level([str(k) for k in range(n)]), n
        assert seen == [("sum", k + 1, n) for k in range(n)]


def test_tasks_run_once_and_only_when_needed():
    calls = []

    def task(x):
        calls.append(x)
        return x * 2

    executor = LocalChunks()
    first = executor.submit(task, 1)
    second = executor.submit(task, first)
    assert calls == []
    assert second.result() == 4 and first.result() == 2
    assert calls == [1, 2]


def test_jobs_are_whole_blocks_and_share_the_chunk_size():
    scenario = kernel_inputs(
        with_simulation(load_scenario(SCENARIO_FILES["stranded-hydro"]), 5_000, None)
    )
    executor = LocalChunks()
    jobs = executor.jobs(scenario, {}, (), select_backend("numpy"), 2_500)
    assert [(j.lo, j.hi) for j in jobs] == [
        (0, 2 * BLOCK),
        (2 * BLOCK, 4 * BLOCK),
        (4 * BLOCK, 5_000),
    ]
    assert all(j.sizes is executor.sizes for j in jobs) and executor.chunk_size == 2_500
    small = LocalChunks().jobs(scenario, {}, (), select_backend("numpy"), 300)
    assert [(j.hi - j.lo) for j in small] == [BLOCK] * 4 + [5_000 - 4 * BLOCK]


def _texas(n: int = 3_000):
    return kernel_inputs(with_simulation(load_scenario(SCENARIO_FILES["texas"]), n, None))


def test_threads_do_not_change_a_number():
    """The sites of a chunk on two threads, and the cash flows' chunks on two threads,
    give the numbers of one thread, bit for bit."""
    from siteopt.kernels.cashflows import expected_cashflows
    from siteopt.kernels.valuation import value_options

    scenario = _texas()
    one = value_options(scenario, backend="numpy", executor=LocalChunks(threads=1))
    two = value_options(scenario, backend="numpy", executor=LocalChunks(threads=2))
    for column, values in one.stats.items():
        np.testing.assert_array_equal(two.stats[column], values, err_msg=column)
    np.testing.assert_array_equal(two.risk_npv_usd, one.risk_npv_usd)
    plan = [opts[-1] for opts in one.site_options]
    pd.testing.assert_frame_equal(
        expected_cashflows(scenario, plan, chunk_size=700, threads=2),
        expected_cashflows(scenario, plan, chunk_size=700, threads=1),
        check_exact=True,
    )


def test_the_cash_flows_read_the_kept_paths_with_the_same_numbers():
    """Pass 1 keeps the market and power paths; the cash flows read their rows (across
    the valuation's chunk boundaries) instead of drawing them, with identical sums."""
    from siteopt.kernels.cashflows import expected_cashflows
    from siteopt.kernels.valuation import value_options

    scenario = _texas()
    valued = value_options(scenario, backend="numpy", chunk_size=BLOCK)
    assert [(m.lo, m.hi) for m in valued.markets] == [(0, 1024), (1024, 2048), (2048, 3000)]
    plan = [opts[-1] for opts in valued.site_options]
    markets = valued.take_markets()
    assert valued.markets == []  # handed over once
    drawn = expected_cashflows(scenario, plan, chunk_size=700)
    read = expected_cashflows(scenario, plan, chunk_size=700, markets=markets)
    pd.testing.assert_frame_equal(read, drawn, check_exact=True)


def test_no_paths_are_kept_when_they_do_not_fit(monkeypatch):
    from siteopt.kernels import valuation

    monkeypatch.setattr(valuation, "MARKET_CACHE_BYTES", 0)
    assert valuation.value_options(_texas(1_000), backend="numpy").markets == []
