"""Two-pass streaming statistics (reduce.Moments, reduce.Histograms) against exact ones.

The histogram's quantiles and CVaR are within one bin width of the exact sample
values (the module docstring's promise). The histogram inverts the empirical CDF
(the smallest x with F_N(x) >= q, numpy's ``method="inverted_cdf"``); numpy's default
"linear" quantile interpolates towards the next order statistic, so against it the
bound is one bin width plus one local sample spacing (on texas.yaml at N = 20,000 a
gap between neighbouring samples near p5 exceeds a bin: the histogram sits 1.12 bins
from the linear quantile but 0.84 bins from the inverted-CDF one).

Against the Monte Carlo error: SE(q_p) ~ sqrt(p (1 - p) / N) / f(q_p). For a normal
at p = 5 %, N = 20,000: SE = 0.00154 / 0.103 = 0.015 sd while the bins are
~(8.2 sd / 4096) = 0.002 sd wide, so the bound is < 1/4 of the sampling error. For a
heavy right tail (lognormal sigma 1.5) the range runs to mean + 8 sd and at p5 the
bin is ~9 SE wide: the BOUND is then not under the MC error, but the actual error
(linear interpolation inside a densely filled bin) stays < 0.1 SE; on texas.yaml
the actual errors are <= 0.15 SE for every option (bound up to 1.5 SE at p50).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from siteopt.app.params import kernel_inputs
from siteopt.kernels.reduce import DEFAULT_BINS, Histograms, Moments
from siteopt.optimizer.results import portfolio_cvar as exact_cvar

N = 20_000
ALPHA = 0.95
QUANTILES = (0.05, 0.50, 0.95)


def _samples(kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "normal":
        return rng.normal(3e8, 2e8, N)
    if kind == "lognormal-heavy":
        return 1e7 * rng.lognormal(0.0, 1.5, N) - 5e6
    if kind == "constant":
        return np.full(N, -1.234e8)
    if kind == "two-point":  # 30 % at -2e8, 70 % at 5e8: no target quantile on a tie
        return np.where(rng.uniform(size=N) < 0.3, -2e8, 5e8)
    if kind == "mixed":  # a mass at 0 plus a continuous tail (tenant exits look like this)
        return np.where(rng.uniform(size=N) < 0.2, 0.0, rng.normal(1e8, 5e7, N))
    raise ValueError(kind)


KINDS = ["normal", "lognormal-heavy", "constant", "two-point", "mixed"]


def _stream(
    samples: np.ndarray, chunk: int, bins: int = DEFAULT_BINS
) -> tuple[Moments, Histograms]:
    """Both passes over the samples in chunks, several options side by side."""
    moments = Moments()
    for lo in range(0, samples.shape[0], chunk):
        moments.add(samples[lo : lo + chunk])
    hist = Histograms.from_moments(moments, bins, ALPHA)
    for lo in range(0, samples.shape[0], chunk):
        hist.add(samples[lo : lo + chunk], xp=np)
    return moments, hist


@pytest.fixture(scope="module")
def columns():
    rng = np.random.default_rng(20261121)
    return np.column_stack([_samples(k, rng) for k in KINDS])  # (N, options)


@pytest.fixture(scope="module")
def streamed(columns):
    return _stream(columns, chunk=1_733)


def test_moments_match_numpy(columns, streamed):
    moments, _ = streamed
    scale = np.maximum(np.abs(columns).max(axis=0), 1.0)
    np.testing.assert_allclose(moments.mean, columns.mean(axis=0), rtol=0, atol=1e-12 * scale.max())
    np.testing.assert_allclose(moments.std, columns.std(axis=0, ddof=1), rtol=1e-9, atol=1e-6)
    np.testing.assert_array_equal(moments.low, columns.min(axis=0))
    np.testing.assert_array_equal(moments.high, columns.max(axis=0))
    assert moments.count == N


@pytest.mark.parametrize("q", QUANTILES)
def test_histogram_quantile_within_one_bin(columns, streamed, q):
    _, hist = streamed
    got = hist.quantile(q)
    for j, kind in enumerate(KINDS):
        x = columns[:, j]
        exact = np.quantile(x, q, method="inverted_cdf")
        assert abs(got[j] - exact) <= hist.width[j], (
            f"{kind}: {got[j]} vs {exact}, bin {hist.width[j]}"
        )
        # numpy's default: one bin plus the gap to the next order statistic
        srt = np.sort(x)
        k = int(np.ceil(q * N)) - 1
        gap = srt[min(k + 1, N - 1)] - srt[k]
        assert abs(got[j] - np.quantile(x, q)) <= hist.width[j] + gap, kind
    assert got[KINDS.index("constant")] == pytest.approx(-1.234e8, abs=1.0)


def test_histogram_cvar_within_one_bin(columns, streamed):
    _, hist = streamed
    got = hist.cvar(ALPHA)
    exact = exact_cvar(columns, ALPHA, axis=0)
    for j, kind in enumerate(KINDS):
        assert abs(got[j] - exact[j]) <= hist.width[j], (
            f"{kind}: {got[j]} vs {exact[j]}, bin {hist.width[j]}"
        )


def test_exact_cvar_definition():
    """Mean of the worst (1 - alpha) N values, the boundary value counted fractionally."""
    x = np.array([5.0, 1.0, 4.0, 2.0, 3.0])
    assert exact_cvar(x, 0.6) == pytest.approx(1.5)  # worst 2: (1 + 2) / 2
    assert exact_cvar(x, 0.5) == pytest.approx((1 + 2 + 0.5 * 3) / 2.5)


def test_statistics_do_not_depend_on_chunking(columns, streamed):
    _, hist = streamed
    _, whole = _stream(columns, chunk=N)
    for q in QUANTILES:
        np.testing.assert_allclose(
            whole.quantile(q), hist.quantile(q), rtol=0, atol=1e-9 * np.abs(columns).max()
        )
    np.testing.assert_allclose(
        whole.cvar(ALPHA), hist.cvar(ALPHA), rtol=0, atol=1e-9 * np.abs(columns).max()
    )


def _asymptotic_se(kind: str, q: float) -> float:
    """sqrt(q (1 - q) / N) / f(x_q) for the two continuous test distributions."""
    z = NormalDist().inv_cdf(q)
    if kind == "normal":
        density = NormalDist().pdf(z) / 2e8
    else:  # 1e7 * lognormal(0, 1.5) - 5e6
        x = math.exp(1.5 * z)
        density = NormalDist().pdf(z) / (1.5 * x) / 1e7
    return math.sqrt(q * (1 - q) / N) / density


def test_bin_error_is_well_under_the_monte_carlo_error(columns, streamed):
    _, hist = streamed
    got = {q: hist.quantile(q) for q in QUANTILES}
    for kind in ("normal", "lognormal-heavy"):
        j = KINDS.index(kind)
        for q in QUANTILES:
            se = _asymptotic_se(kind, q)
            actual = abs(got[q][j] - np.quantile(columns[:, j], q, method="inverted_cdf"))
            assert actual < 0.25 * se, (kind, q, actual, se)
            if kind == "normal":  # the one-bin bound itself is < SE / 4
                assert hist.width[j] < 0.25 * se, (q, hist.width[j], se)
    # the heavy tail's lower quantile: the bound (one bin) is several SE wide
    j = KINDS.index("lognormal-heavy")
    assert hist.width[j] > 5 * _asymptotic_se("lognormal-heavy", 0.05)


@pytest.mark.slow
def test_texas_histogram_errors_at_20000_scenarios():
    """Every option of texas.yaml at N = 20,000: quantiles within one bin of the
    inverted-CDF sample quantile, CVaR within one bin of exact_cvar, and the actual
    quantile error < 1/4 of the MC standard error (estimated from order statistics:
    (x_(k+d) - x_(k-d)) / 2 with d = sqrt(N q (1 - q)))."""
    from siteopt.kernels.sites import chunk_market, site_chunk, site_options
    from siteopt.model.load import load_scenario

    from .helpers import SCENARIO_FILES

    s = load_scenario(SCENARIO_FILES["texas"])
    ctx = chunk_market(kernel_inputs(s), np.arange(N, dtype=np.int64), xp=np)
    npv = np.hstack(
        [
            site_chunk(kernel_inputs(s), i, site_options(kernel_inputs(s), i), ctx, xp=np).npv
            for i in range(len(s.sites))
        ]
    )
    moments, hist = _stream(npv, chunk=N)
    srt = np.sort(npv, axis=0)
    for q in QUANTILES:
        exact = np.quantile(npv, q, axis=0, method="inverted_cdf")
        err = np.abs(hist.quantile(q) - exact)
        assert np.all(err <= hist.width)
        k, d = int(q * N), int(math.sqrt(N * q * (1 - q)))
        se = (srt[min(k + d, N - 1)] - srt[k - d]) / 2
        random = se > 0  # sweetwater-pad's keep-hashing option is identically 0
        assert np.all(err[random] < 0.25 * se[random])
    assert np.all(np.abs(hist.cvar(ALPHA) - exact_cvar(npv, ALPHA, axis=0)) <= hist.width)


@pytest.mark.parametrize("bins", [64, 512])
def test_coarse_histograms_still_within_one_bin(columns, bins):
    _, hist = _stream(columns, chunk=5_000, bins=bins)
    cvar = exact_cvar(columns, ALPHA, axis=0)
    for j in range(len(KINDS)):
        for q in QUANTILES:
            assert (
                abs(hist.quantile(q)[j] - np.quantile(columns[:, j], q, method="inverted_cdf"))
                <= hist.width[j]
            )
        assert abs(hist.cvar(ALPHA)[j] - cvar[j]) <= hist.width[j]


def test_small_samples():
    """N smaller than the tail count (1 - alpha) N < 1: CVaR is the fractional worst value."""
    x = np.array([[3.0], [-1.0], [7.0], [2.0], [10.0]])
    _, hist = _stream(x, chunk=2)
    assert abs(hist.cvar(ALPHA)[0] - exact_cvar(x[:, 0], ALPHA)) <= hist.width[0]
    assert abs(hist.quantile(0.5)[0] - 3.0) <= hist.width[0]
