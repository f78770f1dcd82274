"""Scenario validation through the command line: every bad input gets exit 2 and a
``FILE:LINE: field.path: message`` that points at the right line."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from siteopt.model.load import ScenarioError, load_scenario
from siteopt.model.source import MAX_FILE_BYTES

from .support import MINIMAL, SCENARIOS, Run, line_containing, mutate

RunCli = Callable[..., Run]
WriteScenario = Callable[..., Path]


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_every_bundled_scenario_validates(path: Path, run_cli: RunCli) -> None:
    result = run_cli("validate", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: ")


def test_minimal_scenario_is_valid(write_scenario: WriteScenario, run_cli: RunCli) -> None:
    result = run_cli("validate", str(write_scenario(MINIMAL)))
    assert (result.exit_code, result.stdout) == (0, "ok: mini (2 sites, 1 contracts)\n")


# ------------------------------------------------------------------ bad inputs


@dataclass(frozen=True)
class Bad:
    """One bad scenario file and what the report must say about it.

    ``edits`` are (old, new) replacements on MINIMAL; ``content`` replaces the whole
    file instead. ``line`` is a line number, or text found on exactly one line of the
    bad file. ``path`` is the field path ("" for whole-file problems).
    """

    id: str
    path: str
    line: int | str
    message: str
    edits: tuple[tuple[str, str], ...] = ()
    content: str | bytes | None = None


SIMULATION = "simulation:\n  scenarios: 100\n  seed: 1\n  risk_sample: 10\n"
SITES = MINIMAL[MINIMAL.index("sites:\n") : MINIMAL.index("contracts:\n")]
ALPHA_MARKET = "    market: west\n    interconnect_mw: 100"
ONLINE = "    online_by: 2029-06\n"
CLOUD = "    kind: cloud\n    successor_price_usd_kw_month: 120\n"
CLOUD_GPUS = "    gpu_capex_usd_mw: 29000000\n"
SEASONALITY = "    seasonality: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"
BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n"
    for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)  # 9 levels of 10x: 10**9 values once expanded

BAD = [
    # keys and types
    Bad("typo-in-key", "sites.alpha.interconect_mw", "interconect_mw",
        "unknown key 'interconect_mw'; did you mean 'interconnect_mw'?",
        edits=(("    interconnect_mw: 100", "    interconect_mw: 100"),)),
    Bad("typo-in-section", "simulaton", "simulaton:", "did you mean 'simulation'?",
        edits=(("simulation:", "simulaton:"),)),
    Bad("wrong-type", "market.btc_price_usd", "btc_price_usd", "valid number",
        edits=(("btc_price_usd: 90000", "btc_price_usd: lots"),)),
    Bad("boolean-for-number", "sites.alpha.mining.mw", "mw: yes", "not true/false",
        edits=(("      mw: 90", "      mw: yes"),)),
    Bad("section-not-a-mapping", "simulation", "simulation: 5", "valid dictionary",
        edits=((SIMULATION, "simulation: 5\n"),)),
    Bad("missing-required-field", "contracts.tenant-a.price_usd_kw_month", "- name: tenant-a",
        "required field is missing", edits=(("    price_usd_kw_month: 130\n", ""),)),
    Bad("missing-section", "sites", 1, "required field is missing", edits=((SITES, ""),)),
    Bad("empty-section", "sites", "sites: []", "at least 1 item", edits=((SITES, "sites: []\n"),)),
    Bad("bad-name", "name", "name: my scenario!", "should match pattern",
        edits=(("name: mini", "name: my scenario!"),)),
    # ranges
    Bad("negative-mw", "sites.alpha.mining.mw", "mw: -5", "greater than or equal to 0",
        edits=(("      mw: 90", "      mw: -5"),)),
    Bad("negative-power-price", "power_markets.west.price_usd_mwh", "price_usd_mwh: -35",
        "greater than or equal to 0", edits=(("    price_usd_mwh: 35", "    price_usd_mwh: -35"),)),
    Bad("negative-rent", "contracts.tenant-a.price_usd_kw_month", "price_usd_kw_month",
        "greater than 0", edits=(("price_usd_kw_month: 130", "price_usd_kw_month: -130"),)),
    Bad("share-above-1", "market.pool_fee", "pool_fee: 1.5", "less than or equal to 1",
        edits=(("pool_fee: 0.02", "pool_fee: 1.5"),)),
    Bad("share-below-0", "contracts.tenant-a.tenant_funded_share", "tenant_funded_share",
        "greater than or equal to 0",
        edits=(("    min_mw: 20", "    min_mw: 20\n    tenant_funded_share: -0.2"),)),
    Bad("nan", "market.btc_price_usd", "btc_price_usd", "finite number",
        edits=(("btc_price_usd: 90000", "btc_price_usd: .nan"),)),
    Bad("infinity", "market.hashrate_eh", "hashrate_eh", "finite number",
        edits=(("hashrate_eh: 1200", "hashrate_eh: .inf"),)),
    # cross-field
    Bad("ai-grid-above-interconnect", "sites.alpha.ai.max_it_mw", "max_it_mw",
        "max_it_mw x pue = 108 MW exceeds the interconnect of 100 MW",
        edits=(("max_it_mw: 70", "max_it_mw: 90"),)),
    Bad("mining-above-interconnect", "sites.alpha.mining.mw", "mw: 120",
        "mining load 120 MW exceeds the interconnect of 100 MW",
        edits=(("      mw: 90", "      mw: 120"),)),
    Bad("retrofit-above-max-it", "sites.alpha.ai.retrofit_mw", "retrofit_mw",
        "retrofit_mw exceeds max_it_mw",
        edits=(("      pue: 1.2", "      pue: 1.2\n      retrofit_mw: 80"),)),
    Bad("site-names-missing-market", "sites.alpha.market", "market: east",
        "market 'east' is not in power_markets (west)",
        edits=((ALPHA_MARKET, ALPHA_MARKET.replace("west", "east")),)),
    Bad("contract-names-missing-site", "contracts.tenant-a.eligible_sites[1]", "eligible_sites",
        "site 'gamma' does not exist",
        edits=(("eligible_sites: [alpha]", "eligible_sites: [alpha, gamma]"),)),
    Bad("duplicate-site-names", "sites.alpha.name", '"alpha"', "duplicate name 'alpha'",
        edits=(("  - name: beta", '  - name: "alpha"'),)),
    Bad("duplicate-contract-names", "contracts.tenant-a.name", "{name: tenant-a",
        "duplicate name 'tenant-a'",
        edits=(("    online_by: 2029-06\n",
                "    online_by: 2029-06\n  - {name: tenant-a, price_usd_kw_month: 120}\n"),)),
    Bad("contract-min-above-max", "contracts.tenant-a.min_mw", "min_mw: 200",
        "min_mw 200 exceeds max_mw 100", edits=(("    min_mw: 20", "    min_mw: 200"),)),
    Bad("budget-year-outside-horizon", "financing.capital_budget_usd.2035", "2035:",
        "budget year 2035 is outside the horizon 2027-2031",
        edits=(("    2028: 50000000", "    2035: 50000000"),)),
    Bad("decision-year-outside-horizon", "build.decision_years[1]", "decision_years",
        "decision year 2040 is outside the horizon 2027-2031",
        edits=(("decision_years: [2027, 2028]", "decision_years: [2027, 2040]"),)),
    Bad("decision-year-twice", "build.decision_years[1]", "decision_years",
        "decision year 2027 is listed twice",
        edits=(("decision_years: [2027, 2028]", "decision_years: [2027, 2027]"),)),
    Bad("online-by-after-horizon", "contracts.tenant-a.online_by", "online_by",
        "online_by 2033-01 is outside the horizon",
        edits=(("online_by: 2029-06", "online_by: 2033-01"),)),
    Bad("online-by-before-start", "contracts.tenant-a.online_by", "online_by",
        "online_by 2026-12 is outside the horizon",
        edits=(("online_by: 2029-06", "online_by: 2026-12"),)),
    Bad("generator-and-market", "sites.alpha.generator", "generator:",
        "a site has a market or a generator, not both: omit one",
        edits=((ALPHA_MARKET, ALPHA_MARKET + "\n    generator: {gas_price_usd_mmbtu: 1.5}"),)),
    Bad("neither-market-nor-generator", "sites.beta.market", "name: beta",
        "required: a key of power_markets, or a generator",
        edits=(("    market: west\n    interconnect_mw: 50", "    interconnect_mw: 50"),)),
    Bad("generator-with-a-ppa", "sites.alpha.power.ppa_mw", "ppa_mw",
        "a site with a generator has no PPA: its power is the generator's",
        edits=((ALPHA_MARKET, "    generator: {gas_price_usd_mmbtu: 1.5}\n"
                "    interconnect_mw: 100"),)),
    Bad("generator-heat-rate-zero", "sites.alpha.generator.heat_rate_mmbtu_mwh",
        "heat_rate_mmbtu_mwh", "greater than 0",
        edits=((ALPHA_MARKET, "    generator: {gas_price_usd_mmbtu: 1.5, heat_rate_mmbtu_mwh: 0}"
                "\n    interconnect_mw: 100"),)),
    Bad("ppa-without-price", "sites.alpha.power.ppa_price_usd_mwh", "    power:",
        "required when ppa_mw is above 0", edits=(("      ppa_price_usd_mwh: 30\n", ""),)),
    Bad("duration-curve-not-summing-to-1", "power_markets.west.duration_curve", "duration_curve",
        "shares of hours sum to 0.8, not 1",
        edits=((SEASONALITY, SEASONALITY + "\n    duration_curve: [[0.5, 0.8], [0.3, 1.2]]"),)),
    Bad("seasonality-with-11-values", "power_markets.west.seasonality", "seasonality",
        "at least 12 items", edits=((SEASONALITY, SEASONALITY.replace("1, 1]", "1]")),)),
    # AI cloud contracts
    Bad("cloud-without-gpus", "contracts.tenant-a.gpu_capex_usd_mw", "- name: tenant-a",
        "a cloud contract needs the GPUs' cost per MW IT", edits=((ONLINE, ONLINE + CLOUD),)),
    Bad("cloud-passing-power-through", "contracts.tenant-a.power_pass_through",
        "power_pass_through", "the landlord pays it (false)",
        edits=((ONLINE, ONLINE + CLOUD + CLOUD_GPUS + "    power_pass_through: true\n"),)),
    Bad("cloud-without-a-successor-rent", "contracts.tenant-a.successor_price_usd_kw_month",
        "- name: tenant-a", "the hall is leased as colocation: give that rent",
        edits=((ONLINE, ONLINE + "    kind: cloud\n    gpu_capex_usd_mw: 29000000\n"),)),
    Bad("cloud-funded-by-its-customer", "contracts.tenant-a.tenant_funded_share",
        "tenant_funded_share", "a cloud customer funds no hall",
        edits=((ONLINE, ONLINE + CLOUD + CLOUD_GPUS + "    tenant_funded_share: 0.5\n"),)),
    Bad("cloud-term-outlasting-its-gpus", "contracts.tenant-a.term_years", "term_years",
        "term 7 years outlasts the GPUs' useful life (gpu_life_years 5)",
        edits=((ONLINE, ONLINE + CLOUD + CLOUD_GPUS + "    term_years: 7\n"),)),
    Bad("cloud-termination-without-milestone",
        "contracts.tenant-a.milestone_termination_prob", "milestone_termination_prob",
        "needs its delivery milestone (milestone_months)",
        edits=((ONLINE, ONLINE + CLOUD + CLOUD_GPUS + "    milestone_termination_prob: 0.3\n"),)),
    Bad("gpus-in-a-colocation-lease", "contracts.tenant-a.gpu_capex_usd_mw",
        "gpu_capex_usd_mw", "applies only to kind: cloud (this contract is colocation)",
        edits=((ONLINE, ONLINE + CLOUD_GPUS),)),
    Bad("cloud-residual-above-cost", "contracts.tenant-a.gpu_residual_curve[1]",
        "gpu_residual_curve", "less than or equal to 1",
        edits=((ONLINE, ONLINE + CLOUD + CLOUD_GPUS + "    gpu_residual_curve: [0.5, 1.5]\n"),)),
    Bad("cloud-kind-unknown", "contracts.tenant-a.kind", "kind: gpu",
        "Input should be 'colocation', 'cloud' or 'powered_shell'",
        edits=((ONLINE, ONLINE + "    kind: gpu\n"),)),
    Bad("powered-shell-funded-by-nobody", "contracts.tenant-a.tenant_funded_share",
        "- name: tenant-a", "a powered shell's tenant funds its fit-out",
        edits=((ONLINE, ONLINE + "    kind: powered_shell\n"),)),
    Bad("powered-shell-fit-out-reverting", "contracts.tenant-a.improvements_revert",
        "improvements_revert", "a powered shell's fit-out is each tenant's own",
        edits=((ONLINE, ONLINE + "    kind: powered_shell\n    tenant_funded_share: 0.7\n"
                "    improvements_revert: true\n"),)),
    Bad("gpus-in-a-powered-shell", "contracts.tenant-a.gpu_capex_usd_mw", "gpu_capex_usd_mw",
        "applies only to kind: cloud (this contract is powered_shell)",
        edits=((ONLINE, ONLINE + "    kind: powered_shell\n    tenant_funded_share: 0.7\n"
                + CLOUD_GPUS),)),
    Bad("tenant-interest-only-past-the-term",
        "contracts.tenant-a.financing.interest_only_months", "interest_only_months: 36",
        "36 interest-only months leave nothing to amortise in a 3-year term (36 months)",
        edits=(("    online_by: 2029-06\n", "    online_by: 2029-06\n    financing: "
                "{interest_only_months: 36, term_years: 3}\n"),)),
    Bad("tenant-amortization-unknown", "contracts.tenant-a.financing.amortization", "balloon",
        "Input should be 'annuity' or 'bullet'",
        edits=(("    online_by: 2029-06\n",
                "    online_by: 2029-06\n    financing: {amortization: balloon}\n"),)),
    Bad("risk-sample-above-scenarios", "simulation.risk_sample", "risk_sample",
        "risk_sample 500 exceeds scenarios 100",
        edits=(("risk_sample: 10", "risk_sample: 500"),)),
    # dates
    Bad("halving-month-13", "market.halving_months[0]", "halving_months",
        "expected a month as YYYY-MM, got '2028-13'",
        edits=(("[2028-04]", "[2028-13]"),)),
    Bad("halving-month-one-digit", "market.halving_months[0]", "halving_months",
        "expected a month as YYYY-MM, got '2028-4'", edits=(("[2028-04]", "[2028-4]"),)),
    Bad("halving-month-full-date", "market.halving_months[0]", "halving_months",
        "expected a month as YYYY-MM, got '2028-04-01'",
        edits=(("[2028-04]", "[2028-04-01]"),)),
    Bad("start-malformed", "start", "start:", "expected a month as YYYY-MM, got '2027/01'",
        edits=(("start: 2027-01", "start: 2027/01"),)),
    # the file itself
    Bad("python-tag-on-a-list", "", "seed:", "unsupported YAML tag '!!python/object/apply",
        edits=(("  seed: 1", "  seed: !!python/object/apply:os.system [touch pwned]"),)),
    Bad("python-tag-on-a-scalar", "", "seed:", "unsupported YAML value",
        edits=(("  seed: 1", "  seed: !!python/name:os.system"),)),
    Bad("duplicate-key", "", "seed: 2", "duplicate key 'seed'",
        edits=(("  seed: 1\n", "  seed: 1\n  seed: 2\n"),)),
    Bad("not-yaml-unclosed-bracket", "", 1, "not valid YAML", content="a: [1, 2\n"),
    Bad("not-yaml-mid-file", "", "0.02: 3", "not valid YAML: mapping values are not allowed",
        edits=(("pool_fee: 0.02", "pool_fee: 0.02: 3"),)),
    Bad("empty-file", "", 1, "the file is empty", content=""),
    Bad("comments-only", "", 1, "the file is empty", content="# nothing yet\n"),
    Bad("top-level-list", "", 1, "not a YAML mapping", content="- name: mini\n- start: 2027-01\n"),
    Bad("top-level-scalar", "", 1, "not a YAML mapping", content="texas\n"),
    Bad("yaml-bomb", "", "f: &f", "expands to more than", content=BOMB),
    Bad("recursive-alias", "", 1, "nests deeper than", content="a: &a [*a]\n"),
    Bad("over-size-limit", "", 1, "limited to 4 MiB",
        content=MINIMAL + "#" * (MAX_FILE_BYTES - len(MINIMAL) + 1)),
    Bad("not-utf8", "", "name: alph", "not UTF-8",
        content=MINIMAL.encode().replace(b"name: alpha", b"name: alph\xe9")),
]  # fmt: skip


def _bad_file(case: Bad) -> str | bytes:
    return case.content if case.content is not None else mutate(MINIMAL, case.edits)


def _expected_line(case: Bad, content: str | bytes) -> int:
    if isinstance(case.line, int):
        return case.line
    text = content.decode("latin-1") if isinstance(content, bytes) else content
    return line_containing(text, case.line)


def test_bad_inputs_are_distinct_and_many() -> None:
    assert len({c.id for c in BAD}) == len(BAD) >= 25
    assert len({_bad_file(c) for c in BAD}) == len(BAD)


@pytest.mark.parametrize("case", BAD, ids=lambda c: c.id)
def test_bad_input_is_reported_with_file_line_and_path(
    case: Bad, write_scenario: WriteScenario, run_cli: RunCli, tmp_path: Path
) -> None:
    content = _bad_file(case)
    path = write_scenario(content)
    started = time.perf_counter()
    result = run_cli("validate", str(path))
    elapsed_s = time.perf_counter() - started

    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.output
    where = f"{path}:{_expected_line(case, content)}: "
    lines = result.stderr.splitlines()
    hits = [ln for ln in lines if ln.startswith(where + (f"{case.path}: " if case.path else ""))]
    assert hits, f"no line starts with {where}{case.path}: in\n{result.stderr}"
    assert any(case.message in ln for ln in hits), result.stderr
    assert all(ln.startswith(f"{path}:") for ln in lines), result.stderr
    assert elapsed_s < 2.0
    assert not (tmp_path / "pwned").exists()


def test_several_problems_are_reported_at_once(
    write_scenario: WriteScenario, run_cli: RunCli
) -> None:
    text = mutate(
        MINIMAL,
        [
            ("pool_fee: 0.02", "pool_fee: 1.5"),
            ("      mw: 90", "      mw: -5"),
            ("    min_mw: 20", "    min_mw: 20\n    tenant_funded_shar: 0.1"),
            ("    mining:\n      mw: 40", "    mining:\n      mw: 40\n      uptime: .nan"),
        ],
    )
    path = write_scenario(text)
    result = run_cli("validate", str(path))
    assert result.exit_code == 2
    expected = [
        (line_containing(text, "pool_fee"), "market.pool_fee"),
        (line_containing(text, "mw: -5"), "sites.alpha.mining.mw"),
        (line_containing(text, "uptime"), "sites.beta.mining.uptime"),
        (line_containing(text, "tenant_funded_shar"), "contracts.tenant-a.tenant_funded_shar"),
    ]
    lines = result.stderr.splitlines()
    assert [ln.split(": ")[:2] for ln in lines] == [
        [f"{path}:{line}", field] for line, field in expected
    ]


def test_several_cross_field_problems_are_reported_at_once(
    write_scenario: WriteScenario, run_cli: RunCli
) -> None:
    text = mutate(
        MINIMAL,
        [
            (ALPHA_MARKET, ALPHA_MARKET.replace("west", "east")),
            ("    min_mw: 20", "    min_mw: 200"),
            ("decision_years: [2027, 2028]", "decision_years: [2027, 2040]"),
        ],
    )
    result = run_cli("validate", str(write_scenario(text)))
    assert result.exit_code == 2
    fields = [ln.split(": ")[1] for ln in result.stderr.splitlines()]
    assert fields == ["sites.alpha.market", "contracts.tenant-a.min_mw", "build.decision_years[1]"]


def test_library_raises_scenario_error_with_every_problem(write_scenario: WriteScenario) -> None:
    text = mutate(MINIMAL, [("pool_fee: 0.02", "pool_fee: 1.5"), ("      mw: 90", "      mw: -5")])
    with pytest.raises(ScenarioError) as info:
        load_scenario(write_scenario(text))
    assert [p.path for p in info.value.problems] == ["market.pool_fee", "sites.alpha.mining.mw"]
    assert info.value.exit_code == 2


# -------------------------------------------------------------------- --set


def _economics(run_cli: RunCli, path: Path | str, *sets: str) -> dict:
    args = ["economics", str(path), "--json"]
    for spec in sets:
        args += ["--set", spec]
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _site(payload: dict, name: str) -> dict:
    return next(s for s in payload["sites"] if s["name"] == name)


TEXAS = next(p for p in SCENARIOS if p.name == "texas.yaml")


def test_set_changes_the_number(run_cli: RunCli) -> None:
    base = _economics(run_cli, TEXAS)
    half = _economics(run_cli, TEXAS, "market.btc_price_usd=45000")
    assert half["hashprice_usd_ph_day"] == pytest.approx(base["hashprice_usd_ph_day"] / 2)


def test_set_addresses_list_items_by_name(run_cli: RunCli) -> None:
    payload = _economics(run_cli, TEXAS, "contracts.hyperscaler-a.price_usd_kw_month=150")
    ai = _site(payload, "pecos-1")["ai"]
    assert ai["contract"] == "hyperscaler-a"
    assert ai["revenue_usd_mw_day"] == pytest.approx(150 * 1000 * 12 / 365)


def test_set_addresses_mapping_keys_and_booleans(run_cli: RunCli) -> None:
    payload = _economics(
        run_cli,
        TEXAS,
        "power_markets.ercot-west.seasonality=[1,1,1,1,1,1,1,1,1,1,1,1]",
        "sites.sweetwater-pad.power.ppa_mw=0",
        "contracts.hyperscaler-a.power_pass_through=false",
    )
    site = _site(payload, "sweetwater-pad")  # no PPA, no mining: the market price
    assert site["power_price_usd_mwh"] == pytest.approx(35.0)
    assert site["ai"]["power_cost_usd_mw_day"] == pytest.approx(24 * 1.2 * 35.0)


@pytest.mark.parametrize(
    ("spec", "hint"),
    [
        ("market.btc_prise_usd=1", "did you mean 'market.btc_price_usd'?"),
        ("markt.btc_price_usd=1", "did you mean 'market'?"),
        ("contracts.hyperscaler-z.price_usd_kw_month=1", "did you mean 'contracts.hyperscaler-a'?"),
        ("sites.pecos-1.ai.max_it=1", "did you mean 'sites.pecos-1.ai.max_it_mw'?"),
        ("power_markets.ercot-wst.price_usd_mwh=1", "did you mean 'power_markets.ercot-west'?"),
    ],
)
def test_set_unknown_path_names_the_nearest_valid_path(
    spec: str, hint: str, run_cli: RunCli
) -> None:
    result = run_cli("economics", str(TEXAS), "--set", spec)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"{TEXAS}: --set {spec.partition('=')[0]}: unknown ")
    assert hint in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "value",
    [
        "!!python/object/apply:os.system ['touch pwned']",
        '!!python/object/apply:builtins.exec [\'open("pwned", "w")\']',
        "!!python/name:os.system",
    ],
)
def test_set_value_is_never_evaluated(
    value: str, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli("economics", str(TEXAS), "--set", f"market.btc_price_usd={value}")
    assert result.exit_code == 2
    assert "cannot read the value" in result.stderr
    assert not (tmp_path / "pwned").exists()


def test_set_value_out_of_range_is_reported_as_coming_from_set(run_cli: RunCli) -> None:
    result = run_cli("economics", str(TEXAS), "--set", "market.pool_fee=1.5")
    assert result.exit_code == 2
    assert result.stderr == (
        f"{TEXAS}: --set market.pool_fee: Input should be less than or equal to 1 (got 1.5)\n"
    )


def test_set_without_equals_sign_is_bad_input(run_cli: RunCli) -> None:
    result = run_cli("economics", str(TEXAS), "--set", "market.pool_fee")
    assert result.exit_code == 2
    assert "expected PATH=VALUE" in result.stderr


def test_set_value_stays_a_string_where_yaml_would_read_a_date(run_cli: RunCli) -> None:
    result = run_cli("economics", str(TEXAS), "--set", "start=2027-01-01")
    assert result.exit_code == 2
    assert "expected a month as YYYY-MM" in result.stderr


def test_set_can_add_a_missing_section(run_cli: RunCli) -> None:
    # garden-city has no ai section; --set starts one, the schema fills the defaults
    assert _site(_economics(run_cli, TEXAS), "garden-city")["ai"] is None
    payload = _economics(run_cli, TEXAS, "sites.garden-city.ai.max_it_mw=100")
    assert _site(payload, "garden-city")["ai"]["contract"] == "hyperscaler-a"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("name.first=x", "'name' is a value, not a section"),
        ("market.halving_months.first=2028-04", "set the whole [list]"),
        ("sites.pecos-1=3", "a path must name a field of the item"),
        ("market..pool_fee=0.1", "empty path"),
        ("market.pool_fee={a: 1}", "must be a scalar or a [list]"),
    ],
)
def test_set_paths_that_cannot_be_set(spec: str, message: str, run_cli: RunCli) -> None:
    result = run_cli("economics", str(TEXAS), "--set", spec)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_spike_hours_that_exceed_the_mean_price_are_refused(run_cli, write_scenario):
    path = write_scenario(
        "name: x\nstart: 2027-01\npower_markets:\n"
        "  g: {price_usd_mwh: 10, spike_hours_share: 0.1, spike_price_usd_mwh: 200}\n"
        "sites:\n  - {name: a, market: g, interconnect_mw: 10, mining: {mw: 5}}\n"
    )
    run = run_cli("validate", str(path))
    assert run.exit_code == 2
    assert f"{path}:4: power_markets.g.spike_price_usd_mwh: spike hours alone" in run.stderr


# ------------------------------------------------------------------ generators


def test_power_markets_and_generators_are_counted_together(
    write_scenario: WriteScenario, run_cli: RunCli
) -> None:
    """Each power market and each generator draws its prices on a random stream of its own,
    of which there are N_POWER_MARKETS_MAX: 15 markets and two generators are refused with
    their count, 15 and one pass."""
    from siteopt.kernels.rng import N_POWER_MARKETS_MAX
    from siteopt.model.schema import MAX_POWER_SOURCES

    assert MAX_POWER_SOURCES == N_POWER_MARKETS_MAX
    markets = "".join(f"  m{k}:\n    price_usd_mwh: 35\n" for k in range(14))
    text = MINIMAL.replace("power_markets:\n", "power_markets:\n" + markets)
    gas = "    generator: {gas_price_usd_mmbtu: 1.0}\n    interconnect_mw: 50"
    one = text.replace("    market: west\n    interconnect_mw: 50", gas)
    assert run_cli("validate", str(write_scenario(one))).exit_code == 0
    two = one.replace(
        "    market: west\n    interconnect_mw: 100", gas.replace("50", "100")
    ).replace("    power:\n      ppa_mw: 50\n      ppa_price_usd_mwh: 30\n", "")
    result = run_cli("validate", str(write_scenario(two)))
    assert result.exit_code == 2
    assert "15 power markets and 2 generators: at most 16 together" in result.stderr


def test_a_refresh_knows_the_generated_halvings_past_the_horizon() -> None:
    """A fleet bought in a five-year horizon's last years runs into the 2032 halving: with
    halving_months omitted the refresh rule knows it; the subsidy in the horizon does not
    move."""
    from siteopt.app.params import kernel_inputs
    from siteopt.kernels.market import subsidy_schedule
    from siteopt.model.load import apply_overrides

    texas = load_scenario(SCENARIOS[[p.name for p in SCENARIOS].index("texas.yaml")])
    short = apply_overrides(texas, ["horizon_years=5"])
    assert short.market.halving_months is None and short.halvings == ("2028-04",)
    k = kernel_inputs(short)
    assert k.market.halving_months == ("2028-04", "2032-04")
    horizon_only = dataclasses.replace(
        k, market=dataclasses.replace(k.market, halving_months=("2028-04",))
    )
    assert (subsidy_schedule(k) == subsidy_schedule(horizon_only)).all()
