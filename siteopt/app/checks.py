"""Plausibility checks that need the valuation's rules, and every warning of a scenario.

:mod:`siteopt.model.plausibility` checks what the scenario alone shows; a contract that no
plan can sign needs the options a site offers, their first rent and their equity capex,
which the kernels define. :func:`scenario_warnings` is the one list the CLI prints and
summary.json keeps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from siteopt.app.params import kernel_inputs
from siteopt.kernels.hosting import capex_usd, construction_start, equity_per_capex
from siteopt.kernels.market import month_label
from siteopt.kernels.params import Portfolio, month_index
from siteopt.kernels.sites import contract_cap_mw, one_site_only, open_in, site_options
from siteopt.model.plausibility import (
    Finding,
    ScenarioWarning,
    SourceLines,
    format_number,
    place,
    plausibility_findings,
    with_sampling_error,
)
from siteopt.model.schema import Scenario


def scenario_warnings(
    scenario: Scenario, source: SourceLines | None = None, plan_npv_se_usd: float | None = None
) -> list[ScenarioWarning]:
    """Every plausibility warning of ``scenario`` (run settings applied), placed in its
    file; with ``plan_npv_se_usd`` the few-scenarios warning states the standard error."""
    findings = plausibility_findings(scenario)
    findings[1:1] = unsignable_contracts(scenario)  # after the unit slips, as documented
    if plan_npv_se_usd is not None:
        findings = with_sampling_error(findings, scenario, plan_npv_se_usd)
    return place(findings, scenario, source)


def unsignable_contracts(scenario: Scenario) -> list[Finding]:
    """Contracts that no plan can sign, each with the first reason found."""
    s = kernel_inputs(scenario)
    offered: list[list] = [[] for _ in s.contracts]  # (site index, option) per contract
    for i in range(len(s.sites)):
        for opt in site_options(s, i):
            if opt.contract_index is not None and not opt.parts:  # its single halls
                offered[opt.contract_index].append((i, opt))
    budget_usd = sum(scenario.financing.capital_budget_usd.values())
    out = []
    for c_index in range(len(s.contracts)):
        reason = _unsignable_reason(s, c_index, offered[c_index], budget_usd)
        if reason is not None:
            out.append(Finding("contract_unsignable", ("contracts", c_index), reason))
    return out


def _largest_level(s: Portfolio, site: Any, contract: Any) -> float:
    """The largest AI level the site could offer the contract, its minimum aside [MW]."""
    step = s.build.ai_step_mw
    most = min(site.ai.max_it_mw, contract_cap_mw(site, contract))
    return step * float(np.floor(most / step + 1e-9))


def _unsignable_reason(s: Portfolio, c_index: int, options: list, budget: float) -> str | None:
    contract = s.contracts[c_index]
    if not options:
        if contract.eligible_sites is not None and not contract.eligible_sites:
            return "can never be signed: eligible_sites is empty"
        if not any(open_in(s, contract, y) for y in s.decision_years):
            return (
                f"can never be signed: available_until {contract.available_until} is before "
                "every build year's construction start"
            )
        hosts = [site for site in s.sites if contract in s.contracts_for(site)]
        if hosts and one_site_only(contract):  # its levels stop below its minimum there
            top = _largest_level(s, hosts[0], contract)
            return (
                f"can never be signed: min_mw {format_number(contract.min_mw)} MW is above the "
                f"{format_number(top)} MW its eligible sites can host"
            )
        return (
            "can never be signed: no eligible site can host AI (no ai section, or "
            "max_it_mw below build.ai_step_mw)"
        )
    need_mw = max(contract.min_mw, 1e-9)  # signing at all needs one step of AI
    hostable: dict[int, float] = {}
    for i, opt in options:
        hostable[i] = max(hostable.get(i, 0.0), opt.it_mw)
    if sum(hostable.values()) < contract.min_mw - 1e-9:
        return (
            f"can never be signed: min_mw {format_number(contract.min_mw)} MW is above the "
            f"{format_number(sum(hostable.values()))} MW its eligible sites can host"
        )
    if contract.online_by is not None:
        earliest = min(_first_rent(s, i, opt) for i, opt in options)
        if month_index(s.start, contract.online_by) < earliest:
            lead = min(s.sites[i].ai.lead_time_months for i, _ in options)
            return (
                f"can never be signed: online_by {contract.online_by} is before the "
                f"earliest first rent ({month_label(s, earliest)}: construction from January "
                f"of the first build year plus a {lead}-month lead time)"
            )
    cheapest = min(_equity_per_mw(s, i, opt, c_index) for i, opt in options) * need_mw
    if cheapest > budget * (1 + 1e-9) + 1.0:
        return (
            f"can never be signed within the budget: its minimum of {format_number(need_mw)} MW "
            f"needs at least ${cheapest / 1e6:,.1f}M of equity capex, and the whole "
            f"budget is ${budget / 1e6:,.1f}M"
        )
    return None


def _first_rent(s: Portfolio, site_index: int, opt) -> int:
    return construction_start(s, opt.build_year) + s.sites[site_index].ai.lead_time_months


def _equity_per_mw(s: Portfolio, site_index: int, opt, c_index: int) -> float:
    site = s.sites[site_index]
    share = equity_per_capex(s, site, s.contracts[c_index], opt.build_year)
    return share * float(capex_usd(site.ai, opt.it_mw)) / opt.it_mw
