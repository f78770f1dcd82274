"""The ``siteopt`` command line: a thin click group (see docs/cli.md).

Each command parses its arguments, calls one library function and renders the result.
Errors are handled once, in :meth:`SiteoptGroup.main`, for every command:

====  ========================================================================
exit  raised by the command
====  ========================================================================
0     nothing
1     an unexpected exception: an internal error, reported without a traceback
      unless ``SITEOPT_DEBUG=1``; or a :class:`~siteopt.model.errors.SiteoptError`
2     :class:`~siteopt.model.errors.InputError` (``ScenarioError`` is one), a click usage
      error (bad flag, bad value, missing argument)
3     :class:`~siteopt.model.errors.InfeasibleError`
130   Ctrl-C (SIGINT) or SIGTERM: the run stops within about a second, says so in one
      line, and leaves no partial output (see :func:`siteopt.output.files.staged_output_dir`)
====  ========================================================================
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from siteopt.app.bench import bench_lines, bench_payload, run_bench
from siteopt.app.economics import market_fan, unit_economics
from siteopt.cli import commands
from siteopt.cli.options import json_option, load_checked, scenario_file, set_option, strict_option
from siteopt.cli.render import economics_payload, print_economics
from siteopt.kernels.backend import BackendError
from siteopt.model.errors import SiteoptError
from siteopt.output.files import to_json
from siteopt.version import __version__

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
        with signals_interrupt():
            code = guarded(
                lambda: super(SiteoptGroup, self).main(
                    args, prog_name or "siteopt", complete_var, standalone_mode=False, **extra
                )
            )
        if standalone_mode:
            if code == EXIT_INTERRUPTED and solver_busy():
                # A solver that did not stop in time must not run into interpreter
                # shutdown (its C++ threads would outlive Python); leave at once.
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
            sys.exit(code)
        return code

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:  # past click, which would print a blank line
            raise _Stopped(exc) from exc


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; raised in the main thread by the CLI's signal handler.

    Parameters
    ----------
    signal_name : str
        ``SIGINT`` or ``SIGTERM``.
    """

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


class _Stopped(BaseException):
    """Carries a KeyboardInterrupt through click's ``main`` to :func:`guarded`."""

    def __init__(self, interrupt: KeyboardInterrupt) -> None:
        super().__init__()
        self.interrupt = interrupt


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _stop(signum: int, frame: object) -> None:
    # Later signals are ignored: the run is already unwinding (removing its staging
    # folder, stopping the solver, about a second at most), and a second Ctrl-C must
    # not cut that short and leave temporary files behind.
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signal.Signals(signum).name)


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """While inside, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread
    (SIGTERM would otherwise end the process at once, leaving temporary files); the
    previous handlers are put back on the way out (``main`` also runs inside tests)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, _stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def solver_busy() -> bool:
    """A MILP solver call is still running on its worker thread."""
    module = sys.modules.get("siteopt.optimizer.interrupt")
    return bool(module is not None and module.busy())


def guarded(call: Callable[[], Any]) -> int:
    """Run ``call`` (a click ``main`` in non-standalone mode) and return its exit status."""
    try:
        rv = call()
    except SiteoptError as exc:
        _err(str(exc))
        return exc.exit_code
    except _Stopped as exc:
        _interrupted(exc.interrupt)
        return EXIT_INTERRUPTED
    except click.exceptions.Abort as exc:
        _err(interrupted_message(exc.__cause__))  # click has closed the ^C echo's line
        return EXIT_INTERRUPTED
    except click.ClickException as exc:  # UsageError, BadParameter, NoSuchOption: exit 2
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt as exc:
        _interrupted(exc)
        return EXIT_INTERRUPTED
    except BackendError as exc:  # --backend cupy on a machine where CuPy cannot run: bad input
        _err(f"siteopt: {exc}")
        return EXIT_INPUT
    except Exception as exc:
        return _internal_error(exc)
    # click returns the exit code of ctx.exit() (--help, --version) or the command's value
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else EXIT_OK


def _interrupted(exc: BaseException) -> None:
    if sys.stderr.isatty():
        _err("")  # past the terminal's ^C echo
    _err(interrupted_message(exc))


def interrupted_message(exc: BaseException | None) -> str:
    """One line: which signal, and what became of the output folder, e.g. "siteopt:
    interrupted (SIGTERM); no output written, out/texas left as it was"."""
    name = getattr(exc, "signal_name", None)
    note = getattr(exc, "output_note", None)
    return "siteopt: interrupted" + (f" ({name})" if name else "") + (f"; {note}" if note else "")


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


# --------------------------------------------------------------------- commands


@click.group(cls=SiteoptGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="siteopt")
def main() -> None:
    """Which megawatts to keep hashing and which to convert to hosted AI."""


@main.command()
@scenario_file
@set_option
@strict_option
def validate(file: Path, overrides: tuple[str, ...], strict: bool) -> None:
    """Check a scenario file; print every problem as FILE:LINE: field.path: message, and
    plausibility warnings (likely mistakes) as warning: FILE:LINE: field.path: message."""
    scenario, _, _ = load_checked(file, overrides, strict=strict)
    click.echo(
        f"ok: {scenario.name} ({len(scenario.sites)} sites, {len(scenario.contracts)} contracts)"
    )


@main.command()
@scenario_file
@json_option
@set_option
@strict_option
def economics(file: Path, as_json: bool, overrides: tuple[str, ...], strict: bool) -> None:
    """Unit economics at the first month: hashprice, and per site per MW per day the mining
    revenue, power cost and margin, and the hosted-AI revenue and margin (each also per MW of
    the other's unit); then the market paths by year (median, p10-p90, mean) over the
    scenario's draws."""
    scenario, _, _ = load_checked(file, overrides, strict=strict)
    econ, fan = unit_economics(scenario), market_fan(scenario)
    if as_json:
        click.echo(json.dumps(economics_payload(econ, fan), indent=2))
    else:
        print_economics(econ, fan)


@main.command()
@scenario_file
@set_option
@strict_option
def show(file: Path, overrides: tuple[str, ...], strict: bool) -> None:
    """Print the scenario as YAML with every default filled in (--set applied)."""
    from siteopt.model.reference import scenario_yaml

    scenario, _, _ = load_checked(file, overrides, strict=strict)
    header = f"# {file}, as siteopt reads it: every default filled in (siteopt show)\n"
    click.echo(scenario_yaml(scenario, header), nl=False)


@main.command()
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path, file_okay=False))
def init(directory: Path) -> None:
    """Write DIR/scenario.yaml: a commented one-site starter scenario that validates and
    solves. An existing file is never overwritten."""
    from siteopt.output.files import write_starter

    path = write_starter(directory)
    click.echo(f"wrote {path}; next: siteopt validate {path} && siteopt solve {path}")


@main.command()
@click.option(
    "--markdown",
    is_flag=True,
    help="The reference as Markdown (docs/scenario.md is this output); default a plain table.",
)
@json_option
def schema(markdown: bool, as_json: bool) -> None:
    """Every scenario key with its type, default, bounds, unit and meaning."""
    from siteopt.model.reference import schema_markdown, schema_rows

    if as_json:
        click.echo(json.dumps(schema_rows(), indent=2))
    elif markdown:
        click.echo(schema_markdown(), nl=False)
    else:
        for row in schema_rows():
            bounds = f" ({row['bounds']})" if row["bounds"] else ""
            click.echo(
                f"{row['path']}: {row['type']}, default {row['default']}{bounds}: "
                f"{row['description']}"
            )


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
    for line in bench_lines(payload):
        click.echo(line)


for _command in commands.ALL:
    main.add_command(_command)


@main.group()
def calibrate() -> None:
    """Fit scenario keys to your data: hourly power prices, a daily market history.
    Each prints a YAML block to paste into a scenario (docs/calibration.md)."""


@calibrate.command("power")
@click.argument("prices", metavar="PRICES.csv", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--market", "name", required=True, help="Name of the power market in the block.")
@click.option(
    "--load",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Hourly system load (timestamp,load_mw): adds each June-September peak hour (4CP).",
)
@click.option(
    "--price-column", default="price_usd_mwh", show_default=True, help="The prices' column."
)
@click.option("--allow-negative", is_flag=True, help="Fit negative prices (else each is reported).")
@click.option(
    "--plot",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the plot [default: out/calibrate/NAME-power.png].",
)
def calibrate_power(
    prices: Path,
    name: str,
    load: Path | None,
    price_column: str,
    allow_negative: bool,
    plot: Path | None,
) -> None:
    """Hourly prices (timestamp,price_usd_mwh; one row an hour) -> the market's level,
    volatility, seasonality, duration curve and spikes, and 4CP hours with --load."""
    from pydantic import TypeAdapter, ValidationError

    from siteopt.app.calibrate import fit_power, power_block
    from siteopt.model.schema import Name
    from siteopt.output.files import write_atomic
    from siteopt.output.plots import calibration_png

    try:
        TypeAdapter(Name).validate_python(name)
    except ValidationError:
        raise click.BadParameter(
            "letters, digits, '-' or '_', starting with a letter or digit", param_hint="--market"
        ) from None
    fit = fit_power(
        prices, name=name, load=load, price_column=price_column, allow_negative=allow_negative
    )
    season = fit.seasonality or [1.0] * 12
    fitted = [fit.price_usd_mwh * season[int(m[5:]) - 1] for m in fit.months]
    png = calibration_png(
        fit.months, fit.monthly_mean, fitted, fit.hourly_multiple, fit.duration_curve,
        f"{name}: {prices.name}",
    )  # fmt: skip
    target = plot or Path("out") / "calibrate" / f"{name}-power.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, png)
    click.echo(power_block(fit), nl=False)
    click.echo(f"plot: {target}", err=True)


@calibrate.command("market")
@click.argument("history", metavar="DAILY.csv", type=click.Path(path_type=Path, dir_okay=False))
def calibrate_market(history: Path) -> None:
    """A daily history (date,btc_price_usd[,hashrate_eh][,fee_share]) -> BTC volatility and
    drift, the hashrate's growth, volatility and correlation, the fee share, with standard
    errors."""
    from siteopt.app.calibrate import fit_market, market_block

    click.echo(market_block(fit_market(history)), nl=False)
