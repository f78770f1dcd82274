"""The build-plan MILP of docs/model.md, built in a fixed order.

data -> variables -> objective -> constraints. Binary ``x[i]`` takes option (table row)
``i``; binary ``u[c]`` signs contract ``c``. Money is in MUSD (see :mod:`.data`).

CVaR of the portfolio NPV over the K risk-sample scenarios enters in one of three forms:

``full``
    Rockafellar-Uryasev: ``CVaR = eta - 1/((1-alpha)K) sum_k s_k``,
    ``s_k >= eta - NPV_k . x``, ``s_k >= 0``: K dense rows, exact in one solve.
``lazy``
    The same rows, added only for scenarios in the tail of a plan the solver proposes
    (:mod:`.engine` iterates); starts with the tail of the all-mining plan.
``cuts``
    A variable ``theta`` bounded by supergradient cuts of the concave CVaR,
    ``theta <= (NPV q) . x`` with q the tail weights of a proposed plan: one row per
    iteration. Starts with q uniform (the sample mean) and the all-mining plan's tail.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pulp

from . import constraints
from .constraints import ConstraintGroup
from .data import MONEY_UNIT_USD, PlanData, plan_data
from .options import OptionTable, PlanProblem

CVAR_METHODS = ("cuts", "lazy", "full")


def add_variable(prob, name, low=None, up=None, cat=pulp.LpContinuous) -> pulp.LpVariable:
    """``prob.add_variable`` (PuLP >= 3.3, the PuLP 4 API), else the plain constructor."""
    if hasattr(prob, "add_variable"):
        return prob.add_variable(name, lowBound=low, upBound=up, cat=cat)
    return pulp.LpVariable(name, lowBound=low, upBound=up, cat=cat)


def add_variable_dict(prob, name, indices, low=None, up=None, cat=pulp.LpContinuous) -> dict:
    """``prob.add_variable_dict`` (PuLP >= 3.3), else one constructor call per index."""
    if hasattr(prob, "add_variable_dict"):
        return prob.add_variable_dict(name, indices, lowBound=low, upBound=up, cat=cat)
    return {i: pulp.LpVariable(f"{name}_{i}", low, up, cat) for i in indices}


def tail_size(k: int, alpha: float) -> tuple[float, int]:
    """The CVaR tail of ``k`` equally likely scenarios: ``m = (1 - alpha) k`` scenarios, of
    which the ``floor(m)`` worst count whole and the next one with weight ``m - floor(m)``.

    Returns
    -------
    m : float
    whole : int
    """
    m = (1.0 - alpha) * k
    if not 0.0 < m <= k:
        raise ValueError(f"cvar alpha {alpha} outside (0, 1)")
    return m, min(int(np.floor(m)), k)


def tail_weights(npv: np.ndarray, alpha: float) -> np.ndarray:
    """Weights q of the worst ``(1 - alpha) K`` scenarios, so that ``q . npv`` is the CVaR.

    ``q_k = 1/m`` on the ``floor(m)`` worst, ``(m - floor(m))/m`` on the next, 0 elsewhere,
    with ``m = (1 - alpha) K``: the minimiser over the risk envelope, hence exactly the
    optimum of the Rockafellar-Uryasev LP.

    Parameters
    ----------
    npv : numpy.ndarray, shape (K,) [any money unit]
    alpha : float
        Tail level in (0, 1).
    """
    k = npv.shape[-1]
    m, whole = tail_size(k, alpha)
    weights = np.zeros(k)
    order = np.argsort(npv, kind="stable")
    weights[order[:whole]] = 1.0 / m
    if whole < k:
        weights[order[whole]] = (m - whole) / m
    return weights


@dataclass(frozen=True)
class CvarModel:
    """The CVaR part of a model.

    Attributes
    ----------
    method : str
        ``cuts``, ``lazy`` or ``full``.
    alpha : float
    expression : pulp.LpAffineExpression
        The in-model CVaR [MUSD] (``theta``, or ``eta - sum s_k / ((1-alpha)K)``).
    weight : float
        Its weight in the objective (``risk_aversion``; 0 in phase 1).
    floor : float or None [MUSD]
    theta, eta : pulp.LpVariable or None
    tail : dict of int to pulp.LpVariable
        ``s_k`` of every scenario (``lazy`` and ``full``).
    cuts : list of numpy.ndarray
        Coefficient vectors (over options) of the cuts added so far [MUSD].
    scenarios : set of int
        Scenarios whose Rockafellar-Uryasev row is in the model.
    """

    method: str
    alpha: float
    expression: pulp.LpAffineExpression
    weight: float
    floor: float | None
    theta: pulp.LpVariable | None = None
    eta: pulp.LpVariable | None = None
    tail: dict[int, pulp.LpVariable] = field(default_factory=dict)
    cuts: list[np.ndarray] = field(default_factory=list)
    cut_weights: list[np.ndarray] = field(default_factory=list)  # q of each cut, (K,)
    scenarios: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class PlanModel:
    """A built model and what is needed to read and extend it.

    Attributes
    ----------
    prob : pulp.LpProblem
        Maximisation; phase-1 models maximise minus the weighted slacks.
    data : PlanData
    problem : PlanProblem
    x : list of pulp.LpVariable
        ``x[i]`` for table row i.
    u : dict of str to pulp.LpVariable
    cvar : CvarModel or None
    slacks : dict of ConstraintGroup to pulp.LpVariable
        Relaxed groups (phase 1 only) [group units].
    slack_weights : dict of ConstraintGroup to float
        Phase-1 objective weight of each slack [1/group unit].
    build_s : float [s]
    """

    prob: pulp.LpProblem
    data: PlanData
    problem: PlanProblem
    x: list[pulp.LpVariable]
    u: dict[str, pulp.LpVariable]
    cvar: CvarModel | None
    slacks: dict[ConstraintGroup, pulp.LpVariable]
    slack_weights: dict[ConstraintGroup, float]
    build_s: float

    @property
    def phase_one(self) -> bool:
        return bool(self.slack_weights)


def _cvar_variables(prob, data: PlanData, problem: PlanProblem, method: str, phase_one: bool):
    wanted = problem.cvar_floor_usd is not None or (problem.risk_aversion > 0 and not phase_one)
    if not wanted:
        return None
    if method not in CVAR_METHODS:
        raise ValueError(f"cvar_method must be one of {', '.join(CVAR_METHODS)}; got {method}")
    n_scenarios = data.risk_npv.shape[1]
    if n_scenarios == 0:
        raise ValueError("a CVaR constraint or weight needs risk-sample NPVs (K = 0)")
    weight = 0.0 if phase_one else float(problem.risk_aversion)
    floor = None if problem.cvar_floor_usd is None else problem.cvar_floor_usd / MONEY_UNIT_USD
    common = dict(method=method, alpha=problem.cvar_alpha, weight=weight, floor=floor)
    if method == "cuts":
        theta = add_variable(prob, "cvar_theta")
        return CvarModel(expression=pulp.LpAffineExpression([(theta, 1.0)]), theta=theta, **common)
    eta = add_variable(prob, "cvar_eta")
    tail = add_variable_dict(prob, "cvar_s", range(n_scenarios), low=0.0)
    scale = 1.0 / ((1.0 - problem.cvar_alpha) * n_scenarios)
    expression = pulp.LpAffineExpression([(eta, 1.0)] + [(s, -scale) for s in tail.values()])
    return CvarModel(expression=expression, eta=eta, tail=tail, **common)


def _objective(prob, data: PlanData, x, cvar, slacks, slack_weights, expected_weight) -> None:
    if slack_weights:
        prob.setObjective(
            pulp.LpAffineExpression([(slacks[g], -w) for g, w in slack_weights.items() if w != 0.0])
        )
        return
    objective = constraints.linear(
        x, np.arange(data.n_options), data.expected_npv * float(expected_weight)
    )
    if cvar is not None and cvar.weight != 0.0:
        objective.addInPlace(cvar.expression * cvar.weight)
    prob.setObjective(objective)


def add_cvar_cut(model: PlanModel, weights: np.ndarray) -> None:
    """Cut ``theta <= (NPV q) . x`` for tail weights q (``cuts`` method)."""
    cvar = model.cvar
    constraints.cvar_cut(model.prob, model.data, model.x, cvar.theta, weights, len(cvar.cuts))
    cvar.cuts.append(model.data.risk_npv @ weights)
    cvar.cut_weights.append(np.asarray(weights, dtype=np.float64))


@dataclass(frozen=True)
class CvarSeed:
    """What a solved model learnt of the CVaR: its R-U scenario rows (``lazy``) and its
    cuts' tail weights (``cuts``). Both stay valid for any plan problem on the same risk
    sample (rows and cuts only bound the CVaR from above where they are tight), so a
    re-solve that starts from them (more capital, the runner-up, the frontier) skips the
    rounds that found them."""

    scenarios: tuple[int, ...] = ()
    weights: tuple[np.ndarray, ...] = ()

    @staticmethod
    def of(model: PlanModel) -> CvarSeed | None:
        """What ``model`` learnt beyond what every model starts with (the INITIAL_CUTS
        cuts, whose uniform one would turn a ``lazy`` model seeded from it into ``full``)."""
        cvar = model.cvar
        if cvar is None or cvar.method == "full":
            return None
        return CvarSeed(tuple(sorted(cvar.scenarios)), tuple(cvar.cut_weights[INITIAL_CUTS:]))


def seed_cvar(model: PlanModel, seed: CvarSeed | None) -> None:
    """Start ``model``'s CVaR from ``seed``: its cuts (``cuts``), or its rows and the
    scenarios its cuts weigh (``lazy``)."""
    cvar = model.cvar
    if seed is None or cvar is None or cvar.method == "full":
        return
    if cvar.method == "cuts":
        for weights in seed.weights:
            add_cvar_cut(model, weights)
        return
    support = [np.flatnonzero(w) for w in seed.weights]
    add_cvar_rows(model, np.concatenate([np.asarray(seed.scenarios, dtype=np.int64), *support]))


def add_cvar_rows(model: PlanModel, scenarios) -> int:
    """Rockafellar-Uryasev rows for the given scenarios not yet in the model; how many."""
    cvar = model.cvar
    new = sorted(set(int(k) for k in scenarios) - cvar.scenarios)
    constraints.cvar_tail(model.prob, model.data, model.x, cvar.eta, cvar.tail, new)
    cvar.scenarios.update(new)
    return len(new)


INITIAL_CUTS = 2  # a ``cuts`` model starts with the mean's cut and all mining's tail cut


def _initial_cvar_rows(model: PlanModel) -> None:
    cvar, data = model.cvar, model.data
    all_mining = data.risk_npv[data.hash_row].sum(axis=0)
    if cvar.method == "full":
        add_cvar_rows(model, range(data.risk_npv.shape[1]))
    elif cvar.method == "lazy":
        add_cvar_rows(model, np.flatnonzero(tail_weights(all_mining, cvar.alpha)))
    else:
        n = data.risk_npv.shape[1]
        add_cvar_cut(model, np.full(n, 1.0 / n))
        add_cvar_cut(model, tail_weights(all_mining, cvar.alpha))


def build_model(
    table: OptionTable,
    problem: PlanProblem,
    *,
    cvar_method: str = "cuts",
    relax: Mapping[ConstraintGroup, float] | None = None,
    data: PlanData | None = None,
) -> PlanModel:
    """Build the MILP: variables, objective, constraints, in that order.

    Parameters
    ----------
    table : OptionTable
    problem : PlanProblem
    cvar_method : {"cuts", "lazy", "full"}
        Form of the CVaR (module docstring); only used when the problem has a CVaR
        floor or a positive ``risk_aversion``.
    relax : mapping of ConstraintGroup to float, optional
        Phase 1: these groups get a nonnegative slack and the objective becomes
        ``maximise -sum weight * slack`` [weight in 1/group unit]; risk aversion is
        ignored, a CVaR floor stays (relaxed if listed).
    data : PlanData, optional
        Already extracted data (saves the extraction when building several models).

    Returns
    -------
    PlanModel
    """
    start = time.perf_counter()
    data = plan_data(table, problem) if data is None else data
    relax = dict(relax or {})
    prob = pulp.LpProblem("siteopt_plan", pulp.LpMaximize)

    x_dict = add_variable_dict(prob, "x", range(data.n_options), cat=pulp.LpBinary)
    x = [x_dict[i] for i in range(data.n_options)]
    u = {
        c.name: add_variable(prob, f"u_{data.contract_names[c.name]}", cat=pulp.LpBinary)
        for c in problem.contracts
    }
    slacks = {g: add_variable(prob, f"slack_{g.kind}_{i}", low=0.0) for i, g in enumerate(relax)}
    cvar = _cvar_variables(prob, data, problem, cvar_method, phase_one=bool(relax))

    _objective(prob, data, x, cvar, slacks, relax, problem.expected_weight)

    constraints.one_option_per_site(prob, data, x)
    constraints.budget(prob, data, x, problem, slacks)
    constraints.contracts(prob, data, x, u, problem, slacks)
    constraints.hashrate_floor(prob, data, x, problem, slacks)
    constraints.exclude_plans(prob, data, x, problem)
    model = PlanModel(
        prob=prob,
        data=data,
        problem=problem,
        x=x,
        u=u,
        cvar=cvar,
        slacks=slacks,
        slack_weights=relax,
        build_s=0.0,
    )
    if cvar is not None:
        _initial_cvar_rows(model)
        constraints.cvar_floor(prob, cvar.expression, problem, slacks)
    return replace(model, build_s=time.perf_counter() - start)
