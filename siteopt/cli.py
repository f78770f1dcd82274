"""The ``siteopt`` command line: a thin click group (see ../shared/design/CLI.md).

Each command parses its arguments, calls one library function and renders the result.
Errors are handled once, in :meth:`SiteoptGroup.main`, for every command:

====  ========================================================================
exit  raised by the command
====  ========================================================================
0     nothing
1     an unexpected exception: an internal error, reported without a traceback
      unless ``SITEOPT_DEBUG=1``; or a :class:`~siteopt.errors.SiteoptError`
2     :class:`~siteopt.errors.InputError` (``ScenarioError`` is one), a click usage
      error (bad flag, bad value, missing argument)
3     :class:`~siteopt.errors.InfeasibleError`
130   Ctrl-C
====  ========================================================================
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__, whatif
from .bench import bench_payload, run_bench
from .economics import unit_economics
from .errors import InputError, SiteoptError
from .outputs import to_json
from .progress import progress_reporter
from .render import economics_payload, print_economics, print_solve
from .scenario import load_scenario

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
DEBUG_ENV = "SITEOPT_DEBUG"


class SiteoptGroup(click.Group):
    """A click group whose ``main`` maps every exception to an exit status and a message.

    Commands never print errors or call ``sys.exit`` themselves; they raise, and this
    is the one place that decides what the user sees.
    """

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        code = guarded(
            lambda: super(SiteoptGroup, self).main(
                args, prog_name or "siteopt", complete_var, standalone_mode=False, **extra
            )
        )
        if standalone_mode:
            sys.exit(code)
        return code


def guarded(call: Callable[[], Any]) -> int:
    """Run ``call`` (a click ``main`` in non-standalone mode) and return its exit status."""
    try:
        rv = call()
    except SiteoptError as exc:
        _err(str(exc))
        return exc.exit_code
    except click.exceptions.Abort:
        _err("siteopt: interrupted")
        return EXIT_INTERRUPTED
    except click.ClickException as exc:  # UsageError, BadParameter, NoSuchOption: exit 2
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        _err("siteopt: interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        return _internal_error(exc)
    # click returns the exit code of ctx.exit() (--help, --version) or the command's value
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else EXIT_OK


def _internal_error(exc: BaseException) -> int:
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    how = "the traceback above" if debug else f"the output of a run with {DEBUG_ENV}=1"
    _err(f"siteopt: internal error: {what}")
    _err(f"This is a bug in siteopt; please report it with the command line and {how}.")
    return EXIT_INTERNAL


def _err(message: str) -> None:
    click.echo(message, err=True)


# ------------------------------------------------------------- shared arguments


def scenario_file(f: F) -> F:
    """The ``FILE`` argument: a scenario YAML (a missing file is reported by the loader)."""
    return click.argument("file", metavar="FILE", type=click.Path(path_type=Path, dir_okay=False))(
        f
    )


def set_option(f: F) -> F:
    """``--set PATH=VALUE``, repeatable; applied to the scenario before validation."""
    return click.option(
        "--set",
        "overrides",
        metavar="PATH=VALUE",
        multiple=True,
        help="Change one scenario value, e.g. contracts.hyperscaler-a.price_usd_kw_month=140 "
        "(list items by name; VALUE is a YAML scalar). Repeatable.",
    )(f)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(f)


# --------------------------------------------------------------------- commands


@click.group(cls=SiteoptGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="siteopt")
def main() -> None:
    """Which megawatts to keep hashing and which to convert to hosted AI."""


@main.command()
@scenario_file
def validate(file: Path) -> None:
    """Check a scenario file; print every problem as FILE:LINE: field.path: message."""
    scenario = load_scenario(file)
    click.echo(
        f"ok: {scenario.name} ({len(scenario.sites)} sites, {len(scenario.contracts)} contracts)"
    )


@main.command()
@scenario_file
@json_option
@set_option
def economics(file: Path, as_json: bool, overrides: tuple[str, ...]) -> None:
    """Unit economics at the first month, no randomness: hashprice, and per site per MW per
    day the mining revenue, power cost and margin, and the hosted-AI revenue and margin."""
    econ = unit_economics(load_scenario(file, overrides))
    if as_json:
        click.echo(json.dumps(economics_payload(econ), indent=2))
    else:
        print_economics(econ)


# Later commands (solve, evaluate, whatif, sweep, breakeven, bench) go below, each
# `@main.command()` with `@scenario_file`, `@set_option`, `@json_option` as needed: parse,
# call one library function, render. Raise siteopt.errors.InputError (exit 2) for a bad
# flag value and InfeasibleError (exit 3) for an infeasible plan; main() does the rest.


def run_options(f: F) -> F:
    """CLI.md's options shared by solve, evaluate, whatif, sweep and breakeven."""
    decorators = [
        click.option(
            "--out",
            "out_dir",
            type=click.Path(path_type=Path, file_okay=True),
            default=None,
            help="Output folder [default: out/<scenario name>].",
        ),
        click.option(
            "--scenarios",
            type=click.IntRange(1, 10_000_000),
            default=None,
            help="Monte Carlo scenarios [default: the file's simulation.scenarios].",
        ),
        click.option(
            "--seed",
            type=click.IntRange(0, 2**63 - 1),
            default=None,
            help="Random seed [default: the file's simulation.seed].",
        ),
        click.option(
            "--backend",
            type=click.Choice(["auto", "numpy", "cupy"]),
            default="auto",
            show_default=True,
            help="auto takes CuPy when a CUDA device answers.",
        ),
        click.option(
            "--engine",
            type=click.Choice(["local", "dask"]),
            default="local",
            show_default=True,
            help="Where scenario chunks run.",
        ),
        click.option(
            "--scheduler", metavar="ADDRESS", default=None, help="Dask scheduler address."
        ),
        click.option(
            "--solver",
            type=click.Choice(["highs", "cbc"]),
            default=None,
            help="MILP solver [default: highs if importable, else cbc].",
        ),
        click.option(
            "--time-limit",
            "time_limit",
            type=click.FloatRange(min=0.1, max=86_400),
            default=120.0,
            show_default=True,
            help="MILP time limit in seconds.",
        ),
        click.option("--quiet", is_flag=True, help="No progress bars."),
    ]
    for decorator in reversed(decorators):
        f = decorator(f)
    return f


def _settings(backend, engine, scheduler, scenarios, seed, solver, time_limit):
    if engine == "dask" or scheduler is not None:
        raise InputError(
            "--engine dask is not available in this version of siteopt; run with --engine local"
        )
    from .pipeline import SolveSettings  # the MILP stack loads only for commands that solve

    return SolveSettings(
        backend=backend,
        engine=engine,
        scenarios=scenarios,
        seed=seed,
        solver=solver,
        time_limit_s=time_limit,
    )


@main.command()
@scenario_file
@run_options
@set_option
@json_option
def solve(
    file: Path,
    out_dir,
    scenarios,
    seed,
    backend,
    engine,
    scheduler,
    solver,
    time_limit,
    quiet,
    overrides,
    as_json,
) -> None:
    """The main job: value every site option by Monte Carlo, then pick the build plan (MILP)."""
    from . import pipeline

    scenario = load_scenario(file, overrides)
    settings = _settings(backend, engine, scheduler, scenarios, seed, solver, time_limit)
    with progress_reporter(quiet or as_json) as progress:
        outcome = pipeline.solve(scenario, settings, progress)
        written = pipeline.write_outputs(outcome, out_dir or Path("out") / scenario.name)
    if as_json:
        click.echo(to_json(outcome.summary))
    else:
        print_solve(outcome, written)


@main.command()
@click.option(
    "--backend",
    type=click.Choice(["auto", "numpy", "cupy"]),
    default="auto",
    show_default=True,
    help="auto times numpy, and CuPy too where a CUDA device answers.",
)
@click.option("--scenarios", type=click.IntRange(1, 10_000_000), default=20_000, show_default=True)
@click.option(
    "--file",
    "file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Scenario to value [default: the bundled scenarios/texas.yaml].",
)
@click.option(
    "--repeat", type=click.IntRange(1, 20), default=1, show_default=True, help="Best of N runs."
)
@json_option
def bench(backend: str, scenarios: int, file: Path | None, repeat: int, as_json: bool) -> None:
    """Time the valuation on numpy and CuPy on the same work; cell-months per second, ratio."""
    payload = bench_payload(run_bench(file, backend, scenarios, repeat))
    if as_json:
        click.echo(to_json(payload))
        return
    for row in payload["results"]:
        click.echo(
            f"{row['backend']:>6}: {row['options']} options x {row['scenarios']:,} scenarios x "
            f"{row['months']} months in {row['seconds']:.2f} s = "
            f"{row['cell_months_per_s']:.3g} cell-months/s"
        )
    ratio = payload["cupy_over_numpy"]
    click.echo(
        f"cupy / numpy speed-up: {ratio:.1f}x" if ratio else f"cupy: not timed ({payload['gpu']})"
    )


@main.command()
@scenario_file
@click.option("--site", "site_name", required=True, help="Site to convert.")
@click.option("--contract", "contract_name", required=True, help="Contract it would sign.")
@click.option(
    "--scenarios",
    type=click.IntRange(1, 10_000_000),
    default=None,
    help="Monte Carlo scenarios [default: the file's simulation.scenarios].",
)
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, help="Random seed.")
@click.option(
    "--backend", type=click.Choice(["auto", "numpy", "cupy"]), default="auto", show_default=True
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@set_option
@json_option
def breakeven(
    file: Path,
    site_name: str,
    contract_name: str,
    scenarios,
    seed,
    backend,
    quiet,
    overrides,
    as_json,
) -> None:
    """Lowest contract price ($/kW-month) at which converting a site beats keeping it hashing."""
    scenario = load_scenario(file, overrides)
    with progress_reporter(quiet or as_json) as progress:
        result = whatif.breakeven(
            scenario,
            site_name,
            contract_name,
            backend=backend,
            scenarios=scenarios,
            seed=seed,
            progress=progress,
        )
    payload = dataclasses.asdict(result)
    if as_json:
        click.echo(to_json(payload))
        return

    def price(v):
        return "never, up to $10,000" if v is None else f"${v:,.2f} per kW-month"

    click.echo(
        f"{site_name} on {contract_name} ({result.scenarios:,} scenarios, seed {result.seed}):"
    )
    click.echo(
        f"  converting beats hashing in expected NPV from {price(result.by_expected_npv)}"
        + (f" ({result.best_option_at_breakeven})" if result.best_option_at_breakeven else "")
    )
    click.echo(f"  converting beats hashing in CVaR from {price(result.by_cvar)}")
