"""What CuPy refuses that numpy allows, checked on the CPU.

CuPy's ``clip`` is ``a.clip(...)``: a plain Python number as its first argument raises
there while numpy takes it, so a GPU run would fail where every CPU test passes. These
tests run the fast path and the monthly reference with numpy's ``clip`` refusing what
CuPy's refuses.
"""

from __future__ import annotations

import numpy as np
import pytest

from siteopt.app.params import kernel_inputs
from siteopt.kernels.cashflows import option_npv
from siteopt.kernels.prefix import prefix, segment
from siteopt.kernels.sites import chunk_market, site_chunk, site_options
from siteopt.model.load import load_scenario

from .helpers import SCENARIO_FILES, random_one_site_ai

_NUMPY_CLIP = np.clip


def _clip_as_cupy(a, *args, **kwargs):
    if not isinstance(a, np.ndarray | np.generic):
        raise AttributeError(f"'{type(a).__name__}' object has no attribute 'clip' (as CuPy)")
    return _NUMPY_CLIP(a, *args, **kwargs)


@pytest.fixture
def cupy_clip(monkeypatch):
    monkeypatch.setattr(np, "clip", _clip_as_cupy)


def test_the_rule_refuses_what_cupy_refuses(cupy_clip):
    with pytest.raises(AttributeError):
        np.clip(0, 1, 2)


def test_a_segment_from_a_plain_int(cupy_clip):
    table = prefix(np.arange(1.0, 7.0)[None, :].repeat(2, axis=0), xp=np)
    lo, hi = np.array([1, 0]), np.array([4, 6])
    got = segment(table, lo, hi, 0, np.array([3, 6]), xp=np)
    # months [1, 3) of 1..6 and months [0, 6)
    np.testing.assert_array_equal(got, [2.0 + 3.0, 21.0])


@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param(lambda: load_scenario(SCENARIO_FILES["texas"]), id="texas"),
        pytest.param(
            lambda: random_one_site_ai(
                **{
                    "tax.losses": "carry_forward",
                    "tax.property_rate": 0.02,
                    "financing.debt.non_recourse": True,
                    "financing.debt.amortization": "bullet",
                    "financing.debt.term_years": 1.0,
                    "financing.debt.refinance": True,
                    "financing.debt.loan_to_cost": 0.8,
                }
            ),
            id="refinanced-bullet-carry-forward",
        ),
    ],
)
def test_every_site_values_under_cupy_clip(scenario, cupy_clip):
    """Every site's options on the fast path, and a few on the monthly reference (the
    refinanced bullets of texas and of a non-recourse, loss-carrying case included)."""
    inputs = kernel_inputs(scenario())
    ctx = chunk_market(inputs, np.arange(8, dtype=np.int64), xp=np)
    for i in range(len(inputs.sites)):
        opts = site_options(inputs, i)
        fast = site_chunk(inputs, i, opts, ctx, xp=np, levers=True)
        assert np.all(np.isfinite(fast.npv))
        for opt in opts[-2:]:
            assert np.all(np.isfinite(option_npv(inputs, opt, ctx, xp=np)))
