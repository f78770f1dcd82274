"""How close the fused kernels come to the GPU's limits (``siteopt bench`` on CuPy).

Two ceilings are measured on the device, once, and recorded in
benchmarks/gpu-baseline.json: the FMA rate (float32 and float64, a register-only loop
of dependent-free FMAs) and the DRAM bandwidth (a device-to-device copy far larger
than L2). Each fused kernel is then timed alone on a chunk of the scenario, and its
achieved flop rate and bandwidth (:data:`_cuda.KERNEL_COSTS` per cell) are divided by
the ceilings. A kernel is bound by whichever fraction is higher.

CuPy is imported inside the functions only; nothing here runs without a device.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from . import _cuda
from .market import horizon_calendar
from .params import Portfolio
from .sites import chunk_market, fused_site_inputs

CEILING_SRC = r"""
// Peak-rate probes: each thread runs FMA_CHAINS independent FMA chains for `iters`
// steps (8 flops x 2 per step per thread) and stores one value so nothing is dead code.
#define FMA_CHAINS 8
extern "C" __global__ void siteopt_fma_f32(float* out, int iters, float a, float b)
{
    float x[FMA_CHAINS];
    for (int k = 0; k < FMA_CHAINS; ++k) { x[k] = (float)(threadIdx.x + k); }
    for (int i = 0; i < iters; ++i) {
        for (int k = 0; k < FMA_CHAINS; ++k) { x[k] = fmaf(x[k], a, b); }
    }
    float s = 0.0f;
    for (int k = 0; k < FMA_CHAINS; ++k) { s += x[k]; }
    out[blockIdx.x * blockDim.x + threadIdx.x] = s;
}
extern "C" __global__ void siteopt_fma_f64(double* out, int iters, double a, double b)
{
    double x[FMA_CHAINS];
    for (int k = 0; k < FMA_CHAINS; ++k) { x[k] = (double)(threadIdx.x + k); }
    for (int i = 0; i < iters; ++i) {
        for (int k = 0; k < FMA_CHAINS; ++k) { x[k] = fma(x[k], a, b); }
    }
    double s = 0.0;
    for (int k = 0; k < FMA_CHAINS; ++k) { s += x[k]; }
    out[blockIdx.x * blockDim.x + threadIdx.x] = s;
}
"""
FMA_CHAINS = 8
CEILING_KERNELS = ("siteopt_fma_f32", "siteopt_fma_f64")


@dataclass(frozen=True)
class Ceilings:
    """Measured peaks of one GPU."""

    gpu: str
    fp32_gflops: float
    fp64_gflops: float
    dram_gbs: float


@dataclass(frozen=True)
class KernelTiming:
    """One fused kernel alone on ``cells`` (scenario, month) cells."""

    kernel: str
    cells: int
    seconds: float
    gflops: float
    gbs: float
    fp32_fraction: float | None
    fp64_fraction: float | None
    bandwidth_fraction: float | None

    @property
    def bound(self) -> str:
        """``"compute"`` or ``"memory"``: the larger fraction of its ceiling."""
        if self.fp64_fraction is None or self.bandwidth_fraction is None:
            return "unknown"
        return "compute" if self.fp64_fraction >= self.bandwidth_fraction else "memory"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bound": self.bound}


def gpu_name() -> str:
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def _elapsed_s(run, repeat: int) -> float:
    """Best of ``repeat`` runs of ``run()``, timed with CUDA events [s]."""
    import cupy

    run()  # compile and warm up
    best = float("inf")
    for _ in range(repeat):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        run()
        stop.record()
        stop.synchronize()
        best = min(best, cupy.cuda.get_elapsed_time(start, stop) / 1e3)
    return best


def measure_ceilings(repeat: int = 5) -> Ceilings:
    """FP32/FP64 FMA rates and DRAM copy bandwidth of the current device."""
    import cupy

    module = cupy.RawModule(code=CEILING_SRC)
    sms = cupy.cuda.Device().attributes["MultiProcessorCount"]
    blocks, threads, iters = sms * 64, 256, 4096
    rates = {}
    for name, dtype in zip(CEILING_KERNELS, (np.float32, np.float64), strict=True):
        out = cupy.empty(blocks * threads, dtype=dtype)
        kernel = module.get_function(name)
        args = (out, np.int32(iters), dtype(0.999), dtype(0.001))
        seconds = _elapsed_s(lambda k=kernel, a=args: k((blocks,), (threads,), a), repeat)
        rates[name] = 2.0 * FMA_CHAINS * iters * blocks * threads / seconds / 1e9
    src = cupy.ones(512 << 20 >> 3, dtype=cupy.float64)  # 512 MiB, far beyond any L2
    dst = cupy.empty_like(src)
    seconds = _elapsed_s(lambda: dst.__setitem__(Ellipsis, src), repeat)
    dram = 2.0 * src.nbytes / seconds / 1e9  # read + write
    return Ceilings(gpu_name(), rates["siteopt_fma_f32"], rates["siteopt_fma_f64"], dram)


def time_kernels(
    scenario: Portfolio, scenarios: int, ceilings: Ceilings | None, repeat: int = 5
) -> list[KernelTiming]:
    """Time each fused kernel alone on ``scenarios`` scenarios of ``scenario``."""
    import cupy

    idx = cupy.arange(scenarios, dtype=cupy.int64)
    cal = horizon_calendar(scenario)
    ctx = chunk_market(scenario, idx, xp=cupy)
    site = scenario.sites[0]
    market_index = list(scenario.power_markets).index(site.market)
    power = ctx.power[market_index]
    inputs = fused_site_inputs(scenario, 0, ctx, pays_power=site.ai is not None)
    runs = {
        "siteopt_market": lambda: _cuda.market_paths(scenario, idx, xp=cupy),
        "siteopt_power": lambda: _cuda.power_paths(scenario, market_index, cal, idx, xp=cupy),
        "siteopt_site": lambda: _cuda.site_stream_arrays(
            site, scenario.market.pool_fee, inputs, ctx.market.hashprice, power, xp=cupy
        ),
    }
    cells = scenarios * scenario.months
    timings = []
    for name, run in runs.items():
        seconds = _elapsed_s(run, repeat)
        cost = _cuda.KERNEL_COSTS[name]
        gflops, gbs = cells * cost.flops / seconds / 1e9, cells * cost.bytes / seconds / 1e9
        timings.append(
            KernelTiming(
                name,
                cells,
                seconds,
                gflops,
                gbs,
                gflops / ceilings.fp32_gflops if ceilings else None,
                gflops / ceilings.fp64_gflops if ceilings else None,
                gbs / ceilings.dram_gbs if ceilings else None,
            )  # fmt: skip
        )
    return timings
