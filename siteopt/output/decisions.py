"""A site's decision in words, as every table of the plan writes it (report.html, the
terminal, whatif.html): keep hashing, sell the site, or the MW converted for a contract
(in a joint venture, the partner's share)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from siteopt.kernels.sale import SELL
from siteopt.output.plots import mw_text


def decision_text(
    site: Mapping[str, Any], *, year: bool = False, mw: bool = True, prefix: str = ""
) -> str:
    """``site``'s decision from its ``option``, ``contract``, ``ai_it_mw`` and, where
    given, ``build_year`` and ``partner_share`` (``prefix`` before each key: a whatif row's
    ``base_`` or ``changed_``); ``year``: say the build year; ``mw``: say the MW (else the
    contract alone, in a table with its MW beside)."""

    def get(key: str) -> Any:
        value = site.get(prefix + key)
        return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value

    if get("option") == SELL:
        return "sell the site"
    contract = get("contract")
    if not contract:
        return "keep hashing"
    halls = site.get(prefix + "tranches") or []
    if len(halls) > 1:  # a phased site: each tranche
        if not mw:  # beside its MW and first year: the contracts and the tranches
            contracts = " + ".join(dict.fromkeys(h["contract"] for h in halls))
            return f"{contracts}, {len(halls)} tranches"
        return " + ".join(
            f"{mw_text(float(h['ai_it_mw']))} MW for {h['contract']}"
            + (f" from {int(h['build_year'])}" if year else "")
            for h in halls
        )
    text = f"{mw_text(float(get('ai_it_mw')))} MW for {contract}" if mw else str(contract)
    if year and get("build_year") is not None:
        text += f" from {int(get('build_year'))}"
    partner = get("partner_share")
    if partner:
        text += f" in a JV ({float(partner):.0%} the partner's)"
    return text
