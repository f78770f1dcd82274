"""``siteopt evaluate``: value a build plan the user fixed, with solve's outputs.

The plan is a CSV with columns ``site, ai_it_mw, build_year, contract`` (other columns,
such as the rest of a ``plan.csv`` that ``solve`` wrote, are ignored). A site that is not
listed keeps hashing. Each row must name an option the scenario offers; the plan is then
checked against every constraint of the MILP and the ones it breaks are reported.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from siteopt.app.pipeline import Decision, Progress, SolveOutcome, SolveSettings, finish, value
from siteopt.app.plan import plan_problem
from siteopt.app.valuation import ValuationResult
from siteopt.kernels.valuation import ValuationCache
from siteopt.model.errors import InputError
from siteopt.model.schema import Scenario
from siteopt.optimizer.data import MONEY_UNIT_USD, plan_data
from siteopt.optimizer.results import cvar_floor_broken, violation_details

REQUIRED_COLUMNS = ("site", "ai_it_mw", "build_year", "contract")
# the option's label, where a plan names it: the only way to name a site's sale or a JV twin
OPTIONAL_COLUMNS = ("option",)
MAX_PLAN_BYTES = 10 << 20


def read_plan(
    path: Path,
    required: tuple[str, ...] = REQUIRED_COLUMNS,
    flag: str = "--plan",
    optional: tuple[str, ...] = (),
) -> pd.DataFrame:
    """The ``required`` columns of a CSV (``--plan``'s, or ``--policy``'s) as strings, with
    the file's line of each row, and the ``optional`` ones where the file has them (blank
    where not); bad files raise InputError."""
    noun = flag.lstrip("-")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: {flag} file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {noun}: {exc.strerror or exc}") from None
    if len(raw) > MAX_PLAN_BYTES:
        raise InputError(f"{path}: the {noun} is larger than {MAX_PLAN_BYTES >> 20} MiB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: the {noun} is not UTF-8 text") from None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise InputError(f"{path}: not a CSV file: {exc}") from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise InputError(f"{path}: the {noun} is empty (expected columns {', '.join(required)})")
    header = [cell.strip() for cell in rows[0]]
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(
            f"{path}: the {noun} lacks column(s) {', '.join(missing)} "
            f"(needs {', '.join(required)}; has {', '.join(header)})"
        )
    take = [header.index(c) for c in required]
    extra = [header.index(c) if c in header else None for c in optional]
    records = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InputError(f"{path}:{line}: {len(row)} fields, the header has {len(header)}")
        more = ("" if i is None else row[i].strip() for i in extra)
        records.append([line, *(row[i].strip() for i in take), *more])
    return pd.DataFrame(records, columns=["line", *required, *optional])


def plan_records(frame: pd.DataFrame, label: str = "plan") -> pd.DataFrame:
    """A plan given as a DataFrame, in :func:`read_plan`'s form (row k is "line" k + 2, as
    in a CSV with a header); missing columns raise InputError."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(
            f"{label}: the plan lacks column(s) {', '.join(missing)} "
            f"(needs {', '.join(REQUIRED_COLUMNS)}; has {', '.join(map(str, frame.columns))})"
        )

    def text(value: Any) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value).strip()

    columns = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
    records = [
        [line, *(text(row[c]) if c in frame.columns else "" for c in columns)]
        for line, (_, row) in enumerate(frame.iterrows(), start=2)
    ]
    return pd.DataFrame(records, columns=["line", *columns])


def plan_rows(path: Path | str, plan: pd.DataFrame, valuation: ValuationResult) -> tuple[int, ...]:
    """The option-table row of each site: the listed option, keep hashing if unlisted."""
    table = valuation.options.table
    site_names = valuation.options.sites
    offset = np.cumsum([0] + [len(o) for o in valuation.site_options])
    rows = [int(offset[i]) for i in range(len(site_names))]  # option 0: keep hashing
    by_site: dict[str, list] = {}
    for rec in plan.itertuples(index=False):
        where = f"{path}:{rec.line}"
        if rec.site not in site_names:
            raise InputError(
                f"{where}: no site named {rec.site!r} (sites: {', '.join(site_names)})"
            )
        by_site.setdefault(rec.site, []).append(rec)
    halls = valuation.options.tranche_frame()
    for site, recs in by_site.items():
        i = site_names.index(site)
        offered = table.iloc[offset[i] : offset[i + 1]]
        if len(recs) == 1:
            rows[i] = _option_row(f"{path}:{recs[0].line}", recs[0], offered)
        else:
            rows[i] = _phased_row(path, recs, offered, halls)
    return tuple(rows)


def _phased_row(path, recs: list, offered: pd.DataFrame, halls: pd.DataFrame) -> int:
    """Table row of the phased option whose tranches a site's several rows list (by the
    ``option`` label, or by each row's MW, build year and contract)."""
    where = f"{path}:{recs[1].line}"
    if not (offered["contract"].astype(str).str.contains("+", regex=False)).any():
        raise InputError(
            f"{where}: site {recs[0].site} is listed twice (also on line {recs[0].line})"
        )
    labels = {getattr(rec, "option", "") for rec in recs} - {""}
    if len(labels) == 1:
        return _option_row(where, recs[0], offered)
    if len(labels) > 1:
        raise InputError(f"{where}: site {recs[0].site}'s rows name different options")
    wanted = sorted(
        (
            _number(f"{path}:{rec.line}", "ai_it_mw", rec.ai_it_mw, default=0.0),
            _number(f"{path}:{rec.line}", "build_year", rec.build_year, default=None),
            rec.contract,
        )
        for rec in recs
    )
    mine = halls[halls["row"].isin(offered.index)]
    for row, hall in mine.groupby("row"):
        have = sorted(
            (float(h.ai_it_mw), int(h.build_year), str(h.contract))
            for h in hall.itertuples(index=False)
        )
        if len(have) == len(wanted) and all(
            abs(a[0] - b[0]) <= 1e-6 and a[1:] == b[1:] for a, b in zip(have, wanted, strict=True)
        ):
            return int(row)
    raise InputError(
        f"{where}: site {recs[0].site} offers no phased option with these {len(recs)} "
        "tranches (see options.csv's labels joined by '+'; build.max_tranches_per_site)"
    )


def _option_row(where: str, rec, offered: pd.DataFrame) -> int:
    """Table row of the site's option the record names (its ``option`` label), else the one
    with its MW, build year and contract (of two, the one without a JV partner)."""
    label = getattr(rec, "option", "")
    if label:
        named = offered.index[offered["option"].to_numpy() == label]
        if len(named) != 1:
            raise InputError(
                f"{where}: site {rec.site} offers no option {label!r} (see options.csv; "
                f"e.g. {', '.join(offered['option'].head(4))})"
            )
        return int(named[0])
    mw = _number(where, "ai_it_mw", rec.ai_it_mw, default=0.0)
    if mw == 0.0:
        if rec.contract or _number(where, "build_year", rec.build_year, default=0):
            raise InputError(
                f"{where}: ai_it_mw is 0 (keep hashing) but a build year or contract is given"
            )
        return int(offered.index[0])
    year = _number(where, "build_year", rec.build_year, default=None)
    ai = offered[offered["ai_it_mw"] > 0]
    match = ai[
        np.isclose(ai["ai_it_mw"].to_numpy(float), mw, rtol=0, atol=1e-6)
        & (ai["build_year"].to_numpy() == year)
        & (ai["contract"].to_numpy() == rec.contract)
    ]
    if len(match):
        return int(match.index[0])
    if ai.empty:
        raise InputError(f"{where}: site {rec.site} cannot host AI; only keep hashing (ai_it_mw 0)")
    levels = ", ".join(f"{v:g}" for v in sorted(set(ai["ai_it_mw"])))
    years = ", ".join(str(int(y)) for y in sorted(set(ai["build_year"])))
    contracts = ", ".join(sorted(set(ai["contract"])))
    raise InputError(
        f"{where}: site {rec.site} offers no option of {mw:g} MW built {year} on "
        f"{rec.contract or '(no contract)'}; it offers {levels} MW, build years {years}, "
        f"contracts {contracts} (a level above a contract's max_mw is not offered for it)"
    )


def _number(where: str, column: str, text: str, default):
    if text == "" or text.lower() in ("nan", "none", "null", "<na>"):
        if default is None:
            raise InputError(f"{where}: {column} is empty")
        return default
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: {column} must be a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{where}: {column} must be a finite number >= 0, got {text!r}")
    if column == "build_year":
        if value != int(value):
            raise InputError(f"{where}: build_year must be a whole year, got {text!r}")
        return int(value)
    return value


def evaluate(
    scenario: Scenario,
    plan_path: Path | pd.DataFrame,
    settings: SolveSettings,
    progress: Progress | None = None,
    cache: ValuationCache | None = None,
) -> SolveOutcome:
    """Value the plan in ``plan_path`` (a CSV file, or a DataFrame with its columns) as
    solve values its own, and check its constraints."""
    if isinstance(plan_path, pd.DataFrame):
        plan = plan_records(plan_path)
        plan_path = "plan"  # how its rows are named in messages
    else:
        plan = read_plan(plan_path, optional=OPTIONAL_COLUMNS)  # fails before any valuation
    t0 = time.perf_counter()
    backend, valuation = value(scenario, settings, progress, cache)
    rows = plan_rows(plan_path, plan, valuation)
    problem = plan_problem(scenario)
    # every constraint but the CVaR floor here; the floor over all scenarios, below
    per_plan = replace(problem, cvar_floor_usd=None)
    broken = violation_details(plan_data(valuation.options, problem), per_plan, np.array(rows))
    listed = len(plan)
    notes = []
    if listed < len(rows):
        notes.append(f"{len(rows) - listed} site(s) not in the plan file keep hashing")
    decision = Decision(
        status="infeasible" if broken else "feasible",
        mip_gap=None,
        solver=None,
        violations=tuple(name for name, _ in broken),
        violation_details=tuple(f"{name}: {detail}" for name, detail in broken),
        notes=tuple(notes),
    )
    t1 = time.perf_counter()
    outcome = finish(scenario, backend, valuation, problem, rows, decision, settings, progress)
    n = scenario.simulation.scenarios
    floor = cvar_floor_broken(
        outcome.samples["plan"] / MONEY_UNIT_USD, problem, f"over all {n:,} scenarios"
    )
    if floor is not None:
        decision = replace(
            decision,
            status="infeasible",
            violations=(*decision.violations, floor[0]),
            violation_details=(*decision.violation_details, f"{floor[0]}: {floor[1]}"),
        )
        outcome = replace(outcome, decision=decision)
    timings = {"valuation": t1 - t0, "milp": 0.0, "total": time.perf_counter() - t0}
    return replace(outcome, evaluated=True, timings_s=timings)
