"""Plausibility warnings: likely mistakes that validate, each named with its file and line.

Every warning the issue lists has a case here: the stderr line ``warning: FILE:LINE:
field.path: message``, the same warning in summary.json, and ``--strict`` turning it into
exit 2. The bundled scenarios and the starter raise none.
"""

from __future__ import annotations

import json
import re

import pytest

from .support import MINIMAL, REPO, SCENARIOS, line_containing, mutate

# MINIMAL with enough scenarios that the few-scenarios warning stays out of the way.
QUIET = mutate(MINIMAL, [("  scenarios: 100\n", "  scenarios: 1000\n")])

WARNING = re.compile(r"^warning: (?P<file>[^:]+):(?P<line>\d+): (?P<path>[^:]+): (?P<msg>.+)$")


def _warnings(stderr: str) -> list[re.Match]:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("warning: ")]
    matches = [WARNING.match(ln) for ln in lines]
    assert all(matches), lines
    return matches  # type: ignore[return-value]


CASES = [
    pytest.param(
        [("    2027: 100000000\n", "    2027: 80\n")],
        "    2027: 80",
        "financing.capital_budget_usd.2027",
        "looks like USD millions",
        id="budget-in-millions",
    ),
    pytest.param(
        [("      pue: 1.2\n", "      pue: 1.2\n      build_capex_usd_mw: 10\n")],
        "build_capex_usd_mw: 10",
        "sites.alpha.ai.build_capex_usd_mw",
        "capex under $100k per MW",
        id="capex-in-millions",
    ),
    pytest.param(
        [("    price_usd_kw_month: 130\n", "    price_usd_kw_month: 1300\n")],
        "price_usd_kw_month: 1300",
        "contracts.tenant-a.price_usd_kw_month",
        "rent above $1,000 per kW-month",
        id="rent-per-mw",
    ),
    pytest.param(
        [("    price_usd_kw_month: 130\n", "    price_usd_kw_month: 0.13\n")],
        "price_usd_kw_month: 0.13",
        "contracts.tenant-a.price_usd_kw_month",
        "rent under $10 per kW-month",
        id="rent-per-watt",
    ),
    pytest.param(
        [("    interconnect_mw: 50\n", "    interconnect_mw: 50000\n")],
        "interconnect_mw: 50000",
        "sites.beta.interconnect_mw",
        "interconnect above 5,000 MW",
        id="interconnect-in-kw",
    ),
    pytest.param(
        [("      ppa_price_usd_mwh: 30\n", "      ppa_price_usd_mwh: 0.03\n")],
        "ppa_price_usd_mwh: 0.03",
        "sites.alpha.power.ppa_price_usd_mwh",
        "USD per kWh",
        id="power-per-kwh",
    ),
    pytest.param(
        [("    min_mw: 20\n", "    min_mw: 80\n")],
        "  - name: tenant-a",
        "contracts.tenant-a",
        "min_mw 80 MW is above the 60 MW its eligible sites can host",
        id="contract-above-capacity",
    ),
    pytest.param(
        [("    eligible_sites: [alpha]\n", "    eligible_sites: []\n")],
        "  - name: tenant-a",
        "contracts.tenant-a",
        "eligible_sites is empty",
        id="contract-no-sites",
    ),
    pytest.param(
        [("    online_by: 2029-06\n", "    online_by: 2027-06\n")],
        "  - name: tenant-a",
        "contracts.tenant-a",
        "online_by 2027-06 is before the earliest first rent (2028-04",
        id="contract-too-early",
    ),
    pytest.param(
        [("    2027: 100000000\n    2028: 50000000\n", "    2027: 20000000\n")],
        "  - name: tenant-a",
        "contracts.tenant-a",
        "can never be signed within the budget: its minimum of 20 MW needs at least $38.0M",
        id="contract-over-budget",
    ),
    pytest.param(
        [("horizon_years: 5\n", "horizon_years: 8\n")],
        "halving_months: [2028-04]",
        "market.halving_months",
        "the halving expected in 2032-04",
        id="halving-missing",
    ),
]


@pytest.mark.parametrize(("edits", "line_of", "path", "needle"), CASES)
def test_each_warning_names_file_line_and_path(
    edits, line_of, path, needle, run_cli, write_scenario
):
    text = mutate(QUIET, edits)
    file = write_scenario(text)
    run = run_cli("validate", str(file))
    assert run.exit_code == 0, run.output
    assert run.stdout.startswith("ok: mini")
    found = [m for m in _warnings(run.stderr) if m["path"] == path]
    assert len(found) == 1, run.stderr
    assert found[0]["file"] == str(file)
    assert int(found[0]["line"]) == line_containing(text, line_of)
    assert needle in found[0]["msg"], found[0]["msg"]

    strict = run_cli("validate", str(file), "--strict")
    assert strict.exit_code == 2
    assert f"{file}:{found[0]['line']}: {path}: " in strict.stderr
    assert "--strict" in strict.stderr


def test_a_clean_file_has_no_warnings(run_cli, write_scenario):
    run = run_cli("validate", str(write_scenario(QUIET)), "--strict")
    assert (run.exit_code, run.stderr) == (0, "")


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_bundled_scenarios_raise_no_warning(path, run_cli):
    run = run_cli("validate", str(path), "--strict")
    assert (run.exit_code, run.stderr) == (0, "")


def test_few_scenarios_warns_with_the_standard_error(run_cli, write_scenario, tmp_path):
    """100 scenarios: a warning before the run, and after it the standard error of the
    plan's E[NPV], which summary.json also gives (std / sqrt(n) of the plan's NPVs)."""
    file = write_scenario(MINIMAL)
    out = tmp_path / "out"
    run = run_cli("solve", str(file), "--out", str(out), "--json", "--no-report", "--quiet")
    assert run.exit_code == 0, run.stderr
    summary = json.loads(run.stdout)
    se = summary["expected_npv_se_usd"]
    assert se > 0
    (warning,) = [w for w in summary["warnings"] if w["code"] == "few_scenarios"]
    assert warning["path"] == "simulation.scenarios"
    assert warning["line"] == line_containing(MINIMAL, "scenarios: 100")
    assert f"standard error of the plan's E[NPV] is ${se / 1e6:,.1f}M" in warning["message"]
    stderr = _warnings(run.stderr)
    assert [m["path"] for m in stderr] == ["simulation.scenarios"]
    assert f"${se / 1e6:,.1f}M" in stderr[0]["msg"]

    flag = run_cli("solve", str(file), "--scenarios", "5000", "--out", str(out), "--json",
                   "--no-report", "--quiet")  # fmt: skip
    assert flag.exit_code == 0 and json.loads(flag.stdout)["warnings"] == []

    strict = run_cli("solve", str(file), "--strict", "--out", str(tmp_path / "o2"), "--quiet")
    assert strict.exit_code == 2
    assert "100 scenarios" in strict.stderr
    assert not (tmp_path / "o2").exists()  # refused before any work


def test_warnings_reach_summary_and_report(run_cli, write_scenario, tmp_path):
    text = mutate(QUIET, [("    2027: 100000000\n", "    2027: 80\n")])
    file = write_scenario(text)
    out = tmp_path / "out"
    run = run_cli("solve", str(file), "--out", str(out), "--json", "--quiet")
    assert run.exit_code == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["warnings"] == [
        {
            "code": "unit_slip",
            "path": "financing.capital_budget_usd.2027",
            "line": line_containing(text, "2027: 80"),
            "message": "80: a yearly budget under $1M looks like USD millions; $80M is 80000000",
        }
    ]
    assert json.loads((out / "summary.json").read_text())["warnings"] == summary["warnings"]
    report = (out / "report.html").read_text()
    assert "1 plausibility warning" in report
    assert "financing.capital_budget_usd.2027: 80: a yearly budget under $1M" in report


def test_a_set_value_is_named_as_such(run_cli, write_scenario):
    file = write_scenario(QUIET)
    run = run_cli("validate", str(file), "--set", "contracts.tenant-a.price_usd_kw_month=5000")
    assert run.exit_code == 0
    assert (
        f"warning: {file}: --set contracts.tenant-a.price_usd_kw_month: 5,000: rent above"
        in run.stderr
    )


def test_strict_applies_to_every_solving_command(run_cli, write_scenario, tmp_path):
    file = write_scenario(mutate(QUIET, [("    2027: 100000000\n", "    2027: 80\n")]))
    plan = tmp_path / "plan.csv"
    plan.write_text("site,ai_it_mw,build_year,contract\n", encoding="utf-8")
    for args in (
        ("economics", str(file)),
        ("show", str(file)),
        ("solve", str(file)),
        ("evaluate", str(file), "--plan", str(plan)),
        ("whatif", str(file), "--set", "market.btc_price_usd=80000"),
        ("sweep", str(file), "--param", "market.btc_price_usd", "--values", "80000,90000"),
        ("breakeven", str(file), "--site", "alpha", "--contract", "tenant-a"),
    ):
        run = run_cli(
            *args,
            "--strict",
            *(["--out", str(tmp_path / "o")] if args[0] not in ("economics", "show") else []),
        )
        assert run.exit_code == 2, (args, run.output)
        assert "financing.capital_budget_usd.2027" in run.stderr, args
    assert not (tmp_path / "o").exists()


def test_docs_list_every_warning_code():
    from siteopt.model import plausibility

    codes = re.findall(r"^``(\w+)``$", plausibility.__doc__, re.M)
    assert codes == [
        "unit_slip", "contract_unsignable", "halving_missing", "few_scenarios", "landlord_yield",
        "contract_value",
    ]  # fmt: skip
    cli_doc = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    for code in codes:
        assert code in cli_doc


def test_a_tenant_share_without_its_rent_cut_is_flagged():
    """texas's hyperscaler-tf at the Core Scientific rent on retrofit MW: 80% tenant-funded
    leaves the landlord ~66% a year on its own capex (flagged); 30% with the same rent
    ~19% (not)."""
    from siteopt.model.load import load_scenario
    from siteopt.model.plausibility import landlord_yield, landlord_yields

    texas = REPO / "scenarios" / "texas.yaml"
    eighty = load_scenario(texas, ["contracts.hyperscaler-tf.tenant_funded_share=0.8"])
    found = landlord_yields(eighty)
    assert [f.loc for f in found] == [("contracts", 2, "tenant_funded_share")]
    assert "landlord earns 66% a year" in found[0].message
    thirty = load_scenario(texas)
    assert landlord_yields(thirty) == []
    abilene = [s.name for s in thirty.sites].index("abilene-legacy")
    # by hand: (102 - 20) $k/MW-month x 12 over 70% of the $7.5M retrofit
    assert landlord_yield(thirty, 2, abilene) == pytest.approx(12 * 82_000 / (0.7 * 7_500_000))
