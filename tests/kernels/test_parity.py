"""The array backend under test (``xp``: numpy, and cupy where a device answers) against
the numpy reference.

Tolerances: the uniforms are integer arithmetic, so bit-identical on every backend.
Everything after them goes through exp/log/cos, which CUDA does not round correctly,
so results agree to a few ulps per operation; over 120-180 months of cumulative sums
and discounting that stays far below rtol 1e-9 (float64 throughout). Quantiles and
CVaR are compared within one histogram bin (the bins come from the moments, which
may differ in the last bits). The numpy reference is float64 throughout, with int64
scenario, delay and month indices; these tests hold every backend to the same dtypes.
On the numpy parameter the comparisons are trivially exact but the dtype and
array-type checks still run.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

from siteopt.app.params import kernel_inputs
from siteopt.app.valuation import value_options
from siteopt.kernels.hosting import exit_months, site_draws
from siteopt.kernels.market import horizon_calendar, market_paths
from siteopt.kernels.power import power_paths
from siteopt.kernels.rng import STREAM_BTC, STREAM_EXIT, entity_stream, power_stream, uniforms4
from siteopt.kernels.sites import chunk_market, site_chunk, site_options
from siteopt.model.load import load_scenario

from .helpers import SCENARIO_FILES

RTOL = 1e-9
N = 300


def host(a: Any) -> np.ndarray:
    return a.get() if hasattr(a, "get") else np.asarray(a)


def on_backend(a: Any, xp: ModuleType) -> None:
    """The array lives on the backend under test (a CuPy array on the GPU path)."""
    assert type(a) is xp.ndarray, f"{type(a)} is not {xp.__name__}.ndarray"


def close(got: Any, want: np.ndarray, rtol: float = RTOL) -> None:
    """|got - want| <= rtol x the array's largest magnitude (values may cross zero)."""
    scale = max(float(np.max(np.abs(want))), 1e-300)
    np.testing.assert_allclose(host(got), want, rtol=0, atol=rtol * scale)


@pytest.fixture(scope="module")
def texas():
    return load_scenario(SCENARIO_FILES["texas"])


def test_uniforms_are_bit_identical(xp):
    idx = xp.arange(10**9, 10**9 + N, dtype=xp.int64)[:, None]  # high scenario indices too
    month = xp.arange(120, dtype=xp.int64)[None, :]
    for stream in (STREAM_BTC, power_stream(1), entity_stream(STREAM_EXIT, 7)):
        got = uniforms4(2**40 + 3, idx, month, stream, xp=xp)
        want = uniforms4(2**40 + 3, host(idx), host(month), stream, xp=np)
        for g, w in zip(got, want, strict=True):
            on_backend(g, xp)
            assert g.dtype == np.float64
            np.testing.assert_array_equal(host(g), w)


def test_market_paths_parity(xp, texas):
    got = market_paths(kernel_inputs(texas), xp.arange(N, dtype=xp.int64), xp=xp)
    want = market_paths(kernel_inputs(texas), np.arange(N, dtype=np.int64), xp=np)
    for name in ("btc_usd", "hashrate_eh", "reward_btc", "hashprice"):
        g = getattr(got, name)
        on_backend(g, xp)
        assert g.dtype == np.float64 and g.shape == (N, texas.months)
        close(g, getattr(want, name))


def test_power_paths_parity(xp, texas):
    cal = horizon_calendar(kernel_inputs(texas))
    for m in range(len(texas.power_markets)):
        got = power_paths(kernel_inputs(texas), m, cal, xp.arange(N, dtype=xp.int64), xp=xp)
        want = power_paths(kernel_inputs(texas), m, cal, np.arange(N, dtype=np.int64), xp=np)
        on_backend(got.level, xp)
        assert got.level.dtype == np.float64
        close(got.level, want.level)
        # 4CP outcomes compare a bit-identical uniform with a constant: exactly equal
        np.testing.assert_array_equal(host(got.fourcp_avoided), want.fourcp_avoided)


def test_site_draws_and_exits_parity(xp, texas):
    for i in (0, 1, 6):
        got = site_draws(kernel_inputs(texas), i, xp.arange(N, dtype=xp.int64), xp=xp)
        want = site_draws(kernel_inputs(texas), i, np.arange(N, dtype=np.int64), xp=np)
        on_backend(got.delay_months, xp)
        assert got.delay_months.dtype == np.int64
        np.testing.assert_array_equal(host(got.delay_months), want.delay_months)
        close(got.overrun, want.overrun)
    for c in range(len(texas.contracts)):
        got = exit_months(kernel_inputs(texas), 1, c, xp.arange(N, dtype=xp.int64), xp=xp)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(
            host(got), exit_months(kernel_inputs(texas), 1, c, np.arange(N, dtype=np.int64), xp=np)
        )


def test_site_chunk_parity(xp, texas):
    ctx = chunk_market(kernel_inputs(texas), xp.arange(N, dtype=xp.int64), xp=xp)
    ref = chunk_market(kernel_inputs(texas), np.arange(N, dtype=np.int64), xp=np)
    assert ctx.scenarios.dtype == np.int64
    for i in range(len(texas.sites)):
        opts = site_options(kernel_inputs(texas), i)
        got = site_chunk(kernel_inputs(texas), i, opts, ctx, xp=xp)
        want = site_chunk(kernel_inputs(texas), i, opts, ref, xp=np)
        on_backend(got.npv, xp)
        assert got.npv.dtype == np.float64 and got.npv.shape == (N, len(opts))
        for j in range(len(opts)):
            close(got.npv[:, j], want.npv[:, j])
        for key, ev in got.events.items():
            assert ev.rent_start.dtype == np.int64
            np.testing.assert_array_equal(host(ev.rent_start), want.events[key].rent_start)
            np.testing.assert_array_equal(host(ev.to_mining), want.events[key].to_mining)


def test_value_options_parity(xp, texas):
    backend = "numpy" if xp is np else "cupy"
    got = value_options(texas, backend=backend, scenarios=N, chunk_size=128)
    want = value_options(texas, backend="numpy", scenarios=N, chunk_size=128)
    assert got.backend == backend
    a, b = got.options.table, want.options.table
    # the boundary: what leaves the valuation is numpy, whatever the backend
    assert (
        type(got.options.risk_npv_usd) is np.ndarray
        and got.options.risk_npv_usd.dtype == np.float64
    )
    assert a["expected_npv_usd"].dtype == np.float64
    scale = np.maximum(np.abs(b["expected_npv_usd"]), b["std_npv_usd"]).to_numpy() + 1.0
    for col in ("expected_npv_usd", "std_npv_usd"):
        assert np.all(np.abs(a[col] - b[col]).to_numpy() <= RTOL * scale), col
    width = np.maximum(got.quantile_error_usd, want.quantile_error_usd) * (1 + 1e-9)
    for col in ("p5_npv_usd", "p50_npv_usd", "p95_npv_usd", "cvar_usd"):
        assert np.all(np.abs(a[col] - b[col]).to_numpy() <= width), col
    close(got.options.risk_npv_usd, want.options.risk_npv_usd)
    for col in a.columns:
        if col.startswith(("ai_mw_online_", "mining_eh_", "capex_")):
            np.testing.assert_allclose(a[col], b[col], rtol=RTOL, atol=1e-9)


def test_reference_is_float64_throughout(texas):
    """The numpy reference: float64 money and prices, int64 indices."""
    idx = np.arange(50, dtype=np.int64)
    ctx = chunk_market(kernel_inputs(texas), idx, xp=np)
    assert ctx.market.hashprice.dtype == np.float64
    assert all(p.level.dtype == np.float64 for p in ctx.power)
    assert ctx.cal.discount.dtype == np.float64
    sc = site_chunk(kernel_inputs(texas), 1, site_options(kernel_inputs(texas), 1), ctx, xp=np)
    assert sc.npv.dtype == np.float64
    assert all(
        ev.contract_end.dtype == np.int64 and ev.mining_from.dtype == np.int64
        for ev in sc.events.values()
    )
    with pytest.raises(TypeError, match="integer"):
        market_paths(kernel_inputs(texas), idx.astype(np.float64), xp=np)


def test_grouped_means_parity(xp, texas):
    """The conditional means by market state (solve --staged): the states come from the
    reference market on the host, so every backend groups the same scenarios."""
    from siteopt.app.staged import staged_states
    from siteopt.model.load import with_simulation

    grouping = staged_states(with_simulation(texas, N, None), 2).grouping
    backend = "numpy" if xp is np else "cupy"
    got = value_options(texas, backend=backend, scenarios=N, grouping=grouping)
    want = value_options(texas, backend="numpy", scenarios=N, grouping=grouping)
    assert got.backend == backend
    close(got.kernel.group_npv_usd, want.kernel.group_npv_usd)
