"""``--engine dask``: the same plan and numbers as the local engine, on a real cluster of
worker processes; a worker killed mid-run changes nothing; missing ``distributed`` and
bad scheduler addresses exit 2.

Tolerance: the Dask engine's pass-1 moments replay the local loop's block sums in the
same order (bit-identical), its histogram counts are whole numbers, and only the per-bin
sums (CVaR) add chunk partials in another order; 1e-9 relative is the brief's bound.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from siteopt.app import engines as dask_engine
from siteopt.app import pipeline
from siteopt.app.pipeline import SolveSettings
from siteopt.app.valuation import plan_npv_samples, value_options
from siteopt.kernels import valuation
from siteopt.kernels.reduce import BLOCK
from siteopt.kernels.valuation import ValuationCache
from siteopt.model.load import apply_overrides, load_scenario, with_simulation
from siteopt.output.summary import summary_of

from .support import REPO

try:
    import distributed
except ImportError:  # the dask extra is not installed
    distributed = None

needs_dask = pytest.mark.skipif(
    distributed is None,
    reason=f"distributed is not installed; {dask_engine.INSTALL_HINT} to run the Dask tests",
)
RTOL = 1e-9
N = 3_000  # with 1,024-scenario chunks: three tasks a pass
TEXAS = REPO / "scenarios" / "texas.yaml"
HYDRO = REPO / "scenarios" / "stranded-hydro.yaml"
NUMBERS = [
    "expected_npv_usd", "std_npv_usd", "p5_npv_usd", "p50_npv_usd", "p95_npv_usd", "cvar_usd",
]  # fmt: skip


@pytest.fixture(scope="session")
def cluster():
    """Two single-threaded worker processes, shared by the tests of this module."""
    if distributed is None:
        pytest.skip("distributed is not installed")
    cluster = dask_engine.start_local_cluster(2)
    yield cluster
    dask_engine.close_all()  # the CLI's clients of this cluster first
    cluster.close()


@pytest.fixture(scope="session")
def client(cluster):
    with distributed.Client(cluster, set_as_default=False) as client:
        yield client


@pytest.fixture(scope="module")
def scenarios():
    """texas (516 options) and stranded-hydro (14), each with its local valuation."""
    out = {}
    for name, path in (("texas", TEXAS), ("stranded-hydro", HYDRO)):
        scenario = with_simulation(load_scenario(path), N, None)
        out[name] = (scenario, value_options(scenario, backend="numpy", chunk_size=BLOCK))
    return out


def _assert_tables_close(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    other = [c for c in want.columns if c not in NUMBERS]
    pd.testing.assert_frame_equal(got[other], want[other], check_exact=True)
    for column in NUMBERS:
        np.testing.assert_allclose(got[column], want[column], rtol=RTOL, atol=0, err_msg=column)


# --------------------------------------------------------------------------- the valuation


@needs_dask
@pytest.mark.parametrize(
    ("name", "recompute_pass_two"), [("texas", False), ("stranded-hydro", True)]
)
def test_valuation_on_dask_equals_local(name, recompute_pass_two, scenarios, client, monkeypatch):
    from siteopt.kernels.dask_chunks import DaskChunks

    scenario, want = scenarios[name]
    if recompute_pass_two:  # NPVs not kept on the workers: pass 2 recomputes each chunk
        monkeypatch.setattr(valuation, "PASS_CACHE_BYTES", 0)
    calls = []
    got = value_options(
        scenario,
        backend="numpy",
        chunk_size=1_000,  # rounded up to whole reduction blocks
        executor=DaskChunks(client),
        progress=lambda *a: calls.append(a),
    )
    assert got.chunk_size == BLOCK
    _assert_tables_close(got.options.table, want.options.table)
    for column in ("expected_npv_usd", "std_npv_usd"):  # pass 1 replays the block sums
        np.testing.assert_array_equal(got.options.table[column], want.options.table[column])
    np.testing.assert_array_equal(got.options.risk_npv_usd, want.options.risk_npv_usd)
    np.testing.assert_array_equal(got.quantile_error_usd, want.quantile_error_usd)
    for stage in ("valuation", "quantiles"):  # one call per finished task, up to N
        done = [d for s, d, total in calls if s == stage and total == N]
        assert len(done) == 3 and sorted(done) == done and done[-1] == N


@needs_dask
def test_one_two_pass_reduction_for_both_engines(scenarios, client, monkeypatch):
    """The passes are written once: with the same chunks and pass 2 recomputing them, the
    two engines add the same parts in the same tree, so every number is bit-identical."""
    from siteopt.kernels.dask_chunks import DaskChunks

    scenario, _ = scenarios["stranded-hydro"]
    monkeypatch.setattr(valuation, "PASS_CACHE_BYTES", 0)
    local = value_options(scenario, backend="numpy", chunk_size=BLOCK)
    dask = value_options(scenario, backend="numpy", chunk_size=BLOCK, executor=DaskChunks(client))
    pd.testing.assert_frame_equal(dask.options.table, local.options.table, check_exact=True)
    np.testing.assert_array_equal(dask.options.risk_npv_usd, local.options.risk_npv_usd)


@needs_dask
def test_grouped_means_on_dask_equal_local(scenarios, client):
    """The market states' conditional means (solve --staged) reduce by the same blocks in
    the same order on the workers: bit-identical to the local run."""
    from siteopt.app.staged import staged_states
    from siteopt.kernels.dask_chunks import DaskChunks

    scenario, _ = scenarios["texas"]
    grouping = staged_states(scenario, 3).grouping
    local = value_options(scenario, backend="numpy", chunk_size=BLOCK, grouping=grouping)
    dask = value_options(
        scenario,
        backend="numpy",
        chunk_size=BLOCK,
        grouping=grouping,
        executor=DaskChunks(client),
    )
    assert local.kernel.group_npv_usd.shape == (9, len(local.options.table))
    np.testing.assert_array_equal(dask.kernel.group_npv_usd, local.kernel.group_npv_usd)


@needs_dask
def test_the_summation_tree_is_the_local_one(client):
    """DaskChunks adds on the workers in the order LocalChunks adds here."""
    from siteopt.kernels.chunks import ChunkJob, LocalChunks
    from siteopt.kernels.dask_chunks import DaskChunks

    def join(a, b):
        return f"({a}+{b})"

    for n in (1, 2, 3, 5, 6, 7, 11):
        jobs = [ChunkJob(None, {}, (), "numpy", k, k + 1) for k in range(n)]
        sums = []
        for executor in (LocalChunks(), DaskChunks(client)):
            handles = [executor.submit(str, k) for k in range(n)]
            sums.append(executor.total(handles, join, jobs, "test", None))
        assert sums[0] == sums[1], n


@needs_dask
def test_the_cache_works_on_dask(scenarios, client):
    from siteopt.kernels.dask_chunks import DaskChunks

    hydro, alone = scenarios["stranded-hydro"]
    executor = DaskChunks(client)
    cache = ValuationCache()
    first = value_options(hydro, backend="numpy", executor=executor, cache=cache)
    again = value_options(hydro, backend="numpy", executor=executor, cache=cache)
    assert cache.hits == len(hydro.sites) and again.timings_s["sites_valued"] == 0
    pd.testing.assert_frame_equal(again.options.table, first.options.table, check_exact=True)
    _assert_tables_close(first.options.table, alone.options.table)


@needs_dask
def test_plan_samples_on_dask_equal_local(scenarios, client):
    from siteopt.kernels.dask_chunks import DaskChunks

    texas, texas_local = scenarios["texas"]
    plans = {
        "last": [opts[-1] for opts in texas_local.site_options],
        "hash": [opts[0] for opts in texas_local.site_options],
    }
    want = plan_npv_samples(texas, plans, backend="numpy", chunk_size=700)
    got = plan_npv_samples(
        texas, plans, backend="numpy", chunk_size=BLOCK, executor=DaskChunks(client)
    )
    for name in plans:  # each scenario is computed alone: the same numbers anywhere
        np.testing.assert_array_equal(got[name], want[name])


# --------------------------------------------------------------------------- the commands


def _solve(run_cli, path: Path, out: Path, *extra: str) -> tuple[dict, pd.DataFrame]:
    run = run_cli(
        "solve", str(path), "--scenarios", str(N), "--backend", "numpy", "--out", str(out),
        "--json", "--no-report", *extra,
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    return json.loads(run.stdout), pd.read_csv(out / "options.csv")


@needs_dask
@pytest.mark.parametrize(
    "path",
    [
        # two texas MILPs take ~20 s; test_valuation_on_dask_equals_local shows the
        # MILP's input (expected NPVs, risk sample) is bit-identical in make test
        pytest.param(TEXAS, id="texas", marks=pytest.mark.slow),
        pytest.param(HYDRO, id="stranded-hydro"),
    ],
)
def test_solve_on_dask_gives_the_local_plan(path, run_cli, cluster, tmp_path):
    local, local_options = _solve(run_cli, path, tmp_path / "local")
    dask, dask_options = _solve(
        run_cli, path, tmp_path / "dask", "--engine", "dask", "--scheduler",
        cluster.scheduler_address,
    )  # fmt: skip
    assert (local["engine"], dask["engine"]) == ("local", "dask")
    _assert_tables_close(dask_options, local_options)
    for got, want in zip(dask["sites"], local["sites"], strict=True):
        assert {k: got[k] for k in ("name", "ai_it_mw", "build_year", "contract")} == {
            k: want[k] for k in ("name", "ai_it_mw", "build_year", "contract")
        }
        assert got["expected_npv_usd"] == pytest.approx(want["expected_npv_usd"], rel=RTOL)
        assert got["cvar_usd"] == pytest.approx(want["cvar_usd"], rel=RTOL)
    for key in ("expected_npv_usd", "cvar_usd", "p5_npv_usd", "p50_npv_usd", "p95_npv_usd"):
        assert dask[key] == pytest.approx(local[key], rel=RTOL), key
    for name in ("all_mining", "max_ai"):
        for key in ("expected_npv_usd", "cvar_usd"):
            assert dask["baselines"][name][key] == pytest.approx(
                local["baselines"][name][key], rel=RTOL
            ), (name, key)


HYDRO_PARAM = "contracts.regional-neocloud.price_usd_kw_month"


@needs_dask
def test_sweep_points_run_as_tasks_and_equal_local_solves(cluster):
    from siteopt.app.sweep import sweep

    hydro = with_simulation(load_scenario(HYDRO), 500, None)
    settings = SolveSettings(backend="numpy")
    on_dask = replace_engine(settings, cluster)
    calls = []
    result = sweep(hydro, HYDRO_PARAM, ["90", "140"], on_dask, lambda *a: calls.append(a))
    assert calls[-1] == ("sweep", 2, 2)
    for point in result.points:
        alone = pipeline.solve(apply_overrides(hydro, [f"{HYDRO_PARAM}={point.value}"]), settings)
        assert point.outcome.rows == alone.rows
        assert point.sites_valued == len(hydro.sites) and not point.warm_start
        assert summary_of(point.outcome)["engine"] == "dask"
        for key in ("expected_npv_usd", "cvar_usd", "p5_npv_usd", "p95_npv_usd", "sites"):
            assert summary_of(point.outcome)[key] == summary_of(alone)[key], key


@needs_dask
def test_whatif_on_dask_equals_local(cluster):
    from siteopt.app.whatif import payload, whatif

    hydro = with_simulation(load_scenario(HYDRO), 500, None)
    settings = SolveSettings(backend="numpy")
    change = [f"{HYDRO_PARAM}=140"]
    local = whatif(hydro, change, settings)
    on_dask = whatif(hydro, change, replace_engine(settings, cluster))
    assert payload(on_dask) == payload(local)  # incl. sites_revalued, from the site keys
    assert summary_of(on_dask.changed)["engine"] == "dask"


@needs_dask
def test_breakeven_on_dask_equals_local(cluster):
    from siteopt.app.breakeven import breakeven

    hydro = load_scenario(HYDRO)
    site, contract = "alto-parana", "regional-neocloud"
    local = breakeven(hydro, site, contract, backend="numpy", scenarios=300)
    remote = breakeven(
        hydro, site, contract, backend="numpy", scenarios=300, engine="dask",
        scheduler=cluster.scheduler_address,
    )  # fmt: skip
    assert remote == local


def replace_engine(settings: SolveSettings, cluster) -> SolveSettings:
    from dataclasses import replace

    return replace(settings, engine="dask", scheduler=cluster.scheduler_address)


# --------------------------------------------------------------------------- exit 2


def test_without_distributed_dask_exits_2_with_the_pip_command(run_cli, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails
    run = run_cli("solve", str(HYDRO), "--engine", "dask", "--out", str(tmp_path), "--quiet")
    assert run.exit_code == 2
    assert "pip install 'siteopt[dask]'" in run.stderr
    assert "Traceback" not in run.output and not (tmp_path / "summary.json").exists()


@needs_dask
@pytest.mark.parametrize(
    ("address", "needle"),
    [
        ("tcp://127.0.0.1:1", "no Dask scheduler answered within 1 s"),
        ("not an address", "not a scheduler address"),
    ],
)
def test_a_bad_scheduler_address_exits_2(run_cli, monkeypatch, tmp_path, address, needle):
    monkeypatch.setattr(dask_engine, "CONNECT_TIMEOUT_S", 1.0)
    run = run_cli(
        "whatif", str(HYDRO), "--set", f"{HYDRO_PARAM}=140", "--engine", "dask",
        "--scheduler", address, "--out", str(tmp_path), "--quiet",
    )  # fmt: skip
    assert run.exit_code == 2, run.output
    assert run.stderr.startswith(f"--scheduler {address}: ") and needle in run.stderr
    assert "Traceback" not in run.output


def test_a_scheduler_without_the_dask_engine_exits_2(run_cli, tmp_path):
    run = run_cli("solve", str(HYDRO), "--scheduler", "tcp://127.0.0.1:8786", "--quiet")
    assert run.exit_code == 2 and "--scheduler tcp://127.0.0.1:8786 needs --engine dask" in (
        run.stderr
    )


@needs_dask
def test_a_killed_worker_does_not_change_the_result(scenarios, client):
    """Dask reruns the lost worker's tasks, and recomputes the NPVs it kept for pass 2,
    elsewhere; every task is a pure function of its chunk, so the numbers do not move.
    (Last in the module: the nanny restarts the worker, and it starts cold.)"""
    from siteopt.kernels.dask_chunks import DaskChunks

    scenario, want = scenarios["stranded-hydro"]
    victim = max(client.run(os.getpid).values())
    killed = []

    def progress(stage: str, done: int, total: int) -> None:
        if not killed:  # a pass-1 task is done; pass 2 still needs the victim's NPVs
            os.kill(victim, signal.SIGKILL)
            killed.append((stage, done))

    got = value_options(
        scenario, backend="numpy", chunk_size=BLOCK, executor=DaskChunks(client), progress=progress
    )
    assert len(killed) == 1 and killed[0][0] == "valuation" and killed[0][1] < N
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker
    assert victim not in client.run(os.getpid).values()
    _assert_tables_close(got.options.table, want.options.table)
    np.testing.assert_array_equal(got.options.risk_npv_usd, want.options.risk_npv_usd)
