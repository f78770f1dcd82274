"""The output folder: checked before the work starts, written whole or not at all.

Every command that writes an output folder writes into a staging folder and swaps its
files in only when it has finished: a failure, Ctrl-C or a full disk leaves an earlier
run's folder exactly as it was, and a rerun leaves no stale file of its own behind.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from pathlib import Path

import pytest

import siteopt.app.breakeven
import siteopt.app.evaluate
import siteopt.app.pipeline
import siteopt.app.sweep
import siteopt.app.whatif
from siteopt.output import files as outputs
from siteopt.output.files import DIR_MODE, STAGING_TAG, staged_output_dir, write_atomic

from .support import MINIMAL

MINI_CASES = "cases:\n  low:\n    market.btc_price_usd: 60000\n"  # for siteopt cases

COMMAND_ARGS = {
    "solve": ["--no-report"],
    "evaluate": ["--plan", "{plan}", "--no-report"],
    "whatif": ["--set", "market.btc_price_usd=80000", "--no-report"],
    "sweep": ["--param", "market.btc_price_usd", "--values", "80000,90000"],
    "cases": [],
    "breakeven": ["--site", "alpha", "--contract", "tenant-a"],
}
WORK = {  # what each command runs once its checks are done
    "solve": (siteopt.app.pipeline, "solve"),
    "evaluate": (siteopt.app.evaluate, "evaluate"),
    "whatif": (siteopt.app.whatif, "whatif"),
    "sweep": (siteopt.app.sweep, "sweep"),
    "cases": (siteopt.app.sweep, "cases"),
    "breakeven": (siteopt.app.breakeven, "breakeven"),
}


def listing(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def staging_left(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if STAGING_TAG in p.name or p.name.endswith(".tmp")]


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    path = tmp_path / "mini.yaml"
    path.write_text(MINIMAL + MINI_CASES, encoding="utf-8")
    return path


@pytest.fixture
def earlier_run(tmp_path: Path) -> Path:
    """An output folder as an earlier run and its user left it."""
    out = tmp_path / "out"
    (out / "evaluate").mkdir(parents=True)
    (out / "plan.csv").write_text("an earlier plan\n")
    (out / "notes.txt").write_text("the user's own notes\n")
    (out / "evaluate" / "summary.json").write_text("{}\n")
    return out


def command_line(command: str, scenario: Path, out: Path) -> list[str]:
    plan = str(scenario.parent / "plan.csv")
    extra = [a.replace("{plan}", plan) for a in COMMAND_ARGS[command]]
    return [command, str(scenario), "--out", str(out), "--quiet", *extra]


# ------------------------------------------------------------------ staged_output_dir


def test_a_new_folder_appears_only_when_the_run_ends(tmp_path):
    out = tmp_path / "a" / "b" / "out"
    with staged_output_dir(out, ("*.csv",)) as stage:
        written = write_atomic(stage.path / "x.csv", "1\n")
        assert not out.exists()
        assert stage.final([written]) == [out / "x.csv"]
    assert listing(out) == {"x.csv": b"1\n"}
    assert out.stat().st_mode & 0o777 == DIR_MODE
    assert [p.name for p in out.parent.iterdir()] == ["out"]


def test_a_rerun_replaces_its_own_files_and_keeps_the_rest(earlier_run):
    out = earlier_run
    (out / "report.html").write_text("a report of the earlier plan\n")
    (out / "base").mkdir()
    (out / "base" / "stale.csv").write_text("old\n")
    owned = ("plan.csv", "report.html", "base")
    with staged_output_dir(out, owned) as stage:
        write_atomic(stage.path / "plan.csv", "the new plan\n")
        (stage.path / "base").mkdir()
        write_atomic(stage.path / "base" / "new.csv", "new\n")
    assert listing(out) == {
        "plan.csv": b"the new plan\n",  # replaced
        "base/new.csv": b"new\n",  # a folder of this run's replaced as a whole
        "notes.txt": b"the user's own notes\n",  # not this command's: kept
        "evaluate/summary.json": b"{}\n",  # another command's folder: kept
    }  # and report.html, not written by this run (--no-report), is gone
    assert staging_left(out) == []


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError], ids=["ctrl-c", "error"])
def test_a_failed_run_leaves_the_folder_as_it_was(earlier_run, error):
    before = listing(earlier_run)
    with pytest.raises(error) as caught:
        with staged_output_dir(earlier_run, ("plan.csv", "notes.txt")) as stage:
            write_atomic(stage.path / "plan.csv", "half a run\n")
            raise error()
    assert listing(earlier_run) == before
    assert staging_left(earlier_run.parent) == []
    assert caught.value.output_note == f"no output written, {earlier_run} left as it was"


def test_a_failed_run_removes_the_folders_it_made(tmp_path):
    out = tmp_path / "new" / "deeper" / "out"
    with pytest.raises(KeyboardInterrupt) as caught:
        with staged_output_dir(out) as stage:
            write_atomic(stage.path / "plan.csv", "half a run\n")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    assert caught.value.output_note == f"no output written, {out} not created"


def test_ctrl_c_during_the_swap_waits_until_it_is_done(earlier_run, monkeypatch):
    commit = outputs._commit

    def interrupted_commit(*args):
        signal.raise_signal(signal.SIGINT)  # held: the swap goes on
        commit(*args)

    monkeypatch.setattr(outputs, "_commit", interrupted_commit)
    with pytest.raises(KeyboardInterrupt) as caught:
        with staged_output_dir(earlier_run, ("plan.csv",)) as stage:
            write_atomic(stage.path / "plan.csv", "the new plan\n")
    assert (earlier_run / "plan.csv").read_text() == "the new plan\n"
    assert caught.value.output_note == f"{earlier_run} was written in full"
    assert staging_left(earlier_run) == []


# ------------------------------------------------------------------ through the commands


@pytest.mark.parametrize("command", list(COMMAND_ARGS))
def test_each_command_swaps_its_outputs_in(command, run_cli, mini, earlier_run):
    if command == "evaluate":
        assert run_cli(*command_line("solve", mini, mini.parent / "solved")).exit_code == 0
        (mini.parent / "solved" / "plan.csv").rename(mini.parent / "plan.csv")
    run = run_cli(*command_line(command, mini, earlier_run))
    assert run.exit_code == 0, run.stderr
    files = listing(earlier_run)
    assert files["notes.txt"] == b"the user's own notes\n"
    assert files["evaluate/summary.json"] == b"{}\n"
    assert len(files) > 2
    assert staging_left(earlier_run.parent) == []
    assert STAGING_TAG not in run.stdout


def _work_must_not_start(monkeypatch):
    def started(*args, **kwargs):
        raise AssertionError("the work started before the output folder was checked")

    for module, name in WORK.values():
        monkeypatch.setattr(module, name, started)


def _out_is_a_file(tmp_path: Path) -> tuple[Path, str]:
    target = tmp_path / "afile"
    target.write_text("x")
    return target, f"{target}: --out must be a folder, and this is a file"


def _parent_is_a_file(tmp_path: Path) -> tuple[Path, str]:
    parent = tmp_path / "afile"
    parent.write_text("x")
    out = parent / "out"
    return out, f"{out}: cannot create the output folder: {parent} is a file"


def _unwritable_parent(tmp_path: Path) -> tuple[Path, str]:
    if os.geteuid() == 0:
        pytest.skip("root writes into any folder; see the /sys case")
    parent = tmp_path / "locked"
    parent.mkdir(mode=0o500)
    out = parent / "out"
    return out, f"{out}: cannot write the output folder: Permission denied"


def _unwritable_folder(tmp_path: Path) -> tuple[Path, str]:
    if os.geteuid() == 0:
        pytest.skip("root writes into any folder; see the /sys case")
    out = tmp_path / "locked"
    out.mkdir(mode=0o500)
    return out, f"{out}: the output folder is not writable"


def _system_folder(tmp_path: Path) -> tuple[Path, str]:
    """/sys takes no new folder, not even from root (EPERM; EACCES for others)."""
    if not sys.platform.startswith("linux") or not Path("/sys/kernel").is_dir():
        pytest.skip("needs Linux sysfs")
    out = Path("/sys/kernel/siteopt-test-out")
    return out, f"{out}: cannot "


OUT_PROBLEMS = {
    "file": _out_is_a_file,
    "parent-file": _parent_is_a_file,
    "unwritable-parent": _unwritable_parent,
    "unwritable-folder": _unwritable_folder,
    "system-folder": _system_folder,
}


@pytest.mark.parametrize("problem", list(OUT_PROBLEMS))
@pytest.mark.parametrize("command", list(COMMAND_ARGS))
def test_a_bad_output_folder_is_exit_2_before_the_work(
    command, problem, run_cli, mini, tmp_path, monkeypatch
):
    out, message = OUT_PROBLEMS[problem](tmp_path)
    _work_must_not_start(monkeypatch)
    run = run_cli(*command_line(command, mini, out))
    assert run.exit_code == 2, run.output
    errors = [ln for ln in run.stderr.splitlines() if not ln.startswith("warning: ")]
    assert errors[0].startswith(message), run.stderr
    assert len(errors) == 1
    assert "Traceback" not in run.output


def test_a_full_disk_is_exit_2_and_leaves_the_folder_as_it_was(
    run_cli, mini, earlier_run, monkeypatch
):
    write = outputs._write_fd
    calls = []

    def disk_fills_up(fd, data):
        calls.append(fd)
        if len(calls) == 3:  # plan.csv and options.csv fit, cashflows.csv does not
            os.close(fd)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write(fd, data)

    monkeypatch.setattr(outputs, "_write_fd", disk_fills_up)
    before = listing(earlier_run)
    run = run_cli(*command_line("solve", mini, earlier_run))
    assert run.exit_code == 2
    assert run.stderr == f"{earlier_run / 'cashflows.csv'}: cannot write: No space left on device\n"
    assert listing(earlier_run) == before
    assert staging_left(earlier_run.parent) == []
