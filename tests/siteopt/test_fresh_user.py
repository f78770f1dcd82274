"""What a new user and a user's script meet: the installed ``siteopt`` as a subprocess.

In-process tests cannot see what C libraries print on file descriptor 1 (HiGHS wrote its
banner there before any option could be set, which broke ``--json``), so these run the
console script the way a shell pipeline does, and parse what it prints.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from siteopt.kernels.backend import nvidia_gpu_present
from siteopt.model.load import load_scenario
from siteopt.model.reference import schema_markdown
from siteopt.model.starter import STARTER_YAML

from .support import REPO

SITEOPT = Path(sys.executable).with_name("siteopt")
HYDRO = REPO / "scenarios" / "stranded-hydro.yaml"
TEXAS = REPO / "scenarios" / "texas.yaml"
SMALL = ("--scenarios", "300", "--quiet")


def _run(*args: str, cwd: Path, check_rc: int = 0) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SITEOPT_")}
    done = subprocess.run(
        [str(SITEOPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == check_rc, (args, done.returncode, done.stdout[-2000:], done.stderr)
    return done


def _one_json_document(text: str):
    """Exactly one JSON document and nothing else (a banner or a table line fails)."""
    value, end = json.JSONDecoder().raw_decode(text)
    assert text[end:].strip() == "", f"after the JSON: {text[end:][:200]!r}"
    assert text.lstrip() == text, f"before the JSON: {text[:200]!r}"
    return value


def test_every_json_command_prints_one_json_document(tmp_path):
    """A user's script: ``siteopt CMD --json | python -c 'json.load(sys.stdin)'``."""
    plan = tmp_path / "plan.csv"
    plan.write_text("site,ai_it_mw,build_year,contract\n", encoding="utf-8")
    out = str(tmp_path / "out")
    commands = {
        "economics": ("economics", str(HYDRO)),
        "solve": ("solve", str(HYDRO), *SMALL, "--out", out, "--no-report"),
        "evaluate": ("evaluate", str(HYDRO), "--plan", str(plan), *SMALL, "--out", out + "e"),
        "whatif": ("whatif", str(HYDRO), "--set", "market.btc_price_usd=80000", *SMALL,
                   "--out", out + "w", "--no-report"),
        "sweep": ("sweep", str(HYDRO), "--param", "market.btc_price_usd", "--values",
                  "80000,90000", *SMALL, "--out", out + "s"),
        "breakeven": ("breakeven", str(HYDRO), "--site", "lulea-north", "--contract",
                      "regional-neocloud", *SMALL, "--out", out + "b"),
        "bench": ("bench", "--backend", "numpy", "--scenarios", "1024", "--file", str(HYDRO)),
        "schema": ("schema",),
    }  # fmt: skip
    for name, args in commands.items():
        done = _run(*args, "--json", cwd=tmp_path)
        payload = _one_json_document(done.stdout)
        assert payload, name
        assert "HiGHS" not in done.stdout + done.stderr, name
    solve = _one_json_document(_run(*commands["solve"], "--json", cwd=tmp_path).stdout)
    assert solve["status"] == "optimal" and solve["solver"] == "highs"


def test_no_solver_banner_in_a_terminal_run(tmp_path):
    done = _run("solve", str(HYDRO), *SMALL, "--out", str(tmp_path / "o"), "--no-report",
                cwd=tmp_path)  # fmt: skip
    assert "HiGHS" not in done.stdout and "Copyright" not in done.stdout
    assert done.stdout.startswith("stranded-hydro: optimal plan")


@pytest.mark.skipif(nvidia_gpu_present(), reason="this machine has an NVIDIA GPU")
def test_a_cpu_machine_reads_as_a_cpu_machine(tmp_path):
    """One plain phrase; the CUDA detail only under --verbose and in summary.json."""
    out = tmp_path / "o"
    done = _run("solve", str(HYDRO), *SMALL, "--out", str(out), "--no-report", cwd=tmp_path)
    header = re.sub(r"\s+", " ", " ".join(done.stdout.splitlines()[:2]))
    assert "backend numpy (no NVIDIA GPU found)" in header
    assert "auto:" not in done.stdout and "CUDA" not in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == "numpy"
    assert summary["backend_detail"].startswith("numpy (auto: ")
    verbose = _run("solve", str(HYDRO), *SMALL, "--out", str(out), "--no-report", "--verbose",
                   cwd=tmp_path)  # fmt: skip
    assert "backend numpy (auto: " in re.sub(r"\s+", " ", " ".join(verbose.stdout.splitlines()[:3]))


def test_init_writes_a_starter_that_validates_and_solves(tmp_path):
    done = _run("init", str(tmp_path / "new"), cwd=tmp_path)
    path = tmp_path / "new" / "scenario.yaml"
    assert path.read_text(encoding="utf-8") == STARTER_YAML
    assert str(path) in done.stdout
    check = _run("validate", str(path), "--strict", cwd=tmp_path)
    assert check.stdout == "ok: my-first-site (1 sites, 1 contracts)\n" and check.stderr == ""
    solve = _run("solve", str(path), "--scenarios", "2000", "--quiet", "--json", "--no-report",
                 "--out", str(tmp_path / "o"), cwd=tmp_path)  # fmt: skip
    summary = _one_json_document(solve.stdout)
    assert summary["status"] == "optimal" and summary["warnings"] == []
    again = _run("init", str(tmp_path / "new"), cwd=tmp_path, check_rc=2)
    assert "exists already" in again.stderr
    assert path.read_text(encoding="utf-8") == STARTER_YAML


@pytest.mark.parametrize("path", [TEXAS, HYDRO], ids=["texas", "hydro"])
def test_show_fills_every_default_and_reads_back_the_same(path, tmp_path):
    """``siteopt show`` prints every key; read back, it is the same scenario."""
    done = _run("show", str(path), cwd=tmp_path)
    shown = tmp_path / "shown.yaml"
    shown.write_text(done.stdout, encoding="utf-8")
    assert load_scenario(shown) == load_scenario(path)
    data = yaml.safe_load(done.stdout)
    for key in ("simulation", "market", "financing", "build", "objective"):
        assert key in data
    assert "opex_usd_mw_month" in data["sites"][0]["mining"]
    assert "annual_default_prob" in data["contracts"][0]


def test_scenario_reference_is_generated_from_the_schema():
    """docs/scenario.md equals `siteopt schema --markdown`; regenerate it when this fails:
    .venv/bin/siteopt schema --markdown > docs/scenario.md"""
    checked_in = (REPO / "docs" / "scenario.md").read_text(encoding="utf-8")
    assert checked_in == schema_markdown()
    for path in ("sites[].ai.build_capex_usd_mw", "contracts[].price_usd_kw_month",
                 "financing.capital_budget_usd", "contracts[].must_sign"):  # fmt: skip
        assert f"`{path}`" in checked_in


# Files people read, and files that ship: none may point outside the repository.
OUTSIDE = re.compile(r"\.\./shared|/work/|FIGURES\.md|(?<![\w/])(MODEL|SCENARIO|CLI)\.md")


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
        text=True, check=True,
    ).stdout.split()  # fmt: skip
    skip = {"tests/siteopt/test_fresh_user.py"}  # this file names the patterns
    return [
        REPO / p
        for p in listed
        if p not in skip
        and not p.startswith("requirements/")
        and Path(p).suffix in {".md", ".py", ".yaml", ".yml", ".toml", ".txt", ""}
        and (REPO / p).is_file()
    ]


def test_no_file_points_outside_the_repository():
    offenders = []
    for path in _tracked_text_files():
        for n, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        ):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()[:100]}")
    assert offenders == []


def test_markdown_links_resolve_inside_the_repository():
    link = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")
    broken = []
    for md in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target, _ in link.findall(md.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+://", target):
                broken.append(f"{md.name}: {target} (outside the repository)")
            elif (
                not (md.parent / target).resolve().is_relative_to(REPO)
                or not (md.parent / target).exists()
            ):
                broken.append(f"{md.name}: {target}")
    assert broken == []
