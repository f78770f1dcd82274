"""The valuation stage as the app runs it: a scenario in, the MILP's option table out.

Applies the run settings, adapts the scenario to the kernels' parameter structs (the one
adapter, :func:`siteopt.app.params.kernel_inputs`), runs the kernels' two-pass valuation
and turns its numbers into the optimizer's :class:`~siteopt.optimizer.options.OptionTable`.

>>> result = value_options(load_scenario("scenarios/texas.yaml"), scenarios=2000)  # doctest: +SKIP
>>> result.options.table[["site", "option", "expected_npv_usd", "cvar_usd"]]        # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from siteopt.app.params import kernel_inputs
from siteopt.app.table import option_table
from siteopt.kernels import valuation as kernels
from siteopt.kernels.params import Portfolio
from siteopt.kernels.sites import SiteOption
from siteopt.model.load import with_simulation
from siteopt.model.schema import Scenario
from siteopt.optimizer.options import OptionTable


@dataclass(frozen=True)
class ValuationResult:
    """What the valuation hands on.

    Attributes
    ----------
    options : OptionTable
        The MILP's input (see siteopt.optimizer.options).
    site_options : list of list of SiteOption
        Options per site, in table order.
    quantile_error_usd : ndarray [USD]
        Per option bound on the error of quantiles and CVaR (one histogram bin).
    """

    options: OptionTable
    site_options: list[list[SiteOption]]
    backend: str
    scenarios: int
    seed: int
    chunk_size: int
    quantile_error_usd: np.ndarray
    timings_s: dict[str, float] = field(default_factory=dict)
    kernel: kernels.Valuation | None = field(default=None, repr=False)  # what pass 1 kept
    portfolio: Portfolio | None = field(default=None, repr=False)  # the kernels' inputs


def value_options(
    scenario: Scenario,
    *,
    scenarios: int | None = None,
    seed: int | None = None,
    **kernel_options: Any,
) -> ValuationResult:
    """Monte Carlo NPV statistics of every site option, as the MILP's table.

    Parameters
    ----------
    scenario : Scenario
    scenarios, seed : int, optional
        Override ``simulation.scenarios`` / ``simulation.seed``.
    **kernel_options
        ``backend``, ``chunk_size``, ``memory_budget_bytes``, ``bins``, ``progress``,
        ``cache``, ``executor``: see :func:`siteopt.kernels.valuation.value_options`.
    """
    scenario = with_simulation(scenario, scenarios, seed)
    portfolio = kernel_inputs(scenario)
    valued = kernels.value_options(portfolio, **kernel_options)
    return ValuationResult(
        option_table(portfolio, valued),
        valued.site_options,
        valued.backend,
        scenario.simulation.scenarios,
        scenario.simulation.seed,
        valued.chunk_size,
        valued.quantile_error_usd,
        valued.timings_s,
        valued,
        portfolio,
    )


def plan_npv_samples(
    scenario: Scenario,
    plans: dict[str, list[SiteOption]],
    valuation: ValuationResult | None = None,
    **kernel_options: Any,
) -> dict[str, np.ndarray]:
    """Portfolio NPV per scenario of each plan [USD]: see
    :func:`siteopt.kernels.valuation.plan_npv_samples`.

    With the ``valuation`` of the same scenario, the NPVs its first pass kept are read
    instead of computed again (the same numbers, bit for bit); sites it has none kept
    for are valued again.
    """
    if valuation is not None and valuation.kernel is not None:
        kept = valuation.kernel.plan_npvs(plans)
        if kept is not None:
            return kept
    portfolio = valuation.portfolio if valuation is not None else None
    return kernels.plan_npv_samples(portfolio or kernel_inputs(scenario), plans, **kernel_options)
