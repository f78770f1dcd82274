"""The staged build plan: decide now what must be decided now, later years per market state.

A two-stage (multi-stage) stochastic program over a tree of market states (built by
siteopt.kernels.states; here only its shape and numbers). Node 0 is *now*; each node of
stage j >= 1 is a market state seen at the j-th later decision year, and its scenarios
are those of its leaves.

Variables: binary ``y[v, i]`` builds option i (a conversion whose build year is stage
s(v)'s year) at node v; ``w[s, l]`` keeps site s hashing in leaf l; binary ``u[c, l]``
signs contract c in leaf l. In each leaf the options on its path form a whole static
plan ``x_l``: ``x_l[i] = y[v_l(s(i)), i]`` for a conversion (the leaf's node at the
option's stage), ``x_l[keep_s] = w[s, l]``. Every constraint group of the static MILP
(one option per site, budgets, contracts and dates, the hashrate floor) holds for each
``x_l``, so:

* a site converts at most once on every path, and a conversion decided at a node binds
  every leaf below it (non-anticipativity: a decision depends only on its node, that is
  on what was seen up to its year);
* budgets hold in every state, cumulative capex against cumulative budget along each path;
* the objective is the expected NPV over the leaves, each with its probability:
  ``sum_v P(v) E[NPV_i | v] y[v, i] + sum_l P(l) E[NPV_keep | l] w[s, l]``, with the
  conditional means from the valuation's group reduction;
* CVaR (floor or weight) is over the risk sample with each scenario taking its leaf's
  plan: Rockafellar-Uryasev rows ``t_k >= eta - NPV_k . x_l(k)``, added lazily for the
  scenarios in the tail of each proposed policy until the model's CVaR is exact.

With a single state per stage the model is the static MILP (the same rows and
coefficients), so its plan is the static plan. The static plan is always feasible here
(take it in every state): it is offered as the MIP start, and the staged optimum is never
below it on the same numbers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pulp

from . import constraints
from .data import MONEY_UNIT_USD, PlanData, plan_data
from .engine import MAX_ROUNDS, SolverSettings, _run_cbc, _run_highs
from .highs import IncrementalHiGHS
from .model import add_variable, add_variable_dict, tail_weights
from .options import KEEP_HASHING, OptionTable, PlanProblem


@dataclass(frozen=True)
class StageTree:
    """The optimizer's view of the market-state tree.

    Attributes
    ----------
    parent : ndarray of int (nodes,)
        -1 for the root (node 0).
    stage : ndarray of int (nodes,)
    probability : ndarray (nodes,) [-]
    leaves : ndarray of int (groups,)
        Node id of each scenario group.
    stage_years : tuple of int
        The build year decided at each stage (stage 0: the first decision year).
    group_npv_usd : ndarray (groups, options) [USD]
        Mean NPV of every option (table row) in each group.
    risk_group : ndarray of int (K,)
        The group of each risk-sample scenario.
    """

    parent: np.ndarray
    stage: np.ndarray
    probability: np.ndarray
    leaves: np.ndarray
    stage_years: tuple[int, ...]
    group_npv_usd: np.ndarray
    risk_group: np.ndarray

    @property
    def nodes(self) -> int:
        return len(self.parent)

    def path(self, leaf_node: int) -> list[int]:
        """The nodes from the root to ``leaf_node``, one per stage."""
        out = [int(leaf_node)]
        while out[-1] > 0:
            out.append(int(self.parent[out[-1]]))
        return out[::-1]

    def leaves_under(self) -> list[np.ndarray]:
        """Per node, the groups (indices into ``leaves``) below it."""
        under: list[list[int]] = [[] for _ in range(self.nodes)]
        for g, leaf in enumerate(self.leaves.tolist()):
            for v in self.path(leaf):
                under[v].append(g)
        return [np.asarray(u, dtype=np.int64) for u in under]


@dataclass(frozen=True)
class StagedPlan:
    """A solved staged plan.

    Attributes
    ----------
    builds : dict of int to dict of int to int
        Per node, the table row each site builds there (sites that build nothing there
        are absent).
    leaf_rows : ndarray of int (groups, sites)
        The table row of each site on the path to each leaf: the static plan that leaf's
        scenarios live.
    expected_npv_usd : float
        The policy's expected NPV over the leaves (in sample) [USD].
    cvar_usd : float or None
        CVaR of the policy on the risk sample [USD] (when the model has a CVaR).
    status : str
        ``optimal``, ``time_limit`` or ``infeasible``.
    mip_gap : float or None
    solve_s : float [s]
    variables, rows : int
        Size of the model as last solved.
    rounds : int
        MILP solves (more than one when lazy CVaR rows were added).
    """

    builds: dict[int, dict[int, int]]
    leaf_rows: np.ndarray
    expected_npv_usd: float
    cvar_usd: float | None
    status: str
    mip_gap: float | None
    solve_s: float
    variables: int
    rows: int
    rounds: int


@dataclass
class _Model:
    prob: pulp.LpProblem
    data: PlanData
    y: dict[int, dict[int, pulp.LpVariable]]  # node -> row -> variable
    x_leaf: list[list[pulp.LpVariable]]
    u_leaf: list[dict[str, pulp.LpVariable]]
    eta: pulp.LpVariable | None
    tail: dict[int, pulp.LpVariable]
    cvar_expr: pulp.LpAffineExpression | None
    in_model: set[int]
    stages: np.ndarray  # option_stages of the table
    coefficients: tuple  # _coefficients: per node (rows, coefficients), keep per group


def option_stages(table: OptionTable, stage_years: tuple[int, ...]) -> np.ndarray:
    """The stage of each table row's build year; -1 for keep-hashing rows, 0 for another
    row without a build year (a site's sale: signed now)."""
    years = table.table["build_year"].fillna(-1).astype(int).to_numpy()
    index = {int(y): j for j, y in enumerate(stage_years)}
    unknown = sorted({int(y) for y in years if y >= 0 and int(y) not in index})
    if unknown:
        raise ValueError(f"options built in {unknown}, which are not decision years")
    now = (years < 0) & (table.table["option"].astype(str).to_numpy() != KEEP_HASHING)
    return np.array(
        [0 if n else index.get(int(y), -1) for y, n in zip(years, now, strict=True)],
        dtype=np.int64,
    )


def _coefficients(data: PlanData, tree: StageTree, stages: np.ndarray):
    """Objective coefficients [MUSD]: per node the build rows and ``P(v) E[NPV | v]``,
    and per group ``P(l) E[keep | l]`` of each site."""
    under = tree.leaves_under()
    p_group = tree.probability[tree.leaves]
    group_npv = tree.group_npv_usd / MONEY_UNIT_USD
    hash_rows = set(data.hash_row.tolist())
    by_node: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for v in range(tree.nodes):
        rows = np.flatnonzero(stages == tree.stage[v])
        rows = np.array([i for i in rows.tolist() if i not in hash_rows], dtype=np.int64)
        if np.isclose(tree.probability[v], 1.0) and len(under[v]) == len(tree.leaves):
            coef = data.expected_npv[rows]  # the whole sample: the unconditional mean
        else:
            g = under[v]
            coef = p_group[g] @ group_npv[g][:, rows]
        by_node[v] = (rows, coef)
    if len(tree.leaves) == 1:
        keep = data.expected_npv[data.hash_row][None, :]
    else:
        keep = p_group[:, None] * group_npv[:, data.hash_row]
    return by_node, keep


def build_staged(
    table: OptionTable, problem: PlanProblem, tree: StageTree, data: PlanData | None = None
) -> _Model:
    """The staged MILP (module docstring), without CVaR rows yet."""
    data = plan_data(table, problem) if data is None else data
    stages = option_stages(table, tree.stage_years)
    by_node, keep_coef = _coefficients(data, tree, stages)
    prob = pulp.LpProblem("siteopt_staged", pulp.LpMaximize)
    y: dict[int, dict[int, pulp.LpVariable]] = {}
    for v, (rows, _) in by_node.items():
        made = add_variable_dict(prob, f"y{v}", rows.tolist(), cat=pulp.LpBinary)
        y[v] = {int(i): made[i] for i in rows.tolist()}
    groups = len(tree.leaves)
    sites = len(data.sites)
    w = {
        (s, g): add_variable(prob, f"w_{s}_{g}", low=0.0, up=1.0)
        for g in range(groups)
        for s in range(sites)
    }
    site_of = _site_of(data)
    x_leaf = []
    for g, leaf in enumerate(tree.leaves.tolist()):
        path = tree.path(leaf)
        x = []
        for i in range(data.n_options):
            j = stages[i]
            x.append(w[(int(site_of[i]), g)] if j < 0 else y[path[j]][i])
        x_leaf.append(x)
    objective = []
    for v, (rows, coef) in by_node.items():
        objective += [(y[v][int(i)], float(c)) for i, c in zip(rows, coef, strict=True) if c != 0]
    objective += [(w[(s, g)], float(keep_coef[g, s])) for g in range(groups) for s in range(sites)]
    expr = pulp.LpAffineExpression(objective) * float(problem.expected_weight)
    eta, tail, cvar_expr = None, {}, None
    wanted = problem.cvar_floor_usd is not None or problem.risk_aversion > 0
    if wanted:
        k = data.risk_npv.shape[1]
        if k == 0:
            raise ValueError("a CVaR constraint or weight needs risk-sample NPVs (K = 0)")
        eta = add_variable(prob, "cvar_eta")
        tail = add_variable_dict(prob, "cvar_s", range(k), low=0.0)
        scale = 1.0 / ((1.0 - problem.cvar_alpha) * k)
        cvar_expr = pulp.LpAffineExpression([(eta, 1.0)] + [(t, -scale) for t in tail.values()])
        if problem.risk_aversion > 0:
            expr.addInPlace(cvar_expr * float(problem.risk_aversion))
    prob.setObjective(expr)
    u_leaf = []
    for g in range(groups):
        tag = "" if groups == 1 else f"_l{g}"
        u = {
            c.name: add_variable(prob, f"u_{data.contract_names[c.name]}{tag}", cat=pulp.LpBinary)
            for c in problem.contracts
        }
        constraints.one_option_per_site(prob, data, x_leaf[g], tag)
        constraints.budget(prob, data, x_leaf[g], problem, tag=tag)
        constraints.contracts(prob, data, x_leaf[g], u, problem, tag=tag)
        constraints.hashrate_floor(prob, data, x_leaf[g], problem, tag=tag)
        u_leaf.append(u)
    if cvar_expr is not None and problem.cvar_floor_usd is not None:
        constraints.cvar_floor(prob, cvar_expr, problem)
    coefficients = (by_node, keep_coef)
    return _Model(prob, data, y, x_leaf, u_leaf, eta, tail, cvar_expr, set(), stages, coefficients)


def _site_of(data: PlanData) -> np.ndarray:
    """The site of every table row."""
    site_of = np.empty(data.n_options, dtype=np.int64)
    for s, rows in enumerate(data.site_rows):
        site_of[rows] = s
    return site_of


def _add_tail_rows(model: _Model, tree: StageTree, scenarios) -> int:
    new = sorted(set(int(k) for k in scenarios) - model.in_model)
    for k in new:
        x = model.x_leaf[int(tree.risk_group[k])]
        constraints.cvar_tail(model.prob, model.data, x, model.eta, model.tail, [k])
    model.in_model.update(new)
    return len(new)


def _read(model: _Model, tree: StageTree) -> np.ndarray:
    """The solved model's policy as the plan of each leaf (table row per site)."""
    data = model.data
    site_of = _site_of(data)
    builds: dict[int, dict[int, int]] = {}
    for v, variables in model.y.items():
        chosen = {int(site_of[i]): i for i, var in variables.items() if (var.varValue or 0) > 0.5}
        if chosen:
            builds[v] = chosen
    leaf_rows = np.tile(data.hash_row, (len(tree.leaves), 1))
    for g, leaf in enumerate(tree.leaves.tolist()):
        for v in tree.path(leaf):
            for s, i in builds.get(v, {}).items():
                leaf_rows[g, s] = i
    return leaf_rows


def policy_value(model: _Model, tree: StageTree, leaf_rows: np.ndarray) -> float:
    """The policy's expected NPV [MUSD], as the model's objective counts it."""
    (by_node, keep), stages, data = model.coefficients, model.stages, model.data
    coef = {
        (v, int(i)): c for v, (rows, cs) in by_node.items() for i, c in zip(rows, cs, strict=True)
    }
    total, seen = 0.0, set()
    hash_row = data.hash_row
    for g, leaf in enumerate(tree.leaves.tolist()):
        path = tree.path(leaf)
        for s, i in enumerate(leaf_rows[g].tolist()):
            if i == hash_row[s]:
                total += float(keep[g, s])
            else:
                v = path[stages[i]]
                if (v, i) not in seen:
                    seen.add((v, i))
                    total += float(coef[(v, i)])
    return total


def risk_npv_of(data: PlanData, tree: StageTree, leaf_rows: np.ndarray) -> np.ndarray:
    """The policy's portfolio NPV on each risk-sample scenario [MUSD]."""
    k = data.risk_npv.shape[1]
    out = np.empty(k)
    for g in range(len(tree.leaves)):
        cols = np.flatnonzero(tree.risk_group == g)
        out[cols] = data.risk_npv[leaf_rows[g]][:, cols].sum(axis=0)
    return out


def solve_staged(
    table: OptionTable,
    problem: PlanProblem,
    tree: StageTree,
    settings: SolverSettings,
    start_rows: np.ndarray | None = None,
) -> StagedPlan:
    """Solve the staged MILP; ``start_rows`` (a static plan, table row per site) is offered
    as the MIP start in every state.

    Raises
    ------
    ValueError
        An option built in a year that is not a decision year.
    """
    began = time.perf_counter()
    data = plan_data(table, problem)
    model = build_staged(table, problem, tree, data)
    alpha = problem.cvar_alpha
    if model.eta is not None:
        all_mining = data.risk_npv[data.hash_row].sum(axis=0)
        _add_tail_rows(model, tree, np.flatnonzero(tail_weights(all_mining, alpha)))
        if start_rows is not None:
            start_npv = data.risk_npv[np.asarray(start_rows)].sum(axis=0)
            _add_tail_rows(model, tree, np.flatnonzero(tail_weights(start_npv, alpha)))
    highs = None
    if settings.name == "highs":
        highs = IncrementalHiGHS(
            time_limit_s=settings.time_limit_s,
            gap_rel=settings.gap_rel,
            threads=settings.threads,
            msg=settings.msg,
            options={} if settings.presolve else {"presolve": "off"},
        )
    holder = _Holder(model.prob)
    floor = None if problem.cvar_floor_usd is None else problem.cvar_floor_usd / MONEY_UNIT_USD

    def exact(leaf_rows: np.ndarray) -> tuple[float, float | None, bool, np.ndarray | None]:
        """A policy's true objective and CVaR [MUSD], whether it meets the floor, and the
        tail weights of its risk-sample NPVs (None without a CVaR)."""
        cvar = weights = None
        if model.eta is not None:
            npv = risk_npv_of(data, tree, leaf_rows)
            weights = tail_weights(npv, alpha)
            cvar = float(weights @ npv)
        ok = floor is None or cvar >= floor - 1e-7 * max(1.0, abs(cvar))
        value = policy_value(model, tree, leaf_rows)
        objective = problem.expected_weight * value + problem.risk_aversion * (cvar or 0.0)
        return objective, cvar, ok, weights

    best = None  # (objective, leaf rows, cvar) of the best policy that meets the floor
    if start_rows is not None:  # the static plan in every state: always a policy
        rows = np.tile(np.asarray(start_rows, dtype=np.int64), (len(tree.leaves), 1))
        objective, cvar, ok, _ = exact(rows)
        if ok:
            best = (objective, rows, cvar)
    deadline = began + settings.time_limit_s
    rounds, timed_out, master = 0, False, None
    while rounds < MAX_ROUNDS:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            timed_out = True
            break
        start = {} if best is None else _start(model, problem, tree, best[1])
        if highs is not None:
            master = _run_highs(holder, highs, remaining, start)
        else:
            master = _run_cbc(holder, settings, remaining)
        rounds += 1
        if not master.has_solution:
            timed_out = master.hit_limit
            break
        leaf_rows = _read(model, tree)
        objective, cvar, ok, weights = exact(leaf_rows)
        if ok and (best is None or objective > best[0] + 1e-9 * max(1.0, abs(objective))):
            best = (objective, leaf_rows, cvar)
        if master.hit_limit:
            timed_out = True
            break
        if model.eta is None:
            break
        in_model = float(pulp.value(model.cvar_expr))
        if in_model - cvar <= 1e-9 * max(1.0, abs(cvar)):
            break  # the model's CVaR of this policy is exact: it is the optimum
        if not _add_tail_rows(model, tree, np.flatnonzero(weights)):
            break
    solve_s = time.perf_counter() - began
    variables, rows = len(model.prob.variables()), len(model.prob._constraints)
    if best is None:
        return StagedPlan(
            {},
            np.empty((0, 0), dtype=np.int64),
            math.nan,
            None,
            "time_limit" if timed_out else "infeasible",
            None,
            solve_s,
            variables,
            rows,
            rounds,
        )
    objective, leaf_rows, cvar = best
    gap = None
    if master is not None and math.isfinite(master.bound):
        gap = max(master.bound - objective, 0.0) / max(abs(objective), 1e-6)
    return StagedPlan(
        builds=_builds_of(tree, model.stages, leaf_rows, data.hash_row),
        leaf_rows=leaf_rows,
        expected_npv_usd=policy_value(model, tree, leaf_rows) * MONEY_UNIT_USD,
        cvar_usd=None if cvar is None else cvar * MONEY_UNIT_USD,
        status="time_limit" if timed_out else "optimal",
        mip_gap=gap,
        solve_s=solve_s,
        variables=variables,
        rows=rows,
        rounds=rounds,
    )


def _builds_of(
    tree: StageTree, stages: np.ndarray, leaf_rows: np.ndarray, hash_row: np.ndarray
) -> dict[int, dict[int, int]]:
    """Per node, what each site builds there, read from the leaves' plans (any leaf below a
    node gives the same: the plans are non-anticipative)."""
    under = tree.leaves_under()
    builds: dict[int, dict[int, int]] = {}
    for v in range(tree.nodes):
        rows = leaf_rows[under[v][0]]
        here = {
            s: int(i)
            for s, i in enumerate(rows.tolist())
            if i != hash_row[s] and stages[i] == tree.stage[v]
        }
        if here:
            builds[v] = here
    return builds


@dataclass
class _Holder:
    """What the engine's solver runs read of a model: its PuLP problem."""

    prob: pulp.LpProblem


def _start(model: _Model, problem: PlanProblem, tree: StageTree, leaf_rows: np.ndarray) -> dict:
    """A complete MIP start from a policy's leaf plans: y, w and u."""
    data, under = model.data, tree.leaves_under()
    start = {}
    for v, ys in model.y.items():
        chosen = set(leaf_rows[under[v][0]].tolist())
        start.update({var: float(i in chosen) for i, var in ys.items()})
    for rows, x, u in zip(leaf_rows, model.x_leaf, model.u_leaf, strict=True):
        for s, i in enumerate(rows.tolist()):
            start[x[data.hash_row[s]]] = float(i == data.hash_row[s])
        for terms in problem.contracts:
            mw = data.mw_on(terms.name)[rows].sum()
            start[u[terms.name]] = float(mw > 0 or terms.must_sign)
    return start
