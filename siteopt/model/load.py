"""Load and validate scenario files; every problem names the file, the line and the field.

>>> scenario = load_scenario(Path("scenarios/texas.yaml"))          # doctest: +SKIP
>>> scenario = load_scenario(path, overrides=["market.btc_price_usd=60000"])  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from siteopt.model.errors import InputError
from siteopt.model.plausibility import SourceLines
from siteopt.model.schema import MAX_POWER_SOURCES, Scenario, forward_month, year_month_index
from siteopt.model.series import forward_files
from siteopt.model.source import (
    PathKey,
    SourceMap,
    YamlSourceError,
    load_yaml_mapping,
    load_yaml_value,
)

__all__ = [
    "Problem",
    "case_scenario",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "load_scenario_source",
    "validate_data",
    "with_simulation",
]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario file."""

    file: str
    line: int | None
    path: str
    message: str
    key: str = ""  # a case's problem: the change behind it (siteopt.model.load.case_scenario)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ScenarioError(InputError):
    """A scenario that cannot be used (exit 2); ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def load_scenario(path: Path | str, overrides: Iterable[str] = ()) -> Scenario:
    """Read, override and validate a scenario file.

    Parameters
    ----------
    path : Path
        YAML scenario file.
    overrides : iterable of str
        ``PATH=VALUE`` changes (``--set``), applied before validation; list items
        are addressed by ``name``, VALUE is parsed as a YAML scalar.

    Raises
    ------
    ScenarioError
        With every problem found, each as ``FILE:LINE: field.path: message``.
    """
    return load_scenario_source(path, overrides)[0]


def load_scenario_source(
    path: Path | str, overrides: Iterable[str] = ()
) -> tuple[Scenario, SourceLines]:
    """:func:`load_scenario`, plus where each value sits in the file (for warnings)."""
    path = Path(path)
    try:
        source = load_yaml_mapping(path)
    except YamlSourceError as exc:
        raise ScenarioError([Problem(str(path), exc.line, "", exc.message)]) from None
    problems = [
        p for p in (apply_override(source, spec, str(path)) for spec in overrides) if p is not None
    ]
    if problems:
        raise ScenarioError(problems)
    csv_problems = forward_files(source.data, path.parent)
    if csv_problems:
        raise ScenarioError([Problem(str(path), None, "", p) for p in csv_problems])
    scenario = validate_data(source, str(path))
    return scenario, SourceLines(str(path), dict(source.lines), tuple(source.overridden))


def validate_data(source: SourceMap, filename: str) -> Scenario:
    """Validate loaded data: field checks first, then cross-field checks.

    Cross-field checks need a scenario that passed the field checks, so a file
    with field problems reports those (all of them) and not yet the cross-field ones.
    """
    try:
        scenario = Scenario.model_validate(source.data)
    except ValidationError as exc:
        raise ScenarioError(_field_problems(exc, source, filename)) from None
    cross = [_problem(source, filename, loc, msg) for loc, msg in cross_field_problems(scenario)]
    if cross:
        raise ScenarioError(_by_line(cross))
    cases = []
    for name in scenario.cases:
        try:
            case_scenario(scenario, name)
        except ScenarioError as exc:
            cases += [
                Problem(filename, source.line_of(("cases", name, p.key)), p.path, p.message)
                for p in exc.problems
            ]
    if cases:
        raise ScenarioError(cases)
    return scenario


def case_scenario(scenario: Scenario, name: str) -> Scenario:
    """The scenario with case ``name``'s changes applied, validated, without cases of its own.

    Raises
    ------
    ScenarioError
        A change the scenario refuses; each problem's path is ``cases.NAME.PATH``, and its
        ``key`` the case's PATH.
    """
    data = scenario.model_dump(mode="json")
    data["cases"] = {}
    source = SourceMap(data)
    problems = []
    changes = scenario.cases[name]
    for path, value in changes.items():
        problem = apply_override(source, f"{path}={json.dumps(value)}", scenario.name)
        if problem:
            problems.append(_in_case(problem, name, path))
    if problems:
        raise ScenarioError(problems)
    try:
        return validate_data(source, scenario.name)
    except ScenarioError as exc:
        raise ScenarioError([_in_case(p, name, None, changes) for p in exc.problems]) from None


def _in_case(
    problem: Problem, name: str, path: str | None, changes: dict[str, Any] | None = None
) -> Problem:
    """A problem of case ``name``, at ``cases.NAME.PATH`` (PATH: the change behind it)."""
    shown = problem.path.removeprefix("--set ")
    if path is None:  # found on validation: the change at that path, or one above it
        path = next(
            (p for p in changes or {} if shown == p or shown.startswith((p + ".", p + "["))),
            None,
        )
    where = f"cases.{name}.{path}" if path == shown else f"cases.{name}: {shown}"
    return Problem(problem.file, None, where, problem.message, key=path or "")


def _problem(source: SourceMap, filename: str, loc: PathKey, message: str) -> Problem:
    """A Problem at ``loc``; a value that came from ``--set`` is reported as such, lineless."""
    shown = _display_path(loc, source.data)
    if source.is_overridden(loc):
        return Problem(filename, None, f"--set {shown}", message)
    return Problem(filename, source.line_of(loc), shown, message)


def _by_line(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.line if p.line is not None else 0)


# ---------------------------------------------------------------- field errors


def _field_problems(exc: ValidationError, source: SourceMap, filename: str) -> list[Problem]:
    problems = []
    errors = exc.errors(include_url=False)
    for err in errors:
        if err["type"] == "too_short" and _has_child_error(err["loc"], errors):
            continue  # pydantic adds "0 items" when every item failed: the items say why
        loc = _data_path(err["loc"], source.data)
        kind, message = err["type"], err["msg"]
        if kind == "extra_forbidden":
            message = _unknown_key_message(loc, err["loc"])
        elif kind == "missing":
            message = "required field is missing"
        elif kind == "string_pattern_mismatch" and "\\d{4}" in str(err.get("ctx", "")):
            message = f"expected a month as YYYY-MM, got {err['input']!r}"
        elif kind == "value_error":  # our own validators: the message says it all
            message = message.removeprefix("Value error, ")
        elif "input" in err and kind not in ("model_type", "dict_type", "list_type"):
            message = f"{message} (got {_short(err['input'])})"
        problems.append(_problem(source, filename, loc, message))
    return _by_line(problems)


def _has_child_error(loc: tuple[Any, ...], errors: list[Any]) -> bool:
    return any(len(e["loc"]) > len(loc) and e["loc"][: len(loc)] == loc for e in errors)


def _data_path(loc: tuple[Any, ...], data: Any) -> PathKey:
    """The prefix of a pydantic ``loc`` that exists in the data, plus a missing leaf.

    pydantic adds type tags (``float``, ``function-after[...]``) to locations of
    union fields; walking the real data drops them.
    """
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not _is_type_tag(part):
            out.append(part)  # a missing or unknown key: keep it, stop walking
            break
        else:
            continue
        out.append(part)
    return tuple(out)


def _is_type_tag(part: str) -> bool:
    return part in {"float", "int", "str", "bool", "none"} or "[" in part


def _display_path(loc: PathKey, data: Any) -> str:
    """``sites.pecos-1.ai.pue``: list items by name when they have one, else ``[i]``."""
    out = ""
    node = data
    for part in loc:
        if isinstance(node, list) and isinstance(part, int):
            item = node[part] if 0 <= part < len(node) else None
            name = item.get("name") if isinstance(item, dict) else None
            out += f".{_part(name)}" if isinstance(name, str) and name else f"[{part}]"
            node = item
        else:
            out += f".{_part(part)}"
            node = node.get(part) if isinstance(node, dict) else None
    return out[1:]


def _part(key: Any) -> str:
    """A key as shown in a path: as is, or escaped and quoted when it is empty or holds
    characters that do not print (a newline in a key must not split the message)."""
    text = str(key)
    return text if text and text.isprintable() else repr(text)


def _quoted(key: Any) -> str:
    """``'key'`` in a message; escaped (``'a\\nb'``) when it would not print as one line."""
    text = str(key)
    return f"'{text}'" if text.isprintable() else repr(text)


def _unknown_key_message(loc: PathKey, raw_loc: tuple[Any, ...]) -> str:
    key = str(loc[-1]) if loc else "?"
    model = _model_at(Scenario, [p for p in raw_loc[:-1] if not isinstance(p, int)])
    known = sorted(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown key {_quoted(key)}{hint}"


def _model_at(model: type[BaseModel], parts: Sequence[Any]) -> type[BaseModel] | None:
    """The model class reached by following field names (dict keys skipped)."""
    current: type[BaseModel] | None = model
    for part in parts:
        if current is None:
            return None
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            continue  # a dict key such as a power-market name
        current = _inner_model(field.annotation)
    return current


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------- cross-field checks


def cross_field_problems(s: Scenario) -> list[tuple[PathKey, str]]:
    """Checks that span fields; each returns (path, message) pairs."""
    checks = (
        check_names,
        check_sites,
        check_contracts,
        check_debt,
        check_dates,
        check_power_markets,
        check_objective,
        check_option_count,
        check_hashrate_feedback,
        check_forwards,
        check_market_range,
    )
    return [problem for check in checks for problem in check(s)]


def check_forwards(s: Scenario) -> list[tuple[PathKey, str]]:
    """A forward names each month once (``2027`` is ``2027-01``)."""
    curves: list[tuple[PathKey, dict[str, float] | None]] = []
    if s.market.forward is not None:
        f = s.market.forward
        curves += [(("market", "forward", k), getattr(f, k))
                   for k in ("btc_price_usd", "hashrate_eh", "fee_share")]  # fmt: skip
    curves += [(("power_markets", name, "forward_usd_mwh"), pm.forward_usd_mwh)
               for name, pm in s.power_markets.items()]  # fmt: skip
    problems = []
    for path, curve in curves:
        seen: dict[str, str] = {}
        for key in curve or {}:
            month = forward_month(key)
            if month in seen:
                problems.append((path, f"{key} and {seen[month]} are the same month"))
            seen[month] = key
    return problems


def check_names(s: Scenario) -> list[tuple[PathKey, str]]:
    out = []
    for kind, items in (("sites", s.sites), ("contracts", s.contracts)):
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item.name in seen:
                out.append(((kind, i, "name"), f"duplicate name '{item.name}'"))
            seen.add(item.name)
    return out


def check_sites(s: Scenario) -> list[tuple[PathKey, str]]:
    out = []
    for i, site in enumerate(s.sites):
        if site.generator is not None:
            if site.market is not None:
                out.append(
                    (
                        ("sites", i, "generator"),
                        "a site has a market or a generator, not both: omit one",
                    )
                )
            if site.power.ppa_mw > 0:
                out.append(
                    (
                        ("sites", i, "power", "ppa_mw"),
                        "a site with a generator has no PPA: its power is the generator's",
                    )
                )
        elif site.market is None:
            out.append((("sites", i, "market"), "required: a key of power_markets, or a generator"))
        elif site.market not in s.power_markets:
            known = ", ".join(sorted(s.power_markets))
            out.append(
                (
                    ("sites", i, "market"),
                    f"market '{site.market}' is not in power_markets ({known})",
                )
            )
        if site.mining.mw > site.interconnect_mw:
            out.append(
                (
                    ("sites", i, "mining", "mw"),
                    f"mining load {site.mining.mw:g} MW exceeds the interconnect of "
                    f"{site.interconnect_mw:g} MW",
                )
            )
        if site.power.ppa_mw > 0 and site.power.ppa_price_usd_mwh is None:
            out.append(
                (("sites", i, "power", "ppa_price_usd_mwh"), "required when ppa_mw is above 0")
            )
        if site.ai is not None:
            grid_mw = site.ai.max_it_mw * site.ai.pue
            if grid_mw > site.interconnect_mw * (1 + 1e-9):
                out.append(
                    (
                        ("sites", i, "ai", "max_it_mw"),
                        f"max_it_mw x pue = {grid_mw:g} MW exceeds the interconnect of "
                        f"{site.interconnect_mw:g} MW",
                    )
                )
            if site.ai.retrofit_mw > site.ai.max_it_mw:
                out.append((("sites", i, "ai", "retrofit_mw"), "retrofit_mw exceeds max_it_mw"))
        if site.sale is not None:
            out.extend(_sale_terms(s, i, site))
    generators = [i for i, site in enumerate(s.sites) if site.generator is not None]
    if len(s.power_markets) + len(generators) > MAX_POWER_SOURCES:
        out.append(
            (
                ("sites", generators[0], "generator"),
                f"{len(s.power_markets)} power markets and {len(generators)} generators: at "
                f"most {MAX_POWER_SOURCES} together (each draws its own prices)",
            )
        )
    return out


def _sale_terms(s: Scenario, i: int, site: Any) -> list[tuple[PathKey, str]]:
    """A site's sale offer: it offers something, closes within the horizon, and a joint
    venture has a conversion to share."""
    sale, here = site.sale, ("sites", i, "sale")
    out: list[tuple[PathKey, str]] = []
    if sale.price_usd_mw is None and sale.jv_share is None:
        out.append((here, "offers nothing: give price_usd_mw (a sale), jv_share (a JV) or both"))
    months = 12 * s.horizon_years
    if sale.price_usd_mw is not None and sale.months_to_close >= months:
        out.append(
            (
                (*here, "months_to_close"),
                f"{sale.months_to_close} months: the sale must close within the "
                f"{s.horizon_years}-year horizon (below {months})",
            )
        )
    if sale.jv_share is not None and site.ai is None:
        out.append(
            ((*here, "jv_share"), "a joint venture shares a conversion: the site has no ai block")
        )
    return out


def check_contracts(s: Scenario) -> list[tuple[PathKey, str]]:
    out = []
    names = {site.name for site in s.sites}
    for i, c in enumerate(s.contracts):
        if c.min_mw > c.max_mw:
            out.append(
                (("contracts", i, "min_mw"), f"min_mw {c.min_mw:g} exceeds max_mw {c.max_mw:g}")
            )
        for j, site in enumerate(c.eligible_sites or ()):
            if site not in names:
                out.append((("contracts", i, "eligible_sites", j), f"site '{site}' does not exist"))
        if c.ramp and sum(p.months for p in c.ramp) > 12 * c.term_years:
            out.append((("contracts", i, "ramp"), "ramp phases last longer than the term"))
        out += _cloud_terms(i, c)
    return out


CLOUD_ONLY = (
    "gpu_capex_usd_mw",
    "prepayment_share",
    "prepayment_months",
    "gpu_loan_to_cost",
    "gpu_debt_rate",
    "operations_usd_mw_month",
    "milestone_months",
    "milestone_termination_prob",
)


def _shell_terms(i: int, c: Any) -> list[tuple[PathKey, str]]:
    """A powered shell whose tenant funds nothing, or leaves its fit-out behind."""
    at = ("contracts", i)
    out = []
    if c.tenant_funded_share <= 0:
        out.append(
            (
                (*at, "tenant_funded_share"),
                "a powered shell's tenant funds its fit-out: give its share of the site's AI "
                "capex (above 0)",
            )
        )
    if c.improvements_revert:
        out.append(
            (
                (*at, "improvements_revert"),
                "a powered shell's fit-out is each tenant's own: it cannot revert (false)",
            )
        )
    return out


def _cloud_terms(i: int, c: Any) -> list[tuple[PathKey, str]]:
    """A cloud contract's keys that contradict each other; a colocation lease that gives
    one only a cloud contract reads a value other than its default."""
    at = ("contracts", i)
    if c.kind != "cloud":
        out = [
            ((*at, key), f"{key} applies only to kind: cloud (this contract is {c.kind})")
            for key in CLOUD_ONLY
            if getattr(c, key) != type(c).model_fields[key].default
        ]
        if c.kind == "powered_shell":
            out += _shell_terms(i, c)
        return out
    out = []
    if c.gpu_capex_usd_mw is None:
        out.append(((*at, "gpu_capex_usd_mw"), "a cloud contract needs the GPUs' cost per MW IT"))
    if c.power_pass_through:
        out.append(
            (
                (*at, "power_pass_through"),
                "a cloud contract's revenue pays for the power: the landlord pays it (false)",
            )
        )
    if c.successor_price_usd_kw_month is None:
        out.append(
            (
                (*at, "successor_price_usd_kw_month"),
                "after a cloud contract the hall is leased as colocation: give that rent "
                "[USD/kW IT-month]",
            )
        )
    if c.tenant_funded_share > 0:
        out.append(
            ((*at, "tenant_funded_share"), "a cloud customer funds no hall: it buys capacity")
        )
    if c.term_years > c.gpu_life_years + 1e-9:
        out.append(
            (
                (*at, "term_years"),
                f"term {c.term_years:g} years outlasts the GPUs' useful life "
                f"(gpu_life_years {c.gpu_life_years:g})",
            )
        )
    if c.milestone_termination_prob > 0 and c.milestone_months is None:
        out.append(
            (
                (*at, "milestone_termination_prob"),
                "a termination chance needs its delivery milestone (milestone_months)",
            )
        )
    return out


def check_debt(s: Scenario) -> list[tuple[PathKey, str]]:
    """Interest-only months that leave an annuity nothing to amortise, in financing.debt or
    in a contract's own financing (its keys over financing.debt's)."""
    out = []
    terms = [(("financing", "debt"), s.financing.debt)]
    terms += [
        (("contracts", i, "financing"), s.debt_of(c))
        for i, c in enumerate(s.contracts)
        if c.financing is not None
    ]
    for where, debt in terms:
        months = max(1, round(12 * debt.term_years))
        if debt.amortization == "annuity" and debt.interest_only_months >= months:
            out.append(
                (
                    (*where, "interest_only_months"),
                    f"{debt.interest_only_months} interest-only months leave nothing to "
                    f"amortise in a {debt.term_years:g}-year term ({months} months); shorten "
                    "them, or set amortization: bullet",
                )
            )
    return out


def check_dates(s: Scenario) -> list[tuple[PathKey, str]]:
    out = []
    first, last = s.years[0], s.years[-1]
    span = f"{first}-{last}"
    for year in s.financing.capital_budget_usd:
        if not first <= year <= last:
            out.append(
                (
                    ("financing", "capital_budget_usd", year),
                    f"budget year {year} is outside the horizon {span}",
                )
            )
    for j, year in enumerate(s.build.decision_years):
        if not first <= year <= last:
            out.append(
                (
                    ("build", "decision_years", j),
                    f"decision year {year} is outside the horizon {span}",
                )
            )
        elif year in s.build.decision_years[:j]:
            out.append((("build", "decision_years", j), f"decision year {year} is listed twice"))
    for i, c in enumerate(s.contracts):
        if c.online_by is not None and not 0 <= year_month_index(s.start, c.online_by) < s.months:
            out.append(
                (("contracts", i, "online_by"), f"online_by {c.online_by} is outside the horizon")
            )
    return out


MIN_SPIKE_HOURS_SHARE = 1e-6  # spike multiples then stay below 1e6 (share x spike < mean)
MIN_CURVE_MEAN_RATIO = 1e-6  # normalised duration-curve multiples stay below 1e6


def check_power_markets(s: Scenario) -> list[tuple[PathKey, str]]:
    out = []
    for name, pm in s.power_markets.items():
        spike_usd = pm.spike_hours_share * pm.spike_price_usd_mwh
        if pm.duration_curve is None and pm.price_usd_mwh > 0 and spike_usd >= pm.price_usd_mwh:
            message = (
                f"spike hours alone (share {pm.spike_hours_share:g} x "
                f"${pm.spike_price_usd_mwh:g}/MWh) reach the mean price "
                f"${pm.price_usd_mwh:g}/MWh; lower the spike or give duration_curve"
            )
            out.append((("power_markets", name, "spike_price_usd_mwh"), message))
        if pm.duration_curve is not None:
            total = sum(share for share, _ in pm.duration_curve)
            if not math.isclose(total, 1.0, abs_tol=1e-6):
                out.append(
                    (
                        ("power_markets", name, "duration_curve"),
                        f"shares of hours sum to {total:g}, not 1",
                    )
                )
            mean = sum(share * mult for share, mult in pm.duration_curve)
            largest = max(abs(mult) for _, mult in pm.duration_curve)
            if total > 0 and mean <= 0:
                out.append(
                    (
                        ("power_markets", name, "duration_curve"),
                        "the curve's mean multiple must be positive",
                    )
                )
            elif total > 0 and mean < MIN_CURVE_MEAN_RATIO * largest:
                # normalising to mean 1 would blow the multiples up past float range
                out.append(
                    (
                        ("power_markets", name, "duration_curve"),
                        f"the curve's mean multiple {mean:g} is vanishingly small next to "
                        f"its largest multiple {largest:g} (at least {MIN_CURVE_MEAN_RATIO:g} "
                        "of it)",
                    )
                )
        if 0 < pm.spike_hours_share < MIN_SPIKE_HOURS_SHARE:
            out.append(
                (
                    ("power_markets", name, "spike_hours_share"),
                    f"must be 0 or at least {MIN_SPIKE_HOURS_SHARE:g} (about 30 seconds a "
                    f"year), got {pm.spike_hours_share:g}",
                )
            )
    if s.simulation.risk_sample is not None and s.simulation.risk_sample > s.simulation.scenarios:
        out.append(
            (
                ("simulation", "risk_sample"),
                f"risk_sample {s.simulation.risk_sample} exceeds "
                f"scenarios {s.simulation.scenarios}",
            )
        )
    return out


def check_objective(s: Scenario) -> list[tuple[PathKey, str]]:
    """A CVaR in the MILP (floor or weight) is computed over the risk sample: it needs one."""
    if s.simulation.risk_sample is None or s.simulation.risk_sample > 0:
        return []  # omitted: at least one
    out = []
    objective = s.objective
    if objective.cvar_floor_usd is not None:
        out.append(
            (
                ("objective", "cvar_floor_usd"),
                "a CVaR floor needs simulation.risk_sample of at least 1 (it is 0)",
            )
        )
    if objective.risk_aversion > 0:
        out.append(
            (
                ("objective", "risk_aversion"),
                "a CVaR weight above 0 needs simulation.risk_sample of at least 1 (it is 0)",
            )
        )
    return out


MAX_OPTIONS_PER_SITE = 5_000  # docs/model.md: ~50-200; each option costs a 64 KiB histogram


def site_option_count(s: Scenario, site_index: int) -> float:
    """Options the valuation would offer a site (siteopt.kernels.sites.site_options), counted
    without listing them: 1 (2 with a sale) + build years x AI levels per eligible
    contract (twice with a joint venture), and with ``max_tranches_per_site`` K, for k of 2
    to K, C(build years x contracts, k) x C(levels, k) phased options (k distinct pairs
    whose levels sum to at most the site's); at least as many (an offer that lapses,
    levels below a single-site contract's min_mw, tranches a cap or a rate excludes, are
    counted) [count]."""
    site, step = s.sites[site_index], s.build.ai_step_mw
    sale = site.sale
    first = 2.0 if sale is not None and sale.price_usd_mw is not None else 1.0
    twins = 2 if sale is not None and sale.jv_share is not None else 1
    contracts = s.contracts_for(site)
    if not contracts:
        return first
    levels = math.floor(min(site.ai.max_it_mw / step + 1e-9, 1e18))

    def most(c) -> float:
        return min(c.max_mw, site.ai.retrofit_mw) if c.retrofit_only else c.max_mw

    per_year = sum(min(levels, math.floor(min((most(c) + 1e-9) / step, 1e18))) for c in contracts)
    pairs = len(s.decision_years) * len(contracts)
    phased = sum(
        float(math.comb(pairs, k)) * float(math.comb(min(levels, 10**6), k))
        for k in range(2, s.build.max_tranches_per_site + 1)
    )
    return first + twins * len(s.decision_years) * per_year + phased


def check_option_count(s: Scenario) -> list[tuple[PathKey, str]]:
    """A tiny ``ai_step_mw`` would multiply a site's options beyond what memory holds."""
    counts = [site_option_count(s, i) for i in range(len(s.sites))]
    worst = max(range(len(counts)), key=counts.__getitem__)
    if counts[worst] <= MAX_OPTIONS_PER_SITE:
        return []
    site = s.sites[worst]
    tranches = s.build.max_tranches_per_site
    if tranches > 1:
        message = (
            f"max_tranches_per_site {tranches} gives site '{site.name}' up to "
            f"{counts[worst]:,.0f} options (its AI levels x {len(s.decision_years)} build "
            f"years x eligible contracts, and their combinations in up to {tranches} "
            f"tranches); at most {MAX_OPTIONS_PER_SITE:,} per site: raise build.ai_step_mw "
            "or lower build.max_tranches_per_site"
        )
        return [(("build", "max_tranches_per_site"), message)]
    message = (
        f"ai_step_mw {s.build.ai_step_mw:g} MW gives site '{site.name}' {counts[worst]:,.0f} "
        f"options (AI levels x {len(s.decision_years)} build years x eligible contracts); "
        f"at most {MAX_OPTIONS_PER_SITE:,} per site: raise build.ai_step_mw"
    )
    return [(("build", "ai_step_mw"), message)]


def max_stable_elasticity(lag_months: int) -> float:
    """The largest ``hashrate_elasticity`` for which the hashrate feedback is stable [1/yr].

    In logs the feedback is linear: a deviation x of ln H moves as
    x[t+1] = x[t] - (elasticity / 12) x[t - lag]. That recursion damps out if and only
    if elasticity / 12 < 2 cos(lag pi / (2 lag + 1)); above it the hashrate swings
    with growing amplitude until the numbers overflow.
    """
    return 12.0 * 2.0 * math.cos(lag_months * math.pi / (2 * lag_months + 1))


def check_hashrate_feedback(s: Scenario) -> list[tuple[PathKey, str]]:
    """An elasticity at or above :func:`max_stable_elasticity` for the lag is refused."""
    m = s.market
    limit = max_stable_elasticity(m.hashrate_lag_months)
    if m.hashrate_elasticity < limit:
        return []
    message = (
        f"hashrate_elasticity {m.hashrate_elasticity:g} with hashrate_lag_months "
        f"{m.hashrate_lag_months} makes the hashrate swing with growing amplitude; it must "
        f"be below {limit:.3g} for this lag"
    )
    return [(("market", "hashrate_elasticity"), message)]


Z_EXTREME = 7.0  # standard deviations: past the most extreme of 10 million scenario paths
LN_FLOAT_LIMIT = 700.0  # float64 under- and overflows near e^-745 and e^709


def hashprice_log_bounds(s: Scenario) -> tuple[float, float]:
    """Bounds on ln(hashprice [USD/PH/day]) over the horizon and every scenario.

    ln hashprice = ln(144 reward / 1000) + ln P - ln H; over t <= Y years ln P moves from
    the start price (or within the forward's range) by its drift when it points that way,
    plus Z_EXTREME standard deviations, and ln H likewise by ``hashrate_growth`` and at
    most a year's fleet efficiency gain (or power moving to AI) a year, plus the start's
    distance from break-even. The hashrate feedback (a stable elasticity, see
    check_hashrate_feedback) pulls the hashrate after the hashprice and so narrows the
    range in practice; it is left out.
    """
    m, years = s.market, float(s.horizon_years)
    f = m.forward
    btc_drift = (_btc_drift(m) - 0.5 * m.btc_volatility**2) * years
    btc_swing = Z_EXTREME * m.btc_volatility * math.sqrt(years)
    btc_low, btc_high = _log_range(f.btc_price_usd if f else None, m.btc_price_usd)
    if f is not None and f.btc_price_usd is not None:
        btc_drift = -0.5 * m.btc_volatility**2 * years if m.forward_is == "mean" else 0.0
    hash_low, hash_high = _log_range(f.hashrate_eh if f else None, m.hashrate_eh)
    hash_up = hash_down = m.hashrate_growth * years
    if f is None or f.hashrate_eh is None:
        gap = abs(math.log(_start_hashprice(m, s) / _breakeven(m, s)))
        hash_up += -math.log(1.0 - m.fleet_efficiency_gain) * years + gap
        hash_down -= -math.log(1.0 - m.hashrate_to_ai_per_year) * years + gap
    hash_swing = Z_EXTREME * m.hashrate_volatility * math.sqrt(years)
    fee_high = max([m.fee_share, *((f.fee_share or {}).values() if f else ())])
    fees_high = fee_high * math.exp(Z_EXTREME * m.fee_share_volatility)
    reward_low = m.subsidy_btc / 2.0 ** min(len(s.halvings), 1_000)
    reward_high = m.subsidy_btc * (1.0 + fees_high)
    base = math.log(144.0 / 1000.0)
    low = base + math.log(reward_low) + btc_low + min(btc_drift, 0.0) - btc_swing
    low -= hash_high + max(hash_up, 0.0) + hash_swing
    high = base + math.log(reward_high) + btc_high + max(btc_drift, 0.0) + btc_swing
    high -= hash_low + min(hash_down, 0.0) - hash_swing
    return low, high


def _btc_drift(m: Any) -> float:
    """``btc_drift``, or s^2/2 (a flat median) when omitted."""
    return 0.5 * m.btc_volatility**2 if m.btc_drift is None else m.btc_drift


def _log_range(curve: dict[str, float] | None, start: float) -> tuple[float, float]:
    """ln of the lowest and highest value of a forward (the start value without one)."""
    values = [v for v in (curve or {}).values() if v > 0] or [start]
    return math.log(min(values)), math.log(max(values))


def _start_hashprice(m: Any, s: Scenario) -> float:
    reward = m.subsidy_btc / 2.0 ** sum(1 for h in s.halvings if h <= s.start)
    return 144.0 * reward * (1.0 + m.fee_share) * m.btc_price_usd / (m.hashrate_eh * 1000.0)


def _breakeven(m: Any, s: Scenario) -> float:
    """The marginal fleet's break-even hashprice at the start [USD/PH/day]."""
    if m.breakeven_efficiency_j_th is None:
        return _start_hashprice(m, s)
    return 0.024 * m.breakeven_efficiency_j_th * m.breakeven_power_usd_mwh


def check_market_range(s: Scenario) -> list[tuple[PathKey, str]]:
    """Market paths whose hashprice can leave float64's range would give NaN NPVs."""
    low, high = hashprice_log_bounds(s)
    if -LN_FLOAT_LIMIT <= low and high <= LN_FLOAT_LIMIT:
        return []
    m = s.market
    message = (
        f"over {s.horizon_years} years these values can take the hashprice to e^{low:.0f}.."
        f"e^{high:.0f} USD/PH/day, beyond what a float holds (e^-{LN_FLOAT_LIMIT:.0f}.."
        f"e^{LN_FLOAT_LIMIT:.0f}): btc_drift {_btc_drift(m):g}, btc_volatility "
        f"{m.btc_volatility:g}, hashrate_growth {m.hashrate_growth:g}, hashrate_volatility "
        f"{m.hashrate_volatility:g}, subsidy_btc {m.subsidy_btc:g}; narrow them or shorten "
        "horizon_years"
    )
    return [(("market",), message)]


# ------------------------------------------------------------------ overrides


def apply_overrides(scenario: Scenario, overrides: Iterable[str]) -> Scenario:
    """The scenario with ``PATH=VALUE`` changes applied and everything validated again.

    The in-memory twin of ``load_scenario(path, overrides)``, for what-ifs and sweeps
    that change an already loaded scenario; problems are reported against ``--set``.

    Raises
    ------
    ScenarioError
    """
    overrides = list(overrides)
    if not overrides:
        return scenario
    source = SourceMap(scenario.model_dump(mode="json"))
    name = scenario.name
    problems = [p for p in (apply_override(source, spec, name) for spec in overrides) if p]
    if problems:
        raise ScenarioError(problems)
    return validate_data(source, name)


def apply_override(source: SourceMap, spec: str, filename: str) -> Problem | None:
    """Apply one ``PATH=VALUE`` to the loaded data; return a Problem when it cannot.

    VALUE is read with the safe YAML loader (a scalar or a ``[list]``), so a tag
    such as ``!!python/object`` is refused and nothing is ever evaluated. The data
    path that was set is recorded in ``source.overridden`` so that a later
    validation problem there is reported as coming from ``--set``.
    """
    if "=" not in spec:
        return Problem(filename, None, "--set", f"expected PATH=VALUE, got {spec!r}")
    dotted, _, text = spec.partition("=")
    dotted = dotted.strip()
    where = f"--set {_part(dotted)}"
    try:
        value = load_yaml_value(text)
    except YamlSourceError as exc:
        return Problem(filename, None, where, f"cannot read the value {text!r}: {exc.message}")
    if isinstance(value, dict | list) and not text.strip().startswith("["):
        return Problem(
            filename, None, where, f"the value must be a scalar or a [list], got {text!r}"
        )
    parts = dotted.split(".")
    if not all(parts):
        return Problem(filename, None, where, "empty path (expected e.g. market.btc_price_usd)")
    walk = _Walk(value)
    error = walk.set(source.data, Scenario, parts)
    if error:
        return Problem(filename, None, where, error)
    source.overridden.append(tuple(walk.data_path))
    return None


class _Walk:
    """Follows a dotted ``--set`` path through the data and the schema together.

    ``done`` holds the path parts matched so far (to spell full-path hints) and
    ``data_path`` the matching data keys (list items by index).
    """

    def __init__(self, value: Any) -> None:
        self.value = value
        self.done: list[str] = []
        self.data_path: list[str | int] = []

    def set(self, node: Any, model: type[BaseModel], parts: list[str]) -> str | None:
        head, rest = parts[0], parts[1:]
        if head not in model.model_fields:
            return self._no_such(head, sorted(model.model_fields))
        self.done.append(head)
        self.data_path.append(head)
        annotation = model.model_fields[head].annotation
        if not rest:
            node[head] = self.value
            return None
        inner, container = _inner_model(annotation), _container(annotation)
        if inner is None and container is None:
            return f"'{head}' is a value, not a section"
        if node.get(head) is None:  # absent or `key: null` in the file: start it empty
            node[head] = [] if container is list else {}
        child = node[head]
        if container is list:
            if not isinstance(child, list):
                return f"'{head}' in the file is not a list"
            return self._set_in_list(child, inner, rest)
        if not isinstance(child, dict):
            return f"'{head}' in the file is not a mapping"
        if container is dict:  # free-form keys: power_markets, capital_budget_usd
            return self._set_in_dict(child, inner, rest)
        assert inner is not None
        return self.set(child, inner, rest)

    def _set_in_dict(
        self, child: dict[Any, Any], inner: type[BaseModel] | None, parts: list[str]
    ) -> str | None:
        key: Any = int(parts[0]) if parts[0].isdigit() else parts[0]
        if len(parts) == 1:
            child[key] = self.value
            self.data_path.append(key)
            return None
        if inner is None or key not in child or not isinstance(child[key], dict):
            return self._no_such(parts[0], [str(k) for k in child])
        self.done.append(parts[0])
        self.data_path.append(key)
        return self.set(child[key], inner, parts[1:])

    def _set_in_list(
        self, items: list[Any], model: type[BaseModel] | None, parts: list[str]
    ) -> str | None:
        head, rest = parts[0], parts[1:]
        if model is None:
            return "list items of plain values cannot be addressed; set the whole [list]"
        names = [str(item["name"]) for item in items if isinstance(item, dict) and "name" in item]
        index = next(
            (i for i, it in enumerate(items) if isinstance(it, dict) and it.get("name") == head),
            None,
        )
        if index is None:
            return self._no_such(head, names, what="item named")
        if not rest:
            return "a path must name a field of the item, e.g. NAME.price_usd_kw_month"
        self.done.append(head)
        self.data_path.append(index)
        return self.set(items[index], model, rest)

    def _no_such(self, head: str, known: list[str], what: str = "key") -> str:
        prefix = ".".join(self.done)
        full = [f"{prefix}.{k}" if prefix else k for k in known]
        return _no_such_key(head, known, full, what)


def _container(annotation: Any) -> type | None:
    """``list`` for tuple/list fields, ``dict`` for mappings, else None (Optional unwrapped)."""
    for candidate in (annotation, *get_args(annotation)):
        origin = get_origin(candidate)
        if origin in (tuple, list):
            return list
        if origin is dict:
            return dict
    return None


def _no_such_key(head: str, known: list[str], full: list[str], what: str = "key") -> str:
    """``unknown key 'x'; did you mean 'market.y'?`` naming the nearest valid full path."""
    close = difflib.get_close_matches(head, known, n=1, cutoff=0.5)
    if close:
        hint = f"; did you mean {_quoted(full[known.index(close[0])])}?"
    elif known:
        # the nearest first, so the one meant is on the list even where many keys are valid
        order = sorted(
            range(len(known)),
            key=lambda k: -difflib.SequenceMatcher(None, head, known[k]).ratio(),
        )
        more = ", ..." if len(full) > 12 else ""
        hint = f"; valid here: {', '.join(_part(full[k]) for k in order[:12])}{more}"
    else:
        hint = ""
    return f"unknown {what} {_quoted(head)}{hint}"


def with_simulation(
    scenario: Scenario, scenarios: int | None, seed: int | None, deterministic: bool = False
) -> Scenario:
    """The scenario with the run settings ``--scenarios``, ``--seed`` and
    ``--deterministic`` applied (None and False keep the file's); the risk sample is capped
    at the scenario count, and the central case counts one scenario."""
    sim = scenario.simulation
    central = deterministic or sim.deterministic
    n = 1 if central else scenarios if scenarios is not None else sim.scenarios
    update = {
        "scenarios": n,
        "seed": sim.seed if seed is None else seed,
        # omitted stays omitted (risk_sample_of resolves it where it is used)
        "risk_sample": None if sim.risk_sample is None else min(sim.risk_sample, n),
        "deterministic": central,
    }
    return scenario.model_copy(update={"simulation": sim.model_copy(update=update)})


MIN_TAIL_SCENARIOS = 250  # the CVaR's tail in the MILP holds at least this many scenarios
MAX_AUTO_RISK_SAMPLE = 10_000
RISK_MATRIX_BYTES = 256 * 2**20  # the risk sample's (options, K) float64 matrix, at most


def risk_sample_of(s: Scenario) -> int:
    """The run's risk sample [count]: ``simulation.risk_sample`` capped at the scenarios, or
    when omitted :func:`auto_risk_sample`."""
    sim = s.simulation
    if sim.risk_sample is None:
        return auto_risk_sample(s, sim.scenarios)
    return min(sim.risk_sample, sim.scenarios)


def auto_risk_sample(s: Scenario, scenarios: int) -> int:
    """The risk sample when ``simulation.risk_sample`` is omitted [count].

    Enough scenarios that the CVaR's tail holds MIN_TAIL_SCENARIOS of them, ceil(250 /
    (1 - cvar_alpha)): 5,000 at 0.95, where 256 left 12.8 (benchmarks/RESULTS.md, issue 27);
    at most the run's scenarios, MAX_AUTO_RISK_SAMPLE, and what keeps the (options, K)
    matrix within RISK_MATRIX_BYTES.
    """
    tail = math.ceil(MIN_TAIL_SCENARIOS / (1.0 - s.objective.cvar_alpha) - 1e-9)
    options = sum(site_option_count(s, i) for i in range(len(s.sites)))
    by_memory = int(RISK_MATRIX_BYTES // (8 * max(options, 1.0)))
    return max(1, min(scenarios, tail, MAX_AUTO_RISK_SAMPLE, by_memory))
