"""Behind-the-meter generation: a site's own gas gensets in place of a power market.

A site with ``sites[].generator`` buys no grid power. Its power costs what the gensets
burn and what running them costs, the same in every hour of a month:

    cost [USD/MWh] = gas_price_usd_mmbtu x heat_rate_mmbtu_mwh + variable_om_usd_mwh,

moving month to month with lognormal noise ``gas_price_volatility``; there are no spikes
(a one-bin duration curve), no 4CP (nothing is drawn from the transmission grid at the
peaks), no PPA and no ancillary services. The gensets run ``availability`` of the hours,
so the fleet's uptime is the site's ``uptime`` times it. A curtailable site still stops
in a month where hashing earns less than the fuel (and idles whole months as any site).

The valuation sees this as a power market of the site's own (:func:`as_markets`), so every
twin of the kernels prices it with the code that prices a grid market.
"""

from __future__ import annotations

from siteopt.model.schema import Generator, PowerMarket, Scenario, Site

__all__ = ["as_markets", "generator_cost_usd_mwh", "generator_market", "market_name", "site_market"]


def generator_cost_usd_mwh(generator: Generator) -> float:
    """Fuel and O&M per MWh at the central gas price [USD/MWh]."""
    return generator.gas_price_usd_mmbtu * generator.heat_rate_mmbtu_mwh + (
        generator.variable_om_usd_mwh
    )


def generator_market(generator: Generator) -> PowerMarket:
    """The power market a generator amounts to: one flat bin at its cost, no 4CP."""
    return PowerMarket(
        price_usd_mwh=generator_cost_usd_mwh(generator),
        price_volatility=generator.gas_price_volatility,
        spike_hours_share=0.0,
        spike_price_usd_mwh=0.0,
        duration_curve=((1.0, 1.0),),
        transmission_4cp_usd_kw_year=0.0,
        fourcp_avoidance=0.0,
    )


def market_name(site: Site) -> str:
    """The key of a generator site's own market: ``NAME:generator`` (':' is not allowed in
    a market name, so it cannot meet one of the file's)."""
    return f"{site.name}:generator"


def site_market(scenario: Scenario, site: Site) -> PowerMarket:
    """The market a site buys its power in: its generator's, or its ``market``."""
    if site.generator is not None:
        return generator_market(site.generator)
    return scenario.power_markets[site.market]


def as_markets(scenario: Scenario) -> Scenario:
    """The scenario with each generator as a power market of its site's own (added after
    the file's markets, so theirs keep their random streams), the site pointed at it and
    its uptime times the generator's availability; unchanged without generators."""
    if all(site.generator is None for site in scenario.sites):
        return scenario
    markets = dict(scenario.power_markets)
    sites = []
    for site in scenario.sites:
        if site.generator is not None:
            markets[market_name(site)] = generator_market(site.generator)
            uptime = site.mining.uptime * site.generator.availability
            site = site.model_copy(
                update={
                    "market": market_name(site),
                    "mining": site.mining.model_copy(update={"uptime": uptime}),
                }
            )
        sites.append(site)
    return scenario.model_copy(update={"power_markets": markets, "sites": tuple(sites)})
