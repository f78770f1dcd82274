"""Philox4x32-10: known answers, counter layout, invariance, statistics, parity."""

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from siteopt.kernels import rng
from siteopt.kernels.backend import get_xp
from siteopt.kernels.rng import (
    PHILOX_CUDA_SRC,
    STREAM_BTC,
    STREAM_FEES,
    STREAM_HASHRATE,
    STREAM_OVERRUN,
    STREAM_POWER_BASE,
    entity_stream,
    normal,
    normal_pair,
    philox4x32_10,
    power_stream,
    site_stream,
    uniform,
    uniforms4,
)

SEED = 20240601
N_STAT = 200_000
# Random123 tests/kat_vectors, philox4x32 10 rounds: (counter, key, output).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]
# Kolmogorov distribution: P(sqrt(n) * D_n > 1.95) ~= 0.001, so a correct generator
# fails this bound for about one seed in a thousand (the seed here is fixed).
KS_CRITICAL = 1.95


def host(a):
    """A NumPy copy of a NumPy or CuPy array."""
    return a.get() if get_xp(a) is not np else np.asarray(a)


def stat_uniforms(stream=STREAM_BTC, month=0, seed=SEED):
    return uniform(seed, np.arange(N_STAT, dtype=np.int64), month, stream, xp=np)


def normal_cdf(z):
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


@pytest.mark.parametrize(("ctr", "key", "expected"), KAT)
def test_known_answer_vectors(xp, ctr, key, expected):
    words = philox4x32_10(*ctr, *key, xp=xp)
    assert tuple(int(host(w)) for w in words) == expected


def test_known_answer_vectors_vectorised():
    ctr = np.array([k[0] for k in KAT], dtype=np.uint32).T
    key = np.array([k[1] for k in KAT], dtype=np.uint32).T
    words = philox4x32_10(*ctr, *key, xp=np)
    np.testing.assert_array_equal(np.stack(words, axis=1), [k[2] for k in KAT])


def test_counter_layout_and_uniform_formula():
    """c0/c1 = scenario low/high, c2 = month, c3 = stream, key = seed low/high."""
    seed = (0x01234567 << 32) | 0x89ABCDEF
    scenario = np.array([0, 7, (5 << 32) | 9], dtype=np.int64)
    words = philox4x32_10(
        scenario & 0xFFFFFFFF, scenario >> 32, 11, 40, 0x89ABCDEF, 0x01234567, xp=np
    )
    got = uniforms4(seed, scenario, 11, 40, xp=np)
    for w, u in zip(words, got, strict=True):
        np.testing.assert_array_equal(u, (w.astype(np.float64) + 0.5) * 2.0**-32)
    np.testing.assert_array_equal(uniform(seed, scenario, 11, 40, xp=np, word=2), got[2])


def test_uniform_open_interval():
    extremes = rng._to_uniform(np.array([0, 0xFFFFFFFF], dtype=np.uint32), np)
    assert 0.0 < extremes[0] and extremes[1] < 1.0
    u = np.concatenate(uniforms4(SEED, np.arange(N_STAT, dtype=np.int64), 3, STREAM_FEES, xp=np))
    assert u.min() > 0.0 and u.max() < 1.0


def test_chunk_invariance():
    n, months = 1_000, np.arange(24)
    full = normal(SEED, np.arange(n, dtype=np.int64)[:, None], months[None, :], STREAM_BTC, xp=np)
    edges = [0, 1, 17, 500, 501, 999, n]
    parts = [
        normal(SEED, np.arange(a, b, dtype=np.int64)[:, None], months, STREAM_BTC, xp=np)
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]
    np.testing.assert_array_equal(np.concatenate(parts), full)
    reversed_order = normal(SEED, np.arange(n - 1, -1, -1)[:, None], months, STREAM_BTC, xp=np)
    np.testing.assert_array_equal(reversed_order[::-1], full)


def test_shape_independence():
    scenario = np.arange(600, dtype=np.int64)
    flat = uniform(SEED, scenario, 5, STREAM_HASHRATE, xp=np)
    grid = uniform(SEED, scenario.reshape(20, 30), 5, STREAM_HASHRATE, xp=np)
    np.testing.assert_array_equal(grid.ravel(), flat)
    month_major = uniform(SEED, scenario[None, :], np.arange(4)[:, None], STREAM_HASHRATE, xp=np)
    np.testing.assert_array_equal(
        month_major[3], uniform(SEED, scenario, 3, STREAM_HASHRATE, xp=np)
    )
    one = uniform(SEED, np.int64(42), 5, STREAM_HASHRATE, xp=np)
    assert one.shape == () and one == flat[42]


@pytest.mark.parametrize(
    "other",
    [
        {"stream": STREAM_HASHRATE},
        {"month": 1},
        {"seed": SEED + 1},
        {"seed": SEED + (1 << 32)},
    ],
    ids=["stream", "month", "seed-low", "seed-high"],
)
def test_coordinates_give_different_draws(other):
    base = {"seed": SEED, "month": 0, "stream": STREAM_BTC}
    a = uniform(base["seed"], np.arange(1000), base["month"], base["stream"], xp=np)
    args = base | other
    b = uniform(args["seed"], np.arange(1000), args["month"], args["stream"], xp=np)
    assert np.mean(a == b) < 0.01


def test_uniform_mean_and_variance():
    u = stat_uniforms()
    se_mean = math.sqrt(1.0 / 12.0 / N_STAT)
    assert abs(u.mean() - 0.5) < 4 * se_mean
    # Var(s^2) ~ (mu4 - sigma^4) / n with mu4 = 1/80, sigma^4 = 1/144 for U(0, 1).
    se_var = math.sqrt((1.0 / 80.0 - 1.0 / 144.0) / N_STAT)
    assert abs(u.var() - 1.0 / 12.0) < 4 * se_var


def test_uniform_kolmogorov_smirnov():
    u = np.sort(stat_uniforms(stream=STREAM_FEES))
    i = np.arange(1, N_STAT + 1)
    d = max(np.max(i / N_STAT - u), np.max(u - (i - 1) / N_STAT))
    assert math.sqrt(N_STAT) * d < KS_CRITICAL


def test_normal_moments_and_ks():
    z0, z1 = normal_pair(SEED, np.arange(N_STAT // 2, dtype=np.int64), 0, STREAM_BTC, xp=np)
    z = np.concatenate([z0, z1])
    assert abs(z.mean()) < 4 / math.sqrt(z.size)
    assert abs(z.var() - 1.0) < 4 * math.sqrt(2.0 / z.size)  # Var(s^2) ~ 2 / n for N(0, 1)
    # Sup over a grid never exceeds the full KS sup, so the KS bound stays valid.
    grid = np.linspace(-4.0, 4.0, 401)
    ecdf = np.searchsorted(np.sort(z), grid, side="right") / z.size
    phi = np.array([normal_cdf(g) for g in grid])
    assert math.sqrt(z.size) * np.max(np.abs(ecdf - phi)) < KS_CRITICAL
    np.testing.assert_array_equal(normal(SEED, np.arange(N_STAT // 2), 0, STREAM_BTC, xp=np), z0)


def test_streams_words_and_neighbours_uncorrelated():
    n = N_STAT // 4
    scen = np.arange(n, dtype=np.int64)
    w = uniforms4(SEED, scen, 0, STREAM_BTC, xp=np)
    pairs = [
        (w[0], w[1]),
        (w[0], w[3]),
        (w[0], uniform(SEED, scen, 0, STREAM_HASHRATE, xp=np)),
        (w[0], uniform(SEED, scen, 1, STREAM_BTC, xp=np)),
        (w[0][:-1], w[0][1:]),
        (*normal_pair(SEED, scen, 0, STREAM_BTC, xp=np),),
    ]
    for a, b in pairs:
        assert abs(np.corrcoef(a, b)[0, 1]) < 4 / math.sqrt(a.size)


def test_backend_parity(xp):
    scen_np = np.arange(5_000, dtype=np.int64)[:, None] + (3 << 32)
    months_np = np.arange(12)[None, :]
    scen, months = xp.asarray(scen_np), xp.asarray(months_np)
    u = uniform(SEED, scen, months, STREAM_OVERRUN, xp=xp, word=3)
    assert isinstance(u, xp.ndarray)
    ref_u = uniform(SEED, scen_np, months_np, STREAM_OVERRUN, xp=np, word=3)
    np.testing.assert_array_equal(host(u), ref_u)  # bit for bit
    z0, z1 = normal_pair(SEED, scen, months, STREAM_OVERRUN, xp=xp)
    ref0, ref1 = normal_pair(SEED, scen_np, months_np, STREAM_OVERRUN, xp=np)
    assert isinstance(z0, xp.ndarray) and isinstance(z1, xp.ndarray)
    # Transcendentals differ by a few ulps between libms; atol covers z ~ 0.
    np.testing.assert_allclose(host(z0), ref0, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(host(z1), ref1, rtol=1e-12, atol=1e-15)


def test_dtypes(xp):
    scen = xp.arange(10, dtype=xp.int64)
    words = philox4x32_10(scen.astype(xp.uint32), 0, 1, 2, 3, 4, xp=xp)
    assert all(w.dtype == np.uint32 for w in words)
    assert uniform(SEED, scen, 0, STREAM_BTC, xp=xp).dtype == np.float64
    assert all(u.dtype == np.float64 for u in uniforms4(SEED, scen, 0, 1, xp=xp))
    assert normal(SEED, scen, xp.arange(10), STREAM_BTC, xp=xp).dtype == np.float64
    assert all(z.dtype == np.float64 for z in normal_pair(SEED, scen, 0, 1, xp=xp))


def test_stream_ids_collision_free():
    globals_ = list(range(1, 64))
    per_entity = [entity_stream(k, i) for k in range(1, 64) for i in range(200)]
    assert len(set(globals_ + per_entity)) == len(globals_) + len(per_entity)
    assert min(per_entity) >= 64
    assert site_stream(STREAM_OVERRUN, 2) == STREAM_OVERRUN + 64 * 3
    assert [power_stream(m) for m in (0, 15)] == [STREAM_POWER_BASE, STREAM_POWER_BASE + 15]
    assert max(STREAM_BTC, STREAM_HASHRATE, STREAM_FEES) < STREAM_POWER_BASE


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: power_stream(16), ValueError),
        (lambda: entity_stream(64, 0), ValueError),
        (lambda: entity_stream(0, 0), ValueError),
        (lambda: site_stream(STREAM_OVERRUN, -1), ValueError),
        (lambda: uniform(-1, np.arange(3), 0, 1, xp=np), ValueError),
        (lambda: uniform(1 << 64, np.arange(3), 0, 1, xp=np), ValueError),
        (lambda: uniform(1, np.array([-1]), 0, 1, xp=np), ValueError),
        (lambda: uniform(1, np.arange(3), -1, 1, xp=np), ValueError),
        (lambda: uniform(1, np.arange(3), 0, -1, xp=np), ValueError),
        (lambda: uniform(1, np.arange(3.0), 0, 1, xp=np), TypeError),
        (lambda: uniform(1, np.arange(3), 0, 1, xp=np, word=4), ValueError),
    ],
)
def test_bad_inputs_raise(call, error):
    with pytest.raises(error):
        call()


def test_two_pi_constant_is_exact():
    assert rng._TWO_PI == 2.0 * math.pi
    assert float("2.3283064365386963e-10") == 2.0**-32  # the literal in PHILOX_CUDA_SRC
    assert "2.3283064365386963e-10" in PHILOX_CUDA_SRC and "6.283185307179586" in PHILOX_CUDA_SRC


_HOST_HARNESS = r"""
#include <cmath>
#include <cstdio>
#define __device__
#define __forceinline__ inline
using std::cos; using std::log; using std::sin; using std::sqrt;
%s
int main() {
    unsigned long long seed, scenario; unsigned int month, stream;
    while (std::scanf("%%llu %%llu %%u %%u", &seed, &scenario, &month, &stream) == 4) {
        unsigned int w[4]; double z0, z1;
        philox_draw(seed, scenario, month, stream, w);
        philox_normal_pair(seed, scenario, month, stream, &z0, &z1);
        std::printf("%%u %%u %%u %%u %%a %%a %%a\n", w[0], w[1], w[2], w[3],
                    philox_uniform(w[3]), z0, z1);
    }
    return 0;
}
"""


def _run_host_twin(tmp_path: Path, lines: str) -> list[list[str]]:
    """Compile PHILOX_CUDA_SRC as C++ for the CPU, feed it lines, split its output."""
    src = tmp_path / "twin.cpp"
    src.write_text(_HOST_HARNESS % PHILOX_CUDA_SRC)
    exe = tmp_path / "twin"
    subprocess.run(["c++", "-O1", "-o", str(exe), str(src)], check=True, capture_output=True)
    out = subprocess.run([str(exe)], input=lines, capture_output=True, text=True, check=True)
    return [line.split() for line in out.stdout.splitlines()]


@pytest.mark.skipif(shutil.which("c++") is None, reason="no C++ compiler to run the CUDA twin")
def test_cuda_source_matches_numpy_on_host(tmp_path: Path):
    """PHILOX_CUDA_SRC, compiled for the CPU, reproduces the numpy reference."""
    seed, month, stream = (0xA4093822 << 32) | 0x299F31D0, 7, site_stream(STREAM_OVERRUN, 1)
    scen = np.array([0, 1, 2**32 - 1, 2**32, (9 << 32) | 12345, 2**63 - 1], dtype=np.int64)
    lines = "".join(f"{seed} {s} {month} {stream}\n" for s in scen)
    rows = _run_host_twin(tmp_path, lines)
    words = np.stack(
        philox4x32_10(
            scen & 0xFFFFFFFF, scen >> 32, month, stream, seed & 0xFFFFFFFF, seed >> 32, xp=np
        ),
        axis=1,
    )
    np.testing.assert_array_equal([[int(x) for x in r[:4]] for r in rows], words)
    u3 = uniform(seed, scen, month, stream, xp=np, word=3)
    np.testing.assert_array_equal([float.fromhex(r[4]) for r in rows], u3)
    z0, z1 = normal_pair(seed, scen, month, stream, xp=np)
    np.testing.assert_allclose([float.fromhex(r[5]) for r in rows], z0, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose([float.fromhex(r[6]) for r in rows], z1, rtol=1e-12, atol=1e-15)


@pytest.mark.skipif(shutil.which("c++") is None, reason="no C++ compiler to run the CUDA twin")
@pytest.mark.parametrize(("ctr", "key", "expected"), KAT)
def test_cuda_source_known_answers_on_host(tmp_path: Path, ctr, key, expected):
    """The CUDA twin alone, without the numpy code, reproduces Random123's vectors."""
    seed, scenario = (key[1] << 32) | key[0], (ctr[1] << 32) | ctr[0]
    rows = _run_host_twin(tmp_path, f"{seed} {scenario} {ctr[2]} {ctr[3]}\n")
    assert tuple(int(x) for x in rows[0][:4]) == expected


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_cuda_source_compiles_with_nvcc(tmp_path: Path):
    """The CUDA twin is valid device code (compiled to PTX; needs no GPU)."""
    kernel = r"""
extern "C" __global__ void draw(const unsigned long long* scen, double* z, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { philox_normal_pair(42ull, scen[i], 3u, 1u, &z[2 * i], &z[2 * i + 1]); }
}
"""
    src = tmp_path / "twin.cu"
    src.write_text(PHILOX_CUDA_SRC + kernel)
    cmd = ["nvcc", "--ptx", "-Werror", "all-warnings", "-o", str(tmp_path / "twin.ptx"), str(src)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
