"""The central case: one path at the scenario's central view, with no noise.

``--deterministic`` (``simulation.deterministic``) values every option on this one path:
BTC follows its forward (or, without one, its median path, the start price grown at
``btc_drift`` - s^2/2), the fee share its centre, the network hashrate the break-even rule
(or its forward) on that path, the AI rent index its median path, power its forward or
mean price times seasonality; no
capex overrun, no delay, no tenant exit or default, market rent at the contract's; a
probability of 4CP avoidance or renewal counts as certain from 0.5 up and as never below.
It is what an IC memo quotes beside the distribution; the gap between the two is the
value of the risk (docs/model.md, "The central case").

The transform acts on the kernels' parameters (:func:`central_case`), after every
``--set``, so a what-if on a volatility changes the stochastic case and not this one.
"""

from __future__ import annotations

from dataclasses import replace

from siteopt.kernels.forward import btc_log_drift
from siteopt.kernels.params import Portfolio

__all__ = ["central_case"]


def _certain(p: float) -> float:
    return 1.0 if p >= 0.5 else 0.0


def central_case(portfolio: Portfolio) -> Portfolio:
    """``portfolio`` on its central path (see the module notes): every source of noise off."""
    m = portfolio.market
    drift = btc_log_drift(m.btc_drift, m.btc_volatility) - 0.5 * m.btc_volatility**2
    ai = replace(  # the AI rent index on its median path too
        m.ai, rent_drift=m.ai.rent_drift - 0.5 * m.ai.rent_volatility**2, rent_volatility=0.0
    )
    market = replace(
        m,
        btc_drift=drift,  # with a volatility of 0 the path is the stochastic median path
        btc_volatility=0.0,
        hashrate_volatility=0.0,
        fee_share_volatility=0.0,
        ai=ai,
    )
    power = {
        name: replace(pm, price_volatility=0.0, fourcp_avoidance=_certain(pm.fourcp_avoidance))
        for name, pm in portfolio.power_markets.items()
    }
    sites = tuple(
        s
        if s.ai is None
        else replace(s, ai=replace(s.ai, capex_overrun_volatility=0.0, delay_mean_months=0.0))
        for s in portfolio.sites
    )
    contracts = tuple(
        replace(
            c,
            annual_default_prob=0.0,
            successor_default_prob=0.0,
            market_rent_volatility=0.0,
            renewal_prob=_certain(c.renewal_prob),
        )
        for c in portfolio.contracts
    )
    simulation = replace(portfolio.simulation, scenarios=1, risk_sample=1)
    return replace(
        portfolio,
        market=market,
        power_markets=power,
        sites=sites,
        contracts=contracts,
        simulation=simulation,
    )
