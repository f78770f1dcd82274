"""siteopt's Python API: the functions the CLI commands call, for notebooks and scripts.

    import siteopt

    scenario = siteopt.load("scenarios/texas.yaml")
    cheaper = siteopt.override(scenario, {"contracts.hyperscaler-a.price_usd_kw_month": 120})
    run = siteopt.solve(cheaper, scenarios=2_000, seed=7)
    run.plan            # plan.csv as a DataFrame
    run.summary["expected_npv_usd"]
    run.write("out/cheaper")

Scenarios are frozen (validated pydantic models): :func:`override` returns an edited,
validated copy, addressing list items by ``name`` as ``--set`` does. Every function
raises the errors the CLI turns into exit codes (:mod:`siteopt.model.errors`). docs/api.md
has a runnable example.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from siteopt.model.load import apply_overrides, load_scenario, with_simulation
from siteopt.model.schema import Scenario
from siteopt.optimizer.defaults import DEFAULT_MIP_GAP, DEFAULT_TIME_LIMIT_S

if TYPE_CHECKING:
    import pandas as pd

    from siteopt.app.pipeline import SolveOutcome, SolveSettings
    from siteopt.app.sweep import Sweep
    from siteopt.app.whatif import WhatIf

__all__ = ["Run", "cases", "evaluate", "load", "override", "settings", "solve", "sweep", "whatif"]

Progress = Callable[[str, int, int], None]
Changes = Mapping[str, Any] | Iterable[str]


def load(path: str | Path, changes: Changes = ()) -> Scenario:
    """Read and validate a scenario file, with ``changes`` applied first.

    ``changes``: ``{"dotted.path": value}`` or ``["dotted.path=value", ...]`` (as ``--set``).
    Raises ScenarioError with every problem, each as ``FILE:LINE: field.path: message``.
    """
    return load_scenario(path, _specs(changes))


def override(scenario: Scenario, changes: Changes) -> Scenario:
    """A validated copy of ``scenario`` with ``changes`` applied (the scenario is frozen).

    ``siteopt.override(s, {"contracts.hyperscaler-a.price_usd_kw_month": 120})``: list
    items are addressed by name; a value is anything YAML would read (numbers, strings,
    lists, booleans, None). Raises ScenarioError when a path or value is refused.
    """
    return apply_overrides(scenario, _specs(changes))


def _specs(changes: Changes) -> list[str]:
    """``PATH=VALUE`` strings from a mapping (values as JSON, which YAML reads) or as given."""
    if isinstance(changes, Mapping):
        return [
            f"{path}={value if isinstance(value, str) else json.dumps(value)}"
            for path, value in changes.items()
        ]
    if isinstance(changes, str):
        return [changes]
    return list(changes)


def settings(
    *,
    backend: str = "auto",
    engine: str = "local",
    scheduler: str | None = None,
    solver: str | None = None,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    mip_gap: float = DEFAULT_MIP_GAP,
) -> SolveSettings:
    """How a run computes (the CLI's ``--backend``, ``--engine``, ``--scheduler``,
    ``--solver``, ``--time-limit``, ``--mip-gap``)."""
    from siteopt.app.pipeline import SolveSettings

    return SolveSettings(
        backend=backend,
        engine=engine,
        scheduler=scheduler,
        solver=solver,
        time_limit_s=time_limit_s,
        gap_rel=mip_gap,
    )


@dataclass(frozen=True)
class Run:
    """A solve's or an evaluation's result: the tables and summary the CLI writes.

    Attributes
    ----------
    outcome : SolveOutcome
        Everything the run computed (siteopt.app.pipeline).
    summary : dict
        summary.json's keys (docs/cli.md).
    """

    outcome: SolveOutcome
    summary: dict[str, Any]

    @property
    def plan(self) -> pd.DataFrame:
        """plan.csv: one row per site, a row per tranche of a phased site."""
        return self.outcome.plan_csv

    @property
    def options(self) -> pd.DataFrame:
        """options.csv: every option of every site with its statistics."""
        from siteopt.output.files import options_frame

        return options_frame(self.outcome)

    @property
    def cashflows(self) -> pd.DataFrame:
        """cashflows.csv: the plan's expected monthly cash flows by site and line item."""
        return self.outcome.cashflows

    def write(
        self,
        out_dir: str | Path,
        *,
        report: bool = True,
        command: str = "solve",
        scenario_path: str | Path | None = None,
        progress: Progress | None = None,
    ) -> list[Path]:
        """Write the run's files into ``out_dir`` (created if missing) as the CLI does:
        report.html and its plots first (unless ``report`` is False; a solve's report also
        solves the scenario's cases, reporting to ``progress``), then plan.csv,
        options.csv, cashflows.csv, annual.csv, plan.xlsx, and summary.json last. Returns
        the paths written."""
        from siteopt.output.files import prepare_out_dir, write_outputs

        out = prepare_out_dir(Path(out_dir))
        written: list[Path] = []
        if report:
            from siteopt.output.report_data import write_run_report

            source = Path(scenario_path) if scenario_path else Path(self.summary["scenario"])
            written = write_run_report(
                self.outcome, self.summary, command, source, out, progress=progress
            )
        return write_outputs(self.outcome, self.summary, out) + written


def solve(
    scenario: Scenario,
    *,
    scenarios: int | None = None,
    seed: int | None = None,
    frontier: int = 0,
    explain: bool = True,
    alternatives: int = 0,
    within: float = 0.01,
    differ_by: str = "totals",
    staged: int = 0,
    validate: int = 0,
    progress: Progress | None = None,
    run_settings: SolveSettings | None = None,
    **how: Any,
) -> Run:
    """Value every option by Monte Carlo and pick the build plan (``siteopt solve``).

    ``scenarios``/``seed`` replace the file's; ``alternatives`` > 0 also finds that many
    near-optimal plans within ``within`` of the plan's E[NPV], as far from it as possible in
    AI MW per contract and build year (``differ_by="totals"``) or in sites changed
    (``"sites"``) (summary ``alternatives``);
    ``frontier`` > 1 also traces E[NPV] against
    CVaR; ``explain`` also solves the MILP again per budget year for what $10M more would
    buy (summary ``capital_value``); ``staged`` >= 1 also decides the later decision years
    per market state, with up to that many states per state and year (summary ``staged``,
    policy.csv); ``validate`` >= 2 also solves that many independent replications and
    bounds the plan's optimality gap (summary ``validation.optimality_gap``; a plan with a
    CVaR weight or floor gets ``validation`` without it); ``how`` are :func:`settings`
    keywords (``backend``, ``engine``, ``solver``, ``time_limit_s``, ...), or pass
    ``run_settings`` built once.
    Raises InfeasibleError when no plan meets the constraints (with the reasons).
    """
    from siteopt.app import pipeline
    from siteopt.output.summary import summary_of

    scenario = with_simulation(scenario, scenarios, seed)
    how_ = run_settings or settings(**how)
    outcome = pipeline.solve(
        scenario,
        how_,
        progress,
        frontier=frontier,
        explain=explain,
        alternatives=alternatives,
        within=within,
        differ_by=differ_by,
        staged=staged,
        validate=validate,
        validation=True,
    )
    return Run(outcome, summary_of(outcome))


def evaluate(
    scenario: Scenario,
    plan: str | Path | pd.DataFrame,
    *,
    scenarios: int | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
    run_settings: SolveSettings | None = None,
    **how: Any,
) -> Run:
    """Value a plan the user fixed, as solve values its own (``siteopt evaluate``).

    ``plan``: a CSV path (a solve's plan.csv works) or a DataFrame with the columns
    ``site, ai_it_mw, build_year, contract``; unlisted sites keep hashing. A plan that
    breaks a constraint is valued: ``summary["violations"]`` names what it breaks.
    """
    from siteopt.app.evaluate import evaluate as evaluate_plan
    from siteopt.output.summary import summary_of

    scenario = with_simulation(scenario, scenarios, seed)
    source = plan if _is_frame(plan) else Path(plan)
    outcome = evaluate_plan(scenario, source, run_settings or settings(**how), progress)
    return Run(outcome, summary_of(outcome))


def evaluate_policy(
    scenario: Scenario,
    policy: str | Path,
    *,
    scenarios: int | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
    run_settings: SolveSettings | None = None,
    **how: Any,
):
    """Value a staged policy (a ``solve --staged`` policy.csv) on this scenario's draws
    (``siteopt evaluate --policy``): ``.summary`` has its E[NPV], CVaR and quantiles, the
    share of the draws in each state, and ``violations_detail`` what any state's plan breaks.
    """
    from siteopt.app.policy import evaluate_policy as run_policy

    scenario = with_simulation(scenario, scenarios, seed)
    return run_policy(scenario, Path(policy), run_settings or settings(**how), progress)


def whatif(
    scenario: Scenario,
    changes: Changes,
    *,
    scenarios: int | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
    run_settings: SolveSettings | None = None,
    **how: Any,
) -> WhatIf:
    """Solve the scenario and the scenario with ``changes``, on the same draws
    (``siteopt whatif``); ``.base`` and ``.changed`` are the two solves, ``.sites`` and
    ``.totals`` what differs."""
    from siteopt.app.whatif import whatif as run_whatif

    scenario = with_simulation(scenario, scenarios, seed)
    return run_whatif(scenario, _specs(changes), run_settings or settings(**how), progress)


def sweep(
    scenario: Scenario,
    param: str,
    values: Sequence[Any],
    *,
    param2: str | None = None,
    values2: Sequence[Any] | None = None,
    scenarios: int | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
    run_settings: SolveSettings | None = None,
    **how: Any,
) -> Sweep:
    """Solve the scenario with ``param`` at each of ``values``, on the same draws
    (``siteopt sweep``); with ``param2``, at every pair of a ``values`` and a ``values2``
    value (a two-way sweep). ``.frame()`` is sweep.csv, ``.plans()`` plans.csv."""
    from siteopt.app.sweep import sweep as run_sweep

    scenario = with_simulation(scenario, scenarios, seed)
    second = None if values2 is None else [_text(v) for v in values2]
    how_ = run_settings or settings(**how)
    return run_sweep(scenario, param, [_text(v) for v in values], how_, progress, param2, second)


def cases(
    scenario: Scenario,
    *,
    names: Sequence[str] | None = None,
    scenarios: int | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
    run_settings: SolveSettings | None = None,
    **how: Any,
) -> Sweep:
    """Solve the scenario as written (case ``base``) and each case of its ``cases:`` block
    (or ``names``), side by side on the same draws (``siteopt cases``); ``.frame()`` is
    cases.csv, ``.plans()`` plans.csv."""
    from siteopt.app.sweep import cases as run_cases

    scenario = with_simulation(scenario, scenarios, seed)
    chosen = None if names is None else list(names)
    return run_cases(scenario, run_settings or settings(**how), progress, chosen)


def _text(value: Any) -> str:
    """A point as --set takes it: strings as given, anything else as JSON (which YAML reads)."""
    return value if isinstance(value, str) else json.dumps(value)


def _is_frame(value: Any) -> bool:
    return hasattr(value, "columns") and hasattr(value, "itertuples")
