"""Random and hand-made option tables for the optimizer tests and the MILP benchmark.

Only absolute imports here: ``benchmarks/bench_milp.py`` loads this file by path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from siteopt.optimizer.options import (
    KEEP_HASHING,
    OptionTable,
    ai_online_column,
    capex_column,
    mining_eh_column,
)
from siteopt.optimizer.staged import StageTree

EH_PER_MW = 0.045  # [EH/s per MW of grid power]: 1000 / (20 J/TH * 1.1 PUE) PH/s, in EH/s
PUE_AI = 1.3
EQUITY_SHARE = 0.35


def _online_month(build_year: int, lead_months: int) -> str:
    return f"{build_year + lead_months // 12:04d}-{lead_months % 12 + 1:02d}"


def _year_shares(build_year: int, lead_months: int, years: Sequence[int]) -> np.ndarray:
    """Share of a spend spread evenly over ``lead_months`` months from January of build_year."""
    month_year = build_year + np.arange(lead_months) // 12
    return np.array([(month_year == y).sum() / lead_months for y in years])


def _online_share(build_year: int, lead_months: int, years: Sequence[int]) -> np.ndarray:
    first = build_year * 12 + lead_months
    return np.array([np.clip((y * 12 + 12 - first) / 12.0, 0.0, 1.0) for y in years])


def _site_options(rng, site, levels, build_years, contracts, years, b0):
    """Rows (dicts) of one site: keep hashing first, then every level x year x contract."""
    interconnect_mw = rng.uniform(30.0, 150.0)
    max_it_mw = interconnect_mw / PUE_AI * rng.uniform(0.5, 0.9)
    lead_months = int(rng.choice([12, 15, 18, 24]))
    mining_usd_mw = rng.uniform(0.8e6, 2.0e6)
    retrofit_mw = rng.uniform(0.0, 0.4) * max_it_mw
    ai_usd_mw = {c: rng.normal(1.4e6, 0.9e6) for c in contracts}
    hash_npv = interconnect_mw * mining_usd_mw
    zeros = {y: 0.0 for y in years}
    rows = [
        dict(
            site=site,
            option=KEEP_HASHING,
            ai_it_mw=0.0,
            build_year=pd.NA,
            contract="",
            online_month="",
            expected_npv_usd=hash_npv,
            equity_capex_usd=0.0,
            debt_usd=0.0,
            capex=zeros,
            eh={y: interconnect_mw * EH_PER_MW for y in years},
            online=zeros,
            mining_usd=hash_npv,
            ai_usd=0.0,
        )
    ]
    for frac in levels:
        ai_mw = round(frac * max_it_mw, 1)
        capex_usd = min(ai_mw, retrofit_mw) * 2.0e6 + max(ai_mw - retrofit_mw, 0.0) * 9.0e6
        for b in build_years:
            disc = 0.93 ** (b - b0)
            shares = _year_shares(b, lead_months, years)
            online = _online_share(b, lead_months, years)
            for c in contracts:
                ai_usd = ai_mw * ai_usd_mw[c] * (1.0 - 0.25 * frac) * disc
                mining_usd = hash_npv - PUE_AI * ai_mw * mining_usd_mw * disc
                rows.append(
                    dict(
                        site=site,
                        option=f"ai{ai_mw:g}_{b}_{c}",
                        ai_it_mw=ai_mw,
                        build_year=b,
                        contract=c,
                        online_month=_online_month(b, lead_months),
                        expected_npv_usd=mining_usd + ai_usd,
                        equity_capex_usd=EQUITY_SHARE * capex_usd,
                        debt_usd=(1.0 - EQUITY_SHARE) * capex_usd,
                        capex={
                            y: EQUITY_SHARE * capex_usd * s
                            for y, s in zip(years, shares, strict=True)
                        },
                        eh={
                            y: (interconnect_mw - (PUE_AI * ai_mw if y >= b else 0.0)) * EH_PER_MW
                            for y in years
                        },
                        online={y: ai_mw * s for y, s in zip(years, online, strict=True)},
                        mining_usd=mining_usd,
                        ai_usd=ai_usd,
                    )
                )
    return rows


def _risk_sample(rng, rows, contracts, n_scenarios):
    """Factor model: a BTC factor on mining value, one tenant factor and an exit jump per
    contract on AI value, idiosyncratic noise; centred so the sample mean is the expectation."""
    k = n_scenarios
    btc = rng.standard_t(5, size=k) * 0.45
    tenant = {c: rng.normal(0.0, 0.25, size=k) - 0.5 * (rng.random(k) < 0.06) for c in contracts}
    mining = np.array([r["mining_usd"] for r in rows])
    ai = np.array([r["ai_usd"] for r in rows])
    shock = mining[:, None] * btc[None, :]
    for c in contracts:
        on_c = np.array([r["contract"] == c for r in rows])
        shock[on_c] += np.abs(ai[on_c, None]) * tenant[c][None, :]
    noise = rng.normal(0.0, 0.08, size=(len(rows), k)) * (np.abs(mining) + np.abs(ai))[:, None]
    shock += noise
    shock -= shock.mean(axis=1, keepdims=True)
    return np.array([r["expected_npv_usd"] for r in rows])[:, None] + shock


def _frame(rows: list[dict], years: Sequence[int], risk: np.ndarray, alpha: float) -> pd.DataFrame:
    base = {
        key: [r[key] for r in rows]
        for key in (
            "site",
            "option",
            "ai_it_mw",
            "contract",
            "online_month",
            "expected_npv_usd",
            "equity_capex_usd",
            "debt_usd",
        )
    }
    frame = pd.DataFrame(base)
    frame.insert(3, "build_year", pd.array([r["build_year"] for r in rows], dtype="Int64"))
    names = ("std_npv_usd", "p5_npv_usd", "p50_npv_usd", "p95_npv_usd", "cvar_usd")
    if risk.shape[1] == 0:
        stats = {name: np.full(len(rows), np.nan) for name in names}
    else:
        n_tail = max(1, int(round((1.0 - alpha) * risk.shape[1])))
        values = (
            risk.std(axis=1),
            *np.percentile(risk, [5, 50, 95], axis=1),
            np.sort(risk, axis=1)[:, :n_tail].mean(axis=1),
        )
        stats = dict(zip(names, values, strict=True))
    per_year = {}
    for y in years:
        per_year[capex_column(y)] = [r["capex"][y] for r in rows]
        per_year[mining_eh_column(y)] = [r["eh"][y] for r in rows]
        per_year[ai_online_column(y)] = [r["online"][y] for r in rows]
    return pd.concat([frame, pd.DataFrame(stats), pd.DataFrame(per_year)], axis=1)


def make_table(
    *,
    n_sites: int = 4,
    n_levels: int = 2,
    build_years: Sequence[int] = (2027,),
    contracts: Sequence[str] = ("hyperscaler-a",),
    years: Sequence[int] = tuple(range(2026, 2032)),
    n_scenarios: int = 64,
    cvar_alpha: float = 0.9,
    seed: int = 0,
) -> OptionTable:
    """A random portfolio: every site offers keep-hashing plus level x build year x contract.

    Parameters
    ----------
    n_sites : int
    n_levels : int
        AI levels per site, evenly spaced up to the site's AI limit.
    build_years, contracts, years : sequences
    n_scenarios : int
        Size K of the risk sample.
    cvar_alpha : float
    seed : int

    Returns
    -------
    OptionTable
        ``1 + n_levels * len(build_years) * len(contracts)`` options per site.
    """
    rng = np.random.default_rng(seed)
    levels = [(j + 1) / n_levels for j in range(n_levels)]
    rows: list[dict] = []
    for s in range(n_sites):
        rows += _site_options(
            rng, f"site-{s}", levels, build_years, contracts, years, min(build_years)
        )
    risk = _risk_sample(rng, rows, contracts, n_scenarios)
    return OptionTable(
        table=_frame(rows, years, risk, cvar_alpha),
        risk_npv_usd=risk,
        years=tuple(years),
        cvar_alpha=cvar_alpha,
    )


def table_from_rows(
    rows: Sequence[dict],
    risk_npv_usd: np.ndarray | None = None,
    *,
    years: Sequence[int] = (2027, 2028),
    cvar_alpha: float = 0.5,
) -> OptionTable:
    """A hand-made table. Each row gives ``site``, ``option`` and any of: ``ai_it_mw``,
    ``build_year``, ``contract``, ``online_month``, ``npv`` [USD], ``capex`` (dict year ->
    USD), ``eh`` (dict year -> EH/s, default 1.0 every year). Without ``risk_npv_usd`` every
    scenario equals ``npv`` (K = 4); with it, a row without ``npv`` takes its sample mean."""
    full = []
    for r in rows:
        capex = {y: float(r.get("capex", {}).get(y, 0.0)) for y in years}
        eh = {y: float(r.get("eh", {}).get(y, 1.0)) for y in years}
        ai_mw = float(r.get("ai_it_mw", 0.0))
        full.append(
            dict(
                site=r["site"],
                option=r["option"],
                ai_it_mw=ai_mw,
                build_year=r.get("build_year", pd.NA),
                contract=r.get("contract", ""),
                online_month=r.get("online_month", ""),
                expected_npv_usd=float(r.get("npv", 0.0)),
                equity_capex_usd=sum(capex.values()),
                debt_usd=0.0,
                capex=capex,
                eh=eh,
                online={y: 0.0 for y in years},
            )
        )
    npv = np.array([r["expected_npv_usd"] for r in full])
    risk = np.repeat(npv[:, None], 4, axis=1) if risk_npv_usd is None else risk_npv_usd
    risk = np.asarray(risk, dtype=np.float64)
    frame = _frame(full, years, risk, cvar_alpha)
    given = np.array(["npv" in r for r in rows])
    if risk.shape[1]:
        frame["expected_npv_usd"] = np.where(given, npv, risk.mean(axis=1))
    return OptionTable(table=frame, risk_npv_usd=risk, years=tuple(years), cvar_alpha=cvar_alpha)


def chain_tree(table: OptionTable, stage_years, k: int = 1, rng=None) -> StageTree:
    """A tree of ``k`` states per state at each later year, equally likely. With k = 1 its
    group means are the table's means; otherwise the table's means are perturbed per
    group by zero-mean noise (so the P-weighted group means still equal the table's)."""
    parent, stage = [-1], [0]
    frontier = [0]
    for j in range(1, len(stage_years)):
        nxt = []
        for p in frontier:
            for _ in range(k):
                parent.append(p)
                stage.append(j)
                nxt.append(len(parent) - 1)
        frontier = nxt
    parent, stage = np.array(parent), np.array(stage)
    leaves = np.array(frontier)
    prob = np.ones(len(parent))
    for v in range(1, len(parent)):
        prob[v] = prob[parent[v]] / k
    mean = table.table["expected_npv_usd"].to_numpy()
    groups = len(leaves)
    if groups == 1 or rng is None:
        group = np.tile(mean, (groups, 1))
    else:
        noise = rng.normal(0.0, 0.6, (groups, len(mean))) * np.abs(mean)[None, :]
        noise -= noise.mean(axis=0, keepdims=True)
        group = mean[None, :] + noise
    k_risk = table.risk_npv_usd.shape[1]
    return StageTree(
        parent=parent,
        stage=stage,
        probability=prob,
        leaves=leaves,
        stage_years=tuple(stage_years),
        group_npv_usd=group,
        risk_group=np.arange(k_risk) % groups,
    )
