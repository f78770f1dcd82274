"""The NumPy/CuPy switch: names, the auto fallback and its reason, round trips."""

import numpy as np
import pytest

from siteopt.kernels.backend import (
    Backend,
    BackendError,
    cupy_usable,
    get_xp,
    gpu_summary,
    select_backend,
)

CUPY_OK, CUPY_REASON = cupy_usable()


def test_numpy_backend_always_works():
    backend = select_backend("numpy")
    assert backend == Backend(name="numpy", xp=np)
    assert backend.describe() == "numpy"
    backend.synchronize()
    assert backend.free_memory_bytes() > 0


def test_cupy_usable_is_cached_and_explains():
    ok, reason = cupy_usable()
    assert cupy_usable() is cupy_usable()
    assert isinstance(ok, bool) and reason


def test_auto_falls_back_to_numpy_with_reason():
    backend = select_backend()
    if CUPY_OK:
        assert backend.name == "cupy" and backend.auto_reason == CUPY_REASON
        return
    assert backend.name == "numpy" and backend.xp is np
    assert backend.auto_reason == CUPY_REASON
    assert backend.describe() == f"numpy ({gpu_summary(CUPY_REASON)})"
    assert backend.describe(verbose=True) == f"numpy (auto: {CUPY_REASON})"


def test_gpu_summary_is_plain(monkeypatch):
    """No GPU: one plain phrase, never a CUDA error; a GPU without CuPy: how to install."""
    import siteopt.kernels.backend as backend_module

    monkeypatch.setattr(backend_module, "nvidia_gpu_present", lambda: False)
    for reason in (
        "CuPy is not installed (pip install 'siteopt[gpu]')",
        "no CUDA device answers: CUDARuntimeError: cudaErrorInsufficientDriver",
    ):
        assert gpu_summary(reason) == "no NVIDIA GPU found"
    monkeypatch.setattr(backend_module, "nvidia_gpu_present", lambda: True)
    assert "pip install" in gpu_summary("CuPy is not installed (pip install 'siteopt[gpu]')")
    assert "--verbose" in gpu_summary("no CUDA device answers: CUDARuntimeError: x")


@pytest.mark.skipif(CUPY_OK, reason="CuPy is usable here, so 'cupy' does not raise")
def test_cupy_unusable_raises_clear_error():
    with pytest.raises(BackendError, match="cupy.*unusable") as info:
        select_backend("cupy")
    assert CUPY_REASON in str(info.value)
    assert isinstance(info.value, RuntimeError)


@pytest.mark.parametrize("name", ["gpu", "CuPy", "", "torch"])
def test_unknown_name_raises_value_error(name):
    with pytest.raises(ValueError, match="unknown backend"):
        select_backend(name)


def test_backend_is_frozen():
    with pytest.raises(AttributeError):
        select_backend("numpy").name = "cupy"


def test_to_numpy_round_trip(xp):
    name = "numpy" if xp is np else "cupy"
    backend = select_backend(name)
    host = np.linspace(0.0, 1.0, 7).reshape(7, 1)
    dev = backend.xp.asarray(host)
    assert isinstance(dev, xp.ndarray) and get_xp(dev) is xp
    back = backend.to_numpy(dev)
    assert type(back) is np.ndarray
    np.testing.assert_array_equal(back, host)
    backend.synchronize()
    assert backend.free_memory_bytes() > 0


def test_get_xp_of_host_values():
    assert get_xp(np.zeros(3)) is np
    assert get_xp([1, 2]) is np
    assert get_xp(1.5) is np
