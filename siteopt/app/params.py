"""The one adapter from a validated scenario to the kernels' parameter structs.

The kernels take small frozen structs (:mod:`siteopt.kernels.params`) whose fields carry
the scenario keys' names and units; this copies each from the pydantic model by name, so
a key added to both is carried without code here, and resolves the defaults that depend
on other keys (the build years, the generated halvings, a tenant's debt over the
portfolio's).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from siteopt.app.central import central_case
from siteopt.kernels.forward import monthly_curve
from siteopt.kernels.params import BuildParams, Portfolio, month_index
from siteopt.model.generator import as_markets
from siteopt.model.load import risk_sample_of
from siteopt.model.schema import Scenario, forward_month


def kernel_inputs(scenario: Scenario) -> Portfolio:
    """The kernels' view of ``scenario`` (run settings as they stand in it; an omitted
    risk sample resolved as the run settings resolve it; a site's generator as a power
    market of its own, siteopt.model.generator)."""
    scenario = as_markets(scenario)
    if scenario.simulation.risk_sample is None:
        sim = scenario.simulation.model_copy(update={"risk_sample": risk_sample_of(scenario)})
        scenario = scenario.model_copy(update={"simulation": sim})
    # a contract's own debt block arrives resolved over financing.debt (Scenario.debt_of)
    contracts = tuple(
        c.model_copy(update={"financing": scenario.debt_of(c)}) if c.financing else c
        for c in scenario.contracts
    )
    portfolio = _convert(Portfolio, scenario.model_copy(update={"contracts": contracts}))
    b = scenario.build
    build = BuildParams(
        tuple(scenario.decision_years),
        float(b.ai_step_mw),
        float(b.refit_capex_usd_mw),
        float(b.refit_years),
        int(b.max_tranches_per_site),
    )
    market = dataclasses.replace(
        portfolio.market,
        halving_months=scenario.halvings_known,  # those past the horizon move no subsidy
        factor_months=12 * scenario.horizon_years,
        **_forwards(scenario),
    )
    power_markets = {
        name: dataclasses.replace(
            pm, forward_usd_mwh=forward_points(scenario.start, src.forward_usd_mwh)
        )
        for (name, pm), src in zip(
            portfolio.power_markets.items(), scenario.power_markets.values(), strict=True
        )
    }
    portfolio = dataclasses.replace(
        portfolio, build=build, market=market, power_markets=power_markets
    )
    return central_case(portfolio) if scenario.simulation.deterministic else portfolio


def forward_points(
    start: str, curve: dict[str, float] | None
) -> tuple[tuple[int, float], ...] | None:
    """A forward's points as (month of the horizon, value); a year ``YYYY`` is its January."""
    if curve is None:
        return None
    return tuple(
        (month_index(start, forward_month(key)), float(value)) for key, value in curve.items()
    )


def _forwards(scenario: Scenario) -> dict[str, Any]:
    """The market's forwards as month points, and the start values they replace."""
    f = scenario.market.forward
    if f is None:
        return {}
    out: dict[str, Any] = {}
    for name, key in (
        ("btc_forward", "btc_price_usd"),
        ("hashrate_forward", "hashrate_eh"),
        ("fee_forward", "fee_share"),
    ):
        points = forward_points(scenario.start, getattr(f, key))
        out[name] = points
        if points is not None:  # the market key of the same name: the forward's month 0
            out[key] = float(monthly_curve(points, 1)[0])
    return out


def _convert(cls: type, source: Any) -> Any:
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.metadata.get("derived"):
            continue  # set by kernel_inputs from the scenario
        values[f.name] = _value(hints[f.name], getattr(source, f.name))
    return cls(**values)


def _value(annotation: Any, value: Any) -> Any:
    if value is None:
        return None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _value(inner[0], value)
    if dataclasses.is_dataclass(annotation):
        return _convert(annotation, value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], v) for v in value)
        return tuple(_value(a, v) for a, v in zip(args, value, strict=True))
    if origin is dict:
        return {k: _value(args[1], v) for k, v in value.items()}
    return value
