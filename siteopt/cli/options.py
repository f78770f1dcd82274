"""Arguments and options the commands share (docs/cli.md's "Options shared by solve, evaluate,
whatif, sweep, breakeven"), as click decorators."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from siteopt.model.errors import InputError
from siteopt.optimizer.defaults import DEFAULT_MIP_GAP, DEFAULT_TIME_LIMIT_S

F = TypeVar("F", bound=Callable[..., Any])


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


@dataclass(frozen=True)
class RunOptions:
    """The shared run options of one command line."""

    out_dir: Path | None
    scenarios: int | None
    seed: int | None
    backend: str
    engine: str
    scheduler: str | None
    solver: str | None
    time_limit: float
    mip_gap: float
    quiet: bool
    deterministic: bool = False
    strict: bool = False
    verbose: bool = False

    def settings(self, source=None):
        """The pipeline's SolveSettings.

        With ``--engine dask`` the cluster is started or connected to here, so that a
        missing ``distributed`` or a scheduler that does not answer exits 2 before any work.
        """
        if self.scheduler is not None and self.engine != "dask":
            raise InputError(f"--scheduler {self.scheduler} needs --engine dask")
        if self.engine == "dask":
            from siteopt.app.engines import connect

            connect(self.scheduler, self.backend)
        from siteopt.app.pipeline import (
            SolveSettings,  # the MILP stack loads only for commands that solve
        )

        return SolveSettings(
            backend=self.backend,
            engine=self.engine,
            scheduler=self.scheduler,
            solver=self.solver,
            time_limit_s=self.time_limit,
            gap_rel=self.mip_gap,
            source=source,
        )

    def out(self, default: Path) -> Path:
        return self.out_dir if self.out_dir is not None else default


_RUN_OPTIONS = [
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
        help="Where scenario chunks run: this process, or a Dask cluster.",
    ),
    click.option(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="Dask scheduler address, e.g. tcp://host:8786 [default with --engine dask: "
        "start a local cluster].",
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
        default=DEFAULT_TIME_LIMIT_S,
        show_default=True,
        help="MILP time limit in seconds.",
    ),
    click.option(
        "--mip-gap",
        "mip_gap",
        type=click.FloatRange(min=0.0, max=1.0),
        default=DEFAULT_MIP_GAP,
        show_default=True,
        help="Relative MIP gap at which the MILP stops (0.0001 = 0.01%).",
    ),
    click.option("--quiet", is_flag=True, help="No progress bars."),
    click.option(
        "--deterministic",
        is_flag=True,
        help="One path at the central view: no noise, no exits, no delays (docs/model.md).",
    ),
]
_RUN_KEYS = ("out_dir", "scenarios", "seed", "backend", "engine", "scheduler", "solver",
             "time_limit", "mip_gap", "quiet", "deterministic", "strict", "verbose")  # fmt: skip


def strict_option(f: F) -> F:
    """``--strict``: plausibility warnings (likely unit slips, contracts that can never be
    signed, a missing halving, too few scenarios) become errors, exit 2."""
    return click.option(
        "--strict", is_flag=True, help="Treat plausibility warnings as errors (exit 2)."
    )(f)


def verbose_option(f: F) -> F:
    """``--verbose``: details such as why no GPU was used."""
    return click.option("--verbose", is_flag=True, help="Show details, e.g. why no GPU was used.")(
        f
    )


def run_options(f: F) -> F:
    """docs/cli.md's shared options, handed to the command as one ``run: RunOptions``."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        run = RunOptions(**{k: kwargs.pop(k) for k in _RUN_KEYS})
        return f(*args, run=run, **kwargs)

    for decorator in reversed([*_RUN_OPTIONS, strict_option, verbose_option]):
        wrapper = decorator(wrapper)
    return wrapper  # type: ignore[return-value]


def load_checked(
    file: Path,
    overrides: tuple[str, ...] = (),
    *,
    strict: bool,
    scenarios: int | None = None,
    seed: int | None = None,
    deterministic: bool = False,
    already: Collection[str] = (),
    after_run: Collection[str] = (),
):
    """Load and validate a scenario, apply the run settings ``--scenarios`` and ``--seed``
    (the one place they are applied), print its plausibility warnings to standard error
    (``warning: FILE:LINE: path: message``), and with ``strict`` refuse it (exit 2).

    Parameters
    ----------
    already : collection of str
        Warnings printed before (whatif's base), not printed again.
    after_run : collection of str
        Warning codes printed after the run instead, when they know more (the sampling
        error); ``strict`` still refuses them now.

    Returns
    -------
    scenario : Scenario
        As in the file, with ``overrides``, ``scenarios`` and ``seed`` applied.
    source : SourceLines
        Its file and lines, for the warnings in summary.json.
    warnings : list of str
        The warnings, as printed.
    """
    from siteopt.app.checks import scenario_warnings
    from siteopt.model.load import load_scenario_source, with_simulation

    scenario, source = load_scenario_source(file, overrides)
    if scenarios is not None:
        source = dataclasses.replace(source, flags={("simulation", "scenarios"): "--scenarios"})
    scenario = with_simulation(scenario, scenarios, seed, deterministic)
    warnings = scenario_warnings(scenario, source)
    if warnings and strict:
        raise InputError(
            "\n".join(w.location() for w in warnings)
            + f"\n--strict: {len(warnings)} plausibility warning(s) above are errors"
        )
    lines = [str(w) for w in warnings if w.code not in after_run]
    for line in lines:
        if line not in already:
            click.echo(line, err=True)
    return scenario, source, lines
