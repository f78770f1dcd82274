"""The MILP's data: arrays taken once from an :class:`OptionTable`, checked and scaled.

Money enters the model in millions of USD (:data:`MONEY_UNIT_USD`): portfolio NPVs of
1e9-1e10 USD next to 0/1 variables would otherwise strain the solvers' absolute
tolerances. Everything a caller sees is converted back to USD.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .options import (
    KEEP_HASHING,
    OptionTable,
    PlanProblem,
    capex_column,
    mining_eh_column,
)

MONEY_UNIT_USD = 1.0e6
"""USD per model money unit: rows and objective are in MUSD."""


def sanitize(label: str) -> str:
    """A constraint or variable name fragment: ``[A-Za-z0-9_]`` only."""
    return re.sub(r"[^A-Za-z0-9_]", "_", str(label))


def unique_names(labels: Iterable[str]) -> dict[str, str]:
    """Sanitised names, made unique with a numeric suffix where two labels collide."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for label in labels:
        base = sanitize(label)
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        names[label] = name
    return names


@dataclass(frozen=True)
class PlanData:
    """Index sets and coefficients of the build-plan MILP.

    Attributes
    ----------
    sites : tuple of str
        Site names in table order.
    site_rows : tuple of numpy.ndarray
        Table rows (options) of each site.
    hash_row : numpy.ndarray of int
        The keep-hashing row of each site.
    expected_npv : numpy.ndarray [MUSD]
    ai_it_mw : numpy.ndarray [MW]
    contract, online_month : numpy.ndarray of str
    capex : dict of int to numpy.ndarray [MUSD]
        Equity capex of every option in each horizon year.
    mining_eh : dict of int to numpy.ndarray [EH/s]
    risk_npv : numpy.ndarray, shape (n_options, K) [MUSD]
    years : tuple of int
    site_names, contract_names : dict of str to str
        Sanitised, unique name fragments for constraint names.
    tranche_row, tranche_contract, tranche_mw, tranche_online : numpy.ndarray
        Each hall an option builds (OptionTable.tranche_frame): its option's row, its
        contract, its MW and its first month of rent; a phased option has several.
    """

    sites: tuple[str, ...]
    site_rows: tuple[np.ndarray, ...]
    hash_row: np.ndarray
    expected_npv: np.ndarray
    ai_it_mw: np.ndarray
    contract: np.ndarray
    online_month: np.ndarray
    capex: dict[int, np.ndarray]
    mining_eh: dict[int, np.ndarray]
    risk_npv: np.ndarray
    years: tuple[int, ...]
    site_names: dict[str, str]
    contract_names: dict[str, str]
    tranche_row: np.ndarray
    tranche_contract: np.ndarray
    tranche_mw: np.ndarray
    tranche_online: np.ndarray
    # mw_on's vectors, made once each: the constraints and every check of a plan read them
    _mw_on: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def n_options(self) -> int:
        return len(self.expected_npv)

    def mw_on(self, name: str, online_by: str | None = None) -> np.ndarray:
        """(n_options,) the MW each option leases on contract ``name``; with ``online_by``
        [YYYY-MM] only its halls online by then [MW]."""
        key = (name, online_by)
        if key not in self._mw_on:
            mask = self.tranche_contract == name
            if online_by is not None:
                mask &= self.tranche_online <= online_by
            self._mw_on[key] = np.bincount(
                self.tranche_row[mask], weights=self.tranche_mw[mask], minlength=self.n_options
            )
        return self._mw_on[key]

    def contract_rows(self, name: str, online_by: str | None = None) -> np.ndarray:
        """Rows with MW on contract ``name``; with ``online_by`` [YYYY-MM] only those with
        MW online by then."""
        return np.flatnonzero(self.mw_on(name, online_by) > 0)


def _finite(name: str, values: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        raise ValueError(f"option table column {name} has NaN or infinite values")
    return values


def _site_index(frame) -> tuple[tuple[str, ...], tuple[np.ndarray, ...], np.ndarray]:
    sites = tuple(dict.fromkeys(frame["site"].astype(str)))
    codes = frame["site"].astype(str).map({s: i for i, s in enumerate(sites)}).to_numpy()
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(sites) + 1))
    site_rows = tuple(order[bounds[i] : bounds[i + 1]] for i in range(len(sites)))
    is_hash = (frame["option"].astype(str) == KEEP_HASHING).to_numpy()
    hash_row = np.empty(len(sites), dtype=np.int64)
    for i, rows in enumerate(site_rows):
        found = rows[is_hash[rows]]
        if len(found) != 1:
            raise ValueError(
                f"site {sites[i]} has {len(found)} keep-hashing options; expected exactly one"
            )
        hash_row[i] = found[0]
    return sites, site_rows, hash_row


def plan_data(table: OptionTable, problem: PlanProblem) -> PlanData:
    """Extract, check and scale the MILP's data.

    Raises
    ------
    ValueError
        A site without exactly one keep-hashing option, or a NaN in a column the MILP
        reads.
    """
    frame = table.table
    sites, site_rows, hash_row = _site_index(frame)
    # An option on a contract that the problem does not list meets no contract row.
    contract = frame["contract"].fillna("").astype(str).to_numpy(dtype=object)

    def money(col: str) -> np.ndarray:
        return _finite(col, frame[col].to_numpy(dtype=np.float64)) / MONEY_UNIT_USD

    tranches = table.tranche_frame()
    return PlanData(
        sites=sites,
        site_rows=site_rows,
        hash_row=hash_row,
        expected_npv=money("expected_npv_usd"),
        ai_it_mw=_finite("ai_it_mw", frame["ai_it_mw"].to_numpy(dtype=np.float64)),
        contract=contract,
        online_month=frame["online_month"].fillna("").astype(str).to_numpy(dtype=object),
        capex={y: money(capex_column(y)) for y in table.years},
        mining_eh={
            y: _finite(mining_eh_column(y), frame[mining_eh_column(y)].to_numpy(np.float64))
            for y in table.years
        },
        risk_npv=_finite("risk_npv_usd", np.asarray(table.risk_npv_usd, np.float64))
        / MONEY_UNIT_USD,
        years=tuple(table.years),
        site_names=unique_names(sites),
        contract_names=unique_names(c.name for c in problem.contracts),
        tranche_row=tranches["row"].to_numpy(dtype=np.int64),
        tranche_contract=tranches["contract"].astype(str).to_numpy(dtype=object),
        tranche_mw=_finite("tranches.ai_it_mw", tranches["ai_it_mw"].to_numpy(dtype=np.float64)),
        tranche_online=tranches["online_month"].fillna("").astype(str).to_numpy(dtype=object),
    )
