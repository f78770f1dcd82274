"""Breakeven rent: the lowest contract price at which converting a site for a contract
beats the site's best alternative, keeping it hashing or its best option on another
contract; and the lowest price at which the build plan (the MILP over every site, with the
budgets and the contracts' terms) signs the site for the contract.

Only the options that meet the contract's minimum on their own are candidates; when none
does, every option on the contract is, and the result says that the site alone cannot
sign it. Differences between runs come only from the inputs: the generator is keyed by
(seed, scenario, month, stream) and a contract's price enters no draw, so every price
tried below sees the same BTC paths, power prices, delays, overruns and exits.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from siteopt.app.params import kernel_inputs
from siteopt.app.pipeline import SolveSettings, plan_only
from siteopt.kernels.backend import Backend, select_backend
from siteopt.kernels.chunks import ChunkSize, chunk_size_for, stream_chunks
from siteopt.kernels.sites import SiteOption, chunk_market, site_chunk, site_options
from siteopt.kernels.valuation import ValuationCache
from siteopt.model.errors import InfeasibleError, InputError
from siteopt.model.load import apply_overrides, with_simulation
from siteopt.model.schema import Scenario
from siteopt.optimizer.results import portfolio_cvar

PRICE_CEILING_USD_KW_MONTH = 10_000.0
TOLERANCE_USD_KW_MONTH = 0.01
# each step of the plan search is a whole plan (valuation of the contract's sites + MILP)
PLAN_TOLERANCE_USD_KW_MONTH = 0.10


@dataclass(frozen=True)
class Breakeven:
    """Lowest rent at which converting beats keeping the site hashing.

    Attributes
    ----------
    by_expected_npv, by_cvar : float or None [USD/kW-month]
        Breakeven in the sense of expected NPV and of CVaR; None when no rent up to
        the ceiling makes converting better (e.g. capacity or contract limits).
    best_option_at_breakeven : str
        The option that first beats the alternative in expected NPV.
    alternative : str
        The site's best option off this contract by expected NPV: ``hash`` (keep hashing),
        ``sell`` (the site's sale), or an option on another contract, at that contract's
        price.
    min_mw : float [MW]
        The contract's minimum.
    alone_meets_minimum : bool
        Some option of the site meets the minimum on its own (only those were candidates);
        if not, every option on the contract was, and other sites must sign the rest.
    """

    site: str
    contract: str
    by_expected_npv: float | None
    by_cvar: float | None
    best_option_at_breakeven: str
    scenarios: int
    seed: int
    alternative: str = "hash"
    min_mw: float = 0.0
    alone_meets_minimum: bool = True
    in_plan: float | None = None  # lowest price at which the plan signs the site [USD/kW-month]
    in_plan_option: str = ""  # the site's option in that plan
    in_plan_at_price: bool | None = None  # the plan at the scenario's own price signs it
    plan_searched: bool = False  # in_plan was searched (False: skipped)


class _SiteValuer:
    """Values one site's options for one contract at any price, draws fixed and cached."""

    def __init__(self, scenario: Scenario, site: int, contract: int, backend: Backend) -> None:
        scenario = kernel_inputs(scenario)
        self.scenario, self.site, self.contract, self.be = scenario, site, contract, backend
        opts = site_options(scenario, site)
        on = [o for o in opts if o.contract_index == contract and not o.parts]
        min_mw = scenario.contracts[contract].min_mw
        signable = [o for o in on if o.it_mw >= min_mw - 1e-9]
        self.alone_meets_minimum = bool(signable) or not on
        # keep hashing first, then the candidates on the contract
        self.options = [opts[0], *(signable or on)]
        # keep hashing and the options on the site's other contracts, at their own prices
        # (a phased option with a tranche on the contract is neither)
        self.alternatives = [
            opts[0],
            *(o for o in opts[1:] if all(t.contract_index != contract for t in o.tranches)),
        ]
        size = ChunkSize(chunk_size_for(scenario, backend, None))
        xp = backend.xp

        def draw(lo: int, hi: int):
            return chunk_market(scenario, xp.arange(lo, hi, dtype=xp.int64), xp=xp)

        n = scenario.simulation.scenarios
        self.chunks = [ctx for _, _, ctx in stream_chunks(n, size, backend, draw)]

    @functools.cached_property
    def alternative_npv(self) -> np.ndarray:
        """(N, alternatives) NPVs of keeping hashing and of the other contracts' options [USD]."""
        parts = [
            self.be.to_numpy(
                site_chunk(self.scenario, self.site, self.alternatives, c, xp=self.be.xp).npv
            )
            for c in self.chunks
        ]
        return np.concatenate(parts, axis=0)

    def npv(self, price: float) -> np.ndarray:
        """(N, options) NPVs with the contract at ``price`` [USD]."""
        contracts = list(self.scenario.contracts)
        contracts[self.contract] = replace(contracts[self.contract], price_usd_kw_month=price)
        scenario = replace(self.scenario, contracts=tuple(contracts))
        parts = [
            self.be.to_numpy(site_chunk(scenario, self.site, self.options, c, xp=self.be.xp).npv)
            for c in self.chunks
        ]
        return np.concatenate(parts, axis=0)


def breakeven(
    scenario: Scenario,
    site_name: str,
    contract_name: str,
    *,
    backend: str = "auto",
    scenarios: int | None = None,
    seed: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    engine: str = "local",
    scheduler: str | None = None,
    plan: SolveSettings | None = None,
) -> Breakeven:
    """Bisect the contract price until converting the site just beats its alternative;
    with ``plan`` (the MILP's settings), also until the build plan signs it (in_plan).

    With ``engine="dask"`` the whole bisection runs as one task on the cluster at
    ``scheduler`` (siteopt.app.engines), with the same result and no progress bars: its
    ~40 valuations each need every scenario's NPV for an exact CVaR, so chunking them
    out would move more data than it saves.
    """
    if engine == "dask":
        from siteopt.app.distributed import run_on_cluster

        local = None if plan is None else replace(plan, engine="local", scheduler=None)
        task = functools.partial(
            breakeven, backend=backend, scenarios=scenarios, seed=seed, plan=local
        )
        return run_on_cluster(scheduler, backend, task, scenario, site_name, contract_name)
    scenario = with_simulation(scenario, scenarios, seed)
    site, contract = _indices(scenario, site_name, contract_name)
    valuer = _SiteValuer(scenario, site, contract, select_backend(backend))
    if len(valuer.options) == 1:
        raise InputError(
            f"site {site_name} offers no option on contract {contract_name} (AI limit or max_mw)"
        )
    alpha = scenario.objective.cvar_alpha
    others = valuer.alternative_npv
    best_mean = float(others.mean(axis=0).max())
    best_cvar = float(np.max(portfolio_cvar(others, alpha, axis=0)))
    alternative = valuer.alternatives[int(np.argmax(others.mean(axis=0)))].label

    def mean_gap(price: float) -> float:
        v = valuer.npv(price)
        return float(v[:, 1:].mean(axis=0).max() - best_mean)

    def cvar_gap(price: float) -> float:
        v = valuer.npv(price)
        return float(portfolio_cvar(v[:, 1:], alpha, axis=0).max() - best_cvar)

    by_mean = _bisect(mean_gap, progress, "breakeven (expected NPV)")
    by_cvar = _bisect(cvar_gap, progress, "breakeven (CVaR)")
    best = ""
    if by_mean is not None:
        v = valuer.npv(by_mean)
        best = valuer.options[1 + int(np.argmax(v[:, 1:].mean(axis=0)))].label
    in_plan, in_plan_option, at_price = None, "", None
    if plan is not None:
        in_plan, in_plan_option, at_price = plan_rent(scenario, site, contract, plan, progress)
    return Breakeven(
        site_name,
        contract_name,
        by_mean,
        by_cvar,
        best,
        scenario.simulation.scenarios,
        scenario.simulation.seed,
        alternative,
        float(scenario.contracts[contract].min_mw),
        valuer.alone_meets_minimum,
        in_plan,
        in_plan_option,
        at_price,
        plan is not None,
    )


def plan_rent(
    scenario: Scenario,
    site: int,
    contract: int,
    settings: SolveSettings,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[float | None, str, bool]:
    """The lowest price at which the build plan signs ``site`` for ``contract``, the site's
    option in that plan, and whether the plan at the scenario's own price signs it.

    Bisection on whole plans, to PLAN_TOLERANCE_USD_KW_MONTH: at each price the sites the
    contract reaches are valued again on the same draws (the others once, from a cache)
    and the MILP is solved. The MILP stops within its gap tolerance, so near the switch two
    prices a few cents apart may differ by a plan within that gap of the optimum; where
    signing is not monotone in the price, the bisection finds one price where it switches.
    None when no price up to PRICE_CEILING_USD_KW_MONTH makes the plan sign the site.
    """
    cache = ValuationCache()
    name = scenario.sites[site].name
    terms = scenario.contracts[contract]
    chosen: dict[float, str] = {}
    stage = "breakeven (build plan)"

    def signs(price: float) -> bool:
        path = f"contracts.{terms.name}.price_usd_kw_month={price:.6f}"
        try:
            valuation, result = plan_only(apply_overrides(scenario, [path]), settings, cache)
        except InfeasibleError:
            return False
        row = valuation.options.table.loc[int(result.chosen[name])]
        chosen[price] = str(row["option"])
        return row["contract"] == terms.name

    own = float(terms.price_usd_kw_month)
    at_price = signs(own)
    if at_price:
        lo, hi = 0.0, own
    else:
        lo, hi = own, max(2.0 * own, 1.0)
        while not signs(hi):
            lo, hi = hi, 2.0 * hi
            if hi > PRICE_CEILING_USD_KW_MONTH:
                return None, "", False
    steps = max(0, int(np.ceil(np.log2((hi - lo) / PLAN_TOLERANCE_USD_KW_MONTH))))
    for k in range(steps):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if signs(mid) else (mid, hi)
        if progress is not None:
            progress(stage, k + 1, steps)
    return hi, chosen[hi], at_price


def _bisect(gap: Callable[[float], float], progress, stage: str) -> float | None:
    """Smallest price with gap >= 0, to TOLERANCE; None if even the ceiling fails."""
    lo, hi = 0.0, 100.0
    while gap(hi) < 0:
        lo, hi = hi, hi * 4
        if hi > PRICE_CEILING_USD_KW_MONTH:
            return None
    if gap(lo) >= 0:
        return lo
    steps = int(np.ceil(np.log2((hi - lo) / TOLERANCE_USD_KW_MONTH)))
    for k in range(steps):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if gap(mid) >= 0 else (mid, hi)
        if progress is not None:
            progress(stage, k + 1, steps)
    return hi


def _indices(scenario: Scenario, site_name: str, contract_name: str) -> tuple[int, int]:
    sites = [s.name for s in scenario.sites]
    contracts = [c.name for c in scenario.contracts]
    if site_name not in sites:
        raise InputError(f"--site {site_name}: no such site (sites: {', '.join(sites)})")
    if contract_name not in contracts:
        raise InputError(
            f"--contract {contract_name}: no such contract "
            f"(contracts: {', '.join(contracts) or 'none'})"
        )
    site, contract = sites.index(site_name), contracts.index(contract_name)
    if scenario.contracts[contract] not in scenario.contracts_for(scenario.sites[site]):
        raise InputError(f"site {site_name} is not eligible for contract {contract_name}")
    return site, contract


__all__ = ["Breakeven", "SiteOption", "breakeven"]
