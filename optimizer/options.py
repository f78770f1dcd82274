"""The table the valuation hands to the MILP, and the plan's constraint data.

This module is the interface between ``siteopt.kernels`` (which fills an
:class:`OptionTable`) and the MILP (which reads it). Neither side imports the
other's internals; both import this.

Columns of ``OptionTable.table`` (one row per site option)
----------------------------------------------------------
site : str
    Site name.
option : str
    Option label, unique within the site (``"hash"`` for keep hashing; another row
    without a build year, e.g. a site's sale, is decided now).
ai_it_mw : float [MW]
    Critical-IT MW converted to hosted AI (0 for keep hashing).
build_year : Int64 (nullable)
    Calendar year construction starts (January); <NA> for keep hashing.
contract : str
    Contract name; ``""`` for keep hashing.
online_month : str
    Scheduled first month of rent, ``YYYY-MM`` (construction start plus lead
    time, before any random delay); ``""`` for keep hashing.
expected_npv_usd, std_npv_usd, p5_npv_usd, p50_npv_usd, p95_npv_usd, cvar_usd : float [USD]
    Statistics of the site's equity NPV over all scenarios; ``cvar_usd`` is the
    mean of the worst ``1 - cvar_alpha`` share.
equity_capex_usd : float [USD]
    Expected undiscounted equity capex over the horizon.
debt_usd : float [USD]
    Expected project debt drawn.
capex_<year>_usd : float [USD]
    Expected equity capex spent in calendar year ``<year>``, for every year in
    ``OptionTable.years``; negative where an option brings cash in (a sale's proceeds).
mining_eh_<year> : float [EH/s]
    Expected average mining hashrate of the site during calendar year ``<year>``.
ai_mw_online_<year> : float [MW]
    Expected average critical-IT MW earning rent during calendar year ``<year>``.

A phased option (a site converted in tranches) has the sum of its tranches' MW in
``ai_it_mw``, its first tranche's ``build_year`` and ``online_month``, and its tranches'
contracts joined by ``+`` in ``contract``; ``OptionTable.tranches`` lists each tranche.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

BASE_COLUMNS: tuple[str, ...] = (
    "site",
    "option",
    "ai_it_mw",
    "build_year",
    "contract",
    "online_month",
    "expected_npv_usd",
    "std_npv_usd",
    "p5_npv_usd",
    "p50_npv_usd",
    "p95_npv_usd",
    "cvar_usd",
    "equity_capex_usd",
    "debt_usd",
)
KEEP_HASHING = "hash"
TRANCHE_COLUMNS = ("row", "contract", "ai_it_mw", "build_year", "online_month")


def capex_column(year: int) -> str:
    return f"capex_{year}_usd"


def mining_eh_column(year: int) -> str:
    return f"mining_eh_{year}"


def ai_online_column(year: int) -> str:
    return f"ai_mw_online_{year}"


@dataclass(frozen=True)
class OptionTable:
    """Valuation results for every site option.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per site option, columns as in the module docstring, rows grouped
        by site in scenario order, RangeIndex.
    risk_npv_usd : numpy.ndarray, shape (len(table), K) [USD]
        Per-scenario NPVs of each option on the first K scenarios (the risk
        sample), float64. Row i belongs to ``table.iloc[i]``.
    years : tuple of int
        Calendar years of the horizon, in order; the per-year columns exist for
        each of them.
    cvar_alpha : float
        Tail level used for ``cvar_usd`` (e.g. 0.95).
    tranches : pandas.DataFrame or None
        One row per hall an option builds (TRANCHE_COLUMNS): ``row`` (its option's table
        row), ``contract``, ``ai_it_mw``, ``build_year``, ``online_month``. None: each
        option with AI MW builds one hall, as its own columns say.
    """

    table: pd.DataFrame
    risk_npv_usd: np.ndarray
    years: tuple[int, ...]
    cvar_alpha: float
    tranches: pd.DataFrame | None = None

    def tranche_frame(self) -> pd.DataFrame:
        """:attr:`tranches`, or the one hall of each option with AI MW."""
        if self.tranches is not None:
            return self.tranches
        frame = self.table
        rows = np.flatnonzero(frame["ai_it_mw"].to_numpy(dtype=np.float64) > 0)
        return pd.DataFrame(
            {
                "row": rows,
                "contract": frame["contract"].to_numpy(dtype=object)[rows],
                "ai_it_mw": frame["ai_it_mw"].to_numpy(dtype=np.float64)[rows],
                "build_year": frame["build_year"].to_numpy()[rows],
                "online_month": frame["online_month"].fillna("").astype(str).to_numpy()[rows],
            },
            columns=list(TRANCHE_COLUMNS),
        )

    def __post_init__(self) -> None:
        missing = [c for c in BASE_COLUMNS if c not in self.table.columns]
        for year in self.years:
            for col in (capex_column(year), mining_eh_column(year), ai_online_column(year)):
                if col not in self.table.columns:
                    missing.append(col)
        if missing:
            raise ValueError(f"option table lacks columns: {', '.join(missing)}")
        if self.risk_npv_usd.ndim != 2 or self.risk_npv_usd.shape[0] != len(self.table):
            raise ValueError(
                f"risk_npv_usd has shape {self.risk_npv_usd.shape}; expected ({len(self.table)}, K)"
            )

    @property
    def sites(self) -> list[str]:
        """Site names in table order."""
        return list(dict.fromkeys(self.table["site"]))


@dataclass(frozen=True)
class ContractTerms:
    """What the MILP needs to know of one contract.

    Parameters
    ----------
    name : str
    min_mw, max_mw : float [MW]
        Critical-IT MW on this contract, if signed.
    online_by : str or None
        ``YYYY-MM``: at least ``min_mw`` must be scheduled to earn rent by then.
    must_sign : bool
    """

    name: str
    min_mw: float
    max_mw: float
    online_by: str | None = None
    must_sign: bool = False


@dataclass(frozen=True)
class PlanProblem:
    """The constraints and objective settings of a build plan.

    Parameters
    ----------
    budget_usd_by_year : dict of int to float [USD]
        Equity capital available per calendar year; a year not listed adds 0.
    carry_over : bool
        Unspent budget carries into later years (cumulative constraint).
    contracts : tuple of ContractTerms
    min_hashrate_eh : float or None [EH/s]
        Portfolio mining hashrate floor in every year of the horizon.
    cvar_alpha : float
    risk_aversion : float
        Weight of CVaR in the objective (0: risk neutral).
    cvar_floor_usd : float or None [USD]
        Portfolio CVaR must be at least this.
    expected_weight : float
        Weight of E[NPV] in the objective, 1 but at the frontier's pure-CVaR point (0),
        where the objective is ``risk_aversion x CVaR`` alone.
    exclude : tuple of tuple of int
        Plans (one table row per site) the solution must differ from in at least one site:
        the runner-up plan is the optimum with the optimum excluded.
    """

    budget_usd_by_year: dict[int, float]
    carry_over: bool = True
    contracts: tuple[ContractTerms, ...] = field(default_factory=tuple)
    min_hashrate_eh: float | None = None
    cvar_alpha: float = 0.95
    risk_aversion: float = 0.0
    cvar_floor_usd: float | None = None
    exclude: tuple[tuple[int, ...], ...] = ()
    expected_weight: float = 1.0
