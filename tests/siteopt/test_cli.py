"""The command line's contract: output formats, exit codes, and no stray tracebacks."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

import siteopt
import siteopt.cli.group
from siteopt.cli.group import SiteoptGroup
from siteopt.model.errors import InfeasibleError, InputError

from .support import REPO, SCENARIOS, Run

RunCli = Callable[..., Run]
TEXAS = REPO / "scenarios" / "texas.yaml"


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_validate_prints_the_ok_line(path: Path, run_cli: RunCli) -> None:
    raw = yaml.safe_load(path.read_text())
    sites, contracts = len(raw["sites"]), len(raw.get("contracts", []))
    result = run_cli("validate", str(path))
    assert result.exit_code == 0
    assert result.stdout == f"ok: {raw['name']} ({sites} sites, {contracts} contracts)\n"
    assert result.stderr == ""


def test_console_entry_point_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "siteopt", "validate", str(TEXAS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "ok: texas-portfolio (10 sites, 5 contracts)\n")
    missing = tmp_path / "missing.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "siteopt", "validate", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (2, f"{missing}: no such file\n")


def test_version(run_cli: RunCli) -> None:
    result = run_cli("--version")
    assert result.exit_code == 0
    assert result.stdout == f"siteopt, version {siteopt.__version__}\n"


def test_help_lists_the_commands(run_cli: RunCli) -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    for command in CLI_COMMANDS:  # docs/cli.md's table
        assert command in result.stdout, command


CLI_COMMANDS = (
    "validate",
    "economics",
    "solve",
    "evaluate",
    "whatif",
    "sweep",
    "breakeven",
    "bench",
)
EXTRA_ARGS = {
    "evaluate": ["--plan", "plan.csv"],
    "sweep": ["--param", "market.btc_price_usd", "--values", "60000"],
    "breakeven": ["--site", "a", "--contract", "b"],
}


@pytest.mark.parametrize(
    "command", ["validate", "economics", "solve", "evaluate", "whatif", "sweep", "breakeven"]
)
def test_missing_file_is_one_line_exit_2(command: str, run_cli: RunCli, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = run_cli(command, str(missing), *EXTRA_ARGS.get(command, []))
    assert result.exit_code == 2
    assert result.stderr == f"{missing}: no such file\n"
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["validate"],  # missing argument
        ["economics", str(TEXAS), "--bogus"],  # unknown flag
        ["frobnicate"],  # unknown command
        ["validate", str(REPO / "scenarios")],  # a directory
    ],
    ids=["missing-argument", "unknown-flag", "unknown-command", "directory"],
)
def test_usage_errors_exit_2_without_traceback(args: list[str], run_cli: RunCli) -> None:
    result = run_cli(*args)
    assert result.exit_code == 2
    assert "Error:" in result.stderr
    assert "Traceback" not in result.output


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom")


def test_internal_error_asks_for_a_report_without_traceback(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(siteopt.cli.group, "unit_economics", _boom)
    result = run_cli("economics", str(TEXAS))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "siteopt: internal error: RuntimeError: boom"
    assert "please report it" in result.stderr
    assert "SITEOPT_DEBUG=1" in result.stderr
    assert len(lines) <= 3


@pytest.mark.parametrize("value", ["0", ""])
def test_siteopt_debug_off_values_hide_the_traceback(
    value: str, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(siteopt.cli.group, "load_checked", _boom)
    result = run_cli("validate", str(TEXAS), env={"SITEOPT_DEBUG": value})
    assert result.exit_code == 1
    assert "Traceback" not in result.output


def test_siteopt_debug_shows_the_traceback(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(siteopt.cli.group, "load_checked", _boom)
    result = run_cli("validate", str(TEXAS), env={"SITEOPT_DEBUG": "1"})
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert 'raise RuntimeError("boom")' in result.stderr
    assert "siteopt: internal error: RuntimeError: boom" in result.stderr


# Every command gets the same error handling from SiteoptGroup: check it on a throwaway group.


def _group_raising(exc: BaseException) -> click.Group:
    @click.group(cls=SiteoptGroup)
    def group() -> None:
        pass

    @group.command()
    def go() -> None:
        raise exc

    return group


@pytest.mark.parametrize(
    ("exc", "code", "first_line"),
    [
        (InfeasibleError("no plan", ["contract a needs 100 MW by 2027"]), 3, "no plan"),
        (InputError("--scenarios must be at least 1"), 2, "--scenarios must be at least 1"),
        (click.BadParameter("must be positive"), 2, "Usage: group go"),
        (KeyboardInterrupt(), 130, ""),
        (ValueError("bug"), 1, "siteopt: internal error: ValueError: bug"),
    ],
    ids=["infeasible", "input", "bad-parameter", "interrupt", "internal"],
)
def test_group_maps_exceptions_to_exit_codes(
    exc: BaseException, code: int, first_line: str
) -> None:
    result = CliRunner().invoke(_group_raising(exc), ["go"], env={"SITEOPT_DEBUG": None})
    assert result.exit_code == code
    assert result.stdout == ""
    assert result.stderr.splitlines()[0].startswith(first_line)
    assert "Traceback" not in result.stderr
    if isinstance(exc, KeyboardInterrupt):  # click's blank line, then one message
        assert result.stderr.strip() == "siteopt: interrupted"
    if isinstance(exc, InfeasibleError):
        assert result.stderr.splitlines()[1].strip() == "contract a needs 100 MW by 2027"


def test_economics_json_is_the_only_output(run_cli: RunCli) -> None:
    result = run_cli("economics", str(TEXAS), "--json")
    assert result.exit_code == 0
    assert result.stdout.lstrip().startswith("{") and result.stdout.rstrip().endswith("}")
    assert result.stderr == ""


def test_outputs_are_readable_like_any_file_the_user_writes(tmp_path):
    """Atomic writes go through mkstemp (0600); the final file gets 0666 less the umask."""
    import os

    from siteopt.output.files import write_atomic

    path = write_atomic(tmp_path / "summary.json", "{}\n")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert not list(tmp_path.glob(".*.tmp"))
