"""Invariances of the valuation: chunking, MW scaling, common random numbers, the risk
sample, and the fast path (prefix sums) against the month-by-month reference.

Tolerances: the fast and reference paths sum the same float64 terms in a different
order over <= 180 months, so they agree to ~1e-14 of the option's NPV scale; 1e-9 is
the brief's bound. "Relative" is taken against the option's largest |NPV| over the
chunk, because an NPV that crosses zero has no pointwise relative error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from siteopt.app.params import kernel_inputs
from siteopt.app.valuation import plan_npv_samples, value_options
from siteopt.kernels.cashflows import (
    LINE_ITEMS,
    MEMO_ITEMS,
    TERMINAL_MEMOS,
    adjusted_present_value,
    expected_cashflows,
    option_cashflows,
    option_npv,
)
from siteopt.kernels.debt import Loan
from siteopt.kernels.hosting import TAIL_CONTRACT
from siteopt.kernels.market import horizon_calendar
from siteopt.kernels.sites import SiteOption, chunk_market, site_chunk, site_options
from siteopt.model.load import load_scenario, with_simulation

from .helpers import SCENARIO_FILES, random_one_site_ai

RTOL = 1e-9
STATS = ["expected_npv_usd", "std_npv_usd", "p5_npv_usd", "p50_npv_usd", "p95_npv_usd", "cvar_usd"]


@pytest.fixture(scope="module")
def texas():
    # a risk sample of 256 (the file leaves it to the default): it spans three chunks of 97
    return load_scenario(SCENARIO_FILES["texas"], ["simulation.risk_sample=256"])


def _idx(n: int, lo: int = 0) -> np.ndarray:
    return np.arange(lo, lo + n, dtype=np.int64)


def scenario_contract(scenario, option):
    return kernel_inputs(scenario).contracts[option.contract_index]


def _assert_paths_equal(scenario, n: int = 200) -> dict[str, int]:
    """site_chunk == option_npv for every option of every site; returns event counts."""
    ctx = chunk_market(kernel_inputs(scenario), _idx(n), xp=np)
    seen = {"exits_to_mining": 0, "lost_to_lender": 0, "options": 0, "fitouts": 0, "leases": 0,
            "terminated": 0, "running_at_end": 0}  # fmt: skip
    for i in range(len(scenario.sites)):
        opts = site_options(kernel_inputs(scenario), i)
        fast = site_chunk(kernel_inputs(scenario), i, opts, ctx, xp=np, levers=True)
        for j, opt in enumerate(opts):
            ref = option_npv(kernel_inputs(scenario), opt, ctx, xp=np)
            scale = max(float(np.max(np.abs(ref))), 1.0)
            err = float(np.max(np.abs(fast.npv[:, j] - ref)))
            assert err <= RTOL * scale, f"{scenario.sites[i].name} {opt.label}: {err / scale:.3g}"
            # the terminal value's PV, read from the coefficients, against the monthly path's:
            # the exit value after its tax at the unlevered rate, the debt owed at the debt's
            memo = option_cashflows(kernel_inputs(scenario), opt, ctx, xp=np).memo
            tv = ctx.cal.discount[-1] * (memo["exit_value"] + memo["exit_tax"])
            if opt.contract_index is not None:
                rate = Loan.of(
                    kernel_inputs(scenario), scenario_contract(scenario, opt)
                ).market_rate
                tv = tv - (1.0 + rate) ** (-scenario.horizon_years) * memo["debt_owed_at_end"]
            err = float(np.max(np.abs(fast.levers[:, j] - tv)))
            assert err <= RTOL * scale, f"{scenario.sites[i].name} {opt.label} terminal"
            seen["options"] += 1
        for (_, c), ev in fast.events.items():
            seen["exits_to_mining"] += int(np.sum(ev.to_mining))
            seen["lost_to_lender"] += int(np.sum(ev.lost))
            seen["leases"] += sum(int(np.sum(x.end > x.start)) for x in ev.leases)
            seen["fitouts"] += sum(int(np.sum(x.fitout)) for x in ev.leases)
            seen["terminated"] += int(np.sum(ev.terminated))
            # a cloud contract still runs at T (or has not started): a buyer takes it over
            if scenario.contracts[c].kind == "cloud":
                running = (ev.tail_kind == TAIL_CONTRACT) & ev.ai_after
                seen["running_at_end"] += int(np.sum(running))
    return seen


# --------------------------------------------------------------------------- chunking


@pytest.fixture(scope="module")
def chunked(texas):
    n = 2_500  # three reduction blocks; risk_sample 256 spans three chunks of 97
    return {
        size: value_options(texas, backend="numpy", scenarios=n, chunk_size=size)
        for size in (97, 1_300, n)
    }


def test_same_table_for_any_chunk_size(chunked):
    """Bit-identical: the reductions run over fixed scenario blocks, not over chunks, so
    the chunk size (which follows the machine's free memory) cannot move a result."""
    one = chunked[2_500]
    for size in (97, 1_300):
        other = chunked[size]
        assert other.chunk_size == size
        pd.testing.assert_frame_equal(one.options.table, other.options.table, check_exact=True)
        np.testing.assert_array_equal(one.quantile_error_usd, other.quantile_error_usd)
        np.testing.assert_array_equal(one.options.risk_npv_usd, other.options.risk_npv_usd)


def test_risk_sample_rows_are_the_first_k_scenarios(texas, chunked):
    result = chunked[97]
    k = texas.simulation.risk_sample
    risk = result.options.risk_npv_usd
    assert risk.shape == (len(result.options.table), k)
    ctx = chunk_market(kernel_inputs(texas), _idx(k), xp=np)
    rows = [
        site_chunk(kernel_inputs(texas), i, opts, ctx, xp=np).npv.T
        for i, opts in enumerate(result.site_options)
    ]
    np.testing.assert_array_equal(risk, np.vstack(rows))


# --------------------------------------------------------------------------- MW scaling


@pytest.mark.parametrize(
    ("site_name", "contract"), [("odessa-campus", 0), ("odessa-campus", 2), ("sweetwater-pad", 0)]
)
def test_npv_is_affine_in_it_mw(texas, site_name, contract):
    """No retrofit tier, and levels where the mining left is on one linear piece
    (interconnect - L x pue < mining MW for every L), so capex, mining left, rent, opex
    and debt are all linear in L: the second difference is zero per scenario."""
    i = next(k for k, s in enumerate(texas.sites) if s.name == site_name)
    site = texas.sites[i]
    assert site.ai.retrofit_mw == 0
    levels = [100.0, 200.0, 300.0]
    for level in levels:
        assert site.interconnect_mw - level * site.ai.pue <= site.mining.mw or site.mining.mw == 0
    opts = [SiteOption(i, f"ai{level:g}", level, 2028, contract) for level in levels]
    npv = site_chunk(
        kernel_inputs(texas), i, opts, chunk_market(kernel_inputs(texas), _idx(300), xp=np), xp=np
    ).npv
    d1, d2 = npv[:, 1] - npv[:, 0], npv[:, 2] - npv[:, 1]
    np.testing.assert_allclose(d2, d1, rtol=0, atol=RTOL * np.max(np.abs(npv)))
    assert np.std(d1) > 0  # the increment is random (rent exits, overruns, hashprice)


def test_retrofit_tier_breaks_affinity(texas):
    """Control for the test above: with a retrofit tier the capex kink shows up."""
    i = next(k for k, s in enumerate(texas.sites) if s.name == "abilene-legacy")  # retrofit 100 MW
    opts = [SiteOption(i, f"ai{lv}", lv, 2028, 0) for lv in (60.0, 100.0, 140.0)]
    ctx = chunk_market(kernel_inputs(texas), _idx(50), xp=np)
    npv = site_chunk(kernel_inputs(texas), i, opts, ctx, xp=np).npv
    d1, d2 = npv[:, 1] - npv[:, 0], npv[:, 2] - npv[:, 1]
    assert np.min(np.abs(d2 - d1)) > 1e6


# --------------------------------------------------------------------------- CRN


def test_common_random_numbers_shrink_option_differences(texas):
    """Var(NPV_ai40 - NPV_ai60) << Var(NPV_ai40) because both options see the same
    market, delays, overruns and exits. Evaluating ai60 under another seed breaks the
    coupling and the ratio goes to about Var(a) + Var(b) over Var(a), i.e. ~2."""
    i = next(k for k, s in enumerate(texas.sites) if s.name == "pecos-1")
    opts = site_options(kernel_inputs(texas), i)
    labels = [o.label for o in opts]
    a, b = labels.index("ai40-2028-hyperscaler-a"), labels.index("ai60-2028-hyperscaler-a")
    idx = _idx(2000)
    npv = site_chunk(
        kernel_inputs(texas), i, opts, chunk_market(kernel_inputs(texas), idx, xp=np), xp=np
    ).npv
    other = with_simulation(texas, None, texas.simulation.seed + 1)
    npv_other = site_chunk(
        kernel_inputs(other), i, opts, chunk_market(kernel_inputs(other), idx, xp=np), xp=np
    ).npv
    crn = np.var(npv[:, a] - npv[:, b]) / min(np.var(npv[:, a]), np.var(npv[:, b]))
    independent = np.var(npv[:, a] - npv_other[:, b]) / min(
        np.var(npv[:, a]), np.var(npv_other[:, b])
    )
    assert crn < 0.1
    assert independent > 1.5  # ~2 for two nearly independent, similar-variance options
    assert independent > 20 * crn


# --------------------------------------------------------------------------- fast == reference


@pytest.mark.parametrize("name", ["texas", "stranded-hydro"])
def test_fast_path_equals_month_by_month(name):
    scenario = load_scenario(SCENARIO_FILES[name])
    seen = _assert_paths_equal(scenario, n=200)
    assert seen["options"] == sum(
        len(site_options(kernel_inputs(scenario), i)) for i in range(len(scenario.sites))
    )


# a cloud contract's terms in the variants (contracts.1 replaced whole: no tenant funding)
CLOUD_TERMS = {
    "name": "cloud",
    "price_usd_kw_month": 800.0,
    "escalator": 0.0,
    "term_years": 3.0,
    "max_mw": 1_000.0,
    "annual_default_prob": 0.15,
    "relet_months": 4,
    "market_rent_volatility": 0.3,
    "successor_price_usd_kw_month": 120.0,
    "gpu_capex_usd_mw": 29_000_000.0,
    "gpu_residual_curve": [0.7, 0.5, 0.35, 0.2, 0.1],
    "prepayment_share": 0.2,
    "prepayment_months": 2,
    "operations_usd_mw_month": 85_000.0,
    "gpu_loan_to_cost": 0.6,
    "gpu_debt_rate": 0.06,
    "milestone_months": 3,
    "milestone_termination_prob": 0.5,
    "ramp": [{"months": 3, "share": 0.5}],
}

VARIANTS = {
    "base": {},
    "power-paid-by-miner": {"contracts.0.power_pass_through": False},
    "non-recourse-high-default": {
        "financing.debt.non_recourse": True,
        "contracts.0.annual_default_prob": 0.5,
        "contracts.1.annual_default_prob": 0.6,
    },
    "relet-0": {"contracts.0.relet_months": 0, "contracts.1.relet_months": 0},
    "lead-0": {"sites.0.ai.lead_time_months": 0},
    "start-july": {"start": "2027-07"},
    "debt-rate-0": {"financing.debt.rate": 0.0},
    "not-curtailable": {"sites.0.curtailable": False},
    "halving-first-month": {"market.halving_months": ["2027-01", "2029-04"]},
    "halving-second-month": {"market.halving_months": ["2027-02"]},
    "retrofit-tier": {"sites.0.ai.retrofit_mw": 30.0},
    "mining-beats-ai-at-relet": {
        "sites.0.ai.opex_usd_mw_month": 300_000.0,
        "contracts.0.annual_default_prob": 0.4,
    },
    "rent-never-starts": {"sites.0.ai.lead_time_months": 40},
    "long-debt-no-ltc": {"financing.debt.loan_to_cost": 0.0},
    "long-horizon": {"horizon_years": 15, "contracts.0.term_years": 12.0},
    "tenant-debt-interest-only": {
        "contracts.0.financing": {"loan_to_cost": 0.6, "rate": 0.09, "interest_only_months": 7},
        "contracts.1.financing": {"term_years": 2.5, "amortization": "bullet"},
    },
    "refresh-always": {"sites.0.mining.refresh": "always"},
    "refresh-never": {"sites.0.mining.refresh": "never", "market.asic_price_elasticity": 1.5},
    "refresh-fixed-asic-price": {
        "market.asic_price_elasticity": 0.0,
        "sites.0.mining.asic_refresh_years": 1.0,
        "sites.0.mining.efficiency_gain_per_year": 0.3,
    },
    "successors-only-risky-and-short": {
        "contracts.0.renewal_prob": 0.0,
        "contracts.0.successor_default_prob": 0.5,
        "contracts.0.relet_term_years": 0.75,
        "contracts.0.relet_capex_usd_mw": 2_500_000.0,
        "contracts.1.renewal_prob": 0.5,
        "contracts.1.relet_term_years": 1.0,
        "contracts.1.relet_months": 2,
    },
    "non-recourse-renewals-miner-pays-power": {
        "financing.debt.non_recourse": True,
        "financing.debt.loan_to_cost": 0.9,
        "contracts.0.power_pass_through": False,
        "contracts.0.renewal_prob": 0.3,
        "contracts.0.successor_default_prob": 0.3,
        "contracts.0.relet_months": 20,
        "contracts.1.relet_months": 30,
    },
    "tenant-debt-non-recourse-bullet": {
        "financing.debt.non_recourse": True,
        "contracts.0.annual_default_prob": 0.5,
        "contracts.0.financing": {"interest_only_months": 30, "term_years": 5.0},
        "contracts.1.financing": {"amortization": "bullet", "rate": 0.0},
    },
    # revision 3
    "taxed-offset": {
        "tax.rate": 0.21,
        "tax.state_rate": 0.02,
        "tax.bonus_depreciation": 0.5,
        "tax.property_rate": 0.02,
        "tax.property_abatement_years": 2.0,
        "tax.property_abatement_share": 0.5,
        "market.cost_inflation": 0.04,
        "sites.0.mining.sga_usd_mw_month": 800.0,
        "sites.0.ai.sga_usd_mw_month": 1_500.0,
    },
    "taxed-carry-forward-non-recourse": {
        "tax.rate": 0.21,
        "tax.losses": "carry_forward",
        "financing.debt.non_recourse": True,
        "financing.debt.loan_to_cost": 0.8,
        "contracts.0.annual_default_prob": 0.3,
    },
    "refinanced-bullets-below-market": {
        "tax.rate": 0.21,
        "tax.losses": "carry_forward",
        "financing.debt.loan_to_cost": 0.7,
        "financing.debt.amortization": "bullet",
        "financing.debt.term_years": 1.5,
        "financing.debt.refinance": True,
        "financing.debt.market_rate": 0.1,
        "financing.debt.target_dscr": 1.4,
    },
    "bullet-due-after-the-horizon": {
        "tax.rate": 0.21,
        "tax.losses": "carry_forward",
        "financing.debt.loan_to_cost": 0.7,
        "financing.debt.amortization": "bullet",
        "financing.debt.term_years": 10.0,
        "financing.debt.refinance": True,
    },
    "tenants-take-their-share": {
        "contracts.0.tenant_funded_share": 0.6,
        "contracts.0.successor_price_usd_kw_month": 160.0,
        "contracts.0.renewal_prob": 0.4,
        "contracts.0.annual_default_prob": 0.3,
        "contracts.1.improvements_revert": True,
        "contracts.0.lease_discount_rate": 0.07,
        "build.refit_years": 1.0,
        "build.refit_capex_usd_mw": 400_000.0,
    },
    # the AI market and the common factor (issue 26)
    "ai-market-moves-and-contracts-follow-it": {
        "market.ai": {"rent_drift": 0.08, "rent_volatility": 0.4, "capex_inflation": 0.07},
        "market.factor": {"btc": 0.6, "ai_rent": 0.7, "tenant_exit": 0.5, "capex_overrun": 0.4},
        "contracts.0.price_follows_index": True,
        "contracts.0.renewal_prob": 0.5,
        "contracts.0.annual_default_prob": 0.3,
        "contracts.1.price_follows_index": True,
        "financing.debt.non_recourse": True,
        "financing.debt.loan_to_cost": 0.8,
        "build.decision_years": [2027, 2029],
    },
    "no-factor-still-index": {
        "market.ai": {"rent_drift": -0.05, "rent_volatility": 0.0},
        "market.factor": {"btc": 0.0, "ai_rent": 0.0, "tenant_exit": 0.0, "capex_overrun": 0.0},
        "contracts.0.renewal_prob": 0.9,
        "contracts.0.term_years": 1.0,
        "contracts.0.price_follows_index": True,
    },
    # powered shells (issue 28): each tenant fits out its own hall
    "powered-shell": {
        "contracts.0.kind": "powered_shell",
        "contracts.0.tenant_funded_share": 0.7,
        "contracts.0.price_usd_kw_month": 45.0,
        "contracts.0.annual_default_prob": 0.3,
        "contracts.0.renewal_prob": 0.4,
        "contracts.0.relet_months": 5,
        "build.refit_years": 1.0,
        "build.refit_capex_usd_mw": 400_000.0,
        "tax.rate": 0.21,
        "market.cost_inflation": 0.03,
    },
    "powered-shell-non-recourse-carry-forward": {
        "contracts.0.kind": "powered_shell",
        "contracts.0.tenant_funded_share": 0.6,
        "contracts.0.annual_default_prob": 0.5,
        "contracts.0.successor_price_usd_kw_month": 60.0,
        "financing.debt.non_recourse": True,
        "financing.debt.loan_to_cost": 0.9,
        "tax.rate": 0.21,
        "tax.losses": "carry_forward",
        "build.refit_years": 2.0,
    },
    # AI cloud contracts (issue 28): the miner buys and runs the GPUs
    "cloud": {
        "contracts.1": {"kind": "cloud", **CLOUD_TERMS},
        "sites.0.ai.delay_mean_months": 3.0,
    },
    "cloud-taxed-carry-forward-non-recourse": {
        "contracts.1": {"kind": "cloud", **CLOUD_TERMS, "annual_default_prob": 0.4},
        "tax.rate": 0.21,
        "tax.losses": "carry_forward",
        "tax.bonus_depreciation": 0.4,
        "market.cost_inflation": 0.03,
        "financing.debt.non_recourse": True,
        "financing.debt.loan_to_cost": 0.8,
        "sites.0.ai.delay_mean_months": 4.0,
    },
    "cloud-runs-past-the-horizon": {
        "contracts.1": {
            "kind": "cloud",
            **CLOUD_TERMS,
            "term_years": 4.0,
            "price_follows_index": True,
            "lease_discount_rate": 0.08,
        },
        "contracts.0.renewal_prob": 0.5,
        "sites.0.ai.lead_time_months": 20,
        "sites.0.ai.delay_mean_months": 6.0,
        "market.ai": {"rent_drift": 0.05, "rent_volatility": 0.3},
        "tax.rate": 0.21,
    },
    # selling or sharing a site (issue 28): a sale that may close, a JV twin of each option
    "sale-and-jv": {
        "sites.0.sale": {
            "price_usd_mw": 450_000.0,
            "months_to_close": 9,
            "close_prob": 0.6,
            "tax_basis_usd_mw": 120_000.0,
            "jv_share": 0.49,
        },
        "tax.rate": 0.21,
        "tax.property_rate": 0.02,
    },
    "sale-and-jv-carry-forward-non-recourse": {
        "sites.0.sale": {
            "price_usd_mw": 80_000.0,
            "months_to_close": 14,
            "jv_share": 0.3,
            "tax_basis_usd_mw": 300_000.0,
        },
        "contracts.1": {"kind": "cloud", **CLOUD_TERMS},
        "tax.rate": 0.21,
        "tax.losses": "carry_forward",
        "financing.debt.non_recourse": True,
        "financing.debt.loan_to_cost": 0.8,
        "contracts.0.annual_default_prob": 0.3,
        "sites.0.mining.refresh": "always",
    },  # fmt: skip
    "sale-closes-at-once": {
        "sites.0.sale": {"price_usd_mw": 300_000.0, "months_to_close": 0, "close_prob": 1.0},
        "tax.rate": 0.21,
    },
    "sale-closes-in-the-terminal-window": {
        "sites.0.sale": {"price_usd_mw": 300_000.0, "months_to_close": 18, "jv_share": 0.5},
        "tax.rate": 0.21,
        "tax.losses": "carry_forward",
        "horizon_years": 2,
        "build.decision_years": [2027],
    },
    # phased and multi-tenant sites (issue 28): a site converted in tranches
    "phased-two-tenants": {"build.max_tranches_per_site": 2, "tax.rate": 0.21},
    "phased-three-retrofit-carried-non-recourse": {
        "build.max_tranches_per_site": 3,
        "sites.0.ai.retrofit_mw": 30.0,
        "sites.0.ai.lead_time_months": 14,  # a tranche starts before the one before is on
        "tax.rate": 0.21,
        "tax.losses": "carry_forward",
        "financing.debt.non_recourse": True,
        "financing.debt.loan_to_cost": 0.8,
        "contracts.0.annual_default_prob": 0.3,
    },
    "phased-cloud-and-lease": {
        "build.max_tranches_per_site": 2,
        "contracts.1": {"kind": "cloud", **CLOUD_TERMS},
        "tax.rate": 0.21,
        "tax.losses": "carry_forward",
    },
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_fast_path_equals_month_by_month_on_variants(variant):
    scenario = random_one_site_ai(**VARIANTS[variant])
    seen = _assert_paths_equal(scenario, n=200)
    if variant == "mining-beats-ai-at-relet":
        assert seen["exits_to_mining"] > 0  # the return-to-mining branch was exercised
    if variant == "successors-only-risky-and-short":
        assert seen["fitouts"] > 0 and seen["leases"] > seen["fitouts"]  # renewals too
    if variant.startswith("non-recourse") or variant.endswith("non-recourse"):
        assert seen["lost_to_lender"] > 0  # the walk-away was taken somewhere
    if variant.startswith("cloud"):
        assert seen["terminated"] > 0  # a late delivery lost its customer somewhere
    if variant == "cloud-runs-past-the-horizon":
        assert seen["running_at_end"] > 0


def test_non_recourse_is_an_option_the_equity_takes_only_at_a_tenant_s_leaving():
    """r2: non-recourse debt changes a scenario only where the equity hands the hall to the
    lenders, at an exit or a non-renewal inside the horizon. From then the hall pays no
    debt service and earns no rent. On the same draws the option is worth at least
    nothing: the expected NPV is not lower (within the standard error of the difference)."""
    over = {
        "contracts.0.annual_default_prob": 0.5,
        "contracts.0.relet_months": 30,
        "financing.debt.loan_to_cost": 0.8,
    }
    recourse = random_one_site_ai(**over)
    non_recourse = random_one_site_ai(**over, **{"financing.debt.non_recourse": True})
    opts = site_options(kernel_inputs(recourse), 0)
    j = [o.label for o in opts].index("ai60-2027-lease")
    ctx = chunk_market(kernel_inputs(recourse), _idx(400), xp=np)
    a = site_chunk(kernel_inputs(recourse), 0, opts, ctx, xp=np)
    b = site_chunk(kernel_inputs(non_recourse), 0, opts, ctx, xp=np)
    ev = b.events[(2027, 0)]
    assert not a.events[(2027, 0)].lost.any()
    assert 0 < ev.lost.sum() < 400
    np.testing.assert_array_equal(a.npv[~ev.lost, j], b.npv[~ev.lost, j])
    gain = b.npv[:, j] - a.npv[:, j]
    assert gain.mean() >= -2.0 * gain.std(ddof=1) / np.sqrt(gain.size)
    lines = option_cashflows(kernel_inputs(non_recourse), opts[j], ctx, xp=np).lines
    t = np.arange(recourse.months)[None, :]
    after = ev.lost[:, None] & (t >= (ev.start + ev.lost_at)[:, None])
    assert after.any()
    assert np.all(lines["debt_service"][after] == 0.0)
    assert np.all(lines["ai_rent"][after] == 0.0)


@pytest.mark.parametrize("default", [0.02, 0.04], ids=["sounder-than-successors", "as-sound"])
def test_a_longer_lease_never_lowers_expected_value(default):
    """r2's property of the renewal process: for a tenant whose default hazard is at most
    the successors' (0.04), at a rent equal to the market's on average, each longer term
    has an expected NPV at least the shorter one's on the same draws (within two standard
    errors of the paired difference). Revision 1 failed it: tenant risk ended with the term."""
    n, terms = 2_000, (1.0, 3.0, 6.0, 10.0)
    npv = {}
    for term in terms:
        s = random_one_site_ai(
            horizon_years=10,
            **{"contracts.0.term_years": term, "contracts.0.annual_default_prob": default},
        )
        k = kernel_inputs(s)
        opts = site_options(k, 0)
        j = [o.label for o in opts].index("ai60-2027-lease")
        npv[term] = site_chunk(k, 0, opts, chunk_market(k, _idx(n), xp=np), xp=np).npv[:, j]
    for short, long in zip(terms[:-1], terms[1:], strict=True):
        gain = npv[long] - npv[short]
        assert gain.mean() >= -2.0 * gain.std(ddof=1) / np.sqrt(n), (short, long)


# --------------------------------------------------------------------------- expectations


def test_expected_cashflows_discount_to_the_mean_npv():
    """cashflows.csv's lines with their memos (the debt's draws, interest saving, the exit
    value and the debt owed at T), each discounted at its own rate, give E[NPV]: the
    adjusted present value of the expected flows is the mean of the scenarios'."""
    scenario = random_one_site_ai(**{"simulation.scenarios": 300, "tax.rate": 0.21})
    result = value_options(scenario, backend="numpy", chunk_size=128)
    table = result.options.table
    k = kernel_inputs(scenario)
    cal = horizon_calendar(k)
    for label in ("hash", "ai40-2028-lease", "ai60-2027-neo", "ai20-2029-neo"):
        option = next(
            o
            for o in result.site_options[0]
            if (o.label if o.contract_index is not None else "hash") == label
        )
        frame = expected_cashflows(k, [option], xp=np, chunk_size=128, memo=True)
        assert set(frame["line_item"]) == {
            *LINE_ITEMS, "terminal_value", *MEMO_ITEMS, *TERMINAL_MEMOS
        }  # fmt: skip
        wide = frame.pivot_table(index="month", columns="line_item", values="usd", sort=True)
        monthly = {name: wide[name].to_numpy() for name in (*LINE_ITEMS, *MEMO_ITEMS)}
        ends = {name: float(wide[name].sum()) for name in TERMINAL_MEMOS}
        rate = None
        if option.contract_index is not None:
            rate = Loan.of(k, k.contracts[option.contract_index]).market_rate
        total = float(adjusted_present_value(monthly, {**monthly, **ends}, cal.discount, rate))
        want = float(table.loc[table["option"] == label, "expected_npv_usd"].iloc[0])
        std = float(table.loc[table["option"] == label, "std_npv_usd"].iloc[0])
        assert abs(total - want) <= RTOL * max(abs(want), std), label
        # the equity's terminal value is the exit value after its tax less the debt owed
        terminal = float(wide["terminal_value"].sum())
        assert terminal == pytest.approx(
            ends["exit_value"] + ends["exit_tax"] - ends["debt_owed_at_end"], rel=1e-12, abs=1e-3
        )


def test_plan_npv_samples_agree_with_the_option_table(texas):
    """A plan's per-scenario portfolio NPV: its mean is the sum of its options' expected
    NPVs and its first K values the sum of their risk-sample rows, whatever the chunking
    and wherever keep-hashing sits in a site's option list."""
    n = 300
    s = with_simulation(texas, n, None)
    result = value_options(s, backend="numpy", chunk_size=97)
    table, risk = result.options.table, result.options.risk_npv_usd
    offsets = np.cumsum([0] + [len(o) for o in result.site_options])
    rows = {"mixed": [], "hash": []}
    for i, opts in enumerate(result.site_options):
        pick = len(opts) // 2  # an AI option where the site has any, else keep hashing
        rows["mixed"].append((opts[pick], offsets[i] + pick))
        rows["hash"].append((opts[0], offsets[i]))
    plans = {name: [opt for opt, _ in picked] for name, picked in rows.items()}
    samples = plan_npv_samples(s, plans, backend="numpy", chunk_size=128)  # "mixed" first
    for name, picked in rows.items():
        cols = [row for _, row in picked]
        want = table["expected_npv_usd"].to_numpy()[cols].sum()
        scale = table["std_npv_usd"].to_numpy()[cols].sum()
        assert samples[name].shape == (n,)
        assert abs(samples[name].mean() - want) <= RTOL * max(abs(want), scale)
        k = risk.shape[1]
        np.testing.assert_allclose(
            samples[name][:k], risk[cols].sum(axis=0), rtol=0, atol=RTOL * scale
        )
