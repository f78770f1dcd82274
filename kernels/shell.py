"""Powered shells (docs/model.md, Powered shell): the landlord delivers land, power and the
shell, and each tenant fits out its own hall.

A ``kind: powered_shell`` contract's ``tenant_funded_share`` is the fit-out's share of the
site's AI capex, and the rent is the shell's. The landlord owns and keeps (1 - that share)
of the hall for good: its capex, its debt, its property tax, and, here, its share of the
hall's opex, SG&A and refits, under every tenant. The improvements are each tenant's: a
successor fits out its own, so the landlord never funds the first tenant's share again
(:func:`.hosting.takes_improvements` is False), and a successor pays
``successor_price_usd_kw_month`` (by default the same shell rent).
"""

from __future__ import annotations

from .params import ContractParams, SiteAIParams

POWERED_SHELL = "powered_shell"


def is_powered_shell(contract: ContractParams) -> bool:
    """The landlord delivers land, power and shell; each tenant fits out its own hall."""
    return contract.kind == POWERED_SHELL


def upkeep_share(contract: ContractParams) -> float:
    """The share of a hall's opex, SG&A and refits the landlord pays: its share of a powered
    shell (1 - ``tenant_funded_share``), else the whole of it."""
    return 1.0 - contract.tenant_funded_share if is_powered_shell(contract) else 1.0


def hall_upkeep_usd_mw_month(contract: ContractParams, ai: SiteAIParams) -> float:
    """The landlord's opex and SG&A of an IT MW of hall at today's prices [USD/MW-month]."""
    return upkeep_share(contract) * (ai.opex_usd_mw_month + ai.sga_usd_mw_month)
