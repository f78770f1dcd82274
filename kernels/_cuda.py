"""Fused CUDA kernels for the valuation's hot loops, each beside its xp twin.

The xp code (``market.market_paths``, ``power.power_paths``, ``mining.mining_streams``
with ``coefficients.site_streams``) is the specification. On CuPy it runs as hundreds
of small elementwise launches per chunk: every Philox call alone is ~100 array
operations on (N, T) temporaries, and the hashrate feedback is a Python loop over
months. The kernels here do the same arithmetic in one launch each:

========================  ===================================  ======================
kernel                    twin                                 one thread per
========================  ===================================  ======================
``siteopt_market``        :func:`market.market_paths`          scenario (month loop)
``siteopt_power``         :func:`power.power_paths`            (scenario, month) cell
``siteopt_site``          ``mining_streams`` + ``site_streams``  scenario (month loop)
========================  ===================================  ======================

Random draws are made on the device with :data:`rng.PHILOX_CUDA_SRC`, the twin of the
numpy generator, so both paths see the same uniforms bit for bit. Arrays are stored
month-major, ``(T, N)`` with the scenario index fastest, so at each month the threads of
a warp touch consecutive addresses; callers get the ``(N, T)`` transposed view, which
every xp function accepts. Prefix sums and the month loop run in the order numpy uses
(sequential in the month), so the kernels agree with the xp path to a few ulps of
``exp``/``log``/``cos`` per month (parity tests: rtol 1e-9 in float64; there is no
float32 path, see benchmarks/RESULTS.md for why).

All device code is in :data:`DEVICE_SRC` as ``__device__`` functions; the ``__global__``
wrappers in :data:`KERNEL_SRC` only index. Tests compile ``DEVICE_SRC`` as C++ and run it
on the CPU against numpy, and compile the whole source with NVRTC, with no GPU.

CuPy is imported only inside the functions that launch kernels (STYLE.md rule 3).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .ancillary import GridService
from .backend import FUSED_ENV, fused_enabled
from .forward import central_market, power_centre
from .market import Calendar, MarketPaths, subsidy_schedule
from .mining import RefreshWeights
from .params import Portfolio, SiteParams
from .power import DurationCurve, PowerPaths, duration_curve
from .rng import (
    PHILOX_CUDA_SRC,
    STREAM_BTC,
    STREAM_FACTOR,
    STREAM_FACTOR_LEVEL,
    STREAM_FEES,
    power_stream,
)

__all__ = [
    "DEVICE_SRC",
    "FUSED_ENV",
    "KERNEL_COSTS",
    "KERNEL_NAMES",
    "KERNEL_SRC",
    "CUDA_SOURCE",
    "KernelCost",
    "fused_enabled",
    "launch",
    "market_paths",
    "power_paths",
    "site_stream_arrays",
]

THREADS_PER_BLOCK = 256

DEVICE_SRC = r"""
// ---- siteopt fused valuation kernels: device functions (twins of the xp code) ----

// Market path of one scenario (market.market_paths). Outputs are month-major with
// stride `ld` between months: out[t * ld] is month t of this scenario.
__device__ void siteopt_market_row(
    unsigned long long seed, unsigned long long scen, int months, int lag,
    const double* subsidy, double log_p0, double log_h0, double hp0,
    const double* step_a, double step_b, double rho, double rho_c,
    const double* fee_share, double sig_f, double fee_shift,
    const double* growth0, double elasticity, const double* anchor, double sig_h,
    unsigned int stream_btc, unsigned int stream_fees, long long ld,
    int draw_factor, int factor_months, unsigned int stream_factor, unsigned int stream_level,
    double load_btc, double load_ai, double ai_step, double ai_sig,
    double* btc, double* hashrate, double* reward, double* hashprice, double* ai_index)
{
    double cum = 0.0;  // sum of the BTC log steps of months before t, in numpy's order
    double log_h = log_h0;
    double log_hp0 = log(hp0);
    // the common factor (factor.factor_paths): F[t] = G / sqrt(T_f) + e[t] - mean(e)
    double g_part = 0.0, centre = 0.0;
    if (draw_factor) {
        double sum = 0.0;
        for (int u = 0; u < factor_months; ++u) {
            double e, o;
            philox_normal_pair(seed, scen, (unsigned int)u, stream_factor, &e, &o);
            sum = sum + e;
        }
        centre = sum / (double)factor_months;
        double g, g_unused;
        philox_normal_pair(seed, scen, 0u, stream_level, &g, &g_unused);
        g_part = g / sqrt((double)factor_months);
    }
    double log_i = 0.0;  // ln of the AI rent index
    for (int t = 0; t < months; ++t) {
        double z1, z_indep, z_fee, z_unused;
        philox_normal_pair(seed, scen, (unsigned int)t, stream_btc, &z1, &z_indep);
        philox_normal_pair(seed, scen, (unsigned int)t, stream_fees, &z_fee, &z_unused);
        double f = 0.0, own = 0.0;
        if (draw_factor) {
            double e;
            philox_normal_pair(seed, scen, (unsigned int)t, stream_factor, &e, &own);
            f = g_part + (e - centre);
            if (load_btc != 0.0) {
                z1 = load_btc * f + sqrt(1.0 - load_btc * load_btc) * z1;
            }
        }
        double z2 = rho * z1 + rho_c * z_indep;
        double fee = fee_share[t] * exp(sig_f * z_fee - fee_shift);
        double rew = subsidy[t] * (1.0 + fee);
        double price = exp(log_p0 + cum);
        double h = exp(log_h);
        double hp = 144.0 * rew * price / (h * 1000.0);
        long long at = (long long)t * ld;
        btc[at] = price;
        hashrate[at] = h;
        reward[at] = rew;
        hashprice[at] = hp;
        double log_lagged = t >= lag ? log(hashprice[at - (long long)lag * ld]) : log_hp0;
        double growth = growth0[t] + elasticity * (log_lagged - anchor[t]);
        log_h = log_h + growth / 12.0 + sig_h * z2;
        cum = cum + (step_a[t] + step_b * z1);
        ai_index[at] = exp(log_i);
        double z_ai = load_ai == 0.0 ? own
                                     : load_ai * f + sqrt(1.0 - load_ai * load_ai) * own;
        log_i = log_i + (ai_step + ai_sig * z_ai);
    }
}

// Power price level and 4CP outcome of one (scenario, month) (power.power_paths).
// `first` is the first month of the horizon in month t's calendar year.
__device__ void siteopt_power_cell(
    unsigned long long seed, unsigned long long scen, unsigned int month, unsigned int first,
    unsigned int stream, double mean, double sig, double shift, double avoidance,
    double* level, double* avoided)
{
    double z, z_unused;
    philox_normal_pair(seed, scen, month, stream, &z, &z_unused);
    *level = mean * exp(sig * z - shift);
    unsigned int w[4];
    philox_draw(seed, scen, first, stream, w);
    *avoided = philox_uniform(w[2]) < avoidance ? 1.0 : 0.0;
}

// Number of curve multiples strictly below x: numpy.searchsorted(mult, x, "left").
__device__ __forceinline__ int siteopt_bins_below(const double* mult, int k, double x)
{
    int lo = 0, hi = k;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (mult[mid] < x) { lo = mid + 1; } else { hi = mid; }
    }
    return lo;
}

// A month enrolled in the market's ancillary programme where that earns more over the
// power than curtailing on price (ancillary.enrolled_month): `*run` and `*price_share`
// come in as curtailing on price leaves them and go out as the month runs; `*earned` is
// the capacity payment per grid MW.
__device__ void siteopt_enrol(
    double value, double lv, double hours_up, double cap, double share, double deployed,
    double committed, double price_total, double* run, double* price_share, double* earned)
{
    double on_price = hours_up * *run * value - hours_up * lv * *price_share;
    double offered = *run + committed * (1.0 - *run);
    double offered_price = *price_share + committed * (price_total - *price_share);
    double run_e = offered * (1.0 - deployed);
    double price_e = offered_price * (1.0 - deployed);
    double paid = cap * offered;
    double enrolled = hours_up * run_e * value - hours_up * lv * price_e;
    enrolled = enrolled + paid;
    double s = enrolled > on_price ? share : 0.0;
    *run = *run + s * (run_e - *run);
    *price_share = *price_share + s * (price_e - *price_share);
    *earned = s * paid;
}

// A month's revenue (with its capacity payment) less the power it buys per grid MW for a
// fleet of `ph` PH/s per MW of which `alive` still works, or where idling is better what
// an idle month saves: the opex it avoids over the 4CP running would pay
// (mining._hashing_over_power).
__device__ double siteopt_over_power(
    double hp, double lv, double ph, double hours_up, double pool_fee,
    const double* mult, const double* cum_w, const double* cum_wm, int k,
    int curtailable, double avoidable, double opex, double fourcp, double alive,
    int anc_on, double anc_cap, double anc_share, double anc_deployed,
    double anc_committed, double anc_total)
{
    double value = hp / 24.0 * ph * (1.0 - pool_fee);
    double run = 1.0, price_share = 1.0, earned = 0.0;
    if (curtailable) {
        int bin = lv > 0.0 ? siteopt_bins_below(mult, k, value / lv) : k;
        run = cum_w[bin];
        price_share = cum_wm[bin];
        if (anc_on) {
            siteopt_enrol(value, lv, hours_up, anc_cap, anc_share, anc_deployed,
                          anc_committed, anc_total, &run, &price_share, &earned);
        }
    }
    double x = (hours_up * run * value - hours_up * lv * price_share + earned) * alive;
    x = x - fourcp * alive;
    if (avoidable > 0.0 && x < avoidable * opex) { x = avoidable * opex; }
    return x;
}

// One site's streams for one scenario (mining.fleet_path, mining.mining_streams,
// mining.fleet_property_tax, options.ai_power_per_it_mw, mining.ppa_settlement,
// coefficients.site_streams). Per-month inputs have length T; outputs are month-major
// with stride `ld`; prefix outputs have T + 1 entries. The fleet: `ph_gen[s]` PH/s per
// MW of the generation bought in month s, `buy_gen[s]` its cost at the start's ASIC
// price; refresh_mode 0 always (every `period` months at buy_gen), 1 never, 2
// when_it_pays (at a due date, iff annuity x the margin gained >= buy_gen x (hashprice /
// hp0) ^ elasticity, the gain weighted by `w_before[t]` at this month's hashprice and by
// `w_after[t]` at `w_ratio[t]` times it, the months after the next known halving; else
// due again in 12 months). With refresh_mode 2 the month the
// running fleet was bought goes to `fleet_gen` (as a double). A fleet bought in month b
// still has `keep` ^ ((t - b) / 12) of its machines working in month t when `attrition`
// is set (revenue, power, 4CP, capacity payments and property tax are theirs); with
// `anc_on` a curtailable site may enrol in the ancillary programme. Opex and SG&A are at
// today's prices times `prices[t]`; the running fleet pays property tax on its cost less
// straight-line depreciation over `asic_life` months at `ptax_month` a month, cut by
// `abate_share` in the first `abate_months` of a fleet bought after the start. The PV
// sums weigh a taxable flow by `taxed[t]` and a USD of ASICs by `capex_w[t]`.
__device__ void siteopt_site_row(
    int months, long long ld,
    const double* hashprice, const double* level, const double* avoided,
    const double* ph_gen, const double* buy_gen, const double* hours, const double* taxed,
    const double* capex_w, const double* prices,
    const double* mult, const double* cum_w, const double* cum_wm, int k,
    int curtailable, double uptime, double pool_fee, double opex, double sga,
    double avoidable, double fourcp_month, int pays_power, double pue_ai, double ppa_mw,
    double ppa_price, int refresh_mode, int period, const double* w_before,
    const double* w_after, const double* w_ratio, double hp0,
    double elasticity, double ptax_month, double asic_life, double abate_months,
    double abate_share, int attrition, double keep,
    int anc_on, double anc_cap, double anc_share, double anc_deployed,
    double anc_committed, double anc_total,
    double* margin, double* ai_power,
    double* mining_pv, double* mining_raw, double* ai_power_pv, double* ai_power_raw,
    double* ppa_pv, double* fleet_gen)
{
    double p_pv = 0.0, p_raw = 0.0, a_pv = 0.0, a_raw = 0.0, ppa = 0.0;
    int bought = 0, due = period;
    double fleet_cost = buy_gen[0];  // what the running fleet cost per grid MW
    mining_pv[0] = 0.0;
    mining_raw[0] = 0.0;
    ai_power_pv[0] = 0.0;
    ai_power_raw[0] = 0.0;
    for (int t = 0; t < months; ++t) {
        long long at = (long long)t * ld;
        double lv = level[at];
        double hp = hashprice[at];
        double hours_up = hours[t] * uptime;
        double opex_t = opex * prices[t];
        // the 4CP of a month run: a curtailable site misses the peaks where `avoided`
        double fourcp = curtailable ? fourcp_month * (1.0 - avoided[at]) : fourcp_month;
        double refresh = 0.0;
        if (refresh_mode == 0 && t > 0 && t % period == 0) {
            bought = t;
            refresh = buy_gen[t];
            fleet_cost = refresh;
        } else if (refresh_mode == 2 && t == due) {
            double cost = buy_gen[t] * pow(hp / hp0, elasticity);
            double old_alive = attrition ? pow(keep, (double)(t - bought) / 12.0) : 1.0;
            double worth = 0.0;
            for (int part = 0; part < 2; ++part) {
                double w = part == 0 ? w_before[t] : w_after[t];
                if (part == 1 && !(w > 0.0)) { break; }
                double hq = part == 0 ? hp : hp * w_ratio[t];
                double gain = siteopt_over_power(hq, lv, ph_gen[t], hours_up, pool_fee, mult,
                                                 cum_w, cum_wm, k, curtailable, avoidable,
                                                 opex_t, fourcp, 1.0, anc_on, anc_cap,
                                                 anc_share, anc_deployed, anc_committed,
                                                 anc_total)
                            - siteopt_over_power(hq, lv, ph_gen[bought], hours_up, pool_fee,
                                                 mult, cum_w, cum_wm, k, curtailable,
                                                 avoidable, opex_t, fourcp, old_alive,
                                                 anc_on, anc_cap, anc_share, anc_deployed,
                                                 anc_committed, anc_total);
                worth = part == 0 ? w * gain : worth + w * gain;
            }
            if (worth >= cost) {
                bought = t;
                due = t + period;
                refresh = cost;
                fleet_cost = cost;
            } else {
                due = t + 12;
            }
        }
        double alive = attrition ? pow(keep, (double)(t - bought) / 12.0) : 1.0;
        double value = hp / 24.0 * ph_gen[bought] * (1.0 - pool_fee);
        double run = 1.0, price_share = 1.0, earned = 0.0;
        if (curtailable) {
            // A free or negative price runs every hour (numpy: x = inf).
            int bin = lv > 0.0 ? siteopt_bins_below(mult, k, value / lv) : k;
            run = cum_w[bin];
            price_share = cum_wm[bin];
            if (anc_on) {
                siteopt_enrol(value, lv, hours_up, anc_cap, anc_share, anc_deployed,
                              anc_committed, anc_total, &run, &price_share, &earned);
            }
        }
        double revenue = hours_up * run * value * alive;
        double energy = hours_up * lv * price_share * alive;
        double anc = earned * alive;
        fourcp = fourcp * alive;
        double opex_line = opex_t;
        if (avoidable > 0.0 && revenue - energy + anc < avoidable * opex_t + fourcp) {
            // idle the month: no revenue, no power bought, no capacity payment, the
            // avoidable opex and the 4CP saved
            revenue = 0.0;
            energy = 0.0;
            anc = 0.0;
            opex_line = opex_t * (1.0 - avoidable);
            fourcp = 0.0;
        }
        opex_line = opex_line + sga * prices[t];
        double age = (double)(t - bought);
        double assessed = 1.0 - age / asic_life;
        assessed = assessed < 0.0 ? 0.0 : (assessed > 1.0 ? 1.0 : assessed);
        double cut = (bought > 0 && age < abate_months) ? abate_share : 0.0;
        double ptax = fleet_cost * assessed * (ptax_month * (1.0 - cut)) * alive;
        double m = revenue + anc - energy - opex_line - fourcp - ptax;
        double ai = pays_power ? pue_ai * (hours[t] * lv + fourcp_month) : 0.0;
        double settle = ppa_mw > 0.0 ? ppa_mw * hours[t] * (lv - ppa_price) : 0.0;
        margin[at] = m;
        ai_power[at] = ai;
        if (refresh_mode == 2) { fleet_gen[at] = (double)bought; }
        p_pv = p_pv + (taxed[t] * m - capex_w[t] * refresh);
        p_raw = p_raw + m;
        a_pv = a_pv + taxed[t] * ai;
        a_raw = a_raw + ai;
        ppa = ppa + taxed[t] * settle;
        long long next = (long long)(t + 1) * ld;
        mining_pv[next] = p_pv;
        mining_raw[next] = p_raw;
        ai_power_pv[next] = a_pv;
        ai_power_raw[next] = a_raw;
    }
    *ppa_pv = ppa;
}
"""

KERNEL_SRC = r"""
// ---- __global__ wrappers: indexing only ----
extern "C" __global__ void siteopt_market(
    const long long* scenarios, int n, int months, int lag,
    const double* subsidy, unsigned long long seed, double log_p0, double log_h0, double hp0,
    const double* step_a, double step_b, double rho, double rho_c,
    const double* fee_share, double sig_f, double fee_shift,
    const double* growth0, double elasticity, const double* anchor, double sig_h,
    unsigned int stream_btc, unsigned int stream_fees,
    int draw_factor, int factor_months, unsigned int stream_factor, unsigned int stream_level,
    double load_btc, double load_ai, double ai_step, double ai_sig,
    double* btc, double* hashrate, double* reward, double* hashprice, double* ai_index)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) { return; }
    siteopt_market_row(seed, (unsigned long long)scenarios[i], months, lag, subsidy,
                       log_p0, log_h0, hp0, step_a, step_b, rho, rho_c,
                       fee_share, sig_f, fee_shift, growth0, elasticity, anchor, sig_h,
                       stream_btc, stream_fees, (long long)n,
                       draw_factor, factor_months, stream_factor, stream_level,
                       load_btc, load_ai, ai_step, ai_sig,
                       btc + i, hashrate + i, reward + i, hashprice + i, ai_index + i);
}

extern "C" __global__ void siteopt_power(
    const long long* scenarios, int n, int months, const unsigned int* first_of_year,
    const double* mean, unsigned long long seed, unsigned int stream,
    double sig, double shift, double avoidance, double* level, double* avoided)
{
    long long cells = (long long)n * months;
    long long step = (long long)blockDim.x * gridDim.x;
    for (long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x; c < cells; c += step) {
        int t = (int)(c / n);
        int i = (int)(c - (long long)t * n);
        siteopt_power_cell(seed, (unsigned long long)scenarios[i], (unsigned int)t,
                           first_of_year[t], stream, mean[t], sig, shift, avoidance,
                           level + c, avoided + c);
    }
}

extern "C" __global__ void siteopt_site(
    int n, int months,
    const double* hashprice, const double* level, const double* avoided,
    const double* ph_gen, const double* buy_gen, const double* hours, const double* taxed,
    const double* capex_w, const double* prices,
    const double* mult, const double* cum_w, const double* cum_wm, int k,
    int curtailable, double uptime, double pool_fee, double opex, double sga,
    double avoidable, double fourcp_month, int pays_power, double pue_ai, double ppa_mw,
    double ppa_price, int refresh_mode, int period, const double* w_before,
    const double* w_after, const double* w_ratio, double hp0,
    double elasticity, double ptax_month, double asic_life, double abate_months,
    double abate_share, int attrition, double keep,
    int anc_on, double anc_cap, double anc_share, double anc_deployed,
    double anc_committed, double anc_total,
    double* margin, double* ai_power,
    double* mining_pv, double* mining_raw, double* ai_power_pv, double* ai_power_raw,
    double* ppa_pv, double* fleet_gen)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) { return; }
    siteopt_site_row(months, (long long)n, hashprice + i, level + i, avoided + i,
                     ph_gen, buy_gen, hours, taxed, capex_w, prices, mult, cum_w, cum_wm, k,
                     curtailable, uptime, pool_fee, opex, sga, avoidable, fourcp_month,
                     pays_power, pue_ai, ppa_mw, ppa_price,
                     refresh_mode, period, w_before, w_after, w_ratio, hp0, elasticity,
                     ptax_month, asic_life, abate_months, abate_share, attrition, keep,
                     anc_on, anc_cap, anc_share, anc_deployed, anc_committed, anc_total,
                     margin + i, ai_power + i, mining_pv + i, mining_raw + i,
                     ai_power_pv + i, ai_power_raw + i, ppa_pv + i,
                     refresh_mode == 2 ? fleet_gen + i : fleet_gen);
}
"""

CUDA_SOURCE = PHILOX_CUDA_SRC + DEVICE_SRC + KERNEL_SRC
KERNEL_NAMES = ("siteopt_market", "siteopt_power", "siteopt_site")


@dataclass(frozen=True)
class KernelCost:
    """Work per (scenario, month) cell of a kernel, counted from its source.

    ``flops`` counts float64 add, sub, mul, div and compare-select as 1 and each
    ``exp``/``log``/``sqrt``/``cos``/``sin`` as 20 (about what CUDA's double-precision
    library spends); Philox's integer rounds are not flops. ``bytes`` counts DRAM
    traffic of the (N, T) arrays read and written; per-month vectors stay in cache.
    """

    flops: float
    bytes: float


KERNEL_COSTS = {
    # two Box-Muller pairs (4 x 20 + 2 x 20 sincos), 3 exp + 1 log (80), ~22 arithmetic;
    # writes 4 arrays and reads the lagged hashprice: 5 x 8 bytes.
    # with the factor: two more pairs a month (its innovation twice: the bridge's mean, then
    # the month's), one exp for the AI rent index; writes 5 arrays.
    "siteopt_market": KernelCost(flops=8 * 20 + 2 * 20 + 5 * 20 + 30, bytes=6 * 8),
    # one pair (3 x 20 + 20), one exp (20), ~8 arithmetic; writes 2 arrays.
    "siteopt_power": KernelCost(flops=4 * 20 + 20 + 8, bytes=2 * 8),
    # ~40 arithmetic with the property tax, a ~5-step search; reads 3 arrays, writes 6 (7
    # with the refresh decision, which adds two searches and a pow at each due date, about
    # once a year).
    "siteopt_site": KernelCost(flops=45, bytes=9 * 8),
}


@functools.cache
def _module() -> Any:
    """The compiled module (NVRTC on first use; CuPy caches the binary on disk)."""
    import cupy

    return cupy.RawModule(code=CUDA_SOURCE, options=("-std=c++14",))


def launch(name: str, grid: tuple[int], block: tuple[int], args: tuple) -> None:
    """Run kernel ``name`` of :data:`CUDA_SOURCE` on the current device.

    The one place that launches; tests replace it with a CPU emulation of the same
    source (tests/kernels/cuda_host.py) to run every wrapper here without a GPU.
    """
    _module().get_function(name)(grid, block, args)


def _blocks(n: int) -> tuple[int]:
    return ((n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK,)


def _month_major(xp: ModuleType, rows: int, n: int) -> Any:
    """An uninitialised (rows, n) float64 device array: month-major storage."""
    return xp.empty((rows, n), dtype=xp.float64)


def market_paths(scenario: Portfolio, scenarios: Any, *, xp: ModuleType) -> MarketPaths:
    """Fused twin of :func:`market.market_paths` (same arguments, same result)."""
    m, months = scenario.market, scenario.months
    n = int(scenarios.shape[0])
    idx = xp.ascontiguousarray(scenarios, dtype=xp.int64)
    sub = subsidy_schedule(scenario)
    c = central_market(scenario, sub)
    out = [_month_major(xp, months, n) for _ in range(5)]
    rho = m.hashrate_price_correlation
    f64 = np.float64

    def device(a: np.ndarray) -> Any:
        return xp.asarray(np.ascontiguousarray(a, dtype=np.float64))

    args = (
        idx, np.int32(n), np.int32(months), np.int32(m.hashrate_lag_months), device(sub),
        np.uint64(scenario.simulation.seed), f64(c.log_btc0), f64(c.log_hashrate0),
        f64(c.start_hashprice), device(c.btc_step), f64(c.btc_sigma), f64(rho),
        f64(np.sqrt(1.0 - rho * rho)), device(c.fee_share), f64(m.fee_share_volatility),
        f64(c.fee_shift), device(c.hashrate_drift), f64(m.hashrate_elasticity),
        device(c.hashrate_anchor), f64(m.hashrate_volatility / np.sqrt(12.0)),
        np.uint32(STREAM_BTC), np.uint32(STREAM_FEES),
        np.int32(m.factor.btc != 0.0 or m.ai.rent_volatility != 0.0),
        np.int32(m.factor_months or months), np.uint32(STREAM_FACTOR),
        np.uint32(STREAM_FACTOR_LEVEL), f64(m.factor.btc), f64(m.factor.ai_rent),
        f64((m.ai.rent_drift - 0.5 * m.ai.rent_volatility**2) / 12.0),
        f64(m.ai.rent_volatility / np.sqrt(12.0)), *out,
    )  # fmt: skip
    if n:
        launch("siteopt_market", _blocks(n), (THREADS_PER_BLOCK,), args)
    btc, hashrate, reward, hashprice, index = (a.T for a in out)
    return MarketPaths(btc, hashrate, reward, hashprice, index)


def first_month_of_year(cal: Calendar) -> np.ndarray:
    """For each month, the first month of the horizon in the same calendar year."""
    return np.searchsorted(cal.year, cal.year, side="left")


def power_paths(
    scenario: Portfolio, market_index: int, cal: Calendar, scenarios: Any, *, xp: ModuleType
) -> PowerPaths:
    """Fused twin of :func:`power.power_paths`."""
    pm = list(scenario.power_markets.values())[market_index]
    centre, shift = power_centre(scenario, pm, cal.month_of_year)
    mean = xp.asarray(centre, dtype=xp.float64)
    first = xp.asarray(first_month_of_year(cal), dtype=xp.uint32)
    n, months = int(scenarios.shape[0]), cal.months
    level, avoided = _month_major(xp, months, n), _month_major(xp, months, n)
    cells = n * months
    if cells:
        grid = (min(_blocks(cells)[0], 65_535),)
        launch(
            "siteopt_power",
            grid,
            (THREADS_PER_BLOCK,),
            (
                xp.ascontiguousarray(scenarios, dtype=xp.int64),
                np.int32(n),
                np.int32(months),
                first,
                mean,
                np.uint64(scenario.simulation.seed),
                np.uint32(power_stream(market_index)),
                np.float64(pm.price_volatility),
                np.float64(shift),
                np.float64(pm.fourcp_avoidance),
                level,
                avoided,
            ),  # fmt: skip
        )
    return PowerPaths(level.T, avoided.T, duration_curve(pm))


REFRESH_MODES = {"always": 0, "never": 1, "when_it_pays": 2}  # the kernel's refresh_mode


@dataclass(frozen=True)
class SiteInputs:
    """Host-side facts of one site that :func:`site_stream_arrays` needs (numpy)."""

    ph_gen: np.ndarray  # (T,) [PH/s per grid MW of the generation bought that month]
    buy_gen: np.ndarray  # (T,) [USD per grid MW: that generation at the start's ASIC price]
    hours: np.ndarray  # (T,) [h]
    taxed: np.ndarray  # (T,) a taxable USD's weight: discount after tax [-]
    capex_weight: np.ndarray  # (T,) a USD of ASICs' weight, net of its deductions [-]
    prices: np.ndarray  # (T,) cost index: opex and SG&A at today's prices times this [-]
    curve: DurationCurve
    fourcp_usd_mw_month: float
    pays_power: bool
    idle_saving: float = 0.0  # share of opex an idle month saves (mining.idle_saving)
    refresh: str = "always"  # the site's refresh rule
    period: int = 48  # [months between refresh dates]
    # mining.refresh_weights: (T,) each; required under refresh: when_it_pays
    weights: RefreshWeights | None = None
    start_hashprice: float = 1.0  # [USD/PH/day]
    asic_price_elasticity: float = 0.0  # [-]
    property_tax_month: float = 0.0  # property_rate / 12 [1/month]
    asic_life_months: float = 60.0  # assessed value falls to 0 over it [months]
    abatement_months: float = 0.0  # [months from a purchase after the start]
    abatement_share: float = 0.0  # [-]
    attrition: float = 0.0  # mining.attrition [1/yr]
    service: GridService | None = None  # the ancillary programme the site may enrol in


def site_stream_arrays(
    site: SiteParams,
    pool_fee: float,
    inputs: SiteInputs,
    hashprice: Any,
    power: PowerPaths,
    *,
    xp: ModuleType,
) -> dict[str, Any]:
    """Fused twin of ``fleet_path`` + ``mining_streams`` + ``ai_power_per_it_mw`` +
    ``site_streams``.

    Returns
    -------
    dict of arrays
        ``margin`` and ``ai_power`` (N, T), the prefix sums ``mining_pv``,
        ``mining_raw``, ``ai_power_pv``, ``ai_power_raw`` (N, T + 1) and ``ppa_pv`` (N,),
        the fields of :class:`coefficients.SiteStreams`; and ``fleet_gen`` (N, T) int64,
        the month the running fleet was bought, under ``refresh: when_it_pays`` only
        (else None).
    """
    n, months = int(hashprice.shape[0]), int(hashprice.shape[1])
    mode = REFRESH_MODES[inputs.refresh]
    if mode == 2 and inputs.weights is None:
        raise ValueError("refresh: when_it_pays needs the refresh weights (mining.refresh_weights)")
    w = inputs.weights or RefreshWeights(np.zeros(months), np.zeros(months), np.ones(months))
    weights = [xp.asarray(np.ascontiguousarray(a, dtype=np.float64)) for a in (
        w.before, w.after, w.ratio)]  # fmt: skip
    svc = inputs.service or GridService(0.0, 0.0, 0.0, 0.0, 1.0)
    vec = [xp.asarray(v, dtype=xp.float64) for v in (
        inputs.ph_gen, inputs.buy_gen, inputs.hours, inputs.taxed, inputs.capex_weight,
        inputs.prices, inputs.curve.multiples, inputs.curve.cum_weight,
        inputs.curve.cum_weighted_multiple,
    )]  # fmt: skip
    margin, ai_power = _month_major(xp, months, n), _month_major(xp, months, n)
    prefixes = [_month_major(xp, months + 1, n) for _ in range(4)]
    ppa_pv = xp.empty(n, dtype=xp.float64)
    fleet_gen = _month_major(xp, months, n) if mode == 2 else xp.empty((1, 1), dtype=xp.float64)
    m, p = site.mining, site.power
    pue_ai = site.ai.pue if site.ai is not None else 1.0
    if n:
        launch(
            "siteopt_site",
            _blocks(n),
            (THREADS_PER_BLOCK,),
            (
                np.int32(n),
                np.int32(months),
                *(_month_major_view(a, xp) for a in (hashprice, power.level, power.fourcp_avoided)),
                *vec,
                np.int32(len(inputs.curve.multiples)),
                np.int32(bool(site.curtailable)),
                np.float64(m.uptime),
                np.float64(pool_fee),
                np.float64(m.opex_usd_mw_month),
                np.float64(m.sga_usd_mw_month),
                np.float64(inputs.idle_saving),
                np.float64(inputs.fourcp_usd_mw_month),
                np.int32(inputs.pays_power),
                np.float64(pue_ai),
                np.float64(p.ppa_mw),
                np.float64(p.ppa_price_usd_mwh),
                np.int32(mode),
                np.int32(inputs.period),
                *weights,
                np.float64(inputs.start_hashprice),
                np.float64(inputs.asic_price_elasticity),
                np.float64(inputs.property_tax_month),
                np.float64(inputs.asic_life_months),
                np.float64(inputs.abatement_months),
                np.float64(inputs.abatement_share),
                np.int32(inputs.attrition > 0),
                np.float64(1.0 - inputs.attrition),
                np.int32(inputs.service is not None),
                np.float64(svc.capacity_usd_mw_month),
                np.float64(svc.enrolled_share),
                np.float64(svc.deployed_share),
                np.float64(svc.committed_share),
                np.float64(svc.price_total),
                margin,
                ai_power,
                *prefixes,
                ppa_pv,
                fleet_gen,
            ),  # fmt: skip
        )
    names = ("mining_pv", "mining_raw", "ai_power_pv", "ai_power_raw")
    return {
        "margin": margin.T,
        "ai_power": ai_power.T,
        **{name: a.T for name, a in zip(names, prefixes, strict=True)},
        "ppa_pv": ppa_pv,
        "fleet_gen": fleet_gen.T.astype(xp.int64) if mode == 2 else None,
    }


def _month_major_view(a: Any, xp: ModuleType) -> Any:
    """The (T, N) C-contiguous storage of an (N, T) array (a copy only if it is not)."""
    return xp.ascontiguousarray(a.T, dtype=xp.float64)
