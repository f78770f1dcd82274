"""The commands that value and solve: solve, evaluate, whatif, sweep, breakeven.

Each parses its arguments, calls one library function and renders; errors are raised
and turned into exit codes by :class:`siteopt.cli.group.SiteoptGroup`. The MILP and plotting
stacks are imported inside the commands, so ``validate`` and ``economics`` start fast.

Before any long work each command checks that the run fits in memory
(:mod:`siteopt.app.limits`) and that its output folder can be written; it then writes into
a staging folder that replaces the output folder's files only once the run is done
(:func:`siteopt.output.files.staged_output_dir`), so Ctrl-C, a full disk or an infeasible
plan leave an earlier run's folder as it was.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from siteopt.cli.options import (
    RunOptions,
    json_option,
    load_checked,
    run_options,
    scenario_file,
    set_option,
)
from siteopt.cli.progress import progress_reporter
from siteopt.model.errors import InfeasibleError, InputError
from siteopt.output.files import (
    staged_output_dir,
    to_json,
    write_csv,
    write_json,
)
from siteopt.output.summary import summary_of

no_report_option = click.option(
    "--no-report", is_flag=True, help="Skip report.html and its plots (and the tornado)."
)

# What each command writes in its output folder (glob patterns). A run replaces these
# entries and removes those it did not write this time; anything else there is kept.
PLOT_FILES = (
    "plan_sites.png",
    "npv_distribution.png",
    "capex.png",
    "timeline.png",
    "market_paths.png",
    "frontier.png",
    "tornado.png",
)
RUN_FILES = (
    "summary.json",
    "plan.csv",
    "options.csv",
    "cashflows.csv",
    "annual.csv",
    "plan.xlsx",
    "frontier.csv",
    "alternatives.csv",
    "policy.csv",
    "report.html",
    *PLOT_FILES,
)
WHATIF_FILES = ("base", "changed", "diff.csv", "whatif.json", "whatif.html")
SWEEP_FILES = ("sweep.png", "plans.csv", "sweep.csv", "sweep.json", "sweep.html")
CASES_FILES = ("cases.png", "plans.csv", "cases.csv", "cases.json", "cases.html")


@click.command()
@scenario_file
@run_options
@set_option
@json_option
@click.option(
    "--frontier",
    type=click.IntRange(2, 50),
    default=None,
    metavar="N",
    help="Also trace expected NPV against CVaR by solving N risk weights (2-50).",
)
@click.option(
    "--alternatives",
    type=click.IntRange(1, 20),
    default=None,
    metavar="N",
    help="Also find N near-optimal plans, as different from the plan as possible (1-20).",
)
@click.option(
    "--within",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=0.01,
    show_default=True,
    metavar="REL",
    help="The alternatives' E[NPV] within this share of the plan's (0.01 = 1%).",
)
@click.option(
    "--differ-by",
    type=click.Choice(["totals", "sites"]),
    default=None,
    help="How the alternatives differ: in AI MW per contract and per build year (totals: "
    "another strategy), or in the sites whose option changes (sites).  [default: totals]",
)
@click.option(
    "--staged",
    is_flag=True,
    help="Also decide each later decision year per market state (wait and see): writes "
    "policy.csv and the value of waiting, in sample and on fresh draws.",
)
@click.option(
    "--clusters",
    type=click.IntRange(1, 16),
    default=None,
    metavar="K",
    help="With --staged: market states each state splits into at each later decision "
    "year, by hashprice (1-16; default 4).",
)
@click.option(
    "--validate",
    type=click.IntRange(2, 50),
    default=None,
    metavar="R",
    help="Also solve R independent replications (each values every option again) and "
    "bound the plan's optimality gap (Mak-Morton-Wood; summary validation.optimality_gap).",
)
@no_report_option
def solve(
    file: Path,
    run: RunOptions,
    overrides,
    as_json,
    frontier,
    alternatives,
    within,
    differ_by,
    staged,
    clusters,
    validate,
    no_report,
) -> None:
    """The main job: value every site option by Monte Carlo, then pick the build plan (MILP)."""
    from siteopt import api
    from siteopt.app.staged import DEFAULT_CLUSTERS
    from siteopt.cli.render import print_solve

    scenario, source = _load(file, overrides, run, AFTER_RUN_WARNINGS)
    if clusters is not None and not staged:
        raise InputError("--clusters sets the market states of --staged; add --staged")
    if differ_by is not None and not alternatives:
        raise InputError("--differ-by says how --alternatives differ; add --alternatives N")
    if frontier and scenario.simulation.risk_sample == 0:
        raise InputError(
            "--frontier traces expected NPV against the CVaR of the risk sample, and "
            "simulation.risk_sample is 0; set it above 0 (e.g. --set simulation.risk_sample=256)"
        )
    _check_memory(scenario, frontier=frontier or 0)
    out = run.out(Path("out") / scenario.name)
    with (
        staged_output_dir(out, RUN_FILES) as stage,
        progress_reporter(run.quiet or as_json) as progress,
    ):
        settings = run.settings(source)  # with --engine dask, starts the cluster: checks first
        result = api.solve(
            scenario,
            run_settings=settings,
            progress=progress,
            frontier=frontier or 0,
            alternatives=alternatives or 0,
            within=within,
            differ_by=differ_by or "totals",
            staged=(clusters or DEFAULT_CLUSTERS) if staged else 0,
            validate=validate or 0,
        )
        written = stage.final(_write(result, "solve", file, stage.path, no_report, progress))
    if as_json:
        click.echo(to_json(result.summary))
    else:
        print_solve(result.outcome, result.summary, written, verbose=run.verbose)
    _sampling_warning(result.outcome)


def _csv_file(flag: str, dest: str, help_text: str):
    """An optional CSV file option of evaluate."""
    return click.option(
        flag, dest, default=None, type=click.Path(path_type=Path, dir_okay=False), help=help_text
    )


@click.command()
@scenario_file
@_csv_file(
    "--plan",
    "plan_path",
    "CSV with columns site, ai_it_mw, build_year, contract (a solve's plan.csv works).",
)
@_csv_file(
    "--policy",
    "policy_path",
    "A staged policy instead of a plan: the policy.csv of solve --staged.",
)
@run_options
@set_option
@json_option
@no_report_option
def evaluate(
    file: Path, plan_path: Path, policy_path: Path, run: RunOptions, overrides, as_json, no_report
) -> None:
    """Value a plan (or a staged policy) the user fixed, with no MILP; name what it breaks."""
    from siteopt import api
    from siteopt.cli.render import print_solve

    if (plan_path is None) == (policy_path is None):
        raise InputError("evaluate needs one of --plan PLAN.csv or --policy POLICY.csv")
    scenario, source = _load(file, overrides, run, AFTER_RUN_WARNINGS)
    _check_memory(scenario)
    out = run.out(Path("out") / scenario.name / "evaluate")
    if policy_path is not None:
        _evaluate_policy(scenario, source, policy_path, run, out, as_json)
        return
    with (
        staged_output_dir(out, RUN_FILES) as stage,
        progress_reporter(run.quiet or as_json) as progress,
    ):
        settings = run.settings(source)
        result = api.evaluate(scenario, plan_path, run_settings=settings, progress=progress)
        written = stage.final(_write(result, "evaluate", file, stage.path, no_report))
    if as_json:
        click.echo(to_json(result.summary))
    else:
        print_solve(result.outcome, result.summary, written, verbose=run.verbose)
    _sampling_warning(result.outcome)
    _raise_broken(result.outcome.decision.violation_details, "plan", out)


def _evaluate_policy(scenario, source, path: Path, run: RunOptions, out: Path, as_json) -> None:
    """``evaluate --policy``: summary.json and policy.csv (with this run's state shares)."""
    from siteopt import api
    from siteopt.cli.render import print_policy
    from siteopt.output.files import write_csv, write_json

    with (
        staged_output_dir(out, RUN_FILES) as stage,
        progress_reporter(run.quiet or as_json) as progress,
    ):
        settings = run.settings(source)
        result = api.evaluate_policy(scenario, path, run_settings=settings, progress=progress)
        written = stage.final(
            [
                write_csv(result.policy, stage.path / "policy.csv"),
                write_json(result.summary, stage.path / "summary.json"),
            ]
        )
    if as_json:
        click.echo(to_json(result.summary))
    else:
        print_policy(result.summary, written)
    _raise_broken(result.violations, "policy", out)


def _raise_broken(details, what: str, out: Path) -> None:
    """Exit 3 naming each constraint the evaluated plan or policy breaks."""
    if details:
        n = len(details)
        raise InfeasibleError(
            f"this {what} breaks {n} constraint{'s' if n != 1 else ''} (outputs written to {out})",
            details,
        )


AFTER_RUN_WARNINGS = ("few_scenarios",)  # printed after the run, with the standard error


def _load(file: Path, overrides, run: RunOptions, after_run=()):
    """The scenario and its source lines; plausibility warnings printed (or, with
    --strict, raised) before any work."""
    scenario, source, _ = load_checked(
        file,
        overrides,
        strict=run.strict,
        scenarios=run.scenarios,
        seed=run.seed,
        deterministic=run.deterministic,
        after_run=after_run,
    )
    return scenario, source


def _sampling_warning(outcome) -> None:
    """After a run, the few-scenarios warning again, now with the plan's standard error."""
    for w in outcome.figures.warnings:
        if w.code in AFTER_RUN_WARNINGS:
            click.echo(str(w), err=True)


def _check_memory(scenario, *, frontier: int = 0) -> None:
    """Refuse (exit 2) a run that cannot fit in the memory free now, before it starts."""
    from siteopt.app.limits import check_memory

    check_memory(scenario, frontier_points=frontier)


def _write(
    result, command: str, file: Path, out: Path, no_report: bool, progress=None
) -> list[Path]:
    """The report first, the pipeline's files after, summary.json last (``Run.write``)."""
    return result.write(
        out, report=not no_report, command=command, scenario_path=file, progress=progress
    )


@click.command()
@scenario_file
@run_options
@set_option
@json_option
@no_report_option
def whatif(file: Path, run: RunOptions, overrides, as_json, no_report) -> None:
    """Solve the base scenario and the one changed by --set on the same random draws;
    print what changed (per-site MW, build year, contract; NPV, CVaR and capex deltas)."""
    from siteopt import api
    from siteopt.app.whatif import payload
    from siteopt.cli.render import print_whatif

    scenario, source, printed = load_checked(
        file,
        (),
        strict=run.strict,
        scenarios=run.scenarios,
        seed=run.seed,
        deterministic=run.deterministic,
    )
    changed, _, _ = load_checked(  # a bad --set fails with the file's line numbers
        file,
        overrides,
        strict=run.strict,
        scenarios=run.scenarios,
        seed=run.seed,
        deterministic=run.deterministic,
        already=printed,
    )
    _check_memory(scenario)
    _check_memory(changed)
    out = run.out(Path("out") / scenario.name / "whatif")
    with (
        staged_output_dir(out, WHATIF_FILES) as stage,
        progress_reporter(run.quiet or as_json) as progress,
    ):
        settings = run.settings(source)
        result = api.whatif(scenario, overrides, run_settings=settings, progress=progress)
        for side, outcome in (("base", result.base), ("changed", result.changed)):
            side_run = api.Run(outcome, summary_of(outcome))
            _write(side_run, "whatif", file, stage.path / side, no_report)
        document = payload(result)
        write_csv(result.sites, stage.path / "diff.csv")
        if not no_report:
            from siteopt.output.compare import write_whatif_html

            write_whatif_html(document, stage.path)
        write_json(document, stage.path / "whatif.json")
    if as_json:
        click.echo(to_json(document))
    else:
        print_whatif(result, out)


POINTS_ORDER = "siteopt.sweep.points_order"


def _points_order(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Record which of --values and --range came first: click processes options in the
    order the command line first gives them, so this runs in that order."""
    if value:
        ctx.meta.setdefault(POINTS_ORDER, []).append(param.name)
    return value


@click.command()
@scenario_file
@click.option(
    "--param",
    "params",
    required=True,
    multiple=True,
    metavar="PATH",
    help="Scenario value to sweep (a --set path); a second --param (or --param2) sweeps two.",
)
@click.option(
    "--values",
    "values",
    metavar="V1,V2,...",
    multiple=True,
    callback=_points_order,
    help="The points.",
)
@click.option(
    "--range",
    "spans",
    metavar="START:STOP:STEP",
    multiple=True,
    callback=_points_order,
    help="Evenly spaced points, STOP included when on the grid.",
)
@click.option("--param2", metavar="PATH", default=None, help="A second value: a two-way grid.")
@click.option("--values2", metavar="V1,V2,...", default=None, help="The second value's points.")
@click.option(
    "--range2", "span2", metavar="START:STOP:STEP", default=None, help="The same, evenly spaced."
)
@run_options
@set_option
@json_option
def sweep(
    file: Path, params, values, spans, param2, values2, span2, run: RunOptions, overrides, as_json
) -> None:
    """Solve once per value of one parameter (or per pair of two), same random draws; a
    table and a plot of NPV, CVaR and AI MW against the parameter (a heat map for two)."""
    from siteopt import api
    from siteopt.app import sweep as sweeps
    from siteopt.output.plots import sweep_heatmap_png, sweep_png

    order = click.get_current_context().meta.get(POINTS_ORDER, [])
    first = {"values": "values", "spans": "range"}.get(order[0]) if order else None
    axes = sweeps.parse_axes(params, values, spans, param2, values2, span2, first)
    scenario, source = _load(file, overrides, run)
    _check_memory(scenario)
    out = run.out(Path("out") / scenario.name / "sweep")
    with staged_output_dir(out, SWEEP_FILES) as stage:
        with progress_reporter(run.quiet or as_json) as progress:
            settings = run.settings(source)
            (param, points), *second = axes
            result = api.sweep(
                scenario,
                param,
                points,
                param2=second[0][0] if second else None,
                values2=second[0][1] if second else None,
                run_settings=settings,
                progress=progress,
            )
        frame = result.frame()
        title = f"{result.scenario}: sweep of {result.param}"
        if result.param2:
            png = sweep_heatmap_png(
                frame, result.param, result.param2, f"{title} and {result.param2}"
            )
        else:
            png = sweep_png(frame, result.param, title)
        payload, written = _write_points(stage, result, png, "sweep")
    _print_points(result, payload, written, as_json)


@click.command()
@scenario_file
@click.option(
    "--only",
    metavar="NAME,NAME,...",
    default=None,
    help="Solve these cases only (the base case always), in this order.",
)
@run_options
@set_option
@json_option
def cases(file: Path, only: str | None, run: RunOptions, overrides, as_json) -> None:
    """Solve the scenario as written (base) and each case of its cases: block side by side,
    same random draws; a table, a chart and each case's plan."""
    from siteopt import api
    from siteopt.output.plots import cases_png

    names = None if only is None else [n.strip() for n in only.split(",") if n.strip()]
    scenario, source = _load(file, overrides, run)
    _check_memory(scenario)
    out = run.out(Path("out") / scenario.name / "cases")
    with staged_output_dir(out, CASES_FILES) as stage:
        with progress_reporter(run.quiet or as_json) as progress:
            result = api.cases(
                scenario, names=names, run_settings=run.settings(source), progress=progress
            )
        png = cases_png(result.frame(), f"{result.scenario}: cases on the same draws")
        payload, written = _write_points(stage, result, png, "cases")
    _print_points(result, payload, written, as_json)


def _write_points(stage, result, png: bytes, stem: str) -> tuple[dict, list[Path]]:
    """A sweep's or a run of cases' files: STEM.png, plans.csv, STEM.csv, STEM.html and
    STEM.json (the payload, returned with the paths written)."""
    from siteopt.app.sweep import payload as payload_of
    from siteopt.output.compare import write_sweep_html
    from siteopt.output.files import write_atomic

    payload = payload_of(result)
    frame, plans = result.frame(), result.plans()
    written = stage.final(
        [
            write_atomic(stage.path / f"{stem}.png", png),
            write_csv(plans, stage.path / "plans.csv"),
            write_csv(frame, stage.path / f"{stem}.csv"),
            write_sweep_html(result, frame, plans, png, stage.path),
            write_json(payload, stage.path / f"{stem}.json"),
        ]
    )
    return payload, written


def _print_points(result, payload: dict, written: list[Path], as_json: bool) -> None:
    from siteopt.cli.render import print_sweep

    if as_json:
        click.echo(to_json(payload))
    else:
        print_sweep(result, payload, written)


@click.command()
@scenario_file
@click.option("--site", "site_name", required=True, help="Site to convert.")
@click.option("--contract", "contract_name", required=True, help="Contract it would sign.")
@click.option(
    "--site-only",
    is_flag=True,
    help="Skip the price at which the build plan signs the site (whole solves).",
)
@run_options
@set_option
@json_option
def breakeven(
    file: Path,
    site_name: str,
    contract_name: str,
    site_only: bool,
    run: RunOptions,
    overrides,
    as_json,
) -> None:
    """Lowest contract price ($/kW-month) at which converting a site beats keeping it hashing.

    Bisection on the site's valuation with the draws fixed; then on whole build plans
    (the MILP with --solver, --time-limit and --mip-gap) for the lowest price at which the
    plan signs the site, unless --site-only.
    """
    from siteopt.app.breakeven import breakeven as find_breakeven
    from siteopt.app.limits import check_breakeven_memory
    from siteopt.cli.render import print_breakeven

    scenario, source = _load(file, overrides, run)
    check_breakeven_memory(scenario, site_name)
    out = run.out(Path("out") / scenario.name)
    with (
        staged_output_dir(out) as stage,
        progress_reporter(run.quiet or as_json) as progress,
    ):
        settings = run.settings(source)
        result = find_breakeven(
            scenario,
            site_name,
            contract_name,
            backend=settings.backend,
            progress=progress,
            engine=settings.engine,
            scheduler=settings.scheduler,
            plan=None if site_only else settings,
        )
        payload = dataclasses.asdict(result)
        name = f"breakeven-{site_name}-{contract_name}.json"
        path = stage.final([write_json(payload, stage.path / name)])[0]
    if as_json:
        click.echo(to_json(payload))
    else:
        print_breakeven(result, path)


ALL = (solve, evaluate, whatif, sweep, cases, breakeven)
