"""Glue between a scenario and the MILP: constraint data and the chosen options."""

from __future__ import annotations

from siteopt.model.schema import Scenario
from siteopt.optimizer.options import ContractTerms, PlanProblem


def plan_problem(scenario: Scenario) -> PlanProblem:
    """The MILP's constraints and objective settings, read from the scenario."""
    objective = scenario.objective
    contracts = tuple(
        ContractTerms(c.name, c.min_mw, c.max_mw, c.online_by, c.must_sign)
        for c in scenario.contracts
    )
    return PlanProblem(
        budget_usd_by_year=dict(scenario.financing.capital_budget_usd),
        carry_over=scenario.financing.carry_over,
        contracts=contracts,
        min_hashrate_eh=objective.min_hashrate_eh,
        cvar_alpha=objective.cvar_alpha,
        risk_aversion=objective.risk_aversion,
        cvar_floor_usd=objective.cvar_floor_usd,
    )
