"""Market states at the later decision years: what a board sees before it decides.

A staged plan (siteopt.optimizer.staged) decides the first decision year's builds now and
each later decision year's builds after seeing the market at that year's start. Those
states are a tree: at each later decision year every state of the year before splits into
up to ``k`` states by quantile bins of the hashprice of the month before (December), among
that state's scenarios. So a state at a year is a history (the bins of every earlier
later year and this one), and a decision that depends on it depends on nothing that
happens afterwards: the tree is non-anticipative by construction.

**[r3] And the AI rent index.** Where the AI rent index moves (``market.ai``), a later
signing's rent (``price_follows_index``) and every re-let's follow it, and the index is a
random walk: seen now, it tells a board about the rents still to come. So with four
clusters or more each state splits on the hashprice into half as many bins and each of
those in two at the AI rent index's median: waiting can then answer the AI market too.

Why hashprice for mining: in this model the future of mining is a function of the hashprice
seen now. Hashprice is ``144 x reward x BTC / hashrate``, the hashrate's growth runs on
(lagged) hashprice, the ASIC price moves with it, and the BTC price and the hashrate enter
a site's cash flows only through it. Power prices are drawn independently month by month
and a hall's own market rent factor only when it is re-let, so neither tells a board anything
about later years; splitting on them would split states by noise. The BTC price, network
hashrate and power price of each state are still reported, to describe it in a board's
terms.

Everything here runs on numpy whatever the valuation's backend: the states are read from
the reference market paths (the same counter-based draws every backend reproduces), so a
scenario lands in the same state on every backend and engine.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np

from .hosting import construction_start
from .market import horizon_calendar, market_paths, month_label
from .params import Portfolio
from .power import power_paths

STATE_CHUNK = 8192  # scenarios per chunk of the state pass
DESCRIBED = ("hashprice", "btc_usd", "hashrate_eh", "power_usd_mwh", "ai_rent_index")


def observed_month(scenario: Portfolio, year: int) -> int:
    """Month index whose market a decision for ``year`` sees: the December before its
    January (construction starts in January), or month 0 when that is not in the horizon."""
    return max(0, construction_start(scenario, year) - 1)


@dataclass(frozen=True)
class MarketStates:
    """Per scenario (rows) and later decision year (columns) the market seen then.

    Attributes
    ----------
    years : tuple of int
        The later decision years (all but the first).
    months : tuple of int
        The observed month index of each.
    hashprice : ndarray (N, S) [USD/PH/day]
    btc_usd : ndarray (N, S) [USD]
    hashrate_eh : ndarray (N, S) [EH/s]
    power_usd_mwh : ndarray (N, S) [USD/MWh]
        The monthly price level averaged over the power markets.
    ai_rent_index : ndarray (N, S) [-]
        The AI rent index (market.ai), 1 at the start.
    ai_moves : bool
        The index is random (``market.ai.rent_volatility`` above 0): worth splitting on.
    """

    years: tuple[int, ...]
    months: tuple[int, ...]
    hashprice: np.ndarray
    btc_usd: np.ndarray
    hashrate_eh: np.ndarray
    power_usd_mwh: np.ndarray
    ai_rent_index: np.ndarray
    ai_moves: bool = False

    @property
    def scenarios(self) -> int:
        return self.hashprice.shape[0]


def market_states(scenario: Portfolio) -> MarketStates:
    """The market at each later decision year, for every scenario of ``scenario``'s
    simulation (its seed and count), on numpy in chunks of STATE_CHUNK scenarios."""
    years = tuple(sorted(scenario.decision_years))[1:]
    months = tuple(observed_month(scenario, y) for y in years)
    n = scenario.simulation.scenarios
    out = {name: np.empty((n, len(years))) for name in DESCRIBED}
    if years:
        # only the months up to the last observed one are drawn (the draws are keyed by
        # scenario and month, so a shorter horizon leaves them as they are)
        short = dataclasses.replace(scenario, horizon_years=max(months) // 12 + 1)
        cal = horizon_calendar(short)
        cols = list(months)
        for lo in range(0, n, STATE_CHUNK):
            idx = np.arange(lo, min(n, lo + STATE_CHUNK), dtype=np.int64)
            paths = market_paths(short, idx, xp=np)
            out["hashprice"][lo : lo + len(idx)] = paths.hashprice[:, cols]
            out["btc_usd"][lo : lo + len(idx)] = paths.btc_usd[:, cols]
            out["hashrate_eh"][lo : lo + len(idx)] = paths.hashrate_eh[:, cols]
            out["ai_rent_index"][lo : lo + len(idx)] = paths.ai_rent_index[:, cols]
            power = [
                power_paths(short, k, cal, idx, xp=np).level[:, cols]
                for k in range(len(short.power_markets))
            ]
            out["power_usd_mwh"][lo : lo + len(idx)] = np.mean(power, axis=0) if power else np.nan
    return MarketStates(years, months, **out, ai_moves=scenario.market.ai.rent_volatility > 0)


@dataclass(frozen=True)
class StateTree:
    """The tree of market states. Node 0 is the root (now, the first decision year); the
    nodes of stage j >= 1 are the states at ``years[j - 1]``.

    Attributes
    ----------
    years, months : tuple of int
        The later decision years and their observed month indices.
    parent : ndarray of int (nodes,)
        -1 for the root.
    stage : ndarray of int (nodes,)
    low, high : ndarray (nodes,) [USD/PH/day]
        The node's hashprice bin at its stage, [low, high); -inf / inf at the ends (the
        root's is the whole line).
    count : ndarray of int (nodes,)
        Scenarios in the node.
    leaf : ndarray of int (N,)
        Each scenario's leaf (a node of the last stage), a *group* index
        ``0..leaves-1`` (:attr:`leaves` maps it to node ids).
    leaves : ndarray of int
        Node id of each group.
    described : dict of str to ndarray (nodes, 3)
        Per DESCRIBED quantity at the node's stage: p10, median, p90 over its scenarios.
    """

    years: tuple[int, ...]
    months: tuple[int, ...]
    clusters: int
    parent: np.ndarray
    stage: np.ndarray
    low: np.ndarray
    high: np.ndarray
    count: np.ndarray
    leaf: np.ndarray
    leaves: np.ndarray
    described: dict[str, np.ndarray]
    ai_low: np.ndarray | None = None  # the node's AI rent index bin [ai_low, ai_high)
    ai_high: np.ndarray | None = None

    @property
    def splits_ai(self) -> bool:
        """Whether states split on the AI rent index as well as the hashprice."""
        return self.ai_low is not None

    @property
    def nodes(self) -> int:
        return len(self.parent)

    @property
    def stages(self) -> int:
        """Decision stages, the first (now) included."""
        return len(self.years) + 1

    @property
    def probability(self) -> np.ndarray:
        """Share of the scenarios in each node [-]."""
        return self.count / max(int(self.count[0]), 1)

    def path(self, node: int) -> list[int]:
        """The nodes from the root's child down to ``node`` (empty for the root)."""
        out = []
        while node > 0:
            out.append(int(node))
            node = int(self.parent[node])
        return out[::-1]

    def children(self, node: int) -> np.ndarray:
        return np.flatnonzero(self.parent == node)

    def key(self) -> str:
        """A digest of the partition (what a valuation's group sums depend on)."""
        digest = hashlib.sha1(np.ascontiguousarray(self.leaf, dtype=np.int64).tobytes())
        return f"{self.clusters}:{len(self.leaves)}:{digest.hexdigest()}"

    def assign(self, states: MarketStates) -> np.ndarray:
        """The group (leaf) of each scenario of ``states`` by this tree's bins: how a
        policy is applied to other draws (a fresh seed, a user's re-run)."""
        if tuple(states.years) != self.years:
            raise ValueError(f"states for years {states.years}, the tree has {self.years}")
        node = np.zeros(states.scenarios, dtype=np.int64)
        for j in range(len(self.years)):
            hp, ai = states.hashprice[:, j], states.ai_rent_index[:, j]
            nxt = np.full_like(node, -1)
            for parent in np.unique(node):
                kids = self.children(int(parent))
                rows = node == parent
                for kid in kids:
                    inside = rows & (hp >= self.low[kid]) & (hp < self.high[kid])
                    if self.splits_ai:
                        inside &= (ai >= self.ai_low[kid]) & (ai < self.ai_high[kid])
                    nxt[inside] = kid
            node = nxt
        group = np.full(self.nodes, -1, dtype=np.int64)
        group[self.leaves] = np.arange(len(self.leaves))
        return group[node]

    def describe(self, node: int) -> str:
        """The node's bin in words, e.g. ``hashprice $31.20-$38.90`` (and ``, AI rent index
        >= 1.07`` where states split on it)."""
        words = bin_words(self.low[node], self.high[node])
        if self.splits_ai:
            words += ", " + index_words(self.ai_low[node], self.ai_high[node])
        return words


def bin_words(low: float, high: float) -> str:
    """A hashprice bin [low, high) in words [USD/PH/day]."""
    return _range_words("hashprice", low, high, lambda v: f"${v:,.2f}")


def index_words(low: float, high: float) -> str:
    """An AI rent index bin [low, high) in words."""
    return _range_words("AI rent index", low, high, lambda v: f"{v:.3f}")


def _range_words(what: str, low: float, high: float, show) -> str:
    if np.isinf(low) and np.isinf(high):
        return f"any {what}"
    if np.isinf(low):
        return f"{what} < {show(high)}"
    if np.isinf(high):
        return f"{what} >= {show(low)}"
    return f"{what} {show(low)}-{show(high)}"


def state_tree(states: MarketStates, clusters: int) -> StateTree:
    """Split every state into up to ``clusters`` states at each later decision year, among
    the state's own scenarios: by quantile bins of the hashprice, and, where the AI rent
    index moves and ``clusters`` is 4 or more, the hashprice into ``clusters // 2`` bins and
    each of those in two at the index's median within it (ties kept together, so a bin may
    hold more than its share and the count may fall short of ``clusters``).
    """
    if clusters < 1:
        raise ValueError(f"clusters must be at least 1; got {clusters}")
    n = states.scenarios
    split_ai = states.ai_moves and clusters >= 4
    k_hash, k_ai = (clusters // 2, 2) if split_ai else (clusters, 1)
    parent, stage, low, high = [-1], [0], [-np.inf], [np.inf]
    ai_low, ai_high = [-np.inf], [np.inf]
    node = np.zeros(n, dtype=np.int64)
    for j in range(len(states.years)):
        hp, ai = states.hashprice[:, j], states.ai_rent_index[:, j]
        nxt = np.empty_like(node)
        for p in np.unique(node):
            rows = np.flatnonzero(node == p)
            edges = _quantile_edges(hp[rows], k_hash)
            bounds = [-np.inf, *edges, np.inf]
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                in_bin = rows[(hp[rows] >= a) & (hp[rows] < b)]
                ai_bounds = [-np.inf, *_quantile_edges(ai[in_bin], k_ai), np.inf]
                for c, d in zip(ai_bounds[:-1], ai_bounds[1:], strict=True):
                    kid = len(parent)
                    parent.append(int(p))
                    stage.append(j + 1)
                    low.append(a)
                    high.append(b)
                    ai_low.append(c)
                    ai_high.append(d)
                    nxt[in_bin[(ai[in_bin] >= c) & (ai[in_bin] < d)]] = kid
        node = nxt
    parent_a = np.asarray(parent, dtype=np.int64)
    count = np.zeros(len(parent_a), dtype=np.int64)
    # counts: every scenario counts in each node on its path
    last = node
    np.add.at(count, last, 1)
    for _ in range(len(states.years)):
        up = parent_a[last]
        np.add.at(count, up, 1)
        last = up
    stage_a = np.asarray(stage, dtype=np.int64)
    leaves = np.flatnonzero(stage_a == len(states.years))
    group = np.full(len(parent_a), -1, dtype=np.int64)
    group[leaves] = np.arange(len(leaves))
    described = _described(states, parent_a, stage_a, node)
    return StateTree(
        years=states.years,
        months=states.months,
        clusters=clusters,
        parent=parent_a,
        stage=stage_a,
        low=np.asarray(low),
        high=np.asarray(high),
        count=count,
        leaf=group[node],
        leaves=leaves,
        described=described,
        ai_low=np.asarray(ai_low) if split_ai else None,
        ai_high=np.asarray(ai_high) if split_ai else None,
    )


def _quantile_edges(values: np.ndarray, k: int) -> list[float]:
    """Inner edges of ``k`` equal-count bins of ``values``, each edge a value itself (so a
    bin [a, b) is never empty); repeated edges are dropped."""
    if k <= 1 or len(values) == 0:
        return []
    ordered = np.sort(values)
    above = ordered[ordered > ordered[0]]
    if above.size == 0:
        return []  # every value the same: one bin
    cut = [ordered[min(len(ordered) - 1, (len(ordered) * i) // k)] for i in range(1, k)]
    # a cut inside the ties at the minimum moves to the next value, so they still split off
    return sorted({float(c if c > ordered[0] else above[0]) for c in cut})


def _described(states: MarketStates, parent, stage, leaf_node) -> dict[str, np.ndarray]:
    """p10, median and p90 of each DESCRIBED quantity in each node, at the node's stage."""
    nodes = len(parent)
    out = {name: np.full((nodes, 3), np.nan) for name in DESCRIBED}
    # the node of each scenario at each stage, from its leaf upwards
    at_stage = np.empty((states.scenarios, len(states.years)), dtype=np.int64)
    node = leaf_node
    for j in range(len(states.years) - 1, -1, -1):
        at_stage[:, j] = node
        node = parent[node]
    for v in range(1, nodes):
        j = int(stage[v]) - 1
        rows = at_stage[:, j] == v
        if not rows.any():
            continue
        for name in DESCRIBED:
            out[name][v] = np.percentile(getattr(states, name)[rows, j], [10, 50, 90])
    return out


def stage_label(scenario: Portfolio, tree: StateTree, stage: int) -> str:
    """``YYYY-MM`` of the month a stage's decision sees (stage >= 1)."""
    return month_label(scenario, tree.months[stage - 1])
