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

from siteopt.kernels.params import BuildParams, Portfolio
from siteopt.model.schema import Scenario


def kernel_inputs(scenario: Scenario) -> Portfolio:
    """The kernels' view of ``scenario`` (run settings as they stand in it)."""
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
    )
    market = dataclasses.replace(portfolio.market, halving_months=scenario.halvings)
    return dataclasses.replace(portfolio, build=build, market=market)


def _convert(cls: type, source: Any) -> Any:
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
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
