"""A CUDA out-of-memory error in the local chunk loop halves the chunk and the run goes on,
with bit-identical results (the reductions run over fixed blocks, not over chunks).

The local executor cuts the scenarios into jobs of whole reduction blocks and evaluates
each job ``chunk_size`` scenarios at a time; its first task is scenario 0 alone (pass 1's
shift).

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
from siteopt.kernels import chunks, valuation
from siteopt.kernels.backend import Backend
from siteopt.model.load import load_scenario, with_simulation

from .helpers import SCENARIO_FILES

N = 2_100  # three reduction blocks
CHUNK = 2_048  # two: jobs [0, 2048) and [2048, 2100)


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

    def install(
        name: str, limit: int, times: int = 1, spare_first: bool = False
    ) -> list[tuple[int, int]]:
        real = getattr(chunks, name)
        left = [times]

        def failing(*args, **kwargs):
            lo, hi = args[-2], args[-1]
            seen.append((lo, hi))
            spared = spare_first and len(seen) == 1
            if hi - lo > limit and left[0] > 0 and not spared:
                left[0] -= 1
                raise FakeOutOfMemory(f"out of memory allocating a chunk of {hi - lo}")
            return real(*args, **kwargs)

        monkeypatch.setattr(chunks, name, failing)
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
    assert seen[0] == (0, 1)  # the shift
    assert seen[1] == (0, CHUNK) and seen[2] == (0, CHUNK // 2)  # failed, retried at half
    assert got.chunk_size == CHUNK // 2
    assert all(hi - lo <= CHUNK // 2 for lo, hi in seen[2:])
    assert (CHUNK // 2, CHUNK) in seen  # the job's second half, at the halved size
    pd.testing.assert_frame_equal(got.options.table, want.options.table, check_exact=True)
    np.testing.assert_array_equal(got.options.risk_npv_usd, want.options.risk_npv_usd)
    np.testing.assert_array_equal(got.quantile_error_usd, want.quantile_error_usd)


def test_oom_halves_again_until_the_chunk_fits(hydro, fake_oom):
    want = value_options(hydro, backend="numpy", chunk_size=CHUNK)
    fake_oom("evaluate_chunk", limit=CHUNK // 4, times=3)  # 2048 and 1024 fail, 512 fits
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

    monkeypatch.setattr(chunks, "evaluate_chunk", broken)
    with pytest.raises(ValueError, match="not a memory problem"):
        value_options(hydro, backend="numpy", scenarios=10, chunk_size=4)
    assert calls == [(0, 1)]  # the first task, not retried


def test_oom_at_one_scenario_is_raised(hydro, fake_oom):
    # after the shift, even one scenario is too many
    seen = fake_oom("evaluate_chunk", limit=0, times=10**6, spare_first=True)
    with pytest.raises(FakeOutOfMemory):
        value_options(hydro, backend="numpy", scenarios=10, chunk_size=4)
    assert [hi - lo for lo, hi in seen] == [1, 4, 2, 1]


def test_numpy_backend_never_calls_memory_errors_oom():
    assert not Backend("numpy", np).is_out_of_memory(MemoryError())
