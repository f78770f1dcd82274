"""A CUDA out-of-memory error in the local chunk loop halves the chunk and the run goes on,
with bit-identical results (the reductions run over fixed blocks, not over chunks).

NumPy never runs out of memory this way, so the error is faked: ``evaluate_chunk`` (and
``plan_chunk``) raise once on a chunk above a size, and ``Backend.is_out_of_memory`` is
told to recognise the fake.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from siteopt.app.params import kernel_inputs
from siteopt.app.valuation import plan_npv_samples, value_options
from siteopt.kernels import valuation
from siteopt.kernels.backend import Backend
from siteopt.model.load import load_scenario, with_simulation

from .helpers import SCENARIO_FILES

N = 2_100  # three reduction blocks
CHUNK = 1_300


class FakeOutOfMemory(RuntimeError):
    """Stands in for cupy.cuda.memory.OutOfMemoryError."""


@pytest.fixture(scope="module")
def hydro():
    return with_simulation(load_scenario(SCENARIO_FILES["stranded-hydro"]), N, None)


@pytest.fixture
def fake_oom(monkeypatch):
    """Make chunks larger than ``limit`` fail once each with a fake OOM; returns the log."""
    monkeypatch.setattr(
        Backend, "is_out_of_memory", lambda self, exc: isinstance(exc, FakeOutOfMemory)
    )
    seen: list[tuple[int, int]] = []

    def install(name: str, limit: int, times: int = 1) -> list[tuple[int, int]]:
        real = getattr(valuation, name)
        left = [times]

        def failing(*args, **kwargs):
            lo, hi = args[-2], args[-1]
            seen.append((lo, hi))
            if hi - lo > limit and left[0] > 0:
                left[0] -= 1
                raise FakeOutOfMemory(f"out of memory allocating a chunk of {hi - lo}")
            return real(*args, **kwargs)

        monkeypatch.setattr(valuation, name, failing)
        return seen

    return install


@pytest.mark.parametrize("recompute_pass_two", [False, True])
def test_oom_halves_the_chunk_and_keeps_the_numbers(
    hydro, fake_oom, monkeypatch, recompute_pass_two
):
    want = value_options(hydro, backend="numpy", chunk_size=CHUNK)
    if recompute_pass_two:  # pass 2 streams the chunks again, at the halved size
        monkeypatch.setattr(valuation, "PASS_CACHE_BYTES", 0)
    seen = fake_oom("evaluate_chunk", limit=CHUNK - 1)
    got = value_options(hydro, backend="numpy", chunk_size=CHUNK)
    assert seen[0] == (0, CHUNK) and seen[1] == (0, CHUNK // 2)  # failed, retried at half
    assert got.chunk_size == CHUNK // 2
    assert all(hi - lo <= CHUNK // 2 for lo, hi in seen[1:])
    pd.testing.assert_frame_equal(got.options.table, want.options.table, check_exact=True)
    np.testing.assert_array_equal(got.options.risk_npv_usd, want.options.risk_npv_usd)
    np.testing.assert_array_equal(got.quantile_error_usd, want.quantile_error_usd)


def test_oom_halves_again_until_the_chunk_fits(hydro, fake_oom):
    want = value_options(hydro, backend="numpy", chunk_size=CHUNK)
    fake_oom("evaluate_chunk", limit=CHUNK // 4, times=3)  # 1300 and 650 fail, 325 fits
    got = value_options(hydro, backend="numpy", chunk_size=CHUNK)
    assert got.chunk_size == CHUNK // 4
    pd.testing.assert_frame_equal(got.options.table, want.options.table, check_exact=True)


def test_oom_in_plan_samples_halves_the_chunk(hydro, fake_oom):
    plans = {
        "hash": [
            valuation.site_options(kernel_inputs(hydro), i)[0] for i in range(len(hydro.sites))
        ]
    }
    want = plan_npv_samples(hydro, plans, backend="numpy", chunk_size=CHUNK)
    seen = fake_oom("plan_chunk", limit=CHUNK - 1)
    got = plan_npv_samples(hydro, plans, backend="numpy", chunk_size=CHUNK)
    assert (0, CHUNK // 2) in seen
    np.testing.assert_array_equal(got["hash"], want["hash"])


def test_other_errors_are_raised_at_once(hydro, monkeypatch):
    calls = []

    def broken(*args, **kwargs):
        calls.append(args[-2:])
        raise ValueError("not a memory problem")

    monkeypatch.setattr(valuation, "evaluate_chunk", broken)
    with pytest.raises(ValueError, match="not a memory problem"):
        value_options(hydro, backend="numpy", scenarios=10, chunk_size=4)
    assert calls == [(0, 4)]


def test_oom_at_one_scenario_is_raised(hydro, fake_oom):
    seen = fake_oom("evaluate_chunk", limit=0, times=10**6)  # even one scenario is too many
    with pytest.raises(FakeOutOfMemory):
        value_options(hydro, backend="numpy", scenarios=10, chunk_size=4)
    assert [hi - lo for lo, hi in seen] == [4, 2, 1]


def test_numpy_backend_never_calls_memory_errors_oom():
    assert not Backend("numpy", np).is_out_of_memory(MemoryError())
