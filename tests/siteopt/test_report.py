"""The HTML report: sections, inlined PNGs equal to the files, escaping, edge cases."""

from __future__ import annotations

import base64
import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from siteopt.output.report import (
    NO_CONTRACT,
    SECTIONS,
    ReportData,
    render_html,
    usd_m,
    write_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ALL_PNGS = (
    "plan_sites.png",
    "npv_distribution.png",
    "capex.png",
    "timeline.png",
    "market_paths.png",
    "frontier.png",
    "tornado.png",
)
IMG_RE = re.compile(r"<img\b[^>]*>")


def _attr(tag: str, name: str) -> str | None:
    m = re.search(rf'\b{name}="([^"]*)"', tag)
    return m.group(1) if m else None


def _plan_frame(sites: list[dict[str, Any]]) -> pd.DataFrame:
    plan = pd.DataFrame(sites)
    plan["build_year"] = plan["build_year"].astype("Int64")
    return plan


def sample_report_data(**overrides: Any) -> ReportData:
    """A realistic three-site report: two sites convert to AI, one keeps hashing."""
    rng = np.random.default_rng(7)
    n = 4000
    plan = _plan_frame(
        [
            dict(site="odessa", ai_it_mw=120.0, mining_mw=30.0, build_year=2027,
                 contract="hyperscaler-a", equity_capex_usd=540e6, debt_usd=810e6,
                 expected_npv_usd=612.4e6, cvar_usd=188.0e6),
            dict(site="pecos", ai_it_mw=37.5, mining_mw=62.5, build_year=2028,
                 contract="neocloud-b", equity_capex_usd=170e6, debt_usd=250e6,
                 expected_npv_usd=145.2e6, cvar_usd=21.7e6),
            dict(site="a&b<c>", ai_it_mw=0.0, mining_mw=80.0, build_year=None,
                 contract="", equity_capex_usd=0.0, debt_usd=0.0,
                 expected_npv_usd=96.3e6, cvar_usd=-40.5e6),
        ]
    )  # fmt: skip
    plan_npv = rng.normal(850e6, 260e6, n)
    samples = {
        "plan": plan_npv,
        "all_mining": rng.normal(410e6, 330e6, n),
        "max_ai": rng.normal(905e6, 420e6, n),
    }
    alpha = 0.95
    tail = np.sort(plan_npv)[: int((1 - alpha) * n)]
    summary = {
        "scenario": "texas-portfolio", "status": "optimal", "mip_gap": 0.0,
        "backend": "numpy", "engine": "local", "solver": "highs", "scenarios": n, "seed": 7,
        "expected_npv_usd": float(plan_npv.mean()), "cvar_usd": float(tail.mean()),
        "cvar_alpha": alpha,
        "p5_npv_usd": float(np.quantile(plan_npv, 0.05)),
        "p50_npv_usd": float(np.quantile(plan_npv, 0.50)),
        "p95_npv_usd": float(np.quantile(plan_npv, 0.95)),
        "equity_capex_by_year_usd": {"2027": 540e6, "2028": 170e6},
        "ai_it_mw_total": 157.5, "mining_mw_total": 172.5,
        "sites": [], "version": "0.1.0",
        "baselines": {
            "all_mining": {"expected_npv_usd": 410e6, "cvar_usd": -260e6},
            "max_ai": {"expected_npv_usd": 905e6, "cvar_usd": 60e6, "feasible": False},
        },
        "timings_s": {"valuation": 1.2, "milp": 0.3, "total": 1.6},
    }  # fmt: skip
    years = list(range(2026, 2032))
    ai_online = [0.0, 60.0, 140.0, 157.5, 157.5, 157.5]
    timeline = pd.DataFrame(
        {
            "year": years,
            "ai_it_mw_online": ai_online,
            "mining_eh": [6.1, 4.9, 2.6, 1.9, 1.8, 1.7],
            "all_mining_eh": [8.4, 8.2, 8.0, 7.8, 7.6, 7.4],
        }
    )
    frontier = pd.DataFrame(
        {
            "weight": [1.0, 0.8, 0.667, 0.5],  # w E[NPV] + (1 - w) CVaR
            "risk_aversion": [0.0, 0.25, 0.5, 1.0],
            "expected_npv_usd": [905e6, 880e6, 850e6, 700e6],
            "cvar_usd": [60e6, 150e6, 190e6, 230e6],
            "ai_it_mw_total": [240.0, 190.0, 157.5, 90.0],
            "chosen": [False, False, True, False],
        }
    )
    tornado = pd.DataFrame(
        {
            "contract": ["hyperscaler-a", "hyperscaler-a", "neocloud-b"],
            "term": ["price_usd_kw_month", "escalator_pct", "price_usd_kw_month"],
            "low_label": ["$126", "1.5%", "$150"],
            "high_label": ["$154", "3.5%", "$190"],
            "low_npv_usd": [700e6, 830e6, 820e6],
            "high_npv_usd": [1000e6, 870e6, 880e6],
        }
    )
    data = ReportData(
        scenario="texas-portfolio",
        command="solve",
        summary=summary,
        plan=plan,
        npv_samples_usd=samples,
        capex_by_year_usd={2026: 0.0, 2027: 540e6, 2028: 170e6},
        budget_by_year_usd={2027: 600e6, 2028: 300e6, 2029: 200e6},
        budget_carry_over=True,
        timeline=timeline,
        assumptions=[
            ("Market", "BTC price at start", "$90,000"),
            ("Market", "network hashrate at start", "820 EH/s"),
            ("Costs", "AI capex", "$11.5M/MW IT"),
            ("Financing", "debt share", "60%"),
        ],
        manifest={
            "seed": "7",
            "scenarios": str(n),
            "backend": "numpy",
            "scenario file": "scenarios/texas.yaml",
            "sha256": "0" * 64,
            "command line": "siteopt solve scenarios/texas.yaml --set x=<1> & y='2'",
        },
        frontier=frontier,
        tornado=tornado,
        tornado_base_npv_usd=850e6,
        market_months=("2027-12", "2028-12", "2029-12"),
        market_paths={
            "btc_usd": {
                "p10": [40e3, 30e3, 20e3],
                "p50": [80e3, 70e3, 60e3],
                "p90": [160e3, 190e3, 220e3],
                "mean": [93e3, 98e3, 103e3],
            },
            "hashrate_eh": {
                "p10": [1200, 1100, 800],
                "p50": [1400, 1500, 1300],
                "p90": [1650, 2100, 2200],
                "mean": [1440, 1600, 1450],
            },
            "hashprice_usd_ph_day": {
                "p10": [14, 5, 5],
                "p50": [26, 10, 11],
                "p90": [48, 23, 26],
                "mean": [29, 13, 14],
            },
        },  # fmt: skip
        market_scenarios=5_000,
        notes=("MILP stopped at the time limit; gap 1.2% <check>",),
    )
    return dataclasses.replace(data, **overrides)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[Path]]:
    """The sample report written once for the tests that only read it (plots take ~1 s)."""
    out = tmp_path_factory.mktemp("report")
    page, paths = _render(out)
    return out, page, paths


def _render(tmp_path: Path, **overrides: Any) -> tuple[str, list[Path]]:
    paths = write_report(sample_report_data(**overrides), tmp_path)
    return (tmp_path / "report.html").read_text(encoding="utf-8"), paths


def _section(html_text: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">(.*?)</section>', html_text, re.S)
    assert m, f"section {sid} missing"
    return m.group(1)


def test_the_market_paths_say_where_the_median_goes(
    rendered: tuple[Path, str, list[Path]],
) -> None:
    _, page, _ = rendered
    market = _section(page, "market")
    assert "The median BTC price goes from $80,000 (2027-12) to $60,000 (2029-12)" in market
    assert "the mean goes from $93,000 to $103,000" in market


def test_usd_m_formats_millions_with_separators() -> None:
    assert usd_m(1_234_500_000) == "$1,234.5M"
    assert usd_m(-3.24e6) == "-$3.2M"
    assert usd_m(3.26e6, signed=True) == "+$3.3M"
    assert usd_m(0.0, signed=True) == "$0.0M"


def test_every_section_present_with_a_heading(rendered: tuple[Path, str, list[Path]]) -> None:
    _, page, _ = rendered
    for sid in SECTIONS:
        assert "<h2>" in _section(page, sid)
    assert page.index('id="headline"') < page.index('id="plan"') < page.index('id="manifest"')


def test_pngs_exist_and_equal_their_data_uris(rendered: tuple[Path, str, list[Path]]) -> None:
    tmp_path, page, paths = rendered
    assert {p.name for p in paths} == {*ALL_PNGS, "report.html"}
    imgs = IMG_RE.findall(page)
    assert sorted(_attr(t, "data-file") for t in imgs) == sorted(ALL_PNGS)
    for tag in imgs:
        name = _attr(tag, "data-file")
        assert _attr(tag, "alt"), f"{name} has no alt text"
        src = _attr(tag, "src")
        assert src is not None and src.startswith("data:image/png;base64,")
        on_disk = (tmp_path / name).read_bytes()
        assert on_disk.startswith(PNG_SIGNATURE)
        assert base64.b64decode(src.split(",", 1)[1]) == on_disk


def test_no_external_resources(rendered: tuple[Path, str, list[Path]]) -> None:
    _, page, _ = rendered
    for attr in re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', page, re.I):
        assert not attr.lower().startswith(("http://", "https://", "//")), attr
    assert not re.search(r"<script\b[^>]*\bsrc", page, re.I)
    assert not re.search(r"<link\b[^>]*\bhref", page, re.I)
    assert "@import" not in page and "url(" not in page


def test_data_strings_are_escaped(rendered: tuple[Path, str, list[Path]]) -> None:
    _, page, _ = rendered
    assert "a&b<c>" not in page
    assert "a&amp;b&lt;c&gt;" in _section(page, "plan")
    assert "gap 1.2% &lt;check&gt;" in _section(page, "headline")
    assert "x=&lt;1&gt; &amp; y=&#x27;2&#x27;" in _section(page, "manifest")


def test_plan_table_formats(rendered: tuple[Path, str, list[Path]]) -> None:
    plan = _section(rendered[1], "plan")
    assert "<td class=num>$540.0M</td>" in plan
    assert "<td class=num>37.5</td>" in plan and "<td class=num>120</td>" in plan
    row = re.search(r"<tr><td>a&amp;b&lt;c&gt;</td>(.*?)</tr>", plan)
    assert (
        row
        and "<td class=num>0</td><td class=num>80</td><td class=num></td><td></td>" in row.group(1)
    )


def test_headline_figures_and_baselines(rendered: tuple[Path, str, list[Path]]) -> None:
    head = _section(rendered[1], "headline")
    s = sample_report_data().summary
    for key in ("expected_npv_usd", "cvar_usd", "p5_npv_usd", "p50_npv_usd", "p95_npv_usd"):
        assert usd_m(s[key]) in head
    assert "CVaR 95%" in head and "157.5 MW / 172.5 MW" in head
    diff = usd_m(s["expected_npv_usd"] - 410e6, signed=True)
    assert diff in head and "AI by NPV per capex $ (greedy) (infeasible)" in head
    assert "warning" not in head


def test_frontier_present_only_when_given(
    rendered: tuple[Path, str, list[Path]], tmp_path: Path
) -> None:
    out, page, _ = rendered
    assert "<h2>Risk-return frontier</h2>" in _section(page, "frontier")
    assert (out / "frontier.png").exists()
    page, paths = _render(tmp_path, frontier=None)
    assert 'id="frontier"' not in page
    assert "frontier.png" not in {p.name for p in paths}
    assert not (tmp_path / "frontier.png").exists()


@pytest.mark.parametrize("tornado", [None, pd.DataFrame(columns=["contract", "term"])])
def test_tornado_absent_says_no_contract(tmp_path: Path, tornado: pd.DataFrame | None) -> None:
    page, paths = _render(tmp_path, tornado=tornado)
    section = _section(page, "tornado")
    assert NO_CONTRACT in section and "<img" not in section
    assert "tornado.png" not in {p.name for p in paths}


def test_violations_shown_in_headline() -> None:
    data = sample_report_data(command="evaluate", violations=("budget_2027", "x<y"))
    fake_pngs = dict.fromkeys(ALL_PNGS, PNG_SIGNATURE)  # the headline needs no real plots
    head = _section(render_html(data, fake_pngs), "headline")
    assert "class=warning" in head and "breaks 2 constraints" in head
    assert "budget_2027" in head and "x&lt;y" in head


def test_all_hashing_plan_renders(tmp_path: Path) -> None:
    base = sample_report_data()
    plan = base.plan.assign(
        ai_it_mw=0.0,
        mining_mw=[150.0, 100.0, 80.0],
        build_year=pd.array([None] * 3, dtype="Int64"),
        contract="",
        equity_capex_usd=0.0,
        debt_usd=0.0,
    )
    constant = np.full(50, 410e6)
    page, paths = _render(
        tmp_path,
        plan=plan,
        npv_samples_usd={"plan": constant, "all_mining": constant, "max_ai": constant + 1e6},
        capex_by_year_usd={2027: 0.0},
        budget_carry_over=False,
        timeline=base.timeline.assign(ai_it_mw_online=0.0),
        frontier=None,
        tornado=None,
        tornado_base_npv_usd=None,
        market_paths=None,
    )
    assert NO_CONTRACT in page
    assert {p.name for p in paths} == {
        "plan_sites.png", "npv_distribution.png", "capex.png", "timeline.png", "report.html"
    }  # fmt: skip


def test_one_site_no_budget_renders(tmp_path: Path) -> None:
    base = sample_report_data()
    _, paths = _render(
        tmp_path,
        plan=base.plan.iloc[:1],
        budget_by_year_usd={},
        budget_carry_over=False,
        tornado=base.tornado.iloc[:1],
        tornado_base_npv_usd=None,
    )
    assert (tmp_path / "tornado.png").read_bytes().startswith(PNG_SIGNATURE)
    assert len(paths) == len(ALL_PNGS) + 1


def test_non_finite_samples_refused(tmp_path: Path) -> None:
    base = sample_report_data()
    bad = {**base.npv_samples_usd, "plan": np.r_[base.npv_samples_usd["plan"][:-1], np.nan]}
    with pytest.raises(ValueError, match="non-finite"):
        write_report(dataclasses.replace(base, npv_samples_usd=bad), tmp_path)


def test_writing_twice_is_byte_identical(
    rendered: tuple[Path, str, list[Path]], tmp_path: Path
) -> None:
    first = [(p.name, p.read_bytes()) for p in rendered[2]]
    second = write_report(sample_report_data(), tmp_path)
    assert [(p.name, p.read_bytes()) for p in second] == first
    again = write_report(sample_report_data(), tmp_path)  # over the files already there
    assert [(p.name, p.read_bytes()) for p in again] == first
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(name for name, _ in first)


def test_the_returns_section_lists_each_conversion_and_the_plan(tmp_path: Path) -> None:
    base = sample_report_data()
    ret = {
        "equity_irr": 0.234, "unlevered_irr": 0.121, "equity_multiple": 3.456,
        "payback_year": 2031, "payback_years": 4.25, "min_dscr": 1.234, "min_dscr_year": 2029,
    }  # fmt: skip
    site = {
        "name": "odessa", "ai_it_mw": 120.0, "contract": "hyperscaler-a", "build_year": 2027,
        "returns": ret, "yield_on_cost": {"on_total_cost": 0.145},
    }  # fmt: skip
    hashing = {"name": "a&b<c>", "ai_it_mw": 0.0, "contract": None, "returns": None}
    summary = {**base.summary, "sites": [site, hashing], "returns": {**ret, "min_dscr": None}}
    page, _ = _render(tmp_path, summary=summary)
    returns = _section(page, "returns")
    assert "120 MW hyperscaler-a 2027" in returns
    for text in ("23.4%", "12.1%", "3.5x", "2031 (4.2 y)", "1.23 (2029)", "14.5%"):
        assert text in returns, text
    assert "every conversion" in returns and "a&amp;b" not in returns
    empty = _section(_render(tmp_path / "none")[0], "returns")
    assert "No site converts" in empty


def test_the_cases_section_shows_each_case_against_the_base(tmp_path: Path) -> None:
    cases = (
        {"case": "base", "changes": [], "status": "optimal", "expected_npv_usd": 100e6,
         "cvar_usd": 50e6, "ai_it_mw_total": 120.0, "plan_changes": []},
        {"case": "bear", "changes": ["market.btc_price_usd=45000"], "status": "optimal",
         "expected_npv_usd": 60e6, "cvar_usd": 20e6, "ai_it_mw_total": 80.0,
         "plan_changes": ["odessa: ai80-2027-hyperscaler-a"]},
        {"case": "<odd>", "changes": ["x=1"], "status": "infeasible"},
    )  # fmt: skip
    page, _ = _render(tmp_path, cases=cases)
    section = _section(page, "cases")
    assert "the scenario as written" in section and "the same plan" in section
    assert "market.btc_price_usd=45000" in section and "-$40.0M" in section
    assert "odessa: ai80-2027-hyperscaler-a" in section
    assert "&lt;odd&gt;" in section and "infeasible" in section
    empty = _section(_render(tmp_path / "none")[0], "cases")
    assert "no cases: block" in empty
