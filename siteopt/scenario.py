"""Load and validate scenario files; every problem names the file, the line and the field.

>>> scenario = load_scenario(Path("scenarios/texas.yaml"))          # doctest: +SKIP
>>> scenario = load_scenario(path, overrides=["market.btc_price_usd=60000"])  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from .schema import Scenario, year_month_index
from .yamlsource import PathKey, SourceMap, YamlSourceError, load_yaml_mapping

__all__ = ["Problem", "Scenario", "ScenarioError", "load_scenario", "validate_data"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario file."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ScenarioError(Exception):
    """A scenario that cannot be used; ``problems`` lists every reason."""

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
    path = Path(path)
    try:
        source = load_yaml_mapping(path)
    except YamlSourceError as exc:
        raise ScenarioError([Problem(str(path), exc.line, "", exc.message)]) from None
    problems = [apply_override(source, spec, str(path)) for spec in overrides]
    problems = [p for p in problems if p is not None]
    if problems:
        raise ScenarioError(problems)
    return validate_data(source, str(path))


def validate_data(source: SourceMap, filename: str) -> Scenario:
    """Validate loaded data: field checks first, then cross-field checks."""
    try:
        scenario = Scenario.model_validate(source.data)
    except ValidationError as exc:
        raise ScenarioError(_field_problems(exc, source, filename)) from None
    cross = [
        Problem(filename, source.line_of(loc), _display_path(loc, source.data), msg)
        for loc, msg in cross_field_problems(scenario)
    ]
    if cross:
        raise ScenarioError(cross)
    return scenario


# ---------------------------------------------------------------- field errors


def _field_problems(exc: ValidationError, source: SourceMap, filename: str) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = _data_path(err["loc"], source.data)
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = _unknown_key_message(loc, err["loc"])
        elif err["type"] == "missing":
            message = "required field is missing"
        elif err["type"] == "string_pattern_mismatch" and "\\d{4}" in str(err.get("ctx", "")):
            message = f"expected a month as YYYY-MM, got {err['input']!r}"
        elif "input" in err and err["type"] not in ("model_type", "dict_type", "list_type"):
            message = f"{message} (got {_short(err['input'])})"
        problems.append(Problem(filename, source.line_of(loc), _display_path(loc, source.data), message))
    return problems


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
    """``sites.pecos-1.ai.pue``: list items by name when they have one."""
    parts: list[str] = []
    node = data
    for part in loc:
        if isinstance(node, list) and isinstance(part, int):
            item = node[part] if 0 <= part < len(node) else None
            name = item.get("name") if isinstance(item, dict) else None
            parts.append(str(name) if isinstance(name, str) and name else f"[{part}]")
            node = item
        else:
            parts.append(str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return ".".join(parts)


def _unknown_key_message(loc: PathKey, raw_loc: tuple[Any, ...]) -> str:
    key = str(loc[-1]) if loc else "?"
    model = _model_at(Scenario, [p for p in raw_loc[:-1] if not isinstance(p, int)])
    known = sorted(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown key '{key}'{hint}"


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
    checks = (check_names, check_sites, check_contracts, check_dates, check_power_markets)
    return [problem for check in checks for problem in check(s)]


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
        if site.market not in s.power_markets:
            known = ", ".join(sorted(s.power_markets))
            out.append((("sites", i, "market"), f"market '{site.market}' is not in power_markets ({known})"))
        if site.mining.mw > site.interconnect_mw:
            out.append(
                (
                    ("sites", i, "mining", "mw"),
                    f"mining load {site.mining.mw:g} MW exceeds the interconnect of {site.interconnect_mw:g} MW",
                )
            )
        if site.power.ppa_mw > 0 and site.power.ppa_price_usd_mwh is None:
            out.append((("sites", i, "power", "ppa_price_usd_mwh"), "required when ppa_mw is above 0"))
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
    return out


def check_contracts(s: Scenario) -> list[tuple[PathKey, str]]:
    out = []
    names = {site.name for site in s.sites}
    for i, c in enumerate(s.contracts):
        if c.min_mw > c.max_mw:
            out.append((("contracts", i, "min_mw"), f"min_mw {c.min_mw:g} exceeds max_mw {c.max_mw:g}"))
        for j, site in enumerate(c.eligible_sites or ()):
            if site not in names:
                out.append((("contracts", i, "eligible_sites", j), f"site '{site}' does not exist"))
        if c.ramp and sum(p.months for p in c.ramp) > 12 * c.term_years:
            out.append((("contracts", i, "ramp"), "ramp phases last longer than the term"))
    return out


def check_dates(s: Scenario) -> list[tuple[PathKey, str]]:
    out = []
    first, last = s.years[0], s.years[-1]
    span = f"{first}-{last}"
    for year in s.financing.capital_budget_usd:
        if not first <= year <= last:
            out.append((("financing", "capital_budget_usd", year), f"budget year {year} is outside the horizon {span}"))
    for j, year in enumerate(s.build.decision_years):
        if not first <= year <= last:
            out.append((("build", "decision_years", j), f"decision year {year} is outside the horizon {span}"))
    for i, c in enumerate(s.contracts):
        if c.online_by is not None and not 0 <= year_month_index(s.start, c.online_by) < s.months:
            out.append((("contracts", i, "online_by"), f"online_by {c.online_by} is outside the horizon"))
    return out


def check_power_markets(s: Scenario) -> list[tuple[PathKey, str]]:
    out = []
    for name, pm in s.power_markets.items():
        if pm.duration_curve is not None:
            total = sum(share for share, _ in pm.duration_curve)
            if not math.isclose(total, 1.0, abs_tol=1e-6):
                out.append((("power_markets", name, "duration_curve"), f"shares of hours sum to {total:g}, not 1"))
            mean = sum(share * mult for share, mult in pm.duration_curve)
            if total > 0 and mean <= 0:
                out.append((("power_markets", name, "duration_curve"), "the curve's mean multiple must be positive"))
    if s.simulation.risk_sample > s.simulation.scenarios:
        out.append(
            (
                ("simulation", "risk_sample"),
                f"risk_sample {s.simulation.risk_sample} exceeds scenarios {s.simulation.scenarios}",
            )
        )
    return out


# ------------------------------------------------------------------ overrides


def apply_override(source: SourceMap, spec: str, filename: str) -> Problem | None:
    """Apply one ``PATH=VALUE`` to the loaded data; return a Problem when it cannot."""
    if "=" not in spec:
        return Problem(filename, None, "--set", f"expected PATH=VALUE, got {spec!r}")
    dotted, _, text = spec.partition("=")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        return Problem(filename, None, dotted, f"cannot read the value {text!r}")
    if isinstance(value, dict | list) and not text.strip().startswith("["):
        return Problem(filename, None, dotted, f"the value must be a scalar or a [list], got {text!r}")
    parts = [p for p in dotted.strip().split(".")]
    if not parts or not all(parts):
        return Problem(filename, None, dotted, "empty path")
    error = _set_path(source.data, Scenario, parts, value)
    return Problem(filename, None, dotted, error) if error else None


def _set_path(node: Any, model: type[BaseModel], parts: list[str], value: Any) -> str | None:
    head, rest = parts[0], parts[1:]
    if head not in model.model_fields:
        return _no_such_key(head, sorted(model.model_fields))
    annotation = model.model_fields[head].annotation
    if not rest:
        node[head] = value
        return None
    inner, container = _inner_model(annotation), _container(annotation)
    if container is list:
        child = node.setdefault(head, [])
        if not isinstance(child, list):
            return f"'{head}' in the file is not a list"
        return _set_in_list(child, inner, rest, value)
    child = node.setdefault(head, {})
    if not isinstance(child, dict):
        return f"'{head}' in the file is not a mapping"
    if container is dict:  # free-form keys: power_markets, capital_budget_usd
        key: Any = int(rest[0]) if rest[0].isdigit() else rest[0]
        if len(rest) == 1:
            child[key] = value
            return None
        if inner is None or key not in child or not isinstance(child[key], dict):
            return _no_such_key(rest[0], [str(k) for k in child])
        return _set_path(child[key], inner, rest[1:], value)
    if inner is None:
        return f"'{head}' is a value, not a section"
    return _set_path(child, inner, rest, value)


def _set_in_list(items: list[Any], model: type[BaseModel] | None, parts: list[str], value: Any) -> str | None:
    head, rest = parts[0], parts[1:]
    if model is None:
        return "list items of plain values cannot be addressed; set the whole [list]"
    names = [item.get("name") for item in items if isinstance(item, dict)]
    match = [item for item in items if isinstance(item, dict) and item.get("name") == head]
    if not match:
        return _no_such_key(head, [str(n) for n in names if n is not None], what="item named")
    if not rest:
        return "a path must name a field of the item, e.g. NAME.price_usd_kw_month"
    return _set_path(match[0], model, rest, value)


def _container(annotation: Any) -> type | None:
    """``list`` for tuple/list fields, ``dict`` for mappings, else None (Optional unwrapped)."""
    for candidate in (annotation, *get_args(annotation)):
        origin = get_origin(candidate)
        if origin in (tuple, list):
            return list
        if origin is dict:
            return dict
    return None


def _no_such_key(head: str, known: list[str], what: str = "key") -> str:
    close = difflib.get_close_matches(head, known, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else (f"; known: {', '.join(known[:12])}" if known else "")
    return f"unknown {what} '{head}'{hint}"
