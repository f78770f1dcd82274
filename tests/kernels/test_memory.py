"""Memory must not grow with the scenario count at a fixed chunk size (docs/model.md).

numpy registers its data buffers with tracemalloc, so the traced peak covers the chunk
arrays. What may legitimately grow with N is O(N) bookkeeping only; with 8x the
scenarios the peak may differ by the slack below (a few hundred kB of per-option
accumulators are independent of N anyway), while a chunk's arrays for this scenario
are ~MBs: storing all scenarios would multiply the peak by ~8.

What a solve keeps on purpose is capped: pass 1's NPVs (``PASS_CACHE_BYTES``) and its
market and power paths for the cash flows (``MARKET_CACHE_BYTES``, turned off here; its cap
is tested in test_chunks.py).
"""

from __future__ import annotations

import tracemalloc

import numpy as np

from siteopt.app.valuation import value_options
from siteopt.kernels import valuation

from .helpers import random_one_site_ai

CHUNK = 500
SLACK = 1.10  # peak(8,000) <= 1.10 x peak(1,000) + 256 kB


def _peak_bytes(scenarios: int) -> tuple[int, float]:
    s = random_one_site_ai(horizon_years=10)
    value_options(s, backend="numpy", scenarios=CHUNK, chunk_size=CHUNK)  # warm imports and caches
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = value_options(s, backend="numpy", scenarios=scenarios, chunk_size=CHUNK)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, float(result.options.table["expected_npv_usd"].iloc[0])


def test_peak_memory_does_not_grow_with_scenarios(monkeypatch):
    monkeypatch.setattr(valuation, "MARKET_CACHE_BYTES", 0)
    small, _ = _peak_bytes(1_000)
    large, mean = _peak_bytes(8_000)
    assert np.isfinite(mean)
    assert small > 1_000_000  # the chunk arrays are really traced (MBs per chunk of 500)
    assert large <= SLACK * small + 256 * 1024, (
        f"peak {large / 1e6:.1f} MB at 8,000 vs {small / 1e6:.1f} MB at 1,000"
    )
