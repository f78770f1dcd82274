"""``siteopt sweep``: one scenario value over a list of points, every point on the same draws.

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

import math
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from siteopt.app import pipeline
from siteopt.app.pipeline import PORTFOLIO_KEYS, Progress, SolveOutcome, SolveSettings
from siteopt.kernels.valuation import ValuationCache
from siteopt.model.errors import InfeasibleError, InputError
from siteopt.model.load import apply_overrides
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


@dataclass(frozen=True)
class SweepPoint:
    value: str  # as given to --set
    outcome: SolveOutcome | None  # None: infeasible at this value
    message: str | None
    sites_valued: int
    warm_start: bool
    seconds: float


@dataclass(frozen=True)
class Sweep:
    scenario: str
    param: str
    points: tuple[SweepPoint, ...]
    sites: int

    def frame(self) -> pd.DataFrame:
        """sweep.csv: one row per point (POINT_COLUMNS)."""
        return pd.DataFrame([_point_row(p) for p in self.points], columns=list(POINT_COLUMNS))

    def plans(self) -> pd.DataFrame:
        """plans.csv: the plan of every point, one row per (point, site)."""
        frames = [
            p.outcome.plan_frame.assign(value=p.value) for p in self.points if p.outcome is not None
        ]
        if not frames:
            return pd.DataFrame(columns=["value", *pipeline.PLAN_COLUMNS])
        out = pd.concat(frames, ignore_index=True)
        return out[["value", *pipeline.PLAN_COLUMNS]]


def _point_row(p: SweepPoint) -> dict[str, Any]:
    row: dict[str, Any] = {
        "value": p.value,
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
) -> Sweep:
    """Solve the scenario with ``param`` set to each point, on the same draws.

    Every point's scenario is built and validated before the first solve, so a bad
    value fails at once. A point without a feasible plan is recorded, not fatal.
    """
    scenarios = [apply_overrides(scenario, [f"{param}={v}"]) for v in points]
    if settings.engine == "dask" and len(points) > 1:
        return _sweep_on_cluster(scenario, param, points, scenarios, settings, progress)
    cache = ValuationCache()
    done: list[SweepPoint] = []
    previous: SolveOutcome | None = None
    for k, (text, point) in enumerate(zip(points, scenarios, strict=True)):
        began, misses = time.perf_counter(), cache.misses
        try:
            outcome = pipeline.solve(
                point, settings, cache=cache, start=previous.chosen if previous else None
            )
            message = None
        except InfeasibleError as exc:
            outcome, message = None, str(exc)
        warm = outcome is not None and outcome.decision.warm_start
        done.append(
            SweepPoint(
                text, outcome, message, cache.misses - misses, warm, time.perf_counter() - began
            )
        )
        previous = outcome or previous
        if progress is not None:
            progress("sweep", k + 1, len(points))
    return Sweep(scenario.name, param, tuple(done), len(scenario.sites))


def _sweep_on_cluster(
    scenario: Scenario,
    param: str,
    points: list[str],
    scenarios: list[Scenario],
    settings: SolveSettings,
    progress: Progress | None,
) -> Sweep:
    """Every point's solve as one task on the Dask cluster (see the module docstring)."""
    from siteopt.app.distributed import solve_on_cluster

    done = [
        SweepPoint(
            text,
            solved.outcome,
            None if solved.infeasible is None else str(solved.infeasible),
            len(scenario.sites),
            False,
            solved.seconds,
        )
        for text, solved in zip(
            points, solve_on_cluster(scenarios, settings, "sweep", progress), strict=True
        )
    ]
    return Sweep(scenario.name, param, tuple(done), len(scenario.sites))


def payload(result: Sweep) -> dict[str, Any]:
    """sweep.json: the parameter, each point's totals, and what was reused."""
    frame = result.frame()
    points = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for record, point in zip(points, result.points, strict=True):
        if point.message:
            record["message"] = point.message
    valued = int(frame["sites_valued"].sum())
    first = next((p.outcome for p in result.points if p.outcome is not None), None)
    return {
        "scenario": result.scenario,
        "param": result.param,
        "values": [p.value for p in result.points],
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
