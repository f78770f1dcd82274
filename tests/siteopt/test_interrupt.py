"""Ctrl-C and SIGTERM: the run stops within 2 s, exits 130, says so in one line, and leaves
no partial output, no temporary file and no solver process behind.

The runs are real processes (``python -m siteopt``); ``SITEOPT_PROGRESS=lines`` prints a
line as each stage starts, so the signal lands in the stage under test.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from siteopt.optimizer import interrupt

from .support import REPO

TEXAS = REPO / "scenarios" / "texas.yaml"
EXIT_WITHIN_S = 2.0
VALUATION = "valuing options (pass 1"  # printed once the first chunk of scenarios is done
MILP = "solving the build plan (MILP)"
# texas with a CVaR weight: the MILP runs for tens of seconds (the frontier's hard case)
HARD_MILP = ["--scenarios", "500", "--set", "objective.risk_aversion=1", "--no-report"]


@dataclass(frozen=True)
class Stopped:
    """A run signalled in a stage: its exit status, stderr lines, and seconds to exit."""

    returncode: int
    stderr_lines: list[str]
    exit_s: float

    @property
    def messages(self) -> list[str]:
        """stderr without the stage lines."""
        return [ln for ln in self.stderr_lines if not ln.endswith(" ...")]


def run_and_signal(args: list[str], stage: str, sig: int, tmp: Path, delay_s: float) -> Stopped:
    """Start ``siteopt ARGS``, send ``sig`` ``delay_s`` after the line of ``stage``."""
    env = {**os.environ, "SITEOPT_PROGRESS": "lines", "TMPDIR": str(tmp)}
    env.pop("SITEOPT_DEBUG", None)
    lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    seen: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "siteopt", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        reader = threading.Thread(target=_read_lines, args=(proc.stderr, lines), daemon=True)
        reader.start()
        try:
            while True:
                line = lines.get(timeout=120)
                assert line is not None, f"the run ended before {stage!r}:\n{''.join(seen)}"
                seen.append(line)
                if stage in line:
                    break
            time.sleep(delay_s)
            sent = time.perf_counter()
            proc.send_signal(sig)
            proc.wait(timeout=30)
            exit_s = time.perf_counter() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
        reader.join(timeout=5)
    while (line := lines.get()) is not None:
        seen.append(line)
    return Stopped(proc.returncode, [ln.rstrip("\n") for ln in seen], exit_s)


def _read_lines(stream, lines: queue.SimpleQueue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def solver_processes(tmp: Path) -> list[str]:
    """Command lines of processes that name ``tmp`` (CBC names its files there)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(tmp) in cmdline and "pytest" not in cmdline:
            found.append(cmdline)
    return found


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder for the run's temporary files (TMPDIR), which must end up empty."""
    (tmp_path / "tmp").mkdir()
    return tmp_path


def assert_stopped_cleanly(stopped: Stopped, signal_name: str, out: Path, note: str) -> None:
    assert stopped.returncode == 130, stopped.stderr_lines
    assert stopped.exit_s < EXIT_WITHIN_S
    assert stopped.messages == [f"siteopt: interrupted ({signal_name}); no output written, {note}"]
    assert not any("Traceback" in ln for ln in stopped.stderr_lines)


def test_ctrl_c_during_the_valuation_leaves_the_earlier_output(workdir):
    out = workdir / "out" / "texas"
    out.mkdir(parents=True)
    (out / "summary.json").write_text('{"from": "an earlier run"}\n')
    args = ["solve", str(TEXAS), "--scenarios", "100000", "--out", str(out)]
    stopped = run_and_signal(args, VALUATION, signal.SIGINT, workdir / "tmp", delay_s=0.3)
    assert_stopped_cleanly(stopped, "SIGINT", out, f"{out} left as it was")
    assert [p.name for p in out.iterdir()] == ["summary.json"]
    assert (out / "summary.json").read_text() == '{"from": "an earlier run"}\n'
    assert list((workdir / "tmp").iterdir()) == []


@pytest.mark.parametrize(
    ("sig", "solver"),
    [(signal.SIGTERM, "highs"), (signal.SIGINT, "cbc")],
    ids=["SIGTERM-highs", "SIGINT-cbc"],
)
def test_a_signal_during_the_milp_stops_the_solver(sig, solver, workdir):
    out = workdir / "new" / "texas"
    args = ["solve", str(TEXAS), *HARD_MILP, "--solver", solver, "--out", str(out)]
    stopped = run_and_signal(args, MILP, sig, workdir / "tmp", delay_s=0.7)
    assert_stopped_cleanly(stopped, sig.name, out, f"{out} not created")
    assert not (workdir / "new").exists()
    assert list((workdir / "tmp").iterdir()) == []  # CBC's model and solution files
    if sys.platform.startswith("linux"):
        assert solver_processes(workdir / "tmp") == []


def test_the_cli_puts_the_signal_handlers_back(run_cli):
    handlers = (signal.SIGINT, signal.SIGTERM)
    before = [signal.getsignal(sig) for sig in handlers]
    assert run_cli("validate", str(TEXAS)).exit_code == 0
    assert [signal.getsignal(sig) for sig in handlers] == before


# ------------------------------------------------------------ call_interruptibly itself


def _raise_sigint_after(seconds: float) -> None:
    threading.Timer(seconds, signal.raise_signal, args=(signal.SIGINT,)).start()


def test_a_solver_call_passes_its_value_and_errors_on():
    assert interrupt.call_interruptibly(lambda: 42, lambda: None) == 42
    with pytest.raises(ZeroDivisionError):
        interrupt.call_interruptibly(lambda: 1 / 0, lambda: None)


def test_ctrl_c_reaches_the_main_thread_while_the_solver_runs():
    stop = threading.Event()
    _raise_sigint_after(0.2)
    began = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        interrupt.call_interruptibly(lambda: stop.wait(30), stop.set)
    assert stop.is_set()  # the solver was asked to stop
    assert time.perf_counter() - began < 1.0
    assert not interrupt.busy()


def _no_cancel() -> None:
    """A solver that cannot be asked to stop."""


def test_a_solver_that_ignores_cancel_is_abandoned_after_the_grace_period():
    _raise_sigint_after(0.1)
    began = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        interrupt.call_interruptibly(lambda: time.sleep(interrupt.CANCEL_GRACE_S + 0.5), _no_cancel)
    assert time.perf_counter() - began < interrupt.CANCEL_GRACE_S + 0.4
    assert interrupt.busy()  # the CLI then leaves with os._exit
    deadline = time.perf_counter() + 5
    while interrupt.busy() and time.perf_counter() < deadline:
        time.sleep(0.05)
    assert not interrupt.busy()
