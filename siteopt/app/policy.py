"""``siteopt evaluate --policy``: value a staged policy (a ``solve --staged`` policy.csv, or
one a user edited) on this run's draws, and name the constraints it breaks in any state.

The file says, per site and market state, which option the site builds there: the
``now`` state for the first decision year, then a state per hashprice bin at each later
decision year (``A``, ``B``, ... at the first later year; ``A.B`` is state B below A).
Each scenario of this run is put in its states by the file's bins (the hashprice seen in
the December before each later decision year), so it lives the static plan of its path;
the policy's E[NPV] and CVaR are over those per-scenario values, and every path's plan is
checked against every constraint of the MILP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from siteopt.app.evaluate import read_plan
from siteopt.app.pipeline import Progress, SolveSettings, value
from siteopt.app.plan import plan_problem
from siteopt.app.staged import market_states, picked_by_state
from siteopt.app.validation import valued as valued_on
from siteopt.app.valuation import plan_npv_samples
from siteopt.kernels.sites import SiteOption
from siteopt.kernels.states import StateTree
from siteopt.model.errors import InputError
from siteopt.model.schema import Scenario
from siteopt.optimizer.data import MONEY_UNIT_USD, plan_data
from siteopt.optimizer.options import KEEP_HASHING
from siteopt.optimizer.results import cvar_floor_broken, violation_details

POLICY_REQUIRED = (
    "site",
    "decision_year",
    "state",
    "hashprice_low_usd_ph_day",
    "hashprice_high_usd_ph_day",
    "option",
)


POLICY_OPTIONAL = ("ai_rent_index_low", "ai_rent_index_high")  # where states split on it


def read_policy(path: Path) -> pd.DataFrame:
    """policy.csv as strings, with the line of each row; bad files raise InputError."""
    return read_plan(path, POLICY_REQUIRED, "--policy", POLICY_OPTIONAL)


@dataclass(frozen=True)
class ParsedPolicy:
    """A policy file read against a scenario: its state tree (bins only) and, per state
    (node) and site, the option built there (None: nothing is built there)."""

    tree: StateTree
    names: list[str]
    builds: dict[int, dict[int, SiteOption]]
    leaf_plans: list[list[SiteOption]]


def parse_policy(
    frame: pd.DataFrame,
    scenario_options: list[list[SiteOption]],
    site_names: list[str],
    decision_years: tuple[int, ...],
    where: str,
) -> ParsedPolicy:
    """Check the file's rows and build the tree and the plan of every path.

    Raises
    ------
    InputError
        Naming the file and line: an unknown site, state or option; a state without its
        parent; bins that do not cover the line; a site missing from a state; a site that
        converts twice on one path; a decision year that is not the scenario's.
    """

    def fail(line: Any, message: str) -> InputError:
        return InputError(f"{where}:{line}: {message}")

    years = tuple(sorted(decision_years))
    site_index = {name: i for i, name in enumerate(site_names)}
    labels = [{o.label: o for o in opts} for opts in scenario_options]
    states: dict[str, dict[str, Any]] = {}
    for r in frame.itertuples(index=False):
        if r.site not in site_index:
            raise fail(r.line, f"unknown site {r.site!r} (sites: {', '.join(site_names)})")
        try:
            year = int(r.decision_year)
        except ValueError:
            raise fail(r.line, f"decision_year {r.decision_year!r} is not a year") from None
        ai_bin = (r.ai_rent_index_low, r.ai_rent_index_high)  # blank where not in the file
        state = states.setdefault(
            r.state,
            {
                "year": year,
                "low": r.hashprice_low_usd_ph_day,
                "high": r.hashprice_high_usd_ph_day,
                "ai": ai_bin,
                "line": r.line,
                "sites": {},
            },
        )
        if (state["year"], state["low"], state["high"], state["ai"]) != (
            year,
            r.hashprice_low_usd_ph_day,
            r.hashprice_high_usd_ph_day,
            ai_bin,
        ):
            raise fail(r.line, f"state {r.state} has another year or bin on line {state['line']}")
        s = site_index[r.site]
        if s in state["sites"]:
            raise fail(r.line, f"site {r.site} listed twice in state {r.state}")
        option = r.option
        if option in ("", KEEP_HASHING):
            state["sites"][s] = None if option == "" else KEEP_HASHING
            continue
        if option not in labels[s]:
            raise fail(r.line, f"site {r.site} has no option {option!r}")
        chosen = labels[s][option]
        if chosen.build_year != year:
            raise fail(r.line, f"option {option} builds in {chosen.build_year}, not {year}")
        state["sites"][s] = chosen
    if "now" not in states:
        raise InputError(f"{where}: no 'now' state (the first decision year's decisions)")
    # the tree: parents by name, children ordered by their bins
    order = sorted(states, key=lambda n: (n.count(".") if n != "now" else -1, n))
    node_of = {"now": 0}
    parent, stage, low, high = [-1], [0], [-math.inf], [math.inf]
    ai_low, ai_high = [-math.inf], [math.inf]
    for name in order[1:]:
        up = name.rpartition(".")[0] or "now"
        if up not in node_of:
            raise fail(states[name]["line"], f"state {name} has no parent state {up}")
        j = stage[node_of[up]] + 1
        if j >= len(years) or states[name]["year"] != years[j]:
            expected = years[j] if j < len(years) else "none"
            raise fail(
                states[name]["line"],
                f"state {name} is decided in {states[name]['year']}; its stage decides {expected}",
            )
        node_of[name] = len(parent)
        parent.append(node_of[up])
        stage.append(j)
        low.append(_bound(states[name]["low"], -math.inf, fail, states[name]["line"]))
        high.append(_bound(states[name]["high"], math.inf, fail, states[name]["line"]))
        ai_low.append(_bound(states[name]["ai"][0], -math.inf, fail, states[name]["line"]))
        ai_high.append(_bound(states[name]["ai"][1], math.inf, fail, states[name]["line"]))
    if states["now"]["year"] != years[0]:
        raise fail(states["now"]["line"], f"'now' decides {years[0]}, not {states['now']['year']}")
    parent_a, stage_a = np.array(parent), np.array(stage)
    low_a, high_a = np.array(low), np.array(high)
    ai_low_a, ai_high_a = np.array(ai_low), np.array(ai_high)
    for v in range(len(parent)):
        kids = np.flatnonzero(parent_a == v).tolist()
        if not kids:
            continue
        name = order[v] if v else "now"
        bins = sorted({(low_a[k], high_a[k]) for k in kids})
        if not _covers(bins):
            raise InputError(
                f"{where}: the states below {name} do not cover every hashprice "
                "once (bins must run from blank to blank without gaps)"
            )
        for lo, hi in bins:  # within a hashprice bin, the AI rent index bins
            inner = sorted(
                (ai_low_a[k], ai_high_a[k]) for k in kids if (low_a[k], high_a[k]) == (lo, hi)
            )
            if not _covers(inner):
                raise InputError(
                    f"{where}: the states below {name} with hashprice bin {lo:g}-{hi:g} do "
                    "not cover every AI rent index once (bins from blank to blank)"
                )
    last = len(years) - 1
    leaves = np.flatnonzero(stage_a == last) if last > 0 else np.array([0])
    if last > 0 and any(not np.any(parent_a == v) for v in range(len(parent)) if stage_a[v] < last):
        raise InputError(f"{where}: every state before {years[-1]} needs states below it")
    names_by_node = {v: n for n, v in node_of.items()}
    builds: dict[int, dict[int, SiteOption]] = {}
    for name, v in node_of.items():
        sites = states[name]["sites"]
        missing = [site_names[s] for s in range(len(site_names)) if s not in sites]
        if missing:
            raise fail(states[name]["line"], f"state {name} lacks site(s) {', '.join(missing)}")
        builds[v] = {s: o for s, o in sites.items() if isinstance(o, SiteOption)}
    splits_ai = bool(np.isfinite(np.r_[ai_low_a, ai_high_a]).any())  # states split on it
    tree = StateTree(
        years=years[1:],
        months=(),
        clusters=0,
        parent=parent_a,
        stage=stage_a,
        low=low_a,
        high=high_a,
        count=np.zeros(len(parent), dtype=np.int64),
        leaf=np.zeros(0, dtype=np.int64),
        leaves=leaves,
        described={},
        ai_low=ai_low_a if splits_ai else None,
        ai_high=ai_high_a if splits_ai else None,
    )
    leaf_plans = []
    for leaf in leaves.tolist():
        plan = [opts[0] for opts in scenario_options]  # keep hashing
        built: dict[int, str] = {}
        for v in [0, *tree.path(leaf)]:
            for s, option in builds[v].items():
                if s in built:
                    raise InputError(
                        f"{where}: site {site_names[s]} converts in state {built[s]} and again "
                        f"in state {names_by_node[v]} on one path"
                    )
                built[s] = names_by_node[v]
                plan[s] = option
        leaf_plans.append(plan)
    return ParsedPolicy(tree, [names_by_node[v] for v in range(len(parent))], builds, leaf_plans)


def _covers(bins: list[tuple[float, float]]) -> bool:
    """Whether sorted bins [low, high) run from -inf to inf without gaps or overlaps."""
    if bins[0][0] != -math.inf or bins[-1][1] != math.inf:
        return False
    return all(a[1] == b[0] for a, b in zip(bins[:-1], bins[1:], strict=True))


def _bound(text: str, blank: float, fail, line) -> float:
    if text == "":
        return blank
    try:
        return float(text)
    except ValueError:
        raise fail(line, f"hashprice bound {text!r} is not a number") from None


@dataclass(frozen=True)
class PolicyEvaluation:
    """A policy valued on this run's draws."""

    scenario: Scenario
    summary: dict[str, Any]
    policy: pd.DataFrame  # the file's rows with this run's state shares
    violations: tuple[str, ...]


def evaluate_policy(
    scenario: Scenario,
    path: Path,
    settings: SolveSettings,
    progress: Progress | None = None,
) -> PolicyEvaluation:
    """Value the policy in ``path`` on ``scenario``'s draws and check it in every state.

    Raises
    ------
    InputError
        The file is not a policy this scenario can take (see :func:`parse_policy`).
    """
    frame = read_policy(path)  # a bad file fails before any valuation
    backend, valuation = value(scenario, settings, progress)
    portfolio = valuation.portfolio
    parsed = parse_policy(
        frame,
        valuation.site_options,
        [s.name for s in portfolio.sites],
        portfolio.decision_years,
        str(path),
    )
    tree = parsed.tree
    groups = tree.assign(market_states(portfolio))
    plans = {f"state {g}": plan for g, plan in enumerate(parsed.leaf_plans)}
    samples = plan_npv_samples(scenario, plans, valuation, backend=backend)
    picked = picked_by_state(samples, groups)
    alpha = scenario.objective.cvar_alpha
    valued = valued_on(picked, alpha)
    problem = plan_problem(scenario)
    data = plan_data(valuation.options, problem)
    flat = [o for opts in valuation.site_options for o in opts]
    row_of = {o: i for i, o in enumerate(flat)}
    broken: list[str] = []
    share = np.zeros(tree.nodes)
    count = np.bincount(groups, minlength=len(parsed.leaf_plans)) / max(len(groups), 1)
    per_path = replace(problem, cvar_floor_usd=None)  # the floor is the policy's, below
    for g, leaf in enumerate(tree.leaves.tolist()):
        for v in [0, *tree.path(leaf)]:
            share[v] += count[g]
        rows = np.array([row_of[o] for o in parsed.leaf_plans[g]])
        for name, what in violation_details(data, per_path, rows):
            broken.append(f"in state {parsed.names[leaf]}: {name}: {what}")
    n = scenario.simulation.scenarios
    floor = cvar_floor_broken(picked / MONEY_UNIT_USD, problem, f"over all {n:,} scenarios")
    if floor is not None:
        broken.append(f"{floor[0]}: {floor[1]} (each scenario on its state's plan)")
    out = frame.drop(columns=["line"]).copy()
    out["probability"] = [share[parsed.names.index(n)] for n in frame["state"]]
    summary = {
        "scenario": scenario.name,
        "evaluated_policy": str(path),
        "scenarios": scenario.simulation.scenarios,
        "seed": scenario.simulation.seed,
        **valued.as_dict(),
        "cvar_alpha": alpha,
        "p5_npv_usd": float(np.quantile(picked, 0.05)),
        "p50_npv_usd": float(np.quantile(picked, 0.50)),
        "p95_npv_usd": float(np.quantile(picked, 0.95)),
        "states": [{"state": parsed.names[v], "share": float(share[v])} for v in range(tree.nodes)],
        "violations_detail": broken,
    }
    return PolicyEvaluation(scenario, summary, out, tuple(broken))


__all__ = ["PolicyEvaluation", "evaluate_policy", "parse_policy", "read_policy"]
