"""Fixtures for the scenario, economics and command-line tests."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from siteopt.cli.group import main

from .support import Run


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt in the tests, as in any interactive Python, even when
    the suite was started with SIGINT ignored (a shell's background job inherits that):
    the interrupt tests raise SIGINT in this process and expect the exception."""
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def run_cli() -> Callable[..., Run]:
    """Run ``siteopt ARGS...`` in-process, through the same ``main`` the console script calls."""

    def run(*args: str, env: dict[str, str | None] | None = None) -> Run:
        env = {"SITEOPT_DEBUG": None, **(env or {})}
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def write_scenario(tmp_path: Path) -> Callable[[str | bytes, str], Path]:
    """Write scenario text (or raw bytes) to a file in a temporary folder."""

    def write(content: str | bytes, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return write
