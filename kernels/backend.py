"""The one switch between NumPy and CuPy.

This is the only module in siteopt that knows CuPy exists. CuPy is imported lazily,
inside a ``try``, and only counts as usable when a CUDA device answers a tiny
allocation. Every kernel takes the array module as ``xp``; results cross back to
NumPy with :meth:`Backend.to_numpy` before they reach PuLP or a report.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "BackendError",
    "FUSED_ENV",
    "cupy_usable",
    "fused_enabled",
    "get_xp",
    "gpu_summary",
    "select_backend",
]

BACKEND_NAMES = ("auto", "numpy", "cupy")
CUPY_INSTALL_HINT = "pip install 'siteopt[gpu]'"
FUSED_ENV = "SITEOPT_FUSED"  # "0": CuPy runs the xp code instead of kernels/_cuda.py
# Used only where neither /proc/meminfo nor sysconf can tell free host memory.
_FALLBACK_FREE_BYTES = 2 * 1024**3


class BackendError(RuntimeError):
    """A backend was asked for by name and cannot be used here."""


@functools.cache
def cupy_usable() -> tuple[bool, str]:
    """Whether CuPy imports and a CUDA device answers; cached for the process.

    Returns
    -------
    ok : bool
        True when CuPy can allocate and compute on device 0.
    reason : str
        Why not, when ``ok`` is False (e.g. "CuPy is not installed (...)");
        a one-line description of the device when ``ok`` is True.
    """
    try:
        import cupy
    except ImportError:
        return False, f"CuPy is not installed ({CUPY_INSTALL_HINT})"
    except Exception as exc:  # a broken CUDA install can fail in many ways
        return False, f"CuPy failed to import: {type(exc).__name__}: {exc}"
    try:
        n_devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return False, f"no CUDA device answers: {type(exc).__name__}: {exc}"
    if n_devices <= 0:
        return False, "no CUDA device answers: device count is 0"
    try:
        probe = cupy.arange(4, dtype=cupy.float64)
        total = float((probe * 2.0).sum())
        cupy.cuda.Device().synchronize()
    except Exception as exc:
        return False, f"no CUDA device answers: {type(exc).__name__}: {exc}"
    if total != 12.0:
        return False, f"CUDA device computed 2*(0+1+2+3) = {total}, not 12"
    return True, f"CuPy {cupy.__version__}, {n_devices} CUDA device(s)"


NVIDIA_DEVICE_PATHS = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia/version")


def nvidia_gpu_present() -> bool:
    """Whether the NVIDIA kernel driver shows a device (no CuPy or CUDA needed to ask)."""
    return any(os.path.exists(p) for p in NVIDIA_DEVICE_PATHS)


def gpu_summary(reason: str) -> str:
    """A plain phrase for why ``auto`` stayed on numpy, e.g. "no NVIDIA GPU found".

    ``reason`` is :func:`cupy_usable`'s detail; the phrase says only what a user acts
    on: no GPU at all, a GPU without CuPy (and how to install it), or a GPU CuPy could
    not use (``--verbose`` shows the CUDA error).
    """
    if not nvidia_gpu_present():
        return "no NVIDIA GPU found"
    if reason.startswith("CuPy is not installed"):
        return f"NVIDIA GPU found, CuPy not installed: {CUPY_INSTALL_HINT}"
    return "NVIDIA GPU found but CuPy cannot use it; --verbose says why"


def get_xp(a: Any) -> ModuleType:
    """The array module (``numpy`` or ``cupy``) that owns ``a``.

    CuPy is never imported here: if it is not already loaded, ``a`` cannot be a
    CuPy array.
    """
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(a, cupy.ndarray):
        return cupy
    return np


def fused_enabled(xp: ModuleType) -> bool:
    """Whether the fused CUDA kernels (kernels/_cuda.py) replace the xp code.

    True on CuPy unless the environment sets ``SITEOPT_FUSED=0``, which keeps the
    xp twins on the GPU (for parity tests and for profiling what fusion buys).
    """
    return xp is not np and os.environ.get(FUSED_ENV, "1") != "0"


def _host_free_memory_bytes() -> int:
    """Available host memory [bytes]: MemAvailable, else free pages, else 2 GiB."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the file counts kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return _FALLBACK_FREE_BYTES


@dataclass(frozen=True)
class Backend:
    """An array backend: its name, its array module and why it was chosen.

    Attributes
    ----------
    name : str
        ``"numpy"`` or ``"cupy"``.
    xp : module
        The array module kernels receive as ``xp``.
    auto_reason : str
        Why ``"auto"`` chose this backend (e.g. "CuPy is not installed (...)");
        empty when the backend was named explicitly.
    """

    name: str
    xp: ModuleType
    auto_reason: str = ""

    def describe(self, verbose: bool = False) -> str:
        """One line for the CLI: ``numpy (no NVIDIA GPU found)`` when ``auto`` found none.

        The full reason (a CUDA error, a missing CuPy) is what ``verbose`` adds, and what
        summary.json keeps as ``backend_detail``.
        """
        if not self.auto_reason:
            return self.name
        if verbose or self.name != "numpy":
            return f"{self.name} (auto: {self.auto_reason})"
        return f"{self.name} ({gpu_summary(self.auto_reason)})"

    def to_numpy(self, a: Any) -> np.ndarray:
        """Copy ``a`` to host memory as a NumPy array (no copy if already there)."""
        if get_xp(a) is not np:
            return a.get()
        return np.asarray(a)

    def free_memory_bytes(self) -> int:
        """Memory free for new arrays on this backend [bytes].

        NumPy: host MemAvailable. CuPy: device free memory plus the bytes CuPy's
        default memory pool holds but is not using.
        """
        if self.name == "cupy":
            free_bytes, _total_bytes = self.xp.cuda.runtime.memGetInfo()
            return int(free_bytes) + int(self.xp.get_default_memory_pool().free_bytes())
        return _host_free_memory_bytes()

    def is_out_of_memory(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the backend running out of memory for a chunk.

        CuPy raises ``cupy.cuda.memory.OutOfMemoryError`` when its pool cannot grow;
        the valuation then halves the chunk. On NumPy a ``MemoryError`` is not retried
        (the host would swap first), so this is False.
        """
        if self.name != "cupy":
            return False
        return isinstance(exc, self.xp.cuda.memory.OutOfMemoryError)

    def synchronize(self) -> None:
        """Wait for queued device work (timings, error surfacing); no-op on NumPy."""
        if self.name == "cupy":
            self.xp.cuda.Device().synchronize()


def select_backend(name: str = "auto") -> Backend:
    """The backend called ``name``.

    Parameters
    ----------
    name : {"auto", "numpy", "cupy"}
        ``"numpy"`` always works; ``"cupy"`` needs CuPy and a CUDA device;
        ``"auto"`` takes CuPy when usable, else NumPy, and records why.

    Returns
    -------
    Backend

    Raises
    ------
    ValueError
        ``name`` is not one of :data:`BACKEND_NAMES`.
    BackendError
        ``name == "cupy"`` and CuPy is not usable; the message says why.
    """
    if name not in BACKEND_NAMES:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    if name == "numpy":
        return Backend(name="numpy", xp=np)
    ok, reason = cupy_usable()
    if ok:
        import cupy

        return Backend(name="cupy", xp=cupy, auto_reason=reason if name == "auto" else "")
    if name == "cupy":
        raise BackendError(f"backend 'cupy' requested but unusable: {reason}")
    return Backend(name="numpy", xp=np, auto_reason=reason)
