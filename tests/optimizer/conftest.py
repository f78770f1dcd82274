"""Fixtures of the optimizer tests: random tables, random problems, solvers."""

from __future__ import annotations

import numpy as np
import pytest

from siteopt.optimizer.engine import cbc_path
from siteopt.optimizer.options import ContractTerms, OptionTable, PlanProblem

from .tables import make_table, table_from_rows

__all__ = ["make_table", "table_from_rows", "random_problem"]

SOLVER_PARAMS = [
    "highs",
    pytest.param(
        "cbc",
        marks=pytest.mark.skipif(cbc_path() is None, reason="no CBC binary (pip install cbcbox)"),
    ),
]


@pytest.fixture(params=SOLVER_PARAMS)
def solver(request) -> str:
    return request.param


def random_problem(table: OptionTable, seed: int, **overrides) -> PlanProblem:
    """Budgets near a third of what converting everything would cost, and for each
    contract a random minimum, maximum and online-by date, so that the constraints bind."""
    rng = np.random.default_rng(seed + 1000)
    frame = table.table
    budget = {}
    for year in table.years:
        total = frame[f"capex_{year}_usd"].sum() / frame["site"].nunique()
        budget[year] = float(rng.uniform(0.5, 1.5) * total)
    contracts = []
    for name in sorted(set(frame["contract"]) - {""}):
        rows = frame[frame["contract"] == name]
        total = rows.groupby("site")["ai_it_mw"].max().sum()
        months = sorted(set(rows["online_month"]))
        contracts.append(
            ContractTerms(
                name=name,
                min_mw=float(rng.uniform(0.05, 0.3) * total),
                max_mw=float(rng.uniform(0.5, 0.9) * total),
                online_by=str(rng.choice(months)) if rng.random() < 0.7 else None,
                must_sign=bool(rng.random() < 0.3),
            )
        )
    values = dict(
        budget_usd_by_year=budget,
        carry_over=bool(rng.random() < 0.6),
        contracts=tuple(contracts),
        cvar_alpha=table.cvar_alpha,
    )
    values.update(overrides)
    return PlanProblem(**values)
