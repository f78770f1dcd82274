"""``siteopt sweep`` and ``siteopt cases``: the scenario solved at many points, every point
on the same draws. A point sets one value (a sweep), two (a two-way sweep: every pair of
the two lists, a grid) or a named case's overrides (the scenario's ``cases:`` block).

What does not change between points is reused: the valuation of every site the swept
value does not reach (a :class:`~siteopt.kernels.valuation.ValuationCache` shared by
all points), and the MILP starts from the previous point's plan when that plan still
satisfies the constraints. A point's plan is the plan ``siteopt solve --set
PATH=VALUE`` finds, within the MILP's gap tolerance (identical when the MILP closes the
gap; with a 0.5 % tolerance, two plans within 0.5 % of the optimum can both qualify).

With ``--engine dask`` and two points or more, each point's whole solve is one task on the
cluster (siteopt.app.engines): the points run side by side, which beats splitting each
point's valuation into chunks (no gather between the passes, no idle workers while a
MILP runs). They then share no cache and no warm start, so every point values every site
(``sites_valued``) and starts its MILP cold; its plan and numbers are those of a local
``siteopt solve --set PATH=VALUE``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from siteopt.app import pipeline
from siteopt.app.pipeline import PORTFOLIO_KEYS, Progress, SolveOutcome, SolveSettings
from siteopt.kernels.valuation import ValuationCache
from siteopt.model.errors import InfeasibleError, InputError
from siteopt.model.load import apply_overrides, case_scenario
from siteopt.model.schema import Scenario
from siteopt.model.source import YamlSourceError, load_yaml_value

MAX_POINTS = 200
POINT_COLUMNS = (
    "value",
    "status",
    "mip_gap",
    *PORTFOLIO_KEYS,
    "equity_capex_usd",
    "sites_valued",
    "warm_start",
    "seconds",
)


CASE = "case"  # the key column of a run of cases
BASE_CASE = "base"  # the scenario as written, the first case of every run of cases


@dataclass(frozen=True)
class SweepPoint:
    value: str  # as given to --set; a case's name
    outcome: SolveOutcome | None  # None: infeasible at this value
    message: str | None
    sites_valued: int
    warm_start: bool
    seconds: float
    value2: str | None = None  # the second parameter's, in a two-way sweep
    changes: tuple[str, ...] = ()  # what the point sets, as --set PATH=VALUE texts


@dataclass(frozen=True)
class Sweep:
    scenario: str
    param: str  # the --set path swept; "case" for a run of cases
    points: tuple[SweepPoint, ...]  # a two-way sweep's in row order: param2 varies fastest
    sites: int
    param2: str | None = None  # a two-way sweep's second path

    @property
    def keys(self) -> list[str]:
        """The columns that name a point: ``value`` (and ``value2``), or ``case``."""
        if self.param == CASE:
            return [CASE]
        return ["value", "value2"] if self.param2 else ["value"]

    def frame(self) -> pd.DataFrame:
        """sweep.csv (cases.csv): one row per point, the keys then POINT_COLUMNS."""
        columns = [*self.keys, *POINT_COLUMNS[1:]]
        return pd.DataFrame([self._row(p) for p in self.points], columns=columns)

    def plans(self) -> pd.DataFrame:
        """plans.csv: the plan of every point, one row per (point, site)."""
        frames = [
            p.outcome.plan_csv.assign(**self._key(p)) for p in self.points if p.outcome is not None
        ]
        if not frames:
            return pd.DataFrame(columns=[*self.keys, *pipeline.PLAN_COLUMNS])
        out = pd.concat(frames, ignore_index=True)
        return out[[*self.keys, *pipeline.PLAN_COLUMNS]]

    def _key(self, p: SweepPoint) -> dict[str, str | None]:
        return dict(zip(self.keys, (p.value, p.value2), strict=False))

    def _row(self, p: SweepPoint) -> dict[str, Any]:
        return {**self._key(p), **point_row(p)}


def point_row(p: SweepPoint) -> dict[str, Any]:
    """A point's status, the plan's totals (PORTFOLIO_KEYS, equity capex) and what was
    reused: sweep.csv's columns after the keys."""
    row: dict[str, Any] = {
        "sites_valued": p.sites_valued,
        "warm_start": p.warm_start,
        "seconds": round(p.seconds, 3),
    }
    if p.outcome is None:
        return {**row, "status": "infeasible"}
    outcome = p.outcome
    row.update(status=outcome.decision.status, mip_gap=outcome.decision.mip_gap)
    row.update(outcome.figures.portfolio())
    row["equity_capex_usd"] = float(sum(outcome.figures.equity_capex_by_year_usd.values()))
    return row


def parse_points(values: str | None, span: str | None) -> list[str]:
    """The sweep's values as ``--set`` texts, from ``--values`` or ``--range``."""
    if (values is None) == (span is None):
        raise InputError("give exactly one of --values V1,V2,... and --range START:STOP:STEP")
    if values is not None:
        points = [v.strip() for v in values.split(",")]
        if any(not v for v in points):
            raise InputError(f"--values {values!r}: an empty value between commas")
        for v in points:
            try:
                load_yaml_value(v)
            except YamlSourceError as exc:
                raise InputError(f"--values: cannot read {v!r}: {exc.message}") from None
    else:
        points = _range_points(span)
    if len(points) > MAX_POINTS:
        raise InputError(f"a sweep takes at most {MAX_POINTS} points, got {len(points)}")
    return points


def parse_axes(
    params: Sequence[str],
    values: Sequence[str],
    spans: Sequence[str],
    param2: str | None = None,
    values2: str | None = None,
    span2: str | None = None,
    first: str | None = None,
) -> list[tuple[str, list[str]]]:
    """The sweep's one or two (path, points) from the command line: ``--param`` with its
    ``--values`` or ``--range``; a second path by ``--param2`` with ``--values2`` or
    ``--range2``, or by a second ``--param`` whose points are the second ``--values`` or
    ``--range``. ``first``: ``values`` or ``range``, whichever the command line gave first
    (it decides whose points are whose when there is one of each)."""
    paths = [*params, *([param2] if param2 is not None else [])]
    if not 1 <= len(paths) <= 2:
        raise InputError(f"a sweep takes one or two parameters, got {len(paths)}")
    own = [*((v, None) for v in values), *((None, r) for r in spans)]
    if len(paths) == 1:
        if values2 is not None or span2 is not None:
            raise InputError("--values2 and --range2 are the points of --param2; give --param2")
        if len(own) > 1:
            raise InputError("one --param takes one --values or --range")
        return [(paths[0], parse_points(*(own[0] if own else (None, None))))]
    if values2 is not None or span2 is not None:
        if len(own) > 1:
            raise InputError("give the first --param one --values or --range")
        own.append((values2, span2))
    elif len(own) == 2 and values and spans:
        if first not in ("values", "range"):
            raise InputError(
                "with one --values and one --range, say which is the second parameter's: "
                "give it as --values2 or --range2"
            )
        if first == "range":
            own.reverse()
    if len(own) != 2:
        raise InputError(
            "give each of the two parameters its points: --values or --range for the first, "
            "--values2 or --range2 (or a second --values or --range) for the second"
        )
    return [(path, parse_points(*spec)) for path, spec in zip(paths, own, strict=True)]


def _range_points(span: str) -> list[str]:
    parts = span.split(":")
    try:
        start, stop, step = (float(x) for x in parts)
    except ValueError:
        raise InputError(f"--range {span!r}: expected START:STOP:STEP, three numbers") from None
    if not all(math.isfinite(x) for x in (start, stop, step)) or step == 0:
        raise InputError(f"--range {span!r}: numbers must be finite and STEP non-zero")
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count < 1:
        raise InputError(f"--range {span!r}: STEP goes away from STOP")
    if count > MAX_POINTS:
        raise InputError(f"--range {span!r}: {count} points; a sweep takes at most {MAX_POINTS}")
    return [_number_text(start + k * step) for k in range(count)]


def _number_text(x: float) -> str:
    x = round(x, 9)  # 0.1 + 2 * 0.05 prints as 0.2, not 0.20000000000000004
    return str(int(x)) if x == int(x) else repr(x)


def sweep(
    scenario: Scenario,
    param: str,
    points: list[str],
    settings: SolveSettings,
    progress: Progress | None = None,
    param2: str | None = None,
    points2: list[str] | None = None,
) -> Sweep:
    """Solve the scenario with ``param`` set to each point, on the same draws; with
    ``param2``, at every pair of a ``points`` and a ``points2`` value (a grid of at most
    MAX_POINTS).

    Every point's scenario is built and validated before the first solve, so a bad
    value fails at once. A point without a feasible plan is recorded, not fatal.
    """
    if param2 is None:
        keys: list[tuple[str, str | None]] = [(v, None) for v in points]
        specs = [[f"{param}={v}"] for v in points]
        order: list[int] = list(range(len(points)))
    else:
        if param2 == param:
            raise InputError(f"--param2 {param2}: the same path as --param; give another one")
        if not points2:
            raise InputError(f"--param2 {param2}: give its points with --values2 or --range2")
        total = len(points) * len(points2)
        if total > MAX_POINTS:
            raise InputError(
                f"a two-way sweep takes at most {MAX_POINTS} points, got "
                f"{len(points)} x {len(points2)} = {total}"
            )
        keys = [(a, b) for a in points for b in points2]
        specs = [[f"{param}={a}", f"{param2}={b}"] for a, b in keys]
        order = _serpentine(len(points), len(points2))
    scenarios = [apply_overrides(scenario, s) for s in specs]
    done = solve_points(scenario, keys, specs, scenarios, settings, progress, "sweep", order)
    return Sweep(scenario.name, param, done, len(scenario.sites), param2)


def _serpentine(rows: int, columns: int) -> list[int]:
    """Row-major indices of a grid in snake order (each row the other way round), so each
    point's neighbour in the solve order differs in one value: its plan is a close warm
    start, and the sites the second value does not reach keep their valuation."""
    return [
        r * columns + (c if r % 2 == 0 else columns - 1 - c)
        for r in range(rows)
        for c in range(columns)
    ]


def cases(
    scenario: Scenario,
    settings: SolveSettings,
    progress: Progress | None = None,
    names: list[str] | None = None,
    base: SolveOutcome | None = None,
) -> Sweep:
    """``siteopt cases``: the scenario as written (case ``base``) and each of its named
    cases (all, or ``names`` in that order), solved side by side on the same draws.
    ``base``: the scenario's solve, when done already (solve's report): not solved again,
    and each case's MILP starts from its plan."""
    known = list(scenario.cases)
    if not known:
        raise InputError(
            f"{scenario.name}: the scenario has no cases: block to solve; add one, e.g. "
            "cases: {bear: {market.btc_price_usd: 45000}} (docs/scenario.md)"
        )
    chosen = known if names is None else names
    unknown = [n for n in chosen if n not in scenario.cases]
    if unknown:
        have = ", ".join(known)
        raise InputError(f"no case {', '.join(map(repr, unknown))} in the scenario (cases: {have})")
    chosen = [n for n in chosen if n != BASE_CASE]
    keys: list[tuple[str, str | None]] = [(BASE_CASE, None), *((n, None) for n in chosen)]
    scenarios = [scenario, *(case_scenario(scenario, n) for n in chosen)]
    specs = [[], *([f"{k}={json.dumps(v)}" for k, v in scenario.cases[n].items()] for n in chosen)]
    if base is None:
        order = range(len(keys))
        done = solve_points(scenario, keys, specs, scenarios, settings, progress, "cases", order)
    else:
        first = SweepPoint(BASE_CASE, base, None, 0, base.decision.warm_start, 0.0)
        rest = solve_points(
            scenario, keys[1:], specs[1:], scenarios[1:], settings, progress, "cases",
            range(len(keys) - 1), start=base,
        )  # fmt: skip
        done = (first, *rest)
    return Sweep(scenario.name, CASE, done, len(scenario.sites))


def solve_points(
    scenario: Scenario,
    keys: list[tuple[str, str | None]],
    changes: list[list[str]],
    scenarios: list[Scenario],
    settings: SolveSettings,
    progress: Progress | None,
    stage: str,
    order: Sequence[int],
    start: SolveOutcome | None = None,
) -> tuple[SweepPoint, ...]:
    """Solve every point's scenario, in ``order``, sharing the site valuations that do not
    change and warm-starting each MILP from the previous point's plan (the first from
    ``start``'s); the points in the order of ``keys``. With ``--engine dask`` and two points
    or more, each point's solve is one task on the cluster (the module docstring)."""
    if settings.engine == "dask" and len(scenarios) > 1:
        from siteopt.app.distributed import solve_on_cluster

        solved = solve_on_cluster(scenarios, settings, stage, progress)
        return tuple(
            SweepPoint(
                key[0],
                point.outcome,
                None if point.infeasible is None else str(point.infeasible),
                len(scenario.sites),
                False,
                point.seconds,
                key[1],
                tuple(change),
            )
            for key, change, point in zip(keys, changes, solved, strict=True)
        )
    cache = ValuationCache()
    done: dict[int, SweepPoint] = {}
    previous: SolveOutcome | None = start
    for k, index in enumerate(order):
        began, misses = time.perf_counter(), cache.misses
        try:
            outcome = pipeline.solve(
                scenarios[index], settings, cache=cache, start=previous.chosen if previous else None
            )
            message = None
        except InfeasibleError as exc:
            outcome, message = None, str(exc)
        warm = outcome is not None and outcome.decision.warm_start
        value, value2 = keys[index]
        done[index] = SweepPoint(
            value,
            outcome,
            message,
            cache.misses - misses,
            warm,
            time.perf_counter() - began,
            value2,
            tuple(changes[index]),
        )
        previous = outcome or previous
        if progress is not None:
            progress(stage, k + 1, len(order))
    return tuple(done[i] for i in range(len(keys)))


def payload(result: Sweep) -> dict[str, Any]:
    """sweep.json (cases.json): the parameter(s), each point's totals, and what was reused."""
    frame = result.frame()
    points = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for record, point in zip(points, result.points, strict=True):
        if result.param == CASE:
            record["changes"] = list(point.changes)
        if point.message:
            record["message"] = point.message
    valued = int(frame["sites_valued"].sum())
    first = next((p.outcome for p in result.points if p.outcome is not None), None)
    names = {"cases": [p.value for p in result.points]}
    if result.param != CASE:
        names = {"param": result.param, "values": _unique(p.value for p in result.points)}
        if result.param2:
            names |= {
                "param2": result.param2,
                "values2": _unique(p.value2 for p in result.points),
            }
    return {
        "scenario": result.scenario,
        **names,
        "scenarios": first.valuation.scenarios if first else None,
        "seed": first.valuation.seed if first else None,
        "backend": first.valuation.backend if first else None,
        "points": points,
        "reuse": {
            "site_valuations": valued,
            "site_valuations_without_reuse": result.sites * len(result.points),
            "warm_starts": int(frame["warm_start"].sum()),
        },
        "seconds": round(float(frame["seconds"].sum()), 3),
    }


def _unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def plan_changes(base: SolveOutcome, other: SolveOutcome) -> list[str]:
    """``site: option`` of the sites whose option in ``other`` differs from ``base``'s."""
    labels = other.valuation.options.table["option"].to_numpy(dtype=object)
    was = base.valuation.options.table["option"].to_numpy(dtype=object)
    return [
        f"{site.name}: {labels[b]}"
        for site, a, b in zip(other.scenario.sites, base.rows, other.rows, strict=True)
        if was[a] != labels[b]
    ]
