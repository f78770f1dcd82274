"""Property-based tests of the command line over mutated scenario files (issue 8, part 1).

Take small valid scenarios (support.MINIMAL, a two-site cut of texas.yaml, and the bundled
files), break them (drop keys, wrong types, schema extremes, NaN/inf, huge, negative and
tiny numbers, unicode, empty strings, truncation, duplicate keys, non-mapping top levels,
binary garbage) and run ``siteopt validate``, ``economics`` and ``solve`` on each. The
properties, whatever the input:

* every run ends with exit 0, 2 (bad input) or 3 (infeasible): never 1, never an escaped
  exception, never a traceback;
* a file that fails ``validate`` fails ``economics`` and ``solve`` the same way, and one
  that passes ``validate`` passes ``economics``;
* exit 2 says why on standard error;
* exit 0 writes no NaN or infinity: every number in summary.json, plan.csv, options.csv,
  cashflows.csv and economics --json is finite.

``make test`` runs a fixed (derandomised) set of examples in well under a minute; the
``slow`` variants draw many more, at random.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siteopt.cli.group import main
from siteopt.model.load import _inner_model, max_stable_elasticity
from siteopt.model.schema import Scenario

from .support import MINIMAL, REPO

# ------------------------------------------------------------------ base scenarios


def _texas_two_sites() -> dict[str, Any]:
    """texas.yaml cut to two sites (and the contracts they can sign), fewer options."""
    data = yaml.safe_load((REPO / "scenarios" / "texas.yaml").read_text(encoding="utf-8"))
    keep = {"odessa-campus", "pecos-1"}
    data["sites"] = [s for s in data["sites"] if s["name"] in keep]
    for contract in data["contracts"]:
        if "eligible_sites" in contract:
            contract["eligible_sites"] = [s for s in contract["eligible_sites"] if s in keep]
    data["build"] = {"decision_years": [2027, 2028], "ai_step_mw": 80}
    return data


BASES: dict[str, dict[str, Any]] = {
    "minimal": yaml.safe_load(MINIMAL),
    "texas-2": _texas_two_sites(),
    "stranded-hydro": yaml.safe_load(
        (REPO / "scenarios" / "stranded-hydro.yaml").read_text(encoding="utf-8")
    ),
}
SOLVE_ARGS = ("--scenarios", "64", "--no-report", "--quiet", "--time-limit", "2")

# --------------------------------------------------------------------- mutations

Path_ = tuple[str | int, ...]

NASTY_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.just(""),
    st.text(max_size=12),  # unicode, control characters, anything but surrogates
    st.sampled_from(["ü名🙂", "\x00", "nan", "inf", "-1e400", "1_000", "0x10", "~", "yes"]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.0, 1e-300]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**30]),
    st.sampled_from(["2028-13", "2028-00", "0000-01", "9999-12", "2027-1", "2027-01-01"]),
)
NASTY_VALUES = st.one_of(
    NASTY_SCALARS,
    st.lists(NASTY_SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=6), NASTY_SCALARS, max_size=2),
)


def _paths(node: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every key and list item below ``node`` (not the root)."""
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for key, child in items:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


def _get(node: Any, path: Path_) -> Any:
    for part in path:
        node = node[part]
    return node


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _field_at(path: Path_) -> Any:
    """The pydantic field a data path ends at (list indices and dict keys skipped)."""
    model: Any = Scenario
    field = None
    for part in path:
        if isinstance(part, int) or model is None:
            continue
        found = model.model_fields.get(part)
        if found is None:
            continue  # a free-form key: a power-market name, a budget year
        field = found
        model = _inner_model(found.annotation)
    return field


def _bounds(path: Path_) -> list[float]:
    """The schema's bounds of the number at ``path``, and values just inside and outside."""
    field = _field_at(path)
    out: list[float] = []
    for meta in field.metadata if field is not None else ():
        for name in ("ge", "gt", "le", "lt"):
            bound = getattr(meta, name, None)
            if isinstance(bound, int | float):
                step = max(abs(bound), 1.0) * 1e-9
                out += [bound, bound - step, bound + step]
                if name in ("ge", "gt"):
                    out += [bound + 1e-300, bound + 5e-324]
    return out


@st.composite
def extreme_number(draw: st.DrawFn, path: Path_, value: float) -> float:
    """A number near the schema's bounds of ``path``, or the old one scaled hard."""
    candidates = [*_bounds(path), 0, -value, value * 1e6, value * 1e-6, value + 1]
    number = draw(st.sampled_from(candidates))
    return int(number) if isinstance(value, int) and float(number).is_integer() else number


@st.composite
def mutated_data(draw: st.DrawFn, numbers_only: bool) -> tuple[str, dict[str, Any]]:
    """A base scenario with 1-4 edits: a key dropped, a value replaced by a nasty value or
    (``numbers_only``) numbers moved to the schema's extremes, which mostly stay valid and
    so reach the valuation and the MILP."""
    name = draw(st.sampled_from(sorted(BASES)))
    data = copy.deepcopy(BASES[name])
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = list(_paths(data))
        if numbers_only:
            paths = [p for p in paths if _is_number(_get(data, p))]
        path = draw(st.sampled_from(paths))
        parent, key, old = _get(data, path[:-1]), path[-1], _get(data, path)
        if numbers_only:
            parent[key] = draw(extreme_number(path, old))
        elif draw(st.integers(0, 4)) == 0:
            del parent[key]
        else:
            parent[key] = draw(NASTY_VALUES)
    return name, data


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@st.composite
def broken_text(draw: st.DrawFn) -> bytes:
    """A scenario file broken as text: truncated, a line duplicated (a duplicate key), bytes
    spliced in, a non-mapping top level, or garbage."""
    text = _dump(BASES[draw(st.sampled_from(sorted(BASES)))])
    kind = draw(st.sampled_from(["truncate", "duplicate", "splice", "top", "garbage"]))
    if kind == "truncate":
        return text[: draw(st.integers(0, len(text) - 1))].encode()
    if kind == "duplicate":
        lines = text.splitlines(keepends=True)
        i = draw(st.integers(0, len(lines) - 1))
        return "".join([*lines[: i + 1], lines[i], *lines[i + 1 :]]).encode()
    if kind == "splice":
        at = draw(st.integers(0, len(text)))
        raw = text.encode()
        return raw[:at] + draw(st.binary(min_size=1, max_size=16)) + raw[at:]
    if kind == "top":
        return draw(
            st.sampled_from(
                [b"", b"\n", b"---\n", b"- a\n- b\n", b"42\n", b"null\n", b"[]\n", b"'name'\n"]
            )
            | st.just(_dump(list(BASES["minimal"].items())).encode())
        )
    return draw(st.binary(max_size=256))


# ------------------------------------------------------------------- properties


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=True, env={"SITEOPT_DEBUG": None})


def _explain(args: tuple[str, ...], result: Any) -> str:
    """What failed, with the traceback of a rerun under SITEOPT_DEBUG=1."""
    debug = CliRunner().invoke(main, list(args), catch_exceptions=True, env={"SITEOPT_DEBUG": "1"})
    return (
        f"siteopt {' '.join(args)} -> exit {result.exit_code}, exception "
        f"{result.exception!r}\n--- output ---\n{result.output}\n--- debug rerun ---\n"
        f"{debug.output}"
    )


def _check_run(args: tuple[str, ...], allowed: tuple[int, ...]) -> Any:
    result = _run(*args)
    ok = (
        result.exit_code in allowed
        and (result.exception is None or isinstance(result.exception, SystemExit))
        and "Traceback" not in result.output
        and "internal error" not in result.output
    )
    assert ok, _explain(args, result)
    if result.exit_code != 0:
        assert result.stderr.strip(), _explain(args, result)
    return result


def _finite_json(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"non-finite number {constant} in JSON output")

    payload = json.loads(text, parse_constant=refuse)
    _assert_finite_tree(payload)
    return payload


def _assert_finite_tree(value: Any, where: str = "") -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _assert_finite_tree(child, f"{where}.{key}")
    elif isinstance(value, list):
        for i, child in enumerate(value):
            _assert_finite_tree(child, f"{where}[{i}]")
    elif isinstance(value, float):
        assert math.isfinite(value), f"{where} = {value}"


# Columns of the output CSVs that hold text, or that are blank for keep-hashing rows.
TEXT_COLUMNS = {
    "site", "option", "contract", "online_month", "month", "line_item", "status", "why_code", "why",
}  # fmt: skip
BLANK_ALLOWED = {"build_year"}


def assert_finite_outputs(out: Path) -> None:
    """Every number in the output folder's CSV and JSON files is finite; numeric cells are
    never blank (pandas writes NaN as an empty cell) except a keep-hashing build year."""
    summary = out / "summary.json"
    assert summary.exists(), f"no summary.json in {out}"
    _finite_json(summary.read_text(encoding="utf-8"))
    csvs = sorted(out.glob("*.csv"))
    assert {"plan.csv", "options.csv", "cashflows.csv"} <= {p.name for p in csvs}
    for path in csvs:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        for column in frame.columns:
            if column in TEXT_COLUMNS or frame[column].isin(["True", "False"]).all():
                continue
            for i, cell in enumerate(frame[column]):
                if cell == "" and column in BLANK_ALLOWED:
                    continue
                number = float(cell) if cell else math.nan
                assert math.isfinite(number), f"{path.name} row {i} {column} = {cell!r}"


def check_file(content: str | bytes, *, solve: bool = True) -> Any:
    """Run validate, economics and (optionally) solve on one file; assert the properties.

    Returns the result of ``solve`` (None without it)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scenario.yaml"
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        checked = _check_run(("validate", str(path)), (0, 2))
        econ = _check_run(("economics", str(path), "--json"), (0, 2))
        assert econ.exit_code == checked.exit_code, _explain(("economics", str(path)), econ)
        if econ.exit_code == 0:
            _finite_json(econ.stdout)
        if checked.exit_code == 2:
            assert econ.stderr == checked.stderr  # the same problems, the same words
            for line in checked.stderr.splitlines():  # FILE[:LINE]: [field.path: ]message
                assert line.startswith(f"{path}:"), checked.stderr
        if not solve:
            return None
        out = Path(tmp) / "out"
        args = ("solve", str(path), *SOLVE_ARGS, "--out", str(out))
        result = _check_run(args, (0, 2, 3))
        if checked.exit_code == 2:
            assert result.exit_code == 2 and result.stderr == checked.stderr
        if result.exit_code == 0:
            assert_finite_outputs(out)
        return result


# ------------------------------------------------------------------------- tests

CI = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SLOW = settings(
    deadline=None,
    max_examples=1500,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_bases_are_valid_and_solve() -> None:
    """The unmutated bases pass every property with exit 0 (so mutations start from valid)."""
    for name, data in BASES.items():
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.yaml"
            path.write_text(_dump(data), encoding="utf-8")
            out = Path(tmp) / "out"
            result = _check_run(("solve", str(path), *SOLVE_ARGS, "--out", str(out)), (0,))
            assert result.exit_code == 0
            assert_finite_outputs(out)


@settings(CI, max_examples=100)
@given(mutated_data(numbers_only=False))
def test_any_mutation_is_validated_cleanly(case: tuple[str, dict[str, Any]]) -> None:
    check_file(_dump(case[1]), solve=False)


@settings(CI, max_examples=45)
@given(mutated_data(numbers_only=True))
def test_extreme_numbers_solve_or_exit_cleanly(case: tuple[str, dict[str, Any]]) -> None:
    check_file(_dump(case[1]))


@settings(CI, max_examples=80)
@given(broken_text())
def test_broken_files_exit_2(content: bytes) -> None:
    check_file(content, solve=False)


SET_PATHS = st.sampled_from(
    [
        "market.btc_price_usd",
        "market.hashrate_eh",
        "market.halving_months",
        "discount_rate",
        "horizon_years",
        "simulation.risk_sample",
        "sites.alpha.ai.max_it_mw",
        "sites.alpha.mining.mw",
        "sites.beta.ai",
        "contracts.tenant-a.min_mw",
        "power_markets.west.seasonality",
        "financing.capital_budget_usd.2027",
        "build.ai_step_mw",
        "objective.cvar_alpha",
        "nope.nothing",
        "sites.nobody.mining.mw",
        "sites.al\npha.mining.mw",
        "simulation.\r",
        "",
    ]
)
SET_VALUES = st.one_of(
    st.text(max_size=12).filter(lambda v: "\x00" not in v),
    st.sampled_from([".nan", ".inf", "-.inf", "1e400", "-1", "0", "[]", "[1, 2]", "{a: 1}", "~"]),
    st.floats(allow_nan=False).map(repr),
)


@settings(CI, max_examples=80)
@given(SET_PATHS, SET_VALUES)
def test_set_overrides_exit_0_or_2(path: str, value: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "scenario.yaml"
        file.write_text(MINIMAL, encoding="utf-8")
        result = _check_run(("economics", str(file), "--json", "--set", f"{path}={value}"), (0, 2))
    if result.exit_code == 0:
        _finite_json(result.stdout)
    for line in result.stderr.splitlines():  # one line per problem, however odd the input
        assert line.removeprefix("warning: ").startswith(f"{file}:"), result.stderr


# ------------------------------------------- what the fuzzing found, kept as cases


def edited(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with dotted-path changes (list items by name); a value ``...`` deletes."""
    data = copy.deepcopy(base)
    for dotted, value in changes.items():
        *head, last = dotted.split(".")
        node: Any = data
        for part in head:
            if isinstance(node, list):
                node = next(item for item in node if item.get("name") == part)
            else:
                node = node[part]
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return data


LONG = {"horizon_years": 50}
FOUND = [
    # (id, base, changes, exit code, text on stderr); each crashed with exit 1 before
    ("risk-sample-0", "minimal", {"simulation.risk_sample": 0}, 0, ""),
    (
        "risk-sample-0-with-cvar-floor",
        "minimal",
        {"simulation.risk_sample": 0, "objective": {"cvar_floor_usd": -1e9}},
        2,
        "objective.cvar_floor_usd: a CVaR floor needs simulation.risk_sample",
    ),
    (
        "risk-sample-0-with-risk-aversion",
        "minimal",
        {"simulation.risk_sample": 0, "objective": {"risk_aversion": 0.5}},
        2,
        "objective.risk_aversion: a CVaR weight above 0 needs simulation.risk_sample",
    ),
    (
        "tiny-ai-step",  # 1.6 million options: a 24 GiB histogram
        "stranded-hydro",
        {"build.ai_step_mw": 0.0001},
        2,
        "build.ai_step_mw: ai_step_mw 0.0001 MW gives site 'lulea-north' 1,200,001 options",
    ),
    ("subnormal-ai-step", "minimal", {"build.ai_step_mw": 5e-324}, 2, "build.ai_step_mw"),
    (
        "near-zero-seasonality",  # overflow in value / level
        "minimal",
        {"power_markets.west.seasonality": [1, 1, 1, 1, 1, 1, 1, 1, 1, 1e-308, 1, 1]},
        0,
        "",
    ),
    (
        "near-zero-power-price",  # spike price / mean price = inf, times a 0 share: NaN
        "stranded-hydro",
        {
            "power_markets.paraguay-hydro.price_usd_mwh": 5e-324,
            "power_markets.paraguay-hydro.spike_price_usd_mwh": 20000,
        },
        0,
        "",
    ),
    (
        "subnormal-spike-share",  # within the spike check, spike / mean price = inf
        "minimal",
        {
            "power_markets.west.price_usd_mwh": 1e-305,
            "power_markets.west.spike_hours_share": 1e-320,
            "power_markets.west.spike_price_usd_mwh": 10000,
        },
        2,
        "power_markets.west.spike_hours_share: must be 0 or at least 1e-06",
    ),
    (
        "duration-curve-with-vanishing-mean",  # normalising to mean 1 overflows
        "minimal",
        {"power_markets.west.duration_curve": [[1e-310, 1000], [1.0, 0]]},
        2,
        "power_markets.west.duration_curve: the curve's mean multiple 1e-307 is vanishingly",
    ),
    (
        "near-zero-capex",  # overflow in the max-AI baseline's NPV per capex dollar
        "stranded-hydro",
        {"sites.alto-parana.ai.build_capex_usd_mw": 1e-308},
        0,
        "",
    ),
    (
        "subnormal-default-probability",  # ln(1 - p) / 12 == 0: division by zero
        "stranded-hydro",
        {"contracts.regional-neocloud.annual_default_prob": 5e-324},
        0,
        "",
    ),
    (
        "negative-discount-rate-over-50-years",  # NPVs of ~1e25: the MILP solver failed
        "stranded-hydro",
        {**LONG, "discount_rate": -0.4999999985},
        2,
        "site 'alto-parana', option 'hash': expected_npv_usd reaches -5.61e+22",
    ),
    (
        "subnormal-subsidy",  # a hashprice of 0: ln(0)
        "minimal",
        {"market.subsidy_btc": 5e-324},
        2,
        "market.subsidy_btc: Input should be greater than or equal to 0.00000001",
    ),
    (
        "near-zero-hashrate",  # hashprice overflows
        "minimal",
        {"market.hashrate_eh": 1e-300},
        2,
        "market.hashrate_eh: Input should be greater than or equal to 0.001",
    ),
    (
        "unstable-hashrate-feedback",  # ln H oscillates until exp overflows
        "minimal",
        {**LONG, "market.hashrate_elasticity": 10, "market.hashrate_lag_months": 60},
        2,
        "market.hashrate_elasticity: hashrate_elasticity 10 with hashrate_lag_months 60",
    ),
    (
        "btc-volatility-5-over-50-years",  # the BTC price underflows to 0
        "minimal",
        {**LONG, "market.btc_volatility": 5, "market.btc_drift": -2},
        2,
        "market.btc_volatility: Input should be less than or equal to 3",
    ),
    (
        "hashprice-beyond-float-range",  # within each bound, out of range together
        "minimal",
        {
            **LONG,
            "market.btc_drift": -2,
            "market.btc_volatility": 3,
            "market.hashrate_growth": 5,
            "market.hashrate_volatility": 3,
        },
        2,
        "market: over 50 years these values can take the hashprice to e^-",
    ),
    (
        "subnormal-asic-refresh",  # ASIC cost / (12 x refresh years) overflows
        "texas-2",
        {"sites.odessa-campus.mining.asic_refresh_years": 5e-324},
        2,
        "sites.odessa-campus.mining.asic_refresh_years: Input should be greater than or "
        "equal to 0.1",
    ),
    (
        "efficiency-gain-near-1",  # J/TH underflows to 0: 1000 / 0
        "minimal",
        {**LONG, "sites.alpha.mining.efficiency_gain_per_year": 0.9999999},
        2,
        "sites.alpha.mining.efficiency_gain_per_year: Input should be less than or equal to 0.5",
    ),
]


@pytest.mark.parametrize(
    ("base", "changes", "code", "message"), [f[1:] for f in FOUND], ids=[f[0] for f in FOUND]
)
def test_inputs_the_fuzzing_found(base: str, changes: dict, code: int, message: str) -> None:
    result = check_file(_dump(edited(BASES[base], changes)))
    assert result.exit_code == code, result.output
    assert message in result.stderr


@pytest.mark.parametrize(
    ("content", "line", "column", "code"),
    [(b"\x00" + MINIMAL.encode(), 1, 1, "0000"), (b"name: x\nstart: 20\x0727-01\n", 2, 10, "0007")],
    ids=["nul-first", "bell-on-line-2"],
)
def test_a_control_character_is_one_line_naming_its_line(
    content: bytes, line: int, column: int, code: str
) -> None:
    """Found by fuzzing: PyYAML's reader error came out as two lines, the second one
    ``in "<unicode string>", position N``, and always blamed line 1."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scenario.yaml"
        path.write_bytes(content)
        result = _check_run(("validate", str(path)), (2,))
    assert result.stderr == (
        f"{path}:{line}: not valid YAML: character U+{code} at column {column} is not "
        "allowed in YAML (a control character or a non-character)\n"
    )


def test_odd_keys_are_escaped_so_each_problem_stays_one_line() -> None:
    """Found by fuzzing: an unknown key ``"\\r"`` was printed raw, splitting its problem line
    in two; keys and names that do not print are now shown escaped, like repr."""
    data = edited(BASES["minimal"], {"simulation": {"\r": None, "a\nb": 1, "": 2}})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scenario.yaml"
        path.write_text(_dump(data), encoding="utf-8")
        result = _check_run(("validate", str(path)), (2,))
    assert [line.split(": ", 1)[1] for line in result.stderr.splitlines()] == [
        "simulation.'\\r': unknown key '\\r'",
        "simulation.'a\\nb': unknown key 'a\\nb'",
        "simulation.'': unknown key ''",
    ]


@pytest.mark.parametrize("lag", [0, 1, 6, 24, 60])
def test_the_elasticity_bound_is_the_edge_of_stability(lag: int) -> None:
    """In logs the hashrate feedback is x[t+1] = x[t] - (elasticity / 12) x[t - lag]: just
    below max_stable_elasticity a disturbance dies out, just above it grows (which is what
    overflowed ``exp`` in market_paths before the bound was checked)."""

    def swing(elasticity: float, months: int = 6_000) -> float:
        x = np.zeros(months)
        x[: lag + 1] = 1.0
        for t in range(lag, months - 1):
            x[t + 1] = x[t] - elasticity / 12.0 * x[t - lag]
        return float(np.abs(x[-(2 * lag + 2) :]).max())

    limit = max_stable_elasticity(lag)
    assert swing(0.97 * limit) < 0.5
    assert swing(1.03 * limit) > 2.0


# ------------------------------------------------------------- the slow variants


@pytest.mark.slow
@SLOW
@given(mutated_data(numbers_only=False))
def test_any_mutation_is_validated_cleanly_many(case: tuple[str, dict[str, Any]]) -> None:
    check_file(_dump(case[1]), solve=False)


@pytest.mark.slow
@settings(SLOW, max_examples=400)
@given(mutated_data(numbers_only=True))
def test_extreme_numbers_solve_or_exit_cleanly_many(case: tuple[str, dict[str, Any]]) -> None:
    check_file(_dump(case[1]))


@pytest.mark.slow
@SLOW
@given(broken_text())
def test_broken_files_exit_2_many(content: bytes) -> None:
    check_file(content, solve=False)
