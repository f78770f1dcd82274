"""Writing the output folder: every file atomically (temporary name, then rename), and
a run's files all at once (:func:`staged_output_dir`).

A command that writes an output folder writes into a staging folder beside it first
and moves its files into place only when the run has finished, so an interrupted or
failed run leaves the output folder of an earlier run exactly as it was.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import math
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from siteopt.app.finance import annual_cashflows
from siteopt.model.errors import InputError
from siteopt.model.starter import STARTER_NAME, STARTER_YAML
from siteopt.optimizer.options import BASE_COLUMNS, capex_column
from siteopt.output.proforma import proforma_bytes
from siteopt.output.workbook import scenario_inputs, workbook_bytes

if TYPE_CHECKING:
    from siteopt.app.pipeline import SolveOutcome

# mkstemp creates 0600 files; outputs get the usual 0666 less the umask, like open() would.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK


def prepare_out_dir(path: Path) -> Path:
    """Create the output folder (and parents); refuse a path that is a file or unwritable."""
    if path.exists() and not path.is_dir():
        raise InputError(f"{final_path(path)}: --out must be a folder, and this is a file")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"{final_path(path)}: cannot create the output folder: {exc.strerror or exc}"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"{final_path(path)}: the output folder is not writable")
    return path


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write to a temporary file in the same folder, then rename over ``path``.

    Raises
    ------
    InputError
        The file cannot be written (no space left, no permission); the message names
        the file where the run would have put it.
    """
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        _write_fd(fd, data)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _cannot_write(path, exc) from None
        raise
    return path


def _write_fd(fd: int, data: str | bytes) -> None:
    """Write ``data`` to the open file descriptor ``fd``, mode FILE_MODE, and close it."""
    binary = isinstance(data, bytes)
    with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
        os.fchmod(fh.fileno(), FILE_MODE)
        fh.write(data)


def _cannot_write(path: Path, exc: OSError) -> InputError:
    return InputError(f"{final_path(path)}: cannot write: {exc.strerror or exc}")


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    return write_atomic(path, frame.to_csv(index=False, lineterminator="\n"))


def write_json(payload: dict[str, Any], path: Path) -> Path:
    return write_atomic(path, to_json(payload) + "\n")


def to_json(payload: dict[str, Any]) -> str:
    """JSON with finite numbers only (NaN or inf in an output is a bug, never written)."""
    return json.dumps(_finite(payload), indent=2, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"refusing to write a non-finite number ({value}) to an output")
    return value


# ------------------------------------------------------------------ staged output folders

STAGING_TAG = ".siteopt-tmp-"
"""Part of a staging folder's name: ``.<out name>.siteopt-tmp-<random>`` beside ``out``."""
_STAGES: dict[Path, Path] = {}  # staging folder -> output folder, while a run writes


@dataclass(frozen=True)
class Staging:
    """Where a run writes (``path``) and where its files go when it succeeds (``out``)."""

    out: Path
    path: Path

    def final(self, paths: Sequence[Path]) -> list[Path]:
        """``paths`` written under ``self.path``, named where they will be after the run."""
        return [final_path(p) for p in paths]


def final_path(path: Path) -> Path:
    """``path`` with a staging folder replaced by its output folder (for messages)."""
    for stage, out in _STAGES.items():
        if path == stage or stage in path.parents:
            return out / path.relative_to(stage)
    return path


@contextmanager
def staged_output_dir(out_dir: Path, owned: Sequence[str] = ()) -> Iterator[Staging]:
    """A staging folder for one run's outputs, swapped into ``out_dir`` when the run ends.

    The checks come first, before any long work: ``out_dir`` must be a folder (or not
    exist yet) that can be written, and its parent must take a new folder. Everything
    is written under ``Staging.path``; on success each top-level entry written there
    replaces the entry of the same name in ``out_dir`` (a file by an atomic rename, a
    subfolder as a whole), and the entries matching ``owned`` that this run did not
    write are removed, so no file of an earlier run (a report after ``--no-report``, a
    frontier.csv without ``--frontier``) survives beside this run's files. Other
    entries (another command's subfolder, a user's own files) are kept.

    On any exception (Ctrl-C included) the staging folder and the parent folders made
    for it are removed and ``out_dir`` is left as it was; the exception gets an
    ``output_note`` attribute saying so, for the interruption message.

    Parameters
    ----------
    out_dir : pathlib.Path
        The output folder the user asked for (``--out``).
    owned : sequence of str
        Glob patterns of the entries this command writes in ``out_dir``.

    Raises
    ------
    InputError
        ``out_dir`` is a file, cannot be created, or cannot be written (exit 2).
    """
    out = Path(out_dir)
    existed = _check_out_dir(out)
    made = _make_parents(out)
    stage = _make_stage(out, existed, made)
    _STAGES[stage] = out
    try:
        try:
            yield Staging(out, stage)
        except BaseException as exc:
            exc.output_note = f"no output written, {out} " + (
                "left as it was" if existed else "not created"
            )
            raise
        with signals_held():
            _commit(stage, out, owned)
    except KeyboardInterrupt as exc:  # held during the commit, raised right after it
        if not hasattr(exc, "output_note"):
            exc.output_note = f"{out} was written in full"
        raise
    finally:
        _STAGES.pop(stage, None)
        shutil.rmtree(stage, ignore_errors=True)
        if not out.exists():
            _remove_empty(made)


def _check_out_dir(out: Path) -> bool:
    """Refuse an output folder that is a file or not writable; True when it exists."""
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise InputError(f"{out}: --out must be a folder, and this is a file")
        if not os.access(out, os.W_OK | os.X_OK):
            raise InputError(f"{out}: the output folder is not writable")
        return True
    return False


def _make_parents(out: Path) -> list[Path]:
    """Create the missing parents of ``out``; the folders made, deepest first."""
    missing = [p for p in out.parents if not p.exists()]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_empty([p for p in missing if p.exists()])
        files = [p for p in out.parents if p.exists() and not p.is_dir()]
        reason = f"{files[0]} is a file" if files else (exc.strerror or str(exc))
        raise InputError(f"{out}: cannot create the output folder: {reason}") from None
    return missing


def _make_stage(out: Path, existed: bool, made: Sequence[Path]) -> Path:
    """The staging folder: inside ``out`` when it exists (so only ``out`` need be
    writable), else beside it; on the same filesystem either way, so moves are renames."""
    where = out if existed else out.parent
    try:
        name = out.name or out.resolve().name
        stage = Path(tempfile.mkdtemp(prefix=f".{name}{STAGING_TAG}", dir=where))
        os.chmod(stage, DIR_MODE)  # mkdtemp makes it 0700; it may become ``out`` itself
    except OSError as exc:
        _remove_empty(made)
        raise InputError(f"{out}: cannot write the output folder: {exc.strerror or exc}") from None
    return stage


def _remove_empty(folders: Sequence[Path]) -> None:
    for folder in folders:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            return


def _commit(stage: Path, out: Path, owned: Sequence[str]) -> None:
    """Move the staged entries into ``out`` (see :func:`staged_output_dir`)."""
    try:
        if not out.exists():
            try:
                os.rename(stage, out)  # the whole folder at once
                return
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise  # else another process made ``out`` meanwhile: merge into it
        new = {entry.name for entry in stage.iterdir()}
        trash = Path(tempfile.mkdtemp(prefix=".old", dir=stage))
        for name in sorted(new):
            target = out / name
            if target.is_dir() and not target.is_symlink():
                os.rename(target, trash / name)  # a folder cannot be renamed over a folder
            os.replace(stage / name, target)
        for entry in out.iterdir():
            stale = entry.name not in new and STAGING_TAG not in entry.name
            if stale and any(fnmatch.fnmatch(entry.name, p) for p in owned):
                os.rename(entry, trash / entry.name)
    except OSError as exc:
        raise InputError(f"{out}: cannot write the output folder: {exc.strerror or exc}") from None


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is done, then deliver the first one.

    The commit is a few renames; a Ctrl-C in their midst would leave the output folder
    half old, half new.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    held = {sig: h for sig, h in previous.items() if h is not None}
    for sig in held:
        signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in held.items():
            signal.signal(sig, handler)
        if caught:
            signal.raise_signal(caught[0])


# ------------------------------------------------------------ a run's output folder

OPTIONS_COLUMNS = (
    "site",
    "option",
    "ai_it_mw",
    "build_year",
    "contract",
    "expected_npv_usd",
    "std_npv_usd",
    "p5_npv_usd",
    "p50_npv_usd",
    "p95_npv_usd",
    "cvar_usd",
    "expected_terminal_pv_usd",
    "leverage_usd",
    "equity_capex_usd",
)
# revision 3: what the debt adds, split; after every earlier column, so those keep their place
LEVERAGE_COLUMNS = (
    "leverage_value_usd",
    "tax_shield_usd",
    "rate_subsidy_usd",
    "walk_away_value_usd",
)
# issue 28: a JV partner's share of the hall, after the leverage split
PARTNER_COLUMNS = ("partner_share",)


def options_frame(outcome: SolveOutcome) -> pd.DataFrame:
    """options.csv: OPTIONS_COLUMNS, the capex by year, then the MILP's per-year columns."""
    table = outcome.valuation.options.table
    capex_cols = [capex_column(y) for y in outcome.valuation.options.years]
    extra = [
        c
        for c in table.columns
        if c not in OPTIONS_COLUMNS and c not in capex_cols and c in BASE_COLUMNS
    ]
    return table[[*OPTIONS_COLUMNS, *capex_cols, *extra, *LEVERAGE_COLUMNS, *PARTNER_COLUMNS]]


ALTERNATIVE_COLUMNS = (
    "alternative",
    "site",
    "ai_it_mw",
    "build_year",
    "contract",
    "expected_npv_usd",
    "cvar_usd",
)


def alternatives_frame(outcome: SolveOutcome) -> pd.DataFrame:
    """alternatives.csv: one row per (alternative, site), alternative 0 the plan; each
    site's option with its own E[NPV] and CVaR (options.csv's)."""
    table = outcome.valuation.options.table
    plans = [outcome.rows, *(a.rows for a in outcome.alternatives)]
    frames = [
        table.loc[list(rows), list(ALTERNATIVE_COLUMNS[1:])].assign(alternative=k)
        for k, rows in enumerate(plans)
    ]
    frame = pd.concat(frames, ignore_index=True)
    frame["build_year"] = frame["build_year"].astype("Int64")
    return frame[list(ALTERNATIVE_COLUMNS)]


def write_outputs(outcome: SolveOutcome, summary: dict[str, Any], out_dir: Path) -> list[Path]:
    """summary.json, plan.csv, options.csv, cashflows.csv, annual.csv, plan.xlsx,
    proforma.xlsx (frontier.csv with a frontier, alternatives.csv with alternatives,
    policy.csv with --staged), each written atomically; summary.json last, so its presence
    means the rest is there."""
    out = prepare_out_dir(out_dir)
    options, annual = options_frame(outcome), annual_cashflows(outcome.cashflows)
    inputs = scenario_inputs(outcome.scenario.model_dump(mode="json"))
    written = [
        write_csv(outcome.plan_csv, out / "plan.csv"),
        write_csv(options, out / "options.csv"),
        write_csv(outcome.cashflows, out / "cashflows.csv"),
        write_csv(annual, out / "annual.csv"),
        write_atomic(
            out / "plan.xlsx",
            workbook_bytes(outcome.plan_frame, options, annual, inputs, summary),
        ),
        write_atomic(out / "proforma.xlsx", proforma_bytes(outcome, summary, inputs)),
    ]
    if outcome.frontier is not None:
        written.append(write_csv(outcome.frontier, out / "frontier.csv"))
    if outcome.alternatives:
        written.append(write_csv(alternatives_frame(outcome), out / "alternatives.csv"))
    if outcome.staged is not None:
        written.append(write_csv(outcome.staged.policy, out / "policy.csv"))
    written.append(write_json(summary, out / "summary.json"))
    return written


def write_starter(directory: Path) -> Path:
    """Write ``DIR/scenario.yaml`` (DIR created if missing); never overwrite a file.

    Raises
    ------
    InputError
        The file exists already, or DIR is a file or cannot be created.
    """
    target = directory / STARTER_NAME
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory}: exists and is not a folder")
    if target.exists():
        raise InputError(f"{target}: exists already; siteopt init does not overwrite files")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{directory}: cannot create the folder: {exc.strerror or exc}") from None
    return write_atomic(target, STARTER_YAML.encode("utf-8"))
