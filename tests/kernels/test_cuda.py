"""The fused CUDA kernels (kernels/_cuda.py) against their xp twins, with and without a GPU.

Without a GPU: the CUDA source runs on the CPU (cuda_host.py) through the same Python
wrappers, and compiles with NVRTC for the architectures we ship to. With a GPU (marked
``gpu``): the kernels on the device against the xp code on the device and on numpy.

Tolerances (float64 throughout; there is no float32 path): the uniforms are integer
arithmetic and identical bit for bit; the kernels repeat numpy's arithmetic in numpy's
order (the month sums are sequential, as ``numpy.cumsum`` is), so on the CPU they differ
only where the C library's ``exp``/``log``/``cos`` round differently from numpy's, and
on a device also where NVRTC contracts a multiply-add into an FMA. Both are an ulp or so
per operation; the hashrate feedback carries them through 180 months, hence rtol 1e-9
of each array's largest magnitude, as in test_parity.py. The 4CP outcomes compare a
bit-identical uniform with a constant and must be equal.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from siteopt.app.params import kernel_inputs
from siteopt.app.staged import staged_states
from siteopt.app.valuation import value_options
from siteopt.kernels import _cuda, gpubench, market, power, sites
from siteopt.kernels.backend import FUSED_ENV, fused_enabled
from siteopt.kernels.chunks import LocalChunks
from siteopt.kernels.market import horizon_calendar
from siteopt.kernels.sites import chunk_market, site_mining, site_options
from siteopt.model.load import load_scenario, with_simulation

from .conftest import CUPY_OK, CUPY_REASON
from .cuda_host import HostKernels, compiler_available
from .helpers import SCENARIO_FILES, random_one_site_ai

RTOL = 1e-9
N = 300
needs_compiler = pytest.mark.skipif(
    not compiler_available(), reason="no C++ compiler to run the CUDA source on the CPU"
)


def close(got, want, rtol=RTOL):
    """|got - want| <= rtol x the largest magnitude of ``want`` (values cross zero)."""
    got, want = _host(got), _host(want)
    assert got.shape == want.shape and got.dtype == np.float64
    scale = max(float(np.max(np.abs(want))), 1e-300)
    np.testing.assert_allclose(got, want, rtol=0, atol=rtol * scale)


def _host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


@pytest.fixture(scope="module")
def host_kernels(tmp_path_factory) -> HostKernels:
    if not compiler_available():
        pytest.skip("no C++ compiler to run the CUDA source on the CPU")
    return HostKernels(tmp_path_factory.mktemp("cuda-host"))


@pytest.fixture
def on_host(host_kernels, monkeypatch) -> HostKernels:
    """kernels/_cuda.launch runs the CUDA source on the CPU for this test."""
    monkeypatch.setattr(_cuda, "launch", host_kernels.launch)
    host_kernels.launches.clear()
    return host_kernels


@pytest.fixture(scope="module", params=sorted(SCENARIO_FILES))
def scenario(request):
    return load_scenario(SCENARIO_FILES[request.param])


def lagless(scenario):
    """The scenario with hashrate feedback from the month before (lag 1, not 6)."""
    m = scenario.market.model_copy(update={"hashrate_lag_months": 1})
    return scenario.model_copy(update={"market": m})


def with_forwards(scenario, forward_is="mean"):
    """The scenario with a house view: BTC, hashrate, fee and power forwards."""
    forward = {
        "btc_price_usd": {"2027": 95_000, "2029-06": 140_000, "2033": 120_000},
        "hashrate_eh": {"2027": 1_150, "2030": 1_900, "2035": 2_400},
        "fee_share": {"2027": 0.01, "2032": 0.0, "2036": 0.05},
    }
    m = type(scenario.market).model_validate(
        {**scenario.market.model_dump(), "forward": forward, "forward_is": forward_is}
    )
    power = {
        name: pm.model_copy(update={"forward_usd_mwh": {"2027": 40.0, "2031": 48.0}})
        for name, pm in scenario.power_markets.items()
    }
    return scenario.model_copy(update={"market": m, "power_markets": power})


def revision_2(scenario):
    """The scenario under revision 2's hashrate rule (start hashprice as break-even)."""
    m = scenario.market.model_copy(
        update={"breakeven_efficiency_j_th": None, "fleet_efficiency_gain": 0.0}
    )
    return scenario.model_copy(update={"market": m})


def independent(scenario):
    """The scenario with no common factor and a still AI rent index: nothing of the
    factor's stream is drawn."""
    m = type(scenario.market).model_validate(
        {
            **scenario.market.model_dump(),
            "factor": {"btc": 0.0, "ai_rent": 0.0, "tenant_exit": 0.0, "capex_overrun": 0.0},
            "ai": {"rent_drift": 0.03, "rent_volatility": 0.0},
        }
    )
    return scenario.model_copy(update={"market": m})


# ---- the CUDA source on the CPU, through the real wrappers --------------------------


@needs_compiler
@pytest.mark.parametrize(
    "variant",
    [
        lambda s: s,
        lagless,
        with_forwards,
        lambda s: with_forwards(s, "median"),
        revision_2,
        independent,
    ],
    ids=["as-filed", "lag-1", "forward-mean", "forward-median", "revision-2", "no-factor"],
)
def test_market_kernel_matches_numpy(on_host, scenario, variant):
    sc = variant(scenario)
    idx = np.arange(10**9, 10**9 + N, dtype=np.int64)  # high indices use counter word 1
    got = _cuda.market_paths(kernel_inputs(sc), idx, xp=np)
    want = market.market_paths(kernel_inputs(sc), idx, xp=np)
    assert on_host.launches == [("siteopt_market", (2,), (256,))]
    for name in ("btc_usd", "hashrate_eh", "reward_btc", "hashprice", "ai_rent_index"):
        close(getattr(got, name), getattr(want, name))


@needs_compiler
@pytest.mark.parametrize(
    "variant",
    [lambda s: s, with_forwards, lambda s: with_forwards(s, "median")],
    ids=["as-filed", "forward-mean", "forward-median"],
)
def test_power_kernel_matches_numpy(on_host, scenario, variant):
    scenario = variant(scenario)
    cal = horizon_calendar(kernel_inputs(scenario))
    idx = np.arange(N, dtype=np.int64)
    for m in range(len(scenario.power_markets)):
        got = _cuda.power_paths(kernel_inputs(scenario), m, cal, idx, xp=np)
        want = power.power_paths(kernel_inputs(scenario), m, cal, idx, xp=np)
        close(got.level, want.level)
        np.testing.assert_array_equal(got.fourcp_avoided, want.fourcp_avoided)
        np.testing.assert_array_equal(got.curve.multiples, want.curve.multiples)


@needs_compiler
@pytest.mark.parametrize("pays_power", [True, False])
def test_site_kernel_matches_numpy(on_host, scenario, pays_power):
    """Every site: curtailable or not, with and without a PPA, AI power paid or passed."""
    k = kernel_inputs(scenario)
    ctx = chunk_market(k, np.arange(N, dtype=np.int64), xp=np)
    for i, site in enumerate(k.sites):
        pays = pays_power and site.ai is not None  # a site without AI pays no AI power
        pw, fl, mining = site_mining(k, i, ctx, xp=np)
        want = _xp_streams(k, i, ctx, pays)
        inputs = sites.fused_site_inputs(k, i, ctx, pays)
        got = _cuda.site_stream_arrays(
            site, k.market.pool_fee, inputs, ctx.market.hashprice, pw, xp=np
        )
        generation = got.pop("fleet_gen")
        if site.mining.refresh == "when_it_pays":  # the refresh decided per scenario
            np.testing.assert_array_equal(generation, fl.generation)
        for name, array in got.items():
            close(array, getattr(want, name))


@needs_compiler
@pytest.mark.parametrize("rule", ["when_it_pays", "always", "never"])
def test_site_kernel_decides_the_refresh_as_numpy_does(on_host, rule):
    """The refresh rule in the kernel's per-scenario month loop: the same generations,
    streams and ASIC prices as mining.fleet_path, with refreshes taken in some scenarios
    and skipped in others at the same due date (when_it_pays)."""
    s = random_one_site_ai(
        horizon_years=8,
        **{
            "sites.0.mining.refresh": rule,
            "sites.0.mining.asic_refresh_years": 1.0,
            "sites.0.mining.efficiency_gain_per_year": 0.3,
            "sites.0.mining.asic_cost_usd_th": 4.0,
        },
    )
    fl, generation = _site_kernel_equals_xp(kernel_inputs(s))
    if rule == "when_it_pays":
        refreshed = (fl.generation[:, 1:] != fl.generation[:, :-1]).sum(axis=1)
        assert 0 < refreshed.min() < refreshed.max()  # decisions differ by scenario
    else:
        assert generation is None


REVISION_3 = {
    "tax.rate": 0.21,
    "tax.state_rate": 0.02,
    "tax.bonus_depreciation": 0.5,
    "tax.property_rate": 0.02,
    "tax.property_abatement_years": 1.5,
    "tax.property_abatement_share": 0.4,
    "market.cost_inflation": 0.05,
    "sites.0.mining.sga_usd_mw_month": 1_500.0,
}


@needs_compiler
@pytest.mark.parametrize("rule", ["when_it_pays", "always", "never"])
def test_site_kernel_taxes_and_prices_costs_as_numpy_does(on_host, rule):
    """Revision 3 in the kernel's month loop: opex and SG&A at each month's prices (the
    idle rule and the refresh decision read them), the running fleet's property tax (its
    cost, age and abatement follow the refreshes), and every PV weighted after tax, the
    ASICs net of their deductions."""
    s = random_one_site_ai(
        horizon_years=8,
        **{
            **REVISION_3,
            "sites.0.mining.refresh": rule,
            "sites.0.mining.asic_refresh_years": 1.0,
            "sites.0.mining.efficiency_gain_per_year": 0.3,
            "sites.0.mining.asic_cost_usd_th": 4.0,
        },
    )
    k = kernel_inputs(s)
    ctx = chunk_market(k, np.arange(N, dtype=np.int64), xp=np)
    assert float(np.max(site_mining(k, 0, ctx, xp=np)[2].property_tax)) > 0
    _site_kernel_equals_xp(k)


@needs_compiler
@pytest.mark.parametrize("rule", ["when_it_pays", "always", "never"])
def test_site_kernel_enrols_loses_machines_and_sees_the_halving_as_numpy_does(on_host, rule):
    """Revision 3's grid services, attrition and halving-aware refresh in the kernel's
    month loop: a curtailable site enrols in the ancillary programme in some months and
    not others, its fleet loses 10% of its machines a year, and yearly refresh dates fall
    before halvings."""
    s = random_one_site_ai(
        horizon_years=8,
        **{
            **REVISION_3,
            "sites.0.curtailable": True,
            "sites.0.mining.refresh": rule,
            "sites.0.mining.attrition": 0.1,
            "sites.0.mining.asic_refresh_years": 1.0,
            "sites.0.mining.efficiency_gain_per_year": 0.3,
            "sites.0.mining.asic_cost_usd_th": 4.0,
            "power_markets.grid.ancillary": {
                "capacity_usd_mw_month": 4_000.0,
                "deployed_hours_share": 0.01,
                "enrolled_share": 0.6,
                "committed_share": 0.7,
            },
        },
    )
    k = kernel_inputs(s)
    ctx = chunk_market(k, np.arange(N, dtype=np.int64), xp=np)
    paid = site_mining(k, 0, ctx, xp=np)[2].ancillary
    assert 0 < np.mean(paid > 0) < 1  # enrolled in some months only
    _site_kernel_equals_xp(k)


def _site_kernel_equals_xp(k):
    """The site kernel on the CPU equals its xp twin for the one site of ``k``, the fleet's
    generations too where the refresh is decided per scenario; (the fleet, generations)."""
    ctx = chunk_market(k, np.arange(N, dtype=np.int64), xp=np)
    pw, fl, _ = site_mining(k, 0, ctx, xp=np)
    want = _xp_streams(k, 0, ctx, True)
    got = _cuda.site_stream_arrays(
        k.sites[0], k.market.pool_fee, sites.fused_site_inputs(k, 0, ctx, True),
        ctx.market.hashprice, pw, xp=np,
    )  # fmt: skip
    generation = got.pop("fleet_gen")
    for name, array in got.items():
        close(array, getattr(want, name))
    if k.sites[0].mining.refresh == "when_it_pays":
        np.testing.assert_array_equal(generation, fl.generation)
    return fl, generation


def _xp_streams(scenario, i, ctx, pays_power):
    """The xp twin of the site kernel, as sites._site_streams runs it on numpy."""
    return sites._site_streams(scenario, i, ctx, pays_power, xp=np)[0]


@needs_compiler
def test_site_kernel_handles_free_and_negative_power(on_host):
    """A price level <= 0 runs every hour, as numpy's x = inf does."""
    sc = kernel_inputs(load_scenario(SCENARIO_FILES["texas"]))
    ctx = chunk_market(sc, np.arange(8, dtype=np.int64), xp=np)
    i = next(k for k, s in enumerate(sc.sites) if s.curtailable)
    pw, fl, mining = site_mining(sc, i, ctx, xp=np)
    level = pw.level.copy()
    level[:, ::3] = 0.0
    level[:, 1::7] = -5.0
    pw = power.PowerPaths(level, pw.fourcp_avoided, pw.curve)
    ctx = sites.ChunkMarket(ctx.scenarios, ctx.cal, ctx.market, [pw] * len(ctx.power))
    want = _xp_streams(sc, i, ctx, True)
    inputs = sites.fused_site_inputs(sc, i, ctx, True)
    got = _cuda.site_stream_arrays(
        sc.sites[i], sc.market.pool_fee, inputs, ctx.market.hashprice, pw, xp=np
    )
    got.pop("fleet_gen")
    for name, array in got.items():
        close(array, getattr(want, name))


@needs_compiler
def test_whole_valuation_through_the_kernels_on_the_cpu(on_host, monkeypatch, scenario):
    """value_options with every fused kernel in place equals the numpy reference.

    One thread: the host emulation keeps CUDA's thread indices in globals, and on a device
    the fused kernels run on CuPy, where LocalChunks values the sites on one thread."""
    want = value_options(scenario, backend="numpy", scenarios=N, chunk_size=128)
    monkeypatch.setattr(sites, "fused_enabled", lambda xp: True)  # the one dispatch point
    got = value_options(
        scenario, backend="numpy", scenarios=N, chunk_size=128, executor=LocalChunks(threads=1)
    )
    names = {name for name, _, _ in on_host.launches}
    assert names == set(_cuda.KERNEL_NAMES)
    a, b = got.options.table, want.options.table
    scale = np.maximum(np.abs(b["expected_npv_usd"]), b["std_npv_usd"]).to_numpy() + 1.0
    for col in ("expected_npv_usd", "std_npv_usd"):
        assert np.all(np.abs(a[col] - b[col]).to_numpy() <= RTOL * scale), col
    close(got.options.risk_npv_usd, want.options.risk_npv_usd)
    width = np.maximum(got.quantile_error_usd, want.quantile_error_usd) * (1 + 1e-9)
    for col in ("p5_npv_usd", "p50_npv_usd", "p95_npv_usd", "cvar_usd"):
        assert np.all(np.abs(a[col] - b[col]).to_numpy() <= width + 1e-6), col


@needs_compiler
@pytest.mark.parametrize("losses", ["offset", "carry_forward"])
def test_revision_3_valuation_through_the_kernels_on_the_cpu(on_host, monkeypatch, losses):
    """Taxes (losses offset or carried forward), property tax, cost inflation and SG&A,
    through every fused kernel, equal the numpy reference (texas, a few options' worth)."""
    changes = [f"{k.replace('sites.0', 'sites.pecos-1')}={v}" for k, v in REVISION_3.items()]
    scenario = load_scenario(SCENARIO_FILES["texas"], [*changes, f"tax.losses={losses}"])
    want = value_options(scenario, backend="numpy", scenarios=N, chunk_size=128)
    monkeypatch.setattr(sites, "fused_enabled", lambda xp: True)
    got = value_options(
        scenario, backend="numpy", scenarios=N, chunk_size=128, executor=LocalChunks(threads=1)
    )
    assert {name for name, _, _ in on_host.launches} == set(_cuda.KERNEL_NAMES)
    a, b = got.options.table, want.options.table
    scale = np.maximum(np.abs(b["expected_npv_usd"]), b["std_npv_usd"]).to_numpy() + 1.0
    for col in ("expected_npv_usd", "std_npv_usd", "leverage_usd", "tax_shield_usd"):
        assert np.all(np.abs(a[col] - b[col]).to_numpy() <= RTOL * scale), col
    close(got.options.risk_npv_usd, want.options.risk_npv_usd)


@needs_compiler
def test_grouped_means_through_the_kernels_on_the_cpu(on_host, monkeypatch):
    """The market states' conditional means (solve --staged) from the fused kernels equal
    the numpy reference's: the kernels give the NPVs, one host reduction groups them."""
    scenario = load_scenario(SCENARIO_FILES["texas"])
    grouping = staged_states(with_simulation(scenario, N, None), 3).grouping
    want = value_options(scenario, backend="numpy", scenarios=N, grouping=grouping)
    monkeypatch.setattr(sites, "fused_enabled", lambda xp: True)
    got = value_options(
        scenario,
        backend="numpy",
        scenarios=N,
        grouping=grouping,
        executor=LocalChunks(threads=1),
    )
    assert {name for name, _, _ in on_host.launches} == set(_cuda.KERNEL_NAMES)
    a, b = got.kernel.group_npv_usd, want.kernel.group_npv_usd
    assert a.shape == (9, len(got.options.table))
    close(a, b)


def test_fused_path_is_off_on_numpy_and_by_environment(monkeypatch):
    assert not fused_enabled(np)

    class FakeCupy:  # any module other than numpy counts as a device module
        pass

    assert fused_enabled(FakeCupy)
    monkeypatch.setenv(FUSED_ENV, "0")
    assert not fused_enabled(FakeCupy)


def test_cuda_source_writes_real_literals():
    """STYLE.md: 9.0/8.0, never 9/8 (an integer division in CUDA C)."""
    code = re.sub(r"//[^\n]*", "", _cuda.DEVICE_SRC + _cuda.KERNEL_SRC + gpubench.CEILING_SRC)
    assert not re.search(r"(?<![\w.])\d+\s*/\s*\d+(?![\w.])", code)


# ---- NVRTC: the source compiles, with no GPU and no driver ----------------------------


def _nvrtc():
    """cupy_backends' NVRTC binding with libnvrtc loaded, or a skip saying what is missing."""
    try:
        from cupy_backends.cuda.libs import nvrtc
    except ImportError as exc:
        pytest.skip(f"CuPy is not installed (pip install 'siteopt[nvrtc]'): {exc}")
    try:
        nvrtc.getVersion()
    except Exception as exc:  # libnvrtc missing: a CUDA-less machine without the wheel
        pytest.skip(f"libnvrtc not found (pip install nvidia-cuda-nvrtc-cu12): {exc}")
    return nvrtc


SOURCES = {
    "fused": (_cuda.CUDA_SOURCE, _cuda.KERNEL_NAMES),
    "ceilings": (gpubench.CEILING_SRC, gpubench.CEILING_KERNELS),
}


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize("arch", ["compute_75", "compute_80", "compute_90"])
def test_cuda_source_compiles_with_nvrtc(source, arch):
    """Every CUDA string compiles without warnings to PTX, with its extern "C" entries."""
    nvrtc = _nvrtc()
    code, entries = SOURCES[source]
    prog = nvrtc.createProgram(code, f"siteopt_{source}.cu", [], [])
    try:
        try:
            nvrtc.compileProgram(prog, [f"--gpu-architecture={arch}", "-std=c++14"])
        except nvrtc.NVRTCError as exc:
            pytest.fail(f"NVRTC rejected the {source} source: {exc}\n{nvrtc.getProgramLog(prog)}")
        log = nvrtc.getProgramLog(prog).strip("\x00\n ")
        assert log == "", log
        ptx = nvrtc.getPTX(prog)
        ptx = ptx.decode() if isinstance(ptx, bytes) else ptx
        for name in entries:
            assert f".entry {name}(" in ptx, name
    finally:
        nvrtc.destroyProgram(prog)


def test_nvrtc_rejects_broken_source():
    """The compile test can fail: a typo in the source is an NVRTC error."""
    nvrtc = _nvrtc()
    prog = nvrtc.createProgram(_cuda.CUDA_SOURCE + "\nint broken(", "broken.cu", [], [])
    try:
        with pytest.raises(nvrtc.NVRTCError):
            nvrtc.compileProgram(prog, ["--gpu-architecture=compute_80"])
    finally:
        nvrtc.destroyProgram(prog)


# ---- on a device ---------------------------------------------------------------------

needs_gpu = pytest.mark.skipif(not CUPY_OK, reason=CUPY_REASON)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("kernel", ["market", "power", "site"])
def test_device_kernels_match_the_xp_code_on_the_device(kernel, scenario, monkeypatch):
    """Fused against SITEOPT_FUSED=0 (the xp twins on CuPy), both on the GPU."""
    import cupy as cp

    idx = cp.arange(N, dtype=cp.int64)

    def run():  # through chunk_market, the one place that picks fused or xp
        ctx = chunk_market(kernel_inputs(scenario), idx, xp=cp)
        if kernel == "market":
            paths = ctx.market
            return [paths.btc_usd, paths.hashrate_eh, paths.reward_btc, paths.hashprice]
        if kernel == "power":
            p = next(p for p in ctx.power if p is not None)
            return [p.level, p.fourcp_avoided]
        return [
            sites.site_chunk(
                kernel_inputs(scenario), i, site_options(kernel_inputs(scenario), i), ctx, xp=cp
            ).npv
            for i in range(len(scenario.sites))
        ]

    fused = run()
    monkeypatch.setenv(FUSED_ENV, "0")
    reference = run()
    for g, w in zip(fused, reference, strict=True):
        assert type(g) is cp.ndarray
        close(g, w)


def test_host_emulation_can_fail(on_host):
    """A changed input shows up in the kernel's output: the parity above is not vacuous."""
    sc = kernel_inputs(load_scenario(SCENARIO_FILES["texas"]))
    idx = np.arange(16, dtype=np.int64)
    right = _cuda.market_paths(sc, idx, xp=np)
    nudged = dataclasses.replace(sc.market, fee_share=sc.market.fee_share * 1.001)
    wrong = _cuda.market_paths(dataclasses.replace(sc, market=nudged), idx, xp=np)
    with pytest.raises(AssertionError):
        close(wrong.reward_btc, right.reward_btc)


@pytest.mark.gpu
@needs_gpu
def test_out_of_device_memory_halves_the_chunk_and_goes_on(monkeypatch):
    """A memory pool capped far below one chunk's needs: CuPy raises OutOfMemoryError,
    the valuation halves the chunk until it fits, and the numbers do not change."""
    import cupy as cp

    from siteopt.kernels import chunks

    sc = load_scenario(SCENARIO_FILES["texas"])
    want = value_options(sc, backend="cupy", scenarios=8_000, chunk_size=1_024)
    halvings = []
    halve = chunks.ChunkSize.halve

    def counted(self):
        halvings.append(self.size)
        halve(self)

    monkeypatch.setattr(chunks.ChunkSize, "halve", counted)
    pool = cp.get_default_memory_pool()
    pool.free_all_blocks()
    pool.set_limit(size=192 << 20)  # an 8,000-scenario chunk of texas needs ~0.5 GiB
    try:
        got = value_options(sc, backend="cupy", scenarios=8_000, chunk_size=8_000)
    finally:
        pool.set_limit(size=0)  # 0: no limit
    assert halvings and halvings[0] == 8_000
    a, b = got.options.table, want.options.table
    for col in ("expected_npv_usd", "std_npv_usd"):
        close(a[col].to_numpy(), b[col].to_numpy())
    close(got.options.risk_npv_usd, want.options.risk_npv_usd)
