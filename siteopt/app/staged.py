"""Plans that wait and see (``solve --staged``): the first decision year's builds signed
now, each later decision year's builds decided per market state, and what that
flexibility is worth against the static plan on the same draws.

The states are a tree of hashprice bins at each later decision year
(siteopt.kernels.states); the valuation reduces every option's NPV by state in its first
pass; the staged MILP (siteopt.optimizer.staged) picks a policy. The policy is then valued
on every scenario (in sample: the draws it was chosen on) and on fresh draws (a different
seed, each scenario put in its state by the same bins), because states chosen and
optimised on the same scenarios overstate what flexibility is worth.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from siteopt.app.params import kernel_inputs
from siteopt.app.validation import DrawValue, fresh_seed, hold_floor, valued
from siteopt.app.valuation import ValuationResult, plan_npv_samples
from siteopt.kernels.backend import Backend
from siteopt.kernels.market import month_label
from siteopt.kernels.params import Portfolio
from siteopt.kernels.reduce import Grouping
from siteopt.kernels.sites import SiteOption
from siteopt.kernels.states import (
    StateTree,
    bin_words,
    market_states,
    stage_label,
    state_tree,
)
from siteopt.kernels.tranches import PLUS
from siteopt.model.errors import InputError
from siteopt.model.load import with_simulation
from siteopt.model.schema import Scenario
from siteopt.optimizer.engine import SolverSettings
from siteopt.optimizer.options import KEEP_HASHING, PlanProblem
from siteopt.optimizer.results import portfolio_cvar
from siteopt.optimizer.staged import StagedPlan, StageTree, solve_staged

Progress = Callable[[str, int, int], None]

DEFAULT_CLUSTERS = 4
MAX_CLUSTERS = 16
MAX_STATES = 256  # states at the last decision year (each a copy of the constraint groups)
POLICY_COLUMNS = (
    "site",
    "decision_year",
    "state",
    "seen_month",
    "rule",
    "probability",
    "hashprice_low_usd_ph_day",
    "hashprice_high_usd_ph_day",
    "ai_rent_index_low",
    "ai_rent_index_high",
    "ai_rent_index_p50",
    "hashprice_p50_usd_ph_day",
    "btc_p50_usd",
    "hashrate_p50_eh",
    "power_p50_usd_mwh",
    "action",
    "ai_it_mw",
    "contract",
    "option",
)


@dataclass(frozen=True)
class StagedStates:
    """The market-state tree of a run and the grouping the valuation reduces by."""

    clusters: int
    tree: StateTree
    grouping: Grouping


def staged_states(scenario: Scenario, clusters: int) -> StagedStates:
    """The state tree of ``scenario``'s draws (its seed and scenario count).

    Raises
    ------
    InputError
        ``clusters`` outside 1..MAX_CLUSTERS.
    """
    if not 1 <= clusters <= MAX_CLUSTERS:
        raise InputError(f"--clusters must be 1-{MAX_CLUSTERS}; got {clusters}")
    later = len(scenario.decision_years) - 1
    if clusters**later > MAX_STATES:
        raise InputError(
            f"--clusters {clusters} with {later} later decision years gives up to "
            f"{clusters**later:,} market states in {max(scenario.decision_years)} (at most "
            f"{MAX_STATES}); use fewer clusters, e.g. --clusters "
            f"{int(MAX_STATES ** (1 / later) + 1e-9)}"
        )
    portfolio = kernel_inputs(scenario)
    tree = state_tree(market_states(portfolio), clusters)
    return StagedStates(clusters, tree, Grouping(tree.leaf, len(tree.leaves), tree.key()))


@dataclass(frozen=True)
class StaticPlan:
    """The static plan of the same solve: its table row per site and its portfolio NPV
    on every scenario [USD]."""

    rows: tuple[int, ...]
    samples: np.ndarray


@dataclass(frozen=True)
class StagedOutcome:
    """What ``solve --staged`` adds to a solve.

    Attributes
    ----------
    policy : DataFrame
        policy.csv: POLICY_COLUMNS, one row per site and decision state.
    first_stage : tuple of dict
        Per site, what the board signs now: ``site``, ``action``, ``ai_it_mw``,
        ``contract``, ``option``.
    in_sample, out_of_sample : dict of str to DrawValue
        ``staged`` and ``static`` on the draws the policy was chosen on, and on fresh
        draws (seed ``fresh_seed``).
    differs : int
        States (nodes after now) where the policy builds something the static plan does
        not, or not what it builds.
    """

    clusters: int
    tree: StateTree
    plan: StagedPlan
    policy: pd.DataFrame
    first_stage: tuple[dict[str, Any], ...]
    in_sample: dict[str, DrawValue]
    out_of_sample: dict[str, DrawValue]
    fresh_seed: int
    differs: int
    portfolio: Portfolio = field(repr=False)
    # per sample and policy, the CVaR at each later decision stage (stage_cvars)
    cvar_by_stage: dict[str, dict[str, tuple[float, ...]]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # e.g. the CVaR floor raised on the sample to hold over all
    timings_s: dict[str, float] = field(default_factory=dict)

    def value_of_waiting(self, sample: str) -> dict[str, float]:
        """Staged minus static, E[NPV] and CVaR, on ``in_sample`` or ``out_of_sample`` [USD]."""
        values = getattr(self, sample)
        return {
            key: values["staged"].as_dict()[key] - values["static"].as_dict()[key]
            for key in ("expected_npv_usd", "cvar_usd")
        }


def stage_tree(tree: StateTree, valuation: ValuationResult) -> StageTree:
    """The optimizer's view of ``tree`` with the valuation's conditional means."""
    grouped = valuation.kernel.group_npv_usd if valuation.kernel is not None else None
    if grouped is None:
        raise ValueError("the valuation was run without the market states (staged_states)")
    risk_n = valuation.options.risk_npv_usd.shape[1]
    return StageTree(
        parent=tree.parent,
        stage=tree.stage,
        probability=tree.probability,
        leaves=tree.leaves,
        stage_years=tuple(sorted(valuation.portfolio.decision_years)),
        group_npv_usd=grouped,
        risk_group=tree.leaf[:risk_n],
    )


def staged_policy(
    scenario: Scenario,
    valuation: ValuationResult,
    problem: PlanProblem,
    static: StaticPlan,
    staged: StagedStates,
    backend: Backend,
    solver: SolverSettings,
    progress: Progress | None = None,
    executor: Any = None,
) -> StagedOutcome:
    """The staged policy of a solve whose valuation reduced by ``staged``'s grouping,
    valued in sample and on fresh draws beside the ``static`` plan; ``executor``: where the
    chunks of those valuations run (None: here)."""
    t0 = time.perf_counter()
    portfolio, tree = valuation.portfolio, staged.tree
    if progress is not None:
        progress("staged", 0, 1)
    stages = stage_tree(tree, valuation)

    def solve(p: PlanProblem) -> StagedPlan:
        return solve_staged(
            valuation.options,
            p,
            stages,
            replace(solver, presolve=True),  # the per-state budget rows repeat: presolve merges
            np.asarray(static.rows, dtype=np.int64),
        )

    plan = solve(problem)
    if progress is not None:
        progress("staged", 1, 1)
    if plan.status == "infeasible" or plan.leaf_rows.size == 0:
        raise RuntimeError(
            f"the staged MILP found no policy ({plan.status}) although the static plan is one"
        )
    t1 = time.perf_counter()
    flat = [o for opts in valuation.site_options for o in opts]
    static_plan = [flat[i] for i in static.rows]
    alpha = scenario.objective.cvar_alpha

    def inside_of(policy: StagedPlan) -> tuple[dict[str, list[SiteOption]], np.ndarray]:
        """Each state's plan, and the policy's NPV on every scenario of the run."""
        plans = {f"state {g}": [flat[i] for i in rows] for g, rows in enumerate(policy.leaf_rows)}
        npv = plan_npv_samples(scenario, plans, valuation, backend=backend, executor=executor)
        return plans, npv

    leaf_plans, inside = inside_of(plan)
    plan, leaf_plans, inside, notes = _floor_over_all(
        problem, plan, leaf_plans, inside, solve, inside_of, tree, alpha
    )
    in_sample = {
        "staged": valued(picked_by_state(inside, tree.leaf), alpha),
        "static": valued(static.samples, alpha),
    }
    fresh = with_simulation(scenario, None, fresh_seed(scenario))
    fresh_portfolio = kernel_inputs(fresh)
    groups = tree.assign(market_states(fresh_portfolio))
    fresh_progress = None if progress is None else (lambda _, d, t: progress("fresh", d, t))
    outside = plan_npv_samples(
        fresh,
        {**leaf_plans, "static": static_plan},
        backend=backend,
        progress=fresh_progress,
        executor=executor,
    )
    static_out = outside.pop("static")
    staged_out = picked_by_state(outside, groups)
    out_of_sample = {"staged": valued(staged_out, alpha), "static": valued(static_out, alpha)}
    by_stage = {
        "in_sample": {
            "staged": stage_cvars(picked_by_state(inside, tree.leaf), tree.leaf, tree, alpha),
            "static": stage_cvars(static.samples, tree.leaf, tree, alpha),
        },
        "out_of_sample": {
            "staged": stage_cvars(staged_out, groups, tree, alpha),
            "static": stage_cvars(static_out, groups, tree, alpha),
        },
    }
    t2 = time.perf_counter()
    first, policy, differs = _policy(portfolio, tree, plan, flat, static.rows)
    return StagedOutcome(
        clusters=staged.clusters,
        tree=tree,
        plan=plan,
        policy=policy,
        first_stage=first,
        in_sample=in_sample,
        out_of_sample=out_of_sample,
        fresh_seed=fresh.simulation.seed,
        differs=differs,
        cvar_by_stage=by_stage,
        notes=notes,
        portfolio=portfolio,
        timings_s={"milp": t1 - t0, "revalue": t2 - t1},
    )


def _floor_over_all(problem, plan, leaf_plans, inside, solve, inside_of, tree, alpha):
    """The policy, holding ``objective.cvar_floor_usd`` over every scenario of the run (each
    on its state's plan), as the static plan does (siteopt.app.pipeline.floor_over_all):
    the floor on the risk sample is raised by the shortfall and the staged MILP solved
    again, up to FLOOR_ROUNDS times. Returns the policy, its state plans, its NPVs and the
    notes (what was raised, or by how much the policy still misses the floor)."""
    floor = problem.cvar_floor_usd
    if floor is None:
        return plan, leaf_plans, inside, ()

    def cvar_of(solution) -> float:
        return float(portfolio_cvar(picked_by_state(solution[2], tree.leaf), alpha))

    def solve_raised(target: float):
        again = solve(replace(problem, cvar_floor_usd=target))
        if again.status == "infeasible" or again.leaf_rows.size == 0:
            return None
        return (again, *inside_of(again))

    held = hold_floor(floor, (plan, leaf_plans, inside), cvar_of, solve_raised)
    cvar_all, n = held.cvar_usd, len(tree.leaf)
    if held.kept and not held.first_short_usd:
        return (*held.solution, ())
    if held.kept:
        note = (
            f"the staged policy kept the CVaR floor on the risk sample but missed it by "
            f"${held.first_short_usd / 1e6:,.1f}M over all {n:,} scenarios; the floor was raised "
            f"to ${held.target_usd / 1e6:,.1f}M on the sample so that the policy keeps it over "
            f"all scenarios (its CVaR there: ${cvar_all / 1e6:,.1f}M)"
        )
    else:
        note = (
            f"the staged policy misses the CVaR floor of ${floor / 1e6:,.1f}M over all {n:,} "
            f"scenarios by ${(floor - cvar_all) / 1e6:,.1f}M (it keeps it on the risk sample); "
            "raise simulation.risk_sample"
        )
    return (*held.solution, (note,))


def picked_by_state(samples: dict[str, np.ndarray], groups: np.ndarray) -> np.ndarray:
    """Per scenario, the NPV of its state's plan (``samples["state g"]``)."""
    out = np.empty(groups.shape[0])
    for g in np.unique(groups).tolist():
        rows = groups == g
        out[rows] = samples[f"state {g}"][rows]
    return out


def stage_cvars(
    samples: np.ndarray, groups: np.ndarray, tree: StateTree, alpha: float
) -> tuple[float, ...]:
    """The CVaR seen at each later decision stage [USD]: over the scenarios, of the mean NPV
    of the scenario's state at that stage (its NPV's expectation given what is known
    then), one per stage in tree order. The root's is the E[NPV] and the end of the
    horizon's the NPV's own CVaR; between them, how bad the plan's value can look when each
    decision is taken. ``groups``: each scenario's leaf state (index into tree.leaves)."""
    out = []
    for stage in range(1, len(tree.years) + 1):
        node_of_leaf = np.empty(len(tree.leaves), dtype=np.int64)
        for g, node in enumerate(tree.leaves.tolist()):
            while tree.stage[node] > stage:
                node = int(tree.parent[node])
            node_of_leaf[g] = node
        nodes = node_of_leaf[groups]
        total = np.bincount(nodes, weights=samples, minlength=tree.nodes)
        count = np.bincount(nodes, minlength=tree.nodes)
        mean = np.divide(total, count, out=np.zeros(tree.nodes), where=count > 0)
        out.append(float(portfolio_cvar(mean[nodes], alpha)))
    return tuple(out)


def state_names(tree: StateTree) -> list[str]:
    """A name per node: ``now`` for the root, then the letters of its bins down the path
    (A is the lowest hashprice), e.g. ``B`` at the first later year, ``B.D`` at the next."""
    names = ["now"]
    for v in range(1, tree.nodes):
        siblings = tree.children(int(tree.parent[v])).tolist()
        letter = chr(ord("A") + siblings.index(v))
        parent = int(tree.parent[v])
        names.append(letter if parent == 0 else f"{names[parent]}.{letter}")
    return names


def _action(option: SiteOption | None, scenario: Portfolio) -> tuple[str, float, str, str]:
    """(action, AI MW, contract, option label) of building ``option`` (None: nothing)."""
    if option is not None and option.sells:
        return "sell the site", 0.0, "", option.label
    if option is None or option.contract_index is None:
        return "keep hashing", 0.0, "", KEEP_HASHING
    contract = PLUS.join(scenario.contracts[t.contract_index].name for t in option.tranches)
    partner = 1.0 - option.hall_share
    jv = f" in a JV ({partner:.0%} the partner's)" if partner > 0 else ""
    what = " and ".join(
        f"{t.it_mw:g} MW for {scenario.contracts[t.contract_index].name}"
        + (f" from {t.build_year}" if option.parts else "")
        for t in option.tranches
    )
    return (
        f"convert {what}{jv}",
        float(option.it_mw),
        contract,
        option.label,
    )


def _policy(
    portfolio: Portfolio,
    tree: StateTree,
    plan: StagedPlan,
    flat: list[SiteOption],
    static_rows: tuple[int, ...],
) -> tuple[tuple[dict[str, Any], ...], pd.DataFrame, int]:
    """What is signed now, policy.csv's rows, and how many states differ from static."""
    names = state_names(tree)
    sites = [s.name for s in portfolio.sites]
    years = tuple(sorted(portfolio.decision_years))
    first = []
    for s, site in enumerate(sites):
        row = plan.builds.get(0, {}).get(s)
        action, mw, contract, label = _action(None if row is None else flat[row], portfolio)
        if row is None and len(years) > 1:
            action = f"{action} now; decide again in {years[1]}"
        first.append(
            {
                "site": site,
                "action": action,
                "ai_it_mw": mw,
                "contract": contract or None,
                "option": label,
            }
        )
    records, differs = [], 0
    for s, entry in enumerate(first):  # the root: what is signed now
        records.append(
            {
                "site": entry["site"],
                "decision_year": years[0],
                "state": names[0],
                "seen_month": month_label(portfolio, 0),
                "rule": "now",
                "probability": 1.0,
                "hashprice_low_usd_ph_day": None,
                "hashprice_high_usd_ph_day": None,
                "hashprice_p50_usd_ph_day": None,
                "btc_p50_usd": None,
                "hashrate_p50_eh": None,
                "power_p50_usd_mwh": None,
                "action": _action(
                    None if s not in plan.builds.get(0, {}) else flat[plan.builds[0][s]],
                    portfolio,
                )[0],
                "ai_it_mw": entry["ai_it_mw"],
                "contract": entry["contract"] or "",
                "option": entry["option"],
            }
        )
    static = {int(flat[i].site_index): i for i in static_rows}
    for v in range(1, tree.nodes):
        stage = int(tree.stage[v])
        path = tree.path(v)
        rule = " and ".join(
            f"{tree.describe(u)} in {stage_label(portfolio, tree, int(tree.stage[u]))}"
            for u in path
        )
        built_on_path = {}
        for u in [0, *path[:-1]]:
            for s, i in plan.builds.get(u, {}).items():
                built_on_path[s] = (u, i)
        here = plan.builds.get(v, {})
        static_here = {
            s: i
            for s, i in static.items()
            if flat[i].build_year == years[stage] and flat[i].contract_index is not None
        }
        if here != static_here:
            differs += 1
        for s, site in enumerate(sites):
            if s in built_on_path:
                u, i = built_on_path[s]
                when = years[int(tree.stage[u])]
                done = "sold" if flat[i].sells else f"converted in {when} ({flat[i].it_mw:g} MW)"
                action, mw, contract, label = done, 0.0, "", ""
            else:
                row = here.get(s)
                action, mw, contract, label = _action(None if row is None else flat[row], portfolio)
            d = tree.described
            records.append(
                {
                    "site": site,
                    "decision_year": years[stage],
                    "state": names[v],
                    "seen_month": stage_label(portfolio, tree, stage),
                    "rule": f"if {rule}",
                    "probability": float(tree.probability[v]),
                    "hashprice_low_usd_ph_day": _finite(tree.low[v]),
                    "hashprice_high_usd_ph_day": _finite(tree.high[v]),
                    "ai_rent_index_low": _finite(tree.ai_low[v]) if tree.splits_ai else None,
                    "ai_rent_index_high": _finite(tree.ai_high[v]) if tree.splits_ai else None,
                    "ai_rent_index_p50": float(d["ai_rent_index"][v, 1]),
                    "hashprice_p50_usd_ph_day": float(d["hashprice"][v, 1]),
                    "btc_p50_usd": float(d["btc_usd"][v, 1]),
                    "hashrate_p50_eh": float(d["hashrate_eh"][v, 1]),
                    "power_p50_usd_mwh": float(d["power_usd_mwh"][v, 1]),
                    "action": action,
                    "ai_it_mw": mw,
                    "contract": contract,
                    "option": label,
                }
            )
    frame = pd.DataFrame(records, columns=list(POLICY_COLUMNS))
    return tuple(first), frame, differs


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def policy_lines(staged: StagedOutcome, portfolio: Portfolio) -> list[str]:
    """The policy in plain words: per later decision year and site, what it builds in
    which states (neighbouring states with the same action merged into one range), e.g.
    ``2029, odessa-campus: convert 60 MW for hyperscaler-a if hashprice < $9.40 in
    2028-12 (after hashprice < $18.79 in 2027-12); otherwise keep hashing``."""
    tree, policy = staged.tree, staged.policy
    names = state_names(tree)
    action = {(r.site, r.state): r.action for r in policy.itertuples(index=False)}
    lines = []
    for j, year in enumerate(tree.years, start=1):
        month = stage_label(portfolio, tree, j)
        nodes = np.flatnonzero(tree.stage == j).tolist()
        for site in dict.fromkeys(policy["site"]):
            acts = {v: action[(site, names[v])] for v in nodes}
            builds = {a for a in acts.values() if a.startswith("convert ")}
            if not builds:
                continue
            open_ = [v for v in nodes if not acts[v].startswith("converted")]
            if all(acts[v] == acts[open_[0]] for v in open_):
                where = (
                    "in every state"
                    if len(open_) == len(nodes)
                    else ("in every state where it still hashes")
                )
                lines.append(f"{year}, {site}: {acts[open_[0]]} {where}")
                continue
            for build in sorted(builds):
                parts = []
                for parent in sorted({int(tree.parent[v]) for v in nodes}):
                    kids = [int(v) for v in tree.children(parent)]
                    taking = [v for v in kids if acts[v] == build]
                    for run in _runs(kids, taking, tree.splits_ai):
                        words = f"{_bin_text(tree, run)} in {month}"
                        if parent > 0:
                            earlier = " and ".join(
                                f"{tree.describe(u)} in "
                                f"{stage_label(portfolio, tree, int(tree.stage[u]))}"
                                for u in tree.path(parent)
                            )
                            words += f" (after {earlier})"
                        parts.append(words)
                lines.append(f"{year}, {site}: {build} if {'; or '.join(parts)}")
            others = {a for a in acts.values() if not a.startswith("convert ")}
            if "keep hashing" in others:
                lines.append(f"{year}, {site}: otherwise keep hashing")
    return lines


def _runs(kids: list[int], taking: list[int], single: bool) -> list[list[int]]:
    """Neighbouring states (in bin order) that take the action, as runs; one state a run
    where states split on the AI rent index too (its bins do not line up across them)."""
    runs: list[list[int]] = []
    run: list[int] = []
    for v in kids:
        if v in taking and not single:
            run.append(v)
            continue
        if run:
            runs.append(run)
            run = []
        if v in taking:
            runs.append([v])
    if run:
        runs.append(run)
    return runs


def _bin_text(tree, run: list[int]) -> str:
    """A run of states in words: one hashprice range, or the one state's bins."""
    if len(run) == 1:
        return tree.describe(run[0])
    return bin_words(tree.low[run[0]], tree.high[run[-1]])


def staged_summary(staged: StagedOutcome) -> dict[str, Any]:
    """summary.json's ``staged``."""
    tree, plan = staged.tree, staged.plan
    names = state_names(tree)
    first_year = min(staged.portfolio.decision_years)
    return {
        "clusters": staged.clusters,
        "states_by_year": {
            str(y): int(np.sum(tree.stage == j + 1)) for j, y in enumerate(tree.years)
        },
        "state_variable": "hashprice_usd_ph_day",
        "first_stage": [dict(f) for f in staged.first_stage],
        "in_sample": {k: v.as_dict() for k, v in staged.in_sample.items()},
        "out_of_sample": {k: v.as_dict() for k, v in staged.out_of_sample.items()},
        "fresh_seed": staged.fresh_seed,
        # the CVaR of the state's mean NPV at each later decision year, then the NPV's own
        "cvar_by_stage": {
            sample: {
                name: [
                    *({"year": y, "cvar_usd": c} for y, c in zip(tree.years, cvars, strict=True)),
                    {"year": "horizon", "cvar_usd": getattr(staged, sample)[name].cvar_usd},
                ]
                for name, cvars in policies.items()
            }
            for sample, policies in staged.cvar_by_stage.items()
        },
        "value_of_waiting": {
            "in_sample": staged.value_of_waiting("in_sample"),
            "out_of_sample": staged.value_of_waiting("out_of_sample"),
        },
        "states_differing_from_static": staged.differs,
        "notes": list(staged.notes),
        "policy_words": policy_lines(staged, staged.portfolio),
        "states": [
            {
                "state": names[v],
                "decision_year": first_year if v == 0 else tree.years[int(tree.stage[v]) - 1],
                "probability": float(tree.probability[v]),
                "rule": None
                if v == 0
                else staged.policy.loc[staged.policy["state"] == names[v], "rule"].iloc[0],
                "hashprice_p50_usd_ph_day": _finite(tree.described["hashprice"][v, 1]),
                "btc_p50_usd": _finite(tree.described["btc_usd"][v, 1]),
            }
            for v in range(tree.nodes)
        ],
        "milp": {
            "status": plan.status,
            "mip_gap": plan.mip_gap,
            "variables": plan.variables,
            "rows": plan.rows,
            "rounds": plan.rounds,
            "solve_s": round(plan.solve_s, 3),
        },
        "timings_s": {k: round(v, 3) for k, v in staged.timings_s.items()},
    }
