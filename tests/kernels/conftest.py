"""Fixtures for the valuation-kernel tests: the ``xp`` array-module fixture."""

from types import ModuleType

import numpy as np
import pytest

from siteopt.kernels.backend import cupy_usable

CUPY_OK, CUPY_REASON = cupy_usable()


@pytest.fixture(
    params=[
        "numpy",
        pytest.param(
            "cupy",
            marks=[pytest.mark.gpu, pytest.mark.skipif(not CUPY_OK, reason=CUPY_REASON)],
        ),
    ]
)
def xp(request: pytest.FixtureRequest) -> ModuleType:
    """The array module under test; the CuPy case shows as skipped without a GPU."""
    if request.param == "cupy":
        import cupy

        return cupy
    return np
