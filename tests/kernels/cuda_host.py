"""Run kernels/_cuda.py's CUDA source on the CPU: the fused path tested without a GPU.

The whole of ``CUDA_SOURCE`` (Philox, device functions and the ``__global__`` wrappers)
is compiled as C++ into a shared library, with ``__global__``/``__device__`` defined
away and ``blockIdx``/``threadIdx``/``blockDim``/``gridDim`` as host globals. The
emulated :func:`launch` then calls a kernel once per (block, thread) of the grid the
Python wrapper asked for, with the wrapper's own arguments, so the wrappers' argument
order, grid arithmetic and month-major layout are exercised exactly as on a device.
Threads run one after another; the kernels share nothing between threads, so the
order cannot matter.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from siteopt.kernels._cuda import CUDA_SOURCE

HOST_PRELUDE = r"""
#include <cmath>
#define __device__
#define __forceinline__ inline
#define __global__
using std::cos; using std::exp; using std::log; using std::pow; using std::sin; using std::sqrt;
struct siteopt_dim3 { unsigned int x, y, z; };
static siteopt_dim3 blockIdx, threadIdx, blockDim, gridDim;
extern "C" void siteopt_set_thread(unsigned int grid, unsigned int block,
                                   unsigned int b, unsigned int t)
{
    gridDim.x = grid; blockDim.x = block; blockIdx.x = b; threadIdx.x = t;
    gridDim.y = gridDim.z = blockDim.y = blockDim.z = 1;
    blockIdx.y = blockIdx.z = threadIdx.y = threadIdx.z = 0;
}
"""


def compiler_available() -> bool:
    return shutil.which("c++") is not None


def _ctype(arg):
    """The ctypes value of one kernel argument, as CuPy would pass it."""
    if isinstance(arg, np.ndarray):
        if not arg.flags.c_contiguous:
            raise TypeError("kernel arrays must be C-contiguous, as on the device")
        return ctypes.c_void_p(arg.ctypes.data)
    kinds = {
        np.int32: ctypes.c_int,
        np.uint32: ctypes.c_uint,
        np.uint64: ctypes.c_ulonglong,
        np.float64: ctypes.c_double,
    }
    for kind, ctype in kinds.items():
        if isinstance(arg, kind):
            return ctype(arg)
    raise TypeError(f"kernel argument of type {type(arg).__name__} has no fixed C type")


class HostKernels:
    """The compiled library and a ``launch`` with kernels/_cuda.launch's signature."""

    def __init__(self, build_dir: Path | None = None) -> None:
        source = HOST_PRELUDE + CUDA_SOURCE
        tag = hashlib.sha256(source.encode()).hexdigest()[:16]
        build = Path(build_dir or tempfile.gettempdir()) / f"siteopt-cuda-host-{tag}"
        build.mkdir(parents=True, exist_ok=True)
        lib = build / "kernels.so"
        if not lib.exists():
            src = build / "kernels.cpp"
            src.write_text(source)
            cmd = ["c++", "-O1", "-shared", "-fPIC", "-ffp-contract=off", "-o", str(lib), str(src)]
            subprocess.run(cmd, check=True, capture_output=True, text=True)
        self.lib = ctypes.CDLL(str(lib))
        self.launches: list[tuple[str, tuple[int], tuple[int]]] = []

    def launch(self, name: str, grid: tuple[int], block: tuple[int], args: tuple) -> None:
        self.launches.append((name, grid, block))
        kernel = getattr(self.lib, name)
        kernel.restype = None
        cargs = [_ctype(a) for a in args]
        for b in range(grid[0]):
            for t in range(block[0]):
                self.lib.siteopt_set_thread(grid[0], block[0], b, t)
                kernel(*cargs)
